//! Work that runs beside the HTTP server for as long as it serves.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::abuse::Limits;
use crate::auth::RevocationList;
use crate::store::{self, Store};

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
