//! Mail against a real SMTP server (aiosmtpd, `support/smtp_sink.py`) and
//! real `gatehouse serve` processes: each flow end to end, the outbox
//! through an outage and a restart, two instances sending each mail once,
//! STARTTLS with a private CA, `mail-test`, and no token in the log.
//! Skipped, with a notice, where aiosmtpd is not installed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly"
)]

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::deployment::{Backend, Deployment, PASSWORD, backends};
use support::smtp::{self, Received, Sink};

const NEW_PASSWORD: &str = "N3w-Passw0rd!x";
/// Mail leaves within 10 s of the request with the server up (the sender
/// reads the outbox every second).
const PROMPTLY: Duration = Duration::from_secs(10);

fn smtp_settings(port: u16) -> Vec<(String, String)> {
    vec![
        ("SMTP_URL".into(), format!("smtp://127.0.0.1:{port}")),
        (
            "MAIL_FROM".into(),
            "Gatehouse <no-reply@example.com>".into(),
        ),
        ("RATE_LIMIT_ENABLED".into(), "false".into()),
        ("LOG_LEVEL".into(), "info".into()),
    ]
}

async fn start(backend: Backend, settings: &[(String, String)]) -> Deployment {
    let pairs: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Deployment::start(backend, &pairs).await
}

