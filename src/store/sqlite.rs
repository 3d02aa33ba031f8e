use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::Backend;
use super::seam::{Seam, WriteTx};
use super::user_cache::UserCache;

/// How long a write may wait for its turn; SQLite's own busy timeout, for the same reason.
const WRITE_TURN_TIMEOUT: Duration = Duration::from_secs(5);

/// Log frames (pages) past which the checkpointer finishes its work in the turn to write, so the
/// log starts over: about 16 MB.
const CHECKPOINT_IN_TURN: i64 = 4_000;

/// The embedded database of a single-process deployment: one file, WAL mode.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// This process's turn to write; see `begin_write`.
    writer: Arc<tokio::sync::Mutex<()>>,
    users: Arc<UserCache>,
}

/// The shared SQL (store/sql/), compiled for this backend.
#[allow(
    clippy::duplicate_mod,
    reason = "each backend compiles the shared SQL against its own types"
)]
#[path = "sql/mod.rs"]
mod sql;

type Engine = SqliteStore;

impl SqliteStore {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|err| anyhow::anyhow!("DATABASE_URL is not a SQLite URL: {err}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across application crashes in WAL mode and much faster than FULL.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(WRITE_TURN_TIMEOUT)
            .foreign_keys(true)
            // The server's checkpointer (`tasks::spawn_checkpointer`) keeps the log short, outside
            // the turn to write: a commit that checkpoints copies a thousand pages into the file
            // and syncs it, tens of milliseconds every few commits that every queued writer would
            // wait for. Past this many pages (40 MB), a commit still checkpoints: without the
            // task (the CLI) or should it fall behind, the log stays bounded.
            .pragma("wal_autocheckpoint", "10000");
        let path = options.get_filename().to_owned();
        create_private(&path).map_err(|err| {
            anyhow::anyhow!(
                "cannot create the SQLite database {}: {}",
                path.display(),
                match (err.kind(), path.parent()) {
                    (std::io::ErrorKind::NotFound, Some(dir)) =>
                        format!("the directory {} does not exist", dir.display()),
                    _ => crate::io_error::describe(&err),
                }
            )
        })?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // The database is a file opened in this process: a connection cannot be dropped by a
            // server, and the check costs a round trip to the connection's thread per query.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await
            .map_err(|err| {
                let why = match &err {
                    sqlx::Error::Io(io) => crate::io_error::describe(io),
                    _ => err.to_string(),
                };
                anyhow::anyhow!("cannot open the SQLite database {}: {why}", path.display())
            })?;
        Ok(Self {
            pool,
            writer: Arc::default(),
            users: Arc::default(),
        })
    }
}

impl Seam for SqliteStore {
    type Db = sqlx::Sqlite;

    const BACKEND: Backend = Backend::Sqlite;

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn users(&self) -> &UserCache {
        &self.users
    }

