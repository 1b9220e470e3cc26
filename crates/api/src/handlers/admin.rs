//! `/api/v1/admin`: statistics, the effective configuration (secrets
//! redacted) and the audit trail.

use axum::Json;
use axum::extract::{RawQuery, State};
use gatehouse_core::audit::{AuditEntry, AuditQuery, ChainPoint, HashScheme, Verification};
use gatehouse_core::clock::{from_unix_ms, unix_ms};
use gatehouse_core::service::AdminStats;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::extract::{Require, perm};
use crate::responses::{Forbidden, ValidationFailed};
use crate::state::AppState;

/// `GET /admin/stats`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AdminStats)]
pub struct StatsView {
    users: UserCounts,
    sessions: SessionCounts,
    logins_24h: LoginCounts,
    locked_accounts: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserCounts {
    total: u64,
    active: u64,
    inactive: u64,
    by_role: RoleCounts,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleCounts {
    admin: u64,
    moderator: u64,
    user: u64,
    viewer: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionCounts {
    active: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginCounts {
    succeeded: u64,
    failed: u64,
}

impl From<AdminStats> for StatsView {
    fn from(s: AdminStats) -> Self {
        let roles = s.users.by_role;
        Self {
            users: UserCounts {
                total: s.users.total,
                active: s.users.active,
                inactive: s.users.inactive,
                by_role: RoleCounts {
                    admin: roles.admin,
                    moderator: roles.moderator,
                    user: roles.user,
                    viewer: roles.viewer,
                },
            },
            sessions: SessionCounts {
                active: s.sessions.active,
            },
            logins_24h: LoginCounts {
                succeeded: s.logins_24h.succeeded,
                failed: s.logins_24h.failed,
            },
            locked_accounts: s.locked_accounts,
        }
    }
}

/// `GET /admin/stats` (admin:read).
#[utoipa::path(
    get,
    path = "/api/v1/admin/stats",
    tag = "admin",
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Counts of users, sessions, logins and locks", body = StatsView),
        (status = 403, response = Forbidden),
    ),
)]
pub async fn stats(
    State(state): State<AppState>,
    Require(p, ..): Require<perm::AdminRead>,
) -> Result<Json<StatsView>, ApiError> {
    Ok(Json(state.operations().stats(&p).await?.into()))
}

/// `GET /admin/config` (admin:read): every setting, secrets redacted.
#[utoipa::path(
    get,
    path = "/api/v1/admin/config",
    tag = "admin",
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Every setting by variable name; secrets redacted", body = Object),
        (status = 403, response = Forbidden),
    ),
)]
pub async fn config(
    State(state): State<AppState>,
    Require(..): Require<perm::AdminRead>,
) -> Json<Value> {
    Json(state.redacted_config())
}

#[derive(Debug, Default, Deserialize)]
struct RawAuditQuery {
    limit: Option<String>,
    after: Option<String>,
    event: Option<String>,
    user_id: Option<String>,
    since: Option<String>,
}

/// One audit entry; `hash` covers every field and `prev_hash`, under
/// `hash_scheme` (`hmac-sha256` keyed with `AUDIT_CHAIN_KEY`; `sha256` for
/// entries written before the key existed).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEntry)]
struct EntryView {
    id: Uuid,
    seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    at: OffsetDateTime,
    event: String,
    outcome: String,
    actor_id: Option<Uuid>,
    target_id: Option<Uuid>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    #[schema(value_type = Object)]
    details: Value,
    prev_hash: String,
    hash: String,
    /// `null` for a scheme this version does not know (never verifies).
    hash_scheme: Option<HashScheme>,
}

impl From<AuditEntry> for EntryView {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            seq: e.seq,
            at: from_unix_ms(e.at),
            event: e.event,
            outcome: e.outcome,
            actor_id: e.actor_id,
            target_id: e.target_id,
            ip: e.ip,
            user_agent: e.user_agent,
            request_id: e.request_id,
            details: serde_json::from_str(&e.details).unwrap_or(Value::Null),
            prev_hash: e.prev_hash,
            hash: e.hash,
            hash_scheme: HashScheme::from_code(e.scheme),
        }
    }
}

/// `GET /admin/audit`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    entries: Vec<EntryView>,
    /// `seq` to pass as `after` for older entries; `null` on the last page.
    next_cursor: Option<String>,
}

const MAX_AUDIT_LIMIT: u64 = 200;

