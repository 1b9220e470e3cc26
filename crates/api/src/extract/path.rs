//! `PathId`: the `{id}` segment of a route, as a UUID.

use axum::extract::{FromRequestParts, Path};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use uuid::Uuid;

use crate::error::{ApiError, FieldError};

/// The route's one `{id}`. A malformed id is a 422 naming `id`, not a 404
/// (the contract's rule for every `{id}` route); axum's own rejections
/// (a segment that is not UTF-8) pass through unchanged.
#[derive(Debug, Clone, Copy)]
pub struct PathId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        parse(&raw).map(Self).map_err(IntoResponse::into_response)
    }
}

fn parse(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::validation(vec![FieldError::new("id", "must be a UUID")]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_id_is_a_validation_error_naming_id() {
        let err = parse("not-a-uuid").unwrap_err();
        assert_eq!(err.status(), http::StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.code(), "validation_error");
        let id = Uuid::now_v7();
        assert_eq!(parse(&id.to_string()).unwrap(), id);
    }
}
