//! Gatehouse configuration: environment variables read into one typed,
//! validated `Config`. Loading is a pure function of the variables given, so
//! tests build configurations without touching the process environment.

mod keys;
mod reader;
mod view;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};

pub use keys::{DataKey, DataKeys, KEY_LEN, encode_key, generate_key, parse_base64_key};
pub use reader::{ConfigError, Problem, Rate};
pub use view::redact_url;

use crate::network::HostPattern;
use reader::Reader;

/// Every variable Gatehouse reads. Anything else that looks like ours is
/// reported by [`unknown_vars`] so typos do not pass silently.
pub const KNOWN_VARS: &[&str] = &[
    "ENVIRONMENT",
    "BIND_ADDR",
    "DATA_DIR",
    "DATABASE_URL",
    "DATABASE_MAX_CONNECTIONS",
    "DATABASE_MIN_CONNECTIONS",
    "DATABASE_ACQUIRE_TIMEOUT_SECS",
    "DATABASE_IDLE_TIMEOUT_SECS",
    "RUN_MIGRATIONS",
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "JWT_ALGORITHM",
    "JWT_SECRET_KEY",
    "JWT_PRIVATE_KEY_FILE",
    "JWT_PREVIOUS_SECRET_KEYS",
    "JWT_RETIRED_PUBLIC_KEY_FILES",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "ACCESS_TOKEN_EXPIRE_MINUTES",
    "REFRESH_TOKEN_EXPIRE_DAYS",
    "ARGON2_MEMORY_COST",
    "ARGON2_TIME_COST",
    "ARGON2_PARALLELISM",
    "ARGON2_MAX_CONCURRENT",
    "RATE_LIMIT_ENABLED",
    "RATE_LIMIT_PER_MINUTE",
    "RATE_LIMIT_LOGIN",
    "RATE_LIMIT_REGISTER",
    "RATE_LIMIT_REFRESH",
    "RATE_LIMIT_PASSWORD_RESET",
    "RATE_LIMIT_API_KEY_PER_MINUTE",
    "MAX_LOGIN_ATTEMPTS",
    "ACCOUNT_LOCKOUT_MINUTES",
    "CORS_ORIGINS",
    "CORS_ALLOW_METHODS",
    "CORS_ALLOW_HEADERS",
    "CORS_ALLOW_CREDENTIALS",
    "CORS_MAX_AGE_SECS",
    "ALLOWED_HOSTS",
    "TRUSTED_PROXIES",
    "SECURE_COOKIES",
    "MAX_BODY_BYTES",
    "MAX_UPLOAD_BYTES",
    "UPLOAD_DIR",
    "DATA_ENCRYPTION_KEYS",
    "BLIND_INDEX_KEY",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "METRICS_ADDR",
    "TLS_CERT_FILE",
    "TLS_KEY_FILE",
    "SMTP_URL",
    "MAIL_FROM",
    "REQUIRE_VERIFIED_EMAIL",
    "AUDIT_RETENTION_DAYS",
    "EXPOSE_VALIDATION_DETAILS",
    "DOCS_ENABLED",
    "HSTS_ALWAYS",
    "REQUEST_TIMEOUT_SECS",
    "SHUTDOWN_GRACE_SECS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
];

/// Prefixes of Gatehouse's variable families; an unknown variable with one of
/// these is most likely a typo.
const OUR_PREFIXES: &[&str] = &[
    "GATEHOUSE_",
    "JWT_",
    "ARGON2_",
    "RATE_LIMIT_",
    "CORS_",
    "DATABASE_",
    "ACCESS_TOKEN_",
    "REFRESH_TOKEN_",
    "ACCOUNT_LOCKOUT",
    "MAX_LOGIN",
    "DATA_ENCRYPTION",
    "BLIND_INDEX",
    "AUDIT_",
    "SMTP_",
    "MAIL_",
    "TLS_",
    "HSTS_",
    "DOCS_",
];

/// Variables that look like Gatehouse's but are not recognised.
pub fn unknown_vars<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| !KNOWN_VARS.contains(n) && OUR_PREFIXES.iter().any(|p| n.starts_with(p)))
        .map(str::to_owned)
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    EdDsa,
}

#[derive(Debug)]
pub struct DatabaseConfig {
    /// May hold a password: shown only through [`view::redact_url`].
    pub url: SecretString,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout: Duration,
    pub idle_timeout: Duration,
    pub run_migrations: bool,
}

impl DatabaseConfig {
    pub fn is_postgres(&self) -> bool {
        let url = self.url.expose_secret();
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }
}

