//! What differs between the backends beneath the SQL they share (store/sql/): how a write
//! transaction starts, how account changes are kept apart, and how other instances hear of a
//! revocation. Each backend implements [`Seam`]; the shared SQL calls nothing else of it.

use std::ops::{Deref, DerefMut};

use sqlx::migrate::Migrator;
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

use super::Backend;
use super::user_cache::UserCache;

pub(super) trait Seam {
    type Db: sqlx::Database;

    const BACKEND: Backend;

    fn pool(&self) -> &sqlx::Pool<Self::Db>;

    /// Users recently read from this database; every write that changes a user forgets it.
    fn users(&self) -> &UserCache;

    /// This backend's embedded migrations.
    fn migrator() -> Migrator;

    /// The transaction every write runs in.
    async fn begin_write(&self) -> Result<WriteTx<Self::Db>, sqlx::Error>;

    /// A write transaction that no other exclusive one runs beside, so two admins cannot demote
    /// each other at once.
    async fn begin_exclusive(&self) -> Result<WriteTx<Self::Db>, sqlx::Error>;

    /// Moves the write-ahead log into the database file, if this backend keeps one of its own;
    /// returns the log frames now in the file.
    async fn checkpoint_log(&self) -> Result<u64, sqlx::Error>;

    /// Tells the other instances that these sessions are revoked, once `tx` commits.
    async fn notify_revoked(
        tx: &mut WriteTx<Self::Db>,
        session_ids: &[Uuid],
    ) -> Result<(), sqlx::Error>;
}

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
