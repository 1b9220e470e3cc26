//! Our extractors: their rejections are our problem responses.

mod auth;
mod json;
mod meta;
mod path;
mod permission;

pub use auth::{Auth, MaybeAuth, bearer_token};
pub use json::{ApiJson, is_json_content_type, parse as parse_json, read_body};
pub use meta::Meta;
pub use path::PathId;
pub use permission::{Require, RequiredPermission, perm};
