//! One accepted connection, served by hyper (HTTP/1.1, or HTTP/2 with prior
//! knowledge) under its watchdog: its IO reports bytes read, its service
//! reports requests and responses, and the connection is closed when the
//! [`Activity`] deadline passes or drained when the server stops.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use futures_util::TryFutureExt;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tower::ServiceExt;

use super::activity::{Activity, Expiry, InFlight};
use super::{Handshake, OverTls, Service, Shared};

/// Serves one connection until it closes, its deadline passes, or the
/// server stops (then in-flight requests finish first). The permit is held
/// to the end: it is what the connection cap counts.
pub(super) async fn run<I, H, S>(
    io: I,
    peer: SocketAddr,
    shared: Arc<Shared<H, S>>,
    _permit: OwnedSemaphorePermit,
) where
    H: Handshake<I>,
    S: Service,
{
    let limits = shared.limits;
    let activity = Arc::new(Activity::new(limits, Instant::now()));
    // A handshake that stalls is a slow client like any other.
    let io = match tokio::time::timeout(limits.header_read_timeout, shared.handshake.handshake(io))
        .await
    {
        Ok(Ok(io)) => io,
        Ok(Err(err)) => {
            tracing::debug!(%peer, error = %err, "handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "handshake timed out");
            return;
        }
    };
    let io = TokioIo::new(Tracked::new(io, activity.clone()));
    let service = ConnectionService {
        app: shared.app.clone(),
        peer,
        is_tls: H::IS_TLS,
        activity: activity.clone(),
    };
    let conn = shared.builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = shared.stopping.clone();
    let mut is_closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            expiry = activity.expired() => {
                // An idle connection is closed politely (HTTP/2 says GOAWAY);
                // a slow one, or one that fails to close in time, is dropped.
                if expiry == Expiry::Idle && !is_closing {
                    is_closing = true;
                    conn.as_mut().graceful_shutdown();
                    activity.closing(Instant::now());
                } else {
                    tracing::debug!(%peer, ?expiry, "connection closed at its deadline");
                    return;
                }
            }
            _ = stopping.wait_for(|stop| *stop), if !is_closing => {
                // Nothing was asked on a connection still sending its headers:
                // closed at once. Requests in flight finish first.
                if activity.is_awaiting_headers() {
                    return;
                }
                is_closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The application as one connection serves it: each request carries the
/// peer address (as `ConnectInfo`), and [`OverTls`] on a TLS connection,
/// and is tracked until its response body is done.
#[derive(Debug, Clone)]
struct ConnectionService<S> {
    app: S,
    peer: SocketAddr,
    is_tls: bool,
    activity: Arc<Activity>,
}

impl<S: Service> hyper::service::Service<Request<Incoming>> for ConnectionService<S> {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let request = self.activity.request_started();
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        if self.is_tls {
            req.extensions_mut().insert(OverTls);
        }
        // A combinator, not an `async` block: the compiler cannot prove the
        // block `Send` across the panic handler's higher-ranked fn type.
        Box::pin(self.app.clone().oneshot(req).map_ok(move |res| {
            let request = request.responding(Instant::now());
            res.map(|body| TrackedBody {
                body,
                _request: request,
            })
        }))
    }
}

/// A response body that ends its request when it is dropped: once sent, or
/// when the connection gives up on it.
#[derive(Debug)]
struct TrackedBody {
    body: Body,
    _request: InFlight,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Which protocol the connection speaks, as far as its first bytes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// This many bytes of the HTTP/2 preface seen so far.
    Undecided(usize),
    Http1,
    Http2,
}

/// The connection's stream, reporting the bytes read to its [`Activity`].
/// On HTTP/1 bytes on an idle connection can only start a request, so they
/// make its headers due; on HTTP/2 they may be pings or window updates, so
/// only a new stream counts (a request reaching the service).
#[derive(Debug)]
struct Tracked<I> {
    io: I,
    activity: Arc<Activity>,
    protocol: Protocol,
}

impl<I> Tracked<I> {
    fn new(io: I, activity: Arc<Activity>) -> Self {
        Self {
            io,
            activity,
            protocol: Protocol::Undecided(0),
        }
    }

    fn saw(&mut self, bytes: &[u8]) {
        if let Protocol::Undecided(matched) = self.protocol {
            let wanted = &H2_PREFACE[matched..];
            let n = wanted.len().min(bytes.len());
            self.protocol = if bytes[..n] != wanted[..n] {
                Protocol::Http1
            } else if matched + n == H2_PREFACE.len() {
                Protocol::Http2
            } else {
                Protocol::Undecided(matched + n)
            };
        }
        if self.protocol == Protocol::Http1 {
            self.activity.request_bytes();
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            this.saw(read);
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::ConnectionConfig;

    fn tracked() -> Tracked<()> {
        let limits = ConnectionConfig {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1,
            stream_max: Duration::from_secs(600),
        };
        Tracked::new((), Arc::new(Activity::new(limits, Instant::now())))
    }

    #[tokio::test]
    async fn the_protocol_is_told_by_the_first_bytes() {
        let mut t = tracked();
        t.saw(b"GET / HTTP/1.1\r\n");
        assert_eq!(t.protocol, Protocol::Http1);

        // POST and PUT share their first letter with the preface.
        let mut t = tracked();
        t.saw(b"P");
        assert_eq!(t.protocol, Protocol::Undecided(1));
        t.saw(b"UT /x HTTP/1.1");
        assert_eq!(t.protocol, Protocol::Http1);

        let mut t = tracked();
        t.saw(&H2_PREFACE[..10]);
        assert_eq!(t.protocol, Protocol::Undecided(10));
        t.saw(&[&H2_PREFACE[10..], b"\0\0\x12\x04"].concat());
        assert_eq!(t.protocol, Protocol::Http2);
    }
}
