//! Lockout counters in Redis, shared by every instance: the reservation,
//! failure and release rules of `MemoryLoginThrottle`, each one script (one
//! atomic step). With Redis unreachable a reservation fails (503): counting
//! per instance instead would let each instance check its own
//! `MAX_LOGIN_ATTEMPTS` secrets, so the lockout fails closed.

use std::time::Duration;

use async_trait::async_trait;
use gatehouse_core::CoreError;
use gatehouse_core::config::LockoutConfig;
use gatehouse_core::ports::{LoginThrottle, Reservation};
use redis::Script;

use super::{RedisStore, dur};
use crate::memory::IN_FLIGHT_RETRY;

/// KEYS: the key's hash. ARGV: now, window, max (ms, ms, count).
/// Returns -1 when granted, else the milliseconds to wait (0: in flight).
const RESERVE: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'failures', 'pending', 'first', 'until')
local failures = tonumber(h[1]) or 0
local pending = tonumber(h[2]) or 0
local first = tonumber(h[3]) or now
local lock_until = tonumber(h[4])
if lock_until and lock_until > now then
  return lock_until - now
end
if lock_until or (now - first >= window) then
  failures = 0
  first = now
  redis.call('HDEL', KEYS[1], 'until')
end
if failures + pending >= max then
  return 0
end
redis.call('HSET', KEYS[1], 'failures', failures, 'pending', pending + 1, 'first', first)
redis.call('PEXPIREAT', KEYS[1], first + window + 1000)
return -1
";

/// KEYS: the key's hash, the lock index (sorted set by lock end).
/// ARGV: now, window, max. Returns the lock's length if this failure locks.
const FAIL: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'failures', 'pending', 'first', 'until')
local failures = tonumber(h[1]) or 0
local pending = tonumber(h[2]) or 0
local first = tonumber(h[3]) or now
local lock_until = tonumber(h[4])
if pending > 0 then pending = pending - 1 end
if (lock_until and lock_until <= now) or (not lock_until and now - first >= window) then
  failures = 0
  first = now
  lock_until = nil
  redis.call('HDEL', KEYS[1], 'until')
end
failures = failures + 1
local locked = -1
if failures >= max and not lock_until then
  lock_until = now + window
  locked = window
  redis.call('HSET', KEYS[1], 'until', lock_until)
  redis.call('ZADD', KEYS[2], lock_until, KEYS[1])
end
redis.call('HSET', KEYS[1], 'failures', failures, 'pending', pending, 'first', first)
local expire_at = first + window
if lock_until and lock_until > expire_at then expire_at = lock_until end
redis.call('PEXPIREAT', KEYS[1], expire_at + 1000)
return locked
";

/// KEYS: the key's hash. Gives one in-flight check back.
const RELEASE: &str = r"
local pending = tonumber(redis.call('HGET', KEYS[1], 'pending')) or 0
if pending > 0 then
  redis.call('HSET', KEYS[1], 'pending', pending - 1)
end
return 0
";

/// Lockout counters, shared by every instance.
#[derive(Debug)]
pub struct RedisLoginThrottle {
    store: RedisStore,
    reserve: Script,
    fail: Script,
    release: Script,
}

impl RedisLoginThrottle {
    pub fn new(store: RedisStore) -> Self {
        Self {
            store,
            reserve: Script::new(RESERVE),
            fail: Script::new(FAIL),
            release: Script::new(RELEASE),
        }
    }

    fn hash_key(&self, key: &str) -> String {
        self.store.key(&format!("fail:{key}"))
    }
}

fn window_ms(policy: LockoutConfig) -> i64 {
    i64::try_from(policy.window.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl LoginThrottle for RedisLoginThrottle {
    async fn reserve(
        &self,
        key: &str,
        now: i64,
        policy: LockoutConfig,
    ) -> Result<Reservation, CoreError> {
        let hash = self.hash_key(key);
        let script = &self.reserve;
        let wait = self
            .store
            .call("lockout.reserve", |mut c| async move {
                script
                    .key(hash)
                    .arg(now)
                    .arg(window_ms(policy))
                    .arg(policy.max_attempts)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await?;
        Ok(match wait {
            w if w < 0 => Reservation::Granted,
            0 => Reservation::Refused(IN_FLIGHT_RETRY),
            w => Reservation::Refused(dur(w)),
        })
    }

    async fn fail(
        &self,
        key: &str,
        now: i64,
        policy: LockoutConfig,
    ) -> Result<Option<Duration>, CoreError> {
        let keys = (self.hash_key(key), self.store.key("locks"));
        let script = &self.fail;
        let locked = self
            .store
            .call("lockout.fail", |mut c| async move {
                script
                    .key(keys.0)
                    .key(keys.1)
                    .arg(now)
                    .arg(window_ms(policy))
                    .arg(policy.max_attempts)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await?;
        Ok((locked >= 0).then(|| dur(locked)))
    }

    async fn release(&self, key: &str) -> Result<(), CoreError> {
        let hash = self.hash_key(key);
        let script = &self.release;
        self.store
            .call("lockout.release", |mut c| async move {
                script.key(hash).invoke_async::<i64>(&mut c).await
            })
            .await
            .map(drop)
    }

    async fn reset(&self, key: &str) -> Result<(), CoreError> {
        let hash = self.hash_key(key);
        self.store
            .call("lockout.reset", |mut c| async move {
                redis::cmd("DEL").arg(hash).query_async::<i64>(&mut c).await
            })
            .await
            .map(drop)
    }

    async fn locked_count(&self, now: i64) -> Result<u64, CoreError> {
        let locks = self.store.key("locks");
        let n = self
            .store
            .call("lockout.count", |mut c| async move {
                redis::cmd("ZREMRANGEBYSCORE")
                    .arg(&locks)
                    .arg("-inf")
                    .arg(now)
                    .query_async::<i64>(&mut c)
                    .await?;
                redis::cmd("ZCARD")
                    .arg(&locks)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
