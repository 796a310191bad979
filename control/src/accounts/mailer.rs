//! Delivering invitation and password-reset links.
//!
//! [`Mailer`] is what the handlers see. Three senders:
//! - [`LogMailer`], the default: writes each mail, link included, to the
//!   log. For development and for deployments that hand links over by other
//!   means; the links are secrets, so the log then is too (a warning at start
//!   says so).
//! - [`SmtpMailer`] (`smtp_url`): lettre over SMTP with rustls, submission
//!   with STARTTLS required or implicit TLS, as the URL says.
//! - [`MemoryMailer`]: keeps mails in memory, for tests and embedding.
//!
//! Sending happens off the request ([`spawn_send`]): an invitation or reset
//! is answered whatever the mail server does, and a failure is logged.

use anyhow::Context as _;
use futures::future::BoxFuture;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// One mail: plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Something that delivers mail.
pub trait Mailer: Send + Sync + std::fmt::Debug {
    fn send(&self, mail: Mail) -> BoxFuture<'_, anyhow::Result<()>>;
}

/// Sends `mail` in the background; a failure is logged (without the body,
/// which holds a secret link).
pub fn spawn_send(mailer: Arc<dyn Mailer>, mail: Mail) {
    tokio::spawn(async move {
        let (to, subject) = (mail.to.clone(), mail.subject.clone());
        if let Err(e) = mailer.send(mail).await {
            tracing::error!(to, subject, error = format!("{e:#}"), "mail not delivered");
        }
    });
}

/// Writes mails to the log.
#[derive(Debug, Default)]
pub struct LogMailer;

impl Mailer for LogMailer {
    fn send(&self, mail: Mail) -> BoxFuture<'_, anyhow::Result<()>> {
        tracing::info!(
            to = mail.to,
            subject = mail.subject,
            body = mail.body,
            "mail (log sender)"
        );
        Box::pin(async { Ok(()) })
    }
}

/// Sends mails through an SMTP server.
#[derive(Debug)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// From lettre's URL form (`smtps://user@host:465`,
    /// `smtp://user@host:587?tls=required`) and a password kept apart from
    /// it. Connects only when the first mail is sent.
    pub fn new(url: &str, password: Option<String>, from: &str) -> anyhow::Result<Self> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .with_context(|| format!("smtp_url {url:?}"))?;
        if let Some(password) = password {
            let user = url::Url::parse(url)
                .map(|u| u.username().to_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            from: from
                .parse()
                .with_context(|| format!("mail_from {from:?}"))?,
        })
    }
}

impl Mailer for SmtpMailer {
    fn send(&self, mail: Mail) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let message = Message::builder()
                .from(self.from.clone())
                .to(mail.to.parse().context("recipient")?)
                .subject(mail.subject)
                .body(mail.body)
                .context("building the message")?;
            self.transport.send(message).await.context("SMTP")?;
            Ok(())
        })
    }
}

/// Keeps every mail; [`MemoryMailer::wait_for`] waits for one.
#[derive(Debug, Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<Mail>>,
    arrived: Notify,
}

impl MemoryMailer {
    /// Every mail sent so far.
    pub fn sent(&self) -> Vec<Mail> {
        self.sent.lock().expect("mailer lock").clone()
    }

    /// The `n`th mail (from 0) to `to`, once it has been sent.
    pub async fn wait_for(&self, to: &str, n: usize) -> Mail {
        loop {
            let arrived = self.arrived.notified();
            if let Some(m) = self.sent().into_iter().filter(|m| m.to == to).nth(n) {
                return m;
            }
            arrived.await;
        }
    }
}

impl Mailer for MemoryMailer {
    fn send(&self, mail: Mail) -> BoxFuture<'_, anyhow::Result<()>> {
        self.sent.lock().expect("mailer lock").push(mail);
        self.arrived.notify_waiters();
        Box::pin(async { Ok(()) })
    }
}

/// The mailer the configuration asks for.
pub fn from_config(config: &crate::config::Config) -> anyhow::Result<Arc<dyn Mailer>> {
    let Some(url) = &config.smtp_url else {
        tracing::warn!(
            "smtp_url is not set: invitation and password-reset mails are written to the log, \
             and the links in them are secrets"
        );
        return Ok(Arc::new(LogMailer));
    };
    let password = match &config.smtp_password_file {
        Some(file) => Some(
            std::fs::read_to_string(file)
                .with_context(|| format!("smtp_password_file {}", file.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        ),
        None => std::env::var("SMTP_PASSWORD").ok(),
    };
    Ok(Arc::new(SmtpMailer::new(url, password, &config.mail_from)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn smtp_sender_is_built_from_configuration() {
        let config = crate::config::Config {
            smtp_url: Some("smtp://mailer@127.0.0.1:2525?tls=required".into()),
            ..Default::default()
        };
        // Construction only: nothing connects until a mail is sent.
        from_config(&config).unwrap();
        assert!(
            SmtpMailer::new(
                "smtps://u@mail.example.com",
                Some("pw".into()),
                "a@b.example"
            )
            .is_ok()
        );
        assert!(SmtpMailer::new("smtp://mail.example.com", None, "not a mailbox").is_err());
    }

    #[tokio::test]
    async fn memory_mailer_waits() {
        let m = Arc::new(MemoryMailer::default());
        let waiter = tokio::spawn({
            let m = m.clone();
            async move { m.wait_for("b@x.example", 0).await }
        });
        let mail = |to: &str| Mail {
            to: to.into(),
            subject: "s".into(),
            body: "b".into(),
        };
        m.send(mail("a@x.example")).await.unwrap();
        m.send(mail("b@x.example")).await.unwrap();
        assert_eq!(waiter.await.unwrap().to, "b@x.example");
        assert_eq!(m.sent().len(), 2);
    }
}
