//! Operations: statistics and the audit trail (for holders of
//! `admin:read`), and the operator's jobs that run without a caller —
//! audit pruning on a schedule and data-key rotation from the command line.

use std::sync::Arc;

use serde::Serialize;
use time::Duration as TimeDuration;
use uuid::Uuid;

use super::kernel::Directory;
use super::principal::Principal;
use crate::CoreError;
use crate::audit::{AuditEntry, AuditQuery, AuditTrail, ChainPoint, Verification};
use crate::clock::unix_ms;
use crate::crypto::FieldCipher;
use crate::ports::{
    LoginThrottle, MfaRepo, Reencrypted, SessionRepo, TotpSecrets, UserFilter, UserRecord,
};
use crate::rbac::{Permission, Role};

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

/// The dashboard's hourly series over the last [`ACTIVITY_HOURS`] hours,
/// and the live sessions by role.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Activity {
    /// Oldest first; the last is the hour now under way.
    pub hours: Vec<HourCounts>,
    pub sessions_by_role: RoleCounts,
}

/// One hour of [`Activity`].
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct HourCounts {
    /// When the hour starts (Unix ms, on the hour in UTC).
    pub start: i64,
    pub logins_succeeded: u64,
    pub logins_failed: u64,
    /// `account_locked` entries.
    pub lockouts: u64,
}

/// How many hours the dashboard's series cover.
pub const ACTIVITY_HOURS: usize = 24;
const HOUR_MS: i64 = 3_600_000;

/// The start of the hour `at` (Unix ms) falls in.
fn hour_start(at: i64) -> i64 {
    at.div_euclid(HOUR_MS) * HOUR_MS
}

/// Sparse `(hour, count)` rows as `hours` counts, missing hours as zero;
/// rows outside the window are ignored.
fn dense(rows: &[(i64, u64)], hours: usize) -> Vec<u64> {
    let mut out = vec![0; hours];
    for (hour, n) in rows {
        if let Some(slot) = usize::try_from(*hour).ok().and_then(|h| out.get_mut(h)) {
            *slot += n;
        }
    }
    out
}

fn role_counts(pairs: &[(String, u64)]) -> RoleCounts {
    let mut by_role = RoleCounts::default();
    for (role, n) in pairs {
        match role.parse::<Role>() {
            Ok(Role::Admin) => by_role.admin = *n,
            Ok(Role::Moderator) => by_role.moderator = *n,
            Ok(Role::User) => by_role.user = *n,
            Ok(Role::Viewer) => by_role.viewer = *n,
            Err(()) => {}
        }
    }
    by_role
}

/// What `rotate-keys` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RotationReport {
    pub scanned: u64,
    pub reencrypted: u64,
}

/// Ports operations read besides the directory.
#[derive(Debug, Clone)]
pub struct OperationsDeps {
    pub directory: Directory,
    pub sessions: Arc<dyn SessionRepo>,
    pub audit: Arc<AuditTrail>,
    pub throttle: Arc<dyn LoginThrottle>,
    pub mfa: Arc<dyn MfaRepo>,
}

#[derive(Debug)]
pub struct Operations {
    deps: OperationsDeps,
}

impl Operations {
    pub fn new(deps: OperationsDeps) -> Self {
        Self { deps }
    }

    fn cipher(&self) -> &FieldCipher {
        &self.deps.directory.kernel.cipher
    }

    pub async fn stats(&self, principal: &Principal) -> Result<AdminStats, CoreError> {
        principal.require(Permission::AdminRead)?;
        let now = self.deps.directory.kernel.now();
        let stats = self.deps.directory.users.stats().await?;
        let by_role = role_counts(&stats.by_role);
        let day_ago = unix_ms(now - TimeDuration::hours(24));
        let log = self.deps.audit.repo();
        Ok(AdminStats {
            users: UserCounts {
                total: stats.total,
                active: stats.active,
                inactive: stats.total.saturating_sub(stats.active),
                by_role,
            },
            sessions: SessionCounts {
                active: self.deps.sessions.count_active(unix_ms(now)).await?,
            },
            logins_24h: LoginCounts {
                succeeded: log.count_since("login_succeeded", day_ago).await?,
                failed: log.count_since("login_failed", day_ago).await?,
            },
            locked_accounts: self.deps.throttle.locked_count(unix_ms(now)).await?,
        })
    }

