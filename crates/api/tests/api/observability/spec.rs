//! The OpenAPI document: served as 3.1, identical to the committed
//! `openapi.json` (drift check), complete against the route table, every
//! error a problem document, security schemes declared once.

use std::collections::BTreeSet;

use gatehouse_api::openapi::ApiDoc;
use gatehouse_core::rbac::Role;
use gatehouse_core::user::User;
use http::StatusCode;
use serde_json::Value;

use crate::harness::{Backend, TestApp};

const COMMITTED_SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");
const ROUTE_TABLE: &str = include_str!("../../../src/routes.rs");
const HANDLERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/handlers");
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn spec() -> Value {
    serde_json::from_str(&ApiDoc::json()).unwrap()
}

/// The arguments of every `opener...)` call in `source`, up to the matching
/// close parenthesis.
fn calls<'a>(source: &'a str, opener: &str) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(opener) {
        rest = &rest[at + opener.len()..];
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
            .expect("balanced parentheses");
        found.push(&rest[..end]);
    }
    found
}

/// `(path, method)` of the `#[utoipa::path]` on `handler` in
/// `src/handlers/{module}.rs`.
fn documented_route(module: &str, handler: &str) -> (String, String) {
    let source = std::fs::read_to_string(format!("{HANDLERS}/{module}.rs")).unwrap();
    let at = source
        .find(&format!("pub async fn {handler}("))
        .unwrap_or_else(|| panic!("{module}::{handler} is not a handler"));
    let attribute = source[..at]
        .rfind("#[utoipa::path(")
        .map(|start| &source[start + "#[utoipa::path(".len()..at])
        .unwrap_or_else(|| panic!("{module}::{handler} has no #[utoipa::path]"));
    let method = attribute.split(',').next().unwrap().trim().to_owned();
    let path = attribute
        .split("path = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a path literal")
        .to_owned();
    (path, method)
}

/// `(path, method)` of every route in the route table source: each handler
/// in a `routes!(...)` by its `#[utoipa::path]`, and any plain `.route(...)`
/// as written, so a route mounted without an OpenAPI entry fails here.
fn route_table() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for args in calls(ROUTE_TABLE, "routes!(") {
        for handler in args.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            let (module, name) = handler.split_once("::").expect("module::handler");
            routes.insert(documented_route(module, name));
        }
    }
    for args in calls(ROUTE_TABLE, ".route(") {
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

#[test]
fn every_operation_has_a_declared_tag() {
    let spec = spec();
    let declared: BTreeSet<&str> = spec["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let tags = op["tags"].as_array().unwrap();
            assert!(
                tags.iter().all(|t| declared.contains(t.as_str().unwrap())),
                "{method} {path}: tag {tags:?} is not in ApiDoc's tags(...)"
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
    assert_eq!(schemes, ["bearer", "oauth2", "api_key"]);
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
