//! `gatehouse serve`: connect, migrate, bind, serve until SIGTERM/SIGINT,
//! then drain in-flight requests within `SHUTDOWN_GRACE_SECS`. Prometheus
//! metrics are served beside it on `METRICS_ADDR`, the redirect to HTTPS on
//! `HTTP_REDIRECT_ADDR` when HTTPS is served directly, and the mail outbox is
//! sent beside it; all stop with it.

use std::net::SocketAddr;

use gatehouse_api::{AppConfig, AppState, metrics};
use gatehouse_store::Database;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::{connect, error_chain};
use crate::settings::{RuntimeConfig, Settings};

pub async fn run(settings: Settings) -> Result<(), String> {
    // Read first: a certificate that cannot be served stops startup at once.
    let tls = crate::https::load(&settings.http.tls)?;
    let db = connect(&settings.runtime, true).await?;
    if settings.runtime.database.run_migrations {
        db.migrate().await.map_err(|e| error_chain(&e))?;
        tracing::info!(backend = db.backend(), "migrations applied");
    }
    // Installed before the first request so every one is counted.
    let handle = metrics::install().map_err(|e| format!("metrics: {e}"))?;
    let services = crate::wiring::services(&settings, &db).await?;
    let mail = crate::mail::Sender::start(services.use_cases.mail_delivery.clone());
    let Settings {
        core,
        http,
        runtime: config,
    } = settings;
    let environment = core.environment;
    let retention_days = core.audit_retention_days;
    // `GET /admin/config` shows the binary's settings too.
    let state = AppState::new(AppConfig::new(core, http).showing(&config), services);
    let pruning = retention_days.map(|days| spawn_audit_pruning(state.clone(), days));
    let housekeeping = crate::upkeep::start(&state, pruning).await;
    let (allowed_hosts, limits) = (state.http().allowed_hosts.clone(), state.http().connections);
    let app = gatehouse_api::app(state);

    let listeners = bind(&config).await?;
    let addr = log_listening(
        &listeners,
        tls.is_some(),
        db.backend(),
        environment.as_str(),
    )?;
    log_trace_export(&config);

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let upkeep = spawn_metrics_upkeep(handle.clone(), db.clone());
    let checkpoints = spawn_checkpoints(db.clone());
    let metrics_server = spawn_metrics(listeners.metrics, handle, stop_tx.subscribe());
    let redirect = listeners.redirect.map(|listener| {
        crate::https::serve_redirect(listener, allowed_hosts, addr, limits, stop_tx.subscribe())
    });
    let reload = tls.clone().map(crate::https::reload_on_hangup);
    let shutdown = async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested: draining in-flight requests");
        let _ = stop_tx.send(true);
    };
    let server = async move {
        match tls {
            Some(tls) => gatehouse_api::serve_with(listeners.public, tls, app, shutdown).await,
            None => gatehouse_api::serve(listeners.public, app, shutdown).await,
        }
    };
    let grace = config.shutdown_grace;
    let deadline = async move {
        let _ = stop_rx.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result.map_err(|e| format!("server error: {e}"))?,
        () = deadline => tracing::warn!(grace_secs = grace.as_secs(), "grace period over: closing remaining connections"),
    }
    mail.stop().await;
    for task in [
        Some(upkeep),
        Some(metrics_server),
        redirect,
        reload,
        checkpoints,
    ]
    .into_iter()
    .flatten()
    {
        task.abort();
    }
    housekeeping.stop().await;
    db.close().await;
    tracing::info!("gatehouse stopped");
    Ok(())
}

fn spawn_metrics(
    listener: TcpListener,
    handle: metrics::PrometheusHandle,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        if let Err(err) = metrics::serve(listener, handle, stopped).await {
            tracing::error!(error = %err, "metrics listener failed");
        }
    })
}

