//! `ApiJson<T>`: a JSON body extractor whose failures are RFC 9457 problems
//! that name every field at fault but never echo the submitted value. A body
//! is held to the schema its type documents (`ToSchema`) before serde reads
//! it.

mod schema;

use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::error::Category;
use utoipa::ToSchema;

use crate::error::{ApiError, FieldError};

/// A JSON request body, deserialized with field paths for errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

/// `application/json` or any `application/*+json` type.
pub fn is_json_content_type(req: &Request) -> bool {
    let Some(value) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = value.split(';').next().unwrap_or_default().trim();
    mime.eq_ignore_ascii_case("application/json")
        || (mime.len() > 5
            && mime[..mime.len() - 5]
                .to_ascii_lowercase()
                .starts_with("application/")
            && mime.to_ascii_lowercase().ends_with("+json"))
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + ToSchema + 'static,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(&req) {
            return Err(ApiError::unsupported_media_type(
                "Expected Content-Type: application/json",
            ));
        }
        parse(&read_body(req, state).await?).map(ApiJson)
    }
}

/// Reads the whole body within the configured limit.
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        // The body limit surfaces here for chunked bodies (no
        // Content-Length to refuse up front).
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large()
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "The request body could not be read",
            )
        }
    })
}

/// Deserializes `bytes`, turning any failure into a 422 naming the fields.
pub fn parse<T: DeserializeOwned + ToSchema + 'static>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body of this API is an object; serde would also accept a struct
    // written as an array, which no client means.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        None => {
            return Err(ApiError::validation(vec![FieldError::new(
                "body",
                "is not valid JSON",
            )]));
        }
        Some(_) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "body",
                "must be a JSON object",
            )]));
        }
    }
    let not_json = || ApiError::validation(vec![FieldError::new("body", "is not valid JSON")]);
    // Every structural problem at once, as documented; serde then reads the
    // same bytes (duplicate keys and number ranges are its to refuse).
    let tree: Value = serde_json::from_slice(bytes).map_err(|_| not_json())?;
    let errors = schema::of::<T>().check(&tree);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(describe)?;
    de.end().map_err(|_| not_json())?;
    Ok(value)
}

fn describe(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let inner = err.into_inner();
    let field_error = match inner.classify() {
        Category::Data => describe_data_error(&path, &inner.to_string()),
        Category::Syntax | Category::Eof | Category::Io => {
            FieldError::new("body", "is not valid JSON")
        }
    };
    ApiError::validation(vec![field_error])
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// Text between the first pair of backticks in a serde message.
fn quoted(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

/// Serde's messages quote the submitted value (`invalid type: string "x"`);
/// these sentences keep only what the schema expects.
fn describe_data_error(path: &str, msg: &str) -> FieldError {
    let msg = msg.rsplit_once(" at line ").map_or(msg, |(m, _)| m);
    let field = if path.is_empty() { "body" } else { path };
    if let Some(rest) = msg.strip_prefix("missing field ") {
        return FieldError::new(join(path, quoted(rest).unwrap_or_default()), "is required");
    }
    if let Some(rest) = msg.strip_prefix("duplicate field ") {
        return FieldError::new(
            join(path, quoted(rest).unwrap_or_default()),
            "is given more than once",
        );
    }
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        // The path already ends at the unknown key.
        let name = quoted(rest).unwrap_or_default();
        let field = if path == name || path.ends_with(&format!(".{name}")) {
            path.to_owned()
        } else {
            join(path, name)
        };
        return FieldError::new(field, "is not a recognised field");
    }
    if msg.starts_with("invalid type") {
        let expected = msg
            .rsplit_once(", expected ")
            .map_or("another type", |(_, e)| expected_kind(e));
        return FieldError::new(field, format!("must be {expected}"));
    }
    if msg.starts_with("unknown variant") {
        // The expected list comes from our schema, not from the input.
        let allowed = msg.rsplit_once(", expected ").map_or("", |(_, e)| e);
        return FieldError::new(field, format!("must be {allowed}"));
    }
    if msg.starts_with("invalid length") {
        return FieldError::new(field, "has the wrong number of items");
    }
    FieldError::new(field, "has an invalid value")
}

fn expected_kind(expected: &str) -> &'static str {
    match expected {
        "a string" | "a borrowed string" => "a string",
        "a boolean" => "a boolean",
        "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" | "usize" | "isize" => {
            "an integer"
        }
        "f32" | "f64" => "a number",
        "a sequence" => "an array",
        e if e.starts_with("struct ") || e == "a map" => "an object",
        _ => "another type",
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        count: u32,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        flag: bool,
    }

    fn field_errors(body: &str) -> Vec<FieldError> {
        let err = parse::<Outer>(body.as_bytes()).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let res = axum::response::IntoResponse::into_response(err);
        res.extensions()
            .get::<crate::error::Problem>()
            .unwrap()
            .errors
            .clone()
            .unwrap()
    }

    #[test]
    fn messages_name_fields_without_echoing_values() {
        let cases = [
            (r#"{"name":"a"}"#, "count", "is required"),
            (
                r#"{"name":"a","count":1,"extra":1}"#,
                "extra",
                "is not a recognised field",
            ),
            (
                r#"{"name":"SECRET-VALUE","count":"SECRET-VALUE"}"#,
                "count",
                "must be an integer",
            ),
            (
                r#"{"name":"a","count":1,"inner":{"flag":"SECRET-VALUE"}}"#,
                "inner.flag",
                "must be a boolean",
            ),
            (
                r#"{"name":"a","count":1,"inner":{}}"#,
                "inner.flag",
                "is required",
            ),
            (
                r#"{"name":"a","count":-5}"#,
                "count",
                "has an invalid value",
            ),
            (r#"{"name": "#, "body", "is not valid JSON"),
            (
                r#"{"name":"a","count":1} trailing"#,
                "body",
                "is not valid JSON",
            ),
            (
                r#"{"name":"a","count":1,"count":2}"#,
                "count",
                "is given more than once",
            ),
            (r#"[]"#, "body", "must be a JSON object"),
            (r#"["a", 1, null]"#, "body", "must be a JSON object"),
            ("", "body", "is not valid JSON"),
        ];
        for (body, field, message) in cases {
            let errors = field_errors(body);
            assert_eq!(errors, vec![FieldError::new(field, message)], "{body}");
            assert!(!format!("{errors:?}").contains("SECRET-VALUE"));
            assert!(!format!("{errors:?}").contains("Outer"));
        }
    }
}
