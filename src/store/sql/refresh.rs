//! Rotating refresh tokens: the live token for its successor, a concurrent refresh answered with
//! the same successor, a copy of an old token ending its session. See `store/refresh_chain.rs`
//! for how a token stands in its session's chain; tokens issued before sessions counted their
//! generations still have rows in `refresh_tokens` and are judged there, until they rotate.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, Engine, mfa, sessions};
use crate::auth::AuthMethods;
use crate::auth::{PresentedRefresh, RefreshForm};
use crate::store::refresh_chain::{Chain, Standing, standing};
use crate::store::rows::UserRow;
use crate::store::seam::{Seam, WriteTx};
use crate::store::{NewRefreshToken, RefreshOutcome, Rotation, StoreError, TokenCheck, User};

pub(super) async fn session_of_legacy_token(
    store: &Engine,
    hash: &str,
) -> Result<Option<Uuid>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT session_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(hash)
            .fetch_optional(store.pool())
            .await?,
    )
}

/// Every early `return` drops `tx` uncommitted, which rolls back what it wrote (the claimed
/// rotation): a refused refresh changes nothing.
pub(super) async fn refresh_session(
    store: &Engine,
    presented: &PresentedRefresh,
    next: &NewRefreshToken,
    reuse_since: DateTime<Utc>,
    require_verified: bool,
) -> Result<RefreshOutcome, StoreError> {
    let now = next.created_at;
    let mut tx = store.begin_write().await?;
    if let Some(session_id) = claim(&mut tx, presented, next, now).await? {
        let owner = live_session_owner(&mut tx, session_id, now).await?;
        let user = match admit_refresh(owner, require_verified) {
            Ok(user) => user,
            Err(refused) => return Ok(refused),
        };
        let rotation = rotation(&mut tx, user, session_id).await?;
        tx.commit().await?;
        return Ok(RefreshOutcome::Rotated(rotation));
    }
    let session_id = match judge(&mut tx, presented, now, reuse_since).await? {
        Standing::JustRotated {
            session_id,
            predecessor: true,
        } => session_id,
        Standing::Reused(session_id) => {
            let user_id = sessions::revoke_as_stolen(&mut tx, session_id, now).await?;
            tx.commit().await?;
            return Ok(RefreshOutcome::Reused {
                user_id,
                session_id,
                revoked_at: now,
            });
        }
        // A live token would have been claimed.
        Standing::Live(_) | Standing::JustRotated { .. } | Standing::Invalid => {
            return Ok(RefreshOutcome::Invalid);
        }
    };
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
    let rotation = rotation(&mut tx, user, session_id).await?;
    tx.commit().await?;
    Ok(RefreshOutcome::Replayed(rotation))
}

/// A refresh keeps how its session was authenticated, and when.
async fn rotation(
    tx: &mut WriteTx<Db>,
    user: User,
    session_id: Uuid,
) -> Result<Rotation, StoreError> {
    let (amr, auth_time) = mfa::session_authn(tx, session_id).await?;
    Ok(Rotation {
        user,
        session_id,
        methods: AuthMethods::parse(&amr),
        auth_time,
    })
}

/// The user a refresh may go on for: the owner of a live session, verified when that is required.
/// Otherwise the outcome to answer with.
// The refusal is always a small variant (`Invalid`, `Unverified`), never a `Rotation`.
#[allow(clippy::result_large_err)]
fn admit_refresh(owner: Option<User>, require_verified: bool) -> Result<User, RefreshOutcome> {
    match owner {
        None => Err(RefreshOutcome::Invalid),
        Some(user) if require_verified && !user.email_verified => Err(RefreshOutcome::Unverified),
        Some(user) => Ok(user),
    }
}

pub(super) async fn check_refresh_token(
    store: &Engine,
    presented: &PresentedRefresh,
    now: DateTime<Utc>,
    reuse_since: DateTime<Utc>,
) -> Result<TokenCheck, StoreError> {
    let mut tx = store.begin_write().await?;
    // Each early return rolls back by dropping the transaction: nothing was written.
    let check = match judge(&mut tx, presented, now, reuse_since).await? {
        Standing::Live(session_id) => match live_session_owner(&mut tx, session_id, now).await? {
            Some(user) => TokenCheck::Live {
                user_id: user.id,
                session_id,
            },
            None => return Ok(TokenCheck::Invalid),
        },
        Standing::JustRotated { .. } => return Ok(TokenCheck::JustRotated),
        Standing::Reused(session_id) => {
            let user_id = sessions::revoke_as_stolen(&mut tx, session_id, now).await?;
            TokenCheck::Reused {
                user_id,
                session_id,
                revoked_at: now,
            }
        }
        Standing::Invalid => return Ok(TokenCheck::Invalid),
    };
    tx.commit().await?;
    Ok(check)
}

