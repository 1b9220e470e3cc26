//! Passkeys driven by a software authenticator (`webauthn-authenticator-rs`'s
//! `SoftPasskey`: real P-256 keys, real signatures over what the server
//! sent): registration, username-less and named sign-in, the second
//! factor, re-authentication, management, and every refusal — reused,
//! expired or foreign ceremonies, other origins and relying parties,
//! replayed assertions, counter regression, rows forged in the database.

use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::{self, SoftToken};
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator};
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

use crate::harness::mail::token_of;
use crate::harness::{PASSWORD, TestApp, TestResponse, backends, config};
use crate::mfa::enrolled;

pub const ORIGIN: &str = "http://localhost:3000";

/// A passkey device: `SoftPasskey` signs; this keeps what a discoverable
/// (resident) credential keeps beside its key — the relying party and the
/// user handle — and answers username-less requests with them, as a phone
/// or security key does. `SoftPasskey` itself stores no user handle, so it
/// is given the credential to use and the handle is returned beside its
/// signature (the signature never covers the handle).
pub struct Device {
    soft: Box<dyn AuthenticatorBackend>,
    /// (relying party, credential id, user handle) of each registration.
    creds: Vec<(String, Vec<u8>, Vec<u8>)>,
}

impl Device {
    pub fn new() -> Self {
        // `true`: the soft token reports user verification (a PIN or
        // biometric), which passkeys require.
        Self {
            soft: Box::new(SoftPasskey::new(true)),
            creds: Vec::new(),
        }
    }

    /// A security key of a known model: `SoftToken` attests each of its
    /// credentials with a certificate under its own vendor root, naming
    /// its AAGUID. Returns the device and that root (PEM).
    fn security_key() -> (Self, String) {
        use der::EncodePem;
        let (token, root) = SoftToken::new(true).unwrap();
        let pem = root.to_pem(der::pem::LineEnding::LF).unwrap();
        let device = Self {
            soft: Box::new(token),
            creds: Vec::new(),
        };
        (device, pem)
    }

    /// `navigator.credentials.create()` with the server's `options`.
    pub fn create(&mut self, origin: &str, options: &Value) -> Value {
        let mut options: CreationChallengeResponse =
            serde_json::from_value(options.clone()).unwrap();
        let rp = options.public_key.rp.id.clone();
        let user = options.public_key.user.id.to_vec();
        // The soft token cannot say "resident"; this device keeps the handle.
        if let Some(sel) = options.public_key.authenticator_selection.as_mut() {
            sel.require_resident_key = false;
        }
        let made = self
            .soft
            .do_registration(Url::parse(origin).unwrap(), options)
            .unwrap();
        self.creds.push((rp, made.raw_id.to_vec(), user));
        serde_json::to_value(&made).unwrap()
    }

    /// `navigator.credentials.get()` with the server's `options`.
    pub fn get(&mut self, origin: &str, options: &Value) -> Result<Value, String> {
        let mut options: RequestChallengeResponse =
            serde_json::from_value(options.clone()).unwrap();
        let rp = options.public_key.rp_id.clone();
        let listed: Vec<Vec<u8>> = options
            .public_key
            .allow_credentials
            .iter()
            .map(|c| c.id.to_vec())
            .collect();
        let (_, id, user) = self
            .creds
            .iter()
            .find(|(r, id, _)| *r == rp && (listed.is_empty() || listed.contains(id)))
            .cloned()
            .ok_or("no credential for this request")?;
        if listed.is_empty() {
            options.public_key.allow_credentials = vec![webauthn_rs_proto::AllowCredentials {
                type_: "public-key".into(),
                id: id.clone(),
                transports: None,
            }];
        }
        let mut signed = self
            .soft
            .do_authentication(Url::parse(origin).unwrap(), options)
            .map_err(|e| format!("{e:?}"))?;
        signed.response.user_handle = Some(user);
        Ok(serde_json::to_value(&signed).unwrap())
    }
}

