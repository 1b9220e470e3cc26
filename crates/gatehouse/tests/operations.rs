//! The operating commands end to end: `backup` of a SQLite database while
//! `serve` writes to it, restored under a second server; `healthcheck`
//! against running, silent and stopped servers; `calibrate-argon2`'s
//! suggestions against the OWASP minimums (no timing is asserted).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly"
)]

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use support::{gatehouse, serve};

const SECRET: &str = "ops-test-secret-0123456789-abcdefghijklm";
const KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const BLIND: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const PASSWORD: &str = "Operat1ons-Passw0rd!";

/// Fixed keys (a copy is only readable with the keys it was written under),
/// free ports, small Argon2 costs, no rate limits.
fn vars<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut vars = vec![
        ("JWT_SECRET_KEY", SECRET),
        ("DATA_ENCRYPTION_KEYS", KEY),
        ("BLIND_INDEX_KEY", BLIND),
        ("BIND_ADDR", "127.0.0.1:0"),
        ("METRICS_ADDR", "127.0.0.1:0"),
        ("ARGON2_MEMORY_COST", "64"),
        ("ARGON2_TIME_COST", "1"),
        ("ARGON2_PARALLELISM", "1"),
        ("RATE_LIMIT_ENABLED", "false"),
    ];
    vars.extend_from_slice(extra);
    vars
}

fn run(dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    gatehouse(dir, vars).args(args).output().unwrap()
}

async fn register(base: &str, name: &str) {
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "register {name}");
}

async fn login_status(base: &str, name: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": format!("{name}@example.com"), "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_backup_taken_while_serving_restores_under_a_second_server() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let live = serve(gatehouse(dir.path(), &vars(&[])));
    let base = format!("http://{}", live.addr);
    register(&base, "ada").await;
    register(&base, "bob").await;

    // Copied while registrations keep writing.
    let writer = {
        let base = base.clone();
        tokio::spawn(async move {
            for i in 0..10 {
                register(&base, &format!("busy{i}")).await;
            }
        })
    };
    let path = dir.path().to_path_buf();
    let out =
        tokio::task::spawn_blocking(move || run(&path, &vars(&[]), &["backup", "--to", "copy.db"]))
            .await
            .unwrap();
    writer.await.unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrote copy.db"));
    let copy = dir.path().join("copy.db");
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the copy is its owner's alone");

    // Written after the copy: not in it. The live server keeps serving.
    register(&base, "carol").await;
    assert_eq!(login_status(&base, "carol").await, 200);

    // An existing file is never overwritten.
    let before = std::fs::read(&copy).unwrap();
    let again = run(dir.path(), &vars(&[]), &["backup", "--to", "copy.db"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(std::fs::read(&copy).unwrap(), before);

    // A second server on the copy, in another directory.
    let other = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", copy.display());
    let restored = serve(gatehouse(other.path(), &vars(&[("DATABASE_URL", &url)])));
    let restored_base = format!("http://{}", restored.addr);
    assert_eq!(login_status(&restored_base, "ada").await, 200);
    assert_eq!(login_status(&restored_base, "bob").await, 200);
    assert_eq!(login_status(&restored_base, "carol").await, 401);

    for server in [restored, live] {
        let (status, _) = server.stop();
        assert!(status.success(), "clean shutdown: {status}");
    }
}

#[test]
fn a_postgres_database_is_pointed_to_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: the command must not even try to connect.
    let url = (
        "DATABASE_URL",
        "postgres://gatehouse:pw@127.0.0.1:1/gatehouse",
    );
    let out = run(dir.path(), &vars(&[url]), &["backup", "--to", "dump"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("pg_dump"), "{stderr}");
    assert!(!stderr.contains("pw@"), "no password in messages");
    assert!(!dir.path().join("dump").exists());
    assert!(!dir.path().join("data").exists(), "no key file either");
}

#[tokio::test]
async fn healthcheck_passes_only_for_a_server_that_answers() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = ("ALLOWED_HOSTS", "auth.example.com");
    let server = serve(gatehouse(dir.path(), &vars(&[hosts])));
    let addr = server.addr.clone();
    let check = |extra: &[(&str, &str)], args: &[&str]| {
        let mut all = vec!["healthcheck"];
        all.extend_from_slice(args);
        run(dir.path(), &vars(extra), &all)
    };

    // By default: BIND_ADDR, under a name ALLOWED_HOSTS accepts.
    let out = check(&[hosts, ("BIND_ADDR", &addr)], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let url = format!("http://{addr}");
    let out = check(&[], &["--url", &url, "--host", "auth.example.com"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The service refuses a Host it does not serve: that is a failure too.
    let out = check(&[], &["--url", &url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("answered 400"));

    // A listener that never answers: the time limit ends the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/health", silent.local_addr().unwrap());
    let out = check(&[], &["--url", &silent_url, "--timeout-secs", "1"]);
    assert_eq!(out.status.code(), Some(1));

    let (status, _) = server.stop();
    assert!(status.success());
    let out = check(&[], &["--url", &url, "--host", "auth.example.com"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a stopped server fails the check"
    );
}

#[test]
fn calibration_suggests_at_least_the_owasp_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let concurrency = [("ARGON2_MAX_CONCURRENT", "3")];
    let out = run(
        dir.path(),
        &concurrency,
        &["calibrate-argon2", "--target-ms", "1", "--json"],
    );
    assert!(out.status.success(), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let memory = report["memory_kib"].as_u64().unwrap();
    let passes = report["iterations"].as_u64().unwrap();
    // OWASP Password Storage Cheat Sheet: m=19456 KiB, t=2, p=1 (or one of
    // its equal trade-offs).
    let owasp = [
        (47_104, 1),
        (19_456, 2),
        (12_288, 3),
        (9_216, 4),
        (7_168, 5),
    ];
    assert!(
        owasp.iter().any(|&(m, t)| memory >= m && passes >= t),
        "{report:#}"
    );
    assert_eq!(report["lanes"], 1);
    assert_eq!(report["max_concurrent"], 3);
    assert_eq!(report["memory_bound_kib"].as_u64(), Some(3 * memory));
    assert_eq!(report["env"]["ARGON2_MEMORY_COST"], memory.to_string());
    assert!(report["logins_per_sec_per_core"].as_f64().unwrap() > 0.0);

    let text = run(
        dir.path(),
        &concurrency,
        &["calibrate-argon2", "--target-ms", "1"],
    );
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    for expected in [
        "ARGON2_MEMORY_COST=",
        "ARGON2_TIME_COST=",
        "ARGON2_PARALLELISM=1",
        "memory bound",
        "OWASP minimum",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    // Measuring writes nothing (no development key file either).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
