//! The admin console over the real router: who sees which page, the form
//! check, the rules the use cases keep (no admin granted by a moderator, no
//! self-deletion), the typed confirmation, a deactivation signing the
//! user's page out, search and paging, escaping, the charts, and the audit
//! trail with its verification (intact, then tampered with).

use axum::body::Body;
use gatehouse_core::clock::Clock;
use http::{Request, StatusCode};
use serde_json::json;
use time::macros::format_description;

use super::{Browser, csrf_of, html, location};
use crate::harness::{Backend, PASSWORD, TestApp, TestResponse, backends};

/// Registers `name` with `role` and signs a browser in as them.
async fn signed_in<'a>(app: &'a TestApp, name: &str, role: &str) -> (String, Browser<'a>) {
    let id = app.register(name).await["id"].as_str().unwrap().to_owned();
    if role != "user" {
        app.exec(&format!(
            "UPDATE users SET role = '{role}' WHERE username = '{name}'"
        ))
        .await;
    }
    let mut b = Browser::new(app);
    let res = b.sign_in(name, "/ui/account").await;
    assert_eq!(location(&res), "/ui/account");
    (id, b)
}

/// Rows of the users table: the usernames, in order.
fn listed(res: &TestResponse) -> Vec<String> {
    let body = html(res);
    body.split(r#"<th scope="row"><a href="/ui/admin/users/"#)
        .skip(1)
        .map(|s| {
            let start = s.find('>').unwrap() + 1;
            let end = s.find("</a>").unwrap();
            s[start..end].to_owned()
        })
        .collect()
}

/// The `href` of the link labelled `label`.
fn link(res: &TestResponse, label: &str) -> Option<String> {
    let body = html(res);
    let end = body.find(&format!(">{label}</a>"))?;
    let start = body[..end].rfind("href=\"")? + 6;
    let stop = start + body[start..].find('"')?;
    Some(body[start..stop].replace("&amp;", "&"))
}

async fn role_of(app: &TestApp, name: &str) -> String {
    app.text(&format!("SELECT role FROM users WHERE username = '{name}'"))
        .await
}

async fn exists(app: &TestApp, name: &str) -> bool {
    app.count(&format!(
        "SELECT COUNT(*) FROM users WHERE username = '{name}'"
    ))
    .await
        == 1
}

#[tokio::test]
async fn each_role_sees_the_pages_its_permissions_open() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let target = app.register("role_target").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let user_page = format!("/ui/admin/users/{target}");
        let pages = [
            "/ui/admin",
            "/ui/admin/users",
            user_page.as_str(),
            "/ui/admin/audit",
        ];
        // admin:read opens everything; users:read alone opens the users.
        let cases = [
            ("admin", [true, true, true, true], Some("/ui/admin")),
            (
                "moderator",
                [false, true, true, false],
                Some("/ui/admin/users"),
            ),
            ("user", [false, false, false, false], None),
            ("viewer", [false, false, false, false], None),
        ];
        for (role, allowed, console) in cases {
            let (_, mut b) = signed_in(&app, &format!("role_{role}"), role).await;
            for (page, allowed) in pages.iter().zip(allowed) {
                let res = b.get(page).await;
                let body = html(&res);
                if allowed {
                    assert_eq!(res.status, StatusCode::OK, "{role} {page}: {body}");
                } else {
                    assert_eq!(res.status, StatusCode::FORBIDDEN, "{role} {page}: {body}");
                    assert!(
                        body.contains("You do not have permission to do this"),
                        "{role} {page}: {body}"
                    );
                    assert!(!body.contains("role_target"), "{role} {page}: {body}");
                }
                assert_eq!(res.header("content-type"), Some("text/html; charset=utf-8"));
            }
            let account = html(&b.get("/ui/account").await);
            match console {
                Some(href) => assert!(
                    account.contains(&format!(
                        r#"<a href="{href}" class="console-link">Console</a>"#
                    )),
                    "{role}: {account}"
                ),
                None => assert!(!account.contains("Console"), "{role}: {account}"),
            }
        }
        // Each refusal is in the audit trail, as the API's route guard
        // records it: 2 for the moderator, 4 each for the user and viewer.
        let denied = app
            .count("SELECT COUNT(*) FROM audit_log WHERE event = 'permission_denied'")
            .await;
        assert_eq!(denied, 10);
        // Signed out: to sign in, and back to the page afterwards.
        let mut anonymous = Browser::new(&app);
        for page in pages {
            let res = anonymous.get(page).await;
            let to = location(&res);
            assert!(
                to.starts_with("/ui/sign-in?return_to=%2Fui%2Fadmin"),
                "{to}"
            );
        }
    }
}

