//! `Host` allow-list: refuses requests for names the service does not serve
//! (DNS-rebinding and host-header injection defence).

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use gatehouse_core::network::is_host_allowed;
use http::StatusCode;
use http::header::HOST;

use crate::error::ApiError;
use crate::state::AppState;

/// The refusal of a request for a host that is not served, if it is one.
pub fn refusal(state: &AppState, req: &Request) -> Option<Response> {
    // HTTP/2 carries the host in the URI authority instead of a header.
    let host = req
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    match host {
        Some(host) if is_host_allowed(host, &state.http().allowed_hosts) => None,
        _ => Some(
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_host",
                "The Host header is not allowed",
            )
            .into_response(),
        ),
    }
}
