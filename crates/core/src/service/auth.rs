//! Authentication use cases: register, login, refresh (rotation with reuse
//! detection), logout, and the per-request current-state check.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::CoreError;
use crate::audit::{AuditEvent, AuditSink, EventKind, Outcome, RequestMeta};
use crate::auth::password::{self, PasswordHasher};
use crate::auth::refresh;
use crate::auth::tokens::{TokenKeys, TokenType};
use crate::clock::Clock;
use crate::config::{Config, LockoutConfig};
use crate::crypto::{BlindIndex, FieldCipher};
use crate::ports::{
    LoginThrottle, NewRefreshToken, NewSession, NewUser, Rotation, SessionRepo, TokenDenylist,
    UserCache, UserRecord, UserRepo,
};
use crate::rbac::{Permission, Role};
use crate::user::{Email, FieldProblem, FullName, User, Username, mask_email};

/// Ports the authentication service drives.
#[derive(Debug, Clone)]
pub struct AuthDeps {
    pub users: Arc<dyn UserRepo>,
    pub sessions: Arc<dyn SessionRepo>,
    pub denylist: Arc<dyn TokenDenylist>,
    pub throttle: Arc<dyn LoginThrottle>,
    pub cache: Arc<dyn UserCache>,
    pub audit: Arc<dyn AuditSink>,
    /// The stored trail (read side: pages, verification, stats).
    pub audit_log: Arc<dyn crate::audit::AuditRepo>,
    pub mfa: Arc<dyn crate::ports::MfaRepo>,
    pub api_keys: Arc<dyn crate::ports::ApiKeyRepo>,
    /// Files and their contents, removed with their owner.
    pub files: Arc<dyn crate::ports::FileRepo>,
    pub blobs: Arc<dyn crate::ports::BlobStore>,
    pub clock: Arc<dyn Clock>,
}

/// A registration request, not yet validated.
#[derive(Debug)]
pub struct Registration {
    pub username: String,
    pub email: String,
    pub password: SecretString,
    pub full_name: Option<String>,
}

/// How a login names the account.
#[derive(Debug, Clone)]
pub enum LoginId {
    Email(String),
    /// The OAuth2 password grant's `username`: an email or a username.
    EmailOrUsername(String),
}

/// What a correct password leads to.
#[derive(Debug)]
pub enum LoginOutcome {
    Tokens(TokenPair, User),
    /// 2FA is on: the second step (`/login/mfa`) needs this token.
    MfaRequired {
        mfa_token: String,
        expires_in: u64,
    },
}

/// Lifetime of the token between the two login steps.
pub(super) const MFA_TOKEN_TTL: Duration = Duration::from_secs(300);

/// Tokens handed to a client after login or refresh.
#[derive(Debug)]
pub struct TokenPair {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: SecretString,
    pub refresh_expires_in: u64,
}

/// The authenticated caller, in its *current* state.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Arc<User>,
    pub jti: String,
    /// Access token expiry (Unix seconds).
    pub expires_at: i64,
    pub session_id: Option<Uuid>,
    /// Set when authenticated by an API key: the key and its scopes, which
    /// narrow the role's permissions.
    pub api_key: Option<(Uuid, Arc<[Permission]>)>,
}

impl Principal {
    pub fn id(&self) -> Uuid {
        self.user.id
    }

    /// Permissions come from the user's current role, not the token's, and
    /// an API key's scopes narrow them further.
    pub fn require(&self, permission: Permission) -> Result<(), CoreError> {
        let scoped = self
            .api_key
            .as_ref()
            .is_none_or(|(_, scopes)| scopes.contains(&permission));
        if self.user.role.has(permission) && scoped {
            Ok(())
        } else {
            Err(CoreError::Forbidden)
        }
    }

    /// Account-management actions (keys, 2FA) need a person's login, not
    /// an API key.
    pub fn require_login(&self) -> Result<(), CoreError> {
        if self.api_key.is_some() {
            Err(CoreError::Forbidden)
        } else {
            Ok(())
        }
    }
}

#[derive(Debug)]
pub struct AuthService {
    pub(super) deps: AuthDeps,
    pub(super) hasher: PasswordHasher,
    pub(super) keys: TokenKeys,
    pub(super) cipher: FieldCipher,
    pub(super) blind: BlindIndex,
    pub(super) access_ttl: Duration,
    refresh_ttl: Duration,
    pub(super) lockout: LockoutConfig,
    require_verified_email: bool,
}

