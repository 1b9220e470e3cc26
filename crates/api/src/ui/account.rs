//! The account page: the profile, the passkeys and the logins (this device
//! marked), with one login or all the others revoked through `Accounts`, as
//! `/api/v1/users/me`, `/users/me/passkeys` and `/users/me/sessions` do.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use gatehouse_core::clock::from_unix_ms;
use http::{HeaderMap, StatusCode};
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use uuid::Uuid;

use super::csrf::{self, Binding, FormKey};
use super::page::{self, Page, Refusal, Shown};
use super::session::SignedIn;
use super::sign_in::{PlainForm, signed_out};
use super::templates;
use super::{api_keys, profile, two_factor};
use crate::error::ApiError;
use crate::extract::Meta;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AccountQuery {
    pub notice: String,
}

/// A fixed sentence per notice code, for every account page: the query
/// never puts words on a page.
pub(super) fn notice(code: &str) -> Option<&'static str> {
    match code {
        "profile_saved" => Some("Your profile is saved."),
        "email_change_requested" => Some(
            "Check the new address: a link there confirms it. Until then your address stays as it is.",
        ),
        "mfa_enabled" => Some("Two-factor authentication is on."),
        "mfa_disabled" => Some("Two-factor authentication is off."),
        "api_key_created" => Some("The API key is made: copy it below, it is shown only now."),
        "api_key_rotated" => Some(
            "The API key has a new secret: copy it below, it is shown only now. The old one no longer works.",
        ),
        "api_key_revoked" => Some("The API key was revoked: it no longer works."),
        "session_revoked" => Some("The session was signed out."),
        "others_revoked" => Some("All your other sessions were signed out."),
        "passkey_added" => Some("The passkey was added. You can sign in with it now."),
        "passkey_renamed" => Some("The passkey was renamed."),
        "passkey_removed" => Some("The passkey was removed."),
        "reauthenticated" => Some("Thank you: you can make the change now."),
        "verification_sent" => {
            Some("A message with a link and a code to confirm your address is on its way.")
        }
        _ => None,
    }
}

/// A time as the page shows it (UTC, to the minute) and as `datetime`.
pub(super) fn shown(at: OffsetDateTime) -> (String, String) {
    let human = at
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default();
    (human, at.format(&Rfc3339).unwrap_or_default())
}

#[derive(Debug, Serialize)]
struct SessionRow {
    id: Uuid,
    device: String,
    ip: Option<String>,
    created: String,
    created_at: String,
    last_used: String,
    last_used_at: String,
    current: bool,
}

/// "Firefox on Linux", from a user agent, for people to tell their logins
/// apart; the raw string is never trusted for anything.
fn device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|u| !u.is_empty()) else {
        return "Unknown device".to_owned();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(mark, _)| ua.contains(mark))
    .map_or("Unknown browser", |(_, name)| name);
    let os = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(mark, _)| ua.contains(mark))
    .map(|(_, name)| name);
    match os {
        Some(os) => format!("{browser} on {os}"),
        None => browser.to_owned(),
    }
}

#[derive(Debug, Serialize)]
struct PasskeyRow {
    id: Uuid,
    name: String,
    created: String,
    created_at: String,
    last_used: Option<(String, String)>,
    backed_up: bool,
}

/// What an account page shows besides its own part: a notice, a refused
/// form's sentence, and the re-authentication form with why it is asked.
#[derive(Debug, Default)]
pub(super) struct Shows<'a> {
    pub notice: Option<&'static str>,
    pub error: Option<&'a Shown>,
    pub reauth: Option<&'static str>,
}

/// One account page: its template, its path (where re-authentication
/// comes back to) and what it shows of its own.
#[derive(Debug)]
pub(super) struct View {
    pub template: &'static str,
    pub path: &'static str,
    pub own: Value,
}

/// The account pages a form may come back to after re-authentication:
/// `raw` if it is one of them, else the account page. Never a path from
/// elsewhere, so never an open redirect.
pub(super) fn next_page(raw: &str) -> &'static str {
    const PAGES: [&str; 5] = [
        "/ui/account",
        "/ui/account/profile",
        "/ui/account/password",
        "/ui/account/2fa",
        "/ui/account/api-keys",
    ];
    PAGES
        .into_iter()
        .find(|p| *p == raw)
        .unwrap_or("/ui/account")
}

/// The page at `path` (one of [`next_page`]'s), as stored now.
pub(super) async fn view_of(
    state: &AppState,
    signed: &SignedIn,
    path: &str,
) -> Result<View, ApiError> {
    match next_page(path) {
        "/ui/account/profile" => Ok(profile::view(signed, None)),
        "/ui/account/password" => Ok(profile::password_view()),
        "/ui/account/2fa" => two_factor::view(state, signed, None).await,
        "/ui/account/api-keys" => api_keys::view(state, signed, None).await,
        _ => overview(state, signed).await,
    }
}

/// Renders `view` in the frame every account page shares: the form
/// token, the notice or the refused form's sentence, the
/// re-authentication form (coming back to the page), and the account.
pub(super) async fn render(
    state: &AppState,
    signed: &SignedIn,
    key: &FormKey,
    shows: &Shows<'_>,
    view: View,
) -> Result<String, ApiError> {
    let p = &signed.principal;
    let has_passkeys = !state.passkeys().list(p).await?.is_empty();
    let user = &p.user;
    let (created, created_at) = shown(user.created_at);
    let frame = context! {
        csrf => key.token(Binding::login(p.session_id)),
        notice => shows.notice,
        error => shows.error,
        reauth => shows.reauth,
        console => super::admin::entry(p),
        next => view.path,
        has_passkeys => has_passkeys,
        user => context! {
            username => &user.username,
            email => &user.email,
            email_verified => user.email_verified,
            full_name => &user.full_name,
            role => user.role.as_str(),
            mfa_enabled => user.mfa_enabled,
            created => created,
            created_at => created_at,
        },
    };
    templates::render(
        page::product(state),
        view.template,
        context! { ..view.own, ..frame },
    )
}

