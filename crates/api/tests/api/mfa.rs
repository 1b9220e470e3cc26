//! Two-factor authentication: setup, enable, two-step login with real TOTP
//! codes, replay refusal, backup codes, disable, and lockout on step two.

use std::time::Duration;

use gatehouse_core::auth::mfa;
use gatehouse_core::clock::Clock;
use http::StatusCode;
use serde_json::{Value, json};

use crate::harness::{PASSWORD, TestApp, backends};

pub(crate) fn code(app: &TestApp, secret: &[u8]) -> String {
    let now = u64::try_from(app.clock.now().unix_timestamp()).unwrap();
    mfa::code_at(secret, now).unwrap()
}

/// Sets up and enables 2FA for a fresh user: (token, secret, backup codes).
pub(crate) async fn enrolled(app: &TestApp, name: &str) -> (String, Vec<u8>, Vec<String>) {
    let (_, token) = app.account(name, "user").await;
    let setup = app
        .call("POST", "/api/v1/auth/2fa/setup", &token, None)
        .await;
    assert_eq!(setup.status, StatusCode::OK);
    assert_eq!(setup.header("cache-control"), Some("no-store"));
    let body = setup.json();
    let secret = totp_rs::Secret::try_from_base32(body["secret"].as_str().unwrap())
        .unwrap()
        .as_bytes()
        .to_vec();
    assert!(
        body["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Gatehouse:")
    );
    assert!(body["qr_svg"].as_str().unwrap().contains("<svg"));
    let res = app
        .call(
            "POST",
            "/api/v1/auth/2fa/enable",
            &token,
            Some(json!({"code": code(app, &secret)})),
        )
        .await;
    assert_eq!(
        res.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&res.body)
    );
    let codes: Vec<String> = res.json()["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    (token, secret, codes)
}

async fn step_one(app: &TestApp, email: &str) -> String {
    let res = app.login_raw(email, PASSWORD).await;
    assert_eq!(res.status, StatusCode::OK);
    let body = res.json();
    assert_eq!(body["mfa_required"], true);
    assert!(
        body.get("access_token").is_none(),
        "no tokens before the second factor"
    );
    assert!(res.refresh_cookie().is_none());
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn step_two(app: &TestApp, mfa_token: &str, code: &str) -> crate::harness::TestResponse {
    app.post_json(
        "/api/v1/auth/login/mfa",
        &json!({"mfa_token": mfa_token, "code": code}).to_string(),
    )
    .await
}

#[tokio::test]
async fn two_step_login_with_totp_and_no_replay() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (token, secret, _) = enrolled(&app, "mina").await;
        assert_eq!(
            app.get_with_token("/api/v1/users/me", &token).await.json()["mfa_enabled"],
            true
        );

        // The enabling code (same time step: the test clock has not moved)
        // cannot be used again.
        let mfa_token = step_one(&app, "mina@example.com").await;
        step_two(&app, &mfa_token, &code(&app, &secret))
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_mfa_code");

        app.clock.advance(Duration::from_secs(30));
        let fresh = code(&app, &secret);
        let ok = step_two(&app, &mfa_token, &fresh).await;
        assert_eq!(
            ok.status,
            StatusCode::OK,
            "{backend:?}: {}",
            String::from_utf8_lossy(&ok.body)
        );
        let access = ok.json()["access_token"].as_str().unwrap().to_owned();
        assert!(ok.refresh_cookie().is_some());
        assert_eq!(
            app.get_with_token("/api/v1/users/me", &access).await.status,
            StatusCode::OK
        );
        // Replay of the same code: refused.
        step_two(&app, &mfa_token, &fresh)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
        // Wrong code, garbage, and an expired mfa token.
        step_two(&app, &mfa_token, "000000")
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
        step_two(&app, "not-a-token", &fresh)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
        app.clock.advance(Duration::from_secs(301));
        step_two(&app, &mfa_token, &code(&app, &secret))
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
        // An mfa token is not an access token.
        app.get_with_token("/api/v1/users/me", &mfa_token)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    }
}

#[tokio::test]
async fn backup_codes_work_once() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, _, codes) = enrolled(&app, "nico").await;
        let mfa_token = step_one(&app, "nico@example.com").await;
        let res = step_two(&app, &mfa_token, &codes[0].to_uppercase()).await;
        assert_eq!(res.status, StatusCode::OK, "{backend:?}");
        step_two(&app, &mfa_token, &codes[0])
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
        assert_eq!(
            step_two(&app, &mfa_token, &codes[1]).await.status,
            StatusCode::OK
        );
        let stored = app
            .count("SELECT COUNT(*) FROM backup_codes WHERE used_at IS NOT NULL")
            .await;
        assert_eq!(stored, 2);
        let plain = app
            .count(&format!(
                "SELECT COUNT(*) FROM backup_codes WHERE code_hash = '{}'",
                codes[2]
            ))
            .await;
        assert_eq!(plain, 0, "backup codes are stored hashed");
        let secret_rows = app
            .count("SELECT COUNT(*) FROM users WHERE totp_secret_enc LIKE 'k1:%'")
            .await;
        assert_eq!(secret_rows, 1, "the TOTP secret is encrypted at rest");
    }
}

#[tokio::test]
async fn disable_needs_password_and_code() {
    let app = TestApp::new(&crate::harness::Backend::Sqlite).await;
    let (token, secret, codes) = enrolled(&app, "omar").await;
    app.clock.advance(Duration::from_secs(30));
    let wrong_pw = json!({"password": "Wr0ng-Passw0rd!", "code": code(&app, &secret)});
    app.call("POST", "/api/v1/auth/2fa/disable", &token, Some(wrong_pw))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_current_password");
    let wrong_code = json!({"password": PASSWORD, "code": "123456"});
    app.call("POST", "/api/v1/auth/2fa/disable", &token, Some(wrong_code))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    let ok = json!({"password": PASSWORD, "code": codes[3]});
    assert_eq!(
        app.call("POST", "/api/v1/auth/2fa/disable", &token, Some(ok))
            .await
            .status,
        StatusCode::OK
    );
    // Back to one-step login.
    let res = app.login_raw("omar@example.com", PASSWORD).await;
    assert!(res.json()["access_token"].is_string());
    assert_eq!(app.count("SELECT COUNT(*) FROM backup_codes").await, 0);
    // Setting up twice while enabled is refused.
    let (token2, ..) = enrolled(&app, "omar2").await;
    app.call("POST", "/api/v1/auth/2fa/setup", &token2, None)
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "mfa_already_enabled");
}

#[tokio::test]
async fn wrong_codes_lock_the_account_too() {
    let app = TestApp::new(&crate::harness::Backend::Sqlite).await;
    let (_, secret, _) = enrolled(&app, "pete").await;
    let mfa_token = step_one(&app, "pete@example.com").await;
    for _ in 0..5 {
        step_two(&app, &mfa_token, "111111")
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    }
    app.clock.advance(Duration::from_secs(30));
    let res = step_two(&app, &mfa_token, &code(&app, &secret)).await;
    res.assert_problem(StatusCode::TOO_MANY_REQUESTS, "account_locked");
    let events: Vec<Value> = app
        .call(
            "GET",
            "/api/v1/admin/audit",
            &app.account("pete_admin", "admin").await.1,
            None,
        )
        .await
        .json()["entries"]
        .as_array()
        .unwrap()
        .clone();
    assert!(events.iter().any(|e| e["event"] == "mfa_failed"));
}
