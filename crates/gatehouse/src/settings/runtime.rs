//! The binary's own settings: listeners, storage connections, logs, traces
//! and shutdown. Only the binary reads them: it wires the adapters and runs
//! the process.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use gatehouse_core::config::{
    Choice, Flag, Int, Kind, NO_DEFAULT, OneOf, Parsed, Reader, Span, Text, Url, redact_url,
};
use secrecy::SecretString;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl Choice for LogFormat {
    const NAMES: &'static [(Self, &'static str)] =
        &[(Self::Json, "json"), (Self::Pretty, "pretty")];
}

gatehouse_core::settings! {
    /// The database connection pool.
    #[derive(Debug)]
    pub struct DatabaseConfig given (data_dir: &Path) {
        // May hold a password: shown only through `redact_url`.
        /// `sqlite://…` or `postgres://user:pass@host/db`
        pub url: SecretString = "DATABASE_URL", Url {
            schemes: &["sqlite:", "postgres://", "postgresql://"],
            expected: "expected a sqlite:// or postgres:// URL",
        },
            default format!("sqlite://{}", data_dir.join("gatehouse.db").display())
            => "`sqlite://DATA_DIR/gatehouse.db`";
        /// largest number of pooled connections
        pub max_connections: u32 = "DATABASE_MAX_CONNECTIONS", Int(1, 1000), default 10;
        /// connections kept open when idle
        pub min_connections: u32 = "DATABASE_MIN_CONNECTIONS", Int(0, 1000), default 0;
        /// how long a request waits for a pooled connection
        pub acquire_timeout: Duration = "DATABASE_ACQUIRE_TIMEOUT_SECS", Span::secs(1, 600),
            default 5;
        /// how long an unused connection stays open
        pub idle_timeout: Duration = "DATABASE_IDLE_TIMEOUT_SECS", Span::secs(1, 86_400),
            default 600;
        /// migrate on `serve` (and before `create-admin` and `rotate-keys`)
        pub run_migrations: bool = "RUN_MIGRATIONS", Flag, default true;
    }
}

gatehouse_core::settings! {
    /// What the binary wires and runs, validated.
    #[derive(Debug)]
    pub struct RuntimeConfig given (data_dir: &Path) {
        /// listen address (`:0` picks a free port; the startup log names it)
        pub bind_addr: SocketAddr = "BIND_ADDR", Parsed,
            default SocketAddr::from(([127, 0, 0, 1], 8000));
        /// Prometheus listener (`GET /metrics`); never the public port; `:0`
        /// picks a free port; production refuses a non-loopback address
        /// unless `METRICS_PUBLIC=true`
        pub metrics_addr: SocketAddr = "METRICS_ADDR", Parsed,
            default SocketAddr::from(([127, 0, 0, 1], 9090));
        /// allow a non-loopback `METRICS_ADDR` in production (the metrics
        /// listener has no authentication: put it behind a firewall)
        pub metrics_public: bool = "METRICS_PUBLIC", Flag, default false;
        /// plain-HTTP listener that only redirects (308) to HTTPS on
        /// `BIND_ADDR`; needs `TLS_CERT_FILE`
        pub redirect_addr: Option<SocketAddr> = "HTTP_REDIRECT_ADDR", Address;
        pub database: DatabaseConfig = group(data_dir);
        /// `redis://…`; shares limits, lockouts, denylist and cache across
        /// instances
        pub redis_url: Option<SecretString> = "REDIS_URL", Url {
            schemes: &["redis://", "rediss://"],
            expected: "expected a redis:// or rediss:// URL",
        };
        /// prefix of every Redis key (several deployments can share a server)
        pub redis_key_prefix: String = "REDIS_KEY_PREFIX", Text, default "gatehouse:";
        /// level or `tracing` filter
        pub log_level: String = "LOG_LEVEL", Text, default "info";
        /// `json` or `pretty`
        pub log_format: LogFormat = "LOG_FORMAT", OneOf, default LogFormat::Json;
        /// how long shutdown waits for in-flight requests
        pub shutdown_grace: Duration = "SHUTDOWN_GRACE_SECS", Span::secs(0, 3600), default 30;
        /// OpenTelemetry trace export over OTLP/HTTP (protobuf) to this
        /// collector base URL (`http://…`; traces go to `/v1/traces`); unset: no
        /// export. See [Traces](#traces)
        pub otel_endpoint: Option<String> = "OTEL_EXPORTER_OTLP_ENDPOINT", Collector;
        /// service name of the exported traces
        pub otel_service_name: String = "OTEL_SERVICE_NAME", Text, default "gatehouse";
    }
}

impl RuntimeConfig {
    /// Reads the table, then applies the rules that span several settings.
    pub fn load(r: &mut Reader, data_dir: &Path, production: bool) -> Self {
        let config = Self::read(r, data_dir);
        if production && !config.metrics_addr.ip().is_loopback() && !config.metrics_public {
            r.problem(
                "METRICS_ADDR",
                "is not a loopback address: the metrics listener has no authentication \
                 (set METRICS_PUBLIC=true to allow it)",
            );
        }
        if config.database.min_connections > config.database.max_connections {
            r.problem(
                "DATABASE_MIN_CONNECTIONS",
                "must not exceed DATABASE_MAX_CONNECTIONS",
            );
        }
        config
    }
}

/// An optional listen address: unset, no listener.
#[derive(Debug, Clone, Copy)]
struct Address;

impl Kind<Option<SocketAddr>> for Address {
    type Default = ();

    fn read(&self, r: &mut Reader, var: &'static str, (): ()) -> Option<SocketAddr> {
        let raw = r.raw(var)?;
        match raw.parse() {
            Ok(addr) => Some(addr),
            Err(e) => {
                r.problem(var, format!("cannot parse `{raw}`: {e}"));
                None
            }
        }
    }

    fn show(&self, value: &Option<SocketAddr>) -> Value {
        value.map_or(Value::Null, |addr| Value::from(addr.to_string()))
    }

    fn describe(&self, (): &()) -> String {
        NO_DEFAULT.to_owned()
    }
}

/// The base URL of an OTLP/HTTP collector: plain `http://`, since this
/// build's exporter has no TLS.
#[derive(Debug, Clone, Copy)]
struct Collector;

impl Kind<Option<String>> for Collector {
    type Default = ();

    fn read(&self, r: &mut Reader, var: &'static str, (): ()) -> Option<String> {
        let endpoint = r.raw(var)?;
        if endpoint.starts_with("https://") {
            r.problem(
                var,
                "https is not supported by this build's exporter: send to a collector \
                 on the same host or network over http:// and let it forward over TLS",
            );
        } else if !endpoint.starts_with("http://") || endpoint.len() == "http://".len() {
            r.problem(
                var,
                "expected the collector's OTLP/HTTP base URL, e.g. http://127.0.0.1:4318",
            );
        }
        Some(endpoint)
    }

    fn show(&self, value: &Option<String>) -> Value {
        value.as_deref().map(redact_url).into()
    }

    fn describe(&self, (): &()) -> String {
        NO_DEFAULT.to_owned()
    }
}
