//! The OpenAPI document (`/openapi.json`) and the interactive page (`/docs`).
//! Swagger UI's files are compiled into the binary, so the page loads
//! nothing from elsewhere; mounted only when `DOCS_ENABLED`.

use axum::Extension;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use http::{HeaderName, HeaderValue};

use crate::error::ApiError;
use crate::responses::NotFound;

/// The OpenAPI document as served, handed to the docs routes when they are
/// mounted (it is built from the route table, which lists these handlers).
#[derive(Debug, Clone, Copy)]
pub struct Document(pub &'static str);

/// The docs pages run scripts and styles from this server only: no inline
/// script, no other origin. `data:` images are Swagger UI's CSS icons. The
/// security-headers middleware keeps a policy set here.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Files served under `/docs/`: (name, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "swagger-ui-bundle.js",
        JAVASCRIPT,
        include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
    ),
    (
        "swagger-ui.css",
        CSS,
        include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
    ),
    (
        "init.js",
        JAVASCRIPT,
        include_bytes!("../../assets/docs/init.js"),
    ),
    // Apache-2.0 §4: the licence and notices travel with the files.
    (
        "LICENSE",
        TEXT,
        include_bytes!("../../assets/swagger-ui/LICENSE"),
    ),
    (
        "NOTICE",
        TEXT,
        include_bytes!("../../assets/swagger-ui/NOTICE"),
    ),
    (
        "swagger-ui-bundle.js.LICENSE.txt",
        TEXT,
        include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js.LICENSE.txt"),
    ),
];

const PAGE: &[u8] = include_bytes!("../../assets/docs/index.html");

fn docs_response(content_type: &'static str, cache: &'static str, body: &'static [u8]) -> Response {
    let headers: [(HeaderName, HeaderValue); 3] = [
        (CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (CACHE_CONTROL, HeaderValue::from_static(cache)),
        (CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCS_CSP)),
    ];
    (headers, body).into_response()
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)),
)]
pub async fn openapi(Extension(Document(doc)): Extension<Document>) -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        doc,
    )
        .into_response()
}

/// The interactive API page.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    responses((status = 200, description = "The interactive page", content_type = "text/html", body = String)),
)]
pub async fn page() -> Response {
    docs_response(HTML, "no-cache", PAGE)
}

/// A script, stylesheet or licence of the interactive page.
#[utoipa::path(
    get,
    path = "/docs/{asset}",
    tag = "operations",
    params(("asset" = String, Path, description = "`swagger-ui-bundle.js`, `swagger-ui.css`, `init.js`, or a licence file")),
    responses(
        (status = 200, description = "The file", content(
            (String = "text/javascript"),
            (String = "text/css"),
            (String = "text/plain"),
        )),
        (status = 404, response = NotFound),
    ),
)]
pub async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(file, ..)| *file == name)
        .ok_or_else(ApiError::not_found)?;
    // Files change only with the binary; an hour keeps reloads cheap.
    Ok(docs_response(content_type, "public, max-age=3600", body))
}
