//! `/api/v1/admin`: statistics, redacted configuration, and the stored,
//! hash-chained audit trail.

use std::time::Duration;

use futures_util::future::join_all;
use gatehouse_core::audit::{AuditDraft, AuditRepo};
use http::StatusCode;
use serde_json::{Value, json};

use crate::harness::{PASSWORD, TEST_JWT_SECRET, TEST_KEY_B64, TestApp, backends, chain_key};

#[tokio::test]
async fn stats_count_users_sessions_logins_and_locks() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, admin) = app.account("stat_admin", "admin").await;
        app.account("stat_mod", "moderator").await;
        app.account("stat_viewer", "viewer").await;
        app.register("stat_user").await;
        app.exec("UPDATE users SET is_active = FALSE WHERE username = 'stat_user'")
            .await;
        for _ in 0..5 {
            app.login_raw("ghost@example.com", "Wr0ng-Passw0rd!").await;
        }
        let stats = app.call("GET", "/api/v1/admin/stats", &admin, None).await;
        assert_eq!(stats.status, StatusCode::OK, "{backend:?}");
        let s = stats.json();
        assert_eq!(
            s["users"],
            json!({"total": 4, "active": 3, "inactive": 1,
                   "by_role": {"admin": 1, "moderator": 1, "user": 1, "viewer": 1}})
        );
        assert_eq!(s["sessions"]["active"], 3);
        assert_eq!(s["logins_24h"], json!({"succeeded": 3, "failed": 5}));
        assert_eq!(s["locked_accounts"], 1);
    }
}

#[tokio::test]
async fn config_is_visible_to_admins_with_every_secret_redacted() {
    let app = TestApp::new(&crate::harness::Backend::Sqlite).await;
    let (_, admin) = app.account("cfg_admin", "admin").await;
    let (_, moderator) = app.account("cfg_mod", "moderator").await;
    let res = app.call("GET", "/api/v1/admin/config", &admin, None).await;
    assert_eq!(res.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&res.body);
    assert!(!text.contains(TEST_JWT_SECRET), "JWT key leaked");
    assert!(!text.contains(TEST_KEY_B64), "data key leaked");
    let body = res.json();
    assert_eq!(body["JWT_SECRET_KEY"], "[redacted]");
    assert_eq!(body["BLIND_INDEX_KEY"], "[redacted]");
    assert_eq!(body["DATA_ENCRYPTION_KEYS"], json!(["k1:[redacted]"]));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    app.call("GET", "/api/v1/admin/config", &moderator, None)
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn security_events_are_stored_with_who_what_where() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (admin_id, admin) = app.account("aud_admin", "admin").await;
        let (user_id, _) = app.account("aud_user", "user").await;
        app.login_raw("aud_user@example.com", "Wr0ng-Passw0rd!")
            .await;

        let page = app
            .call("GET", "/api/v1/admin/audit?limit=100", &admin, None)
            .await
            .json();
        let entries = page["entries"].as_array().unwrap();
        let events: Vec<&str> = entries
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            events,
            [
                "login_failed",
                "login_succeeded",
                "user_registered",
                "login_succeeded",
                "user_registered"
            ],
            "{backend:?}: newest first"
        );
        let failed = &entries[0];
        for key in [
            "id",
            "seq",
            "at",
            "event",
            "outcome",
            "actor_id",
            "target_id",
            "ip",
            "user_agent",
            "request_id",
            "details",
            "prev_hash",
            "hash",
        ] {
            assert!(failed.get(key).is_some(), "{key} missing");
        }
        assert_eq!(failed["outcome"], "failure");
        assert_eq!(failed["target_id"], user_id.as_str());
        assert_eq!(failed["ip"], "127.0.0.1");
        assert_eq!(failed["details"]["account"], "a***@example.com");
        assert!(failed["request_id"].is_string());
        assert_eq!(entries[1]["prev_hash"], entries[2]["hash"]);

        // Filters and the cursor.
        let only = app
            .call(
                "GET",
                "/api/v1/admin/audit?event=user_registered",
                &admin,
                None,
            )
            .await
            .json();
        assert_eq!(only["entries"].as_array().unwrap().len(), 2);
        let mine = app
            .call(
                "GET",
                &format!("/api/v1/admin/audit?user_id={admin_id}"),
                &admin,
                None,
            )
            .await
            .json();
        assert_eq!(mine["entries"].as_array().unwrap().len(), 2);
        let first = app
            .call("GET", "/api/v1/admin/audit?limit=2", &admin, None)
            .await
            .json();
        let cursor = first["next_cursor"].as_str().unwrap().to_owned();
        let second = app
            .call(
                "GET",
                &format!("/api/v1/admin/audit?limit=2&after={cursor}"),
                &admin,
                None,
            )
            .await
            .json();
        assert_eq!(second["entries"][0]["event"], "user_registered");
        let last = app
            .call(
                "GET",
                &format!("/api/v1/admin/audit?limit=10&after={cursor}"),
                &admin,
                None,
            )
            .await
            .json();
        assert_eq!(last["next_cursor"], Value::Null);
        let future = app
            .call(
                "GET",
                "/api/v1/admin/audit?since=2999-01-01T00:00:00Z",
                &admin,
                None,
            )
            .await
            .json();
        assert_eq!(future["entries"], json!([]));
        for bad in ["limit=0", "after=x", "user_id=nope", "since=yesterday"] {
            app.call("GET", &format!("/api/v1/admin/audit?{bad}"), &admin, None)
                .await
                .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
        }

        // Never a password or token in the stored trail.
        let (access, refresh) = app.login("aud_user@example.com", PASSWORD).await;
        let all = app
            .call("GET", "/api/v1/admin/audit?limit=200", &admin, None)
            .await;
        let text = String::from_utf8_lossy(&all.body);
        for secret in [
            PASSWORD,
            "Wr0ng-Passw0rd!",
            access.as_str(),
            refresh.as_str(),
        ] {
            assert!(!text.contains(secret));
        }
    }
}

