//! CORS from configuration.

use axum::body::Body;
use http::{Method, Request, StatusCode};

use crate::harness::{Backend, TestApp};

fn preflight(origin: &str) -> Request<Body> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri("/api/v1/auth/login")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, authorization",
        )
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn preflight_from_a_listed_origin_is_allowed() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let res = app.send(preflight("http://localhost:3000")).await;
    assert!(res.status.is_success(), "{}", res.status);
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    assert_eq!(res.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(res.header("access-control-max-age"), Some("600"));
    let methods = res
        .header("access-control-allow-methods")
        .unwrap()
        .to_ascii_uppercase();
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(methods.contains(m), "{methods}");
    }
    let headers = res
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for h in ["authorization", "content-type", "x-api-key", "x-request-id"] {
        assert!(headers.contains(h), "{headers}");
    }
}

#[tokio::test]
async fn other_origins_get_no_allow_origin() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let res = app.send(preflight("https://evil.example")).await;
    assert!(res.header("access-control-allow-origin").is_none());
    let res = app
        .send(
            Request::get("/health")
                .header("origin", "https://evil.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn simple_request_from_listed_origin_exposes_headers() {
    let app = TestApp::with(
        &Backend::Sqlite,
        &[("CORS_ORIGINS", "https://a.example, https://b.example")],
        Default::default(),
    )
    .await;
    let res = app
        .send(
            Request::get("/health")
                .header("origin", "https://b.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://b.example")
    );
    let exposed = res
        .header("access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("x-request-id") && exposed.contains("retry-after"),
        "{exposed}"
    );
}

/// The CORS headers of a response, as (name, value) pairs in order.
fn cors_headers(res: &crate::harness::TestResponse) -> Vec<(String, String)> {
    res.headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("access-control-") || *name == "vary")
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect()
}

/// Requests without `Origin` skip the CORS layer (a fast path) but must get
/// exactly what it would have added: the same as for an origin it does not
/// allow, which still goes through it.
#[tokio::test]
async fn requests_without_origin_get_the_layers_own_headers() {
    for vars in [
        &[][..],
        &[("CORS_ORIGINS", "*"), ("CORS_ALLOW_CREDENTIALS", "false")][..],
    ] {
        let app = TestApp::with(&Backend::Sqlite, vars, Default::default()).await;
        let get = |origin: Option<&str>| {
            let mut req = Request::get("/health");
            if let Some(origin) = origin {
                req = req.header("origin", origin);
            }
            req.body(Body::empty()).unwrap()
        };
        let plain = app.send(get(None)).await;
        let foreign = app.send(get(Some("https://evil.example"))).await;
        assert_eq!(plain.status, StatusCode::OK);
        assert_eq!(cors_headers(&plain), cors_headers(&foreign), "{vars:?}");
        assert_eq!(
            plain.header("vary"),
            Some("origin, access-control-request-method, access-control-request-headers")
        );
        assert!(plain.header("access-control-expose-headers").is_some());
        if vars.is_empty() {
            assert_eq!(
                plain.header("access-control-allow-credentials"),
                Some("true")
            );
            assert!(plain.header("access-control-allow-origin").is_none());
        } else {
            assert_eq!(plain.header("access-control-allow-origin"), Some("*"));
        }
    }
}
