//! Domain errors. They speak of the domain; HTTP words live in the API crate.

use std::error::Error as StdError;

/// Errors raised by use cases and ports.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
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
