//! Mail templates: built into the binary, each one replaceable by a file of
//! the same name in `MAIL_TEMPLATE_DIR`, so a team can brand them. Text and
//! HTML bodies per message; `.html` templates are autoescaped. Messages
//! load nothing remote and carry no tracking.

use std::path::{Path, PathBuf};

use gatehouse_core::config::MailConfig;
use gatehouse_core::mail::{Mail, Message, OneTime};
use minijinja::{Environment, UndefinedBehavior, context};

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

/// Every template, by file name.
const BUILTIN: &[(&str, &str)] = builtin!(
    "layout.txt",
    "layout.html",
    "one_time.html",
    "verify_email.txt",
    "verify_email.html",
    "confirm_email_change.txt",
    "confirm_email_change.html",
    "reset_password.txt",
    "reset_password.html",
    "email_change_requested.txt",
    "email_change_requested.html",
    "address_in_use.txt",
    "address_in_use.html",
    "email_changed.txt",
    "email_changed.html",
    "password_changed.txt",
    "password_changed.html",
    "password_reset.txt",
    "password_reset.html",
    "two_factor_enabled.txt",
    "two_factor_enabled.html",
    "two_factor_disabled.txt",
    "two_factor_disabled.html",
    "api_key_created.txt",
    "api_key_created.html",
    "passkey_added.txt",
    "passkey_added.html",
    "test.txt",
    "test.html",
);

/// A message ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The template set, checked once at startup.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    product: String,
    base_url: String,
}

/// `30 minutes`, `24 hours`.
fn duration(minutes: u64) -> String {
    match minutes {
        m if m >= 120 && m % 60 == 0 => format!("{} hours", m / 60),
        60 => "1 hour".to_owned(),
        1 => "1 minute".to_owned(),
        m => format!("{m} minutes"),
    }
}

/// The built-in template `name`, or the file of that name in `dir`. Only
/// known names are ever looked up, so no name reaches outside `dir`.
fn load(dir: Option<&Path>, name: &str) -> Result<Option<String>, minijinja::Error> {
    let Some((_, builtin)) = BUILTIN.iter().find(|(n, _)| *n == name) else {
        return Ok(None);
    };
    if let Some(path) = dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
        return std::fs::read_to_string(&path).map(Some).map_err(|e| {
            minijinja::Error::new(
                minijinja::ErrorKind::TemplateNotFound,
                format!("cannot read {}: {e}", path.display()),
            )
        });
    }
    Ok(Some((*builtin).to_owned()))
}

impl Templates {
    /// The templates for `config`, every one rendered once with sample
    /// data: a broken override stops startup, not a mail.
    pub fn new(config: &MailConfig) -> Result<Self, String> {
        let dir: Option<PathBuf> = config.template_dir.clone();
        if let Some(d) = &dir
            && !d.is_dir()
        {
            return Err(format!(
                "MAIL_TEMPLATE_DIR: {} is not a directory",
                d.display()
            ));
        }
        let mut env = Environment::new();
        // A misspelt variable in a template is an error, not an empty gap.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("duration", duration);
        env.set_loader(move |name| load(dir.as_deref(), name));
        let templates = Self {
            env,
            product: config.product_name.clone(),
            base_url: config.app_base_url.clone(),
        };
        templates.check()?;
        Ok(templates)
    }

    fn check(&self) -> Result<(), String> {
        let one_time = OneTime {
            link: format!("{}/verify-email?token=sample", self.base_url),
            code: "ABCD-EFGH".into(),
            link_minutes: 30,
            code_minutes: 30,
        };
        let samples = [
            Message::VerifyEmail(one_time.clone()),
            Message::ConfirmEmailChange(one_time.clone()),
            Message::ResetPassword(one_time),
            Message::EmailChangeRequested {
                new_address: "n***@example.com".into(),
            },
            Message::AddressInUse,
            Message::EmailChanged {
                new_address: "n***@example.com".into(),
            },
            Message::PasswordChanged,
            Message::PasswordReset,
            Message::TwoFactorEnabled,
            Message::TwoFactorDisabled,
            Message::ApiKeyCreated {
                name: "ci".into(),
                prefix: "gh_abcdefgh".into(),
            },
            Message::PasskeyAdded {
                name: "laptop".into(),
            },
            Message::Test,
        ];
        for message in samples {
            let name = message.template();
            let mail = Mail {
                to: "someone@example.com".into(),
                username: "someone".into(),
                message,
            };
            self.render(&mail)
                .map_err(|e| format!("MAIL_TEMPLATE_DIR: template {name}: {e}"))?;
        }
        Ok(())
    }

