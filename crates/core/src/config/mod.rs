//! Gatehouse configuration: environment variables read into typed, validated
//! groups of settings. Each setting is declared once, in a [`settings!`](crate::settings)
//! table; this module holds the domain's group ([`Config`]), the HTTP layer
//! and the binary declare theirs. Loading is a pure function of the
//! variables given, so tests build configurations without touching the
//! process environment.

mod keys;
mod kinds;
mod reader;
mod settings;
mod view;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

pub use keys::{
    DataKey, DataKeys, KEY_LEN, KeyMaterial, encode_key, generate_key, parse_base64_key,
};
pub use kinds::{
    Choice, Each, Flag, Int, List, OneOf, Parsed, Path, Secret, Span, Text, Url, ZeroIsNone,
};
pub use reader::{ConfigError, Problem, Rate, Reader};
pub use settings::{Group, Kind, NO_DEFAULT, REDACTED, Var, View, markdown_table, secret_state};
pub use view::redact_url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

impl Choice for Environment {
    const NAMES: &'static [(Self, &'static str)] = &[
        (Self::Development, "development"),
        (Self::Production, "production"),
    ];
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        self.name()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    EdDsa,
}

impl Choice for JwtAlgorithm {
    const NAMES: &'static [(Self, &'static str)] =
        &[(Self::Hs256, "HS256"), (Self::EdDsa, "EdDSA")];

    fn fold(raw: &str) -> String {
        raw.to_ascii_uppercase()
    }
}

/// Smallest accepted HS256 secret (RFC 7518 §3.2: at least the hash size).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

crate::settings! {
    #[derive(Debug)]
    pub struct JwtConfig {
        /// `HS256` or `EdDSA`
        pub algorithm: JwtAlgorithm = "JWT_ALGORITHM", OneOf, default JwtAlgorithm::Hs256;
        /// HS256 key, at least 32 bytes; required in production
        pub secret: SecretString = "JWT_SECRET_KEY", Secret(MIN_JWT_SECRET_BYTES),
            view jwt_secret_view => "random per process in development";
        /// True when no secret was configured and a random one was made for
        /// this process (development only): tokens die with the process.
        pub secret_generated: bool = derived(false);
        /// retired HS256 secrets, comma-separated: still verified, never used to sign
        pub previous_secrets: Vec<SecretString> =
            "JWT_PREVIOUS_SECRET_KEYS", Secret(MIN_JWT_SECRET_BYTES);
        /// Ed25519 private key (PKCS#8 PEM) for `EdDSA`
        pub private_key_file: Option<PathBuf> = "JWT_PRIVATE_KEY_FILE", Path;
        /// retired Ed25519 public keys (PEM files), comma-separated: still
        /// verified and published in the JWKS
        pub retired_public_key_files: Vec<PathBuf> = "JWT_RETIRED_PUBLIC_KEY_FILES", Path;
        /// `iss` claim
        pub issuer: String = "JWT_ISSUER", Text, default "gatehouse";
        /// `aud` claim
        pub audience: String = "JWT_AUDIENCE", Text, default "gatehouse";
        /// access token lifetime
        pub access_ttl: Duration = "ACCESS_TOKEN_EXPIRE_MINUTES", Span::minutes(1, 24 * 60),
            default 15;
        /// refresh token lifetime
        pub refresh_ttl: Duration = "REFRESH_TOKEN_EXPIRE_DAYS", Span::days(1, 365), default 7;
    }
}

fn jwt_secret_view(jwt: &JwtConfig) -> serde_json::Value {
    if jwt.secret_generated {
        serde_json::Value::from("[generated for this process]")
    } else {
        secret_state(!jwt.secret.expose_secret().is_empty())
    }
}

