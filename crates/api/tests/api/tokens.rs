//! Access-token header rules as seen through the API.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::Value;

use crate::harness::{Backend, PASSWORD, TEST_JWT_SECRET, TestApp};

/// `token` re-signed with the test secret after `edit` changed its header.
fn with_header(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut parts = token.split('.');
    let (header, payload) = (parts.next().unwrap(), parts.next().unwrap());
    let mut header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    edit(&mut header);
    let message = format!(
        "{}.{payload}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap())
    );
    let key = EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes());
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap();
    format!("{message}.{signature}")
}

#[tokio::test]
async fn a_token_whose_header_carries_crit_is_401() {
    let app = TestApp::new(&Backend::Sqlite).await;
    app.register("cora").await;
    let (access, _) = app.login("cora@example.com", PASSWORD).await;
    // Re-signing with an unchanged header keeps the token valid, so the
    // refusal below is about `crit` alone.
    let resigned = with_header(&access, |_| {});
    let res = app.get_with_token("/api/v1/users/me", &resigned).await;
    assert_eq!(res.status, StatusCode::OK);

    let critical = with_header(&access, |h| h["crit"] = serde_json::json!(["exp"]));
    let res = app.get_with_token("/api/v1/users/me", &critical).await;
    res.assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    assert!(
        res.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
}
