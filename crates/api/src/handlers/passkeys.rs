//! Passkeys (WebAuthn): registering one (`/api/v1/auth/passkeys/register/…`),
//! signing in with one (`/api/v1/auth/passkeys/login/…`), one as the second
//! login step (`/api/v1/auth/login/mfa/passkey/…`), and the caller's list
//! (`/api/v1/users/me/passkeys`).
//!
//! Each ceremony is two requests: `begin` answers `options` — the JSON
//! `PublicKeyCredential.parseCreationOptionsFromJSON` /
//! `parseRequestOptionsFromJSON` take under `publicKey` — and a `ceremony`
//! handle; `finish` takes the handle and the browser's
//! `PublicKeyCredential.toJSON()` as `credential`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_core::service::passkeys::{Challenge, assertion_json, registration_json};
use gatehouse_core::service::{LoginOutcome, PasskeyView, Registration};
use http::HeaderValue;
use http::header::CACHE_CONTROL;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{LoginResponse, login_response};
use super::verification::proof;
use crate::error::ApiError;
use crate::extract::{ApiJson, Meta, PathId, Require, perm};
use crate::responses::{
    BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized, ValidationFailed,
};
use crate::state::AppState;

/// A begun ceremony, as [`Ceremony`] documents it.
#[derive(Debug, Serialize)]
struct CeremonyResponse<T> {
    ceremony: String,
    expires_in: u64,
    options: T,
}

pub(crate) fn ceremony<T: Serialize>(challenge: Challenge<T>) -> Response {
    (
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(CeremonyResponse {
            ceremony: challenge.ceremony,
            expires_in: challenge.expires_in,
            options: challenge.options,
        }),
    )
        .into_response()
}

/// The documented shape of a begun ceremony.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ceremony {
    /// Pass back to `finish`; valid once, for `expires_in` seconds, to the
    /// client that began it.
    ceremony: String,
    expires_in: u64,
    /// For `navigator.credentials.create()` / `.get()`: `{publicKey: …}`
    /// with binary fields in base64url, as the WebAuthn JSON forms have them.
    #[schema(value_type = Object)]
    options: serde_json::Value,
}

/// A passkey, never its key material.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyBody {
    id: Uuid,
    name: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    last_used_at: Option<OffsetDateTime>,
    /// The authenticator may sync it to the owner's other devices.
    backup_eligible: bool,
    /// It is synced (backed up), as last reported.
    backed_up: bool,
    /// How the browser said it reaches the authenticator (`internal`, `usb`, `hybrid`…).
    transports: Vec<String>,
}

impl From<PasskeyView> for PasskeyBody {
    fn from(v: PasskeyView) -> Self {
        Self {
            id: v.id,
            name: v.name,
            created_at: v.created_at,
            last_used_at: v.last_used_at,
            backup_eligible: v.backup_eligible,
            backed_up: v.backed_up,
            transports: v.transports,
        }
    }
}

