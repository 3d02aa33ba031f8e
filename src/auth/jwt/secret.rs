//! The HS256 secret and the HS256 key list (`LATCHKEY_JWT_SECRET`, `LATCHKEY_JWT_KEYS`). The
//! first secret also derives the refresh-token and device-token keys, whatever algorithm signs
//! access tokens.

use sha2::{Digest, Sha256};

/// An HS256 signing secret of at least 256 bits.
pub struct JwtSecret(pub(super) Vec<u8>);

impl JwtSecret {
    pub const MIN_BYTES: usize = 32;

    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.len() < Self::MIN_BYTES {
            return Err(format!(
                "the JWT secret must be at least {} bytes long, got {}",
                Self::MIN_BYTES,
                secret.len()
            ));
        }
        if let Some(why) = crate::auth::secret_strength::weakness(secret) {
            return Err(format!(
                "the JWT secret is too weak ({why}); generate a random one, for example with \
                 `openssl rand -hex 32`"
            ));
        }
        Ok(Self(secret.as_bytes().to_vec()))
    }

    /// A key for another purpose, derived so that it reveals nothing about the secret.
    pub(in crate::auth) fn derive_key(&self, purpose: &[u8]) -> [u8; 32] {
        let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(&self.0)
            .expect("HMAC accepts keys of any length");
        hmac::Mac::update(&mut mac, purpose);
        hmac::Mac::finalize(mac).into_bytes().into()
    }

    /// A short, stable fingerprint used as the `kid` of a lone secret: it changes when the
    /// secret does, so a token signed with an old secret is told apart before its signature is
    /// even checked.
    pub(super) fn fingerprint(&self) -> String {
        let digest = Sha256::digest([b"latchkey-kid:".as_slice(), &self.0].concat());
        hex::encode(&digest[..8])
    }
}

/// The signing keys, each with its `kid`. The first signs new tokens; a token signed with any of
/// them verifies. Rotation: put a new key first, keep the old one listed until the access
/// tokens it signed have expired, then drop it.
pub struct KeySet {
    pub(super) keys: Vec<(String, JwtSecret)>,
}

impl KeySet {
    /// One secret, named by its fingerprint.
    pub fn single(secret: JwtSecret) -> Self {
        Self {
            keys: vec![(secret.fingerprint(), secret)],
        }
    }

    /// `kid:secret` entries, the signing key first.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut keys: Vec<(String, JwtSecret)> = Vec::new();
        for entry in entries.iter().filter(|entry| !entry.trim().is_empty()) {
            let (kid, secret) = entry
                .split_once(':')
                .ok_or_else(|| "each key must be written kid:secret".to_owned())?;
            let kid = kid.trim();
            if kid.is_empty()
                || !kid
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(format!("{kid:?} is not a key id (letters, digits, - _ .)"));
            }
            if keys.iter().any(|(known, _)| known == kid) {
                return Err(format!("the key id {kid:?} is listed twice"));
            }
            let secret = JwtSecret::new(secret).map_err(|why| format!("key {kid:?}: {why}"))?;
            keys.push((kid.to_owned(), secret));
        }
        if keys.is_empty() {
            return Err("no keys are listed".to_owned());
        }
        Ok(Self { keys })
    }

    /// The key new tokens are signed with.
    pub fn signing_secret(&self) -> &JwtSecret {
        &self.keys[0].1
    }

    /// Every listed secret, the signing one first.
    pub fn secrets(&self) -> impl Iterator<Item = &JwtSecret> {
        self.keys.iter().map(|(_, secret)| secret)
    }
}
