//! `/api/v1/auth/verify-email`: asking for a verification mail, and
//! confirming what a mail carried — a verification or a change of address,
//! by the link's token or by the typed code with the address.

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use gatehouse_core::service::{Confirmed, Proof};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::Message;
use crate::error::{ApiError, FieldError};
use crate::extract::{ApiJson, MaybeAuth, Meta, is_json_content_type, parse_json, read_body};
use crate::responses::{BadRequest, TooManyRequests, Unauthorized, ValidationFailed};
use crate::state::AppState;

/// The same answer whether or not a mail was sent.
pub(super) const MAYBE_SENT: &str =
    "If an account can receive it, a message is on its way to the address";

/// Without a Bearer token: the address to send the link to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    #[schema(format = Email, max_length = 254, example = "jane@example.com")]
    email: String,
}

/// An optional JSON body: present only when no Bearer token names the
/// account.
#[derive(Debug)]
pub struct OptionalBody(Option<VerifyEmailRequest>);

impl FromRequest<AppState> for OptionalBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = is_json_content_type(&req);
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        if !is_json {
            return Err(ApiError::unsupported_media_type(
                "Expected Content-Type: application/json",
            ));
        }
        parse_json(&bytes).map(|body| Self(Some(body)))
    }
}

/// Sends a new verification link and code (24 hours; the code 30
/// minutes): to the signed-in caller, or — without credentials — to
/// `email`. Always 202 with the same body, whether or not an unverified
/// account has the address; limited per client IP and per address.
#[utoipa::path(
    post,
    path = "/api/v1/auth/verify-email/request",
    operation_id = "verify_email_request",
    tag = "auth",
    request_body(content = Option<VerifyEmailRequest>, description = "Required without a Bearer token"),
    security((), ("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 202, description = "Accepted (whether or not a mail is sent)", body = Message),
        (status = 401, response = Unauthorized),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
    ),
)]
pub async fn request(
    State(state): State<AppState>,
    MaybeAuth(principal): MaybeAuth,
    OptionalBody(body): OptionalBody,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let verification = state.email_verification();
    match (principal, body) {
        (Some(p), _) => verification.request_mine(&p).await?,
        (None, Some(body)) => verification.request_by_address(&body.email).await?,
        (None, None) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "email",
                "is required without a Bearer token",
            )]));
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(Message {
            message: MAYBE_SENT,
        }),
    ))
}

/// What a mail carried: `token` from the link, or `email` and `code` as
/// typed (the code from the mail, `XXXX-XXXX`; case, spaces and dashes do
/// not matter). Each wrong code counts toward the account's lockout.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmEmail {
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
}

/// The proof in a confirmation body: exactly one of `token`, or `email`
/// with `code`.
pub(super) fn proof(
    token: Option<SecretString>,
    email: Option<String>,
    code: Option<SecretString>,
) -> Result<Proof, ApiError> {
    match (token, email, code) {
        (Some(token), None, None) => Ok(Proof::Token(token)),
        (None, Some(email), Some(code)) => Ok(Proof::Code { email, code }),
        (None, _, None) => Err(ApiError::validation(vec![FieldError::new(
            "token",
            "give the token from the link, or the email and the code",
        )])),
        (None, None, Some(_)) => Err(ApiError::validation(vec![FieldError::new(
            "email",
            "is required with a code",
        )])),
        (Some(_), _, _) => Err(ApiError::validation(vec![FieldError::new(
            "token",
            "give either the token or the email and the code, not both",
        )])),
    }
}

/// Confirms an address: a verification (sets `email_verified`) or a change
/// of address (the account moves to the new, verified address and the old
/// one is told). The link's token or the code works once.
#[utoipa::path(
    post,
    path = "/api/v1/auth/verify-email/confirm",
    operation_id = "verify_email_confirm",
    tag = "auth",
    request_body = ConfirmEmail,
    responses(
        (status = 200, description = "Verified, or the address changed", body = Message),
        (status = 400, response = BadRequest),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
    ),
)]
pub async fn confirm(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<ConfirmEmail>,
) -> Result<Json<Message>, ApiError> {
    let proof = proof(body.token, body.email, body.code)?;
    let message = match state.email_verification().confirm(&proof, &meta).await? {
        Confirmed::Verified => "Email address verified",
        Confirmed::EmailChanged => "Email address changed",
    };
    Ok(Json(Message { message }))
}
