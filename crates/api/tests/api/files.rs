//! `/api/v1/files`: uploads checked by extension and content, size limits
//! with and without `Content-Length`, names that try to escape — on every
//! backend. Who may touch a file is in [`access`]; quotas, the free-space
//! floor, the paginated list and the sweep in [`limits`]; streaming over a
//! real connection in [`streaming`].

use std::path::Path;

use axum::body::Body;
use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, TestResponse, backends};

mod access;
mod limits;
mod streaming;

const BOUNDARY: &str = "gatehouse-test-boundary-7MA4YWxkTrZu0gW";

/// A minimal PNG: signature, a 1×1 IHDR, an empty IDAT and IEND.
fn png() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend_from_slice(b"\0\0\0\x0dIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90\x77\x53\xde");
    b.extend_from_slice(
        b"\0\0\0\x0cIDAT\x08\xd7\x63\xf8\xcf\xc0\0\0\x03\x01\x01\0\x18\xdd\x8d\xb0",
    );
    b.extend_from_slice(b"\0\0\0\0IEND\xae\x42\x60\x82");
    b
}

/// A minimal JFIF header and end-of-image marker.
fn jpeg() -> Vec<u8> {
    let mut b = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0".to_vec();
    b.extend_from_slice(&[0x42; 64]);
    b.extend_from_slice(b"\xff\xd9");
    b
}

fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
        .to_vec()
}

fn elf() -> Vec<u8> {
    let mut b = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0\x01\0\0\0".to_vec();
    b.resize(128, 0);
    b
}

fn mz() -> Vec<u8> {
    let mut b = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0".to_vec();
    b.resize(128, 0);
    b
}

/// A PNG padded to exactly `len` bytes.
fn png_of(len: usize) -> Vec<u8> {
    let mut b = png();
    b.resize(len, 0);
    b
}

/// One `file` part. The declared part type is always `image/png`: the
/// server must ignore it and judge the content.
fn form(filename: &str, content: &[u8]) -> Vec<u8> {
    form_part("file", Some(filename), content)
}

fn form_part(name: &str, filename: Option<&str>, content: &[u8]) -> Vec<u8> {
    let disposition = match filename {
        Some(f) => format!("form-data; name=\"{name}\"; filename=\"{f}\""),
        None => format!("form-data; name=\"{name}\""),
    };
    let mut b = format!(
        "--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    b.extend_from_slice(content);
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    b
}

fn upload_request(token: &str) -> http::request::Builder {
    Request::post("/api/v1/files")
        .header("authorization", format!("Bearer {token}"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
}

/// Sends `body` with its `Content-Length`.
async fn send_form(app: &TestApp, token: &str, body: Vec<u8>) -> TestResponse {
    let req = upload_request(token)
        .header("content-length", body.len())
        .body(Body::from(body))
        .unwrap();
    app.send(req).await
}

/// Sends `body` in chunks with no `Content-Length` (chunked encoding).
async fn send_chunked(app: &TestApp, token: &str, body: Vec<u8>) -> TestResponse {
    let chunks: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(700)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let req = upload_request(token)
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    app.send(req).await
}

async fn upload(app: &TestApp, token: &str, filename: &str, content: &[u8]) -> TestResponse {
    send_form(app, token, form(filename, content)).await
}

/// Uploads and expects 201; returns the file object.
async fn stored(app: &TestApp, token: &str, filename: &str, content: &[u8]) -> Value {
    let res = upload(app, token, filename, content).await;
    assert_eq!(
        res.status,
        StatusCode::CREATED,
        "{filename}: {}",
        String::from_utf8_lossy(&res.body)
    );
    res.json()
}

/// Names in the upload directory (none when it was never created).
fn stored_names(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{e}"),
    }
}

fn is_random_name(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Every stored content has a random name, one per row, nothing else.
async fn assert_store_consistent(app: &TestApp, rows: i64) {
    let names = stored_names(&app.upload_dir);
    assert!(
        names.iter().all(|n| is_random_name(n)),
        "only random names: {names:?}"
    );
    assert_eq!(names.len() as i64, rows, "{names:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM files").await, rows);
}

#[tokio::test]
async fn upload_list_download_and_delete() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("alice", "user").await;
        let samples = [
            ("photo.png", png(), "image/png"),
            ("photo.jpg", jpeg(), "image/jpeg"),
            ("scan.JPEG", jpeg(), "image/jpeg"),
            ("report.pdf", pdf(), "application/pdf"),
        ];
        let mut ids = Vec::new();
        for (name, content, content_type) in &samples {
            let file = stored(&app, &token, name, content).await;
            assert_eq!(file["filename"], name.replace("JPEG", "jpeg"));
            assert_eq!(file["content_type"], *content_type);
            assert_eq!(file["size"], content.len());
            assert!(file["created_at"].as_str().unwrap().ends_with('Z'));
            let keys: Vec<&str> = file
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                ["content_type", "created_at", "filename", "id", "size"],
                "nothing internal (storage name, owner) is shown"
            );
            ids.push(file["id"].as_str().unwrap().to_owned());
        }
        assert_store_consistent(&app, 4).await;

        // Newest first.
        let list = app.call("GET", "/api/v1/files", &token, None).await;
        assert_eq!(list.status, StatusCode::OK);
        let listed: Vec<String> = list.json()["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_owned())
            .collect();
        let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
        assert_eq!(listed, newest_first);

        // Round trip: same bytes, stored type, attachment, nosniff.
        for ((name, content, content_type), id) in samples.iter().zip(&ids) {
            let res = app
                .call("GET", &format!("/api/v1/files/{id}"), &token, None)
                .await;
            assert_eq!(res.status, StatusCode::OK, "{backend:?} {name}");
            assert_eq!(res.body.as_ref(), content.as_slice());
            assert_eq!(res.header("content-type"), Some(*content_type));
            assert_eq!(
                res.header("content-length"),
                Some(content.len().to_string().as_str())
            );
            assert_eq!(
                res.header("content-disposition").unwrap(),
                format!("attachment; filename=\"{}\"", name.replace("JPEG", "jpeg"))
            );
            assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
            assert_eq!(res.header("cache-control"), Some("no-store"));
        }

        let path = format!("/api/v1/files/{}", ids[0]);
        let res = app.call("DELETE", &path, &token, None).await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
        assert!(res.body.is_empty());
        app.call("GET", &path, &token, None)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not_found");
        app.call("DELETE", &path, &token, None)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not_found");
        let list = app.call("GET", "/api/v1/files/", &token, None).await;
        assert_eq!(list.json()["files"].as_array().unwrap().len(), 3);
        assert_store_consistent(&app, 3).await;

        let events = |e: &str| format!("SELECT COUNT(*) FROM audit_log WHERE event = '{e}'");
        assert_eq!(app.count(&events("file_uploaded")).await, 4);
        assert_eq!(app.count(&events("file_deleted")).await, 1);
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_upload_directory_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;

    let backend = &backends()[0];
    let app = TestApp::new(backend).await;
    let (_, token) = app.account("alice", "user").await;
    assert!(!app.upload_dir.exists(), "created on first use");
    stored(&app, &token, "a.png", &png()).await;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&app.upload_dir), 0o700);
    for name in stored_names(&app.upload_dir) {
        assert_eq!(mode(&app.upload_dir.join(name)), 0o600);
    }
}

