//! The one application state shared by every handler.

use std::sync::Arc;

use gatehouse_core::audit::RequestMeta;
use gatehouse_core::clock::Clock;
use gatehouse_core::config::Config;
use gatehouse_core::ports::HealthProbe;
use gatehouse_core::ratelimit::RateLimiter;
use gatehouse_core::service::{
    Accounts, ApiKeys, EmailVerification, FileService, Operations, Passkeys, PasswordReset,
    SecurityEvents, SignIn, TwoFactor, UseCases, UserAccess, UserAdmin,
};

use crate::config::{AppConfig, HttpConfig};

/// Cheap to clone: everything lives behind one `Arc`.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: AppConfig,
    clock: Arc<dyn Clock>,
    probes: Vec<Arc<dyn HealthProbe>>,
    use_cases: UseCases,
    limiter: Arc<dyn RateLimiter>,
    /// Rate-limit keys already reported in the current window: a flood is
    /// one security event, not one audit row per refused request.
    reported: moka::sync::Cache<String, ()>,
}

/// What the state is built from; the binary and the tests wire it.
#[derive(Debug)]
pub struct Services {
    pub clock: Arc<dyn Clock>,
    pub probes: Vec<Arc<dyn HealthProbe>>,
    pub use_cases: UseCases,
    pub limiter: Arc<dyn RateLimiter>,
}

impl AppState {
    pub fn new(config: AppConfig, services: Services) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                clock: services.clock,
                probes: services.probes,
                use_cases: services.use_cases,
                limiter: services.limiter,
                reported: moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(std::time::Duration::from_secs(60))
                    .build(),
            }),
        }
    }

    /// The domain's settings.
    pub fn config(&self) -> &Config {
        &self.inner.config.core
    }

    /// The HTTP layer's own settings.
    pub fn http(&self) -> &HttpConfig {
        &self.inner.config.http
    }

    /// Every setting of every group, secrets redacted.
    pub fn redacted_config(&self) -> serde_json::Value {
        self.inner.config.redacted_view()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    /// Dependencies whose health decides readiness.
    pub fn probes(&self) -> &[Arc<dyn HealthProbe>] {
        &self.inner.probes
    }

    pub fn sign_in(&self) -> &SignIn {
        &self.inner.use_cases.sign_in
    }

    pub fn accounts(&self) -> &Accounts {
        &self.inner.use_cases.accounts
    }

    pub fn user_admin(&self) -> &UserAdmin {
        &self.inner.use_cases.user_admin
    }

    pub fn user_access(&self) -> &UserAccess {
        &self.inner.use_cases.user_access
    }

    pub fn api_keys(&self) -> &ApiKeys {
        &self.inner.use_cases.api_keys
    }

    pub fn passkeys(&self) -> &Passkeys {
        &self.inner.use_cases.passkeys
    }

    pub fn two_factor(&self) -> &TwoFactor {
        &self.inner.use_cases.two_factor
    }

    pub fn operations(&self) -> &Operations {
        &self.inner.use_cases.operations
    }

    pub fn files(&self) -> &FileService {
        &self.inner.use_cases.files
    }

    pub fn events(&self) -> &SecurityEvents {
        &self.inner.use_cases.events
    }

    pub fn email_verification(&self) -> &EmailVerification {
        &self.inner.use_cases.email_verification
    }

    pub fn password_reset(&self) -> &PasswordReset {
        &self.inner.use_cases.password_reset
    }

    pub fn limiter(&self) -> &dyn RateLimiter {
        self.inner.limiter.as_ref()
    }

    /// Logs and counts every refusal; stores one `rate_limited` audit entry
    /// per key and window.
    pub async fn note_rate_limited(&self, key: &str, scope: &str, path: &str, meta: &RequestMeta) {
        tracing::warn!(
            target: "gatehouse::security",
            event = "rate_limited",
            scope,
            ip = meta.ip.as_deref(),
            "rate limit hit"
        );
        if self.inner.reported.contains_key(key) {
            return;
        }
        self.inner.reported.insert(key.to_owned(), ());
        self.events().rate_limited(scope, path, meta).await;
    }
}