#[derive(Debug)]
pub struct JwtConfig {
    pub algorithm: JwtAlgorithm,
    /// HS256 signing secret.
    pub secret: SecretString,
    /// True when no secret was configured and a random one was made for this
    /// process (development only): tokens die with the process.
    pub secret_generated: bool,
    /// Retired HS256 secrets, still accepted for verification.
    pub previous_secrets: Vec<SecretString>,
    pub private_key_file: Option<PathBuf>,
    /// Retired Ed25519 public keys (PEM files), still accepted and published.
    pub retired_public_key_files: Vec<PathBuf>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub time_cost: u32,
    pub parallelism: u32,
    /// Hashes computed at once; the rest wait their turn.
    pub max_concurrent: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub global_per_minute: u32,
    pub login: Rate,
    pub register: Rate,
    pub refresh: Rate,
    pub password_reset: Rate,
    pub api_key_per_minute: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutConfig {
    pub max_attempts: u32,
    pub window: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    pub origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug)]
pub struct MailConfig {
    pub smtp_url: Option<SecretString>,
    pub from: String,
}

/// The whole, validated configuration.
#[derive(Debug)]
pub struct Config {
    pub environment: Environment,
    pub bind_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key (several deployments can share a server).
    pub redis_key_prefix: String,
    pub jwt: JwtConfig,
    pub argon2: Argon2Config,
    pub rate_limit: RateLimitConfig,
    pub lockout: LockoutConfig,
    pub cors: CorsConfig,
    pub allowed_hosts: Vec<HostPattern>,
    pub trusted_proxies: Vec<IpNet>,
    pub secure_cookies: bool,
    pub max_body_bytes: usize,
    pub max_upload_bytes: usize,
    pub upload_dir: PathBuf,
    /// `None` in development until the binary supplies development keys.
    pub data_keys: Option<Arc<DataKeys>>,
    pub blind_index_key: Option<Arc<DataKey>>,
    pub log_level: String,
    pub log_format: LogFormat,
    pub metrics_addr: SocketAddr,
    pub tls: Option<TlsConfig>,
    pub mail: MailConfig,
    pub require_verified_email: bool,
    /// Audit entries older than this are pruned; `None` keeps them forever.
    pub audit_retention_days: Option<u32>,
    pub expose_validation_details: bool,
    pub docs_enabled: bool,
    pub hsts_always: bool,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
    pub otel_endpoint: Option<String>,
    pub otel_service_name: String,
}

/// Smallest accepted HS256 secret (RFC 7518 §3.2: at least the hash size).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

impl Config {
    /// Builds the configuration from `(name, value)` pairs, reporting every
    /// problem at once.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let mut r = Reader::new(vars);

        let environment = match r
            .string("ENVIRONMENT", "development")
            .to_ascii_lowercase()
            .as_str()
        {
            "development" => Environment::Development,
            "production" => Environment::Production,
            other => {
                r.problem(
                    "ENVIRONMENT",
                    format!("expected development or production, got `{other}`"),
                );
                Environment::Development
            }
        };
        let production = environment == Environment::Production;

        let bind_addr = r.parse("BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 8000)));
        let data_dir = PathBuf::from(r.string("DATA_DIR", "./data"));
        let database = read_database(&mut r, &data_dir);
        let redis_url = r.raw("REDIS_URL").map(SecretString::from);
        if let Some(url) = &redis_url {
            let url = url.expose_secret();
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                r.problem("REDIS_URL", "expected a redis:// or rediss:// URL");
            }
        }

