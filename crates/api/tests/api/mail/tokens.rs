//! The rules of mailed tokens and codes: single use, bound to their purpose
//! and to the account's state, expiring, stored only as digests, codes
//! guessed at most `MAX_LOGIN_ATTEMPTS` times, and the same work for known
//! and unknown addresses.

use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{NEW_PASSWORD, confirm_email, post, registered, request_reset, reset};
use crate::harness::mail::token_of;
use crate::harness::{PASSWORD, TestApp, backends};

const INVALID: &str = "invalid_mail_token";

#[tokio::test]
async fn tokens_are_bound_to_their_purpose() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, verify) = registered(&app, "pia").await;
        request_reset(&app, "pia@example.com").await;
        let reset_secret = app.outbox.secret_for("pia@example.com").await;
        confirm_email(&app, json!({"token": token_of(&reset_secret)}))
            .await
            .assert_problem(StatusCode::BAD_REQUEST, INVALID);
        reset(
            &app,
            json!({"token": token_of(&verify), "new_password": NEW_PASSWORD}),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST, INVALID);
        let code =
            json!({"email": "pia@example.com", "code": verify.code, "new_password": NEW_PASSWORD});
        reset(&app, code)
            .await
            .assert_problem(StatusCode::BAD_REQUEST, INVALID);
        // Each still works for what it is for.
        let ok = reset(
            &app,
            json!({"token": token_of(&reset_secret), "new_password": NEW_PASSWORD}),
        )
        .await;
        assert_eq!(ok.status, StatusCode::OK, "{backend:?}");
        let ok = confirm_email(&app, json!({"token": token_of(&verify)})).await;
        assert_eq!(ok.status, StatusCode::OK, "{backend:?}");
    }
}

#[tokio::test]
async fn links_and_codes_expire() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, verify) = registered(&app, "tim").await;
        request_reset(&app, "tim@example.com").await;
        let reset_secret = app.outbox.secret_for("tim@example.com").await;
        app.clock.advance(Duration::from_secs(31 * 60));
        // After 31 minutes: the reset link and every code are dead...
        reset(
            &app,
            json!({"token": token_of(&reset_secret), "new_password": NEW_PASSWORD}),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST, INVALID);
        confirm_email(
            &app,
            json!({"email": "tim@example.com", "code": verify.code}),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST, INVALID);
        // ...and a verification link lives 24 hours.
        app.clock
            .advance(Duration::from_secs(24 * 3600 - 31 * 60 + 1));
        confirm_email(&app, json!({"token": token_of(&verify)}))
            .await
            .assert_problem(StatusCode::BAD_REQUEST, INVALID);
        let app = TestApp::new(&backend).await;
        let (_, verify) = registered(&app, "tom").await;
        app.clock.advance(Duration::from_secs(23 * 3600));
        let ok = confirm_email(&app, json!({"token": token_of(&verify)})).await;
        assert_eq!(ok.status, StatusCode::OK, "{backend:?}");
    }
}

#[tokio::test]
async fn tokens_die_when_the_account_changes() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("sam", "user").await;
        let verify = app.outbox.secret_for("sam@example.com").await;
        request_reset(&app, "sam@example.com").await;
        let before_change = app.outbox.secret_for("sam@example.com").await;
        // A password change kills the reset token issued before it.
        let body = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
        let res = app
            .call(
                "POST",
                "/api/v1/users/me/change-password",
                &token,
                Some(body),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK);
        reset(
            &app,
            json!({"token": token_of(&before_change), "new_password": "Th1rd-Passw0rd!"}),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST, INVALID);
        // A change of address kills the old address's verification and
        // reset tokens, and any other pending change.
        let (token, _) = app.login("sam@example.com", NEW_PASSWORD).await;
        request_reset(&app, "sam@example.com").await;
        let old_reset = app.outbox.secret_for("sam@example.com").await;
        for email in ["sam.a@example.com", "sam.b@example.com"] {
            let res = app
                .call(
                    "PUT",
                    "/api/v1/users/me",
                    &token,
                    Some(json!({"email": email})),
                )
                .await;
            assert_eq!(res.status, StatusCode::ACCEPTED);
        }
        let to_a = app.outbox.secret_for("sam.a@example.com").await;
        let to_b = app.outbox.secret_for("sam.b@example.com").await;
        let ok = confirm_email(&app, json!({"token": token_of(&to_b)})).await;
        assert_eq!(ok.status, StatusCode::OK, "{backend:?}");
        for dead in [&verify, &to_a] {
            confirm_email(&app, json!({"token": token_of(dead)}))
                .await
                .assert_problem(StatusCode::BAD_REQUEST, INVALID);
        }
        reset(
            &app,
            json!({"token": token_of(&old_reset), "new_password": "Th1rd-Passw0rd!"}),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST, INVALID);
    }
}

