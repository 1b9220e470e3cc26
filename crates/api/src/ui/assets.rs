//! The pages' stylesheet and script, embedded in the binary and served
//! under a path that names its content's hash, so browsers may keep it for a year: a
//! new release changes the path, never the content behind a path.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// One embedded file.
#[derive(Debug)]
struct Asset {
    /// `ui.<first 16 hex digits of its SHA-256>.css` (or `.js`).
    name: String,
    path: String,
    content_type: &'static str,
    body: &'static str,
}

fn hashed(stem: &str, ext: &str, content_type: &'static str, body: &'static str) -> Asset {
    let digest = hex::encode(Sha256::digest(body.as_bytes()));
    let name = format!("{stem}.{}.{ext}", &digest[..16]);
    Asset {
        path: format!("/ui/assets/{name}"),
        name,
        content_type,
        body,
    }
}

fn all() -> &'static [Asset] {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        vec![
            hashed(
                "ui",
                "css",
                "text/css; charset=utf-8",
                include_str!("assets/ui.css"),
            ),
            hashed(
                "ui",
                "js",
                "text/javascript; charset=utf-8",
                include_str!("assets/ui.js"),
            ),
        ]
    })
}

/// The stylesheet's path, as the pages link it.
pub fn stylesheet() -> &'static str {
    all().first().map_or("", |a| a.path.as_str())
}

/// The script's path, as the pages load it.
pub fn script() -> &'static str {
    all().get(1).map_or("", |a| a.path.as_str())
}

/// `GET /ui/assets/{name}`: an embedded file by its hashed name.
pub async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = all().iter().find(|a| a.name == name) else {
        return ApiError::not_found().into_response();
    };
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            // RFC 8246: the content behind this path never changes.
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.body,
    )
        .into_response()
}