/// Decrypts a stored row into the domain user.
pub(super) fn record_to_user(cipher: &FieldCipher, r: &UserRecord) -> Result<User, CoreError> {
    Ok(User {
        id: r.id,
        username: r.username.clone(),
        email: cipher.decrypt("email", &r.email_enc)?,
        email_verified: r.email_verified,
        full_name: r
            .full_name_enc
            .as_deref()
            .map(|v| cipher.decrypt("full_name", v))
            .transpose()?,
        role: r
            .role
            .parse::<Role>()
            .map_err(|()| CoreError::internal(format!("stored role `{}` is unknown", r.role)))?,
        is_active: r.is_active,
        mfa_enabled: r.mfa_enabled,
        created_at: from_millis(r.created_at),
        updated_at: from_millis(r.updated_at),
        auth_version: r.auth_version,
    })
}

pub(super) fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(super) fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

impl AuthService {
    pub fn new(config: &Config, deps: AuthDeps) -> Result<Self, CoreError> {
        let keys = config
            .data_keys
            .as_ref()
            .ok_or_else(|| CoreError::internal("DATA_ENCRYPTION_KEYS are not configured"))?;
        let blind = config
            .blind_index_key
            .as_ref()
            .ok_or_else(|| CoreError::internal("BLIND_INDEX_KEY is not configured"))?;
        Ok(Self {
            hasher: PasswordHasher::new(&config.argon2)?,
            keys: TokenKeys::from_config(&config.jwt)?,
            cipher: FieldCipher::new(keys.clone()),
            blind: BlindIndex::new(blind.clone()),
            access_ttl: config.jwt.access_ttl,
            refresh_ttl: config.jwt.refresh_ttl,
            lockout: config.lockout,
            require_verified_email: config.require_verified_email,
            deps,
        })
    }

    pub fn token_keys(&self) -> &TokenKeys {
        &self.keys
    }

    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    pub(super) fn now(&self) -> OffsetDateTime {
        self.deps.clock.now()
    }

    pub(super) async fn audit(&self, event: AuditEvent) {
        self.deps.audit.record(event).await;
    }

    /// Decrypts a stored row into the domain user.
    pub fn to_user(&self, r: &UserRecord) -> Result<User, CoreError> {
        record_to_user(&self.cipher, r)
    }

    /// Validates and stores a new account with `role`. Duplicates fail with
    /// [`CoreError::RegistrationFailed`] after the same work as a success,
    /// so neither the answer nor its timing tells whether an account exists.
    pub(super) async fn create_account(
        &self,
        input: Registration,
        role: Role,
    ) -> Result<User, CoreError> {
        let mut problems = Vec::new();
        let username = Username::parse(&input.username)
            .map_err(|p| problems.push(p))
            .ok();
        let email = Email::parse(&input.email)
            .map_err(|p| problems.push(p))
            .ok();
        let full_name = match input.full_name.as_deref().map(FullName::parse).transpose() {
            Ok(name) => name.flatten(),
            Err(p) => {
                problems.push(p);
                None
            }
        };
        let (Some(username), Some(email)) = (username, email) else {
            return Err(CoreError::Validation(problems));
        };
        if !problems.is_empty() {
            return Err(CoreError::Validation(problems));
        }
        password::check_policy(input.password.expose_secret())
            .map_err(|w| CoreError::WeakPassword(w.0))?;

        let password_hash = self.hasher.hash(&input.password).await?;
        let now = millis(self.now());
        let record = UserRecord {
            id: Uuid::now_v7(),
            username: username.as_str().to_owned(),
            email_enc: self.cipher.encrypt("email", email.as_str())?,
            full_name_enc: full_name
                .as_ref()
                .map(|n| self.cipher.encrypt("full_name", n.as_str()))
                .transpose()?,
            password_hash,
            role: role.as_str().to_owned(),
            is_active: true,
            email_verified: false,
            mfa_enabled: false,
            auth_version: 0,
            created_at: now,
            updated_at: now,
        };
        let new = NewUser {
            username_key: username.key(),
            email_index: self.blind.of("email", email.as_str()),
            record,
        };
        match self.deps.users.create(&new).await {
            Ok(()) => {
                // A new user changes the lists.
                self.deps.cache.invalidate(new.record.id).await;
                self.to_user(&new.record)
            }
            Err(CoreError::Conflict) => Err(CoreError::RegistrationFailed),
            Err(e) => Err(e),
        }
    }

