//! The `gatehouse` binary end to end: configuration errors, `check-config`,
//! `migrate`, `serve` answering `/health` then stopping on SIGTERM, and the
//! modes of the files it creates.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly"
)]

mod support;

use std::process::Stdio;

use support::{gatehouse, serve};

const SECRET: &str = "cli-test-secret-0123456789-abcdefghijkl";
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[test]
fn bad_settings_stop_startup_with_one_line_per_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = gatehouse(
        dir.path(),
        &[
            ("ARGON2_TIME_COST", "fast"),
            ("JWT_SECRET_KEY", "tiny-secret"),
        ],
    )
    .arg("serve")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines.iter().any(|l| l.contains("ARGON2_TIME_COST")));
    assert!(lines.iter().any(|l| l.contains("JWT_SECRET_KEY")));
    assert!(!stderr.contains("tiny-secret"));
    assert!(
        !dir.path().join("data").exists(),
        "nothing created on a bad config"
    );
}

#[test]
fn an_allow_list_without_usable_roots_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("roots.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let missing = dir.path().join("missing.pem");
    for roots in [&not_pem, &missing] {
        let out = gatehouse(
            dir.path(),
            &[
                ("JWT_SECRET_KEY", SECRET),
                ("BIND_ADDR", "127.0.0.1:0"),
                ("METRICS_ADDR", ""),
                ("WEBAUTHN_ATTESTATION_CA_FILE", roots.to_str().unwrap()),
                (
                    "WEBAUTHN_ALLOWED_AAGUIDS",
                    "cb69481e-8ff7-4039-93ec-0a2729a154a8",
                ),
            ],
        )
        .arg("serve")
        .stdin(Stdio::null())
        .output()
        .unwrap();
        assert!(!out.status.success(), "{roots:?}");
        // The error is the last line of the (JSON) log.
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(
            log.contains("WEBAUTHN_ATTESTATION_CA_FILE"),
            "{roots:?}: {log}"
        );
    }
}

#[test]
fn production_refuses_missing_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out = gatehouse(
        dir.path(),
        &[("ENVIRONMENT", "production"), ("SECURE_COOKIES", "false")],
    )
    .arg("check-config")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    for var in [
        "JWT_SECRET_KEY",
        "DATA_ENCRYPTION_KEYS",
        "BLIND_INDEX_KEY",
        "AUDIT_CHAIN_KEY",
        "SECURE_COOKIES",
        "SMTP_URL",
        "WEBAUTHN_ORIGINS",
    ] {
        assert!(stderr.contains(var), "{var} not named in {stderr}");
    }
}

#[test]
fn check_config_prints_the_effective_configuration_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let key = format!("k1:{KEY_B64}");
    let out = gatehouse(
        dir.path(),
        &[
            ("JWT_SECRET_KEY", SECRET),
            ("DATA_ENCRYPTION_KEYS", &key),
            ("BLIND_INDEX_KEY", KEY_B64),
            ("DATABASE_URL", "postgres://app:db-password@127.0.0.1/gh"),
            ("JWT_SECRET", "typo"),
        ],
    )
    .arg("check-config")
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let view: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(view["JWT_SECRET_KEY"], "[redacted]");
    assert_eq!(view["DATA_ENCRYPTION_KEYS"][0], "k1:[redacted]");
    for secret in [SECRET, KEY_B64, "db-password"] {
        assert!(!stdout.contains(secret), "{secret} leaked");
    }
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("unknown variable JWT_SECRET"), "{stderr}");
}

#[test]
fn migrate_creates_the_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = gatehouse(dir.path(), &[("JWT_SECRET_KEY", SECRET)])
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(dir.path().join("data/gatehouse.db").exists());
    assert!(dir.path().join("data/dev-keys.json").exists());
}

const FAST_ARGON2: [(&str, &str); 3] = [
    ("ARGON2_MEMORY_COST", "64"),
    ("ARGON2_TIME_COST", "1"),
    ("ARGON2_PARALLELISM", "1"),
];
const ADMIN_PASSWORD: &str = "Adm1n-Passw0rd!x";

