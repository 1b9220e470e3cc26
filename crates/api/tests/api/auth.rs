//! Registration, login, refresh rotation, logout, lockout and the token
//! checks of the contract, on every backend.

use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, PASSWORD, TestApp, backends, config};

fn problem_without_id(res: &crate::harness::TestResponse) -> Value {
    let mut body = res.json();
    body.as_object_mut().unwrap().remove("request_id");
    body
}

#[tokio::test]
async fn register_returns_the_user_and_never_secrets() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let body = json!({
            "username": "Jane_Doe",
            "email": "  Jane.Doe@Example.COM ",
            "password": PASSWORD,
            "full_name": "<b>Jane</b> Doe"
        });
        let res = app
            .post_json("/api/v1/auth/register", &body.to_string())
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{backend:?}");
        let user = res.json();
        assert_eq!(user["username"], "Jane_Doe");
        assert_eq!(user["email"], "jane.doe@example.com");
        assert_eq!(user["full_name"], "Jane Doe");
        assert_eq!(user["role"], "user");
        assert_eq!(user["is_active"], true);
        assert_eq!(user["email_verified"], false);
        assert_eq!(user["mfa_enabled"], false);
        let id = uuid::Uuid::parse_str(user["id"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
        let keys: Vec<&str> = user
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys.len(),
            10,
            "exactly the contract's user fields: {keys:?}"
        );
        let text = String::from_utf8_lossy(&res.body);
        assert!(!text.contains("argon2") && !text.contains(PASSWORD));
    }
}

#[tokio::test]
async fn duplicates_fail_alike_without_saying_which_field() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        app.register("alice").await;
        let same_email =
            json!({"username": "other", "email": "ALICE@example.com", "password": PASSWORD});
        let same_name =
            json!({"username": "ALICE", "email": "new@example.com", "password": PASSWORD});
        let a = app
            .post_json("/api/v1/auth/register", &same_email.to_string())
            .await;
        let b = app
            .post_json("/api/v1/auth/register", &same_name.to_string())
            .await;
        let pa = a.assert_problem(StatusCode::BAD_REQUEST, "registration_failed");
        b.assert_problem(StatusCode::BAD_REQUEST, "registration_failed");
        assert_eq!(
            pa["detail"],
            "Unable to create account with provided information"
        );
        assert_eq!(problem_without_id(&a), problem_without_id(&b));
    }
}

#[tokio::test]
async fn registration_schema_rules_are_422() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let long_name = "x".repeat(101);
    let cases = [
        (
            json!({"username": "ab", "email": "a@example.com", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "bad name", "email": "a@example.com", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "Admin", "email": "a@example.com", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "okname", "email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"username": "okname", "email": "a@example.com"}),
            "password",
        ),
        (
            json!({"username": "okname", "email": "a@example.com", "password": PASSWORD, "role": "admin"}),
            "role",
        ),
        (
            json!({"username": "okname", "email": "a@example.com", "password": PASSWORD, "full_name": long_name}),
            "full_name",
        ),
        (
            json!({"username": 42, "email": "a@example.com", "password": PASSWORD}),
            "username",
        ),
    ];
    for (body, field) in cases {
        let res = app
            .post_json("/api/v1/auth/register", &body.to_string())
            .await;
        let problem = res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body}: {problem}");
    }
}

#[tokio::test]
async fn weak_passwords_are_400_naming_the_rule() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let cases = [
        ("Sh0rt!", "at least 8"),
        ("alllowercase1!", "upper-case"),
        ("ALLUPPERCASE1!", "lower-case"),
        ("NoDigitsHere!", "digit"),
        ("NoSpecials123", "special"),
        ("P@ssw0rd", "common"),
    ];
    let long = format!("Aa1!{}", "y".repeat(130));
    for (pw, rule) in cases
        .iter()
        .copied()
        .chain([(long.as_str(), "at most 128")])
    {
        let body = json!({"username": "weakling", "email": "weak@example.com", "password": pw});
        let res = app
            .post_json("/api/v1/auth/register", &body.to_string())
            .await;
        let problem = res.assert_problem(StatusCode::BAD_REQUEST, "weak_password");
        assert!(
            problem["detail"].as_str().unwrap().contains(rule),
            "{pw}: {problem}"
        );
    }
}

