//! Limit and lockout state kept outside the process, so that instances behind one load balancer
//! count as one: an attacker alternating between them gets the guesses one instance would give,
//! and a lockout earned on one holds on all. The store implements it on PostgreSQL; SQLite has one
//! process, which keeps the state in memory.

use std::time::Duration;

use async_trait::async_trait;

/// The shared state could not be read or written. Password checks then fail closed.
#[derive(Debug, thiserror::Error)]
#[error("the shared limit state is unavailable")]
pub struct Unavailable(#[source] pub Box<dyn std::error::Error + Send + Sync>);

#[async_trait]
pub trait SharedLimits: Send + Sync {
    /// Admits one request of `key` under the limit `name` (the generic cell rate algorithm:
    /// each request moves the instant the key's allowance is full again `interval` later, and a
    /// request that would move it more than `burst` ahead is refused), or says how long to wait.
    async fn admit(
        &self,
        name: &'static str,
        key: &[u8],
        interval: Duration,
        burst: Duration,
    ) -> Result<Option<Duration>, Unavailable>;

    /// How much longer `key` is locked out, if it is.
    async fn locked_for(&self, key: &[u8]) -> Result<Option<Duration>, Unavailable>;

    /// Counts a wrong password for `key`; `lock` turns the count of failures into how long the
    /// key is locked, and a record is forgotten `forget_after` after its lock ends (or after its
    /// last failure, if unlocked).
    async fn failed(
        &self,
        key: &[u8],
        lock: &(dyn Fn(u32) -> Option<Duration> + Sync),
        forget_after: Duration,
    ) -> Result<(), Unavailable>;

    /// A correct password clears `key`'s record.
    async fn succeeded(&self, key: &[u8]) -> Result<(), Unavailable>;

    /// Deletes state that no longer limits anyone, in short batches.
    async fn prune(&self) -> Result<(), Unavailable>;
}
