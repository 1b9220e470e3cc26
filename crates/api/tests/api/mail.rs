//! Mail flows through the API: verification, password reset and change of
//! address, the notices, and the rules of the mailed tokens and codes. The
//! outbox is delivered on demand to a mailer that keeps what it is given.

mod delivery;
mod tokens;

use gatehouse_core::clock::Clock;
use gatehouse_core::mail::{Message, OneTime};
use http::StatusCode;
use serde_json::{Value, json};

use crate::harness::mail::token_of;
use crate::harness::{PASSWORD, TestApp, TestResponse, backends};

pub const NEW_PASSWORD: &str = "N3w-Passw0rd!x";

pub async fn post(app: &TestApp, path: &str, body: Value) -> TestResponse {
    app.post_json(path, &body.to_string()).await
}

pub async fn confirm_email(app: &TestApp, body: Value) -> TestResponse {
    post(app, "/api/v1/auth/verify-email/confirm", body).await
}

pub async fn reset(app: &TestApp, body: Value) -> TestResponse {
    post(app, "/api/v1/auth/password-reset/confirm", body).await
}

pub async fn request_reset(app: &TestApp, email: &str) -> TestResponse {
    let res = post(
        app,
        "/api/v1/auth/password-reset/request",
        json!({"email": email}),
    )
    .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{:?}", res.body);
    res
}

/// Registers `name` and takes its verification mail's secret.
pub async fn registered(app: &TestApp, name: &str) -> (String, OneTime) {
    let id = app.register(name).await["id"].as_str().unwrap().to_owned();
    let secret = app.outbox.secret_for(&format!("{name}@example.com")).await;
    (id, secret)
}

async fn templates_for(app: &TestApp, to: &str) -> Vec<&'static str> {
    let mails = app.outbox.take_for(to).await;
    mails.iter().map(|m| m.message.template()).collect()
}

async fn audit_count(app: &TestApp, event: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) FROM audit_log WHERE event = '{event}'"
    ))
    .await
}

#[tokio::test]
async fn registration_mails_a_link_and_a_code_that_verify_the_address() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, secret) = registered(&app, "vera").await;
        assert!(
            secret
                .link
                .starts_with("http://localhost:3000/verify-email?token="),
            "{}",
            secret.link
        );
        assert_eq!((secret.link_minutes, secret.code_minutes), (24 * 60, 30));
        let (token, _) = app.login("vera@example.com", PASSWORD).await;
        let me = app.get_with_token("/api/v1/users/me", &token).await.json();
        assert_eq!(me["email_verified"], false);
        let res = confirm_email(&app, json!({"token": token_of(&secret)})).await;
        assert_eq!(res.status, StatusCode::OK, "{backend:?} {:?}", res.body);
        let me = app.get_with_token("/api/v1/users/me", &token).await.json();
        assert_eq!(me["email_verified"], true, "{backend:?}");
        assert_eq!(audit_count(&app, "email_verified").await, 1);
        // The same grant typed as a code is spent too.
        confirm_email(
            &app,
            json!({"email": "vera@example.com", "code": secret.code}),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_mail_token");

        // By code: a second account, the code typed in lower case.
        let (_, secret) = registered(&app, "cody").await;
        let typed = secret.code.to_lowercase().replace('-', " ");
        let res = confirm_email(&app, json!({"email": "Cody@Example.com", "code": typed})).await;
        assert_eq!(res.status, StatusCode::OK, "{backend:?} {:?}", res.body);
        confirm_email(&app, json!({"token": token_of(&secret)}))
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "invalid_mail_token");
    }
}