fn ok(res: &TestResponse, status: StatusCode) -> Value {
    assert_eq!(res.status, status, "{}", String::from_utf8_lossy(&res.body));
    res.json()
}

/// Registers a passkey named `name` for the login `token`.
async fn add_passkey(app: &TestApp, token: &str, device: &mut Device, name: &str) -> Value {
    let begun = app
        .call("POST", "/api/v1/auth/passkeys/register/begin", token, None)
        .await;
    let begun = ok(&begun, StatusCode::OK);
    assert_eq!(
        begun["options"]["publicKey"]["authenticatorSelection"]["residentKey"],
        "required"
    );
    assert_eq!(
        begun["options"]["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let mut credential = device.create(ORIGIN, &begun["options"]);
    // What a browser reports beside the signed data (the soft token reports
    // none), and a name no browser sends, which is not kept.
    credential["response"]["transports"] = json!(["internal", "hybrid", "smart-card"]);
    let body = json!({"ceremony": begun["ceremony"], "name": name, "credential": credential});
    let res = app
        .call(
            "POST",
            "/api/v1/auth/passkeys/register/finish",
            token,
            Some(body),
        )
        .await;
    ok(&res, StatusCode::CREATED)
}

async fn begin_login(app: &TestApp, email: Option<&str>) -> Value {
    let body = match email {
        Some(e) => json!({"email": e}),
        None => json!({}),
    };
    let res = app
        .post_json("/api/v1/auth/passkeys/login/begin", &body.to_string())
        .await;
    ok(&res, StatusCode::OK)
}

async fn finish_login(app: &TestApp, ceremony: &Value, credential: &Value) -> TestResponse {
    let body = json!({"ceremony": ceremony, "credential": credential});
    app.post_json("/api/v1/auth/passkeys/login/finish", &body.to_string())
        .await
}

/// A username-less sign-in with `device`: the answer.
async fn sign_in(app: &TestApp, device: &mut Device) -> TestResponse {
    let begun = begin_login(app, None).await;
    let credential = device.get(ORIGIN, &begun["options"]).unwrap();
    finish_login(app, &begun["ceremony"], &credential).await
}

async fn audit_count(app: &TestApp, event: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) FROM audit_log WHERE event = '{event}'"
    ))
    .await
}

#[tokio::test]
async fn register_list_rename_and_sign_in_with_a_passkey() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (id, token) = app.account("ada", "user").await;
        let mut device = Device::new();
        let added = add_passkey(&app, &token, &mut device, "Laptop").await;
        assert_eq!(added["name"], "Laptop");
        assert!(added["last_used_at"].is_null());
        assert_eq!(audit_count(&app, "passkey_added").await, 1);
        // The notice is queued with the change.
        assert_eq!(
            app.count("SELECT COUNT(*) FROM mail_outbox WHERE kind = 'passkey_added'")
                .await,
            1,
            "{backend:?}"
        );

        // Username-less: the browser picks the passkey, the server the account.
        let res = sign_in(&app, &mut device).await;
        let body = ok(&res, StatusCode::OK);
        assert!(res.refresh_cookie().is_some());
        let access = body["access_token"].as_str().unwrap();
        let me = ok(
            &app.get_with_token("/api/v1/users/me", access).await,
            StatusCode::OK,
        );
        assert_eq!(me["id"], id);
        assert_eq!(audit_count(&app, "passkey_login").await, 1);

        // For a named account: the options list its passkey.
        let begun = begin_login(&app, Some("ada@example.com")).await;
        let listed = &begun["options"]["publicKey"]["allowCredentials"];
        assert_eq!(listed[0]["id"], added_credential_id(&app, &added).await);
        assert_eq!(listed[0]["transports"], json!(["internal", "hybrid"]));
        let credential = device.get(ORIGIN, &begun["options"]).unwrap();
        ok(
            &finish_login(&app, &begun["ceremony"], &credential).await,
            StatusCode::OK,
        );

        let list = app
            .call("GET", "/api/v1/users/me/passkeys", &token, None)
            .await;
        let list = ok(&list, StatusCode::OK);
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert!(list[0]["last_used_at"].is_string());
        assert_eq!(list[0]["transports"], json!(["internal", "hybrid"]));
        assert!(list[0].get("credential").is_none() && list[0].get("public_key").is_none());
        let path = format!(
            "/api/v1/users/me/passkeys/{}",
            added["id"].as_str().unwrap()
        );
        let renamed = app
            .call("PATCH", &path, &token, Some(json!({"name": "Work laptop"})))
            .await;
        assert_eq!(ok(&renamed, StatusCode::OK)["name"], "Work laptop");
        let bad = app
            .call("PATCH", &path, &token, Some(json!({"name": ""})))
            .await;
        bad.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
    }
}