crate::settings! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Argon2Config {
        /// Argon2id memory per hash (KiB)
        pub memory_kib: u32 = "ARGON2_MEMORY_COST", Int(8, 4 * 1024 * 1024), default 65_536;
        /// Argon2id passes
        pub time_cost: u32 = "ARGON2_TIME_COST", Int(1, 100), default 3;
        /// Argon2id lanes
        pub parallelism: u32 = "ARGON2_PARALLELISM", Int(1, 64), default 4;
        /// hashes computed at once; the rest wait their turn
        pub max_concurrent: usize = "ARGON2_MAX_CONCURRENT", Int(1, 1024),
            default default_hash_concurrency() => "number of cores";
    }
}

crate::settings! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RateLimitConfig {
        /// `false` turns every rate limit off
        pub enabled: bool = "RATE_LIMIT_ENABLED", Flag, default true;
        /// global limit per client IP over all of `/api/v1`
        pub global_per_minute: u32 = "RATE_LIMIT_PER_MINUTE", Int(1, 1_000_000), default 60;
        /// per client IP on login (`N/second|minute|hour|day`)
        pub login: Rate = "RATE_LIMIT_LOGIN", Parsed, default per_minute(5);
        /// per client IP on registration (`N/second|minute|hour|day`)
        pub register: Rate = "RATE_LIMIT_REGISTER", Parsed, default per_minute(3);
        /// per client IP on token refresh (`N/second|minute|hour|day`)
        pub refresh: Rate = "RATE_LIMIT_REFRESH", Parsed, default per_minute(10);
        /// per client IP on password reset requests (`N/second|minute|hour|day`)
        pub password_reset: Rate = "RATE_LIMIT_PASSWORD_RESET", Parsed, default per_minute(3);
        /// per client IP on verification mail requests (`N/second|minute|hour|day`)
        pub verify_email: Rate = "RATE_LIMIT_VERIFY_EMAIL", Parsed, default per_minute(3);
        /// per email address: mails with a link or code (verification, reset,
        /// email change) one address may be sent; past it requests still
        /// answer 202 and send nothing
        pub mail_per_address: Rate = "RATE_LIMIT_MAIL_PER_ADDRESS", Parsed,
            default per_hour(5);
        /// per API key
        pub api_key_per_minute: u32 =
            "RATE_LIMIT_API_KEY_PER_MINUTE", Int(1, 1_000_000), default 600;
        /// bits of an IPv6 client address that make one client: every address
        /// of its network shares its limits
        pub ipv6_prefix: u8 = "RATE_LIMIT_IPV6_PREFIX", Int(32, 128), default 64;
    }
}

crate::settings! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct LockoutConfig {
        /// failed logins before an account is locked
        pub max_attempts: u32 = "MAX_LOGIN_ATTEMPTS", Int(1, 1000), default 5;
        /// how long a locked account stays locked
        pub window: Duration = "ACCOUNT_LOCKOUT_MINUTES", Span::minutes(1, 7 * 24 * 60),
            default 30;
    }
}

crate::settings! {
    #[derive(Debug)]
    pub struct MailConfig {
        /// outgoing mail server: `smtp://host:port` (STARTTLS when offered),
        /// `smtp+starttls://` (STARTTLS required) or `smtps://` (implicit TLS);
        /// `user:password@` percent-encoded. Unset: mail is written to the log
        /// (development only; required in production)
        pub smtp_url: Option<SecretString> = "SMTP_URL", Url {
            schemes: &["smtp://", "smtp+starttls://", "smtps://"],
            expected: "expected an smtp://, smtp+starttls:// or smtps:// URL",
        };
        /// a CA certificate (PEM) trusted for the SMTP server's TLS, besides
        /// the built-in roots
        pub smtp_tls_ca_file: Option<PathBuf> = "SMTP_TLS_CA_FILE", Path;
        /// SMTP connect and command timeout
        pub smtp_timeout: Duration = "SMTP_TIMEOUT_SECS", Span::secs(1, 60), default 15;
        /// sender of outgoing mail
        pub from: String = "MAIL_FROM", Text, default "Gatehouse <no-reply@localhost>";
        /// the product's name in mails
        pub product_name: String = "MAIL_PRODUCT_NAME", Text, default "Gatehouse";
        /// where mailed links point (`/verify-email?token=…`, `/reset-password?token=…`)
        pub app_base_url: String = "APP_BASE_URL", Text, default "http://localhost:3000";
        /// a directory whose templates (same names) replace the built-in ones
        pub template_dir: Option<PathBuf> = "MAIL_TEMPLATE_DIR", Path;
    }
}

