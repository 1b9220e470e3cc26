//! Every group of settings, composed: the domain's ([`Config`]), the HTTP
//! layer's ([`HttpConfig`]) and the binary's own ([`RuntimeConfig`]). The
//! known variables, `check-config` and the README's table are their union.

mod example;
mod runtime;

use gatehouse_api::HttpConfig;
use gatehouse_core::config::{Config, ConfigError, Group, Reader, Var, View, markdown_table};

pub use example::env_example;
pub use runtime::{LogFormat, RuntimeConfig};

/// The whole, validated configuration.
#[derive(Debug)]
pub struct Settings {
    pub core: Config,
    pub http: HttpConfig,
    pub runtime: RuntimeConfig,
}

impl Settings {
    /// Builds every group from `(name, value)` pairs, reporting every problem
    /// of every group at once.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut r = Reader::new(vars);
        let core = Config::load(&mut r);
        let http = HttpConfig::load(&mut r, core.is_production());
        let runtime = RuntimeConfig::load(&mut r, &core.data_dir, core.is_production());
        if runtime.redirect_addr.is_some() && !http.tls.is_enabled() {
            // Redirecting to an HTTPS port that is not served would strand
            // every client.
            r.problem(
                "HTTP_REDIRECT_ADDR",
                "needs TLS_CERT_FILE and TLS_KEY_FILE (it redirects to HTTPS on BIND_ADDR)",
            );
        }
        r.finish(Self {
            core,
            http,
            runtime,
        })
    }
}

impl Group for Settings {
    fn vars(out: &mut Vec<Var>) {
        Config::vars(out);
        HttpConfig::vars(out);
        RuntimeConfig::vars(out);
    }

    fn view(&self, out: &mut View) {
        self.core.view(out);
        self.http.view(out);
        self.runtime.view(out);
    }
}

/// Every variable Gatehouse reads.
pub fn known_vars() -> Vec<&'static str> {
    Settings::names()
}

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
    "APP_",
    "TLS_",
    "HSTS_",
    "DOCS_",
];

/// Variables that look like Gatehouse's but are not recognised.
pub fn unknown_vars<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let known = known_vars();
    names
        .into_iter()
        .filter(|n| !known.contains(n) && OUR_PREFIXES.iter().any(|p| n.starts_with(p)))
        .map(str::to_owned)
        .collect()
}

/// The configuration table of the README, as the declarations have it.
pub fn docs_table() -> String {
    markdown_table(&Settings::documented())
}

#[cfg(test)]
mod tests;
