//! `Meta`: where a request came from (client IP, user agent, request id),
//! for audit events and session records.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use gatehouse_core::audit::RequestMeta;
use http::header::USER_AGENT;
use http::request::Parts;

use crate::middleware::RequestContext;

#[derive(Debug, Clone)]
pub struct Meta(pub RequestMeta);

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let ctx = parts.extensions.get::<RequestContext>();
        Ok(Self(RequestMeta::new(
            ctx.and_then(|c| c.client_ip).map(|ip| ip.to_string()),
            parts.headers.get(USER_AGENT).and_then(|v| v.to_str().ok()),
            ctx.map(|c| c.request_id.to_string()),
        )))
    }
}
