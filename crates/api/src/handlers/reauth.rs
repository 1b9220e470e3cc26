//! `POST /api/v1/auth/reauth`: the caller proves a factor again, renewing
//! their login's `auth_time` for the sensitive changes that require it.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use gatehouse_core::service::ReauthProof;
use gatehouse_core::service::passkeys::assertion_json;
use http::HeaderValue;
use http::header::CACHE_CONTROL;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::passkeys::{Ceremony, ceremony};
use crate::error::{ApiError, FieldError};
use crate::extract::{ApiJson, Auth, Meta};
use crate::responses::{Forbidden, NotFound, Unauthorized};
use crate::state::AppState;

const PASSWORD_MAX: usize = 1024;
const CODE_MAX: usize = 32;

/// Exactly one proof: `password`, `code` (a TOTP or backup code, only with
/// 2FA on), or `passkey` (an assertion in a ceremony from
/// `/auth/reauth/passkey/begin`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReauthRequest {
    /// The account's password.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password, nullable = false,
        min_length = 1, max_length = 1024)]
    password: Option<SecretString>,
    /// A current TOTP code or an unused backup code.
    #[serde(default)]
    #[schema(nullable = false, min_length = 1, max_length = 32)]
    code: Option<String>,
    #[serde(default)]
    #[schema(nullable = false)]
    passkey: Option<PasskeyProof>,
}

/// A passkey assertion for re-authentication.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyProof {
    #[schema(min_length = 1, max_length = 128)]
    ceremony: String,
    /// `PublicKeyCredential.toJSON()` of the assertion.
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

impl ReauthRequest {
    /// The one proof the body holds; both or neither is a 422.
    fn proof(self) -> Result<ReauthProof, ApiError> {
        let within = |field: &str, len: usize, max: usize| {
            if (1..=max).contains(&len) {
                Ok(())
            } else {
                Err(ApiError::validation(vec![FieldError::new(
                    field,
                    format!("must be 1 to {max} characters long"),
                )]))
            }
        };
        match (self.password, self.code, self.passkey) {
            (Some(password), None, None) => {
                within(
                    "password",
                    password.expose_secret().chars().count(),
                    PASSWORD_MAX,
                )?;
                Ok(ReauthProof::Password(password))
            }
            (None, Some(code), None) => {
                within("code", code.trim().chars().count(), CODE_MAX)?;
                Ok(ReauthProof::Code(code))
            }
            (None, None, Some(passkey)) => Ok(ReauthProof::Passkey {
                ceremony: passkey.ceremony,
                credential: Box::new(assertion_json(passkey.credential)?),
            }),
            _ => Err(ApiError::validation(vec![FieldError::new(
                "body",
                "must hold exactly one of password, code or passkey",
            )])),
        }
    }
}

/// A fresh access token of the same login (same `sid`), with a new
/// `auth_time`. The refresh token is unchanged.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReauthResponse {
    /// A JWT, sent as `Authorization: Bearer …`.
    access_token: String,
    #[schema(value_type = String, example = "bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
}

/// Re-authenticates the caller's login with the password or a second-factor
/// code. A wrong secret is 401 `invalid_credentials` and counts toward the
/// account lockout (429 `account_locked` once locked); API keys get 403
/// `api_key_not_allowed`.
#[utoipa::path(
    post,
    path = "/api/v1/auth/reauth",
    tag = "auth",
    request_body = ReauthRequest,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "A fresh access token of the same login", body = ReauthResponse),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
)]
pub async fn reauth(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(body): ApiJson<ReauthRequest>,
) -> Result<Response, ApiError> {
    let proof = body.proof()?;
    let token = state.sign_in().reauthenticate(&p, proof, &meta).await?;
    Ok((
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(ReauthResponse {
            access_token: token.access_token,
            token_type: "bearer",
            expires_in: token.expires_in,
        }),
    )
        .into_response())
}

/// Options for re-authenticating with one of the caller's passkeys (404
/// when the account has none); the assertion goes to `/auth/reauth` as
/// `passkey`.
#[utoipa::path(
    post,
    path = "/api/v1/auth/reauth/passkey/begin",
    operation_id = "reauth_passkey_begin",
    tag = "auth",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Options for `navigator.credentials.get()`", body = Ceremony),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
)]
pub async fn passkey_begin(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> Result<Response, ApiError> {
    Ok(ceremony(state.sign_in().begin_passkey_reauth(&p).await?))
}