#[tokio::test]
async fn login_issues_tokens_and_a_hardened_cookie() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        app.register("bob").await;
        let res = app.login_raw("BOB@example.com", PASSWORD).await;
        assert_eq!(res.status, StatusCode::OK, "{backend:?}");
        let body = res.json();
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], 900);
        assert!(
            body.get("refresh_token").is_none(),
            "browsers get it only as a cookie"
        );
        assert_eq!(res.header("cache-control"), Some("no-store"));
        let cookie = res.set_cookie_header().unwrap();
        for attr in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/api/v1/auth",
            "Max-Age=604800",
        ] {
            assert!(cookie.contains(attr), "{cookie}");
        }

        // The access token: claims and kid as the contract says.
        let token = body["access_token"].as_str().unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "HS256");
        assert!(header["kid"].is_string());
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        for claim in ["sub", "role", "type", "iat", "exp", "jti", "iss", "aud"] {
            assert!(claims.get(claim).is_some(), "{claim} missing: {claims}");
        }
        assert_eq!(claims["type"], "access");
        assert_eq!(claims["role"], "user");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            900
        );

        let me = app.get_with_token("/api/v1/users/me", token).await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(me.json()["username"], "bob");
        assert_eq!(me.header("cache-control"), Some("no-store"));
    }
}

#[tokio::test]
async fn oauth2_password_form_accepts_username_or_email() {
    let app = TestApp::new(&Backend::Sqlite).await;
    app.register("carol").await;
    for username in ["carol", "CAROL", "carol@example.com"] {
        let form =
            format!("grant_type=password&username={username}&password=Str0ng-Passw0rd%21&scope=");
        let res = app
            .send(
                Request::post("/api/v1/auth/login")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Body::from(form))
                    .unwrap(),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::OK,
            "{username}: {}",
            String::from_utf8_lossy(&res.body)
        );
        assert_eq!(res.json()["token_type"], "bearer");
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_email_are_indistinguishable() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        app.register("dave").await;
        let wrong = app.login_raw("dave@example.com", "Wr0ng-Passw0rd!").await;
        let unknown = app.login_raw("nobody@example.com", PASSWORD).await;
        for res in [&wrong, &unknown] {
            let p = res.assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
            assert_eq!(p["detail"], "Invalid email or password");
            assert_eq!(res.header("www-authenticate"), Some("Bearer"));
            assert!(res.refresh_cookie().is_none());
        }
        assert_eq!(problem_without_id(&wrong), problem_without_id(&unknown));
    }
}

#[tokio::test]
async fn login_input_rules_are_422() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let huge = "A".repeat(1025);
    for body in [
        json!({"email": "a@example.com", "password": ""}),
        json!({"email": "a@example.com", "password": huge}),
        json!({"email": "a@example.com"}),
        json!({"email": "not-an-email", "password": "x"}),
        json!({"email": "a@example.com", "password": "x", "extra": 1}),
    ] {
        let res = app.post_json("/api/v1/auth/login", &body.to_string()).await;
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
    }
}

#[tokio::test]
async fn injection_payloads_are_just_data() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        for email in [
            "' OR '1'='1'--@example.com",
            "a@example.com'; DROP TABLE users;--",
        ] {
            let res = app.login_raw(email, "' OR 1=1 --").await;
            assert!(
                res.status == StatusCode::UNAUTHORIZED
                    || res.status == StatusCode::UNPROCESSABLE_ENTITY,
                "{email}: {}",
                res.status
            );
        }
        let form = "username=x%27%20OR%201%3D1--&password=%27%20OR%201%3D1";
        let res = app
            .send(
                Request::post("/api/v1/auth/login")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Body::from(form))
                    .unwrap(),
            )
            .await;
        res.assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        // Still one working table afterwards.
        app.register("survivor").await;
    }
}

