//! The one API error type and its RFC 9457 rendering.
//!
//! Handlers return [`ApiError`]; its `IntoResponse` records a [`Problem`] in
//! the response extensions, and the problem middleware renders every error
//! response (ours, axum's, tower-http's) as `application/problem+json` with
//! the request id. 5xx causes travel in an [`InternalCause`] extension and are
//! logged once, never sent.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use gatehouse_core::CoreError;
use http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Serialize;

/// One field that failed validation; the offending value is never echoed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    /// The JSON field name; nested fields are dotted (`a.b`).
    #[schema(example = "username")]
    pub field: String,
    #[schema(example = "must be 3 to 50 characters long")]
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What the client will be told, minus the request id (added at the edge).
#[derive(Debug, Clone)]
pub struct Problem {
    pub code: &'static str,
    pub detail: Cow<'static, str>,
    pub errors: Option<Vec<FieldError>>,
    /// Extra members (RFC 9457 §3.2), e.g. readiness checks.
    pub extensions: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Problem {
    /// The problem for an error response nobody described (a layer's bare
    /// 413, axum's 405, a caught panic).
    pub fn for_status(status: StatusCode) -> Self {
        let (code, detail) = match status {
            StatusCode::BAD_REQUEST => ("bad_request", "The request could not be understood"),
            StatusCode::UNAUTHORIZED => ("unauthorized", "Authentication is required"),
            StatusCode::FORBIDDEN => ("forbidden", "You do not have permission to do this"),
            StatusCode::NOT_FOUND => ("not_found", "The requested resource was not found"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "This method is not allowed on this resource",
            ),
            StatusCode::REQUEST_TIMEOUT => ("request_timeout", "The request took too long"),
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "The request body is too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "The request body has an unsupported media type",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => ("validation_error", "The request is invalid"),
            StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "Too many requests"),
            StatusCode::SERVICE_UNAVAILABLE => (
                "service_unavailable",
                "The service is temporarily unavailable",
            ),
            s if s.is_server_error() => ("internal_error", "An unexpected error occurred"),
            _ => ("error", "The request failed"),
        };
        Self {
            code,
            detail: Cow::Borrowed(detail),
            errors: None,
            extensions: None,
        }
    }
}

/// The hidden cause of a 5xx, for the log only.
#[derive(Clone)]
pub struct InternalCause(pub Arc<dyn StdError + Send + Sync>);

impl fmt::Debug for InternalCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InternalCause(..)")
    }
}

impl fmt::Display for InternalCause {
    /// The whole `source()` chain, outermost first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

/// An error as the API reports it. Boxed: errors are rare, and a small
/// `Result` keeps the happy path cheap.
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    problem: Problem,
    headers: HeaderMap,
    cause: Option<InternalCause>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self(Box::new(Inner {
            status,
            problem: Problem {
                code,
                detail: detail.into(),
                errors: None,
                extensions: None,
            },
            headers: HeaderMap::new(),
            cause: None,
        }))
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn code(&self) -> &'static str {
        self.0.problem.code
    }

    /// 422 with the list of failing fields.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "The request is invalid",
        );
        err.0.problem.errors = Some(errors);
        err
    }

    pub fn not_found() -> Self {
        let p = Problem::for_status(StatusCode::NOT_FOUND);
        Self::new(StatusCode::NOT_FOUND, p.code, p.detail)
    }

    pub fn payload_too_large() -> Self {
        let p = Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE);
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, p.code, p.detail)
    }

    pub fn unsupported_media_type(detail: &'static str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            detail,
        )
    }

    /// 401 with `WWW-Authenticate: Bearer` (RFC 6750 §3).
    pub fn unauthorized(code: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
            .with_header(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "You do not have permission to do this",
        )
    }

    /// 429 with `Retry-After` in whole seconds (at least 1).
    pub fn too_many_requests(
        code: &'static str,
        detail: &'static str,
        retry_after_secs: u64,
    ) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, detail)
            .with_header(RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)))
    }

    /// 500 whose cause is logged, never sent.
    pub fn internal(cause: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        let p = Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR);
        let mut err = Self::new(StatusCode::INTERNAL_SERVER_ERROR, p.code, p.detail);
        err.0.cause = Some(InternalCause(Arc::from(cause.into())));
        err
    }

    pub fn with_header(mut self, name: http::HeaderName, value: HeaderValue) -> Self {
        self.0.headers.insert(name, value);
        self
    }

    pub fn with_extension(mut self, key: &str, value: serde_json::Value) -> Self {
        self.0
            .problem
            .extensions
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value);
        self
    }
}

