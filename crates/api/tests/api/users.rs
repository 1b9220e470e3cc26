//! `/api/v1/users`: own account, sessions, administration, lists.

use http::StatusCode;
use serde_json::{Value, json};

use crate::harness::{PASSWORD, TestApp, backends};

#[tokio::test]
async fn update_me_changes_the_name_and_only_requests_an_email_change() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("uma", "user").await;
        let res = app
            .call(
                "PUT",
                "/api/v1/users/me",
                &token,
                Some(json!({"full_name": "<i>Uma</i> T"})),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend:?}");
        let me = res.json();
        assert_eq!(me["full_name"], "Uma T");
        // A new email is requested, not applied: it waits for confirmation
        // from the new address, and the old one still logs in.
        let res = app
            .call(
                "PUT",
                "/api/v1/users/me",
                &token,
                Some(json!({"email": "UMA.new@example.com"})),
            )
            .await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{backend:?}");
        let requested = res.json();
        let me = app.get_with_token("/api/v1/users/me", &token).await.json();
        assert_eq!(me["email"], "uma@example.com");
        app.login("uma@example.com", PASSWORD).await;
        // null clears the name; unknown fields are refused.
        let res = app
            .call(
                "PUT",
                "/api/v1/users/me",
                &token,
                Some(json!({"full_name": null})),
            )
            .await;
        assert_eq!(res.json()["full_name"], Value::Null);
        app.call(
            "PUT",
            "/api/v1/users/me",
            &token,
            Some(json!({"role": "admin"})),
        )
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
        // Someone else's email gets the very same answer (no probing).
        app.register("victor").await;
        let taken = app
            .call(
                "PUT",
                "/api/v1/users/me",
                &token,
                Some(json!({"email": "victor@example.com"})),
            )
            .await;
        assert_eq!(taken.status, StatusCode::ACCEPTED, "{backend:?}");
        assert_eq!(taken.json(), requested);
    }
}

#[tokio::test]
async fn change_password_revokes_every_session_and_token() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("walt", "user").await;
        let (other_token, other_refresh) = app.login("walt@example.com", PASSWORD).await;
        let new = "N3w-Passw0rd!zz";

        let wrong = app
            .call(
                "POST",
                "/api/v1/users/me/change-password",
                &token,
                Some(json!({"current_password": "Wr0ng-Passw0rd!", "new_password": new})),
            )
            .await;
        wrong.assert_problem(StatusCode::BAD_REQUEST, "invalid_current_password");
        let same = app
            .call(
                "POST",
                "/api/v1/users/me/change-password",
                &token,
                Some(json!({"current_password": PASSWORD, "new_password": PASSWORD})),
            )
            .await;
        same.assert_problem(StatusCode::BAD_REQUEST, "weak_password");
        let weak = app
            .call(
                "POST",
                "/api/v1/users/me/change-password",
                &token,
                Some(json!({"current_password": PASSWORD, "new_password": "short"})),
            )
            .await;
        weak.assert_problem(StatusCode::BAD_REQUEST, "weak_password");

        let ok = app
            .call(
                "POST",
                "/api/v1/users/me/change-password",
                &token,
                Some(json!({"current_password": PASSWORD, "new_password": new})),
            )
            .await;
        assert_eq!(ok.status, StatusCode::OK, "{backend:?}");
        for t in [&token, &other_token] {
            app.get_with_token("/api/v1/users/me", t)
                .await
                .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
        }
        let refreshed = app
            .send(
                http::Request::post("/api/v1/auth/refresh")
                    .header("cookie", format!("refresh_token={other_refresh}"))
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        refreshed.assert_problem(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
        app.login_raw("walt@example.com", PASSWORD)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        app.login("walt@example.com", new).await;
    }
}

