//! Accounts: reading them, creating them, and the changes an admin or their owner makes.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, Engine, email_tokens, sessions};
use crate::domain::{Email, Role};
use crate::store::rows::{CredentialsRow, UserRow, user_columns};
use crate::store::seam::{Seam, WriteTx};
use crate::store::{
    AccountChange, Backend, Credentials, NewRefreshToken, NewSession, NewUser, RevokeScope,
    StoreError, User, UserChanges, UserQuery,
};

pub(super) async fn credentials_by_email(
    store: &Engine,
    email: &Email,
) -> Result<Option<Credentials>, StoreError> {
    let row: Option<CredentialsRow> = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        ", password_hash FROM users WHERE email = $1"
    ))
    .bind(email.as_str())
    .fetch_optional(store.pool())
    .await?;
    row.map(TryInto::try_into).transpose()
}

pub(super) async fn credentials_by_id(
    store: &Engine,
    id: Uuid,
) -> Result<Option<Credentials>, StoreError> {
    let row: Option<CredentialsRow> = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        ", password_hash FROM users WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    row.map(TryInto::try_into).transpose()
}

/// Served from the store's user cache when it has the user.
pub(super) async fn user_by_id(store: &Engine, id: Uuid) -> Result<Option<User>, StoreError> {
    if let Some(user) = store.users().get(id) {
        return Ok(Some(user));
    }
    let ticket = store.users().ticket();
    let row: Option<UserRow> = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    let user: Option<User> = row.map(TryInto::try_into).transpose()?;
    if let Some(user) = &user {
        store.users().keep(ticket, user);
    }
    Ok(user)
}

/// On SQLite, a prefix that matches more users than this is read along `(created_at, id)`.
const BROAD_PREFIX: i64 = 1_000;

/// SQLite's planner reads a prefix's matches by the email index and sorts them, however many
/// there are: cheap for a selective prefix, every user for one that matches them all. So the
/// store first counts the matches up to [`BROAD_PREFIX`] (index entries only) and, past it, walks
/// `(created_at, id)` in order, checking each email, until the page is full: what PostgreSQL's
/// planner chooses by itself from its statistics.
pub(super) async fn list_users(store: &Engine, query: &UserQuery) -> Result<Vec<User>, StoreError> {
    let in_order = match &query.email_prefix {
        Some(prefix) if Engine::BACKEND == Backend::Sqlite => broad_prefix(store, prefix).await?,
        _ => false,
    };
    let rows: Vec<UserRow> = list_users_query(query, in_order)
        .build_query_as()
        .fetch_all(store.pool())
        .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

async fn broad_prefix(store: &Engine, prefix: &str) -> Result<bool, StoreError> {
    let matches: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM users WHERE email >= $1 AND email < $2 LIMIT $3)",
    )
    .bind(prefix)
    .bind(prefix_end(prefix))
    .bind(BROAD_PREFIX + 1)
    .fetch_one(store.pool())
    .await?;
    Ok(matches > BROAD_PREFIX)
}

/// One page of users. Only the conditions a query has are in its SQL (an `$n IS NULL OR` form
/// would keep the planner off the indexes), and each is a range on an index: the email prefix on
/// the email index, the cursor as a row value on `(created_at, id)`, which is also the order, so a
/// page reads `limit` index entries whatever the table's size. `in_order` (SQLite) reads along
/// `(created_at, id)` even with a prefix (see [`list_users`]).
pub(in crate::store) fn list_users_query(
    query: &UserQuery,
    in_order: bool,
) -> sqlx::QueryBuilder<'static, Db> {
    let mut sql = sqlx::QueryBuilder::new(concat!("SELECT ", user_columns!(), " FROM users"));
    if in_order {
        sql.push(" INDEXED BY users_created_at_id");
    }
    sql.push(" WHERE 1 = 1");
    if let Some(prefix) = &query.email_prefix {
        let email = match Engine::BACKEND {
            // Byte order, as in the range's bounds, whatever the database's collation.
            Backend::Postgres => " AND email COLLATE \"C\"",
            Backend::Sqlite => " AND email",
        };
        sql.push(email).push(" >= ").push_bind(prefix.clone());
        sql.push(email).push(" < ").push_bind(prefix_end(prefix));
    }
    if let Some((created_at, id)) = query.after {
        sql.push(" AND (created_at, id) > (")
            .push_bind(created_at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    sql.push(" ORDER BY created_at, id LIMIT ")
        .push_bind(i64::from(query.limit));
    sql
}

/// The least string greater than every string that starts with `prefix`, in byte order: with
/// `email >= prefix AND email < prefix_end(prefix)` a prefix search is a range on the email index,
/// where a `LIKE` (case-insensitive in SQLite, collation-bound in PostgreSQL) scans the table.
/// U+10FFFF is the greatest code point, so its UTF-8 form sorts after any character's.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

pub(super) async fn create_account(store: &Engine, user: &NewUser) -> Result<User, StoreError> {
    let mut tx = store.begin_write().await?;
    let created = insert_user(&mut tx, user).await?;
    tx.commit().await?;
    Ok(created)
}

/// A user with their first session, in one transaction: a failure leaves no row.
pub(super) async fn create_user(
    store: &Engine,
    user: &NewUser,
    session: &NewSession,
    refresh: &NewRefreshToken,
) -> Result<User, StoreError> {
    let mut tx = store.begin_write().await?;
    let created = insert_user(&mut tx, user).await?;
    sessions::insert_session(&mut tx, session, refresh).await?;
    tx.commit().await?;
    Ok(created)
}

async fn insert_user(tx: &mut WriteTx<Db>, user: &NewUser) -> Result<User, StoreError> {
    sqlx::query(
        "INSERT INTO users \
         (id, email, password_hash, name, role, created_at, updated_at, email_verified_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
    )
    .bind(user.id)
    .bind(user.email.as_str())
    .bind(&user.password_hash)
    .bind(user.name.as_ref().map(|name| name.as_str()))
    .bind(user.role.as_str())
    .bind(user.created_at)
    .bind(user.email_verified_at)
    .execute(&mut **tx)
    .await
    .map_err(map_insert_user_error)?;
    Ok(User {
        id: user.id,
        email: user.email.as_str().to_owned(),
        name: user.name.as_ref().map(|name| name.as_str().to_owned()),
        role: user.role,
        disabled: false,
        email_verified: user.email_verified_at.is_some(),
        created_at: user.created_at,
        updated_at: user.created_at,
    })
}

/// A unique violation on the users table can only be the email.
pub(super) fn map_insert_user_error(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::EmailTaken,
        _ => err.into(),
    }
}