/// Starts registering a passkey for the caller.
#[utoipa::path(
    post,
    path = "/api/v1/auth/passkeys/register/begin",
    operation_id = "passkey_register_begin",
    tag = "passkeys",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Options for `navigator.credentials.create()`", body = Ceremony),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn register_begin(
    State(state): State<AppState>,
    Require(p, ..): Require<perm::SelfWrite>,
) -> Result<Response, ApiError> {
    Ok(ceremony(state.passkeys().begin_registration(&p).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterFinish {
    #[schema(min_length = 1, max_length = 128)]
    ceremony: String,
    /// What the owner calls it (default `Passkey`).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64)]
    name: Option<String>,
    /// `PublicKeyCredential.toJSON()` of the new credential.
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

/// Verifies the authenticator's response and adds the passkey; a notice is
/// mailed to the account's address.
#[utoipa::path(
    post,
    path = "/api/v1/auth/passkeys/register/finish",
    operation_id = "passkey_register_finish",
    tag = "passkeys",
    request_body = RegisterFinish,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 201, description = "Added", body = PasskeyBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn register_finish(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::SelfWrite>,
    ApiJson(body): ApiJson<RegisterFinish>,
) -> Result<(StatusCode, Json<PasskeyBody>), ApiError> {
    let credential = registration_json(body.credential)?;
    let view = state
        .passkeys()
        .finish_registration(&p, &body.ceremony, body.name.as_deref(), &credential, &meta)
        .await?;
    Ok((StatusCode::CREATED, Json(view.into())))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBegin {
    /// The account, when the user typed it; without it any of the user's
    /// passkeys may answer (username-less, and autofill with
    /// `mediation: "conditional"`).
    #[serde(default)]
    #[schema(max_length = 254)]
    email: Option<String>,
}

/// Starts a passkey sign-in.
#[utoipa::path(
    post,
    path = "/api/v1/auth/passkeys/login/begin",
    operation_id = "passkey_login_begin",
    tag = "passkeys",
    request_body = LoginBegin,
    responses(
        (status = 200, description = "Options for `navigator.credentials.get()`", body = Ceremony),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
    ),
)]
pub async fn login_begin(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginBegin>,
) -> Result<Response, ApiError> {
    let challenge = state
        .sign_in()
        .begin_passkey_login(body.email.as_deref())
        .await?;
    Ok(ceremony(challenge))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertionFinish {
    #[schema(min_length = 1, max_length = 128)]
    ceremony: String,
    /// `PublicKeyCredential.toJSON()` of the assertion.
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

/// Finishes a passkey sign-in: the same tokens (and refresh cookie) as a
/// password login. Anything wrong is 401 `invalid_credentials`.
#[utoipa::path(
    post,
    path = "/api/v1/auth/passkeys/login/finish",
    operation_id = "passkey_login_finish",
    tag = "passkeys",
    request_body = AssertionFinish,
    responses(
        (status = 200, description = "Signed in", body = LoginResponse),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
    ),
)]
pub async fn login_finish(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<AssertionFinish>,
) -> Result<Response, ApiError> {
    let credential = assertion_json(body.credential)?;
    let outcome = state
        .sign_in()
        .finish_passkey_login(&body.ceremony, &credential, &meta)
        .await?;
    Ok(login_response(&state, outcome))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorBegin {
    /// From the password step's answer.
    #[schema(min_length = 1, max_length = 4096)]
    mfa_token: String,
}

/// The second login step with a passkey instead of a code: options listing
/// the account's passkeys.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login/mfa/passkey/begin",
    operation_id = "passkey_mfa_begin",
    tag = "passkeys",
    request_body = SecondFactorBegin,
    responses(
        (status = 200, description = "Options for `navigator.credentials.get()`", body = Ceremony),
        (status = 401, response = Unauthorized),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
    ),
)]
pub async fn mfa_begin(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SecondFactorBegin>,
) -> Result<Response, ApiError> {
    let challenge = state
        .sign_in()
        .begin_passkey_second_factor(&body.mfa_token)
        .await?;
    Ok(ceremony(challenge))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorFinish {
    #[schema(min_length = 1, max_length = 4096)]
    mfa_token: String,
    #[schema(min_length = 1, max_length = 128)]
    ceremony: String,
    /// `PublicKeyCredential.toJSON()` of the assertion.
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

/// Finishes the second step with a passkey; failures count toward the
/// account's lockout (401 `invalid_mfa_code`).
#[utoipa::path(
    post,
    path = "/api/v1/auth/login/mfa/passkey/finish",
    operation_id = "passkey_mfa_finish",
    tag = "passkeys",
    request_body = SecondFactorFinish,
    responses(
        (status = 200, description = "Signed in", body = LoginResponse),
        (status = 401, response = Unauthorized),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
    ),
)]
pub async fn mfa_finish(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<SecondFactorFinish>,
) -> Result<Response, ApiError> {
    let credential = assertion_json(body.credential)?;
    let outcome = state
        .sign_in()
        .finish_passkey_second_factor(&body.mfa_token, &body.ceremony, &credential, &meta)
        .await?;
    Ok(login_response(&state, outcome))
}

/// The caller's passkeys.
#[utoipa::path(
    get,
    path = "/api/v1/users/me/passkeys",
    operation_id = "list_passkeys",
    tag = "passkeys",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Passkeys, oldest first", body = Vec<PasskeyBody>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Require(p, ..): Require<perm::SelfRead>,
) -> Result<Json<Vec<PasskeyBody>>, ApiError> {
    let views = state.passkeys().list(&p).await?;
    Ok(Json(views.into_iter().map(PasskeyBody::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    #[schema(min_length = 1, max_length = 64)]
    name: String,
}

/// Renames one of the caller's passkeys.
#[utoipa::path(
    patch,
    path = "/api/v1/users/me/passkeys/{id}",
    operation_id = "rename_passkey",
    tag = "passkeys",
    params(("id" = Uuid, Path, description = "Passkey id")),
    request_body = Rename,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Renamed", body = PasskeyBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn rename(
    State(state): State<AppState>,
    Require(p, ..): Require<perm::SelfWrite>,
    PathId(id): PathId,
    ApiJson(body): ApiJson<Rename>,
) -> Result<Json<PasskeyBody>, ApiError> {
    let view = state.passkeys().rename(&p, id, &body.name).await?;
    Ok(Json(view.into()))
}

/// Removes one of the caller's passkeys; an account without a password
/// keeps its last one (409 `last_factor`).
#[utoipa::path(
    delete,
    path = "/api/v1/users/me/passkeys/{id}",
    operation_id = "remove_passkey",
    tag = "passkeys",
    params(("id" = Uuid, Path, description = "Passkey id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn remove(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::SelfWrite>,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    state.passkeys().remove(&p, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordlessRegistration {
    #[schema(
        min_length = 3,
        max_length = 50,
        pattern = "^[A-Za-z0-9_-]+$",
        example = "jane_doe"
    )]
    username: String,
    #[schema(format = Email, max_length = 254, example = "jane@example.com")]
    email: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    full_name: Option<String>,
}

/// Registers an account without a password. Its verification mail's token
/// (or code) then adds its first passkey (`/auth/passkeys/signup/…`); until
/// then it cannot sign in.
#[utoipa::path(
    post,
    path = "/api/v1/auth/register/passkey",
    operation_id = "register_passwordless",
    tag = "passkeys",
    request_body = PasswordlessRegistration,
    responses(
        (status = 201, description = "The new user", body = gatehouse_core::user::User),
        (status = 400, response = BadRequest),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
    ),
)]
pub async fn register_passwordless(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<PasswordlessRegistration>,
) -> Result<(StatusCode, Json<gatehouse_core::user::User>), ApiError> {
    let input = Registration {
        username: body.username,
        email: body.email,
        password: SecretString::from(String::new()),
        full_name: body.full_name,
    };
    let user = state.accounts().register_passwordless(input, &meta).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupBegin {
    /// The `token` parameter of the verification link.
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

/// Options for the first passkey of an account registered without a
/// password, proven by its verification mail (not spent yet).
#[utoipa::path(
    post,
    path = "/api/v1/auth/passkeys/signup/begin",
    operation_id = "passkey_signup_begin",
    tag = "passkeys",
    request_body = SignupBegin,
    responses(
        (status = 200, description = "Options for `navigator.credentials.create()`", body = Ceremony),
        (status = 400, response = BadRequest),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
    ),
)]
pub async fn signup_begin(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<SignupBegin>,
) -> Result<Response, ApiError> {
    let proof = proof(body.token, body.email, body.code)?;
    let challenge = state.passkeys().begin_signup(&proof, &meta).await?;
    Ok(ceremony(challenge))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupFinish {
    /// The same proof as at `begin`.
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable = false)]
    token: Option<SecretString>,
    #[serde(default)]
    #[schema(format = Email, max_length = 254, nullable = false)]
    email: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable = false)]
    code: Option<SecretString>,
    #[schema(min_length = 1, max_length = 128)]
    ceremony: String,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64)]
    name: Option<String>,
    /// `PublicKeyCredential.toJSON()` of the new credential.
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

