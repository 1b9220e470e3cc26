//! Prometheus metrics: their names, the functions that record them, and the
//! private `/metrics` endpoint served on `METRICS_ADDR`, never on the public
//! port. Every label has a bounded set of values: routes are matched
//! templates (`/api/v1/users/{id}`), never raw paths.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use gatehouse_core::audit::{AuditEvent, AuditSink};
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, StatusCode};
use metrics::{Counter, Histogram, Label, Unit};
pub use metrics_exporter_prometheus::PrometheusHandle;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};
use tokio::net::TcpListener;

/// Requests served, by `method`, `route` and `status`.
pub const HTTP_REQUESTS: &str = "gatehouse_http_requests_total";
/// Request latency in seconds (histogram), same labels.
pub const HTTP_DURATION: &str = "gatehouse_http_request_duration_seconds";
/// Security events, by `event` (the audit name) and `outcome`.
pub const AUTH_EVENTS: &str = "gatehouse_auth_events_total";
/// Requests refused by a rate limit, by `route`.
pub const RATE_LIMITED: &str = "gatehouse_rate_limited_total";
/// Database pool connections, by `state` (`in_use`, `idle`).
pub const DB_POOL_CONNECTIONS: &str = "gatehouse_db_pool_connections";
/// The pool's configured maximum.
pub const DB_POOL_MAX: &str = "gatehouse_db_pool_max_connections";
/// Mails sent through the outbox.
pub const MAIL_SENT: &str = "gatehouse_mail_sent_total";
/// Attempts to send that failed and will be retried.
pub const MAIL_FAILED: &str = "gatehouse_mail_failed_total";
/// Mails given up (refused for good, or still unsent after 24 hours).
pub const MAIL_GIVEN_UP: &str = "gatehouse_mail_given_up_total";
/// Always 1; the `version` label names the running build.
pub const BUILD_INFO: &str = "gatehouse_build_info";

/// The `route` of a request that matched no route (unknown paths, refused
/// hosts): probing random paths cannot create new series.
pub const UNMATCHED_ROUTE: &str = "<unmatched>";

/// Latency buckets (seconds): fine below 100 ms where most requests land,
/// coarse up to the request timeout. Argon2 logins sit around 50–500 ms.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often histograms are drained and idle state is compacted.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the process-wide Prometheus recorder (once; later calls return
/// the same handle). Until it is installed, recording is a no-op.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let mut slot = HANDLE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = slot.as_ref() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), LATENCY_BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    *slot = Some(handle.clone());
    INSTALLED.store(true, Ordering::Release);
    describe();
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
}

fn describe() {
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests served");
    metrics::describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request latency");
    metrics::describe_counter!(AUTH_EVENTS, "Security events by name and outcome");
    metrics::describe_counter!(RATE_LIMITED, "Requests refused by a rate limit");
    metrics::describe_gauge!(DB_POOL_CONNECTIONS, "Database pool connections");
    metrics::describe_gauge!(DB_POOL_MAX, "Database pool maximum size");
    metrics::describe_gauge!(BUILD_INFO, "Build information (always 1)");
    metrics::describe_counter!(MAIL_SENT, "Mails sent through the outbox");
    metrics::describe_counter!(MAIL_FAILED, "Mail attempts that failed and will be retried");
    metrics::describe_counter!(MAIL_GIVEN_UP, "Mails given up after 24 hours or a refusal");
    // Present from the start, so a scrape shows zero rather than nothing.
    for name in [MAIL_SENT, MAIL_FAILED, MAIL_GIVEN_UP] {
        metrics::counter!(name).increment(0);
    }
}

/// Standard methods keep their name; anything else is `OTHER`, so invented
/// methods cannot create series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The two series of one (method, route, status), looked up once: building
/// the label set and finding it in the registry cost more than recording.
struct RequestSeries {
    method: &'static str,
    status: StatusCode,
    requests: Counter,
    duration: Histogram,
}

/// Route template → its series. Bounded like the labels themselves.
static SERIES: LazyLock<RwLock<HashMap<Box<str>, Vec<RequestSeries>>>> =
    LazyLock::new(RwLock::default);

