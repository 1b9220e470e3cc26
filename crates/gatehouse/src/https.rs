//! HTTPS served directly: the certificate and key read at start and again
//! on SIGHUP, and the plain-HTTP listener that only redirects to HTTPS.

use std::net::SocketAddr;

use gatehouse_api::config::{ConnectionConfig, TlsConfig};
use gatehouse_api::{Plain, Tls};
use gatehouse_core::network::HostPattern;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The TLS handshake for the configured files, or `None` when HTTPS is not
/// served directly. Bad files stop startup with the variable named.
pub fn load(config: &TlsConfig) -> Result<Option<Tls>, String> {
    let (Some(cert_file), Some(key_file)) = (&config.cert_file, &config.key_file) else {
        return Ok(None);
    };
    Tls::from_files(cert_file, key_file)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Re-reads the certificate and key on every SIGHUP. New connections get
/// the new certificate; established ones keep theirs. Files that cannot be
/// served are logged and the current certificate stays.
pub fn reload_on_hangup(tls: Tls) -> JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hangups = match signal(SignalKind::hangup()) {
                Ok(hangups) => hangups,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for SIGHUP: TLS certificate reload is off");
                    return;
                }
            };
            while hangups.recv().await.is_some() {
                // Reading files blocks: off the runtime's worker threads.
                let reloading = tls.clone();
                match tokio::task::spawn_blocking(move || reloading.reload()).await {
                    Ok(Ok(())) => tracing::info!("TLS certificate reloaded"),
                    Ok(Err(err)) => tracing::error!(
                        error = %err,
                        "TLS certificate reload failed; keeping the current one"
                    ),
                    Err(err) => tracing::error!(error = %err, "TLS certificate reload failed"),
                }
            }
        }
        #[cfg(not(unix))]
        drop(tls);
    })
}

/// Serves the redirect to HTTPS on `listener` until `stop` turns true,
/// with the same connection limits as the main listener.
pub fn serve_redirect(
    listener: TcpListener,
    allowed_hosts: Vec<HostPattern>,
    https_addr: SocketAddr,
    limits: ConnectionConfig,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let redirect = gatehouse_api::server::redirect(allowed_hosts, https_addr.port());
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        let served = gatehouse_api::serve_service(listener, Plain, redirect, limits, stopped);
        if let Err(err) = served.await {
            tracing::error!(error = %err, "HTTP redirect listener failed");
        }
    })
}
