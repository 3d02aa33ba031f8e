//! Rows as the database returns them, and how they become the store's values.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Credentials, StoreError, User};
use crate::domain::Role;

/// The columns of a [`UserRow`], for `concat!` into queries.
macro_rules! user_columns {
    () => {
        "id, email, name, role, created_at, updated_at, disabled_at, email_verified_at"
    };
}

pub(super) use user_columns;

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
