//! Every hosted page in headless Chromium, at 360 px and at 1280 px wide
//! (and there in the dark colour scheme too):
//! axe-core (the npm package pinned in `tests/axe/`, injected into the page
//! through WebDriver) finds no serious or critical violation on any of
//! them, signed out, signed in and on the 2FA code step. On the way it
//! weighs each page (its HTML and the stylesheets and scripts it loads),
//! writes the results to `UI_REPORT_DIR` when that is set, and saves
//! screenshots to `UI_SCREENSHOTS_DIR` when that is set.
//!
//! axe-core is found at `AXE_CORE_JS`, else in `tests/axe/node_modules`
//! (`npm ci` there). Skipped, with a notice, where it, Chromium or
//! chromedriver is missing; failed instead under
//! `GATEHOUSE_REQUIRE_BROWSER=1`, as CI runs it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly"
)]

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use fantoccini::Client;
use serde_json::json;
use support::browser::{Cdp, Driver, arrive, browser, enable_2fa, fits, see, sign_in, skip};
use support::deployment::{Deployment, PASSWORD};
use support::pages::{Checked, Violation, Weight, report};

/// Who sees a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    SignedOut,
    SignedIn,
    Admin,
    /// The second step of a sign-in with 2FA on: reached by posting the
    /// password, not by its path.
    SecondStep,
}

/// A page to check: a name for reports and screenshots (`NAME.png`,
/// `NAME-mobile.png` when `shot`), its path, who sees it.
struct Page {
    name: &'static str,
    path: &'static str,
    access: Access,
    shot: bool,
    /// The form (by its action) the page is submitted through first, for
    /// a state a page reaches only that way.
    then_submit: Option<&'static str>,
}

const fn page(name: &'static str, path: &'static str, access: Access, shot: bool) -> Page {
    Page {
        name,
        path,
        access,
        shot,
        then_submit: None,
    }
}

impl Page {
    const fn then_submit(self, form_action: &'static str) -> Self {
        Self {
            then_submit: Some(form_action),
            ..self
        }
    }
}

/// Every hosted page. A new page is one more line here.
const PAGES: &[Page] = &[
    page("sign-in", "/ui/sign-in", Access::SignedOut, true),
    page("sign-in-code", "/ui/sign-in/code", Access::SecondStep, true),
    page("sign-up", "/ui/sign-up", Access::SignedOut, true),
    page(
        "forgot-password",
        "/ui/forgot-password",
        Access::SignedOut,
        false,
    ),
    page(
        "reset-password",
        "/ui/reset-password",
        Access::SignedOut,
        false,
    ),
    page(
        "reset-password-link",
        "/ui/reset-password?token=from-the-mail",
        Access::SignedOut,
        false,
    ),
    page("verify-email", "/ui/verify-email", Access::SignedOut, false),
    page(
        "verify-email-link",
        "/ui/verify-email?token=from-the-mail",
        Access::SignedOut,
        false,
    ),
    page(
        "verify-email-send",
        "/ui/verify-email/send",
        Access::SignedOut,
        false,
    ),
    // The error page, as a missing asset shows it.
    page(
        "not-found",
        "/ui/assets/no-such-file",
        Access::SignedOut,
        false,
    ),
    page("account", "/ui/account", Access::SignedIn, true),
    page(
        "account-profile",
        "/ui/account/profile",
        Access::SignedIn,
        false,
    ),
    page(
        "account-password",
        "/ui/account/password",
        Access::SignedIn,
        false,
    ),
    page("account-2fa", "/ui/account/2fa", Access::SignedIn, false),
    // The key and its QR code, once set up is pressed.
    page(
        "account-2fa-setup",
        "/ui/account/2fa",
        Access::SignedIn,
        false,
    )
    .then_submit("/ui/account/2fa/setup"),
    page(
        "account-api-keys",
        "/ui/account/api-keys",
        Access::SignedIn,
        false,
    ),
    page("admin-dashboard", "/ui/admin", Access::Admin, true),
    page("admin-users", "/ui/admin/users", Access::Admin, true),
    page("admin-audit", "/ui/admin/audit", Access::Admin, true),
];

/// The widths checked, each with the suffix of its screenshots.
const WIDTHS: [(&str, u32, u32); 2] = [("-mobile", 360, 800), ("", 1280, 800)];

/// The user whose account is shown, the one with 2FA, the administrator.
const USER: &str = "ada";
const TWO_FACTOR_USER: &str = "grace";
const ADMIN: &str = "operator";

/// axe-core's script: `AXE_CORE_JS`, else the pinned copy `npm ci` installs.
fn axe_source() -> Option<String> {
    let path = std::env::var_os("AXE_CORE_JS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/axe/node_modules/axe-core/axe.min.js"),
        PathBuf::from,
    );
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(e) => {
            skip(&format!(
                "axe-core is not at {} ({e}): run `npm ci` in crates/gatehouse/tests/axe \
                 or set AXE_CORE_JS",
                path.display()
            ));
            None
        }
    }
}

