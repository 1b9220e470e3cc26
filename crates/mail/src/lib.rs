//! Mail adapters: the templates (built in, overridable from a directory),
//! the SMTP mailer, and the log mailer used in development without SMTP.

mod log;
mod smtp;
mod templates;

use std::sync::Arc;

use gatehouse_core::config::Config;
use gatehouse_core::ports::Mailer;

pub use log::LogMailer;
pub use smtp::{Endpoint, Security, SmtpMailer};
pub use templates::{Rendered, Templates};

/// The mailer the configuration asks for: SMTP when `SMTP_URL` is set,
/// else (development only: production requires `SMTP_URL`) the log.
pub fn from_config(config: &Config) -> Result<Arc<dyn Mailer>, String> {
    let templates = Arc::new(Templates::new(&config.mail)?);
    if config.mail.smtp_url.is_some() {
        Ok(Arc::new(SmtpMailer::new(&config.mail, templates)?))
    } else {
        tracing::warn!(
            "SMTP_URL is not set: mail is written to the log instead of being sent \
             (development only)"
        );
        Ok(Arc::new(LogMailer::new(templates)))
    }
}
