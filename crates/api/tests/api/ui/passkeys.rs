//! Passkeys through the pages' endpoints, as the pages' script calls them
//! (a software authenticator in the browser's place): added from the
//! account page, renamed, used to sign in alone, the step-up asked for and
//! given, removed; the form token required throughout.

use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};

use super::{Browser, csrf_of, html, location};
use crate::harness::{Backend, PASSWORD, TestApp};
use crate::passkeys::{Device, ORIGIN};

fn json_of(res: &crate::harness::TestResponse, status: StatusCode) -> Value {
    assert_eq!(res.status, status, "{}", html(res));
    res.json()
}

/// Adds a passkey named `name` from the account page.
async fn add(b: &mut Browser<'_>, device: &mut Device, name: &str) {
    let csrf = csrf_of(&b.get("/ui/account").await);
    let begun = b
        .script("/ui/account/passkeys/begin", &csrf, json!({}))
        .await;
    let begun = json_of(&begun, StatusCode::OK);
    let credential = device.create(ORIGIN, &begun["options"]);
    let body = json!({"ceremony": begun["ceremony"], "name": name, "credential": credential});
    let done = b.script("/ui/account/passkeys/finish", &csrf, body).await;
    let done = json_of(&done, StatusCode::CREATED);
    assert_eq!(done["location"], "/ui/account?notice=passkey_added");
}

