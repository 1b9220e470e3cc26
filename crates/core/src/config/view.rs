//! The effective configuration as operators may see it: every value by its
//! variable name, secrets replaced by a marker (for `check-config` and
//! `GET /admin/config`).

use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use super::{Config, JwtAlgorithm, LogFormat};
use crate::network::HostPattern;

const REDACTED: &str = "[redacted]";

fn secret_state(is_set: bool) -> Value {
    if is_set {
        Value::from(REDACTED)
    } else {
        Value::Null
    }
}

/// Removes the user-info part (`user:password@`) from a URL, which is where
/// connection strings keep their credentials, and drops the query string,
/// which may carry them too.
pub fn redact_url(url: &str) -> String {
    if url.starts_with("sqlite:") {
        // A file path; SQLite URLs carry no credentials.
        return url.split('?').next().unwrap_or_default().to_owned();
    }
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => return REDACTED.to_owned(),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{REDACTED}@{host}"),
        None => authority.to_owned(),
    };
    format!("{scheme}://{host}{path}")
}

impl Config {
    /// Every setting by variable name, with secrets redacted.
    pub fn redacted_view(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_owned(), v);
        };
        put("ENVIRONMENT", json!(self.environment.as_str()));
        put("BIND_ADDR", json!(self.bind_addr.to_string()));
        put("DATA_DIR", json!(self.data_dir.display().to_string()));
        put(
            "DATABASE_URL",
            json!(redact_url(self.database.url.expose_secret())),
        );
        put(
            "DATABASE_MAX_CONNECTIONS",
            json!(self.database.max_connections),
        );
        put(
            "DATABASE_MIN_CONNECTIONS",
            json!(self.database.min_connections),
        );
        put(
            "DATABASE_ACQUIRE_TIMEOUT_SECS",
            json!(self.database.acquire_timeout.as_secs()),
        );
        put(
            "DATABASE_IDLE_TIMEOUT_SECS",
            json!(self.database.idle_timeout.as_secs()),
        );
        put("RUN_MIGRATIONS", json!(self.database.run_migrations));
        put(
            "REDIS_URL",
            self.redis_url
                .as_ref()
                .map_or(Value::Null, |u| json!(redact_url(u.expose_secret()))),
        );
        put("REDIS_KEY_PREFIX", json!(self.redis_key_prefix));
        put(
            "JWT_ALGORITHM",
            json!(match self.jwt.algorithm {
                JwtAlgorithm::Hs256 => "HS256",
                JwtAlgorithm::EdDsa => "EdDSA",
            }),
        );
        put(
            "JWT_SECRET_KEY",
            if self.jwt.secret_generated {
                json!("[generated for this process]")
            } else {
                secret_state(!self.jwt.secret.expose_secret().is_empty())
            },
        );
        put(
            "JWT_PRIVATE_KEY_FILE",
            json!(
                self.jwt
                    .private_key_file
                    .as_ref()
                    .map(|p| p.display().to_string())
            ),
        );
        put(
            "JWT_PREVIOUS_SECRET_KEYS",
            json!(
                self.jwt
                    .previous_secrets
                    .iter()
                    .map(|_| REDACTED)
                    .collect::<Vec<_>>()
            ),
        );
        put(
            "JWT_RETIRED_PUBLIC_KEY_FILES",
            json!(
                self.jwt
                    .retired_public_key_files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
            ),
        );
        put("JWT_ISSUER", json!(self.jwt.issuer));
        put("JWT_AUDIENCE", json!(self.jwt.audience));
        put(
            "ACCESS_TOKEN_EXPIRE_MINUTES",
            json!(self.jwt.access_ttl.as_secs() / 60),
        );
        put(
            "REFRESH_TOKEN_EXPIRE_DAYS",
            json!(self.jwt.refresh_ttl.as_secs() / 86_400),
        );
        put("ARGON2_MEMORY_COST", json!(self.argon2.memory_kib));
        put("ARGON2_TIME_COST", json!(self.argon2.time_cost));
        put("ARGON2_PARALLELISM", json!(self.argon2.parallelism));
        put("ARGON2_MAX_CONCURRENT", json!(self.argon2.max_concurrent));
        put("RATE_LIMIT_ENABLED", json!(self.rate_limit.enabled));
        put(
            "RATE_LIMIT_PER_MINUTE",
            json!(self.rate_limit.global_per_minute),
        );
        put("RATE_LIMIT_LOGIN", json!(self.rate_limit.login.to_string()));
        put(
            "RATE_LIMIT_REGISTER",
            json!(self.rate_limit.register.to_string()),
        );
        put(
            "RATE_LIMIT_REFRESH",
            json!(self.rate_limit.refresh.to_string()),
        );
        put(
            "RATE_LIMIT_PASSWORD_RESET",
            json!(self.rate_limit.password_reset.to_string()),
        );
        put(
            "RATE_LIMIT_API_KEY_PER_MINUTE",
            json!(self.rate_limit.api_key_per_minute),
        );
        put("MAX_LOGIN_ATTEMPTS", json!(self.lockout.max_attempts));
        put(
            "ACCOUNT_LOCKOUT_MINUTES",
            json!(self.lockout.window.as_secs() / 60),
        );
        put("CORS_ORIGINS", json!(self.cors.origins));
        put("CORS_ALLOW_METHODS", json!(self.cors.allow_methods));
        put("CORS_ALLOW_HEADERS", json!(self.cors.allow_headers));
        put("CORS_ALLOW_CREDENTIALS", json!(self.cors.allow_credentials));
        put("CORS_MAX_AGE_SECS", json!(self.cors.max_age.as_secs()));
        put(
            "ALLOWED_HOSTS",
            json!(
                self.allowed_hosts
                    .iter()
                    .map(|h| match h {
                        HostPattern::Any => "*".to_owned(),
                        HostPattern::Exact(s) => s.clone(),
                        HostPattern::Subdomains(s) => format!("*.{s}"),
                    })
                    .collect::<Vec<_>>()
            ),
        );
        put(
            "TRUSTED_PROXIES",
            json!(
                self.trusted_proxies
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            ),
        );
        put("SECURE_COOKIES", json!(self.secure_cookies));
        put("MAX_BODY_BYTES", json!(self.max_body_bytes));
        put("MAX_UPLOAD_BYTES", json!(self.max_upload_bytes));
        put("UPLOAD_DIR", json!(self.upload_dir.display().to_string()));
        put(
            "DATA_ENCRYPTION_KEYS",
            self.data_keys.as_ref().map_or(Value::Null, |keys| {
                // Key ids are not secret and tell operators which key encrypts.
                json!(
                    keys.kids()
                        .map(|k| format!("{k}:{REDACTED}"))
                        .collect::<Vec<_>>()
                )
            }),
        );
        put(
            "BLIND_INDEX_KEY",
            secret_state(self.blind_index_key.is_some()),
        );
        put("LOG_LEVEL", json!(self.log_level));
        put(
            "LOG_FORMAT",
            json!(match self.log_format {
                LogFormat::Json => "json",
                LogFormat::Pretty => "pretty",
            }),
        );
        put("METRICS_ADDR", json!(self.metrics_addr.to_string()));
        put(
            "TLS_CERT_FILE",
            json!(self.tls.as_ref().map(|t| t.cert_file.display().to_string())),
        );
        put(
            "TLS_KEY_FILE",
            json!(self.tls.as_ref().map(|t| t.key_file.display().to_string())),
        );
        put(
            "SMTP_URL",
            self.mail
                .smtp_url
                .as_ref()
                .map_or(Value::Null, |u| json!(redact_url(u.expose_secret()))),
        );
        put("MAIL_FROM", json!(self.mail.from));
        put("REQUIRE_VERIFIED_EMAIL", json!(self.require_verified_email));
        put(
            "AUDIT_RETENTION_DAYS",
            json!(self.audit_retention_days.unwrap_or(0)),
        );
        put(
            "EXPOSE_VALIDATION_DETAILS",
            json!(self.expose_validation_details),
        );
        put("DOCS_ENABLED", json!(self.docs_enabled));
        put("HSTS_ALWAYS", json!(self.hsts_always));
        put(
            "REQUEST_TIMEOUT_SECS",
            json!(self.request_timeout.as_secs()),
        );
        put("SHUTDOWN_GRACE_SECS", json!(self.shutdown_grace.as_secs()));
        put(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            json!(self.otel_endpoint.as_deref().map(redact_url)),
        );
        put("OTEL_SERVICE_NAME", json!(self.otel_service_name));
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/gh?password=x"),
            "postgres://[redacted]@db:5432/gh"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("sqlite://./data/gatehouse.db"),
            "sqlite://./data/gatehouse.db"
        );
        assert_eq!(redact_url("garbage"), "[redacted]");
    }
}