fn create_admin(dir: &std::path::Path, username: &str, password: &str) -> std::process::Output {
    let mut vars = vec![("JWT_SECRET_KEY", SECRET)];
    vars.extend(FAST_ARGON2);
    let mut child = gatehouse(dir, &vars)
        .args(["create-admin", "--username", username, "--email"])
        .arg(format!("{username}@example.com"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{password}").unwrap();
    }
    child.wait_with_output().unwrap()
}

#[test]
fn create_admin_reads_the_password_from_stdin_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = create_admin(dir.path(), "root_admin", ADMIN_PASSWORD);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(all.contains("admin account created"), "{all}");
    assert!(!all.contains(ADMIN_PASSWORD), "password echoed");

    let again = create_admin(dir.path(), "root_admin", ADMIN_PASSWORD);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already exists"));

    let weak = create_admin(dir.path(), "second_admin", "weakpass");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stdout).contains("upper-case"));

    // There is no way to pass a password on the command line.
    let argv = gatehouse(dir.path(), &[("JWT_SECRET_KEY", SECRET)])
        .args([
            "create-admin",
            "--username",
            "x_admin",
            "--email",
            "x@example.com",
        ])
        .args(["--password", ADMIN_PASSWORD])
        .output()
        .unwrap();
    assert_eq!(argv.status.code(), Some(2));
}

#[tokio::test]
async fn serve_answers_health_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        create_admin(dir.path(), "boss", ADMIN_PASSWORD)
            .status
            .success()
    );
    let mut vars = vec![
        ("BIND_ADDR", "127.0.0.1:0"),
        ("METRICS_ADDR", "127.0.0.1:0"),
        ("JWT_SECRET_KEY", SECRET),
    ];
    vars.extend(FAST_ARGON2);
    // The bound addresses are in the startup log line.
    let server = serve(gatehouse(dir.path(), &vars));
    let (addr, metrics_addr) = (server.addr.clone(), server.metrics_addr.clone());

    let res = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    let ready = reqwest::get(format!("http://{addr}/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);

    // The admin made by create-admin logs in and is an admin.
    let client = reqwest::Client::new();
    let login: serde_json::Value = client
        .post(format!("http://{addr}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "boss@example.com", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().expect("login succeeded");
    let me: serde_json::Value = client
        .get(format!("http://{addr}/api/v1/users/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "admin");
    assert_eq!(me["username"], "boss");

    // Metrics: on their own listener, by route template, with auth events.
    let metrics = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"route="/api/v1/users/me",status="200""#),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"gatehouse_auth_events_total{event="login_succeeded",outcome="success"}"#),
        "{metrics}"
    );
    let public = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(public.status(), 404, "never on the public port");

    let (status, lines) = server.stop();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        lines.iter().any(|l| l.contains("gatehouse stopped")),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains(SECRET)), "secret in logs");
}

/// A minimal PDF, for an upload.
const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// Registers an account on the server at `api`, signs in and uploads a file.
async fn sign_up_and_upload(api: &str) {
    let client = reqwest::Client::new();
    let account = serde_json::json!({"username": "fay", "email": "fay@example.com", "password": ADMIN_PASSWORD});
    let res = client
        .post(format!("{api}/auth/register"))
        .json(&account)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let login: serde_json::Value = client
        .post(format!("{api}/auth/login"))
        .json(&serde_json::json!({"email": "fay@example.com", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().expect("login succeeded");
    let boundary = "gatehouse-mode-test";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(PDF);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let res = client
        .post(format!("{api}/files"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn what_serve_creates_is_readable_by_its_owner_alone() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let mut vars = vec![
        ("BIND_ADDR", "127.0.0.1:0"),
        ("METRICS_ADDR", "127.0.0.1:0"),
        ("JWT_SECRET_KEY", SECRET),
    ];
    vars.extend(FAST_ARGON2);
    let server = serve(gatehouse(dir.path(), &vars));
    sign_up_and_upload(&format!("http://{}/api/v1", server.addr)).await;

    // Checked while serving, when SQLite's -wal and -shm files exist.
    let mode = |p: &std::path::Path| {
        format!(
            "{:o}",
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777
        )
    };
    let data = dir.path().join("data");
    let uploads = data.join("uploads");
    assert_eq!(mode(&data), "700", "DATA_DIR");
    assert_eq!(mode(&uploads), "700", "uploads");
    for name in [
        "gatehouse.db",
        "gatehouse.db-wal",
        "gatehouse.db-shm",
        "dev-keys.json",
    ] {
        assert_eq!(mode(&data.join(name)), "600", "{name}");
    }
    for blob in std::fs::read_dir(&uploads).unwrap() {
        assert_eq!(mode(&blob.unwrap().path()), "600", "an uploaded file");
    }
    let (status, _) = server.stop();
    assert!(status.success());
}
