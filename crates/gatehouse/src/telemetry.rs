//! Logging and tracing.
//!
//! - Logs: JSON lines (default) or human-readable output, filtered by
//!   `LOG_LEVEL` (a level or a `tracing` filter directive). Logs are events
//!   only: spans never reach the log writer, so a request costs the same
//!   with or without tracing.
//! - Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the request spans
//!   and the database and Redis spans below them are exported over OTLP
//!   (HTTP/protobuf) in batches from a background thread. The standard
//!   `OTEL_*` variables of the exporter and the SDK (headers, timeout,
//!   sampler, batch sizes) are honoured.

use std::time::Duration;

use gatehouse_core::config::redact_url;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, FilterExt, Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, Registry};

use crate::settings::{LogFormat, RuntimeConfig};

/// How long stopping may wait for the last batch of spans to be sent.
const EXPORT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Installs the global subscriber. The guard flushes and stops the trace
/// exporter when dropped; drop it outside the async runtime (the exporter
/// blocks while it sends the last batch).
pub fn init(config: &RuntimeConfig) -> Result<Guard, String> {
    let (subscriber, provider) = subscriber(config)?;
    if let Err(err) = tracing::subscriber::set_global_default(subscriber) {
        eprintln!("logging is already initialised: {err}");
    }
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }
    Ok(Guard { provider })
}

type Subscriber = Box<dyn tracing::Subscriber + Send + Sync>;

/// The log writer and, when configured, the trace exporter.
fn subscriber(config: &RuntimeConfig) -> Result<(Subscriber, Option<SdkTracerProvider>), String> {
    let filter = EnvFilter::try_new(&config.log_level)
        .map_err(|_| format!("LOG_LEVEL: `{}` is not a level or filter", config.log_level))?;
    let logs = match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stdout)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stdout)
            .boxed(),
    }
    .with_filter(filter.and(filter_fn(|meta| meta.is_event())));
    // Not `.with(Option<layer>)`: an absent optional layer declares interest
    // in every callsite, which would build every span and log field even
    // when nothing is exported and the level filters them out.
    let registry = Registry::default().with(logs);
    let Some(endpoint) = &config.otel_endpoint else {
        return Ok((Box::new(registry), None));
    };
    let provider = tracer_provider(endpoint, &config.otel_service_name)?;
    // Our own spans (requests, database, Redis), not those of libraries.
    let ours = Targets::new()
        .with_target("gatehouse", Level::INFO)
        .with_target("gatehouse_api", Level::INFO)
        .with_target("gatehouse_store", Level::INFO)
        .with_target("gatehouse_cache", Level::INFO);
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("gatehouse"))
        .with_filter(ours.and(filter_fn(|meta| meta.is_span())));
    Ok((Box::new(registry.with(traces)), Some(provider)))
}

fn tracer_provider(endpoint: &str, service_name: &str) -> Result<SdkTracerProvider, String> {
    let mut exporter = SpanExporter::builder().with_http();
    // The signal-specific variable, when set, is the full URL and wins (as
    // the OTLP specification says); otherwise traces go to `/v1/traces`
    // under the configured base URL.
    if std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none() {
        exporter = exporter.with_endpoint(traces_url(endpoint));
    }
    // The error may quote the URL, which may hold credentials.
    let exporter = exporter.build().map_err(|e| {
        let e = e.to_string().replace(endpoint, &redact_url(endpoint));
        format!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the exporter: {e}")
    })?;
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT` is a base URL; the traces path is appended.
fn traces_url(base: &str) -> String {
    format!("{}/v1/traces", base.trim_end_matches('/'))
}

#[derive(Debug)]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown_with_timeout(EXPORT_SHUTDOWN_TIMEOUT)
        {
            eprintln!("trace export: the last spans may be lost: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{subscriber, traces_url};
    use crate::settings::{RuntimeConfig, Settings};

    fn config(vars: &[(&str, &str)]) -> RuntimeConfig {
        Settings::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .expect("valid test configuration")
            .runtime
    }

    /// One test, not two: callsite interest is shared by every live
    /// subscriber in the process, so subscribers built side by side in
    /// parallel tests would see each other's interest.
    #[test]
    fn spans_exist_only_when_exported_and_filtered_logs_cost_nothing() {
        let (sub, provider) = subscriber(&config(&[("LOG_LEVEL", "warn")])).expect("subscriber");
        assert!(provider.is_none());
        tracing::subscriber::with_default(sub, || {
            assert!(tracing::info_span!("request").is_disabled());
            assert!(!tracing::event_enabled!(tracing::Level::INFO));
            assert!(tracing::event_enabled!(tracing::Level::WARN));
        });
        // At the default level the log lines are on, the spans still off.
        let (sub, _) = subscriber(&config(&[])).expect("subscriber");
        tracing::subscriber::with_default(sub, || {
            assert!(tracing::info_span!("request").is_disabled());
            assert!(tracing::event_enabled!(tracing::Level::INFO));
        });
        // With export, our spans are recorded; logs keep their own level.
        let vars = [
            ("LOG_LEVEL", "warn"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ];
        let (sub, provider) = subscriber(&config(&vars)).expect("subscriber");
        tracing::subscriber::with_default(sub, || {
            assert!(!tracing::info_span!("request").is_disabled());
            assert!(
                !tracing::event_enabled!(tracing::Level::INFO),
                "logs still at warn"
            );
        });
        drop(provider);
    }

    #[test]
    fn the_traces_path_is_appended_to_the_base_url() {
        assert_eq!(
            traces_url("http://collector:4318"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(traces_url("http://gw/otlp"), "http://gw/otlp/v1/traces");
    }
}
