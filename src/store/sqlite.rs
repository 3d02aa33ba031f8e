use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::queries::{WriteTx, impl_store};

/// How long a write may wait for its turn; SQLite's own busy timeout, for the same reason.
const WRITE_TURN_TIMEOUT: Duration = Duration::from_secs(5);

/// The embedded database of a single-process deployment: one file, WAL mode.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// This process's turn to write; see [`SqliteStore::begin_write`].
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across application crashes in WAL mode and much faster than FULL.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(WRITE_TURN_TIMEOUT)
            .foreign_keys(true);
        create_private(options.get_filename())?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // The database is a file opened in this process: a connection cannot be dropped by a
            // server, and the check costs a round trip to the connection's thread per query.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            writer: Arc::default(),
        })
    }

    /// SQLite has one write lock, and a writer that finds it taken sleeps in the busy handler and
    /// polls, so under contention newcomers overtake waiters and a refresh could wait over a
    /// second. Writers of this process queue first, in order (tokio's mutex is fair), and each
    /// takes the lock with `BEGIN IMMEDIATE` when its turn comes: exclusive among writers, and no
    /// read lock to upgrade later. Another process (the admin CLI) still meets the busy handler.
    async fn begin_write(&self) -> Result<WriteTx<sqlx::Sqlite>, sqlx::Error> {
        let turn = tokio::time::timeout(WRITE_TURN_TIMEOUT, self.writer.clone().lock_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx::new(tx, Some(turn)))
    }

    /// Every write transaction is already exclusive here.
    async fn begin_exclusive(&self) -> Result<WriteTx<sqlx::Sqlite>, sqlx::Error> {
        self.begin_write().await
    }
}

/// Creates the database file, if it is missing, readable and writable by its owner only: it
/// holds password hashes and, in a zero-configuration deployment, the signing secret, from which
/// any local user could forge an admin token. SQLite gives the `-wal` and `-shm` files it creates
/// beside it the same permissions. An existing file keeps the permissions its owner gave it.
fn create_private(path: &Path) -> Result<(), sqlx::Error> {
    // sqlx names an in-memory database like a file; there is nothing on disk to protect.
    if path.to_string_lossy().starts_with("file:sqlx-in-memory") {
        return Ok(());
    }
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(sqlx::Error::Io(err)),
    }
}

/// How often the server looks for revocations made by another process (the admin CLI).
const REVOCATION_POLL: Duration = Duration::from_secs(1);

/// One process is the only instance: its own revocation list is updated by the caller, and
/// revocations by other processes are picked up by polling.
async fn notify_revoked(
    _tx: &mut WriteTx<sqlx::Sqlite>,
    _session_ids: &[uuid::Uuid],
) -> Result<(), sqlx::Error> {
    Ok(())
}

impl_store!(
    SqliteStore,
    sqlx::Sqlite,
    Backend::Sqlite,
    sqlx::migrate!("./migrations/sqlite"),
    fn spawn_revocation_watcher(
        &self,
        revocations: std::sync::Arc<crate::auth::RevocationList>,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(REVOCATION_POLL);
            loop {
                ticker.tick().await;
                // Overlapping windows: a revocation committed just before a poll is not missed.
                let since = crate::store::now() - 5 * REVOCATION_POLL;
                match store.revocations_since(since).await {
                    Ok(revoked) => revocations.revoke(revoked),
                    Err(err) => tracing::warn!(error = %err, "polling for revocations failed"),
                }
            }
        })
    }
);