    /// Self-service registration: always role `user`.
    pub async fn register(
        &self,
        input: Registration,
        meta: &RequestMeta,
    ) -> Result<User, CoreError> {
        let masked = mask_email(input.email.trim());
        match self.create_account(input, Role::User).await {
            Ok(user) => {
                self.audit(
                    AuditEvent::new(EventKind::UserRegistered, Outcome::Success, meta)
                        .actor(user.id)
                        .target(user.id)
                        .details(json!({"email": masked, "username": user.username})),
                )
                .await;
                Ok(user)
            }
            Err(CoreError::RegistrationFailed) => {
                self.audit(
                    AuditEvent::new(EventKind::UserRegistered, Outcome::Failure, meta)
                        .details(json!({"email": masked, "reason": "duplicate"})),
                )
                .await;
                Err(CoreError::RegistrationFailed)
            }
            Err(e) => Err(e),
        }
    }

    /// Operator bootstrap (`gatehouse create-admin`).
    pub async fn create_admin(&self, input: Registration) -> Result<User, CoreError> {
        let user = self.create_account(input, Role::Admin).await?;
        self.audit(
            AuditEvent::new(
                EventKind::UserCreated,
                Outcome::Success,
                &RequestMeta::default(),
            )
            .target(user.id)
            .details(json!({"role": "admin", "via": "create-admin"})),
        )
        .await;
        Ok(user)
    }

    /// Finds the account a login names, and the key its failures count under.
    async fn resolve_login(
        &self,
        id: &LoginId,
    ) -> Result<(Option<UserRecord>, String, String), CoreError> {
        let raw = match id {
            LoginId::Email(s) | LoginId::EmailOrUsername(s) => s.trim(),
        };
        let is_email = matches!(id, LoginId::Email(_)) || raw.contains('@');
        if is_email {
            let email = raw.to_lowercase();
            let index = self.blind.of("email", &email);
            let record = self.deps.users.by_email_index(&index).await?;
            Ok((record, format!("email:{index}"), mask_email(&email)))
        } else {
            let key = raw.to_ascii_lowercase();
            let record = self.deps.users.by_username_key(&key).await?;
            // Failures count per account when it exists, so switching between
            // username and email does not reset the count.
            let throttle_key = match &record {
                Some(r) => {
                    let email = self.cipher.decrypt("email", &r.email_enc)?;
                    format!("email:{}", self.blind.of("email", &email))
                }
                None => format!("username:{}", self.blind.of("username", &key)),
            };
            Ok((record, throttle_key, format!("username:{key}")))
        }
    }