#[tokio::test]
async fn verification_is_asked_for_by_the_caller_or_by_address_with_one_answer() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, first) = registered(&app, "asker").await;
        let (token, _) = app.login("asker@example.com", PASSWORD).await;
        let res = app
            .call("POST", "/api/v1/auth/verify-email/request", &token, None)
            .await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{backend:?}");
        let answer = res.json();
        let second = app.outbox.secret_for("asker@example.com").await;
        assert_ne!(first.code, second.code);
        // By address, without credentials: known, unknown, the same answer.
        for email in ["asker@example.com", "nobody@example.com"] {
            let res = post(
                &app,
                "/api/v1/auth/verify-email/request",
                json!({"email": email}),
            )
            .await;
            assert_eq!(res.status, StatusCode::ACCEPTED);
            assert_eq!(res.json(), answer);
        }
        assert_eq!(
            templates_for(&app, "asker@example.com").await,
            ["verify_email"]
        );
        assert!(
            app.outbox.take().await.is_empty(),
            "nothing to the unknown address"
        );
        // Once verified, nothing more is sent.
        confirm_email(&app, json!({"token": token_of(&second)})).await;
        let res = app
            .call("POST", "/api/v1/auth/verify-email/request", &token, None)
            .await;
        assert_eq!(res.json(), answer);
        assert!(app.outbox.take().await.is_empty());
        // A bad Bearer token is refused, not taken for no token.
        app.call("POST", "/api/v1/auth/verify-email/request", "bogus", None)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
        post(&app, "/api/v1/auth/verify-email/request", json!({}))
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
    }
}

async fn with_key(app: &TestApp, key: &str) -> StatusCode {
    let req = http::Request::get("/api/v1/users/me")
        .header("x-api-key", key)
        .body(axum::body::Body::empty())
        .unwrap();
    app.send(req).await.status
}

#[tokio::test]
async fn a_reset_sets_the_password_and_revokes_every_login_and_key() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("rita", "user").await;
        let (_, refresh) = app.login("rita@example.com", PASSWORD).await;
        let key = app
            .call(
                "POST",
                "/api/v1/api-keys",
                &token,
                Some(json!({"name": "ci"})),
            )
            .await
            .json()["key"]
            .as_str()
            .unwrap()
            .to_owned();
        app.outbox.take().await;
        let answer = request_reset(&app, "rita@example.com").await.json();
        let unknown = request_reset(&app, "nobody@example.com").await.json();
        assert_eq!(
            answer, unknown,
            "the same body whether or not the account exists"
        );
        let secret = app.outbox.secret_for("rita@example.com").await;
        assert!(
            secret
                .link
                .starts_with("http://localhost:3000/reset-password?token=")
        );
        assert_eq!((secret.link_minutes, secret.code_minutes), (30, 30));
        // The policy applies, and a refusal leaves the token usable.
        reset(
            &app,
            json!({"token": token_of(&secret), "new_password": "short"}),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "weak_password");
        let res = reset(
            &app,
            json!({"token": token_of(&secret), "new_password": NEW_PASSWORD}),
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{backend:?} {:?}", res.body);
        app.login_raw("rita@example.com", PASSWORD)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        app.login("rita@example.com", NEW_PASSWORD).await;
        app.get_with_token("/api/v1/users/me", &token)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
        let refreshed = post(
            &app,
            "/api/v1/auth/refresh",
            json!({"refresh_token": refresh}),
        )
        .await;
        assert_eq!(refreshed.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            with_key(&app, &key).await,
            StatusCode::UNAUTHORIZED,
            "{backend:?}"
        );
        reset(
            &app,
            json!({"token": token_of(&secret), "new_password": "An0ther-Passw0rd!"}),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_mail_token");
        assert_eq!(
            templates_for(&app, "rita@example.com").await,
            ["password_reset"]
        );
        assert_eq!(audit_count(&app, "password_reset").await, 1);
        let reason = app
            .text("SELECT details FROM audit_log WHERE event = 'api_key_revoked'")
            .await;
        assert!(reason.contains("password_reset"), "{reason}");
    }
}

