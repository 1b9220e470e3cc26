//! Two `gatehouse` processes on one PostgreSQL and one Redis behave as one
//! service: a logout on A is refused on B, the login limit counts across
//! both, and a role change through A applies on B.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly"
)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::deployment::{Backend, Deployment, backends};

const PASSWORD: &str = support::deployment::PASSWORD;

#[tokio::test]
async fn two_instances_share_revocations_limits_and_roles() {
    if !backends().contains(&Backend::Shared) {
        eprintln!("TEST_DATABASE_URL/TEST_REDIS_URL unset: multi-instance test not run");
        return;
    }
    let d = Deployment::start(
        Backend::Shared,
        &[
            ("MAX_LOGIN_ATTEMPTS", "1000"),
            // Each scenario below speaks as its own client address.
            ("TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
    )
    .await;
    let (a, b) = (d.base(0), d.base(1));
    let http = d.http.clone();
    let as_client =
        |ip: &'static str| move |req: reqwest::RequestBuilder| req.header("x-forwarded-for", ip);

    // Accounts, made through A.
    let client = as_client("198.51.100.1");
    for name in ["alice", "boss"] {
        let res = client(http.post(format!("{}/api/v1/auth/register", a)))
            .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    d.sql("UPDATE {schema}.users SET role = 'admin' WHERE username = 'boss'")
        .await;
    let login = async |base: &str, email: &str, ip: &'static str| {
        as_client(ip)(http.post(format!("{base}/api/v1/auth/login")))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
    };
    let me = async |base: &str, token: &str| {
        http.get(format!("{base}/api/v1/users/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    };

    // 1. A logout on A is refused on B.
    let res = login(a, "alice@example.com", "198.51.100.2").await;
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(me(b, &token).await.status(), 200);
    let out = http
        .post(format!("{}/api/v1/auth/logout", a))
        .bearer_auth(&token)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    assert_eq!(
        me(b, &token).await.status(),
        401,
        "B still accepts a token logged out on A"
    );
    let refresh = http
        .post(format!("{}/api/v1/auth/refresh", b))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 401);

    // 2. The login limit (5/minute per client) counts across A and B.
    let mut statuses = Vec::new();
    for n in 0..6 {
        let base = if n % 2 == 0 { a } else { b };
        let res = as_client("203.0.113.9")(http.post(format!("{base}/api/v1/auth/login")))
            .json(&json!({"email": format!("nobody{n}@example.com"), "password": "x"}))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);

    // 3. A role change through A applies on B, whose cache held the user.
    let alice = login(b, "alice@example.com", "198.51.100.3").await;
    let alice_token = alice.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice_me: Value = me(b, &alice_token).await.json().await.unwrap();
    assert_eq!(alice_me["role"], "user");
    let list = async |token: &str| {
        http.get(format!("{}/api/v1/users", b))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(list(&alice_token).await, 403);
    let boss = login(a, "boss@example.com", "198.51.100.4").await;
    let boss_token = boss.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let patched = http
        .patch(format!(
            "{}/api/v1/users/{}",
            a,
            alice_me["id"].as_str().unwrap()
        ))
        .bearer_auth(&boss_token)
        .json(&json!({"role": "moderator"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    // Invalidation travels by pub/sub: allow it a few milliseconds.
    let mut status = 0;
    for _ in 0..50 {
        status = list(&alice_token).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200, "B did not see the promotion made on A");

    d.stop().await;
}