async fn added_credential_id(app: &TestApp, added: &Value) -> String {
    app.text(&format!(
        "SELECT credential_id FROM passkeys WHERE name = '{}'",
        added["name"].as_str().unwrap()
    ))
    .await
}

#[tokio::test]
async fn an_unknown_account_gets_the_same_shape_of_options_every_time() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        app.account("bob", "user").await;
        let a = begin_login(&app, Some("nobody@example.com")).await;
        let b = begin_login(&app, Some("nobody@example.com")).await;
        let c = begin_login(&app, Some("bob@example.com")).await;
        let ids = |v: &Value| v["options"]["publicKey"]["allowCredentials"].clone();
        // Stand-ins, stable per address, for an account without passkeys or
        // without existence alike.
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(ids(&a).as_array().unwrap().len(), 1);
        assert_eq!(ids(&c).as_array().unwrap().len(), 1);
        assert_ne!(ids(&a), ids(&c));
        assert_ne!(a["ceremony"], b["ceremony"]);
    }
}

#[tokio::test]
async fn a_passkey_is_the_second_factor_in_place_of_a_code() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (token, _, _) = enrolled(&app, "cyd").await;
        let mut device = Device::new();
        add_passkey(&app, &token, &mut device, "Key").await;

        let first = ok(
            &app.login_raw("cyd@example.com", PASSWORD).await,
            StatusCode::OK,
        );
        let mfa_token = first["mfa_token"].as_str().unwrap();
        let begin = app
            .post_json(
                "/api/v1/auth/login/mfa/passkey/begin",
                &json!({"mfa_token": mfa_token}).to_string(),
            )
            .await;
        let begun = ok(&begin, StatusCode::OK);
        let credential = device.get(ORIGIN, &begun["options"]).unwrap();
        let finish = |ceremony: &Value, credential: &Value| {
            json!({"mfa_token": mfa_token, "ceremony": ceremony, "credential": credential})
                .to_string()
        };
        let res = app
            .post_json(
                "/api/v1/auth/login/mfa/passkey/finish",
                &finish(&begun["ceremony"], &credential),
            )
            .await;
        assert!(ok(&res, StatusCode::OK)["access_token"].is_string());

        // A sign-in ceremony does not finish the second step, nor the
        // reverse: each is bound to what began it.
        let other = begin_login(&app, None).await;
        let credential = device.get(ORIGIN, &other["options"]).unwrap();
        let res = app
            .post_json(
                "/api/v1/auth/login/mfa/passkey/finish",
                &finish(&other["ceremony"], &credential),
            )
            .await;
        res.assert_problem(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    }
}

