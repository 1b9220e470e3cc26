//! The HTTP layer's settings (CORS, hosts, proxies, cookies, body limit,
//! validation details, docs, HSTS, time limit, TLS, connections, the hosted
//! pages), declared once like the domain's, and [`AppConfig`]: everything
//! the state is configured with.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use gatehouse_core::config::{
    Config, ConfigError, Each, Flag, Group, Int, Path, Reader, Span, View,
};
use gatehouse_core::network::HostPattern;
use ipnet::IpNet;
use serde_json::Value;

gatehouse_core::settings! {
    /// Cross-origin requests (the Fetch standard's CORS protocol).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CorsConfig {
        /// comma-separated origins; `*` only with `CORS_ALLOW_CREDENTIALS=false`
        pub origins: Vec<String> = "CORS_ORIGINS", Each(origin),
            default "http://localhost:3000";
        /// methods cross-origin requests may use
        pub allow_methods: Vec<String> = "CORS_ALLOW_METHODS", Each(method),
            default "GET, POST, PUT, PATCH, DELETE";
        /// request headers cross-origin requests may send
        pub allow_headers: Vec<String> = "CORS_ALLOW_HEADERS", Each(header_name),
            default "Authorization, Content-Type, X-API-Key, X-Request-ID";
        /// whether cross-origin requests may carry the refresh cookie
        pub allow_credentials: bool = "CORS_ALLOW_CREDENTIALS", Flag, default true;
        /// how long browsers may cache a preflight answer
        pub max_age: Duration = "CORS_MAX_AGE_SECS", Span::secs(0, 86_400), default 600;
    }
}

gatehouse_core::settings! {
    /// Serving HTTPS directly: both files or neither.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TlsConfig {
        /// certificate chain (PEM, leaf first) to serve HTTPS directly on
        /// `BIND_ADDR`; re-read with the key on SIGHUP
        pub cert_file: Option<PathBuf> = "TLS_CERT_FILE", Path;
        /// private key (PEM) of `TLS_CERT_FILE`
        pub key_file: Option<PathBuf> = "TLS_KEY_FILE", Path;
    }
}

impl TlsConfig {
    /// True when HTTPS is served directly.
    pub fn is_enabled(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }
}

gatehouse_core::settings! {
    /// What one client may hold: connections that are slow to send their
    /// headers, idle between requests, or slow to read a response, and how
    /// many connections are served at once.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ConnectionConfig {
        /// a connection is closed when complete request headers have not
        /// arrived within it (from accept for the first request, from its
        /// first byte for a later one)
        pub header_read_timeout: Duration = "HTTP_HEADER_READ_TIMEOUT_SECS",
            Span::secs(1, 3600), default 10;
        /// a keep-alive connection with no request for this long is closed
        pub idle_timeout: Duration = "HTTP_IDLE_TIMEOUT_SECS", Span::secs(1, 86_400),
            default 60;
        /// connections served at once; more wait unaccepted
        pub max_connections: u32 = "MAX_CONNECTIONS", Int(1, 1_000_000), default 10_000;
        /// a response still being sent this long after it began (an export,
        /// a download, a client that stopped reading) is cut
        pub stream_max: Duration = "STREAM_MAX_SECS", Span::secs(1, 86_400), default 600;
    }
}

gatehouse_core::settings! {
    /// The hosted pages under `/ui`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct UiConfig {
        /// serve the hosted pages (sign-in, passkeys, sign-up, password reset, email verification, account, admin console) under `/ui`
        pub enabled: bool = "UI_ENABLED", Flag, default true;
        /// comma-separated origins a page's `return_to` may send the
        /// browser to after sign-in; empty: only paths under `/ui`
        pub return_origins: Vec<String> = "UI_RETURN_ORIGINS", Each(exact_origin),
            default "";
    }
}

