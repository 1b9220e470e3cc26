//! Administration use cases: statistics and the audit trail.

use serde::Serialize;
use time::Duration as TimeDuration;

use super::auth::{AuthService, millis};
use crate::CoreError;
use crate::audit::{AuditEntry, AuditQuery, Verification, verify_chain};
use crate::crypto::FieldCipher;
use crate::ports::UserFilter;
use crate::rbac::Role;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AdminStats {
    pub users: UserCounts,
    pub sessions: SessionCounts,
    pub logins_24h: LoginCounts,
    pub locked_accounts: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserCounts {
    pub total: u64,
    pub active: u64,
    pub inactive: u64,
    pub by_role: RoleCounts,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RoleCounts {
    pub admin: u64,
    pub moderator: u64,
    pub user: u64,
    pub viewer: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SessionCounts {
    pub active: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LoginCounts {
    pub succeeded: u64,
    pub failed: u64,
}

impl AuthService {
    pub async fn admin_stats(&self) -> Result<AdminStats, CoreError> {
        let now = self.now();
        let stats = self.deps.users.stats().await?;
        let mut by_role = RoleCounts::default();
        for (role, n) in &stats.by_role {
            match role.parse::<Role>() {
                Ok(Role::Admin) => by_role.admin = *n,
                Ok(Role::Moderator) => by_role.moderator = *n,
                Ok(Role::User) => by_role.user = *n,
                Ok(Role::Viewer) => by_role.viewer = *n,
                Err(()) => {}
            }
        }
        let day_ago = millis(now - TimeDuration::hours(24));
        Ok(AdminStats {
            users: UserCounts {
                total: stats.total,
                active: stats.active,
                inactive: stats.total.saturating_sub(stats.active),
                by_role,
            },
            sessions: SessionCounts {
                active: self.deps.sessions.count_active(millis(now)).await?,
            },
            logins_24h: LoginCounts {
                succeeded: self
                    .deps
                    .audit_log
                    .count_since("login_succeeded", day_ago)
                    .await?,
                failed: self
                    .deps
                    .audit_log
                    .count_since("login_failed", day_ago)
                    .await?,
            },
            locked_accounts: self.deps.throttle.locked_count(millis(now)).await?,
        })
    }

    /// A page of the audit trail, newest first, with the cursor of the next.
    pub async fn audit_page(
        &self,
        query: &AuditQuery,
    ) -> Result<(Vec<AuditEntry>, Option<i64>), CoreError> {
        let mut q = query.clone();
        q.limit = query.limit + 1;
        let mut entries = self.deps.audit_log.page(&q).await?;
        let has_more = entries.len() as u64 > query.limit;
        entries.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        let next = if has_more {
            entries.last().map(|e| e.seq)
        } else {
            None
        };
        Ok((entries, next))
    }

    pub async fn verify_audit(&self) -> Result<Verification, CoreError> {
        verify_chain(self.deps.audit_log.as_ref()).await
    }

    /// Deletes audit entries older than `days`, keeping the chain verifiable
    /// from the recorded anchor.
    pub async fn prune_audit(&self, days: u32) -> Result<u64, CoreError> {
        let cutoff = millis(self.now() - TimeDuration::days(i64::from(days)));
        self.deps.audit_log.prune_before(cutoff).await
    }
}

/// What `rotate-keys` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RotationReport {
    pub scanned: u64,
    pub reencrypted: u64,
}

impl AuthService {
    /// Re-encrypts every encrypted field not yet under the primary data key,
    /// `batch` users per transaction, in id order. Rows already rotated are
    /// skipped, so an interrupted run is resumed by running it again.
    pub async fn rotate_keys(
        &self,
        batch: u64,
        mut progress: impl FnMut(RotationReport) + Send,
    ) -> Result<RotationReport, CoreError> {
        let primary = self.cipher.primary_kid().to_owned();
        let mut report = RotationReport::default();
        let mut after = None;
        loop {
            let rows = self
                .deps
                .users
                .list_after(&UserFilter::default(), after, batch.max(1))
                .await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = Some(last.id);
            let mut changed = Vec::new();
            for r in &rows {
                report.scanned += 1;
                let stale = FieldCipher::key_id(&r.email_enc) != Some(primary.as_str())
                    || r.full_name_enc
                        .as_deref()
                        .is_some_and(|n| FieldCipher::key_id(n) != Some(primary.as_str()));
                if !stale {
                    continue;
                }
                let email = self.cipher.decrypt("email", &r.email_enc)?;
                let name = r
                    .full_name_enc
                    .as_deref()
                    .map(|n| self.cipher.decrypt("full_name", n))
                    .transpose()?;
                changed.push((
                    r.id,
                    self.cipher.encrypt("email", &email)?,
                    name.map(|n| self.cipher.encrypt("full_name", &n))
                        .transpose()?,
                ));
            }
            // TOTP secrets are encrypted the same way.
            for r in &rows {
                let state = self.deps.mfa.mfa_state(r.id).await?.unwrap_or_default();
                let stale = |v: &Option<String>| {
                    v.as_deref()
                        .is_some_and(|e| FieldCipher::key_id(e) != Some(primary.as_str()))
                };
                if stale(&state.secret_enc) || stale(&state.pending_enc) {
                    let reencrypt = |v: Option<String>| -> Result<Option<String>, CoreError> {
                        v.map(|e| {
                            let plain = self.cipher.decrypt("totp_secret", &e)?;
                            self.cipher.encrypt("totp_secret", &plain)
                        })
                        .transpose()
                    };
                    let secret = reencrypt(state.secret_enc)?;
                    let pending = reencrypt(state.pending_enc)?;
                    self.deps
                        .mfa
                        .set_totp_encrypted(r.id, secret.as_deref(), pending.as_deref())
                        .await?;
                    report.reencrypted += u64::from(!changed.iter().any(|(id, ..)| *id == r.id));
                }
            }
            if !changed.is_empty() {
                self.deps.users.set_encrypted(&changed).await?;
                for (id, ..) in &changed {
                    self.deps.cache.invalidate(*id).await;
                }
                report.reencrypted += changed.len() as u64;
            }
            progress(report);
        }
        Ok(report)
    }
}
