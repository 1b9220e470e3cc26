//! Passkeys in the pages. The pages' script runs the WebAuthn ceremonies
//! with the browser; these endpoints give it the options and take the
//! browser's answer, through the same use cases as `/api/v1/auth/passkeys/…`,
//! `/login/mfa/passkey/…`, `/auth/reauth` and `/users/me/passkeys`. They
//! take the page's session cookie, which scripts cannot read, and the
//! form token in an `X-CSRF-Token` header; no token ever reaches the
//! script. Renaming, removing and re-authenticating with a password or a
//! code are plain forms, which work without the script.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form, Json};
use gatehouse_core::CoreError;
use gatehouse_core::service::passkeys::{assertion_json, registration_json};
use gatehouse_core::service::{LoginOutcome, ReauthProof};
use http::header::{ACCEPT, CACHE_CONTROL, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::account;
use super::csrf::{self, Binding};
use super::page::{self, Refusal};
use super::return_to::HOME;
use super::session::{self, SignedIn};
use super::sign_in::allowed;
use crate::error::ApiError;
use crate::extract::{ApiJson, Meta};
use crate::handlers::passkeys::ceremony;
use crate::state::AppState;

/// The header the script sends the page's form token in.
const CSRF_HEADER: &str = "x-csrf-token";
/// The bounds `/api/v1/auth/reauth` puts on what it checks.
const PASSWORD_MAX: usize = 1024;
const CODE_MAX: usize = 32;
/// A wrong password or code at the step-up (the login's own account: no
/// enumeration to guard against, so it says which check failed).
const WRONG_SECRET: &str = "That password or code is not correct.";

fn header_token(headers: &HeaderMap) -> &str {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn login_of(signed: &SignedIn) -> Binding {
    Binding::login(signed.principal.session_id)
}

/// Where the script goes next.
#[derive(Debug, Serialize)]
struct Next<'a> {
    location: &'a str,
}

fn next(status: StatusCode, location: &str, cookies: &[Option<HeaderValue>]) -> Response {
    let mut res = (
        status,
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(Next { location }),
    )
        .into_response();
    for c in cookies.iter().flatten() {
        res.headers_mut().append(SET_COOKIE, c.clone());
    }
    res
}

/// A passkey login: the same cookies, bound to the same kind of login, as
/// a password sign-in sets.
fn signed_in(
    state: &AppState,
    outcome: LoginOutcome,
    return_to: Option<&str>,
) -> Result<Response, ApiError> {
    match outcome {
        LoginOutcome::Tokens(pair, _) => {
            let cookies = session::set_login(state, &pair);
            Ok(next(StatusCode::OK, return_to.unwrap_or(HOME), &cookies))
        }
        // A passkey with user verification is two factors in itself.
        LoginOutcome::MfaRequired { .. } => Err(ApiError::internal(
            "a passkey login asked for a second step",
        )),
    }
}

/// An assertion from `navigator.credentials.get()`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assertion {
    ceremony: String,
    /// `PublicKeyCredential.toJSON()`.
    #[schema(value_type = Object)]
    credential: serde_json::Value,
    #[serde(default)]
    return_to: String,
    /// On the second step: the password step's token.
    #[serde(default)]
    mfa_token: String,
}

/// `POST /ui/passkey/sign-in/begin`: options for any of the user's
/// passkeys (the button, and the browser's autofill).
pub async fn sign_in_begin(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    csrf::verify(&headers, Binding::SignedOut, header_token(&headers))?;
    Ok(ceremony(state.sign_in().begin_passkey_login(None).await?))
}

