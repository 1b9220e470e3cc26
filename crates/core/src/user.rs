//! Users and their validated fields. Every rule of the contract's validation
//! table lives here, so the HTTP API and the CLI enforce the same ones.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rbac::Role;

/// A field that failed validation (the value itself is never kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: &'static str,
    pub message: String,
}

impl FieldProblem {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

const RESERVED_USERNAMES: &[&str] = &[
    "admin",
    "administrator",
    "root",
    "system",
    "api",
    "www",
    "mail",
    "support",
    "help",
    "null",
    "undefined",
    "true",
    "false",
];

/// 3–50 characters of `[A-Za-z0-9_-]`, not reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, FieldProblem> {
        let len = raw.chars().count();
        if !(3..=50).contains(&len) {
            return Err(FieldProblem::new(
                "username",
                "must be 3 to 50 characters long",
            ));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(FieldProblem::new(
                "username",
                "may contain only letters, digits, '_' and '-'",
            ));
        }
        if RESERVED_USERNAMES.contains(&raw.to_ascii_lowercase().as_str()) {
            return Err(FieldProblem::new("username", "is reserved"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive uniqueness key.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// A valid address of at most 254 characters, trimmed and lower-cased.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldProblem> {
        let normalized = raw.trim().to_lowercase();
        if normalized.is_empty() || normalized.chars().count() > 254 {
            return Err(FieldProblem::new(
                "email",
                "must be a valid email address of at most 254 characters",
            ));
        }
        // RFC 5321/5322 address syntax; display names and comments are not
        // addresses a user can receive mail at, so they are refused.
        let options = email_address::Options::default()
            .without_display_text()
            .without_domain_literal();
        match email_address::EmailAddress::parse_with_options(&normalized, options) {
            Ok(addr) if addr.domain().contains('.') => Ok(Self(normalized)),
            _ => Err(FieldProblem::new("email", "must be a valid email address")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `j***@example.com`: enough for an operator to correlate, not to read.
    pub fn masked(&self) -> String {
        mask_email(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

/// Masks the local part of an address for logs.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// At most 100 characters after HTML tags and control characters are removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName(String);

impl FullName {
    /// `None` when nothing is left after cleaning.
    pub fn parse(raw: &str) -> Result<Option<Self>, FieldProblem> {
        if raw.chars().count() > 100 {
            return Err(FieldProblem::new(
                "full_name",
                "must be at most 100 characters",
            ));
        }
        let cleaned = strip_markup(raw);
        let cleaned = cleaned.trim();
        Ok((!cleaned.is_empty()).then(|| Self(cleaned.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Removes `<...>` tags (and an unterminated trailing `<...`) and control
/// characters. A name needs no markup; removing it keeps stored values inert
/// wherever they are displayed later.
fn strip_markup(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_tag = false;
    for c in raw.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

// Held decrypted; the API serialises it as it is.
/// A user; never a password hash, secret, token or key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub email_verified: bool,
    // Serialised as `null` when unset, never left out.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub full_name: Option<String>,
    pub role: Role,
    pub is_active: bool,
    pub mfa_enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: OffsetDateTime,
    /// Bumped when credentials change; tokens carrying an older value die.
    #[serde(skip)]
    pub auth_version: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["abc", "John_Doe-1", &"a".repeat(50)] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(51),
            "has space",
            "émile",
            "a.b",
            "Admin",
            "ROOT",
            "null",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Username::parse("MiXed").unwrap().key(), "mixed");
    }

    #[test]
    fn emails_are_trimmed_lowercased_and_checked() {
        assert_eq!(
            Email::parse("  Jane@Example.COM ").unwrap().as_str(),
            "jane@example.com"
        );
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "",
            "plain",
            "a@b",
            "a@@b.com",
            "Jane <jane@example.com>",
            &long,
            "a@[127.0.0.1]",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Email::parse("jane@example.com").unwrap().masked(),
            "j***@example.com"
        );
        assert!(!format!("{:?}", Email::parse("jane@example.com").unwrap()).contains("jane@"));
    }

    #[test]
    fn full_names_lose_markup() {
        let name = FullName::parse("<b>Jane</b> <script>x</script>Doe\u{7}")
            .unwrap()
            .unwrap();
        assert_eq!(name.as_str(), "Jane xDoe");
        assert_eq!(
            FullName::parse("<img src=x onerror=alert(1)>").unwrap(),
            None
        );
        assert!(FullName::parse(&"x".repeat(101)).is_err());
        assert_eq!(
            FullName::parse("Zoë O'Brien").unwrap().unwrap().as_str(),
            "Zoë O'Brien"
        );
    }
}
