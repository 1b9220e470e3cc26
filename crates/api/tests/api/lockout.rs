//! The lockout's reservations as the use cases hold them: a check that is
//! abandoned (an error, a cancelled request) gives its place back.

use std::sync::Arc;

use gatehouse_cache::memory::MemoryLoginThrottle;
use gatehouse_core::CoreError;
use gatehouse_core::clock::SystemClock;
use gatehouse_core::service::{Kernel, Lockout};

use crate::harness::config;

#[tokio::test]
async fn an_abandoned_check_gives_its_place_back() {
    let config = config(&[("MAX_LOGIN_ATTEMPTS", "3")]);
    let audit = Arc::new(gatehouse_core::audit::LogAuditSink);
    let kernel = Kernel::new(&config.core, Arc::new(SystemClock), audit).unwrap();
    let lockout = Lockout::new(
        &config.core,
        Arc::new(MemoryLoginThrottle::default()),
        kernel,
    );
    let key = lockout.key_of_email("someone@example.com");
    let held: Vec<_> = [(); 3]
        .iter()
        .map(|()| lockout.reserve(key.clone()))
        .collect();
    let mut attempts = Vec::new();
    for reserve in held {
        attempts.push(reserve.await.unwrap());
    }
    assert!(
        matches!(
            lockout.reserve(key.clone()).await,
            Err(CoreError::AccountLocked { .. })
        ),
        "three checks in flight fill the window"
    );
    // The requests holding them are dropped without settling.
    drop(attempts);
    let mut again = None;
    for _ in 0..100 {
        if let Ok(a) = lockout.reserve(key.clone()).await {
            again = Some(a);
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(
        again.is_some(),
        "abandoned reservations were never given back"
    );
}