/// Makes `next` the session's live token if `presented` is, and returns the session. The
/// conditional UPDATE is the lock: of concurrent refreshes with one token, exactly one matches;
/// the others wait for it to commit and then find the token rotated.
async fn claim(
    tx: &mut WriteTx<Db>,
    presented: &PresentedRefresh,
    next: &NewRefreshToken,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    match presented.form {
        RefreshForm::Chained {
            session_id,
            generation,
            ..
        } => Ok(sqlx::query_scalar(
            "UPDATE sessions SET refresh_hash = $4, refresh_generation = refresh_generation + 1, \
             refresh_rotated_at = $5, refresh_expires_at = $6, last_used_at = $5 \
             WHERE id = $1 AND refresh_generation = $2 AND refresh_hash = $3 \
             AND refresh_expires_at > $5 \
             RETURNING id",
        )
        .bind(session_id)
        .bind(i64::from(generation))
        .bind(&presented.hash)
        .bind(&next.hash)
        .bind(now)
        .bind(next.expires_at)
        .fetch_optional(&mut **tx)
        .await?),
        RefreshForm::Legacy => claim_legacy(tx, &presented.hash, next, now).await,
    }
}

/// A token from before sessions counted generations: its row is marked rotated (and kept, so a
/// copy presented later is recognised until the row expires), and its successor, generation 1,
/// moves onto the session.
async fn claim_legacy(
    tx: &mut WriteTx<Db>,
    presented: &str,
    next: &NewRefreshToken,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    let session_id: Option<Uuid> = sqlx::query_scalar(
        "UPDATE refresh_tokens SET rotated_at = $2 \
         WHERE token_hash = $1 AND rotated_at IS NULL AND expires_at > $2 \
         RETURNING session_id",
    )
    .bind(presented)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(session_id) = session_id {
        sqlx::query(
            "UPDATE sessions SET refresh_hash = $2, refresh_generation = 1, \
             refresh_rotated_at = $3, refresh_expires_at = $4, last_used_at = $3 WHERE id = $1",
        )
        .bind(session_id)
        .bind(&next.hash)
        .bind(now)
        .bind(next.expires_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(session_id)
}

/// Where `presented` stands, read in the transaction that acts on it.
async fn judge(
    tx: &mut WriteTx<Db>,
    presented: &PresentedRefresh,
    now: DateTime<Utc>,
    reuse_since: DateTime<Utc>,
) -> Result<Standing, StoreError> {
    match presented.form {
        RefreshForm::Chained {
            session_id,
            generation,
            authentic,
        } => {
            let chain: Option<Chain> = sqlx::query_as(
                "SELECT refresh_hash, refresh_generation, refresh_rotated_at, refresh_expires_at \
                 FROM sessions WHERE id = $1",
            )
            .bind(session_id)
            .fetch_optional(&mut **tx)
            .await?;
            Ok(chain.map_or(Standing::Invalid, |chain| {
                standing(
                    session_id,
                    generation,
                    authentic,
                    &presented.hash,
                    &chain,
                    now,
                    reuse_since,
                )
            }))
        }
        RefreshForm::Legacy => judge_legacy(tx, &presented.hash, now, reuse_since).await,
    }
}

async fn judge_legacy(
    tx: &mut WriteTx<Db>,
    presented: &str,
    now: DateTime<Utc>,
    reuse_since: DateTime<Utc>,
) -> Result<Standing, StoreError> {
    let token: Option<(Uuid, Option<DateTime<Utc>>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT session_id, rotated_at, expires_at FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(presented)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match token {
        None => Standing::Invalid,
        Some((session_id, None, expires_at)) if expires_at > now => Standing::Live(session_id),
        Some((_, None, _)) => Standing::Invalid,
        Some((session_id, Some(rotated_at), _)) if rotated_at >= reuse_since => {
            Standing::JustRotated {
                session_id,
                predecessor: true,
            }
        }
        Some((session_id, Some(_), _)) => Standing::Reused(session_id),
    })
}

/// Whether `next` is still the live token of the session.
async fn successor_is_live(
    tx: &mut WriteTx<Db>,
    session_id: Uuid,
    next: &NewRefreshToken,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let live: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM sessions WHERE id = $1 AND refresh_hash = $2 AND refresh_expires_at > $3",
    )
    .bind(session_id)
    .bind(&next.hash)
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