        let redis_key_prefix = r.string("REDIS_KEY_PREFIX", "gatehouse:");
        let jwt = read_jwt(&mut r, production);
        let argon2 = Argon2Config {
            memory_kib: r.int("ARGON2_MEMORY_COST", 65_536, 8, 4 * 1024 * 1024),
            time_cost: r.int("ARGON2_TIME_COST", 3, 1, 100),
            parallelism: r.int("ARGON2_PARALLELISM", 4, 1, 64),
            max_concurrent: r.int("ARGON2_MAX_CONCURRENT", default_hash_concurrency(), 1, 1024),
        };
        if argon2.memory_kib < 8 * argon2.parallelism {
            r.problem(
                "ARGON2_MEMORY_COST",
                "must be at least 8 KiB per lane (8 × ARGON2_PARALLELISM)",
            );
        }
        let rate_limit = RateLimitConfig {
            enabled: r.bool("RATE_LIMIT_ENABLED", true),
            global_per_minute: r.int("RATE_LIMIT_PER_MINUTE", 60, 1, 1_000_000),
            login: r.parse("RATE_LIMIT_LOGIN", per_minute(5)),
            register: r.parse("RATE_LIMIT_REGISTER", per_minute(3)),
            refresh: r.parse("RATE_LIMIT_REFRESH", per_minute(10)),
            password_reset: r.parse("RATE_LIMIT_PASSWORD_RESET", per_minute(3)),
            api_key_per_minute: r.int("RATE_LIMIT_API_KEY_PER_MINUTE", 600, 1, 1_000_000),
        };
        let lockout = LockoutConfig {
            max_attempts: r.int("MAX_LOGIN_ATTEMPTS", 5, 1, 1000),
            window: minutes(r.int("ACCOUNT_LOCKOUT_MINUTES", 30, 1, 7 * 24 * 60)),
        };
        let cors = read_cors(&mut r);
        let allowed_hosts = read_hosts(&mut r);
        let trusted_proxies = read_proxies(&mut r);
        let secure_cookies = r.bool("SECURE_COOKIES", true);
        if production && !secure_cookies {
            r.problem("SECURE_COOKIES", "must not be false in production");
        }
        let max_body_bytes = r.int("MAX_BODY_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024);
        let max_upload_bytes = r.int(
            "MAX_UPLOAD_BYTES",
            10 * 1024 * 1024,
            1024,
            1024 * 1024 * 1024,
        );
        let upload_dir = r
            .raw("UPLOAD_DIR")
            .map_or_else(|| data_dir.join("uploads"), PathBuf::from);

        let data_keys = match r.raw("DATA_ENCRYPTION_KEYS") {
            Some(raw) => match DataKeys::parse(&raw) {
                Ok(keys) => Some(Arc::new(keys)),
                Err(e) => {
                    r.problem("DATA_ENCRYPTION_KEYS", e);
                    None
                }
            },
            None => None,
        };
        let blind_index_key = match r.raw("BLIND_INDEX_KEY") {
            Some(raw) => match parse_base64_key(&raw) {
                Ok(key) => Some(Arc::new(DataKey::new("blind", key))),
                Err(e) => {
                    r.problem("BLIND_INDEX_KEY", e);
                    None
                }
            },
            None => None,
        };
        if production && data_keys.is_none() && r.raw("DATA_ENCRYPTION_KEYS").is_none() {
            r.problem("DATA_ENCRYPTION_KEYS", "is required in production");
        }
        if production && blind_index_key.is_none() && r.raw("BLIND_INDEX_KEY").is_none() {
            r.problem("BLIND_INDEX_KEY", "is required in production");
        }

        let log_level = r.string("LOG_LEVEL", "info");
        let log_format = match r.string("LOG_FORMAT", "json").to_ascii_lowercase().as_str() {
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            other => {
                r.problem(
                    "LOG_FORMAT",
                    format!("expected json or pretty, got `{other}`"),
                );
                LogFormat::Json
            }
        };
        let metrics_addr = r.parse("METRICS_ADDR", SocketAddr::from(([127, 0, 0, 1], 9090)));
        let tls = match (r.raw("TLS_CERT_FILE"), r.raw("TLS_KEY_FILE")) {
            (Some(cert), Some(key)) => Some(TlsConfig {
                cert_file: cert.into(),
                key_file: key.into(),
            }),
            (None, None) => None,
            (Some(_), None) => {
                r.problem("TLS_KEY_FILE", "is required when TLS_CERT_FILE is set");
                None
            }
            (None, Some(_)) => {
                r.problem("TLS_CERT_FILE", "is required when TLS_KEY_FILE is set");
                None
            }
        };
        let mail = MailConfig {
            smtp_url: r.raw("SMTP_URL").map(SecretString::from),
            from: r.string("MAIL_FROM", "Gatehouse <no-reply@localhost>"),
        };
        if let Some(url) = &mail.smtp_url {
            let url = url.expose_secret();
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                r.problem("SMTP_URL", "expected an smtp:// or smtps:// URL");
            }
        }
        let require_verified_email = r.bool("REQUIRE_VERIFIED_EMAIL", false);
        let audit_retention_days = match r.int("AUDIT_RETENTION_DAYS", 365u32, 0, 36_500) {
            0 => None,
            days => Some(days),
        };
        let expose_validation_details = r.bool("EXPOSE_VALIDATION_DETAILS", !production);
        let docs_enabled = r.bool("DOCS_ENABLED", !production);
        let hsts_always = r.bool("HSTS_ALWAYS", false);
        let request_timeout = Duration::from_secs(r.int("REQUEST_TIMEOUT_SECS", 30, 1, 3600));
        let shutdown_grace = Duration::from_secs(r.int("SHUTDOWN_GRACE_SECS", 30, 0, 3600));
        let otel_endpoint = r.raw("OTEL_EXPORTER_OTLP_ENDPOINT");
        if let Some(endpoint) = &otel_endpoint {
            if endpoint.starts_with("https://") {
                r.problem(
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "https is not supported by this build's exporter: send to a collector \
                     on the same host or network over http:// and let it forward over TLS",
                );
            } else if !endpoint.starts_with("http://") || endpoint.len() == "http://".len() {
                r.problem(
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "expected the collector's OTLP/HTTP base URL, e.g. http://127.0.0.1:4318",
                );
            }
        }
        let otel_service_name = r.string("OTEL_SERVICE_NAME", "gatehouse");

