//! The schema, the connection pool, settings, and pruning what no longer matters.

use std::time::Instant;

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrate;

use super::Engine;
use crate::store::seam::Seam;
use crate::store::{PRUNE_BATCH, PoolStats, Pruned, StoreError};

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

/// After a full batch, the pruner pauses this many times as long as the batch took before it
/// writes again: while traffic queues for SQLite's one write lock, it has at least four fifths of
/// the lock's time, so a refresh waits for one short batch at most and its throughput hardly
/// falls. Nothing is deleted later than it would be by more than the pauses add up to.
const PAUSE_PER_BATCH: u32 = 4;

/// Which of the pruner's two times a row is compared with.
#[derive(Clone, Copy)]
enum Cutoff {
    Now,
    RevokedBefore,
}

/// What the pruner deletes, each a range on an index: expired legacy refresh tokens; sessions past
/// their absolute lifetime, revoked long enough ago that no access token of theirs is left, or
/// idle past their live refresh token; revocations no access token needs any more; expired
/// mailed tokens; delivered mail (dead letters stay for the operator).
const PRUNED: [(&str, &str, &str, Cutoff); 8] = [
    ("refresh_tokens", "token_hash", "expires_at", Cutoff::Now),
    ("sessions", "id", "expires_at", Cutoff::Now),
    ("sessions", "id", "revoked_at", Cutoff::RevokedBefore),
    ("sessions", "id", "refresh_expires_at", Cutoff::Now),
    (
        "session_revocations",
        "session_id",
        "revoked_at",
        Cutoff::RevokedBefore,
    ),
    ("email_tokens", "token_hash", "expires_at", Cutoff::Now),
    ("mail_outbox", "id", "delivered_at", Cutoff::Now),
    ("mfa_challenges", "id", "expires_at", Cutoff::Now),
];

/// Deletes in batches of [`PRUNE_BATCH`], each its own short write transaction with a pause after
/// it, so no statement scans a table and traffic waits for one batch at most.
pub(super) async fn prune(
    store: &Engine,
    now: DateTime<Utc>,
    revoked_before: DateTime<Utc>,
) -> Result<Pruned, StoreError> {
    let mut pruned = Pruned::default();
    for (table, key, column, cutoff) in PRUNED {
        let sql = format!(
            "DELETE FROM {table} WHERE {key} IN \
             (SELECT {key} FROM {table} WHERE {column} <= $1 LIMIT $2)"
        );
        let cutoff = match cutoff {
            Cutoff::Now => now,
            Cutoff::RevokedBefore => revoked_before,
        };
        loop {
            let mut tx = store.begin_write().await?;
            // From the turn to write on: the waiting behind traffic is not what traffic waits for.
            let started = Instant::now();
            let deleted = sqlx::query(&sql)
                .bind(cutoff)
                .bind(PRUNE_BATCH)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            let took = started.elapsed();
            pruned.longest_batch = pruned.longest_batch.max(took);
            pruned.rows += deleted;
            pruned.largest_batch = pruned.largest_batch.max(deleted);
            if deleted < PRUNE_BATCH as u64 {
                break;
            }
            tokio::time::sleep(took.saturating_mul(PAUSE_PER_BATCH)).await;
        }
    }
    Ok(pruned)
}

pub(super) async fn checkpoint(store: &Engine) -> Result<u64, StoreError> {
    Ok(store.checkpoint_log().await?)
}
