//! The rate limits and the lockout on PostgreSQL (`abuse::SharedLimits`), read and written by
//! every instance. One statement per limit check; PostgreSQL's clock decides every time.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;

use crate::abuse::{SharedLimits, Unavailable};

/// Rows one pruning statement deletes at most.
const PRUNE_BATCH: i64 = 1_000;

pub struct PgLimits {
    pool: PgPool,
}

impl PgLimits {
    pub(super) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn unavailable(err: sqlx::Error) -> Unavailable {
    Unavailable(Box::new(err))
}

/// Seconds as PostgreSQL's `make_interval` takes them.
fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// A positive number of seconds as a wait.
fn wait(seconds: Option<f64>) -> Option<Duration> {
    seconds
        .filter(|seconds| *seconds > 0.0)
        .map(Duration::from_secs_f64)
}

#[async_trait]
impl SharedLimits for PgLimits {
    async fn admit(
        &self,
        name: &'static str,
        key: &[u8],
        interval: Duration,
        burst: Duration,
    ) -> Result<Option<Duration>, Unavailable> {
        // One round trip. The outer SELECT sees the table as it was before the upsert: no row
        // for a new key, admitted; the unchanged row of a refused request, whose wait it computes.
        let refused: Option<Option<f64>> = sqlx::query_scalar(
            "WITH attempt AS ( \
               INSERT INTO rate_limits AS r (name, key, full_at) \
               VALUES ($1, $2, now() + make_interval(secs => $3)) \
               ON CONFLICT (name, key) DO UPDATE \
               SET full_at = GREATEST(r.full_at, now()) + make_interval(secs => $3) \
               WHERE GREATEST(r.full_at, now()) + make_interval(secs => $3) \
                     <= now() + make_interval(secs => $4) \
               RETURNING 1) \
             SELECT CASE WHEN EXISTS (SELECT 1 FROM attempt) THEN NULL \
                    ELSE EXTRACT(EPOCH FROM GREATEST(full_at, now()) + make_interval(secs => $3) \
                                 - now() - make_interval(secs => $4))::float8 END \
             FROM rate_limits WHERE name = $1 AND key = $2",
        )
        .bind(name)
        .bind(key)
        .bind(secs(interval))
        .bind(secs(burst))
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        // Refused, the wait is positive: at least a moment if the clock moved on meanwhile.
        Ok(refused
            .flatten()
            .map(|seconds| wait(Some(seconds)).unwrap_or(Duration::from_millis(1))))
    }

    async fn locked_for(&self, key: &[u8]) -> Result<Option<Duration>, Unavailable> {
        let left: Option<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM locked_until - now())::float8 FROM lockouts \
             WHERE key = $1 AND locked_until > now() AND forget_at > now()",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(wait(left))
    }

    async fn failed(
        &self,
        key: &[u8],
        lock: &(dyn Fn(u32) -> Option<Duration> + Sync),
        forget_after: Duration,
    ) -> Result<(), Unavailable> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // The upsert counts atomically and holds the row until the lock is written beside it.
        let failures: i32 = sqlx::query_scalar(
            "INSERT INTO lockouts AS l (key, failures, forget_at) VALUES ($1, 1, now()) \
             ON CONFLICT (key) DO UPDATE \
             SET failures = CASE WHEN l.forget_at > now() THEN l.failures + 1 ELSE 1 END \
             RETURNING failures",
        )
        .bind(key)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        let locked_for = lock(u32::try_from(failures).unwrap_or(u32::MAX)).map(secs);
        sqlx::query(
            "UPDATE lockouts SET \
             locked_until = now() + make_interval(secs => $2), \
             forget_at = now() + make_interval(secs => COALESCE($2, 0) + $3) \
             WHERE key = $1",
        )
        .bind(key)
        .bind(locked_for)
        .bind(secs(forget_after))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn succeeded(&self, key: &[u8]) -> Result<(), Unavailable> {
        sqlx::query("DELETE FROM lockouts WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn prune(&self) -> Result<(), Unavailable> {
        for sql in [
            "DELETE FROM rate_limits WHERE (name, key) IN \
             (SELECT name, key FROM rate_limits WHERE full_at <= now() LIMIT $1)",
            "DELETE FROM lockouts WHERE key IN \
             (SELECT key FROM lockouts WHERE forget_at <= now() LIMIT $1)",
        ] {
            while sqlx::query(sql)
                .bind(PRUNE_BATCH)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?
                .rows_affected()
                == PRUNE_BATCH as u64
            {}
        }
        Ok(())
    }
}