#[tokio::test]
async fn spent_expired_and_foreign_ceremonies_are_refused() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("dee", "user").await;
        let mut device = Device::new();
        add_passkey(&app, &token, &mut device, "Phone").await;

        // Spent: the same ceremony and answer twice.
        let begun = begin_login(&app, None).await;
        let credential = device.get(ORIGIN, &begun["options"]).unwrap();
        ok(
            &finish_login(&app, &begun["ceremony"], &credential).await,
            StatusCode::OK,
        );
        finish_login(&app, &begun["ceremony"], &credential)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");

        // Replayed: an old answer to a new ceremony (its challenge differs).
        let fresh = begin_login(&app, None).await;
        finish_login(&app, &fresh["ceremony"], &credential)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");

        // Expired: past the ceremony's lifetime.
        let begun = begin_login(&app, None).await;
        let credential = device.get(ORIGIN, &begun["options"]).unwrap();
        app.clock.advance(Duration::from_secs(301));
        finish_login(&app, &begun["ceremony"], &credential)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");

        // Made up.
        finish_login(&app, &json!("not-a-ceremony"), &credential)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");

        // A registration ceremony of another login of the same user.
        let (other_token, _) = app.login("dee@example.com", PASSWORD).await;
        let begun = app
            .call("POST", "/api/v1/auth/passkeys/register/begin", &token, None)
            .await;
        let begun = ok(&begun, StatusCode::OK);
        let made = Device::new().create(ORIGIN, &begun["options"]);
        let body = json!({"ceremony": begun["ceremony"], "credential": made});
        app.call(
            "POST",
            "/api/v1/auth/passkeys/register/finish",
            &other_token,
            Some(body),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "passkey_rejected");
        assert_eq!(app.count("SELECT COUNT(*) FROM passkeys").await, 1);
        assert!(audit_count(&app, "login_failed").await >= 4);
    }
}

#[tokio::test]
async fn other_origins_relying_parties_and_cloned_authenticators_are_refused() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("eve", "user").await;
        let mut device = Device::new();
        add_passkey(&app, &token, &mut device, "Key").await;

        // Another origin of the same host (a port not in WEBAUTHN_ORIGINS).
        let begun = begin_login(&app, None).await;
        let credential = device
            .get("http://localhost:9999", &begun["options"])
            .unwrap();
        finish_login(&app, &begun["ceremony"], &credential)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");

        // Signed for another relying party (a phishing site's).
        let begun = begin_login(&app, None).await;
        let mut options = begun["options"].clone();
        options["publicKey"]["rpId"] = json!("evil.example");
        let (_, id, user) = device.creds[0].clone();
        device.creds.push(("evil.example".into(), id, user));
        let credential = device.get("https://evil.example", &options).unwrap();
        device.creds.pop();
        finish_login(&app, &begun["ceremony"], &credential)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");

        // A counter that does not move forward: another copy of the key
        // has signed more often than this one (a clone).
        app.exec("UPDATE passkeys SET sign_count = 1000").await;
        sign_in(&app, &mut device)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        app.exec("UPDATE passkeys SET sign_count = 0").await;
        ok(&sign_in(&app, &mut device).await, StatusCode::OK);

        // A row changed by hand (without the key) no longer verifies.
        app.exec("UPDATE passkeys SET credential = replace(credential, '\"user_verified\":true', '\"user_verified\":false')").await;
        sign_in(&app, &mut device)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
}

