//! Domain errors. They speak of the domain; HTTP words live in the API crate.

use std::error::Error as StdError;
use std::time::Duration;

use crate::user::FieldProblem;

/// Errors raised by use cases and ports.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Input broke a field rule.
    #[error("invalid input")]
    Validation(Vec<FieldProblem>),
    /// A new password broke the policy; the sentence says which rule.
    #[error("weak password: {0}")]
    WeakPassword(&'static str),
    /// Registration collided with an existing account. Deliberately vague:
    /// which field collided is not revealed.
    #[error("registration failed")]
    RegistrationFailed,
    /// A unique constraint was violated.
    #[error("conflict with an existing record")]
    Conflict,
    /// Unknown account or wrong password: one error for both.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("account locked")]
    AccountLocked { retry_after: Duration },
    #[error("email not verified")]
    EmailNotVerified,
    /// A mailed link or code that is unknown, spent, expired, meant for
    /// something else, or issued before the account changed.
    #[error("invalid mail token")]
    InvalidMailToken,
    /// Missing, malformed, expired, revoked or stale access token.
    #[error("invalid token")]
    InvalidToken,
    /// Unknown, expired, revoked or reused refresh token.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// Wrong, replayed or expired second factor, or expired `mfa_token`.
    #[error("invalid mfa code")]
    InvalidMfaCode,
    #[error("mfa already enabled")]
    MfaAlreadyEnabled,
    #[error("mfa not enabled")]
    MfaNotEnabled,
    /// The current password given to change it was wrong.
    #[error("wrong current password")]
    WrongPassword,
    /// A passkey registration that did not verify, or whose ceremony is
    /// unknown, spent, expired or another login's.
    #[error("passkey rejected")]
    PasskeyRejected,
    /// The last way into an account without a password cannot be removed.
    #[error("last sign-in factor")]
    LastFactor,
    #[error("cannot delete yourself")]
    CannotDeleteSelf,
    /// A sensitive change needs a factor proved more recently than
    /// `REAUTH_MAX_AGE_MINUTES` ago in this login.
    #[error("reauthentication required")]
    ReauthenticationRequired,
    /// An API key tried to manage the account's credentials.
    #[error("not allowed for API keys")]
    ApiKeyNotAllowed,
    /// Authenticated, but the role lacks the permission.
    #[error("permission denied")]
    Forbidden,
    #[error("not found")]
    NotFound,
    /// An upload went past `MAX_UPLOAD_BYTES`.
    #[error("file too large")]
    FileTooLarge,
    /// An upload's extension is not accepted, or its content is not what
    /// the extension says.
    #[error("unsupported file type")]
    UnsupportedFileType,
    /// An upload would take its owner past `UPLOAD_QUOTA_FILES` or
    /// `UPLOAD_QUOTA_BYTES`.
    #[error("upload quota exceeded")]
    QuotaExceeded,
    /// An upload would leave less than `UPLOAD_MIN_FREE_BYTES` free on the
    /// upload volume.
    #[error("insufficient storage")]
    InsufficientStorage,
    /// A dependency (database, cache) did not answer.
    #[error("{dependency} is unavailable")]
    Unavailable {
        dependency: &'static str,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// Anything unexpected; the cause is logged, never shown to clients.
    #[error("internal error")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
}

impl CoreError {
    pub fn internal(err: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Internal(err.into())
    }

    pub fn unavailable(
        dependency: &'static str,
        err: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self::Unavailable {
            dependency,
            source: err.into(),
        }
    }
}
