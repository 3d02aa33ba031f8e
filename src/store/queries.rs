//! The SQL both backends share.
//!
//! SQLite accepts PostgreSQL's `$1` placeholders, and sqlx binds a `Uuid` as a BLOB and a
//! `DateTime<Utc>` as RFC 3339 text there (which sorts in time order), so one set of queries serves
//! both databases. [`impl_store!`] stamps them into each backend's `Store` impl: code generic over
//! `sqlx::Database` would need a trait bound for every type of every query.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{StoreError, User};
use crate::domain::Role;

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: Uuid,
    email: String,
    name: Option<String>,
    role: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
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
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CredentialsRow {
    #[sqlx(flatten)]
    pub(super) user: UserRow,
    pub(super) password_hash: String,
}

#[derive(sqlx::FromRow)]
pub(super) struct SessionOwnerRow {
    #[sqlx(flatten)]
    pub(super) user: UserRow,
    pub(super) session_id: Uuid,
}

pub(super) fn map_insert_user_error(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::EmailTaken,
        _ => err.into(),
    }
}

/// Implements [`super::Store`] for a backend struct with a `pool` field.
macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:expr, $migrator:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> $crate::store::Backend {
                $backend
            }

            async fn migrate(&self) -> Result<(), $crate::store::StoreError> {
                $migrator.run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> Result<(), $crate::store::StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn setting_or_insert(
                &self,
                key: &str,
                value: &str,
            ) -> Result<String, $crate::store::StoreError> {
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

            async fn create_user(
                &self,
                user: &$crate::store::NewUser,
                session: &$crate::store::NewSession,
                refresh: &$crate::store::NewRefreshToken,
            ) -> Result<$crate::store::User, $crate::store::StoreError> {
                // Every transaction here starts with a write, so SQLite takes its write lock at
                // once instead of failing to upgrade a read lock under contention.
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO users (id, email, password_hash, name, role, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 'user', $5, $5)",
                )
                .bind(user.id)
                .bind(user.email.as_str())
                .bind(&user.password_hash)
                .bind(user.name.as_ref().map(|name| name.as_str()))
                .bind(user.created_at)
                .execute(&mut *tx)
                .await
                .map_err($crate::store::queries::map_insert_user_error)?;
                insert_session(&mut tx, session, refresh).await?;
                tx.commit().await?;
                Ok($crate::store::User {
                    id: user.id,
                    email: user.email.as_str().to_owned(),
                    name: user.name.as_ref().map(|name| name.as_str().to_owned()),
                    role: $crate::domain::Role::User,
                    created_at: user.created_at,
                    updated_at: user.created_at,
                })
            }

            async fn credentials_by_email(
                &self,
                email: &$crate::domain::Email,
            ) -> Result<Option<$crate::store::Credentials>, $crate::store::StoreError> {
                let row: Option<$crate::store::queries::CredentialsRow> = sqlx::query_as(
                    "SELECT id, email, name, role, created_at, updated_at, password_hash \
                     FROM users WHERE email = $1",
                )
                .bind(email.as_str())
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| {
                    Ok($crate::store::Credentials {
                        user: row.user.try_into()?,
                        password_hash: row.password_hash,
                    })
                })
                .transpose()
            }

            async fn user_by_id(
                &self,
                id: uuid::Uuid,
            ) -> Result<Option<$crate::store::User>, $crate::store::StoreError> {
                let row: Option<$crate::store::queries::UserRow> = sqlx::query_as(
                    "SELECT id, email, name, role, created_at, updated_at FROM users WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn create_session(
                &self,
                session: &$crate::store::NewSession,
                refresh: &$crate::store::NewRefreshToken,
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                insert_session(&mut tx, session, refresh).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn rotate_refresh_token(
                &self,
                presented: &str,
                next: &$crate::store::NewRefreshToken,
            ) -> Result<Option<$crate::store::Rotation>, $crate::store::StoreError> {
                let now = next.created_at;
                let mut tx = self.pool.begin().await?;
                // The conditional UPDATE is the lock: of two concurrent refreshes with one token,
                // exactly one sees `rotated_at IS NULL` and goes on.
                let session_id: Option<uuid::Uuid> = sqlx::query_scalar(
                    "UPDATE refresh_tokens SET rotated_at = $2 \
                     WHERE token_hash = $1 AND rotated_at IS NULL AND expires_at > $2 \
                     RETURNING session_id",
                )
                .bind(presented)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(session_id) = session_id else {
                    return Ok(None);
                };
                let owner: Option<$crate::store::queries::SessionOwnerRow> = sqlx::query_as(
                    "SELECT u.id, u.email, u.name, u.role, u.created_at, u.updated_at, \
                            s.id AS session_id \
                     FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
                )
                .bind(session_id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(owner) = owner else {
                    return Ok(None);
                };
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&next.hash)
                .bind(session_id)
                .bind(next.created_at)
                .bind(next.expires_at)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE sessions SET last_used_at = $2 WHERE id = $1")
                    .bind(session_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Some($crate::store::Rotation {
                    user: owner.user.try_into()?,
                    session_id: owner.session_id,
                }))
            }

            async fn revoke_session(
                &self,
                session_id: uuid::Uuid,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                    .bind(session_id)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }

        async fn insert_session<'c>(
            tx: &mut sqlx::Transaction<'c, $db>,
            session: &$crate::store::NewSession,
            refresh: &$crate::store::NewRefreshToken,
        ) -> Result<(), $crate::store::StoreError> {
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
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&refresh.hash)
            .bind(session.id)
            .bind(refresh.created_at)
            .bind(refresh.expires_at)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }
    };
}

pub(super) use impl_store;
