//! The mail outbox: jobs written by requests, claimed and finished by the mail workers.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Engine;
use crate::store::seam::Seam;
use crate::store::{Backend, MailJob, MailKind, MailOutcome, StoreError};

pub(super) async fn enqueue(
    store: &Engine,
    jobs: &[MailJob],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    for job in jobs {
        sqlx::query(
            "INSERT INTO mail_outbox (id, kind, user_id, email, new_email, created_at, \
             next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(job.id)
        .bind(job.kind.as_str())
        .bind(job.user_id)
        .bind(&job.email)
        .bind(job.new_email.as_deref())
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

type JobRow = (
    Uuid,
    String,
    Option<Uuid>,
    String,
    Option<String>,
    i32,
    Option<DateTime<Utc>>,
);

/// Takes up to `limit` due jobs for this worker until `until`. On PostgreSQL, `SKIP LOCKED`
/// lets the workers of several instances claim at once without ever taking the same job; on
/// SQLite the one process's worker is the only one.
pub(super) async fn claim(
    store: &Engine,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<MailJob>, StoreError> {
    let lock = match Engine::BACKEND {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let mut tx = store.begin_write().await?;
    let rows: Vec<JobRow> = sqlx::query_as(&format!(
        "UPDATE mail_outbox SET claimed_until = $2 WHERE id IN ( \
           SELECT id FROM mail_outbox \
           WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= $1 \
           AND (claimed_until IS NULL OR claimed_until <= $1) \
           ORDER BY next_attempt_at LIMIT $3 {lock}) \
         RETURNING id, kind, user_id, email, new_email, attempts, claimed_until"
    ))
    .bind(now)
    .bind(until)
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.into_iter().map(job).collect()
}

/// On SQLite one process delivers mail, so a claim found when it starts was left by a process
/// that died mid-delivery: released, the job is due again at once. On PostgreSQL another instance
/// may be delivering it; a dead instance's claims run out with their lease.
pub(super) async fn release_orphaned_claims(store: &Engine) -> Result<(), StoreError> {
    if Engine::BACKEND == Backend::Postgres {
        return Ok(());
    }
    let mut tx = store.begin_write().await?;
    sqlx::query("UPDATE mail_outbox SET claimed_until = NULL WHERE claimed_until IS NOT NULL")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

fn job(
    (id, kind, user_id, email, new_email, attempts, claimed_until): JobRow,
) -> Result<MailJob, StoreError> {
    let kind = MailKind::parse(&kind).ok_or_else(|| {
        StoreError::Database(sqlx::Error::Decode(
            format!("unknown mail kind {kind:?}").into(),
        ))
    })?;
    Ok(MailJob {
        id,
        kind,
        user_id,
        email,
        new_email,
        attempts: u32::try_from(attempts).unwrap_or_default(),
        claimed_until,
    })
}

/// Records the end of a delivery, unless the job's claim ran out meanwhile and another worker
/// took it: then that worker's result counts.
pub(super) async fn finish(
    store: &Engine,
    job: &MailJob,
    outcome: &MailOutcome,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (delivered_at, next_attempt_at, dead_at, error) = match outcome {
        MailOutcome::Delivered => (Some(at), None, None, None),
        MailOutcome::Retry { at: next, error } => (None, Some(*next), None, Some(error.as_str())),
        MailOutcome::Dead { error } => (None, None, Some(at), Some(error.as_str())),
    };
    let mut tx = store.begin_write().await?;
    sqlx::query(
        "UPDATE mail_outbox SET claimed_until = NULL, delivered_at = $2, dead_at = $4, \
         next_attempt_at = COALESCE($3, next_attempt_at), last_error = COALESCE($5, last_error), \
         attempts = attempts + CASE WHEN $2 IS NULL THEN 1 ELSE 0 END \
         WHERE id = $1 AND claimed_until = $6",
    )
    .bind(job.id)
    .bind(delivered_at)
    .bind(next_attempt_at)
    .bind(dead_at)
    .bind(error)
    .bind(job.claimed_until)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
