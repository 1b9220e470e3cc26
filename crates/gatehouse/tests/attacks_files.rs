//! Filling the disk through uploads, against real running servers (one on
//! SQLite; two on PostgreSQL + Redis when configured): parallel uploads
//! cannot pass the per-user quota together, the free-space floor holds, and
//! contents a crash left without a row are swept at startup.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly"
)]

mod support;

use std::time::{Duration, UNIX_EPOCH};

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::Value;
use support::deployment::{Deployment, backends};

/// Uploads come fast from one address in these tests.
const NO_IP_LIMITS: (&str, &str) = ("RATE_LIMIT_ENABLED", "false");

/// A minimal PNG padded to `len` bytes.
fn png(len: usize) -> Vec<u8> {
    let mut b =
        b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90\x77\x53\xde"
            .to_vec();
    b.resize(len, 0);
    b
}

const BOUNDARY: &str = "attack-boundary-5bT1xQ";

/// Uploads `content` as `name` through instance `n`: status and body.
async fn upload(
    d: &Deployment,
    n: usize,
    token: &str,
    name: &str,
    content: Vec<u8>,
) -> (u16, Value) {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let res = d
        .http
        .post(d.url(n, "/api/v1/files"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Names in the shared upload directory.
fn stored(d: &Deployment) -> Vec<String> {
    match std::fs::read_dir(d.data_dir().join("uploads")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Fires `count` uploads of `size` bytes at once, over every instance;
/// how many were stored, after checking every refusal is the quota's.
async fn race(d: &Deployment, token: &str, count: usize, size: usize) -> usize {
    let uploads = (0..count).map(|i| upload(d, i, token, "race.png", png(size)));
    let results = join_all(uploads).await;
    for (status, body) in results.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 413, "{body}");
        assert_eq!(body["code"], "quota_exceeded", "{body}");
    }
    results.iter().filter(|(s, _)| *s == 201).count()
}

#[tokio::test]
async fn parallel_uploads_cannot_pass_the_quota_together() {
    for backend in backends() {
        let extra = [
            NO_IP_LIMITS,
            ("UPLOAD_QUOTA_FILES", "3"),
            ("UPLOAD_QUOTA_BYTES", "5000"),
        ];
        let d = Deployment::start(backend, &extra).await;
        d.register("racer").await;
        let racer = d.token("racer").await;
        assert_eq!(race(&d, &racer, 16, 200).await, 3, "{backend:?}: files");
        d.register("hoarder").await;
        let hoarder = d.token("hoarder").await;
        assert_eq!(race(&d, &hoarder, 16, 2000).await, 2, "{backend:?}: bytes");

        let (status, list) = d.call(0, Method::GET, "/api/v1/files", &racer, None).await;
        assert_eq!(status, 200);
        assert_eq!(list["files"].as_array().unwrap().len(), 3);
        // Nothing of the refused uploads stayed on disk.
        assert_eq!(stored(&d).len(), 5, "{:?}", stored(&d));
        d.stop().await;
    }
}

#[tokio::test]
async fn uploads_stop_at_the_free_space_floor() {
    let extra = [
        NO_IP_LIMITS,
        ("UPLOAD_MIN_FREE_BYTES", "1152921504606846976"),
    ];
    let d = Deployment::start(backends()[0], &extra).await;
    d.register("filler").await;
    let token = d.token("filler").await;
    let (status, body) = upload(&d, 0, &token, "a.png", png(200)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (507, Some("insufficient_storage"))
    );
    assert!(stored(&d).is_empty(), "{:?}", stored(&d));
    d.stop().await;
}

#[tokio::test]
async fn contents_left_without_a_row_are_swept_at_startup() {
    for backend in backends() {
        let mut d = Deployment::start(backend, &[NO_IP_LIMITS]).await;
        d.register("keeper").await;
        let token = d.token("keeper").await;
        let (status, kept) = upload(&d, 0, &token, "kept.png", png(300)).await;
        assert_eq!(status, 201);
        // What a crash between storing a content and writing its row, or in
        // the middle of an upload, leaves; old, and one just written.
        let dir = d.data_dir().join("uploads");
        let key = || uuid::Uuid::now_v7().simple().to_string();
        let (orphan, partial, fresh) = (key(), format!(".{}.part", key()), key());
        let long_ago = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        for name in [&orphan, &partial] {
            let f = std::fs::File::create(dir.join(name)).unwrap();
            f.set_modified(long_ago).unwrap();
        }
        std::fs::write(dir.join(&fresh), b"an upload in flight").unwrap();
        // Also stored files older than the grace period are kept.
        for name in stored(&d) {
            if name != fresh && name != orphan && name != partial {
                std::fs::File::options()
                    .write(true)
                    .open(dir.join(&name))
                    .unwrap()
                    .set_modified(long_ago)
                    .unwrap();
            }
        }

        d.restart(&[NO_IP_LIMITS]);
        let left = stored(&d);
        assert!(!left.contains(&orphan), "{backend:?}: {left:?}");
        assert!(!left.contains(&partial), "{left:?}");
        assert!(left.contains(&fresh), "in flight, kept: {left:?}");
        assert_eq!(left.len(), 2, "{left:?}");
        let path = format!("/api/v1/files/{}", kept["id"].as_str().unwrap());
        let res = d
            .http
            .get(d.url(0, &path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.bytes().await.unwrap().len(), 300);
        d.stop().await;
    }
}
