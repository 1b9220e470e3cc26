//! CORS policy built from configuration.

use gatehouse_core::config::CorsConfig;
use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

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
