//! API keys: created and managed by a logged-in user, shown once, stored as
//! a digest, scoped to a subset of the owner's permissions. A request with
//! `X-API-Key` acts as the owner, limited to the key's scopes.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

use super::kernel::Directory;
use super::mail::Postman;
use super::principal::Principal;
use crate::CoreError;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::clock::{from_unix_ms, unix_ms};
use crate::mail::Message;
use crate::ports::{ApiKeyRecord, ApiKeyRepo};
use crate::rbac::Permission;
use crate::user::FieldProblem;

/// How often `last_used_at` is written and `api_key_used` recorded per key:
/// uses are rolled up per minute instead of a write per request.
const USE_RECORD_INTERVAL_MS: i64 = 60_000;
const KEY_PREFIX: &str = "gh_";

#[derive(Debug)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Option<Vec<String>>,
    pub expires_in_days: Option<u32>,
}

/// A key as its owner sees it (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
}

fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn random_chars(n: usize) -> Result<String, CoreError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut raw = vec![0u8; n];
    getrandom::fill(&mut raw).map_err(|e| CoreError::internal(e.to_string()))?;
    // 248 is the largest multiple of 62 below 256; rejection keeps it uniform.
    let mut out = String::with_capacity(n);
    let mut i = 0;
    while out.len() < n {
        if i == raw.len() {
            getrandom::fill(&mut raw).map_err(|e| CoreError::internal(e.to_string()))?;
            i = 0;
        }
        let b = raw[i];
        i += 1;
        if b < 248 {
            out.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
        }
    }
    Ok(out)
}

/// `gh_<8 id chars>_<40 secret chars>` and its visible prefix (`gh_<8>`).
fn new_key() -> Result<(SecretString, String), CoreError> {
    let prefix = format!("{KEY_PREFIX}{}", random_chars(8)?);
    let key = format!("{prefix}_{}", random_chars(40)?);
    Ok((key.into(), prefix))
}

fn permission_named(name: &str) -> Option<Permission> {
    crate::rbac::Role::Admin
        .permissions()
        .iter()
        .copied()
        .find(|p| p.as_str() == name)
}

