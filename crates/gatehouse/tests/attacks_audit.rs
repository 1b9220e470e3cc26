//! Covering tracks in the audit trail, against real running servers (one on
//! SQLite; two on PostgreSQL + Redis when configured): deleting the newest
//! entries is seen by the instances that wrote or saw them, and the head
//! checkpointed in the log at shutdown catches it after a restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly"
)]

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::deployment::{Deployment, backends};

/// Security events (the checkpoints among them) reach the log.
const LOGGED: &[(&str, &str)] = &[(
    "LOG_LEVEL",
    "warn,gatehouse::serve=info,gatehouse::security=info",
)];

/// An admin's token, and a few more entries in the trail.
async fn auditor(d: &Deployment) -> String {
    d.register("auditor").await;
    // Before the first login, so no cache holds the old role.
    d.sql("UPDATE {schema}.users SET role = 'admin' WHERE username = 'auditor'")
        .await;
    for _ in 0..3 {
        d.login(0, "auditor", "Wrong-Passw0rd!").await;
    }
    d.token("auditor").await
}

async fn verify(d: &Deployment, n: usize, token: &str, query: &str) -> Value {
    let path = format!("/api/v1/admin/audit/verify{query}");
    let (status, body) = d.call(n, Method::GET, &path, token, None).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn deleting_the_newest_entries_is_seen_by_the_running_instances() {
    for backend in backends() {
        let d = Deployment::start(backend, &[]).await;
        let token = auditor(&d).await;
        for n in 0..d.bases.len() {
            let v = verify(&d, n, &token, "").await;
            assert_eq!(v["valid"], true, "{backend:?}: {v}");
        }
        let (_, newest) = d
            .call(0, Method::GET, "/api/v1/admin/audit?limit=1", &token, None)
            .await;
        let head = newest["entries"][0]["seq"].as_i64().unwrap();
        d.sql(&format!(
            "DELETE FROM {{schema}}.audit_log WHERE seq > {}",
            head - 2
        ))
        .await;
        for n in 0..d.bases.len() {
            let v = verify(&d, n, &token, "").await;
            assert_eq!(v["valid"], false, "{backend:?}, instance {n}: {v}");
            assert_eq!(v["first_broken"], Value::Null);
            assert_eq!(v["instance_head"]["seq"], head);
            assert_eq!(v["instance_head"]["status"], "missing");
        }
        d.stop().await;
    }
}

/// The `audit_checkpoint` lines a stopped instance wrote at shutdown.
fn shutdown_checkpoints(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "audit_checkpoint" && v["reason"] == "shutdown")
        .collect()
}

#[tokio::test]
async fn the_head_checkpointed_at_shutdown_catches_a_later_truncation() {
    for backend in backends() {
        let mut d = Deployment::start(backend, LOGGED).await;
        let token = auditor(&d).await;
        let v = verify(&d, 0, &token, "").await;
        let head = v["head"].clone();

        let logs = d.restart_with_logs(LOGGED);
        for lines in &logs {
            let checkpoints = shutdown_checkpoints(lines);
            assert_eq!(checkpoints.len(), 1, "{backend:?}: {lines:#?}");
            assert_eq!(checkpoints[0]["seq"], head["seq"]);
            assert_eq!(checkpoints[0]["hash"], head["hash"]);
        }

        // Removed behind the instances' backs: the head they saw at startup
        // and the copy in the log both tell.
        let seq = head["seq"].as_i64().unwrap();
        d.sql(&format!(
            "DELETE FROM {{schema}}.audit_log WHERE seq >= {}",
            seq - 1
        ))
        .await;
        let hash = head["hash"].as_str().unwrap();
        let claim = format!("?head_seq={seq}&head_hash={hash}");
        let v = verify(&d, 0, &token, &claim).await;
        assert_eq!(v["valid"], false, "{backend:?}: {v}");
        assert_eq!(v["claimed_head"]["status"], "missing");
        let failures = v["failures"].as_array().unwrap();
        assert!(failures.contains(&json!("claimed_head_missing")), "{v}");
        d.stop().await;
    }
}