/// `POST /ui/passkey/sign-in/finish`: signed in, as `SignIn` decides.
pub async fn sign_in_finish(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Assertion>,
) -> Result<Response, ApiError> {
    csrf::verify(&headers, Binding::SignedOut, header_token(&headers))?;
    let credential = assertion_json(body.credential)?;
    let outcome = state
        .sign_in()
        .finish_passkey_login(&body.ceremony, &credential, &meta)
        .await?;
    signed_in(&state, outcome, allowed(&state, &body.return_to))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondStep {
    mfa_token: String,
}

/// `POST /ui/passkey/second-factor/begin`: the account's passkeys, in
/// place of the code after the password.
pub async fn second_factor_begin(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SecondStep>,
) -> Result<Response, ApiError> {
    csrf::verify(&headers, Binding::SignedOut, header_token(&headers))?;
    let challenge = state
        .sign_in()
        .begin_passkey_second_factor(&body.mfa_token)
        .await?;
    Ok(ceremony(challenge))
}

/// `POST /ui/passkey/second-factor/finish`: failures count toward the
/// account's lockout, as a wrong code does.
pub async fn second_factor_finish(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Assertion>,
) -> Result<Response, ApiError> {
    csrf::verify(&headers, Binding::SignedOut, header_token(&headers))?;
    let credential = assertion_json(body.credential)?;
    let outcome = state
        .sign_in()
        .finish_passkey_second_factor(&body.mfa_token, &body.ceremony, &credential, &meta)
        .await?;
    signed_in(&state, outcome, allowed(&state, &body.return_to))
}

/// `POST /ui/account/passkeys/begin`: options for a new passkey; 401
/// `reauthentication_required` when the login's last proof is too old.
pub async fn add_begin(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    csrf::verify(&headers, login_of(&signed), header_token(&headers))?;
    let challenge = state
        .passkeys()
        .begin_registration(&signed.principal)
        .await?;
    Ok(ceremony(challenge))
}

/// The browser's new credential and what to call it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPasskey {
    ceremony: String,
    #[serde(default)]
    name: String,
    /// `PublicKeyCredential.toJSON()`.
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

/// `POST /ui/account/passkeys/finish`: the passkey is added (and the
/// notice mailed) by `Passkeys::finish_registration`.
pub async fn add_finish(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewPasskey>,
) -> Result<Response, ApiError> {
    csrf::verify(&headers, login_of(&signed), header_token(&headers))?;
    let credential = registration_json(body.credential)?;
    let name = body.name.trim();
    state
        .passkeys()
        .finish_registration(
            &signed.principal,
            &body.ceremony,
            (!name.is_empty()).then_some(name),
            &credential,
            &meta,
        )
        .await?;
    Ok(next(
        StatusCode::CREATED,
        "/ui/account?notice=passkey_added",
        &[],
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RenameForm {
    csrf: String,
    name: String,
}

/// `POST /ui/account/passkeys/{id}/rename`.
pub async fn rename(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedIn>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Form(form): Form<RenameForm>,
) -> Result<Response, ApiError> {
    csrf::verify(&headers, login_of(&signed), &form.csrf)?;
    match state
        .passkeys()
        .rename(&signed.principal, id, form.name.trim())
        .await
    {
        Ok(_) => Ok(page::see_other("/ui/account?notice=passkey_renamed").into_response()),
        Err(CoreError::Validation(_)) => {
            let refusal = Refusal::status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "A passkey's name is 1 to 64 characters long.",
            );
            account::refused(&state, &signed, &headers, refusal, None).await
        }
        Err(e) => {
            let refusal = Refusal::new(e, state.http().expose_validation_details);
            account::refused(&state, &signed, &headers, refusal, None).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PlainForm {
    csrf: String,
}

/// `POST /ui/account/passkeys/{id}/remove`: a recent proof of a factor is
/// needed (the use case says when it is not); the page then asks for it.
pub async fn remove(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Form(form): Form<PlainForm>,
) -> Result<Response, ApiError> {
    csrf::verify(&headers, login_of(&signed), &form.csrf)?;
    match state.passkeys().remove(&signed.principal, id, &meta).await {
        Ok(()) => Ok(page::see_other("/ui/account?notice=passkey_removed").into_response()),
        Err(CoreError::ReauthenticationRequired) => {
            let refusal = Refusal::status(
                StatusCode::UNAUTHORIZED,
                "Removing a passkey needs a recent sign-in.",
            );
            let why = "Confirm it is you below, then remove the passkey again.";
            account::refused(&state, &signed, &headers, refusal, Some(why)).await
        }
        Err(e) => {
            let refusal = Refusal::new(e, state.http().expose_validation_details);
            account::refused(&state, &signed, &headers, refusal, None).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReauthForm {
    csrf: String,
    /// The account page to come back to (one of `account::next_page`'s).
    next: String,
    password: SecretString,
    code: String,
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// `POST /ui/account/reauth`: the password, or a TOTP or backup code,
/// proved again (`SignIn::reauthenticate`, counted toward the lockout);
/// the login's access cookie then carries the new `auth_time`. The
/// script sends it asking for JSON (204), a plain form gets the account.
pub async fn reauth(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Form(form): Form<ReauthForm>,
) -> Result<Response, ApiError> {
    csrf::verify(&headers, login_of(&signed), &form.csrf)?;
    let password = form.password.expose_secret();
    let code = form.code.trim();
    let why = "Confirm it is you to go on.";
    const MISSING: &str = "Enter your password, or a code from your authenticator app.";
    let proof = if !password.is_empty() {
        (password.chars().count() <= PASSWORD_MAX).then(|| ReauthProof::Password(form.password))
    } else if !code.is_empty() {
        (code.chars().count() <= CODE_MAX).then(|| ReauthProof::Code(code.to_owned()))
    } else {
        if wants_json(&headers) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                MISSING,
            ));
        }
        let refusal = Refusal::status(StatusCode::UNPROCESSABLE_ENTITY, MISSING);
        let view = account::view_of(&state, &signed, &form.next).await?;
        return account::refused_view(&state, &signed, &headers, refusal, Some(why), view).await;
    };
    let outcome = match proof {
        Some(proof) => {
            state
                .sign_in()
                .reauthenticate(&signed.principal, proof, &meta)
                .await
        }
        None => Err(CoreError::InvalidCredentials),
    };
    match outcome {
        Ok(token) => {
            let cookie = session::set_access(&state, &token.access_token);
            if wants_json(&headers) {
                let mut res = StatusCode::NO_CONTENT.into_response();
                res.headers_mut().extend(cookie.map(|c| (SET_COOKIE, c)));
                return Ok(res);
            }
            let next = account::next_page(&form.next);
            Ok(page::see_other(&format!("{next}?notice=reauthenticated"))
                .cookie(cookie)
                .into_response())
        }
        Err(CoreError::InvalidCredentials) if wants_json(&headers) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            WRONG_SECRET,
        )),
        Err(e) if wants_json(&headers) => Err(e.into()),
        Err(e) => {
            let refusal = match e {
                CoreError::InvalidCredentials => {
                    Refusal::status(StatusCode::UNAUTHORIZED, WRONG_SECRET)
                }
                e => Refusal::new(e, false),
            };
            let view = account::view_of(&state, &signed, &form.next).await?;
            account::refused_view(&state, &signed, &headers, refusal, Some(why), view).await
        }
    }
}

/// `POST /ui/account/reauth/passkey/begin`: options for proving the login
/// again with one of the account's passkeys.
pub async fn reauth_passkey_begin(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    csrf::verify(&headers, login_of(&signed), header_token(&headers))?;
    let challenge = state
        .sign_in()
        .begin_passkey_reauth(&signed.principal)
        .await?;
    Ok(ceremony(challenge))
}

/// `POST /ui/account/reauth/passkey/finish`: 204 with the renewed access
/// cookie.
pub async fn reauth_passkey_finish(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Assertion>,
) -> Result<Response, ApiError> {
    csrf::verify(&headers, login_of(&signed), header_token(&headers))?;
    let proof = ReauthProof::Passkey {
        ceremony: body.ceremony,
        credential: Box::new(assertion_json(body.credential)?),
    };
    let token = state
        .sign_in()
        .reauthenticate(&signed.principal, proof, &meta)
        .await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    let cookie = session::set_access(&state, &token.access_token);
    res.headers_mut().extend(cookie.map(|c| (SET_COOKIE, c)));
    Ok(res)
}
