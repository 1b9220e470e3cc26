//! In-process adapters: the access-token denylist, login-failure counters
//! and the user cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gatehouse_core::CoreError;
use gatehouse_core::config::LockoutConfig;
use gatehouse_core::ports::{LoginThrottle, Reservation, TokenDenylist, UserCache};
use gatehouse_core::ratelimit::{Decision, Rate, RateLimiter, gcra};
use gatehouse_core::service::UserPage;
use gatehouse_core::user::User;
use moka::Expiry;
use moka::sync::Cache;
use uuid::Uuid;

/// Entries expire with the token they deny.
#[derive(Debug)]
struct UntilExpiry;

impl Expiry<String, i64> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        expires_at: &i64,
        _now: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(
            u64::try_from(expires_at.saturating_sub(unix_now())).unwrap_or(0),
        ))
    }
}

/// Seconds since the epoch, for expiry bookkeeping only (decisions use the
/// caller's clock).
fn unix_now() -> i64 {
    #[allow(
        clippy::disallowed_methods,
        reason = "cache eviction timing, not a decision"
    )]
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[derive(Debug, Clone)]
pub struct MemoryDenylist {
    entries: Cache<String, i64>,
}

impl Default for MemoryDenylist {
    fn default() -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(10_000_000)
                .expire_after(UntilExpiry)
                .build(),
        }
    }
}

#[async_trait]
impl TokenDenylist for MemoryDenylist {
    async fn deny(&self, jti: &str, expires_at: i64) -> Result<(), CoreError> {
        self.entries.insert(jti.to_owned(), expires_at);
        Ok(())
    }

    async fn is_denied(&self, jti: &str) -> Result<bool, CoreError> {
        Ok(self.entries.contains_key(jti))
    }
}

/// One key's window: its failures, the checks in flight, and the lock.
#[derive(Debug, Clone, Copy)]
struct Attempts {
    failures: u32,
    pending: u32,
    first_at: i64,
    locked_until: Option<i64>,
}

impl Attempts {
    fn new(now: i64) -> Self {
        Self {
            failures: 0,
            pending: 0,
            first_at: now,
            locked_until: None,
        }
    }

    /// Starts a new window when the lock or the window is over; checks in
    /// flight stay counted.
    fn roll(&mut self, now: i64, window: i64) {
        let lock_over = self.locked_until.is_some_and(|u| u <= now);
        if lock_over || (self.locked_until.is_none() && now - self.first_at >= window) {
            *self = Self {
                pending: self.pending,
                ..Self::new(now)
            };
        }
    }
}

/// Failures and in-flight checks per key within the lockout window.
#[derive(Debug, Default)]
pub struct MemoryLoginThrottle {
    entries: Mutex<HashMap<String, Attempts>>,
}

impl MemoryLoginThrottle {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Attempts>> {
        // A panic elsewhere cannot corrupt counters: keep using them.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn remaining(until: i64, now: i64) -> Duration {
    Duration::from_millis(u64::try_from(until - now).unwrap_or(0))
}

/// How long a refused reservation waits when only checks in flight fill
/// the window: they end within about a hash's time.
pub const IN_FLIGHT_RETRY: Duration = Duration::from_secs(1);

#[async_trait]
impl LoginThrottle for MemoryLoginThrottle {
    async fn reserve(
        &self,
        key: &str,
        now: i64,
        policy: LockoutConfig,
    ) -> Result<Reservation, CoreError> {
        let window = ms(policy.window);
        let mut map = self.lock();
        // Forget stale entries so memory follows active attackers only.
        if map.len() > 100_000 {
            map.retain(|_, a| {
                a.pending > 0
                    || now - a.first_at < window
                    || a.locked_until.is_some_and(|u| u > now)
            });
        }
        let entry = map.entry(key.to_owned()).or_insert(Attempts::new(now));
        entry.roll(now, window);
        if let Some(until) = entry.locked_until {
            return Ok(Reservation::Refused(remaining(until, now)));
        }
        if entry.failures + entry.pending >= policy.max_attempts {
            return Ok(Reservation::Refused(IN_FLIGHT_RETRY));
        }
        entry.pending += 1;
        Ok(Reservation::Granted)
    }

