//! The hosted pages in a real browser: headless Chromium driven through
//! chromedriver (WebDriver) against a real `gatehouse serve`, at 360 px
//! wide: sign up → sign in → the account shows this device's session →
//! sign out → sign in again, that time with the keyboard alone; a
//! forgotten password reset from the mail the real SMTP sink received; a
//! passkey added on the account page with Chromium's virtual authenticator
//! (the W3C WebAuthn WebDriver extension), the step-up asked for and given
//! on the way, then used alone to sign in, through the browser's autofill
//! and through the button, and in place of the code after the password;
//! a sign-in form stripped of its CSRF token refused in words; a
//! `return_to` followed only to an origin of `UI_RETURN_ORIGINS`.
//! Also: sign up → the verification mail → the address confirmed → 2FA
//! turned on from the account's page → signed out → signed in with a code;
//! an administrator finding a user in the console, demoting and
//! deactivating them (the user's open page signed out on its next
//! request), and the audit page with those events and a valid chain.
//! Skipped, with a notice, where Chromium or chromedriver (or, for the
//! mail, aiosmtpd) is not installed; failed instead under
//! `GATEHOUSE_REQUIRE_BROWSER=1`, as CI runs them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly"
)]

mod support;

use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use serde_json::json;
use support::browser::{
    Cdp, Driver, arrive, browser, enable_2fa, fill, find, fits, on_localhost, path, see, shows,
    sign_in, skip, submit,
};
use support::deployment::{Backend, Deployment, PASSWORD};
use support::smtp::{self, Sink, free_port};

#[tokio::test]
async fn sign_up_sign_in_account_sign_out_in_chromium() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let server = Deployment::start(
        Backend::Sqlite,
        // Plain HTTP on loopback: the cookies cannot be `Secure` here.
        &[("SECURE_COOKIES", "false"), ("RATE_LIMIT_ENABLED", "false")],
    )
    .await;
    let base = server.base(0).to_owned();
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start(&chromedriver);
    let c = driver.session(&chromium, profile.path()).await;
    journey(&c, &base).await;
    c.close().await.unwrap();
    server.stop().await;
}

