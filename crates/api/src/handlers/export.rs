//! `GET /api/v1/users/export?format=ndjson|csv` (users:read): every matching
//! user, read page by page and streamed into the response, which ends after
//! `STREAM_MAX_SECS`.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use gatehouse_core::user::User;
use http::HeaderValue;
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

use crate::error::{ApiError, FieldError};
use crate::extract::{Meta, Require, perm};
use crate::responses::{Forbidden, ValidationFailed};
use crate::state::AppState;
use crate::streams;

#[derive(Debug, Default, Deserialize)]
struct RawExport {
    format: Option<String>,
    q: Option<String>,
    role: Option<String>,
    is_active: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Csv,
}

const CSV_HEADER: &str = "id,username,email,email_verified,full_name,role,is_active,mfa_enabled,created_at,updated_at\r\n";

/// A CSV cell: formula-looking values are neutralised with a leading `'`
/// (OWASP "CSV Injection"), then quoted per RFC 4180 when needed.
fn csv_cell(value: &str) -> String {
    let neutral = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if neutral.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

fn timestamp(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn csv_row(u: &User) -> String {
    let cells = [
        u.id.to_string(),
        csv_cell(&u.username),
        csv_cell(&u.email),
        u.email_verified.to_string(),
        csv_cell(u.full_name.as_deref().unwrap_or_default()),
        u.role.as_str().to_owned(),
        u.is_active.to_string(),
        u.mfa_enabled.to_string(),
        timestamp(u.created_at),
        timestamp(u.updated_at),
    ];
    let mut line = cells.join(",");
    line.push_str("\r\n");
    line
}

/// Streams every matching user (`application/x-ndjson` or `text/csv`).
#[utoipa::path(
    get,
    path = "/api/v1/users/export",
    operation_id = "export_users",
    tag = "users",
    params(
        ("format" = Option<String>, Query, description = "`ndjson` (default) or `csv`"),
        ("q" = Option<String>, Query, max_length = 50, description = "Username prefix"),
        ("role" = Option<String>, Query, description = "Only this role"),
        ("is_active" = Option<bool>, Query, description = "Only active or inactive users"),
    ),
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One user per line (NDJSON) or per row (CSV; formula cells neutralised)",
            content(
                (String = "application/x-ndjson"),
                (String = "text/csv"),
            )),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn export(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::UsersRead>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let raw: RawExport = serde_urlencoded::from_str(query.as_deref().unwrap_or_default())
        .map_err(|_| ApiError::validation(vec![FieldError::new("query", "is malformed")]))?;
    let mut errors = Vec::new();
    let format = match raw.format.as_deref() {
        None | Some("ndjson") => Format::Ndjson,
        Some("csv") => Format::Csv,
        Some(_) => {
            errors.push(FieldError::new("format", "must be ndjson or csv"));
            Format::Ndjson
        }
    };
    let query = super::users::list_filters(
        raw.q,
        raw.role.as_deref(),
        raw.is_active.as_deref(),
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let label = if format == Format::Csv {
        "csv"
    } else {
        "ndjson"
    };
    let users = state.user_admin().export(&p, &query, label, &meta).await?;
    let lines = users.map(move |user| match user {
        Ok(u) => Ok(Bytes::from(match format {
            Format::Ndjson => {
                let mut line = serde_json::to_string(&u).map_err(std::io::Error::other)?;
                line.push('\n');
                line
            }
            Format::Csv => csv_row(&u),
        })),
        Err(e) => {
            // Headers are gone already: end the body early, loudly in logs.
            tracing::error!(error = %e, "export aborted");
            Err(std::io::Error::other("export aborted"))
        }
    });
    let stream_max = state.http().connections.stream_max;
    let body = match format {
        Format::Csv => streams::bounded(
            futures_util::stream::iter([Ok(Bytes::from_static(CSV_HEADER.as_bytes()))])
                .chain(lines),
            stream_max,
        ),
        Format::Ndjson => streams::bounded(lines, stream_max),
    };
    let (content_type, file) = match format {
        Format::Csv => (
            "text/csv; charset=utf-8",
            "attachment; filename=\"users.csv\"",
        ),
        Format::Ndjson => (
            "application/x-ndjson",
            "attachment; filename=\"users.ndjson\"",
        ),
    };
    Ok((
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CONTENT_DISPOSITION, HeaderValue::from_static(file)),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn formula_cells_are_neutralised_and_quoted() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
    }
}
