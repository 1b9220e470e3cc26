//! Connection-level attacks against a real server: headers sent slowly or
//! never, idle keep-alive connections, more connections than the cap, and
//! a reader that stalls a streamed export. Every wait is bounded; no test
//! asserts how fast the server is, only that it closes, answers or refuses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly"
)]

mod support;

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::Method;
use serde_json::json;
use support::deployment::{Backend, Deployment, PASSWORD, SECRET, backends};
use support::{gatehouse, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

/// A generous bound on what must happen (a close, a late answer).
const BOUND: Duration = Duration::from_secs(30);

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Reads until the server closes the connection (a reset counts); what it
/// sent before. Fails when the connection is still open after [`BOUND`].
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    timeout(BOUND, read_all)
        .await
        .expect("the server closed the connection");
    seen
}

/// Reads one response with a `Content-Length` body; its head.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if data.len() >= end + 4 + length {
                return head;
            }
        }
        let n = timeout(BOUND, stream.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed before a complete response");
        data.extend_from_slice(&buf[..n]);
    }
}

async fn health_on_a_new_connection(d: &Deployment) {
    let mut conn = TcpStream::connect(d.addr(0)).await.unwrap();
    conn.write_all(HEALTH).await.unwrap();
    assert!(read_response(&mut conn).await.starts_with("http/1.1 200"));
}

/// Item 9: slowloris and idle-open connections. A client that never
/// completes its headers is closed at the header timeout, however it
/// stalls: silent, half a request, half the HTTP/2 preface, or one header
/// line at a time.
#[tokio::test]
async fn clients_that_never_complete_their_headers_are_closed() {
    let d = Deployment::start(Backend::Sqlite, &[("HTTP_HEADER_READ_TIMEOUT_SECS", "1")]).await;
    let mut stalled = Vec::new();
    for opening in [
        &b""[..],
        b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ",
        b"PRI * HTTP/2.0\r\n",
    ] {
        let mut conn = TcpStream::connect(d.addr(0)).await.unwrap();
        conn.write_all(opening).await.unwrap();
        stalled.push(conn);
    }
    let drip = TcpStream::connect(d.addr(0)).await.unwrap();
    let (mut drip_read, mut drip_write) = drip.into_split();
    let dripping = tokio::spawn(async move {
        drip_write.write_all(b"GET /health HTTP/1.1\r\n").await?;
        for n in 0.. {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drip_write
                .write_all(format!("X-{n}: x\r\n").as_bytes())
                .await?;
        }
        Ok::<_, std::io::Error>(())
    });
    for conn in &mut stalled {
        let seen = until_closed(conn).await;
        assert!(
            !seen.starts_with(b"HTTP/1.1 200"),
            "answered a partial request"
        );
    }
    let mut buf = [0u8; 1024];
    let closed = timeout(BOUND, drip_read.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "the dripping client was not closed"
    );
    dripping.abort();
    // Complete requests are still served.
    health_on_a_new_connection(&d).await;
    d.stop().await;
}

/// Idle keep-alive connections are closed at the idle timeout, which is its
/// own: a connection idle past the header timeout is still served.
#[tokio::test]
async fn idle_keep_alive_connections_are_closed_at_the_idle_timeout() {
    let d = Deployment::start(
        Backend::Sqlite,
        &[
            ("HTTP_HEADER_READ_TIMEOUT_SECS", "1"),
            ("HTTP_IDLE_TIMEOUT_SECS", "5"),
        ],
    )
    .await;
    let mut conn = TcpStream::connect(d.addr(0)).await.unwrap();
    conn.write_all(HEALTH).await.unwrap();
    assert!(read_response(&mut conn).await.starts_with("http/1.1 200"));
    // Idle for longer than the header timeout, within the idle timeout.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    conn.write_all(HEALTH).await.unwrap();
    assert!(read_response(&mut conn).await.starts_with("http/1.1 200"));
    // Then idle for good: closed by the server, nothing more sent.
    assert!(until_closed(&mut conn).await.is_empty());
    d.stop().await;
}

