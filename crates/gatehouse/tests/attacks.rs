//! The security checklist: one test per attack, each against real running
//! servers (one on SQLite; two on PostgreSQL + Redis when configured), with
//! real parallel requests where the attack is a race.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly"
)]

mod support;

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use support::deployment::{Deployment, PASSWORD, backends};

const WRONG: &str = "Wrong-Passw0rd!";

/// Lockout tests turn the per-IP limits off: an attacker rotates addresses.
const NO_IP_LIMITS: &[(&str, &str)] =
    &[("RATE_LIMIT_ENABLED", "false"), ("MAX_LOGIN_ATTEMPTS", "5")];

fn totp_code(secret_b32: &str) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32)
        .unwrap()
        .as_bytes()
        .to_vec();
    let now = std::time::UNIX_EPOCH.elapsed().unwrap().as_secs();
    gatehouse_core::auth::mfa::code_at(&secret, now).unwrap()
}

/// Turns 2FA on for `name`; its TOTP secret.
async fn enable_2fa(d: &Deployment, token: &str) -> String {
    let (status, setup) = d
        .call(0, Method::POST, "/api/v1/auth/2fa/setup", token, None)
        .await;
    assert_eq!(status, 200, "{setup}");
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let (status, body) = d
        .call(
            0,
            Method::POST,
            "/api/v1/auth/2fa/enable",
            token,
            Some(json!({"code": totp_code(&secret)})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    secret
}

async fn mfa_step(d: &Deployment, n: usize, mfa_token: &str, code: &str) -> u16 {
    d.http
        .post(d.url(n, "/api/v1/auth/login/mfa"))
        .json(&json!({"mfa_token": mfa_token, "code": code}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Item 1: a right password must not reset the count of wrong codes, or
/// an attacker holding the password guesses codes forever.
#[tokio::test]
async fn second_factor_guessing_is_bounded_by_the_lockout() {
    for backend in backends() {
        let d = Deployment::start(backend, NO_IP_LIMITS).await;
        d.register("mallory1").await;
        let token = d.token("mallory1").await;
        enable_2fa(&d, &token).await;
        let mut wrong_codes = 0;
        let mut locked = false;
        'rounds: for round in 0..5 {
            let (status, body) = d.login(round, "mallory1", PASSWORD).await;
            if status == 429 {
                assert_eq!(body["code"], "account_locked");
                locked = true;
                break;
            }
            assert_eq!(status, 200, "{backend:?}: {body}");
            let mfa_token = body["mfa_token"].as_str().unwrap().to_owned();
            for _ in 0..4 {
                match mfa_step(&d, round, &mfa_token, "000000").await {
                    401 => wrong_codes += 1,
                    429 => {
                        locked = true;
                        break 'rounds;
                    }
                    other => panic!("{backend:?}: unexpected {other}"),
                }
            }
        }
        assert!(locked, "{backend:?}: never locked");
        assert!(
            wrong_codes <= 5,
            "{backend:?}: {wrong_codes} wrong codes were checked"
        );
        d.stop().await;
    }
}

/// Item 2: forty wrong passwords at once, spread over every instance,
/// check at most MAX_LOGIN_ATTEMPTS of them; the rest are refused unchecked.
#[tokio::test]
async fn parallel_guessing_checks_at_most_max_attempts() {
    for backend in backends() {
        let d = Deployment::start(backend, NO_IP_LIMITS).await;
        d.register("victim2").await;
        let tries = (0..40).map(|n| d.login(n, "victim2", WRONG));
        let statuses: Vec<u16> = join_all(tries).await.into_iter().map(|(s, _)| s).collect();
        let checked = statuses.iter().filter(|s| **s == 401).count();
        let refused = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!(checked + refused, 40, "{backend:?}: {statuses:?}");
        assert!(
            checked <= 5,
            "{backend:?}: {checked} passwords checked: {statuses:?}"
        );
        // And the right password is refused now too.
        let (status, body) = d.login(1, "victim2", PASSWORD).await;
        assert_eq!(status, 429, "{backend:?}: {body}");
        assert_eq!(body["code"], "account_locked");
        d.stop().await;
    }
}

/// Item 3: a stolen access token must not turn change-password or 2FA
/// disable into a password oracle that skips the lockout.
#[tokio::test]
async fn password_checks_outside_login_count_toward_the_lockout() {
    for backend in backends() {
        let d = Deployment::start(backend, NO_IP_LIMITS).await;
        d.register("victim3").await;
        let token = d.token("victim3").await;
        for n in 0..5 {
            let (status, body) = d
                .call(
                    n,
                    Method::POST,
                    "/api/v1/users/me/change-password",
                    &token,
                    Some(json!({"current_password": WRONG, "new_password": "N3w-Passw0rd!x"})),
                )
                .await;
            assert_eq!(status, 400, "{backend:?}: {body}");
        }
        let (status, body) = d
            .call(
                0,
                Method::POST,
                "/api/v1/users/me/change-password",
                &token,
                Some(json!({"current_password": PASSWORD, "new_password": "N3w-Passw0rd!x"})),
            )
            .await;
        assert_eq!(
            status, 429,
            "{backend:?}: locked even for the right one: {body}"
        );
        let (status, _) = d.login(1, "victim3", PASSWORD).await;
        assert_eq!(status, 429, "{backend:?}: login is locked too");

        // The same through 2FA disable, on another account.
        d.register("victim3b").await;
        let token = d.token("victim3b").await;
        let secret = enable_2fa(&d, &token).await;
        for n in 0..5 {
            let (status, body) = d
                .call(
                    n,
                    Method::POST,
                    "/api/v1/auth/2fa/disable",
                    &token,
                    Some(json!({"password": WRONG, "code": totp_code(&secret)})),
                )
                .await;
            assert_eq!(status, 400, "{backend:?}: {body}");
        }
        let (status, body): (u16, Value) = d.login(0, "victim3b", PASSWORD).await;
        assert_eq!(status, 429, "{backend:?}: {body}");
        d.stop().await;
    }
}
