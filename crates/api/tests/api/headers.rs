//! Security headers on every response, errors included.

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, StatusCode};

use crate::harness::{Backend, TestApp, TestResponse, probes};

fn assert_security_headers(res: &TestResponse) {
    let expect = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=(), payment=()",
        ),
        ("cross-origin-opener-policy", "same-origin"),
    ];
    for (name, value) in expect {
        assert_eq!(res.header(name), Some(value), "{name} on {}", res.status);
    }
    assert!(res.header("server").is_none());
    assert!(res.header("x-powered-by").is_none());
    assert!(res.header("x-request-id").is_some());
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let app = TestApp::with(
        &Backend::Sqlite,
        &[("MAX_BODY_BYTES", "1024")],
        probes::routes(),
    )
    .await;
    let big = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(2000));
    let responses = vec![
        app.get("/health").await,
        app.get("/nope").await,
        app.send(Request::put("/health").body(Body::empty()).unwrap())
            .await,
        app.post_json("/test/echo", &big).await,
        app.post_json("/test/echo", "{").await,
        app.get("/test/internal").await,
        app.get("/test/panic").await,
        app.send(
            Request::get("/health")
                .header("host", "evil.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await,
    ];
    let statuses: Vec<u16> = responses.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses, vec![200, 404, 405, 413, 422, 500, 500, 400]);
    for res in &responses {
        assert_security_headers(res);
        assert!(
            res.header("strict-transport-security").is_none(),
            "no HSTS over plain HTTP"
        );
    }
}

#[tokio::test]
async fn hsts_when_forced_or_forwarded_https_from_a_trusted_proxy() {
    let forced = TestApp::with(
        &Backend::Sqlite,
        &[("HSTS_ALWAYS", "true")],
        Default::default(),
    )
    .await;
    let res = forced.get("/health").await;
    assert_eq!(
        res.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );

    let app = TestApp::with(
        &Backend::Sqlite,
        &[("TRUSTED_PROXIES", "10.0.0.0/8")],
        Default::default(),
    )
    .await;
    let forwarded = |peer: [u8; 4]| {
        let mut req = Request::get("/health")
            .header("x-forwarded-proto", "https")
            .body(Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(std::net::SocketAddr::from((peer, 5000))));
        req
    };
    let trusted = app.send(forwarded([10, 1, 2, 3])).await;
    assert!(trusted.header("strict-transport-security").is_some());
    // From an untrusted peer the header is a client's claim, not a fact.
    let spoofed = app.send(forwarded([203, 0, 113, 5])).await;
    assert!(spoofed.header("strict-transport-security").is_none());
}

#[tokio::test]
async fn credentialed_requests_are_not_cached() {
    let app = TestApp::new(&Backend::Sqlite).await;
    for (name, value) in [
        ("authorization", "Bearer abc"),
        ("x-api-key", "gh_abc"),
        ("cookie", "theme=dark; refresh_token=abc"),
    ] {
        let res = app
            .send(
                Request::get("/health")
                    .header(name, value)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(res.header("cache-control"), Some("no-store"), "{name}");
    }
    let plain = app
        .send(
            Request::get("/health")
                .header("cookie", "theme=dark")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(plain.header("cache-control").is_none());
}
