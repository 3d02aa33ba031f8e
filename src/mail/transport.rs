use std::time::Duration;

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Mail;

/// Longest an SMTP conversation may stall before the delivery counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where mail goes: an SMTP server, or, when none is configured, the log.
pub enum Transport {
    Smtp {
        smtp: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    /// Development only: `cargo run` has no mail server, yet its developer needs the links.
    /// `links` is false when anyone but the developer may read the log (see [`Transport::new`]).
    Log { from: Mailbox, links: bool },
}

impl Transport {
    /// `smtp_url` as lettre reads it: `smtps://` is TLS from the first byte, `smtp://` plain
    /// unless `?tls=required` (STARTTLS) or `?tls=opportunistic`; credentials in the userinfo.
    ///
    /// Without a server, `log_links` says whether unsent mails go to the log whole, live links
    /// included. A server reachable from other machines (the caller's rule) keeps them out: a
    /// log is read by more people than its mailboxes are, and a reset link is the account.
    pub fn new(smtp_url: Option<&str>, from: &str, log_links: bool) -> anyhow::Result<Self> {
        let from: Mailbox = from
            .parse()
            .map_err(|err| anyhow::anyhow!("LATCHKEY_MAIL_FROM is not a mailbox: {err}"))?;
        let Some(url) = smtp_url.filter(|url| !url.trim().is_empty()) else {
            if log_links {
                tracing::warn!(
                    "LATCHKEY_SMTP_URL is not set: mails are NOT sent, they are written to this \
                     log (with the live links they carry) for local development. Set \
                     LATCHKEY_SMTP_URL for any real deployment."
                );
            } else {
                tracing::warn!(
                    "LATCHKEY_SMTP_URL is not set: mails are NOT sent, and on this non-loopback \
                     address their links are withheld from the log too. Set LATCHKEY_SMTP_URL \
                     (or, for development only, LATCHKEY_MAIL_LOG_LINKS=true)."
                );
            }
            return Ok(Self::Log {
                from,
                links: log_links,
            });
        };
        // The URL holds the SMTP password: it is never part of a message, only lettre's
        // description of what is wrong with it.
        let smtp = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.trim())
            .map_err(|err| anyhow::anyhow!("LATCHKEY_SMTP_URL is unusable: {err}"))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Self::Smtp { smtp, from })
    }

    pub async fn deliver(&self, mail: &Mail) -> anyhow::Result<()> {
        match self {
            Self::Smtp { smtp, from } => {
                let message = message(from, mail)?;
                smtp.send(message)
                    .await
                    .context("the SMTP server did not take the mail")?;
                Ok(())
            }
            Self::Log { from, links: true } => {
                // Deliberately the whole mail, link and all: with no SMTP server this is the only
                // way a developer gets it. A configured server means this branch never runs.
                tracing::warn!(
                    target: "latchkey::mail",
                    from = %from,
                    to = %mail.to,
                    subject = %mail.subject,
                    "NOT SENT (LATCHKEY_SMTP_URL is not set; development only):\n{}",
                    mail.text
                );
                Ok(())
            }
            Self::Log { from, links: false } => {
                tracing::warn!(
                    target: "latchkey::mail",
                    from = %from,
                    to = %mail.to,
                    subject = %mail.subject,
                    "NOT SENT (LATCHKEY_SMTP_URL is not set); its link is withheld from the log \
                     on a non-loopback address"
                );
                Ok(())
            }
        }
    }
}

fn message(from: &Mailbox, mail: &Mail) -> anyhow::Result<Message> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|err| anyhow::anyhow!("the recipient is not a mailbox lettre accepts: {err}"))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&mail.subject)
        // `<random@hostname>`: spam filters distrust a mail without one.
        .message_id(None)
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ))
        .context("the mail could not be built")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_sender_and_plain_urls_are_accepted() {
        assert!(Transport::new(None, "Latchkey <no-reply@localhost>", true).is_ok());
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://user:p%40ss@mail.example.com:587?tls=required",
            "smtps://user:pass@mail.example.com",
        ] {
            assert!(
                Transport::new(Some(url), "no-reply@example.com", false).is_ok(),
                "{url}"
            );
        }
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_its_password() {
        for url in [
            "http://user:hunter2@mail.example.com",
            "smtp://user:hunter2@",
        ] {
            let err = Transport::new(Some(url), "no-reply@example.com", false)
                .err()
                .expect("accepted");
            assert!(!format!("{err:#}").contains("hunter2"), "{err:#}");
        }
        assert!(Transport::new(None, "not a mailbox", true).is_err());
    }

    #[test]
    fn a_message_has_both_bodies() {
        let from: Mailbox = "Latchkey <no-reply@example.com>".parse().unwrap();
        let mail = Mail {
            to: "ada@example.com".into(),
            subject: "Hello".into(),
            text: "plain body".into(),
            html: "<p>html body</p>".into(),
        };
        let raw = String::from_utf8(message(&from, &mail).unwrap().formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("Message-ID: <"), "{raw}");
        assert!(raw.contains("plain body") && raw.contains("<p>html body</p>"));
    }
}
