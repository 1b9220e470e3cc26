//! Observability and docs: the OpenAPI document (served, committed, complete),
//! the docs page and its bundled assets, Prometheus metrics by route
//! template, and W3C `traceparent` in the access log.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use gatehouse_api::metrics::{self, CountingAuditSink};
use gatehouse_api::openapi::ApiDoc;
use gatehouse_core::audit::{AuditEvent, AuditSink, EventKind, Outcome, RequestMeta};
use gatehouse_core::rbac::Role;
use gatehouse_core::user::User;
use http::{Request, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::harness::{Backend, TestApp, TestDb, config, logs};

const COMMITTED_SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");
const ROUTE_TABLE: &str = include_str!("../../src/routes.rs");
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn spec() -> Value {
    serde_json::from_str(&ApiDoc::json()).unwrap()
}

/// `(path, method)` of every `.route(...)` in the route table source, so a
/// route added without an OpenAPI entry fails here.
fn route_table() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    let mut rest = ROUTE_TABLE;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        // The call's arguments: up to the matching close parenthesis.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("balanced .route(...)");
        let args = &rest[..end];
        let path = args.split('"').nth(1).expect("a path literal").to_owned();
        for method in METHODS {
            let call = format!("{method}(");
            let found = args.match_indices(&call).any(|(i, _)| {
                i == 0 || {
                    let before = args.as_bytes()[i - 1];
                    !(before.is_ascii_alphanumeric() || before == b'_' || before == b':')
                }
            });
            if found {
                routes.insert((path.clone(), method.to_owned()));
            }
        }
    }
    routes
}

#[test]
fn the_route_table_parser_sees_the_table() {
    let routes = route_table();
    assert!(routes.contains(&("/api/v1/users/{id}".into(), "patch".into())));
    assert!(routes.contains(&("/docs/{asset}".into(), "get".into())));
    assert!(routes.len() > 15, "{routes:?}");
}

#[tokio::test]
async fn the_spec_is_served_as_openapi_3_1() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("content-type"), Some("application/json"));
    let served = res.json();
    assert!(
        served["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        served["openapi"]
    );
    assert_eq!(served, spec());
    assert_eq!(served["info"]["title"], "Gatehouse");
}

/// Drift check: `openapi.json` at the repository root is what the code
/// generates. Regenerate with
/// `UPDATE_OPENAPI=1 cargo test -p gatehouse-api --test api committed_spec`.
#[test]
fn committed_spec_matches_the_code() {
    let generated = ApiDoc::json();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED_SPEC, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED_SPEC).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi.json differs from the generated document; regenerate it with \
         `UPDATE_OPENAPI=1 cargo test -p gatehouse-api --test api committed_spec` \
         and review the diff"
    );
}

#[test]
fn every_route_in_the_table_is_in_the_spec() {
    let spec = spec();
    let missing: Vec<String> = route_table()
        .into_iter()
        .filter(|(path, method)| spec["paths"][path][method].is_null())
        .map(|(path, method)| format!("{} {path}", method.to_uppercase()))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without an OpenAPI entry (add #[utoipa::path] and list the \
         handler in ApiDoc): {missing:?}"
    );
}

#[test]
fn every_documented_operation_is_routed() {
    let routes = route_table();
    let spec = spec();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(
                routes.contains(&(path.clone(), method.clone())),
                "{method} {path} is documented but not routed"
            );
        }
    }
}

#[test]
fn operation_ids_are_unique() {
    let spec = spec();
    let mut seen = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            assert!(
                seen.insert(id.to_owned()),
                "{method} {path}: operationId `{id}` is taken; set operation_id in #[utoipa::path]"
            );
        }
    }
}

/// Resolves a `$ref` to `#/components/...` in the document.
fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(pointer) => spec.pointer(pointer.trim_start_matches('#')).unwrap(),
        None => value,
    }
}

#[test]
fn every_error_is_a_problem_document() {
    let spec = spec();
    let problem = &spec["components"]["schemas"]["Problem"];
    let required: Vec<&str> = problem["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for field in ["type", "title", "status", "detail", "code", "request_id"] {
        assert!(required.contains(&field), "{field} is required");
    }
    assert!(problem["properties"]["errors"]["items"]["$ref"].is_string());
    let field_error = &spec["components"]["schemas"]["FieldError"]["properties"];
    assert!(field_error["field"].is_object() && field_error["message"].is_object());

    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for status in ["400", "408", "429", "500"] {
                assert!(responses.contains_key(status), "{method} {path}: {status}");
            }
            if op.get("requestBody").is_some() {
                for status in ["413", "415", "422"] {
                    assert!(responses.contains_key(status), "{method} {path}: {status}");
                }
            }
            for (status, response) in responses {
                if status.as_str() < "400" {
                    continue;
                }
                let response = resolve(&spec, response);
                let schema = &response["content"]["application/problem+json"]["schema"];
                assert_eq!(
                    schema["$ref"], "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
        }
    }
    let unauthorized = &spec["components"]["responses"]["Unauthorized"];
    assert!(unauthorized["headers"]["WWW-Authenticate"].is_object());
    let limited = &spec["components"]["responses"]["TooManyRequests"];
    assert!(limited["headers"]["Retry-After"].is_object());
}

#[test]
fn bearer_routes_document_401_and_their_schemes() {
    let spec = spec();
    let me = &spec["paths"]["/api/v1/users/me"]["get"];
    assert!(me["responses"]["401"].is_object());
    let schemes: Vec<&str> = me["security"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s.as_object().unwrap().keys().map(String::as_str))
        .collect();
    assert_eq!(schemes, ["bearer", "oauth2"]);
    // Public routes need no credentials.
    assert!(spec["paths"]["/api/v1/auth/register"]["post"]["security"].is_null());
}

#[test]
fn security_schemes_are_declared_once() {
    let spec = spec();
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
    assert_eq!(schemes["api_key"]["type"], "apiKey");
    assert_eq!(schemes["api_key"]["in"], "header");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    assert_eq!(schemes["refresh_cookie"]["in"], "cookie");
    assert_eq!(schemes["refresh_cookie"]["name"], "refresh_token");
    assert_eq!(schemes["oauth2"]["type"], "oauth2");
    assert_eq!(
        schemes["oauth2"]["flows"]["password"]["tokenUrl"],
        "/api/v1/auth/login"
    );
    // The token URL accepts the OAuth2 password form.
    let login = &spec["paths"]["/api/v1/auth/login"]["post"]["requestBody"]["content"];
    assert!(login["application/x-www-form-urlencoded"].is_object());
    assert!(login["application/json"].is_object());
}

/// The `User` schema mirrors what the domain type serialises to.
#[test]
fn the_user_schema_matches_the_serialised_user() {
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let user = User {
        id: uuid::Uuid::now_v7(),
        username: "jane".into(),
        email: "jane@example.com".into(),
        email_verified: false,
        full_name: None,
        role: Role::User,
        is_active: true,
        mfa_enabled: false,
        created_at: now,
        updated_at: now,
        auth_version: 0,
    };
    let serialised = serde_json::to_value(&user).unwrap();
    let keys: BTreeSet<&String> = serialised.as_object().unwrap().keys().collect();
    let spec = spec();
    let schema = &spec["components"]["schemas"]["User"];
    let properties: BTreeSet<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(keys, properties);
    let required = schema["required"].as_array().unwrap();
    assert_eq!(required.len(), keys.len(), "every field is always present");
}

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
