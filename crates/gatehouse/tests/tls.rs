//! HTTPS served directly by the real binary: a certificate from a test CA,
//! HTTP/2 and HTTP/1.1 by ALPN, TLS 1.2, a certificate replaced on SIGHUP
//! while an older connection keeps working, a bad replacement refused, the
//! plain-HTTP redirect listener, and bad files refused at startup.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly"
)]

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use support::{Server, gatehouse, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";
const BOUND: Duration = Duration::from_secs(30);

/// A throwaway certificate authority issuing server certificates.
struct Ca {
    key: KeyPair,
    params: CertificateParams,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "Gatehouse test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let der = params.self_signed(&key).unwrap().der().clone();
        Self { key, params, der }
    }

    /// A certificate for `localhost` with this serial number, and its key,
    /// both PEM.
    fn issue(&self, serial: u64) -> (CertificateDer<'static>, String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.serial_number = Some(SerialNumber::from(serial));
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.der().clone(), cert.pem(), key.serialize_pem())
    }

    fn client(
        &self,
        versions: &[&'static SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }
}

/// The certificate and key files the server is started with.
struct Files {
    cert: PathBuf,
    key: PathBuf,
}

impl Files {
    fn write(dir: &Path, cert_pem: &str, key_pem: &str) -> Self {
        let files = Self {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, cert_pem).unwrap();
        std::fs::write(&files.key, key_pem).unwrap();
        files
    }
}

fn start(dir: &Path, files: &Files, extra: &[(&str, &str)]) -> Server {
    let (cert, key) = (files.cert.to_str().unwrap(), files.key.to_str().unwrap());
    let mut vars = vec![
        ("BIND_ADDR", "127.0.0.1:0"),
        ("METRICS_ADDR", "127.0.0.1:0"),
        ("JWT_SECRET_KEY", SECRET),
        ("TLS_CERT_FILE", cert),
        ("TLS_KEY_FILE", key),
    ];
    vars.extend_from_slice(extra);
    serve(gatehouse(dir, &vars))
}

async fn connect(connector: &TlsConnector, addr: &str) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    timeout(BOUND, connector.connect(name, tcp))
        .await
        .expect("a handshake in time")
        .unwrap()
}

fn served_certificate(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

/// An HTTP/1.1 connection over `tls`; requests `/health` on it.
struct Http1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>);

impl Http1 {
    async fn over(tls: TlsStream<TcpStream>) -> Self {
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        Self(send)
    }

    async fn health(&mut self) -> hyper::Response<hyper::body::Incoming> {
        let req = hyper::Request::get("/health")
            .header("host", "localhost")
            .body(Empty::new())
            .unwrap();
        timeout(BOUND, self.0.send_request(req))
            .await
            .unwrap()
            .unwrap()
    }
}

#[tokio::test]
async fn https_speaks_http2_and_http11_by_alpn_and_tls12() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (_, cert, key) = ca.issue(1);
    let files = Files::write(dir.path(), &cert, &key);
    let server = start(dir.path(), &files, &[]);

    // A browser-like client offers both and gets HTTP/2 over TLS 1.3.
    let all = [&rustls::version::TLS13, &rustls::version::TLS12];
    let tls = connect(&ca.client(&all, &[b"h2", b"http/1.1"]), &server.addr).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("https://localhost/health")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = timeout(BOUND, send.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), hyper::Version::HTTP_2);
    // Arrived over HTTPS: HSTS is sent (RFC 6797).
    assert!(res.headers().contains_key("strict-transport-security"));
    // A client that keeps an unread response open holds shutdown to its
    // grace period: this one is done with it.
    drop((send, res));

    // A client limited to TLS 1.2 and HTTP/1.1 is served too.
    let tls12 = [&rustls::version::TLS12];
    let tls = connect(&ca.client(&tls12, &[b"http/1.1"]), &server.addr).await;
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let res = Http1::over(tls).await.health().await;
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("ok"));

    // With the openssl CLI at hand: TLS 1.1 refused where 1.2 is accepted.
    let s_client = |version: &str| {
        std::process::Command::new("openssl")
            .args(["s_client", version, "-cipher", "DEFAULT@SECLEVEL=0"])
            .args(["-connect", &server.addr, "-servername", "localhost"])
            .stdin(std::process::Stdio::null())
            .output()
    };
    if let (Ok(tls11), Ok(tls12)) = (s_client("-tls1_1"), s_client("-tls1_2")) {
        assert!(!tls11.status.success(), "TLS 1.1 accepted");
        assert!(tls12.status.success(), "{tls12:?}");
    }

    // Plain HTTP on the HTTPS port gets no answer.
    let mut plain = TcpStream::connect(&server.addr).await.unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = timeout(BOUND, plain.read_to_end(&mut buf)).await.unwrap();
    assert!(!String::from_utf8_lossy(&buf).contains("200"));

    // The container health check speaks TLS to the same settings.
    let (cert, key) = (files.cert.to_str().unwrap(), files.key.to_str().unwrap());
    let probe = gatehouse(
        dir.path(),
        &[
            ("BIND_ADDR", server.addr.as_str()),
            ("JWT_SECRET_KEY", SECRET),
            ("TLS_CERT_FILE", cert),
            ("TLS_KEY_FILE", key),
        ],
    )
    .arg("healthcheck")
    .output()
    .unwrap();
    assert!(probe.status.success(), "{probe:?}");
    server.stop();
}

