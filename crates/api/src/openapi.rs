//! The OpenAPI 3.1 document: one [`ApiDoc`] built from the `#[utoipa::path]`
//! annotations next to each handler, the shared problem responses, the
//! response shapes the handlers serialise, and the security schemes.
//!
//! A new route needs: `#[utoipa::path]` on its handler (success responses
//! plus its own errors, e.g. `(status = 404, response = NotFound)`), its
//! handler listed in `paths(...)` below, and `openapi.json` regenerated.
//! Errors every route shares (bad host, timeout, rate limit, 500, and
//! 401/413/415/422 where they apply) are added by [`CommonResponses`].

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{Schema, SchemaType};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes,
    SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, ObjectBuilder, OpenApi as OpenApiDoc, Ref, RefOr, Response, ResponseBuilder,
    Type,
};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};
use uuid::Uuid;

use crate::error::FieldError;
use crate::handlers::{admin, api_keys, auth, docs, export, files, health, jwks, mfa, users};

/// Media type of every error body (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Security scheme names, as `security(...)` in `#[utoipa::path]` names them.
pub const BEARER: &str = "bearer";
pub const OAUTH2: &str = "oauth2";
pub const API_KEY: &str = "api_key";
pub const REFRESH_COOKIE: &str = "refresh_cookie";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse",
        description = "User and authentication API. Every error is an RFC 9457 \
            `application/problem+json` document with a stable `code` and the `request_id`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        health::health,
        health::ready,
        jwks::get,
        docs::openapi,
        docs::page,
        docs::asset,
        auth::register,
        auth::login,
        auth::refresh,
        auth::logout,
        mfa::login,
        mfa::setup,
        mfa::enable,
        mfa::disable,
        api_keys::create,
        api_keys::list,
        api_keys::rotate,
        api_keys::revoke,
        users::me,
        users::update_me,
        users::change_password,
        users::sessions,
        users::revoke_session,
        users::list,
        users::create,
        users::get,
        users::patch,
        users::delete,
        export::export,
        files::upload,
        files::list,
        files::download,
        files::delete,
        admin::stats,
        admin::config,
        admin::audit,
        admin::verify,
    ),
    components(schemas(ProblemSchema, FieldError)),
    modifiers(&SecuritySchemes, &CommonResponses),
    tags(
        (name = "auth", description = "Registration, login, token refresh and logout"),
        (name = "users", description = "The caller's account and user administration"),
        (name = "admin", description = "Statistics, configuration and the audit trail"),
        (name = "files", description = "The caller's uploaded files"),
        (name = "api-keys", description = "The caller's API keys"),
        (name = "operations", description = "Health, readiness, verification keys and these docs"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

impl ApiDoc {
    /// The document as served at `/openapi.json` and committed as
    /// `openapi.json` (pretty-printed, one trailing newline).
    pub fn json() -> String {
        let mut text = Self::openapi()
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".to_owned());
        text.push('\n');
        text
    }
}

// ---------------------------------------------------------------------------
// Problems (RFC 9457)

/// An error, as every non-2xx response carries it.
#[derive(Debug, ToSchema)]
#[schema(as = Problem, example = json!({
    "type": "about:blank", "title": "Unauthorized", "status": 401,
    "detail": "Invalid email or password", "code": "invalid_credentials",
    "request_id": "0190b6c1-7a4e-7c2a-9d1e-3f5a8b2c4d6e"
}))]
#[allow(
    dead_code,
    reason = "schema only: the problem middleware builds the body"
)]
pub struct ProblemSchema {
    /// Always `about:blank`: `code` identifies the problem.
    #[serde(rename = "type")]
    kind: String,
    /// The status's reason phrase.
    title: String,
    status: u16,
    /// A short human sentence.
    detail: String,
    /// Stable snake_case machine code (`validation_error`, `not_found`, …).
    code: String,
    /// Equals the response's `X-Request-ID`.
    request_id: String,
    /// Validation failures only (422), unless hidden in production.
    #[schema(nullable = false)]
    errors: Option<Vec<FieldError>>,
}

/// A problem response with `description`, and its extra headers.
fn problem_response(description: &str, headers: &[(&str, &str)]) -> Response {
    let mut builder = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
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
        fn problem_components() -> Vec<(&'static str, RefOr<Response>)> {
            vec![$(<$name as ToResponse>::response()),*]
        }
    };
}

