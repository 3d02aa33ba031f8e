//! The schema, the connection pool, settings, and pruning what no longer matters.

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrate;

use super::Engine;
use crate::store::seam::Seam;
use crate::store::{PoolStats, StoreError};

pub(super) async fn migrate(store: &Engine) -> Result<usize, StoreError> {
    let mut conn = store.pool().acquire().await?;
    // The applied rows are counted before and after, so the operator learns whether this run
    // changed the schema (the migrator itself does not say). All of it runs under the migrator's
    // lock (advisory on PostgreSQL): instances starting together must not race to create the
    // bookkeeping table, nor count each other's work.
    conn.lock().await?;
    let applied = async {
        conn.ensure_migrations_table().await?;
        let before = conn.list_applied_migrations().await?.len();
        let mut migrator = Engine::migrator();
        migrator.set_locking(false);
        migrator.run_direct(&mut *conn).await?;
        let after = conn.list_applied_migrations().await?.len();
        Ok::<_, StoreError>(after.saturating_sub(before))
    }
    .await;
    conn.unlock().await?;
    applied
}

pub(super) async fn ping(store: &Engine) -> Result<(), StoreError> {
    sqlx::query("SELECT 1").execute(store.pool()).await?;
    Ok(())
}

pub(super) fn pool_stats(store: &Engine) -> PoolStats {
    PoolStats {
        connections: store.pool().size(),
        idle: store.pool().num_idle(),
    }
}

pub(super) async fn setting_or_insert(
    store: &Engine,
    key: &str,
    value: &str,
) -> Result<String, StoreError> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(value)
        .execute(store.pool())
        .await?;
    let stored: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_one(store.pool())
        .await?;
    Ok(stored)
}

pub(super) async fn prune(
    store: &Engine,
    now: DateTime<Utc>,
    revoked_before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut tx = store.begin_write().await?;
    let tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    // A session goes when it is past its absolute lifetime, when its revocation no longer matters
    // to any access token, or when its last refresh token expired.
    let sessions = sqlx::query(
        "DELETE FROM sessions WHERE expires_at <= $1 OR revoked_at <= $2 \
         OR NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = sessions.id)",
    )
    .bind(now)
    .bind(revoked_before)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let revocations = sqlx::query("DELETE FROM session_revocations WHERE revoked_at <= $1")
        .bind(revoked_before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let email_tokens = sqlx::query("DELETE FROM email_tokens WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(tokens + sessions + revocations + email_tokens)
}
