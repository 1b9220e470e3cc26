//! The two-factor page: set up (the QR code and the secret, shown again
//! until the first code proves them), turn on (the ten backup codes,
//! shown once) and turn off, through `TwoFactor` as
//! `/api/v1/auth/2fa/{setup,enable,disable}` do.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gatehouse_core::CoreError;
use http::{HeaderMap, StatusCode};
use minijinja::context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::account::{self, AccountQuery, View};
use super::csrf::{self, Binding};
use super::page::{Page, Refusal, see_other};
use super::session::SignedIn;
use super::sign_in::PlainForm;
use crate::error::ApiError;
use crate::extract::Meta;
use crate::state::AppState;

const PATH: &str = "/ui/account/2fa";

/// The page: the setup under way (if any), or the backup codes just made.
pub(super) async fn view(
    state: &AppState,
    signed: &SignedIn,
    backup_codes: Option<&[String]>,
) -> Result<View, ApiError> {
    let pending = match backup_codes {
        Some(_) => None,
        None => state.two_factor().pending(&signed.principal).await?,
    };
    let setup = pending.map(|s| {
        // Groups of four, as authenticator apps show a typed key.
        let secret = s.secret.expose_secret();
        let grouped: Vec<&str> = secret
            .as_bytes()
            .chunks(4)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        context! {
            qr => format!("data:image/svg+xml;base64,{}", STANDARD.encode(&s.qr_svg)),
            secret => grouped.join(" "),
        }
    });
    Ok(View {
        template: "two_factor.html",
        path: PATH,
        own: context! { setup => setup, backup_codes => backup_codes },
    })
}

/// `GET /ui/account/2fa`.
pub async fn show(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Query(q): Query<AccountQuery>,
) -> Result<Page, ApiError> {
    let view = view(&state, &signed, None).await?;
    account::show_view(&state, &signed, &headers, &q.notice, view).await
}

/// The page again with a refused sentence; `reauth` when the use case
/// asked for a recent sign-in.
async fn refused(
    state: &AppState,
    signed: &SignedIn,
    headers: &HeaderMap,
    err: CoreError,
    what: &'static str,
) -> Result<Response, ApiError> {
    let (refusal, reauth) = match err {
        CoreError::ReauthenticationRequired => (
            Refusal::status(StatusCode::UNAUTHORIZED, what),
            Some("Confirm it is you below, then try again."),
        ),
        CoreError::InvalidMfaCode => (
            Refusal::status(
                StatusCode::UNAUTHORIZED,
                "That code is not right. Enter the code your app shows now.",
            ),
            None,
        ),
        e => (
            Refusal::new(e, state.http().expose_validation_details),
            None,
        ),
    };
    let view = view(state, signed, None).await?;
    account::refused_view(state, signed, headers, refusal, reauth, view).await
}

/// `POST /ui/account/2fa/setup`: a new secret, not active until a code
/// from it turns 2FA on.
pub async fn setup(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Form(form): Form<PlainForm>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    csrf::verify(&headers, Binding::login(p.session_id), &form.csrf)?;
    match state.two_factor().setup(p).await {
        Ok(_) => Ok(see_other(PATH).into_response()),
        Err(e) => {
            let what = "Setting up two-factor authentication needs a recent sign-in.";
            refused(&state, &signed, &headers, e, what).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

/// `POST /ui/account/2fa/enable`: the first code turns 2FA on; the backup
/// codes are on this answer only (it is never stored by a cache).
pub async fn enable(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    csrf::verify(&headers, Binding::login(p.session_id), &form.csrf)?;
    match state.two_factor().enable(p, form.code.trim(), &meta).await {
        Ok(codes) => {
            let view = view(&state, &signed, Some(&codes)).await?;
            Ok(
                account::show_view(&state, &signed, &headers, "mfa_enabled", view)
                    .await?
                    .into_response(),
            )
        }
        Err(e) => {
            let what = "Turning on two-factor authentication needs a recent sign-in.";
            refused(&state, &signed, &headers, e, what).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DisableForm {
    csrf: String,
    password: SecretString,
    code: String,
}

/// `POST /ui/account/2fa/disable`: the password and a current code (or a
/// backup code), after a recent sign-in.
pub async fn disable(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Form(form): Form<DisableForm>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    csrf::verify(&headers, Binding::login(p.session_id), &form.csrf)?;
    match state
        .two_factor()
        .disable(p, &form.password, form.code.trim(), &meta)
        .await
    {
        Ok(()) => Ok(see_other(&format!("{PATH}?notice=mfa_disabled")).into_response()),
        Err(e) => {
            let what = "Turning off two-factor authentication needs a recent sign-in.";
            refused(&state, &signed, &headers, e, what).await
        }
    }
}