#[tokio::test]
async fn a_form_without_its_token_changes_nothing() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let (_, mut admin) = signed_in(&app, "csrf_admin", "admin").await;
    let target = app.register("csrf_target").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = admin.get(&format!("/ui/admin/users/{target}")).await;
    let good = csrf_of(&page);
    let wrong = "0".repeat(64);
    for token in ["", wrong.as_str()] {
        let posts: [(String, Vec<(&str, &str)>); 4] = [
            (
                format!("/ui/admin/users/{target}/role"),
                vec![("role", "admin")],
            ),
            (
                format!("/ui/admin/users/{target}/active"),
                vec![("is_active", "false")],
            ),
            (
                format!("/ui/admin/users/{target}/sessions/revoke-all"),
                vec![],
            ),
            (
                format!("/ui/admin/users/{target}/delete"),
                vec![("confirm", "csrf_target")],
            ),
        ];
        for (path, fields) in posts {
            let mut form = vec![("csrf", token)];
            form.extend(fields);
            let res = admin.post(&path, &form).await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}");
            assert!(html(&res).contains("This form was not accepted"), "{path}");
        }
    }
    assert!(exists(&app, "csrf_target").await);
    assert_eq!(role_of(&app, "csrf_target").await, "user");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE username = 'csrf_target' AND is_active")
            .await,
        1
    );
    // With the token, the same form goes through.
    let res = admin
        .post(
            &format!("/ui/admin/users/{target}/role"),
            &[("csrf", &good), ("role", "viewer")],
        )
        .await;
    assert_eq!(
        location(&res),
        format!("/ui/admin/users/{target}?notice=role_changed")
    );
    assert_eq!(role_of(&app, "csrf_target").await, "viewer");
}

