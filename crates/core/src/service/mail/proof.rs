//! Redeeming what a mail carried: the link's token, or the typed code with
//! the address it went to. A token is 256 random bits and needs no
//! counting; a code has 40, so each one typed is reserved against the
//! account's lockout like a password, and a wrong one counts.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::Postman;
use crate::CoreError;
use crate::audit::RequestMeta;
use crate::auth::mail_token;
use crate::ports::{MailTokenRecord, MailTokenRepo, TokenPurpose, UserRecord, UserRepo};
use crate::service::lockout::Lockout;
use crate::user::Email;

/// What a person presents to confirm.
#[derive(Debug)]
pub enum Proof {
    /// The token from the link.
    Token(SecretString),
    /// The code from the mail, typed, with the address it was sent to.
    Code { email: String, code: SecretString },
}

/// A token that may be used now, and the account it acts on.
#[derive(Debug)]
pub(super) struct Redeemed {
    pub token: MailTokenRecord,
    pub user: UserRecord,
}

/// Finds and checks the token a proof names.
#[derive(Debug, Clone)]
pub(super) struct Redeemer {
    pub postman: Postman,
    pub tokens: Arc<dyn MailTokenRepo>,
    pub users: Arc<dyn UserRepo>,
    pub lockout: Lockout,
}

impl Redeemer {
    /// The token and its account, if the proof names a live token of one
    /// of `purposes` still bound to the account's current state; else
    /// [`CoreError::InvalidMailToken`] (429 while the account is locked).
    pub async fn redeem(
        &self,
        proof: &Proof,
        purposes: &[TokenPurpose],
        meta: &RequestMeta,
    ) -> Result<Redeemed, CoreError> {
        let token = match proof {
            Proof::Token(t) => self
                .tokens
                .token_by_digest(&mail_token::digest(t.expose_secret()))
                .await?
                .filter(|t| purposes.contains(&t.purpose))
                .ok_or(CoreError::InvalidMailToken)?,
            Proof::Code { email, code } => self.by_code(email, code, purposes, meta).await?,
        };
        let now = self.postman.kernel().now_ms();
        let (Some(user_id), None) = (token.user_id, token.used_at) else {
            return Err(CoreError::InvalidMailToken);
        };
        if token.expires_at <= now {
            return Err(CoreError::InvalidMailToken);
        }
        let user = self
            .users
            .by_id(user_id)
            .await?
            .filter(|u| u.is_active)
            .ok_or(CoreError::InvalidMailToken)?;
        let index = self.postman.index_of(&user)?;
        let bound = match token.purpose {
            TokenPurpose::PasswordReset => Postman::reset_binding(&user, &index),
            TokenPurpose::VerifyEmail | TokenPurpose::EmailChange => index,
        };
        // Issued against another state of the account (a new password or
        // address since): dead.
        if bound != token.bound_to {
            return Err(CoreError::InvalidMailToken);
        }
        Ok(Redeemed { token, user })
    }

    /// The token whose code was typed. Every code typed is reserved
    /// against the lockout first; a wrong one is counted.
    async fn by_code(
        &self,
        email: &str,
        code: &SecretString,
        purposes: &[TokenPurpose],
        meta: &RequestMeta,
    ) -> Result<MailTokenRecord, CoreError> {
        let email = Email::parse(email).map_err(|p| CoreError::Validation(vec![p]))?;
        let index = self.postman.address_index(email.as_str());
        let now = self.postman.kernel().now_ms();
        let candidates = self.tokens.tokens_for_code(&index, purposes, now).await?;
        // The account's counter (an email change's code goes to the new
        // address, but it is the account that is being guessed at).
        let owner = candidates.first().and_then(|t| t.user_id);
        let single_owner = candidates.iter().all(|t| t.user_id == owner);
        let key = match owner {
            Some(id) if single_owner => match self.users.by_id(id).await? {
                Some(record) => self.lockout.key_of(&record)?,
                None => self.lockout.key_of_email(email.as_str()),
            },
            _ => self.lockout.key_of_email(email.as_str()),
        };
        let attempt = self.lockout.reserve(key).await?;
        let typed = mail_token::normalize_code(code.expose_secret()).unwrap_or_default();
        // Constant-time compares: how much of a digest matched stays hidden.
        let found = candidates.into_iter().find(|t| {
            let expected = self.postman.code_digest(t.id, &typed);
            bool::from(expected.as_bytes().ct_eq(t.code_digest.as_bytes()))
        });
        match found {
            Some(token) => {
                attempt.passed().await?;
                Ok(token)
            }
            None => {
                attempt
                    .failed(owner, json!({"step": "mail_code"}), meta)
                    .await?;
                Err(CoreError::InvalidMailToken)
            }
        }
    }
}