    async fn fail(
        &self,
        key: &str,
        now: i64,
        policy: LockoutConfig,
    ) -> Result<Option<Duration>, CoreError> {
        let window = ms(policy.window);
        let mut map = self.lock();
        let entry = map.entry(key.to_owned()).or_insert(Attempts::new(now));
        entry.pending = entry.pending.saturating_sub(1);
        entry.roll(now, window);
        entry.failures += 1;
        if entry.failures >= policy.max_attempts && entry.locked_until.is_none() {
            let until = now + window;
            entry.locked_until = Some(until);
            return Ok(Some(remaining(until, now)));
        }
        Ok(None)
    }

    async fn release(&self, key: &str) -> Result<(), CoreError> {
        if let Some(entry) = self.lock().get_mut(key) {
            entry.pending = entry.pending.saturating_sub(1);
        }
        Ok(())
    }

    async fn reset(&self, key: &str) -> Result<(), CoreError> {
        self.lock().remove(key);
        Ok(())
    }

    async fn locked_count(&self, now: i64) -> Result<u64, CoreError> {
        Ok(self
            .lock()
            .values()
            .filter(|a| a.locked_until.is_some_and(|u| u > now))
            .count() as u64)
    }
}

/// Users by id and list pages, for a short time; every write invalidates.
#[derive(Debug, Clone)]
pub struct MemoryUserCache {
    users: Cache<Uuid, Arc<User>>,
    lists: Cache<String, Arc<UserPage>>,
    /// Invalidations so far: bumped *before* an entry is dropped, checked
    /// *after* one is stored, so a value loaded before a write never
    /// outlives that write's invalidation.
    generation: Arc<AtomicU64>,
}

impl MemoryUserCache {
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        Self {
            users: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            // Lists are bigger and change with every write: keep few, briefly.
            lists: Cache::builder()
                .max_capacity(1_000)
                .time_to_live(ttl.min(Duration::from_secs(10)))
                .build(),
            generation: Arc::default(),
        }
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn is_current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::SeqCst) == generation
    }
}

impl MemoryUserCache {
    /// Drops one user and every list, here only.
    pub fn invalidate_local(&self, id: Uuid) {
        self.bump();
        self.users.invalidate(&id);
        self.lists.invalidate_all();
    }

    /// Drops everything, here only.
    pub fn clear(&self) {
        self.bump();
        self.users.invalidate_all();
        self.lists.invalidate_all();
    }
}

impl Default for MemoryUserCache {
    fn default() -> Self {
        Self::new(Duration::from_secs(60), 100_000)
    }
}

#[async_trait]
impl UserCache for MemoryUserCache {
    async fn get(&self, id: Uuid) -> Option<Arc<User>> {
        self.users.get(&id)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    async fn put(&self, user: Arc<User>, generation: u64) {
        let id = user.id;
        self.users.insert(id, user);
        if !self.is_current(generation) {
            self.users.invalidate(&id);
        }
    }

    async fn invalidate(&self, id: Uuid) {
        self.invalidate_local(id);
    }

    async fn get_list(&self, key: &str) -> Option<Arc<UserPage>> {
        self.lists.get(key)
    }

    async fn put_list(&self, key: String, page: Arc<UserPage>, generation: u64) {
        self.lists.insert(key.clone(), page);
        if !self.is_current(generation) {
            self.lists.invalidate(&key);
        }
    }
}

/// GCRA state per key, in this process. Keys expire once their limit is
/// fully replenished, so memory follows active clients only.
#[derive(Debug)]
pub struct MemoryRateLimiter {
    tats: Cache<String, i64>,
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self {
            tats: Cache::builder()
                .max_capacity(1_000_000)
                .expire_after(UntilTat)
                .build(),
        }
    }
}

/// A TAT is worthless once it is in the past.
#[derive(Debug)]
struct UntilTat;

impl Expiry<String, i64> for UntilTat {
    fn expire_after_create(&self, _key: &String, tat: &i64, _now: Instant) -> Option<Duration> {
        let left_ms = tat.saturating_sub(unix_now().saturating_mul(1000));
        Some(Duration::from_millis(u64::try_from(left_ms).unwrap_or(0)) + Duration::from_secs(1))
    }

