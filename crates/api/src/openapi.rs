//! The OpenAPI 3.1 document: one [`ApiDoc`], built from the route table
//! (each route brings its `#[utoipa::path]` entry and the schemas of the
//! types it serialises), the shared problem responses, and the security
//! schemes.
//!
//! A new route needs: `#[utoipa::path]` on its handler (success responses
//! plus its own errors, e.g. `(status = 404, response = NotFound)`), its
//! line in the route table, and `openapi.json` regenerated. Errors every
//! route shares (bad host, timeout, rate limit, 500, and 401/413/415/422
//! where they apply) are added by [`CommonResponses`].

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{Schema, SchemaType};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes,
    SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{OpenApi as OpenApiDoc, Ref, RefOr, Type};
use utoipa::{Modify, OpenApi};

use crate::error::FieldError;
use crate::middleware::problem::ProblemBody;
use crate::{responses, routes};

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
    components(schemas(ProblemBody, FieldError)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Registration, login, token refresh and logout"),
        (name = "passkeys", description = "WebAuthn passkeys: registering, signing in (also as the second factor), managing"),
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
    /// The whole document: every route of the table with its schemas, then
    /// the responses they all share.
    pub fn document() -> OpenApiDoc {
        let mut doc = Self::openapi();
        doc.merge(routes::documented().into_openapi());
        CommonResponses.modify(&mut doc);
        doc
    }

    /// The document as served at `/openapi.json` and committed as
    /// `openapi.json` (pretty-printed, one trailing newline).
    pub fn json() -> String {
        let mut text = Self::document()
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".to_owned());
        text.push('\n');
        text
    }
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
        for (name, response) in responses::components() {
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
