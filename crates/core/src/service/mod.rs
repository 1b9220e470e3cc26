//! Use cases, one type per concern, each with its own narrow ports; every
//! one that needs a permission takes the [`Principal`] and checks it first.
//!
//! | use case | owns |
//! |---|---|
//! | [`SignIn`] | login, the second factor step, refresh, logout, access-token checks |
//! | [`Accounts`] | registration, the first admin, the caller's profile, password and logins |
//! | [`UserAdmin`] | reading, listing, exporting, creating, changing and deleting users |
//! | [`ApiKeys`] | the caller's API keys and authentication by one |
//! | [`TwoFactor`] | turning TOTP on and off |
//! | [`Operations`] | stats, the audit trail (verify, checkpoints, pruning), data-key rotation |
//! | [`FileService`] | uploads (within quota and free space), downloads, the orphan sweep |
//! | [`SecurityEvents`] | refusals raised at the edge |
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
pub mod operations;
pub mod principal;
pub mod sign_in;
pub mod two_factor;
pub mod user_admin;

use std::sync::Arc;

pub use accounts::{AccountFactory, Accounts, ProfileOutcome, ProfileUpdate, Registration};
pub use api_keys::{ApiKeyView, ApiKeys, NewApiKey};
pub use events::{Attempt, SecurityEvents};
pub use files::{FileDeps, FileDownload, FileService, ORPHAN_GRACE, UploadStream};
pub use kernel::{Directory, Kernel};
pub use lockout::Lockout;
pub use logins::{Logins, TokenPair};
pub use operations::{AdminStats, Operations, OperationsDeps, RotationReport};
pub use principal::Principal;
pub use sign_in::{LoginId, LoginOutcome, SignIn, SignInDeps};
pub use two_factor::{MfaSetup, SecondFactor, TwoFactor};
pub use user_admin::{
    AdminPatch, ListQuery, NewAccount, PageRequest, UserAdmin, UserAdminDeps, UserPage,
};

use crate::CoreError;
use crate::audit::{AuditSink, AuditTrail};
use crate::auth::password::PasswordHasher;
use crate::clock::Clock;
use crate::config::Config;
use crate::ports::{
    ApiKeyRepo, BlobStore, FileRepo, LoginThrottle, MfaRepo, SessionRepo, TokenDenylist, UserCache,
    UserRepo,
};

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
}

/// The use cases, built once and shared.
#[derive(Debug, Clone)]
pub struct UseCases {
    pub sign_in: Arc<SignIn>,
    pub accounts: Arc<Accounts>,
    pub user_admin: Arc<UserAdmin>,
    pub api_keys: Arc<ApiKeys>,
    pub two_factor: Arc<TwoFactor>,
    pub operations: Arc<Operations>,
    pub files: Arc<FileService>,
    pub events: Arc<SecurityEvents>,
}

impl UseCases {
    pub fn new(config: &Config, a: Adapters) -> Result<Self, CoreError> {
        let kernel = Kernel::new(config, a.clock.clone(), a.audit.clone())?;
        let directory = Directory {
            users: a.users.clone(),
            cache: a.cache.clone(),
            kernel: kernel.clone(),
        };
        let logins = Logins::new(config, a.sessions.clone(), a.denylist.clone())?;
        let hasher = PasswordHasher::new(&config.argon2)?;
        let second_factor = SecondFactor {
            mfa: a.mfa.clone(),
            kernel: kernel.clone(),
        };
        let lockout = Lockout::new(config, a.throttle.clone(), kernel.clone());
        let factory = AccountFactory {
            directory: directory.clone(),
            hasher: hasher.clone(),
        };
        Ok(Self {
            sign_in: Arc::new(SignIn::new(
                config,
                SignInDeps {
                    directory: directory.clone(),
                    logins: logins.clone(),
                    lockout: lockout.clone(),
                    hasher: hasher.clone(),
                    second_factor: second_factor.clone(),
                },
            )),
            accounts: Arc::new(Accounts::new(factory.clone(), logins, lockout.clone())),
            user_admin: Arc::new(UserAdmin::new(UserAdminDeps {
                factory,
                sessions: a.sessions.clone(),
                files: a.files.clone(),
                blobs: a.blobs.clone(),
            })),
            api_keys: Arc::new(ApiKeys::new(a.api_keys, directory.clone())),
            two_factor: Arc::new(TwoFactor::new(
                second_factor,
                directory.clone(),
                hasher,
                lockout,
            )),
            operations: Arc::new(Operations::new(OperationsDeps {
                directory,
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
                    kernel: kernel.clone(),
                },
            )),
            events: Arc::new(SecurityEvents::new(kernel)),
        })
    }
}
