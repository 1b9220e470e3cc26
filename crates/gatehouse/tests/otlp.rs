//! Trace export end to end: the binary, pointed at an OTLP/HTTP receiver,
//! exports a server span per request that joins the caller's `traceparent`,
//! with database spans below it, and flushes them when it stops.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly"
)]

mod support;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use support::{gatehouse, serve};

const SECRET: &str = "otlp-test-secret-0123456789-abcdefghijkl";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const PASSWORD: &str = "Tr4ce-Passw0rd!x";

#[derive(Default)]
struct Received {
    /// Every export request body, and whether it was sent as protobuf.
    bodies: Vec<(bool, Bytes)>,
}

async fn receive(
    State(received): State<Arc<Mutex<Received>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], Vec<u8>) {
    let protobuf = headers
        .get("content-type")
        .is_some_and(|v| v == "application/x-protobuf");
    received.lock().unwrap().bodies.push((protobuf, body));
    // An empty ExportTraceServiceResponse: everything accepted.
    (
        StatusCode::OK,
        [("content-type", "application/x-protobuf")],
        Vec::new(),
    )
}

/// An OTLP/HTTP collector stand-in on a random local port.
async fn start_receiver() -> (String, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), received)
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string_attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attribute(span, key) {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_exported_as_spans_that_join_the_callers_trace() {
    let (endpoint, received) = start_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    // With Redis (always in CI), its calls are spans too.
    let redis_url = std::env::var("TEST_REDIS_URL").ok();
    if redis_url.is_none() {
        eprintln!("TEST_REDIS_URL unset: Redis spans not checked");
    }
    let prefix = format!("otlp-test-{}:", std::process::id());
    let mut vars = vec![
        ("BIND_ADDR", "127.0.0.1:0"),
        ("METRICS_ADDR", "127.0.0.1:0"),
        ("JWT_SECRET_KEY", SECRET),
        ("ARGON2_MEMORY_COST", "64"),
        ("ARGON2_TIME_COST", "1"),
        ("ARGON2_PARALLELISM", "1"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SERVICE_NAME", "gatehouse-under-test"),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
    ];
    if let Some(url) = &redis_url {
        vars.push(("REDIS_URL", url.as_str()));
    }
    let server = serve(gatehouse(dir.path(), &vars));
    let addr = server.addr.clone();

    let client = reqwest::Client::new();
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let registered = client
        .post(format!("http://{addr}/api/v1/auth/register"))
        .header("traceparent", &traceparent)
        .json(&serde_json::json!({
            "username": "tracy", "email": "tracy@example.com", "password": PASSWORD
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    // No traceparent: the request starts a trace of its own, whose id is
    // the one in its log line.
    let login = client
        .post(format!("http://{addr}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "tracy@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let login_request_id = login.headers()["x-request-id"].to_str().unwrap().to_owned();
    let tokens: serde_json::Value = login.json().await.unwrap();
    let me = client
        .get(format!("http://{addr}/api/v1/users/me"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    let (status, lines) = server.stop();
    assert!(status.success(), "exit status {status:?}");

    // Everything was flushed on the way out: no sleeping for a batch timer.
    let bodies = std::mem::take(&mut received.lock().unwrap().bodies);
    assert!(!bodies.is_empty(), "nothing exported");
    let mut spans = Vec::new();
    for (protobuf, body) in bodies {
        assert!(protobuf, "OTLP/HTTP with protobuf bodies");
        let request = ExportTraceServiceRequest::decode(body).unwrap();
        for resource_spans in request.resource_spans {
            let resource = resource_spans.resource.unwrap();
            let service = resource
                .attributes
                .iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.clone());
            assert_eq!(
                service,
                Some(Value::StringValue("gatehouse-under-test".into()))
            );
            for scope in resource_spans.scope_spans {
                spans.extend(scope.spans);
            }
        }
    }
    let by_name = |name: &str| -> &Span {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name} in {:#?}", names(&spans)))
    };

    // The register request joined the caller's trace, under its span.
    let register = by_name("POST /api/v1/auth/register");
    assert_eq!(hex(&register.trace_id), TRACE_ID);
    assert_eq!(hex(&register.parent_span_id), PARENT_ID);
    assert_eq!(register.kind, SpanKind::Server as i32);
    assert_eq!(
        string_attribute(register, "http.route"),
        Some("/api/v1/auth/register")
    );
    assert_eq!(
        attribute(register, "http.response.status_code"),
        Some(&Value::IntValue(201))
    );
    // Its database work is below it, as client spans naming the backend.
    let create = by_name("users.create");
    assert_eq!(create.trace_id, register.trace_id);
    assert_eq!(create.parent_span_id, register.span_id);
    assert_eq!(create.kind, SpanKind::Client as i32);
    assert_eq!(string_attribute(create, "db.system.name"), Some("sqlite"));

    // The login started a new trace; its log line carries that trace id.
    let login = by_name("POST /api/v1/auth/login");
    assert!(login.parent_span_id.is_empty(), "a root span");
    assert_ne!(hex(&login.trace_id), TRACE_ID);
    let session = by_name("sessions.start");
    assert_eq!(session.trace_id, login.trace_id);
    let access_line = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["request_id"] == login_request_id.as_str() && v["message"] == "request")
        .expect("access log line of the login");
    assert_eq!(access_line["trace_id"], hex(&login.trace_id).as_str());

    // The current-state check of an authenticated request asks the denylist.
    if redis_url.is_some() {
        let me = by_name("GET /api/v1/users/me");
        let denylist = by_name("denylist.check");
        assert_eq!(denylist.trace_id, me.trace_id);
        assert_eq!(denylist.parent_span_id, me.span_id);
        assert_eq!(denylist.kind, SpanKind::Client as i32);
        assert_eq!(string_attribute(denylist, "db.system.name"), Some("redis"));
    }

    // Nothing secret went into any span.
    for span in &spans {
        for kv in &span.attributes {
            let text = format!("{:?}", kv.value);
            assert!(!text.contains(PASSWORD) && !text.contains(SECRET), "{kv:?}");
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn names(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}
