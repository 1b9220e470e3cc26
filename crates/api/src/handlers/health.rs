//! Liveness (`/health`) and readiness (`/ready`).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use futures_util::future::join_all;
use http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::responses::Unavailable;
use crate::state::AppState;

/// A probe slower than this counts as down: readiness must answer quickly
/// for load balancers even when a dependency hangs.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
    #[schema(example = "0.1.0")]
    version: &'static str,
}

/// Readiness: every dependency answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    status: &'static str,
    /// `ok` per dependency.
    #[schema(value_type = BTreeMap<String, String>, example = json!({"database": "ok"}))]
    checks: Map<String, Value>,
}

/// Liveness: the process answers. Checks no dependency.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "The process answers", body = Health)),
)]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Readiness: every dependency answers; 503 naming the ones that do not.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Every dependency answers", body = Ready),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    let results = join_all(state.probes().iter().map(|probe| async move {
        let outcome = match tokio::time::timeout(PROBE_TIMEOUT, probe.check()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err("timed out".to_owned()),
        };
        (probe.name(), outcome)
    }))
    .await;

    let mut checks = Map::new();
    let mut is_ready = true;
    for (name, outcome) in results {
        let status = match outcome {
            Ok(()) => "ok",
            Err(reason) => {
                is_ready = false;
                tracing::warn!(dependency = name, reason, "readiness check failed");
                "unavailable"
            }
        };
        checks.insert(name.to_owned(), json!(status));
    }
    if is_ready {
        Ok(Json(Ready {
            status: "ready",
            checks,
        }))
    } else {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "A required dependency is unavailable",
        )
        .with_extension("checks", Value::Object(checks)))
    }
}
