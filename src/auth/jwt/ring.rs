//! Asymmetric keys by state. A *next* key is published (JWKS) before it signs, the *current* key
//! signs, *previous* keys verify until the last token they signed has expired. [`SigningKeys`]
//! is the set one instance works with; [`KeyRing`] is the generated set kept in the database
//! (SQLite without configured keys), which `latchkey keys rotate` steps forward.

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::keys::{JwtAlgorithm, PrivateKey, PublicKey};

/// What one instance signs and verifies with: the current key signs; it, the next keys and the
/// previous keys verify, and all their public halves are published.
#[derive(Clone)]
pub struct SigningKeys {
    pub(super) alg: JwtAlgorithm,
    pub(super) current: PrivateKey,
    /// Current first, then next, then previous: the JWKS order.
    pub(super) published: Vec<PublicKey>,
}

impl SigningKeys {
    pub fn new(
        alg: JwtAlgorithm,
        current: PrivateKey,
        next: Vec<PublicKey>,
        previous: Vec<PublicKey>,
    ) -> Result<Self, String> {
        if !alg.is_asymmetric() {
            return Err("HS256 keys are secrets, not key pairs".to_owned());
        }
        let published: Vec<PublicKey> = std::iter::once(current.public().clone())
            .chain(next)
            .chain(previous)
            .collect();
        let mut seen = HashSet::new();
        if let Some(twice) = published.iter().find(|key| !seen.insert(key.kid())) {
            return Err(format!("the key {} is listed twice", twice.kid()));
        }
        Ok(Self {
            alg,
            current,
            published,
        })
    }

    pub fn alg(&self) -> JwtAlgorithm {
        self.alg
    }

    pub fn current_kid(&self) -> &str {
        self.current.kid()
    }

    /// Every key that verifies, current first.
    pub fn published(&self) -> &[PublicKey] {
        &self.published
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Next,
    Current,
    Previous,
}

/// How long a previous key stays in the stored ring at most, whatever the access-token TTL: the
/// longest TTL (a day) with ample room for the leeway and the reload interval. Instances stop
/// using it earlier, by their own TTL (see [`KeyRing::signing_keys`]).
const KEEP_PREVIOUS_SECS: i64 = 2 * 86_400;

struct RingKey {
    key: PrivateKey,
    state: KeyState,
    /// Unix seconds: when it was generated (for a next key, since when it is published).
    created_at: i64,
    /// Unix seconds: when it stopped signing (previous keys).
    retired_at: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct StoredRing {
    alg: String,
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    state: KeyState,
    /// The private key, PKCS#8 DER in standard base64.
    pkcs8: String,
    created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_at: Option<i64>,
}

/// Generated keys with their states, parsed from and written to one database setting.
pub struct KeyRing {
    alg: JwtAlgorithm,
    keys: Vec<RingKey>,
}

/// Why `latchkey keys rotate` did nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum RotateRefused {
    /// The next key has not been published long enough for cached key sets to hold it.
    TooSoon {
        wait_secs: i64,
    },
    Failed(String),
}

impl KeyRing {
    /// A first ring: a current key, and a next one already published.
    pub fn generate(alg: JwtAlgorithm, now: i64) -> Result<Self, String> {
        let fresh = |state| {
            PrivateKey::generate(alg).map(|key| RingKey {
                key,
                state,
                created_at: now,
                retired_at: None,
            })
        };
        Ok(Self {
            alg,
            keys: vec![fresh(KeyState::Current)?, fresh(KeyState::Next)?],
        })
    }

    /// The stored form, checked whole: one current key, every key of `alg` and named by its own
    /// thumbprint. The text is never part of an error (it holds private keys).
    pub fn parse(alg: JwtAlgorithm, text: &str) -> Result<Self, String> {
        let stored: StoredRing = serde_json::from_str(text)
            .map_err(|_| "the stored key ring is not valid JSON".to_owned())?;
        if stored.alg != alg.as_str() {
            return Err(format!("the stored key ring is {}, not {alg}", stored.alg));
        }
        let mut keys = Vec::with_capacity(stored.keys.len());
        for entry in stored.keys {
            let der = STANDARD
                .decode(entry.pkcs8.as_bytes())
                .map_err(|_| format!("the stored key {} is not base64", entry.kid))?;
            let key = PrivateKey::from_pkcs8_der(alg, &der)
                .map_err(|why| format!("the stored key {}: {why}", entry.kid))?;
            if key.kid() != entry.kid {
                return Err(format!("the stored key {} has another kid", entry.kid));
            }
            keys.push(RingKey {
                key,
                state: entry.state,
                created_at: entry.created_at,
                retired_at: entry.retired_at,
            });
        }
        let ring = Self { alg, keys };
        match ring.count(KeyState::Current) {
            1 => Ok(ring),
            n => Err(format!("the stored key ring has {n} current keys, not 1")),
        }
    }

