//! Mail in the binary: the outbox sender that every instance runs beside
//! the server, and `gatehouse mail-test`.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_api::metrics;
use gatehouse_core::mail::{Mail, Message};
use gatehouse_core::service::MailDelivery;
use gatehouse_core::user::{Email, mask_email};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::settings::Settings;

/// How often the outbox is read while idle: mail asked for now leaves
/// within this, plus the send.
const POLL: Duration = Duration::from_secs(1);
/// How often mail tokens expired for a day are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The running sender. Sending never blocks a request: requests only write
/// the outbox, this task reads it.
#[derive(Debug)]
pub struct Sender {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Sender {
    pub fn start(delivery: Arc<MailDelivery>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(delivery, stopped));
        Self { stop, task }
    }

    /// Lets the step in progress finish (a send is never cut off half-way,
    /// which would send it again once its lease ran out), then stops.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "mail sender ended abnormally");
        }
    }
}

async fn run(delivery: Arc<MailDelivery>, mut stopped: watch::Receiver<bool>) {
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            biased;
            _ = stopped.changed() => break,
            _ = prune.tick() => match delivery.prune_tokens().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "expired mail tokens deleted"),
                Err(e) => tracing::warn!(error = %e, "mail token pruning failed; will retry"),
            },
            // A full batch means more may be due: keep going until drained.
            _ = poll.tick() => while step(&delivery).await && !*stopped.borrow() {},
        }
    }
}

/// One claim-and-send step; true when it claimed a full batch.
async fn step(delivery: &MailDelivery) -> bool {
    match delivery.run_once().await {
        Ok(report) => {
            metrics::record_mail(report.sent, report.failed, report.given_up);
            report.claimed >= u64::from(MailDelivery::BATCH)
        }
        Err(e) => {
            tracing::warn!(error = %e, "outbox could not be read; will retry");
            false
        }
    }
}

/// `gatehouse mail-test --to ADDRESS`: renders a test message and sends it
/// through the configured mailer now, outside the outbox.
pub async fn test(settings: &Settings, to: &str) -> Result<(), String> {
    let to = Email::parse(to).map_err(|p| format!("--to: {}", p.message))?;
    let mailer = gatehouse_mail::from_config(&settings.core)?;
    let mail = Mail {
        to: to.as_str().to_owned(),
        username: String::new(),
        message: Message::Test,
    };
    mailer
        .send(&mail)
        .await
        .map_err(|e| format!("test message to {} not sent: {e}", mask_email(to.as_str())))?;
    tracing::info!(to = %mask_email(to.as_str()), "test message sent");
    Ok(())
}
