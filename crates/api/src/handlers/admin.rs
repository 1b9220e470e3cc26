//! `/api/v1/admin`: statistics, the effective configuration (secrets
//! redacted) and the audit trail.

use axum::Json;
use axum::extract::{RawQuery, State};
use gatehouse_core::audit::{AuditEntry, AuditQuery, Verification};
use gatehouse_core::service::AdminStats;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::extract::{Require, perm};
use crate::state::AppState;

/// Schemas of the admin responses (documentation only: the bodies are
/// serialised from the domain types).
#[allow(dead_code, reason = "schema only")]
mod schema {
    use utoipa::ToSchema;

    #[derive(ToSchema)]
    pub struct RoleCounts {
        admin: u64,
        moderator: u64,
        user: u64,
        viewer: u64,
    }

    #[derive(ToSchema)]
    pub struct UserCounts {
        total: u64,
        active: u64,
        inactive: u64,
        by_role: RoleCounts,
    }

    #[derive(ToSchema)]
    pub struct SessionCounts {
        active: u64,
    }

    #[derive(ToSchema)]
    pub struct LoginCounts {
        succeeded: u64,
        failed: u64,
    }

    /// `GET /admin/stats`.
    #[derive(ToSchema)]
    pub struct AdminStats {
        users: UserCounts,
        sessions: SessionCounts,
        logins_24h: LoginCounts,
        locked_accounts: u64,
    }

    /// One audit entry; `hash` covers every field and `prev_hash`.
    #[derive(ToSchema)]
    pub struct AuditEntry {
        id: uuid::Uuid,
        seq: i64,
        #[schema(format = DateTime)]
        at: String,
        event: String,
        outcome: String,
        actor_id: Option<uuid::Uuid>,
        target_id: Option<uuid::Uuid>,
        ip: Option<String>,
        user_agent: Option<String>,
        request_id: Option<String>,
        details: Object,
        prev_hash: String,
        hash: String,
    }

    /// Free-form JSON object.
    #[derive(ToSchema)]
    #[schema(value_type = Object)]
    pub struct Object(serde_json::Value);

    /// `GET /admin/audit`.
    #[derive(ToSchema)]
    pub struct AuditPage {
        entries: Vec<AuditEntry>,
        /// Pass as `after` for older entries; null on the last page.
        next_cursor: Option<String>,
    }

    #[derive(ToSchema)]
    pub struct Anchor {
        seq: i64,
        hash: String,
    }

    #[derive(ToSchema)]
    pub struct BrokenLink {
        seq: i64,
        id: uuid::Uuid,
        reason: String,
    }

    /// `GET /admin/audit/verify`.
    #[derive(ToSchema)]
    pub struct Verification {
        valid: bool,
        checked: u64,
        anchor: Option<Anchor>,
        first_broken: Option<BrokenLink>,
    }
}

/// `GET /admin/stats` (admin:read).
#[utoipa::path(
    get,
    path = "/api/v1/admin/stats",
    tag = "admin",
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Counts of users, sessions, logins and locks", body = schema::AdminStats),
        (status = 403, response = crate::openapi::Forbidden),
    ),
)]
pub async fn stats(
    State(state): State<AppState>,
    Require(..): Require<perm::AdminRead>,
) -> Result<Json<AdminStats>, ApiError> {
    Ok(Json(state.auth().admin_stats().await?))
}

/// `GET /admin/config` (admin:read): every setting, secrets redacted.
#[utoipa::path(
    get,
    path = "/api/v1/admin/config",
    tag = "admin",
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Every setting by variable name; secrets redacted", body = schema::Object),
        (status = 403, response = crate::openapi::Forbidden),
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

#[derive(Debug, Serialize)]
struct EntryView {
    id: Uuid,
    seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    event: String,
    outcome: String,
    actor_id: Option<Uuid>,
    target_id: Option<Uuid>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    details: Value,
    prev_hash: String,
    hash: String,
}

impl From<AuditEntry> for EntryView {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            seq: e.seq,
            at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.at) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
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
        }
    }
}

#[derive(Debug, Serialize)]
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
        (status = 200, description = "Entries, newest first", body = schema::AuditPage),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 422, response = crate::openapi::ValidationFailed),
    ),
)]
pub async fn audit(
    State(state): State<AppState>,
    Require(..): Require<perm::AdminRead>,
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
            .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0))
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
        .auth()
        .audit_page(&AuditQuery {
            event,
            user_id,
            since,
            before_seq,
            limit,
        })
        .await?;
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(EntryView::from).collect(),
        next_cursor: next.map(|s| s.to_string()),
    }))
}

/// `GET /admin/audit/verify` (admin:read): walks the whole chain.
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit/verify",
    tag = "admin",
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Whether the chain is intact, and its first broken link", body = schema::Verification),
        (status = 403, response = crate::openapi::Forbidden),
    ),
)]
pub async fn verify(
    State(state): State<AppState>,
    Require(..): Require<perm::AdminRead>,
) -> Result<Json<Verification>, ApiError> {
    Ok(Json(state.auth().verify_audit().await?))
}
