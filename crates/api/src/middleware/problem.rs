//! Renders every error response as RFC 9457 `application/problem+json` with
//! the request id (the hosted pages' own error pages excepted), and logs the
//! hidden cause of 5xx responses once.

use axum::body::Body;
use axum::response::Response;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::{FieldError, InternalCause, Problem};
use crate::state::AppState;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Marks an error response whose body is a page written for people (the
/// hosted pages): its cause is logged like any other, its body is kept.
#[derive(Debug, Clone, Copy)]
pub struct PageBody;

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
    if res.extensions().get::<PageBody>().is_some() {
        return res;
    }
    let problem = described.unwrap_or_else(|| Problem::for_status(status));
    let show_errors = state.http().expose_validation_details;
    // Whatever body the response had (a layer's plain text, an extractor's
    // message) is replaced: only the problem document reaches the client.
    let bytes = problem_body(status, &problem, request_id, show_errors);
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    *res.body_mut() = Body::from(bytes);
    res
}

/// An error, as every non-2xx response carries it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Problem, example = json!({
    "type": "about:blank", "title": "Unauthorized", "status": 401,
    "detail": "Invalid email or password", "code": "invalid_credentials",
    "request_id": "0190b6c1-7a4e-7c2a-9d1e-3f5a8b2c4d6e"
}))]
pub struct ProblemBody<'a> {
    /// Always `about:blank`: `code` identifies the problem.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The status's reason phrase.
    title: &'static str,
    status: u16,
    /// A short human sentence.
    detail: &'a str,
    /// Stable snake_case machine code (`validation_error`, `not_found`, …).
    code: &'static str,
    /// Equals the response's `X-Request-ID`.
    request_id: &'a str,
    /// Validation failures only (422), unless hidden in production.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    errors: Option<&'a [FieldError]>,
    /// Extra members (RFC 9457 §3.2), e.g. readiness `checks`, never named
    /// like the members above; documented by the responses that carry them.
    #[serde(flatten)]
    #[schema(ignore)]
    extensions: Option<&'a Map<String, Value>>,
}

fn problem_body(
    status: StatusCode,
    problem: &Problem,
    request_id: &str,
    show_errors: bool,
) -> String {
    let body = ProblemBody {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail: &problem.detail,
        code: problem.code,
        request_id,
        errors: problem.errors.as_deref().filter(|_| show_errors),
        extensions: problem.extensions.as_ref(),
    };
    // Strings, numbers and JSON values only: serialising cannot fail.
    serde_json::to_string(&body).unwrap_or_default()
}
