//! The `Clock` port: the one place wall-clock time is read, so tests can fix
//! it, and the one conversion to and from the Unix milliseconds that cross
//! the ports.

use std::fmt::Debug;

use time::OffsetDateTime;

/// Source of the current time.
pub trait Clock: Send + Sync + Debug {
    fn now(&self) -> OffsetDateTime;

    /// The current time in Unix milliseconds.
    fn now_ms(&self) -> i64 {
        unix_ms(self.now())
    }
}

/// Unix milliseconds of `t`, saturating far outside the representable range.
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The instant `ms` Unix milliseconds name; the epoch if out of range.
pub fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(
        clippy::disallowed_methods,
        reason = "this is the Clock port's implementation"
    )]
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millisecond_conversion_round_trips_and_saturates() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(unix_ms(t), 1_700_000_000_000);
        assert_eq!(from_unix_ms(unix_ms(t)), t);
        assert_eq!(from_unix_ms(i64::MAX), OffsetDateTime::UNIX_EPOCH);
    }
}
