//! Use cases: each one checks its inputs and permissions first, then drives
//! the ports.

pub mod admin;
pub mod api_keys;
pub mod auth;
pub mod files;
pub mod mfa;
pub mod users;

pub use admin::AdminStats;
pub use api_keys::{ApiKeyView, NewApiKey};
pub use auth::{AuthDeps, AuthService, LoginId, LoginOutcome, Principal, Registration, TokenPair};
pub use files::{FileDeps, FileDownload, FileService, UploadStream};
pub use mfa::MfaSetup;
pub use users::{AdminPatch, ListQuery, NewAccount, ProfileUpdate, UserPage};
