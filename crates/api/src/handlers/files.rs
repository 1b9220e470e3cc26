//! `/api/v1/files`: the caller's files — upload (multipart, streamed to
//! disk), list, download (streamed back) and delete.

use axum::Json;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Multipart, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use gatehouse_core::CoreError;
use gatehouse_core::file::FileInfo;
use gatehouse_core::user::FieldProblem;
use http::HeaderValue;
use http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::extract::{Meta, PathId, Require, perm};
use crate::responses::{
    Forbidden, InsufficientStorage, NotFound, UnsupportedFileType, UploadTooLarge, ValidationFailed,
};
use crate::state::AppState;
use crate::streams;

/// The multipart part that carries the file.
const FILE_FIELD: &str = "file";

/// A stored file.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = File)]
pub struct FileView {
    id: Uuid,
    /// The client's name, sanitised (no directories, no control characters).
    #[schema(example = "report.pdf")]
    filename: String,
    /// Decided from the content, not from the client's declaration.
    #[schema(example = "application/pdf")]
    content_type: String,
    /// Bytes.
    size: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: time::OffsetDateTime,
}

impl From<FileInfo> for FileView {
    fn from(f: FileInfo) -> Self {
        Self {
            id: f.id,
            filename: f.filename,
            content_type: f.content_type,
            size: f.size,
            created_at: f.created_at,
        }
    }
}

/// The caller's files, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileList {
    files: Vec<FileView>,
    /// Pass as `after` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<Uuid>,
}

#[derive(Debug, Default, Deserialize)]
struct RawList {
    limit: Option<String>,
    after: Option<String>,
}

/// Page size with `?limit=` (default) and its cap, as for the user list.
const DEFAULT_LIMIT: u64 = 20;
const MAX_LIMIT: u64 = 100;
/// Without `limit` or `after`: one page as large as the default file quota,
/// so clients that never paginated still get every file.
const UNPAGED_LIMIT: u64 = 1000;

/// `(after, limit)` from `?limit=&after=`; bad values are 422s naming them.
fn page_request(query: Option<&str>) -> Result<(Option<Uuid>, u64), ApiError> {
    let raw: RawList = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|_| ApiError::validation(vec![FieldError::new("query", "is malformed")]))?;
    let mut errors = Vec::new();
    let after = match raw.after.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Uuid::parse_str(a)
            .map_err(|_| {
                errors.push(FieldError::new(
                    "after",
                    "must be a cursor from next_cursor",
                ))
            })
            .ok(),
    };
    let limit = match raw.limit.as_deref().map(str::parse::<u64>) {
        None if raw.after.is_none() => UNPAGED_LIMIT,
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if n >= 1 => n.min(MAX_LIMIT),
        Some(_) => {
            errors.push(FieldError::new(
                "limit",
                "must be a whole number of at least 1",
            ));
            DEFAULT_LIMIT
        }
    };
    if errors.is_empty() {
        Ok((after, limit))
    } else {
        Err(ApiError::validation(errors))
    }
}

/// `multipart/form-data` with one part.
#[derive(Debug, ToSchema)]
#[allow(dead_code, reason = "schema only: the handler reads the parts")]
pub struct UploadForm {
    /// A `.jpg`, `.jpeg`, `.png` or `.pdf` file whose content is of that
    /// type, at most `MAX_UPLOAD_BYTES`.
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
}

/// A file's content.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code, reason = "schema only: the body is streamed")]
pub struct FileContent(Vec<u8>);

/// A malformed or cut-off multipart body is the client's to fix (422); one
/// past the body limit is 413, like any upload too large.
fn multipart_error(err: &MultipartError) -> CoreError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        CoreError::FileTooLarge
    } else {
        CoreError::Validation(vec![FieldProblem::new(
            FILE_FIELD,
            "is not a well-formed multipart/form-data body",
        )])
    }
}

