use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::queries::impl_store;

/// The embedded database of a single-process deployment: one file, WAL mode.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across application crashes in WAL mode and much faster than FULL.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // The database is a file opened in this process: a connection cannot be dropped by a
            // server, and the check costs a round trip to the connection's thread per query.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }
}

/// How often the server looks for revocations made by another process (the admin CLI).
const REVOCATION_POLL: Duration = Duration::from_secs(1);

/// One process is the only instance: its own revocation list is updated by the caller, and
/// revocations by other processes are picked up by polling.
async fn notify_revoked(
    _tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    _session_ids: &[uuid::Uuid],
) -> Result<(), sqlx::Error> {
    Ok(())
}

/// `BEGIN IMMEDIATE` takes SQLite's one write lock up front: exclusive among writers, and no
/// read lock to upgrade later.
async fn begin_exclusive(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
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
