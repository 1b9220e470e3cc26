//! `/api/v1/auth`: register, login (JSON or OAuth2 password form), refresh
//! and logout.

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_core::service::{LoginId, LoginOutcome, Registration, TokenPair};
use gatehouse_core::user::User;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cookies;
use crate::error::{ApiError, FieldError};
use crate::extract::{ApiJson, Meta, bearer_token, is_json_content_type, parse_json, read_body};
use crate::responses::{BadRequest, Forbidden, Unauthorized};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(
        min_length = 3,
        max_length = 50,
        pattern = "^[A-Za-z0-9_-]+$",
        example = "jane_doe"
    )]
    pub username: String,
    #[schema(format = Email, max_length = 254, example = "jane@example.com")]
    pub email: String,
    /// 8–128 characters with upper and lower case, a digit and a special
    /// character; not a common password.
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 128)]
    pub password: SecretString,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub full_name: Option<String>,
}

/// Creates an account with role `user`. A taken email or username gets the
/// same 400 `registration_failed` (no account enumeration).
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The new user", body = User),
        (status = 400, response = BadRequest),
    ),
)]
pub async fn register(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let user = state
        .accounts()
        .register(
            Registration {
                username: body.username,
                email: body.email,
                password: body.password,
                full_name: body.full_name,
            },
            &meta,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = LoginRequest)]
#[serde(deny_unknown_fields)]
struct JsonLogin {
    #[schema(format = Email, max_length = 254, example = "jane@example.com")]
    email: String,
    #[schema(value_type = String, format = Password, min_length = 1, max_length = 1024)]
    password: SecretString,
}

/// The OAuth2 password grant (RFC 6749 §4.3.2) as sent by the docs page.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = LoginForm)]
#[serde(deny_unknown_fields)]
struct FormLogin {
    /// The email or the username.
    #[schema(min_length = 1, max_length = 254)]
    username: String,
    #[schema(value_type = String, format = Password, min_length = 1, max_length = 1024)]
    password: SecretString,
    #[serde(default)]
    #[schema(pattern = "^password$", nullable = false)]
    grant_type: Option<String>,
    #[serde(default)]
    #[schema(nullable = false)]
    #[allow(dead_code, reason = "accepted and ignored: scopes come from the role")]
    scope: Option<String>,
    #[serde(default)]
    #[schema(nullable = false)]
    #[allow(dead_code, reason = "accepted and ignored: public client")]
    client_id: Option<String>,
    #[serde(default)]
    #[schema(nullable = false)]
    #[allow(dead_code, reason = "accepted and ignored: public client")]
    client_secret: Option<String>,
}

/// A login body in either encoding, schema-checked.
#[derive(Debug)]
pub struct LoginBody {
    id: LoginId,
    password: SecretString,
}

/// Longest password a login checks (longer ones are refused unhashed).
pub(crate) const PASSWORD_MAX: usize = 1024;
/// Longest email or username a login looks up.
pub(crate) const LOGIN_MAX: usize = 254;

fn check_login_password(password: &SecretString, errors: &mut Vec<FieldError>) {
    let len = password.expose_secret().chars().count();
    if !(1..=PASSWORD_MAX).contains(&len) {
        errors.push(FieldError::new(
            "password",
            format!("must be 1 to {PASSWORD_MAX} characters long"),
        ));
    }
}

impl FromRequest<AppState> for LoginBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_form = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';').next().is_some_and(|m| {
                    m.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            });
        let mut errors = Vec::new();
        if is_form {
            let bytes = read_body(req, state).await?;
            let form: FormLogin = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
                ApiError::validation(vec![FieldError::new(
                    "body",
                    "must be a form with username and password",
                )])
            })?;
            if form.grant_type.as_deref().is_some_and(|g| g != "password") {
                errors.push(FieldError::new("grant_type", "must be password"));
            }
            let len = form.username.trim().chars().count();
            if !(1..=LOGIN_MAX).contains(&len) {
                errors.push(FieldError::new(
                    "username",
                    format!("must be 1 to {LOGIN_MAX} characters long"),
                ));
            }
            check_login_password(&form.password, &mut errors);
            if !errors.is_empty() {
                return Err(ApiError::validation(errors));
            }
            return Ok(Self {
                id: LoginId::EmailOrUsername(form.username),
                password: form.password,
            });
        }
        let ApiJson(body) = ApiJson::<JsonLogin>::from_request(req, state).await?;
        if let Err(p) = gatehouse_core::service::SignIn::check_login_email(&body.email) {
            errors.push(FieldError::new(p.field, p.message));
        }
        check_login_password(&body.password, &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(Self {
            id: LoginId::Email(body.email),
            password: body.password,
        })
    }
}

/// Tokens issued by login and refresh (RFC 6749 §5.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT, sent as `Authorization: Bearer …`.
    access_token: String,
    #[schema(value_type = String, example = "bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
    /// Only for clients that sent the refresh token in the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    refresh_token: Option<String>,
}

/// 200 with the token body, the refresh cookie and `Cache-Control: no-store`
/// (RFC 6749 §5.1).
fn token_response(state: &AppState, pair: TokenPair, refresh_in_body: bool) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = cookies::set_refresh(
        pair.refresh_token.expose_secret(),
        state.sign_in().refresh_ttl(),
        state.http().secure_cookies,
    ) {
        headers.insert(SET_COOKIE, cookie);
    }
    let body = TokenResponse {
        access_token: pair.access_token,
        token_type: "bearer",
        expires_in: pair.expires_in,
        refresh_token: refresh_in_body.then(|| pair.refresh_token.expose_secret().to_owned()),
    };
    (StatusCode::OK, headers, Json(LoginResponse::Tokens(body))).into_response()
}