#[tokio::test]
async fn protected_routes_refuse_missing_and_bad_tokens() {
    let app = TestApp::new(&Backend::Sqlite).await;
    app.register("erin").await;
    let (access, refresh) = app.login("erin@example.com", PASSWORD).await;

    let none = app.get("/api/v1/users/me").await;
    none.assert_problem(StatusCode::UNAUTHORIZED, "not_authenticated");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));

    let parts: Vec<&str> = access.split('.').collect();
    let none_alg = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["role"] = json!("admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    let bad_sig = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode([7u8; 32])
    );
    for bad in [
        none_alg.as_str(),
        &tampered,
        &bad_sig,
        &refresh,
        "garbage",
        "a.b.c",
    ] {
        let res = app.get_with_token("/api/v1/users/me", bad).await;
        res.assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
        assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    }

    // Another service's tokens: same secret, other issuer or audience.
    for (var, value) in [
        ("JWT_ISSUER", "someone-else"),
        ("JWT_AUDIENCE", "another-api"),
    ] {
        let foreign = TestApp::with(&Backend::Sqlite, &[(var, value)], Default::default()).await;
        foreign.register("erin").await;
        let (foreign_token, _) = foreign.login("erin@example.com", PASSWORD).await;
        let res = app.get_with_token("/api/v1/users/me", &foreign_token).await;
        res.assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    }
    // A token signed with another secret.
    let other = TestApp::with(
        &Backend::Sqlite,
        &[("JWT_SECRET_KEY", "another-secret-0123456789-0123456789-xyz")],
        Default::default(),
    )
    .await;
    other.register("erin").await;
    let (other_token, _) = other.login("erin@example.com", PASSWORD).await;
    app.get_with_token("/api/v1/users/me", &other_token)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");

    // Expired: the clock moves past the 15 minutes.
    assert_eq!(
        app.get_with_token("/api/v1/users/me", &access).await.status,
        StatusCode::OK
    );
    app.clock.advance(std::time::Duration::from_secs(15 * 60));
    app.get_with_token("/api/v1/users/me", &access)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
}

