//! The worker beside the server that delivers from the outbox: it claims due jobs, makes each
//! job's token, delivers the mail, and retries or gives up as the settings say.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

use super::{Transport, templates};
use crate::audit::{self, AuditEvent};
use crate::auth::{random_token, token_hash};
use crate::domain::Email;
use crate::metrics::Metrics;
use crate::store::{self, EmailTokenPurpose, MailJob, MailKind, MailOutcome, NewEmailToken, Store};

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

/// The worker that delivers from the outbox, and its way to stop.
pub struct MailWorker {
    handle: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl MailWorker {
    pub(super) fn start(worker: Worker) -> Self {
        let (stop, stopped) = watch::channel(false);
        let handle = tokio::spawn(Arc::new(worker).run(stopped));
        Self { handle, stop }
    }

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

/// An address as the outbox keeps it, parsed again (it was parsed before it was stored).
fn stored_email(raw: &str) -> anyhow::Result<Email> {
    Email::parse(raw).map_err(|why| anyhow::anyhow!("a stored address is not valid: {why}"))
}

pub(super) struct Worker {
    pub(super) store: Arc<dyn Store>,
    pub(super) transport: Transport,
    pub(super) public_url: String,
    pub(super) reset_ttl: Duration,
    pub(super) verify_ttl: Duration,
    pub(super) max_attempts: u32,
    pub(super) retry_delay: Duration,
    pub(super) metrics: Metrics,
    pub(super) wake: Arc<Notify>,
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