#[tokio::test]
async fn a_moderator_cannot_grant_admin_nor_change_an_admin() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, mut moderator) = signed_in(&app, "mod_actor", "moderator").await;
        let target = app.register("mod_target").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (admin_id, _) = signed_in(&app, "mod_admin", "admin").await;
        let page = moderator.get(&format!("/ui/admin/users/{target}")).await;
        assert!(
            !html(&page).contains(r#"<option value="admin""#),
            "admin is not offered to a moderator"
        );
        let csrf = csrf_of(&page);
        let res = moderator
            .post(
                &format!("/ui/admin/users/{target}/role"),
                &[("csrf", &csrf), ("role", "admin")],
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        let body = html(&res);
        assert!(
            body.contains("You do not have permission to do this"),
            "{body}"
        );
        assert!(body.contains("mod_target"), "the user's page again: {body}");
        assert_eq!(role_of(&app, "mod_target").await, "user");
        // Demoting an admin is refused alike; a plain change goes through.
        let res = moderator
            .post(
                &format!("/ui/admin/users/{admin_id}/role"),
                &[("csrf", &csrf), ("role", "user")],
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        assert_eq!(role_of(&app, "mod_admin").await, "admin");
        let res = moderator
            .post(
                &format!("/ui/admin/users/{target}/role"),
                &[("csrf", &csrf), ("role", "viewer")],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        assert_eq!(role_of(&app, "mod_target").await, "viewer");
        // A moderator has no users:delete: refused by the use case.
        let res = moderator
            .post(
                &format!("/ui/admin/users/{target}/delete"),
                &[("csrf", &csrf), ("confirm", "mod_target")],
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        assert!(exists(&app, "mod_target").await);
        // Only the missing permission (users:delete) is a permission_denied;
        // the rules about admins are the use case's own refusals.
        let denied = app
            .count("SELECT COUNT(*) FROM audit_log WHERE event = 'permission_denied'")
            .await;
        assert_eq!(denied, 1);
    }
}

#[tokio::test]
async fn deleting_takes_the_typed_username_and_never_oneself() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (admin_id, mut admin) = signed_in(&app, "del_admin", "admin").await;
        let target = app.register("del_target").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let page = admin.get(&format!("/ui/admin/users/{target}")).await;
        let csrf = csrf_of(&page);
        let path = format!("/ui/admin/users/{target}/delete");
        for typed in ["", "del_targe", "DEL_TARGET", "del_admin"] {
            let res = admin
                .post(&path, &[("csrf", &csrf), ("confirm", typed)])
                .await;
            assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{typed:?}");
            let body = html(&res);
            assert!(
                body.contains("The username typed does not match: nothing was deleted"),
                "{body}"
            );
            assert!(exists(&app, "del_target").await, "{typed:?}");
        }
        // Oneself: refused by the use case, even with the name typed.
        let own = admin.get(&format!("/ui/admin/users/{admin_id}")).await;
        assert!(
            !html(&own).contains("/delete\""),
            "no delete form for oneself"
        );
        let res = admin
            .post(
                &format!("/ui/admin/users/{admin_id}/delete"),
                &[("csrf", &csrf), ("confirm", "del_admin")],
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert!(html(&res).contains("You cannot delete your own account"));
        assert!(exists(&app, "del_admin").await);
        // The right name deletes, and the list says so.
        let res = admin
            .post(&path, &[("csrf", &csrf), ("confirm", "del_target")])
            .await;
        assert_eq!(location(&res), "/ui/admin/users?notice=user_deleted");
        assert!(!exists(&app, "del_target").await);
        let list = admin.get("/ui/admin/users?notice=user_deleted").await;
        assert!(html(&list).contains("The user was deleted"));
        assert!(!listed(&list).contains(&"del_target".to_owned()));
        // Gone: its page is not found, in words; so is a malformed id.
        for path in [
            format!("/ui/admin/users/{target}"),
            "/ui/admin/users/nope".into(),
        ] {
            let res = admin.get(&path).await;
            assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
            assert!(html(&res).contains("Page not found"), "{path}");
        }
    }
}

#[tokio::test]
async fn deactivation_and_revocation_sign_the_users_pages_out() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, mut admin) = signed_in(&app, "off_admin", "admin").await;
        let (target, mut user) = signed_in(&app, "off_user", "user").await;
        assert_eq!(user.get("/ui/account").await.status, StatusCode::OK);
        // An API key of the user, revoked by the admin.
        let (token, _) = app.login("off_user@example.com", PASSWORD).await;
        let created = app
            .call(
                "POST",
                "/api/v1/api-keys",
                &token,
                Some(json!({"name": "ci key"})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
        let (key_id, key) = (
            created.json()["id"].as_str().unwrap().to_owned(),
            created.json()["key"].as_str().unwrap().to_owned(),
        );
        let page = admin.get(&format!("/ui/admin/users/{target}")).await;
        let body = html(&page);
        assert!(body.contains("ci key"), "{body}");
        assert!(
            body.contains("<dt>Two-factor authentication</dt><dd>off</dd>"),
            "{body}"
        );
        let csrf = csrf_of(&page);
        let res = admin
            .post(
                &format!("/ui/admin/users/{target}/api-keys/{key_id}/revoke"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(
            location(&res),
            format!("/ui/admin/users/{target}?notice=key_revoked")
        );
        let with_key = Request::get("/api/v1/users/me")
            .header("x-api-key", &key)
            .body(Body::empty())
            .unwrap();
        assert_eq!(app.send(with_key).await.status, StatusCode::UNAUTHORIZED);
        // One session ended: the page's own login is among those listed.
        let body = html(&admin.get(&format!("/ui/admin/users/{target}")).await);
        let marker = format!("/ui/admin/users/{target}/sessions/");
        let sessions: Vec<String> = body
            .split(&marker)
            .skip(1)
            .filter_map(|s| s.split('/').next())
            .filter(|s| !s.starts_with("revoke-all"))
            .map(str::to_owned)
            .collect();
        assert_eq!(sessions.len(), 2, "the page's login and the API's: {body}");
        for sid in &sessions {
            let res = admin
                .post(
                    &format!("/ui/admin/users/{target}/sessions/{sid}/revoke"),
                    &[("csrf", &csrf)],
                )
                .await;
            assert_eq!(res.status, StatusCode::SEE_OTHER);
        }
        let res = user.get("/ui/account").await;
        assert!(location(&res).starts_with("/ui/sign-in"), "signed out");
        // Signed in again, then deactivated: the next request is signed out.
        let res = user.sign_in("off_user", "/ui/account").await;
        assert_eq!(location(&res), "/ui/account");
        assert_eq!(user.get("/ui/account").await.status, StatusCode::OK);
        let res = admin
            .post(
                &format!("/ui/admin/users/{target}/active"),
                &[("csrf", &csrf), ("is_active", "false")],
            )
            .await;
        assert_eq!(
            location(&res),
            format!("/ui/admin/users/{target}?notice=deactivated")
        );
        let res = user.get("/ui/account").await;
        assert_eq!(
            location(&res),
            "/ui/sign-in?return_to=%2Fui%2Faccount",
            "the deactivated user's page is signed out"
        );
        assert!(!user.cookies.contains_key("ui_session"));
        let page = html(&admin.get(&format!("/ui/admin/users/{target}")).await);
        assert!(
            page.contains("deactivated") && page.contains("No active session."),
            "{page}"
        );
        // The audit trail holds each change, by the admin.
        let audit = html(
            &admin
                .get(&format!("/ui/admin/audit?user_id={target}"))
                .await,
        );
        for event in ["session_revoked", "api_key_revoked", "user_deactivated"] {
            assert!(
                audit.contains(&format!("<td>{event}</td>")),
                "{event}: {audit}"
            );
        }
    }
}

#[tokio::test]
async fn search_filters_and_pages_keep_to_the_list_rules() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, mut admin) = signed_in(&app, "list_admin", "admin").await;
        for name in ["alice_1", "alice_2", "alice_3", "bob_v", "carol_off"] {
            app.register(name).await;
        }
        app.exec("UPDATE users SET role = 'viewer' WHERE username = 'bob_v'")
            .await;
        app.exec("UPDATE users SET is_active = false WHERE username = 'carol_off'")
            .await;
        let res = admin.get("/ui/admin/users?q=alice").await;
        assert_eq!(listed(&res), ["alice_1", "alice_2", "alice_3"]);
        assert_eq!(
            listed(&admin.get("/ui/admin/users?role=viewer").await),
            ["bob_v"]
        );
        assert_eq!(
            listed(&admin.get("/ui/admin/users?is_active=false").await),
            ["carol_off"]
        );
        assert_eq!(
            listed(
                &admin
                    .get("/ui/admin/users?q=ALICE&role=user&is_active=true")
                    .await
            ),
            ["alice_1", "alice_2", "alice_3"]
        );
        // Keyset pages: the next link keeps the filters.
        let first = admin.get("/ui/admin/users?q=alice&limit=2").await;
        assert_eq!(listed(&first), ["alice_1", "alice_2"]);
        let next = link(&first, "Next page").expect("a next page");
        assert!(
            next.contains("q=alice") && next.contains("limit=2") && next.contains("after="),
            "{next}"
        );
        let second = admin.get(&next).await;
        assert_eq!(listed(&second), ["alice_3"]);
        assert!(link(&second, "Next page").is_none());
        assert_eq!(
            link(&second, "First page").as_deref(),
            Some("/ui/admin/users?q=alice&limit=2")
        );
        // Bad values are said in words, never a server error.
        for (query, words) in [
            ("role=wizard", "must be admin, moderator, user or viewer"),
            ("is_active=maybe", "must be true or false"),
            ("limit=0", "must be a whole number of at least 1"),
            ("after=not-a-cursor", "is not a page of this list"),
        ] {
            let res = admin.get(&format!("/ui/admin/users?{query}")).await;
            assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
            assert!(html(&res).contains(words), "{query}: {}", html(&res));
        }
    }
}