#[tokio::test]
async fn a_ceremony_begun_on_one_instance_finishes_on_another() {
    for backend in backends() {
        let first = TestApp::new(&backend).await;
        let second = TestApp::on(first.db.share(), config(&[]), axum::Router::new());
        let (_, token) = first.account("fay", "user").await;
        let mut device = Device::new();
        // Registration begun on the first, finished on the second.
        let begun = first
            .call("POST", "/api/v1/auth/passkeys/register/begin", &token, None)
            .await;
        let begun = ok(&begun, StatusCode::OK);
        let credential = device.create(ORIGIN, &begun["options"]);
        let body = json!({"ceremony": begun["ceremony"], "credential": credential});
        let res = second
            .call(
                "POST",
                "/api/v1/auth/passkeys/register/finish",
                &token,
                Some(body),
            )
            .await;
        ok(&res, StatusCode::CREATED);
        // Sign-in begun on the second, finished on the first; then the
        // ceremony is spent for both.
        let begun = begin_login(&second, None).await;
        let credential = device.get(ORIGIN, &begun["options"]).unwrap();
        ok(
            &finish_login(&first, &begun["ceremony"], &credential).await,
            StatusCode::OK,
        );
        finish_login(&second, &begun["ceremony"], &credential)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
}

#[tokio::test]
async fn adding_and_removing_need_a_recent_proof_and_keys_are_refused() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("gus", "user").await;
        let mut device = Device::new();
        let added = add_passkey(&app, &token, &mut device, "Key").await;
        let path = format!(
            "/api/v1/users/me/passkeys/{}",
            added["id"].as_str().unwrap()
        );

        // An API key manages no credentials, whatever its scopes.
        let key = app
            .call(
                "POST",
                "/api/v1/api-keys",
                &token,
                Some(json!({"name": "k"})),
            )
            .await;
        let key = ok(&key, StatusCode::CREATED)["key"]
            .as_str()
            .unwrap()
            .to_owned();
        for (method, route) in [
            ("POST", "/api/v1/auth/passkeys/register/begin"),
            ("GET", "/api/v1/users/me/passkeys"),
            ("DELETE", path.as_str()),
        ] {
            let req = http::Request::builder()
                .method(method)
                .uri(route)
                .header("x-api-key", &key)
                .body(axum::body::Body::empty())
                .unwrap();
            app.send(req)
                .await
                .assert_problem(StatusCode::FORBIDDEN, "api_key_not_allowed");
        }

        // Past REAUTH_MAX_AGE_MINUTES: neither adding nor removing.
        app.clock.advance(Duration::from_secs(11 * 60));
        app.call("POST", "/api/v1/auth/passkeys/register/begin", &token, None)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "reauthentication_required");
        app.call("DELETE", &path, &token, None)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "reauthentication_required");

        // Re-authenticated with the passkey itself, the login may remove it.
        let begun = app
            .call("POST", "/api/v1/auth/reauth/passkey/begin", &token, None)
            .await;
        let begun = ok(&begun, StatusCode::OK);
        let credential = device.get(ORIGIN, &begun["options"]).unwrap();
        let body = json!({"passkey": {"ceremony": begun["ceremony"], "credential": credential}});
        let res = app
            .call("POST", "/api/v1/auth/reauth", &token, Some(body))
            .await;
        let fresh = ok(&res, StatusCode::OK)["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let res = app.call("DELETE", &path, &fresh, None).await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
        assert_eq!(audit_count(&app, "passkey_removed").await, 1);
        app.call("DELETE", &path, &fresh, None)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not_found");
        // Gone: it signs in no more.
        sign_in(&app, &mut device)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
}

#[tokio::test]
async fn the_last_passkey_of_an_account_without_a_password_stays() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("hal", "user").await;
        let mut device = Device::new();
        let first = add_passkey(&app, &token, &mut device, "One").await;
        let second = add_passkey(&app, &token, &mut device, "Two").await;
        // The account's password is gone (as for an account made with a
        // passkey alone).
        app.exec("UPDATE users SET password_hash = '' WHERE username = 'hal'")
            .await;
        // Both removals at once: exactly one may pass.
        let paths: Vec<String> = [&first, &second]
            .iter()
            .map(|p| format!("/api/v1/users/me/passkeys/{}", p["id"].as_str().unwrap()))
            .collect();
        let (a, b) = tokio::join!(
            app.call("DELETE", &paths[0], &token, None),
            app.call("DELETE", &paths[1], &token, None)
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::NO_CONTENT, StatusCode::CONFLICT],
            "{backend:?}"
        );
        assert_eq!(app.count("SELECT COUNT(*) FROM passkeys").await, 1);
        let last = if a.status == StatusCode::CONFLICT {
            &paths[0]
        } else {
            &paths[1]
        };
        app.call("DELETE", last, &token, None)
            .await
            .assert_problem(StatusCode::CONFLICT, "last_factor");
        // ...and it still signs in (named: the device offers the one left).
        let begun = begin_login(&app, Some("hal@example.com")).await;
        let credential = device.get(ORIGIN, &begun["options"]).unwrap();
        ok(
            &finish_login(&app, &begun["ceremony"], &credential).await,
            StatusCode::OK,
        );
    }
}

