//! Delivery over SMTP (lettre, rustls with the webpki roots plus an
//! optional CA): `smtp://` upgrades with STARTTLS when the server offers
//! it, `smtp+starttls://` requires it, `smtps://` is TLS from the first
//! byte. Errors are reported without the server's free-form reply, which
//! may quote the recipient.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gatehouse_core::config::MailConfig;
use gatehouse_core::mail::Mail;
use gatehouse_core::ports::{MailError, Mailer};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use percent_encoding::percent_decode_str;
use secrecy::ExposeSecret;

use crate::templates::Templates;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// STARTTLS when the server offers it.
    Opportunistic,
    /// STARTTLS, or no mail.
    StartTls,
    /// TLS from the first byte.
    Implicit,
}

/// An `SMTP_URL`, taken apart.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub security: Security,
    pub host: String,
    pub port: u16,
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("security", &self.security)
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

fn decode(part: &str) -> Result<String, String> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| "SMTP_URL: user or password is not valid percent-encoded UTF-8".to_owned())
}

impl Endpoint {
    /// Reads `scheme://[user[:password]@]host[:port][/]`; user and password
    /// percent-decoded. Messages never quote the password.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or("SMTP_URL: expected scheme://host[:port]")?;
        let (security, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "smtp" => (Security::Opportunistic, 25),
            "smtp+starttls" => (Security::StartTls, 587),
            "smtps" => (Security::Implicit, 465),
            _ => return Err("SMTP_URL: the scheme must be smtp, smtp+starttls or smtps".into()),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        if hostport.contains(['/', '?', '#']) {
            return Err("SMTP_URL: no path or query is understood".into());
        }
        let credentials = userinfo
            .map(|u| {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                Ok::<_, String>((decode(user)?, decode(pass)?))
            })
            .transpose()?;
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| "SMTP_URL: the port is not a number".to_owned())?,
            ),
            _ => (hostport, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err("SMTP_URL: the host is missing".into());
        }
        Ok(Self {
            security,
            host: host.to_owned(),
            port,
            credentials,
        })
    }
}

/// Sends rendered mail through one SMTP server.
#[derive(Debug)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    templates: Arc<Templates>,
    /// A whole send (connect, handshake, every command) ends within this.
    deadline: Duration,
}

impl SmtpMailer {
    /// The mailer for `config` (which has `SMTP_URL`): the URL, the sender
    /// and the extra CA are checked here, before the first mail.
    pub fn new(config: &MailConfig, templates: Arc<Templates>) -> Result<Self, String> {
        let url = config.smtp_url.as_ref().ok_or("SMTP_URL: not set")?;
        let endpoint = Endpoint::parse(url.expose_secret())?;
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| "MAIL_FROM: not a valid address (`Name <user@host>` or `user@host`)")?;
        let mut tls = TlsParameters::builder(endpoint.host.clone());
        if let Some(path) = &config.smtp_tls_ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("SMTP_TLS_CA_FILE: cannot read {}: {e}", path.display()))?;
            let ca = Certificate::from_pem(&pem)
                .map_err(|_| "SMTP_TLS_CA_FILE: not a PEM certificate".to_owned())?;
            tls = tls.add_root_certificate(ca);
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| format!("SMTP_TLS_CA_FILE: {e}"))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&endpoint.host)
            .port(endpoint.port)
            .timeout(Some(config.smtp_timeout))
            .tls(match endpoint.security {
                Security::Opportunistic => Tls::Opportunistic(tls),
                Security::StartTls => Tls::Required(tls),
                Security::Implicit => Tls::Wrapper(tls),
            });
        if let Some((user, password)) = endpoint.credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            templates,
            deadline: config.smtp_timeout.saturating_mul(4),
        })
    }

    fn message(&self, mail: &Mail) -> Result<Message, MailError> {
        let rendered = self
            .templates
            .render(mail)
            .map_err(|e| MailError::Permanent(format!("template: {e}")))?;
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|_| MailError::Permanent("the recipient address is not valid".into()))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|_| MailError::Permanent("the message could not be built".into()))
    }
}

/// The error's kind and status code, never the server's reply text.
fn classify(e: &lettre::transport::smtp::Error) -> MailError {
    let what = match e.status() {
        Some(code) => format!("server answered {code}"),
        None if e.is_timeout() => "timed out".to_owned(),
        None if e.is_tls() => "TLS failed".to_owned(),
        None => "connection failed".to_owned(),
    };
    if e.is_permanent() {
        MailError::Permanent(what)
    } else {
        MailError::Transient(what)
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = self.message(mail)?;
        match tokio::time::timeout(self.deadline, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(MailError::Transient("timed out".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_security_the_server_and_decoded_credentials() {
        let e = Endpoint::parse("smtp://mail.example.com").unwrap();
        assert_eq!(
            (e.security, e.port, e.credentials),
            (Security::Opportunistic, 25, None)
        );
        let e =
            Endpoint::parse("smtp+starttls://us%40er:p%3Ass%2Fw@mail.example.com:2587/").unwrap();
        assert_eq!(e.security, Security::StartTls);
        assert_eq!((e.host.as_str(), e.port), ("mail.example.com", 2587));
        assert_eq!(
            e.credentials,
            Some(("us@er".to_owned(), "p:ss/w".to_owned()))
        );
        assert!(!format!("{e:?}").contains("p:ss"));
        let e = Endpoint::parse("smtps://[::1]").unwrap();
        assert_eq!(
            (e.security, e.host.as_str(), e.port),
            (Security::Implicit, "::1", 465)
        );
        assert!(Endpoint::parse("smtp://h:x").is_err());
        assert!(Endpoint::parse("smtp://h/path").is_err());
        assert!(Endpoint::parse("http://h").is_err());
        let err = Endpoint::parse("smtp://u:secret@").unwrap_err();
        assert!(!err.contains("secret"));
    }
}