    fn migrator() -> Migrator {
        sqlx::migrate!("./migrations/sqlite")
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

    /// A passive checkpoint moves the log into the file without waiting for anyone or holding
    /// anyone up. Writers append meanwhile, so under a steady load the log would never be fully
    /// moved, never start over, and grow until a commit checkpoints it (see `connect`). Past
    /// [`CHECKPOINT_IN_TURN`] frames, the few appended meanwhile are moved during this process's
    /// turn to write, where none of its writers appends: the next write starts the log over.
    async fn checkpoint_log(&self) -> Result<u64, sqlx::Error> {
        let checkpoint = || async {
            let (_busy, log, moved): (i64, i64, i64) =
                sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                    .fetch_one(&self.pool)
                    .await?;
            Ok::<_, sqlx::Error>((log, moved))
        };
        let (log, moved) = checkpoint().await?;
        if log < CHECKPOINT_IN_TURN {
            return Ok(u64::try_from(moved).unwrap_or(0));
        }
        let _turn = tokio::time::timeout(WRITE_TURN_TIMEOUT, self.writer.clone().lock_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?;
        let (_, moved) = checkpoint().await?;
        Ok(u64::try_from(moved).unwrap_or(0))
    }

    /// One process is the only instance: its own revocation list is updated by the caller, and
    /// revocations by other processes are picked up by polling.
    async fn notify_revoked(
        _tx: &mut WriteTx<sqlx::Sqlite>,
        _session_ids: &[uuid::Uuid],
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

/// Creates the database file, if it is missing, readable and writable by its owner only: it
/// holds password hashes and, in a zero-configuration deployment, the signing secret, from which
/// any local user could forge an admin token. SQLite gives the `-wal` and `-shm` files it creates
/// beside it the same permissions. An existing file keeps the permissions its owner gave it.
fn create_private(path: &Path) -> std::io::Result<()> {
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
        Err(err) => Err(err),
    }
}

/// How far back the first poll looks: revocations committed while the server was starting, after
/// it loaded the list, are not missed (the list ignores the ones it has).
const FIRST_POLL_OVERLAP: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

type Revocations = Vec<(uuid::Uuid, chrono::DateTime<chrono::Utc>)>;

impl SqliteStore {
    /// Revocations committed after the one numbered `cursor` (on the first poll, `None`: the
    /// recent ones), and the cursor for the next poll. By sequence, not by time: a writer in
    /// another process takes its timestamp before it waits for the write lock, so a time window
    /// could miss its revocation, while the numbers follow the order of commits (SQLite has one
    /// writer at a time).
    async fn revocations_after(
        &self,
        cursor: Option<i64>,
    ) -> Result<(Revocations, i64), sqlx::Error> {
        let rows: Vec<(i64, uuid::Uuid, chrono::DateTime<chrono::Utc>)> =
            match cursor {
                Some(cursor) => sqlx::query_as(
                    "SELECT seq, session_id, revoked_at FROM session_revocations WHERE seq > $1",
                )
                .bind(cursor)
                .fetch_all(&self.pool)
                .await?,
                // One statement, so the newest row fixes the cursor in the same snapshot.
                None => {
                    sqlx::query_as(
                        "SELECT seq, session_id, revoked_at FROM session_revocations \
                     WHERE revoked_at > $1 \
                     OR seq = (SELECT MAX(seq) FROM session_revocations)",
                    )
                    .bind(crate::store::now() - FIRST_POLL_OVERLAP)
                    .fetch_all(&self.pool)
                    .await?
                }
            };
        let next = rows
            .iter()
            .map(|(seq, _, _)| *seq)
            .max()
            .unwrap_or(cursor.unwrap_or(0));
        let revoked = rows
            .into_iter()
            .map(|(_, session_id, revoked_at)| (session_id, revoked_at))
            .collect();
        Ok((revoked, next))
    }
}

/// How often the server looks for revocations made by another process (the admin CLI).
const REVOCATION_POLL: Duration = Duration::from_secs(1);

impl SqliteStore {
    /// One process owns the file: it keeps the limits in memory.
    fn limits(&self) -> Option<Arc<dyn crate::abuse::SharedLimits>> {
        None
    }

    /// Polls for revocations by other processes (the admin CLI).
    fn watch_revocations(
        &self,
        revocations: Arc<crate::auth::RevocationList>,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(REVOCATION_POLL);
            let mut cursor = None;
            loop {
                ticker.tick().await;
                match store.revocations_after(cursor).await {
                    Ok((revoked, next)) => {
                        revocations.revoke(revoked);
                        cursor = Some(next);
                    }
                    Err(err) => tracing::warn!(error = %err, "polling for revocations failed"),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::store::{Store, UserQuery};
    use sql::users::list_users_query;

    /// The plan SQLite makes for a page of users. Every access goes through an index, never a
    /// scan of the table. Without an email prefix there is no sort either: the first page walks
    /// `(created_at, id)` in order and stops at the limit, a later one starts at the cursor, so a
    /// page costs the same at a thousand users or ten million. With a prefix, only the matching
    /// emails are read (and sorted).
    async fn plan(query: &UserQuery, in_order: bool) -> String {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let sql = format!(
            "EXPLAIN QUERY PLAN {}",
            list_users_query(query, in_order).sql()
        );
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&sql).fetch_all(&store.pool).await.unwrap();
        rows.into_iter()
            .map(|(_, _, _, detail)| detail)
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[tokio::test]
    async fn commits_leave_the_log_to_the_checkpointer() {
        let path = std::env::temp_dir().join(format!("latchkey-wal-{}.db", Uuid::new_v4()));
        let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        // Each commit adds at least a frame: past SQLite's default, a commit would have
        // checkpointed at a thousand.
        for i in 0..1_500 {
            store
                .setting_or_insert(&format!("k{i}"), "v")
                .await
                .unwrap();
        }
        let moved = store.checkpoint().await;
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let moved = moved.unwrap();
        assert!(moved >= 1_500, "{moved} frames moved");
    }

    #[tokio::test]
    async fn every_page_of_users_is_read_through_an_index() {
        let cursor = Some((Utc::now(), Uuid::new_v4()));
        let prefix = Some("ada".to_owned());
        for (after, email_prefix) in [
            (None, None),
            (cursor, None),
            (None, prefix.clone()),
            (cursor, prefix),
        ] {
            let query = UserQuery {
                limit: 50,
                after,
                email_prefix,
            };
            let plan = plan(&query, false).await;
            for step in plan.split("; ").filter(|step| step.contains(" users")) {
                assert!(step.contains("USING INDEX"), "{plan}");
            }
            if query.email_prefix.is_none() {
                assert!(!plan.contains("TEMP B-TREE"), "{plan}");
            }
        }
    }

    /// A prefix that matches many users is read in order along `(created_at, id)`: no sort of
    /// its matches, however many.
    #[tokio::test]
    async fn a_broad_prefix_walks_the_order_index_without_sorting() {
        for after in [None, Some((Utc::now(), Uuid::new_v4()))] {
            let query = UserQuery {
                limit: 50,
                after,
                email_prefix: Some("user".to_owned()),
            };
            let plan = plan(&query, true).await;
            assert!(plan.contains("USING INDEX users_created_at_id"), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        }
    }
}