/// One served request. `route` is the matched template or
/// [`UNMATCHED_ROUTE`].
pub fn record_request(method: &Method, route: &str, status: StatusCode, elapsed: Duration) {
    let method = method_label(method);
    let seconds = elapsed.as_secs_f64();
    // Handles are kept only once the recorder is installed: before, they
    // are no-ops and would stay so.
    if !INSTALLED.load(Ordering::Acquire) {
        let labels = request_labels(method, route, status);
        metrics::counter!(HTTP_REQUESTS, labels.iter()).increment(1);
        metrics::histogram!(HTTP_DURATION, labels).record(seconds);
        return;
    }
    let find = |series: &HashMap<Box<str>, Vec<RequestSeries>>| {
        series.get(route).and_then(|list| {
            list.iter()
                .find(|s| s.method == method && s.status == status)
                .map(|s| {
                    s.requests.increment(1);
                    s.duration.record(seconds);
                })
        })
    };
    if find(&SERIES.read().unwrap_or_else(PoisonError::into_inner)).is_some() {
        return;
    }
    let mut series = SERIES.write().unwrap_or_else(PoisonError::into_inner);
    if find(&series).is_some() {
        return;
    }
    let labels = request_labels(method, route, status);
    let entry = RequestSeries {
        method,
        status,
        requests: metrics::counter!(HTTP_REQUESTS, labels.iter()),
        duration: metrics::histogram!(HTTP_DURATION, labels),
    };
    entry.requests.increment(1);
    entry.duration.record(seconds);
    series.entry(route.into()).or_default().push(entry);
}

fn request_labels(method: &'static str, route: &str, status: StatusCode) -> Vec<Label> {
    vec![
        Label::new("method", method),
        Label::new("route", route.to_owned()),
        Label::new("status", status.as_str().to_owned()),
    ]
}

/// One security event, by its audit name (`login_failed`, `account_locked`,
/// …) and outcome (`success`, `failure`).
pub fn record_auth_event(event: &'static str, outcome: &'static str) {
    metrics::counter!(AUTH_EVENTS, "event" => event, "outcome" => outcome).increment(1);
}

/// One request refused by a rate limit on `route` (a matched template).
pub fn record_rate_limited(route: &str) {
    metrics::counter!(RATE_LIMITED, "route" => route.to_owned()).increment(1);
}

/// What one step of the outbox sender did.
pub fn record_mail(sent: u64, failed: u64, given_up: u64) {
    metrics::counter!(MAIL_SENT).increment(sent);
    metrics::counter!(MAIL_FAILED).increment(failed);
    metrics::counter!(MAIL_GIVEN_UP).increment(given_up);
}

/// The database pool's current use.
pub fn set_db_pool(in_use: u32, idle: u32, max: u32) {
    metrics::gauge!(DB_POOL_CONNECTIONS, "state" => "in_use").set(f64::from(in_use));
    metrics::gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(f64::from(idle));
    metrics::gauge!(DB_POOL_MAX).set(f64::from(max));
}

/// The private metrics application: `GET /metrics` in the Prometheus text
/// format. It carries none of the public stack (no auth, CORS or docs):
/// keep `METRICS_ADDR` on a private interface.
pub fn router(handle: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(handle)
}

/// Serves [`router`] on an already-bound listener until `shutdown`
/// completes.
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(handle))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn render(State(handle): State<PrometheusHandle>) -> impl IntoResponse {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
}

/// Counts every security event by name and outcome, then hands it on: the
/// audit path feeds `gatehouse_auth_events_total` without the domain knowing
/// about metrics.
#[derive(Debug)]
pub struct CountingAuditSink {
    inner: Arc<dyn AuditSink>,
}

impl CountingAuditSink {
    pub fn new(inner: Arc<dyn AuditSink>) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl AuditSink for CountingAuditSink {
    async fn record(&self, event: AuditEvent) {
        record_auth_event(event.kind.as_str(), event.outcome.as_str());
        self.inner.record(event).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let odd = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&odd), "OTHER");
    }
}