#[tokio::test]
async fn types_are_judged_by_extension_and_content() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("alice", "user").await;
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
        let refused: [(&str, Vec<u8>); 11] = [
            ("document.png", pdf()),
            ("program.jpg", elf()),
            ("program.jpeg", mz()),
            ("setup.pdf", mz()),
            ("photo.png", jpeg()),
            ("notes.txt", b"just text".to_vec()),
            ("image.svg", svg.to_vec()),
            ("image.png", svg.to_vec()),
            ("empty.png", Vec::new()),
            ("noextension", png()),
            ("page.html", b"<html></html>".to_vec()),
        ];
        for (name, content) in &refused {
            let res = upload(&app, &token, name, content).await;
            let body =
                res.assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
            assert!(!body["detail"].as_str().unwrap().contains(name), "{body}");
        }
        // Content judged on more than the first chunk: a PNG sent in small
        // pieces still passes, a disguised PDF still fails.
        let big_png = png_of(5000);
        let res = send_chunked(&app, &token, form("big.png", &big_png)).await;
        assert_eq!(res.status, StatusCode::CREATED);
        let mut disguised = pdf();
        disguised.resize(5000, b' ');
        send_chunked(&app, &token, form("big.png", &disguised))
            .await
            .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        // A part without a file name says nothing of its type.
        send_form(&app, &token, form_part("file", None, &png()))
            .await
            .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        // Not multipart at all.
        app.call("POST", "/api/v1/files", &token, Some(json!({"file": "x"})))
            .await
            .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        assert_store_consistent(&app, 1).await;
    }
}

#[tokio::test]
async fn malformed_forms_are_validation_errors_and_store_nothing() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("alice", "user").await;
        // Another part than `file`.
        let res = send_form(&app, &token, form_part("document", Some("a.png"), &png())).await;
        let body = res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
        assert_eq!(body["errors"][0]["field"], "file");
        // No part at all.
        send_form(&app, &token, format!("--{BOUNDARY}--\r\n").into_bytes())
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
        // Cut off before the closing boundary.
        let mut cut = form("a.png", &png_of(3000));
        cut.truncate(2000);
        send_form(&app, &token, cut)
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
        // The body fails mid-way (the client went away): nothing is kept.
        let mut first = form("a.png", &png_of(3000));
        first.truncate(1500);
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from(first)),
            Err(std::io::Error::other("connection reset")),
        ];
        let res = app
            .send(
                upload_request(&token)
                    .body(Body::from_stream(futures_util::stream::iter(chunks)))
                    .unwrap(),
            )
            .await;
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
        assert_store_consistent(&app, 0).await;
    }
}

