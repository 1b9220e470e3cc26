//! W3C Trace Context: the trace id of an incoming `traceparent` header, so a
//! request's log line joins the caller's distributed trace, and the request
//! span that exported traces hang from.

use http::{HeaderMap, HeaderName, Method};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt as _;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Length of `version-traceid-parentid-flags` for version `00`.
const LEN: usize = 55;

fn is_lower_hex(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The trace id of a valid `traceparent` value, else `None`. Rules of W3C
/// Trace Context §3.2: lowercase hex, version `ff` invalid, all-zero trace
/// and parent ids invalid; later versions may append `-`-separated fields.
pub fn trace_id(value: &[u8]) -> Option<&str> {
    let head = value.get(..LEN)?;
    let version = &head[0..2];
    if !is_lower_hex(version) || version == b"ff" {
        return None;
    }
    if value.len() > LEN && (version == b"00" || value[LEN] != b'-') {
        return None;
    }
    if head[2] != b'-' || head[35] != b'-' || head[52] != b'-' {
        return None;
    }
    let (trace, parent, flags) = (&head[3..35], &head[36..52], &head[53..55]);
    if !is_lower_hex(trace) || !is_lower_hex(parent) || !is_lower_hex(flags) {
        return None;
    }
    if trace.iter().all(|&b| b == b'0') || parent.iter().all(|&b| b == b'0') {
        return None;
    }
    std::str::from_utf8(trace).ok()
}

/// The server span of one request. It is disabled (and costs next to
/// nothing) unless traces are exported; then it joins the caller's trace
/// when a valid `traceparent` came with the request.
pub fn request_span(method: &Method, headers: &HeaderMap, request_id: &str) -> Span {
    let span = tracing::info_span!(
        "request",
        otel.name = %method,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = Empty,
        http.response.status_code = Empty,
        request_id,
    );
    if !span.is_disabled() && headers.contains_key(&TRACEPARENT) {
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&Headers(headers))
        });
        let _ = span.set_parent(parent);
    }
    span
}

/// The trace id the exporter gives `span`, for the log line of a request
/// that did not bring one; `None` while traces are not exported.
pub fn exported_trace_id(span: &Span) -> Option<String> {
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// Names the span after the matched route template and records the status.
pub fn finish_span(span: &Span, method: &Method, route: &str, status: u16) {
    if span.is_disabled() {
        return;
    }
    // The exported span has started by now: it is renamed, not rebuilt.
    span.context()
        .span()
        .update_name(format!("{method} {route}"));
    span.record("http.route", route);
    span.record("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::trace_id;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn valid_headers_yield_their_trace_id() {
        assert_eq!(
            trace_id(VALID.as_bytes()),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        // A later version may carry more fields after a dash.
        let future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
        assert_eq!(
            trace_id(future.as_bytes()),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }

    #[test]
    fn invalid_headers_are_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(trace_id(bad.as_bytes()), None, "{bad}");
        }
    }
}