    /// Logins succeeded and failed and lockouts per hour over the last
    /// [`ACTIVITY_HOURS`] hours (whole hours in UTC, the current one
    /// included), and the live sessions by role.
    pub async fn activity(&self, principal: &Principal) -> Result<Activity, CoreError> {
        principal.require(Permission::AdminRead)?;
        let now = unix_ms(self.deps.directory.kernel.now());
        let window = i64::try_from(ACTIVITY_HOURS).unwrap_or(24);
        let since = hour_start(now) - (window - 1) * HOUR_MS;
        let log = self.deps.audit.repo();
        let succeeded = dense(
            &log.count_per_hour("login_succeeded", since).await?,
            ACTIVITY_HOURS,
        );
        let failed = dense(
            &log.count_per_hour("login_failed", since).await?,
            ACTIVITY_HOURS,
        );
        let locked = dense(
            &log.count_per_hour("account_locked", since).await?,
            ACTIVITY_HOURS,
        );
        let hours = (0..ACTIVITY_HOURS)
            .zip(succeeded.into_iter().zip(failed).zip(locked))
            .map(|(i, ((ok, bad), lock))| HourCounts {
                start: since + i64::try_from(i).unwrap_or(0) * HOUR_MS,
                logins_succeeded: ok,
                logins_failed: bad,
                lockouts: lock,
            })
            .collect();
        let by_role = self.deps.sessions.count_active_by_role(now).await?;
        Ok(Activity {
            hours,
            sessions_by_role: role_counts(&by_role),
        })
    }

    /// A page of the audit trail, newest first, with the cursor of the next.
    pub async fn audit_page(
        &self,
        principal: &Principal,
        query: &AuditQuery,
    ) -> Result<(Vec<AuditEntry>, Option<i64>), CoreError> {
        principal.require(Permission::AdminRead)?;
        let mut q = query.clone();
        q.limit = query.limit + 1;
        let mut entries = self.deps.audit.repo().page(&q).await?;
        let has_more = entries.len() as u64 > query.limit;
        entries.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        let next = if has_more {
            entries.last().map(|e| e.seq)
        } else {
            None
        };
        Ok((entries, next))
    }

    /// Verifies the whole chain: its links and seals, that it still holds
    /// the highest entry this instance wrote or saw, and `claimed_head`
    /// (an `audit_checkpoint` kept outside the database) when given.
    pub async fn verify_audit(
        &self,
        principal: &Principal,
        claimed_head: Option<ChainPoint>,
    ) -> Result<Verification, CoreError> {
        principal.require(Permission::AdminRead)?;
        self.deps.audit.verify(claimed_head).await
    }

    /// Logs the chain's head as an `audit_checkpoint` (`reason`: `startup`,
    /// `shutdown`), so a copy lives outside the database. A job of the
    /// process itself: no caller to check.
    pub async fn audit_checkpoint(
        &self,
        reason: &'static str,
    ) -> Result<Option<ChainPoint>, CoreError> {
        self.deps.audit.checkpoint(reason).await
    }

    /// Deletes audit entries older than `days`, keeping the chain verifiable
    /// from the recorded anchor. A scheduled job: no caller to check.
    pub async fn prune_audit(&self, days: u32) -> Result<u64, CoreError> {
        let now = self.deps.directory.kernel.now();
        let cutoff = unix_ms(now - TimeDuration::days(i64::from(days)));
        self.deps.audit.prune_before(cutoff).await
    }

    /// Re-encrypts every encrypted field not yet under the primary data key,
    /// `batch` users per transaction, in id order. Rows already rotated are
    /// skipped, so an interrupted run is resumed by running it again. Run
    /// by the operator (`gatehouse rotate-keys`), who holds the keys.
    pub async fn rotate_keys(
        &self,
        batch: u64,
        mut progress: impl FnMut(RotationReport) + Send,
    ) -> Result<RotationReport, CoreError> {
        let mut report = RotationReport::default();
        let mut after = None;
        loop {
            let rows = self
                .deps
                .directory
                .users
                .list_after(&UserFilter::default(), after, batch.max(1))
                .await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = Some(last.id);
            report.scanned += rows.len() as u64;
            // Each write applies only to values unchanged since read: a
            // concurrent email change or 2FA switch wins, and is already
            // under the primary key (a later run finds nothing left).
            let changed = self.reencrypt_users(&rows)?;
            for r in &rows {
                if self.rotate_totp(r.id).await? {
                    report.reencrypted += u64::from(!changed.iter().any(|c| c.id == r.id));
                }
            }
            if !changed.is_empty() {
                report.reencrypted += self.deps.directory.users.set_encrypted(&changed).await?;
                for c in &changed {
                    self.deps.directory.invalidate(c.id).await;
                }
            }
            progress(report);
        }
        Ok(report)
    }