impl MailConfig {
    fn check(&mut self, r: &mut Reader, production: bool) {
        let base = self.app_base_url.trim().trim_end_matches('/').to_owned();
        let scheme_ok = base.starts_with("https://") || base.starts_with("http://");
        // Links are written into HTML attributes as they are: only
        // characters that need no escaping there are accepted.
        let plain = base
            .chars()
            .all(|c| c.is_ascii_graphic() && !"\"'<>&`?#\\".contains(c));
        if !scheme_ok || base.len() <= "https://".len() || !plain {
            r.problem(
                "APP_BASE_URL",
                "expected an http:// or https:// URL without query, fragment, quotes or `<>&`",
            );
        }
        self.app_base_url = base;
        // The log mailer writes links (and so tokens) to the log: fine on a
        // developer's machine, never where the log is shipped and kept.
        if production && self.smtp_url.is_none() {
            r.problem(
                "SMTP_URL",
                "is required in production (without it mail would only be logged)",
            );
        }
    }
}

crate::settings! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct WebauthnConfig {
        /// passkeys' relying party: the registrable domain they are bound to
        /// (a passkey made for `example.com` works on its subdomains)
        pub rp_id: String = "WEBAUTHN_RP_ID", Text, default "localhost";
        /// origins (`scheme://host[:port]`) the ceremonies may come from,
        /// comma-separated; each within `WEBAUTHN_RP_ID`; https in
        /// production (http only for localhost)
        pub origins: Vec<String> = "WEBAUTHN_ORIGINS", List,
            default "http://localhost:3000,http://localhost:8000";
        /// the name authenticators show beside the account
        pub rp_name: String = "WEBAUTHN_RP_NAME", Text, default "Gatehouse";
        /// PEM file of the authenticator vendors' attestation root
        /// certificates; with `WEBAUTHN_ALLOWED_AAGUIDS`, only those models
        /// may register or use passkeys (hardware keys; synced passkeys are
        /// refused)
        pub attestation_ca_file: Option<PathBuf> = "WEBAUTHN_ATTESTATION_CA_FILE", Path;
        /// authenticator models (AAGUIDs) allowed, comma-separated; each must
        /// attest through a certificate of `WEBAUTHN_ATTESTATION_CA_FILE`
        pub allowed_aaguids: Vec<uuid::Uuid> = "WEBAUTHN_ALLOWED_AAGUIDS", Each(parse_aaguid),
            default "";
    }
}

fn parse_aaguid(raw: &str) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(raw).map_err(|_| format!("`{raw}` is not an AAGUID (a UUID)"))
}

