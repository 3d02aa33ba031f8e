use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{Transport, templates};
use crate::Config;
use crate::audit::{self, AuditEvent};
use crate::auth::{random_token, token_hash};
use crate::domain::Email;
use crate::store::{self, EmailTokenPurpose, NewEmailToken, Store};

/// Jobs waiting for the worker. A burst past this is dropped (and logged): rate limits keep
/// real traffic far below it.
const QUEUE_CAPACITY: usize = 1024;

/// SMTP conversations at once.
const CONCURRENT_DELIVERIES: usize = 4;

/// The mail settings from the configuration.
pub struct MailSettings {
    pub public_url: String,
    pub reset_ttl: Duration,
    pub verify_ttl: Duration,
    pub require_verification: bool,
}

/// What handlers hold: a way to ask for a mail without waiting for it.
#[derive(Clone)]
pub struct EmailFlows {
    jobs: mpsc::Sender<Job>,
    require_verification: bool,
}

enum Job {
    /// Someone asked for a reset link for this address; whether an account has it is only
    /// looked up here, off the request, so the answer and its timing are the same either way.
    PasswordReset { email: Email },
    /// A verification link for `email`, the address the user has now.
    Verification { user_id: Uuid, email: String },
    /// Someone tried to sign up with an address an account has; its owner is told. Looked up
    /// here, like a reset, so a disabled account gets nothing and the request learns nothing.
    SignupAttempt { email: Email },
    /// A confirmation link for `new_email`, and a notice to `email`, the address the account
    /// had when the change was asked for.
    EmailChange {
        user_id: Uuid,
        email: String,
        new_email: String,
    },
}

impl EmailFlows {
    /// [`EmailFlows::spawn`] with the transport and settings `config` names.
    pub fn from_config(
        store: Arc<dyn Store>,
        config: &Config,
    ) -> anyhow::Result<(Self, JoinHandle<()>)> {
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
        };
        Self::spawn(store, transport, settings)
    }

    /// Starts the worker that makes tokens and delivers mail; it lives as long as the returned
    /// handle is not aborted.
    pub fn spawn(
        store: Arc<dyn Store>,
        transport: Transport,
        settings: MailSettings,
    ) -> anyhow::Result<(Self, JoinHandle<()>)> {
        let public_url = settings.public_url.trim().trim_end_matches('/').to_owned();
        anyhow::ensure!(
            public_url.starts_with("http://") || public_url.starts_with("https://"),
            "LATCHKEY_PUBLIC_URL must be an http:// or https:// URL"
        );
        let worker = Arc::new(Worker {
            store,
            transport,
            public_url,
            reset_ttl: settings.reset_ttl,
            verify_ttl: settings.verify_ttl,
            deliveries: Arc::new(Semaphore::new(CONCURRENT_DELIVERIES)),
        });
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        let handle = tokio::spawn(worker.run(queue));
        let flows = Self {
            jobs,
            require_verification: settings.require_verification,
        };
        Ok((flows, handle))
    }

    /// Whether logins wait for a verified email (`LATCHKEY_REQUIRE_EMAIL_VERIFICATION`).
    pub fn verification_required(&self) -> bool {
        self.require_verification
    }

    /// Mails a reset link to `email` if, and only if, an enabled account has it.
    pub fn request_password_reset(&self, email: Email) {
        self.enqueue(Job::PasswordReset { email });
    }

    /// Mails a verification link for the user's current address `email`.
    pub fn send_verification(&self, user_id: Uuid, email: String) {
        self.enqueue(Job::Verification { user_id, email });
    }

    /// Tells the owner of `email`, if an enabled account has it, that someone tried to sign up
    /// with it.
    pub fn notify_signup_attempt(&self, email: Email) {
        self.enqueue(Job::SignupAttempt { email });
    }

    /// Mails `new_email` the link that moves the account to it, and tells the current address
    /// `email` that a change was asked for.
    pub fn request_email_change(&self, user_id: Uuid, email: String, new_email: String) {
        self.enqueue(Job::EmailChange {
            user_id,
            email,
            new_email,
        });
    }

    fn enqueue(&self, job: Job) {
        if let Err(err) = self.jobs.try_send(job) {
            let why = match err {
                mpsc::error::TrySendError::Full(_) => "the mail queue is full",
                mpsc::error::TrySendError::Closed(_) => "the mail worker has stopped",
            };
            tracing::error!(target: "latchkey::mail", "a mail was dropped: {why}");
        }
    }
}

struct Worker {
    store: Arc<dyn Store>,
    transport: Transport,
    public_url: String,
    reset_ttl: Duration,
    verify_ttl: Duration,
    deliveries: Arc<Semaphore>,
}