#[tokio::test]
async fn sessions_are_listed_and_revocable_by_their_owner_only() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("xena", "user").await;
        let (token2, _) = app.login("xena@example.com", PASSWORD).await;
        let (_, intruder) = app.account("yuri", "user").await;

        let list = app
            .get_with_token("/api/v1/users/me/sessions", &token)
            .await
            .json();
        let sessions = list["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 2, "{backend:?}: {list}");
        assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
        for s in sessions {
            for key in ["id", "created_at", "last_used_at", "ip", "user_agent"] {
                assert!(s.get(key).is_some(), "{key}");
            }
        }
        let other = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/api/v1/users/me/sessions/{other}");
        // Someone else's session id: not found, nothing revoked.
        app.call("DELETE", &path, &intruder, None)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not_found");
        assert_eq!(
            app.get_with_token("/api/v1/users/me", &token2).await.status,
            StatusCode::OK
        );
        assert_eq!(
            app.call("DELETE", &path, &token, None).await.status,
            StatusCode::NO_CONTENT
        );
        // The revoked login's access token dies with it.
        app.get_with_token("/api/v1/users/me", &token2)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
        let list = app
            .get_with_token("/api/v1/users/me/sessions", &token)
            .await
            .json();
        assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
        app.call(
            "DELETE",
            "/api/v1/users/me/sessions/not-a-uuid",
            &token,
            None,
        )
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
    }
}

#[tokio::test]
async fn list_pages_keysets_and_filters() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, admin) = app.account("boss_admin", "admin").await;
        for i in 0..7 {
            app.register(&format!("member_{i}")).await;
        }
        app.register("memberx1").await;
        app.exec("UPDATE users SET is_active = FALSE WHERE username = 'member_6'")
            .await;

        let page = app
            .get_with_token("/api/v1/users?page=2&per_page=3", &admin)
            .await
            .json();
        assert_eq!(page["total"], 9, "{backend:?}: {page}");
        assert_eq!(page["page"], 2);
        assert_eq!(page["per_page"], 3);
        assert_eq!(page["pages"], 3);
        assert_eq!(page["users"].as_array().unwrap().len(), 3);
        let capped = app
            .get_with_token("/api/v1/users?per_page=1000", &admin)
            .await
            .json();
        assert_eq!(capped["per_page"], 100);

        // Keyset: walk everything 4 at a time, ascending ids, no repeats.
        let mut seen: Vec<String> = Vec::new();
        let mut url = "/api/v1/users?limit=4".to_owned();
        loop {
            let body = app.get_with_token(&url, &admin).await.json();
            seen.extend(
                body["users"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u["id"].as_str().unwrap().to_owned()),
            );
            match body["next_cursor"].as_str() {
                Some(cursor) => url = format!("/api/v1/users?limit=4&after={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen.len(), 9);
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted);

        // Filters: prefix (wildcards are literal), role, activity.
        let q = app
            .get_with_token("/api/v1/users?q=MEMBER_&per_page=100", &admin)
            .await
            .json();
        assert_eq!(
            q["total"], 7,
            "_ is not a wildcard (memberx1 excluded): {q}"
        );
        let q = app
            .get_with_token("/api/v1/users?q=mem%25&per_page=100", &admin)
            .await
            .json();
        assert_eq!(q["total"], 0, "% is not a wildcard: {q}");
        let admins = app
            .get_with_token("/api/v1/users?role=admin", &admin)
            .await
            .json();
        assert_eq!(admins["total"], 1);
        let inactive = app
            .get_with_token("/api/v1/users?is_active=false&limit=10", &admin)
            .await
            .json();
        assert_eq!(inactive["users"].as_array().unwrap().len(), 1);
        assert_eq!(inactive["next_cursor"], Value::Null);

        for bad in [
            "page=0",
            "per_page=x",
            "limit=-1",
            "after=zzz",
            "role=root",
            "is_active=maybe",
        ] {
            app.get_with_token(&format!("/api/v1/users?{bad}"), &admin)
                .await
                .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
        }
    }
}

