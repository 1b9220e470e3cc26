//! API keys: shown once, stored hashed, scoped, rotated, revoked, expiring,
//! and authenticating requests through `X-API-Key`.

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::json;

use crate::harness::{Backend, TestApp, TestResponse, backends};

async fn with_key(app: &TestApp, method: &str, path: &str, key: &str) -> TestResponse {
    app.send(
        Request::builder()
            .method(method)
            .uri(path)
            .header("x-api-key", key)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn keys_authenticate_within_their_scopes() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("kim", "moderator").await;
        let res = app
            .call(
                "POST",
                "/api/v1/api-keys",
                &token,
                Some(json!({"name": "ci", "scopes": ["self:read", "users:read"]})),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::CREATED,
            "{backend:?}: {}",
            String::from_utf8_lossy(&res.body)
        );
        assert_eq!(res.header("cache-control"), Some("no-store"));
        let body = res.json();
        let key = body["key"].as_str().unwrap().to_owned();
        assert!(key.starts_with(body["prefix"].as_str().unwrap()));
        assert_eq!(body["scopes"], json!(["self:read", "users:read"]));
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) FROM api_keys WHERE key_hash = '{key}'"
            ))
            .await,
            0,
            "stored hashed"
        );

        let me = with_key(&app, "GET", "/api/v1/users/me", &key).await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(me.json()["username"], "kim");
        assert_eq!(
            with_key(&app, "GET", "/api/v1/users", &key).await.status,
            StatusCode::OK
        );
        // Outside the scopes (though the role has it): refused.
        let body = json!({"full_name": "X"}).to_string();
        let res = app
            .send(
                Request::put("/api/v1/users/me")
                    .header("x-api-key", &key)
                    .header("content-type", "application/json")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        res.assert_problem(StatusCode::FORBIDDEN, "forbidden");
        // Keys cannot manage keys.
        with_key(&app, "GET", "/api/v1/api-keys", &key)
            .await
            .assert_problem(StatusCode::FORBIDDEN, "forbidden");

        // Listed without the key, with last_used_at.
        let list = app.call("GET", "/api/v1/api-keys", &token, None).await;
        let text = String::from_utf8_lossy(&list.body).into_owned();
        assert!(!text.contains(&key));
        assert!(list.json()["keys"][0]["last_used_at"].is_string());

        for bad in ["gh_nothing", "gh_AAAAAAAA_wrongwrongwrong", "", "garbage"] {
            with_key(&app, "GET", "/api/v1/users/me", bad)
                .await
                .assert_problem(StatusCode::UNAUTHORIZED, "invalid_api_key");
        }
        // A tampered secret with a valid prefix fails alike.
        let mut tampered = key.clone();
        tampered.pop();
        tampered.push(if key.ends_with('A') { 'B' } else { 'A' });
        with_key(&app, "GET", "/api/v1/users/me", &tampered)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_api_key");
    }
}

#[tokio::test]
async fn scopes_must_be_the_owners() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let (_, viewer) = app.account("val", "viewer").await;
    app.call(
        "POST",
        "/api/v1/api-keys",
        &viewer,
        Some(json!({"name": "k"})),
    )
    .await
    .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let (_, token) = app.account("vic", "user").await;
    for scopes in [json!(["users:read"]), json!(["root:all"])] {
        app.call(
            "POST",
            "/api/v1/api-keys",
            &token,
            Some(json!({"name": "k", "scopes": scopes})),
        )
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
    }
    let res = app
        .call(
            "POST",
            "/api/v1/api-keys",
            &token,
            Some(json!({"name": "all"})),
        )
        .await;
    assert_eq!(
        res.json()["scopes"],
        json!(["self:read", "self:write", "content:read", "content:write"])
    );
}

#[tokio::test]
async fn rotation_revocation_and_expiry() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("rex", "user").await;
        let created = app
            .call(
                "POST",
                "/api/v1/api-keys",
                &token,
                Some(json!({"name": "short", "expires_in_days": 1})),
            )
            .await
            .json();
        let id = created["id"].as_str().unwrap().to_owned();
        let old = created["key"].as_str().unwrap().to_owned();
        let rotated = app
            .call(
                "POST",
                &format!("/api/v1/api-keys/{id}/rotate"),
                &token,
                None,
            )
            .await;
        assert_eq!(rotated.status, StatusCode::OK, "{backend:?}");
        let new = rotated.json()["key"].as_str().unwrap().to_owned();
        assert_ne!(old, new);
        with_key(&app, "GET", "/api/v1/users/me", &old)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_api_key");
        assert_eq!(
            with_key(&app, "GET", "/api/v1/users/me", &new).await.status,
            StatusCode::OK
        );

        // Expiry follows the clock.
        app.clock.advance(std::time::Duration::from_secs(86_401));
        with_key(&app, "GET", "/api/v1/users/me", &new)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_api_key");

        // The access token expired with the day; sign in again.
        let (token, _) = app.login("rex@example.com", crate::harness::PASSWORD).await;
        let second = app
            .call(
                "POST",
                "/api/v1/api-keys",
                &token,
                Some(json!({"name": "long"})),
            )
            .await
            .json();
        let key2 = second["key"].as_str().unwrap().to_owned();
        let id2 = second["id"].as_str().unwrap().to_owned();
        // Another user cannot touch it.
        let (_, other) = app.account("sly", "user").await;
        app.call("DELETE", &format!("/api/v1/api-keys/{id2}"), &other, None)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not_found");
        assert_eq!(
            app.call("DELETE", &format!("/api/v1/api-keys/{id2}"), &token, None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        with_key(&app, "GET", "/api/v1/users/me", &key2)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_api_key");
        // A deactivated owner's keys stop too.
        let third = app
            .call(
                "POST",
                "/api/v1/api-keys",
                &token,
                Some(json!({"name": "third"})),
            )
            .await
            .json();
        let key3 = third["key"].as_str().unwrap().to_owned();
        let (_, admin) = app.account("rex_admin", "admin").await;
        let me = app.get_with_token("/api/v1/users/me", &token).await.json();
        app.call(
            "PATCH",
            &format!("/api/v1/users/{}", me["id"].as_str().unwrap()),
            &admin,
            Some(json!({"is_active": false})),
        )
        .await;
        with_key(&app, "GET", "/api/v1/users/me", &key3)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_api_key");
    }
}

#[tokio::test]
async fn keys_have_their_own_rate_limit() {
    let app = TestApp::with(
        &Backend::Sqlite,
        &[
            ("RATE_LIMIT_ENABLED", "true"),
            ("RATE_LIMIT_API_KEY_PER_MINUTE", "3"),
            ("RATE_LIMIT_PER_MINUTE", "1000"),
        ],
        Default::default(),
    )
    .await;
    let (_, token) = app.account("rita", "user").await;
    let key = app
        .call(
            "POST",
            "/api/v1/api-keys",
            &token,
            Some(json!({"name": "busy"})),
        )
        .await
        .json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        assert_eq!(
            with_key(&app, "GET", "/api/v1/users/me", &key).await.status,
            StatusCode::OK
        );
    }
    let res = with_key(&app, "GET", "/api/v1/users/me", &key).await;
    res.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(res.header("retry-after").is_some());
    // Uses are rolled up: one api_key_used entry per key per minute.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE event = 'api_key_used'")
            .await,
        1
    );
}
