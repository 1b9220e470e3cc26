//! `GET /ui/admin`: the numbers of `GET /api/v1/admin/stats`
//! (`Operations::stats`) and, from `Operations::activity`, charts of the
//! logins that succeeded and failed and of the lockouts per hour over the
//! last 24 hours, and of the live sessions by role.

use axum::Extension;
use axum::extract::State;
use gatehouse_core::clock::from_unix_ms;
use gatehouse_core::service::HourCounts;
use http::{HeaderMap, StatusCode};
use minijinja::context;
use serde::Serialize;
use time::macros::format_description;

use super::charts::{self, Series};
use super::nav;
use crate::error::ApiError;
use crate::state::AppState;
use crate::ui::csrf::{Binding, FormKey};
use crate::ui::page::{self, Page};
use crate::ui::session::SignedIn;
use crate::ui::templates;

const SUCCEEDED: Series = Series {
    class: "series-ok",
    name: "succeeded",
};
const FAILED: Series = Series {
    class: "series-bad",
    name: "failed",
};
const LOCKOUTS: Series = Series {
    class: "series-warn",
    name: "lockouts",
};
const SESSIONS: Series = Series {
    class: "series-info",
    name: "active sessions",
};

/// One hour as the tables show it.
#[derive(Debug, Serialize)]
struct HourRow {
    hour: String,
    succeeded: u64,
    failed: u64,
    lockouts: u64,
}

fn hour_label(h: &HourCounts) -> String {
    from_unix_ms(h.start)
        .format(format_description!("[hour]:00"))
        .unwrap_or_default()
}

/// `GET /ui/admin`.
pub async fn show(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
) -> Result<Page, ApiError> {
    let p = &signed.principal;
    let stats = state.operations().stats(p).await?;
    let activity = state.operations().activity(p).await?;
    let key = FormKey::of(&headers, state.http().secure_cookies)?;
    let labels: Vec<String> = activity.hours.iter().map(hour_label).collect();
    let rows: Vec<HourRow> = activity
        .hours
        .iter()
        .zip(&labels)
        .map(|(h, label)| HourRow {
            hour: label.clone(),
            succeeded: h.logins_succeeded,
            failed: h.logins_failed,
            lockouts: h.lockouts,
        })
        .collect();
    let total = |f: fn(&HourCounts) -> u64| activity.hours.iter().map(f).sum::<u64>();
    let (ok, bad, locks) = (
        total(|h| h.logins_succeeded),
        total(|h| h.logins_failed),
        total(|h| h.lockouts),
    );
    let logins = charts::columns(
        "chart-logins",
        "Logins per hour, last 24 hours (UTC)",
        format!("Logins over the last 24 hours, by hour: {ok} succeeded, {bad} failed in all."),
        &[SUCCEEDED, FAILED],
        &labels,
        &activity
            .hours
            .iter()
            .map(|h| vec![h.logins_succeeded, h.logins_failed])
            .collect::<Vec<_>>(),
        6,
    );
    let lockouts = charts::columns(
        "chart-lockouts",
        "Lockouts per hour, last 24 hours (UTC)",
        format!("Lockouts over the last 24 hours, by hour: {locks} in all."),
        &[LOCKOUTS],
        &labels,
        &activity
            .hours
            .iter()
            .map(|h| vec![h.lockouts])
            .collect::<Vec<_>>(),
        6,
    );
    let by_role = &activity.sessions_by_role;
    let role_rows = [
        ("admin", by_role.admin),
        ("moderator", by_role.moderator),
        ("user", by_role.user),
        ("viewer", by_role.viewer),
    ];
    let live: u64 = role_rows.iter().map(|(_, n)| n).sum();
    let sessions = charts::rows(
        "chart-sessions",
        "Active sessions by role",
        format!("Active sessions by the role of their user: {live} in all."),
        SESSIONS,
        &role_rows,
    );
    let html = templates::render(
        page::product(&state),
        "admin_dashboard.html",
        context! {
            csrf => key.token(Binding::login(p.session_id)),
            nav => nav(p, "dashboard"),
            stats => stats,
            logins => logins,
            lockouts => lockouts,
            sessions => sessions,
            hours => rows,
            roles => role_rows,
        },
    )?;
    Ok(Page::new(StatusCode::OK, html).cookie(key.cookie()))
}