/// HTTP/2 (prior knowledge) is served, and an idle HTTP/2 connection is
/// closed at the idle timeout too.
#[tokio::test]
async fn http2_is_served_and_its_idle_connections_closed() {
    let d = Deployment::start(Backend::Sqlite, &[("HTTP_IDLE_TIMEOUT_SECS", "1")]).await;
    let io = TokioIo::new(TcpStream::connect(d.addr(0)).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    let driver = tokio::spawn(conn);
    let req = hyper::Request::get(format!("http://{}/health", d.addr(0)))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), hyper::Version::HTTP_2);
    res.into_body().collect().await.unwrap();
    let ended = timeout(BOUND, driver).await;
    assert!(ended.is_ok(), "the idle HTTP/2 connection was not closed");
    d.stop().await;
}

/// Past `MAX_CONNECTIONS`, a connection waits unaccepted: it is served only
/// once another one closes.
#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    let d = Deployment::start(Backend::Sqlite, &[("MAX_CONNECTIONS", "2")]).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut conn = TcpStream::connect(d.addr(0)).await.unwrap();
        conn.write_all(HEALTH).await.unwrap();
        assert!(read_response(&mut conn).await.starts_with("http/1.1 200"));
        held.push(conn);
    }
    // The kernel completes the handshake; the server does not accept it.
    let mut third = TcpStream::connect(d.addr(0)).await.unwrap();
    third.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 64];
    let early = timeout(Duration::from_secs(2), third.read(&mut buf)).await;
    assert!(early.is_err(), "a third connection was served: {early:?}");
    drop(held.pop());
    assert!(read_response(&mut third).await.starts_with("http/1.1 200"));
    d.stop().await;
}

