//! The service on a real listener: serving, draining on shutdown, and the
//! one access-log line per request.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::routing::get;
use http::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

use crate::harness::{Backend, TestApp, logs};

#[tokio::test]
async fn serves_over_tcp_and_drains_in_flight_requests_on_shutdown() {
    let arrived = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let hold = {
        let (arrived, release) = (arrived.clone(), release.clone());
        get(move || async move {
            arrived.notify_one();
            release.notified().await;
            Json(json!({"finished": true}))
        })
    };
    let app = TestApp::with(
        &Backend::Sqlite,
        &[],
        Router::new().route("/test/hold", hold),
    )
    .await;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(gatehouse_api::serve(listener, app.router.clone(), async {
        let _ = stop_rx.await;
    }));

    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(health.headers().contains_key("x-request-id"));

    let in_flight = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .get(format!("http://{addr}/test/hold"))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    });
    arrived.notified().await;
    stop_tx.send(()).unwrap();
    // New connections are refused once shutdown began...
    tokio::task::yield_now().await;
    // ...but the request already being handled completes.
    release.notify_one();
    assert_eq!(in_flight.await.unwrap()["finished"], true);
    server.await.unwrap().unwrap();
    assert!(
        TcpListener::bind(addr).await.is_ok(),
        "the port is released after shutdown"
    );
}

#[tokio::test]
async fn one_json_access_log_line_per_request() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let id = format!("log-test-{}", uuid::Uuid::now_v7().simple());
    let res = app
        .send(
            http::Request::get("/health/")
                .header("x-request-id", format!("{id}-a"))
                .header("authorization", "Bearer very-secret-token")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    app.send(
        http::Request::get("/does/not/exist/0190")
            .header("x-request-id", format!("{id}-b"))
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;

    let lines: Vec<Value> = logs::lines()
        .into_iter()
        .filter(|v| v["target"] == "gatehouse::access")
        .filter(|v| v["request_id"].as_str().is_some_and(|r| r.starts_with(&id)))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let first = &lines[0];
    assert_eq!(first["request_id"], format!("{id}-a"));
    assert_eq!(first["method"], "GET");
    assert_eq!(first["route"], "/health");
    assert_eq!(first["status"], 200);
    assert_eq!(first["ip"], "127.0.0.1");
    assert!(first["duration_ms"].as_f64().is_some());
    // Unmatched paths are not logged raw (they could carry ids or junk).
    assert_eq!(lines[1]["route"], "<unmatched>");
    assert_eq!(lines[1]["status"], 404);
    assert!(!logs::text().contains("very-secret-token"));
}
