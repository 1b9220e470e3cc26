//! The account's address: verification mails (asked for by the signed-in
//! user, or by address without signing in), changes of address (a link to
//! the new address, a notice to the old), and the confirmation of both.

use std::sync::Arc;

use serde_json::json;

use super::proof::{Proof, Redeemer};
use super::{Grant, Postman};
use crate::CoreError;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::mail::Message;
use crate::ports::{IssuedMail, MailTokenRepo, TokenPurpose, UserRecord};
use crate::rbac::Permission;
use crate::service::kernel::Directory;
use crate::service::lockout::Lockout;
use crate::service::principal::Principal;
use crate::user::{Email, User, mask_email};

/// What a confirmation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    /// The address is verified.
    Verified,
    /// The account moved to the new address (verified by the link).
    EmailChanged,
}

/// Asks for a change of address: issued by `PUT /users/me`.
#[derive(Debug, Clone)]
pub struct EmailChanges {
    pub postman: Postman,
    pub tokens: Arc<dyn MailTokenRepo>,
    pub directory: Directory,
}

impl EmailChanges {
    /// A link to `new` and a notice to the current address, in one
    /// transaction. When another account has `new`, it gets a notice
    /// instead of the link: the same writes, the same answer, so the asker
    /// learns nothing about the address.
    pub async fn request(&self, user: &User, new: &Email) -> Result<(), CoreError> {
        let index = self.postman.address_index(new.as_str());
        let taken = self.directory.users.by_email_index(&index).await?.is_some();
        let within = self.postman.within_address_limit(&index).await?;
        let current = self.postman.address_index(&user.email);
        let notice = self.postman.notice(
            &user.email,
            &user.username,
            Message::EmailChangeRequested {
                new_address: new.masked(),
            },
        )?;
        let issued = if taken || !within {
            // Over the address's limit, nothing goes to it.
            let to_new = if taken {
                self.postman
                    .notice(new.as_str(), "", Message::AddressInUse)?
            } else {
                self.postman.notice("", "", Message::Nothing)?
            };
            IssuedMail {
                token: self.postman.decoy(TokenPurpose::EmailChange, index)?,
                mails: vec![to_new, notice],
            }
        } else {
            let new_enc = self
                .postman
                .kernel()
                .cipher
                .encrypt("email", new.as_str())?;
            let (token, link) = self.postman.grant(Grant {
                purpose: TokenPurpose::EmailChange,
                user_id: user.id,
                username: &user.username,
                to: new.as_str(),
                bound_to: current,
                new_email: Some((new_enc, index)),
            })?;
            IssuedMail {
                token,
                mails: vec![link, notice],
            }
        };
        self.tokens.issue(&issued).await
    }
}

/// Verification mails and the confirmation of links and codes.
#[derive(Debug)]
pub struct EmailVerification {
    redeemer: Redeemer,
    directory: Directory,
}

impl EmailVerification {
    pub fn new(
        postman: Postman,
        tokens: Arc<dyn MailTokenRepo>,
        directory: Directory,
        lockout: Lockout,
    ) -> Self {
        Self {
            redeemer: Redeemer {
                postman,
                tokens,
                users: directory.users.clone(),
                lockout,
            },
            directory,
        }
    }

    fn postman(&self) -> &Postman {
        &self.redeemer.postman
    }

    /// The token and mail that verify `record`'s current address.
    pub(crate) fn verification_for(
        postman: &Postman,
        record: &UserRecord,
        email: &str,
    ) -> Result<IssuedMail, CoreError> {
        let (token, mail) = postman.grant(Grant {
            purpose: TokenPurpose::VerifyEmail,
            user_id: record.id,
            username: &record.username,
            to: email,
            bound_to: postman.address_index(email),
            new_email: None,
        })?;
        Ok(IssuedMail {
            token,
            mails: vec![mail],
        })
    }

