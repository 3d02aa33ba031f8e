use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Semaphore;

use crate::domain::Password;

/// bcrypt behind a bounded pool.
///
/// A hash takes hundreds of milliseconds of CPU. Running it on an async worker would stall every
/// other request on that worker, so it runs on Tokio's blocking threads; the semaphore bounds how
/// many run at once so a storm of logins cannot take every core from token-checked requests.
#[derive(Clone)]
pub struct PasswordHasher {
    cost: u32,
    permits: Arc<Semaphore>,
    /// Verified against when the email is unknown, so that answer takes as long as a wrong
    /// password and does not reveal which accounts exist.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub async fn new(cost: u32, threads: usize) -> anyhow::Result<Self> {
        let dummy_hash = tokio::task::spawn_blocking(move || {
            bcrypt::hash("latchkey timing-equaliser password", cost)
        })
        .await
        .context("the bcrypt task panicked")?
        .context("bcrypt could not hash the dummy password")?;
        Ok(Self {
            cost,
            permits: Arc::new(Semaphore::new(threads.max(1))),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// Whether `stored_hash` was made at another cost than the configured one, and should be
    /// replaced at the next successful login.
    pub fn needs_upgrade(&self, stored_hash: &str) -> bool {
        // `$2b$12$…`: the cost is the third `$`-separated field.
        stored_hash
            .split('$')
            .nth(2)
            .and_then(|cost| cost.parse::<u32>().ok())
            != Some(self.cost)
    }

    pub async fn hash(&self, password: &Password) -> anyhow::Result<String> {
        let password = password.clone();
        let cost = self.cost;
        self.run(move || bcrypt::hash(password.expose(), cost).context("bcrypt could not hash"))
            .await
    }

    /// Checks `password` against `stored_hash`, or against the dummy hash when there is no
    /// account, spending the same time either way. A password bcrypt would truncate never matches.
    pub async fn verify(&self, password: &str, stored_hash: Option<&str>) -> anyhow::Result<bool> {
        let candidate = password.to_owned();
        let hash = stored_hash.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let account_exists = stored_hash.is_some();
        let matches = self
            .run(move || {
                let within_limit = candidate.len() <= Password::MAX_BYTES;
                let matches = bcrypt::verify(&candidate, &hash).unwrap_or(false);
                Ok(within_limit && matches)
            })
            .await?;
        Ok(account_exists && matches)
    }

    async fn run<T, F>(&self, job: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> anyhow::Result<T> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("the hashing pool is closed")?;
        tokio::task::spawn_blocking(job)
            .await
            .context("the bcrypt task panicked")?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn hasher() -> PasswordHasher {
        PasswordHasher::new(4, 2).await.unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = hasher().await;
        let password = Password::parse("correct horse battery".into()).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.starts_with("$2b$04$"));
        assert!(
            hasher
                .verify("correct horse battery", Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("correct horse battery!", Some(&hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn hashes_of_another_cost_need_an_upgrade() {
        let hasher = hasher().await;
        let password = Password::parse("correct horse battery".into()).unwrap();
        let current = hasher.hash(&password).await.unwrap();
        assert!(!hasher.needs_upgrade(&current));
        let older = bcrypt::hash("correct horse battery", 5).unwrap();
        assert!(hasher.needs_upgrade(&older));
        assert!(hasher.needs_upgrade("garbage"));
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        let hasher = hasher().await;
        assert!(
            !hasher
                .verify("latchkey timing-equaliser password", None)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn bytes_past_72_do_not_log_in() {
        let hasher = hasher().await;
        let password = Password::parse("x".repeat(72)).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        let longer = format!("{}tail", "x".repeat(72));
        assert!(!hasher.verify(&longer, Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn a_corrupt_stored_hash_is_a_mismatch_not_an_error() {
        let hasher = hasher().await;
        assert!(
            !hasher
                .verify("whatever1", Some("not-a-hash"))
                .await
                .unwrap()
        );
    }
}
