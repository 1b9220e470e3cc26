//! Mail the service sends: the messages (what a template needs to say),
//! the one-time secrets some of them carry, and the links they point to.
//! How a message looks (templates) and how it travels (SMTP, the log) are
//! the mail adapter's business.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One message to one address.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The account's username, for the greeting (empty when none applies).
    pub username: String,
    pub message: Message,
}

impl fmt::Debug for Mail {
    /// The recipient and any secret stay out of debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("to", &crate::user::mask_email(&self.to))
            .field("template", &self.message.template())
            .finish_non_exhaustive()
    }
}

/// A link and the same grant as a code to type, and how long they last.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTime {
    /// `APP_BASE_URL` + the page + `?token=…`.
    pub link: String,
    /// The short code, `XXXX-XXXX`.
    pub code: String,
    /// Minutes the link stays valid.
    pub link_minutes: u64,
    /// Minutes the code stays valid.
    pub code_minutes: u64,
}

impl fmt::Debug for OneTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTime([redacted])")
    }
}

/// What a mail says. The serialised `template` names the template files
/// (`<template>.txt`, `<template>.html`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum Message {
    /// Confirms the account's address (registration, or asked for again).
    VerifyEmail(OneTime),
    /// Confirms a new address, sent to that address.
    ConfirmEmailChange(OneTime),
    /// Sets a new password.
    ResetPassword(OneTime),
    /// To the current address: a change to `new_address` (masked) was asked for.
    EmailChangeRequested {
        new_address: String,
    },
    /// To an address asked for as a new one that another account already
    /// has: no link, so the asker learns nothing and the owner is told.
    AddressInUse,
    /// To the old address: the change to `new_address` (masked) is done.
    EmailChanged {
        new_address: String,
    },
    PasswordChanged,
    PasswordReset,
    TwoFactorEnabled,
    TwoFactorDisabled,
    ApiKeyCreated {
        name: String,
        prefix: String,
    },
    PasskeyAdded {
        name: String,
    },
    /// `gatehouse mail-test`.
    Test,
    /// Written for a request that sends nothing (an unknown address), so
    /// both cost the same; the sender drops it.
    Nothing,
}

impl Message {
    /// The template's name.
    pub fn template(&self) -> &'static str {
        match self {
            Message::VerifyEmail(_) => "verify_email",
            Message::ConfirmEmailChange(_) => "confirm_email_change",
            Message::ResetPassword(_) => "reset_password",
            Message::EmailChangeRequested { .. } => "email_change_requested",
            Message::AddressInUse => "address_in_use",
            Message::EmailChanged { .. } => "email_changed",
            Message::PasswordChanged => "password_changed",
            Message::PasswordReset => "password_reset",
            Message::TwoFactorEnabled => "two_factor_enabled",
            Message::TwoFactorDisabled => "two_factor_disabled",
            Message::ApiKeyCreated { .. } => "api_key_created",
            Message::PasskeyAdded { .. } => "passkey_added",
            Message::Test => "test",
            Message::Nothing => "nothing",
        }
    }

    /// Every template a message can name (the adapter checks it has them).
    pub const TEMPLATES: &'static [&'static str] = &[
        "verify_email",
        "confirm_email_change",
        "reset_password",
        "email_change_requested",
        "address_in_use",
        "email_changed",
        "password_changed",
        "password_reset",
        "two_factor_enabled",
        "two_factor_disabled",
        "api_key_created",
        "passkey_added",
        "test",
    ];

    /// The one-time secret the message carries, if any.
    pub fn one_time(&self) -> Option<&OneTime> {
        match self {
            Message::VerifyEmail(s)
            | Message::ConfirmEmailChange(s)
            | Message::ResetPassword(s) => Some(s),
            _ => None,
        }
    }
}

/// Where mailed links point: `APP_BASE_URL` and the page of each flow.
#[derive(Debug, Clone)]
pub struct Links {
    base: String,
}

impl Links {
    /// `base` without a trailing slash (the configuration trims it).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// Verification and email change alike.
    pub fn verify_email(&self, token: &str) -> String {
        format!("{}/verify-email?token={token}", self.base)
    }

    pub fn reset_password(&self, token: &str) -> String {
        format!("{}/reset-password?token={token}", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_recipient_and_the_secret() {
        let mail = Mail {
            to: "jane@example.com".into(),
            username: "jane".into(),
            message: Message::ResetPassword(OneTime {
                link: "http://x/reset-password?token=SECRET".into(),
                code: "ABCD-EFGH".into(),
                link_minutes: 30,
                code_minutes: 30,
            }),
        };
        let shown = format!("{mail:?} {:?}", mail.message);
        assert!(
            !shown.contains("SECRET") && !shown.contains("ABCD"),
            "{shown}"
        );
        assert!(!shown.contains("jane@"), "{shown}");
        let json = serde_json::to_string(&mail).unwrap();
        assert!(json.contains(r#""template":"reset_password""#), "{json}");
        assert_eq!(serde_json::from_str::<Mail>(&json).unwrap(), mail);
    }

    #[test]
    fn links_join_the_base_and_the_page() {
        let links = Links::new("https://id.example.com/ui/");
        assert_eq!(
            links.verify_email("t"),
            "https://id.example.com/ui/verify-email?token=t"
        );
        assert_eq!(
            links.reset_password("t"),
            "https://id.example.com/ui/reset-password?token=t"
        );
    }
}
