//! Builds the services from the configuration: which adapter serves which
//! port. The only place that knows every crate.

use std::sync::Arc;

use gatehouse_api::Services;
use gatehouse_api::metrics::CountingAuditSink;
use gatehouse_cache::memory::{
    MemoryDenylist, MemoryLoginThrottle, MemoryRateLimiter, MemoryUserCache,
};
use gatehouse_cache::redis::{
    RedisDenylist, RedisLoginThrottle, RedisRateLimiter, RedisStore, RedisUserCache,
};
use gatehouse_core::audit::{AuditTrail, ChainKey, StoredAuditSink};
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::ports::{HealthProbe, LoginThrottle, TokenDenylist, UserCache};
use gatehouse_core::ratelimit::RateLimiter;
use gatehouse_core::service::{Adapters, UseCases};
use gatehouse_store::{Database, DiskBlobStore};
use secrecy::ExposeSecret;

use crate::cli::error_chain;
use crate::settings::{RuntimeConfig, Settings};

/// The adapters of the state instances share: Redis when configured,
/// in-process otherwise.
struct Shared {
    denylist: Arc<dyn TokenDenylist>,
    throttle: Arc<dyn LoginThrottle>,
    cache: Arc<dyn UserCache>,
    limiter: Arc<dyn RateLimiter>,
    probe: Option<Arc<dyn HealthProbe>>,
}

async fn shared(config: &RuntimeConfig) -> Result<Shared, String> {
    let Some(url) = &config.redis_url else {
        return Ok(Shared {
            denylist: Arc::new(MemoryDenylist::default()),
            throttle: Arc::new(MemoryLoginThrottle::default()),
            cache: Arc::new(MemoryUserCache::default()),
            limiter: Arc::new(MemoryRateLimiter::default()),
            probe: None,
        });
    };
    let store = RedisStore::connect(url.expose_secret(), &config.redis_key_prefix)
        .await
        .map_err(|e| format!("REDIS_URL: {}", error_chain(&e)))?;
    tracing::info!("shared state in redis");
    Ok(Shared {
        denylist: Arc::new(RedisDenylist::new(store.clone())),
        throttle: Arc::new(RedisLoginThrottle::new(store.clone())),
        cache: Arc::new(RedisUserCache::new(store.clone())),
        limiter: Arc::new(RedisRateLimiter::new(store.clone())),
        probe: Some(Arc::new(store)),
    })
}

pub async fn services(settings: &Settings, db: &Database) -> Result<Services, String> {
    let config = &settings.core;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let db = Arc::new(db.clone());
    let shared = shared(&settings.runtime).await?;
    // Every security event is counted for metrics, then stored in the one
    // trail that verification reads (it knows the head it wrote).
    let key = ChainKey::from_config(config).map_err(|e| error_chain(&e))?;
    let trail = Arc::new(AuditTrail::new(db.clone(), key));
    let audit = Arc::new(CountingAuditSink::new(Arc::new(StoredAuditSink::new(
        trail.clone(),
        clock.clone(),
    ))));
    let adapters = Adapters {
        users: db.clone(),
        sessions: db.clone(),
        denylist: shared.denylist,
        throttle: shared.throttle,
        cache: shared.cache,
        audit,
        audit_trail: trail,
        mfa: db.clone(),
        api_keys: db.clone(),
        files: db.clone(),
        blobs: Arc::new(DiskBlobStore::new(&config.upload_dir)),
        clock: clock.clone(),
        mail_tokens: db.clone(),
        outbox: db.clone(),
        mailer: gatehouse_mail::from_config(config)?,
        limiter: shared.limiter.clone(),
        passkeys: db.clone(),
    };
    let use_cases = UseCases::new(config, adapters).map_err(|e| error_chain(&e))?;
    let mut probes: Vec<Arc<dyn HealthProbe>> = vec![db];
    probes.extend(shared.probe);
    Ok(Services {
        clock,
        probes,
        use_cases,
        limiter: shared.limiter,
    })
}
