//! The security checklist: one test per attack, each against real running
//! servers (one on SQLite; two on PostgreSQL + Redis when configured), with
//! real parallel requests where the attack is a race.
//!
//! | # | attack | test |
//! |---|---|---|
//! | 1 | guess 2FA codes forever by logging in again | `second_factor_guessing_is_bounded_by_the_lockout` |
//! | 2 | race many wrong passwords past the lockout | `parallel_guessing_checks_at_most_max_attempts` |
//! | 3 | use change-password / 2FA disable as a password oracle | `password_checks_outside_login_count_toward_the_lockout` |
//! | 4 | take over an account with an API key | `an_api_key_cannot_take_over_the_account` |
//! | 5 | take a fresh rate limit per IPv6 address or forged hop | `crates/api/tests/api/ratelimit.rs` (through the router) |
//! | 6 | reuse a logged-out token after a restart or a Redis outage | `a_logged_out_login_stays_dead_across_a_restart`, `a_logout_during_a_redis_outage_fails_closed` |
//! | 7 | keep a lost role while invalidations cannot travel | `a_demotion_reaches_every_instance_even_without_invalidations` |
//! | 8 | truncate or rewrite the audit trail | `attacks_audit.rs`, `crates/api/tests/api/audit_chain.rs` |
//! | 9 | hold the server with slow or idle connections | `attacks_connections.rs` |
//! | 10 | fill the disk with uploads | `attacks_files.rs`, `crates/api/tests/api/files/limits.rs` |
//! | 11 | lose a password change to a racing re-hash or refresh | `a_rehash_never_restores_a_changed_password`, `a_refresh_racing_a_password_change_never_survives_it` |
//! | 12 | probe for taken addresses through email change | `an_email_change_does_not_reveal_taken_addresses` |
//! | 14 | spend one stolen refresh token many times at once, on every instance | `a_hundred_parallel_refreshes_of_one_token_mint_one_pair_and_end_the_login` |
//! | 13 | `crit` tokens, malformed bodies, typed passwords in logs, weak secrets, open files, cancelled hashes | `a_typed_username_never_reaches_the_log`; `crates/api/tests/api/{tokens,bodies}.rs`; settings tests; `cli.rs` file modes; the hashing pool's unit test |
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