#[tokio::test]
async fn what_users_typed_is_escaped_on_every_page() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, mut admin) = signed_in(&app, "esc_admin", "admin").await;
        let res = app
            .post_json(
                "/api/v1/auth/register",
                &json!({
                    "username": "esc_user",
                    "email": "esc_user@example.com",
                    "password": PASSWORD,
                    "full_name": "Tom & \"Jerry\"",
                })
                .to_string(),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED);
        let id = res.json()["id"].as_str().unwrap().to_owned();
        // A name no rule lets in today, as an older row might hold it.
        app.exec(
            "UPDATE users SET username = '<script>alert(1)</script>' WHERE username = 'esc_user'",
        )
        .await;
        let login = Request::post("/api/v1/auth/login")
            .header("content-type", "application/json")
            .header("user-agent", "<script>alert(2)</script>")
            .body(Body::from(
                json!({"email": "esc_user@example.com", "password": PASSWORD}).to_string(),
            ))
            .unwrap();
        assert_eq!(app.send(login).await.status, StatusCode::OK);
        let pages = [
            "/ui/admin/users?q=%3Cscript%3Ealert(3)%3C%2Fscript%3E".to_owned(),
            "/ui/admin/users?role=user".to_owned(),
            format!("/ui/admin/users/{id}"),
            "/ui/admin/audit".to_owned(),
            "/ui/admin/audit?event=%3Cscript%3Ealert(4)%3C%2Fscript%3E".to_owned(),
            "/ui/admin".to_owned(),
        ];
        for page in &pages {
            let res = admin.get(page).await;
            let body = html(&res);
            assert!(!body.contains("<script>alert"), "{page}: {body}");
            assert!(!body.contains("\"Jerry\""), "{page}: {body}");
        }
        for (page, what) in [
            (&pages[1], "&lt;script&gt;alert(1)&lt;/script&gt;"),
            (&pages[1], "Tom &amp; &quot;Jerry&quot;"),
            (&pages[0], "value=\"&lt;script&gt;alert(3)&lt;/script&gt;\""),
            (&pages[2], "&lt;script&gt;alert(1)&lt;/script&gt;"),
            (&pages[2], "&lt;script&gt;alert(2)&lt;/script&gt;"),
            (&pages[3], "&lt;script&gt;alert(2)&lt;/script&gt;"),
            (&pages[4], "&lt;script&gt;alert(4)&lt;/script&gt;"),
        ] {
            let body = html(&admin.get(page).await);
            assert!(body.contains(what), "{page} shows {what}: {body}");
        }
    }
}