/// Adds the first passkey, verifies the address (the mail's token is spent)
/// and signs the account in: the tokens and cookie of a login.
#[utoipa::path(
    post,
    path = "/api/v1/auth/passkeys/signup/finish",
    operation_id = "passkey_signup_finish",
    tag = "passkeys",
    request_body = SignupFinish,
    responses(
        (status = 200, description = "Signed in", body = LoginResponse),
        (status = 400, response = BadRequest),
        (status = 409, response = Conflict),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
    ),
)]
pub async fn signup_finish(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<SignupFinish>,
) -> Result<Response, ApiError> {
    let proof = proof(body.token, body.email, body.code)?;
    let credential = registration_json(body.credential)?;
    let (pair, user) = state
        .passkeys()
        .finish_signup(
            &proof,
            &body.ceremony,
            body.name.as_deref(),
            &credential,
            &meta,
        )
        .await?;
    Ok(login_response(&state, LoginOutcome::Tokens(pair, user)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// Must pass the password policy.
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 128)]
    new_password: SecretString,
}

/// Gives an account without a password one (recent `auth_time`, e.g. from a
/// passkey); 409 when it has one (change it with `change-password`). Every
/// login of the user ends, as with a change.
#[utoipa::path(
    put,
    path = "/api/v1/users/me/password",
    operation_id = "add_password",
    tag = "passkeys",
    request_body = NewPassword,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 204, description = "Added; sign in again"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn add_password(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::SelfWrite>,
    ApiJson(body): ApiJson<NewPassword>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts()
        .add_password(&p, &body.new_password, &meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the caller's password (recent `auth_time`): the account signs in
/// with its passkeys alone from then on; 409 `last_factor` without one.
/// Every login of the user ends, as with a change.
#[utoipa::path(
    delete,
    path = "/api/v1/users/me/password",
    operation_id = "remove_password",
    tag = "passkeys",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 204, description = "Removed; sign in with a passkey"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ),
)]
pub async fn remove_password(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::SelfWrite>,
) -> Result<StatusCode, ApiError> {
    state.accounts().remove_password(&p, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
