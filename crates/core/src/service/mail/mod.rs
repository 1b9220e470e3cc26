//! Mail in the use cases. [`Postman`] seals messages for the outbox and
//! grants one-time tokens; the flows are [`EmailVerification`] (the
//! address, and changes of it), [`PasswordReset`], and [`MailDelivery`]
//! (the outbox worker's step).
//!
//! Every outbox payload is the whole message encrypted with the field
//! cipher: it holds an address and may hold a link's token, so nothing
//! usable sits in the table in clear, and a sent entry is deleted with it.

mod delivery;
mod proof;
mod reset;
mod verification;

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use uuid::Uuid;

pub use delivery::{DeliveryReport, MailDelivery};
pub use proof::Proof;
pub use reset::PasswordReset;
pub use verification::{Confirmed, EmailChanges, EmailVerification};

use super::kernel::Kernel;
use crate::CoreError;
use crate::auth::mail_token;
use crate::config::{Config, Rate};
use crate::mail::{Links, Mail, Message, OneTime};
use crate::ports::{MailTokenRecord, OutboxMail, OutboxRepo, TokenPurpose, UserRecord};
use crate::ratelimit::RateLimiter;
use crate::user::User;

/// How long a verification link (and an email-change link) lasts.
pub const VERIFY_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a reset link lasts.
pub const RESET_TTL: Duration = Duration::from_secs(30 * 60);
/// The longest a typed code lasts (never longer than its link).
pub const CODE_TTL: Duration = Duration::from_secs(30 * 60);

/// The associated data the outbox payload is encrypted under.
const PAYLOAD_FIELD: &str = "mail_outbox";

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What a new one-time token is for and who it goes to.
#[derive(Debug)]
pub struct Grant<'a> {
    pub purpose: TokenPurpose,
    pub user_id: Uuid,
    pub username: &'a str,
    /// The address the mail goes to.
    pub to: &'a str,
    pub bound_to: String,
    pub new_email: Option<(String, String)>,
}

/// Seals mail for the outbox and grants one-time tokens.
#[derive(Debug, Clone)]
pub struct Postman {
    kernel: Kernel,
    outbox: Arc<dyn OutboxRepo>,
    links: Links,
    limiter: Arc<dyn RateLimiter>,
    /// `None` when rate limits are off.
    per_address: Option<Rate>,
}

impl Postman {
    pub fn new(
        config: &Config,
        kernel: Kernel,
        outbox: Arc<dyn OutboxRepo>,
        limiter: Arc<dyn RateLimiter>,
    ) -> Self {
        Self {
            kernel,
            outbox,
            links: Links::new(&config.mail.app_base_url),
            limiter,
            per_address: config
                .rate_limit
                .enabled
                .then_some(config.rate_limit.mail_per_address),
        }
    }

    pub(crate) fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// The message as an outbox entry, its payload encrypted.
    pub fn seal(&self, mail: &Mail) -> Result<OutboxMail, CoreError> {
        let json = serde_json::to_string(mail).map_err(CoreError::internal)?;
        Ok(OutboxMail {
            id: Uuid::now_v7(),
            kind: mail.message.template().to_owned(),
            payload_enc: self.kernel.cipher.encrypt(PAYLOAD_FIELD, &json)?,
            created_at: self.kernel.now_ms(),
        })
    }

    /// The message an outbox payload holds.
    pub fn open(&self, payload_enc: &str) -> Result<Mail, CoreError> {
        let json = self.kernel.cipher.decrypt(PAYLOAD_FIELD, payload_enc)?;
        serde_json::from_str(&json).map_err(CoreError::internal)
    }

    /// A notice (no secret) to `to`.
    pub fn notice(
        &self,
        to: &str,
        username: &str,
        message: Message,
    ) -> Result<OutboxMail, CoreError> {
        self.seal(&Mail {
            to: to.to_owned(),
            username: username.to_owned(),
            message,
        })
    }

    /// The notice to a stored account's address.
    pub fn notice_to(
        &self,
        record: &UserRecord,
        message: Message,
    ) -> Result<OutboxMail, CoreError> {
        let to = self.kernel.cipher.decrypt("email", &record.email_enc)?;
        self.notice(&to, &record.username, message)
    }

