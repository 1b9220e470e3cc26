//! Mail in tests: a mailer that keeps what it is given, and the outbox
//! delivered on demand (what the binary's sender task does every second).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use gatehouse_core::mail::{Mail, OneTime};
use gatehouse_core::ports::{MailError, Mailer};
use gatehouse_core::service::{DeliveryReport, MailDelivery};

/// Keeps every mail it is asked to send; fails while `failing` is set.
#[derive(Debug, Default)]
pub struct CapturingMailer {
    sent: Mutex<Vec<Mail>>,
    failing: Mutex<Option<MailError>>,
}

#[async_trait]
impl Mailer for CapturingMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        if let Some(err) = self.failing.lock().unwrap().clone() {
            return Err(err);
        }
        self.sent.lock().unwrap().push(mail.clone());
        Ok(())
    }
}

/// The app's outbox and what left it.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub mailer: Arc<CapturingMailer>,
    pub delivery: Arc<MailDelivery>,
}

impl Outbox {
    /// Runs the sender until nothing is due; what it did.
    pub async fn deliver(&self) -> DeliveryReport {
        let mut total = DeliveryReport::default();
        loop {
            let r = self.delivery.run_once().await.unwrap();
            total.sent += r.sent;
            total.failed += r.failed;
            total.given_up += r.given_up;
            total.claimed += r.claimed;
            if r.claimed < u64::from(MailDelivery::BATCH) {
                return total;
            }
        }
    }

    /// Delivers, then takes every mail sent so far.
    pub async fn take(&self) -> Vec<Mail> {
        self.deliver().await;
        std::mem::take(&mut *self.mailer.sent.lock().unwrap())
    }

    /// Delivers, then takes the mails sent to `to`.
    pub async fn take_for(&self, to: &str) -> Vec<Mail> {
        let all = self.take().await;
        let (mine, others): (Vec<Mail>, Vec<Mail>) = all.into_iter().partition(|m| m.to == to);
        self.mailer.sent.lock().unwrap().extend(others);
        mine
    }

    /// The one-time secret of the last mail to `to` that carries one.
    pub async fn secret_for(&self, to: &str) -> OneTime {
        self.take_for(to)
            .await
            .iter()
            .rev()
            .find_map(|m| m.message.one_time().cloned())
            .unwrap_or_else(|| panic!("no mail with a link to {to}"))
    }

    /// Makes every send fail with `err` (`None`: succeed again).
    pub fn fail_with(&self, err: Option<MailError>) {
        *self.mailer.failing.lock().unwrap() = err;
    }
}

/// The token of a mailed link.
pub fn token_of(secret: &OneTime) -> String {
    secret
        .link
        .split_once("token=")
        .map(|(_, t)| t.to_owned())
        .expect("the link carries a token")
}
