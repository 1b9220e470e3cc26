//! Observability and docs: the docs page and its bundled assets, Prometheus
//! metrics by route template, and W3C `traceparent` in the access log. The
//! OpenAPI document's own tests are in `spec`.

mod spec;

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use gatehouse_api::metrics::{self, CountingAuditSink};
use gatehouse_core::audit::{AuditEvent, AuditSink, EventKind, Outcome, RequestMeta};
use http::{Request, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::harness::{Backend, TestApp, TestDb, config, logs};

#[tokio::test]
async fn the_docs_page_and_its_assets_are_served_from_here() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let page = app.get("/docs").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert!(!csp.contains("http"), "only 'self' sources: {csp}");
    let html = String::from_utf8(page.body.to_vec()).unwrap();
    assert!(!html.contains("http"), "no external URL in the page");
    assert!(!html.contains("<script>"), "no inline script");

    // Every script and stylesheet the page names is served from /docs.
    let refs: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with('/'))
        .collect();
    assert_eq!(
        refs,
        [
            "/docs/swagger-ui.css",
            "/docs/swagger-ui-bundle.js",
            "/docs/init.js"
        ]
    );
    for path in refs {
        let res = app.get(path).await;
        assert_eq!(res.status, StatusCode::OK, "{path}");
        let expected = if path.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            "text/javascript; charset=utf-8"
        };
        assert_eq!(res.header("content-type"), Some(expected), "{path}");
        assert!(res.body.len() > 100, "{path}");
    }
    let init = app.get("/docs/init.js").await;
    let init = String::from_utf8(init.body.to_vec()).unwrap();
    assert!(
        !init.contains("http"),
        "the page loads only this server's spec"
    );
    assert!(init.contains("\"/openapi.json\""));

    let license = app.get("/docs/LICENSE").await;
    assert_eq!(license.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&license.body).contains("Apache License"));
    app.get("/docs/secret.txt")
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    app.get("/docs/..%2FCargo.toml")
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn docs_are_off_in_production_unless_enabled() {
    let production = [
        ("ENVIRONMENT", "production"),
        ("CORS_ORIGINS", "https://app.example"),
        ("SMTP_URL", "smtp://127.0.0.1:25"),
        ("WEBAUTHN_RP_ID", "app.example"),
        ("WEBAUTHN_ORIGINS", "https://app.example"),
    ];
    let app = TestApp::on(
        TestDb::new(&Backend::Sqlite).await,
        config(&production),
        Default::default(),
    );
    for path in ["/docs", "/openapi.json", "/docs/init.js"] {
        app.get(path)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not_found");
    }
    let mut enabled = production.to_vec();
    enabled.push(("DOCS_ENABLED", "true"));
    let app = TestApp::on(
        TestDb::new(&Backend::Sqlite).await,
        config(&enabled),
        Default::default(),
    );
    assert_eq!(app.get("/docs").await.status, StatusCode::OK);
    assert_eq!(app.get("/openapi.json").await.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_labelled_by_route_template() {
    let handle = metrics::install().unwrap();
    let app = TestApp::new(&Backend::Sqlite).await;
    let id = uuid::Uuid::now_v7().to_string();
    let res = app.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let probe = format!("/no-such-route-{id}");
    assert_eq!(app.get(&probe).await.status, StatusCode::NOT_FOUND);

    let text = handle.render();
    assert!(
        text.contains(
            r#"gatehouse_http_requests_total{method="GET",route="/api/v1/users/{id}",status="401"}"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="<unmatched>",status="404"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"gatehouse_http_request_duration_seconds_bucket{method="GET",route="/api/v1/users/{id}",status="401",le="0.005"}"#),
        "latency is a histogram: {text}"
    );
    assert!(!text.contains(&id), "raw ids never become labels");
    assert!(text.contains(&format!(
        "gatehouse_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
}

#[derive(Debug, Default)]
struct Discard;

#[async_trait]
impl AuditSink for Discard {
    async fn record(&self, _event: AuditEvent) {}
}

#[tokio::test]
async fn security_events_and_refusals_are_counted() {
    let handle = metrics::install().unwrap();
    let sink = CountingAuditSink::new(Arc::new(Discard));
    let meta = RequestMeta::default();
    for _ in 0..2 {
        sink.record(AuditEvent::new(
            EventKind::AccountLocked,
            Outcome::Failure,
            &meta,
        ))
        .await;
    }
    metrics::record_rate_limited("/api/v1/auth/login");
    metrics::set_db_pool(3, 7, 10);
    let text = handle.render();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with(
                r#"gatehouse_auth_events_total{event="account_locked",outcome="failure"}"#,
            )
        })
        .unwrap_or_else(|| panic!("{text}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 2.0, "{line}");
    assert!(text.contains(r#"gatehouse_rate_limited_total{route="/api/v1/auth/login"}"#));
    assert!(text.contains(r#"gatehouse_db_pool_connections{state="in_use"} 3"#));
    assert!(text.contains(r#"gatehouse_db_pool_connections{state="idle"} 7"#));
    assert!(text.contains("gatehouse_db_pool_max_connections 10"));
}

#[tokio::test]
async fn metrics_have_their_own_listener_and_not_the_public_one() {
    let handle = metrics::install().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, metrics::router(handle))
            .await
            .unwrap();
    });
    let res = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        reqwest::get(format!("http://{addr}/metrics")),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert!(res.text().await.unwrap().contains("gatehouse_build_info"));
    server.abort();

    let app = TestApp::new(&Backend::Sqlite).await;
    app.get("/metrics")
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
}

fn access_line(request_id: &str) -> Value {
    logs::lines()
        .into_iter()
        .find(|l| l["target"] == "gatehouse::access" && l["request_id"] == request_id)
        .unwrap_or_else(|| panic!("no access line for {request_id}"))
}

#[tokio::test]
async fn a_valid_traceparent_puts_the_trace_id_in_the_access_log() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let cases = [
        (format!("00-{trace}-00f067aa0ba902b7-01"), Some(trace)),
        (format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)), None),
        ("not-a-traceparent".to_owned(), None),
    ];
    for (header, expected) in cases {
        let request_id = uuid::Uuid::now_v7().to_string();
        let res = app
            .send(
                Request::get("/health")
                    .header("traceparent", &header)
                    .header("x-request-id", &request_id)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK);
        let line = access_line(&request_id);
        assert_eq!(line["trace_id"].as_str(), expected, "{header}: {line}");
        assert_eq!(line["route"], "/health");
    }
}
