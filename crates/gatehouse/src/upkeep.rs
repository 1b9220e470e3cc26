//! Housekeeping of `serve`: checkpoints of the audit chain's head in the log
//! (at start and at shutdown, beside the ones every 1,000 entries), the sweep
//! of upload contents left without a row (at start, then hourly), and the
//! end of the background jobs (audit pruning among them) at shutdown.

use std::time::Duration;

use gatehouse_api::AppState;
use gatehouse_core::service::ORPHAN_GRACE;
use tokio::task::JoinHandle;

const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// The background jobs of a running `serve`.
#[derive(Debug)]
pub struct Housekeeping {
    state: AppState,
    tasks: Vec<JoinHandle<()>>,
}

/// Logs a checkpoint and sweeps once, before the service takes requests;
/// then sweeps hourly. `pruning` (if any) is ended with the rest.
pub async fn start(state: &AppState, pruning: Option<JoinHandle<()>>) -> Housekeeping {
    checkpoint(state, "startup").await;
    sweep(state).await;
    let sweeper = state.clone();
    let sweeping = tokio::spawn(async move {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        // The first tick is immediate: the startup sweep already ran.
        every.tick().await;
        loop {
            every.tick().await;
            sweep(&sweeper).await;
        }
    });
    Housekeeping {
        state: state.clone(),
        tasks: pruning.into_iter().chain([sweeping]).collect(),
    }
}

impl Housekeeping {
    /// Ends the jobs, then logs the head the instance leaves the chain at.
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        checkpoint(&self.state, "shutdown").await;
    }
}

/// Logs the audit chain's head as an `audit_checkpoint` (`reason`:
/// `startup`, `shutdown`), so a copy lives outside the database.
async fn checkpoint(state: &AppState, reason: &'static str) {
    if let Err(e) = state.operations().audit_checkpoint(reason).await {
        tracing::warn!(error = %e, reason, "audit checkpoint failed");
    }
}

/// Removes upload contents without a row, older than [`ORPHAN_GRACE`].
async fn sweep(state: &AppState) {
    match state.files().sweep_orphans(ORPHAN_GRACE).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "upload contents without a row removed"),
        Err(e) => tracing::warn!(error = %e, "upload sweep failed; will retry"),
    }
}
