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
    /// Exit 0 when `GET /health` answers 200 in time, else 1 (for container
    /// and supervisor health checks; no curl needed).
    Healthcheck {
        /// `http://host:port[/path]`; default: `/health` on BIND_ADDR.
        #[arg(long)]
        url: Option<String>,
        /// `Host` header to send (default: the URL's, or without --url a
        /// name from ALLOWED_HOSTS, which the service checks).
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
        /// Time limit of the whole exchange.
        #[arg(long, default_value_t = 3, value_name = "SECS")]
        timeout_secs: u64,
    },
    /// Time Argon2id on this machine and suggest parameters for a target
    /// hash time that meet the OWASP minimums.
    CalibrateArgon2 {
        /// Target time of one hash.
        #[arg(long, default_value_t = 250, value_name = "MS")]
        target_ms: u64,
        /// Largest memory per hash to suggest; more passes are added past it.
        #[arg(long, default_value_t = 65_536, value_name = "KIB")]
        max_memory_kib: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a consistent copy of the SQLite database to a new file (0600)
    /// while `serve` runs; for PostgreSQL, use `pg_dump`.
    Backup {
        /// The copy to create; an existing file is never overwritten.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Print the README's configuration table as the settings declare it.
    #[command(hide = true)]
    ConfigDocs {
        /// Print `.env.example` instead.
        #[arg(long)]
        env: bool,
    },
}

/// Exit code for a configuration that cannot be used.
const EXIT_CONFIG: u8 = 2;

pub fn run(cli: Cli) -> Result<(), ExitCode> {
    if let Some(result) = run_tool(&cli) {
        return result;
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
            Command::CheckConfig | Command::ConfigDocs { .. } => Ok(()),
            Command::CreateAdmin {
                username,
                email,
                full_name,
            } => crate::bootstrap::create_admin(&settings, username, email, full_name).await,
            Command::RotateKeys { batch_size } => crate::rotate::run(&settings, batch_size).await,
            Command::MailTest { to } => crate::mail::test(&settings, &to).await,
            // Run by `run_tool`, before logging starts.
            Command::Healthcheck { .. }
            | Command::CalibrateArgon2 { .. }
            | Command::Backup { .. } => Ok(()),
        }
    });
    result.map_err(|err| {
        tracing::error!(error = %err, "gatehouse stopped with an error");
        ExitCode::FAILURE
    })
}

/// The commands that print instead of logging and need no data keys (so
/// they create no development key file); `None` for the others.
fn run_tool(cli: &Cli) -> Option<Result<(), ExitCode>> {
    let settings = || parse(&env::collect(cli.env_file.as_deref()));
    let result = match &cli.command {
        Command::ConfigDocs { env } => {
            let text = if *env {
                settings::env_example()
            } else {
                settings::docs_table()
            };
            let _ = write!(std::io::stdout().lock(), "{text}");
            Ok(())
        }
        // Docker reads exit code 2 as reserved: every failure here is 1.
        Command::Healthcheck {
            url,
            host,
            timeout_secs,
        } => healthcheck(url.as_deref(), host.as_deref(), *timeout_secs, settings).map_err(|err| {
            eprintln!("healthcheck: {err}");
            ExitCode::FAILURE
        }),
        Command::CalibrateArgon2 {
            target_ms,
            max_memory_kib,
            json,
        } => settings().and_then(|s| {
            let target = std::time::Duration::from_millis(*target_ms);
            calibrate(target, *max_memory_kib, *json, &s)
        }),
        Command::Backup { to } => settings().and_then(|s| crate::backup::run(&s.runtime, to)),
        _ => return None,
    };
    Some(result)
}

fn healthcheck(
    url: Option<&str>,
    host: Option<&str>,
    timeout_secs: u64,
    settings: impl FnOnce() -> Result<Settings, ExitCode>,
) -> Result<(), String> {
    use crate::healthcheck::{Target, probe};
    let mut target = match url {
        Some(url) => Target::from_url(url)?,
        None => {
            let settings = settings().map_err(|_| "the configuration is invalid".to_owned())?;
            Target::local(
                settings.runtime.bind_addr,
                &settings.http.allowed_hosts,
                settings.http.tls.is_enabled(),
            )?
        }
    };
    if let Some(host) = host {
        target.set_host_header(host);
    }
    probe(&target, std::time::Duration::from_secs(timeout_secs))
        .map_err(|err| format!("{}: {err}", target.url()))
}

fn calibrate(
    target: std::time::Duration,
    max_memory_kib: u32,
    json: bool,
    settings: &Settings,
) -> Result<(), ExitCode> {
    let calibration = crate::calibrate::calibrate(target, max_memory_kib, &settings.core.argon2)
        .map_err(|err| {
            eprintln!("calibrate-argon2: {err}");
            ExitCode::FAILURE
        })?;
    let mut out = std::io::stdout().lock();
    let written = if json {
        writeln!(out, "{:#}", calibration.to_json())
    } else {
        calibration.write_text(&mut out)
    };
    written.map_err(|_| ExitCode::FAILURE)
}

/// The validated settings, or exit code 2 after one line per problem.
fn parse(vars: &env::Vars) -> Result<Settings, ExitCode> {
    Settings::from_vars(vars.values.clone()).map_err(|err| {
        // One line per problem, each naming its variable; never a value of a
        // secret (the loader does not put them in messages).
        eprintln!("{err}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// The validated settings, with development keys filled in when needed (and
/// the key file's path when it was used).
fn load(vars: &env::Vars) -> Result<(Settings, Option<PathBuf>), ExitCode> {
    let mut settings = parse(vars)?;
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

/// The database of `config`; `background_checkpoints` for a process that
/// runs the checkpoint task (`serve`), see [`PoolSettings`].
pub async fn connect(
    config: &RuntimeConfig,
    background_checkpoints: bool,
) -> Result<Database, String> {
    let db = &config.database;
    let settings = PoolSettings {
        max_connections: db.max_connections,
        min_connections: db.min_connections,
        acquire_timeout: db.acquire_timeout,
        idle_timeout: db.idle_timeout,
        background_checkpoints,
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
    let db = connect(&settings.runtime, false).await?;
    if settings.runtime.database.run_migrations {
        db.migrate().await.map_err(|e| error_chain(&e))?;
    }
    let services = crate::wiring::services(settings, &db).await?;
    Ok((db, services))
}

async fn migrate(config: &RuntimeConfig) -> Result<(), String> {
    let db = connect(config, false).await?;
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
