//! `gatehouse serve`: connect, migrate, bind, serve until SIGTERM/SIGINT,
//! then drain in-flight requests within `SHUTDOWN_GRACE_SECS`. Prometheus
//! metrics are served beside it on `METRICS_ADDR`, and the mail outbox is
//! sent beside it; both stop with it.

use gatehouse_api::{AppConfig, AppState, metrics};
use gatehouse_store::Database;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::{connect, error_chain};
use crate::settings::{RuntimeConfig, Settings};

pub async fn run(settings: Settings) -> Result<(), String> {
    if settings.http.tls.is_enabled() {
        return Err(
            "TLS_CERT_FILE/TLS_KEY_FILE: serving HTTPS directly is not supported by this build; \
             terminate TLS at a reverse proxy (see README)"
                .into(),
        );
    }
    let db = connect(&settings.runtime).await?;
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
    let app = gatehouse_api::app(state);

    let (listener, metrics_listener) = bind(&config).await?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let metrics_addr = metrics_listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        addr = %addr,
        metrics_addr = %metrics_addr,
        backend = db.backend(),
        environment = environment.as_str(),
        version = env!("CARGO_PKG_VERSION"),
        "gatehouse listening"
    );
    log_trace_export(&config);

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let mut metrics_stop = stop_tx.subscribe();
    let upkeep = spawn_metrics_upkeep(handle.clone(), db.clone());
    let metrics_server = tokio::spawn(async move {
        let stopped = async move {
            let _ = metrics_stop.wait_for(|stopped| *stopped).await;
        };
        if let Err(err) = metrics::serve(metrics_listener, handle, stopped).await {
            tracing::error!(error = %err, "metrics listener failed");
        }
    });
    let shutdown = async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested: draining in-flight requests");
        let _ = stop_tx.send(true);
    };
    let server = gatehouse_api::serve(listener, app, shutdown);
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
    upkeep.abort();
    metrics_server.abort();
    housekeeping.stop().await;
    db.close().await;
    tracing::info!("gatehouse stopped");
    Ok(())
}

fn log_trace_export(config: &RuntimeConfig) {
    if let Some(endpoint) = &config.otel_endpoint {
        let endpoint = gatehouse_core::config::redact_url(endpoint);
        tracing::info!(endpoint = %endpoint, service = %config.otel_service_name, "exporting traces over OTLP/HTTP");
    }
}

/// The public listener and the metrics listener.
async fn bind(config: &RuntimeConfig) -> Result<(TcpListener, TcpListener), String> {
    // Metrics stay off the public port: a scrape endpoint reveals traffic.
    if config.metrics_addr == config.bind_addr && config.bind_addr.port() != 0 {
        return Err("METRICS_ADDR: must differ from BIND_ADDR (metrics are private)".into());
    }
    let listener = TcpListener::bind(config.bind_addr)
        .await
        .map_err(|e| format!("BIND_ADDR: cannot listen on {}: {e}", config.bind_addr))?;
    let metrics_listener = TcpListener::bind(config.metrics_addr).await.map_err(|e| {
        format!(
            "METRICS_ADDR: cannot listen on {}: {e}",
            config.metrics_addr
        )
    })?;
    Ok((listener, metrics_listener))
}

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
