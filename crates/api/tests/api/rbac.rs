//! The whole role × route matrix: every role against every protected route,
//! expecting exactly 2xx where the contract grants the permission and 403
//! where it does not.

use http::StatusCode;
use serde_json::json;

use crate::harness::{PASSWORD, TestApp, backends};

/// The contract's table, written out independently of the code under test.
fn grants(role: &str, permission: &str) -> bool {
    let table: &[(&str, &str)] = &[
        (
            "admin",
            "users:read users:write users:delete self:read self:write content:read content:write \
             content:delete admin:read admin:write system:manage",
        ),
        (
            "moderator",
            "users:read users:write self:read self:write content:read content:write content:delete",
        ),
        ("user", "self:read self:write content:read content:write"),
        ("viewer", "self:read content:read"),
    ];
    table
        .iter()
        .find(|(r, _)| *r == role)
        .is_some_and(|(_, perms)| perms.split_whitespace().any(|p| p == permission))
}

#[derive(Clone, Copy)]
enum Route {
    Me,
    UpdateMe,
    ChangePassword,
    Sessions,
    RevokeSession,
    List,
    Get,
    Create,
    Patch,
    Delete,
    Export,
    AdminStats,
    AdminConfig,
    AdminAudit,
    AuditVerify,
    ListKeys,
    MfaSetup,
}

const ROUTES: [(Route, &str); 17] = [
    (Route::Me, "self:read"),
    (Route::UpdateMe, "self:write"),
    (Route::ChangePassword, "self:write"),
    (Route::Sessions, "self:read"),
    (Route::RevokeSession, "self:write"),
    (Route::List, "users:read"),
    (Route::Get, "users:read"),
    (Route::Create, "users:write"),
    (Route::Patch, "users:write"),
    (Route::Delete, "users:delete"),
    (Route::Export, "users:read"),
    (Route::AdminStats, "admin:read"),
    (Route::AdminConfig, "admin:read"),
    (Route::AdminAudit, "admin:read"),
    (Route::AuditVerify, "admin:read"),
    (Route::ListKeys, "self:write"),
    (Route::MfaSetup, "self:write"),
];

#[tokio::test]
async fn every_role_against_every_route() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let mut n = 0;
        for role in ["admin", "moderator", "user", "viewer"] {
            for (route, permission) in ROUTES {
                n += 1;
                let (_, token) = app.account(&format!("{role}_{n}"), role).await;
                let target = app.register(&format!("target_{n}")).await;
                let target = target["id"].as_str().unwrap();
                let res = match route {
                    Route::Me => app.call("GET", "/api/v1/users/me", &token, None).await,
                    Route::UpdateMe => {
                        app.call(
                            "PUT",
                            "/api/v1/users/me",
                            &token,
                            Some(json!({"full_name": "Renamed"})),
                        )
                        .await
                    }
                    Route::ChangePassword => {
                        let body = json!({"current_password": PASSWORD, "new_password": "An0ther-Passw0rd!"});
                        app.call(
                            "POST",
                            "/api/v1/users/me/change-password",
                            &token,
                            Some(body),
                        )
                        .await
                    }
                    Route::Sessions => {
                        app.call("GET", "/api/v1/users/me/sessions", &token, None)
                            .await
                    }
                    Route::RevokeSession => {
                        let list = app
                            .call("GET", "/api/v1/users/me/sessions", &token, None)
                            .await
                            .json();
                        let sid = list["sessions"][0]["id"].as_str().unwrap().to_owned();
                        app.call(
                            "DELETE",
                            &format!("/api/v1/users/me/sessions/{sid}"),
                            &token,
                            None,
                        )
                        .await
                    }
                    Route::List => app.call("GET", "/api/v1/users", &token, None).await,
                    Route::Get => {
                        app.call("GET", &format!("/api/v1/users/{target}"), &token, None)
                            .await
                    }
                    Route::Create => {
                        let body = json!({
                            "username": format!("created_{n}"),
                            "email": format!("created_{n}@example.com"),
                            "password": PASSWORD,
                            "role": "user"
                        });
                        app.call("POST", "/api/v1/users", &token, Some(body)).await
                    }
                    Route::Patch => {
                        app.call(
                            "PATCH",
                            &format!("/api/v1/users/{target}"),
                            &token,
                            Some(json!({"full_name": "Patched"})),
                        )
                        .await
                    }
                    Route::Export => app.call("GET", "/api/v1/users/export", &token, None).await,
                    Route::AdminStats => app.call("GET", "/api/v1/admin/stats", &token, None).await,
                    Route::AdminConfig => {
                        app.call("GET", "/api/v1/admin/config", &token, None).await
                    }
                    Route::AdminAudit => app.call("GET", "/api/v1/admin/audit", &token, None).await,
                    Route::AuditVerify => {
                        app.call("GET", "/api/v1/admin/audit/verify", &token, None)
                            .await
                    }
                    Route::ListKeys => app.call("GET", "/api/v1/api-keys", &token, None).await,
                    Route::MfaSetup => {
                        app.call("POST", "/api/v1/auth/2fa/setup", &token, None)
                            .await
                    }
                    Route::Delete => {
                        app.call("DELETE", &format!("/api/v1/users/{target}"), &token, None)
                            .await
                    }
                };
                if grants(role, permission) {
                    assert!(
                        res.status.is_success(),
                        "{backend:?} {role} {permission}: {} {}",
                        res.status,
                        String::from_utf8_lossy(&res.body)
                    );
                } else {
                    res.assert_problem(StatusCode::FORBIDDEN, "forbidden");
                }
            }
        }
    }
}

#[tokio::test]
async fn refusals_are_security_events() {
    let app = TestApp::new(&crate::harness::Backend::Sqlite).await;
    let (viewer_id, token) = app.account("peeker", "viewer").await;
    app.call("GET", "/api/v1/users", &token, None)
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let denied = crate::harness::logs::lines()
        .into_iter()
        .any(|l| l["event"] == "permission_denied" && l["actor_id"] == viewer_id.as_str());
    assert!(denied, "permission_denied was not logged");
}
