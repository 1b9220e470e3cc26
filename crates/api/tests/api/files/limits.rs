//! What bounds the disk: the per-user quota (files and bytes, also against
//! uploads in parallel), the free-space floor, the paginated list, and the
//! sweep of contents left without a row.

use std::time::Duration;

use futures_util::future::join_all;
use gatehouse_core::service::ORPHAN_GRACE;
use http::StatusCode;
use serde_json::Value;

use super::{assert_store_consistent, png, png_of, stored, stored_names, upload};
use crate::harness::{TestApp, backends};

#[tokio::test]
async fn uploads_past_the_file_quota_are_refused_and_nothing_is_kept() {
    for backend in backends() {
        let overrides = [("UPLOAD_QUOTA_FILES", "3")];
        let app = TestApp::with(&backend, &overrides, axum::Router::new()).await;
        let (_, alice) = app.account("alice", "user").await;
        let (_, bob) = app.account("bob", "user").await;
        let mut ids = Vec::new();
        for n in 0..3 {
            let file = stored(&app, &alice, &format!("{n}.png"), &png()).await;
            ids.push(file["id"].as_str().unwrap().to_owned());
        }
        upload(&app, &alice, "4.png", &png())
            .await
            .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded");
        // Each user has a quota of their own; a delete frees room.
        stored(&app, &bob, "b.png", &png()).await;
        let res = app
            .call("DELETE", &format!("/api/v1/files/{}", ids[0]), &alice, None)
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
        stored(&app, &alice, "5.png", &png()).await;
        assert_store_consistent(&app, 4).await;
    }
}

#[tokio::test]
async fn uploads_past_the_byte_quota_are_refused_mid_stream() {
    for backend in backends() {
        let overrides = [("UPLOAD_QUOTA_BYTES", "2500")];
        let app = TestApp::with(&backend, &overrides, axum::Router::new()).await;
        let (_, alice) = app.account("alice", "user").await;
        stored(&app, &alice, "a.png", &png_of(1000)).await;
        stored(&app, &alice, "b.png", &png_of(1000)).await;
        let body = upload(&app, &alice, "c.png", &png_of(1000))
            .await
            .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded");
        assert!(!body["detail"].as_str().unwrap().contains("2500"));
        // Exactly up to the quota is allowed; past it nothing is.
        stored(&app, &alice, "d.png", &png_of(500)).await;
        upload(&app, &alice, "e.png", &png())
            .await
            .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded");
        assert_store_consistent(&app, 3).await;
    }
}

#[tokio::test]
async fn parallel_uploads_cannot_all_pass_the_quota() {
    for backend in backends() {
        let overrides = [
            ("UPLOAD_QUOTA_FILES", "4"),
            ("UPLOAD_QUOTA_BYTES", "100000"),
        ];
        let app = TestApp::with(&backend, &overrides, axum::Router::new()).await;
        let (_, alice) = app.account("alice", "user").await;
        // Every upload passes the early check; only the insert can count.
        let names: Vec<String> = (0..12).map(|n| format!("{n}.png")).collect();
        let content = png();
        let results = join_all(names.iter().map(|n| upload(&app, &alice, n, &content))).await;
        let created = results
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .count();
        assert_eq!(created, 4, "{backend:?}");
        for r in results.iter().filter(|r| r.status != StatusCode::CREATED) {
            r.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded");
        }
        assert_store_consistent(&app, 4).await;
    }
}

#[tokio::test]
async fn uploads_stop_at_the_free_space_floor() {
    for backend in backends() {
        // A floor above any real volume's free space.
        let overrides = [("UPLOAD_MIN_FREE_BYTES", "1152921504606846976")];
        let app = TestApp::with(&backend, &overrides, axum::Router::new()).await;
        let (_, alice) = app.account("alice", "user").await;
        let body = upload(&app, &alice, "a.png", &png())
            .await
            .assert_problem(StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage");
        assert!(!body["detail"].as_str().unwrap().contains('/'), "{body}");
        assert_store_consistent(&app, 0).await;
        // `0` turns the floor off.
        let off = [("UPLOAD_MIN_FREE_BYTES", "0")];
        let app = TestApp::with(&backend, &off, axum::Router::new()).await;
        let (_, alice) = app.account("alice", "user").await;
        stored(&app, &alice, "a.png", &png()).await;
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_list_pages_by_keyset_newest_first() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, alice) = app.account("alice", "user").await;
        let (_, bob) = app.account("bob", "user").await;
        for n in 0..5 {
            stored(&app, &alice, &format!("{n}.png"), &png()).await;
        }
        stored(&app, &bob, "b.png", &png()).await;
        // Without parameters: every file, as before, and no next page.
        let all = app.call("GET", "/api/v1/files", &alice, None).await.json();
        assert_eq!(all["next_cursor"], Value::Null);
        let everything = ids(&all);
        assert_eq!(everything.len(), 5, "{backend:?}");

        let mut paged = Vec::new();
        let mut path = "/api/v1/files?limit=2".to_owned();
        loop {
            let page = app.call("GET", &path, &alice, None).await.json();
            assert!(page["files"].as_array().unwrap().len() <= 2);
            paged.extend(ids(&page));
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/files?limit=2&after={cursor}"),
                None => break,
            }
        }
        assert_eq!(paged, everything, "{backend:?}: same files, same order");
        for bad in ["limit=0", "limit=x", "after=nope"] {
            app.call("GET", &format!("/api/v1/files?{bad}"), &alice, None)
                .await
                .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
        }
    }
}

#[tokio::test]
async fn the_sweep_removes_contents_without_rows_once_past_the_grace() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, alice) = app.account("alice", "user").await;
        stored(&app, &alice, "kept.png", &png()).await;
        let orphan = uuid::Uuid::now_v7().simple().to_string();
        let partial = format!(".{}.part", uuid::Uuid::now_v7().simple());
        for name in [orphan.as_str(), partial.as_str(), "notes.txt"] {
            std::fs::write(app.upload_dir.join(name), b"left behind").unwrap();
        }
        let files = app.state.files();
        // Just written: could be an upload in flight.
        assert_eq!(files.sweep_orphans(ORPHAN_GRACE).await.unwrap(), 0);
        assert_eq!(stored_names(&app.upload_dir).len(), 4);

        app.clock.advance(ORPHAN_GRACE + Duration::from_secs(60));
        assert_eq!(
            files.sweep_orphans(ORPHAN_GRACE).await.unwrap(),
            2,
            "{backend:?}"
        );
        let mut left = stored_names(&app.upload_dir);
        left.sort();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(
            left.contains(&"notes.txt".to_owned()),
            "not ours: left alone"
        );
        assert!(!left.contains(&orphan) && !left.contains(&partial));
        let _ = std::fs::remove_file(app.upload_dir.join("notes.txt"));
        assert_store_consistent(&app, 1).await;
    }
}
