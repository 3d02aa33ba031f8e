//! Sessions: starting, listing and ending them, and the revocation record the other instances
//! and the access-token check rely on. Rotating their refresh tokens is `refresh.rs`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, Engine};
use crate::store::seam::{Seam, WriteTx};
use crate::store::{NewRefreshToken, NewSession, RevokeScope, SessionInfo, StoreError};

pub(super) async fn live_sessions(
    store: &Engine,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<SessionInfo>, StoreError> {
    let sessions = sqlx::query_as(
        "SELECT id, created_at, last_used_at, expires_at, user_agent, ip FROM sessions \
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
         AND refresh_expires_at > $2 \
         ORDER BY last_used_at DESC",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(store.pool())
    .await?;
    Ok(sessions)
}

pub(super) async fn revocations_since(
    store: &Engine,
    since: DateTime<Utc>,
) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
    let rows = sqlx::query_as(
        "SELECT session_id, revoked_at FROM session_revocations WHERE revoked_at > $1",
    )
    .bind(since)
    .fetch_all(store.pool())
    .await?;
    Ok(rows)
}

pub(super) async fn create_session(
    store: &Engine,
    session: &NewSession,
    refresh: &NewRefreshToken,
    max_sessions: u32,
) -> Result<Vec<Uuid>, StoreError> {
    let now = session.created_at;
    let mut tx = store.begin_write().await?;
    insert_session(&mut tx, session, refresh).await?;
    // The user's live sessions past the newest `max_sessions`, the new one included.
    let revoked: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = $2 \
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
         AND id NOT IN ( \
           SELECT id FROM sessions \
           WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
           ORDER BY created_at DESC, id DESC LIMIT $3) \
         RETURNING id",
    )
    .bind(session.user_id)
    .bind(now)
    .bind(i64::from(max_sessions))
    .fetch_all(&mut *tx)
    .await?;
    record_revocations(&mut tx, &revoked, now).await?;
    tx.commit().await?;
    Ok(revoked)
}

pub(super) async fn revoke_sessions(
    store: &Engine,
    user_id: Uuid,
    scope: RevokeScope,
    at: DateTime<Utc>,
) -> Result<Vec<Uuid>, StoreError> {
    let mut tx = store.begin_write().await?;
    let revoked = revoke_in(&mut tx, user_id, scope, at).await?;
    tx.commit().await?;
    Ok(revoked)
}

/// Revokes the user's live sessions in `scope` and records the revocations.
pub(super) async fn revoke_in(
    tx: &mut WriteTx<Db>,
    user_id: Uuid,
    scope: RevokeScope,
    at: DateTime<Utc>,
) -> Result<Vec<Uuid>, StoreError> {
    let (filter, session_id) = match scope {
        RevokeScope::Only(id) => ("id = $3", id),
        RevokeScope::AllExcept(id) => ("id <> $3", id),
        RevokeScope::All => ("$3 = $3", Uuid::nil()),
    };
    let revoked: Vec<Uuid> = sqlx::query_scalar(&format!(
        "UPDATE sessions SET revoked_at = $2 \
         WHERE user_id = $1 AND revoked_at IS NULL AND {filter} RETURNING id"
    ))
    .bind(user_id)
    .bind(at)
    .bind(session_id)
    .fetch_all(&mut **tx)
    .await?;
    record_revocations(tx, &revoked, at).await?;
    Ok(revoked)
}

/// A token rotated away long ago was presented again: someone holds a copy. Revokes the whole
/// session, its newest refresh token included, and returns its user.
pub(super) async fn revoke_as_stolen(
    tx: &mut WriteTx<Db>,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Uuid, StoreError> {
    let revoked: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING id",
    )
    .bind(session_id)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    record_revocations(tx, &revoked, now).await?;
    let user_id: Uuid = sqlx::query_scalar("SELECT user_id FROM sessions WHERE id = $1")
        .bind(session_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(user_id)
}

/// Keeps revocations beyond the life of their session rows, and tells other instances.
async fn record_revocations(
    tx: &mut WriteTx<Db>,
    session_ids: &[Uuid],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    for session_id in session_ids {
        sqlx::query(
            "INSERT INTO session_revocations (session_id, revoked_at) VALUES ($1, $2) \
             ON CONFLICT (session_id) DO NOTHING",
        )
        .bind(session_id)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    }
    Engine::notify_revoked(tx, session_ids).await?;
    Ok(())
}

/// A session with its first refresh token (generation 0), in one row.
pub(super) async fn insert_session(
    tx: &mut WriteTx<Db>,
    session: &NewSession,
    refresh: &NewRefreshToken,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip, \
         refresh_hash, refresh_generation, refresh_expires_at, amr) \
         VALUES ($1, $2, $3, $3, $4, $5, $6, $7, 0, $8, $9)",
    )
    .bind(session.id)
    .bind(session.user_id)
    .bind(session.created_at)
    .bind(session.expires_at)
    .bind(session.user_agent.as_deref())
    .bind(session.ip.as_deref())
    .bind(&refresh.hash)
    .bind(refresh.expires_at)
    .bind(session.methods.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
