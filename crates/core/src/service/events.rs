//! Security events raised at the edge (a refused permission, a rate-limit
//! hit), recorded in the audit trail like the use cases' own.

use serde_json::json;

use super::kernel::Kernel;
use super::principal::Principal;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::rbac::Permission;

/// Where a refused request was going.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub method: &'a str,
    pub route: &'a str,
}

#[derive(Debug)]
pub struct SecurityEvents {
    kernel: Kernel,
}

impl SecurityEvents {
    pub fn new(kernel: Kernel) -> Self {
        Self { kernel }
    }

    /// Records a refused permission (the route guard calls this).
    pub async fn permission_denied(
        &self,
        principal: &Principal,
        permission: Permission,
        attempt: Attempt<'_>,
        meta: &RequestMeta,
    ) {
        self.kernel
            .audit(
                AuditEvent::new(EventKind::PermissionDenied, Outcome::Failure, meta)
                    .actor(principal.id())
                    .details(json!({
                        "permission": permission.as_str(),
                        "role": principal.user.role.as_str(),
                        "method": attempt.method,
                        "route": attempt.route,
                    })),
            )
            .await;
    }

    /// Records a rate-limit refusal.
    pub async fn rate_limited(&self, scope: &str, path: &str, meta: &RequestMeta) {
        self.kernel
            .audit(
                AuditEvent::new(EventKind::RateLimited, Outcome::Failure, meta)
                    .details(json!({"scope": scope, "path": path})),
            )
            .await;
    }
}