gatehouse_core::settings! {
    /// The HTTP layer's settings, validated.
    #[derive(Debug)]
    pub struct HttpConfig given (production: bool) {
        pub cors: CorsConfig = group;
        /// accepted `Host` names; `*.example.com` wildcards
        pub allowed_hosts: Vec<HostPattern> = "ALLOWED_HOSTS", Each(HostPattern::parse),
            default "localhost,127.0.0.1";
        /// CIDRs whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed
        pub trusted_proxies: Vec<IpNet> = "TRUSTED_PROXIES", Each(proxy), default "";
        /// `Secure` on the refresh cookie; must stay true in production
        pub secure_cookies: bool = "SECURE_COOKIES", Flag, default true;
        /// JSON body limit (413 above it, chunked bodies included)
        pub max_body_bytes: usize = "MAX_BODY_BYTES", Int(1024, 64 * 1024 * 1024),
            default 1024 * 1024;
        /// list failing fields in 422 responses
        pub expose_validation_details: bool = "EXPOSE_VALIDATION_DETAILS", Flag,
            default !production => "`true` in development, `false` in production";
        /// `/docs` and `/openapi.json`
        pub docs_enabled: bool = "DOCS_ENABLED", Flag,
            default !production => "`true` in development, `false` in production";
        /// send HSTS even on plain HTTP requests
        pub hsts_always: bool = "HSTS_ALWAYS", Flag, default false;
        /// per-request time limit (408)
        pub request_timeout: Duration = "REQUEST_TIMEOUT_SECS", Span::secs(1, 3600),
            default 30;
        pub tls: TlsConfig = group;
        pub connections: ConnectionConfig = group;
        pub ui: UiConfig = group;
    }
}

impl HttpConfig {
    /// Reads the table, then applies the rules that span several settings.
    pub fn load(r: &mut Reader, production: bool) -> Self {
        let config = Self::read(r, production);
        let any_origin = config.cors.origins.iter().any(|o| o == "*");
        if any_origin && config.cors.allow_credentials {
            // The Fetch standard forbids `*` with credentials; reflecting any
            // origin instead would let every site act as the logged-in user.
            r.problem(
                "CORS_ORIGINS",
                "`*` cannot be combined with credentials (CORS_ALLOW_CREDENTIALS=true)",
            );
        }
        if config.allowed_hosts.is_empty() {
            r.problem("ALLOWED_HOSTS", "must list at least one host");
        }
        if production && !config.secure_cookies {
            r.problem("SECURE_COOKIES", "must not be false in production");
        }
        match (&config.tls.cert_file, &config.tls.key_file) {
            (Some(_), None) => r.problem("TLS_KEY_FILE", "is required when TLS_CERT_FILE is set"),
            (None, Some(_)) => r.problem("TLS_CERT_FILE", "is required when TLS_KEY_FILE is set"),
            _ => {}
        }
        if production && any_origin {
            r.problem("CORS_ORIGINS", "`*` is not allowed in production");
        }
        config
    }
}

fn origin(raw: &str) -> Result<String, String> {
    if raw == "*" || is_origin(raw) {
        Ok(raw.to_owned())
    } else {
        Err(format!(
            "`{raw}` is not an origin (scheme://host[:port], no path)"
        ))
    }
}

/// One origin, never `*`, lower-cased as browsers serialise it.
fn exact_origin(raw: &str) -> Result<String, String> {
    if is_origin(raw) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{raw}` is not an origin (scheme://host[:port], no path)"
        ))
    }
}

pub(crate) fn is_origin(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains('/')
        && !rest.contains('@')
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

fn method(raw: &str) -> Result<String, String> {
    let method = raw.to_ascii_uppercase();
    if method.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(method)
    } else {
        Err(format!("`{method}` is not an HTTP method"))
    }
}

fn header_name(raw: &str) -> Result<String, String> {
    if raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(raw.to_owned())
    } else {
        Err(format!("`{raw}` is not a header name"))
    }
}

/// A CIDR, or a bare address as a /32 (or /128) network.
fn proxy(raw: &str) -> Result<IpNet, String> {
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{raw}` is not an IP address or CIDR"))
}

/// Everything the HTTP layer is configured with: the domain's settings, its
/// own, and what `GET /admin/config` shows of the groups it does not read.
#[derive(Debug)]
pub struct AppConfig {
    pub core: Config,
    pub http: HttpConfig,
    others: View,
}

impl AppConfig {
    pub fn new(core: Config, http: HttpConfig) -> Self {
        Self {
            core,
            http,
            others: View::new(),
        }
    }

    /// The domain's and the HTTP layer's settings from `(name, value)` pairs,
    /// every problem reported at once.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut r = Reader::new(vars);
        let core = Config::load(&mut r);
        let http = HttpConfig::load(&mut r, core.is_production());
        r.finish(Self::new(core, http))
    }

    /// Adds a group the HTTP layer does not read (the binary's own) to the
    /// redacted view.
    pub fn showing(mut self, group: &impl Group) -> Self {
        group.view(&mut self.others);
        self
    }

    /// Every setting by variable name, secrets redacted.
    pub fn redacted_view(&self) -> Value {
        let mut view = self.others.clone();
        self.core.view(&mut view);
        self.http.view(&mut view);
        Value::Object(view)
    }
}