/// Registers `seed` (with a full name, so rows are wide) and copies it into
/// `count` more users, straight in the database.
async fn seed_users(d: &Deployment, backend: Backend, count: u32) {
    let res = d
        .http
        .post(d.url(0, "/api/v1/auth/register"))
        .json(&json!({"username": "seed", "email": "seed@example.com",
            "password": PASSWORD, "full_name": "N".repeat(100)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let columns = "id, username, username_key, email_index, email_enc, full_name_enc, \
                   password_hash, role, is_active, email_verified, mfa_enabled, auth_version, \
                   created_at, updated_at";
    let copied = "'bulk' || i, 'bulk' || i, 'bulk-index-' || i, u.email_enc, u.full_name_enc, \
                  u.password_hash, 'user', TRUE, FALSE, FALSE, 0, u.created_at, u.updated_at";
    let sql = match backend {
        Backend::Sqlite => format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) \
             INSERT INTO users ({columns}) SELECT randomblob(16), {copied} \
             FROM n, users u WHERE u.username = 'seed'"
        ),
        Backend::Shared => format!(
            "INSERT INTO {{schema}}.users ({columns}) SELECT gen_random_uuid(), {copied} \
             FROM generate_series(1, {count}) AS i, {{schema}}.users u WHERE u.username = 'seed'"
        ),
    };
    d.sql(&sql).await;
}

/// Asks for the whole export on a connection with a small receive buffer,
/// reads the response head, then stops reading.
async fn stalled_export(d: &Deployment, token: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut conn = socket.connect(d.addr(0).parse().unwrap()).await.unwrap();
    let request = format!(
        "GET /api/v1/users/export HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    timeout(BOUND, conn.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    conn
}

/// A reader that stalls an export holds no database connection: with a pool
/// of one, requests that need the database still get it.
#[tokio::test]
async fn a_stalled_export_reader_holds_no_database_connection() {
    for backend in backends() {
        let d = Deployment::start(
            backend,
            &[
                ("DATABASE_MAX_CONNECTIONS", "1"),
                ("DATABASE_ACQUIRE_TIMEOUT_SECS", "1"),
                ("RATE_LIMIT_ENABLED", "false"),
            ],
        )
        .await;
        let token = d.admin("exporter").await;
        seed_users(&d, backend, 20_000).await;
        let reader = stalled_export(&d, &token).await;
        // Time for the server to fill every buffer up to the reader.
        tokio::time::sleep(Duration::from_secs(2)).await;
        for _ in 0..3 {
            let ready = d.http.get(d.url(0, "/ready")).send().await.unwrap();
            assert_eq!(ready.status(), 200, "{backend:?}: the pool is held");
        }
        let (status, body) = d
            .call(
                0,
                Method::GET,
                "/api/v1/users?page=2&per_page=5",
                &token,
                None,
            )
            .await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        drop(reader);
        // Read page by page, the export is still whole, in id order, once each.
        let all = export_ids(&d, &token, "").await;
        assert_eq!(all.len(), 20_000 + 2, "{backend:?}");
        assert!(all.windows(2).all(|w| w[0] < w[1]), "{backend:?}: order");
        // bulk1, bulk10-19, bulk100-199, bulk1000-1999, bulk10000-19999.
        let filtered = export_ids(&d, &token, "?q=bulk1").await;
        assert_eq!(filtered.len(), 11_111, "{backend:?}");
        d.stop().await;
    }
}

/// The ids of a whole NDJSON export, as listed.
async fn export_ids(d: &Deployment, token: &str, query: &str) -> Vec<String> {
    let text = d
        .http
        .get(d.url(0, &format!("/api/v1/users/export{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .map(|line| {
            let user: serde_json::Value = serde_json::from_str(line).unwrap();
            user["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// A streamed response still running at `STREAM_MAX_SECS` is cut: the reader
/// gets a response that does not end, and the connection closes.
#[tokio::test]
async fn a_stream_past_its_time_limit_is_cut() {
    let d = Deployment::start(
        Backend::Sqlite,
        &[("STREAM_MAX_SECS", "1"), ("RATE_LIMIT_ENABLED", "false")],
    )
    .await;
    let token = d.admin("exporter").await;
    seed_users(&d, Backend::Sqlite, 20_000).await;
    let mut reader = stalled_export(&d, &token).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rest = until_closed(&mut reader).await;
    // A complete chunked body ends with the last, empty chunk.
    assert!(!rest.ends_with(b"0\r\n\r\n"), "the export ran to its end");
    d.stop().await;
}

/// SIGTERM is not held up by connections that never finish their headers
/// (long header timeout and grace here, so only the shutdown can close them),
/// and an idle keep-alive connection is closed too.
#[tokio::test]
async fn shutdown_is_not_held_by_unfinished_headers() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("BIND_ADDR", "127.0.0.1:0"),
        ("METRICS_ADDR", "127.0.0.1:0"),
        ("JWT_SECRET_KEY", SECRET),
        ("HTTP_HEADER_READ_TIMEOUT_SECS", "3600"),
        ("SHUTDOWN_GRACE_SECS", "3600"),
    ];
    let server = serve(gatehouse(dir.path(), &vars));
    let mut open = Vec::new();
    for opening in [&b""[..], b"GET /health HTTP/1.1\r\nHost: localhost\r\n"] {
        let mut conn = TcpStream::connect(&server.addr).await.unwrap();
        conn.write_all(opening).await.unwrap();
        open.push(conn);
    }
    let mut idle = TcpStream::connect(&server.addr).await.unwrap();
    idle.write_all(HEALTH).await.unwrap();
    assert!(read_response(&mut idle).await.starts_with("http/1.1 200"));
    open.push(idle);
    let stopped = timeout(BOUND, tokio::task::spawn_blocking(move || server.stop())).await;
    let (status, _) = stopped.expect("stopped within the bound").unwrap();
    assert!(status.success(), "{status}");
    for conn in &mut open {
        until_closed(conn).await;
    }
}