async fn journey(c: &Client, base: &str) {
    // Sign up.
    c.goto(&format!("{base}/ui/sign-up")).await.unwrap();
    see(c, "Create an account").await;
    fits(c).await;
    fill(c, "username", "browser_user").await;
    fill(c, "email", "browser_user@example.com").await;
    fill(c, "full_name", "Browser User").await;
    fill(c, "password", PASSWORD).await;
    submit(c, "/ui/sign-up").await;
    see(c, "Check your mail").await;
    fits(c).await;

    // Sign in.
    c.find(Locator::LinkText("Go to sign in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(c, "Sign in").await;
    fits(c).await;
    fill(c, "login", "browser_user").await;
    fill(c, "password", PASSWORD).await;
    submit(c, "/ui/sign-in").await;
    arrive(c, "/ui/account").await;
    see(c, "Your account").await;
    fits(c).await;
    let current = find(c, ".sessions li.current").await.text().await.unwrap();
    assert!(current.contains("this device"), "{current}");
    assert!(current.contains("Chrome on Linux"), "{current}");
    let profile = find(c, "dl").await.text().await.unwrap();
    assert!(profile.contains("browser_user@example.com"), "{profile}");

    // Sign out.
    submit(c, "/ui/sign-out").await;
    arrive(c, "/ui/sign-in?notice=signed_out").await;
    let notice = find(c, ".notice").await.text().await.unwrap();
    assert_eq!(notice, "You are signed out.");
    // The account is closed to this browser now.
    c.goto(&format!("{base}/ui/account")).await.unwrap();
    arrive(c, "/ui/sign-in?return_to=%2Fui%2Faccount").await;

    // Sign in again with the keyboard alone: the first field has focus.
    see(c, "Sign in").await;
    let focused = c.active_element().await.unwrap();
    assert_eq!(focused.attr("id").await.unwrap().as_deref(), Some("login"));
    focused
        .send_keys(&format!("browser_user@example.com{}", Key::Tab))
        .await
        .unwrap();
    c.active_element()
        .await
        .unwrap()
        .send_keys(&format!("{PASSWORD}{}", Key::Enter))
        .await
        .unwrap();
    arrive(c, "/ui/account").await;
    see(c, "Your account").await;
    let sessions = c
        .find_all(Locator::Css(".sessions li"))
        .await
        .unwrap()
        .len();
    assert_eq!(sessions, 1, "the signed-out login is gone from the list");
}

#[tokio::test]
async fn forgotten_password_reset_from_the_mailed_link_in_chromium() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    if !smtp::available() {
        skip("the mail half of this browser test needs python3 with aiosmtpd");
        return;
    }
    let sink = Sink::start(free_port(), None);
    let smtp_url = format!("smtp://127.0.0.1:{}", sink.port);
    let (server, base) = on_localhost(&[
        ("SMTP_URL", smtp_url.as_str()),
        ("MAIL_FROM", "Gatehouse <no-reply@example.com>"),
    ])
    .await;
    server.register("forgetful").await;
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start(&chromedriver);
    let c = driver.session(&chromium, profile.path()).await;

    // Asked for from the sign-in page.
    c.goto(&format!("{base}/ui/sign-in")).await.unwrap();
    see(&c, "Sign in").await;
    c.find(Locator::LinkText("Forgot your password?"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(&c, "Forgotten password").await;
    fits(&c).await;
    fill(&c, "email", "forgetful@example.com").await;
    submit(&c, "/ui/forgot-password").await;
    see(&c, "Check your mail").await;

    // The mail, as the SMTP server received it, links to the page.
    let mails = sink
        .wait_for("forgetful@example.com", 2, Duration::from_secs(20))
        .await;
    let mail = mails
        .iter()
        .find(|m| m.subject() == Some("Reset your password"))
        .unwrap_or_else(|| panic!("a reset mail: {mails:?}"));
    let token = mail.token().unwrap();
    let link = format!("{base}/ui/reset-password?token={token}");
    assert!(mail.text.contains(&link), "{}", mail.text);
    c.goto(&link).await.unwrap();
    see(&c, "Set a new password").await;
    fits(&c).await;
    // Two different passwords are refused in words, then the right form.
    fill(&c, "new_password", NEW_PASSWORD).await;
    fill(&c, "confirm_password", "Not-The-Same1!").await;
    submit(&c, "/ui/reset-password").await;
    shows(&c, "[role=alert]", "The two passwords do not match").await;
    fill(&c, "new_password", NEW_PASSWORD).await;
    fill(&c, "confirm_password", NEW_PASSWORD).await;
    submit(&c, "/ui/reset-password").await;
    arrive(&c, "/ui/sign-in?notice=password_reset").await;

    // The old password is refused, the new one signs in.
    fill(&c, "login", "forgetful").await;
    fill(&c, "password", PASSWORD).await;
    submit(&c, "/ui/sign-in").await;
    shows(&c, "[role=alert]", "Invalid email or password").await;
    fill(&c, "password", NEW_PASSWORD).await;
    submit(&c, "/ui/sign-in").await;
    arrive(&c, "/ui/account").await;
    see(&c, "Your account").await;

    c.close().await.unwrap();
    server.stop().await;
    sink.stop();
}

const NEW_PASSWORD: &str = "N3w-Passw0rd!x";

/// `POST /session/{id}/webauthn/authenticator` (W3C WebAuthn §11.3): a
/// platform authenticator that holds passkeys and verifies its user.
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl fantoccini::wd::WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base_url.join(&format!(
            "session/{}/webauthn/authenticator",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (reqwest::Method, Option<String>) {
        let body = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
        });
        (reqwest::Method::POST, Some(body.to_string()))
    }
}

#[tokio::test]
async fn a_passkey_added_on_the_account_page_signs_in_alone_in_chromium() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let (server, base) = on_localhost(&[]).await;
    server.register("passkey_person").await;
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start(&chromedriver);
    let c = driver.session(&chromium, profile.path()).await;
    let added = c.issue_cmd(AddVirtualAuthenticator).await.unwrap();
    assert!(added.is_string(), "an authenticator id: {added}");

    // Signed in with the password, a passkey is added on the account page.
    c.goto(&format!("{base}/ui/sign-in")).await.unwrap();
    see(&c, "Sign in").await;
    let login = find(&c, "#login").await;
    assert_eq!(
        login.attr("autocomplete").await.unwrap().as_deref(),
        Some("username webauthn")
    );
    fill(&c, "login", "passkey_person").await;
    fill(&c, "password", PASSWORD).await;
    submit(&c, "/ui/sign-in").await;
    arrive(&c, "/ui/account").await;
    see(&c, "Your account").await;
    // The password was proved an hour ago: the login's `auth_time` moved
    // back, and the access cookie dropped so the page renews it from the
    // refresh token, carrying that time.
    server
        .sql("UPDATE {schema}.sessions SET auth_time = auth_time - 3600000")
        .await;
    c.delete_cookie("ui_session").await.unwrap();
    c.refresh().await.unwrap();
    see(&c, "Your account").await;
    let reauth = find(&c, "#reauth").await;
    assert!(!reauth.is_displayed().await.unwrap(), "not asked yet");

    // Adding asks to confirm first, then goes on by itself.
    fill(&c, "passkey-name", "Virtual key").await;
    find(&c, "#passkey-add button").await.click().await.unwrap();
    shows(
        &c,
        "#passkey-add .passkey-error",
        "Adding a passkey needs a recent sign-in",
    )
    .await;
    assert!(reauth.is_displayed().await.unwrap(), "the form is shown");
    let focused = c.active_element().await.unwrap();
    assert_eq!(
        focused.attr("id").await.unwrap().as_deref(),
        Some("reauth-password")
    );
    fill(&c, "reauth-password", "Wrong-Passw0rd!").await;
    submit(&c, "/ui/account/reauth").await;
    shows(
        &c,
        "#reauth .passkey-error",
        "That password or code is not correct",
    )
    .await;
    fill(&c, "reauth-password", PASSWORD).await;
    submit(&c, "/ui/account/reauth").await;
    arrive(&c, "/ui/account?notice=passkey_added").await;
    let listed = shows(&c, ".passkeys", "Virtual key").await;
    assert!(listed.contains("never used"), "{listed}");
    fits(&c).await;
    // The session cookies are out of the script's reach.
    let visible = c.execute("return document.cookie;", vec![]).await.unwrap();
    assert!(
        !visible.as_str().unwrap_or_default().contains("ui_session"),
        "{visible}"
    );

    // Signed out, the passkey alone signs in: offered by the browser's
    // autofill (conditional mediation), which Chromium's virtual
    // authenticator answers by itself…
    submit(&c, "/ui/sign-out").await;
    arrive(&c, "/ui/account").await;
    see(&c, "Your account").await;
    let current = find(&c, ".sessions li.current").await.text().await.unwrap();
    assert!(current.contains("this device"), "{current}");

    // …and, in a browser without that autofill, with the button.
    let hide_autofill = "PublicKeyCredential.isConditionalMediationAvailable = \
                         () => Promise.resolve(false);";
    c.issue_cmd(Cdp(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": hide_autofill}),
    ))
    .await
    .unwrap();
    submit(&c, "/ui/sign-out").await;
    arrive(&c, "/ui/sign-in?notice=signed_out").await;
    let error = find(&c, "#passkey-sign-in .passkey-error").await;
    assert!(
        !error.is_displayed().await.unwrap(),
        "no error before asking"
    );
    find(&c, "#passkey-sign-in button")
        .await
        .click()
        .await
        .unwrap();
    arrive(&c, "/ui/account").await;
    see(&c, "Your account").await;
    let current = find(&c, ".sessions li.current").await.text().await.unwrap();
    assert!(current.contains("this device"), "{current}");
    let listed = shows(&c, ".passkeys", "last used").await;
    assert!(listed.contains("Virtual key"), "{listed}");

    // With 2FA on (through the API), the passkey stands in for the code
    // after the password.
    let token = server.token("passkey_person").await;
    enable_2fa(&server, &token).await;
    c.goto(&format!("{base}/ui/sign-in")).await.unwrap();
    see(&c, "Sign in").await;
    fill(&c, "login", "passkey_person").await;
    fill(&c, "password", PASSWORD).await;
    submit(&c, "/ui/sign-in").await;
    see(&c, "Two-factor code").await;
    fits(&c).await;
    find(&c, "#passkey-sign-in button")
        .await
        .click()
        .await
        .unwrap();
    arrive(&c, "/ui/account").await;
    see(&c, "Your account").await;
    let profile = find(&c, "dl").await.text().await.unwrap();
    assert!(
        profile.contains("Two-factor authentication\non"),
        "{profile}"
    );

    c.close().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_sign_in_posted_without_its_csrf_token_is_refused_in_chromium() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let (server, base) = on_localhost(&[]).await;
    server.register("forged").await;
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start(&chromedriver);
    let c = driver.session(&chromium, profile.path()).await;

    // The right login and password, in a form stripped of its token.
    c.goto(&format!("{base}/ui/sign-in")).await.unwrap();
    see(&c, "Sign in").await;
    fill(&c, "login", "forged").await;
    fill(&c, "password", PASSWORD).await;
    let left = c
        .execute(
            "const form = document.querySelector(\"form[action='/ui/sign-in']\");
             form.querySelector('input[name=csrf]').remove();
             return form.querySelectorAll('input[name=csrf]').length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(left, json!(0));
    submit(&c, "/ui/sign-in").await;

    // Refused with a page that says why, and what to do.
    let refusal = shows(&c, "[role=alert]", "This form was not accepted").await;
    assert!(
        refusal.contains("reload the page and try again"),
        "{refusal}"
    );
    assert_eq!(path(&c).await, "/ui/sign-in");
    // Not signed in: no login cookie, and the account is closed.
    assert!(c.get_named_cookie("ui_session").await.is_err());
    c.goto(&format!("{base}/ui/account")).await.unwrap();
    arrive(&c, "/ui/sign-in?return_to=%2Fui%2Faccount").await;
    see(&c, "Sign in").await;

    c.close().await.unwrap();
    server.stop().await;
}

/// A stand-in for the application a sign-in returns to: every request is
/// answered with one small page. Its origin, as `http://127.0.0.1:PORT`.
async fn application() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "<!doctype html><title>App</title><h1>Back at the app</h1>";
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    origin
}

#[tokio::test]
async fn return_to_leaves_the_service_only_for_a_listed_origin_in_chromium() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let app = application().await;
    let (server, base) = on_localhost(&[("UI_RETURN_ORIGINS", app.as_str())]).await;
    server.register("traveller").await;
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start(&chromedriver);
    let c = driver.session(&chromium, profile.path()).await;

    // Another site is ignored: not carried by the form, not followed.
    c.goto(&format!(
        "{base}/ui/sign-in?return_to=https%3A%2F%2Fevil.example%2F"
    ))
    .await
    .unwrap();
    see(&c, "Sign in").await;
    let carried = c
        .find_all(Locator::Css("input[name=return_to]"))
        .await
        .unwrap();
    assert!(carried.is_empty(), "the form carries no return_to");
    fill(&c, "login", "traveller").await;
    fill(&c, "password", PASSWORD).await;
    submit(&c, "/ui/sign-in").await;
    arrive(&c, "/ui/account").await;
    see(&c, "Your account").await;
    let url = c.current_url().await.unwrap();
    assert_eq!(url.origin().ascii_serialization(), base);

    // The listed origin is followed, path and query kept.
    c.delete_all_cookies().await.unwrap();
    let target = format!("{app}/after-sign-in?from=gatehouse");
    let query = format!("?return_to={}", percent_encode(&target));
    c.goto(&format!("{base}/ui/sign-in{query}")).await.unwrap();
    see(&c, "Sign in").await;
    fill(&c, "login", "traveller").await;
    fill(&c, "password", PASSWORD).await;
    submit(&c, "/ui/sign-in").await;
    see(&c, "Back at the app").await;
    assert_eq!(c.current_url().await.unwrap().as_str(), target);

    c.close().await.unwrap();
    server.stop().await;
}

