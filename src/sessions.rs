//! The sessions service: the only way to start, rotate or end a session, and to make an account
//! change that ends sessions.
//!
//! Access tokens are verified without a database read, so ending a session in the database is
//! not enough: until its access tokens expire, this instance must also hold it in its
//! [`RevocationList`] (other instances learn of it through the store's revocation feed). The
//! store's calls that end sessions live on [`SessionStore`], which only this service holds;
//! handlers get a [`crate::store::Store`], which cannot reach them. So every revocation passes
//! through `Sessions::ended`, which applies it here, counts it and writes the audit event,
//! and a new endpoint cannot forget to.
//!
//! A handler has the service but not the trait, so it cannot end a session by hand:
//!
//! ```compile_fail
//! # use latchkey::http::AppState;
//! # use latchkey::store::RevokeScope;
//! async fn end_behind_the_services_back(state: &AppState, user: uuid::Uuid) {
//!     let _ = state.store.revoke_sessions(user, RevokeScope::All, chrono::Utc::now()).await;
//! }
//! ```
//!
//! while the same through the service compiles:
//!
//! ```no_run
//! # use latchkey::http::AppState;
//! # use latchkey::store::RevokeScope;
//! async fn end_through_the_service(state: &AppState, user: uuid::Uuid) {
//!     let _ = state.sessions.revoke(user, RevokeScope::All, chrono::Utc::now()).await;
//! }
//! ```

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::{self, AuditEvent};
use crate::auth::{PresentedRefresh, RevocationList};
use crate::metrics::Metrics;
use crate::store::{
    NewRefreshToken, NewSession, NewUser, RefreshOutcome, RevokeScope, SessionStore, StoreError,
    TokenCheck, User, UserChanges,
};

pub struct Sessions {
    store: Arc<dyn SessionStore>,
    revocations: Arc<RevocationList>,
    metrics: Metrics,
}

impl Sessions {
    pub fn new(
        store: Arc<dyn SessionStore>,
        revocations: Arc<RevocationList>,
        metrics: Metrics,
    ) -> Self {
        Self {
            store,
            revocations,
            metrics,
        }
    }

    /// Creates a user with their first session, in one transaction.
    pub async fn sign_up(
        &self,
        user: &NewUser,
        session: &NewSession,
        refresh: &NewRefreshToken,
    ) -> Result<User, StoreError> {
        self.store.create_user(user, session, refresh).await
    }

    /// Starts a session; the user's oldest sessions beyond the newest `max_sessions` end.
    pub async fn start(
        &self,
        session: &NewSession,
        refresh: &NewRefreshToken,
        max_sessions: u32,
    ) -> Result<(), StoreError> {
        let evicted = self
            .store
            .create_session(session, refresh, max_sessions)
            .await?;
        self.ended(session.user_id, &evicted, session.created_at);
        Ok(())
    }

    /// Rotates a refresh token (see [`SessionStore::refresh_session`]). A rotated-away token
    /// presented again has ended its session as stolen by the time this returns.
    pub async fn rotate(
        &self,
        presented: &PresentedRefresh,
        next: &NewRefreshToken,
        reuse_since: DateTime<Utc>,
        require_verified: bool,
    ) -> Result<RefreshOutcome, StoreError> {
        let outcome = self
            .store
            .refresh_session(presented, next, reuse_since, require_verified)
            .await?;
        if let RefreshOutcome::Reused {
            user_id,
            session_id,
            revoked_at,
        } = &outcome
        {
            self.stolen(*user_id, *session_id, *revoked_at);
        }
        Ok(outcome)
    }

    /// What a refresh token proves without rotating it (see
    /// [`SessionStore::check_refresh_token`]); a reused one has ended its session as stolen.
    pub async fn check(
        &self,
        presented: &PresentedRefresh,
        now: DateTime<Utc>,
        reuse_since: DateTime<Utc>,
    ) -> Result<TokenCheck, StoreError> {
        let check = self
            .store
            .check_refresh_token(presented, now, reuse_since)
            .await?;
        if let TokenCheck::Reused {
            user_id,
            session_id,
            revoked_at,
        } = &check
        {
            self.stolen(*user_id, *session_id, *revoked_at);
        }
        Ok(check)
    }

    /// Ends the user's live sessions in `scope`; returns their ids.
    pub async fn revoke(
        &self,
        user_id: Uuid,
        scope: RevokeScope,
        at: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        let revoked = self.store.revoke_sessions(user_id, scope, at).await?;
        self.ended(user_id, &revoked, at);
        Ok(revoked)
    }

    /// Applies `changes` to a user; a demotion or a disabling ends all of their sessions.
    pub async fn update_user(
        &self,
        user_id: Uuid,
        changes: &UserChanges,
        at: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let change = self.store.update_user(user_id, changes, at).await?;
        self.ended(user_id, &change.revoked, at);
        Ok(change.value)
    }

    /// Deletes a user; all of their sessions end.
    pub async fn delete_user(&self, user_id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        let change = self.store.delete_user(user_id, at).await?;
        self.ended(user_id, &change.revoked, at);
        Ok(())
    }

    /// Sets a new password hash; every session of the user but `keep` ends.
    pub async fn set_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        keep: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let change = self
            .store
            .set_password(user_id, password_hash, keep, at)
            .await?;
        self.ended(user_id, &change.revoked, at);
        Ok(())
    }

    /// Spends a password-reset token and sets the password; every session of the user ends.
    /// Returns the user's id, or `None` when the token is not live (then nothing changed).
    pub async fn reset_password(
        &self,
        presented: &str,
        password_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        let Some(change) = self
            .store
            .reset_password(presented, password_hash, at)
            .await?
        else {
            return Ok(None);
        };
        self.ended(change.value, &change.revoked, at);
        Ok(Some(change.value))
    }

    fn stolen(&self, user_id: Uuid, session_id: Uuid, revoked_at: DateTime<Utc>) {
        self.ended(user_id, &[session_id], revoked_at);
        self.metrics.refresh_reuse();
    }

    /// Makes revocations the store has made take effect on this instance at once, and records
    /// them in the audit log.
    fn ended(&self, user_id: Uuid, session_ids: &[Uuid], at: DateTime<Utc>) {
        self.revocations
            .revoke(session_ids.iter().map(|session_id| (*session_id, at)));
        self.metrics.sessions_revoked(session_ids.len());
        for session_id in session_ids {
            audit::record(AuditEvent::SessionRevoked {
                user_id,
                session_id: *session_id,
            });
        }
    }
}
