//! Authentication building blocks: password hashing and policy, access tokens
//! (JWT), and opaque refresh tokens.

pub mod mfa;
pub mod password;
pub mod refresh;
pub mod tokens;