#[tokio::test]
async fn a_passkey_added_on_the_account_page_signs_in_alone() {
    let app = TestApp::new(&Backend::Sqlite).await;
    app.register("pk_page").await;
    let mut b = Browser::new(&app);
    assert_eq!(location(&b.sign_in("pk_page", "").await), "/ui/account");
    let page = b.get("/ui/account").await;
    assert!(html(&page).contains("You have no passkeys yet"));
    let csrf = csrf_of(&page);

    // The form token is required, in the header; a signed-out one is not it.
    let res = b.script("/ui/account/passkeys/begin", "", json!({})).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.json()["code"],
        "csrf_failed",
        "the script reads problems"
    );
    let mut device = Device::new();
    add(&mut b, &mut device, "Laptop").await;
    let page = html(&b.get("/ui/account?notice=passkey_added").await);
    assert!(page.contains("The passkey was added"), "{page}");
    assert!(page.contains("<strong>Laptop</strong>") && page.contains("never used"));

    // Renamed with a plain form; a name too long is said in words.
    let id = passkey_id(&page);
    let rename = format!("/ui/account/passkeys/{id}/rename");
    let long = "x".repeat(65);
    let res = b.post(&rename, &[("csrf", &csrf), ("name", &long)]).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html(&res).contains("A passkey&#x27;s name is 1 to 64 characters long"),
        "{}",
        html(&res)
    );
    let res = b
        .post(&rename, &[("csrf", &csrf), ("name", "Work laptop")])
        .await;
    assert_eq!(location(&res), "/ui/account?notice=passkey_renamed");

    // Signed out, the passkey alone signs in: the same cookies as a
    // password sign-in, bound to a new login.
    let res = b.post("/ui/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(location(&res), "/ui/sign-in?notice=signed_out");
    let mut other = Browser::new(&app);
    let csrf = csrf_of(&other.get("/ui/sign-in").await);
    let res = other
        .script("/ui/passkey/sign-in/begin", "nope", json!({}))
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let begun = other
        .script("/ui/passkey/sign-in/begin", &csrf, json!({}))
        .await;
    let begun = json_of(&begun, StatusCode::OK);
    let credential = device.get(ORIGIN, &begun["options"]).unwrap();
    let body = json!({"ceremony": begun["ceremony"], "credential": credential, "return_to": "https://evil.example/"});
    let done = other
        .script("/ui/passkey/sign-in/finish", &csrf, body)
        .await;
    let done = json_of(&done, StatusCode::OK);
    assert_eq!(done["location"], "/ui/account", "return_to is checked");
    assert!(holds_a_login(&other), "ui_session and ui_refresh set");
    let page = other.get("/ui/account").await;
    assert_eq!(page.status, StatusCode::OK);
    let body = html(&page);
    assert!(
        body.contains("this device") && body.contains("last used"),
        "{body}"
    );
    // The same assertion again is refused, in words.
    let res = other
        .script(
            "/ui/passkey/sign-in/finish",
            &csrf,
            json!({"ceremony": begun["ceremony"], "credential": credential}),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", html(&res));
    assert_eq!(res.json()["detail"], "Invalid email or password");
}

/// The id of the first passkey the account page lists.
fn passkey_id(page: &str) -> String {
    let start = page.find("/ui/account/passkeys/").unwrap() + "/ui/account/passkeys/".len();
    page[start..start + 36].to_owned()
}

/// Whether the browser holds both cookies of a login.
fn holds_a_login(b: &Browser<'_>) -> bool {
    b.cookies.contains_key("ui_session") && b.cookies.contains_key("ui_refresh")
}

#[tokio::test]
async fn the_step_up_is_asked_for_then_given_on_the_page() {
    let app = TestApp::new(&Backend::Sqlite).await;
    app.register("pk_stepup").await;
    let mut b = Browser::new(&app);
    assert_eq!(location(&b.sign_in("pk_stepup", "").await), "/ui/account");
    let mut device = Device::new();
    add(&mut b, &mut device, "Phone").await;
    let id = passkey_id(&html(&b.get("/ui/account").await));

    // Past REAUTH_MAX_AGE_MINUTES: adding answers the script 401.
    app.clock.advance(Duration::from_secs(11 * 60));
    let csrf = csrf_of(&b.get("/ui/account").await);
    let res = b
        .script("/ui/account/passkeys/begin", &csrf, json!({}))
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["code"], "reauthentication_required");
    // The script re-authenticates with the form, asking for JSON: 204 and
    // a new access cookie of the same login; then adding goes on.
    let before = b.cookies.get("ui_session").cloned();
    let req = http::Request::post("/ui/account/reauth")
        .header("cookie", b.cookie_header())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .header("origin", "http://localhost")
        .body(axum::body::Body::from(
            serde_urlencoded::to_string([("csrf", csrf.as_str()), ("password", "Wrong-Passw0rd!")])
                .unwrap(),
        ))
        .unwrap();
    let res = app.send(req).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let req = http::Request::post("/ui/account/reauth")
        .header("cookie", b.cookie_header())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .header("origin", "http://localhost")
        .body(axum::body::Body::from(
            serde_urlencoded::to_string([("csrf", csrf.as_str()), ("password", PASSWORD)]).unwrap(),
        ))
        .unwrap();
    let res = app.send(req).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", html(&res));
    b.keep(&res);
    assert_ne!(b.cookies.get("ui_session").cloned(), before);
    let res = b
        .script("/ui/account/passkeys/begin", &csrf, json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK);

    // Removing, stale again, shows the form in the page (no script).
    app.clock.advance(Duration::from_secs(11 * 60));
    let csrf = csrf_of(&b.get("/ui/account").await);
    let remove = format!("/ui/account/passkeys/{id}/remove");
    let res = b.post(&remove, &[("csrf", &csrf)]).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let body = html(&res);
    assert!(
        body.contains("Removing a passkey needs a recent sign-in"),
        "{body}"
    );
    assert!(
        body.contains(r#"<section id="reauth" class="card" aria-labelledby="reauth-h" data-csrf="#)
    );
    assert!(
        !body.contains(
            r#"tabindex="-1" hidden>
<h2 id="reauth-h">"#
        ),
        "the form is shown"
    );
    // A wrong password is said in words; the right one lets it through.
    let res = b
        .post(
            "/ui/account/reauth",
            &[("csrf", &csrf), ("password", "Wrong-Passw0rd!")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(html(&res).contains("That password or code is not correct"));
    let res = b
        .post(
            "/ui/account/reauth",
            &[("csrf", &csrf), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&res), "/ui/account?notice=reauthenticated");
    let res = b.post(&remove, &[("csrf", &csrf)]).await;
    assert_eq!(location(&res), "/ui/account?notice=passkey_removed");
    assert_eq!(app.count("SELECT COUNT(*) FROM passkeys").await, 0);
}

#[tokio::test]
async fn a_passkey_stands_in_for_the_code_on_the_second_step() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let (token, _, _) = crate::mfa::enrolled(&app, "pk_second").await;
    // The passkey, added through the API by the same account.
    let mut device = Device::new();
    let begun = app
        .call("POST", "/api/v1/auth/passkeys/register/begin", &token, None)
        .await;
    let begun = json_of(&begun, StatusCode::OK);
    let credential = device.create(ORIGIN, &begun["options"]);
    let body = json!({"ceremony": begun["ceremony"], "credential": credential});
    let res = app
        .call(
            "POST",
            "/api/v1/auth/passkeys/register/finish",
            &token,
            Some(body),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);

    let mut b = Browser::new(&app);
    let res = b.sign_in("pk_second", "/ui/account").await;
    assert_eq!(res.status, StatusCode::OK);
    let page = html(&res);
    assert!(
        page.contains(r#"id="passkey-sign-in""#),
        "the passkey is offered"
    );
    let start = page.find(r#"data-mfa-token=""#).unwrap() + 16;
    let mfa_token = page[start..start + page[start..].find('"').unwrap()].to_owned();
    let csrf = csrf_of(&res);
    let begun = b
        .script(
            "/ui/passkey/second-factor/begin",
            &csrf,
            json!({"mfa_token": mfa_token}),
        )
        .await;
    let begun = json_of(&begun, StatusCode::OK);
    let credential = device.get(ORIGIN, &begun["options"]).unwrap();
    let body = json!({"ceremony": begun["ceremony"], "credential": credential, "mfa_token": mfa_token, "return_to": "/ui/account"});
    let done = b
        .script("/ui/passkey/second-factor/finish", &csrf, body)
        .await;
    assert_eq!(json_of(&done, StatusCode::OK)["location"], "/ui/account");
    assert_eq!(b.get("/ui/account").await.status, StatusCode::OK);
}
