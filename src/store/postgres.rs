use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use super::seam::{Seam, WriteTx};
use super::shared_limits::PgLimits;
use super::user_cache::UserCache;
use super::{Backend, Store, StoreError};
use crate::auth::RevocationList;

/// How long a connection to the server may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Channel on which instances announce revoked session ids to each other.
const REVOCATION_CHANNEL: &str = "latchkey_revocations";

/// The shared database of a multi-instance deployment.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    users: Arc<UserCache>,
}

/// The shared SQL (store/sql/), compiled for this backend.
#[allow(
    clippy::duplicate_mod,
    reason = "each backend compiles the shared SQL against its own types"
)]
#[path = "sql/mod.rs"]
mod sql;

type Engine = PostgresStore;

impl PostgresStore {
    /// Connects once on its own before opening the pool: the pool retries a failed connection
    /// until its acquire timeout and then reports only "pool timed out", while an operator needs
    /// to know whether the server refused, did not answer, or rejected the login.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        // sqlx's URL errors never repeat the URL, so the password stays out of the message.
        let options = PgConnectOptions::from_str(url)
            .map_err(|err| anyhow::anyhow!("DATABASE_URL is not a PostgreSQL URL: {err}"))?;
        let server = format!("{}:{}", options.get_host(), options.get_port());
        let failed =
            |why: String| anyhow::anyhow!("cannot connect to PostgreSQL at {server}: {why}");
        match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
            Err(_) => {
                return Err(failed(format!(
                    "timed out after {} s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
            Ok(Err(sqlx::Error::Io(err))) => return Err(failed(crate::io_error::describe(&err))),
            Ok(Err(err)) => return Err(failed(err.to_string())),
            Ok(Ok(probe)) => {
                let _ = probe.close().await;
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // A bounded wait: when the database is down, requests fail fast with a 503.
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|err| failed(err.to_string()))?;
        Ok(Self {
            pool,
            users: Arc::default(),
        })
    }
}

impl Seam for PostgresStore {
    type Db = sqlx::Postgres;

    const BACKEND: Backend = Backend::Postgres;

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn users(&self) -> &UserCache {
        &self.users
    }

    fn migrator() -> Migrator {
        sqlx::migrate!("./migrations/postgres")
    }

    /// PostgreSQL's row locks order concurrent writers; nothing to add.
    async fn begin_write(&self) -> Result<WriteTx<sqlx::Postgres>, sqlx::Error> {
        Ok(WriteTx::new(self.pool.begin().await?, None))
    }

    async fn begin_exclusive(&self) -> Result<WriteTx<sqlx::Postgres>, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ACCOUNT_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Announces revoked sessions to every instance; PostgreSQL delivers the notifications when the
    /// transaction commits, and drops them if it rolls back.
    /// PostgreSQL manages its own log.
    async fn checkpoint_log(&self) -> Result<u64, sqlx::Error> {
        Ok(0)
    }

    async fn notify_revoked(
        tx: &mut WriteTx<sqlx::Postgres>,
        session_ids: &[uuid::Uuid],
    ) -> Result<(), sqlx::Error> {
        if session_ids.is_empty() {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, id::text) FROM unnest($2::uuid[]) AS id")
            .bind(REVOCATION_CHANNEL)
            .bind(session_ids)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// Key of the advisory lock that serialises account changes which could remove the last admin:
/// two admins demoting each other at once would otherwise both see the other still in place.
const ACCOUNT_LOCK_KEY: i64 = 0x6c61_7463_686b;

/// Listens for revocations until the connection drops. Each (re)connection listens first and
/// then reloads recent revocations from the table, so nothing revoked meanwhile is missed.
async fn follow_revocations(
    store: &PostgresStore,
    revocations: &RevocationList,
) -> Result<(), StoreError> {
    let mut listener = PgListener::connect_with(&store.pool).await?;
    listener.listen(REVOCATION_CHANNEL).await?;
    let since = revocations.relevant_since(chrono::Utc::now());
    revocations.revoke(store.revocations_since(since).await?);
    // `try_recv` answers `None` when the connection is lost: start over.
    while let Some(notification) = listener.try_recv().await? {
        match notification.payload().parse::<uuid::Uuid>() {
            Ok(session_id) => revocations.revoke([(session_id, chrono::Utc::now())]),
            Err(_) => tracing::warn!(
                payload = notification.payload(),
                "ignoring a malformed revocation notification"
            ),
        }
    }
    Ok(())
}

impl PostgresStore {
    /// Every instance on this database counts against the same limits.
    fn limits(&self) -> Option<Arc<dyn crate::abuse::SharedLimits>> {
        Some(Arc::new(PgLimits::new(self.pool.clone())))
    }

    /// Follows the other instances' revocations, reconnecting when PostgreSQL goes away.
    fn watch_revocations(&self, revocations: Arc<RevocationList>) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(err) = follow_revocations(&store, &revocations).await {
                    tracing::warn!(error = %err, "the revocation listener lost PostgreSQL; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        })
    }
}
