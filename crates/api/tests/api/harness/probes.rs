//! Routes mounted only in tests, to reach behaviours no production route
//! triggers on demand (a panic, a hidden 500, a slow handler).

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::routing::{get, post};
use gatehouse_api::extract::ApiJson;
use gatehouse_api::{ApiError, AppState};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Echo {
    pub name: String,
    pub count: u32,
}

#[derive(Debug)]
struct HiddenCause;
impl std::fmt::Display for HiddenCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SELECT secret FROM vault at /srv/gatehouse/src/db.rs:42")
    }
}
impl std::error::Error for HiddenCause {}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/test/echo",
            post(|ApiJson(e): ApiJson<Echo>| async move {
                Json(json!({"name": e.name, "count": e.count}))
            }),
        )
        .route(
            "/test/panic",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("boom with internal detail");
                }
                Json(Value::Null)
            }),
        )
        .route(
            "/test/internal",
            get(|| async { Err::<Json<Value>, _>(ApiError::internal(HiddenCause)) }),
        )
        .route(
            "/test/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Json(json!({}))
            }),
        )
}
