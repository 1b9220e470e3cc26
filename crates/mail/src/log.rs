//! The development mailer: each message is written to the log (recipient
//! masked, link and code included) instead of being sent, so the flows can
//! be used without a mail server. The only place a token is ever logged;
//! production refuses to start without `SMTP_URL`.

use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_core::mail::Mail;
use gatehouse_core::ports::{MailError, Mailer};
use gatehouse_core::user::mask_email;

use crate::templates::Templates;

#[derive(Debug)]
pub struct LogMailer {
    templates: Arc<Templates>,
}

impl LogMailer {
    pub fn new(templates: Arc<Templates>) -> Self {
        Self { templates }
    }
}

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let rendered = self
            .templates
            .render(mail)
            .map_err(|e| MailError::Permanent(format!("template: {e}")))?;
        tracing::info!(
            target: "gatehouse::mail",
            to = %mask_email(&mail.to),
            subject = %rendered.subject,
            body = %rendered.text,
            "mail written to the log, not sent (no SMTP_URL: development only)"
        );
        Ok(())
    }
}