/// Uploads a file (content:write). Its extension and its magic bytes must
/// agree on an accepted type; the declared part `Content-Type` is ignored.
#[utoipa::path(
    post,
    path = "/api/v1/files",
    operation_id = "upload_file",
    tag = "files",
    request_body(content = inline(UploadForm), content_type = "multipart/form-data"),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 201, description = "Stored", body = FileView),
        (status = 403, response = Forbidden),
        (status = 413, response = UploadTooLarge),
        (status = 415, response = UnsupportedFileType),
        (status = 422, response = ValidationFailed),
        (status = 507, response = InsufficientStorage),
    ),
)]
pub async fn upload(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::ContentWrite>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<FileView>), ApiError> {
    let mut multipart = multipart
        .map_err(|_| ApiError::unsupported_media_type("The body must be multipart/form-data"))?;
    let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::from(multipart_error(&e)))?
    else {
        return Err(ApiError::validation(vec![FieldError::new(
            FILE_FIELD,
            "is required",
        )]));
    };
    // One part, named `file`: anything else is refused, as unknown JSON
    // fields are, and nothing is stored.
    if field.name() != Some(FILE_FIELD) {
        return Err(ApiError::validation(vec![FieldError::new(
            FILE_FIELD,
            "must be the only part of the form",
        )]));
    }
    let client_name = field.file_name().map(str::to_owned);
    let body = field
        .map(|chunk| chunk.map_err(|e| multipart_error(&e)))
        .boxed();
    let stored = state
        .files()
        .upload(&p, client_name.as_deref(), body, &meta)
        .await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

/// The caller's files, newest first (content:read), by keyset: `?limit=N`
/// for the first page, then `?after=<next_cursor>&limit=N`. Without either,
/// the first 1000 (every file, under the default quota).
#[utoipa::path(
    get,
    path = "/api/v1/files",
    operation_id = "list_files",
    tag = "files",
    params(
        ("limit" = Option<u64>, Query, minimum = 1, description = "Page size (default 20, capped at 100; 1000 when neither `limit` nor `after` is given)"),
        ("after" = Option<Uuid>, Query, description = "The previous page's `next_cursor`"),
    ),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The caller's files, newest first", body = FileList),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Require(p, ..): Require<perm::ContentRead>,
    RawQuery(query): RawQuery,
) -> Result<Json<FileList>, ApiError> {
    let (after, limit) = page_request(query.as_deref())?;
    let (files, next_cursor) = state.files().list(&p, after, limit).await?;
    Ok(Json(FileList {
        files: files.into_iter().map(FileView::from).collect(),
        next_cursor,
    }))
}

/// `Content-Disposition: attachment` (RFC 6266): the browser saves the file
/// instead of rendering it. The stored name is already free of quotes and
/// control characters; a non-ASCII name also travels as `filename*` (RFC 8187)
/// with an ASCII fallback.
fn attachment(filename: &str) -> HeaderValue {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .filter(|c| !matches!(c, '"' | '\\'))
        .collect();
    let mut value = format!("attachment; filename=\"{ascii}\"");
    if !filename.is_ascii() {
        value.push_str("; filename*=UTF-8''");
        for byte in filename.bytes() {
            // RFC 8187 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~".
            if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
                value.push(char::from(byte));
            } else {
                value.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Streams one of the caller's files (content:read) as an attachment with
/// its stored type. Another user's file is a 404, as if it did not exist.
#[utoipa::path(
    get,
    path = "/api/v1/files/{id}",
    operation_id = "download_file",
    tag = "files",
    params(("id" = Uuid, Path, description = "File id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The content, as an attachment",
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"…\"`")),
            content(
                (FileContent = "image/jpeg"),
                (FileContent = "image/png"),
                (FileContent = "application/pdf"),
            )),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn download(
    State(state): State<AppState>,
    Require(p, ..): Require<perm::ContentRead>,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let file = state.files().download(&p, id).await?;
    let content_type = HeaderValue::from_str(&file.info.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    Ok((
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_LENGTH, HeaderValue::from(file.info.size)),
            (CONTENT_DISPOSITION, attachment(&file.info.filename)),
        ],
        streams::bounded(file.content, state.http().connections.stream_max),
    )
        .into_response())
}

/// Deletes a file (content:write): the caller's own, or anyone's for
/// holders of content:delete. Another user's file is otherwise a 404.
#[utoipa::path(
    delete,
    path = "/api/v1/files/{id}",
    operation_id = "delete_file",
    tag = "files",
    params(("id" = Uuid, Path, description = "File id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 204, description = "Deleted, content included"),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::ContentWrite>,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    state.files().delete(&p, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_are_quoted_safely() {
        assert_eq!(
            attachment("report.pdf"),
            "attachment; filename=\"report.pdf\""
        );
        assert_eq!(
            attachment("café.png"),
            "attachment; filename=\"caf_.png\"; filename*=UTF-8''caf%C3%A9.png"
        );
        assert_eq!(attachment("a\"b.png"), "attachment; filename=\"ab.png\"");
    }
}