impl WebauthnConfig {
    fn check(&mut self, r: &mut Reader, production: bool) {
        let rp_id = self.rp_id.trim().to_ascii_lowercase();
        let plain_host = !rp_id.is_empty()
            && rp_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !plain_host || rp_id.starts_with('.') || rp_id.ends_with('.') {
            r.problem(
                "WEBAUTHN_RP_ID",
                "expected a domain name such as `example.com`",
            );
            return;
        }
        self.rp_id = rp_id;
        if self.origins.is_empty() {
            r.problem("WEBAUTHN_ORIGINS", "needs at least one origin");
        }
        for origin in &self.origins {
            if let Err(why) = origin_problem(origin, &self.rp_id, production) {
                r.problem("WEBAUTHN_ORIGINS", format!("`{origin}`: {why}"));
            }
        }
        // An AAGUID is only the authenticator's claim until an attestation
        // certificate vouches for it: one setting without the other would
        // look like a policy and enforce nothing.
        match (&self.attestation_ca_file, self.allowed_aaguids.is_empty()) {
            (Some(_), true) => r.problem(
                "WEBAUTHN_ALLOWED_AAGUIDS",
                "is required with WEBAUTHN_ATTESTATION_CA_FILE: list the models allowed",
            ),
            (None, false) => r.problem(
                "WEBAUTHN_ATTESTATION_CA_FILE",
                "is required with WEBAUTHN_ALLOWED_AAGUIDS: without the vendors' \
                 certificates an AAGUID is only the authenticator's claim",
            ),
            _ => {}
        }
    }
}

/// Why `origin` cannot serve passkeys of `rp_id`, if it cannot.
fn origin_problem(origin: &str, rp_id: &str, production: bool) -> Result<(), String> {
    let (scheme, rest) = origin
        .split_once("://")
        .ok_or("expected scheme://host[:port]")?;
    let host = match rest.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        Some(_) => return Err("expected scheme://host[:port]".into()),
        None => rest,
    };
    if host.is_empty() || host.contains(['/', '?', '#', '@']) {
        return Err("expected scheme://host[:port] with nothing after".into());
    }
    let host = host.to_ascii_lowercase();
    let local = host == "localhost" || host.ends_with(".localhost");
    match scheme {
        "https" => {}
        "http" if local && !production => {}
        "http" if local => return Err("production needs https origins".into()),
        _ => return Err("must be https (http only for localhost)".into()),
    }
    if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
        return Err(format!("is not within WEBAUTHN_RP_ID `{rp_id}`"));
    }
    Ok(())
}

crate::settings! {
    /// The domain's settings, validated.
    #[derive(Debug)]
    pub struct Config {
        /// `development` or `production` (stricter checks, see below)
        pub environment: Environment = "ENVIRONMENT", OneOf, default Environment::Development;
        /// SQLite file, development keys, uploads; directories the service
        /// creates are mode 0700 and its files 0600 (SQLite's `-wal`/`-shm`
        /// files take the database file's mode; an existing database file
        /// keeps its mode)
        pub data_dir: PathBuf = "DATA_DIR", Path, default PathBuf::from("./data");
        pub jwt: JwtConfig = group;
        pub argon2: Argon2Config = group;
        pub rate_limit: RateLimitConfig = group;
        pub lockout: LockoutConfig = group;
        /// how recently a factor must have been proved (at login or `POST
        /// /api/v1/auth/reauth`) for sensitive changes: 2FA on or off, API keys
        /// created or rotated, a new email address
        pub reauth_max_age: Duration = "REAUTH_MAX_AGE_MINUTES", Span::minutes(1, 24 * 60),
            default 10;
        /// largest file upload
        pub max_upload_bytes: usize = "MAX_UPLOAD_BYTES", Int(1024, 1024 * 1024 * 1024),
            default 10 * 1024 * 1024;
        /// where uploaded files are stored
        pub upload_dir: PathBuf = "UPLOAD_DIR", Path,
            default data_dir.join("uploads") => "`DATA_DIR/uploads`";
        /// bytes of uploads each user may keep
        pub upload_quota_bytes: u64 = "UPLOAD_QUOTA_BYTES", Int(1, 1 << 50),
            default 100 * 1024 * 1024;
        /// files each user may keep
        pub upload_quota_files: u64 = "UPLOAD_QUOTA_FILES", Int(1, 1 << 32), default 1000;
        /// uploads are refused (507) when the upload volume's free space
        /// would fall under this; `0` turns the check off
        pub upload_min_free_bytes: u64 = "UPLOAD_MIN_FREE_BYTES", Int(0, 1 << 60),
            default 256 * 1024 * 1024;
        // `None` in development until the binary supplies development keys.
        /// `kid:base64key,…` (32-byte keys); the first encrypts, all decrypt
        pub data_keys: Option<Arc<DataKeys>> = "DATA_ENCRYPTION_KEYS", KeyMaterial
            => "development file";
        /// base64 32-byte HMAC key for email lookups
        pub blind_index_key: Option<Arc<DataKey>> = "BLIND_INDEX_KEY", KeyMaterial
            => "development file";
        /// base64 32-byte HMAC key sealing the audit chain; never rotated
        /// (entries verify only under the key that wrote them)
        pub audit_chain_key: Option<Arc<DataKey>> = "AUDIT_CHAIN_KEY", KeyMaterial
            => "development file";
        pub mail: MailConfig = group;
        pub webauthn: WebauthnConfig = group;
        /// refuse login to unverified accounts
        pub require_verified_email: bool = "REQUIRE_VERIFIED_EMAIL", Flag, default false;
        /// days audit entries are kept; `0` keeps them forever
        pub audit_retention_days: Option<u32> =
            "AUDIT_RETENTION_DAYS", ZeroIsNone(Int(0, 36_500)), default 365;
    }
}

