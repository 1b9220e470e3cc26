//! Our extractors: their rejections are our problem responses.

mod auth;
mod json;
mod meta;
mod permission;

pub use auth::{Auth, bearer_token};
pub use json::{ApiJson, is_json_content_type, parse as parse_json, read_body};
pub use meta::Meta;
pub use permission::{Require, RequiredPermission, perm};

/// Parses an id from the path; a malformed one is a 422 naming `id`, not a
/// 404 (the contract's rule for every `{id}` route).
pub fn parse_id(raw: &str) -> Result<uuid::Uuid, crate::error::ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| {
        crate::error::ApiError::validation(vec![crate::error::FieldError::new(
            "id",
            "must be a UUID",
        )])
    })
}
