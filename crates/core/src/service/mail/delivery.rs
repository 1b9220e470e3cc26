//! The outbox worker's step: claim due entries, send each, settle it.
//! Failures are retried with exponential backoff (5 s, then doubling, at
//! most 10 minutes apart); an entry older than 24 hours, or refused for
//! good by the server, is given up — logged and counted.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::{Postman, ms};
use crate::CoreError;
use crate::mail::Message;
use crate::ports::{ClaimedMail, MailError, MailTokenRepo, Mailer, OutboxRepo, Settlement};
use crate::user::mask_email;

/// The first retry comes this long after a failure...
const FIRST_RETRY: Duration = Duration::from_secs(5);
/// ...then twice as long each time, never longer than this.
const MAX_RETRY: Duration = Duration::from_secs(600);
/// An entry is given up this long after it was written.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How long a claim holds an entry. A send is bounded well below it (the
/// mailer's own deadline), so a live claimer always settles in time; a
/// claimer that died leaves it to be claimed again after this.
pub const LEASE: Duration = Duration::from_secs(600);

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: u64,
    /// Failed attempts that will be retried.
    pub failed: u64,
    pub given_up: u64,
    /// Entries claimed (a full batch means more may be due).
    pub claimed: u64,
}

/// The delay before attempt `attempts + 1`, after `attempts` failures.
pub fn backoff(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.clamp(1, 16) - 1).unwrap_or(0);
    FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY)
}

/// Delivers the outbox through the mailer, as one instance among any.
#[derive(Debug)]
pub struct MailDelivery {
    postman: Postman,
    outbox: Arc<dyn OutboxRepo>,
    tokens: Arc<dyn MailTokenRepo>,
    mailer: Arc<dyn Mailer>,
    /// This instance's name on its claims.
    claimer: Uuid,
}

impl MailDelivery {
    /// Entries claimed at once.
    pub const BATCH: u32 = 5;

    pub fn new(
        postman: Postman,
        outbox: Arc<dyn OutboxRepo>,
        tokens: Arc<dyn MailTokenRepo>,
        mailer: Arc<dyn Mailer>,
    ) -> Self {
        Self {
            postman,
            outbox,
            tokens,
            mailer,
            claimer: Uuid::now_v7(),
        }
    }

    /// Claims the due entries and settles each one.
    pub async fn run_once(&self) -> Result<DeliveryReport, CoreError> {
        let now = self.postman.kernel().now_ms();
        let claimed = self
            .outbox
            .claim(self.claimer, now, ms(LEASE), Self::BATCH)
            .await?;
        let mut report = DeliveryReport {
            claimed: claimed.len() as u64,
            ..DeliveryReport::default()
        };
        for entry in claimed {
            self.deliver(entry, &mut report).await?;
        }
        Ok(report)
    }

    async fn deliver(
        &self,
        entry: ClaimedMail,
        report: &mut DeliveryReport,
    ) -> Result<(), CoreError> {
        let age = self.postman.kernel().now_ms() - entry.created_at;
        let mail = match self.postman.open(&entry.payload_enc) {
            Ok(mail) => mail,
            // A payload no configured key opens (a key dropped too early).
            Err(e) => {
                return self
                    .give_up(&entry, &format!("unreadable payload: {e}"), report)
                    .await;
            }
        };
        if mail.message == Message::Nothing {
            self.settle(&entry, Settlement::Delivered).await?;
            return Ok(());
        }
        if age >= ms(GIVE_UP_AFTER) {
            return self.give_up(&entry, "older than 24 hours", report).await;
        }
        match self.mailer.send(&mail).await {
            Ok(()) => {
                self.settle(&entry, Settlement::Delivered).await?;
                report.sent += 1;
                tracing::info!(outbox_id = %entry.id, kind = %entry.kind, to = %mask_email(&mail.to), "mail sent");
            }
            Err(MailError::Permanent(reason)) => {
                self.give_up(&entry, &reason, report).await?;
            }
            Err(MailError::Transient(reason)) => {
                let attempts = entry.attempts + 1;
                let delay = backoff(attempts);
                let at = self.postman.kernel().now_ms() + ms(delay);
                self.settle(&entry, Settlement::Retry { at, error: &reason })
                    .await?;
                report.failed += 1;
                tracing::warn!(
                    outbox_id = %entry.id, kind = %entry.kind, attempts,
                    retry_in_secs = delay.as_secs(), error = %reason,
                    "mail not sent; will retry"
                );
            }
        }
        Ok(())
    }

    async fn give_up(
        &self,
        entry: &ClaimedMail,
        reason: &str,
        report: &mut DeliveryReport,
    ) -> Result<(), CoreError> {
        let at = self.postman.kernel().now_ms();
        self.settle(entry, Settlement::GiveUp { at, error: reason })
            .await?;
        report.given_up += 1;
        tracing::error!(
            outbox_id = %entry.id, kind = %entry.kind, attempts = entry.attempts + 1,
            error = %reason, "mail given up"
        );
        Ok(())
    }

    async fn settle(&self, entry: &ClaimedMail, outcome: Settlement<'_>) -> Result<(), CoreError> {
        if !self.outbox.settle(entry.id, self.claimer, outcome).await? {
            // The lease ran out and another claimer has it now.
            tracing::warn!(outbox_id = %entry.id, "outbox claim lost before it was settled");
        }
        Ok(())
    }

    /// Deletes mail tokens expired for a day; how many.
    pub async fn prune_tokens(&self) -> Result<u64, CoreError> {
        let cutoff = self.postman.kernel().now_ms() - ms(GIVE_UP_AFTER);
        self.tokens.prune_tokens(cutoff).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_within_ten_seconds_and_never_wait_over_ten_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(3), Duration::from_secs(20));
        assert_eq!(backoff(8), Duration::from_secs(600));
        assert_eq!(backoff(1_000), Duration::from_secs(600));
        assert_eq!(backoff(0), Duration::from_secs(5));
    }
}
