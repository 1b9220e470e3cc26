//! Pages as responses: HTML that no cache keeps, `303 See Other` after a
//! form, the sentence a refused form shows, and the layer every `/ui`
//! response passes (the pages' CSP, and an error page in words for any
//! error a layer or an extractor answered with).

use std::borrow::Cow;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION,
    SET_COOKIE,
};
use http::{HeaderValue, StatusCode};
use serde::Serialize;

use super::templates;
use crate::error::{ApiError, Problem};
use crate::middleware::RequestContext;
use crate::middleware::problem::PageBody;
use crate::state::AppState;

/// The name the pages show (the mails' product name).
pub fn product(state: &AppState) -> &str {
    &state.config().mail.product_name
}

/// A rendered page and the cookies it sets.
#[derive(Debug)]
pub struct Page {
    status: StatusCode,
    html: String,
    cookies: Vec<HeaderValue>,
}

impl Page {
    pub fn new(status: StatusCode, html: String) -> Self {
        Self {
            status,
            html,
            cookies: Vec::new(),
        }
    }

    /// Adds a `Set-Cookie`, if there is one.
    pub fn cookie(mut self, cookie: Option<HeaderValue>) -> Self {
        self.cookies.extend(cookie);
        self
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut res = (self.status, self.html).into_response();
        html_headers(&mut res);
        for cookie in self.cookies {
            res.headers_mut().append(SET_COOKIE, cookie);
        }
        res
    }
}

/// HTML that holds personal data or form tokens: never stored by a cache
/// (RFC 9111 §5.2.2.5); an error page keeps its body at the edge.
fn html_headers(res: &mut Response) {
    let h = res.headers_mut();
    // The body may have been replaced: its length is the server's to set.
    h.remove(CONTENT_LENGTH);
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if res.status().is_client_error() || res.status().is_server_error() {
        res.extensions_mut().insert(PageBody);
    }
}

/// `303 See Other` to `location` (a path of ours or a checked `return_to`).
pub fn see_other(location: &str) -> Redirect {
    Redirect {
        location: location.to_owned(),
        cookies: Vec::new(),
    }
}

#[derive(Debug)]
pub struct Redirect {
    location: String,
    cookies: Vec<HeaderValue>,
}

impl Redirect {
    pub fn cookie(mut self, cookie: Option<HeaderValue>) -> Self {
        self.cookies.extend(cookie);
        self
    }
}

impl IntoResponse for Redirect {
    fn into_response(self) -> Response {
        let Ok(location) = HeaderValue::from_str(&self.location) else {
            return ApiError::internal("redirect target is not a header value").into_response();
        };
        let mut res = StatusCode::SEE_OTHER.into_response();
        let h = res.headers_mut();
        h.insert(LOCATION, location);
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for cookie in self.cookies {
            h.append(SET_COOKIE, cookie);
        }
        res
    }
}

/// One failing field, named as the form labels it.
#[derive(Debug, Serialize)]
pub struct ShownField {
    label: Cow<'static, str>,
    message: String,
}

/// What a form shows when a use case refused it: the problem's sentence,
/// and the failing fields where the API would list them too.
#[derive(Debug, Serialize)]
pub struct Shown {
    detail: Cow<'static, str>,
    fields: Vec<ShownField>,
}

/// A refused form: its status, its sentence, and the response parts the
/// error carried (`Retry-After`, the hidden cause of a 5xx for the log).
#[derive(Debug)]
pub struct Refusal {
    pub shown: Shown,
    parts: http::response::Parts,
}

impl Refusal {
    pub fn new(err: impl Into<ApiError>, show_fields: bool) -> Self {
        let (mut parts, _) = err.into().into_response().into_parts();
        let problem = parts
            .extensions
            .remove::<Problem>()
            .unwrap_or_else(|| Problem::for_status(parts.status));
        let fields = problem
            .errors
            .unwrap_or_default()
            .into_iter()
            .filter(|_| show_fields)
            .map(|f| ShownField {
                label: label(&f.field),
                message: f.message,
            })
            .collect();
        Self {
            shown: Shown {
                detail: problem.detail,
                fields,
            },
            parts,
        }
    }

    /// A refusal the page itself makes (a required field left empty).
    pub fn status(status: StatusCode, detail: &'static str) -> Self {
        let (parts, _) = status.into_response().into_parts();
        Self {
            shown: Shown {
                detail: Cow::Borrowed(detail),
                fields: Vec::new(),
            },
            parts,
        }
    }

    /// The form again, with `html` as its body.
    pub fn page(self, html: String) -> Response {
        let mut res = Response::from_parts(self.parts, Body::from(html));
        html_headers(&mut res);
        res
    }
}

/// How the forms label a field the use cases name.
fn label(field: &str) -> Cow<'static, str> {
    Cow::Borrowed(match field {
        "username" => "Username",
        "email" => "Email",
        "password" => "Password",
        "full_name" => "Full name",
        "code" => "Code",
        other => return Cow::Owned(other.replace('_', " ")),
    })
}

/// The layer around every `/ui` route: sets the pages' policy, and turns an
/// error that is not already a page (a rate limit, a malformed form or path,
/// a refused CSRF check, a failed use case) into one that says it in words.
pub async fn finish(req: Request, next: Next, policy: HeaderValue) -> Response {
    let request_id = req
        .extensions()
        .get::<RequestContext>()
        .map(|c| c.request_id.to_string());
    let product = req
        .extensions()
        .get::<AppState>()
        .map_or_else(|| "Gatehouse".to_owned(), |s| product(s).to_owned());
    // The pages' script asks for JSON: its errors stay problem documents,
    // whose `detail` it shows.
    let wants_json = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let mut res = next.run(req).await;
    let status = res.status();
    let is_error = status.is_client_error() || status.is_server_error();
    if is_error && !wants_json && res.extensions().get::<PageBody>().is_none() {
        let problem = res
            .extensions_mut()
            .remove::<Problem>()
            .unwrap_or_else(|| Problem::for_status(status));
        // Only a server error needs the reference the log is searched by.
        let reference = request_id.filter(|_| status.is_server_error());
        let html = templates::error(&product, status, &problem.detail, reference.as_deref());
        let (parts, _) = res.into_parts();
        res = Response::from_parts(parts, Body::from(html));
        html_headers(&mut res);
    }
    res.headers_mut().insert(CONTENT_SECURITY_POLICY, policy);
    res
}
