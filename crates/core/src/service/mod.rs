//! Use cases: each one checks its inputs and permissions first, then drives
//! the ports.

pub mod admin;
pub mod auth;
pub mod users;

pub use admin::AdminStats;
pub use auth::{AuthDeps, AuthService, LoginId, Principal, Registration, TokenPair};
pub use users::{AdminPatch, ListQuery, NewAccount, ProfileUpdate, UserPage};