problem_responses! {
    BadRequest => ("The request was refused; `code` says why (e.g. `invalid_host`, \
        `weak_password`, `registration_failed`, `invalid_current_password`)"),
    Unauthorized => ("Missing, invalid, expired or revoked credentials", WWW_AUTHENTICATE),
    Forbidden => ("Authenticated, but not allowed (`forbidden`, `email_not_verified`)"),
    NotFound => ("No such resource (`not_found`)"),
    RequestTimeout => ("The request took longer than `REQUEST_TIMEOUT_SECS` (`request_timeout`)"),
    Conflict => ("The resource conflicts with an existing one (`conflict`)"),
    PayloadTooLarge => ("The body exceeds `MAX_BODY_BYTES` (`payload_too_large`)"),
    UnsupportedMediaType => ("The body's media type is not accepted (`unsupported_media_type`)"),
    UploadTooLarge => ("The file exceeds `MAX_UPLOAD_BYTES` (`payload_too_large`)"),
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

// ---------------------------------------------------------------------------
// Response shapes serialised outside the handlers' own types

/// A user's role.
#[derive(Debug, ToSchema)]
#[schema(as = Role)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code, reason = "schema only: mirrors gatehouse_core::rbac::Role")]
pub enum RoleSchema {
    Admin,
    Moderator,
    User,
    Viewer,
}

/// A user; never a password hash, secret, token or key.
#[derive(Debug, ToSchema)]
#[schema(as = User)]
#[allow(dead_code, reason = "schema only: mirrors gatehouse_core::user::User")]
pub struct UserSchema {
    id: Uuid,
    username: String,
    email: String,
    email_verified: bool,
    #[schema(required = true)]
    full_name: Option<String>,
    role: RoleSchema,
    is_active: bool,
    mfa_enabled: bool,
    #[schema(value_type = String, format = DateTime)]
    created_at: String,
    #[schema(value_type = String, format = DateTime)]
    updated_at: String,
}

/// Page mode (`?page=&per_page=`).
#[derive(Debug, ToSchema)]
#[schema(as = UserPage)]
#[allow(dead_code, reason = "schema only")]
pub struct UserPageSchema {
    users: Vec<UserSchema>,
    total: u64,
    page: u64,
    per_page: u64,
    pages: u64,
}

/// Keyset mode (`?limit=`, then `?after=<next_cursor>`).
#[derive(Debug, ToSchema)]
#[schema(as = UserKeysetPage)]
#[allow(dead_code, reason = "schema only")]
pub struct UserKeysetPageSchema {
    users: Vec<UserSchema>,
    /// `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<Uuid>,
}

/// `GET /api/v1/users`: page mode or keyset mode.
#[derive(Debug, ToSchema)]
#[schema(as = UserList)]
#[serde(untagged)]
#[allow(dead_code, reason = "schema only")]
pub enum UserListSchema {
    Page(UserPageSchema),
    Keyset(UserKeysetPageSchema),
}

/// Liveness.
#[derive(Debug, ToSchema)]
#[schema(as = Health)]
#[allow(dead_code, reason = "schema only")]
pub struct HealthSchema {
    #[schema(example = "ok")]
    status: String,
    #[schema(example = "0.1.0")]
    version: String,
}

/// Readiness: every dependency answered.
#[derive(Debug, ToSchema)]
#[schema(as = Ready)]
#[allow(dead_code, reason = "schema only")]
pub struct ReadySchema {
    #[schema(example = "ready")]
    status: String,
    /// `ok` per dependency.
    #[schema(example = json!({"database": "ok"}))]
    checks: BTreeMap<String, String>,
}

/// One public verification key (RFC 8037 OKP).
#[derive(Debug, ToSchema)]
#[schema(as = Jwk)]
#[allow(dead_code, reason = "schema only")]
pub struct JwkSchema {
    kty: String,
    crv: String,
    x: String,
    kid: String,
    alg: String,
    #[serde(rename = "use")]
    usage: String,
}

/// A JSON Web Key Set (RFC 7517 §5); empty with HS256.
#[derive(Debug, ToSchema)]
#[schema(as = Jwks)]
#[allow(dead_code, reason = "schema only")]
pub struct JwksSchema {
    keys: Vec<JwkSchema>,
}

// ---------------------------------------------------------------------------
// Modifiers

/// The security schemes, declared once.
#[derive(Debug)]
pub struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut OpenApiDoc) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("Access token from `POST /api/v1/auth/login`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            OAUTH2,
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::Password(Password::new(
                    "/api/v1/auth/login",
                    Scopes::new(),
                ))],
                "OAuth2 password grant (RFC 6749 §4.3): `username` is the email or \
                 the username. Scopes come from the user's role.",
            )),
        );
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key acting as its owner, limited to its scopes",
            ))),
        );
        components.add_security_scheme(
            REFRESH_COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "refresh_token",
                "The HttpOnly refresh cookie set by login and refresh",
            ))),
        );
    }
}

/// Adds the responses every route shares, so handlers declare only their
/// own: 400 (`invalid_host`), 408, 429 and 500 everywhere; 413/415/422 with
/// a body; 401 where a bearer token is required; 503 on `/api` routes. Also
/// documents an optional body (`request_body = Option<T>`) as `T`, not
/// required, rather than "`T` or `null`": `null` is not a body we accept.
#[derive(Debug)]
pub struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, doc: &mut OpenApiDoc) {
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, response) in problem_components() {
            components.responses.insert(name.to_owned(), response);
        }
        let bearer = SecurityRequirement::new(BEARER, Vec::<String>::new());
        for (path, item) in &mut doc.paths.paths {
            let is_api = path.starts_with("/api/");
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                let needs_bearer = op.security.as_ref().is_some_and(|alternatives| {
                    alternatives.contains(&bearer)
                        && !alternatives.contains(&SecurityRequirement::default())
                });
                let has_body = op.request_body.is_some();
                unwrap_optional_body(op);
                add(op, "400", "BadRequest");
                add(op, "408", "RequestTimeout");
                add(op, "429", "TooManyRequests");
                add(op, "500", "InternalError");
                if has_body {
                    add(op, "413", "PayloadTooLarge");
                    add(op, "415", "UnsupportedMediaType");
                    add(op, "422", "ValidationFailed");
                }
                if needs_bearer {
                    add(op, "401", "Unauthorized");
                }
                if is_api {
                    add(op, "503", "Unavailable");
                }
            }
        }
    }
}

fn is_null(schema: &RefOr<Schema>) -> bool {
    matches!(schema, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null))
}

fn unwrap_optional_body(op: &mut Operation) {
    let Some(body) = op.request_body.as_mut() else {
        return;
    };
    for content in body.content.values_mut() {
        if let Some(RefOr::T(Schema::OneOf(one))) = &content.schema
            && one.items.len() == 2
            && one.items.iter().any(is_null)
        {
            content.schema = one.items.iter().find(|s| !is_null(s)).cloned();
        }
    }
}

/// Adds `status` → the named problem response unless the route declared it.
fn add(op: &mut Operation, status: &str, response: &str) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(response)));
}
