//! The one application state shared by every handler.

use std::sync::Arc;

use gatehouse_core::clock::Clock;
use gatehouse_core::config::Config;
use gatehouse_core::ports::HealthProbe;

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
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        probes: Vec<Arc<dyn HealthProbe>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                clock,
                probes,
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
}
