//! Authentication building blocks: password hashing and policy, access tokens
//! (JWT), opaque refresh tokens, and one-time mail tokens and codes.

pub mod mail_token;
pub mod mfa;
pub mod password;
pub mod refresh;
pub mod tokens;