fn draft(n: usize) -> AuditDraft {
    AuditDraft {
        id: uuid::Uuid::now_v7(),
        at: 1_700_000_000_000 + i64::try_from(n).unwrap(),
        event: "login_failed".into(),
        outcome: "failure".into(),
        actor_id: None,
        target_id: None,
        ip: Some("127.0.0.1".into()),
        user_agent: None,
        request_id: None,
        details: format!(r#"{{"n":{n}}}"#),
    }
}

#[tokio::test]
async fn concurrent_appends_keep_one_linear_chain() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let repo = app.db.db.clone();
        let appends = (0..40).map(|n| {
            let repo = repo.clone();
            tokio::spawn(async move { repo.append(&draft(n), &chain_key()).await.unwrap() })
        });
        let entries: Vec<_> = join_all(appends)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let mut seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=40).collect::<Vec<_>>(), "{backend:?}");
        let (_, admin) = app.account("chain_admin", "admin").await;
        let v = app
            .call("GET", "/api/v1/admin/audit/verify", &admin, None)
            .await
            .json();
        assert_eq!(v["valid"], true, "{backend:?}: {v}");
        assert_eq!(v["checked"], 42);
    }
}

#[tokio::test]
async fn tampering_in_the_database_is_detected_at_the_edited_row() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        for n in 0..5 {
            app.db.db.append(&draft(n), &chain_key()).await.unwrap();
        }
        let (_, admin) = app.account("tamper_admin", "admin").await;
        let verify = || app.call("GET", "/api/v1/admin/audit/verify", &admin, None);
        assert_eq!(verify().await.json()["valid"], true);

        app.exec(r#"UPDATE audit_log SET details = '{"n":99}' WHERE seq = 3"#)
            .await;
        let v = verify().await.json();
        assert_eq!(v["valid"], false, "{backend:?}");
        assert_eq!(v["first_broken"]["seq"], 3);
        assert_eq!(v["checked"], 2);

        // Re-hashing the edited row does not help: the next link breaks.
        app.exec(r#"UPDATE audit_log SET details = '{"n":2}' WHERE seq = 3"#)
            .await;
        assert_eq!(verify().await.json()["valid"], true);
        app.exec("DELETE FROM audit_log WHERE seq = 4").await;
        let v = verify().await.json();
        assert_eq!(v["valid"], false);
        assert_eq!(v["first_broken"]["seq"], 5);
    }
}

