//! Permissions are checked in the domain itself: each use case, called
//! directly (as a page, a job or a CLI would, without the HTTP guard),
//! refuses a principal that lacks the permission, and changes nothing.

use futures_util::stream;
use gatehouse_core::CoreError;
use gatehouse_core::audit::{AuditQuery, RequestMeta};
use gatehouse_core::rbac::Role;
use gatehouse_core::service::{
    AdminPatch, ListQuery, NewAccount, NewApiKey, PageRequest, Principal, ProfileUpdate,
    Registration,
};
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use crate::harness::{PASSWORD, TestApp, backends};

fn meta() -> RequestMeta {
    RequestMeta::default()
}

fn refused<T: std::fmt::Debug>(result: Result<T, CoreError>, what: &str) {
    match result {
        Err(CoreError::Forbidden) => {}
        other => panic!("{what}: expected Forbidden, got {other:?}"),
    }
}

fn refused_to_key<T: std::fmt::Debug>(result: Result<T, CoreError>, what: &str) {
    match result {
        Err(CoreError::ApiKeyNotAllowed) => {}
        other => panic!("{what}: expected ApiKeyNotAllowed, got {other:?}"),
    }
}

/// The principal of a fresh account with `role`, as its token authenticates.
async fn principal(app: &TestApp, username: &str, role: &str) -> Principal {
    let (_, token) = app.account(username, role).await;
    app.state.sign_in().authenticate(&token).await.unwrap()
}

/// The principal of an API key with `scopes`, owned by a fresh `role` account.
async fn key_principal(app: &TestApp, username: &str, role: &str, scopes: &[&str]) -> Principal {
    let (_, token) = app.account(username, role).await;
    let created = app
        .call(
            "POST",
            "/api/v1/api-keys",
            &token,
            Some(json!({"name": "k", "scopes": scopes})),
        )
        .await
        .json();
    let key = created["key"].as_str().unwrap();
    app.state
        .api_keys()
        .authenticate(key, &meta())
        .await
        .unwrap()
}

fn password(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

#[tokio::test]
async fn user_administration_refuses_without_users_permissions() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let viewer = principal(&app, "viewer1", "viewer").await;
        let (target, _) = app.account("target1", "user").await;
        let target: Uuid = target.parse().unwrap();
        let admin = app.state.user_admin();
        refused(admin.get(&viewer, target).await, "get");
        let page = PageRequest::Numbered {
            page: 1,
            per_page: 20,
        };
        refused(
            admin.list(&viewer, &ListQuery::default(), page).await,
            "list",
        );
        refused(
            admin
                .export(&viewer, &ListQuery::default(), "csv", &meta())
                .await
                .map(drop),
            "export",
        );
        let account = NewAccount {
            registration: Registration {
                username: "made1".into(),
                email: "made1@example.com".into(),
                password: password(PASSWORD),
                full_name: None,
            },
            role: Role::User,
        };
        refused(admin.create(&viewer, account, &meta()).await, "create");
        let patch = AdminPatch {
            role: Some(Role::Admin),
            ..AdminPatch::default()
        };
        refused(admin.patch(&viewer, target, patch, &meta()).await, "patch");
        refused(admin.delete(&viewer, target, &meta()).await, "delete");
        // Nothing changed: the target is still a user, nobody was created.
        let role = app
            .text("SELECT role FROM users WHERE username = 'target1'")
            .await;
        assert_eq!(role, "user", "{backend:?}");
        let made = app
            .count("SELECT COUNT(*) FROM users WHERE username = 'made1'")
            .await;
        assert_eq!(made, 0, "{backend:?}");
    }
}

#[tokio::test]
async fn operations_refuse_without_admin_read() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        // A moderator manages users but does not read the audit trail.
        let moderator = principal(&app, "mod1", "moderator").await;
        let ops = app.state.operations();
        refused(ops.stats(&moderator).await, "stats");
        let query = AuditQuery {
            event: None,
            user_id: None,
            since: None,
            before_seq: None,
            limit: 10,
        };
        refused(ops.audit_page(&moderator, &query).await, "audit page");
        refused(ops.verify_audit(&moderator, None).await, "verify");
    }
}

