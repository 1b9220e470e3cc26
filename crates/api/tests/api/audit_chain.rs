//! `GET /admin/audit/verify` against someone who can write the database but
//! does not hold `AUDIT_CHAIN_KEY`: rows rewritten with a recomputed plain
//! SHA-256, the newest rows deleted, a checkpoint's entry removed — on
//! every backend.

use gatehouse_core::audit::{AuditEntry, AuditRepo, entry_hash};
use http::StatusCode;
use serde_json::Value;

use crate::harness::{TestApp, backends, config};

/// An admin's token, after a few more events so the chain has a tail.
async fn admin_with_history(app: &TestApp) -> String {
    let (_, admin) = app.account("chain_admin", "admin").await;
    for _ in 0..3 {
        app.login_raw("chain_admin@example.com", "Wr0ng-Passw0rd!")
            .await;
    }
    admin
}

async fn verify(app: &TestApp, token: &str, query: &str) -> Value {
    let res = app
        .call(
            "GET",
            &format!("/api/v1/admin/audit/verify{query}"),
            token,
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    res.json()
}

async fn stored(app: &TestApp) -> Vec<AuditEntry> {
    app.db.db.chain_after(0, 10_000).await.unwrap()
}

/// Rewrites `entries` in the database as someone without the key would:
/// each hash recomputed as plain SHA-256 over the (re)linked chain.
async fn rewrite_unkeyed(app: &TestApp, entries: &mut [AuditEntry], scheme: i16) {
    let mut prev: Option<String> = None;
    for e in entries.iter_mut() {
        if let Some(p) = prev.take() {
            e.prev_hash = p;
        }
        e.hash = entry_hash(&e.prev_hash, e.seq, &e.draft());
        e.scheme = scheme;
        app.exec(&format!(
            "UPDATE audit_log SET details = '{}', prev_hash = '{}', hash = '{}', \
             hash_scheme = {scheme} WHERE seq = {}",
            e.details, e.prev_hash, e.hash, e.seq
        ))
        .await;
        prev = Some(e.hash.clone());
    }
}

#[tokio::test]
async fn deleting_the_newest_entries_is_detected() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let admin = admin_with_history(&app).await;
        let v = verify(&app, &admin, "").await;
        assert_eq!(v["valid"], true, "{backend:?}: {v}");
        let head = v["head"]["seq"].as_i64().unwrap();
        assert_eq!(v["instance_head"]["status"], "held");

        app.exec(&format!("DELETE FROM audit_log WHERE seq > {}", head - 2))
            .await;
        let v = verify(&app, &admin, "").await;
        assert_eq!(v["valid"], false, "{backend:?}: {v}");
        // What is left links up: only the known head shows the loss.
        assert_eq!(v["first_broken"], Value::Null);
        assert_eq!(v["head"]["seq"], head - 2);
        assert_eq!(v["instance_head"]["seq"], head);
        assert_eq!(v["instance_head"]["status"], "missing");
        assert_eq!(v["failures"], serde_json::json!(["instance_head_missing"]));
    }
}

#[tokio::test]
async fn rows_rewritten_with_a_recomputed_sha256_fail() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let admin = admin_with_history(&app).await;
        let page = app
            .call("GET", "/api/v1/admin/audit?limit=1", &admin, None)
            .await
            .json();
        assert_eq!(page["entries"][0]["hash_scheme"], "hmac-sha256");

        // Entry 3 edited, it and every later one re-hashed and re-linked.
        let mut entries = stored(&app).await;
        entries[2].details = r#"{"forged":true}"#.into();
        rewrite_unkeyed(&app, &mut entries[2..], 2).await;
        let v = verify(&app, &admin, "").await;
        assert_eq!(v["valid"], false, "{backend:?}: {v}");
        assert_eq!(v["first_broken"]["seq"], 3);
        assert_eq!(
            v["first_broken"]["reason"],
            "entry content does not match its hash"
        );
        assert!(
            v["failures"]
                .as_array()
                .unwrap()
                .contains(&"broken_link".into())
        );

        // Calling the rewritten entries unkeyed (a downgrade) fails as well.
        rewrite_unkeyed(&app, &mut entries[2..], 1).await;
        let v = verify(&app, &admin, "").await;
        assert_eq!(v["first_broken"]["seq"], 3, "{backend:?}: {v}");
        assert_eq!(
            v["first_broken"]["reason"],
            "entry is not sealed with the chain key"
        );
        assert_eq!(v["unkeyed_until"], 0);
    }
}

