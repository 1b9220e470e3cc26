//! In-process adapters: the access-token denylist, login-failure counters
//! and the user cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gatehouse_core::CoreError;
use gatehouse_core::config::LockoutConfig;
use gatehouse_core::ports::{LoginThrottle, TokenDenylist, UserCache};
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

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first_at: i64,
    locked_until: Option<i64>,
}

/// Consecutive failures per key within the lockout window.
#[derive(Debug, Default)]
pub struct MemoryLoginThrottle {
    entries: Mutex<HashMap<String, Failures>>,
}

impl MemoryLoginThrottle {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Failures>> {
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

#[async_trait]
impl LoginThrottle for MemoryLoginThrottle {
    async fn locked_for(&self, key: &str, now: i64) -> Result<Option<Duration>, CoreError> {
        Ok(self
            .lock()
            .get(key)
            .and_then(|f| f.locked_until)
            .filter(|until| *until > now)
            .map(|until| remaining(until, now)))
    }

    async fn record_failure(
        &self,
        key: &str,
        now: i64,
        policy: LockoutConfig,
    ) -> Result<Option<Duration>, CoreError> {
        let window = ms(policy.window);
        let mut map = self.lock();
        // Forget stale entries so memory follows active attackers only.
        if map.len() > 100_000 {
            map.retain(|_, f| now - f.first_at < window || f.locked_until.is_some_and(|u| u > now));
        }
        let entry = map.entry(key.to_owned()).or_insert(Failures {
            count: 0,
            first_at: now,
            locked_until: None,
        });
        let lock_over = entry.locked_until.is_some_and(|u| u <= now);
        if now - entry.first_at >= window || lock_over {
            *entry = Failures {
                count: 0,
                first_at: now,
                locked_until: None,
            };
        }
        entry.count += 1;
        if entry.count >= policy.max_attempts && entry.locked_until.is_none() {
            let until = now + window;
            entry.locked_until = Some(until);
            return Ok(Some(remaining(until, now)));
        }
        Ok(None)
    }

    async fn reset(&self, key: &str) -> Result<(), CoreError> {
        self.lock().remove(key);
        Ok(())
    }
}

/// Users by id, for a short time; every write invalidates.
#[derive(Debug, Clone)]
pub struct MemoryUserCache {
    users: Cache<Uuid, Arc<User>>,
}

impl MemoryUserCache {
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        Self {
            users: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
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

    async fn put(&self, user: Arc<User>) {
        self.users.insert(user.id, user);
    }

    async fn invalidate(&self, id: Uuid) {
        self.users.invalidate(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutConfig = LockoutConfig {
        max_attempts: 3,
        window: Duration::from_secs(60),
    };

    #[tokio::test]
    async fn locks_after_max_failures_for_the_window() {
        let t = MemoryLoginThrottle::default();
        assert_eq!(t.record_failure("k", 0, POLICY).await.unwrap(), None);
        assert_eq!(t.record_failure("k", 1_000, POLICY).await.unwrap(), None);
        assert_eq!(
            t.record_failure("k", 2_000, POLICY).await.unwrap(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            t.locked_for("k", 32_000).await.unwrap(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(t.locked_for("other", 32_000).await.unwrap(), None);
        assert_eq!(t.locked_for("k", 62_000).await.unwrap(), None, "lock ends");
    }

    #[tokio::test]
    async fn failures_outside_the_window_and_successes_reset() {
        let t = MemoryLoginThrottle::default();
        t.record_failure("k", 0, POLICY).await.unwrap();
        t.record_failure("k", 1, POLICY).await.unwrap();
        // The window passed: counting starts again.
        assert_eq!(t.record_failure("k", 61_000, POLICY).await.unwrap(), None);
        t.record_failure("k", 61_001, POLICY).await.unwrap();
        t.reset("k").await.unwrap();
        assert_eq!(t.record_failure("k", 61_002, POLICY).await.unwrap(), None);
    }

    #[tokio::test]
    async fn denylist_remembers_jtis() {
        let d = MemoryDenylist::default();
        d.deny("a", unix_now() + 60).await.unwrap();
        assert!(d.is_denied("a").await.unwrap());
        assert!(!d.is_denied("b").await.unwrap());
    }
}
