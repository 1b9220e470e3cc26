//! `gatehouse serve`: connect, migrate, bind, serve until SIGTERM/SIGINT,
//! then drain in-flight requests within `SHUTDOWN_GRACE_SECS`.

use std::sync::Arc;

use gatehouse_api::AppState;
use gatehouse_core::config::Config;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cli::{connect, error_chain};

pub async fn run(config: Arc<Config>) -> Result<(), String> {
    if config.tls.is_some() {
        return Err(
            "TLS_CERT_FILE/TLS_KEY_FILE: serving HTTPS directly is not supported by this build; \
             terminate TLS at a reverse proxy (see README)"
                .into(),
        );
    }
    let db = connect(&config).await?;
    if config.database.run_migrations {
        db.migrate().await.map_err(|e| error_chain(&e))?;
        tracing::info!(backend = db.backend(), "migrations applied");
    }
    let state = AppState::new(config.clone(), crate::wiring::services(&config, &db)?);
    let app = gatehouse_api::app(state);

    let listener = TcpListener::bind(config.bind_addr)
        .await
        .map_err(|e| format!("BIND_ADDR: cannot listen on {}: {e}", config.bind_addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        addr = %addr,
        backend = db.backend(),
        environment = config.environment.as_str(),
        version = env!("CARGO_PKG_VERSION"),
        "gatehouse listening"
    );

    let (stop_tx, mut stop_rx) = watch::channel(false);
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
    db.close().await;
    tracing::info!("gatehouse stopped");
    Ok(())
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