#[tokio::test]
async fn admin_creates_patches_and_deletes_users() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (admin_id, admin) = app.account("chief", "admin").await;
        let (_, moderator) = app.account("mod_one", "moderator").await;

        let created = app
            .call("POST", "/api/v1/users", &admin, Some(json!({"username": "newbie", "email": "newbie@example.com", "password": PASSWORD, "role": "viewer"})))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{backend:?}");
        let id = created.json()["id"].as_str().unwrap().to_owned();
        assert_eq!(created.json()["role"], "viewer");
        let (newbie_token, _) = app.login("newbie@example.com", PASSWORD).await;

        // Only admins create or grant admin.
        app.call("POST", "/api/v1/users", &moderator, Some(json!({"username": "sneaky", "email": "sneaky@example.com", "password": PASSWORD, "role": "admin"})))
            .await
            .assert_problem(StatusCode::FORBIDDEN, "forbidden");
        let path = format!("/api/v1/users/{id}");
        app.call("PATCH", &path, &moderator, Some(json!({"role": "admin"})))
            .await
            .assert_problem(StatusCode::FORBIDDEN, "forbidden");
        let promoted = app
            .call(
                "PATCH",
                &path,
                &moderator,
                Some(json!({"role": "user", "full_name": "New Bie"})),
            )
            .await;
        assert_eq!(promoted.status, StatusCode::OK);
        assert_eq!(promoted.json()["role"], "user");
        // The role change applies to the user's existing token at once.
        assert_eq!(
            app.get_with_token("/api/v1/users/me", &newbie_token)
                .await
                .json()["role"],
            "user"
        );

        // Deactivation: the user's tokens stop working on the next request.
        let off = app
            .call("PATCH", &path, &admin, Some(json!({"is_active": false})))
            .await;
        assert_eq!(off.json()["is_active"], false);
        app.get_with_token("/api/v1/users/me", &newbie_token)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");

        assert_eq!(
            app.call("GET", &path, &admin, None).await.json()["username"],
            "newbie"
        );
        app.call("GET", "/api/v1/users/not-a-uuid", &admin, None)
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
        app.call(
            "GET",
            &format!("/api/v1/users/{}", uuid::Uuid::now_v7()),
            &admin,
            None,
        )
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");

        app.call("DELETE", &format!("/api/v1/users/{admin_id}"), &admin, None)
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "cannot_delete_self");
        assert_eq!(
            app.call("DELETE", &path, &admin, None).await.status,
            StatusCode::NO_CONTENT
        );
        app.call("GET", &path, &admin, None)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not_found");
        app.login_raw("newbie@example.com", PASSWORD)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
}

#[tokio::test]
async fn deleting_a_user_cascades_their_logins() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, admin) = app.account("root_boss", "admin").await;
        let (id, token) = app.account("leaver", "user").await;
        app.login("leaver@example.com", PASSWORD).await;
        assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 3);
        let res = app
            .call("DELETE", &format!("/api/v1/users/{id}"), &admin, None)
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
        app.get_with_token("/api/v1/users/me", &token)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
        // Only the admin's login is left; the leaver's tokens went with them.
        assert_eq!(
            app.count("SELECT COUNT(*) FROM sessions").await,
            1,
            "{backend:?}"
        );
        assert_eq!(
            app.count("SELECT COUNT(*) FROM refresh_tokens").await,
            1,
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn export_streams_ndjson_and_safe_csv() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, admin) = app.account("exp_admin", "admin").await;
        let (_, viewer) = app.account("exp_viewer", "viewer").await;
        let body = json!({"username": "exp_formula", "email": "exp_formula@example.com",
                          "password": PASSWORD, "full_name": "=HYPERLINK(\"http://evil\")"});
        assert_eq!(
            app.post_json("/api/v1/auth/register", &body.to_string())
                .await
                .status,
            StatusCode::CREATED
        );

        let nd = app
            .call("GET", "/api/v1/users/export?format=ndjson", &admin, None)
            .await;
        assert_eq!(nd.status, StatusCode::OK, "{backend:?}");
        assert_eq!(nd.header("content-type"), Some("application/x-ndjson"));
        assert!(
            nd.header("content-disposition")
                .unwrap()
                .starts_with("attachment")
        );
        let text = String::from_utf8(nd.body.to_vec()).unwrap();
        let users: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(users.len(), 3);
        assert_eq!(users[0]["username"], "exp_admin");
        assert!(
            !text.contains("argon2") && !text.contains("k1:"),
            "no hashes or ciphertexts"
        );

        let csv = app
            .call(
                "GET",
                "/api/v1/users/export?format=csv&role=user",
                &admin,
                None,
            )
            .await;
        assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
        let text = String::from_utf8(csv.body.to_vec()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("id,username,email"));
        assert!(
            lines[1].contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
            "{}",
            lines[1]
        );

        app.call("GET", "/api/v1/users/export?format=xml", &admin, None)
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
        app.call("GET", "/api/v1/users/export", &viewer, None)
            .await
            .assert_problem(StatusCode::FORBIDDEN, "forbidden");
        let audit = app
            .call(
                "GET",
                "/api/v1/admin/audit?event=data_exported",
                &admin,
                None,
            )
            .await
            .json();
        assert_eq!(audit["entries"].as_array().unwrap().len(), 2);
    }
}
