//! Command-line interface: one subcommand per operation.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gatehouse_core::config::Group;
use gatehouse_store::{Database, PoolSettings};
use secrecy::ExposeSecret;

use crate::settings::{RuntimeConfig, Settings};
use crate::{devkeys, env, serve, settings, telemetry};

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
    /// Send a test message through the configured mailer now (SMTP, or the
    /// log in development); exits non-zero when it is not sent.
    MailTest {
        /// The address to send it to.
        #[arg(long, value_name = "ADDRESS")]
        to: String,
    },
    /// Print the README's configuration table as the settings declare it.
    #[command(hide = true)]
    ConfigDocs,
}

/// Exit code for a configuration that cannot be used.
const EXIT_CONFIG: u8 = 2;

pub fn run(cli: Cli) -> Result<(), ExitCode> {
    if let Command::ConfigDocs = cli.command {
        let _ = write!(std::io::stdout().lock(), "{}", settings::docs_table());
        return Ok(());
    }
    let vars = env::collect(cli.env_file.as_deref());
    let (settings, dev_keys) = load(&vars)?;

    if let Command::CheckConfig = cli.command {
        let mut out = std::io::stdout().lock();
        let text = serde_json::to_string_pretty(&settings.redacted_view()).unwrap_or_default();
        let _ = writeln!(out, "{text}");
        for name in &vars.unknown {
            eprintln!("warning: unknown variable {name} (ignored)");
        }
        return Ok(());
    }

    let _guard = match telemetry::init(&settings.runtime) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("invalid configuration: {err}");
            return Err(ExitCode::from(EXIT_CONFIG));
        }
    };
    log_startup_notes(&settings, &vars, dev_keys.as_deref());

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
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve::run(settings).await,
            Command::Migrate => migrate(&settings.runtime).await,
            Command::CheckConfig | Command::ConfigDocs => Ok(()),
            Command::CreateAdmin {
                username,
                email,
                full_name,
            } => crate::bootstrap::create_admin(&settings, username, email, full_name).await,
            Command::RotateKeys { batch_size } => crate::rotate::run(&settings, batch_size).await,
            Command::MailTest { to } => crate::mail::test(&settings, &to).await,
        }
    });
    result.map_err(|err| {
        tracing::error!(error = %err, "gatehouse stopped with an error");
        ExitCode::FAILURE
    })
}

/// The validated settings, with development keys filled in when needed (and
/// the key file's path when it was used).
fn load(vars: &env::Vars) -> Result<(Settings, Option<PathBuf>), ExitCode> {
    let mut settings = match Settings::from_vars(vars.values.clone()) {
        Ok(settings) => settings,
        Err(err) => {
            // One line per problem, each naming its variable; never a value
            // of a secret (the loader does not put them in messages).
            eprintln!("{err}");
            return Err(ExitCode::from(EXIT_CONFIG));
        }
    };
    match devkeys::ensure(&mut settings.core) {
        Ok(dev_keys) => Ok((settings, dev_keys)),
        Err(err) => {
            eprintln!("invalid configuration: DATA_ENCRYPTION_KEYS: {err}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

/// What operators should know about how the settings were found.
fn log_startup_notes(settings: &Settings, vars: &env::Vars, dev_keys: Option<&Path>) {
    for name in &vars.unknown {
        tracing::warn!(variable = %name, "unknown configuration variable ignored");
    }
    if let Some(path) = &vars.env_file_used {
        tracing::info!(path = %path.display(), "read settings from env file");
    }
    if settings.core.jwt.secret_generated {
        tracing::warn!(
            "JWT_SECRET_KEY is not set: using a random key for this process; \
             tokens will not survive a restart"
        );
    }
    if let Some(path) = dev_keys {
        tracing::warn!(
            path = %path.display(),
            "DATA_ENCRYPTION_KEYS/BLIND_INDEX_KEY/AUDIT_CHAIN_KEY not set: using development keys from this file"
        );
    }
}

pub async fn connect(config: &RuntimeConfig) -> Result<Database, String> {
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

/// For the one-shot commands that drive use cases: the database (migrated
/// unless `RUN_MIGRATIONS=false`) and the services wired on it. Close the
/// database when done.
pub async fn open_services(
    settings: &crate::settings::Settings,
) -> Result<(Database, gatehouse_api::Services), String> {
    let db = connect(&settings.runtime).await?;
    if settings.runtime.database.run_migrations {
        db.migrate().await.map_err(|e| error_chain(&e))?;
    }
    let services = crate::wiring::services(settings, &db).await?;
    Ok((db, services))
}

async fn migrate(config: &RuntimeConfig) -> Result<(), String> {
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