impl From<CoreError> for ApiError {
    fn from(err: CoreError) -> Self {
        match err {
            CoreError::Validation(problems) => Self::validation(
                problems
                    .into_iter()
                    .map(|p| FieldError::new(p.field, p.message))
                    .collect(),
            ),
            CoreError::WeakPassword(reason) => {
                Self::new(StatusCode::BAD_REQUEST, "weak_password", reason)
            }
            // Same answer whichever field collided (no account enumeration).
            CoreError::RegistrationFailed => Self::new(
                StatusCode::BAD_REQUEST,
                "registration_failed",
                "Unable to create account with provided information",
            ),
            CoreError::Conflict => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                "The resource conflicts with an existing one",
            ),
            CoreError::InvalidCredentials
            | CoreError::InvalidToken
            | CoreError::InvalidRefreshToken
            | CoreError::InvalidMfaCode => Self::credentials_refused(&err),
            CoreError::ReauthenticationRequired => Self::reauthentication_required(),
            CoreError::AccountLocked { retry_after } => Self::too_many_requests(
                "account_locked",
                "Too many failed login attempts; try again later",
                retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0),
            ),
            CoreError::EmailNotVerified => Self::new(
                StatusCode::FORBIDDEN,
                "email_not_verified",
                "The email address has not been verified",
            ),
            // One answer whatever is wrong with the link or code.
            CoreError::InvalidMailToken => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_mail_token",
                "The link or code is invalid, already used or expired",
            ),
            CoreError::MfaAlreadyEnabled => Self::new(
                StatusCode::BAD_REQUEST,
                "mfa_already_enabled",
                "Two-factor authentication is already enabled",
            ),
            CoreError::MfaNotEnabled => Self::new(
                StatusCode::BAD_REQUEST,
                "mfa_not_enabled",
                "Two-factor authentication is not set up",
            ),
            CoreError::WrongPassword => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_current_password",
                "The current password is incorrect",
            ),
            CoreError::PasskeyRejected => Self::new(
                StatusCode::BAD_REQUEST,
                "passkey_rejected",
                "The passkey was not accepted: the ceremony is unknown, used or expired, or the authenticator's response did not verify",
            ),
            CoreError::LastFactor => Self::new(
                StatusCode::CONFLICT,
                "last_factor",
                "This is the account's last way to sign in; add a password or another passkey first",
            ),
            CoreError::CannotDeleteSelf => Self::new(
                StatusCode::BAD_REQUEST,
                "cannot_delete_self",
                "You cannot delete your own account",
            ),
            CoreError::Forbidden => Self::forbidden(),
            CoreError::ApiKeyNotAllowed => Self::new(
                StatusCode::FORBIDDEN,
                "api_key_not_allowed",
                "API keys cannot manage the account's credentials",
            ),
            CoreError::NotFound => Self::not_found(),
            CoreError::FileTooLarge
            | CoreError::QuotaExceeded
            | CoreError::InsufficientStorage
            | CoreError::UnsupportedFileType => Self::upload_refused(&err),
            CoreError::Unavailable { .. } => {
                let p = Problem::for_status(StatusCode::SERVICE_UNAVAILABLE);
                let mut api = Self::new(StatusCode::SERVICE_UNAVAILABLE, p.code, p.detail);
                api.0.cause = Some(InternalCause(Arc::new(err)));
                api
            }
            CoreError::Internal(_) => Self::internal(err),
        }
    }
}

impl ApiError {
    /// 401 for credentials that do not hold (RFC 6750 §3).
    fn credentials_refused(err: &CoreError) -> Self {
        match err {
            // Same answer for unknown email and wrong password.
            CoreError::InvalidCredentials => {
                Self::unauthorized("invalid_credentials", "Invalid email or password")
            }
            CoreError::InvalidRefreshToken => {
                Self::unauthorized("invalid_refresh_token", "Invalid or expired refresh token")
            }
            CoreError::InvalidMfaCode => {
                Self::unauthorized("invalid_mfa_code", "Invalid or expired two-factor code")
            }
            // `InvalidToken`, the one credential refusal left.
            _ => Self::unauthorized("invalid_token", "Invalid or expired access token"),
        }
    }

    /// 401 for a sensitive change whose login proved no factor recently
    /// enough; the challenge is RFC 9470's step-up error.
    fn reauthentication_required() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "reauthentication_required",
            "This change needs a recent sign-in: re-authenticate at POST /api/v1/auth/reauth",
        )
        .with_header(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer error="insufficient_user_authentication""#),
        )
    }

    /// An upload refused for its size, its owner's quota, the volume's free
    /// space or its type.
    fn upload_refused(err: &CoreError) -> Self {
        match err {
            CoreError::FileTooLarge => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The file exceeds the upload size limit",
            ),
            CoreError::QuotaExceeded => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "quota_exceeded",
                "The upload would exceed your storage quota",
            ),
            // RFC 4918 §11.5: the server cannot store what the request needs.
            CoreError::InsufficientStorage => Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient_storage",
                "There is not enough storage space for this upload",
            ),
            // `UnsupportedFileType`, the one upload refusal left.
            _ => Self::unsupported_media_type(
                "Only .jpg, .jpeg, .png and .pdf files whose content matches their extension \
                 are accepted",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.0.status.into_response();
        res.headers_mut().extend(self.0.headers);
        res.extensions_mut().insert(self.0.problem);
        if let Some(cause) = self.0.cause {
            res.extensions_mut().insert(cause);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Secretive;
    impl fmt::Display for Secretive {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("SELECT password_hash FROM users failed at /srv/db")
        }
    }
    impl StdError for Secretive {}

    #[test]
    fn internal_errors_keep_their_cause_out_of_the_problem() {
        let res = ApiError::internal(Secretive).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let problem = res.extensions().get::<Problem>().unwrap();
        assert_eq!(problem.detail, "An unexpected error occurred");
        assert_eq!(problem.code, "internal_error");
        let cause = res.extensions().get::<InternalCause>().unwrap();
        assert!(cause.to_string().contains("password_hash"));
        assert_eq!(format!("{cause:?}"), "InternalCause(..)");
    }

    #[test]
    fn unauthorized_carries_the_bearer_challenge() {
        let res = ApiError::unauthorized("invalid_token", "Invalid token").into_response();
        assert_eq!(res.headers()[WWW_AUTHENTICATE], "Bearer");
    }

    #[test]
    fn reauthentication_required_is_a_step_up_challenge() {
        let res = ApiError::from(CoreError::ReauthenticationRequired).into_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers()[WWW_AUTHENTICATE],
            r#"Bearer error="insufficient_user_authentication""#
        );
        let problem = res.extensions().get::<Problem>().unwrap();
        assert_eq!(problem.code, "reauthentication_required");
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        let res =
            ApiError::too_many_requests("rate_limited", "Too many requests", 0).into_response();
        assert_eq!(res.headers()[RETRY_AFTER], "1");
    }
}
