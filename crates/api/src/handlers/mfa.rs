//! `/api/v1/auth/2fa` (setup, enable, disable) and `/api/v1/auth/login/mfa`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::CACHE_CONTROL;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{LoginResponse, Message, login_response};
use crate::error::ApiError;
use crate::extract::{ApiJson, Meta, Require, perm};
use crate::responses::{BadRequest, Forbidden, ReauthenticationRequired, Unauthorized};
use crate::state::AppState;

fn no_store<T: Serialize>(body: T) -> Response {
    (
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response()
}

/// A new TOTP secret to scan or type.
#[derive(Debug, Serialize, ToSchema)]
pub struct SetupResponse {
    /// Base32, for typing into an authenticator app.
    secret: String,
    otpauth_url: String,
    /// The URL as a QR code (SVG markup).
    qr_svg: String,
}

/// Starts setup: a secret, its `otpauth://` URL and a QR code. 2FA is on
/// only after `enable` with a first valid code.
#[utoipa::path(
    post,
    path = "/api/v1/auth/2fa/setup",
    operation_id = "mfa_setup",
    tag = "auth",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Secret, URL and QR code (shown once)", body = SetupResponse),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
    ),
)]
pub async fn setup(
    State(state): State<AppState>,
    Require(p, ..): Require<perm::SelfWrite>,
) -> Result<Response, ApiError> {
    let setup = state.two_factor().setup(&p).await?;
    Ok(no_store(SetupResponse {
        secret: setup.secret.expose_secret().to_owned(),
        otpauth_url: setup.otpauth_url.expose_secret().to_owned(),
        qr_svg: setup.qr_svg,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The 6-digit code shown by the authenticator app.
    #[schema(min_length = 1, max_length = 32)]
    code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackupCodes {
    /// Ten single-use codes, shown only now.
    backup_codes: Vec<String>,
}

/// Turns 2FA on with a first valid code; returns ten backup codes. Needs a
/// recent sign-in (`auth_time` within `REAUTH_MAX_AGE_MINUTES`).
#[utoipa::path(
    post,
    path = "/api/v1/auth/2fa/enable",
    operation_id = "mfa_enable",
    tag = "auth",
    request_body = CodeRequest,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Enabled", body = BackupCodes),
        (status = 401, response = ReauthenticationRequired),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
    ),
)]
pub async fn enable(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::SelfWrite>,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<Response, ApiError> {
    let codes = state.two_factor().enable(&p, &body.code, &meta).await?;
    Ok(no_store(BackupCodes {
        backup_codes: codes,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    /// A current TOTP code or an unused backup code.
    #[schema(min_length = 1, max_length = 32)]
    code: String,
}

/// Turns 2FA off (password and a current code required). Needs a recent
/// sign-in (`auth_time` within `REAUTH_MAX_AGE_MINUTES`).
#[utoipa::path(
    post,
    path = "/api/v1/auth/2fa/disable",
    operation_id = "mfa_disable",
    tag = "auth",
    request_body = DisableRequest,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Disabled", body = Message),
        (status = 401, response = ReauthenticationRequired),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
    ),
)]
pub async fn disable(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::SelfWrite>,
    ApiJson(body): ApiJson<DisableRequest>,
) -> Result<Json<Message>, ApiError> {
    state
        .two_factor()
        .disable(&p, &body.password, &body.code, &meta)
        .await?;
    Ok(Json(Message {
        message: "Two-factor authentication disabled",
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginMfaRequest {
    /// From the first login step.
    #[schema(min_length = 1, max_length = 4096)]
    mfa_token: String,
    /// A TOTP code or an unused backup code.
    #[schema(min_length = 1, max_length = 32)]
    code: String,
}

/// The second login step: a wrong, replayed or expired code, or an expired
/// `mfa_token`, is 401 `invalid_mfa_code`.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login/mfa",
    operation_id = "login_mfa",
    tag = "auth",
    request_body = LoginMfaRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse,
            headers(("Set-Cookie" = String, description = "The `refresh_token` cookie"))),
        (status = 401, response = Unauthorized),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<LoginMfaRequest>,
) -> Result<Response, ApiError> {
    let outcome = state
        .sign_in()
        .login_mfa(&body.mfa_token, &body.code, &meta)
        .await?;
    Ok(login_response(&state, outcome))
}
