//! The SQL both backends share.
//!
//! SQLite accepts PostgreSQL's `$1` placeholders, and sqlx binds a `Uuid` as a BLOB and a
//! `DateTime<Utc>` as RFC 3339 text there (which sorts in time order), so one set of queries serves
//! both databases. [`impl_store!`] stamps them into each backend's `Store` impl: code generic over
//! `sqlx::Database` would need a trait bound for every type of every query.

use std::ops::{Deref, DerefMut};

use chrono::{DateTime, Utc};
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

use super::{Credentials, RefreshOutcome, SessionInfo, StoreError, User};
use crate::domain::Role;

/// A write transaction, holding its backend's turn to write for as long as it lives (SQLite: see
/// `SqliteStore::begin_write`). Dereferences to the connection, as `sqlx::Transaction` does.
pub(super) struct WriteTx<DB: sqlx::Database> {
    // Declared before the turn, so a dropped transaction starts its rollback before the next
    // writer's turn begins.
    tx: sqlx::Transaction<'static, DB>,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl<DB: sqlx::Database> WriteTx<DB> {
    pub(super) fn new(
        tx: sqlx::Transaction<'static, DB>,
        turn: Option<OwnedMutexGuard<()>>,
    ) -> Self {
        Self { tx, _turn: turn }
    }