    fn is_stale(&self, stored: Option<&str>) -> bool {
        stored.is_some_and(|v| FieldCipher::key_id(v) != Some(self.cipher().primary_kid()))
    }

    /// The rows' email and name under the primary key, for rows not yet so.
    fn reencrypt_users(&self, rows: &[UserRecord]) -> Result<Vec<Reencrypted>, CoreError> {
        let cipher = self.cipher();
        let mut changed = Vec::new();
        for r in rows {
            if !self.is_stale(Some(&r.email_enc)) && !self.is_stale(r.full_name_enc.as_deref()) {
                continue;
            }
            let email = cipher.decrypt("email", &r.email_enc)?;
            let name = r
                .full_name_enc
                .as_deref()
                .map(|n| cipher.decrypt("full_name", n))
                .transpose()?;
            changed.push(Reencrypted {
                id: r.id,
                old_email: r.email_enc.clone(),
                old_name: r.full_name_enc.clone(),
                email: cipher.encrypt("email", &email)?,
                name: name.map(|n| cipher.encrypt("full_name", &n)).transpose()?,
            });
        }
        Ok(changed)
    }

    /// Re-encrypts a user's TOTP secrets (active and pending) if stale;
    /// answers whether anything was rewritten.
    async fn rotate_totp(&self, user_id: Uuid) -> Result<bool, CoreError> {
        let state = self.deps.mfa.mfa_state(user_id).await?.unwrap_or_default();
        if !self.is_stale(state.secret_enc.as_deref())
            && !self.is_stale(state.pending_enc.as_deref())
        {
            return Ok(false);
        }
        let cipher = self.cipher();
        let reencrypt = |v: Option<String>| -> Result<Option<String>, CoreError> {
            v.map(|e| {
                let plain = cipher.decrypt("totp_secret", &e)?;
                cipher.encrypt("totp_secret", &plain)
            })
            .transpose()
        };
        let secret = reencrypt(state.secret_enc.clone())?;
        let pending = reencrypt(state.pending_enc.clone())?;
        let old = TotpSecrets {
            secret: state.secret_enc.as_deref(),
            pending: state.pending_enc.as_deref(),
        };
        let new = TotpSecrets {
            secret: secret.as_deref(),
            pending: pending.as_deref(),
        };
        self.deps.mfa.set_totp_encrypted(user_id, old, new).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_start_on_the_hour() {
        assert_eq!(hour_start(0), 0);
        assert_eq!(hour_start(HOUR_MS - 1), 0);
        assert_eq!(hour_start(5 * HOUR_MS + 17), 5 * HOUR_MS);
        assert_eq!(hour_start(-1), -HOUR_MS);
    }

    #[test]
    fn sparse_hours_become_a_dense_series() {
        let rows = [(0, 2), (3, 5), (23, 1), (24, 9), (-1, 4)];
        let series = dense(&rows, ACTIVITY_HOURS);
        assert_eq!(series.len(), 24);
        assert_eq!(series[0], 2);
        assert_eq!(series[3], 5);
        assert_eq!(series[23], 1);
        assert_eq!(
            series.iter().sum::<u64>(),
            8,
            "out-of-window rows are ignored"
        );
        assert_eq!(dense(&[], 3), vec![0, 0, 0]);
    }

    #[test]
    fn roles_are_counted_by_name() {
        let counts = role_counts(&[
            ("admin".into(), 1),
            ("viewer".into(), 3),
            ("unknown".into(), 7),
        ]);
        assert_eq!(
            counts,
            RoleCounts {
                admin: 1,
                moderator: 0,
                user: 0,
                viewer: 3,
            }
        );
    }
}