#[tokio::test]
async fn sighup_serves_a_new_certificate_and_keeps_old_connections() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (first, cert, key) = ca.issue(1);
    let files = Files::write(dir.path(), &cert, &key);
    let server = start(dir.path(), &files, &[]);
    let client = ca.client(&[&rustls::version::TLS13], &[b"http/1.1"]);

    let tls = connect(&client, &server.addr).await;
    assert_eq!(served_certificate(&tls), first);
    let mut old = Http1::over(tls).await;
    assert_eq!(old.health().await.status(), 200);

    // Renewed: serial 2 on new connections, the old one still answers.
    let (second, cert, key) = ca.issue(2);
    Files::write(dir.path(), &cert, &key);
    server.hangup();
    server.wait_for("TLS certificate reloaded");
    let tls = connect(&client, &server.addr).await;
    assert_eq!(served_certificate(&tls), second);
    assert_eq!(old.health().await.status(), 200);

    // A broken replacement (a key that is not the certificate's) is refused
    // and serial 2 stays.
    let (_, cert, _) = ca.issue(3);
    let (_, _, other_key) = ca.issue(4);
    Files::write(dir.path(), &cert, &other_key);
    server.hangup();
    let line = server.wait_for("TLS certificate reload failed; keeping the current one");
    assert!(line["error"].as_str().unwrap().contains("TLS_KEY_FILE"));
    let tls = connect(&client, &server.addr).await;
    assert_eq!(served_certificate(&tls), second);
    assert_eq!(old.health().await.status(), 200);
    let (status, _) = server.stop();
    assert!(status.success());
}

/// Sends `request` on a new plain connection; the response head.
async fn plain_request(addr: &str, request: &str) -> String {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut buf = [0u8; 4096];
    let n = timeout(BOUND, conn.read(&mut buf)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn the_redirect_listener_only_redirects_to_https() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (_, cert, key) = ca.issue(1);
    let files = Files::write(dir.path(), &cert, &key);
    let server = start(dir.path(), &files, &[("HTTP_REDIRECT_ADDR", "127.0.0.1:0")]);
    let redirect = server.redirect_addr.clone().expect("a redirect listener");
    let port = server.addr.rsplit_once(':').unwrap().1;

    let head = plain_request(
        &redirect,
        "POST /api/v1/auth/login?x=1 HTTP/1.1\r\nHost: localhost:80\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 308"), "{head}");
    let location = format!("location: https://localhost:{port}/api/v1/auth/login?x=1\r\n");
    assert!(head.to_ascii_lowercase().contains(&location), "{head}");

    // The API is not served on it, and a foreign Host is not echoed.
    let head = plain_request(
        &redirect,
        "GET /health HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("location"), "{head}");
    server.stop();
}

#[test]
fn unreadable_or_mismatched_files_stop_startup_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (_, cert, _) = ca.issue(1);
    let (_, _, other_key) = ca.issue(2);
    let files = Files::write(dir.path(), &cert, &other_key);
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let (cert, key) = (files.cert.to_str().unwrap(), files.key.to_str().unwrap());
    for (cert, key, variable) in [
        (missing, key, "TLS_CERT_FILE"),
        (cert, missing, "TLS_KEY_FILE"),
        (key, key, "TLS_CERT_FILE"),
        (cert, key, "TLS_KEY_FILE"),
    ] {
        let out = gatehouse(
            dir.path(),
            &[
                ("BIND_ADDR", "127.0.0.1:0"),
                ("METRICS_ADDR", "127.0.0.1:0"),
                ("JWT_SECRET_KEY", SECRET),
                ("TLS_CERT_FILE", cert),
                ("TLS_KEY_FILE", key),
            ],
        )
        .arg("serve")
        .output()
        .unwrap();
        assert!(!out.status.success());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("{variable}:")), "{stdout}");
    }
}
