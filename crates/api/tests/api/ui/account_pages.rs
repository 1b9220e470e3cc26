//! The account's own pages over the real router: the profile (a new name
//! at once, a new address only asked for, after a recent sign-in), the
//! password (every login ends), two-factor setup (the secret shown again
//! until a code proves it, the backup codes shown once) and API keys
//! (shown once, rotated, revoked); the form token and the use cases'
//! rules throughout.

use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};

use super::{Browser, csrf_of, html, location, user};
use crate::harness::{Backend, PASSWORD, TestApp};
use crate::mfa;

/// Past the window in which a sign-in counts as recent (10 minutes).
const STALE: Duration = Duration::from_secs(11 * 60);

/// Whether the page shows the re-authentication form (not `hidden`).
fn asks_reauth(page: &str) -> bool {
    let start = page
        .find(r#"<section id="reauth""#)
        .expect("the reauth form");
    let tag = &page[start..start + page[start..].find('>').unwrap()];
    !tag.contains(" hidden")
}

/// The text of the element with `id`, up to its closing tag.
fn element(page: &str, id: &str) -> String {
    let start = page.find(&format!(r#"id="{id}""#)).expect(id);
    let start = start + page[start..].find('>').unwrap() + 1;
    let end = start + page[start..].find("</").unwrap();
    page[start..end].to_owned()
}

/// Owned form fields as the browser posts them.
fn pairs<'a>(fields: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Proves the login again with the password, coming back to `next`.
async fn reauthenticate(b: &mut Browser<'_>, csrf: &str, next: &str) {
    let res = b
        .post(
            "/ui/account/reauth",
            &[("csrf", csrf), ("next", next), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&res), format!("{next}?notice=reauthenticated"));
}

#[tokio::test]
async fn the_profile_saves_a_name_at_once_and_asks_for_a_new_address() {
    let app = TestApp::new(&Backend::Sqlite).await;
    user(&app, "prof_page").await;
    let mut b = Browser::new(&app);
    assert_eq!(location(&b.sign_in("prof_page", "").await), "/ui/account");
    let page = b.get("/ui/account/profile").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(html(&page).contains(r#"value="prof_page@example.com""#));
    let csrf = csrf_of(&page);

    // Without the form token nothing changes.
    let res = b
        .post(
            "/ui/account/profile",
            &[("full_name", "Mallory"), ("email", "prof_page@example.com")],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let name = "Ada <b>Lovelace</b>";
    let res = b
        .post(
            "/ui/account/profile",
            &[
                ("csrf", &csrf),
                ("full_name", name),
                ("email", "PROF_PAGE@example.com"),
            ],
        )
        .await;
    assert_eq!(
        location(&res),
        "/ui/account/profile?notice=profile_saved",
        "the same address in other case asks for nothing"
    );
    // The name is stored as text (the use case drops the markup).
    let account = html(&b.get("/ui/account").await);
    assert!(account.contains("<dd>Ada Lovelace ·"), "{account}");
    assert!(!account.contains("<b>") && !account.contains("Mallory"));

    // A malformed address is said in words, and what was typed comes back
    // as text.
    let res = b
        .post(
            "/ui/account/profile",
            &[("csrf", &csrf), ("full_name", name), ("email", "<script>x")],
        )
        .await;
    assert_eq!(
        res.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        html(&res)
    );
    let body = html(&res);
    assert!(body.contains(r#"value="&lt;script&gt;x""#), "{body}");
    assert!(!body.contains("<script>x"));

    // A new address takes a recent sign-in: asked for, given, then sent.
    app.clock.advance(STALE);
    app.outbox.take().await;
    let new = [
        ("csrf", csrf.as_str()),
        ("full_name", name),
        ("email", "prof_new@example.com"),
    ];
    let res = b.post("/ui/account/profile", &new).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let body = html(&res);
    assert!(body.contains("needs a recent sign-in"), "{body}");
    assert!(asks_reauth(&body), "{body}");
    assert!(body.contains(r#"value="prof_new@example.com""#), "kept");
    assert!(body.contains(r#"name="next" value="/ui/account/profile""#));
    assert!(app.outbox.take().await.is_empty(), "nothing sent");
    reauthenticate(&mut b, &csrf, "/ui/account/profile").await;
    let res = b.post("/ui/account/profile", &new).await;
    assert_eq!(
        location(&res),
        "/ui/account/profile?notice=email_change_requested"
    );
    assert!(
        !app.outbox.take_for("prof_new@example.com").await.is_empty(),
        "a link to the new address"
    );
    let page = html(
        &b.get("/ui/account/profile?notice=email_change_requested")
            .await,
    );
    assert!(page.contains("Check the new address"), "{page}");
    assert!(
        page.contains(r#"value="prof_page@example.com""#),
        "unchanged until confirmed"
    );
}

#[tokio::test]
async fn a_changed_password_signs_out_everywhere() {
    let app = TestApp::new(&Backend::Sqlite).await;
    user(&app, "pw_page").await;
    let mut b = Browser::new(&app);
    let mut other = Browser::new(&app);
    assert_eq!(location(&b.sign_in("pw_page", "").await), "/ui/account");
    assert_eq!(location(&other.sign_in("pw_page", "").await), "/ui/account");
    let page = b.get("/ui/account/password").await;
    let csrf = csrf_of(&page);
    let new = "N3w-Passw0rd!x";
    let form = |current: &'static str, new: &'static str, again: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("current_password", current.to_owned()),
            ("new_password", new.to_owned()),
            ("confirm_password", again.to_owned()),
        ]
    };
    let cases = [
        (
            form(PASSWORD, new, "N3w-Passw0rd!y"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "The two passwords do not match",
        ),
        (
            form("Wr0ng-Passw0rd!", new, new),
            StatusCode::BAD_REQUEST,
            "The current password is incorrect",
        ),
        (
            form(PASSWORD, "short", "short"),
            StatusCode::BAD_REQUEST,
            "at least 8 characters",
        ),
    ];
    for (fields, status, words) in cases {
        let res = b.post("/ui/account/password", &pairs(&fields)).await;
        assert_eq!(res.status, status, "{}", html(&res));
        let body = html(&res);
        assert!(body.contains(words), "{body}");
        assert!(!body.contains(new), "a password never comes back");
    }
    // Still signed in after the refusals, on both browsers.
    assert_eq!(other.get("/ui/account").await.status, StatusCode::OK);
    let res = b
        .post("/ui/account/password", &pairs(&form(PASSWORD, new, new)))
        .await;
    assert_eq!(location(&res), "/ui/sign-in?notice=password_changed");
    assert!(
        !b.cookies.contains_key("ui_session"),
        "this browser signed out"
    );
    let res = other.get("/ui/account").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "the other browser too");
    assert!(location(&res).starts_with("/ui/sign-in"));
    // The new password signs in; the old one does not.
    assert_eq!(
        app.login_raw("pw_page@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login_raw("pw_page@example.com", new).await.status,
        StatusCode::OK
    );
}

/// The base32 key the setup page shows, as bytes.
fn secret_on(page: &str) -> Vec<u8> {
    let key: String = element(page, "totp-secret").split_whitespace().collect();
    totp_rs::Secret::try_from_base32(&key)
        .unwrap()
        .as_bytes()
        .to_vec()
}

#[tokio::test]
async fn two_factor_is_set_up_turned_on_with_backup_codes_shown_once_and_off() {
    let app = TestApp::new(&Backend::Sqlite).await;
    user(&app, "tf_page").await;
    let mut b = Browser::new(&app);
    assert_eq!(location(&b.sign_in("tf_page", "").await), "/ui/account");
    let page = b.get("/ui/account/2fa").await;
    let csrf = csrf_of(&page);
    assert!(html(&page).contains(r#"action="/ui/account/2fa/setup""#));
    let res = b.post("/ui/account/2fa/setup", &[("csrf", &csrf)]).await;
    assert_eq!(location(&res), "/ui/account/2fa");
    let page = html(&b.get("/ui/account/2fa").await);
    assert!(
        page.contains(r#"src="data:image/svg+xml;base64,"#),
        "{page}"
    );
    let secret = secret_on(&page);

    // A wrong code is said in words, and the same key is shown again.
    let res = b
        .post(
            "/ui/account/2fa/enable",
            &[("csrf", &csrf), ("code", "000000")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let again = html(&res);
    assert!(again.contains("That code is not right"), "{again}");
    assert_eq!(secret_on(&again), secret, "no new secret to scan");
    assert!(!again.contains(r#"<span class="tag ok">on</span>"#));

    let code = mfa::code(&app, &secret);
    let res = b
        .post(
            "/ui/account/2fa/enable",
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", html(&res));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let shown = html(&res);
    assert!(
        shown.contains("Two-factor authentication is on."),
        "{shown}"
    );
    let list = &shown[shown.find(r#"id="backup-codes""#).unwrap()..];
    let codes: Vec<String> = list[..list.find("</ul>").unwrap()]
        .split("<code>")
        .skip(1)
        .map(|c| c[..c.find("</code>").unwrap()].to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{shown}");
    // Shown once: the page does not show them again.
    let page = html(&b.get("/ui/account/2fa").await);
    assert!(
        !page.contains(&codes[0]) && !page.contains("totp-secret"),
        "{page}"
    );
    assert!(page.contains(r#"action="/ui/account/2fa/disable""#));

    // Signing in now asks for the second step; a backup code passes it.
    let mut other = Browser::new(&app);
    let res = other.sign_in("tf_page", "").await;
    let body = html(&res);
    let start = body.find(r#"name="mfa_token" value=""#).unwrap() + 24;
    let mfa_token = body[start..start + body[start..].find('"').unwrap()].to_owned();
    let res = other
        .post(
            "/ui/sign-in/code",
            &[
                ("csrf", &csrf_of(&res)),
                ("mfa_token", &mfa_token),
                ("code", &codes[0]),
            ],
        )
        .await;
    assert_eq!(location(&res), "/ui/account");

    // Turning it off takes a recent sign-in, the password and a code.
    app.clock.advance(STALE);
    let off = |code: String| {
        [
            ("csrf", csrf.clone()),
            ("password", PASSWORD.to_owned()),
            ("code", code),
        ]
    };
    let fields = off(mfa::code(&app, &secret));
    let res = b.post("/ui/account/2fa/disable", &pairs(&fields)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let body = html(&res);
    assert!(asks_reauth(&body), "{body}");
    assert!(body.contains(r#"id="reauth-code""#), "a code proves it too");
    reauthenticate(&mut b, &csrf, "/ui/account/2fa").await;
    app.clock.advance(Duration::from_secs(30));
    let fields = off(mfa::code(&app, &secret));
    let res = b.post("/ui/account/2fa/disable", &pairs(&fields)).await;
    assert_eq!(location(&res), "/ui/account/2fa?notice=mfa_disabled");
    let page = html(&b.get("/ui/account").await);
    assert!(
        !page.contains(r#"<span class="tag ok">on</span>"#),
        "{page}"
    );
}

async fn me_with_key(app: &TestApp, key: &str) -> StatusCode {
    let req = Request::get("/api/v1/users/me")
        .header("x-api-key", key)
        .body(Body::empty())
        .unwrap();
    app.send(req).await.status
}

#[tokio::test]
async fn api_keys_are_shown_once_rotated_and_revoked() {
    let app = TestApp::new(&Backend::Sqlite).await;
    user(&app, "key_page").await;
    let mut b = Browser::new(&app);
    assert_eq!(location(&b.sign_in("key_page", "").await), "/ui/account");
    let page = html(&b.get("/ui/account/api-keys").await);
    assert!(page.contains("You have no API keys"));
    // A user's own permissions only are offered.
    assert!(page.contains(r#"value="self:read""#) && !page.contains(r#"value="users:read""#));
    let csrf = csrf_of(&b.get("/ui/account/api-keys").await);

    let res = b
        .post(
            "/ui/account/api-keys",
            &[("csrf", &csrf), ("name", "no scope")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&res).contains("Choose at least one permission"));
    // A permission the user does not hold is refused by the use case.
    let res = b
        .post(
            "/ui/account/api-keys",
            &[("csrf", &csrf), ("name", "greedy"), ("scope", "users:read")],
        )
        .await;
    assert_eq!(
        res.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        html(&res)
    );

    let made = [
        ("csrf", csrf.as_str()),
        ("name", "backup <script>"),
        ("scope", "self:read"),
        ("scope", "content:read"),
        ("expires_in_days", "30"),
    ];
    let res = b.post("/ui/account/api-keys", &made).await;
    assert_eq!(res.status, StatusCode::OK, "{}", html(&res));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let body = html(&res);
    assert!(body.contains("backup &lt;script&gt;") && !body.contains("<script>"));
    assert!(body.contains("it is shown only now"), "{body}");
    let key = element(&body, "new-api-key");
    assert_eq!(me_with_key(&app, &key).await, StatusCode::OK);
    let page = html(&b.get("/ui/account/api-keys").await);
    assert!(!page.contains(&key), "shown once");
    assert!(page.contains("self:read, content:read"), "{page}");
    let start = page.find("/ui/account/api-keys/").unwrap() + 21;
    let id = page[start..start + 36].to_owned();

    // Rotation gives a new key; the old one stops working.
    let res = b
        .post(
            &format!("/ui/account/api-keys/{id}/rotate"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", html(&res));
    assert!(html(&res).contains("The old one no longer works"));
    let rotated = element(&html(&res), "new-api-key");
    assert_ne!(rotated, key);
    assert_eq!(me_with_key(&app, &key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_with_key(&app, &rotated).await, StatusCode::OK);

    // Another user cannot rotate or revoke it: not found, still working.
    user(&app, "key_other").await;
    let mut other = Browser::new(&app);
    assert_eq!(
        location(&other.sign_in("key_other", "").await),
        "/ui/account"
    );
    let other_csrf = csrf_of(&other.get("/ui/account/api-keys").await);
    let res = other
        .post(
            &format!("/ui/account/api-keys/{id}/rotate"),
            &[("csrf", &other_csrf)],
        )
        .await;
    assert!(res.status.is_client_error(), "{}", html(&res));
    let res = other
        .post(
            &format!("/ui/account/api-keys/{id}/revoke"),
            &[("csrf", &other_csrf)],
        )
        .await;
    assert!(res.status.is_client_error(), "{}", html(&res));
    assert_eq!(me_with_key(&app, &rotated).await, StatusCode::OK);

    // A new key takes a recent sign-in.
    app.clock.advance(STALE);
    let res = b.post("/ui/account/api-keys", &made).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(asks_reauth(&html(&res)));

    // Revoked without the form token: refused, the key still works.
    let revoke = format!("/ui/account/api-keys/{id}/revoke");
    assert_eq!(b.post(&revoke, &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(me_with_key(&app, &rotated).await, StatusCode::OK);
    let res = b.post(&revoke, &[("csrf", &csrf)]).await;
    assert_eq!(
        location(&res),
        "/ui/account/api-keys?notice=api_key_revoked"
    );
    assert_eq!(me_with_key(&app, &rotated).await, StatusCode::UNAUTHORIZED);
}
