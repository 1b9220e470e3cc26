//! `gatehouse backup --to FILE`: a consistent copy of the SQLite database,
//! taken while `serve` runs. A PostgreSQL database is copied with its own
//! tools (`pg_dump`), which this command points to.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use secrecy::ExposeSecret;

use crate::cli::error_chain;
use crate::settings::RuntimeConfig;

/// Exit code when the configured database is not one this command copies.
const EXIT_NOT_SQLITE: u8 = 2;

pub fn run(config: &RuntimeConfig, to: &Path) -> Result<(), ExitCode> {
    let url = config.database.url.expose_secret();
    if !url.starts_with("sqlite:") {
        eprintln!(
            "backup: DATABASE_URL is a PostgreSQL database: back it up with \
             `pg_dump -Fc` and restore it with `pg_restore` (see DEPLOYMENT.md)"
        );
        return Err(ExitCode::from(EXIT_NOT_SQLITE));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| {
            eprintln!("backup: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        })?;
    match runtime.block_on(gatehouse_store::backup_sqlite(url, to)) {
        Ok(report) => {
            let _ = writeln!(
                std::io::stdout().lock(),
                "backup: wrote {} ({} bytes, integrity checked); it holds the database \
                 only: copy UPLOAD_DIR and the keys (or DATA_DIR/dev-keys.json) separately",
                to.display(),
                report.bytes
            );
            Ok(())
        }
        Err(err) => {
            eprintln!("backup: {}", error_chain(&err));
            Err(ExitCode::FAILURE)
        }
    }
}
