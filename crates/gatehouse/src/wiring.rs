//! Builds the services from the configuration: which adapter serves which
//! port. The only place that knows every crate.

use std::sync::Arc;

use gatehouse_api::Services;
use gatehouse_cache::memory::{MemoryDenylist, MemoryLoginThrottle, MemoryUserCache};
use gatehouse_core::audit::LogAuditSink;
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::config::Config;
use gatehouse_core::service::{AuthDeps, AuthService};
use gatehouse_store::Database;

use crate::cli::error_chain;

pub fn services(config: &Config, db: &Database) -> Result<Services, String> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let db = Arc::new(db.clone());
    let deps = AuthDeps {
        users: db.clone(),
        sessions: db.clone(),
        denylist: Arc::new(MemoryDenylist::default()),
        throttle: Arc::new(MemoryLoginThrottle::default()),
        cache: Arc::new(MemoryUserCache::default()),
        audit: Arc::new(LogAuditSink),
        clock: clock.clone(),
    };
    let auth = AuthService::new(config, deps).map_err(|e| error_chain(&e))?;
    Ok(Services {
        clock,
        probes: vec![db],
        auth: Arc::new(auth),
    })
}
