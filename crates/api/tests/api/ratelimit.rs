//! Per-IP rate limits: the global one and the stricter auth ones, their
//! headers, trusted-proxy resolution, and the security event.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, StatusCode};
use serde_json::json;

use crate::harness::{Backend, TestApp, TestResponse};

async fn app(extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![("RATE_LIMIT_ENABLED", "true")];
    vars.extend_from_slice(extra);
    TestApp::with(&Backend::Sqlite, &vars, Default::default()).await
}

async fn login_from(
    app: &TestApp,
    peer: [u8; 4],
    n: usize,
    forwarded: Option<&str>,
) -> TestResponse {
    let body = json!({"email": format!("nobody{n}@example.com"), "password": "x"});
    let mut req = Request::post("/api/v1/auth/login").header("content-type", "application/json");
    if let Some(xff) = forwarded {
        req = req.header("x-forwarded-for", xff);
    }
    let mut req = req.body(Body::from(body.to_string())).unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((peer, 5555))));
    app.send(req).await
}

#[tokio::test]
async fn login_allows_five_a_minute_per_ip_with_headers() {
    let app = app(&[]).await;
    for n in 0..5 {
        let res = login_from(&app, [10, 0, 0, 1], n, None).await;
        res.assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        assert_eq!(res.header("ratelimit-limit"), Some("5"));
        assert_eq!(
            res.header("ratelimit-remaining"),
            Some((4 - n).to_string().as_str())
        );
        assert!(res.header("ratelimit-reset").is_some());
    }
    let limited = login_from(&app, [10, 0, 0, 1], 5, None).await;
    limited.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(limited.header("retry-after"), Some("12"));
    assert_eq!(limited.header("ratelimit-remaining"), Some("0"));

    // Another client is not affected.
    let other = login_from(&app, [10, 0, 0, 2], 6, None).await;
    other.assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");

    // One interval later, one more attempt.
    app.clock.advance(Duration::from_secs(12));
    login_from(&app, [10, 0, 0, 1], 7, None)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    login_from(&app, [10, 0, 0, 1], 8, None)
        .await
        .assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}

#[tokio::test]
async fn register_allows_three_a_minute() {
    let app = app(&[]).await;
    for n in 0..3 {
        let body = json!({"username": format!("reg{n}"), "email": format!("reg{n}@example.com"), "password": crate::harness::PASSWORD});
        let res = app
            .post_json("/api/v1/auth/register", &body.to_string())
            .await;
        assert_eq!(res.status, StatusCode::CREATED);
        assert_eq!(res.header("ratelimit-limit"), Some("3"));
    }
    let body = json!({"username": "reg9", "email": "reg9@example.com", "password": crate::harness::PASSWORD});
    app.post_json("/api/v1/auth/register", &body.to_string())
        .await
        .assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}

#[tokio::test]
async fn the_global_limit_covers_the_api_but_not_health() {
    let app = app(&[("RATE_LIMIT_PER_MINUTE", "3")]).await;
    for _ in 0..3 {
        let res = app.get("/api/v1/users/me").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert_eq!(res.header("ratelimit-limit"), Some("3"));
    }
    let res = app.get("/api/v1/users/me").await;
    res.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(res.header("retry-after").is_some());
    for _ in 0..10 {
        let health = app.get("/health").await;
        assert_eq!(health.status, StatusCode::OK);
        assert!(health.header("ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    // Untrusted peer: a spoofed header changes nothing.
    let app_untrusted = app(&[]).await;
    for n in 0..5 {
        login_from(
            &app_untrusted,
            [10, 0, 0, 9],
            n,
            Some(&format!("203.0.113.{n}")),
        )
        .await;
    }
    login_from(&app_untrusted, [10, 0, 0, 9], 9, Some("198.51.100.77"))
        .await
        .assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");

    // Behind a trusted proxy, each forwarded client has its own bucket.
    let app_proxied = app(&[("TRUSTED_PROXIES", "10.0.0.0/8")]).await;
    for n in 0..5 {
        login_from(&app_proxied, [10, 0, 0, 9], n, Some("203.0.113.1")).await;
    }
    login_from(&app_proxied, [10, 0, 0, 9], 6, Some("203.0.113.1"))
        .await
        .assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    login_from(&app_proxied, [10, 0, 0, 9], 7, Some("203.0.113.2"))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
}

#[tokio::test]
async fn a_flood_is_one_stored_security_event() {
    let app = app(&[]).await;
    for n in 0..9 {
        login_from(&app, [10, 0, 0, 3], n, None).await;
    }
    let stored = app
        .count("SELECT COUNT(*) FROM audit_log WHERE event = 'rate_limited'")
        .await;
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn disabled_limits_send_no_headers() {
    let app = TestApp::new(&Backend::Sqlite).await;
    for n in 0..8 {
        let res = login_from(&app, [10, 0, 0, 4], n, None).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert!(res.header("ratelimit-limit").is_none());
    }
}