        if production && cors.origins.iter().any(|o| o == "*") {
            r.problem("CORS_ORIGINS", "`*` is not allowed in production");
        }

        if !r.problems.is_empty() {
            return Err(ConfigError {
                problems: r.problems,
            });
        }
        Ok(Self {
            environment,
            bind_addr,
            data_dir,
            database,
            redis_url,
            redis_key_prefix,
            jwt,
            argon2,
            rate_limit,
            lockout,
            cors,
            allowed_hosts,
            trusted_proxies,
            secure_cookies,
            max_body_bytes,
            max_upload_bytes,
            upload_dir,
            data_keys,
            blind_index_key,
            log_level,
            log_format,
            metrics_addr,
            tls,
            mail,
            require_verified_email,
            audit_retention_days,
            expose_validation_details,
            docs_enabled,
            hsts_always,
            request_timeout,
            shutdown_grace,
            otel_endpoint,
            otel_service_name,
        })
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

fn per_minute(count: u32) -> Rate {
    Rate {
        count,
        period: Duration::from_secs(60),
    }
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

/// One hash per core saturates the CPU; more would only add Argon2 buffers
/// in memory and latency for everything else.
fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

fn read_database(r: &mut Reader, data_dir: &std::path::Path) -> DatabaseConfig {
    let url = r
        .raw("DATABASE_URL")
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("gatehouse.db").display()));
    let known = ["sqlite:", "postgres://", "postgresql://"];
    if !known.iter().any(|p| url.starts_with(p)) {
        r.problem("DATABASE_URL", "expected a sqlite:// or postgres:// URL");
    }
    let max_connections = r.int("DATABASE_MAX_CONNECTIONS", 10, 1, 1000);
    let min_connections = r.int("DATABASE_MIN_CONNECTIONS", 0, 0, 1000);
    if min_connections > max_connections {
        r.problem(
            "DATABASE_MIN_CONNECTIONS",
            "must not exceed DATABASE_MAX_CONNECTIONS",
        );
    }
    DatabaseConfig {
        url: SecretString::from(url),
        max_connections,
        min_connections,
        acquire_timeout: Duration::from_secs(r.int("DATABASE_ACQUIRE_TIMEOUT_SECS", 5, 1, 600)),
        idle_timeout: Duration::from_secs(r.int("DATABASE_IDLE_TIMEOUT_SECS", 600, 1, 86_400)),
        run_migrations: r.bool("RUN_MIGRATIONS", true),
    }
}

