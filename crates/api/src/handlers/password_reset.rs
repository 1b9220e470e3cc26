//! `/api/v1/auth/password-reset`: asking for a reset mail, and setting a new
//! password with its link's token or its code.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::Message;
use super::verification::{MAYBE_SENT, proof};
use crate::error::ApiError;
use crate::extract::{ApiJson, Meta};
use crate::responses::{BadRequest, TooManyRequests, ValidationFailed};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    #[schema(format = Email, max_length = 254, example = "jane@example.com")]
    email: String,
}

/// Sends a reset link and code (30 minutes) to `email` if an active account
/// has it. Always 202 with the same body, after the same work, whether or
/// not one does; limited per client IP (`RATE_LIMIT_PASSWORD_RESET`) and
/// per address (`RATE_LIMIT_MAIL_PER_ADDRESS`).
#[utoipa::path(
    post,
    path = "/api/v1/auth/password-reset/request",
    operation_id = "password_reset_request",
    tag = "auth",
    request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "Accepted (whether or not a mail is sent)", body = Message),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
    ),
)]
pub async fn request(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PasswordResetRequest>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    state.password_reset().request(&body.email).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Message {
            message: MAYBE_SENT,
        }),
    ))
}

/// The new password, with `token` from the link or `email` and `code` as
/// typed from the mail. Each wrong code counts toward the account's
/// lockout.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirm {
    /// The `token` parameter of the link.
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable = false)]
    token: Option<SecretString>,
    /// With `code`: the address the mail was sent to.
    #[serde(default)]
    #[schema(format = Email, max_length = 254, nullable = false)]
    email: Option<String>,
    /// With `email`: the code from the mail.
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable = false, example = "7KQ2-M9XD")]
    code: Option<SecretString>,
    /// Must pass the password policy.
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 128)]
    new_password: SecretString,
}

/// Sets a new password with a reset link's token or code (once). Every
/// login, earlier access token and API key of the account is revoked, and
/// a notice goes to its address. A weak password (400 `weak_password`)
/// leaves the token usable.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password-reset/confirm",
    operation_id = "password_reset_confirm",
    tag = "auth",
    request_body = PasswordResetConfirm,
    responses(
        (status = 200, description = "Password set; sign in again", body = Message),
        (status = 400, response = BadRequest),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
    ),
)]
pub async fn confirm(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<PasswordResetConfirm>,
) -> Result<Json<Message>, ApiError> {
    let proof = proof(body.token, body.email, body.code)?;
    state
        .password_reset()
        .confirm(&proof, &body.new_password, &meta)
        .await?;
    Ok(Json(Message {
        message: "Password reset; please sign in again",
    }))
}
