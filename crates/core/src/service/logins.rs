//! Logins: a session and its family of refresh tokens, the access tokens
//! issued under it, and their revocation. Shared by sign-in, the second
//! factor, the account's own session list and user administration.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::CoreError;
use crate::audit::RequestMeta;
use crate::auth::refresh;
use crate::auth::tokens::{Grant, TokenKeys, TokenType};
use crate::clock::unix_ms;
use crate::config::Config;
use crate::ports::{NewRefreshToken, NewSession, SessionRepo, TokenDenylist};
use crate::user::User;

/// Tokens handed to a client after login or refresh.
#[derive(Debug)]
pub struct TokenPair {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: SecretString,
    pub refresh_expires_in: u64,
}

/// An access token alone, of a login that goes on (re-authentication).
#[derive(Debug)]
pub struct AccessToken {
    pub access_token: String,
    pub expires_in: u64,
}

/// How long this instance trusts what it read of a login's stored state:
/// the bound on how stale a revocation can be seen when no faster signal
/// (the shared denylist) is available.
pub const SESSION_RECHECK: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct Logins {
    pub sessions: Arc<dyn SessionRepo>,
    pub denylist: Arc<dyn TokenDenylist>,
    pub keys: Arc<TokenKeys>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// Login id → (owner, revoked), as read from the store.
    states: moka::sync::Cache<Uuid, (Uuid, bool)>,
}

pub(super) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

impl Logins {
    pub fn new(
        config: &Config,
        sessions: Arc<dyn SessionRepo>,
        denylist: Arc<dyn TokenDenylist>,
    ) -> Result<Self, CoreError> {
        Ok(Self {
            sessions,
            denylist,
            keys: Arc::new(TokenKeys::from_config(&config.jwt)?),
            access_ttl: config.jwt.access_ttl,
            refresh_ttl: config.jwt.refresh_ttl,
            states: moka::sync::Cache::builder()
                .max_capacity(200_000)
                .time_to_live(SESSION_RECHECK)
                .build(),
        })
    }

    /// Whether login `session_id` of `user_id` is live: never revoked, by
    /// its stored state (the source of truth, durable across restarts and
    /// cache outages). `fresh` skips what this instance remembers.
    pub async fn is_live(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        fresh: bool,
    ) -> Result<bool, CoreError> {
        let known = if fresh {
            None
        } else {
            self.states.get(&session_id)
        };
        let (owner, revoked) = match known {
            Some(state) => state,
            None => match self.sessions.state(session_id).await? {
                Some(s) => {
                    self.states.insert(session_id, (s.user_id, s.revoked));
                    (s.user_id, s.revoked)
                }
                None => return Ok(false),
            },
        };
        Ok(owner == user_id && !revoked)
    }

    /// When a refresh token issued at `now` expires (Unix ms).
    pub(super) fn refresh_expiry(&self, now: OffsetDateTime) -> i64 {
        unix_ms(now) + secs(self.refresh_ttl) * 1000
    }

    /// Starts a login for `user`, who proved every factor at `now`: a new
    /// session, its first refresh token and an access token bound to it.
    pub async fn start(
        &self,
        user: &User,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> Result<TokenPair, CoreError> {
        let session_id = Uuid::now_v7();
        let expires_at = self.refresh_expiry(now);
        let issued = refresh::generate()?;
        self.sessions
            .start(
                &NewSession {
                    id: session_id,
                    user_id: user.id,
                    created_at: unix_ms(now),
                    expires_at,
                    auth_time: unix_ms(now),
                    ip: meta.ip.clone(),
                    user_agent: meta.user_agent.clone(),
                },
                &NewRefreshToken {
                    id: Uuid::now_v7(),
                    session_id,
                    digest: issued.digest,
                    created_at: unix_ms(now),
                    expires_at,
                },
            )
            .await?;
        self.pair(user, session_id, Some(now), issued.token, now)
    }

    /// An access token for `user` under login `session_id`, whose factors
    /// were last proved at `auth_time`.
    pub(super) fn access(
        &self,
        user: &User,
        session_id: Uuid,
        auth_time: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<AccessToken, CoreError> {
        let access = self.keys.issue(
            &Grant {
                token_type: TokenType::Access,
                user_id: user.id,
                role: user.role,
                auth_version: user.auth_version,
                session_id: Some(session_id),
                auth_time,
                ttl: self.access_ttl,
            },
            now,
        )?;
        Ok(AccessToken {
            access_token: access.token,
            expires_in: self.access_ttl.as_secs(),
        })
    }

    /// [`Self::access`] beside the login's new refresh token.
    pub(super) fn pair(
        &self,
        user: &User,
        session_id: Uuid,
        auth_time: Option<OffsetDateTime>,
        refresh_token: SecretString,
        now: OffsetDateTime,
    ) -> Result<TokenPair, CoreError> {
        let access = self.access(user, session_id, auth_time, now)?;
        Ok(TokenPair {
            access_token: access.access_token,
            expires_in: access.expires_in,
            refresh_token,
            refresh_expires_in: self.refresh_ttl.as_secs(),
        })
    }

    /// Revokes a login: its refresh tokens and the access tokens issued
    /// under it. The shared denylist is told first: when it cannot be (a
    /// cache outage), nothing is changed and the caller answers 503, since
    /// other instances could not learn of the revocation at once. Then the
    /// stored state, which every instance re-reads within
    /// [`SESSION_RECHECK`] and after any restart.
    pub async fn revoke(&self, session_id: Uuid, now: OffsetDateTime) -> Result<(), CoreError> {
        let until = now.unix_timestamp() + secs(self.access_ttl);
        self.denylist
            .deny(&format!("sid:{session_id}"), until)
            .await?;
        self.sessions.revoke(session_id, unix_ms(now)).await?;
        self.states.invalidate(&session_id);
        Ok(())
    }
}
