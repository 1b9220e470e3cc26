//! Ports: the traits that storage, cache and mail adapters implement.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::CoreError;

/// A dependency whose reachability decides readiness (`GET /ready`).
#[async_trait]
pub trait HealthProbe: Send + Sync + Debug {
    /// Short stable name reported by `/ready`, e.g. `database`.
    fn name(&self) -> &'static str;
    /// Answers `Ok` when the dependency responds.
    async fn check(&self) -> Result<(), CoreError>;
}
