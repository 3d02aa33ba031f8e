//! All SQL lives behind [`Store`] and [`SessionStore`]: two traits, one implementation of both
//! per database, chosen from the URL scheme. Both implementations share their queries, one file
//! per aggregate in `sql/`; what differs between them is the `seam`: how a pool is opened, how a
//! write transaction starts, which migrations run, how other instances hear of revocations.

mod mfa;
mod model;
mod postgres;
mod refresh_chain;
mod rows;
mod seam;
mod shared_limits;
mod sqlite;
mod user_cache;

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use crate::abuse::SharedLimits;
use crate::auth::{PresentedRefresh, RevocationList};
use crate::domain::Email;

pub use mfa::MfaStore;
pub use model::{
    AccountChange, Backend, Credentials, EmailTokenPurpose, MailJob, MailKind, MailOutcome,
    MfaChallenge, MfaProof, NewEmailToken, NewMfaChallenge, NewRefreshToken, NewSession, NewUser,
    PRUNE_BATCH, PoolStats, Pruned, RefreshOutcome, RevokeScope, Rotation, SessionInfo, TokenCheck,
    TotpRecord, User, UserChanges, UserQuery,
};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the email is already registered")]
    EmailTaken,
    #[error("the database is unreachable")]
    Unavailable(#[source] sqlx::Error),
    #[error("the database failed")]
    Database(#[source] sqlx::Error),
    #[error("no such user")]
    UserNotFound,
    #[error("the change would leave no enabled admin")]
    LastAdmin,
    #[error("the database migrations failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// SQLite's primary result codes for "the database is locked" (the low byte of an extended code).
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        let unreachable = match &err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            // SQLite: BUSY or LOCKED, another process held the write lock past the busy
            // timeout. PostgreSQL: SQLSTATE classes 08 (connection exception), 53 (insufficient
            // resources) and 57 (operator intervention: a server shutting down). All mean "not
            // now", not "wrong".
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    code.parse::<i32>().is_ok_and(|extended| {
                        matches!(extended & 0xff, SQLITE_BUSY | SQLITE_LOCKED)
                    })
                } else {
                    ["08", "53", "57"]
                        .iter()
                        .any(|class| code.starts_with(class))
                }
            }
            _ => false,
        };
        if unreachable {
            Self::Unavailable(err)
        } else {
            Self::Database(err)
        }
    }
}

