//! Redis adapters: the state several instances must share — rate-limit and
//! lockout counters, the access-token denylist, and invalidation of the
//! in-process user cache (pub/sub).
//!
//! When Redis does not answer (each call is bounded by [`CALL_TIMEOUT`]):
//! - rate limits and lockout counters fall back to this instance's
//!   in-process counters (still limiting, per instance), logged once per
//!   outage;
//! - the denylist fails closed: requests that need it get 503 rather than
//!   accepting a possibly revoked token;
//! - the user cache is bypassed (every read goes to the database) until the
//!   invalidation channel is back, then cleared;
//! - `/ready` reports `redis: unavailable`.
//!
//! Everything returns to normal by itself when Redis is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use gatehouse_core::CoreError;
use gatehouse_core::ports::{HealthProbe, TokenDenylist, UserCache};
use gatehouse_core::ratelimit::{Decision, Rate, RateLimiter};
use gatehouse_core::service::UserPage;
use gatehouse_core::user::User;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use tracing::Instrument;
use uuid::Uuid;

use crate::memory::{MemoryRateLimiter, MemoryUserCache};

mod lockout;
pub use lockout::RedisLoginThrottle;

/// Upper bound of one Redis round trip before it counts as an outage.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// A Redis connection shared by the adapters, with a key prefix.
#[derive(Clone)]
pub struct RedisStore {
    client: Client,
    conn: ConnectionManager,
    prefix: Arc<str>,
    /// True while the last call failed (for logging transitions only).
    degraded: Arc<AtomicBool>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(err: impl std::fmt::Display) -> CoreError {
    CoreError::unavailable("redis", err.to_string())
}

impl RedisStore {
    /// Connects (the first connection must succeed; later outages are
    /// survived and reconnected in the background).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, CoreError> {
        let client = Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let conn = tokio::time::timeout(
            CALL_TIMEOUT * 4,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| unavailable("connection timed out"))?
        .map_err(unavailable)?;
        Ok(Self {
            client,
            conn,
            prefix: Arc::from(prefix),
            degraded: Arc::default(),
        })
    }

    /// The prefix of every key this store writes.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, parts: &str) -> String {
        format!("{}{parts}", self.prefix)
    }

    /// Runs one call with the timeout, tracking outage transitions. `what`
    /// names the operation in logs and in its trace span.
    async fn call<T, F, Fut>(&self, what: &'static str, f: F) -> Result<T, CoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let span = tracing::info_span!(
            "redis",
            otel.name = what,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            db.system.name = "redis",
            db.operation.name = what,
        );
        let call = tokio::time::timeout(CALL_TIMEOUT, f(self.conn.clone()));
        let result = match call.instrument(span.clone()).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable("timed out")),
        };
        match &result {
            Ok(_) => {
                if self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::warn!(what, "redis is back");
                }
            }
            Err(e) => {
                span.record("otel.status_code", "ERROR");
                if !self.degraded.swap(true, Ordering::Relaxed) {
                    tracing::error!(what, error = %e, "redis unavailable");
                }
            }
        }
        result
    }
}

#[async_trait]
impl HealthProbe for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn check(&self) -> Result<(), CoreError> {
        self.call("ping", |mut c| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        })
        .await
        .map(drop)
    }
}

/// The GCRA step of `gatehouse_core::ratelimit::gcra`, atomically in Redis.
const GCRA: &str = r"
local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local interval = math.max(math.floor(period / count), 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - period
if allow_at > now then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now + 1000)
return {1, math.floor((period - (new_tat - now)) / interval), new_tat - now, 0}
";