impl Worker {
    async fn run(self: Arc<Self>, mut queue: mpsc::Receiver<Job>) {
        while let Some(job) = queue.recv().await {
            let Ok(permit) = self.deliveries.clone().acquire_owned().await else {
                return;
            };
            let worker = self.clone();
            // One slow SMTP conversation must not hold up the mails behind it.
            tokio::spawn(async move {
                worker.handle(job).await;
                drop(permit);
            });
        }
    }

    async fn handle(&self, job: Job) {
        let (kind, result) = match job {
            Job::PasswordReset { email } => ("password_reset", self.password_reset(&email).await),
            Job::Verification { user_id, email } => (
                "email_verification",
                self.verification(user_id, &email).await,
            ),
            Job::SignupAttempt { email } => ("signup_attempt", self.signup_attempt(&email).await),
            Job::EmailChange {
                user_id,
                email,
                new_email,
            } => (
                "email_change",
                self.email_change(user_id, &email, &new_email).await,
            ),
        };
        if let Err(err) = result {
            // The cause chain names the database or SMTP failure; tokens are never part of it.
            tracing::error!(target: "latchkey::mail", kind, error = %format!("{err:#}"), "a mail could not be sent");
        }
    }

    async fn password_reset(&self, email: &Email) -> anyhow::Result<()> {
        let Some(credentials) = self.store.credentials_by_email(email).await? else {
            tracing::debug!(target: "latchkey::mail", "password reset asked for an unknown address; no mail");
            return Ok(());
        };
        let user = credentials.user;
        if user.disabled {
            tracing::debug!(target: "latchkey::mail", user_id = %user.id, "password reset asked for a disabled account; no mail");
            return Ok(());
        }
        let link = self
            .issue(
                user.id,
                &user.email,
                None,
                EmailTokenPurpose::PasswordReset,
                self.reset_ttl,
            )
            .await?;
        let mail = templates::password_reset(&user.email, &link, self.reset_ttl);
        self.transport.deliver(&mail).await?;
        audit::record(AuditEvent::PasswordResetMailed { user_id: user.id });
        Ok(())
    }

    async fn signup_attempt(&self, email: &Email) -> anyhow::Result<()> {
        let Some(credentials) = self.store.credentials_by_email(email).await? else {
            // The account went away since the signup found the address taken.
            return Ok(());
        };
        let user = credentials.user;
        if user.disabled {
            tracing::debug!(target: "latchkey::mail", user_id = %user.id, "signup attempt for a disabled account; no mail");
            return Ok(());
        }
        self.transport
            .deliver(&templates::signup_attempt(&user.email))
            .await?;
        audit::record(AuditEvent::SignupAttemptMailed { user_id: user.id });
        Ok(())
    }

    async fn email_change(
        &self,
        user_id: Uuid,
        email: &str,
        new_email: &str,
    ) -> anyhow::Result<()> {
        let link = self
            .issue(
                user_id,
                email,
                Some(new_email),
                EmailTokenPurpose::EmailChange,
                self.verify_ttl,
            )
            .await?;
        let confirmation = templates::email_change(new_email, &link, self.verify_ttl);
        self.transport.deliver(&confirmation).await?;
        audit::record(AuditEvent::EmailChangeMailed { user_id });
        self.transport
            .deliver(&templates::email_change_notice(email, new_email))
            .await?;
        Ok(())
    }

    async fn verification(&self, user_id: Uuid, email: &str) -> anyhow::Result<()> {
        let link = self
            .issue(
                user_id,
                email,
                None,
                EmailTokenPurpose::EmailVerification,
                self.verify_ttl,
            )
            .await?;
        let mail = templates::verify_email(email, &link, self.verify_ttl);
        self.transport.deliver(&mail).await?;
        audit::record(AuditEvent::VerificationMailed { user_id });
        Ok(())
    }

    /// Makes a token, stores only its hash, and returns the link that carries it. The token is
    /// in the URL's fragment, which browsers never send to a server: it stays out of the web
    /// app's access logs and `Referer` headers.
    async fn issue(
        &self,
        user_id: Uuid,
        email: &str,
        new_email: Option<&str>,
        purpose: EmailTokenPurpose,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        let token = random_token();
        let now = store::now();
        self.store
            .create_email_token(&NewEmailToken {
                hash: token_hash(&token),
                user_id,
                purpose,
                email: email.to_owned(),
                new_email: new_email.map(str::to_owned),
                created_at: now,
                expires_at: now + TimeDelta::from_std(ttl)?,
            })
            .await?;
        let page = match purpose {
            EmailTokenPurpose::PasswordReset => "reset-password",
            EmailTokenPurpose::EmailVerification => "verify-email",
            EmailTokenPurpose::EmailChange => "confirm-email-change",
        };
        Ok(format!("{}/{page}#token={token}", self.public_url))
    }
}