    fn expire_after_update(
        &self,
        key: &String,
        tat: &i64,
        now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, tat, now)
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, key: &str, rate: Rate, now: i64) -> Result<Decision, CoreError> {
        // The entry API makes read-decide-write one atomic step per key.
        let mut decision = None;
        self.tats.entry(key.to_owned()).and_compute_with(|current| {
            let (d, new_tat) = gcra(current.map(|e| e.into_value()), now, rate);
            decision = Some(d);
            moka::ops::compute::Op::Put(new_tat)
        });
        decision.ok_or_else(|| CoreError::internal("rate limiter made no decision"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutConfig = LockoutConfig {
        max_attempts: 3,
        window: Duration::from_secs(60),
    };

    async fn attempt(t: &MemoryLoginThrottle, now: i64) -> Option<Duration> {
        assert_eq!(
            t.reserve("k", now, POLICY).await.unwrap(),
            Reservation::Granted
        );
        t.fail("k", now, POLICY).await.unwrap()
    }

    #[tokio::test]
    async fn locks_after_max_failures_for_the_window() {
        let t = MemoryLoginThrottle::default();
        assert_eq!(attempt(&t, 0).await, None);
        assert_eq!(attempt(&t, 1_000).await, None);
        assert_eq!(attempt(&t, 2_000).await, Some(Duration::from_secs(60)));
        assert_eq!(
            t.reserve("k", 32_000, POLICY).await.unwrap(),
            Reservation::Refused(Duration::from_secs(30))
        );
        assert_eq!(
            t.reserve("other", 32_000, POLICY).await.unwrap(),
            Reservation::Granted
        );
        assert_eq!(
            t.reserve("k", 62_000, POLICY).await.unwrap(),
            Reservation::Granted,
            "lock ends"
        );
    }

    #[tokio::test]
    async fn checks_in_flight_count_until_settled() {
        let t = MemoryLoginThrottle::default();
        for _ in 0..3 {
            assert_eq!(
                t.reserve("k", 0, POLICY).await.unwrap(),
                Reservation::Granted
            );
        }
        assert_eq!(
            t.reserve("k", 0, POLICY).await.unwrap(),
            Reservation::Refused(IN_FLIGHT_RETRY),
            "no fourth check while three are running"
        );
        // A success gives its reservation back; a failure keeps it.
        t.release("k").await.unwrap();
        t.fail("k", 1, POLICY).await.unwrap();
        assert_eq!(
            t.reserve("k", 2, POLICY).await.unwrap(),
            Reservation::Granted
        );
    }

    #[tokio::test]
    async fn failures_outside_the_window_and_completed_logins_reset() {
        let t = MemoryLoginThrottle::default();
        attempt(&t, 0).await;
        attempt(&t, 1).await;
        // The window passed: counting starts again.
        assert_eq!(attempt(&t, 61_000).await, None);
        attempt(&t, 61_001).await;
        t.reset("k").await.unwrap();
        assert_eq!(attempt(&t, 61_002).await, None);
        assert_eq!(attempt(&t, 61_003).await, None);
    }

    #[tokio::test]
    async fn a_user_read_before_a_write_is_not_cached_after_it() {
        let cache = MemoryUserCache::default();
        let user = Arc::new(User {
            id: Uuid::now_v7(),
            username: "racer".into(),
            email: "racer@example.com".into(),
            email_verified: false,
            full_name: None,
            role: gatehouse_core::rbac::Role::User,
            is_active: true,
            mfa_enabled: false,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
            auth_version: 0,
        });
        // A reader notes the generation and loads the user; meanwhile a
        // writer changes it and invalidates; then the reader stores.
        let seen = cache.generation();
        cache.invalidate(user.id).await;
        cache.put(user.clone(), seen).await;
        assert!(cache.get(user.id).await.is_none(), "stale value cached");
        // Without a write in between it is cached.
        cache.put(user.clone(), cache.generation()).await;
        assert!(cache.get(user.id).await.is_some());
    }

    #[tokio::test]
    async fn denylist_remembers_jtis() {
        let d = MemoryDenylist::default();
        d.deny("a", unix_now() + 60).await.unwrap();
        assert!(d.is_denied("a").await.unwrap());
        assert!(!d.is_denied("b").await.unwrap());
    }
}