impl Config {
    /// Builds the configuration from `(name, value)` pairs, reporting every
    /// problem at once.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut r = Reader::new(vars);
        let config = Self::load(&mut r);
        r.finish(config)
    }

    /// Reads the table, then applies the rules that span several settings.
    pub fn load(r: &mut Reader) -> Self {
        let mut config = Self::read(r);
        let production = config.is_production();
        config.jwt.check(r, production);
        config.mail.check(r, production);
        config.webauthn.check(r, production);
        if config.argon2.memory_kib < 8 * config.argon2.parallelism {
            r.problem(
                "ARGON2_MEMORY_COST",
                "must be at least 8 KiB per lane (8 × ARGON2_PARALLELISM)",
            );
        }
        if production && config.data_keys.is_none() && r.raw("DATA_ENCRYPTION_KEYS").is_none() {
            r.problem("DATA_ENCRYPTION_KEYS", "is required in production");
        }
        if production && config.blind_index_key.is_none() && r.raw("BLIND_INDEX_KEY").is_none() {
            r.problem("BLIND_INDEX_KEY", "is required in production");
        }
        if production && config.audit_chain_key.is_none() && r.raw("AUDIT_CHAIN_KEY").is_none() {
            r.problem("AUDIT_CHAIN_KEY", "is required in production");
        }
        config
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

impl JwtConfig {
    fn check(&mut self, r: &mut Reader, production: bool) {
        if self.algorithm == JwtAlgorithm::EdDsa && self.private_key_file.is_none() {
            r.problem(
                "JWT_PRIVATE_KEY_FILE",
                "is required when JWT_ALGORITHM=EdDSA",
            );
        }
        if r.raw("JWT_SECRET_KEY").is_some() {
            if production && let Some(why) = keys::weak_secret(self.secret.expose_secret()) {
                r.problem("JWT_SECRET_KEY", why);
            }
            return;
        }
        if production && self.algorithm == JwtAlgorithm::Hs256 {
            r.problem("JWT_SECRET_KEY", "is required in production");
            return;
        }
        match keys::random_secret() {
            Some(s) => {
                self.secret = SecretString::from(s);
                self.secret_generated = true;
            }
            None => r.problem(
                "JWT_SECRET_KEY",
                "is unset and no random source could make one",
            ),
        }
    }
}

fn per_minute(count: u32) -> Rate {
    Rate {
        count,
        period: Duration::from_secs(60),
    }
}

fn per_hour(count: u32) -> Rate {
    Rate {
        count,
        period: Duration::from_secs(3600),
    }
}

/// One hash per core saturates the CPU; more would only add Argon2 buffers
/// in memory and latency for everything else.
fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

#[cfg(test)]
mod tests;
