use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

use super::Transport;
use super::worker::{MailWorker, Worker};
use crate::Config;
use crate::domain::Email;
use crate::metrics::Metrics;
use crate::store::{self, MailJob, MailKind, Store, StoreError};

/// The mail settings from the configuration.
pub struct MailSettings {
    pub public_url: String,
    pub reset_ttl: Duration,
    pub verify_ttl: Duration,
    pub require_verification: bool,
    pub max_attempts: u32,
    pub retry_delay: Duration,
}

/// What handlers hold: a way to ask for a mail without waiting for its delivery. Asking writes
/// the job to the outbox (`mail_outbox`) and wakes this instance's worker; the answer goes out
/// only once the job is stored, so a crash after it loses no mail.
#[derive(Clone)]
pub struct EmailFlows {
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    require_verification: bool,
}

impl EmailFlows {
    /// [`EmailFlows::spawn`] with the transport and settings `config` names.
    pub fn from_config(
        store: Arc<dyn Store>,
        config: &Config,
        metrics: Metrics,
    ) -> anyhow::Result<(Self, MailWorker)> {
        let log_links = config.mail.mail_log_links || config.server.listens_on_loopback();
        let transport = Transport::new(
            config.mail.smtp_url.as_deref(),
            &config.mail.mail_from,
            log_links,
        )?;
        let settings = MailSettings {
            public_url: config.mail.public_url.clone(),
            reset_ttl: config.mail.reset_ttl(),
            verify_ttl: config.mail.verify_ttl(),
            require_verification: config.mail.require_email_verification,
            max_attempts: config.mail.mail_max_attempts,
            retry_delay: config.mail.mail_retry_delay(),
        };
        Self::spawn(store, transport, settings, metrics)
    }

    /// Starts the worker that makes tokens and delivers mail.
    pub fn spawn(
        store: Arc<dyn Store>,
        transport: Transport,
        settings: MailSettings,
        metrics: Metrics,
    ) -> anyhow::Result<(Self, MailWorker)> {
        let public_url = settings.public_url.trim().trim_end_matches('/').to_owned();
        anyhow::ensure!(
            public_url.starts_with("http://") || public_url.starts_with("https://"),
            "LATCHKEY_PUBLIC_URL must be an http:// or https:// URL"
        );
        let wake = Arc::new(Notify::new());
        let worker = Worker {
            store: store.clone(),
            transport,
            public_url,
            reset_ttl: settings.reset_ttl,
            verify_ttl: settings.verify_ttl,
            max_attempts: settings.max_attempts,
            retry_delay: settings.retry_delay,
            metrics,
            wake: wake.clone(),
        };
        let flows = Self {
            store,
            wake,
            require_verification: settings.require_verification,
        };
        Ok((flows, MailWorker::start(worker)))
    }

    /// Whether logins wait for a verified email (`LATCHKEY_REQUIRE_EMAIL_VERIFICATION`).
    pub fn verification_required(&self) -> bool {
        self.require_verification
    }

    /// Mails a reset link to `email` if, and only if, an enabled account has it (looked up when
    /// the mail is sent, so the request's answer and timing are the same either way).
    pub async fn request_password_reset(&self, email: &Email) -> Result<(), StoreError> {
        self.enqueue(&[job(MailKind::PasswordReset, None, email.as_str(), None)])
            .await
    }

    /// Mails a verification link for the user's current address `email`.
    pub async fn send_verification(&self, user_id: Uuid, email: &str) -> Result<(), StoreError> {
        self.enqueue(&[job(MailKind::Verification, Some(user_id), email, None)])
            .await
    }

    /// Tells the owner of `email`, if an enabled account has it, that someone tried to sign up
    /// with it.
    pub async fn notify_signup_attempt(&self, email: &Email) -> Result<(), StoreError> {
        self.enqueue(&[job(MailKind::SignupAttempt, None, email.as_str(), None)])
            .await
    }

    /// Mails `new_email` the link that moves the account to it, and tells the current address
    /// `email` that a change was asked for: two jobs, each delivered (and retried) on its own.
    pub async fn request_email_change(
        &self,
        user_id: Uuid,
        email: &str,
        new_email: &str,
    ) -> Result<(), StoreError> {
        self.enqueue(&[
            job(MailKind::EmailChange, Some(user_id), email, Some(new_email)),
            job(
                MailKind::EmailChangeNotice,
                Some(user_id),
                email,
                Some(new_email),
            ),
        ])
        .await
    }

    async fn enqueue(&self, jobs: &[MailJob]) -> Result<(), StoreError> {
        self.store.enqueue_mail(jobs, store::now()).await?;
        self.wake.notify_one();
        Ok(())
    }
}

/// For a request whose own change is made already (an account created, a name changed): a mail
/// that could not be queued is logged, rather than answered with an error that would say nothing
/// happened.
pub fn log_unqueued(err: StoreError) {
    tracing::error!(target: "latchkey::mail", error = %err, "a mail could not be queued");
}

fn job(kind: MailKind, user_id: Option<Uuid>, email: &str, new_email: Option<&str>) -> MailJob {
    MailJob {
        id: Uuid::new_v4(),
        kind,
        user_id,
        email: email.to_owned(),
        new_email: new_email.map(str::to_owned),
        attempts: 0,
        claimed_until: None,
    }
}
