//! The API keys page: the caller's keys (never a key itself), a new key
//! with the scopes chosen among the caller's own permissions and shown
//! once, rotation (a new secret, shown once) and revocation, through
//! `ApiKeys` as `/api/v1/api-keys` does.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use gatehouse_core::CoreError;
use gatehouse_core::service::{ApiKeyView, NewApiKey};
use http::{HeaderMap, StatusCode};
use minijinja::context;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use uuid::Uuid;

use super::account::{self, AccountQuery, View, shown};
use super::csrf::{self, Binding};
use super::page::{Page, Refusal, see_other};
use super::session::SignedIn;
use super::sign_in::PlainForm;
use crate::error::ApiError;
use crate::extract::Meta;
use crate::state::AppState;

const PATH: &str = "/ui/account/api-keys";

/// The lifetimes the form offers, in days (none: the key does not expire).
const LIFETIMES: [u32; 4] = [30, 90, 365, 3650];

#[derive(Debug, Serialize)]
struct KeyRow {
    id: Uuid,
    name: String,
    prefix: String,
    scopes: Vec<String>,
    created: (String, String),
    expires: Option<(String, String)>,
    last_used: Option<(String, String)>,
}

/// A key just made or rotated: its secret, on this one answer.
#[derive(Debug)]
pub(super) struct Fresh<'a> {
    name: &'a str,
    key: &'a SecretString,
}

/// The page: the keys, the form for a new one (the caller's own
/// permissions to choose from), and a fresh key if one was just made.
pub(super) async fn view(
    state: &AppState,
    signed: &SignedIn,
    fresh: Option<Fresh<'_>>,
) -> Result<View, ApiError> {
    let p = &signed.principal;
    let keys: Vec<KeyRow> = state
        .api_keys()
        .list(p)
        .await?
        .into_iter()
        .map(|k: ApiKeyView| KeyRow {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes,
            created: shown(k.created_at),
            expires: k.expires_at.map(shown),
            last_used: k.last_used_at.map(shown),
        })
        .collect();
    let scopes: Vec<&str> = p
        .user
        .role
        .permissions()
        .iter()
        .map(|perm| perm.as_str())
        .collect();
    Ok(View {
        template: "api_keys.html",
        path: PATH,
        own: context! {
            keys => keys,
            scopes => scopes,
            lifetimes => LIFETIMES,
            fresh => fresh.map(|f| context! { name => f.name, key => f.key.expose_secret() }),
        },
    })
}

/// `GET /ui/account/api-keys`.
pub async fn show(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Query(q): Query<AccountQuery>,
) -> Result<Page, ApiError> {
    let view = view(&state, &signed, None).await?;
    account::show_view(&state, &signed, &headers, &q.notice, view).await
}

/// The page again with a refused sentence; the re-authentication form
/// when the use case asked for a recent sign-in.
async fn refused(
    state: &AppState,
    signed: &SignedIn,
    headers: &HeaderMap,
    err: CoreError,
) -> Result<Response, ApiError> {
    let (refusal, reauth) = match err {
        CoreError::ReauthenticationRequired => (
            Refusal::status(
                StatusCode::UNAUTHORIZED,
                "A new or rotated API key needs a recent sign-in.",
            ),
            Some("Confirm it is you below, then try again."),
        ),
        e => (
            Refusal::new(e, state.http().expose_validation_details),
            None,
        ),
    };
    let view = view(state, signed, None).await?;
    account::refused_view(state, signed, headers, refusal, reauth, view).await
}

/// What a create or rotate came to: the page with the key's secret, shown
/// this once (`code` names the notice), or the refusal.
async fn shown_once(
    state: &AppState,
    signed: &SignedIn,
    headers: &HeaderMap,
    outcome: Result<(ApiKeyView, SecretString), CoreError>,
    code: &str,
) -> Result<Response, ApiError> {
    let (made, key) = match outcome {
        Ok(made) => made,
        Err(e) => return refused(state, signed, headers, e).await,
    };
    let fresh = Fresh {
        name: &made.name,
        key: &key,
    };
    let view = view(state, signed, Some(fresh)).await?;
    Ok(account::show_view(state, signed, headers, code, view)
        .await?
        .into_response())
}

/// `POST /ui/account/api-keys`: `name`, `scope` once per permission
/// ticked, `expires_in_days` (empty: never). A form of repeated fields,
/// so read as pairs.
pub async fn create(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    csrf::verify(&headers, Binding::login(p.session_id), field("csrf"))?;
    let scopes: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    if scopes.is_empty() {
        let refusal = Refusal::status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose at least one permission for the key.",
        );
        let view = view(&state, &signed, None).await?;
        return account::refused_view(&state, &signed, &headers, refusal, None, view).await;
    }
    let expires_in_days = match field("expires_in_days") {
        "" => None,
        days => match days.parse::<u32>() {
            Ok(d) => Some(d),
            Err(_) => {
                let refusal = Refusal::status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Choose how long the key lasts from the list.",
                );
                let view = view(&state, &signed, None).await?;
                return account::refused_view(&state, &signed, &headers, refusal, None, view).await;
            }
        },
    };
    let input = NewApiKey {
        name: field("name").to_owned(),
        scopes: Some(scopes),
        expires_in_days,
    };
    let outcome = state.api_keys().create(p, input, &meta).await;
    shown_once(&state, &signed, &headers, outcome, "api_key_created").await
}

/// `POST /ui/account/api-keys/{id}/rotate`: a new secret for the key; the
/// old one stops working at once.
pub async fn rotate(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Form(form): Form<PlainForm>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    csrf::verify(&headers, Binding::login(p.session_id), &form.csrf)?;
    let outcome = state.api_keys().rotate(p, id, &meta).await;
    shown_once(&state, &signed, &headers, outcome, "api_key_rotated").await
}

/// `POST /ui/account/api-keys/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Form(form): Form<PlainForm>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    csrf::verify(&headers, Binding::login(p.session_id), &form.csrf)?;
    match state.api_keys().revoke(p, id, &meta).await {
        Ok(()) => Ok(see_other(&format!("{PATH}?notice=api_key_revoked")).into_response()),
        Err(e) => refused(&state, &signed, &headers, e).await,
    }
}
