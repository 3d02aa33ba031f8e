//! Mailed tokens and notices: password resets, email verification, email changes.
//!
//! Handlers never wait for mail. They write a job to the outbox table ([`EmailFlows`]) and
//! answer; a worker beside the server claims due jobs, makes the token, stores its hash and
//! delivers the mail through SMTP (lettre) or, without `LATCHKEY_SMTP_URL`, writes it to the log
//! for local development. A failed delivery is retried with a doubling wait, and after
//! `LATCHKEY_MAIL_MAX_ATTEMPTS` kept as a dead letter; it never changes what the requester was
//! told.

mod flows;
mod templates;
mod transport;
mod worker;

pub use flows::{EmailFlows, MailSettings, log_unqueued};
pub use transport::Transport;
pub use worker::MailWorker;

/// One mail, rendered.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}