#[tokio::test]
async fn malformed_credentials_are_field_problems() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let begun = begin_login(&app, None).await;
        let res = finish_login(&app, &begun["ceremony"], &json!({"id": 5})).await;
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
        let res = app
            .post_json("/api/v1/auth/passkeys/login/finish", r#"{"ceremony":"x"}"#)
            .await;
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
    }
}

/// Registers `name` without a password; the verification token mailed.
async fn passwordless(app: &TestApp, name: &str) -> String {
    let body = json!({"username": name, "email": format!("{name}@example.com")});
    let res = app
        .post_json("/api/v1/auth/register/passkey", &body.to_string())
        .await;
    let user = ok(&res, StatusCode::CREATED);
    assert_eq!(user["email_verified"], false);
    assert!(user.get("password_hash").is_none());
    let secret = app.outbox.secret_for(&format!("{name}@example.com")).await;
    token_of(&secret)
}

async fn signup(app: &TestApp, token: &str, device: &mut Device) -> TestResponse {
    let begun = app
        .post_json(
            "/api/v1/auth/passkeys/signup/begin",
            &json!({"token": token}).to_string(),
        )
        .await;
    let begun = ok(&begun, StatusCode::OK);
    let credential = device.create(ORIGIN, &begun["options"]);
    let body = json!({"token": token, "ceremony": begun["ceremony"], "credential": credential});
    app.post_json("/api/v1/auth/passkeys/signup/finish", &body.to_string())
        .await
}

#[tokio::test]
async fn an_account_made_with_a_passkey_alone_verifies_its_address_first() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let token = passwordless(&app, "ivy").await;
        // No password to guess: any password is wrong (and counted).
        app.login_raw("ivy@example.com", PASSWORD)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        app.login_raw("ivy@example.com", "")
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");

        let mut device = Device::new();
        let res = signup(&app, &token, &mut device).await;
        let body = ok(&res, StatusCode::OK);
        let access = body["access_token"].as_str().unwrap();
        let me = ok(
            &app.get_with_token("/api/v1/users/me", access).await,
            StatusCode::OK,
        );
        assert_eq!(me["email_verified"], true, "{backend:?}");
        // The token is spent: no second passkey by mail.
        app.post_json(
            "/api/v1/auth/passkeys/signup/begin",
            &json!({"token": token}).to_string(),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_mail_token");
        ok(&sign_in(&app, &mut device).await, StatusCode::OK);

        // An account with a password gets no passkey from a mail alone.
        app.register("jon").await;
        let secret = app.outbox.secret_for("jon@example.com").await;
        app.post_json(
            "/api/v1/auth/passkeys/signup/begin",
            &json!({"token": token_of(&secret)}).to_string(),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid_mail_token");
    }
}

