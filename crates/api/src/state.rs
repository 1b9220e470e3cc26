//! The one application state shared by every handler.

use std::sync::Arc;

use gatehouse_core::clock::Clock;
use gatehouse_core::config::Config;
use gatehouse_core::ports::HealthProbe;
use gatehouse_core::service::AuthService;

/// Cheap to clone: everything lives behind one `Arc`.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    probes: Vec<Arc<dyn HealthProbe>>,
    auth: Arc<AuthService>,
}

/// What the state is built from; the binary and the tests wire it.
#[derive(Debug)]
pub struct Services {
    pub clock: Arc<dyn Clock>,
    pub probes: Vec<Arc<dyn HealthProbe>>,
    pub auth: Arc<AuthService>,
}

impl AppState {
    pub fn new(config: Arc<Config>, services: Services) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                clock: services.clock,
                probes: services.probes,
                auth: services.auth,
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    /// Dependencies whose health decides readiness.
    pub fn probes(&self) -> &[Arc<dyn HealthProbe>] {
        &self.inner.probes
    }

    pub fn auth(&self) -> &AuthService {
        &self.inner.auth
    }
}