/// An error response that also removes the refresh cookie.
fn clearing_cookie(state: &AppState, err: ApiError) -> Response {
    let mut res = err.into_response();
    if let Some(cookie) = cookies::clear_refresh(state.http().secure_cookies) {
        res.headers_mut().append(SET_COOKIE, cookie);
    }
    res
}

/// Logs in with a JSON body or the OAuth2 password form; sets the refresh
/// cookie. Unknown email and wrong password get the same 401.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body(content(
        (JsonLogin = "application/json"),
        (FormLogin = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Logged in (tokens, refresh cookie), or the second factor is required (`mfa_required`)", body = LoginResponse,
            headers(("Set-Cookie" = String, description = "The `refresh_token` cookie (HttpOnly, SameSite=Strict, Path=/api/v1/auth), when tokens are issued"))),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    Meta(meta): Meta,
    body: LoginBody,
) -> Result<Response, ApiError> {
    let outcome = state
        .sign_in()
        .login(body.id, &body.password, &meta)
        .await?;
    Ok(login_response(&state, outcome))
}

/// Step one of a 2FA login: no tokens yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaRequired {
    mfa_required: bool,
    /// Presented with the code to `/api/v1/auth/login/mfa` (or with a
    /// passkey to `/api/v1/auth/login/mfa/passkey/…`).
    mfa_token: String,
    expires_in: u64,
    /// What the second step accepts: `totp` (a code or a backup code), and
    /// `passkey` when the account has one.
    methods: Vec<&'static str>,
}

/// Either tokens, or the second step.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Tokens(TokenResponse),
    Mfa(MfaRequired),
}

/// The response to a correct password (or a correct second factor).
pub fn login_response(state: &AppState, outcome: LoginOutcome) -> Response {
    match outcome {
        LoginOutcome::Tokens(pair, _) => token_response(state, pair, false),
        LoginOutcome::MfaRequired {
            mfa_token,
            expires_in,
            passkey,
        } => (
            StatusCode::OK,
            [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Json(LoginResponse::Mfa(MfaRequired {
                mfa_required: true,
                mfa_token,
                expires_in,
                methods: if passkey {
                    vec!["totp", "passkey"]
                } else {
                    vec!["totp"]
                },
            })),
        )
            .into_response(),
    }
}

/// For clients that cannot keep the cookie.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = RefreshRequest)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable = false)]
    refresh_token: Option<SecretString>,
}

/// Where a refresh token came from.
#[derive(Debug, Default)]
pub struct PresentedRefresh {
    token: Option<SecretString>,
    from_body: bool,
}

impl FromRequest<AppState> for PresentedRefresh {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let cookie = cookies::refresh_from(req.headers());
        let is_json = is_json_content_type(&req);
        let bytes = read_body(req, state).await?;
        // The body is optional, but one that is sent is held to its schema:
        // never ignored for its media type, never read past a wrong type.
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            if !is_json {
                return Err(ApiError::unsupported_media_type(
                    "Expected Content-Type: application/json",
                ));
            }
            let body: RefreshBody = parse_json(&bytes)?;
            if let Some(token) = body.refresh_token {
                return Ok(Self {
                    token: Some(token),
                    from_body: true,
                });
            }
        }
        Ok(Self {
            token: cookie.map(SecretString::from),
            from_body: false,
        })
    }
}

/// Rotates the refresh token (cookie, or `refresh_token` in the body) and
/// issues a new pair. Presenting a spent token revokes its whole login. Any
/// failure clears the cookie.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = Option<RefreshBody>,
    security((), ("refresh_cookie" = [])),
    responses(
        (status = 200, description = "A new pair; `refresh_token` in the body only if it was sent there",
            body = TokenResponse,
            headers(("Set-Cookie" = String, description = "The `refresh_token` cookie (HttpOnly, SameSite=Strict, Path=/api/v1/auth)"))),
        (status = 401, response = Unauthorized),
    ),
)]
pub async fn refresh(
    State(state): State<AppState>,
    Meta(meta): Meta,
    presented: PresentedRefresh,
) -> Response {
    let Some(token) = presented.token else {
        return clearing_cookie(
            &state,
            gatehouse_core::CoreError::InvalidRefreshToken.into(),
        );
    };
    match state.sign_in().refresh(token.expose_secret(), &meta).await {
        Ok(pair) => token_response(&state, pair, presented.from_body),
        Err(err) => clearing_cookie(&state, err.into()),
    }
}

/// A confirmation sentence.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    #[schema(value_type = String)]
    pub message: &'static str,
}

/// Revokes the refresh token's login, denies the presented access token
/// until it expires, and clears the cookie. Idempotent.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    request_body = Option<RefreshBody>,
    security((), ("refresh_cookie" = []), ("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Logged out; the cookie is cleared", body = Message),
    ),
)]
pub async fn logout(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    presented: PresentedRefresh,
) -> Result<Response, ApiError> {
    state
        .sign_in()
        .logout(
            presented.token.as_ref().map(|t| t.expose_secret()),
            bearer_token(&headers),
            &meta,
        )
        .await?;
    let mut res = (
        StatusCode::OK,
        Json(Message {
            message: "Logged out",
        }),
    )
        .into_response();
    if let Some(cookie) = cookies::clear_refresh(state.http().secure_cookies) {
        res.headers_mut().insert(SET_COOKIE, cookie);
    }
    Ok(res)
}
