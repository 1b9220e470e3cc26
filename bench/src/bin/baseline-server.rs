//! A bare axum server: the upper limit that Gatehouse's cheap endpoints are
//! measured against by `bench/run.sh`.
//!
//! It answers `GET /api/v1/users/me` with a small constant user object and
//! `GET /health` with `{"status":"ok"}`, with no middleware, no database and
//! no authentication, on the same tokio multi-thread runtime type as the
//! service. Pin it (`taskset -c`) to the same cores as the service and give
//! it the same number of workers, so the two numbers share one budget.

/// The service's allocator, so the comparison is like for like.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use serde_json::{Value, json};
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
#[command(
    name = "baseline-server",
    about = "Bare axum server: the baseline for Gatehouse benchmarks"
)]
struct Args {
    /// Address to listen on (loopback only is sensible).
    #[arg(long, default_value = "127.0.0.1:18000")]
    addr: SocketAddr,
    /// Tokio worker threads; default: the cores this process may run on.
    #[arg(long)]
    workers: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(workers) = args.workers {
        if workers == 0 {
            eprintln!("baseline-server: --workers must be at least 1");
            return ExitCode::from(2);
        }
        builder.worker_threads(workers);
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("baseline-server: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args.addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("baseline-server: {err}");
            ExitCode::FAILURE
        }
    }
}

fn app() -> Router {
    Router::new()
        .route("/api/v1/users/me", get(me))
        .route("/health", get(health))
}

async fn serve(addr: SocketAddr) -> Result<(), String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("baseline-server listening on {local}");
    axum::serve(listener, app())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))
}

/// The shape of Gatehouse's user object, with constant values.
async fn me() -> Json<Value> {
    Json(json!({
        "id": "01890f3e-8a4b-7c2d-9e1f-0a1b2c3d4e5f",
        "username": "benchuser",
        "email": "bench@example.com",
        "email_verified": false,
        "full_name": null,
        "role": "user",
        "is_active": true,
        "mfa_enabled": false,
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:00Z"
    }))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
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
