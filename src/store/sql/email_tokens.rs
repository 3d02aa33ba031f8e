//! Mailed single-use tokens: email verification, password reset, email change.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, Engine, sessions, users};
use crate::store::seam::{Seam, WriteTx};
use crate::store::{AccountChange, EmailTokenPurpose, NewEmailToken, RevokeScope, StoreError};

pub(super) async fn create(store: &Engine, token: &NewEmailToken) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO email_tokens \
         (token_hash, user_id, purpose, email, new_email, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&token.hash)
    .bind(token.user_id)
    .bind(token.purpose.as_str())
    .bind(&token.email)
    .bind(token.new_email.as_deref())
    .bind(token.created_at)
    .bind(token.expires_at)
    .execute(store.pool())
    .await?;
    Ok(())
}

pub(super) async fn is_live(
    store: &Engine,
    presented: &str,
    purpose: EmailTokenPurpose,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let live: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM email_tokens t JOIN users u ON u.id = t.user_id \
         WHERE t.token_hash = $1 AND t.purpose = $2 AND t.used_at IS NULL \
         AND t.expires_at > $3 AND u.email = t.email",
    )
    .bind(presented)
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(store.pool())
    .await?;
    Ok(live.is_some())
}

pub(super) async fn verify_email(
    store: &Engine,
    presented: &str,
    at: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    let mut tx = store.begin_write().await?;
    let user_id = spend(&mut tx, presented, EmailTokenPurpose::EmailVerification, at).await?;
    if let Some(user_id) = user_id {
        sqlx::query(
            "UPDATE users SET email_verified_at = $2, updated_at = $2 \
             WHERE id = $1 AND email_verified_at IS NULL",
        )
        .bind(user_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        store.users().forget(user_id);
    }
    Ok(user_id)
}

pub(super) async fn confirm_email_change(
    store: &Engine,
    presented: &str,
    at: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    let mut tx = store.begin_write().await?;
    let Some(user_id) = spend(&mut tx, presented, EmailTokenPurpose::EmailChange, at).await? else {
        return Ok(None);
    };
    let new_email: String =
        sqlx::query_scalar("SELECT new_email FROM email_tokens WHERE token_hash = $1")
            .bind(presented)
            .fetch_one(&mut *tx)
            .await?;
    // The unique index reserves the address only now; an error drops the transaction, which
    // leaves the token unspent.
    sqlx::query(
        "UPDATE users SET email = $2, email_verified_at = $3, updated_at = $3 WHERE id = $1",
    )
    .bind(user_id)
    .bind(&new_email)
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(users::map_insert_user_error)?;
    tx.commit().await?;
    store.users().forget(user_id);
    Ok(Some(user_id))
}

pub(super) async fn reset_password(
    store: &Engine,
    presented: &str,
    password_hash: &str,
    at: DateTime<Utc>,
) -> Result<Option<AccountChange<Uuid>>, StoreError> {
    let mut tx = store.begin_write().await?;
    let Some(user_id) = spend(&mut tx, presented, EmailTokenPurpose::PasswordReset, at).await?
    else {
        // Dropping `tx` rolls back: nothing was written.
        return Ok(None);
    };
    // The token reached the mailbox, so the address is the user's: a reset verifies it too (and
    // is how an unverified user who cannot log in gets back in).
    sqlx::query(
        "UPDATE users SET password_hash = $2, updated_at = $3, \
         email_verified_at = COALESCE(email_verified_at, $3) WHERE id = $1",
    )
    .bind(user_id)
    .bind(password_hash)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    spend_tokens_of_old_password(&mut tx, user_id, at).await?;
    let revoked = sessions::revoke_in(&mut tx, user_id, RevokeScope::All, at).await?;
    tx.commit().await?;
    store.users().forget(user_id);
    Ok(Some(AccountChange {
        value: user_id,
        revoked,
    }))
}

/// Marks a live token (by hash) of `purpose` used, if its account still has the email it was
/// mailed to, and returns the account's id. The conditional UPDATE is the lock: of concurrent
/// callers with one token, exactly one spends it.
async fn spend(
    tx: &mut WriteTx<Db>,
    presented: &str,
    purpose: EmailTokenPurpose,
    at: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    let user_id = sqlx::query_scalar(
        "UPDATE email_tokens SET used_at = $3 \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
         AND email = (SELECT u.email FROM users u WHERE u.id = email_tokens.user_id) \
         RETURNING user_id",
    )
    .bind(presented)
    .bind(purpose.as_str())
    .bind(at)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(user_id)
}

/// Spends every unused password-reset and email-change token of a user whose password just
/// changed: a reset link mailed before must not undo the change, and an email change asked for
/// with the old password (perhaps by whoever stole it) must not go through.
pub(super) async fn spend_tokens_of_old_password(
    tx: &mut WriteTx<Db>,
    user_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE email_tokens SET used_at = $2 \
         WHERE user_id = $1 AND purpose IN ('password_reset', 'email_change') \
         AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
