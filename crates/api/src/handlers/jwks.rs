//! `GET /.well-known/jwks.json`: public verification keys (EdDSA), current
//! and retired, so other services verify tokens locally. Empty for HS256.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use gatehouse_core::auth::tokens::JwkSet;
use http::HeaderValue;
use http::header::CACHE_CONTROL;

use crate::state::AppState;

/// The public verification keys, current and retired (EdDSA); empty with
/// HS256.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    operation_id = "jwks",
    tag = "operations",
    responses((status = 200, description = "A JSON Web Key Set", body = JwkSet)),
)]
pub async fn get(State(state): State<AppState>) -> impl IntoResponse {
    (
        // Verifiers may cache briefly; rotation keeps old keys published
        // longer than this.
        [(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        )],
        Json(state.sign_in().token_keys().jwk_set().clone()),
    )
}
