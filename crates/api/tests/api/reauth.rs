//! Step-up re-authentication: access tokens carry the login's `auth_time`
//! (kept by refresh), sensitive changes refuse a stale one with 401
//! `reauthentication_required`, and `POST /auth/reauth` renews it for the
//! same login with a password or a second-factor code.

use std::time::Duration;

use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::clock::Clock;
use http::{Request, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::harness::{Backend, PASSWORD, TEST_JWT_SECRET, TestApp, TestResponse, backends};
use crate::mfa::{code, enrolled};

/// Past `REAUTH_MAX_AGE_MINUTES` (10), within the access token's 15.
const STALE: Duration = Duration::from_secs(11 * 60);
const REAUTH: &str = "/api/v1/auth/reauth";

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn now_secs(app: &TestApp) -> i64 {
    app.clock.now().unix_timestamp()
}

async fn reauth(app: &TestApp, token: &str, body: Value) -> TestResponse {
    app.call("POST", REAUTH, token, Some(body)).await
}

/// Re-authenticates with the password; returns the new access token.
async fn reauth_ok(app: &TestApp, token: &str, body: Value) -> String {
    let res = reauth(app, token, body).await;
    assert_eq!(
        res.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&res.body)
    );
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let body = res.json();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body.get("refresh_token").is_none());
    body["access_token"].as_str().unwrap().to_owned()
}

async fn refresh(app: &TestApp, refresh_token: &str) -> String {
    let res = app
        .send(
            Request::post("/api/v1/auth/refresh")
                .header("cookie", format!("refresh_token={refresh_token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    res.json()["access_token"].as_str().unwrap().to_owned()
}

async fn audit_count(app: &TestApp, event: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) FROM audit_log WHERE event = '{event}'"
    ))
    .await
}

async fn create_key(app: &TestApp, token: &str) -> TestResponse {
    app.call(
        "POST",
        "/api/v1/api-keys",
        token,
        Some(json!({"name": "ci"})),
    )
    .await
}

/// `token` with its `auth_time` removed, re-signed: a token issued before
/// the claim existed.
fn without_auth_time(token: &str) -> String {
    let mut parts = token.split('.');
    let (header, _) = (parts.next().unwrap(), parts.next().unwrap());
    let mut payload = claims(token);
    payload.as_object_mut().unwrap().remove("auth_time");
    let message = format!(
        "{header}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap())
    );
    let key = EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes());
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap();
    format!("{message}.{signature}")
}

#[tokio::test]
async fn login_sets_auth_time_and_refresh_keeps_it() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        app.register("ada").await;
        let (access, refresh_token) = app.login("ada@example.com", PASSWORD).await;
        let login = claims(&access);
        assert_eq!(login["auth_time"], now_secs(&app), "{backend:?}");

        // A refresh proves no factor: the login's auth_time carries on.
        app.clock.advance(Duration::from_secs(5 * 60));
        let refreshed = claims(&refresh(&app, &refresh_token).await);
        assert_eq!(refreshed["auth_time"], login["auth_time"]);
        assert_eq!(refreshed["sid"], login["sid"]);
        assert!(refreshed["iat"].as_i64() > login["iat"].as_i64());

        // A token without auth_time (issued before the claim) is stale.
        let old = without_auth_time(&access);
        assert_eq!(
            app.get_with_token("/api/v1/users/me", &old).await.status,
            StatusCode::OK
        );
        create_key(&app, &old)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "reauthentication_required");
    }
}

#[tokio::test]
async fn sensitive_changes_refuse_a_stale_login_and_change_nothing() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;

        // 2FA enable: set up while fresh, enabled once stale.
        let (_, lea) = app.account("lea", "user").await;
        let setup = app.call("POST", "/api/v1/auth/2fa/setup", &lea, None).await;
        let secret = totp_rs::Secret::try_from_base32(setup.json()["secret"].as_str().unwrap())
            .unwrap()
            .as_bytes()
            .to_vec();
        // 2FA disable: enrolled while fresh.
        let (max, max_secret, _) = enrolled(&app, "max").await;
        // API key rotate: a key made while fresh.
        let (_, kim) = app.account("kim", "user").await;
        let key = create_key(&app, &kim).await.json();
        let key_id = key["id"].as_str().unwrap().to_owned();
        let (_, eve) = app.account("eve", "user").await;

        app.clock.advance(STALE);
        let res = app
            .call(
                "POST",
                "/api/v1/auth/2fa/enable",
                &lea,
                Some(json!({"code": code(&app, &secret)})),
            )
            .await;
        let body = res.assert_problem(StatusCode::UNAUTHORIZED, "reauthentication_required");
        assert!(body["detail"].as_str().unwrap().contains("/auth/reauth"));
        assert_eq!(
            res.header("www-authenticate"),
            Some(r#"Bearer error="insufficient_user_authentication""#)
        );
        let me = app.get_with_token("/api/v1/users/me", &lea).await.json();
        assert_eq!(me["mfa_enabled"], false, "{backend:?}");

        app.call(
            "POST",
            "/api/v1/auth/2fa/disable",
            &max,
            Some(json!({"password": PASSWORD, "code": code(&app, &max_secret)})),
        )
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "reauthentication_required");
        let me = app.get_with_token("/api/v1/users/me", &max).await.json();
        assert_eq!(me["mfa_enabled"], true);

        create_key(&app, &eve)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "reauthentication_required");
        let listed = app.call("GET", "/api/v1/api-keys", &eve, None).await;
        assert_eq!(listed.json()["keys"], json!([]));

        app.call(
            "POST",
            &format!("/api/v1/api-keys/{key_id}/rotate"),
            &kim,
            None,
        )
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "reauthentication_required");
        let listed = app.call("GET", "/api/v1/api-keys", &kim, None).await.json();
        assert_eq!(listed["keys"][0]["prefix"], key["prefix"]);

        app.call(
            "PUT",
            "/api/v1/users/me",
            &eve,
            Some(json!({"email": "eve.new@example.com"})),
        )
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "reauthentication_required");
        let pending = app
            .count("SELECT COUNT(*) FROM mail_tokens WHERE purpose = 'email_change'")
            .await;
        assert_eq!(pending, 0);

        // The rest of the profile needs no recent factor, nor does an
        // unchanged address.
        let res = app
            .call(
                "PUT",
                "/api/v1/users/me",
                &eve,
                Some(json!({"full_name": "Eve Renamed", "email": "eve@example.com"})),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend:?}");
        assert_eq!(res.json()["full_name"], "Eve Renamed");
    }
}

