//! Headless Chromium driven through chromedriver (WebDriver) for the hosted
//! pages' tests: finding the tools (a missing one skips the test, or fails
//! it under `GATEHOUSE_REQUIRE_BROWSER=1`), a session at 360 px, and the
//! waits and form steps the tests share.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Method;
use serde_json::json;

use super::deployment::{Backend, Deployment};
use super::smtp::free_port;

/// `name` on `PATH`, if installed.
pub fn installed(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether a missing tool fails the test instead of skipping it: CI sets
/// `GATEHOUSE_REQUIRE_BROWSER=1`, so a broken install cannot pass as a skip.
pub fn is_required() -> bool {
    std::env::var("GATEHOUSE_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// Says why the test is skipped, or fails it when the tools are required.
pub fn skip(why: &str) {
    assert!(!is_required(), "GATEHOUSE_REQUIRE_BROWSER=1, yet {why}");
    eprintln!("skipped: {why}");
}

/// Chromium and chromedriver, or `None` after [`skip`].
pub fn browser() -> Option<(PathBuf, PathBuf)> {
    let found = installed("chromium").zip(installed("chromedriver"));
    if found.is_none() {
        skip(
            "the hosted pages' browser tests need `chromium` and `chromedriver` \
             (Debian packages chromium, chromium-driver) on PATH",
        );
    }
    found
}

/// chromedriver on a free loopback port; killed when dropped.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    /// Ends chromedriver and the browsers it started: its process group,
    /// so a failed test leaves no Chromium behind.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    pub fn start(chromedriver: &Path) -> Self {
        let port = free_port();
        let child = Command::new(chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self { child, port }
    }

    /// A session with Chromium as this machine must run it (no sandbox,
    /// no network of its own, a fresh profile), 360 px wide.
    pub async fn session(&self, chromium: &Path, profile: &Path) -> Client {
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            // Screenshots alike on every machine: no scrollbars, 1 px a px.
            "--hide-scrollbars".to_owned(),
            "--force-device-scale-factor=1".to_owned(),
            format!("--user-data-dir={}", profile.display()),
            "--window-size=360,800".to_owned(),
            // `localhost` (a WebAuthn relying party; an address cannot be
            // one) is the service on loopback.
            "--host-resolver-rules=MAP localhost 127.0.0.1".to_owned(),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({"binary": chromium, "args": args}),
        );
        let url = format!("http://127.0.0.1:{}", self.port);
        // chromedriver needs a moment to listen: bounded retries.
        let mut last = None;
        for _ in 0..50 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => return client,
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("chromedriver did not start a session: {last:?}");
    }
}

pub async fn fill(c: &Client, id: &str, text: &str) {
    let field = find(c, &format!("#{id}")).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

pub async fn submit(c: &Client, form_action: &str) {
    find(
        c,
        &format!("form[action='{form_action}'] button[type=submit]"),
    )
    .await
    .click()
    .await
    .unwrap();
}

/// Waits (bounded) for an element: a page may still be loading.
pub async fn find(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap()
}

/// Waits (bounded) until the page's heading reads `expected`.
pub async fn see(c: &Client, expected: &str) {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(h) = c.find(Locator::Css("h1")).await {
            last = h.text().await.unwrap_or_default();
            if last == expected {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, expected);
}

/// The page's path and query.
pub async fn path(c: &Client) -> String {
    let url = c.current_url().await.unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Waits (bounded) until the browser shows `expected`: a form submitted
/// with the keyboard navigates after `send_keys` returns.
pub async fn arrive(c: &Client, expected: &str) {
    for _ in 0..100 {
        if path(c).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(path(c).await, expected);
}

/// Nothing wider than the window: no sideways scrolling at 360 px.
pub async fn fits(c: &Client) {
    // The page's width, the window's, and the innermost elements that
    // reach past the window's right edge (to say what to fix).
    let widths = c
        .execute(
            "const w = window.innerWidth; \
             const clipped = e => { for (let p = e.parentElement; p; p = p.parentElement) \
               if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) return true; \
               return false; }; \
             const past = [...document.body.querySelectorAll('*')] \
               .filter(e => e.getBoundingClientRect().right > w + 1 && !clipped(e) \
                 && ![...e.children].some(k => k.getBoundingClientRect().right > w + 1)) \
               .slice(0, 5) \
               .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') \
                 + (e.className && typeof e.className === 'string' ? '.' + e.className : '')); \
             return [document.documentElement.scrollWidth, w, past];",
            vec![],
        )
        .await
        .unwrap();
    let scroll = widths[0].as_u64().unwrap();
    let inner = widths[1].as_u64().unwrap();
    assert!(
        scroll <= inner,
        "page is {scroll}px wide in a {inner}px window; past its edge: {}",
        widths[2]
    );
}

/// Waits (bounded) until `css` shows `expected` in its text.
pub async fn shows(c: &Client, css: &str, expected: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            last = e.text().await.unwrap_or_default();
            if last.contains(expected) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("`{css}` does not show `{expected}`: {last:?}");
}

/// A deployment the browser reaches as `http://localhost:<port>`, the
/// origin passkeys and mailed links are for; `extra` on top.
pub async fn on_localhost(extra: &[(&str, &str)]) -> (Deployment, String) {
    let port = free_port();
    let base = format!("http://localhost:{port}");
    let bind = format!("127.0.0.1:{port}");
    let links = format!("{base}/ui");
    let mut vars = vec![
        ("SECURE_COOKIES", "false"),
        ("RATE_LIMIT_ENABLED", "false"),
        ("BIND_ADDR", bind.as_str()),
        ("APP_BASE_URL", links.as_str()),
        ("WEBAUTHN_RP_ID", "localhost"),
        ("WEBAUTHN_ORIGINS", base.as_str()),
    ];
    vars.extend_from_slice(extra);
    let server = Deployment::start(Backend::Sqlite, &vars).await;
    (server, base)
}

/// Signs `login` in with `password` on the sign-in page (whatever comes
/// next: the account, the second step, an error).
pub async fn sign_in(c: &Client, base: &str, login: &str, password: &str) {
    c.goto(&format!("{base}/ui/sign-in")).await.unwrap();
    see(c, "Sign in").await;
    fill(c, "login", login).await;
    fill(c, "password", password).await;
    submit(c, "/ui/sign-in").await;
}

/// Turns 2FA on for the login `token` through the API.
pub async fn enable_2fa(d: &Deployment, token: &str) {
    let (status, setup) = d
        .call(0, Method::POST, "/api/v1/auth/2fa/setup", token, None)
        .await;
    assert_eq!(status, 200, "{setup}");
    let secret = totp_rs::Secret::try_from_base32(setup["secret"].as_str().unwrap())
        .unwrap()
        .as_bytes()
        .to_vec();
    let now = std::time::UNIX_EPOCH.elapsed().unwrap().as_secs();
    let code = gatehouse_core::auth::mfa::code_at(&secret, now).unwrap();
    let body = json!({"code": code});
    let (status, answer) = d
        .call(
            0,
            Method::POST,
            "/api/v1/auth/2fa/enable",
            token,
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
}

/// A Chrome DevTools Protocol command through chromedriver.
#[derive(Debug)]
pub struct Cdp(pub &'static str, pub serde_json::Value);

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (reqwest::Method, Option<String>) {
        let body = json!({"cmd": self.0, "params": self.1});
        (reqwest::Method::POST, Some(body.to_string()))
    }
}