#[tokio::test]
async fn pruning_keeps_the_chain_verifiable_from_its_anchor() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, admin) = app.account("prune_admin", "admin").await;
        let before = app.count("SELECT COUNT(*) FROM audit_log").await;
        app.clock.advance(Duration::from_secs(10 * 86_400));
        app.login("prune_admin@example.com", PASSWORD).await;
        let pruned = app.state.operations().prune_audit(5).await.unwrap();
        assert_eq!(i64::try_from(pruned).unwrap(), before, "{backend:?}");
        let (token, _) = app.login("prune_admin@example.com", PASSWORD).await;
        let _ = admin;
        let v = app
            .call("GET", "/api/v1/admin/audit/verify", &token, None)
            .await
            .json();
        assert_eq!(v["valid"], true, "{v}");
        assert_eq!(v["anchor"]["seq"], before);
        assert_eq!(v["checked"], 2);
    }
}

#[tokio::test]
async fn rotate_keys_reencrypts_everything_and_can_resume() {
    const NEW_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    for backend in backends() {
        let old = TestApp::new(&backend).await;
        for n in 0..7 {
            let body = json!({
                "username": format!("rot_{n}"),
                "email": format!("rot_{n}@example.com"),
                "password": PASSWORD,
                "full_name": format!("Rotated Person {n}")
            });
            assert_eq!(
                old.post_json("/api/v1/auth/register", &body.to_string())
                    .await
                    .status,
                StatusCode::CREATED
            );
        }
        let (_, totp_secret, _) = crate::mfa::enrolled(&old, "rot_mfa").await;
        let both = format!("k2:{NEW_KEY},k1:{TEST_KEY_B64}");
        let rotated = TestApp::on(
            old.db.share(),
            crate::harness::config(&[("DATA_ENCRYPTION_KEYS", &both)]),
            Default::default(),
        );
        // An interrupted run (one batch of 3) leaves a mix; running again
        // finishes the job without touching rotated rows.
        let first = rotated
            .state
            .operations()
            .rotate_keys(3, |_| {})
            .await
            .unwrap();
        assert_eq!(first.reencrypted, 8, "{backend:?}");
        assert_eq!(
            old.count("SELECT COUNT(*) FROM users WHERE totp_secret_enc LIKE 'k2:%'")
                .await,
            1
        );
        assert_eq!(
            old.count("SELECT COUNT(*) FROM users WHERE email_enc LIKE 'k1:%'")
                .await,
            0
        );
        assert_eq!(
            old.count("SELECT COUNT(*) FROM users WHERE full_name_enc LIKE 'k2:%'")
                .await,
            7
        );
        let again = rotated
            .state
            .operations()
            .rotate_keys(3, |_| {})
            .await
            .unwrap();
        assert_eq!((again.scanned, again.reencrypted), (8, 0));

        // The old key can now go.
        let only_new = TestApp::on(
            old.db.share(),
            crate::harness::config(&[("DATA_ENCRYPTION_KEYS", &format!("k2:{NEW_KEY}"))]),
            Default::default(),
        );
        let (token, _) = only_new.login("rot_3@example.com", PASSWORD).await;
        let me = only_new
            .get_with_token("/api/v1/users/me", &token)
            .await
            .json();
        assert_eq!(me["full_name"], "Rotated Person 3");
        // The rotated TOTP secret still produces the codes the user's app shows.
        let step_one = only_new
            .login_raw("rot_mfa@example.com", PASSWORD)
            .await
            .json();
        only_new.clock.advance(Duration::from_secs(60));
        let body = json!({
            "mfa_token": step_one["mfa_token"],
            "code": crate::mfa::code(&only_new, &totp_secret),
        });
        let res = only_new
            .post_json("/api/v1/auth/login/mfa", &body.to_string())
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend:?}");
    }
}