#[tokio::test]
async fn reauth_with_the_password_renews_the_same_login() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        app.register("bob").await;
        let (stale, refresh_token) = app.login("bob@example.com", PASSWORD).await;
        app.clock.advance(STALE);
        create_key(&app, &stale)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "reauthentication_required");

        let fresh = reauth_ok(&app, &stale, json!({"password": PASSWORD})).await;
        let (old, new) = (claims(&stale), claims(&fresh));
        assert_eq!(new["sid"], old["sid"], "same login");
        assert_eq!(new["auth_time"], now_secs(&app));
        assert_ne!(new["jti"], old["jti"]);
        assert_eq!(create_key(&app, &fresh).await.status, StatusCode::CREATED);
        // The earlier token keeps its own, older auth_time.
        create_key(&app, &stale)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "reauthentication_required");

        // The login's stored auth_time moved: a refresh carries the new one.
        let refreshed = claims(&refresh(&app, &refresh_token).await);
        assert_eq!(refreshed["auth_time"], new["auth_time"]);
        assert_eq!(audit_count(&app, "reauthenticated").await, 1, "{backend:?}");

        // Wrong password: 401, audited.
        reauth(&app, &fresh, json!({"password": "Wr0ng-Passw0rd!"}))
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        assert_eq!(audit_count(&app, "reauthentication_failed").await, 1);
    }
}

#[tokio::test]
async fn wrong_secrets_count_toward_the_lockout() {
    for backend in backends() {
        let app = TestApp::with(&backend, &[("MAX_LOGIN_ATTEMPTS", "3")], Default::default()).await;
        let (_, token) = app.account("cyd", "user").await;
        for _ in 0..2 {
            reauth(&app, &token, json!({"password": "Wr0ng-Passw0rd!"}))
                .await
                .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        }
        // The right password passes but does not clear the count...
        reauth_ok(&app, &token, json!({"password": PASSWORD})).await;
        reauth(&app, &token, json!({"password": "Wr0ng-Passw0rd!"}))
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        // ...so the third failure locked the account: reauth and login alike.
        let res = reauth(&app, &token, json!({"password": PASSWORD})).await;
        res.assert_problem(StatusCode::TOO_MANY_REQUESTS, "account_locked");
        assert!(res.header("retry-after").is_some());
        app.login_raw("cyd@example.com", PASSWORD)
            .await
            .assert_problem(StatusCode::TOO_MANY_REQUESTS, "account_locked");
        assert_eq!(audit_count(&app, "account_locked").await, 1, "{backend:?}");
        assert_eq!(audit_count(&app, "reauthentication_failed").await, 4);
    }
}

#[tokio::test]
async fn reauth_with_a_second_factor_code() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (token, secret, backup) = enrolled(&app, "dot").await;
        app.clock.advance(STALE);
        let fresh = reauth_ok(&app, &token, json!({"code": code(&app, &secret)})).await;
        assert_eq!(claims(&fresh)["sid"], claims(&token)["sid"]);
        // A code is accepted once.
        reauth(&app, &fresh, json!({"code": code(&app, &secret)}))
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        // A backup code serves too.
        app.clock.advance(STALE);
        let fresh = reauth_ok(&app, &fresh, json!({"code": backup[0]})).await;
        app.clock.advance(Duration::from_secs(30));
        let res = app
            .call(
                "POST",
                "/api/v1/auth/2fa/disable",
                &fresh,
                Some(json!({"password": PASSWORD, "code": code(&app, &secret)})),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend:?}");

        // With 2FA off, no code proves anything.
        app.clock.advance(Duration::from_secs(30));
        reauth(&app, &fresh, json!({"code": code(&app, &secret)}))
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
}

#[tokio::test]
async fn reauth_refuses_api_keys_anonymous_callers_and_bad_bodies() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let (_, token) = app.account("fay", "user").await;
    let key = create_key(&app, &token).await.json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .send(
            Request::post(REAUTH)
                .header("x-api-key", key)
                .header("content-type", "application/json")
                .body(Body::from(json!({"password": PASSWORD}).to_string()))
                .unwrap(),
        )
        .await;
    res.assert_problem(StatusCode::FORBIDDEN, "api_key_not_allowed");

    app.post_json(REAUTH, &json!({"password": PASSWORD}).to_string())
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "not_authenticated");

    for body in [
        json!({}),
        json!({"password": PASSWORD, "code": "123456"}),
        json!({"password": ""}),
        json!({"code": ""}),
        json!({"password": null}),
        json!({"password": PASSWORD, "extra": 1}),
        json!({"passkey": {}}),
    ] {
        let res = reauth(&app, &token, body.clone()).await;
        let problem = res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
        assert!(!problem.to_string().contains(PASSWORD), "{body}");
    }
    assert_eq!(audit_count(&app, "reauthentication_failed").await, 0);
}
