//! Who may touch a file: the owner only (another user's id is a 404),
//! moderators and admins may delete anyone's, every role against every file
//! route, and files that go with their owner.

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};

use super::{assert_store_consistent, jpeg, pdf, png, stored, upload};
use crate::harness::{TestApp, backends};

#[tokio::test]
async fn only_the_owner_sees_a_file_and_moderators_may_delete_it() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, alice) = app.account("alice", "user").await;
        let (_, bob) = app.account("bob", "user").await;
        let (_, moderator) = app.account("mod", "moderator").await;
        let first = stored(&app, &alice, "a.png", &png()).await;
        let second = stored(&app, &alice, "b.pdf", &pdf()).await;
        let path = |f: &Value| format!("/api/v1/files/{}", f["id"].as_str().unwrap());

        // Another user: the same 404 as for an id that does not exist.
        let unknown = format!("/api/v1/files/{}", uuid::Uuid::now_v7());
        for p in [path(&first), unknown] {
            for method in ["GET", "DELETE"] {
                let res = app.call(method, &p, &bob, None).await;
                res.assert_problem(StatusCode::NOT_FOUND, "not_found");
            }
        }
        let bobs = app.call("GET", "/api/v1/files", &bob, None).await.json();
        assert_eq!(bobs["files"], json!([]));
        // Reading stays owner-only, even for moderators.
        app.call("GET", &path(&first), &moderator, None)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not_found");
        // Malformed ids are 422.
        for method in ["GET", "DELETE"] {
            let res = app
                .call(method, "/api/v1/files/not-a-uuid", &alice, None)
                .await;
            let body = res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
            assert_eq!(body["errors"][0]["field"], "id");
        }

        // content:delete lets a moderator remove anyone's file.
        let res = app.call("DELETE", &path(&first), &moderator, None).await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
        app.call("GET", &path(&first), &alice, None)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not_found");
        assert_eq!(
            app.call("GET", &path(&second), &alice, None).await.status,
            StatusCode::OK
        );
        assert_store_consistent(&app, 1).await;
        let actor = app
            .count("SELECT COUNT(*) FROM audit_log WHERE event = 'file_deleted' AND actor_id <> target_id")
            .await;
        assert_eq!(actor, 1, "the deletion names the moderator and the owner");
    }
}

#[tokio::test]
async fn files_go_with_their_owner() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (alice_id, alice) = app.account("alice", "user").await;
        let (_, bob) = app.account("bob", "user").await;
        let (_, admin) = app.account("boss", "admin").await;
        stored(&app, &alice, "a.png", &png()).await;
        stored(&app, &alice, "b.pdf", &pdf()).await;
        let kept = stored(&app, &bob, "c.jpg", &jpeg()).await;
        assert_store_consistent(&app, 3).await;

        let res = app
            .call("DELETE", &format!("/api/v1/users/{alice_id}"), &admin, None)
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
        assert_store_consistent(&app, 1).await;
        let path = format!("/api/v1/files/{}", kept["id"].as_str().unwrap());
        let res = app.call("GET", &path, &bob, None).await;
        assert_eq!(res.body.as_ref(), jpeg().as_slice());
    }
}

#[tokio::test]
async fn every_role_against_every_file_route() {
    // (role, upload, list, download own, delete own, delete another's)
    let table: [(&str, [u16; 5]); 4] = [
        ("admin", [201, 200, 200, 204, 204]),
        ("moderator", [201, 200, 200, 204, 204]),
        ("user", [201, 200, 200, 204, 404]),
        ("viewer", [403, 200, 200, 403, 403]),
    ];
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, admin) = app.account("boss", "admin").await;
        let (_, other) = app.account("other", "user").await;
        for (role, expected) in table {
            // Each account uploads while still a `user`, then gets its role,
            // so viewers too have a file of their own.
            let name = format!("as_{role}");
            let (id, token) = app.account(&name, "user").await;
            let own = stored(&app, &token, "own.png", &png()).await;
            let theirs = stored(&app, &other, "theirs.png", &png()).await;
            let res = app
                .call(
                    "PATCH",
                    &format!("/api/v1/users/{id}"),
                    &admin,
                    Some(json!({"role": role})),
                )
                .await;
            assert_eq!(res.status, StatusCode::OK);
            let own = format!("/api/v1/files/{}", own["id"].as_str().unwrap());
            let theirs = format!("/api/v1/files/{}", theirs["id"].as_str().unwrap());

            let got = [
                upload(&app, &token, "new.pdf", &pdf()).await,
                app.call("GET", "/api/v1/files", &token, None).await,
                app.call("GET", &own, &token, None).await,
                app.call("DELETE", &own, &token, None).await,
                app.call("DELETE", &theirs, &token, None).await,
            ];
            for (res, want) in got.iter().zip(expected) {
                assert_eq!(
                    res.status.as_u16(),
                    want,
                    "{backend:?} {role}: {}",
                    String::from_utf8_lossy(&res.body)
                );
                if want == 403 {
                    res.assert_problem(StatusCode::FORBIDDEN, "forbidden");
                }
            }
        }
        // Without credentials every route is 401.
        for (method, path) in [
            ("POST", "/api/v1/files"),
            ("GET", "/api/v1/files"),
            ("GET", "/api/v1/files/0190b6c1-7a4e-7c2a-9d1e-3f5a8b2c4d6e"),
            (
                "DELETE",
                "/api/v1/files/0190b6c1-7a4e-7c2a-9d1e-3f5a8b2c4d6e",
            ),
        ] {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            let res = app.send(req).await;
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        }
    }
}
