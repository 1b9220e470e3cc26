//! Renders every error response as RFC 9457 `application/problem+json` with
//! the request id, and logs the hidden cause of 5xx responses once.

use axum::body::Body;
use axum::response::Response;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use serde_json::{Map, Value, json};

use crate::error::{InternalCause, Problem};
use crate::state::AppState;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Turns an error response into the problem document; other responses pass
/// unchanged.
pub fn render(state: &AppState, request_id: &str, mut res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let described = res.extensions_mut().remove::<Problem>();
    let cause = res.extensions_mut().remove::<InternalCause>();
    if status.is_server_error() {
        match &cause {
            Some(cause) => {
                tracing::error!(request_id, status = status.as_u16(), error = %cause, "request failed")
            }
            None if described.is_none() => {
                tracing::error!(
                    request_id,
                    status = status.as_u16(),
                    "request failed without a described cause"
                )
            }
            None => {}
        }
    }
    let problem = described.unwrap_or_else(|| Problem::for_status(status));
    let show_errors = state.http().expose_validation_details;
    let body = problem_body(status, &problem, request_id, show_errors);

    // Whatever body the response had (a layer's plain text, an extractor's
    // message) is replaced: only the problem document reaches the client.
    let bytes = body.to_string();
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    *res.body_mut() = Body::from(bytes);
    res
}

fn problem_body(
    status: StatusCode,
    problem: &Problem,
    request_id: &str,
    show_errors: bool,
) -> Value {
    let mut body = Map::new();
    if let Some(ext) = &problem.extensions {
        body.extend(ext.clone());
    }
    body.insert("type".into(), json!("about:blank"));
    body.insert(
        "title".into(),
        json!(status.canonical_reason().unwrap_or("Error")),
    );
    body.insert("status".into(), json!(status.as_u16()));
    body.insert("detail".into(), json!(problem.detail));
    body.insert("code".into(), json!(problem.code));
    body.insert("request_id".into(), json!(request_id));
    if let Some(errors) = &problem.errors
        && show_errors
    {
        body.insert("errors".into(), json!(errors));
    }
    Value::Object(body)
}
