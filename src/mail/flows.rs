use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

use super::{Transport, templates};
use crate::Config;
use crate::audit::{self, AuditEvent};
use crate::auth::{random_token, token_hash};
use crate::domain::Email;
use crate::metrics::Metrics;
use crate::store::{
    self, EmailTokenPurpose, MailJob, MailKind, MailOutcome, NewEmailToken, Store, StoreError,
};

/// SMTP conversations at once.
const CONCURRENT_DELIVERIES: usize = 4;

/// How long a claimed job is this worker's: a delivery takes seconds (lettre's SMTP timeout is
/// one minute), and a job whose worker died is taken up again after this.
const CLAIM_LEASE: TimeDelta = TimeDelta::minutes(5);

/// How often the worker looks for due jobs when nothing woke it: retries, and jobs written by
/// another instance.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The longest wait between two deliveries of one mail.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// How long a stopping server waits for the deliveries in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

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

/// The worker that delivers from the outbox, and its way to stop.
pub struct MailWorker {
    handle: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl MailWorker {
    /// Stops claiming jobs and waits (a while) for the deliveries in flight; every other job stays
    /// in the outbox for the next start, or for another instance.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(SHUTDOWN_GRACE, self.handle)
            .await
            .is_err()
        {
            tracing::warn!(target: "latchkey::mail", "deliveries still in flight at shutdown; they will be retried");
        }
    }
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
        let worker = Arc::new(Worker {
            store: store.clone(),
            transport,
            public_url,
            reset_ttl: settings.reset_ttl,
            verify_ttl: settings.verify_ttl,
            max_attempts: settings.max_attempts,
            retry_delay: settings.retry_delay,
            metrics,
            wake: wake.clone(),
        });
        let (stop, stopped) = watch::channel(false);
        let handle = tokio::spawn(worker.run(stopped));
        let flows = Self {
            store,
            wake,
            require_verification: settings.require_verification,
        };
        Ok((flows, MailWorker { handle, stop }))
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

/// An address as the outbox keeps it, parsed again (it was parsed before it was stored).
fn stored_email(raw: &str) -> anyhow::Result<Email> {
    Email::parse(raw).map_err(|why| anyhow::anyhow!("a stored address is not valid: {why}"))
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

struct Worker {
    store: Arc<dyn Store>,
    transport: Transport,
    public_url: String,
    reset_ttl: Duration,
    verify_ttl: Duration,
    max_attempts: u32,
    retry_delay: Duration,
    metrics: Metrics,
    wake: Arc<Notify>,
}

impl Worker {
    /// Claims due jobs while it has room for their deliveries, until told to stop; then waits
    /// for the deliveries in flight.
    async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut in_flight = JoinSet::new();
        while !*stop.borrow() {
            let room = CONCURRENT_DELIVERIES.saturating_sub(in_flight.len());
            let claimed = if room == 0 {
                0
            } else {
                self.claim(&mut in_flight, room).await
            };
            if claimed > 0 && claimed == room {
                continue;
            }
            tokio::select! {
                // A dropped `MailWorker` stops the worker too.
                changed = stop.changed() => if changed.is_err() { break },
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// Starts the delivery of up to `room` due jobs; returns how many.
    async fn claim(self: &Arc<Self>, in_flight: &mut JoinSet<()>, room: usize) -> usize {
        let now = store::now();
        let limit = u32::try_from(room).unwrap_or(u32::MAX);
        let jobs = match self.store.claim_mail(now, now + CLAIM_LEASE, limit).await {
            Ok(jobs) => jobs,
            Err(err) => {
                tracing::warn!(target: "latchkey::mail", error = %err, "could not read the mail outbox");
                return 0;
            }
        };
        let claimed = jobs.len();
        for job in jobs {
            let worker = self.clone();
            in_flight.spawn(async move { worker.deliver(job).await });
        }
        claimed
    }

    async fn deliver(&self, job: MailJob) {
        let result = self.send(&job).await;
        let now = store::now();
        let outcome = match result {
            Ok(()) => MailOutcome::Delivered,
            Err(err) => self.failed(&job, &err, now),
        };
        if let Err(err) = self.store.finish_mail(&job, &outcome, now).await {
            // The claim runs out and the job is tried again.
            tracing::warn!(target: "latchkey::mail", error = %err, "could not record a delivery");
        }
    }

    /// What a failed delivery leads to: another try after a doubling wait, or the dead letter.
    fn failed(
        &self,
        job: &MailJob,
        err: &anyhow::Error,
        now: chrono::DateTime<chrono::Utc>,
    ) -> MailOutcome {
        // The cause chain names the database or SMTP failure; tokens are never part of it.
        let error = format!("{err:#}");
        let kind = job.kind.as_str();
        let attempt = job.attempts + 1;
        if attempt >= self.max_attempts {
            tracing::error!(target: "latchkey::mail", kind, attempt, error, "a mail could not be sent; giving up");
            self.metrics.mail_dead_letter();
            audit::record(AuditEvent::MailDeadLettered {
                job_id: job.id,
                kind,
            });
            return MailOutcome::Dead { error };
        }
        let wait = self
            .retry_delay
            .saturating_mul(1 << (attempt - 1).min(20))
            .min(MAX_RETRY_DELAY);
        tracing::error!(target: "latchkey::mail", kind, attempt, error, retry_in_secs = wait.as_secs(), "a mail could not be sent; it will be retried");
        let at = now + TimeDelta::from_std(wait).unwrap_or(TimeDelta::hours(1));
        MailOutcome::Retry { at, error }
    }

    async fn send(&self, job: &MailJob) -> anyhow::Result<()> {
        let user_id = || {
            job.user_id
                .ok_or_else(|| anyhow::anyhow!("a {} mail without a user", job.kind.as_str()))
        };
        let new_email = || {
            job.new_email
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("an email change without the new address"))
        };
        match job.kind {
            MailKind::PasswordReset => self.password_reset(&stored_email(&job.email)?).await,
            MailKind::SignupAttempt => self.signup_attempt(&stored_email(&job.email)?).await,
            MailKind::Verification => self.verification(user_id()?, &job.email).await,
            MailKind::EmailChange => {
                self.email_change(user_id()?, &job.email, new_email()?)
                    .await
            }
            MailKind::EmailChangeNotice => {
                self.transport
                    .deliver(&templates::email_change_notice(&job.email, new_email()?))
                    .await
            }
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