/// `GET /admin/audit` (admin:read): newest first, `?limit=&after=` and the
/// filters `event`, `user_id` (actor or target), `since` (RFC 3339).
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit",
    tag = "admin",
    params(
        ("limit" = Option<u64>, Query, minimum = 1, description = "Page size (default 50, capped at 200)"),
        ("after" = Option<String>, Query, description = "The previous page's `next_cursor`"),
        ("event" = Option<String>, Query, max_length = 64, description = "Only this event name"),
        ("user_id" = Option<Uuid>, Query, description = "Entries whose actor or target is this user"),
        ("since" = Option<String>, Query, format = DateTime, description = "Entries at or after this time"),
    ),
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Entries, newest first", body = AuditPage),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn audit(
    State(state): State<AppState>,
    Require(p, ..): Require<perm::AdminRead>,
    RawQuery(query): RawQuery,
) -> Result<Json<AuditPage>, ApiError> {
    let raw: RawAuditQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or_default())
        .map_err(|_| ApiError::validation(vec![FieldError::new("query", "is malformed")]))?;
    let mut errors = Vec::new();
    let limit = match raw.limit.as_deref().map(str::parse::<u64>) {
        None => 50,
        Some(Ok(n)) if n >= 1 => n.min(MAX_AUDIT_LIMIT),
        Some(_) => {
            errors.push(FieldError::new(
                "limit",
                "must be a whole number of at least 1",
            ));
            50
        }
    };
    let before_seq = match raw.after.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(a) => a
            .parse::<i64>()
            .map_err(|_| {
                errors.push(FieldError::new(
                    "after",
                    "must be a cursor from next_cursor",
                ))
            })
            .ok(),
    };
    let user_id = match raw.user_id.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(u) => Uuid::parse_str(u)
            .map_err(|_| errors.push(FieldError::new("user_id", "must be a UUID")))
            .ok(),
    };
    let since = match raw.since.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => OffsetDateTime::parse(s, &Rfc3339)
            .map(unix_ms)
            .map_err(|_| errors.push(FieldError::new("since", "must be an RFC 3339 timestamp")))
            .ok(),
    };
    let event = raw.event.filter(|e| !e.is_empty());
    if event.as_ref().is_some_and(|e| e.len() > 64) {
        errors.push(FieldError::new("event", "must be at most 64 characters"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let (entries, next) = state
        .operations()
        .audit_page(
            &p,
            &AuditQuery {
                event,
                user_id,
                since,
                before_seq,
                limit,
            },
        )
        .await?;
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(EntryView::from).collect(),
        next_cursor: next.map(|s| s.to_string()),
    }))
}

#[derive(Debug, Default, Deserialize)]
struct RawVerifyQuery {
    head_seq: Option<String>,
    head_hash: Option<String>,
}

/// `head_seq` and `head_hash`, both or neither: the entry a checkpoint names.
fn claimed_head(query: Option<&str>) -> Result<Option<ChainPoint>, ApiError> {
    let raw: RawVerifyQuery = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|_| ApiError::validation(vec![FieldError::new("query", "is malformed")]))?;
    let seq = raw.head_seq.filter(|s| !s.is_empty());
    let hash = raw.head_hash.filter(|s| !s.is_empty());
    let mut errors = Vec::new();
    let parsed_seq = seq.as_deref().map(str::parse::<i64>);
    if matches!(parsed_seq, Some(Err(_))) || matches!(parsed_seq, Some(Ok(n)) if n < 1) {
        errors.push(FieldError::new(
            "head_seq",
            "must be a whole number of at least 1",
        ));
    }
    let hash = hash.map(|h| h.to_ascii_lowercase());
    if hash
        .as_deref()
        .is_some_and(|h| h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        errors.push(FieldError::new(
            "head_hash",
            "must be 64 hexadecimal digits",
        ));
    }
    match (&parsed_seq, &hash) {
        (Some(_), None) => errors.push(FieldError::new("head_hash", "is required with head_seq")),
        (None, Some(_)) => errors.push(FieldError::new("head_seq", "is required with head_hash")),
        _ => {}
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(match (parsed_seq, hash) {
        (Some(Ok(seq)), Some(hash)) => Some(ChainPoint { seq, hash }),
        _ => None,
    })
}

/// `GET /admin/audit/verify` (admin:read): walks the whole chain, and checks
/// it still reaches the highest entry this instance has written or seen and,
/// when named, the checkpoint `head_seq`/`head_hash`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit/verify",
    tag = "admin",
    params(
        ("head_seq" = Option<i64>, Query, minimum = 1,
            description = "With `head_hash`: the `seq` of an `audit_checkpoint` log line (or of any entry seen before); the chain must still hold that entry"),
        ("head_hash" = Option<String>, Query, min_length = 64, max_length = 64, pattern = "^[0-9a-fA-F]{64}$",
            description = "With `head_seq`: that entry's `hash`"),
    ),
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Whether the chain is intact and complete, its first broken link, and which checks failed (`failures`)", body = Verification),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn verify(
    State(state): State<AppState>,
    Require(p, ..): Require<perm::AdminRead>,
    RawQuery(query): RawQuery,
) -> Result<Json<Verification>, ApiError> {
    let claimed = claimed_head(query.as_deref())?;
    Ok(Json(state.operations().verify_audit(&p, claimed).await?))
}