async fn post(d: &Deployment, n: usize, path: &str, body: Value) -> (u16, Value) {
    let res = d
        .http
        .post(d.url(n, path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The one message to `to` with `subject`, within `PROMPTLY`.
async fn one_mail(sink: &Sink, to: &str, subject: &str) -> Received {
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    loop {
        let found: Vec<Received> = sink
            .received()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == to) && m.subject() == Some(subject))
            .collect();
        if !found.is_empty() || tokio::time::Instant::now() >= deadline {
            assert_eq!(found.len(), 1, "one `{subject}` to {to}: {found:?}");
            return found[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Registration → verification mail → confirm; the link's token.
async fn verify_flow(d: &Deployment, sink: &Sink) -> String {
    d.register("alice").await;
    let mail = one_mail(sink, "alice@example.com", "Confirm your email address").await;
    assert!(
        mail.text
            .contains("http://localhost:3000/verify-email?token=")
    );
    assert!(mail.text.contains("text/html") && mail.text.contains("text/plain"));
    let token = mail.token().unwrap();
    let body = json!({"token": token});
    let (status, _) = post(d, 1, "/api/v1/auth/verify-email/confirm", body).await;
    assert_eq!(status, 200);
    let access = d.token("alice").await;
    let (_, me) = d
        .call(0, Method::GET, "/api/v1/users/me", &access, None)
        .await;
    assert_eq!(me["email_verified"], true);
    token
}

/// Reset → mail → confirm: the old password and login are dead.
async fn reset_flow(d: &Deployment, sink: &Sink) -> String {
    let access = d.token("alice").await;
    let body = json!({"email": "alice@example.com"});
    let (status, _) = post(d, 1, "/api/v1/auth/password-reset/request", body).await;
    assert_eq!(status, 202);
    let mail = one_mail(sink, "alice@example.com", "Reset your password").await;
    let token = mail.token().unwrap();
    let body = json!({"token": token, "new_password": NEW_PASSWORD});
    let (status, _) = post(d, 0, "/api/v1/auth/password-reset/confirm", body).await;
    assert_eq!(status, 200);
    assert_eq!(d.login(1, "alice", PASSWORD).await.0, 401);
    let (status, _) = d
        .call(1, Method::GET, "/api/v1/users/me", &access, None)
        .await;
    assert_eq!(status, 401, "the earlier login is revoked");
    one_mail(sink, "alice@example.com", "Your password was reset").await;
    token
}

/// Email change → link to the new address, notice to the old → confirm →
/// login with the new address.
async fn change_flow(d: &Deployment, sink: &Sink) -> String {
    let (status, body) = d.login(0, "alice", NEW_PASSWORD).await;
    assert_eq!(status, 200);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let change = json!({"email": "alice.new@example.com"});
    let (status, _) = d
        .call(0, Method::PUT, "/api/v1/users/me", &access, Some(change))
        .await;
    assert_eq!(status, 202);
    let mail = one_mail(
        sink,
        "alice.new@example.com",
        "Confirm your new email address",
    )
    .await;
    one_mail(
        sink,
        "alice@example.com",
        "A change of your email address was requested",
    )
    .await;
    let token = mail.token().unwrap();
    let body = json!({"token": token});
    let (status, _) = post(d, 1, "/api/v1/auth/verify-email/confirm", body).await;
    assert_eq!(status, 200);
    let login = json!({"email": "alice.new@example.com", "password": NEW_PASSWORD});
    let (status, _) = post(d, 1, "/api/v1/auth/login", login).await;
    assert_eq!(status, 200);
    one_mail(sink, "alice@example.com", "Your email address was changed").await;
    token
}

#[tokio::test]
async fn every_flow_end_to_end_and_no_token_in_the_log() {
    if !smtp::available() {
        return;
    }
    for backend in backends() {
        let sink = Sink::start(smtp::free_port(), None);
        let d = start(backend, &smtp_settings(sink.port)).await;
        let tokens = [
            verify_flow(&d, &sink).await,
            reset_flow(&d, &sink).await,
            change_flow(&d, &sink).await,
        ];
        // With SMTP configured, no token (and no code) reaches the log.
        let codes: Vec<String> = sink
            .received()
            .iter()
            .filter_map(|m| m.text.split("enter this code: ").nth(1))
            .map(|rest| rest.chars().take(9).collect())
            .collect();
        assert_eq!(codes.len(), 3, "{backend:?}");
        let log = d.finish_with_logs().await.join("\n");
        assert!(log.contains("mail sent"), "the sender logs what it sends");
        for secret in tokens.iter().chain(&codes) {
            assert!(
                !log.contains(secret.as_str()),
                "{backend:?}: a secret in the log"
            );
        }
    }
}

#[tokio::test]
async fn the_outbox_survives_an_smtp_outage_and_a_restart() {
    if !smtp::available() {
        return;
    }
    for backend in backends() {
        let port = smtp::free_port();
        let sink = Sink::start(port, None);
        let mut d = start(backend, &smtp_settings(port)).await;
        sink.stop();
        d.register("olga").await;
        // Let the sender fail at least once against the closed port.
        tokio::time::sleep(Duration::from_secs(2)).await;
        d.restart(&[]);
        let sink = Sink::start(port, None);
        // Retried within the backoff (5 s, then 10 s, 20 s...).
        let mails = sink
            .wait_for("olga@example.com", 1, Duration::from_secs(60))
            .await;
        assert_eq!(mails.len(), 1, "{backend:?}: the mail arrives");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(sink.received().len(), 1, "{backend:?}: and only once");
        d.stop().await;
    }
}

#[tokio::test]
async fn two_instances_send_each_mail_exactly_once() {
    if !smtp::available() || !backends().contains(&Backend::Shared) {
        return;
    }
    let sink = Sink::start(smtp::free_port(), None);
    let d = start(Backend::Shared, &smtp_settings(sink.port)).await;
    const USERS: usize = 24;
    let requests = (0..USERS).map(|i| {
        let body = json!({"username": format!("twin{i}"), "email": format!("twin{i}@example.com"), "password": PASSWORD});
        post(&d, i, "/api/v1/auth/register", body)
    });
    for (status, _) in futures_util::future::join_all(requests).await {
        assert_eq!(status, 201);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sink.received().len() < USERS && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Both senders keep polling a while longer: nothing is sent again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut to: Vec<String> = sink.received().into_iter().flat_map(|m| m.to).collect();
    assert_eq!(to.len(), USERS, "every mail once: {to:?}");
    to.sort();
    to.dedup();
    assert_eq!(to.len(), USERS);
    d.stop().await;
}

#[tokio::test]
async fn starttls_with_a_private_ca_and_mail_test() {
    if !smtp::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(dir.path());
    let sink = Sink::start(smtp::free_port(), Some((&cert, &key)));
    let url = format!("smtp+starttls://localhost:{}", sink.port);
    let ca = ca.display().to_string();
    let mut settings = smtp_settings(sink.port);
    settings.push(("SMTP_URL".into(), url.clone()));
    settings.push(("SMTP_TLS_CA_FILE".into(), ca.clone()));
    let d = start(Backend::Sqlite, &settings).await;
    d.register("tess").await;
    let mail = one_mail(&sink, "tess@example.com", "Confirm your email address").await;
    assert!(mail.tls, "sent over STARTTLS");
    d.stop().await;
    // `mail-test`: the CA is needed; with it the message goes, without it not.
    let vars = [
        ("SMTP_URL", url.as_str()),
        ("MAIL_FROM", "no-reply@example.com"),
    ];
    let run = |extra: &[(&str, &str)]| {
        let all: Vec<(&str, &str)> = vars.iter().chain(extra).copied().collect();
        support::gatehouse(dir.path(), &all)
            .args(["mail-test", "--to", "ops@example.com"])
            .output()
            .unwrap()
    };
    assert!(!run(&[]).status.success(), "an unknown CA is refused");
    let out = run(&[("SMTP_TLS_CA_FILE", ca.as_str())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    one_mail(&sink, "ops@example.com", "Test message").await;
}

/// A CA, and a certificate for `localhost` it signed, as PEM files.
fn tls_files(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[tokio::test]
async fn reset_requests_cost_the_same_for_known_and_unknown_addresses() {
    if !smtp::available() {
        return;
    }
    let sink = Sink::start(smtp::free_port(), None);
    let d = start(Backend::Sqlite, &smtp_settings(sink.port)).await;
    d.register("kai").await;
    const N: usize = 15;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    // Interleaved, so load on the machine falls on both alike.
    for i in 0..N {
        for (email, out) in [
            ("kai@example.com", &mut known),
            (&*format!("nobody{i}@example.com"), &mut unknown),
        ] {
            let started = tokio::time::Instant::now();
            let (status, _) = post(
                &d,
                0,
                "/api/v1/auth/password-reset/request",
                json!({"email": email}),
            )
            .await;
            assert_eq!(status, 202);
            out.push(started.elapsed());
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (k, u) = (median(&mut known), median(&mut unknown));
    eprintln!("password-reset request medians: known {k:?}, unknown {u:?}");
    // Loose: the same work on both paths, so neither is several times the other.
    let (fast, slow) = if k < u { (k, u) } else { (u, k) };
    assert!(
        slow <= fast * 4 + Duration::from_millis(20),
        "known {k:?} vs unknown {u:?}"
    );
    d.stop().await;
}
