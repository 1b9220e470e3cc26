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