fn read_jwt(r: &mut Reader, production: bool) -> JwtConfig {
    let algorithm = match r
        .string("JWT_ALGORITHM", "HS256")
        .to_ascii_uppercase()
        .as_str()
    {
        "HS256" => JwtAlgorithm::Hs256,
        "EDDSA" => JwtAlgorithm::EdDsa,
        other => {
            r.problem(
                "JWT_ALGORITHM",
                format!("expected HS256 or EdDSA, got `{other}`"),
            );
            JwtAlgorithm::Hs256
        }
    };
    let private_key_file = r.raw("JWT_PRIVATE_KEY_FILE").map(PathBuf::from);
    if algorithm == JwtAlgorithm::EdDsa && private_key_file.is_none() {
        r.problem(
            "JWT_PRIVATE_KEY_FILE",
            "is required when JWT_ALGORITHM=EdDSA",
        );
    }
    let (secret, secret_generated) = match r.raw("JWT_SECRET_KEY") {
        Some(s) if s.len() >= MIN_JWT_SECRET_BYTES => (SecretString::from(s), false),
        Some(_) => {
            r.problem(
                "JWT_SECRET_KEY",
                format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
            );
            (SecretString::from(String::new()), false)
        }
        None if production && algorithm == JwtAlgorithm::Hs256 => {
            r.problem("JWT_SECRET_KEY", "is required in production");
            (SecretString::from(String::new()), false)
        }
        None => match keys::random_secret() {
            Some(s) => (SecretString::from(s), true),
            None => {
                r.problem(
                    "JWT_SECRET_KEY",
                    "is unset and no random source could make one",
                );
                (SecretString::from(String::new()), false)
            }
        },
    };
    let previous_secrets = r
        .list("JWT_PREVIOUS_SECRET_KEYS", "")
        .into_iter()
        .map(SecretString::from)
        .collect::<Vec<_>>();
    if previous_secrets
        .iter()
        .any(|s| s.expose_secret().len() < MIN_JWT_SECRET_BYTES)
    {
        r.problem(
            "JWT_PREVIOUS_SECRET_KEYS",
            format!("every key must be at least {MIN_JWT_SECRET_BYTES} bytes"),
        );
    }
    let retired_public_key_files = r
        .list("JWT_RETIRED_PUBLIC_KEY_FILES", "")
        .into_iter()
        .map(PathBuf::from)
        .collect();
    JwtConfig {
        algorithm,
        secret,
        secret_generated,
        previous_secrets,
        retired_public_key_files,
        private_key_file,
        issuer: r.string("JWT_ISSUER", "gatehouse"),
        audience: r.string("JWT_AUDIENCE", "gatehouse"),
        access_ttl: minutes(r.int("ACCESS_TOKEN_EXPIRE_MINUTES", 15, 1, 24 * 60)),
        refresh_ttl: Duration::from_secs(86_400 * r.int("REFRESH_TOKEN_EXPIRE_DAYS", 7u64, 1, 365)),
    }
}

fn read_cors(r: &mut Reader) -> CorsConfig {
    let origins = r.list("CORS_ORIGINS", "http://localhost:3000");
    for origin in &origins {
        if origin != "*" && !is_origin(origin) {
            r.problem(
                "CORS_ORIGINS",
                format!("`{origin}` is not an origin (scheme://host[:port], no path)"),
            );
        }
    }
    let allow_credentials = r.bool("CORS_ALLOW_CREDENTIALS", true);
    if allow_credentials && origins.iter().any(|o| o == "*") {
        // The Fetch standard forbids `*` with credentials; reflecting any
        // origin instead would let every site act as the logged-in user.
        r.problem(
            "CORS_ORIGINS",
            "`*` cannot be combined with credentials (CORS_ALLOW_CREDENTIALS=true)",
        );
    }
    let allow_methods: Vec<String> = r
        .list("CORS_ALLOW_METHODS", "GET, POST, PUT, PATCH, DELETE")
        .into_iter()
        .map(|m| m.to_ascii_uppercase())
        .collect();
    for m in &allow_methods {
        if !m.bytes().all(|b| b.is_ascii_alphabetic()) {
            r.problem("CORS_ALLOW_METHODS", format!("`{m}` is not an HTTP method"));
        }
    }
    let allow_headers = r.list(
        "CORS_ALLOW_HEADERS",
        "Authorization, Content-Type, X-API-Key, X-Request-ID",
    );
    for h in &allow_headers {
        if !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            r.problem("CORS_ALLOW_HEADERS", format!("`{h}` is not a header name"));
        }
    }
    CorsConfig {
        origins,
        allow_methods,
        allow_headers,
        allow_credentials,
        max_age: Duration::from_secs(r.int("CORS_MAX_AGE_SECS", 600, 0, 86_400)),
    }
}

fn is_origin(s: &str) -> bool {
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

fn read_hosts(r: &mut Reader) -> Vec<HostPattern> {
    let mut hosts = Vec::new();
    for raw in r.list("ALLOWED_HOSTS", "localhost,127.0.0.1") {
        match HostPattern::parse(&raw) {
            Ok(p) => hosts.push(p),
            Err(e) => r.problem("ALLOWED_HOSTS", e),
        }
    }
    if hosts.is_empty() {
        r.problem("ALLOWED_HOSTS", "must list at least one host");
    }
    hosts
}

fn read_proxies(r: &mut Reader) -> Vec<IpNet> {
    let mut nets = Vec::new();
    for raw in r.list("TRUSTED_PROXIES", "") {
        // A bare address is a /32 (or /128) network.
        let parsed = raw
            .parse::<IpNet>()
            .or_else(|_| raw.parse::<std::net::IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => nets.push(net),
            Err(_) => r.problem(
                "TRUSTED_PROXIES",
                format!("`{raw}` is not an IP address or CIDR"),
            ),
        }
    }
    nets
}

#[cfg(test)]
mod tests;