fn dur(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Shared GCRA counters; this instance's own while Redis is away.
#[derive(Debug)]
pub struct RedisRateLimiter {
    store: RedisStore,
    script: Script,
    fallback: MemoryRateLimiter,
}

impl RedisRateLimiter {
    pub fn new(store: RedisStore) -> Self {
        Self {
            store,
            script: Script::new(GCRA),
            fallback: MemoryRateLimiter::default(),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, rate: Rate, now: i64) -> Result<Decision, CoreError> {
        let period = i64::try_from(rate.period.as_millis()).unwrap_or(i64::MAX);
        let redis_key = self.store.key(key);
        let script = &self.script;
        let reply = self
            .store
            .call("ratelimit.check", |mut c| async move {
                script
                    .key(redis_key)
                    .arg(now)
                    .arg(period)
                    .arg(rate.count)
                    .invoke_async::<(i64, i64, i64, i64)>(&mut c)
                    .await
            })
            .await;
        match reply {
            Ok((allowed, remaining, reset, retry)) => Ok(Decision {
                allowed: allowed == 1,
                limit: rate.count,
                remaining: u32::try_from(remaining.max(0)).unwrap_or(0),
                reset_after: dur(reset),
                retry_after: (allowed != 1).then(|| dur(retry)),
            }),
            Err(_) => self.fallback.check(key, rate, now).await,
        }
    }
}

/// Revoked access tokens, shared; fails closed.
#[derive(Debug)]
pub struct RedisDenylist {
    store: RedisStore,
}

impl RedisDenylist {
    pub fn new(store: RedisStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl TokenDenylist for RedisDenylist {
    async fn deny(&self, jti: &str, expires_at: i64) -> Result<(), CoreError> {
        let key = self.store.key(&format!("deny:{jti}"));
        self.store
            .call("denylist.add", |mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("EXAT")
                    .arg(expires_at.max(1))
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
    }

    async fn is_denied(&self, jti: &str) -> Result<bool, CoreError> {
        let key = self.store.key(&format!("deny:{jti}"));
        self.store
            .call("denylist.check", |mut c| async move {
                redis::cmd("EXISTS")
                    .arg(key)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await
            .map(|n| n > 0)
    }
}

/// The in-process user cache, kept coherent across instances by an
/// invalidation channel. User objects hold decrypted PII, so they are never
/// written to Redis; only ids travel.
///
/// Staleness is bounded under any Redis failure: local entries live at most
/// [`SHARED_CACHE_TTL`]; the channel is pinged through Redis itself, and
/// while no message (ping or invalidation) has arrived for
/// [`CHANNEL_SILENCE`] reads bypass the cache; a failed publish is logged
/// and bounded by the same TTL.
#[derive(Debug)]
pub struct RedisUserCache {
    store: RedisStore,
    local: Arc<MemoryUserCache>,
    health: Arc<ChannelHealth>,
    channel: String,
}

/// How long a user read on one instance may be served there when another
/// instance changed it and could not say so.
pub const SHARED_CACHE_TTL: Duration = Duration::from_secs(2);
/// How often the listener pings its own channel.
const PING_EVERY: Duration = Duration::from_millis(300);
/// Silence after which the channel counts as down.
pub const CHANNEL_SILENCE: Duration = Duration::from_millis(1_000);
const PING: &str = "ping";

/// Whether invalidations are arriving: subscribed, and heard from lately.
#[derive(Debug)]
struct ChannelHealth {
    subscribed: AtomicBool,
    started: std::time::Instant,
    /// Milliseconds after `started` of the last message received.
    last_heard: std::sync::atomic::AtomicU64,
}

impl ChannelHealth {
    fn new() -> Self {
        Self {
            subscribed: AtomicBool::new(false),
            started: std::time::Instant::now(),
            last_heard: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn heard(&self) {
        self.last_heard.store(self.elapsed_ms(), Ordering::SeqCst);
    }

    fn is_live(&self) -> bool {
        let silence = self
            .elapsed_ms()
            .saturating_sub(self.last_heard.load(Ordering::SeqCst));
        self.subscribed.load(Ordering::SeqCst) && u128::from(silence) < CHANNEL_SILENCE.as_millis()
    }
}

impl RedisUserCache {
    /// Starts the listener task; it reconnects by itself.
    pub fn new(store: RedisStore) -> Self {
        let cache = Self {
            channel: store.key("user-invalidations"),
            store,
            local: Arc::new(MemoryUserCache::new(SHARED_CACHE_TTL, 100_000)),
            health: Arc::new(ChannelHealth::new()),
        };
        tokio::spawn(listen(
            cache.store.client.clone(),
            cache.channel.clone(),
            cache.local.clone(),
            cache.health.clone(),
        ));
        cache
    }

    /// True while invalidations from other instances are being received.
    pub fn is_listening(&self) -> bool {
        self.health.is_live()
    }
}

/// Applies one message of the channel.
fn apply(local: &MemoryUserCache, msg: &redis::Msg) {
    match msg.get_payload::<String>() {
        Ok(p) if p == PING => {}
        Ok(p) if p == "*" => local.clear(),
        Ok(p) => match p.parse::<Uuid>() {
            Ok(id) => local.invalidate_local(id),
            Err(_) => local.clear(),
        },
        Err(_) => local.clear(),
    }
}

async fn listen(
    client: Client,
    channel: String,
    local: Arc<MemoryUserCache>,
    health: Arc<ChannelHealth>,
) {
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            let publisher = client.get_multiplexed_async_connection().await?;
            Ok::<_, redis::RedisError>((pubsub, publisher))
        };
        match tokio::time::timeout(CALL_TIMEOUT * 4, subscribed).await {
            Ok(Ok((pubsub, mut publisher))) => {
                // Whatever was missed while away is unknown: start empty.
                local.clear();
                health.heard();
                health.subscribed.store(true, Ordering::SeqCst);
                let mut messages = pubsub.into_on_message();
                let mut ping = tokio::time::interval(PING_EVERY);
                loop {
                    tokio::select! {
                        msg = messages.next() => match msg {
                            Some(msg) => {
                                health.heard();
                                apply(&local, &msg);
                            }
                            None => break,
                        },
                        _ = ping.tick() => {
                            let mut publish = redis::cmd("PUBLISH");
                            publish.arg(&channel).arg(PING);
                            let sent = publish.query_async::<i64>(&mut publisher);
                            // A ping that fails or hangs is simply not
                            // heard: the silence marks the channel down.
                            let _ = tokio::time::timeout(CALL_TIMEOUT, sent).await;
                        }
                    }
                }
                health.subscribed.store(false, Ordering::SeqCst);
                tracing::error!("redis invalidation channel lost; user cache bypassed");
            }
            Ok(Err(e)) => {
                health.subscribed.store(false, Ordering::SeqCst);
                tracing::debug!(error = %e, "redis invalidation channel: reconnecting");
            }
            Err(_) => health.subscribed.store(false, Ordering::SeqCst),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[async_trait]
impl UserCache for RedisUserCache {
    async fn get(&self, id: Uuid) -> Option<Arc<User>> {
        if !self.is_listening() {
            return None;
        }
        self.local.get(id).await
    }

    fn generation(&self) -> u64 {
        self.local.generation()
    }

    async fn put(&self, user: Arc<User>, generation: u64) {
        if self.is_listening() {
            self.local.put(user, generation).await;
        }
    }

    async fn invalidate(&self, id: Uuid) {
        self.local.invalidate_local(id);
        let channel = self.channel.clone();
        let published = self
            .store
            .call("cache.invalidate", |mut c| async move {
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(id.to_string())
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await;
        if published.is_err() {
            // Other instances cannot be told: they stop hearing pings too
            // and bypass their caches within CHANNEL_SILENCE, and nothing
            // they cached outlives SHARED_CACHE_TTL.
            tracing::warn!(user_id = %id, "cache invalidation not published");
        }
    }

    async fn get_list(&self, key: &str) -> Option<Arc<UserPage>> {
        if !self.is_listening() {
            return None;
        }
        self.local.get_list(key).await
    }

    async fn put_list(&self, key: String, page: Arc<UserPage>, generation: u64) {
        if self.is_listening() {
            self.local.put_list(key, page, generation).await;
        }
    }
}