/// An account page as a `GET` shows it, with the notice `code` names.
pub(super) async fn show_view(
    state: &AppState,
    signed: &SignedIn,
    headers: &HeaderMap,
    code: &str,
    view: View,
) -> Result<Page, ApiError> {
    let key = FormKey::of(headers, state.http().secure_cookies)?;
    let shows = Shows {
        notice: notice(code),
        ..Shows::default()
    };
    let html = render(state, signed, &key, &shows, view).await?;
    Ok(Page::new(StatusCode::OK, html).cookie(key.cookie()))
}

/// An account page again, with a refused form's sentence (and the
/// re-authentication form when `reauth` says why it is needed).
pub(super) async fn refused_view(
    state: &AppState,
    signed: &SignedIn,
    headers: &HeaderMap,
    refusal: Refusal,
    reauth: Option<&'static str>,
    view: View,
) -> Result<Response, ApiError> {
    let key = FormKey::of(headers, state.http().secure_cookies)?;
    let shows = Shows {
        notice: None,
        error: Some(&refusal.shown),
        reauth,
    };
    let html = render(state, signed, &key, &shows, view).await?;
    Ok(refusal.page(html))
}

/// The account page itself: the profile, the passkeys and the logins.
async fn overview(state: &AppState, signed: &SignedIn) -> Result<View, ApiError> {
    let p = &signed.principal;
    let mut sessions: Vec<SessionRow> = state
        .accounts()
        .my_sessions(p)
        .await?
        .into_iter()
        .map(|s| {
            let (created, created_at) = shown(from_unix_ms(s.created_at));
            let (last_used, last_used_at) = shown(from_unix_ms(s.last_used_at));
            SessionRow {
                id: s.id,
                device: device(s.user_agent.as_deref()),
                ip: s.ip,
                created,
                created_at,
                last_used,
                last_used_at,
                current: p.session_id == Some(s.id),
            }
        })
        .collect();
    // This device first, then the most recently used.
    sessions.sort_by(|a, b| {
        b.current
            .cmp(&a.current)
            .then_with(|| b.last_used_at.cmp(&a.last_used_at))
    });
    let others = sessions.iter().filter(|s| !s.current).count();
    let passkeys: Vec<PasskeyRow> = state
        .passkeys()
        .list(p)
        .await?
        .into_iter()
        .map(|k| {
            let (created, created_at) = shown(k.created_at);
            PasskeyRow {
                id: k.id,
                name: k.name,
                created,
                created_at,
                last_used: k.last_used_at.map(shown),
                backed_up: k.backed_up,
            }
        })
        .collect();
    Ok(View {
        template: "account.html",
        path: "/ui/account",
        own: context! {
            sessions => sessions,
            others => others,
            passkeys => passkeys,
        },
    })
}

/// The account page again, with a refused form's sentence.
pub(super) async fn refused(
    state: &AppState,
    signed: &SignedIn,
    headers: &HeaderMap,
    refusal: Refusal,
    reauth: Option<&'static str>,
) -> Result<Response, ApiError> {
    let view = overview(state, signed).await?;
    refused_view(state, signed, headers, refusal, reauth, view).await
}

/// `GET /ui/account`.
pub async fn show(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Query(q): Query<AccountQuery>,
) -> Result<Page, ApiError> {
    let view = overview(&state, &signed).await?;
    show_view(&state, &signed, &headers, &q.notice, view).await
}

/// `POST /ui/account/verify-email`: a new verification mail to the
/// account's own address (`EmailVerification::request_mine`, limited per
/// address as in the API).
pub async fn send_verification(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Form(form): Form<PlainForm>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    csrf::verify(&headers, Binding::login(p.session_id), &form.csrf)?;
    state.email_verification().request_mine(p).await?;
    Ok(page::see_other("/ui/account?notice=verification_sent").into_response())
}

/// `POST /ui/account/sessions/{id}/revoke`: one login ends; this device's
/// own ends like a sign-out.
pub async fn revoke_session(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Form(form): Form<PlainForm>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    csrf::verify(&headers, Binding::login(p.session_id), &form.csrf)?;
    state.accounts().revoke_my_session(p, id, &meta).await?;
    if p.session_id == Some(id) {
        return Ok(signed_out(&state, "/ui/sign-in?notice=signed_out"));
    }
    Ok(page::see_other("/ui/account?notice=session_revoked").into_response())
}

/// `POST /ui/account/sessions/revoke-others`: every login but this one.
pub async fn revoke_others(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Form(form): Form<PlainForm>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    csrf::verify(&headers, Binding::login(p.session_id), &form.csrf)?;
    state.accounts().revoke_other_sessions(p, &meta).await?;
    Ok(page::see_other("/ui/account?notice=others_revoked").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_for_people() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      HeadlessChrome/120.0.0.0 Safari/537.36";
        assert_eq!(device(Some(chrome)), "Chrome on Linux");
        assert_eq!(device(Some("curl/8.5.0")), "curl");
        assert_eq!(device(None), "Unknown device");
        let firefox =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0";
        assert_eq!(device(Some(firefox)), "Firefox on Windows");
    }
}
