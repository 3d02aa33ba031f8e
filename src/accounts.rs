//! Account operations for operators: the first admin, from the command line or from the
//! environment of a container.

use anyhow::Context;
use uuid::Uuid;

use crate::auth::PasswordHasher;
use crate::domain::{Email, Password, Role};
use crate::store::{self, NewUser, Store, StoreError, User, UserChanges};

/// What [`ensure_admin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOutcome {
    Created,
    Promoted,
    AlreadyAdmin,
}

/// Creates `email` as an admin with `password`, or promotes the existing user with that email
/// (whose password then stays as it is).
pub async fn ensure_admin(
    store: &dyn Store,
    hasher: &PasswordHasher,
    email: &Email,
    password: &Password,
) -> anyhow::Result<AdminOutcome> {
    match store.credentials_by_email(email).await? {
        Some(existing) if existing.user.role == Role::Admin => Ok(AdminOutcome::AlreadyAdmin),
        Some(existing) => {
            set_role_of(store, existing.user.id, Role::Admin).await?;
            Ok(AdminOutcome::Promoted)
        }
        None => {
            create_admin(store, hasher, email, password).await?;
            Ok(AdminOutcome::Created)
        }
    }
}

/// Creates the admin named by `LATCHKEY_BOOTSTRAP_ADMIN_*` unless a user with that email exists
/// already, so restarts change nothing (not even an admin later demoted on purpose).
pub async fn bootstrap_admin(
    store: &dyn Store,
    hasher: &PasswordHasher,
    email: &Email,
    password: &Password,
) -> anyhow::Result<bool> {
    if store.credentials_by_email(email).await?.is_some() {
        return Ok(false);
    }
    match create_admin(store, hasher, email, password).await {
        Ok(()) => Ok(true),
        // Another instance starting at the same moment created it first.
        Err(err) if matches!(err.downcast_ref(), Some(StoreError::EmailTaken)) => Ok(false),
        Err(err) => Err(err),
    }
}

/// Sets the role of the user with `email`. Demoting revokes their sessions; the last enabled
/// admin cannot be demoted.
pub async fn set_role(store: &dyn Store, email: &Email, role: Role) -> anyhow::Result<User> {
    let user = store
        .credentials_by_email(email)
        .await?
        .with_context(|| format!("no user has the email {email}"))?
        .user;
    set_role_of(store, user.id, role).await
}

async fn set_role_of(store: &dyn Store, id: Uuid, role: Role) -> anyhow::Result<User> {
    let changes = UserChanges {
        role: Some(role),
        ..UserChanges::default()
    };
    let change = store
        .update_user(id, &changes, store::now())
        .await
        .map_err(|err| match err {
            StoreError::LastAdmin => {
                anyhow::anyhow!("refusing to demote the last enabled admin")
            }
            other => other.into(),
        })?;
    Ok(change.value)
}

async fn create_admin(
    store: &dyn Store,
    hasher: &PasswordHasher,
    email: &Email,
    password: &Password,
) -> anyhow::Result<()> {
    let password_hash = hasher.hash(password).await?;
    let now = store::now();
    store
        .create_account(&NewUser {
            id: Uuid::new_v4(),
            email: email.clone(),
            password_hash,
            name: None,
            role: Role::Admin,
            created_at: now,
            // The operator who names the admin vouches for the address: with
            // LATCHKEY_REQUIRE_EMAIL_VERIFICATION the first admin must be able to log in.
            email_verified_at: Some(now),
        })
        .await?;
    Ok(())
}