/// The startup line, naming every bound address (a `:0` port is picked at
/// bind time); the public address.
fn log_listening(
    listeners: &Listeners,
    is_https: bool,
    backend: &str,
    environment: &str,
) -> Result<SocketAddr, String> {
    let addr = listeners.public.local_addr().map_err(|e| e.to_string())?;
    let metrics_addr = listeners.metrics.local_addr().map_err(|e| e.to_string())?;
    let redirect_addr = match &listeners.redirect {
        Some(l) => Some(l.local_addr().map_err(|e| e.to_string())?),
        None => None,
    };
    tracing::info!(
        addr = %addr,
        metrics_addr = %metrics_addr,
        redirect_addr = redirect_addr.as_ref().map(tracing::field::display),
        https = is_https,
        backend,
        environment,
        version = env!("CARGO_PKG_VERSION"),
        "gatehouse listening"
    );
    Ok(addr)
}

fn log_trace_export(config: &RuntimeConfig) {
    if let Some(endpoint) = &config.otel_endpoint {
        let endpoint = gatehouse_core::config::redact_url(endpoint);
        tracing::info!(endpoint = %endpoint, service = %config.otel_service_name, "exporting traces over OTLP/HTTP");
    }
}

/// The listeners `serve` binds.
struct Listeners {
    public: TcpListener,
    metrics: TcpListener,
    /// Plain HTTP, redirecting to HTTPS (`HTTP_REDIRECT_ADDR`).
    redirect: Option<TcpListener>,
}

async fn listen(var: &str, addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{var}: cannot listen on {addr}: {e}"))
}

/// The public listener, the metrics listener and the redirect listener.
async fn bind(config: &RuntimeConfig) -> Result<Listeners, String> {
    // Metrics stay off the public port: a scrape endpoint reveals traffic.
    if config.metrics_addr == config.bind_addr && config.bind_addr.port() != 0 {
        return Err("METRICS_ADDR: must differ from BIND_ADDR (metrics are private)".into());
    }
    let redirect = match config.redirect_addr {
        Some(addr) => Some(listen("HTTP_REDIRECT_ADDR", addr).await?),
        None => None,
    };
    Ok(Listeners {
        public: listen("BIND_ADDR", config.bind_addr).await?,
        metrics: listen("METRICS_ADDR", config.metrics_addr).await?,
        redirect,
    })
}

/// SQLite's write-ahead log copied into the database several times a
/// second, off the request path (see `PoolSettings::background_checkpoints`);
/// at shutdown the pool's close checkpoints what is left.
fn spawn_checkpoints(db: Database) -> Option<JoinHandle<()>> {
    if !matches!(db, Database::Sqlite(_)) {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut every = tokio::time::interval(CHECKPOINT_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned = false;
        loop {
            every.tick().await;
            match db.checkpoint().await {
                // A long reader holds pages back: said once, not per tick.
                Ok(Some((log, copied))) if log - copied > CHECKPOINT_BACKLOG => {
                    if !warned {
                        tracing::warn!(
                            log,
                            copied,
                            "SQLite log is not being copied back: a reader holds it"
                        );
                    }
                    warned = true;
                }
                Ok(_) => warned = false,
                Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed"),
            }
        }
    }))
}

/// How often the SQLite log is checkpointed.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// Pages left in the log (4 KiB each) past which a checkpoint is lagging.
const CHECKPOINT_BACKLOG: i64 = 100_000;

/// Every few seconds: drains histogram samples (the recorder does not do it
/// on its own) and samples the database pool.
fn spawn_metrics_upkeep(handle: metrics::PrometheusHandle, db: Database) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(metrics::UPKEEP_INTERVAL);
        loop {
            every.tick().await;
            handle.run_upkeep();
            let (size, idle, max) = match &db {
                Database::Sqlite(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
                Database::Postgres(p) => {
                    (p.size(), p.num_idle(), p.options().get_max_connections())
                }
            };
            let idle = u32::try_from(idle).unwrap_or(u32::MAX);
            metrics::set_db_pool(size.saturating_sub(idle), idle, max);
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Prunes audit entries past `AUDIT_RETENTION_DAYS` at start and hourly.
/// Pruning records the chain's new anchor, so verification still passes.
fn spawn_audit_pruning(state: AppState, days: u32) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every.tick().await;
            match state.operations().prune_audit(days).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, retention_days = days, "audit entries pruned"),
                Err(e) => tracing::warn!(error = %e, "audit pruning failed; will retry"),
            }
        }
    })
}