#[tokio::test]
async fn every_page_passes_axe_at_both_widths_in_chromium() {
    let Some(axe) = axe_source() else {
        return;
    };
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let (server, base) = support::browser::on_localhost(&[]).await;
    register(&server, USER, "Ada Lovelace").await;
    register(&server, TWO_FACTOR_USER, "Grace Hopper").await;
    let token = server.token(TWO_FACTOR_USER).await;
    enable_2fa(&server, &token).await;
    if PAGES.iter().any(|p| p.access == Access::Admin) {
        server.admin(ADMIN).await;
    }
    let shots = std::env::var_os("UI_SCREENSHOTS_DIR").map(PathBuf::from);
    if let Some(dir) = &shots {
        std::fs::create_dir_all(dir).unwrap();
    }
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start(&chromedriver);
    let c = driver.session(&chromium, profile.path()).await;

    let mut checked = Vec::new();
    for access in [
        Access::SignedOut,
        Access::SignedIn,
        Access::Admin,
        Access::SecondStep,
    ] {
        let pages: Vec<&Page> = PAGES.iter().filter(|p| p.access == access).collect();
        if pages.is_empty() {
            continue;
        }
        c.delete_all_cookies().await.unwrap();
        match access {
            Access::SignedIn => {
                sign_in(&c, &base, USER, PASSWORD).await;
                arrive(&c, "/ui/account").await;
            }
            Access::Admin => {
                sign_in(&c, &base, ADMIN, PASSWORD).await;
                arrive(&c, "/ui/account").await;
            }
            Access::SignedOut | Access::SecondStep => {}
        }
        for page in pages {
            let (_, width, height) = WIDTHS[0];
            viewport(&c, width, height).await;
            if access == Access::SecondStep {
                c.delete_all_cookies().await.unwrap();
                sign_in(&c, &base, TWO_FACTOR_USER, PASSWORD).await;
                see(&c, "Two-factor code").await;
            } else {
                c.goto(&format!("{base}{}", page.path)).await.unwrap();
                let h1 = c.wait().at_most(std::time::Duration::from_secs(10));
                let shown = h1.for_element(fantoccini::Locator::Css("h1")).await;
                assert!(shown.is_ok(), "{}: no heading at {}", page.name, page.path);
                if let Some(action) = page.then_submit {
                    let before = c.find(fantoccini::Locator::Css("h1")).await.unwrap();
                    support::browser::submit(&c, action).await;
                    // The old page is gone once its heading is stale.
                    for _ in 0..100 {
                        if before.text().await.is_err() {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    let shown = c
                        .wait()
                        .at_most(std::time::Duration::from_secs(10))
                        .for_element(fantoccini::Locator::Css("h1"))
                        .await;
                    assert!(shown.is_ok(), "{}: no heading after {action}", page.name);
                }
            }
            let weight = weigh(&c, &server).await;
            let mut violations = Vec::new();
            for (suffix, width, height) in WIDTHS {
                viewport(&c, width, height).await;
                // Nothing wider than the screen, at 360 px too.
                fits(&c).await;
                violations.push((
                    if suffix.is_empty() {
                        "desktop"
                    } else {
                        "mobile"
                    },
                    run_axe(&c, &axe, page.name).await,
                ));
                if let (Some(dir), true) = (&shots, page.shot) {
                    // No caret or focus ring: the same picture every time.
                    c.execute("document.activeElement?.blur();", vec![])
                        .await
                        .unwrap();
                    let png = c.screenshot().await.unwrap();
                    std::fs::write(dir.join(format!("{}{suffix}.png", page.name)), png).unwrap();
                }
            }
            // The dark palette too (`prefers-color-scheme: dark`), wide.
            dark(&c, true).await;
            violations.push(("desktop, dark", run_axe(&c, &axe, page.name).await));
            dark(&c, false).await;
            checked.push(Checked {
                name: page.name,
                path: page.path,
                weight,
                violations,
            });
        }
    }
    c.close().await.unwrap();
    server.stop().await;

    let (markdown, json) = report(&checked);
    println!("{markdown}");
    if let Some(dir) = std::env::var_os("UI_REPORT_DIR").map(PathBuf::from) {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ui-pages.md"), &markdown).unwrap();
        let pretty = serde_json::to_string_pretty(&json).unwrap();
        std::fs::write(dir.join("ui-pages.json"), pretty + "\n").unwrap();
    }
    let mut blocking = String::new();
    for page in &checked {
        for (width, found) in &page.violations {
            for v in found.iter().filter(|v| v.is_blocking()) {
                let _ = writeln!(
                    blocking,
                    "{} at {width}: {} ({}): {} — {}",
                    page.name,
                    v.rule,
                    v.impact,
                    v.help,
                    v.targets.join(", ")
                );
            }
        }
    }
    assert!(
        blocking.is_empty(),
        "serious or critical accessibility violations:\n{blocking}"
    );
}

/// Has the page drawn as for a reader who asked for a dark scheme, or not.
async fn dark(c: &Client, on: bool) {
    let features = if on {
        json!([{"name": "prefers-color-scheme", "value": "dark"}])
    } else {
        json!([])
    };
    c.issue_cmd(Cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": features}),
    ))
    .await
    .unwrap();
    let is_dark = c
        .execute(
            "return matchMedia('(prefers-color-scheme: dark)').matches;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(is_dark, json!(on), "the emulated colour scheme");
}

/// Sizes the window so that the page itself is `width` × `height`: the
/// window's frame, as headless Chromium counts it, added.
async fn viewport(c: &Client, width: u32, height: u32) {
    c.set_window_size(width, height).await.unwrap();
    let inner = settled(c, width, None).await;
    let frame = height.saturating_sub(inner[1]);
    if frame > 0 {
        c.set_window_size(width, height + frame).await.unwrap();
    }
    let inner = settled(c, width, Some(height)).await;
    assert_eq!(inner, [width, height], "the page's viewport");
}

/// The page's size once the last resize has reached it (bounded wait).
async fn settled(c: &Client, width: u32, height: Option<u32>) -> [u32; 2] {
    let mut inner = [0, 0];
    for _ in 0..50 {
        let size = c
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .unwrap();
        let side = |i: usize| u32::try_from(size[i].as_u64().unwrap()).unwrap();
        inner = [side(0), side(1)];
        if inner[0] == width && height.is_none_or(|h| inner[1] == h) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    inner
}

/// Registers `name` (`name@example.com`, [`PASSWORD`]) with a full name.
async fn register(d: &Deployment, name: &str, full_name: &str) {
    let res = d
        .http
        .post(d.url(0, "/api/v1/auth/register"))
        .json(&json!({
            "username": name,
            "email": format!("{name}@example.com"),
            "password": PASSWORD,
            "full_name": full_name,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "register {name}");
}

/// Injects axe-core into the page (WebDriver's script execution is not
/// held to the page's CSP) and runs it: the violations it finds.
async fn run_axe(c: &Client, axe: &str, page: &str) -> Vec<Violation> {
    let loaded = c
        .execute(&format!("{axe}\n;return typeof window.axe;"), vec![])
        .await
        .unwrap();
    assert_eq!(loaded, json!("object"), "{page}: axe-core loaded");
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']}).then(
               (r) => done({violations: r.violations.map((v) => ({
                 id: v.id, impact: v.impact, help: v.help,
                 targets: v.nodes.map((n) => n.target.join(' ')),
               }))}),
               (e) => done({error: String(e)}));",
            vec![],
        )
        .await
        .unwrap();
    assert!(found["error"].is_null(), "{page}: axe failed: {found}");
    found["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| Violation {
            rule: v["id"].as_str().unwrap_or_default().to_owned(),
            impact: v["impact"].as_str().unwrap_or("unknown").to_owned(),
            help: v["help"].as_str().unwrap_or_default().to_owned(),
            targets: v["targets"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// The page's HTML as the browser received it (Navigation Timing's body
/// size, before any compression), and its stylesheets and scripts fetched.
async fn weigh(c: &Client, d: &Deployment) -> Weight {
    let found = c
        .execute(
            "const nav = performance.getEntriesByType('navigation')[0];
             return {
               html: nav ? nav.decodedBodySize : 0,
               css: [...document.querySelectorAll('link[rel~=stylesheet][href]')].map((l) => l.href),
               js: [...document.querySelectorAll('script[src]')].map((s) => s.src),
             };",
            vec![],
        )
        .await
        .unwrap();
    let html = found["html"].as_u64().unwrap_or_default();
    assert!(html > 0, "the page's size is known: {found}");
    let mut weight = Weight {
        html,
        ..Weight::default()
    };
    for (kind, total) in [("css", &mut weight.css), ("js", &mut weight.js)] {
        for url in found[kind].as_array().unwrap() {
            let url = reqwest::Url::parse(url.as_str().unwrap()).unwrap();
            // Fetched from the listener itself, whatever name the browser used.
            let own = d.url(0, url.path());
            let res = d.http.get(&own).send().await.unwrap();
            assert_eq!(res.status(), 200, "{own}");
            *total += res.bytes().await.unwrap().len() as u64;
        }
    }
    weight
}

#[test]
fn the_page_list_names_each_page_once() {
    let mut names: Vec<&str> = PAGES.iter().map(|p| p.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(
        names.len(),
        before,
        "screenshot and report names are unique"
    );
}
