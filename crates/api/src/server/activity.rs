//! What one connection is doing, and the deadline that follows from it:
//! complete request headers are due `HTTP_HEADER_READ_TIMEOUT_SECS` after
//! the connection opened (or after the first byte of a later request), the
//! next request `HTTP_IDLE_TIMEOUT_SECS` after the last response, and a
//! response must be sent within `STREAM_MAX_SECS` of its start.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

use crate::config::ConnectionConfig;

/// Why a connection's deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expiry {
    /// Complete request headers did not arrive in time (slow or silent
    /// client).
    Headers,
    /// No request on a keep-alive connection for the idle timeout.
    Idle,
    /// A response was still being sent at `STREAM_MAX_SECS`.
    Stream,
}

/// What a connection without a request in flight waits for, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Headers(Instant),
    Idle(Instant),
}

#[derive(Debug)]
struct State {
    /// Meaningful while no request is in flight.
    waiting: Waiting,
    /// Requests whose response is not completely handed over yet.
    in_flight: usize,
    /// The start of every response being sent, ordered: the first is the
    /// one whose time runs out first.
    responding: BTreeSet<(Instant, u64)>,
    next_id: u64,
}

/// One connection's activity, shared by its IO (bytes read), its service
/// (requests and responses) and its watchdog ([`Activity::expired`]).
#[derive(Debug)]
pub(super) struct Activity {
    limits: ConnectionConfig,
    state: Mutex<State>,
    changed: Notify,
}

impl Activity {
    /// A connection accepted at `now`: its first request's headers are due.
    pub fn new(limits: ConnectionConfig, now: Instant) -> Self {
        Self {
            limits,
            state: Mutex::new(State {
                waiting: Waiting::Headers(now),
                in_flight: 0,
                responding: BTreeSet::new(),
                next_id: 0,
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes of a new request arrived: on an idle connection, its headers
    /// are now due.
    pub fn request_bytes(&self) {
        let mut state = self.state();
        if state.in_flight == 0 && matches!(state.waiting, Waiting::Idle(_)) {
            state.waiting = Waiting::Headers(Instant::now());
            drop(state);
            self.changed.notify_waiters();
        }
    }

    /// Complete headers arrived: no header or idle deadline while the
    /// request is in flight. The request ends when the guard is dropped.
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        let mut state = self.state();
        state.in_flight += 1;
        state.next_id += 1;
        InFlight {
            activity: self.clone(),
            id: state.next_id,
            responding_since: None,
        }
    }

    /// True while the connection has no request in flight and has not
    /// completed the headers of the one it is waiting for.
    pub fn is_awaiting_headers(&self) -> bool {
        let state = self.state();
        state.in_flight == 0 && matches!(state.waiting, Waiting::Headers(_))
    }

    /// The connection is being closed on purpose: it has one more header
    /// timeout to finish, whatever it waited for before.
    pub fn closing(&self, now: Instant) {
        let mut state = self.state();
        state.waiting = Waiting::Headers(now);
        drop(state);
        self.changed.notify_waiters();
    }

    /// The next deadline and what passing it means; `None` while requests
    /// are handled and none of them is responding yet (the request timeout
    /// bounds those).
    fn deadline(&self) -> Option<(Instant, Expiry)> {
        let state = self.state();
        if let Some((since, _)) = state.responding.first() {
            return Some((*since + self.limits.stream_max, Expiry::Stream));
        }
        if state.in_flight > 0 {
            return None;
        }
        Some(match state.waiting {
            Waiting::Headers(since) => (since + self.limits.header_read_timeout, Expiry::Headers),
            Waiting::Idle(since) => (since + self.limits.idle_timeout, Expiry::Idle),
        })
    }

    /// Resolves once a deadline has passed: the connection's watchdog.
    pub async fn expired(&self) -> Expiry {
        loop {
            // Registered before the state is read, so no change is missed.
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            match self.deadline() {
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        () = sleep_until(at) => {}
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// A request in flight on a connection; dropped with its response body
/// (sent, or abandoned), which makes the connection idle again.
#[derive(Debug)]
pub(super) struct InFlight {
    activity: Arc<Activity>,
    id: u64,
    responding_since: Option<Instant>,
}

impl InFlight {
    /// The response head is ready: from now on the response must be sent
    /// within `STREAM_MAX_SECS`.
    pub fn responding(mut self, now: Instant) -> Self {
        let mut state = self.activity.state();
        state.responding.insert((now, self.id));
        drop(state);
        self.responding_since = Some(now);
        self.activity.changed.notify_waiters();
        self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.activity.state();
        if let Some(since) = self.responding_since {
            state.responding.remove(&(since, self.id));
        }
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.waiting = Waiting::Idle(Instant::now());
        }
        drop(state);
        self.activity.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> ConnectionConfig {
        ConnectionConfig {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1,
            stream_max: Duration::from_secs(600),
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_expires_at_the_header_timeout() {
        let start = Instant::now();
        let activity = Activity::new(limits(), start);
        assert!(activity.is_awaiting_headers());
        assert_eq!(activity.expired().await, Expiry::Headers);
        assert_eq!(Instant::now() - start, secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_expires_at_the_idle_timeout_not_the_header_one() {
        let activity = Arc::new(Activity::new(limits(), Instant::now()));
        let request = activity.request_started();
        assert!(!activity.is_awaiting_headers());
        let request = request.responding(Instant::now());
        drop(request);
        let idle_since = Instant::now();
        assert_eq!(activity.expired().await, Expiry::Idle);
        assert_eq!(Instant::now() - idle_since, secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_on_an_idle_connection_make_the_headers_due() {
        let activity = Arc::new(Activity::new(limits(), Instant::now()));
        drop(activity.request_started());
        tokio::time::advance(secs(30)).await;
        let first_byte = Instant::now();
        activity.request_bytes();
        assert!(activity.is_awaiting_headers());
        assert_eq!(activity.expired().await, Expiry::Headers);
        assert_eq!(Instant::now() - first_byte, secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_being_handled_has_no_connection_deadline() {
        let activity = Arc::new(Activity::new(limits(), Instant::now()));
        let request = activity.request_started();
        let watchdog = tokio::time::timeout(secs(3600), activity.expired()).await;
        assert!(watchdog.is_err(), "expired while a request was handled");
        // Bytes read meanwhile (a request body) change nothing.
        activity.request_bytes();
        assert!(!activity.is_awaiting_headers());
        drop(request);
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_response_bounds_the_connection() {
        let activity = Arc::new(Activity::new(limits(), Instant::now()));
        let first = activity.request_started().responding(Instant::now());
        let first_at = Instant::now();
        tokio::time::advance(secs(100)).await;
        let second = activity.request_started().responding(Instant::now());
        let second_at = Instant::now();
        drop(first);
        assert_eq!(activity.expired().await, Expiry::Stream);
        assert_eq!(Instant::now() - second_at, secs(600));
        assert!(Instant::now() - first_at > secs(600));
        drop(second);
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_moves_a_pending_deadline() {
        let activity = Arc::new(Activity::new(limits(), Instant::now()));
        drop(activity.request_started());
        let watchdog = {
            let activity = activity.clone();
            tokio::spawn(async move { activity.expired().await })
        };
        tokio::time::advance(secs(5)).await;
        // A new request's first byte: the (earlier) header deadline applies.
        let first_byte = Instant::now();
        activity.request_bytes();
        assert_eq!(watchdog.await.unwrap(), Expiry::Headers);
        assert_eq!(Instant::now() - first_byte, secs(10));
    }
}