#[tokio::test]
async fn a_password_can_be_removed_and_added_back_but_never_the_last_factor() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("kit", "user").await;
        // Without a passkey the password is the last factor.
        app.call("DELETE", "/api/v1/users/me/password", &token, None)
            .await
            .assert_problem(StatusCode::CONFLICT, "last_factor");
        let mut device = Device::new();
        let added = add_passkey(&app, &token, &mut device, "Key").await;
        let res = app
            .call("DELETE", "/api/v1/users/me/password", &token, None)
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
        // Every login ended; the password signs in no more; the passkey does.
        app.get_with_token("/api/v1/users/me", &token)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
        app.login_raw("kit@example.com", PASSWORD)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        let signed = ok(&sign_in(&app, &mut device).await, StatusCode::OK);
        let token = signed["access_token"].as_str().unwrap().to_owned();
        let path = format!(
            "/api/v1/users/me/passkeys/{}",
            added["id"].as_str().unwrap()
        );
        app.call("DELETE", &path, &token, None)
            .await
            .assert_problem(StatusCode::CONFLICT, "last_factor");
        app.call("DELETE", "/api/v1/users/me/password", &token, None)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not_found");

        // A password back (recent proof: the passkey sign-in).
        let res = app
            .call(
                "PUT",
                "/api/v1/users/me/password",
                &token,
                Some(json!({"new_password": "An0ther-Passw0rd!"})),
            )
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
        let (token, _) = app.login("kit@example.com", "An0ther-Passw0rd!").await;
        app.call(
            "PUT",
            "/api/v1/users/me/password",
            &token,
            Some(json!({"new_password": "Yet-An0ther-Passw0rd!"})),
        )
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");
        // Now the passkey may go.
        let res = app.call("DELETE", &path, &token, None).await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn removing_the_password_and_the_last_passkey_at_once_keeps_one() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("lou", "user").await;
        let mut device = Device::new();
        let added = add_passkey(&app, &token, &mut device, "Key").await;
        let path = format!(
            "/api/v1/users/me/passkeys/{}",
            added["id"].as_str().unwrap()
        );
        let (a, b) = tokio::join!(
            app.call("DELETE", "/api/v1/users/me/password", &token, None),
            app.call("DELETE", &path, &token, None)
        );
        let ok_count = [a.status, b.status]
            .iter()
            .filter(|s| **s == StatusCode::NO_CONTENT)
            .count();
        assert_eq!(ok_count, 1, "{backend:?}: {} / {}", a.status, b.status);
        let left = app.count("SELECT COUNT(*) FROM passkeys").await
            + app
                .count("SELECT COUNT(*) FROM users WHERE username = 'lou' AND password_hash <> ''")
                .await;
        assert_eq!(left, 1, "{backend:?}");
    }
}

/// Settings that admit only `aaguid`, attested under the roots in `pem`
/// (written to `dir`).
fn allow_list(dir: &tempfile::TempDir, pem: &str, aaguid: &str) -> Vec<(String, String)> {
    let path = dir.path().join(format!("roots-{aaguid}.pem"));
    std::fs::write(&path, pem).unwrap();
    vec![
        (
            "WEBAUTHN_ATTESTATION_CA_FILE".into(),
            path.display().to_string(),
        ),
        ("WEBAUTHN_ALLOWED_AAGUIDS".into(), aaguid.into()),
    ]
}