#[tokio::test]
async fn the_own_account_refuses_without_self_permissions() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let viewer = principal(&app, "viewer2", "viewer").await;
        let accounts = app.state.accounts();
        let update = ProfileUpdate {
            full_name: Some(Some("Changed".into())),
            email: None,
        };
        refused(accounts.update_me(&viewer, update, &meta()).await, "update");
        refused(
            accounts
                .change_password(
                    &viewer,
                    &password(PASSWORD),
                    &password("An0ther-Passw0rd!"),
                    &meta(),
                )
                .await,
            "change password",
        );
        let sid = viewer.session_id.unwrap();
        refused(
            accounts.revoke_my_session(&viewer, sid, &meta()).await,
            "revoke session",
        );
        // A key scoped to content only cannot even list the logins.
        let key = key_principal(&app, "keyed2", "user", &["content:read"]).await;
        refused(accounts.my_sessions(&key).await, "sessions");
        // The viewer's login and name are untouched.
        let live = app
            .count("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
            .await;
        assert_eq!(
            live, 2,
            "{backend:?}: the viewer's and the key owner's logins"
        );
        let name = app
            .count(
                "SELECT COUNT(*) FROM users WHERE username = 'viewer2' AND full_name_enc IS NULL",
            )
            .await;
        assert_eq!(name, 1, "{backend:?}");
    }
}

#[tokio::test]
async fn api_keys_need_self_write_and_a_login() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let viewer = principal(&app, "viewer3", "viewer").await;
        let keys = app.state.api_keys();
        let input = || NewApiKey {
            name: "k".into(),
            scopes: None,
            expires_in_days: None,
        };
        refused(keys.create(&viewer, input(), &meta()).await, "create");
        refused(keys.list(&viewer).await, "list");
        refused(
            keys.rotate(&viewer, Uuid::now_v7(), &meta()).await,
            "rotate",
        );
        refused(
            keys.revoke(&viewer, Uuid::now_v7(), &meta()).await,
            "revoke",
        );
        // A key, whatever its scopes, never manages keys.
        let key = key_principal(&app, "keyed3", "user", &["self:write"]).await;
        refused_to_key(keys.create(&key, input(), &meta()).await, "create by key");
        let count = app.count("SELECT COUNT(*) FROM api_keys").await;
        assert_eq!(count, 1, "{backend:?}: only the key made over HTTP");
    }
}

#[tokio::test]
async fn two_factor_needs_self_write_and_a_login() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let viewer = principal(&app, "viewer4", "viewer").await;
        let tf = app.state.two_factor();
        refused(tf.setup(&viewer).await, "setup");
        refused(tf.enable(&viewer, "123456", &meta()).await, "enable");
        refused(
            tf.disable(&viewer, &password(PASSWORD), "123456", &meta())
                .await,
            "disable",
        );
        let key = key_principal(&app, "keyed4", "user", &["self:write"]).await;
        refused_to_key(tf.setup(&key).await, "setup by key");
        assert!(tf.secret_of(key.id()).await.unwrap().is_none());
        assert!(tf.secret_of(viewer.id()).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn files_refuse_without_content_permissions() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let viewer = principal(&app, "viewer5", "viewer").await;
        let files = app.state.files();
        let body = Box::pin(stream::iter(vec![Ok(bytes::Bytes::from_static(
            b"%PDF-1.4\n",
        ))]));
        refused(
            files.upload(&viewer, Some("a.pdf"), body, &meta()).await,
            "upload",
        );
        let key = key_principal(&app, "keyed5", "user", &["self:read"]).await;
        refused(
            files.list(&key, None, 20).await,
            "list by a key without content:read",
        );
        assert_eq!(app.count("SELECT COUNT(*) FROM files").await, 0);
    }
}
