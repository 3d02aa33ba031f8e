use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{JwtSecret, random_token};

type HmacSha256 = Hmac<Sha256>;

/// An opaque refresh token, base64url-encoded. Only [`RefreshToken::hash`] is ever stored.
pub struct RefreshToken(String);

impl RefreshToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn hash(&self) -> String {
        Self::hash_presented(&self.0)
    }

    /// The lookup key for a token a client presented (see [`super::token_hash`]).
    pub fn hash_presented(token: &str) -> String {
        super::token_hash(token)
    }
}

/// Mints refresh tokens.
///
/// A session's first token is random. Each later one is the HMAC of its predecessor under a
/// server key, so when two tabs refresh with the same token at once, the server can hand the
/// second one the very token the first got, without storing any usable token: the database holds
/// only hashes, and the successor of a stolen old token cannot be computed without the key.
pub struct RefreshTokens {
    /// Keyed once; each derivation works on a clone.
    successor_mac: HmacSha256,
}

impl RefreshTokens {
    /// Successors are derived with a key made from the signing secret: after a rotation, a token
    /// rotated moments before is no longer re-issued, which costs that client one login.
    pub fn new(secret: &JwtSecret) -> Self {
        let key = secret.derive_key(b"latchkey refresh-token successor v1");
        Self {
            successor_mac: HmacSha256::new_from_slice(&key)
                .expect("HMAC accepts keys of any length"),
        }
    }

    /// 256 bits from the operating system's CSPRNG.
    pub fn generate(&self) -> RefreshToken {
        RefreshToken(random_token())
    }

    /// The token that replaces `presented` when it is rotated.
    pub fn successor(&self, presented: &str) -> RefreshToken {
        let mut mac = self.successor_mac.clone();
        mac.update(presented.as_bytes());
        RefreshToken(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(secret: &str) -> RefreshTokens {
        RefreshTokens::new(&JwtSecret::new(secret).unwrap())
    }

    #[test]
    fn tokens_are_256_bit_base64url_and_unique() {
        let tokens = tokens("kQ7vN2xR9pL4mW8zT3bY6cH1dJ5fG0sA");
        let a = tokens.generate();
        let b = tokens.generate();
        assert_eq!(a.as_str().len(), 43);
        assert!(
            a.as_str()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a.as_str(), b.as_str());
    }

    #[test]
    fn the_stored_hash_is_sha256_of_the_token() {
        let token = tokens("kQ7vN2xR9pL4mW8zT3bY6cH1dJ5fG0sA").generate();
        assert_eq!(token.hash(), RefreshToken::hash_presented(token.as_str()));
        assert_eq!(token.hash().len(), 64);
    }

    #[test]
    fn a_successor_is_deterministic_per_key_and_unlike_its_parent() {
        let ours = tokens("kQ7vN2xR9pL4mW8zT3bY6cH1dJ5fG0sA");
        let theirs = tokens("Zt4Gm8Qx1Rv6Lc3Np9Wk2Hy7Bd5Jf0Ps");
        let parent = ours.generate();
        let child = ours.successor(parent.as_str());
        assert_eq!(child.as_str(), ours.successor(parent.as_str()).as_str());
        assert_ne!(child.as_str(), parent.as_str());
        assert_eq!(child.as_str().len(), 43);
        assert_ne!(child.as_str(), theirs.successor(parent.as_str()).as_str());
    }
}
