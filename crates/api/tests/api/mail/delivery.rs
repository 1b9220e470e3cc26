//! The outbox sender: retries with backoff, gives up after 24 hours or a
//! refusal (payload scrubbed), takes over entries whose claimer died, and
//! never hands one entry to two claimers.

use std::collections::HashSet;
use std::time::Duration;

use gatehouse_core::clock::Clock;
use gatehouse_core::ports::{MailError, OutboxRepo};
use uuid::Uuid;

use super::request_reset;
use crate::harness::{TestApp, backends};

fn transient() -> Option<MailError> {
    Some(MailError::Transient("connection failed".into()))
}

#[tokio::test]
async fn failures_are_retried_with_backoff_then_sent_once() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        app.register("ray").await;
        app.outbox.fail_with(transient());
        let r = app.outbox.deliver().await;
        assert_eq!((r.sent, r.failed), (0, 1), "{backend:?}");
        let next = app.count("SELECT next_attempt_at FROM mail_outbox").await;
        assert_eq!(next - app.clock.now_ms(), 5_000, "first retry after 5 s");
        assert_eq!(app.outbox.deliver().await.claimed, 0, "not due yet");
        app.clock.advance(Duration::from_secs(5));
        assert_eq!(app.outbox.deliver().await.failed, 1);
        let next = app.count("SELECT next_attempt_at FROM mail_outbox").await;
        assert_eq!(next - app.clock.now_ms(), 10_000, "then twice as long");
        app.outbox.fail_with(None);
        app.clock.advance(Duration::from_secs(10));
        assert_eq!(app.outbox.deliver().await.sent, 1);
        assert_eq!(app.outbox.take_for("ray@example.com").await.len(), 1);
        assert_eq!(app.count("SELECT COUNT(*) FROM mail_outbox").await, 0);
    }
}

#[tokio::test]
async fn mail_is_given_up_after_a_day_or_a_refusal_and_its_payload_scrubbed() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        app.register("gil").await;
        app.outbox.fail_with(transient());
        for _ in 0..20 {
            app.outbox.deliver().await;
            app.clock.advance(Duration::from_secs(600));
        }
        app.clock.advance(Duration::from_secs(24 * 3600));
        let r = app.outbox.deliver().await;
        assert_eq!(r.given_up, 1, "{backend:?}");
        let scrubbed = app
            .count("SELECT COUNT(*) FROM mail_outbox WHERE payload_enc IS NULL AND gave_up_at IS NOT NULL")
            .await;
        assert_eq!(scrubbed, 1);
        app.outbox.fail_with(None);
        assert_eq!(app.outbox.deliver().await.claimed, 0, "never tried again");
        // A permanent refusal gives up at once.
        request_reset(&app, "gil@example.com").await;
        app.outbox
            .fail_with(Some(MailError::Permanent("server answered 550".into())));
        assert_eq!(app.outbox.deliver().await.given_up, 1);
    }
}

#[tokio::test]
async fn an_entry_whose_claimer_died_is_claimed_again_after_its_lease() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        app.register("lea").await;
        let now = app.clock.now_ms();
        // Another instance claims it and dies.
        let claimed = app
            .db
            .db
            .claim(Uuid::now_v7(), now, 600_000, 5)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(app.outbox.deliver().await.claimed, 0, "{backend:?}: leased");
        app.clock.advance(Duration::from_secs(601));
        assert_eq!(app.outbox.deliver().await.sent, 1);
    }
}

#[tokio::test]
async fn concurrent_claimers_never_share_an_entry() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        for i in 0..12 {
            request_reset(&app, &format!("c{i}@example.com")).await;
        }
        let now = app.clock.now_ms();
        let claims = (0..6).map(|_| {
            let db = app.db.db.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = db.claim(Uuid::now_v7(), now, 600_000, 2).await.unwrap();
                    if batch.is_empty() {
                        return got;
                    }
                    got.extend(batch.into_iter().map(|c| c.id));
                }
            })
        });
        let mut seen = HashSet::new();
        for task in futures_util::future::join_all(claims).await {
            for id in task.unwrap() {
                assert!(seen.insert(id), "{backend:?}: {id} claimed twice");
            }
        }
        assert_eq!(seen.len(), 12);
    }
}
