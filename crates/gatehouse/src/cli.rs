//! Command-line interface: one subcommand per operation.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use gatehouse_core::config::Config;
use gatehouse_store::{Database, PoolSettings};
use secrecy::ExposeSecret;

use crate::{devkeys, env, serve, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Secure user and authentication API service"
)]
pub struct Cli {
    /// Read settings from this file instead of `./.env` (development only).
    #[arg(long, global = true, value_name = "PATH")]
    env_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service (applies migrations first unless RUN_MIGRATIONS=false).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig,
    /// Create an admin account. The password is read from standard input
    /// (first line) or prompted for; never from the command line.
    CreateAdmin {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        full_name: Option<String>,
    },
    /// Re-encrypt stored personal data under the first DATA_ENCRYPTION_KEYS
    /// key (resumable: run again after an interruption).
    RotateKeys {
        /// Users per transaction.
        #[arg(long, default_value_t = 500)]
        batch_size: u64,
    },
}

/// Exit code for a configuration that cannot be used.
const EXIT_CONFIG: u8 = 2;

pub fn run(cli: Cli) -> Result<(), ExitCode> {
    let vars = env::collect(cli.env_file.as_deref());
    let mut config = match Config::from_vars(vars.values.clone()) {
        Ok(config) => config,
        Err(err) => {
            // One line per problem, each naming its variable; never a value
            // of a secret (the loader does not put them in messages).
            eprintln!("{err}");
            return Err(ExitCode::from(EXIT_CONFIG));
        }
    };
    let dev_keys = match devkeys::ensure(&mut config) {
        Ok(outcome) => outcome,
        Err(err) => {
            eprintln!("invalid configuration: DATA_ENCRYPTION_KEYS: {err}");
            return Err(ExitCode::from(EXIT_CONFIG));
        }
    };

    if let Command::CheckConfig = cli.command {
        let mut out = std::io::stdout().lock();
        let text = serde_json::to_string_pretty(&config.redacted_view()).unwrap_or_default();
        let _ = writeln!(out, "{text}");
        for name in &vars.unknown {
            eprintln!("warning: unknown variable {name} (ignored)");
        }
        return Ok(());
    }

    let _guard = match telemetry::init(&config) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("invalid configuration: {err}");
            return Err(ExitCode::from(EXIT_CONFIG));
        }
    };
    for name in &vars.unknown {
        tracing::warn!(variable = %name, "unknown configuration variable ignored");
    }
    if let Some(path) = &vars.env_file_used {
        tracing::info!(path = %path.display(), "read settings from env file");
    }
    if config.jwt.secret_generated {
        tracing::warn!(
            "JWT_SECRET_KEY is not set: using a random key for this process; \
             tokens will not survive a restart"
        );
    }
    if let Some(path) = dev_keys {
        tracing::warn!(
            path = %path.display(),
            "DATA_ENCRYPTION_KEYS/BLIND_INDEX_KEY not set: using development keys from this file"
        );
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the async runtime");
            return Err(ExitCode::FAILURE);
        }
    };
    let config = Arc::new(config);
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve::run(config).await,
            Command::Migrate => migrate(&config).await,
            Command::CheckConfig => Ok(()),
            Command::CreateAdmin {
                username,
                email,
                full_name,
            } => crate::bootstrap::create_admin(&config, username, email, full_name).await,
            Command::RotateKeys { batch_size } => crate::rotate::run(&config, batch_size).await,
        }
    });
    result.map_err(|err| {
        tracing::error!(error = %err, "gatehouse stopped with an error");
        ExitCode::FAILURE
    })
}

pub async fn connect(config: &Config) -> Result<Database, String> {
    let db = &config.database;
    let settings = PoolSettings {
        max_connections: db.max_connections,
        min_connections: db.min_connections,
        acquire_timeout: db.acquire_timeout,
        idle_timeout: db.idle_timeout,
    };
    Database::connect(db.url.expose_secret(), settings)
        .await
        .map_err(|e| error_chain(&e))
}

async fn migrate(config: &Config) -> Result<(), String> {
    let db = connect(config).await?;
    db.migrate().await.map_err(|e| error_chain(&e))?;
    tracing::info!(backend = db.backend(), "migrations applied");
    db.close().await;
    Ok(())
}

/// An error and its sources on one line, for logs.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