    pub async fn login(
        &self,
        id: LoginId,
        password: &SecretString,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, CoreError> {
        let now = self.now();
        let (record, throttle_key, who) = self.resolve_login(&id).await?;
        if let Some(retry_after) = self
            .deps
            .throttle
            .locked_for(&throttle_key, millis(now))
            .await?
        {
            self.audit(
                AuditEvent::new(EventKind::LoginFailed, Outcome::Failure, meta)
                    .details(json!({"account": who, "reason": "locked"})),
            )
            .await;
            return Err(CoreError::AccountLocked { retry_after });
        }

        // Always verify, against a dummy hash when the account is unknown:
        // same work, same time, same answer (OWASP ASVS 2.2.x / 3.x).
        let matched = self
            .hasher
            .verify(password, record.as_ref().map(|r| r.password_hash.as_str()))
            .await?;
        let record = match record {
            Some(r) if matched && r.is_active => r,
            other => {
                let reason = match &other {
                    None => "unknown_account",
                    Some(r) if !r.is_active && matched => "inactive",
                    Some(_) => "wrong_password",
                };
                let mut failure = AuditEvent::new(EventKind::LoginFailed, Outcome::Failure, meta)
                    .details(json!({"account": who, "reason": reason}));
                if let Some(r) = &other {
                    failure = failure.target(r.id);
                }
                self.audit(failure).await;
                if let Some(lock) = self
                    .deps
                    .throttle
                    .record_failure(&throttle_key, millis(now), self.lockout)
                    .await?
                {
                    let mut locked =
                        AuditEvent::new(EventKind::AccountLocked, Outcome::Failure, meta)
                            .details(json!({"account": who, "lock_seconds": lock.as_secs()}));
                    if let Some(r) = &other {
                        locked = locked.target(r.id);
                    }
                    self.audit(locked).await;
                }
                return Err(CoreError::InvalidCredentials);
            }
        };
        if self.require_verified_email && !record.email_verified {
            return Err(CoreError::EmailNotVerified);
        }
        self.deps.throttle.reset(&throttle_key).await?;

        if self.hasher.needs_rehash(&record.password_hash) {
            // Best effort: a failed upgrade must not fail a correct login.
            match self.hasher.hash(password).await {
                Ok(hash) => {
                    if let Err(e) = self
                        .deps
                        .users
                        .set_password_hash(record.id, &hash, millis(now))
                        .await
                    {
                        tracing::warn!(user_id = %record.id, error = %e, "password re-hash not stored");
                    }
                }
                Err(e) => {
                    tracing::warn!(user_id = %record.id, error = %e, "password re-hash failed")
                }
            }
        }

        let user = self.to_user(&record)?;
        if user.mfa_enabled {
            let issued = self.keys.issue(
                TokenType::Mfa,
                user.id,
                user.role,
                user.auth_version,
                None,
                MFA_TOKEN_TTL,
                now,
            )?;
            return Ok(LoginOutcome::MfaRequired {
                mfa_token: issued.token,
                expires_in: MFA_TOKEN_TTL.as_secs(),
            });
        }
        let pair = self.start_session(&user, meta, now).await?;
        self.audit(
            AuditEvent::new(EventKind::LoginSucceeded, Outcome::Success, meta)
                .actor(user.id)
                .target(user.id)
                .details(json!({"account": who})),
        )
        .await;
        Ok(LoginOutcome::Tokens(pair, user))
    }

    pub(super) async fn start_session(
        &self,
        user: &User,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> Result<TokenPair, CoreError> {
        let session_id = Uuid::now_v7();
        let expires_at = millis(now) + secs(self.refresh_ttl) * 1000;
        let issued = refresh::generate()?;
        self.deps
            .sessions
            .start(
                &NewSession {
                    id: session_id,
                    user_id: user.id,
                    created_at: millis(now),
                    expires_at,
                    ip: meta.ip.clone(),
                    user_agent: meta.user_agent.clone(),
                },
                &NewRefreshToken {
                    id: Uuid::now_v7(),
                    session_id,
                    digest: issued.digest,
                    created_at: millis(now),
                    expires_at,
                },
            )
            .await?;
        self.pair(user, session_id, issued.token, now)
    }

    fn pair(
        &self,
        user: &User,
        session_id: Uuid,
        refresh_token: SecretString,
        now: OffsetDateTime,
    ) -> Result<TokenPair, CoreError> {
        let access = self.keys.issue(
            TokenType::Access,
            user.id,
            user.role,
            user.auth_version,
            Some(session_id),
            self.access_ttl,
            now,
        )?;
        Ok(TokenPair {
            access_token: access.token,
            expires_in: self.access_ttl.as_secs(),
            refresh_token,
            refresh_expires_in: self.refresh_ttl.as_secs(),
        })
    }

    /// Revokes a session's refresh tokens and the access tokens issued under
    /// it (until the longest of them would have expired).
    pub(super) async fn revoke_session(
        &self,
        session_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<(), CoreError> {
        self.deps.sessions.revoke(session_id, millis(now)).await?;
        let until = now.unix_timestamp() + secs(self.access_ttl);
        self.deps
            .denylist
            .deny(&format!("sid:{session_id}"), until)
            .await
    }

    /// Exchanges a refresh token for a new pair. A token already exchanged
    /// means it was copied: the whole login is revoked (RFC 9700 §4.14.2).
    pub async fn refresh(&self, token: &str, meta: &RequestMeta) -> Result<TokenPair, CoreError> {
        let now = self.now();
        let lookup = self
            .deps
            .sessions
            .find_refresh(&refresh::digest(token))
            .await?
            .ok_or(CoreError::InvalidRefreshToken)?;
        if lookup.used_at.is_some() {
            return Err(self.reuse_detected(&lookup, meta, now).await);
        }
        if lookup.session_revoked_at.is_some() || lookup.expires_at <= millis(now) {
            return Err(CoreError::InvalidRefreshToken);
        }
        let user = match self.current_user(lookup.user_id).await? {
            Some(u) if u.is_active => u,
            _ => {
                self.revoke_session(lookup.session_id, now).await?;
                return Err(CoreError::InvalidRefreshToken);
            }
        };
        let issued = refresh::generate()?;
        let next = NewRefreshToken {
            id: Uuid::now_v7(),
            session_id: lookup.session_id,
            digest: issued.digest,
            created_at: millis(now),
            expires_at: millis(now) + secs(self.refresh_ttl) * 1000,
        };
        match self
            .deps
            .sessions
            .rotate(lookup.token_id, &next, millis(now))
            .await?
        {
            Rotation::Rotated => {}
            Rotation::AlreadyUsed => return Err(self.reuse_detected(&lookup, meta, now).await),
        }
        self.audit(
            AuditEvent::new(EventKind::TokenRefreshed, Outcome::Success, meta)
                .actor(user.id)
                .target(user.id)
                .details(json!({"session_id": lookup.session_id})),
        )
        .await;
        self.pair(&user, lookup.session_id, issued.token, now)
    }

    async fn reuse_detected(
        &self,
        lookup: &crate::ports::RefreshLookup,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> CoreError {
        if let Err(e) = self.revoke_session(lookup.session_id, now).await {
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
        let mut actor = None;
        if let Some(token) = refresh_token
            && let Some(lookup) = self
                .deps
                .sessions
                .find_refresh(&refresh::digest(token))
                .await?
        {
            self.revoke_session(lookup.session_id, now).await?;
            actor = Some(lookup.user_id);
        }
        if let Some(token) = access_token
            && let Ok(claims) = self.keys.verify(token, TokenType::Access, now)
        {
            self.deps.denylist.deny(&claims.jti, claims.exp).await?;
            actor = actor.or_else(|| claims.sub.parse().ok());
        }
        let mut event = AuditEvent::new(EventKind::Logout, Outcome::Success, meta);
        if let Some(id) = actor {
            event = event.actor(id).target(id);
        }
        self.audit(event).await;
        Ok(())
    }

    /// The user as stored now (cached; writes invalidate).
    pub async fn current_user(&self, id: Uuid) -> Result<Option<Arc<User>>, CoreError> {
        if let Some(user) = self.deps.cache.get(id).await {
            return Ok(Some(user));
        }
        let Some(record) = self.deps.users.by_id(id).await? else {
            return Ok(None);
        };
        let user = Arc::new(self.to_user(&record)?);
        self.deps.cache.put(user.clone()).await;
        Ok(Some(user))
    }

    /// Verifies an access token and checks it against the user's current
    /// state: deleted, deactivated, credentials changed, logged out or
    /// session revoked all refuse it on the next request.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, CoreError> {
        let claims = self
            .keys
            .verify(token, TokenType::Access, self.now())
            .map_err(|_| CoreError::InvalidToken)?;
        let user_id: Uuid = claims.sub.parse().map_err(|_| CoreError::InvalidToken)?;
        let session_id = claims.sid.as_deref().and_then(|s| s.parse::<Uuid>().ok());
        // The token itself (logout) and its login (revoked session).
        let sid_key = session_id.map(|sid| format!("sid:{sid}"));
        let mut keys = vec![claims.jti.as_str()];
        keys.extend(sid_key.as_deref());
        if self.deps.denylist.any_denied(&keys).await? {
            return Err(CoreError::InvalidToken);
        }
        let user = self
            .current_user(user_id)
            .await?
            .ok_or(CoreError::InvalidToken)?;
        if !user.is_active || user.auth_version != claims.ver {
            return Err(CoreError::InvalidToken);
        }
        Ok(Principal {
            user,
            jti: claims.jti.clone(),
            expires_at: claims.exp,
            session_id,
            api_key: None,
        })
    }

    /// Records a refused permission (the route guard calls this).
    pub async fn permission_denied(
        &self,
        principal: &Principal,
        permission: Permission,
        method: &str,
        route: &str,
        meta: &RequestMeta,
    ) {
        self.audit(
            AuditEvent::new(EventKind::PermissionDenied, Outcome::Failure, meta)
                .actor(principal.id())
                .details(json!({
                    "permission": permission.as_str(),
                    "role": principal.user.role.as_str(),
                    "method": method,
                    "route": route,
                })),
        )
        .await;
    }

    /// Records a rate-limit refusal.
    pub async fn rate_limited(&self, scope: &str, path: &str, meta: &RequestMeta) {
        self.audit(
            AuditEvent::new(EventKind::RateLimited, Outcome::Failure, meta)
                .details(json!({"scope": scope, "path": path})),
        )
        .await;
    }

    /// Field problems for a login identifier (schema rules only).
    pub fn check_login_email(email: &str) -> Result<(), FieldProblem> {
        Email::parse(email).map(drop)
    }
}
