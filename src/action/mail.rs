//! The mail action: SMTP (STARTTLS, TLS or plain to a local relay) through lettre over
//! rustls, credentials from a file; one mail per event, or with `digest` one mail per period
//! listing every event of that period (the outbox holds them until the mail went out).

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::ActionError;
use crate::config::{ActionConfig, ActionKind, MailTls, DIGEST_SUBJECT, MAIL_SUBJECT};
use crate::outbox::{Delivery, DeliveryError, Escape, Notice, Sink, Template};

pub struct Mail {
    name: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    digest: Option<Duration>,
    subject: Template,
    body: Template,
}

impl Mail {
    pub fn new(cfg: &ActionConfig) -> Result<Mail, ActionError> {
        let ActionKind::Mail {
            server,
            port,
            tls,
            from,
            to,
            credentials,
            digest,
            subject,
            body,
        } = &cfg.kind
        else {
            return Err(ActionError::Kind(cfg.name.clone()));
        };
        let bad = |what: String| ActionError::Invalid(cfg.name.clone(), what);
        let mut b = match tls {
            MailTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(server),
            MailTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(server),
            MailTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                server,
            )),
        }
        .map_err(|e| bad(format!("server {server}: {e}")))?
        .port(*port)
        .timeout(Some(cfg.timeout));
        if let Some(c) = credentials {
            let (user, pass) = c.expose().split_once(':').unwrap_or((c.expose(), ""));
            b = b.credentials(Credentials::new(user.to_string(), pass.to_string()));
        }
        let mailbox = |a: &String| a.parse::<Mailbox>().map_err(|e| bad(format!("{a}: {e}")));
        let digest = (!digest.is_zero()).then_some(*digest);
        let subject = match (subject, digest) {
            (Some(s), _) => s.clone(),
            (None, Some(_)) => Template::parse(DIGEST_SUBJECT, &["count"]).expect("subject"),
            (None, None) => Template::parse(MAIL_SUBJECT, &[]).expect("subject"),
        };
        Ok(Mail {
            name: cfg.name.clone(),
            transport: b.build(),
            from: mailbox(from)?,
            to: to.iter().map(mailbox).collect::<Result<_, _>>()?,
            digest,
            subject,
            body: body.clone(),
        })
    }

    /// One mail about `notices` (one, or a digest's).
    fn message(&self, notices: &[Notice]) -> Result<Message, DeliveryError> {
        let first = &notices[0];
        let count = notices.len().to_string();
        let subject = self
            .subject
            .render(first, Escape::None, &[("count", &count)]);
        let body: Vec<String> = (notices.iter())
            .map(|n| self.body.render(n, Escape::None, &[]))
            .collect();
        let mut m = Message::builder().from(self.from.clone());
        for to in &self.to {
            m = m.to(to.clone());
        }
        m.subject(subject.replace(['\n', '\r'], " "))
            .header(ContentType::TEXT_PLAIN)
            .body(body.join("\n"))
            .map_err(|e| DeliveryError::Permanent(format!("cannot build the mail: {e}")))
    }
}

/// SMTP errors: a 5xx answer will not change; everything else (4xx, timeouts, a server
/// that is down, TLS trouble) is tried again.
fn smtp_error(e: lettre::transport::smtp::Error) -> DeliveryError {
    let mut why = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        why.push_str(&format!(": {s}"));
        src = s.source();
    }
    if e.is_permanent() {
        DeliveryError::Permanent(why)
    } else {
        DeliveryError::Transient(why)
    }
}

impl Sink for Mail {
    fn name(&self) -> &str {
        &self.name
    }

    fn digest(&self) -> Option<Duration> {
        self.digest
    }

    fn deliver<'a>(&'a self, n: &'a Notice) -> Delivery<'a> {
        self.deliver_batch(std::slice::from_ref(n))
    }

    fn deliver_batch<'a>(&'a self, notices: &'a [Notice]) -> Delivery<'a> {
        Box::pin(async move {
            if notices.is_empty() {
                return Ok(());
            }
            let m = self.message(notices)?;
            self.transport.send(m).await.map_err(smtp_error)?;
            tracing::info!(F2B_ACTION = %self.name, events = notices.len(),
                           "action {}: mail sent about {} event(s)", self.name, notices.len());
            Ok(())
        })
    }
}
