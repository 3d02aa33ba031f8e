use sha2::{Digest, Sha256};

use super::random_token;

/// An opaque refresh token: 256 bits from the operating system's CSPRNG, base64url-encoded.
/// Only [`RefreshToken::hash`] is ever stored.
pub struct RefreshToken(String);

impl RefreshToken {
    pub fn generate() -> Self {
        Self(random_token())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn hash(&self) -> String {
        Self::hash_presented(&self.0)
    }

    /// The lookup key for a token a client presented. A fast hash is right here: the token
    /// carries 256 bits of entropy, so there is nothing to brute-force.
    pub fn hash_presented(token: &str) -> String {
        hex::encode(Sha256::digest(token.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_base64url_and_unique() {
        let a = RefreshToken::generate();
        let b = RefreshToken::generate();
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
        let token = RefreshToken::generate();
        assert_eq!(token.hash(), RefreshToken::hash_presented(token.as_str()));
        assert_eq!(token.hash().len(), 64);
        assert!(!token.hash().contains(token.as_str()));
    }
}