#[tokio::test]
async fn wrong_codes_count_toward_the_lockout() {
    for backend in backends() {
        let settings = [
            ("MAX_LOGIN_ATTEMPTS", "3"),
            ("ACCOUNT_LOCKOUT_MINUTES", "1"),
        ];
        let app = TestApp::with(&backend, &settings, Default::default()).await;
        app.register("gus").await;
        request_reset(&app, "gus@example.com").await;
        let secret = app.outbox.secret_for("gus@example.com").await;
        let attempt = |code: &str| {
            let body =
                json!({"email": "gus@example.com", "code": code, "new_password": NEW_PASSWORD});
            reset(&app, body)
        };
        for wrong in ["AAAA-AAAA", "not a code", "BBBB-BBBB"] {
            attempt(wrong)
                .await
                .assert_problem(StatusCode::BAD_REQUEST, INVALID);
        }
        // Locked: the right code too, and the password at login.
        let res = attempt(&secret.code).await;
        res.assert_problem(StatusCode::TOO_MANY_REQUESTS, "account_locked");
        assert!(res.header("retry-after").is_some());
        app.login_raw("gus@example.com", PASSWORD)
            .await
            .assert_problem(StatusCode::TOO_MANY_REQUESTS, "account_locked");
        app.clock.advance(Duration::from_secs(61));
        let ok = attempt(&secret.code.to_lowercase()).await;
        assert_eq!(ok.status, StatusCode::OK, "{backend:?} {:?}", ok.body);
    }
}

#[tokio::test]
async fn only_digests_are_stored_and_the_outbox_payload_is_sealed() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        app.register("dee").await;
        let payload = app.text("SELECT payload_enc FROM mail_outbox").await;
        let secret = app.outbox.secret_for("dee@example.com").await;
        let token = token_of(&secret);
        assert!(
            !payload.contains(&token) && !payload.contains("dee@"),
            "sealed"
        );
        let digest = hex::encode(Sha256::digest(token.as_bytes()));
        let stored = app.text("SELECT token_digest FROM mail_tokens").await;
        assert_eq!(stored, digest);
        let code = app.text("SELECT code_digest FROM mail_tokens").await;
        assert!(!code.contains(&secret.code.replace('-', "")));
        // Sent mail leaves nothing behind.
        assert_eq!(app.count("SELECT COUNT(*) FROM mail_outbox").await, 0);
    }
}

#[tokio::test]
async fn requests_do_the_same_writes_whether_or_not_the_address_has_an_account() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        app.register("kim").await;
        app.outbox.take().await;
        let rows = async || {
            (
                app.count("SELECT COUNT(*) FROM mail_tokens").await,
                app.count("SELECT COUNT(*) FROM mail_outbox").await,
            )
        };
        for path in ["password-reset", "verify-email"] {
            let start = rows().await;
            let path = format!("/api/v1/auth/{path}/request");
            post(&app, &path, json!({"email": "kim@example.com"})).await;
            let known = rows().await;
            post(&app, &path, json!({"email": "nobody@example.com"})).await;
            let unknown = rows().await;
            assert_eq!(
                (known.0 - start.0, known.1 - start.1),
                (unknown.0 - known.0, unknown.1 - known.1),
                "{backend:?} {path}"
            );
            assert_eq!((known.0 - start.0, known.1 - start.1), (1, 1));
        }
        // The empty entry is dropped by the sender, never sent.
        let mails = app.outbox.take().await;
        assert!(mails.iter().all(|m| m.to == "kim@example.com"), "{mails:?}");
        assert_eq!(app.count("SELECT COUNT(*) FROM mail_outbox").await, 0);
    }
}

#[tokio::test]
async fn one_address_gets_a_bounded_number_of_mails() {
    for backend in backends() {
        let limits = [
            ("RATE_LIMIT_ENABLED", "true"),
            ("RATE_LIMIT_PASSWORD_RESET", "100/minute"),
            ("RATE_LIMIT_PER_MINUTE", "1000"),
            ("RATE_LIMIT_MAIL_PER_ADDRESS", "2/hour"),
        ];
        let app = TestApp::with(&backend, &limits, Default::default()).await;
        app.register("max").await;
        app.outbox.take().await;
        for _ in 0..4 {
            request_reset(&app, "max@example.com").await;
        }
        assert_eq!(
            app.outbox.take_for("max@example.com").await.len(),
            2,
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_confirmation_names_exactly_one_proof() {
    let app = TestApp::new(&crate::harness::Backend::Sqlite).await;
    for body in [
        json!({}),
        json!({"email": "a@example.com"}),
        json!({"code": "AAAA-AAAA"}),
        json!({"token": "t", "email": "a@example.com", "code": "AAAA-AAAA"}),
        json!({"token": "t", "extra": 1}),
    ] {
        confirm_email(&app, body)
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
    }
    confirm_email(&app, json!({"token": "not-a-token"}))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, INVALID);
}
