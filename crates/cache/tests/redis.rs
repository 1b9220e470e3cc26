//! The Redis adapters against a real Redis (`TEST_REDIS_URL`; CI sets it):
//! the same cases as the in-process adapters, invalidation across two
//! instances, and an outage of a Redis server this test starts and stops.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly"
)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_cache::memory::{MemoryLoginThrottle, MemoryRateLimiter};
use gatehouse_cache::redis::{
    RedisDenylist, RedisLoginThrottle, RedisRateLimiter, RedisStore, RedisUserCache,
};
use gatehouse_core::config::LockoutConfig;
use gatehouse_core::ports::{HealthProbe, LoginThrottle, Reservation, TokenDenylist, UserCache};
use gatehouse_core::ratelimit::{Rate, RateLimiter};
use gatehouse_core::rbac::Role;
use gatehouse_core::user::User;
use uuid::Uuid;

fn redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("TEST_REDIS_URL unset: Redis adapter test not run");
    }
    url
}

async fn store(url: &str) -> RedisStore {
    let prefix = format!("test:{}:", Uuid::now_v7().simple());
    RedisStore::connect(url, &prefix).await.unwrap()
}

#[tokio::test]
async fn rate_limits_decide_exactly_like_the_in_process_store() {
    let Some(url) = redis_url() else { return };
    let redis = RedisRateLimiter::new(store(&url).await);
    let memory = MemoryRateLimiter::default();
    let rate = Rate {
        count: 3,
        period: Duration::from_secs(60),
    };
    let base = 1_800_000_000_000;
    let steps = [
        0, 0, 0, 0, 1_000, 19_999, 20_000, 20_000, 45_000, 130_000, 130_000,
    ];
    for (i, offset) in steps.iter().enumerate() {
        let now = base + offset;
        let a = redis.check("k", rate, now).await.unwrap();
        let b = memory.check("k", rate, now).await.unwrap();
        assert_eq!(a, b, "step {i} at +{offset} ms");
    }
}

#[tokio::test]
async fn lockout_counts_exactly_like_the_in_process_store() {
    let Some(url) = redis_url() else { return };
    let redis = RedisLoginThrottle::new(store(&url).await);
    let memory = MemoryLoginThrottle::default();
    let policy = LockoutConfig {
        max_attempts: 3,
        window: Duration::from_secs(60),
    };
    let t = 1_800_000_000_000;
    let throttles: [&dyn LoginThrottle; 2] = [&redis, &memory];
    let mut outcomes: Vec<Vec<String>> = Vec::new();
    for throttle in throttles {
        let mut seen = Vec::new();
        for (now, op) in [
            (t, "reserve"),
            (t, "fail"),
            (t + 1, "reserve"),
            (t + 1, "release"),
            (t + 2, "reserve"),
            (t + 2, "reserve"),
            // Two in flight and one failure fill the window.
            (t + 2, "reserve"),
            (t + 3, "fail"),
            (t + 3, "fail"),
            (t + 4, "reserve"),
            (t + 5, "count"),
            (t + 30_000, "reserve"),
            (t + 63_004, "reserve"),
            (t + 63_005, "fail"),
            (t + 63_006, "reset"),
            (t + 63_007, "reserve"),
            (t + 63_008, "count"),
        ] {
            let out = match op {
                "reserve" => format!("{:?}", throttle.reserve("acct", now, policy).await.unwrap()),
                "fail" => format!("{:?}", throttle.fail("acct", now, policy).await.unwrap()),
                "release" => format!("{:?}", throttle.release("acct").await.unwrap()),
                "count" => format!("{}", throttle.locked_count(now).await.unwrap()),
                _ => format!("{:?}", throttle.reset("acct").await.unwrap()),
            };
            seen.push(out);
        }
        outcomes.push(seen);
    }
    assert_eq!(outcomes[0], outcomes[1]);
    assert_eq!(outcomes[0][6], "Refused(1s)", "{:?}", outcomes[0]);
    assert_eq!(
        outcomes[0][8], "Some(60s)",
        "third failure locks: {:?}",
        outcomes[0]
    );
    assert_eq!(outcomes[0][9], "Refused(59.999s)", "{:?}", outcomes[0]);
    assert_eq!(
        outcomes[0][12], "Granted",
        "after the lock: {:?}",
        outcomes[0]
    );
}