    /// Subject, text and HTML of `mail`.
    pub fn render(&self, mail: &Mail) -> Result<Rendered, minijinja::Error> {
        let name = mail.message.template();
        let text_template = self.env.get_template(&format!("{name}.txt"))?;
        let base = context! {
            product => &self.product,
            base_url => &self.base_url,
            username => &mail.username,
            message => &mail.message,
        };
        let mut text = text_template.render_captured(&base)?;
        let subject = text
            .with_state_mut(|state| state.render_block("subject"))?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let text = text.into_output();
        let ctx = context! { subject => &subject, ..base };
        let html = self
            .env
            .get_template(&format!("{name}.html"))?
            .render(&ctx)?;
        Ok(Rendered {
            subject,
            text: format!("{}\n", text.trim()),
            html,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> MailConfig {
        gatehouse_core::config::Config::from_vars(vars.iter().copied())
            .unwrap()
            .mail
    }

    fn reset() -> Mail {
        Mail {
            to: "jane@example.com".into(),
            username: "<b>jane</b>".into(),
            message: Message::ResetPassword(OneTime {
                link: "https://id.example.com/reset-password?token=abc".into(),
                code: "ABCD-EFGH".into(),
                link_minutes: 30,
                code_minutes: 30,
            }),
        }
    }

    #[test]
    fn every_built_in_template_renders_with_the_product_and_links() {
        let t = Templates::new(&config(&[
            ("MAIL_PRODUCT_NAME", "Acme ID"),
            ("APP_BASE_URL", "https://id.example.com"),
        ]))
        .unwrap();
        let r = t.render(&reset()).unwrap();
        assert_eq!(r.subject, "Reset your password");
        assert!(
            r.text
                .contains("https://id.example.com/reset-password?token=abc")
        );
        assert!(r.text.contains("ABCD-EFGH") && r.text.contains("30 minutes"));
        assert!(r.text.contains("Acme ID"));
        assert!(
            r.html
                .contains(r#"href="https://id.example.com/reset-password?token=abc""#)
        );
        // HTML is escaped, text is not; nothing is loaded from elsewhere.
        assert!(r.html.contains("&lt;b&gt;jane&lt;"), "{}", r.html);
        assert!(r.text.contains("<b>jane</b>"));
        assert!(!r.html.contains("<img") && !r.html.contains("<script"));
    }

    #[test]
    fn a_template_directory_overrides_by_name_and_is_checked_at_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("test.txt"),
            "{% extends \"layout.txt\" %}{% block subject %}Branded{% endblock %}\
             {% block body %}Hi from {{ product }}{% endblock %}",
        )
        .unwrap();
        let path = dir.path().display().to_string();
        let t = Templates::new(&config(&[("MAIL_TEMPLATE_DIR", &path)])).unwrap();
        let mail = Mail {
            to: "a@example.com".into(),
            username: String::new(),
            message: Message::Test,
        };
        let r = t.render(&mail).unwrap();
        assert_eq!(r.subject, "Branded");
        assert!(r.text.starts_with("Hi from Gatehouse"));
        std::fs::write(dir.path().join("test.html"), "{{ no_such_variable }}").unwrap();
        let err = Templates::new(&config(&[("MAIL_TEMPLATE_DIR", &path)])).unwrap_err();
        assert!(err.contains("template test"), "{err}");
    }
}
