//! The hosted pages over the real router: the form check, `return_to`,
//! `UI_ENABLED=false`, the session cookies, a revoked login signing the page
//! out, the pages' policy, the second step and sign-up.

use std::collections::BTreeMap;

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::json;

use crate::harness::{Backend, PASSWORD, TestApp, TestResponse, backends};
use crate::mfa;

mod account_pages;
mod admin;
mod mail_links;
mod passkeys;

/// A browser: its cookies, kept as the server sets and clears them.
struct Browser<'a> {
    app: &'a TestApp,
    cookies: BTreeMap<String, String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, res: &TestResponse) {
        for c in res.headers.get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    async fn get(&mut self, path: &str) -> TestResponse {
        let req = Request::get(path)
            .header("cookie", self.cookie_header())
            .body(Body::empty())
            .unwrap();
        let res = self.app.send(req).await;
        self.keep(&res);
        res
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> TestResponse {
        let body = serde_urlencoded::to_string(form).unwrap();
        let req = Request::post(path)
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", "http://localhost")
            .header("sec-fetch-site", "same-origin")
            .body(Body::from(body))
            .unwrap();
        let res = self.app.send(req).await;
        self.keep(&res);
        res
    }

    /// What the pages' script sends: JSON, asking for JSON, with the page's
    /// form token in `X-CSRF-Token`.
    async fn script(&mut self, path: &str, csrf: &str, body: serde_json::Value) -> TestResponse {
        let req = Request::post(path)
            .header("cookie", self.cookie_header())
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("x-csrf-token", csrf)
            .header("origin", "http://localhost")
            .header("sec-fetch-site", "same-origin")
            .body(Body::from(body.to_string()))
            .unwrap();
        let res = self.app.send(req).await;
        self.keep(&res);
        res
    }

    /// Signs in through the page; the response (a redirect when it worked).
    async fn sign_in(&mut self, login: &str, return_to: &str) -> TestResponse {
        let page = self.get("/ui/sign-in").await;
        let csrf = csrf_of(&page);
        self.post(
            "/ui/sign-in",
            &[
                ("csrf", &csrf),
                ("return_to", return_to),
                ("login", login),
                ("password", PASSWORD),
            ],
        )
        .await
    }
}

/// The page's text, with the `/` that autoescaping writes as `&#x2f;`.
fn html(res: &TestResponse) -> String {
    String::from_utf8(res.body.to_vec())
        .unwrap()
        .replace("&#x2f;", "/")
}

/// The form token on a page.
fn csrf_of(res: &TestResponse) -> String {
    let html = html(res);
    let start = html.find(r#"name="csrf" value=""#).expect("a form token") + 19;
    html[start..start + 64].to_owned()
}

fn location(res: &TestResponse) -> &str {
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", html(res));
    res.header("location").unwrap()
}

/// Registers `name`; its id.
async fn user(app: &TestApp, name: &str) -> String {
    app.register(name).await["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn forms_without_their_token_are_refused() {
    let app = TestApp::new(&Backend::Sqlite).await;
    user(&app, "csrf_user").await;
    let mut b = Browser::new(&app);
    let page = b.get("/ui/sign-in").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(b.cookies.contains_key("ui_csrf"));
    let good = csrf_of(&page);
    let wrong = "0".repeat(64);
    for token in ["", wrong.as_str()] {
        let res = b
            .post(
                "/ui/sign-in",
                &[
                    ("csrf", token),
                    ("login", "csrf_user"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        assert_eq!(res.header("content-type"), Some("text/html; charset=utf-8"));
        let body = html(&res);
        assert!(body.contains("This form was not accepted"), "{body}");
        assert!(!b.cookies.contains_key("ui_session"));
    }
    // Another site's form, even with a valid token, is refused too.
    let body = serde_urlencoded::to_string([
        ("csrf", good.as_str()),
        ("login", "csrf_user"),
        ("password", PASSWORD),
    ])
    .unwrap();
    let cross = Request::post("/ui/sign-in")
        .header("cookie", b.cookie_header())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(app.send(cross).await.status, StatusCode::FORBIDDEN);
    // A token from one browser is worthless in another.
    let mut other = Browser::new(&app);
    other.get("/ui/sign-in").await;
    let res = other
        .post(
            "/ui/sign-in",
            &[
                ("csrf", &good),
                ("login", "csrf_user"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // The right token passes.
    let res = b
        .post(
            "/ui/sign-in",
            &[
                ("csrf", &good),
                ("login", "csrf_user"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(location(&res), "/ui/account");
    // Signed in, the account's forms need the login's token: the signed-out
    // one no longer passes.
    let res = b
        .post("/ui/account/sessions/revoke-others", &[("csrf", &good)])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = b.post("/ui/sign-out", &[]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(b.cookies.contains_key("ui_session"), "still signed in");
}

#[tokio::test]
async fn wrong_password_says_so_and_keeps_what_was_typed() {
    let app = TestApp::new(&Backend::Sqlite).await;
    user(&app, "typed_user").await;
    let mut b = Browser::new(&app);
    let csrf = csrf_of(&b.get("/ui/sign-in").await);
    let res = b
        .post(
            "/ui/sign-in",
            &[
                ("csrf", &csrf),
                ("login", "typed_user@example.com"),
                ("password", "Wrong-Passw0rd!"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let body = html(&res);
    assert!(body.contains("Invalid email or password"), "{body}");
    assert!(body.contains(r#"value="typed_user@example.com""#), "{body}");
    assert!(
        !body.contains("Wrong-Passw0rd!"),
        "the password is not echoed"
    );
    assert_eq!(res.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn return_to_follows_only_allowed_targets() {
    let app = TestApp::with(
        &Backend::Sqlite,
        &[("UI_RETURN_ORIGINS", "https://app.example.com")],
        axum::Router::new(),
    )
    .await;
    user(&app, "return_user").await;
    let cases = [
        ("/ui/account?tab=sessions", "/ui/account?tab=sessions"),
        (
            "https://app.example.com/welcome",
            "https://app.example.com/welcome",
        ),
        ("https://evil.example/", "/ui/account"),
        ("//evil.example", "/ui/account"),
        ("/\\evil.example", "/ui/account"),
        ("javascript:alert(1)", "/ui/account"),
        ("https://app.example.com@evil.example/", "/ui/account"),
        ("/api/v1/users/me", "/ui/account"),
        ("", "/ui/account"),
    ];
    for (asked, expected) in cases {
        let mut b = Browser::new(&app);
        let res = b.sign_in("return_user", asked).await;
        assert_eq!(location(&res), expected, "return_to={asked:?}");
    }
    // The form carries an allowed target through, and drops another.
    let mut b = Browser::new(&app);
    let page = b.get("/ui/sign-in?return_to=%2Fui%2Faccount").await;
    assert!(html(&page).contains(r#"name="return_to" value="/ui/account""#));
    let page = b
        .get("/ui/sign-in?return_to=https%3A%2F%2Fevil.example")
        .await;
    assert!(!html(&page).contains("evil.example"));
    // Browsers hold a form's redirect to the policy's form-action too.
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("form-action 'self' https://app.example.com;"),
        "{csp}"
    );
}

#[tokio::test]
async fn ui_disabled_means_no_pages() {
    let app = TestApp::with(
        &Backend::Sqlite,
        &[("UI_ENABLED", "false")],
        axum::Router::new(),
    )
    .await;
    for path in ["/ui", "/ui/sign-in", "/ui/account", "/ui/sign-up"] {
        app.get(path)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not_found");
    }
    let enabled = TestApp::new(&Backend::Sqlite).await;
    assert_eq!(enabled.get("/ui/sign-in").await.status, StatusCode::OK);
    // A path under /ui that is no page: the error page, in words.
    let res = enabled.get("/ui/no-such-page/x").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(html(&res).contains("Page not found"), "{}", html(&res));
    assert!(res.header("content-security-policy").is_some());
}

#[tokio::test]
async fn session_cookies_are_http_only_lax_and_scoped_to_the_pages() {
    for (secure, expect_secure) in [("true", true), ("false", false)] {
        let app = TestApp::with(
            &Backend::Sqlite,
            &[("SECURE_COOKIES", secure)],
            axum::Router::new(),
        )
        .await;
        user(&app, "cookie_user").await;
        let mut b = Browser::new(&app);
        let res = b.sign_in("cookie_user", "").await;
        let set: Vec<&str> = res
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        for name in ["ui_session=", "ui_refresh="] {
            let c = set.iter().find(|c| c.starts_with(name)).expect(name);
            for attr in ["HttpOnly", "SameSite=Lax", "Path=/ui", "Max-Age="] {
                assert!(c.contains(attr), "{c}");
            }
            assert_eq!(c.contains("Secure"), expect_secure, "{c}");
        }
        assert!(
            set.iter().all(|c| !c.starts_with("refresh_token=")),
            "the API's own cookie is not used by the pages"
        );
    }
}

#[tokio::test]
async fn a_revoked_login_signs_the_page_out_on_its_next_request() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let id = user(&app, "revoked_user").await;
        let mut b = Browser::new(&app);
        assert_eq!(
            location(&b.sign_in("revoked_user", "").await),
            "/ui/account"
        );
        let page = b.get("/ui/account").await;
        assert_eq!(page.status, StatusCode::OK);
        let body = html(&page);
        assert!(body.contains("revoked_user@example.com"), "{body}");
        assert!(body.contains("this device"), "{body}");
        // From another login, through the API, the page's login is revoked.
        let (token, _) = app.login("revoked_user@example.com", PASSWORD).await;
        let list = app
            .get_with_token("/api/v1/users/me/sessions", &token)
            .await
            .json();
        let page_login = list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["current"] == false)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let res = app
            .call(
                "DELETE",
                &format!("/api/v1/users/me/sessions/{page_login}"),
                &token,
                None,
            )
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
        let res = b.get("/ui/account").await;
        assert_eq!(location(&res), "/ui/sign-in?return_to=%2Fui%2Faccount");
        assert!(!b.cookies.contains_key("ui_session"), "cookies cleared");
        assert!(!b.cookies.contains_key("ui_refresh"), "cookies cleared");
        // An expired access token is renewed through refresh rotation, which
        // also refuses a revoked login.
        let mut b = Browser::new(&app);
        b.sign_in("revoked_user", "").await;
        app.clock.advance(std::time::Duration::from_secs(16 * 60));
        let before = b.cookies["ui_refresh"].clone();
        assert_eq!(b.get("/ui/account").await.status, StatusCode::OK);
        assert_ne!(b.cookies["ui_refresh"], before, "rotated");
        let res = app
            .call(
                "PATCH",
                &format!("/api/v1/users/{id}"),
                &admin_token(&app).await,
                Some(json!({"is_active": false})),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", html(&res));
        let res = b.get("/ui/account").await;
        assert!(location(&res).starts_with("/ui/sign-in"));
    }
}

async fn admin_token(app: &TestApp) -> String {
    app.account("page_admin", "admin").await.1
}

#[tokio::test]
async fn pages_run_only_their_own_code() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let page = app.get("/ui/sign-in").await;
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let body = html(&page);
    assert!(
        !body.contains("<script>") && !body.contains("style="),
        "no inline code"
    );
    for label in [r#"<label for="login">"#, r#"<label for="password">"#] {
        assert!(body.contains(label), "{label}");
    }
    // The stylesheet, by its content hash, kept for a year.
    let start = body.find("/ui/assets/ui.").unwrap();
    let end = start + body[start..].find('"').unwrap();
    let css = app.get(&body[start..end]).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(
        css.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        app.get("/ui/assets/ui.0000000000000000.css").await.status,
        StatusCode::NOT_FOUND
    );
    // The one script, ours, loaded from a file by its hash: no inline code.
    let start = body.find(r#"<script src=""#).unwrap() + r#"<script src=""#.len();
    let end = start + body[start..].find('"').unwrap();
    let src = &body[start..end];
    assert!(
        src.starts_with("/ui/assets/ui.") && src.ends_with(".js"),
        "{src}"
    );
    assert_eq!(body.matches("<script").count(), 1);
    assert!(!body.contains(" onclick=") && !body.contains(" onsubmit="));
    let js = app.get(src).await;
    assert_eq!(js.status, StatusCode::OK);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        js.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    // A refusal under /ui is a page too, in words.
    let missing = app.get("/ui/assets/nothing").await;
    assert_eq!(
        missing.header("content-type"),
        Some("text/html; charset=utf-8")
    );
}

#[tokio::test]
async fn the_second_step_takes_a_code_then_signs_in() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let (_, secret, backup) = mfa::enrolled(&app, "mfa_page").await;
    let mut b = Browser::new(&app);
    let res = b.sign_in("mfa_page", "/ui/account").await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(
        !b.cookies.contains_key("ui_session"),
        "no login before the code"
    );
    let body = html(&res);
    assert!(body.contains(r#"<label for="code">"#), "{body}");
    let csrf = csrf_of(&res);
    let start = body.find(r#"name="mfa_token" value=""#).unwrap() + 24;
    let mfa_token = body[start..start + body[start..].find('"').unwrap()].to_owned();
    let wrong = b
        .post(
            "/ui/sign-in/code",
            &[
                ("csrf", &csrf),
                ("mfa_token", &mfa_token),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(html(&wrong).contains("Invalid or expired two-factor code"));
    // The next time step: the code that enabled 2FA is spent.
    app.clock.advance(std::time::Duration::from_secs(30));
    let code = mfa::code(&app, &secret);
    let res = b
        .post(
            "/ui/sign-in/code",
            &[
                ("csrf", &csrf),
                ("return_to", "/ui/account"),
                ("mfa_token", &mfa_token),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(location(&res), "/ui/account");
    assert_eq!(b.get("/ui/account").await.status, StatusCode::OK);
    // A backup code works too, in another browser.
    let mut other = Browser::new(&app);
    let res = other.sign_in("mfa_page", "").await;
    let body = html(&res);
    let start = body.find(r#"name="mfa_token" value=""#).unwrap() + 24;
    let mfa_token = body[start..start + body[start..].find('"').unwrap()].to_owned();
    let res = other
        .post(
            "/ui/sign-in/code",
            &[
                ("csrf", &csrf_of(&res)),
                ("mfa_token", &mfa_token),
                ("code", &backup[0]),
            ],
        )
        .await;
    assert_eq!(location(&res), "/ui/account", "{mfa_token}");
}

#[tokio::test]
async fn sign_up_then_sessions_revoked_from_the_account_page() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let mut b = Browser::new(&app);
    let csrf = csrf_of(&b.get("/ui/sign-up").await);
    let pairs = [
        ("csrf", csrf.as_str()),
        ("username", "page_person"),
        ("email", "page_person@example.com"),
        ("full_name", "Page Person"),
        ("password", PASSWORD),
    ];
    let res = b.post("/ui/sign-up", &pairs).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", html(&res));
    assert!(html(&res).contains("Check your mail"));
    let outbox = app.count("SELECT COUNT(*) FROM mail_outbox").await;
    assert_eq!(outbox, 1, "the verification mail is queued");
    // Taken: refused in words, what was typed kept, the password not.
    let res = b.post("/ui/sign-up", &pairs).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let body = html(&res);
    assert!(body.contains("Unable to create account"), "{body}");
    assert!(body.contains(r#"value="page_person""#), "{body}");
    assert!(!body.contains(PASSWORD));
    // Three logins; the page revokes one, then all the others.
    app.login("page_person@example.com", PASSWORD).await;
    app.login("page_person@example.com", PASSWORD).await;
    assert_eq!(location(&b.sign_in("page_person", "").await), "/ui/account");
    let page = b.get("/ui/account").await;
    let body = html(&page);
    assert_eq!(
        body.matches("Sign out this session</button>").count(),
        2,
        "{body}"
    );
    let csrf = csrf_of(&page);
    let start = body.find("/ui/account/sessions/").unwrap() + 21;
    let id = body[start..start + 36].to_owned();
    let res = b
        .post(
            &format!("/ui/account/sessions/{id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(location(&res), "/ui/account?notice=session_revoked");
    let body = html(&b.get("/ui/account").await);
    assert_eq!(body.matches("Sign out this session</button>").count(), 1);
    let res = b
        .post("/ui/account/sessions/revoke-others", &[("csrf", &csrf)])
        .await;
    assert_eq!(location(&res), "/ui/account?notice=others_revoked");
    let body = html(&b.get("/ui/account?notice=others_revoked").await);
    assert!(body.contains("All your other sessions were signed out."));
    assert_eq!(body.matches("Sign out this session</button>").count(), 0);
    // Signing out ends the login itself.
    let res = b.post("/ui/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(location(&res), "/ui/sign-in?notice=signed_out");
    assert!(!b.cookies.contains_key("ui_session"));
    let res = b.get("/ui/account").await;
    assert!(location(&res).starts_with("/ui/sign-in"));
}
