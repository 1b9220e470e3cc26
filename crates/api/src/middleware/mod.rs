//! The middleware stack. Order matters and is written once, in
//! [`crate::routes::build`], outermost first.

pub mod context;
pub mod cors;
pub mod edge;
pub mod host;
pub mod problem;
pub mod rate_limit;
pub mod security_headers;
pub mod trace_context;

pub use context::RequestContext;
