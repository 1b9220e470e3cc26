//! Rate limiting: one policy model (a [`Rate`] per key) and the GCRA
//! algorithm (generic cell rate algorithm, as in ATM networks and the
//! `governor` crate) as a pure function of the stored state and the time, so
//! every store — in-process or the Redis script — decides identically.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

use crate::CoreError;
pub use crate::config::Rate;

/// The outcome of one request against one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Until the limit is fully replenished.
    pub reset_after: Duration,
    /// When denied: until the next request would be allowed.
    pub retry_after: Option<Duration>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn dur(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// One GCRA step. `tat` is the stored theoretical arrival time (Unix ms),
/// `None` for a fresh key. Returns the decision and the TAT to store (the
/// old one when denied). `rate.count` requests may arrive at once; after
/// that one every `period / count`.
pub fn gcra(tat: Option<i64>, now: i64, rate: Rate) -> (Decision, i64) {
    let period = ms(rate.period).max(1);
    let count = i64::from(rate.count.max(1));
    let interval = (period / count).max(1);
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat + interval;
    let allow_at = new_tat - period;
    if allow_at > now {
        let decision = Decision {
            allowed: false,
            limit: rate.count,
            remaining: 0,
            reset_after: dur(tat - now),
            retry_after: Some(dur(allow_at - now)),
        };
        return (decision, tat);
    }
    let remaining = (period - (new_tat - now)) / interval;
    let decision = Decision {
        allowed: true,
        limit: rate.count,
        remaining: u32::try_from(remaining.max(0)).unwrap_or(0),
        reset_after: dur(new_tat - now),
        retry_after: None,
    };
    (decision, new_tat)
}

/// Counts requests per key.
#[async_trait]
pub trait RateLimiter: Send + Sync + Debug {
    /// Applies one request of `key` at `now` (Unix ms) against `rate`.
    async fn check(&self, key: &str, rate: Rate, now: i64) -> Result<Decision, CoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_minute(count: u32) -> Rate {
        Rate {
            count,
            period: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_burst_of_count_then_one_per_interval() {
        let rate = per_minute(5);
        let mut tat = None;
        for expected_remaining in [4, 3, 2, 1, 0] {
            let (d, t) = gcra(tat, 0, rate);
            assert!(d.allowed);
            assert_eq!(d.remaining, expected_remaining);
            tat = Some(t);
        }
        let (d, t) = gcra(tat, 0, rate);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_secs(12)));
        assert_eq!(d.reset_after, Duration::from_secs(60));
        assert_eq!(Some(t), tat, "denials do not consume");
        // One interval later exactly one more is allowed.
        let (d, t) = gcra(tat, 12_000, rate);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        let (d, _) = gcra(Some(t), 12_000, rate);
        assert!(!d.allowed);
        // After a full period the whole burst is back.
        let (d, _) = gcra(Some(t), 72_000, rate);
        assert!(d.allowed);
        assert_eq!(d.remaining, 4);
    }
}