async fn refresh_with_cookie(app: &TestApp, token: &str) -> crate::harness::TestResponse {
    app.send(
        Request::post("/api/v1/auth/refresh")
            .header("cookie", format!("refresh_token={token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_login() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        app.register("frank").await;
        let (access1, r1) = app.login("frank@example.com", PASSWORD).await;

        let res = refresh_with_cookie(&app, &r1).await;
        assert_eq!(res.status, StatusCode::OK, "{backend:?}");
        assert_eq!(res.header("cache-control"), Some("no-store"));
        let r2 = res.refresh_cookie().unwrap();
        assert_ne!(r2, r1);
        let access2 = res.json()["access_token"].as_str().unwrap().to_owned();
        assert_eq!(
            app.get_with_token("/api/v1/users/me", &access2)
                .await
                .status,
            StatusCode::OK
        );

        // r1 was rotated: presenting it again is reuse.
        let reused = refresh_with_cookie(&app, &r1).await;
        reused.assert_problem(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
        assert_eq!(
            reused.refresh_cookie().as_deref(),
            Some(""),
            "cookie cleared"
        );
        // ...which revokes every token of that login, r2 and access tokens included.
        refresh_with_cookie(&app, &r2)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
        for access in [&access1, &access2] {
            app.get_with_token("/api/v1/users/me", access)
                .await
                .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
        }

        // Another login of the same user is unaffected.
        let (other_access, other_refresh) = app.login("frank@example.com", PASSWORD).await;
        assert_eq!(
            app.get_with_token("/api/v1/users/me", &other_access)
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            refresh_with_cookie(&app, &other_refresh).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_yield_one_winner() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        app.register("gina").await;
        let (_, r1) = app.login("gina@example.com", PASSWORD).await;
        let (a, b) = tokio::join!(
            refresh_with_cookie(&app, &r1),
            refresh_with_cookie(&app, &r1)
        );
        let ok = [a.status, b.status]
            .iter()
            .filter(|s| **s == StatusCode::OK)
            .count();
        assert!(ok <= 1, "{backend:?}: both refreshes succeeded");
    }
}

#[tokio::test]
async fn refresh_in_the_body_for_non_browser_clients() {
    let app = TestApp::new(&Backend::Sqlite).await;
    app.register("hank").await;
    let (_, r1) = app.login("hank@example.com", PASSWORD).await;
    let res = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": r1}).to_string(),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let r2 = res.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(res.refresh_cookie().as_deref(), Some(r2.as_str()));
    let res = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": r2}).to_string(),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);

    for body in [json!({"refresh_token": "made-up"}), json!({})] {
        let res = app
            .post_json("/api/v1/auth/refresh", &body.to_string())
            .await;
        res.assert_problem(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
        assert_eq!(res.refresh_cookie().as_deref(), Some(""));
    }
    let res = app
        .send(
            Request::post("/api/v1/auth/refresh")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    res.assert_problem(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
}

#[tokio::test]
async fn logout_revokes_the_refresh_token_and_denies_the_access_token() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        app.register("ivy").await;
        let (access, refresh) = app.login("ivy@example.com", PASSWORD).await;
        let logout = || {
            app.send(
                Request::post("/api/v1/auth/logout")
                    .header("authorization", format!("Bearer {access}"))
                    .header("cookie", format!("refresh_token={refresh}"))
                    .body(Body::empty())
                    .unwrap(),
            )
        };
        let res = logout().await;
        assert_eq!(res.status, StatusCode::OK, "{backend:?}");
        assert_eq!(res.json()["message"], "Logged out");
        assert_eq!(res.refresh_cookie().as_deref(), Some(""));
        assert!(res.set_cookie_header().unwrap().contains("Max-Age=0"));

        app.get_with_token("/api/v1/users/me", &access)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
        refresh_with_cookie(&app, &refresh)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
        assert_eq!(logout().await.status, StatusCode::OK, "idempotent");
    }
}

#[tokio::test]
async fn lockout_after_consecutive_failures_even_for_unknown_emails() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        app.register("jack").await;
        for email in ["jack@example.com", "ghost@example.com"] {
            for _ in 0..5 {
                app.login_raw(email, "Wr0ng-Passw0rd!")
                    .await
                    .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
            }
            // Locked: even the right password is refused, with Retry-After.
            let res = app.login_raw(email, PASSWORD).await;
            res.assert_problem(StatusCode::TOO_MANY_REQUESTS, "account_locked");
            let retry: u64 = res.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=30 * 60).contains(&retry), "{retry}");
        }
        // The lock lifts when the window ends.
        app.clock
            .advance(std::time::Duration::from_secs(30 * 60 + 1));
        app.login("jack@example.com", PASSWORD).await;
    }
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let app = TestApp::with(
        &Backend::Sqlite,
        &[("MAX_LOGIN_ATTEMPTS", "3")],
        Default::default(),
    )
    .await;
    app.register("kate").await;
    for _ in 0..2 {
        app.login_raw("kate@example.com", "Wr0ng-Passw0rd!").await;
    }
    app.login("kate@example.com", PASSWORD).await;
    for _ in 0..2 {
        app.login_raw("kate@example.com", "Wr0ng-Passw0rd!").await;
    }
    app.login("kate@example.com", PASSWORD).await;
}

#[tokio::test]
async fn weaker_hashes_are_upgraded_on_login() {
    for backend in backends() {
        let weak = TestApp::new(&backend).await;
        weak.register("liam").await;
        let stored = || weak.text("SELECT password_hash FROM users");
        assert!(stored().await.contains("m=64,t=1,p=1"));
        // Same database, raised parameters.
        let strong = TestApp::on(
            weak.db.share(),
            config(&[("ARGON2_MEMORY_COST", "128"), ("ARGON2_TIME_COST", "2")]),
            Default::default(),
        );
        strong.login("liam@example.com", PASSWORD).await;
        assert!(stored().await.contains("m=128,t=2,p=1"), "{backend:?}");
        // The upgraded hash still logs in, and old tokens are not disturbed.
        strong.login("liam@example.com", PASSWORD).await;
    }
}

#[tokio::test]
async fn pii_is_encrypted_at_rest() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let body = json!({
            "username": "mona",
            "email": "mona.secret@example.com",
            "password": PASSWORD,
            "full_name": "Mona Secretname"
        });
        assert_eq!(
            app.post_json("/api/v1/auth/register", &body.to_string())
                .await
                .status,
            StatusCode::CREATED
        );
        let sql = "SELECT email_enc || ' ' || COALESCE(full_name_enc, '') || ' ' || email_index FROM users";
        let row = app.text(sql).await;
        assert!(
            !row.contains("mona.secret") && !row.contains("Secretname"),
            "{row}"
        );
        assert!(
            row.starts_with("k1:"),
            "key id stored with the value: {row}"
        );
    }
}

#[tokio::test]
async fn jwks_is_empty_for_symmetric_keys() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let res = app.get("/.well-known/jwks.json").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json(), json!({"keys": []}));
}

