//! The SQL both backends share, compiled once for each: `sqlite.rs` and `postgres.rs` each
//! include this folder as their module `sql`, with `Engine` naming their store (see
//! [`super::seam::Seam`], all of a backend the SQL sees). SQLite accepts PostgreSQL's `$1`
//! placeholders, and sqlx binds a `Uuid` as a BLOB and a `DateTime<Utc>` as RFC 3339 text there
//! (which sorts in time order), so one set of queries serves both databases; code generic over
//! `sqlx::Database` instead would need a trait bound for every type of every query.
//!
//! This file maps the store traits onto plain functions, one file per aggregate.

mod email_tokens;
mod maintenance;
mod mfa;
mod outbox;
mod refresh;
mod sessions;
mod settings;
pub(super) mod users;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Engine;
use crate::abuse::SharedLimits;
use crate::auth::{PresentedRefresh, RevocationList};
use crate::domain::Email;
use crate::store::seam::Seam;
use crate::store::{
    AccountChange, Backend, Credentials, EmailTokenPurpose, MailJob, MailOutcome, NewEmailToken,
    NewRefreshToken, NewSession, NewUser, PoolStats, Pruned, RefreshOutcome, RevokeScope,
    SessionInfo, SessionStore, Store, StoreError, TokenCheck, User, UserChanges, UserQuery,
};

/// The sqlx database of this backend.
type Db = <Engine as Seam>::Db;

#[async_trait::async_trait]
impl Store for Engine {
    fn backend(&self) -> Backend {
        Self::BACKEND
    }

    async fn migrate(&self) -> Result<usize, StoreError> {
        maintenance::migrate(self).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        maintenance::ping(self).await
    }

    fn pool_stats(&self) -> PoolStats {
        maintenance::pool_stats(self)
    }

    async fn close(&self) {
        self.pool().close().await;
    }

    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        maintenance::setting_or_insert(self, key, value).await
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        settings::setting(self, key).await
    }

    async fn replace_setting(
        &self,
        key: &str,
        expected: &str,
        value: &str,
    ) -> Result<bool, StoreError> {
        settings::replace_setting(self, key, expected, value).await
    }

    async fn credentials_by_email(&self, email: &Email) -> Result<Option<Credentials>, StoreError> {
        users::credentials_by_email(self, email).await
    }

    async fn credentials_by_id(&self, id: Uuid) -> Result<Option<Credentials>, StoreError> {
        users::credentials_by_id(self, id).await
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        users::user_by_id(self, id).await
    }

    async fn create_account(&self, user: &NewUser) -> Result<User, StoreError> {
        users::create_account(self, user).await
    }

    async fn list_users(&self, query: &UserQuery) -> Result<Vec<User>, StoreError> {
        users::list_users(self, query).await
    }

    async fn create_email_token(&self, token: &NewEmailToken) -> Result<(), StoreError> {
        email_tokens::create(self, token).await
    }

    async fn email_token_is_live(
        &self,
        presented: &str,
        purpose: EmailTokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        email_tokens::is_live(self, presented, purpose, now).await
    }

    async fn verify_email(
        &self,
        presented: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        email_tokens::verify_email(self, presented, at).await
    }

    async fn confirm_email_change(
        &self,
        presented: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        email_tokens::confirm_email_change(self, presented, at).await
    }

    async fn upgrade_password_hash(
        &self,
        user_id: Uuid,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        users::upgrade_password_hash(self, user_id, password_hash).await
    }

    async fn session_of_legacy_refresh_token(
        &self,
        hash: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        refresh::session_of_legacy_token(self, hash).await
    }

    async fn live_sessions(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        sessions::live_sessions(self, user_id, now).await
    }

    async fn revocations_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
        sessions::revocations_since(self, since).await
    }

    async fn prune(
        &self,
        now: DateTime<Utc>,
        revoked_before: DateTime<Utc>,
    ) -> Result<Pruned, StoreError> {
        maintenance::prune(self, now, revoked_before).await
    }

    async fn checkpoint(&self) -> Result<u64, StoreError> {
        maintenance::checkpoint(self).await
    }

    async fn enqueue_mail(&self, jobs: &[MailJob], at: DateTime<Utc>) -> Result<(), StoreError> {
        outbox::enqueue(self, jobs, at).await
    }

    async fn release_orphaned_mail_claims(&self) -> Result<(), StoreError> {
        outbox::release_orphaned_claims(self).await
    }

    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<MailJob>, StoreError> {
        outbox::claim(self, now, until, limit).await
    }

    async fn finish_mail(
        &self,
        job: &MailJob,
        outcome: &MailOutcome,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        outbox::finish(self, job, outcome, at).await
    }

    fn shared_limits(&self) -> Option<Arc<dyn SharedLimits>> {
        self.limits()
    }

    fn spawn_revocation_watcher(
        &self,
        revocations: Arc<RevocationList>,
    ) -> tokio::task::JoinHandle<()> {
        self.watch_revocations(revocations)
    }
}

#[async_trait::async_trait]
impl SessionStore for Engine {
    async fn create_user(
        &self,
        user: &NewUser,
        session: &NewSession,
        refresh: &NewRefreshToken,
    ) -> Result<User, StoreError> {
        users::create_user(self, user, session, refresh).await
    }

    async fn update_user(
        &self,
        id: Uuid,
        changes: &UserChanges,
        at: DateTime<Utc>,
    ) -> Result<AccountChange<User>, StoreError> {
        users::update_user(self, id, changes, at).await
    }

    async fn delete_user(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<AccountChange<()>, StoreError> {
        users::delete_user(self, id, at).await
    }

    async fn set_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        keep: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<AccountChange<()>, StoreError> {
        users::set_password(self, user_id, password_hash, keep, at).await
    }

    async fn reset_password(
        &self,
        presented: &str,
        password_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<AccountChange<Uuid>>, StoreError> {
        email_tokens::reset_password(self, presented, password_hash, at).await
    }

    async fn create_session(
        &self,
        session: &NewSession,
        refresh: &NewRefreshToken,
        max_sessions: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        sessions::create_session(self, session, refresh, max_sessions).await
    }

    async fn refresh_session(
        &self,
        presented: &PresentedRefresh,
        next: &NewRefreshToken,
        reuse_since: DateTime<Utc>,
        require_verified: bool,
    ) -> Result<RefreshOutcome, StoreError> {
        refresh::refresh_session(self, presented, next, reuse_since, require_verified).await
    }

    async fn check_refresh_token(
        &self,
        presented: &PresentedRefresh,
        now: DateTime<Utc>,
        reuse_since: DateTime<Utc>,
    ) -> Result<TokenCheck, StoreError> {
        refresh::check_refresh_token(self, presented, now, reuse_since).await
    }

    async fn revoke_sessions(
        &self,
        user_id: Uuid,
        scope: RevokeScope,
        at: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        sessions::revoke_sessions(self, user_id, scope, at).await
    }
}
