//! The pages a mail links to: a forgotten password (the same answer for
//! any address), a new password with the link or the code (errors in
//! words, the old password refused afterwards), and an address confirmed.

use axum::Router;
use http::StatusCode;

use super::{Browser, csrf_of, html, location};
use crate::harness::mail::token_of;
use crate::harness::{Backend, TestApp, TestResponse};
use crate::mail::NEW_PASSWORD;

/// Asks for a reset through the page; the page.
async fn forgot(b: &mut Browser<'_>, email: &str) -> String {
    let csrf = csrf_of(&b.get("/ui/forgot-password").await);
    let res = b
        .post("/ui/forgot-password", &[("csrf", &csrf), ("email", email)])
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", html(&res));
    html(&res)
}

/// Sends the new-password form with the link's token.
async fn reset_with(
    b: &mut Browser<'_>,
    csrf: &str,
    token: &str,
    new: &str,
    again: &str,
) -> TestResponse {
    b.post(
        "/ui/reset-password",
        &[
            ("csrf", csrf),
            ("token", token),
            ("new_password", new),
            ("confirm_password", again),
        ],
    )
    .await
}

#[tokio::test]
async fn forgotten_password_reads_the_same_for_any_address() {
    let app = TestApp::new(&Backend::Sqlite).await;
    app.register("forgetful").await;
    let mut b = Browser::new(&app);
    // Without the form's token: refused, in words, and nothing is sent.
    let res = b
        .post("/ui/forgot-password", &[("email", "forgetful@example.com")])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(html(&res).contains("This form was not accepted"));
    let known = forgot(&mut b, "forgetful@example.com").await;
    let unknown = forgot(&mut b, "nobody@example.com").await;
    assert!(known.contains("Check your mail"), "{known}");
    assert_eq!(
        known, unknown,
        "the same page whether or not the account exists"
    );
    assert_eq!(app.outbox.take_for("nobody@example.com").await.len(), 0);
    let secret = app.outbox.secret_for("forgetful@example.com").await;
    assert!(!token_of(&secret).is_empty());
    // A malformed address is refused in words, the form kept.
    let csrf = csrf_of(&b.get("/ui/forgot-password").await);
    let res = b
        .post(
            "/ui/forgot-password",
            &[("csrf", &csrf), ("email", "not-an-address")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = html(&res);
    assert!(body.contains("That is not an email address"), "{body}");
    assert!(body.contains(r#"value="not-an-address""#), "{body}");
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_and_the_old_one_is_refused() {
    // Mailed links point at the pages when `APP_BASE_URL` ends in `/ui`.
    let app = TestApp::with(
        &Backend::Sqlite,
        &[("APP_BASE_URL", "http://localhost/ui")],
        Router::new(),
    )
    .await;
    app.register("resetter").await;
    let mut b = Browser::new(&app);
    forgot(&mut b, "resetter@example.com").await;
    let secret = app.outbox.secret_for("resetter@example.com").await;
    let path = secret
        .link
        .strip_prefix("http://localhost")
        .unwrap()
        .to_owned();
    assert!(path.starts_with("/ui/reset-password?token="), "{path}");
    let token = token_of(&secret);

    let page = b.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    let form = html(&page);
    assert!(
        form.contains(&format!(r#"name="token" value="{token}""#)),
        "{form}"
    );
    for label in [
        r#"<label for="new_password">"#,
        r#"<label for="confirm_password">"#,
    ] {
        assert!(form.contains(label), "{label}");
    }
    let csrf = csrf_of(&page);
    // Two different passwords: said in words, the token kept in the form.
    let res = reset_with(&mut b, &csrf, &token, NEW_PASSWORD, "Something-Else1!").await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = html(&res);
    assert!(body.contains("The two passwords do not match"), "{body}");
    assert!(body.contains(&format!(r#"name="token" value="{token}""#)));
    // A weak one: the policy's sentence; the token still works after.
    let res = reset_with(&mut b, &csrf, &token, "password", "password").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let body = html(&res);
    assert!(body.contains(r#"role="alert""#), "{body}");
    assert!(!body.contains("weak_password"), "words, not codes: {body}");
    // Without the form's token: refused.
    let res = b
        .post(
            "/ui/reset-password",
            &[
                ("token", token.as_str()),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // The right form: on to sign in, which says so.
    let res = reset_with(&mut b, &csrf, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(location(&res), "/ui/sign-in?notice=password_reset");
    let page = b.get("/ui/sign-in?notice=password_reset").await;
    assert!(html(&page).contains("Your password is set"));
    // The old password is refused, the new one signs in.
    let res = b.sign_in("resetter", "").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", html(&res));
    assert!(html(&res).contains("Invalid email or password"));
    let csrf = csrf_of(&b.get("/ui/sign-in").await);
    let res = b
        .post(
            "/ui/sign-in",
            &[
                ("csrf", &csrf),
                ("login", "resetter"),
                ("password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(location(&res), "/ui/account");
    // The link works once.
    let mut other = Browser::new(&app);
    let csrf = csrf_of(&other.get(&path).await);
    let res = other
        .post(
            "/ui/reset-password",
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("new_password", "Th1rd-Passw0rd!"),
                ("confirm_password", "Th1rd-Passw0rd!"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(html(&res).contains("The link or code is invalid, already used or expired"));
}

#[tokio::test]
async fn a_bad_link_or_code_is_said_in_words() {
    let app = TestApp::new(&Backend::Sqlite).await;
    app.register("unlucky").await;
    let mut b = Browser::new(&app);
    let csrf = csrf_of(&b.get("/ui/reset-password?token=nope").await);
    let res = b
        .post(
            "/ui/reset-password",
            &[
                ("csrf", &csrf),
                ("token", "nope"),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.header("content-type"), Some("text/html; charset=utf-8"));
    let body = html(&res);
    assert!(
        body.contains("The link or code is invalid, already used or expired"),
        "{body}"
    );
    assert!(body.contains("/ui/forgot-password"), "a way to a new link");
    // Without a token the form asks for the address and the code.
    let page = b.get("/ui/reset-password").await;
    let form = html(&page);
    assert!(form.contains(r#"<label for="code">"#) && !form.contains(r#"name="token""#));
    let csrf = csrf_of(&page);
    let res = b
        .post(
            "/ui/reset-password",
            &[
                ("csrf", &csrf),
                ("email", "unlucky@example.com"),
                ("code", "AAAA-AAAA"),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(html(&res).contains("The link or code is invalid"));
    // And an address to confirm with a bad token.
    let csrf = csrf_of(&b.get("/ui/verify-email?token=nope").await);
    let res = b
        .post("/ui/verify-email", &[("csrf", &csrf), ("token", "nope")])
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(html(&res).contains("The link or code is invalid, already used or expired"));
    // The old password still signs in: nothing was spent or changed.
    let res = b.sign_in("unlucky", "").await;
    assert_eq!(location(&res), "/ui/account");
}

#[tokio::test]
async fn a_reset_code_typed_with_the_address_works_too() {
    let app = TestApp::new(&Backend::Sqlite).await;
    app.register("typist").await;
    let mut b = Browser::new(&app);
    forgot(&mut b, "typist@example.com").await;
    let secret = app.outbox.secret_for("typist@example.com").await;
    let csrf = csrf_of(&b.get("/ui/reset-password").await);
    let code = secret.code.to_lowercase();
    let res = b
        .post(
            "/ui/reset-password",
            &[
                ("csrf", &csrf),
                ("email", "typist@example.com"),
                ("code", &code),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(location(&res), "/ui/sign-in?notice=password_reset");
}

#[tokio::test]
async fn the_verification_link_opens_a_page_that_confirms_the_address() {
    let app = TestApp::new(&Backend::Sqlite).await;
    app.register("confirmer").await;
    let secret = app.outbox.secret_for("confirmer@example.com").await;
    let token = token_of(&secret);
    let mut b = Browser::new(&app);
    // Opening the link spends nothing (mail scanners open links).
    let page = b.get(&format!("/ui/verify-email?token={token}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = csrf_of(&page);
    let res = b.post("/ui/verify-email", &[("token", &token)]).await;
    assert_eq!(
        res.status,
        StatusCode::FORBIDDEN,
        "the form's token is needed"
    );
    let res = b
        .post("/ui/verify-email", &[("csrf", &csrf), ("token", &token)])
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(html(&res).contains("Email address verified"));
    let verified = app
        .count("SELECT COUNT(*) FROM users WHERE username = 'confirmer' AND email_verified")
        .await;
    assert_eq!(verified, 1);
    // Once only.
    let res = b
        .post("/ui/verify-email", &[("csrf", &csrf), ("token", &token)])
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_account_page_sends_the_verification_link_again() {
    let app = TestApp::new(&Backend::Sqlite).await;
    app.register("resender").await;
    // The first mail is lost.
    app.outbox.take_for("resender@example.com").await;
    let mut b = Browser::new(&app);
    assert_eq!(location(&b.sign_in("resender", "").await), "/ui/account");
    let page = b.get("/ui/account").await;
    assert!(html(&page).contains("Send the confirmation link again"));
    let res = b.post("/ui/account/verify-email", &[]).await;
    assert_eq!(
        res.status,
        StatusCode::FORBIDDEN,
        "the form's token is needed"
    );
    let csrf = csrf_of(&page);
    let res = b.post("/ui/account/verify-email", &[("csrf", &csrf)]).await;
    assert_eq!(location(&res), "/ui/account?notice=verification_sent");
    let secret = app.outbox.secret_for("resender@example.com").await;
    let token = token_of(&secret);
    let csrf = csrf_of(&b.get(&format!("/ui/verify-email?token={token}")).await);
    let res = b
        .post("/ui/verify-email", &[("csrf", &csrf), ("token", &token)])
        .await;
    assert!(html(&res).contains("Email address verified"));
    let page = html(&b.get("/ui/account").await);
    assert!(
        page.contains(r#"<span class="tag ok">verified</span>"#),
        "{page}"
    );
    assert!(!page.contains("Send the confirmation link again"));
}

#[tokio::test]
async fn the_verification_mail_is_sent_again_by_address_with_one_answer() {
    let app = TestApp::new(&Backend::Sqlite).await;
    app.register("lost_mail").await;
    app.outbox.take_for("lost_mail@example.com").await;
    let mut b = Browser::new(&app);
    let page = b.get("/ui/verify-email/send").await;
    assert!(html(&page).contains(r#"<label for="email">"#));
    let csrf = csrf_of(&page);
    let res = b
        .post(
            "/ui/verify-email/send",
            &[("email", "lost_mail@example.com")],
        )
        .await;
    assert_eq!(
        res.status,
        StatusCode::FORBIDDEN,
        "the form's token is needed"
    );
    let mut answers = Vec::new();
    for email in ["lost_mail@example.com", "nobody@example.com"] {
        let res = b
            .post(
                "/ui/verify-email/send",
                &[("csrf", &csrf), ("email", email)],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK);
        answers.push(html(&res));
    }
    assert!(answers[0].contains("Check your mail"), "{}", answers[0]);
    assert_eq!(answers[0], answers[1], "one answer for any address");
    let secret = app.outbox.secret_for("lost_mail@example.com").await;
    let token = token_of(&secret);
    let csrf = csrf_of(&b.get(&format!("/ui/verify-email?token={token}")).await);
    let res = b
        .post("/ui/verify-email", &[("csrf", &csrf), ("token", &token)])
        .await;
    assert!(html(&res).contains("Email address verified"));
}