pub(super) async fn update_user(
    store: &Engine,
    id: Uuid,
    changes: &UserChanges,
    at: DateTime<Utc>,
) -> Result<AccountChange<User>, StoreError> {
    let mut tx = store.begin_exclusive().await?;
    let current: User = sqlx::query_as::<_, UserRow>(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StoreError::UserNotFound)?
    .try_into()?;
    let demoted = current.role == Role::Admin && changes.role == Some(Role::User);
    let disabled = !current.disabled && changes.disabled == Some(true);
    if current.role == Role::Admin && !current.disabled && (demoted || disabled) {
        ensure_another_admin(&mut tx, id).await?;
    }
    let updated = apply_changes(&mut tx, &current, changes, at).await?;
    let revoked = if demoted || disabled {
        sessions::revoke_in(&mut tx, id, RevokeScope::All, at).await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    store.users().forget(id);
    Ok(AccountChange {
        value: updated,
        revoked,
    })
}

async fn apply_changes(
    tx: &mut WriteTx<Db>,
    current: &User,
    changes: &UserChanges,
    at: DateTime<Utc>,
) -> Result<User, StoreError> {
    // `None` leaves the column; `Some(value)` sets it to `value`.
    let disabled_at = match changes.disabled {
        Some(true) if current.disabled => None,
        Some(true) => Some(Some(at)),
        Some(false) => Some(None),
        None => None,
    };
    let row: UserRow = sqlx::query_as(concat!(
        "UPDATE users SET \
           name = CASE WHEN $2 THEN $3 ELSE name END, \
           role = COALESCE($4, role), \
           disabled_at = CASE WHEN $5 THEN $6 ELSE disabled_at END, \
           updated_at = $7 \
         WHERE id = $1 RETURNING ",
        user_columns!()
    ))
    .bind(current.id)
    .bind(changes.name.is_some())
    .bind(
        changes
            .name
            .as_ref()
            .and_then(|name| name.as_ref().map(|n| n.as_str())),
    )
    .bind(changes.role.map(Role::as_str))
    .bind(disabled_at.is_some())
    .bind(disabled_at.flatten())
    .bind(at)
    .fetch_one(&mut **tx)
    .await?;
    row.try_into()
}

pub(super) async fn delete_user(
    store: &Engine,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<AccountChange<()>, StoreError> {
    let mut tx = store.begin_exclusive().await?;
    let role: Option<(String, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT role, disabled_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((role, disabled_at)) = role else {
        return Err(StoreError::UserNotFound);
    };
    if role == Role::Admin.as_str() && disabled_at.is_none() {
        ensure_another_admin(&mut tx, id).await?;
    }
    let revoked = sessions::revoke_in(&mut tx, id, RevokeScope::All, at).await?;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    store.users().forget(id);
    Ok(AccountChange { value: (), revoked })
}

/// Fails with `LastAdmin` unless an enabled admin other than `id` exists.
async fn ensure_another_admin(tx: &mut WriteTx<Db>, id: Uuid) -> Result<(), StoreError> {
    let others: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL AND id <> $1",
    )
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    if others == 0 {
        return Err(StoreError::LastAdmin);
    }
    Ok(())
}

pub(super) async fn upgrade_password_hash(
    store: &Engine,
    user_id: Uuid,
    password_hash: &str,
) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(user_id)
        .bind(password_hash)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn set_password(
    store: &Engine,
    user_id: Uuid,
    password_hash: &str,
    keep: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<AccountChange<()>, StoreError> {
    let mut tx = store.begin_write().await?;
    let updated = sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(user_id)
        .bind(password_hash)
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if updated == 0 {
        return Err(StoreError::UserNotFound);
    }
    email_tokens::spend_tokens_of_old_password(&mut tx, user_id, at).await?;
    let scope = keep.map_or(RevokeScope::All, RevokeScope::AllExcept);
    let revoked = sessions::revoke_in(&mut tx, user_id, scope, at).await?;
    tx.commit().await?;
    store.users().forget(user_id);
    Ok(AccountChange { value: (), revoked })
}
