//! Per-IP rate limits: the global one and the stricter auth ones, their
//! headers, trusted-proxy resolution, IPv6 networks, and the security event.

use std::net::{IpAddr, SocketAddr};
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

/// A login attempt from `peer`, with one `X-Forwarded-For` line per entry
/// of `forwarded` (in order).
async fn login_via(app: &TestApp, peer: &str, n: usize, forwarded: &[&str]) -> StatusCode {
    let body = json!({"email": format!("nobody{n}@example.com"), "password": "x"});
    let mut req = Request::post("/api/v1/auth/login").header("content-type", "application/json");
    for line in forwarded {
        req = req.header("x-forwarded-for", *line);
    }
    let mut req = req.body(Body::from(body.to_string())).unwrap();
    let peer: IpAddr = peer.parse().unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(peer, 5555)));
    app.send(req).await.status
}

const LIMITED: StatusCode = StatusCode::TOO_MANY_REQUESTS;
const ANSWERED: StatusCode = StatusCode::UNAUTHORIZED;

#[tokio::test]
async fn an_ipv6_client_is_its_64_network() {
    let app = app(&[]).await;
    for n in 0..5 {
        let peer = format!("2001:db8:1:2::{n}");
        assert_eq!(login_via(&app, &peer, n, &[]).await, ANSWERED);
    }
    // Another address of the same /64: the same bucket.
    assert_eq!(
        login_via(&app, "2001:db8:1:2:ffff::9", 5, &[]).await,
        LIMITED
    );
    // The next /64 is another client.
    assert_eq!(login_via(&app, "2001:db8:1:3::1", 6, &[]).await, ANSWERED);

    // The prefix is a setting: /128 counts every address on its own.
    let app = app_with_prefix("128").await;
    for n in 0..5 {
        assert_eq!(login_via(&app, "2001:db8::1", n, &[]).await, ANSWERED);
    }
    assert_eq!(login_via(&app, "2001:db8::1", 5, &[]).await, LIMITED);
    assert_eq!(login_via(&app, "2001:db8::2", 6, &[]).await, ANSWERED);
}

async fn app_with_prefix(prefix: &str) -> TestApp {
    app(&[("RATE_LIMIT_IPV6_PREFIX", prefix)]).await
}

#[tokio::test]
async fn an_ipv4_mapped_client_counts_as_ipv4() {
    let app = app(&[]).await;
    for n in 0..5 {
        assert_eq!(
            login_via(&app, "::ffff:203.0.113.5", n, &[]).await,
            ANSWERED
        );
    }
    // The same IPv4 client, however it arrives.
    assert_eq!(login_via(&app, "203.0.113.5", 5, &[]).await, LIMITED);
    // Its IPv6 /64 neighbour is another IPv4 client, not the same network.
    assert_eq!(
        login_via(&app, "::ffff:203.0.113.6", 6, &[]).await,
        ANSWERED
    );
}

#[tokio::test]
async fn a_second_forwarded_for_line_names_the_client() {
    // A proxy that adds its own header line instead of appending to the
    // client's: both lines count, in order (RFC 9110 §5.3).
    let app = app(&[("TRUSTED_PROXIES", "10.0.0.0/8")]).await;
    for n in 0..5 {
        let status = login_via(&app, "10.0.0.9", n, &["198.51.100.1", "203.0.113.7"]).await;
        assert_eq!(status, ANSWERED);
    }
    assert_eq!(
        login_via(&app, "10.0.0.9", 5, &["198.51.100.1", "203.0.113.7"]).await,
        LIMITED
    );
    // Another client behind the same proxy has its own bucket, whatever the
    // first line says.
    assert_eq!(
        login_via(
            &app,
            "10.0.0.9",
            6,
            &["198.51.100.1", "203.0.113.8, 10.0.0.2"]
        )
        .await,
        ANSWERED
    );
}

#[tokio::test]
async fn a_spoofed_left_most_entry_is_ignored() {
    let app = app(&[("TRUSTED_PROXIES", "10.0.0.0/8")]).await;
    // The client writes a fresh address into its own line on every try; the
    // proxy's line (and hop) after it name the real client.
    for n in 0..5 {
        let spoofed = format!("192.0.2.{n}");
        let status = login_via(&app, "10.0.0.9", n, &[&spoofed, "203.0.113.9, 10.0.0.2"]).await;
        assert_eq!(status, ANSWERED);
    }
    let status = login_via(
        &app,
        "10.0.0.9",
        5,
        &["192.0.2.99", "203.0.113.9, 10.0.0.2"],
    )
    .await;
    assert_eq!(status, LIMITED);
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