#[async_trait]
pub trait Store: MfaStore + Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Applies the embedded migrations of this backend; returns how many were not applied yet.
    async fn migrate(&self) -> Result<usize, StoreError>;

    async fn ping(&self) -> Result<(), StoreError>;

    fn pool_stats(&self) -> PoolStats;

    /// Closes the pool, waiting for connections in use to be returned.
    async fn close(&self);

    /// Stores `value` under `key` unless a value is there already; returns the value that won.
    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError>;

    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Replaces the value under `key` if it is still `expected`; false if it was not (another
    /// writer came first) or there is none.
    async fn replace_setting(
        &self,
        key: &str,
        expected: &str,
        value: &str,
    ) -> Result<bool, StoreError>;

    async fn credentials_by_email(&self, email: &Email) -> Result<Option<Credentials>, StoreError>;

    async fn credentials_by_id(&self, id: Uuid) -> Result<Option<Credentials>, StoreError>;

    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError>;

    /// Creates a user without a session (the admin CLI, bootstrap, and signups that wait for a
    /// verified address).
    async fn create_account(&self, user: &NewUser) -> Result<User, StoreError>;

    async fn list_users(&self, query: &UserQuery) -> Result<Vec<User>, StoreError>;

    /// Stores a password-reset or verification token (by hash).
    async fn create_email_token(&self, token: &NewEmailToken) -> Result<(), StoreError>;

    /// Whether a token (by hash) of `purpose` is unused, unexpired and still matches its
    /// account's email. A read only: it spends nothing.
    async fn email_token_is_live(
        &self,
        presented: &str,
        purpose: EmailTokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Spends a live verification token (by hash) and marks the address it was mailed to as
    /// verified; returns the user's id, or `None` when the token is not live.
    async fn verify_email(
        &self,
        presented: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError>;

    /// Spends a live email-change token (by hash) and moves the account to the new address it
    /// was mailed to, which the token proves the user's: the address is marked verified. Returns
    /// the user's id, or `None` when the token is not live. When another account has the new
    /// address by now, fails with [`StoreError::EmailTaken`] and changes nothing.
    async fn confirm_email_change(
        &self,
        presented: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError>;

    /// Replaces a password hash with an equivalent one (a cost upgrade); sessions stay.
    async fn upgrade_password_hash(
        &self,
        user_id: Uuid,
        password_hash: &str,
    ) -> Result<(), StoreError>;

    /// The session of a refresh token of the form issued before sessions counted their
    /// generations (by hash), rotated or not; its successor is minted for that session.
    async fn session_of_legacy_refresh_token(&self, hash: &str)
    -> Result<Option<Uuid>, StoreError>;

    /// Sessions that can still be refreshed, most recently used first.
    async fn live_sessions(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionInfo>, StoreError>;

    /// Sessions revoked after `since`, with the time of their revocation.
    async fn revocations_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError>;

    /// Deletes sessions that are expired, idle past their live refresh token, or revoked before
    /// `revoked_before`, and expired old-form refresh tokens, revocation records and mailed
    /// tokens, in short batches.
    async fn prune(
        &self,
        now: DateTime<Utc>,
        revoked_before: DateTime<Utc>,
    ) -> Result<Pruned, StoreError>;

    /// Moves what SQLite's write-ahead log holds into the database file, off the writers' path
    /// (a passive checkpoint neither waits for nor blocks readers and writers); returns how many
    /// of the log's frames are in the file now. Nothing to do on PostgreSQL.
    async fn checkpoint(&self) -> Result<u64, StoreError>;

    /// Writes mail jobs to the outbox, all or none.
    async fn enqueue_mail(&self, jobs: &[MailJob], at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Releases the claims of mail workers that died mid-delivery, where that can be known (SQLite:
    /// one process delivers). Elsewhere a claim runs out after its lease.
    async fn release_orphaned_mail_claims(&self) -> Result<(), StoreError>;

    /// Claims up to `limit` jobs due at `now` for the caller until `until` (after which another
    /// worker may take them: their holder is presumed dead). No job is claimed by two workers at
    /// once, across instances.
    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<MailJob>, StoreError>;

    /// Records how a claimed job's delivery ended, and releases it, if the claim is still the
    /// one `job` was claimed with.
    async fn finish_mail(
        &self,
        job: &MailJob,
        outcome: &MailOutcome,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Where the rate limits and the lockout are kept when instances share this database
    /// (PostgreSQL); `None` when one process owns it (SQLite), which keeps them in memory.
    fn shared_limits(&self) -> Option<Arc<dyn SharedLimits>>;

    /// Keeps `revocations` in step with revocations made by other processes: other instances on
    /// PostgreSQL, the admin CLI on either database.
    fn spawn_revocation_watcher(
        &self,
        revocations: Arc<RevocationList>,
    ) -> tokio::task::JoinHandle<()>;
}

/// The store's calls that start, rotate or end sessions, or change an account in a way that can
/// end them. Only the sessions service (`Sessions`, src/sessions.rs) holds one: it makes every
/// revocation take effect on this instance at once, so no handler can end a session and forget
/// to. Everything else gets a [`Store`], which cannot reach these calls.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Creates a user with their first session in one transaction: a failure leaves no row.
    async fn create_user(
        &self,
        user: &NewUser,
        session: &NewSession,
        refresh: &NewRefreshToken,
    ) -> Result<User, StoreError>;

    /// Applies `changes`. Demoting or disabling a user revokes all of their sessions; a change
    /// that would leave no enabled admin fails with [`StoreError::LastAdmin`].
    async fn update_user(
        &self,
        id: Uuid,
        changes: &UserChanges,
        at: DateTime<Utc>,
    ) -> Result<AccountChange<User>, StoreError>;

    /// Deletes a user with all their sessions, recording the revocations; the last enabled admin
    /// cannot be deleted.
    async fn delete_user(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<AccountChange<()>, StoreError>;

    /// Replaces a password hash, spends the user's unused password-reset tokens (a link mailed
    /// before the change must not undo it) and email-change tokens (a change asked for with the
    /// old password must not go through), and revokes every session of the user but `keep`.
    async fn set_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        keep: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<AccountChange<()>, StoreError>;

    /// Spends a live password-reset token (by hash) and, in the same transaction, sets the
    /// password, marks the email verified (the token proved the mailbox is the user's), spends
    /// the user's other reset tokens and pending email-change tokens, and revokes every
    /// session. `None` when the token is not live; then nothing changes. Of concurrent calls with
    /// one token, exactly one succeeds.
    async fn reset_password(
        &self,
        presented: &str,
        password_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<AccountChange<Uuid>>, StoreError>;

    /// Stores a new session of a user and revokes their oldest live sessions beyond the newest
    /// `max_sessions`; returns the ids of those it revoked.
    async fn create_session(
        &self,
        session: &NewSession,
        refresh: &NewRefreshToken,
        max_sessions: u32,
    ) -> Result<Vec<Uuid>, StoreError>;

    /// Presents a refresh token. `next` is its successor, stored if the token is live; a token
    /// rotated at or after `reuse_since` counts as a concurrent refresh, one rotated before it as
    /// reuse (see `store/refresh_chain.rs`). With `require_verified`, a live token of a user
    /// whose email is not verified changes nothing ([`RefreshOutcome::Unverified`]). Atomic
    /// under any interleaving of callers.
    async fn refresh_session(
        &self,
        presented: &PresentedRefresh,
        next: &NewRefreshToken,
        reuse_since: DateTime<Utc>,
        require_verified: bool,
    ) -> Result<RefreshOutcome, StoreError>;

    /// What a refresh token proves without rotating it, judged as a refresh would
    /// judge it: a token rotated away before `reuse_since` revokes its session as stolen.
    async fn check_refresh_token(
        &self,
        presented: &PresentedRefresh,
        now: DateTime<Utc>,
        reuse_since: DateTime<Utc>,
    ) -> Result<TokenCheck, StoreError>;

    /// Revokes the user's live sessions in `scope` and returns their ids; on PostgreSQL other
    /// instances are notified when the transaction commits.
    async fn revoke_sessions(
        &self,
        user_id: Uuid,
        scope: RevokeScope,
        at: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError>;
}

/// A database: both halves, as opened. Startup splits it into the [`Store`] handlers share and
/// the [`SessionStore`] the sessions service owns.
pub trait Database: Store + SessionStore {}

impl<T: Store + SessionStore + ?Sized> Database for T {}

/// Opens the database named by `url` (`sqlite:` or `postgres:`) without touching its schema.
/// Errors name the file or server and what went wrong, in one line, and never the password.
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Database>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        anyhow::bail!("DATABASE_URL must start with sqlite:// or postgres://")
    }
}

/// Opens the database named by `url` and applies its migrations.
pub async fn connect(url: &str) -> anyhow::Result<Arc<dyn Database>> {
    let store = open(url).await?;
    let applied = store
        .migrate()
        .await
        .context("could not migrate the database")?;
    if applied > 0 {
        tracing::info!("applied {applied} database migrations");
    }
    Ok(store)
}

/// The current time at the precision both databases keep (microseconds), so a value read back
/// equals the value written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