#[tokio::test]
async fn the_dashboard_draws_the_last_day_without_inline_style() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, mut admin) = signed_in(&app, "dash_admin", "admin").await;
        app.register("dash_victim").await;
        // Five wrong passwords lock the account (one `account_locked`).
        for _ in 0..5 {
            app.login_raw("dash_victim@example.com", "Wr0ng-Passw0rd!")
                .await;
        }
        let res = admin.get("/ui/admin").await;
        assert_eq!(res.status, StatusCode::OK);
        let body = html(&res);
        assert!(!body.contains("style="), "no inline style: {body}");
        assert!(!body.contains("<style"), "no inline style: {body}");
        for id in ["chart-logins", "chart-lockouts", "chart-sessions"] {
            assert!(
                body.contains(&format!(
                    r#"role="img" aria-labelledby="{id}-title {id}-desc""#
                )),
                "{id}: {body}"
            );
            assert!(
                body.contains(&format!(r#"<title id="{id}-title">"#)),
                "{id}"
            );
        }
        assert!(
            body.contains("<dt>Locked accounts</dt><dd>1</dd>"),
            "{body}"
        );
        assert!(body.contains("1 succeeded, 5 failed"), "{body}");
        // The current hour's row of the table holds the same numbers.
        let hour = app
            .clock
            .now()
            .format(format_description!("[hour]:00"))
            .unwrap();
        let row = format!(r#"<tr><th scope="row">{hour}</th><td>1</td><td>5</td><td>1</td></tr>"#);
        assert!(body.contains(&row), "{row}: {body}");
        assert!(
            body.contains("by hour: 1 succeeded, 5 failed in all."),
            "{body}"
        );
        // Live sessions by role: the admin's page login.
        assert!(
            body.contains(r#"<tr><th scope="row">admin</th><td>1</td></tr>"#),
            "{body}"
        );
        // An hour later the entries sit one bar to the left.
        app.clock.advance(std::time::Duration::from_secs(3600));
        let body = html(&admin.get("/ui/admin").await);
        assert!(body.contains(&row), "last hour's row: {body}");
    }
}

#[tokio::test]
async fn the_audit_page_shows_the_trail_and_a_broken_link() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (admin_id, mut admin) = signed_in(&app, "trail_admin", "admin").await;
        app.register("trail_user").await;
        app.login_raw("trail_user@example.com", "Wr0ng-Passw0rd!")
            .await;
        let res = admin.get("/ui/admin/audit").await;
        assert_eq!(res.status, StatusCode::OK);
        let body = html(&res);
        assert!(body.contains("The chain is valid"), "{body}");
        for event in ["user_registered", "login_succeeded", "login_failed"] {
            assert!(
                body.contains(&format!("<td>{event}</td>")),
                "{event}: {body}"
            );
        }
        // Filters: by event, by user, by time.
        let body = html(&admin.get("/ui/admin/audit?event=login_failed").await);
        assert!(body.contains("<td>login_failed</td>"));
        assert!(!body.contains("<td>login_succeeded</td>"), "{body}");
        let body = html(
            &admin
                .get(&format!("/ui/admin/audit?user_id={admin_id}"))
                .await,
        );
        assert!(body.contains("<td>login_succeeded</td>"));
        assert!(!body.contains("<td>login_failed</td>"), "{body}");
        let body = html(&admin.get("/ui/admin/audit?since=2999-01-01T00%3A00").await);
        assert!(body.contains("No entry matches."), "{body}");
        for (query, words) in [
            ("user_id=42", "must be a user id"),
            ("since=yesterday", "must be a date and time"),
            ("after=x", "is not a page of this trail"),
        ] {
            let res = admin.get(&format!("/ui/admin/audit?{query}")).await;
            assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
            assert!(html(&res).contains(words), "{query}");
        }
        // Someone with the database rewrites an entry: the page says where.
        app.exec(r#"UPDATE audit_log SET details = '{"forged":true}' WHERE seq = 2"#)
            .await;
        let res = admin.get("/ui/admin/audit").await;
        assert_eq!(res.status, StatusCode::OK);
        let body = html(&res);
        assert!(body.contains("The chain is broken."), "{body}");
        assert!(
            body.contains(
                "The first broken link is at entry 2: entry content does not match its hash."
            ),
            "{body}"
        );
    }
}

#[tokio::test]
async fn audit_pages_follow_one_another() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let (_, mut admin) = signed_in(&app, "pages_admin", "admin").await;
    // Fifty-odd entries: more than one page of the trail.
    for i in 0..50 {
        app.login_raw(&format!("ghost{i}@example.com"), "Wr0ng-Passw0rd!")
            .await;
    }
    let first = admin.get("/ui/admin/audit?event=login_failed").await;
    let body = html(&first);
    assert_eq!(body.matches("<td>login_failed</td>").count(), 50);
    assert!(link(&first, "Older entries").is_none(), "exactly one page");
    app.login_raw("ghost50@example.com", "Wr0ng-Passw0rd!")
        .await;
    let first = admin.get("/ui/admin/audit?event=login_failed").await;
    let next = link(&first, "Older entries").expect("a second page");
    assert!(
        next.contains("event=login_failed") && next.contains("after="),
        "{next}"
    );
    let body = html(&admin.get(&next).await);
    assert_eq!(body.matches("<td>login_failed</td>").count(), 1, "{body}");
}