    /// A new verification mail for the signed-in caller; nothing when the
    /// address is verified already.
    pub async fn request_mine(&self, principal: &Principal) -> Result<(), CoreError> {
        principal.require(Permission::SelfRead)?;
        let record = self.directory.record(principal.id()).await?;
        if record.email_verified {
            return Ok(());
        }
        let index = self.postman().index_of(&record)?;
        if !self.postman().within_address_limit(&index).await? {
            return Ok(());
        }
        let issued = Self::verification_for(self.postman(), &record, &principal.user.email)?;
        self.redeemer.tokens.issue(&issued).await
    }

    /// A verification mail to `email` if an active, unverified account has
    /// it. The same writes happen whether or not one does (a decoy token
    /// and an empty outbox entry), so neither answer nor timing tells.
    pub async fn request_by_address(&self, email: &str) -> Result<(), CoreError> {
        let email = Email::parse(email).map_err(|p| CoreError::Validation(vec![p]))?;
        let index = self.postman().address_index(email.as_str());
        let record = self.directory.users.by_email_index(&index).await?;
        let within = self.postman().within_address_limit(&index).await?;
        let issued = match record {
            Some(r) if within && r.is_active && !r.email_verified => {
                Self::verification_for(self.postman(), &r, email.as_str())?
            }
            _ => IssuedMail {
                token: self.postman().decoy(TokenPurpose::VerifyEmail, index)?,
                mails: vec![self.postman().notice("", "", Message::Nothing)?],
            },
        };
        self.redeemer.tokens.issue(&issued).await
    }

    /// The account a verification proof is for, without spending it: for
    /// a step that must succeed before the proof is spent (the first
    /// passkey of an account without a password). Returns the account and
    /// the token's id.
    pub async fn account_of(
        &self,
        proof: &Proof,
        meta: &RequestMeta,
    ) -> Result<(UserRecord, uuid::Uuid), CoreError> {
        let found = self
            .redeemer
            .redeem(proof, &[TokenPurpose::VerifyEmail], meta)
            .await?;
        Ok((found.user, found.token.id))
    }

    /// Confirms a verification or an email change, by link or code.
    pub async fn confirm(&self, proof: &Proof, meta: &RequestMeta) -> Result<Confirmed, CoreError> {
        let purposes = [TokenPurpose::VerifyEmail, TokenPurpose::EmailChange];
        let found = self.redeemer.redeem(proof, &purposes, meta).await?;
        let now = self.postman().kernel().now_ms();
        let (token, user) = (&found.token, &found.user);
        let tokens = &self.redeemer.tokens;
        let outcome = if token.purpose == TokenPurpose::VerifyEmail {
            if !tokens.confirm_verification(token, now).await? {
                return Err(CoreError::InvalidMailToken);
            }
            Confirmed::Verified
        } else {
            let new_address = match &token.new_email {
                Some((enc, _)) => self.postman().kernel().cipher.decrypt("email", enc)?,
                None => return Err(CoreError::InvalidMailToken),
            };
            let notice = self.postman().notice_to(
                user,
                Message::EmailChanged {
                    new_address: mask_email(&new_address),
                },
            )?;
            // Taken meanwhile by another account: this link is spent for
            // nothing it can do.
            match tokens.confirm_email_change(token, &notice, now).await {
                Ok(true) => {}
                Ok(false) | Err(CoreError::Conflict) => return Err(CoreError::InvalidMailToken),
                Err(e) => return Err(e),
            }
            Confirmed::EmailChanged
        };
        self.directory.invalidate(user.id).await;
        self.audit(user, outcome, meta).await;
        Ok(outcome)
    }

    async fn audit(&self, user: &UserRecord, outcome: Confirmed, meta: &RequestMeta) {
        let kind = match outcome {
            Confirmed::Verified => EventKind::EmailVerified,
            Confirmed::EmailChanged => EventKind::EmailChanged,
        };
        self.postman()
            .kernel()
            .audit(
                AuditEvent::new(kind, Outcome::Success, meta)
                    .actor(user.id)
                    .target(user.id)
                    .details(json!({"username": user.username})),
            )
            .await;
    }
}
