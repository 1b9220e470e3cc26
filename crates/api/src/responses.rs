//! The documented problem responses (RFC 9457): one OpenAPI response per
//! kind of error, named in `#[utoipa::path]` next to each handler
//! (`(status = 404, response = NotFound)`) and added to the document once.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, RefOr, Response, ResponseBuilder, Type};
use utoipa::{ToResponse, ToSchema};

use crate::middleware::problem::{PROBLEM_JSON, ProblemBody};

/// A problem response with `description`, and its extra headers.
fn problem_response(description: &str, headers: &[(&str, &str)]) -> Response {
    let mut builder = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ProblemBody::name())))
            .build(),
    );
    for (name, about) in headers {
        builder = builder.header(
            *name,
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some(*about))
                .build(),
        );
    }
    builder.build()
}

const WWW_AUTHENTICATE: (&str, &str) = ("WWW-Authenticate", "`Bearer` (RFC 6750 §3)");
const RETRY_AFTER: (&str, &str) = ("Retry-After", "Seconds to wait before retrying");

macro_rules! problem_responses {
    ($($name:ident => ($description:literal $(, $header:expr)*)),* $(,)?) => {
        $(
            #[doc = $description]
            #[derive(Debug)]
            pub struct $name;

            impl<'s> ToResponse<'s> for $name {
                fn response() -> (&'s str, RefOr<Response>) {
                    (stringify!($name), problem_response($description, &[$($header),*]).into())
                }
            }
        )*

        /// Every problem response, for the document's components.
        pub fn components() -> Vec<(&'static str, RefOr<Response>)> {
            vec![$(<$name as ToResponse>::response()),*]
        }
    };
}

problem_responses! {
    BadRequest => ("The request was refused; `code` says why (e.g. `invalid_host`, \
        `weak_password`, `registration_failed`, `invalid_current_password`, \
        `invalid_mail_token`, `passkey_rejected`)"),
    Unauthorized => ("Missing, invalid, expired or revoked credentials", WWW_AUTHENTICATE),
    ReauthenticationRequired => ("Missing, invalid, expired or revoked credentials, or \
        (`reauthentication_required`) a login whose `auth_time` is older than \
        `REAUTH_MAX_AGE_MINUTES`: re-authenticate at `POST /api/v1/auth/reauth` and retry \
        with the token it returns", WWW_AUTHENTICATE),
    Forbidden => ("Authenticated, but not allowed (`forbidden`, `email_not_verified`)"),
    NotFound => ("No such resource (`not_found`)"),
    RequestTimeout => ("The request took longer than `REQUEST_TIMEOUT_SECS` (`request_timeout`)"),
    Conflict => ("The resource conflicts with an existing one (`conflict`), or removing it \
        would leave the account no way to sign in (`last_factor`)"),
    PayloadTooLarge => ("The body exceeds `MAX_BODY_BYTES` (`payload_too_large`)"),
    UnsupportedMediaType => ("The body's media type is not accepted (`unsupported_media_type`)"),
    UploadTooLarge => ("The file exceeds `MAX_UPLOAD_BYTES` (`payload_too_large`), or would \
        take the caller past `UPLOAD_QUOTA_BYTES` or `UPLOAD_QUOTA_FILES` (`quota_exceeded`); \
        nothing is kept"),
    InsufficientStorage => ("The upload volume's free space would fall under \
        `UPLOAD_MIN_FREE_BYTES` (`insufficient_storage`); nothing is kept"),
    UnsupportedFileType => ("Not multipart/form-data, or not a .jpg, .jpeg, .png or .pdf file \
        whose content matches its extension (`unsupported_media_type`)"),
    ValidationFailed => ("The input is malformed or breaks a field rule (`validation_error`, \
        with `errors` naming each field)"),
    TooManyRequests => ("A rate limit or account lockout applies (`rate_limited`, \
        `account_locked`)", RETRY_AFTER),
    InternalError => ("An unexpected error; the cause is logged with the request id, \
        never sent (`internal_error`)"),
    Unavailable => ("A dependency is unavailable (`service_unavailable`; `/ready` answers \
        `not_ready` with `checks` naming each dependency)"),
}
