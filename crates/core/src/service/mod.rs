//! Use cases, one type per concern, each with its own narrow ports; every
//! one that needs a permission takes the [`Principal`] and checks it first.
//!
//! | use case | owns |
//! |---|---|
//! | [`SignIn`] | login (password or passkey), the second factor step, refresh, logout, access-token checks, re-authentication |
//! | [`Accounts`] | registration, the first admin, the caller's profile, password and logins |
//! | [`UserAdmin`] | reading, listing, exporting, creating, changing and deleting users |
//! | [`ApiKeys`] | the caller's API keys and authentication by one |
//! | [`TwoFactor`] | turning TOTP on and off |
//! | [`Operations`] | stats, the audit trail (verify, checkpoints, pruning), data-key rotation |
//! | [`FileService`] | uploads (within quota and free space), downloads, the orphan sweep |
//! | [`SecurityEvents`] | refusals raised at the edge |
//! | [`EmailVerification`] | verification mails, and confirming them and changes of address |
//! | [`PasswordReset`] | reset mails, and setting a password with one |
//! | [`MailDelivery`] | sending the outbox |
//! | [`Passkeys`] | registering, listing, renaming and removing the caller's passkeys |
//!
//! They share a [`Kernel`] (cipher, blind index, clock, audit sink), the
//! [`Directory`] of users behind the cache, and [`Logins`].

pub mod accounts;
pub mod api_keys;
pub mod events;
pub mod files;
pub mod kernel;
pub mod lockout;
pub mod logins;
pub mod mail;
pub mod operations;
pub mod passkeys;
pub mod principal;
pub mod sign_in;
pub mod two_factor;
pub mod user_access;
pub mod user_admin;

use std::sync::Arc;

pub use accounts::{
    AccountFactory, Accounts, CredentialChange, ProfileOutcome, ProfileUpdate, Registration,
    Welcome,
};
pub use api_keys::{ApiKeyView, ApiKeys, NewApiKey};
pub use events::{Attempt, SecurityEvents};
pub use files::{FileDeps, FileDownload, FileService, ORPHAN_GRACE, UploadStream};
pub use kernel::{Directory, Kernel};
pub use lockout::Lockout;
pub use logins::{AccessToken, Logins, TokenPair};
pub use mail::{
    Confirmed, DeliveryReport, EmailChanges, EmailVerification, MailDelivery, PasswordReset,
    Postman, Proof,
};
pub use operations::{
    ACTIVITY_HOURS, Activity, AdminStats, HourCounts, Operations, OperationsDeps, RoleCounts,
    RotationReport,
};
pub use passkeys::{PasskeyView, Passkeys, Verifier};
pub use principal::Principal;
pub use sign_in::{LoginId, LoginOutcome, ReauthProof, SignIn, SignInDeps};
pub use two_factor::{MfaSetup, SecondFactor, TwoFactor};
pub use user_access::UserAccess;
pub use user_admin::{
    AdminPatch, ListQuery, NewAccount, PageRequest, UserAdmin, UserAdminDeps, UserPage,
};

use crate::CoreError;
use crate::audit::{AuditSink, AuditTrail};
use crate::auth::password::PasswordHasher;
use crate::clock::Clock;
use crate::config::Config;
use crate::ports::{
    ApiKeyRepo, BlobStore, FileRepo, LoginThrottle, MailTokenRepo, Mailer, MfaRepo, OutboxRepo,
    PasskeyRepo, SessionRepo, TokenDenylist, UserCache, UserRepo,
};
use crate::ratelimit::RateLimiter;

/// Every adapter, as the binary (or a test) plugs them in. Only
/// [`UseCases::new`] sees them all; each use case gets its own few.
#[derive(Debug, Clone)]
pub struct Adapters {
    pub users: Arc<dyn UserRepo>,
    pub sessions: Arc<dyn SessionRepo>,
    pub denylist: Arc<dyn TokenDenylist>,
    pub throttle: Arc<dyn LoginThrottle>,
    pub cache: Arc<dyn UserCache>,
    pub audit: Arc<dyn AuditSink>,
    /// The stored trail (pages, verification, checkpoints, pruning, stats);
    /// the same one the audit sink appends to, so it knows the head.
    pub audit_trail: Arc<AuditTrail>,
    pub mfa: Arc<dyn MfaRepo>,
    pub api_keys: Arc<dyn ApiKeyRepo>,
    pub files: Arc<dyn FileRepo>,
    pub blobs: Arc<dyn BlobStore>,
    pub clock: Arc<dyn Clock>,
    pub mail_tokens: Arc<dyn MailTokenRepo>,
    pub outbox: Arc<dyn OutboxRepo>,
    /// Delivers what the outbox holds (SMTP, or the log in development).
    pub mailer: Arc<dyn Mailer>,
    /// Per-address mail limits (the same store as the per-IP limits).
    pub limiter: Arc<dyn RateLimiter>,
    pub passkeys: Arc<dyn PasskeyRepo>,
}

