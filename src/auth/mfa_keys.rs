//! The keys of the second factor: TOTP secrets are stored encrypted (AES-256-GCM, bound to their
//! account), recovery codes as keyed hashes; both keys are derived from the signing secret, so a
//! database dump alone reveals neither. Also what a session was authenticated with (`amr`).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use uuid::Uuid;

use super::JwtSecret;
use super::totp::TotpSecret;

const NONCE_BYTES: usize = 12;
/// Recovery codes handed out at a time.
pub const RECOVERY_CODES: usize = 10;
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

pub struct MfaKeys {
    cipher: Aes256Gcm,
    recovery_mac: Hmac<Sha256>,
}

impl MfaKeys {
    pub fn new(secret: &JwtSecret) -> Self {
        let key = secret.derive_key(b"latchkey totp-secret v1");
        let mac_key = secret.derive_key(b"latchkey recovery-code v1");
        Self {
            cipher: Aes256Gcm::new(&key.into()),
            recovery_mac: <Hmac<Sha256> as Mac>::new_from_slice(&mac_key)
                .expect("HMAC accepts keys of any length"),
        }
    }

    /// `secret` encrypted for `user_id`: base64 of the nonce and the ciphertext.
    pub fn seal(&self, user_id: Uuid, secret: &TotpSecret) -> Result<String, anyhow::Error> {
        let mut nonce = [0_u8; NONCE_BYTES];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("could not encrypt a TOTP secret"))?;
        Ok(STANDARD.encode([nonce.as_slice(), &sealed].concat()))
    }

    /// The secret [`Self::seal`] sealed for `user_id`; an error when it was sealed for another
    /// account, under another key, or tampered with.
    pub fn open(&self, user_id: Uuid, sealed: &str) -> Result<TotpSecret, anyhow::Error> {
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| anyhow::anyhow!("a stored TOTP secret is not base64"))?;
        if bytes.len() <= NONCE_BYTES {
            anyhow::bail!("a stored TOTP secret is too short");
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce
            .try_into()
            .map_err(|_| anyhow::anyhow!("a stored TOTP secret has no nonce"))?;
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| {
                anyhow::anyhow!(
                    "a stored TOTP secret does not decrypt: was the JWT secret changed?"
                )
            })?;
        Ok(TotpSecret::from_bytes(plain))
    }

    /// A fresh set of recovery codes, as shown to the user once, with their stored hashes.
    pub fn recovery_codes(&self) -> Vec<(String, String)> {
        (0..RECOVERY_CODES)
            .map(|_| {
                let mut bytes = [0_u8; 10];
                OsRng.fill_bytes(&mut bytes);
                let chars: String = bytes
                    .iter()
                    .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b & 31)]))
                    .collect();
                let code = format!("{}-{}", &chars[..5], &chars[5..]);
                let hash = self.recovery_hash(&code);
                (code, hash)
            })
            .collect()
    }

    /// The stored form of a presented recovery code (case and dashes aside).
    pub fn recovery_hash(&self, code: &str) -> String {
        let normal: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let mut mac = self.recovery_mac.clone();
        mac.update(normal.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// How a session's user proved who they are: the `amr` claim (RFC 8176) and the assurance level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethods {
    Password,
    PasswordAndOtp,
    PasswordAndRecoveryCode,
}

impl AuthMethods {
    /// The stored form (`sessions.amr`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::PasswordAndOtp => "pwd otp",
            Self::PasswordAndRecoveryCode => "pwd recovery",
        }
    }

    /// Anything unknown reads as the weakest.
    pub fn parse(stored: &str) -> Self {
        match stored {
            "pwd otp" => Self::PasswordAndOtp,
            "pwd recovery" => Self::PasswordAndRecoveryCode,
            _ => Self::Password,
        }
    }

    pub fn amr(self) -> Vec<String> {
        self.as_str().split(' ').map(str::to_owned).collect()
    }

    /// `aal2` with a second factor, else `aal1`.
    pub fn aal(self) -> &'static str {
        match self {
            Self::Password => "aal1",
            Self::PasswordAndOtp | Self::PasswordAndRecoveryCode => "aal2",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> MfaKeys {
        MfaKeys::new(&JwtSecret::new(secret).unwrap())
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_account_and_key() {
        let ours = keys("kQ7vN2xR9pL4mW8zT3bY6cH1dJ5fG0sA");
        let theirs = keys("Zp3mQ8wL1xV6bN4cT9rK2yH7dF0gJ5sE");
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let secret = TotpSecret::generate();
        let sealed = ours.seal(ada, &secret).unwrap();
        assert!(!sealed.contains(&secret.base32()));
        assert_eq!(ours.open(ada, &sealed).unwrap(), secret);
        assert!(ours.open(bob, &sealed).is_err());
        assert!(theirs.open(ada, &sealed).is_err());
        assert!(ours.open(ada, "AAAA").is_err());
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_as_typed_or_not() {
        let keys = keys("kQ7vN2xR9pL4mW8zT3bY6cH1dJ5fG0sA");
        let codes = keys.recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let (code, hash) = &codes[0];
        assert_eq!(&keys.recovery_hash(&code.to_uppercase()), hash);
        assert_eq!(&keys.recovery_hash(&code.replace('-', "")), hash);
        assert_ne!(&codes[1].1, hash);
    }

    #[test]
    fn methods_round_trip_with_their_levels() {
        for methods in [
            AuthMethods::Password,
            AuthMethods::PasswordAndOtp,
            AuthMethods::PasswordAndRecoveryCode,
        ] {
            assert_eq!(AuthMethods::parse(methods.as_str()), methods);
        }
        assert_eq!(AuthMethods::PasswordAndOtp.amr(), ["pwd", "otp"]);
        assert_eq!(AuthMethods::Password.aal(), "aal1");
        assert_eq!(AuthMethods::PasswordAndRecoveryCode.aal(), "aal2");
    }
}