    /// Queues a notice right after a change that had no transaction to
    /// share with it. Never fails the change: a lost notice is logged.
    pub async fn send_notice(&self, user: &User, message: Message) {
        let queued = match self.notice(&user.email, &user.username, message) {
            Ok(mail) => self.outbox.enqueue(&mail).await,
            Err(e) => Err(e),
        };
        if let Err(e) = queued {
            tracing::error!(user_id = %user.id, error = %e, "notice mail not queued");
        }
    }

    /// The blind index of an address (lower-cased).
    pub fn address_index(&self, address: &str) -> String {
        self.kernel.blind.of("email", address)
    }

    /// The stored form of a typed code, keyed and bound to its token.
    pub fn code_digest(&self, token_id: Uuid, normalized: &str) -> String {
        self.kernel
            .blind
            .of("mail_code", &format!("{token_id}:{normalized}"))
    }

    /// A new token and the mail that carries it (link and code).
    pub fn grant(&self, g: Grant<'_>) -> Result<(MailTokenRecord, OutboxMail), CoreError> {
        let secret = mail_token::generate()?;
        let id = Uuid::now_v7();
        let now = self.kernel.now_ms();
        let ttl = match g.purpose {
            TokenPurpose::PasswordReset => RESET_TTL,
            TokenPurpose::VerifyEmail | TokenPurpose::EmailChange => VERIFY_TTL,
        };
        let code_ttl = ttl.min(CODE_TTL);
        let token = secret.token.expose_secret();
        let code = secret.code.expose_secret();
        let one_time = OneTime {
            link: match g.purpose {
                TokenPurpose::PasswordReset => self.links.reset_password(token),
                _ => self.links.verify_email(token),
            },
            code: code.to_owned(),
            link_minutes: ttl.as_secs() / 60,
            code_minutes: code_ttl.as_secs() / 60,
        };
        let message = match g.purpose {
            TokenPurpose::VerifyEmail => Message::VerifyEmail(one_time),
            TokenPurpose::PasswordReset => Message::ResetPassword(one_time),
            TokenPurpose::EmailChange => Message::ConfirmEmailChange(one_time),
        };
        let normalized = mail_token::normalize_code(code)
            .ok_or_else(|| CoreError::internal("a new code does not read back"))?;
        let record = MailTokenRecord {
            id,
            user_id: Some(g.user_id),
            purpose: g.purpose,
            token_digest: secret.digest,
            code_digest: self.code_digest(id, &normalized),
            address_index: self.address_index(g.to),
            bound_to: g.bound_to,
            new_email: g.new_email,
            created_at: now,
            expires_at: now + ms(ttl),
            code_expires_at: now + ms(code_ttl),
            used_at: None,
        };
        let mail = self.seal(&Mail {
            to: g.to.to_owned(),
            username: g.username.to_owned(),
            message,
        })?;
        Ok((record, mail))
    }

    /// A token row that can never be redeemed, written where a request
    /// sends nothing so that it costs what a real one does.
    pub fn decoy(
        &self,
        purpose: TokenPurpose,
        address_index: String,
    ) -> Result<MailTokenRecord, CoreError> {
        let secret = mail_token::generate()?;
        let now = self.kernel.now_ms();
        Ok(MailTokenRecord {
            id: Uuid::now_v7(),
            user_id: None,
            purpose,
            token_digest: secret.digest,
            code_digest: self.code_digest(Uuid::nil(), secret.code.expose_secret()),
            address_index,
            bound_to: String::new(),
            new_email: None,
            created_at: now,
            expires_at: now,
            code_expires_at: now,
            used_at: Some(now),
        })
    }

    /// Whether one more mail with a link may go to the address of
    /// `address_index` (`RATE_LIMIT_MAIL_PER_ADDRESS`): one address cannot
    /// be flooded from many IPs. Checked for every request, sent or not.
    pub async fn within_address_limit(&self, address_index: &str) -> Result<bool, CoreError> {
        let Some(rate) = self.per_address else {
            return Ok(true);
        };
        let key = format!("rl:mail:addr:{address_index}");
        let decision = self.limiter.check(&key, rate, self.kernel.now_ms()).await?;
        Ok(decision.allowed)
    }

    /// The binding of a reset token: the credential version and the address.
    pub fn reset_binding(record: &UserRecord, email_index: &str) -> String {
        format!("{}:{email_index}", record.auth_version)
    }

    /// The blind index of a stored account's current address.
    pub fn index_of(&self, record: &UserRecord) -> Result<String, CoreError> {
        let email = self.kernel.cipher.decrypt("email", &record.email_enc)?;
        Ok(self.address_index(&email))
    }
}