/// The requested scopes, each one of the owner's permissions; none asked
/// for means all of them.
fn scopes_within(
    role_perms: &[Permission],
    requested: Option<&[String]>,
    problems: &mut Vec<FieldProblem>,
) -> Vec<Permission> {
    let Some(list) = requested else {
        return role_perms.to_vec();
    };
    let mut out = Vec::new();
    for s in list {
        match permission_named(s) {
            Some(p) if role_perms.contains(&p) => {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
            Some(_) => problems.push(FieldProblem::new(
                "scopes",
                "must be a subset of your own permissions",
            )),
            None => problems.push(FieldProblem::new(
                "scopes",
                "contains an unknown permission",
            )),
        }
    }
    out
}

pub(super) fn view(r: &ApiKeyRecord) -> ApiKeyView {
    ApiKeyView {
        id: r.id,
        name: r.name.clone(),
        prefix: r.prefix.clone(),
        scopes: r.scopes.split_whitespace().map(str::to_owned).collect(),
        created_at: from_unix_ms(r.created_at),
        expires_at: r.expires_at.map(from_unix_ms),
        last_used_at: r.last_used_at.map(from_unix_ms),
    }
}

/// The caller's API keys, and authentication by one.
#[derive(Debug)]
pub struct ApiKeys {
    repo: Arc<dyn ApiKeyRepo>,
    directory: Directory,
    postman: Postman,
}

/// Managing keys takes `self:write` and a person's login, never a key.
fn check(principal: &Principal) -> Result<(), CoreError> {
    principal.require(Permission::SelfWrite)?;
    principal.require_login()
}

impl ApiKeys {
    pub fn new(repo: Arc<dyn ApiKeyRepo>, directory: Directory, postman: Postman) -> Self {
        Self {
            repo,
            directory,
            postman,
        }
    }

    fn now(&self) -> OffsetDateTime {
        self.directory.kernel.now()
    }

    async fn audit(&self, event: AuditEvent) {
        self.directory.kernel.audit(event).await;
    }

    pub async fn create(
        &self,
        principal: &Principal,
        input: NewApiKey,
        meta: &RequestMeta,
    ) -> Result<(ApiKeyView, SecretString), CoreError> {
        check(principal)?;
        // A new key is a new credential: it takes a recently proved factor.
        self.directory.kernel.require_recent_auth(principal)?;
        let mut problems = Vec::new();
        let name = input.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            problems.push(FieldProblem::new(
                "name",
                "must be 1 to 100 printable characters",
            ));
        }
        let scopes = scopes_within(
            principal.user.role.permissions(),
            input.scopes.as_deref(),
            &mut problems,
        );
        if input.expires_in_days.is_some_and(|d| d == 0 || d > 3650) {
            problems.push(FieldProblem::new(
                "expires_in_days",
                "must be from 1 to 3650",
            ));
        }
        if !problems.is_empty() {
            return Err(CoreError::Validation(problems));
        }
        let now = self.now();
        let (key, prefix) = new_key()?;
        let record = ApiKeyRecord {
            id: Uuid::now_v7(),
            user_id: principal.id(),
            name: name.to_owned(),
            prefix,
            key_hash: digest(key.expose_secret()),
            scopes: scopes
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            created_at: unix_ms(now),
            expires_at: input
                .expires_in_days
                .map(|d| unix_ms(now + time::Duration::days(i64::from(d)))),
            last_used_at: None,
            revoked_at: None,
        };
        self.repo.create_key(&record).await?;
        self.audit(
            AuditEvent::new(EventKind::ApiKeyCreated, Outcome::Success, meta)
                .actor(principal.id())
                .target(principal.id())
                .details(
                    json!({"key_id": record.id, "prefix": record.prefix, "scopes": record.scopes}),
                ),
        )
        .await;
        // Queued right after: the key port has no transaction to share.
        let notice = Message::ApiKeyCreated {
            name: record.name.clone(),
            prefix: record.prefix.clone(),
        };
        self.postman.send_notice(&principal.user, notice).await;
        Ok((view(&record), key))
    }

    pub async fn list(&self, principal: &Principal) -> Result<Vec<ApiKeyView>, CoreError> {
        check(principal)?;
        Ok(self
            .repo
            .keys_of(principal.id())
            .await?
            .iter()
            .map(view)
            .collect())
    }

    /// A new secret for the same key id; the old one stops working at once.
    pub async fn rotate(
        &self,
        principal: &Principal,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(ApiKeyView, SecretString), CoreError> {
        check(principal)?;
        self.directory.kernel.require_recent_auth(principal)?;
        let (key, prefix) = new_key()?;
        if !self
            .repo
            .rotate_key(id, principal.id(), &prefix, &digest(key.expose_secret()))
            .await?
        {
            return Err(CoreError::NotFound);
        }
        let record = self
            .repo
            .key_by_prefix(&prefix)
            .await?
            .ok_or(CoreError::NotFound)?;
        self.audit(
            AuditEvent::new(EventKind::ApiKeyRotated, Outcome::Success, meta)
                .actor(principal.id())
                .target(principal.id())
                .details(json!({"key_id": id, "prefix": prefix})),
        )
        .await;
        Ok((view(&record), key))
    }

    pub async fn revoke(
        &self,
        principal: &Principal,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        check(principal)?;
        if !self
            .repo
            .revoke_key(id, principal.id(), self.directory.kernel.now_ms())
            .await?
        {
            return Err(CoreError::NotFound);
        }
        self.audit(
            AuditEvent::new(EventKind::ApiKeyRevoked, Outcome::Success, meta)
                .actor(principal.id())
                .target(principal.id())
                .details(json!({"key_id": id})),
        )
        .await;
        Ok(())
    }

    /// Authenticates an `X-API-Key`. Unknown, wrong, revoked and expired
    /// keys all fail alike.
    pub async fn authenticate(
        &self,
        key: &str,
        meta: &RequestMeta,
    ) -> Result<Principal, CoreError> {
        let prefix = key
            .rsplit_once('_')
            .map(|(p, _)| p)
            .filter(|p| p.starts_with(KEY_PREFIX) && p.len() == KEY_PREFIX.len() + 8)
            .ok_or(CoreError::InvalidToken)?;
        let record = self
            .repo
            .key_by_prefix(prefix)
            .await?
            .ok_or(CoreError::InvalidToken)?;
        // Constant-time: the comparison does not reveal how much matched.
        let matches: bool = digest(key)
            .as_bytes()
            .ct_eq(record.key_hash.as_bytes())
            .into();
        let now = self.directory.kernel.now_ms();
        if !matches || record.revoked_at.is_some() || record.expires_at.is_some_and(|e| e <= now) {
            return Err(CoreError::InvalidToken);
        }
        let user = self
            .directory
            .current(record.user_id)
            .await?
            .filter(|u| u.is_active)
            .ok_or(CoreError::InvalidToken)?;
        let scopes: Arc<[Permission]> = record
            .scopes
            .split_whitespace()
            .filter_map(permission_named)
            .collect();
        if record
            .last_used_at
            .is_none_or(|t| now - t >= USE_RECORD_INTERVAL_MS)
        {
            self.repo.touch_key(record.id, now).await?;
            self.audit(
                AuditEvent::new(EventKind::ApiKeyUsed, Outcome::Success, meta)
                    .actor(user.id)
                    .details(json!({"key_id": record.id, "prefix": record.prefix})),
            )
            .await;
        }
        Ok(Principal {
            user,
            jti: String::new(),
            expires_at: 0,
            session_id: None,
            auth_time: None,
            api_key: Some((record.id, scopes)),
        })
    }
}
