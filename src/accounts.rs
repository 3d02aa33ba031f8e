//! Account operations for operators: the first admin, from the command line or from the
//! environment of a container.

use anyhow::Context;
use uuid::Uuid;

use crate::auth::PasswordHasher;
use crate::domain::{Email, Password, Role};
use crate::sessions::Sessions;
use crate::store::{self, NewUser, Store, StoreError, User, UserChanges};

/// What [`ensure_admin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOutcome {
    Created,
    AlreadyAdmin,
}

/// Why [`ensure_admin`] refused.
#[derive(Debug, thiserror::Error)]
pub enum EnsureAdminError {
    /// Promoting it would hand admin rights to whoever registered the address, who need not be
    /// the operator (anyone can sign up any address); and the password the operator typed would
    /// not be the account's. A deliberate promotion of a known account is `admin set-role`.
    #[error(
        "an account with the email {0} exists already and is not an admin; `admin create` never \
         promotes an existing account, whose holder may not be you. If you know it is yours, \
         promote it with `latchkey admin set-role --email {0} --role admin`"
    )]
    ExistingAccount(Email),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Creates `email` as an admin with `password`. An existing account with that email is never
/// changed: an admin already is one, and any other is refused.
pub async fn ensure_admin(
    store: &dyn Store,
    hasher: &PasswordHasher,
    email: &Email,
    password: &Password,
) -> Result<AdminOutcome, EnsureAdminError> {
    match store
        .credentials_by_email(email)
        .await
        .map_err(anyhow::Error::from)?
    {
        Some(existing) if existing.user.role == Role::Admin => Ok(AdminOutcome::AlreadyAdmin),
        Some(_) => Err(EnsureAdminError::ExistingAccount(email.clone())),
        None => {
            create_admin(store, hasher, email, password).await?;
            Ok(AdminOutcome::Created)
        }
    }
}

/// What [`bootstrap_admin`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootstrapOutcome {
    Created,
    AlreadyAdmin,
    /// Someone holds the address without admin rights, and keeps them: see
    /// [`EnsureAdminError::ExistingAccount`].
    NotAdmin,
}

/// Creates the admin named by `LATCHKEY_BOOTSTRAP_ADMIN_*` unless a user with that email exists
/// already, so restarts change nothing (not even an admin later demoted on purpose). An existing
/// account is never promoted, for the reason [`ensure_admin`] refuses to.
pub async fn bootstrap_admin(
    store: &dyn Store,
    hasher: &PasswordHasher,
    email: &Email,
    password: &Password,
) -> anyhow::Result<BootstrapOutcome> {
    if let Some(existing) = store.credentials_by_email(email).await? {
        return Ok(if existing.user.role == Role::Admin {
            BootstrapOutcome::AlreadyAdmin
        } else {
            BootstrapOutcome::NotAdmin
        });
    }
    match create_admin(store, hasher, email, password).await {
        Ok(()) => Ok(BootstrapOutcome::Created),
        // Another instance starting at the same moment created it first.
        Err(err) if matches!(err.downcast_ref(), Some(StoreError::EmailTaken)) => {
            Ok(BootstrapOutcome::AlreadyAdmin)
        }
        Err(err) => Err(err),
    }
}

/// Sets the role of the user with `email`. Demoting revokes their sessions; the last enabled
/// admin cannot be demoted.
pub async fn set_role(
    store: &dyn Store,
    sessions: &Sessions,
    email: &Email,
    role: Role,
) -> anyhow::Result<User> {
    let user = store
        .credentials_by_email(email)
        .await?
        .with_context(|| format!("no user has the email {email}"))?
        .user;
    let changes = UserChanges {
        role: Some(role),
        ..UserChanges::default()
    };
    sessions
        .update_user(user.id, &changes, store::now())
        .await
        .map_err(|err| match err {
            StoreError::LastAdmin => anyhow::anyhow!("refusing to demote the last enabled admin"),
            other => other.into(),
        })
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
