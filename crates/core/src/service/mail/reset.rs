//! Forgotten passwords: a reset mail (link and code, 30 minutes) asked for
//! by address, and the new password set with it — which ends every login,
//! access token and API key of the account, like a change.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::proof::{Proof, Redeemer};
use super::{Grant, Postman};
use crate::CoreError;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::auth::password;
use crate::mail::Message;
use crate::ports::{IssuedMail, MailTokenRepo, TokenPurpose};
use crate::service::accounts::{AccountFactory, CredentialChange};
use crate::service::lockout::Lockout;
use crate::user::Email;

#[derive(Debug)]
pub struct PasswordReset {
    redeemer: Redeemer,
    factory: AccountFactory,
}

impl PasswordReset {
    pub fn new(
        postman: Postman,
        tokens: Arc<dyn MailTokenRepo>,
        factory: AccountFactory,
        lockout: Lockout,
    ) -> Self {
        Self {
            redeemer: Redeemer {
                postman,
                tokens,
                users: factory.directory.users.clone(),
                lockout,
            },
            factory,
        }
    }

    fn postman(&self) -> &Postman {
        &self.redeemer.postman
    }

    /// A reset mail to `email` if an active account has it. Whether or not
    /// one does, the same work is done — the lookup, the per-address limit,
    /// a token row and an outbox row in one transaction (a decoy and an
    /// empty entry for an unknown address) — so neither the answer nor its
    /// timing tells (OWASP Forgot Password Cheat Sheet).
    pub async fn request(&self, email: &str) -> Result<(), CoreError> {
        let email = Email::parse(email).map_err(|p| CoreError::Validation(vec![p]))?;
        let index = self.postman().address_index(email.as_str());
        let record = self.factory.directory.users.by_email_index(&index).await?;
        let within = self.postman().within_address_limit(&index).await?;
        let issued = match record {
            Some(r) if within && r.is_active => {
                let (token, mail) = self.postman().grant(Grant {
                    purpose: TokenPurpose::PasswordReset,
                    user_id: r.id,
                    username: &r.username,
                    to: email.as_str(),
                    bound_to: Postman::reset_binding(&r, &index),
                    new_email: None,
                })?;
                IssuedMail {
                    token,
                    mails: vec![mail],
                }
            }
            _ => IssuedMail {
                token: self.postman().decoy(TokenPurpose::PasswordReset, index)?,
                mails: vec![self.postman().notice("", "", Message::Nothing)?],
            },
        };
        self.redeemer.tokens.issue(&issued).await
    }

    /// Sets `new` as the password of the account the proof names. The
    /// policy is checked before the token is spent; the token is spent in
    /// the transaction that stores the password, so it works once.
    pub async fn confirm(
        &self,
        proof: &Proof,
        new: &SecretString,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        let found = self
            .redeemer
            .redeem(proof, &[TokenPurpose::PasswordReset], meta)
            .await?;
        password::check_policy(new.expose_secret()).map_err(|w| CoreError::WeakPassword(w.0))?;
        let change = CredentialChange::Reset {
            token: found.token.id,
        };
        // Another reset or change came first: this token died with it.
        if !self
            .factory
            .set_password(&found.user, new, change, meta)
            .await?
        {
            return Err(CoreError::InvalidMailToken);
        }
        let id = found.user.id;
        self.postman()
            .kernel()
            .audit(
                AuditEvent::new(EventKind::PasswordReset, Outcome::Success, meta)
                    .actor(id)
                    .target(id),
            )
            .await;
        Ok(())
    }
}
