//! Work that runs beside the HTTP server for as long as it serves.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::abuse::Limits;
use crate::auth::RevocationList;
use crate::mfa::Mfa;
use crate::store::{self, Backend, Store};

/// Deletes expired sessions and refresh tokens every `every`, so the tables do not grow forever,
/// and drops revocation entries no access token can need any more and rate-limit state that
/// is back to its full allowance.
pub fn spawn_pruner(
    store: Arc<dyn Store>,
    revocations: Arc<RevocationList>,
    limits: Arc<Limits>,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let now = store::now();
            revocations.prune(now);
            if let Err(err) = limits.prune().await {
                tracing::warn!(error = %err, "pruning the shared rate limits failed");
            }
            match store.prune(now, revocations.relevant_since(now)).await {
                Ok(pruned) if pruned.rows == 0 => {}
                Ok(pruned) => tracing::debug!(
                    rows = pruned.rows,
                    largest_batch = pruned.largest_batch,
                    longest_batch_ms = pruned.longest_batch.as_secs_f64() * 1000.0,
                    "pruned expired sessions and tokens"
                ),
                Err(err) => tracing::warn!(error = %err, "pruning expired sessions failed"),
            }
        }
    })
}

/// How often the checkpointer moves SQLite's write-ahead log into the database file: under a
/// full write load the log grows by about a thousand pages in that time.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Checkpoints SQLite's write-ahead log in the background, so no write waits for it (see
/// `SqliteStore::connect`). None on PostgreSQL.
pub fn spawn_checkpointer(store: Arc<dyn Store>) -> Option<JoinHandle<()>> {
    if store.backend() != Backend::Sqlite {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(CHECKPOINT_EVERY);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(err) = store.checkpoint().await {
                tracing::warn!(error = %err, "checkpointing the SQLite log failed");
            }
        }
    }))
}

/// How often the resealer passes over the second-factor secrets while a rotation is under way.
const RESEAL_EVERY: Duration = Duration::from_secs(300);

/// While more than one HS256 secret is listed, seals every second-factor secret an older one
/// sealed again under the current one, at start and every five minutes (an instance still on
/// the old list may enroll someone meanwhile), so the older secret can be retired without
/// stranding accounts that have not logged in since (README, "Rotating the signing key").
pub fn spawn_resealer(mfa: Arc<Mfa>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(RESEAL_EVERY);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match mfa.reseal_all().await {
                Ok(done) if done.unreadable == 0 => tracing::info!(
                    resealed = done.resealed,
                    "every second-factor secret is sealed under the current JWT secret"
                ),
                Ok(done) => tracing::warn!(
                    resealed = done.resealed,
                    unreadable = done.unreadable,
                    "some second-factor secrets open under none of the listed JWT secrets: their \
                     accounts need an admin's reset (DELETE /v1/users/{{id}}/mfa)"
                ),
                Err(err) => tracing::warn!(error = %err, "resealing second-factor secrets failed"),
            }
        }
    })
}
