//! Serving the application on a listener: the accept loop, the connection
//! cap (`MAX_CONNECTIONS`), a watchdog per connection (header, idle and
//! response deadlines: see [`activity`]) and draining on shutdown.
//!
//! The loop is generic over the listener, over a [`Handshake`] run on each
//! accepted connection (plain, or [`Tls`]) and over the service, so the
//! HTTPS redirect listener ([`redirect`]) gets the same limits.

mod activity;
mod connection;
mod redirect;
mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use axum::serve::Listener;
use http::Request;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, watch};

use crate::app::App;
use crate::config::ConnectionConfig;

pub use redirect::redirect;
pub use tls::{PROTOCOL_VERSIONS, Tls, TlsError, server_config};

/// Turns an accepted connection into the stream HTTP is spoken over. It
/// runs in the connection's own task, within the header-read timeout, so a
/// client that stalls it holds neither the accept loop nor its connection
/// slot for long.
pub trait Handshake<I>: Send + Sync + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Whether requests on the connection arrived over TLS (HTTPS).
    const IS_TLS: bool = false;

    fn handshake(&self, io: I) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

/// Plain HTTP: the connection as accepted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl<I> Handshake<I> for Plain
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Io = I;

    async fn handshake(&self, io: I) -> io::Result<I> {
        Ok(io)
    }
}

/// The service a server hands each request to: the application, or the
/// redirect.
pub trait Service:
    tower::Service<
        Request<Body>,
        Response = Response,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> Service for S where
    S: tower::Service<
            Request<Body>,
            Response = Response,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// Marks a request that arrived on a TLS connection: it was sent over
/// HTTPS whatever its headers say.
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// What every connection of one server shares.
struct Shared<H, S> {
    builder: auto::Builder<TokioExecutor>,
    app: S,
    limits: ConnectionConfig,
    handshake: H,
    /// Turns true when the server stops: connections drain and close.
    stopping: watch::Receiver<bool>,
}

/// HTTP/1.1, and HTTP/2 when the client opens with its preface (prior
/// knowledge).
fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The header deadline is the watchdog's: hyper's own restarts on every
    // idle keep-alive connection (so `HTTP_IDLE_TIMEOUT_SECS` could never be
    // longer) and does not run while the protocol is still being detected.
    builder.http1().header_read_timeout(None);
    builder
}

/// Serves `app` on an already-bound listener until `shutdown` completes, then
/// stops accepting, lets in-flight requests finish and returns when every
/// connection is closed. Limits come from the application's settings.
pub async fn serve<L>(
    listener: L,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    serve_with(listener, Plain, app, shutdown).await
}

/// [`serve`], with `handshake` run on every accepted connection first.
pub async fn serve_with<L, H>(
    listener: L,
    handshake: H,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
    H: Handshake<L::Io>,
{
    let limits = app.state().http().connections;
    serve_service(listener, handshake, app, limits, shutdown).await
}

/// [`serve_with`] for any service, with its connection limits given.
pub async fn serve_service<L, H, S>(
    mut listener: L,
    handshake: H,
    app: S,
    limits: ConnectionConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
    H: Handshake<L::Io>,
    S: Service,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let (stop, stopping) = watch::channel(false);
    let shared = Arc::new(Shared {
        builder: builder(),
        app,
        limits,
        handshake,
        stopping,
    });
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot is taken before accepting: past the cap, connections wait
        // in the listen backlog, unaccepted, until one closes.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        tokio::spawn(connection::run(io, peer, shared.clone(), slot));
    }
    // No new connections from here on; the port is released.
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a slot until it closes: all slots back means
    // all connections are done.
    let _ = slots.acquire_many(limits.max_connections).await;
    Ok(())
}