#[tokio::test]
async fn an_email_change_is_confirmed_from_the_new_address_and_told_to_the_old() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("emil", "user").await;
        app.register("taken").await;
        app.outbox.take().await;
        let change = |email: &str| {
            app.call(
                "PUT",
                "/api/v1/users/me",
                &token,
                Some(json!({"email": email})),
            )
        };
        let res = change("emil.new@example.com").await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{backend:?}");
        let answer = res.json();
        let taken = change("taken@example.com").await;
        assert_eq!((taken.status, taken.json()), (StatusCode::ACCEPTED, answer));
        // The taken address is told, with no link; the old one hears of both.
        let to_taken = app.outbox.take_for("taken@example.com").await;
        assert_eq!(to_taken.len(), 1);
        assert_eq!(to_taken[0].message, Message::AddressInUse);
        assert_eq!(
            templates_for(&app, "emil@example.com").await,
            ["email_change_requested", "email_change_requested"]
        );
        let secret = app.outbox.secret_for("emil.new@example.com").await;
        assert!(secret.link.contains("/verify-email?token="));
        let res = confirm_email(&app, json!({"token": token_of(&secret)})).await;
        assert_eq!(res.status, StatusCode::OK, "{backend:?} {:?}", res.body);
        assert_eq!(res.json()["message"], "Email address changed");
        let me = app.get_with_token("/api/v1/users/me", &token).await.json();
        assert_eq!(
            (me["email"].as_str(), me["email_verified"].as_bool()),
            (Some("emil.new@example.com"), Some(true))
        );
        app.login("emil.new@example.com", PASSWORD).await;
        app.login_raw("emil@example.com", PASSWORD)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        assert_eq!(
            templates_for(&app, "emil@example.com").await,
            ["email_changed"]
        );
        assert_eq!(audit_count(&app, "email_changed").await, 1);
    }
}

#[tokio::test]
async fn notices_follow_password_two_factor_and_key_changes() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (id, token) = app.account("nora", "user").await;
        app.outbox.take().await;
        app.call(
            "POST",
            "/api/v1/api-keys",
            &token,
            Some(json!({"name": "ci"})),
        )
        .await;
        let setup = app
            .call("POST", "/api/v1/auth/2fa/setup", &token, None)
            .await;
        assert_eq!(setup.status, StatusCode::OK);
        let secret = app
            .state
            .two_factor()
            .secret_of(id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let now = u64::try_from(app.clock.now().unix_timestamp()).unwrap();
        let code = gatehouse_core::auth::mfa::code_at(&secret, now).unwrap();
        let res = app
            .call(
                "POST",
                "/api/v1/auth/2fa/enable",
                &token,
                Some(json!({"code": code})),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{:?}", res.body);
        let res = app
            .call(
                "POST",
                "/api/v1/users/me/change-password",
                &token,
                Some(json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{:?}", res.body);
        assert_eq!(
            templates_for(&app, "nora@example.com").await,
            ["api_key_created", "two_factor_enabled", "password_changed"],
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn required_verification_works_end_to_end_and_operators_admins_count_as_verified() {
    for backend in backends() {
        let app = TestApp::with(
            &backend,
            &[("REQUIRE_VERIFIED_EMAIL", "true")],
            Default::default(),
        )
        .await;
        let (_, secret) = registered(&app, "ursula").await;
        app.login_raw("ursula@example.com", PASSWORD)
            .await
            .assert_problem(StatusCode::FORBIDDEN, "email_not_verified");
        confirm_email(&app, json!({"token": token_of(&secret)})).await;
        app.login("ursula@example.com", PASSWORD).await;
        let admin = app
            .state
            .accounts()
            .create_admin(gatehouse_core::service::Registration {
                username: "operator".into(),
                email: "op@example.com".into(),
                password: PASSWORD.to_owned().into(),
                full_name: None,
            })
            .await
            .unwrap();
        assert!(admin.email_verified);
        app.login("op@example.com", PASSWORD).await;
        assert!(
            app.outbox.take().await.is_empty(),
            "no mail to the operator's admin"
        );
    }
}