fn pairs(settings: &[(String, String)]) -> Vec<(&str, &str)> {
    settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Begins and finishes a registration with `device`: the finish's answer.
async fn register_with(app: &TestApp, token: &str, device: &mut Device) -> TestResponse {
    let begun = app
        .call("POST", "/api/v1/auth/passkeys/register/begin", token, None)
        .await;
    let begun = ok(&begun, StatusCode::OK);
    let credential = device.create(ORIGIN, &begun["options"]);
    let body = json!({"ceremony": begun["ceremony"], "credential": credential});
    app.call(
        "POST",
        "/api/v1/auth/passkeys/register/finish",
        token,
        Some(body),
    )
    .await
}

#[tokio::test]
async fn an_allow_list_admits_only_attested_keys_of_the_listed_models() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends() {
        let open = TestApp::new(&backend).await;
        let (_, token) = open.account("hal", "user").await;
        // A synced passkey, registered before the organisation set a list.
        let mut phone = Device::new();
        ok(
            &register_with(&open, &token, &mut phone).await,
            StatusCode::CREATED,
        );

        let (mut key, root) = Device::security_key();
        let listed_settings = allow_list(&dir, &root, &softtoken::AAGUID.to_string());
        let listed = TestApp::on(
            open.db.share(),
            config(&pairs(&listed_settings)),
            axum::Router::new(),
        );
        // The options ask for the authenticator's own attestation.
        let begun = listed
            .call("POST", "/api/v1/auth/passkeys/register/begin", &token, None)
            .await;
        assert_eq!(
            ok(&begun, StatusCode::OK)["options"]["publicKey"]["attestation"],
            "direct"
        );

        // The passkey registered before the list no longer signs in.
        sign_in(&listed, &mut phone)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        // Nor can another unattested one be added.
        let mut other_phone = Device::new();
        register_with(&listed, &token, &mut other_phone)
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "passkey_rejected");
        // A key of the listed model, attested by its vendor, is admitted
        // and signs in.
        ok(
            &register_with(&listed, &token, &mut key).await,
            StatusCode::CREATED,
        );
        ok(&sign_in(&listed, &mut key).await, StatusCode::OK);

        // A key of the same model under a root that is not listed (another
        // vendor claiming the AAGUID) is refused.
        let (mut impostor, _) = Device::security_key();
        register_with(&listed, &token, &mut impostor)
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "passkey_rejected");

        // The model taken off the list: its keys stop signing in and none
        // registers, though the vendor root is still trusted.
        let other_model = allow_list(&dir, &root, "cb69481e-8ff7-4039-93ec-0a2729a154a8");
        let narrowed = TestApp::on(
            open.db.share(),
            config(&pairs(&other_model)),
            axum::Router::new(),
        );
        sign_in(&narrowed, &mut key)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        // (Another account, so the key's credential is not excluded.)
        let (_, other) = open.account("ida", "user").await;
        register_with(&narrowed, &other, &mut key)
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "passkey_rejected");

        // Without a list, every passkey works again: the policy is the
        // settings', not a mark written on the rows.
        ok(&sign_in(&open, &mut phone).await, StatusCode::OK);
        ok(&sign_in(&open, &mut key).await, StatusCode::OK);
    }
}

/// With 2FA on, the second step offers a passkey only when one of the
/// account's passkeys is of an allowed model.
#[tokio::test]
async fn the_second_step_offers_only_passkeys_the_allow_list_admits() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends() {
        let open = TestApp::new(&backend).await;
        let (token, _, _) = enrolled(&open, "jan").await;
        let mut phone = Device::new();
        add_passkey(&open, &token, &mut phone, "Phone").await;
        let methods = |res: &TestResponse| ok(res, StatusCode::OK)["methods"].clone();
        let login = open.login_raw("jan@example.com", PASSWORD).await;
        assert_eq!(methods(&login), json!(["totp", "passkey"]), "{backend:?}");

        let (mut key, root) = Device::security_key();
        let settings = allow_list(&dir, &root, &softtoken::AAGUID.to_string());
        let listed = TestApp::on(
            open.db.share(),
            config(&pairs(&settings)),
            axum::Router::new(),
        );
        let login = listed.login_raw("jan@example.com", PASSWORD).await;
        assert_eq!(methods(&login), json!(["totp"]), "{backend:?}");
        let mfa_token = ok(&login, StatusCode::OK)["mfa_token"].clone();
        listed
            .post_json(
                "/api/v1/auth/login/mfa/passkey/begin",
                &json!({"mfa_token": mfa_token}).to_string(),
            )
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_mfa_code");

        // A key of the listed model brings the passkey back.
        ok(
            &register_with(&listed, &token, &mut key).await,
            StatusCode::CREATED,
        );
        let login = listed.login_raw("jan@example.com", PASSWORD).await;
        assert_eq!(methods(&login), json!(["totp", "passkey"]), "{backend:?}");
    }
}