#[tokio::test]
async fn lockout_reservations_are_atomic_across_instances() {
    let Some(url) = redis_url() else { return };
    let a = store(&url).await;
    // A second connection with the same prefix stands for another instance.
    let b = RedisStore::connect(&url, a.prefix()).await.unwrap();
    let throttles = [RedisLoginThrottle::new(a), RedisLoginThrottle::new(b)];
    let policy = LockoutConfig {
        max_attempts: 5,
        window: Duration::from_secs(60),
    };
    let t = 1_800_000_000_000;
    let tries = (0..40).map(|i| throttles[i % 2].reserve("raced", t, policy));
    let granted = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(Reservation::Granted)))
        .count();
    assert_eq!(granted, 5, "exactly MAX_LOGIN_ATTEMPTS checks may run");
}

#[tokio::test]
async fn denied_tokens_are_seen_by_every_instance() {
    let Some(url) = redis_url() else { return };
    let a = store(&url).await;
    // A second connection with the same prefix stands for another instance.
    let b = RedisStore::connect(&url, a.prefix()).await.unwrap();
    let (da, db) = (RedisDenylist::new(a), RedisDenylist::new(b));
    let future = i64::try_from(std::time::UNIX_EPOCH.elapsed().unwrap().as_secs()).unwrap() + 60;
    da.deny("jti-1", future).await.unwrap();
    assert!(db.is_denied("jti-1").await.unwrap());
    assert!(!db.is_denied("jti-2").await.unwrap());
}

fn user(id: Uuid) -> Arc<User> {
    Arc::new(User {
        id,
        username: "cached".into(),
        email: "cached@example.com".into(),
        email_verified: false,
        full_name: None,
        role: Role::User,
        is_active: true,
        mfa_enabled: false,
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        updated_at: time::OffsetDateTime::UNIX_EPOCH,
        auth_version: 0,
    })
}

/// Polls `cond` for up to two seconds (pub/sub delivery is asynchronous).
async fn eventually(mut cond: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..200 {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn an_invalidation_on_one_instance_reaches_the_other() {
    let Some(url) = redis_url() else { return };
    let a = store(&url).await;
    let b = RedisStore::connect(&url, a.prefix()).await.unwrap();
    let ca = RedisUserCache::new(a);
    let cb = RedisUserCache::new(b);
    assert!(eventually(async || ca.is_listening() && cb.is_listening()).await);
    let id = Uuid::now_v7();
    ca.put(user(id), ca.generation()).await;
    cb.put(user(id), cb.generation()).await;
    assert!(cb.get(id).await.is_some());
    ca.invalidate(id).await;
    assert!(ca.get(id).await.is_none());
    assert!(
        eventually(async || cb.get(id).await.is_none()).await,
        "B still serves the stale user"
    );
}

/// A Redis server of this test's own, on a free port.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        Self {
            port,
            child: Some(child),
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn outage_degrades_safely_and_recovers_by_itself() {
    if redis_url().is_none() {
        return;
    }
    let mut server = OwnRedis::start(OwnRedis::free_port());
    let url = format!("redis://127.0.0.1:{}", server.port);
    let store = {
        let mut connected = None;
        for _ in 0..100 {
            if let Ok(s) = RedisStore::connect(&url, "outage:").await {
                connected = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        connected.expect("own redis started")
    };
    let limiter = RedisRateLimiter::new(store.clone());
    let denylist = RedisDenylist::new(store.clone());
    let cache = RedisUserCache::new(store.clone());
    assert!(eventually(async || cache.is_listening()).await);
    let rate = Rate {
        count: 2,
        period: Duration::from_secs(60),
    };
    assert!(store.check().await.is_ok());

    server.stop();
    assert!(store.check().await.is_err(), "readiness reports the outage");
    // Limits still apply, counted in this process.
    let now = 1_800_000_000_000;
    assert!(limiter.check("ip", rate, now).await.unwrap().allowed);
    assert!(limiter.check("ip", rate, now).await.unwrap().allowed);
    assert!(!limiter.check("ip", rate, now).await.unwrap().allowed);
    // The denylist fails closed.
    assert!(denylist.is_denied("any").await.is_err());
    // The cache steps aside.
    assert!(eventually(async || !cache.is_listening()).await);
    let id = Uuid::now_v7();
    cache.put(user(id), cache.generation()).await;
    assert!(cache.get(id).await.is_none());

    let _server = OwnRedis::start(server.port);
    assert!(
        eventually(async || store.check().await.is_ok()).await
            || eventually(async || store.check().await.is_ok()).await,
        "back by itself"
    );
    assert!(!denylist.is_denied("any").await.unwrap());
    assert!(eventually(async || cache.is_listening()).await);
    cache.put(user(id), cache.generation()).await;
    assert!(cache.get(id).await.is_some());
}
