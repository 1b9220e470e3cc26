//! The plain-HTTP listener beside HTTPS (`HTTP_REDIRECT_ADDR`): every
//! request is answered with a permanent redirect to the same path over
//! HTTPS, and nothing else is served on it.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use gatehouse_core::network::{HostPattern, host_without_port, is_host_allowed};
use http::header::{HOST, LOCATION};
use http::{HeaderValue, StatusCode};

/// Where redirects point: the hosts that may be named, and the HTTPS port.
#[derive(Debug)]
struct Target {
    allowed_hosts: Vec<HostPattern>,
    https_port: u16,
}

/// The redirecting application: 308 to `https://{host}{path}` for a `Host`
/// in `allowed_hosts` (the port is `https_port`, left out when it is 443),
/// 400 for any other host. Only allowed hosts are echoed, so the listener
/// cannot be used as an open redirect.
pub fn redirect(allowed_hosts: Vec<HostPattern>, https_port: u16) -> Router {
    let target = Arc::new(Target {
        allowed_hosts,
        https_port,
    });
    Router::new().fallback(to_https).with_state(target)
}

async fn to_https(State(target): State<Arc<Target>>, req: Request) -> Response {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|host| is_host_allowed(host, &target.allowed_hosts))
        .and_then(host_without_port);
    let Some(host) = host else {
        return (StatusCode::BAD_REQUEST, "The Host header is not allowed\n").into_response();
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_ascii_lowercase()
    };
    let port = match target.https_port {
        443 => String::new(),
        port => format!(":{port}"),
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    match HeaderValue::try_from(format!("https://{host}{port}{path}")) {
        // 308 keeps the method and body (RFC 9110 §15.4.9), unlike 301.
        Ok(location) => (StatusCode::PERMANENT_REDIRECT, [(LOCATION, location)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    async fn get(uri: &str, host: &str) -> Response {
        let hosts = vec![
            HostPattern::parse("example.com").unwrap(),
            HostPattern::parse("::1").unwrap(),
        ];
        let req = Request::builder()
            .uri(uri)
            .header(HOST, host)
            .body(Body::empty())
            .unwrap();
        redirect(hosts, 8443).oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn allowed_hosts_are_sent_to_https_with_path_and_query() {
        let res = get("/v1/users?page=2", "Example.com:8080").await;
        assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(
            res.headers()[LOCATION],
            "https://example.com:8443/v1/users?page=2"
        );
        let res = get("/", "[::1]:80").await;
        assert_eq!(res.headers()[LOCATION], "https://[::1]:8443/");
    }

    #[tokio::test]
    async fn other_hosts_are_refused() {
        let res = get("/", "evil.example").await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(res.headers().get(LOCATION).is_none());
    }
}
