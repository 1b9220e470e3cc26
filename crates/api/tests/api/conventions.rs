//! Conventions of the contract: problem responses, request ids, body limits,
//! media types, trailing slashes and the Host allow-list.

use axum::body::Body;
use futures_util::stream;
use http::{Request, StatusCode};

use crate::harness::{Backend, TestApp, backends, config, probes};

async fn app() -> TestApp {
    TestApp::with(
        &Backend::Sqlite,
        &[("MAX_BODY_BYTES", "1024")],
        probes::routes(),
    )
    .await
}

#[tokio::test]
async fn unknown_route_is_a_problem_404() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let res = app.get("/api/v1/nothing-here").await;
        let body = res.assert_problem(StatusCode::NOT_FOUND, "not_found");
        assert_eq!(body["title"], "Not Found");
    }
}

#[tokio::test]
async fn wrong_method_is_a_problem_405_with_allow() {
    let app = app().await;
    let res = app
        .send(Request::delete("/health").body(Body::empty()).unwrap())
        .await;
    res.assert_problem(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let allow = res.header("allow").expect("405 carries Allow");
    assert!(allow.contains("GET"), "{allow}");
}

#[tokio::test]
async fn trailing_slash_answers_identically() {
    let app = app().await;
    let plain = app.get("/health").await;
    let slashed = app.get("/health/").await;
    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(slashed.status, StatusCode::OK);
    assert_eq!(plain.json(), slashed.json());
}

#[tokio::test]
async fn health_reports_ok_and_version() {
    let app = app().await;
    let body = app.get("/health").await.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn request_id_is_echoed_when_valid_and_generated_otherwise() {
    let app = app().await;
    let with_id = |id: &str| {
        Request::get("/health")
            .header("x-request-id", id)
            .body(Body::empty())
            .unwrap()
    };
    let res = app.send(with_id("client-id_1.2")).await;
    assert_eq!(res.header("x-request-id"), Some("client-id_1.2"));

    for bad in ["a".repeat(65), "has space".into(), "semi;colon".into()] {
        let res = app.send(with_id(&bad)).await;
        let id = res.header("x-request-id").unwrap();
        assert_ne!(id, bad);
        assert!(uuid::Uuid::parse_str(id).is_ok(), "generated id {id}");
    }

    let res = app.get("/missing").await;
    let body = res.assert_problem(StatusCode::NOT_FOUND, "not_found");
    assert!(uuid::Uuid::parse_str(body["request_id"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn body_over_the_limit_with_content_length_is_413() {
    let app = app().await;
    let body = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(2000));
    let res = app.post_json("/test/echo", &body).await;
    res.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    let app = app().await;
    // No Content-Length: the limit must trip while the stream is read.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![b' '; 100])).collect();
    let req = Request::post("/test/echo")
        .header("content-type", "application/json")
        .body(Body::from_stream(stream::iter(chunks)))
        .unwrap();
    assert!(req.headers().get("content-length").is_none());
    let res = app.send(req).await;
    res.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn body_under_the_limit_passes() {
    let app = app().await;
    let res = app
        .post_json("/test/echo", r#"{"name":"a","count":2}"#)
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["count"], 2);
}

#[tokio::test]
async fn non_json_media_type_is_415() {
    let app = app().await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = Request::post("/test/echo");
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let res = app
            .send(req.body(Body::from(r#"{"name":"a","count":1}"#)).unwrap())
            .await;
        res.assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
    let ok = app
        .send(
            Request::post("/test/echo")
                .header("content-type", "application/json; charset=utf-8")
                .body(Body::from(r#"{"name":"a","count":1}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_and_invalid_json_is_422_with_fields_and_no_echo() {
    let app = app().await;
    let cases = [
        (r#"{"name": "#, "body"),
        (r#"{"name":"a"}"#, "count"),
        (r#"{"name":"a","count":"SECRET-INPUT"}"#, "count"),
        (r#"{"name":"a","count":1,"is_admin":true}"#, "is_admin"),
        ("null", "body"),
    ];
    for (body, field) in cases {
        let res = app.post_json("/test/echo", body).await;
        let problem = res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
        let errors = problem["errors"]
            .as_array()
            .expect("errors listed in development");
        assert_eq!(errors[0]["field"], field, "{body}: {problem}");
        assert!(errors[0]["message"].is_string());
        assert!(!String::from_utf8_lossy(&res.body).contains("SECRET-INPUT"));
    }
}

#[tokio::test]
async fn production_hides_validation_details_by_default() {
    let db = crate::harness::TestDb::new(&Backend::Sqlite).await;
    let cfg = config(&[
        ("ENVIRONMENT", "production"),
        ("CORS_ORIGINS", "https://app.example"),
        ("SMTP_URL", "smtp://127.0.0.1:25"),
        ("WEBAUTHN_RP_ID", "app.example"),
        ("WEBAUTHN_ORIGINS", "https://app.example"),
    ]);
    let app = TestApp::on(db, cfg, probes::routes());
    let res = app.post_json("/test/echo", r#"{"name":"a"}"#).await;
    let body = res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn internal_errors_say_nothing_internal() {
    let app = app().await;
    for path in ["/test/internal", "/test/panic"] {
        let res = app.get(path).await;
        let body = res.assert_problem(StatusCode::INTERNAL_SERVER_ERROR, "internal_error");
        assert_eq!(body["detail"], "An unexpected error occurred");
        let text = String::from_utf8_lossy(&res.body);
        for leak in ["SELECT", "/srv", ".rs", "boom", "HiddenCause", "panicked"] {
            assert!(!text.contains(leak), "{leak} leaked in {text}");
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn slow_requests_time_out_with_a_problem_408() {
    let app = TestApp::with(
        &Backend::Sqlite,
        &[("REQUEST_TIMEOUT_SECS", "1")],
        probes::routes(),
    )
    .await;
    // Paused time advances straight to the next timer: no real waiting.
    tokio::time::pause();
    let res = app.get("/test/slow").await;
    res.assert_problem(StatusCode::REQUEST_TIMEOUT, "request_timeout");
}

#[tokio::test]
async fn unknown_host_is_refused() {
    let app = app().await;
    for host in ["evil.example", "localhost.evil.example", "127.0.0.2"] {
        let res = app
            .send(
                Request::get("/health")
                    .header("host", host)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        res.assert_problem(StatusCode::BAD_REQUEST, "invalid_host");
    }
    for host in ["localhost", "localhost:8000", "127.0.0.1:8000"] {
        let res = app
            .send(
                Request::get("/health")
                    .header("host", host)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{host}");
    }
}

#[tokio::test]
async fn wildcard_hosts_match_subdomains_only() {
    let app = TestApp::with(
        &Backend::Sqlite,
        &[("ALLOWED_HOSTS", "*.example.com")],
        probes::routes(),
    )
    .await;
    let get = |host: &'static str| {
        Request::get("/health")
            .header("host", host)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        app.send(get("api.example.com")).await.status,
        StatusCode::OK
    );
    app.send(get("example.com"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_host");
    app.send(get("localhost"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_host");
}
