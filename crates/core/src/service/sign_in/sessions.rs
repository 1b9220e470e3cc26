//! The life of a login after sign-in: refresh (rotation with reuse
//! detection), logout, and the check of every access token against the
//! user's current state and the login's stored state.

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::SignIn;
use crate::CoreError;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::auth::refresh;
use crate::auth::tokens::TokenType;
use crate::clock::{from_unix_ms, unix_ms};
use crate::ports::{NextRefreshToken, RefreshLookup};
use crate::service::logins::TokenPair;
use crate::service::principal::Principal;

impl SignIn {
    /// Exchanges a refresh token for a new pair. A token already exchanged
    /// means it was copied: the whole login is revoked (RFC 9700 §4.14.2).
    pub async fn refresh(&self, token: &str, meta: &RequestMeta) -> Result<TokenPair, CoreError> {
        let now = self.now();
        let logins = &self.deps.logins;
        let digest = refresh::digest(token);
        let issued = refresh::generate()?;
        let next = NextRefreshToken {
            id: Uuid::now_v7(),
            digest: issued.digest,
            created_at: unix_ms(now),
            expires_at: logins.refresh_expiry(now),
        };
        // One transaction spends the token if it may be spent; only a
        // refusal looks further, to tell a copied token from a dead one.
        let Some(spent) = logins.sessions.spend(&digest, &next, unix_ms(now)).await? else {
            let lookup = logins
                .sessions
                .find_refresh(&digest)
                .await?
                .ok_or(CoreError::InvalidRefreshToken)?;
            if lookup.used_at.is_some() {
                return Err(self.reuse_detected(&lookup, meta, now).await);
            }
            return Err(CoreError::InvalidRefreshToken);
        };
        let user = match self.deps.directory.current(spent.user_id).await? {
            Some(u) if u.is_active => u,
            _ => {
                // The token just stored dies with its login.
                logins.revoke(spent.session_id, now).await?;
                return Err(CoreError::InvalidRefreshToken);
            }
        };
        self.audit(
            AuditEvent::new(EventKind::TokenRefreshed, Outcome::Success, meta)
                .actor(user.id)
                .target(user.id)
                .details(json!({"session_id": spent.session_id})),
        )
        .await;
        // A refresh proves no factor: the login's own `auth_time` carries on.
        let auth_time = spent.auth_time.map(from_unix_ms);
        logins.pair(&user, spent.session_id, auth_time, issued.token, now)
    }

    async fn reuse_detected(
        &self,
        lookup: &RefreshLookup,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> CoreError {
        if let Err(e) = self.deps.logins.revoke(lookup.session_id, now).await {
            return e;
        }
        tracing::warn!(
            target: "gatehouse::security",
            user_id = %lookup.user_id,
            session_id = %lookup.session_id,
            "refresh token reused: session revoked"
        );
        self.audit(
            AuditEvent::new(EventKind::RefreshTokenReused, Outcome::Failure, meta)
                .target(lookup.user_id)
                .details(json!({"session_id": lookup.session_id})),
        )
        .await;
        CoreError::InvalidRefreshToken
    }

    /// Ends a login: revokes the refresh token's session and denies the
    /// presented access token until it expires. Idempotent.
    pub async fn logout(
        &self,
        refresh_token: Option<&str>,
        access_token: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        let now = self.now();
        let logins = &self.deps.logins;
        let mut actor = None;
        if let Some(token) = refresh_token
            && let Some(lookup) = logins
                .sessions
                .find_refresh(&refresh::digest(token))
                .await?
        {
            logins.revoke(lookup.session_id, now).await?;
            actor = Some(lookup.user_id);
        }
        // A Bearer token alone ends its whole login, refresh tokens included.
        if let Some(token) = access_token
            && let Ok(claims) = logins.keys.verify(token, TokenType::Access, now)
        {
            match claims.sid.as_deref().and_then(|s| s.parse::<Uuid>().ok()) {
                Some(sid) => logins.revoke(sid, now).await?,
                None => logins.denylist.deny(&claims.jti, claims.exp).await?,
            }
            actor = actor.or_else(|| claims.sub.parse().ok());
        }
        let mut event = AuditEvent::new(EventKind::Logout, Outcome::Success, meta);
        if let Some(id) = actor {
            event = event.actor(id).target(id);
        }
        self.audit(event).await;
        Ok(())
    }

    /// Verifies an access token and checks it against the user's current
    /// state: deleted, deactivated, credentials changed, logged out or
    /// session revoked all refuse it on the next request.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, CoreError> {
        let claims = self
            .deps
            .logins
            .keys
            .verify(token, TokenType::Access, self.now())
            .map_err(|_| CoreError::InvalidToken)?;
        let user_id: Uuid = claims.sub.parse().map_err(|_| CoreError::InvalidToken)?;
        // Every access token belongs to a login, checked on every request.
        let session_id = claims
            .sid
            .as_deref()
            .and_then(|s| s.parse::<Uuid>().ok())
            .ok_or(CoreError::InvalidToken)?;
        let logins = &self.deps.logins;
        let sid_key = format!("sid:{session_id}");
        // The shared denylist answers first; when it cannot, the stored
        // state is read directly rather than trusting what was cached.
        let fresh = match logins.denylist.any_denied(&[&claims.jti, &sid_key]).await {
            Ok(true) => return Err(CoreError::InvalidToken),
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(error = %e, "denylist unavailable; login checked in the store");
                true
            }
        };
        if !logins.is_live(session_id, user_id, fresh).await? {
            return Err(CoreError::InvalidToken);
        }
        let user = self
            .deps
            .directory
            .current(user_id)
            .await?
            .ok_or(CoreError::InvalidToken)?;
        if !user.is_active || user.auth_version != claims.ver {
            return Err(CoreError::InvalidToken);
        }
        Ok(Principal {
            user,
            jti: claims.jti.clone(),
            expires_at: claims.exp,
            session_id: Some(session_id),
            auth_time: claims
                .auth_time
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
            api_key: None,
        })
    }
}
