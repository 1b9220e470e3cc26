//! Uploads and downloads past every in-memory limit, over a real connection.

use http::StatusCode;
use serde_json::Value;

use super::{BOUNDARY, form, pdf};
use crate::harness::TestApp;

#[tokio::test]
async fn large_files_stream_over_a_real_connection() {
    let app = TestApp::new(&crate::harness::Backend::Sqlite).await;
    let (_, token) = app.account("alice", "user").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gatehouse_api::serve(listener, app.router.clone(), async {
        let _ = stop_rx.await;
    }));

    // Past both the JSON limit (1 MiB) and axum's multipart default (2 MB).
    let mut content = pdf();
    content.extend((0..3 * 1024 * 1024).map(|i: u32| (i % 251) as u8));
    let client = reqwest::Client::new();
    let res = client
        .post(format!("http://{addr}/api/v1/files"))
        .bearer_auth(&token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(form("big.pdf", &content))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let file: Value = res.json().await.unwrap();
    assert_eq!(file["size"], content.len());

    let res = client
        .get(format!(
            "http://{addr}/api/v1/files/{}",
            file["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert!(res.bytes().await.unwrap() == content);

    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
