//! CORS policy built from configuration.

use std::convert::Infallible;

use axum::body::Body;
use futures_util::FutureExt as _;
use http::header::VARY;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response};
use tower::{Layer, ServiceExt as _};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::CorsConfig;

/// Headers browsers may read from responses.
const EXPOSED: [&str; 5] = [
    "x-request-id",
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
];

/// The configured policy. Values were validated with the configuration; a
/// value that still does not fit a header is left out rather than widening
/// the policy.
pub fn layer(config: &CorsConfig) -> CorsLayer {
    let origin = if config.origins.iter().any(|o| o == "*") {
        // Only reachable with credentials off (configuration refuses both).
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods(
            config
                .allow_methods
                .iter()
                .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
                .collect::<Vec<_>>(),
        )
        .allow_headers(
            config
                .allow_headers
                .iter()
                .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
                .collect::<Vec<_>>(),
        )
        .allow_credentials(config.allow_credentials)
        .max_age(config.max_age)
        .expose_headers(EXPOSED.map(HeaderName::from_static))
}

/// The headers `layer` adds to the response to a request that is not a
/// preflight and carries no `Origin`: found by running the layer itself
/// once over a request like that, so they are exactly the layer's.
pub fn headers_without_origin(layer: &CorsLayer) -> HeaderMap {
    let probe = layer.layer(tower::service_fn(|_: Request<Body>| {
        std::future::ready(Ok::<_, Infallible>(Response::new(Body::empty())))
    }));
    let request = Request::new(Body::empty());
    match probe.oneshot(request).now_or_never() {
        Some(Ok(response)) => response.into_parts().0.headers,
        // The layer answers at once for a request without an origin; if a
        // future version ever did not, no request would skip it.
        None | Some(Err(_)) => HeaderMap::new(),
    }
}

/// Adds headers from [`headers_without_origin`] the way the layer does:
/// `Vary` appended to any already there, the others replacing.
pub fn add_headers(cors: &HeaderMap, res: &mut Response<Body>) {
    let headers = res.headers_mut();
    for (name, value) in cors {
        if name == VARY {
            headers.append(name, value.clone());
        } else {
            headers.insert(name, value.clone());
        }
    }
}