#[tokio::test]
async fn a_failed_row_write_leaves_no_content_behind() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("alice", "user").await;
        stored(&app, &token, "kept.png", &png()).await;
        // The content is complete and renamed when the row fails to insert.
        app.exec("ALTER TABLE files RENAME TO files_gone").await;
        upload(&app, &token, "lost.png", &png())
            .await
            .assert_problem(StatusCode::INTERNAL_SERVER_ERROR, "internal_error");
        app.exec("ALTER TABLE files_gone RENAME TO files").await;
        assert_store_consistent(&app, 1).await;
    }
}

#[tokio::test]
async fn uploads_past_the_limit_are_refused_with_413() {
    for backend in backends() {
        // The JSON limit is smaller than the files: it must not apply.
        let overrides = [("MAX_UPLOAD_BYTES", "2048"), ("MAX_BODY_BYTES", "1024")];
        let app = TestApp::with(&backend, &overrides, axum::Router::new()).await;
        let (_, token) = app.account("alice", "user").await;

        stored(&app, &token, "exact.png", &png_of(2048)).await;
        let res = send_chunked(&app, &token, form("chunked.png", &png_of(2048))).await;
        assert_eq!(res.status, StatusCode::CREATED);

        // One byte over, with Content-Length and without.
        upload(&app, &token, "over.png", &png_of(2049))
            .await
            .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
        send_chunked(&app, &token, form("over.png", &png_of(5000)))
            .await
            .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
        // Far over: refused from Content-Length before the body is read, or
        // by the body limit while a chunked body streams in.
        let huge = form("huge.png", &png_of(200 * 1024));
        send_form(&app, &token, huge.clone())
            .await
            .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
        send_chunked(&app, &token, huge)
            .await
            .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
        // A lying Content-Length does not help: bytes are counted.
        let req = upload_request(&token)
            .header("content-length", "100")
            .body(Body::from(form("liar.png", &png_of(4000))))
            .unwrap();
        app.send(req)
            .await
            .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

        assert_store_consistent(&app, 2).await;
        // JSON routes keep their own limit.
        let big_json = json!({"full_name": "x".repeat(2000)});
        app.call("PUT", "/api/v1/users/me", &token, Some(big_json))
            .await
            .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }
}

#[tokio::test]
async fn names_are_sanitised_and_never_become_paths() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let (_, token) = app.account("alice", "user").await;
        let cases = [
            ("../../etc/passwd.png", "passwd.png"),
            ("..\\\\..\\\\x.pdf", "x.pdf"),
            ("..\\x.pdf", "x.pdf"),
            ("/abs/evil.jpg", "evil.jpg"),
            ("..", ""),
            ("../.png", "file.png"),
            ("  .hidden.png ", "hidden.png"),
            ("tab\there.png", "tabhere.png"),
            ("quo\\\"te.png", "quote.png"),
            ("rev\u{202e}gnp.pdf", "revgnp.pdf"),
            ("con:aux|<>?*.png", "conaux.png"),
        ];
        let mut kept = 0;
        for (raw, expected) in cases {
            let content = if expected.ends_with(".pdf") {
                pdf()
            } else if expected.ends_with(".jpg") {
                jpeg()
            } else {
                png()
            };
            let res = upload(&app, &token, raw, &content).await;
            if expected.is_empty() {
                res.assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
                continue;
            }
            assert_eq!(res.status, StatusCode::CREATED, "{raw:?}");
            kept += 1;
            let file = res.json();
            assert_eq!(file["filename"], expected, "{raw:?}");
            let download = app
                .call(
                    "GET",
                    &format!("/api/v1/files/{}", file["id"].as_str().unwrap()),
                    &token,
                    None,
                )
                .await;
            assert_eq!(
                download.header("content-disposition").unwrap(),
                format!("attachment; filename=\"{expected}\"")
            );
        }
        // NUL and CR/LF cannot even travel in a part header (RFC 9110
        // §5.5): the form is malformed, and nothing is stored.
        for raw in ["nul\0byte.png", "new\r\nline.png", "new\nline.png"] {
            upload(&app, &token, raw, &png())
                .await
                .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
        }
        assert_store_consistent(&app, kept).await;
        // Nothing was written beside the upload directory.
        let root = app.upload_dir.parent().unwrap();
        assert_eq!(stored_names(root), ["uploads"]);
        let list = app.call("GET", "/api/v1/files", &token, None).await.json();
        for f in list["files"].as_array().unwrap() {
            let name = f["filename"].as_str().unwrap();
            assert!(!name.contains(['/', '\\', '\0', '\n', '"']), "{name:?}");
            assert!(!name.starts_with('.'), "{name:?}");
        }
    }
}
