//! Mailed tokens and notices: password resets, email verification, email changes.
//!
//! Handlers never wait for mail. They put a job on a bounded queue ([`EmailFlows`]) and answer;
//! a worker beside the server makes the token, stores its hash and delivers the mail through
//! SMTP (lettre) or, without `LATCHKEY_SMTP_URL`, writes it to the log for local development.
//! A failed delivery is logged and never changes what the requester was told.

mod flows;
mod templates;
mod transport;

pub use flows::{EmailFlows, MailSettings};
pub use transport::Transport;

/// One mail, rendered.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}