/// The use cases, built once and shared.
#[derive(Debug, Clone)]
pub struct UseCases {
    pub sign_in: Arc<SignIn>,
    pub accounts: Arc<Accounts>,
    pub user_admin: Arc<UserAdmin>,
    pub user_access: Arc<UserAccess>,
    pub api_keys: Arc<ApiKeys>,
    pub two_factor: Arc<TwoFactor>,
    pub operations: Arc<Operations>,
    pub files: Arc<FileService>,
    pub events: Arc<SecurityEvents>,
    pub email_verification: Arc<EmailVerification>,
    pub password_reset: Arc<PasswordReset>,
    pub mail_delivery: Arc<MailDelivery>,
    pub passkeys: Arc<Passkeys>,
}

/// What several use cases share, built once.
struct Shared {
    kernel: Kernel,
    directory: Directory,
    logins: Logins,
    hasher: PasswordHasher,
    second_factor: SecondFactor,
    lockout: Lockout,
    postman: Postman,
    factory: AccountFactory,
    verifier: Verifier,
}

impl Shared {
    fn new(config: &Config, a: &Adapters) -> Result<Self, CoreError> {
        let kernel = Kernel::new(config, a.clock.clone(), a.audit.clone())?;
        let directory = Directory {
            users: a.users.clone(),
            cache: a.cache.clone(),
            kernel: kernel.clone(),
        };
        let hasher = PasswordHasher::new(&config.argon2)?;
        let postman = Postman::new(config, kernel.clone(), a.outbox.clone(), a.limiter.clone());
        Ok(Self {
            logins: Logins::new(config, a.sessions.clone(), a.denylist.clone())?,
            second_factor: SecondFactor {
                mfa: a.mfa.clone(),
                kernel: kernel.clone(),
            },
            lockout: Lockout::new(config, a.throttle.clone(), kernel.clone()),
            factory: AccountFactory {
                directory: directory.clone(),
                hasher: hasher.clone(),
                postman: postman.clone(),
            },
            verifier: Verifier::new(&config.webauthn, a.passkeys.clone(), kernel.clone())?,
            kernel,
            directory,
            hasher,
            postman,
        })
    }
}

/// The mail flows: verification, reset, and the outbox's delivery.
type MailCases = (
    Arc<EmailVerification>,
    Arc<PasswordReset>,
    Arc<MailDelivery>,
);

fn mail_cases(s: &Shared, a: &Adapters) -> MailCases {
    (
        Arc::new(EmailVerification::new(
            s.postman.clone(),
            a.mail_tokens.clone(),
            s.directory.clone(),
            s.lockout.clone(),
        )),
        Arc::new(PasswordReset::new(
            s.postman.clone(),
            a.mail_tokens.clone(),
            s.factory.clone(),
            s.lockout.clone(),
        )),
        Arc::new(MailDelivery::new(
            s.postman.clone(),
            a.outbox.clone(),
            a.mail_tokens.clone(),
            a.mailer.clone(),
        )),
    )
}

impl UseCases {
    pub fn new(config: &Config, a: Adapters) -> Result<Self, CoreError> {
        let s = Shared::new(config, &a)?;
        let (email_verification, password_reset, mail_delivery) = mail_cases(&s, &a);
        let email_changes = EmailChanges {
            postman: s.postman.clone(),
            tokens: a.mail_tokens.clone(),
            directory: s.directory.clone(),
        };
        Ok(Self {
            sign_in: Arc::new(SignIn::new(
                config,
                SignInDeps {
                    directory: s.directory.clone(),
                    logins: s.logins.clone(),
                    lockout: s.lockout.clone(),
                    hasher: s.hasher.clone(),
                    second_factor: s.second_factor.clone(),
                    passkeys: s.verifier.clone(),
                },
            )),
            accounts: Arc::new(Accounts::new(
                s.factory.clone(),
                s.logins.clone(),
                s.lockout.clone(),
                email_changes,
                a.passkeys.clone(),
            )),
            user_admin: Arc::new(UserAdmin::new(UserAdminDeps {
                factory: s.factory.clone(),
                sessions: a.sessions.clone(),
                files: a.files.clone(),
                blobs: a.blobs.clone(),
            })),
            user_access: Arc::new(UserAccess::new(
                s.directory.clone(),
                s.logins.clone(),
                a.api_keys.clone(),
            )),
            api_keys: Arc::new(ApiKeys::new(
                a.api_keys,
                s.directory.clone(),
                s.postman.clone(),
            )),
            two_factor: Arc::new(TwoFactor::new(
                s.second_factor.clone(),
                s.directory.clone(),
                s.hasher.clone(),
                s.lockout.clone(),
                s.postman.clone(),
            )),
            email_verification: email_verification.clone(),
            password_reset,
            mail_delivery,
            operations: Arc::new(Operations::new(OperationsDeps {
                directory: s.directory.clone(),
                sessions: a.sessions,
                audit: a.audit_trail,
                throttle: a.throttle,
                mfa: a.mfa,
            })),
            files: Arc::new(FileService::new(
                config,
                FileDeps {
                    files: a.files,
                    blobs: a.blobs,
                    kernel: s.kernel.clone(),
                },
            )),
            passkeys: Arc::new(Passkeys::new(
                s.verifier,
                s.directory.clone(),
                s.postman.clone(),
                email_verification.clone(),
                s.logins.clone(),
            )),
            events: Arc::new(SecurityEvents::new(s.kernel)),
        })
    }
}
