//! `gatehouse rotate-keys`: re-encrypts every stored PII value under the
//! first key of `DATA_ENCRYPTION_KEYS`, in batches; safe to interrupt and run
//! again (rows already under that key are skipped).

use crate::cli::{error_chain, open_services};
use crate::settings::Settings;

pub async fn run(settings: &Settings, batch: u64) -> Result<(), String> {
    let (db, services) = open_services(settings).await?;
    let result = services
        .use_cases
        .operations
        .rotate_keys(batch, |r| {
            tracing::info!(
                scanned = r.scanned,
                reencrypted = r.reencrypted,
                "rotation progress"
            );
        })
        .await;
    db.close().await;
    let report = result.map_err(|e| error_chain(&e))?;
    tracing::info!(
        scanned = report.scanned,
        reencrypted = report.reencrypted,
        "key rotation complete"
    );
    Ok(())
}