/// Logs `name` in through instance `n` and returns (access token, refresh
/// token taken from the cookie).
async fn login_pair(d: &Deployment, n: usize, name: &str, password: &str) -> (String, String) {
    let res = d
        .http
        .post(d.url(n, "/api/v1/auth/login"))
        .json(&json!({"email": format!("{name}@example.com"), "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let refresh = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("refresh_token=")
        .to_owned();
    let body: Value = res.json().await.unwrap();
    (body["access_token"].as_str().unwrap().to_owned(), refresh)
}

async fn refresh_status(d: &Deployment, n: usize, refresh: &str) -> (u16, Value) {
    let res = d
        .http
        .post(d.url(n, "/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn with_key(
    d: &Deployment,
    method: Method,
    path: &str,
    key: &str,
    body: Value,
) -> (u16, Value) {
    let res = d
        .http
        .request(method, d.url(0, path))
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Item 4: a leaked API key (default scopes) must not become the account:
/// it cannot change the password, the email, 2FA, keys or sessions, and a
/// password change ends it.
#[tokio::test]
async fn an_api_key_cannot_take_over_the_account() {
    for backend in backends() {
        let d = Deployment::start(backend, NO_IP_LIMITS).await;
        d.register("owner4").await;
        let token = d.token("owner4").await;
        let (status, created) = d
            .call(
                0,
                Method::POST,
                "/api/v1/api-keys",
                &token,
                Some(json!({"name": "ci"})),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let key = created["key"].as_str().unwrap().to_owned();
        let attempts = [
            (
                Method::POST,
                "/api/v1/users/me/change-password",
                json!({"current_password": PASSWORD, "new_password": "Tak3n-Over!x"}),
            ),
            (
                Method::PUT,
                "/api/v1/users/me",
                json!({"email": "attacker@example.com"}),
            ),
            (Method::POST, "/api/v1/auth/2fa/setup", json!({})),
            (
                Method::POST,
                "/api/v1/api-keys",
                json!({"name": "mine now"}),
            ),
            (Method::GET, "/api/v1/users/me/sessions", Value::Null),
        ];
        for (method, path, body) in attempts {
            let (status, problem) = with_key(&d, method.clone(), path, &key, body).await;
            assert_eq!(
                (status, problem["code"].as_str()),
                (403, Some("api_key_not_allowed")),
                "{backend:?}: {method} {path}: {problem}"
            );
        }
        let (status, _) = with_key(&d, Method::GET, "/api/v1/users/me", &key, Value::Null).await;
        assert_eq!(status, 200, "{backend:?}: the key still reads");
        // The owner changes the password: the key dies with it.
        let (status, body) = d
            .call(
                0,
                Method::POST,
                "/api/v1/users/me/change-password",
                &token,
                Some(json!({"current_password": PASSWORD, "new_password": "N3w-Passw0rd!x"})),
            )
            .await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        let (status, _) = with_key(&d, Method::GET, "/api/v1/users/me", &key, Value::Null).await;
        assert_eq!(status, 401, "{backend:?}: key survived a password change");
        d.stop().await;
    }
}

/// Item 6: a logout is durable. Logging out with only the access token ends
/// its whole login (the refresh token too), and neither comes back when the
/// server restarts with an empty memory.
#[tokio::test]
async fn a_logged_out_login_stays_dead_across_a_restart() {
    let mut d = Deployment::start(support::deployment::Backend::Sqlite, NO_IP_LIMITS).await;
    d.register("leaver6").await;
    let (access, refresh) = login_pair(&d, 0, "leaver6", PASSWORD).await;
    let out = d
        .http
        .post(d.url(0, "/api/v1/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let (status, _) = refresh_status(&d, 0, &refresh).await;
    assert_eq!(status, 401, "the refresh token outlived a Bearer logout");
    d.restart(&[]);
    let (status, _) = d
        .call(0, Method::GET, "/api/v1/users/me", &access, None)
        .await;
    assert_eq!(
        status, 401,
        "a logged-out token works again after a restart"
    );
    let (status, _) = refresh_status(&d, 0, &refresh).await;
    assert_eq!(status, 401);
    d.stop().await;
}

/// Two instances on PostgreSQL and a `redis-server` of the test's own, which
/// it may kill; `None` (with a notice) when either is not available.
async fn with_own_redis() -> Option<(support::deployment::OwnRedis, Deployment)> {
    if !backends().contains(&support::deployment::Backend::Shared) {
        eprintln!("PostgreSQL/Redis not configured: not run");
        return None;
    }
    let Some(redis) = support::deployment::OwnRedis::start() else {
        eprintln!("redis-server not installed: not run");
        return None;
    };
    let url = redis.url();
    let mut extra = NO_IP_LIMITS.to_vec();
    extra.push(("REDIS_URL", url.as_str()));
    let d = Deployment::start(support::deployment::Backend::Shared, &extra).await;
    Some((redis, d))
}

/// Item 6 (fault drill): with Redis down, a logout cannot reach the other
/// instances at once, so it answers 503 and changes nothing; once Redis is
/// back it takes effect everywhere. Authenticated reads keep working during
/// the outage, checked against the database.
#[tokio::test]
async fn a_logout_during_a_redis_outage_fails_closed() {
    let Some((mut redis, d)) = with_own_redis().await else {
        return;
    };
    d.register("drill6").await;
    let (access, _) = login_pair(&d, 0, "drill6", PASSWORD).await;
    redis.kill();
    let out = d
        .http
        .post(d.url(0, "/api/v1/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.status(),
        503,
        "a logout answered 2xx without reaching Redis"
    );
    let (status, body) = d
        .call(1, Method::GET, "/api/v1/users/me", &access, None)
        .await;
    assert_eq!(status, 200, "reads fall back to the database: {body}");
    assert!(redis.resume());
    // Wait (bounded) until both instances reach Redis again.
    for n in 0..2 {
        let mut ready = false;
        for _ in 0..100 {
            let res = d.http.get(d.url(n, "/ready")).send().await.unwrap();
            if res.status() == 200 {
                ready = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(ready, "instance {n} back");
    }
    let (status, _) = d
        .call(1, Method::GET, "/api/v1/users/me", &access, None)
        .await;
    assert_eq!(status, 200, "the refused logout changed nothing");
    let out = d
        .http
        .post(d.url(0, "/api/v1/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let (status, _) = d
        .call(1, Method::GET, "/api/v1/users/me", &access, None)
        .await;
    assert_eq!(status, 401, "the logout reached the other instance");
    d.stop().await;
}

/// Item 7: a user cached on one instance is never served stale for long
/// when the change cannot be announced (Redis down, the write made behind
/// the service's back).
#[tokio::test]
async fn a_demotion_reaches_every_instance_even_without_invalidations() {
    let Some((mut redis, d)) = with_own_redis().await else {
        return;
    };
    d.register("mod7").await;
    d.sql("UPDATE {schema}.users SET role = 'moderator' WHERE username = 'mod7'")
        .await;
    let (access, _) = login_pair(&d, 0, "mod7", PASSWORD).await;
    // Both instances cache the moderator.
    for n in 0..2 {
        let (status, _) = d.call(n, Method::GET, "/api/v1/users", &access, None).await;
        assert_eq!(status, 200);
    }
    redis.kill();
    d.sql("UPDATE {schema}.users SET role = 'user' WHERE username = 'mod7'")
        .await;
    // Bounded wait: the cached moderator must give way within seconds.
    let mut seen = Vec::new();
    for _ in 0..40 {
        let (status, _) = d.call(1, Method::GET, "/api/v1/users", &access, None).await;
        seen.push(status);
        if status == 403 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen.last(), Some(&403), "still a moderator: {seen:?}");
    d.stop().await;
}

/// Item 11: a refresh racing a password change never mints a token that
/// survives the change.
#[tokio::test]
async fn a_refresh_racing_a_password_change_never_survives_it() {
    for backend in backends() {
        let d = Deployment::start(backend, NO_IP_LIMITS).await;
        for round in 0..5 {
            let name = format!("racer{round}");
            d.register(&name).await;
            let (access, refresh) = login_pair(&d, 0, &name, PASSWORD).await;
            let change = d.call(
                0,
                Method::POST,
                "/api/v1/users/me/change-password",
                &access,
                Some(json!({"current_password": PASSWORD, "new_password": "N3w-Passw0rd!x"})),
            );
            let (changed, refreshed) = tokio::join!(change, refresh_status(&d, 1, &refresh));
            assert_eq!(changed.0, 200, "{backend:?}: {}", changed.1);
            if refreshed.0 == 200 {
                let minted = refreshed.1["access_token"].as_str().unwrap();
                let (status, _) = d
                    .call(0, Method::GET, "/api/v1/users/me", minted, None)
                    .await;
                assert_eq!(
                    status, 401,
                    "{backend:?}: a token minted in the race survived"
                );
                let next = refreshed.1["refresh_token"].as_str().unwrap();
                let (status, _) = refresh_status(&d, 0, next).await;
                assert_eq!(status, 401, "{backend:?}: its refresh token survived");
            }
        }
        d.stop().await;
    }
}

/// Item 14: the same refresh token sent 100 times at once, alternately to
/// each instance: exactly one request rotates it, every other is refused
/// as a reuse, and the reuse ends the whole login — the winner's new pair
/// included.
#[tokio::test]
async fn a_hundred_parallel_refreshes_of_one_token_mint_one_pair_and_end_the_login() {
    for backend in backends() {
        let d = Deployment::start(backend, NO_IP_LIMITS).await;
        d.register("copied").await;
        let (_, refresh) = login_pair(&d, 0, "copied", PASSWORD).await;
        let results = join_all((0..100).map(|n| refresh_status(&d, n, &refresh))).await;
        let won: Vec<&Value> = results
            .iter()
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body)
            .collect();
        let statuses: Vec<u16> = results.iter().map(|(status, _)| *status).collect();
        assert_eq!(won.len(), 1, "{backend:?}: {statuses:?}");
        assert!(
            results
                .iter()
                .all(|(status, body)| *status == 200 || body["code"] == "invalid_refresh_token"),
            "{backend:?}: {statuses:?}"
        );
        let minted = won[0]["access_token"].as_str().unwrap();
        let next = won[0]["refresh_token"].as_str().unwrap();
        for n in 0..2 {
            let (status, _) = d
                .call(n, Method::GET, "/api/v1/users/me", minted, None)
                .await;
            assert_eq!(
                status, 401,
                "{backend:?}: the winner's access token lives on"
            );
            let (status, _) = refresh_status(&d, n, next).await;
            assert_eq!(
                status, 401,
                "{backend:?}: the winner's refresh token lives on"
            );
        }
        d.stop().await;
    }
}

/// Item 11: the login that upgrades an old hash never writes the old
/// password back over a concurrent change.
#[tokio::test]
async fn a_rehash_never_restores_a_changed_password() {
    for backend in backends() {
        let mut d = Deployment::start(backend, NO_IP_LIMITS).await;
        for round in 0..4 {
            d.register(&format!("rehash{round}")).await;
        }
        // New parameters: every stored hash is re-hashed at its next login.
        d.restart(&[("ARGON2_MEMORY_COST", "128")]);
        for round in 0..4 {
            let name = format!("rehash{round}");
            let token = d.token(&name).await;
            let login = d.login(1, &name, PASSWORD);
            let change = d.call(
                0,
                Method::POST,
                "/api/v1/users/me/change-password",
                &token,
                Some(json!({"current_password": PASSWORD, "new_password": "N3w-Passw0rd!x"})),
            );
            let (_, changed) = tokio::join!(login, change);
            assert_eq!(changed.0, 200, "{backend:?}: {}", changed.1);
            let (status, _) = d.login(0, &name, PASSWORD).await;
            assert_eq!(status, 401, "{backend:?}: the old password works again");
            let (status, _) = d.login(0, &name, "N3w-Passw0rd!x").await;
            assert_eq!(status, 200, "{backend:?}");
        }
        d.stop().await;
    }
}

/// Item 12: asking for another email answers the same whether or not an
/// account has it.
#[tokio::test]
async fn an_email_change_does_not_reveal_taken_addresses() {
    let d = Deployment::start(support::deployment::Backend::Sqlite, NO_IP_LIMITS).await;
    d.register("prober12").await;
    d.register("target12").await;
    let token = d.token("prober12").await;
    let ask = |email: &'static str| {
        d.call(
            0,
            Method::PUT,
            "/api/v1/users/me",
            &token,
            Some(json!({"email": email})),
        )
    };
    let taken = ask("target12@example.com").await;
    let free = ask("nobody12@example.com").await;
    assert_eq!(taken.0, 202);
    assert_eq!(taken, free);
    d.stop().await;
}

/// Item 13: what a person typed as a username (often a password) never
/// reaches the log.
#[tokio::test]
async fn a_typed_username_never_reaches_the_log() {
    let mut extra = NO_IP_LIMITS.to_vec();
    extra.push(("LOG_LEVEL", "debug"));
    let mut d = Deployment::start(support::deployment::Backend::Sqlite, &extra).await;
    let typed = "Hunter2-MyRealPassword";
    let res = d
        .http
        .post(d.url(0, "/api/v1/auth/login"))
        .form(&[("username", typed), ("password", "whatever")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let logs = d.stop_with_logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("login_failed") || l.contains("/auth/login"))
    );
    assert!(
        !logs
            .iter()
            .any(|l| l.to_lowercase().contains(&typed.to_lowercase())),
        "the typed username was logged"
    );
    d.stop().await;
}