#[tokio::test]
async fn logs_carry_security_events_but_never_secrets() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let unique = format!("nora{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let email = format!("{unique}@example.com");
    app.register(&unique).await;
    app.login_raw(&email, "Wr0ng-Passw0rd!").await;
    let (access, r1) = app.login(&email, PASSWORD).await;
    let r2 = refresh_with_cookie(&app, &r1)
        .await
        .refresh_cookie()
        .unwrap();
    refresh_with_cookie(&app, &r1).await; // reuse
    app.send(
        Request::post("/api/v1/auth/logout")
            .header("authorization", format!("Bearer {access}"))
            .header("cookie", format!("refresh_token={r2}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    let text = crate::harness::logs::text();
    for secret in [
        PASSWORD,
        "Wr0ng-Passw0rd!",
        &access,
        &r1,
        &r2,
        crate::harness::TEST_JWT_SECRET,
    ] {
        assert!(!text.contains(secret), "a secret reached the logs");
    }
    assert!(!text.contains(&email), "emails are masked in logs");
    let masked = format!("{}***@example.com", &unique[..1]);
    let events: Vec<Value> = crate::harness::logs::lines()
        .into_iter()
        .filter(|l| l["target"] == "gatehouse::security")
        .filter(|l| {
            l["details"].as_str().is_some_and(|d| d.contains(&masked))
                || l["event"] == "refresh_token_reused"
        })
        .collect();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    for expected in [
        "user_registered",
        "login_failed",
        "login_succeeded",
        "refresh_token_reused",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} not logged: {names:?}"
        );
    }
}

#[tokio::test]
async fn tokens_follow_the_users_current_state() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        app.register("olga").await;
        let (access, refresh) = app.login("olga@example.com", PASSWORD).await;
        // A fresh app on the same database has a cold cache, like another
        // instance: what it sees is what is stored.
        let fresh = || TestApp::on(app.db.share(), config(&[]), Default::default());
        assert_eq!(
            fresh()
                .get_with_token("/api/v1/users/me", &access)
                .await
                .status,
            StatusCode::OK
        );

        // Credentials changed (version bumped): earlier tokens die.
        app.exec("UPDATE users SET auth_version = auth_version + 1")
            .await;
        fresh()
            .get_with_token("/api/v1/users/me", &access)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
        app.exec("UPDATE users SET auth_version = 0").await;

        // Deactivated: tokens and refresh refused.
        app.exec("UPDATE users SET is_active = FALSE").await;
        let other = fresh();
        other
            .get_with_token("/api/v1/users/me", &access)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
        refresh_with_cookie(&other, &refresh)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
        other
            .login_raw("olga@example.com", PASSWORD)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");

        // The refresh refused above ended that login for good: reactivation
        // does not bring it back, on any instance.
        app.exec("UPDATE users SET is_active = TRUE").await;
        fresh()
            .get_with_token("/api/v1/users/me", &access)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");

        // Demoted: the token's role claim no longer counts; the stored role does.
        let (access, _) = app.login("olga@example.com", PASSWORD).await;
        app.exec("UPDATE users SET role = 'viewer'").await;
        let me = fresh().get_with_token("/api/v1/users/me", &access).await;
        assert_eq!(me.json()["role"], "viewer", "{backend:?}");

        // Deleted: gone on the next request.
        app.exec("DELETE FROM users").await;
        fresh()
            .get_with_token("/api/v1/users/me", &access)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    }
}

#[tokio::test]
async fn eddsa_tokens_and_published_keys() {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;

    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("jwt.pem");
    let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    std::fs::write(
        &key_path,
        key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    let key_file = key_path.display().to_string();
    let app = TestApp::with(
        &Backend::Sqlite,
        &[
            ("JWT_ALGORITHM", "EdDSA"),
            ("JWT_PRIVATE_KEY_FILE", &key_file),
        ],
        Default::default(),
    )
    .await;
    app.register("pia").await;
    let (access, _) = app.login("pia@example.com", PASSWORD).await;
    assert_eq!(
        app.get_with_token("/api/v1/users/me", &access).await.status,
        StatusCode::OK
    );

    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(access.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let jwks = app.get("/.well-known/jwks.json").await.json();
    let published = &jwks["keys"][0];
    assert_eq!(published["kid"], header["kid"]);
    assert_eq!(published["kty"], "OKP");
    assert_eq!(published["crv"], "Ed25519");
    assert_eq!(
        published["x"],
        URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes())
    );
    assert!(published.get("d").is_none());

    // An HS256 token is refused by an EdDSA deployment, whatever its secret.
    let hs = TestApp::new(&Backend::Sqlite).await;
    hs.register("pia").await;
    let (hs_token, _) = hs.login("pia@example.com", PASSWORD).await;
    app.get_with_token("/api/v1/users/me", &hs_token)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
}
