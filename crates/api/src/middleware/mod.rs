//! The middleware stack. Order matters and is written once, in
//! [`crate::routes::build`], outermost first.

pub mod context;
pub mod cors;
pub mod host;
pub mod problem;
pub mod security_headers;

pub use context::RequestContext;