/// `raw` with everything but letters and digits percent-encoded.
fn percent_encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The TOTP code for `key` (base32, as the page shows it, spaces and all)
/// at `offset` seconds from now.
fn code_for(key: &str, offset: u64) -> String {
    let key: String = key.split_whitespace().collect();
    let secret = totp_rs::Secret::try_from_base32(&key)
        .unwrap()
        .as_bytes()
        .to_vec();
    let now = std::time::UNIX_EPOCH.elapsed().unwrap().as_secs();
    gatehouse_core::auth::mfa::code_at(&secret, now + offset).unwrap()
}

#[tokio::test]
async fn sign_up_verify_turn_on_2fa_and_sign_in_with_a_code_in_chromium() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    if !smtp::available() {
        skip("the mail half of this browser test needs python3 with aiosmtpd");
        return;
    }
    let sink = Sink::start(free_port(), None);
    let smtp_url = format!("smtp://127.0.0.1:{}", sink.port);
    let (server, base) = on_localhost(&[
        ("SMTP_URL", smtp_url.as_str()),
        ("MAIL_FROM", "Gatehouse <no-reply@example.com>"),
        // Signing in takes a confirmed address.
        ("REQUIRE_VERIFIED_EMAIL", "true"),
    ])
    .await;
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start(&chromedriver);
    let c = driver.session(&chromium, profile.path()).await;

    // Sign up; the mail the SMTP server received links to the page that
    // confirms the address.
    c.goto(&format!("{base}/ui/sign-up")).await.unwrap();
    fill(&c, "username", "two_step").await;
    fill(&c, "email", "two_step@example.com").await;
    fill(&c, "password", PASSWORD).await;
    submit(&c, "/ui/sign-up").await;
    see(&c, "Check your mail").await;
    let mails = sink
        .wait_for("two_step@example.com", 1, Duration::from_secs(20))
        .await;
    let token = mails
        .iter()
        .find_map(|m| m.token())
        .unwrap_or_else(|| panic!("a verification link: {mails:?}"));
    let link = format!("{base}/ui/verify-email?token={token}");
    assert!(mails.iter().any(|m| m.text.contains(&link)), "{mails:?}");
    c.goto(&link).await.unwrap();
    see(&c, "Confirm your email address").await;
    fits(&c).await;
    submit(&c, "/ui/verify-email").await;
    see(&c, "Email address verified").await;

    // Signed in, 2FA is set up from the account's page with the key the
    // page shows (the test is the authenticator app).
    sign_in(&c, &base, "two_step", PASSWORD).await;
    arrive(&c, "/ui/account").await;
    c.goto(&format!("{base}/ui/account/2fa")).await.unwrap();
    submit(&c, "/ui/account/2fa/setup").await;
    arrive(&c, "/ui/account/2fa").await;
    fits(&c).await;
    let key = find(&c, "#totp-secret").await.text().await.unwrap();
    let qr = find(&c, "#totp-qr").await;
    assert!(qr.attr("alt").await.unwrap().is_some_and(|a| !a.is_empty()));
    fill(&c, "code", &code_for(&key, 0)).await;
    submit(&c, "/ui/account/2fa/enable").await;
    shows(&c, "#codes-h", "Your backup codes").await;
    let codes = c
        .find_all(Locator::Css("#backup-codes li"))
        .await
        .unwrap()
        .len();
    assert_eq!(codes, 10);

    // Signed out, the password alone is not enough: the code is asked for
    // (the next time step's: the one that turned 2FA on is spent).
    submit(&c, "/ui/sign-out").await;
    arrive(&c, "/ui/sign-in?notice=signed_out").await;
    sign_in(&c, &base, "two_step", PASSWORD).await;
    see(&c, "Two-factor code").await;
    fill(&c, "code", "000000").await;
    submit(&c, "/ui/sign-in/code").await;
    shows(&c, "[role=alert]", "Invalid or expired two-factor code").await;
    fill(&c, "code", &code_for(&key, 30)).await;
    submit(&c, "/ui/sign-in/code").await;
    arrive(&c, "/ui/account").await;
    let profile = find(&c, "dl").await.text().await.unwrap();
    assert!(profile.contains("on"), "{profile}");
    c.close().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn an_admin_demotes_and_deactivates_a_user_whose_open_page_is_signed_out_in_chromium() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let (server, base) = on_localhost(&[]).await;
    server.admin("overseer").await;
    server.register("member").await;
    let driver = Driver::start(&chromedriver);
    let (user_profile, admin_profile) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    // The user has the account page open.
    let user = driver.session(&chromium, user_profile.path()).await;
    sign_in(&user, &base, "member", PASSWORD).await;
    arrive(&user, "/ui/account").await;

    // The administrator goes from the account to the console, finds the
    // user, demotes and deactivates them.
    let admin = driver.session(&chromium, admin_profile.path()).await;
    sign_in(&admin, &base, "overseer", PASSWORD).await;
    arrive(&admin, "/ui/account").await;
    find(&admin, "a.console-link").await.click().await.unwrap();
    arrive(&admin, "/ui/admin").await;
    see(&admin, "Console").await;
    fits(&admin).await;
    admin.goto(&format!("{base}/ui/admin/users")).await.unwrap();
    see(&admin, "Users").await;
    fill(&admin, "q", "mem").await;
    submit(&admin, "/ui/admin/users").await;
    admin
        .find(Locator::LinkText("member"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    see(&admin, "member").await;
    fits(&admin).await;
    let page = path(&admin).await;
    find(&admin, "#new-role option[value=viewer]")
        .await
        .click()
        .await
        .unwrap();
    submit(&admin, &format!("{page}/role")).await;
    shows(&admin, ".notice", "The role was changed.").await;
    shows(&admin, "dl", "viewer").await;
    submit(&admin, &format!("{page}/active")).await;
    shows(&admin, ".notice", "The account was deactivated").await;
    shows(&admin, "dl", "deactivated").await;

    // The user's open page is signed out on its next request.
    user.refresh().await.unwrap();
    let landed = path(&user).await;
    assert!(landed.starts_with("/ui/sign-in"), "{landed}");
    see(&user, "Sign in").await;

    // The audit trail shows both changes and a valid chain.
    admin.goto(&format!("{base}/ui/admin/audit")).await.unwrap();
    see(&admin, "Audit trail").await;
    shows(&admin, "#chain", "The chain is valid").await;
    let trail = find(&admin, "table").await.text().await.unwrap();
    for event in ["role_changed", "user_deactivated", "login_succeeded"] {
        assert!(trail.contains(event), "{event}: {trail}");
    }
    user.close().await.unwrap();
    admin.close().await.unwrap();
    server.stop().await;
}