    /// The stored form. It holds private keys: into the database only.
    pub fn to_json(&self) -> String {
        let keys = self
            .keys
            .iter()
            .map(|entry| StoredKey {
                kid: entry.key.kid().to_owned(),
                state: entry.state,
                pkcs8: STANDARD.encode(entry.key.pkcs8_der()),
                created_at: entry.created_at,
                retired_at: entry.retired_at,
            })
            .collect();
        let stored = StoredRing {
            alg: self.alg.as_str().to_owned(),
            keys,
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }

    fn count(&self, state: KeyState) -> usize {
        self.keys.iter().filter(|key| key.state == state).count()
    }

    /// The `kid`s in `state`, in ring order.
    pub fn kids(&self, state: KeyState) -> Vec<String> {
        self.keys
            .iter()
            .filter(|key| key.state == state)
            .map(|key| key.key.kid().to_owned())
            .collect()
    }

    /// The keys an instance uses at `now`: previous keys only while a token they signed may
    /// still be valid, that is `verify_for` after they stopped signing.
    pub fn signing_keys(&self, now: i64, verify_for: Duration) -> Result<SigningKeys, String> {
        let verify_for = i64::try_from(verify_for.as_secs()).unwrap_or(i64::MAX);
        let in_state = |state: KeyState| {
            self.keys
                .iter()
                .filter(move |key| key.state == state)
                .map(|key| &key.key)
        };
        let current = in_state(KeyState::Current)
            .next()
            .cloned()
            .ok_or_else(|| "the key ring has no current key".to_owned())?;
        let next = in_state(KeyState::Next).map(|key| key.public().clone());
        let previous = self
            .keys
            .iter()
            .filter(|key| key.state == KeyState::Previous)
            .filter(|key| {
                key.retired_at
                    .is_some_and(|at| at.saturating_add(verify_for) > now)
            })
            .map(|key| key.key.public().clone());
        SigningKeys::new(self.alg, current, next.collect(), previous.collect())
    }

    /// One step: the next key signs, the current one becomes previous (retired `now`), a new
    /// next key is generated and previous keys past any token's lifetime are dropped. Refused
    /// while the next key is younger than `min_published`, unless `force`.
    pub fn rotate(
        mut self,
        now: i64,
        min_published: Duration,
        force: bool,
    ) -> Result<Self, RotateRefused> {
        let Some(next) = self.keys.iter().position(|key| key.state == KeyState::Next) else {
            return Err(RotateRefused::Failed("the key ring has no next key".into()));
        };
        let published_for = now.saturating_sub(self.keys[next].created_at);
        let needed = i64::try_from(min_published.as_secs()).unwrap_or(i64::MAX);
        if !force && published_for < needed {
            return Err(RotateRefused::TooSoon {
                wait_secs: needed - published_for,
            });
        }
        let fresh = PrivateKey::generate(self.alg).map_err(RotateRefused::Failed)?;
        self.keys.retain(|key| {
            key.state != KeyState::Previous
                || key
                    .retired_at
                    .is_some_and(|at| at.saturating_add(KEEP_PREVIOUS_SECS) > now)
        });
        for key in &mut self.keys {
            match key.state {
                KeyState::Current => {
                    key.state = KeyState::Previous;
                    key.retired_at = Some(now);
                }
                KeyState::Next => key.state = KeyState::Current,
                KeyState::Previous => {}
            }
        }
        self.keys.push(RingKey {
            key: fresh,
            state: KeyState::Next,
            created_at: now,
            retired_at: None,
        });
        Ok(self)
    }
}

#[cfg(test)]
mod tests;
