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
    /// Hashes of a throwaway password at every cost from bcrypt's minimum up to the configured
    /// one: `ladder[i]` has cost `MIN_COST + i`, the last one the configured cost. The last is
    /// verified against when the email is unknown, so that answer takes as long as a wrong
    /// password and does not reveal which accounts exist; the cheaper ones pad the check of a
    /// hash made at a lower cost (see [`PasswordHasher::verify`]).
    ladder: Arc<[String]>,
}

/// bcrypt's lowest cost; the `bcrypt` crate does not export it.
const MIN_COST: u32 = 4;

const DUMMY_PASSWORD: &str = "latchkey timing-equaliser password";

impl PasswordHasher {
    pub async fn new(cost: u32, threads: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            cost >= MIN_COST,
            "the bcrypt cost must be at least {MIN_COST}"
        );
        let ladder = tokio::task::spawn_blocking(move || {
            (MIN_COST..=cost)
                .map(|cost| bcrypt::hash(DUMMY_PASSWORD, cost))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .context("the bcrypt task panicked")?
        .context("bcrypt could not hash the dummy password")?;
        Ok(Self {
            cost,
            permits: Arc::new(Semaphore::new(threads.max(1))),
            ladder: ladder.into(),
        })
    }

    /// Whether `stored_hash` was made at another cost than the configured one, and should be
    /// replaced at the next successful login.
    pub fn needs_upgrade(&self, stored_hash: &str) -> bool {
        cost_of(stored_hash) != Some(self.cost)
    }

    pub async fn hash(&self, password: &Password) -> anyhow::Result<String> {
        let password = password.clone();
        let cost = self.cost;
        self.run(move || bcrypt::hash(password.expose(), cost).context("bcrypt could not hash"))
            .await
    }

    /// Checks `password` against `stored_hash`, or against the dummy hash when there is no
    /// account, spending the same time either way. A password bcrypt would truncate never matches.
    ///
    /// New hashes are made from the password's NFKC form ([`Password::parse`]), so that form is
    /// tried first. Hashes made before passwords were normalized are of the password as typed:
    /// when that differs, it is tried too, and a match asks for a re-hash. The unknown-email
    /// path makes the same tries, so it still takes as long.
    ///
    /// A stored hash of a lower cost (made before `LATCHKEY_BCRYPT_COST` was raised) verifies
    /// in a fraction of the time, which would tell dormant accounts from unknown emails. So each
    /// try is padded with verifications of the ladder's hashes at each cost from the stored
    /// one up to the configured one: bcrypt's work doubles with each cost step, so
    /// 2^stored + 2^stored + … + 2^(configured-1) is exactly 2^configured, the work of the
    /// dummy check. Padding with real bcrypt work rather than a sleep keeps it exact under load:
    /// a sleep would neither take a core nor queue for the hashing pool like a verify does.
    pub async fn verify(
        &self,
        password: &str,
        stored_hash: Option<&str>,
    ) -> anyhow::Result<Verification> {
        let raw = password.to_owned();
        let account_exists = stored_hash.is_some();
        let hash = stored_hash.map_or_else(|| self.dummy_hash().to_owned(), str::to_owned);
        let this = self.clone();
        let verification = self
            .run(move || {
                let normalized = Password::normalize(&raw);
                if this.verify_padded(&normalized, &hash) {
                    return Ok(Verification::Match);
                }
                if raw != normalized && this.verify_padded(&raw, &hash) {
                    return Ok(Verification::MatchAsTyped);
                }
                Ok(Verification::Mismatch)
            })
            .await?;
        Ok(if account_exists {
            verification
        } else {
            Verification::Mismatch
        })
    }

    /// One padded try of [`PasswordHasher::verify`]; bcrypt would cut a candidate over 72 bytes
    /// and match on its first 72, so such a candidate is a mismatch (after the same work).
    fn verify_padded(&self, candidate: &str, hash: &str) -> bool {
        let within_limit = candidate.len() <= Password::MAX_BYTES;
        let configured = self.ladder.len() - 1;
        let (matches, pads) = match bcrypt::verify(candidate, hash) {
            Ok(matches) => {
                let stored =
                    cost_of(hash).map_or(configured, |cost| cost.saturating_sub(MIN_COST) as usize);
                (matches, stored.min(configured)..configured)
            }
            // A corrupt hash is refused before any hashing work: pad with all of it.
            Err(_) => (false, configured..configured + 1),
        };
        for pad in &self.ladder[pads] {
            // `black_box`: the result is unused, and the work must not be optimised away.
            std::hint::black_box(bcrypt::verify(std::hint::black_box(candidate), pad).ok());
        }
        within_limit && matches
    }

    /// The ladder's top rung, at the configured cost (`new` made sure there is one).
    fn dummy_hash(&self) -> &str {
        &self.ladder[self.ladder.len() - 1]
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

/// The outcome of [`PasswordHasher::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// A wrong password, or no such account.
    Mismatch,
    /// The password's normalized form matches.
    Match,
    /// Only the password as typed matches: the hash predates normalization and should be
    /// replaced with one of the normalized form.
    MatchAsTyped,
}

impl Verification {
    pub fn matches(self) -> bool {
        self != Self::Mismatch
    }
}

/// The cost of a bcrypt hash, `$2b$12$…`: its third `$`-separated field.
fn cost_of(hash: &str) -> Option<u32> {
    hash.split('$').nth(2).and_then(|cost| cost.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn hasher() -> PasswordHasher {
        PasswordHasher::new(4, 2).await.unwrap()
    }

    async fn verifies(hasher: &PasswordHasher, typed: &str, hash: Option<&str>) -> bool {
        hasher.verify(typed, hash).await.unwrap().matches()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = hasher().await;
        let password = Password::parse("correct horse battery".into()).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.starts_with("$2b$04$"));
        assert!(verifies(&hasher, "correct horse battery", Some(&hash)).await);
        assert!(!verifies(&hasher, "correct horse battery!", Some(&hash)).await);
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
        assert!(!verifies(&hasher, "latchkey timing-equaliser password", None).await);
    }

    #[tokio::test]
    async fn bytes_past_72_do_not_log_in() {
        let hasher = hasher().await;
        let password = Password::parse("x".repeat(72)).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        let longer = format!("{}tail", "x".repeat(72));
        assert!(!verifies(&hasher, &longer, Some(&hash)).await);
    }

    #[tokio::test]
    async fn the_normalized_form_is_checked_first_then_the_form_as_typed() {
        let hasher = hasher().await;
        let composed = "caf\u{e9} au lait";
        let decomposed = "cafe\u{301} au lait";
        let new = hasher
            .hash(&Password::parse(decomposed.into()).unwrap())
            .await
            .unwrap();
        for typed in [composed, decomposed] {
            let verification = hasher.verify(typed, Some(&new)).await.unwrap();
            assert_eq!(verification, Verification::Match);
        }
        let legacy = bcrypt::hash(decomposed, 4).unwrap();
        let verification = hasher.verify(decomposed, Some(&legacy)).await.unwrap();
        assert_eq!(verification, Verification::MatchAsTyped);
        let verification = hasher.verify(composed, Some(&legacy)).await.unwrap();
        assert_eq!(verification, Verification::Mismatch);
    }

    #[tokio::test]
    async fn the_72_byte_limit_applies_to_each_form_tried() {
        let hasher = hasher().await;
        // 108 bytes as typed, 72 normalized: the normalized form is within the limit (a hash of
        // it from before new passwords had to fit as typed too).
        let typed = "e\u{301}".repeat(36);
        let hash = bcrypt::hash(Password::normalize(&typed), 4).unwrap();
        assert!(verifies(&hasher, &typed, Some(&hash)).await);
        // A legacy hash of the first 72 bytes as typed does not match the longer typed form.
        let legacy = bcrypt::hash(&typed.as_bytes()[..72], 4).unwrap();
        assert!(!verifies(&hasher, &typed, Some(&legacy)).await);
    }

    #[tokio::test]
    async fn a_corrupt_stored_hash_is_a_mismatch_not_an_error() {
        let hasher = hasher().await;
        assert!(!verifies(&hasher, "whatever1", Some("not-a-hash")).await);
    }
}
