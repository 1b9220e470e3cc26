//! `GET /ui/admin/audit`: the audit trail, newest first, filtered by event,
//! user and time, a page at a time, under the chain's verification —
//! `Operations::audit_page` and `Operations::verify_audit`, as `GET
//! /api/v1/admin/audit` and `/admin/audit/verify`.

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use gatehouse_core::audit::{AuditEntry, AuditQuery, Verification};
use gatehouse_core::clock::{from_unix_ms, unix_ms};
use http::{HeaderMap, StatusCode};
use minijinja::context;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

use super::{nav, query_string, shown};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use crate::ui::csrf::{Binding, FormKey};
use crate::ui::page::{self, Page, Refusal, Shown};
use crate::ui::session::SignedIn;
use crate::ui::templates;

const PAGE_SIZE: u64 = 50;

/// The contract's event names, offered by the filter.
const EVENTS: [&str; 28] = [
    "user_registered",
    "login_succeeded",
    "login_failed",
    "account_locked",
    "mfa_failed",
    "token_refreshed",
    "refresh_token_reused",
    "logout",
    "permission_denied",
    "rate_limited",
    "password_changed",
    "password_reset",
    "email_verified",
    "user_created",
    "user_updated",
    "role_changed",
    "user_deactivated",
    "user_deleted",
    "session_revoked",
    "mfa_enabled",
    "mfa_disabled",
    "api_key_created",
    "api_key_rotated",
    "api_key_revoked",
    "api_key_used",
    "file_uploaded",
    "file_deleted",
    "data_exported",
];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawAudit {
    event: String,
    user_id: String,
    since: String,
    after: String,
}

#[derive(Debug, Serialize)]
struct Row {
    seq: i64,
    at: (String, String),
    event: String,
    outcome: String,
    actor_id: Option<Uuid>,
    target_id: Option<Uuid>,
    ip: Option<String>,
    user_agent: Option<String>,
    details: String,
}

impl From<AuditEntry> for Row {
    fn from(e: AuditEntry) -> Self {
        Self {
            seq: e.seq,
            at: shown(from_unix_ms(e.at)),
            event: e.event,
            outcome: e.outcome,
            actor_id: e.actor_id,
            target_id: e.target_id,
            ip: e.ip,
            user_agent: e.user_agent,
            // `{}` says nothing: left blank.
            details: if e.details == "{}" {
                String::new()
            } else {
                e.details
            },
        }
    }
}

/// `since` as typed: RFC 3339, or what a `datetime-local` field sends
/// (`2026-01-31T09:30`), read as UTC.
fn parse_since(raw: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(raw, &Rfc3339).ok().or_else(|| {
        PrimitiveDateTime::parse(
            raw,
            format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        )
        .ok()
        .map(PrimitiveDateTime::assume_utc)
    })
}

/// The verification in words.
#[derive(Debug, Serialize)]
struct Verdict {
    valid: bool,
    checked: u64,
    broken_at: Option<i64>,
    reason: Option<&'static str>,
    problems: Vec<&'static str>,
}

fn verdict(v: &Verification) -> Verdict {
    let problems = v
        .failures
        .iter()
        .filter_map(|f| match *f {
            "anchor_not_sealed" => Some(
                "The chain's starting point (left by pruning) is not sealed with the chain key.",
            ),
            "instance_head_missing" => {
                Some("Entries this server wrote are missing from the end of the chain.")
            }
            "instance_head_mismatch" => Some("The latest entry this server wrote was rewritten."),
            _ => None,
        })
        .collect();
    Verdict {
        valid: v.valid,
        checked: v.checked,
        broken_at: v.first_broken.as_ref().map(|b| b.seq),
        reason: v.first_broken.as_ref().map(|b| b.reason),
        problems,
    }
}

/// `GET /ui/admin/audit`.
pub async fn list(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    let key = FormKey::of(&headers, state.http().secure_cookies)?;
    let raw: RawAudit =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let mut errors = Vec::new();
    if raw.event.chars().count() > 64 {
        errors.push(FieldError::new("event", "must be at most 64 characters"));
    }
    let user_id = match raw.user_id.trim() {
        "" => None,
        u => Uuid::parse_str(u)
            .map_err(|_| errors.push(FieldError::new("user_id", "must be a user id (a UUID)")))
            .ok(),
    };
    let since = match raw.since.trim() {
        "" => None,
        s => parse_since(s)
            .map(unix_ms)
            .ok_or_else(|| {
                errors.push(FieldError::new(
                    "since",
                    "must be a date and time, such as 2026-01-31T09:30",
                ))
            })
            .ok(),
    };
    let before_seq = match raw.after.as_str() {
        "" => None,
        a => a
            .parse::<i64>()
            .map_err(|_| errors.push(FieldError::new("after", "is not a page of this trail")))
            .ok(),
    };
    let verification = state.operations().verify_audit(p, None).await?;
    let filter_pairs = [
        ("event", raw.event.as_str()),
        ("user_id", raw.user_id.trim()),
        ("since", raw.since.trim()),
    ];
    let mut events: Vec<&str> = EVENTS.to_vec();
    if !raw.event.is_empty() && !events.contains(&raw.event.as_str()) {
        events.push(raw.event.as_str());
    }
    let render = |rows: Vec<Row>, next: Option<String>, error: Option<&Shown>| {
        templates::render(
            page::product(&state),
            "admin_audit.html",
            context! {
                csrf => key.token(Binding::login(p.session_id)),
                nav => nav(p, "audit"),
                error => error,
                verdict => verdict(&verification),
                form => context! {
                    event => &raw.event,
                    user_id => raw.user_id.trim(),
                    since => raw.since.trim(),
                },
                events => events.clone(),
                entries => rows,
                next => next,
                first => (!raw.after.is_empty()).then(|| format!("/ui/admin/audit{}", query_string(&filter_pairs))),
            },
        )
    };
    if !errors.is_empty() {
        // The chain's verification above took `admin:read` already.
        let refusal = Refusal::new(ApiError::validation(errors), true);
        let html = render(Vec::new(), None, Some(&refusal.shown))?;
        return Ok(refusal.page(html));
    }
    let (entries, next) = state
        .operations()
        .audit_page(
            p,
            &AuditQuery {
                event: Some(raw.event.clone()).filter(|e| !e.is_empty()),
                user_id,
                since,
                before_seq,
                limit: PAGE_SIZE,
            },
        )
        .await?;
    let next = next.map(|seq| {
        let cursor = seq.to_string();
        let mut pairs = filter_pairs.to_vec();
        pairs.push(("after", cursor.as_str()));
        format!("/ui/admin/audit{}", query_string(&pairs))
    });
    let html = render(entries.into_iter().map(Row::from).collect(), next, None)?;
    Ok(Page::new(StatusCode::OK, html)
        .cookie(key.cookie())
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_rfc_3339_or_a_local_field_in_utc() {
        let a = parse_since("2026-01-31T09:30:00Z");
        let b = parse_since("2026-01-31T09:30");
        assert!(a.is_some() && a == b, "{a:?} {b:?}");
        assert!(parse_since("yesterday").is_none());
    }
}