    /// Commits, and only then gives up the turn.
    pub(super) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl<DB: sqlx::Database> Deref for WriteTx<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: sqlx::Database> DerefMut for WriteTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: Uuid,
    email: String,
    name: Option<String>,
    role: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    disabled_at: Option<DateTime<Utc>>,
    email_verified_at: Option<DateTime<Utc>>,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        let role = Role::parse(&row.role).ok_or_else(|| {
            StoreError::Database(sqlx::Error::Decode(
                format!("unknown role {:?}", row.role).into(),
            ))
        })?;
        Ok(Self {
            id: row.id,
            email: row.email,
            name: row.name,
            role,
            disabled: row.disabled_at.is_some(),
            email_verified: row.email_verified_at.is_some(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CredentialsRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

impl TryFrom<CredentialsRow> for Credentials {
    type Error = StoreError;

    fn try_from(row: CredentialsRow) -> Result<Self, Self::Error> {
        Ok(Self {
            user: row.user.try_into()?,
            password_hash: row.password_hash,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct SessionRow {
    id: Uuid,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    user_agent: Option<String>,
    ip: Option<String>,
}

impl From<SessionRow> for SessionInfo {
    fn from(row: SessionRow) -> Self {
        Self {
            id: row.id,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
            user_agent: row.user_agent,
            ip: row.ip,
        }
    }
}

/// The columns of a [`UserRow`], for `concat!` into queries.
macro_rules! user_columns {
    () => {
        "id, email, name, role, created_at, updated_at, disabled_at, email_verified_at"
    };
}

pub(super) use user_columns;

/// The least string greater than every string that starts with `prefix`, in byte order: with
/// `email >= prefix AND email < prefix_end(prefix)` a prefix search is a range on the email index,
/// where a `LIKE` (case-insensitive in SQLite, collation-bound in PostgreSQL) scans the table.
/// U+10FFFF is the greatest code point, so its UTF-8 form sorts after any character's.
pub(super) fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// The user a refresh may go on for: the owner of a live session, verified when that is required.
/// Otherwise the outcome to answer with.
pub(super) fn admit_refresh(
    owner: Option<User>,
    require_verified: bool,
) -> Result<User, RefreshOutcome> {
    match owner {
        None => Err(RefreshOutcome::Invalid),
        Some(user) if require_verified && !user.email_verified => Err(RefreshOutcome::Unverified),
        Some(user) => Ok(user),
    }
}

pub(super) fn map_insert_user_error(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::EmailTaken,
        _ => err.into(),
    }
}

/// Implements [`super::Store`] and [`super::SessionStore`] for a backend struct with a `pool` field. The invoking module
/// imports [`WriteTx`], provides `notify_revoked(&mut tx, &ids)`, which tells other instances
/// about revocations, and gives the struct two methods: `begin_write()`, the transaction every
/// write runs in, and `begin_exclusive()`, a write transaction that no other exclusive one runs
/// beside (so two admins cannot demote each other at once). It may add backend-specific trait
/// methods after the migrator.
macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:expr, $migrator:expr $(, $extra:item)* $(,)?) => {
        use chrono::{DateTime, Utc};
        use uuid::Uuid;

        use $crate::domain::{Email, Role};
        use $crate::store::queries::{
            CredentialsRow, SessionRow, UserRow, admit_refresh, map_insert_user_error, prefix_end,
            user_columns,
        };
        use $crate::store::{
            AccountChange, Backend, Credentials, EmailTokenPurpose, NewEmailToken,
            NewRefreshToken, NewSession, NewUser, PoolStats,
            RefreshOutcome, RevokeScope, Rotation, SessionInfo, SessionStore, Store, StoreError, TokenCheck,
            User, UserChanges, UserQuery,
        };

        #[async_trait::async_trait]
        impl Store for $store {
            fn backend(&self) -> Backend {
                $backend
            }

            async fn migrate(&self) -> Result<usize, StoreError> {
                use sqlx::migrate::Migrate;
                let mut conn = self.pool.acquire().await?;
                // The applied rows are counted before and after, so the operator learns whether
                // this run changed the schema (the migrator itself does not say). All of it runs
                // under the migrator's lock (advisory on PostgreSQL): instances starting together
                // must not race to create the bookkeeping table, nor count each other's work.
                conn.lock().await?;
                let applied = async {
                    conn.ensure_migrations_table().await?;
                    let before = conn.list_applied_migrations().await?.len();
                    let mut migrator = $migrator;
                    migrator.set_locking(false);
                    migrator.run_direct(&mut *conn).await?;
                    let after = conn.list_applied_migrations().await?.len();
                    Ok::<_, StoreError>(after.saturating_sub(before))
                }
                .await;
                conn.unlock().await?;
                applied
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            fn pool_stats(&self) -> PoolStats {
                PoolStats {
                    connections: self.pool.size(),
                    idle: self.pool.num_idle(),
                }
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(value)
                .execute(&self.pool)
                .await?;
                let stored: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                    .bind(key)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(stored)
            }

            async fn create_account(&self, user: &NewUser) -> Result<User, StoreError> {
                let mut tx = self.begin_write().await?;
                let created = insert_user(&mut tx, user).await?;
                tx.commit().await?;
                Ok(created)
            }

            async fn credentials_by_email(&self, email: &Email) -> Result<Option<Credentials>, StoreError> {
                let row: Option<CredentialsRow> = sqlx::query_as(concat!(
                    "SELECT ", user_columns!(), ", password_hash FROM users WHERE email = $1"
                ))
                .bind(email.as_str())
                .fetch_optional(&self.pool)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn credentials_by_id(&self, id: Uuid) -> Result<Option<Credentials>, StoreError> {
                let row: Option<CredentialsRow> = sqlx::query_as(concat!(
                    "SELECT ", user_columns!(), ", password_hash FROM users WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
                let row: Option<UserRow> =
                    sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn list_users(&self, query: &UserQuery) -> Result<Vec<User>, StoreError> {
                let rows: Vec<UserRow> = list_users_query(query)
                    .build_query_as()
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn create_email_token(&self, token: &NewEmailToken) -> Result<(), StoreError> {
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
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn email_token_is_live(
                &self,
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
                .fetch_optional(&self.pool)
                .await?;
                Ok(live.is_some())
            }

            async fn verify_email(
                &self,
                presented: &str,
                at: DateTime<Utc>,
            ) -> Result<Option<Uuid>, StoreError> {
                let mut tx = self.begin_write().await?;
                let user_id =
                    spend_email_token(&mut tx, presented, EmailTokenPurpose::EmailVerification, at)
                        .await?;
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
                }
                Ok(user_id)
            }

            async fn confirm_email_change(
                &self,
                presented: &str,
                at: DateTime<Utc>,
            ) -> Result<Option<Uuid>, StoreError> {
                let mut tx = self.begin_write().await?;
                let Some(user_id) =
                    spend_email_token(&mut tx, presented, EmailTokenPurpose::EmailChange, at)
                        .await?
                else {
                    return Ok(None);
                };
                let new_email: String =
                    sqlx::query_scalar("SELECT new_email FROM email_tokens WHERE token_hash = $1")
                        .bind(presented)
                        .fetch_one(&mut *tx)
                        .await?;
                // The unique index reserves the address only now; an error drops the transaction,
                // which leaves the token unspent.
                sqlx::query(
                    "UPDATE users SET email = $2, email_verified_at = $3, updated_at = $3 \
                     WHERE id = $1",
                )
                .bind(user_id)
                .bind(&new_email)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(map_insert_user_error)?;
                tx.commit().await?;
                Ok(Some(user_id))
            }

            async fn upgrade_password_hash(
                &self,
                user_id: Uuid,
                password_hash: &str,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                    .bind(user_id)
                    .bind(password_hash)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn live_sessions(
                &self,
                user_id: Uuid,
                now: DateTime<Utc>,
            ) -> Result<Vec<SessionInfo>, StoreError> {
                let rows: Vec<SessionRow> = sqlx::query_as(
                    "SELECT id, created_at, last_used_at, expires_at, user_agent, ip FROM sessions s \
                     WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
                     AND EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = s.id \
                                 AND r.rotated_at IS NULL AND r.expires_at > $2) \
                     ORDER BY last_used_at DESC",
                )
                .bind(user_id)
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn revocations_since(
                &self,
                since: DateTime<Utc>,
            ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
                let rows = sqlx::query_as(
                    "SELECT session_id, revoked_at FROM session_revocations WHERE revoked_at > $1",
                )
                    .bind(since)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows)
            }

            async fn prune(
                &self,
                now: DateTime<Utc>,
                revoked_before: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                let mut tx = self.begin_write().await?;
                let tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                // A session goes when it is past its absolute lifetime, when its revocation no
                // longer matters to any access token, or when its last refresh token expired.
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

            $($extra)*
        }

        #[async_trait::async_trait]
        impl SessionStore for $store {
            async fn create_user(
                &self,
                user: &NewUser,
                session: &NewSession,
                refresh: &NewRefreshToken,
            ) -> Result<User, StoreError> {
                let mut tx = self.begin_write().await?;
                let created = insert_user(&mut tx, user).await?;
                insert_session(&mut tx, session, refresh).await?;
                tx.commit().await?;
                Ok(created)
            }

            async fn update_user(
                &self,
                id: Uuid,
                changes: &UserChanges,
                at: DateTime<Utc>,
            ) -> Result<AccountChange<User>, StoreError> {
                let mut tx = self.begin_exclusive().await?;
                let current: User = sqlx::query_as::<_, UserRow>(concat!(
                    "SELECT ", user_columns!(), " FROM users WHERE id = $1"
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
                     WHERE id = $1 RETURNING ", user_columns!()
                ))
                .bind(id)
                .bind(changes.name.is_some())
                .bind(changes.name.as_ref().and_then(|name| name.as_ref().map(|n| n.as_str())))
                .bind(changes.role.map(Role::as_str))
                .bind(disabled_at.is_some())
                .bind(disabled_at.flatten())
                .bind(at)
                .fetch_one(&mut *tx)
                .await?;
                let revoked = if demoted || disabled {
                    revoke_in(&mut tx, id, RevokeScope::All, at).await?
                } else {
                    Vec::new()
                };
                tx.commit().await?;
                Ok(AccountChange { value: row.try_into()?, revoked })
            }

            async fn delete_user(
                &self,
                id: Uuid,
                at: DateTime<Utc>,
            ) -> Result<AccountChange<()>, StoreError> {
                let mut tx = self.begin_exclusive().await?;
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
                let revoked = revoke_in(&mut tx, id, RevokeScope::All, at).await?;
                sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(AccountChange { value: (), revoked })
            }

            async fn set_password(
                &self,
                user_id: Uuid,
                password_hash: &str,
                keep: Option<Uuid>,
                at: DateTime<Utc>,
            ) -> Result<AccountChange<()>, StoreError> {
                let mut tx = self.begin_write().await?;
                let updated = sqlx::query(
                    "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1",
                )
                .bind(user_id)
                .bind(password_hash)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated == 0 {
                    return Err(StoreError::UserNotFound);
                }
                spend_tokens_of_old_password(&mut tx, user_id, at).await?;
                let scope = keep.map_or(RevokeScope::All, RevokeScope::AllExcept);
                let revoked = revoke_in(&mut tx, user_id, scope, at).await?;
                tx.commit().await?;
                Ok(AccountChange { value: (), revoked })
            }

            async fn reset_password(
                &self,
                presented: &str,
                password_hash: &str,
                at: DateTime<Utc>,
            ) -> Result<Option<AccountChange<Uuid>>, StoreError> {
                let mut tx = self.begin_write().await?;
                let Some(user_id) =
                    spend_email_token(&mut tx, presented, EmailTokenPurpose::PasswordReset, at)
                        .await?
                else {
                    return Ok(None);
                };
                // The token reached the mailbox, so the address is the user's: a reset verifies
                // it too (and is how an unverified user who cannot log in gets back in).
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
                let revoked = revoke_in(&mut tx, user_id, RevokeScope::All, at).await?;
                tx.commit().await?;
                Ok(Some(AccountChange { value: user_id, revoked }))
            }

            async fn create_session(
                &self,
                session: &NewSession,
                refresh: &NewRefreshToken,
                max_sessions: u32,
            ) -> Result<Vec<Uuid>, StoreError> {
                let now = session.created_at;
                let mut tx = self.begin_write().await?;
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

            async fn refresh_session(
                &self,
                presented: &str,
                next: &NewRefreshToken,
                reuse_since: DateTime<Utc>,
                require_verified: bool,
            ) -> Result<RefreshOutcome, StoreError> {
                let now = next.created_at;
                let mut tx = self.begin_write().await?;
                // Every `return` before a commit drops `tx` uncommitted, which rolls back what it
                // wrote (the claimed rotation): a refused refresh changes nothing.
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
                    return Ok(RefreshOutcome::Reused { user_id, session_id, revoked_at: now });
                }
                // A concurrent refresh with the same token: answer with the successor the first
                // caller got, provided it is still the session's live token.
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

            async fn check_refresh_token(
                &self,
                presented: &str,
                now: DateTime<Utc>,
                reuse_since: DateTime<Utc>,
            ) -> Result<TokenCheck, StoreError> {
                let mut tx = self.begin_write().await?;
                let token: Option<(Uuid, Option<DateTime<Utc>>, DateTime<Utc>)> = sqlx::query_as(
                    "SELECT session_id, rotated_at, expires_at FROM refresh_tokens \
                     WHERE token_hash = $1",
                )
                .bind(presented)
                .fetch_optional(&mut *tx)
                .await?;
                // Each early return rolls back by dropping the transaction: nothing was written.
                let check = match token {
                    None => return Ok(TokenCheck::Invalid),
                    Some((session_id, None, expires_at)) if expires_at > now => {
                        match live_session_owner(&mut tx, session_id, now).await? {
                            Some(user) => TokenCheck::Live { user_id: user.id, session_id },
                            None => return Ok(TokenCheck::Invalid),
                        }
                    }
                    Some((_, None, _)) => return Ok(TokenCheck::Invalid),
                    Some((_, Some(rotated_at), _)) if rotated_at >= reuse_since => {
                        return Ok(TokenCheck::JustRotated);
                    }
                    Some((session_id, Some(_), _)) => {
                        let user_id = revoke_as_stolen(&mut tx, session_id, now).await?;
                        TokenCheck::Reused { user_id, session_id, revoked_at: now }
                    }
                };
                tx.commit().await?;
                Ok(check)
            }

            async fn revoke_sessions(
                &self,
                user_id: Uuid,
                scope: RevokeScope,
                at: DateTime<Utc>,
            ) -> Result<Vec<Uuid>, StoreError> {
                let mut tx = self.begin_write().await?;
                let revoked = revoke_in(&mut tx, user_id, scope, at).await?;
                tx.commit().await?;
                Ok(revoked)
            }
        }

        /// One page of users. Only the conditions a query has are in its SQL (an `$n IS NULL OR`
        /// form would keep the planner off the indexes), and each is a range on an index: the
        /// email prefix on the email index, the cursor as a row value on `(created_at, id)`,
        /// which is also the order, so a page reads `limit` index entries whatever the table's
        /// size.
        fn list_users_query(query: &UserQuery) -> sqlx::QueryBuilder<'static, $db> {
            let mut sql = sqlx::QueryBuilder::new(concat!(
                "SELECT ", user_columns!(), " FROM users WHERE 1 = 1"
            ));
            if let Some(prefix) = &query.email_prefix {
                let email = match $backend {
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
            sql.push(" ORDER BY created_at, id LIMIT ").push_bind(i64::from(query.limit));
            sql
        }

        async fn insert_user(
            tx: &mut WriteTx<$db>,
            user: &NewUser,
        ) -> Result<User, StoreError> {
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

        /// Fails with `LastAdmin` unless an enabled admin other than `id` exists.
        async fn ensure_another_admin(
            tx: &mut WriteTx<$db>,
            id: Uuid,
        ) -> Result<(), StoreError> {
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

        /// Revokes the user's live sessions in `scope` and records the revocations.
        async fn revoke_in(
            tx: &mut WriteTx<$db>,
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

        /// Keeps revocations beyond the life of their session rows, and tells other instances.
        /// A token rotated away long ago was presented again: someone holds a copy. Revokes the
        /// whole session, its newest refresh token included, and returns its user.
        async fn revoke_as_stolen(
            tx: &mut WriteTx<$db>,
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

        async fn record_revocations(
            tx: &mut WriteTx<$db>,
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
            notify_revoked(tx, session_ids).await?;
            Ok(())
        }

        async fn insert_session(
            tx: &mut WriteTx<$db>,
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
            tx: &mut WriteTx<$db>,
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

        /// Marks a live refresh token rotated and returns its session. The conditional UPDATE is
        /// the lock: of concurrent refreshes with one token, exactly one sees `rotated_at IS
        /// NULL`; the others wait for it to commit and then find the token rotated.
        async fn claim_rotation(
            tx: &mut WriteTx<$db>,
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

        /// The session of a token that was rotated away, and when; `None` for an unknown token
        /// or one never rotated.
        async fn rotated_token(
            tx: &mut WriteTx<$db>,
            presented: &str,
        ) -> Result<Option<(Uuid, DateTime<Utc>)>, StoreError> {
            let spent: Option<(Uuid, Option<DateTime<Utc>>)> = sqlx::query_as(
                "SELECT session_id, rotated_at FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(presented)
            .fetch_optional(&mut **tx)
            .await?;
            Ok(spent.and_then(|(session_id, rotated_at)| Some((session_id, rotated_at?))))
        }

        /// Whether `next` is still the live token of the session.
        async fn successor_is_live(
            tx: &mut WriteTx<$db>,
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
            tx: &mut WriteTx<$db>,
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

        /// Marks a live token (by hash) of `purpose` used, if its account still has the email it
        /// was mailed to, and returns the account's id. The conditional UPDATE is the lock: of
        /// concurrent callers with one token, exactly one spends it.
        async fn spend_email_token(
            tx: &mut WriteTx<$db>,
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

        /// Spends every unused password-reset and email-change token of a user whose password
        /// just changed: a reset link mailed before must not undo the change, and an email change
        /// asked for with the old password (perhaps by whoever stole it) must not go through.
        async fn spend_tokens_of_old_password(
            tx: &mut WriteTx<$db>,
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

        async fn touch_session(
            tx: &mut WriteTx<$db>,
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
    };
}

pub(super) use impl_store;
