//! Signing in (password, then a TOTP or backup code — or a passkey, by the
//! pages' script — when 2FA is on) and
//! signing out: `SignIn::login`, `SignIn::login_mfa` and `SignIn::logout`,
//! as `POST /api/v1/auth/login`, `/login/mfa` and `/logout` call them.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use gatehouse_core::service::{LoginId, LoginOutcome};
use http::{HeaderMap, StatusCode};
use minijinja::context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::csrf::{Binding, FormKey};
use super::page::{self, Page, Refusal, Shown};
use super::return_to::{self, HOME};
use super::session::{self, SignedIn};
use super::{csrf, templates};
use crate::error::ApiError;
use crate::extract::Meta;
use crate::handlers::auth::{LOGIN_MAX, PASSWORD_MAX};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignInQuery {
    return_to: String,
    notice: String,
}

/// A fixed sentence per notice code: the query never puts words on a page.
fn notice(code: &str) -> Option<&'static str> {
    match code {
        "signed_out" => Some("You are signed out."),
        "session_ended" => Some("Your session has ended. Sign in again to go on."),
        "password_reset" => Some("Your password is set. Sign in with it."),
        "password_changed" => Some(
            "Your password is changed and every session was signed out. Sign in with the new one.",
        ),
        _ => None,
    }
}

/// The `return_to` a form may follow, per `UI_RETURN_ORIGINS`.
pub(super) fn allowed<'a>(state: &AppState, raw: &'a str) -> Option<&'a str> {
    return_to::check(raw, &state.http().ui.return_origins)
}

struct SignInPage<'a> {
    return_to: Option<&'a str>,
    login: &'a str,
    notice: Option<&'static str>,
    error: Option<&'a Shown>,
}

fn render(state: &AppState, key: &FormKey, p: &SignInPage<'_>) -> Result<String, ApiError> {
    templates::render(
        page::product(state),
        "sign_in.html",
        context! {
            csrf => key.token(Binding::SignedOut),
            return_to => p.return_to,
            query => return_to::query(p.return_to),
            login => p.login,
            notice => p.notice,
            error => p.error,
        },
    )
}

/// `GET /ui/sign-in`.
pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Result<Page, ApiError> {
    let key = FormKey::of(&headers, state.http().secure_cookies)?;
    let html = render(
        &state,
        &key,
        &SignInPage {
            return_to: allowed(&state, &q.return_to),
            login: "",
            notice: notice(&q.notice),
            error: None,
        },
    )?;
    Ok(Page::new(StatusCode::OK, html).cookie(key.cookie()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignInForm {
    csrf: String,
    return_to: String,
    login: String,
    password: SecretString,
}

/// `POST /ui/sign-in`: the password step. Unknown account and wrong
/// password read the same, as in the API.
pub async fn submit(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, ApiError> {
    csrf::verify(&headers, Binding::SignedOut, &form.csrf)?;
    let key = FormKey::of(&headers, state.http().secure_cookies)?;
    let return_to = allowed(&state, &form.return_to);
    let login = form.login.trim();
    let refuse = |refusal: Refusal| -> Result<Response, ApiError> {
        let html = render(
            &state,
            &key,
            &SignInPage {
                return_to,
                login,
                notice: None,
                error: Some(&refusal.shown),
            },
        )?;
        Ok(refusal.page(html))
    };
    let password_len = form.password.expose_secret().chars().count();
    if login.is_empty() || password_len == 0 {
        return refuse(Refusal::status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter your email or username and your password.",
        ));
    }
    if login.chars().count() > LOGIN_MAX || password_len > PASSWORD_MAX {
        return refuse(Refusal::new(
            gatehouse_core::CoreError::InvalidCredentials,
            false,
        ));
    }
    let outcome = state
        .sign_in()
        .login(
            LoginId::EmailOrUsername(login.to_owned()),
            &form.password,
            &meta,
        )
        .await;
    match outcome {
        Ok(outcome) => signed_in(&state, &key, outcome, return_to),
        Err(e) => refuse(Refusal::new(e, show_fields(&state))),
    }
}

fn show_fields(state: &AppState) -> bool {
    state.http().expose_validation_details
}

/// A correct password: the login's cookies and the way on, or the second
/// step's form.
fn signed_in(
    state: &AppState,
    key: &FormKey,
    outcome: LoginOutcome,
    return_to: Option<&str>,
) -> Result<Response, ApiError> {
    match outcome {
        LoginOutcome::Tokens(pair, _) => {
            let [a, b] = session::set_login(state, &pair);
            Ok(page::see_other(return_to.unwrap_or(HOME))
                .cookie(a)
                .cookie(b)
                .into_response())
        }
        LoginOutcome::MfaRequired {
            mfa_token, passkey, ..
        } => {
            let html = render_code(state, key, &mfa_token, passkey, return_to, None)?;
            Ok(Page::new(StatusCode::OK, html).into_response())
        }
    }
}

fn render_code(
    state: &AppState,
    key: &FormKey,
    mfa_token: &str,
    passkey: bool,
    return_to: Option<&str>,
    error: Option<&Shown>,
) -> Result<String, ApiError> {
    templates::render(
        page::product(state),
        "sign_in_code.html",
        context! {
            csrf => key.token(Binding::SignedOut),
            return_to => return_to,
            query => return_to::query(return_to),
            mfa_token => mfa_token,
            passkey => passkey,
            error => error,
        },
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    csrf: String,
    return_to: String,
    mfa_token: String,
    code: SecretString,
    /// The account has a passkey: the page offers it again.
    passkey: String,
}

/// `POST /ui/sign-in/code`: the second step, a TOTP or an unused backup
/// code; failures count toward the account's lockout, as in the API.
pub async fn submit_code(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Result<Response, ApiError> {
    csrf::verify(&headers, Binding::SignedOut, &form.csrf)?;
    let key = FormKey::of(&headers, state.http().secure_cookies)?;
    let return_to = allowed(&state, &form.return_to);
    let code = form.code.expose_secret().trim();
    let outcome = if code.is_empty() {
        Err(Refusal::status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter the code from your authenticator app or a backup code.",
        ))
    } else {
        state
            .sign_in()
            .login_mfa(&form.mfa_token, code, &meta)
            .await
            .map_err(|e| Refusal::new(e, show_fields(&state)))
    };
    match outcome {
        Ok(outcome) => signed_in(&state, &key, outcome, return_to),
        Err(refusal) => {
            let html = render_code(
                &state,
                &key,
                &form.mfa_token,
                form.passkey == "1",
                return_to,
                Some(&refusal.shown),
            )?;
            Ok(refusal.page(html))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PlainForm {
    pub csrf: String,
}

/// `POST /ui/sign-out`: ends the login (its refresh tokens and access
/// tokens) and removes the cookies.
pub async fn sign_out(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Form(form): Form<PlainForm>,
) -> Result<Response, ApiError> {
    csrf::verify(
        &headers,
        Binding::login(signed.principal.session_id),
        &form.csrf,
    )?;
    state
        .sign_in()
        .logout(
            signed.refresh.as_deref().map(|t| t.expose_secret()),
            Some(signed.access.expose_secret()),
            &meta,
        )
        .await?;
    Ok(signed_out(&state, "/ui/sign-in?notice=signed_out"))
}

/// A redirect that removes the login's cookies.
pub(super) fn signed_out(state: &AppState, location: &str) -> Response {
    let [a, b] = session::clear(state);
    page::see_other(location)
        .cookie(a)
        .cookie(b)
        .into_response()
}