#[tokio::test]
async fn entries_from_before_the_key_verify_as_they_were() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        admin_with_history(&app).await;
        // The first entries as an earlier version wrote them, and the
        // boundary its upgrade recorded; the keyed entries link on.
        let mut entries = stored(&app).await;
        let last = entries.len();
        rewrite_unkeyed(&app, &mut entries[..last], 1).await;
        app.exec(&format!(
            "UPDATE gatehouse_meta SET value = '{last}' WHERE key = 'audit_unkeyed_until'"
        ))
        .await;
        // A fresh instance (the rewrite changed the head this one knows).
        let fresh = TestApp::on(
            app.db.share(),
            crate::harness::config(&[]),
            Default::default(),
        );
        let (token, _) = fresh
            .login("chain_admin@example.com", crate::harness::PASSWORD)
            .await;
        let v = verify(&fresh, &token, "").await;
        assert_eq!(v["valid"], true, "{backend:?}: {v}");
        assert_eq!(v["unkeyed_until"], last);
        assert_eq!(v["checked"], last + 1);
        let page = fresh
            .call("GET", "/api/v1/admin/audit?limit=2", &token, None)
            .await
            .json();
        assert_eq!(page["entries"][0]["hash_scheme"], "hmac-sha256");
        assert_eq!(page["entries"][1]["hash_scheme"], "sha256");
    }
}

#[tokio::test]
async fn a_checkpoint_whose_entry_was_removed_fails() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let admin = admin_with_history(&app).await;
        let v = verify(&app, &admin, "").await;
        let (seq, hash) = (
            v["head"]["seq"].as_i64().unwrap(),
            v["head"]["hash"].as_str().unwrap().to_owned(),
        );
        let claim = format!("?head_seq={seq}&head_hash={hash}");
        let v = verify(&app, &admin, &claim).await;
        assert_eq!(v["valid"], true, "{v}");
        assert_eq!(v["claimed_head"]["status"], "held");

        // Removed, then checked by an instance that never saw it (the same
        // token works there): only the checkpoint kept outside the database
        // can tell.
        app.exec(&format!("DELETE FROM audit_log WHERE seq >= {seq}"))
            .await;
        let fresh = TestApp::on(
            app.db.share(),
            crate::harness::config(&[]),
            Default::default(),
        );
        let token = admin;
        assert_eq!(verify(&fresh, &token, "").await["valid"], true);
        let v = verify(&fresh, &token, &claim).await;
        assert_eq!(v["valid"], false, "{backend:?}: {v}");
        assert_eq!(v["claimed_head"]["status"], "missing");
        assert_eq!(v["failures"], serde_json::json!(["claimed_head_missing"]));
        // The same sequence with another hash: rewritten.
        let other = format!("?head_seq={}&head_hash={}", seq - 1, "ab".repeat(32));
        let v = verify(&fresh, &token, &other).await;
        assert_eq!(v["failures"], serde_json::json!(["claimed_head_mismatch"]));
    }
}

#[tokio::test]
async fn head_parameters_come_together_and_well_formed() {
    let app = TestApp::new(&backends()[0]).await;
    let admin = admin_with_history(&app).await;
    let hash = "0".repeat(64);
    for bad in [
        "head_seq=3".to_owned(),
        format!("head_hash={hash}"),
        format!("head_seq=0&head_hash={hash}"),
        format!("head_seq=x&head_hash={hash}"),
        "head_seq=3&head_hash=xyz".to_owned(),
    ] {
        let body = app
            .call(
                "GET",
                &format!("/api/v1/admin/audit/verify?{bad}"),
                &admin,
                None,
            )
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
        assert!(body["errors"].is_array(), "{bad}: {body}");
    }
}

/// Events racing on two instances (each group-committing its own queue)
/// still make one chain: every sequence once, each entry linked to the one
/// before, verified by both instances.
#[tokio::test]
async fn events_racing_on_two_instances_make_one_dense_chain() {
    for backend in backends() {
        let first = TestApp::new(&backend).await;
        let second = TestApp::on(first.db.share(), config(&[]), axum::Router::new());
        let admin = admin_with_history(&first).await;
        let attempts = (0..80).map(|n| {
            let app = if n % 2 == 0 { &first } else { &second };
            async move {
                app.login_raw(&format!("nobody{n}@example.com"), "Wr0ng-Passw0rd!")
                    .await
            }
        });
        let answers = futures_util::future::join_all(attempts).await;
        assert!(
            answers.iter().all(|r| r.status == StatusCode::UNAUTHORIZED),
            "{backend:?}"
        );
        let entries = stored(&first).await;
        let failed = entries.iter().filter(|e| e.event == "login_failed").count();
        assert!(failed >= 80, "{backend:?}: {failed} login_failed entries");
        for (n, pair) in entries.windows(2).enumerate() {
            assert_eq!(pair[1].seq, pair[0].seq + 1, "{backend:?}: gap after {n}");
            assert_eq!(pair[1].prev_hash, pair[0].hash, "{backend:?}: link {n}");
        }
        assert_eq!(entries[0].seq, 1, "{backend:?}");
        for app in [&first, &second] {
            let v = verify(app, &admin, "").await;
            assert_eq!(v["valid"], true, "{backend:?}: {v}");
        }
    }
}
