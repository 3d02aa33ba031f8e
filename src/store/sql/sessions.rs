//! Sessions and their refresh tokens: starting, rotating and ending them, and the revocation
//! record the other instances and the access-token check rely on.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, Engine};
use crate::store::rows::UserRow;
use crate::store::seam::{Seam, WriteTx};
use crate::store::{
    NewRefreshToken, NewSession, RefreshOutcome, RevokeScope, Rotation, SessionInfo, StoreError,
    TokenCheck, User,
};

pub(super) async fn live_sessions(
    store: &Engine,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<SessionInfo>, StoreError> {
    let sessions = sqlx::query_as(
        "SELECT id, created_at, last_used_at, expires_at, user_agent, ip FROM sessions s \
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
         AND EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = s.id \
                     AND r.rotated_at IS NULL AND r.expires_at > $2) \
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

/// Every early `return` drops `tx` uncommitted, which rolls back what it wrote (the claimed
/// rotation): a refused refresh changes nothing.
pub(super) async fn refresh_session(
    store: &Engine,
    presented: &str,
    next: &NewRefreshToken,
    reuse_since: DateTime<Utc>,
    require_verified: bool,
) -> Result<RefreshOutcome, StoreError> {
    let now = next.created_at;
    let mut tx = store.begin_write().await?;
    if let Some(session_id) = claim_rotation(&mut tx, presented, now).await? {
        let owner = live_session_owner(&mut tx, session_id, now).await?;
        let user = match admit_refresh(owner, require_verified) {
            Ok(user) => user,
            Err(refused) => return Ok(refused),
        };
        insert_refresh_token(&mut tx, session_id, next).await?;
        touch_session(&mut tx, session_id, now).await?;
        tx.commit().await?;
        return Ok(RefreshOutcome::Rotated(Rotation { user, session_id }));
    }
    let Some((session_id, rotated_at)) = rotated_token(&mut tx, presented).await? else {
        // Unknown, or never rotated and so expired.
        return Ok(RefreshOutcome::Invalid);
    };
    if rotated_at < reuse_since {
        let user_id = revoke_as_stolen(&mut tx, session_id, now).await?;
        tx.commit().await?;
        return Ok(RefreshOutcome::Reused {
            user_id,
            session_id,
            revoked_at: now,
        });
    }
    // A concurrent refresh with the same token: answer with the successor the first caller got,
    // provided it is still the session's live token.
    let owner = if successor_is_live(&mut tx, session_id, next, now).await? {
        live_session_owner(&mut tx, session_id, now).await?
    } else {
        None
    };
    let user = match admit_refresh(owner, require_verified) {
        Ok(user) => user,
        Err(refused) => return Ok(refused),
    };
    touch_session(&mut tx, session_id, now).await?;
    tx.commit().await?;
    Ok(RefreshOutcome::Replayed(Rotation { user, session_id }))
}

/// The user a refresh may go on for: the owner of a live session, verified when that is required.
/// Otherwise the outcome to answer with.
fn admit_refresh(owner: Option<User>, require_verified: bool) -> Result<User, RefreshOutcome> {
    match owner {
        None => Err(RefreshOutcome::Invalid),
        Some(user) if require_verified && !user.email_verified => Err(RefreshOutcome::Unverified),
        Some(user) => Ok(user),
    }
}

pub(super) async fn check_refresh_token(
    store: &Engine,
    presented: &str,
    now: DateTime<Utc>,
    reuse_since: DateTime<Utc>,
) -> Result<TokenCheck, StoreError> {
    let mut tx = store.begin_write().await?;
    let token: Option<(Uuid, Option<DateTime<Utc>>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT session_id, rotated_at, expires_at FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(presented)
    .fetch_optional(&mut *tx)
    .await?;
    // Each early return rolls back by dropping the transaction: nothing was written.
    let check = match token {
        None => return Ok(TokenCheck::Invalid),
        Some((session_id, None, expires_at)) if expires_at > now => {
            match live_session_owner(&mut tx, session_id, now).await? {
                Some(user) => TokenCheck::Live {
                    user_id: user.id,
                    session_id,
                },
                None => return Ok(TokenCheck::Invalid),
            }
        }
        Some((_, None, _)) => return Ok(TokenCheck::Invalid),
        Some((_, Some(rotated_at), _)) if rotated_at >= reuse_since => {
            return Ok(TokenCheck::JustRotated);
        }
        Some((session_id, Some(_), _)) => {
            let user_id = revoke_as_stolen(&mut tx, session_id, now).await?;
            TokenCheck::Reused {
                user_id,
                session_id,
                revoked_at: now,
            }
        }
    };
    tx.commit().await?;
    Ok(check)
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
async fn revoke_as_stolen(
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

pub(super) async fn insert_session(
    tx: &mut WriteTx<Db>,
    session: &NewSession,
    refresh: &NewRefreshToken,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip) \
         VALUES ($1, $2, $3, $3, $4, $5, $6)",
    )
    .bind(session.id)
    .bind(session.user_id)
    .bind(session.created_at)
    .bind(session.expires_at)
    .bind(session.user_agent.as_deref())
    .bind(session.ip.as_deref())
    .execute(&mut **tx)
    .await?;
    insert_refresh_token(tx, session.id, refresh).await
}

async fn insert_refresh_token(
    tx: &mut WriteTx<Db>,
    session_id: Uuid,
    token: &NewRefreshToken,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&token.hash)
    .bind(session_id)
    .bind(token.created_at)
    .bind(token.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks a live refresh token rotated and returns its session. The conditional UPDATE is the
/// lock: of concurrent refreshes with one token, exactly one sees `rotated_at IS NULL`; the others
/// wait for it to commit and then find the token rotated.
async fn claim_rotation(
    tx: &mut WriteTx<Db>,
    presented: &str,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE refresh_tokens SET rotated_at = $2 \
         WHERE token_hash = $1 AND rotated_at IS NULL AND expires_at > $2 \
         RETURNING session_id",
    )
    .bind(presented)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?)
}

/// The session of a token that was rotated away, and when; `None` for an unknown token or one
/// never rotated.
async fn rotated_token(
    tx: &mut WriteTx<Db>,
    presented: &str,
) -> Result<Option<(Uuid, DateTime<Utc>)>, StoreError> {
    let spent: Option<(Uuid, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT session_id, rotated_at FROM refresh_tokens WHERE token_hash = $1")
            .bind(presented)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(spent.and_then(|(session_id, rotated_at)| Some((session_id, rotated_at?))))
}

/// Whether `next` is still the live token of the session.
async fn successor_is_live(
    tx: &mut WriteTx<Db>,
    session_id: Uuid,
    next: &NewRefreshToken,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let live: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM refresh_tokens WHERE token_hash = $1 AND session_id = $2 \
         AND rotated_at IS NULL AND expires_at > $3",
    )
    .bind(&next.hash)
    .bind(session_id)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(live.is_some())
}

/// The owner of a session that is neither revoked nor past its absolute lifetime.
async fn live_session_owner(
    tx: &mut WriteTx<Db>,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<User>, StoreError> {
    let owner: Option<UserRow> = sqlx::query_as(
        "SELECT u.id, u.email, u.name, u.role, u.created_at, u.updated_at, u.disabled_at, \
         u.email_verified_at \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
         AND u.disabled_at IS NULL",
    )
    .bind(session_id)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    owner.map(TryInto::try_into).transpose()
}

async fn touch_session(
    tx: &mut WriteTx<Db>,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET last_used_at = $2 WHERE id = $1")
        .bind(session_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
