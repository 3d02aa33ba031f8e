//! The keys of the second factor: TOTP secrets are stored encrypted (AES-256-GCM, bound to their
//! account) under a key derived from the HS256 secret, so a database dump alone does not reveal
//! them; recovery codes as hashes keyed by their account's TOTP secret, so they are as safe as it
//! is and survive what it survives. Also what a session was authenticated with (`amr`).
//!
//! Every listed HS256 secret (`LATCHKEY_JWT_KEYS`) derives a key, the current one first: secrets
//! are sealed under the first and opened under whichever sealed them, and one opened under an
//! older key is reported stale, to be sealed again, so a rotation strands nobody.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use uuid::Uuid;

use super::KeySet;
use super::totp::TotpSecret;

const NONCE_BYTES: usize = 12;
/// Recovery codes handed out at a time.
pub const RECOVERY_CODES: usize = 10;
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// Keeps recovery-code hashes apart from anything else the TOTP secret keys.
const RECOVERY_PURPOSE: &[u8] = b"latchkey recovery-code v2\0";

pub struct MfaKeys {
    /// One per listed HS256 secret, the current one first.
    ciphers: Vec<Aes256Gcm>,
    /// Recovery codes confirmed before they were keyed by the TOTP secret were keyed by the
    /// HS256 secret of the day: one per listed secret, so those codes keep working.
    legacy_recovery_macs: Vec<Hmac<Sha256>>,
}

/// A stored TOTP secret, opened.
pub struct Opened {
    pub secret: TotpSecret,
    /// Sealed under a key that no longer seals: to be sealed again under the current one.
    pub stale: bool,
}

impl MfaKeys {
    pub fn new(secrets: &KeySet) -> Self {
        let mut ciphers = Vec::new();
        let mut legacy_recovery_macs = Vec::new();
        for secret in secrets.secrets() {
            let key = secret.derive_key(b"latchkey totp-secret v1");
            ciphers.push(Aes256Gcm::new(&key.into()));
            let mac_key = secret.derive_key(b"latchkey recovery-code v1");
            legacy_recovery_macs.push(
                <Hmac<Sha256> as Mac>::new_from_slice(&mac_key)
                    .expect("HMAC accepts keys of any length"),
            );
        }
        Self {
            ciphers,
            legacy_recovery_macs,
        }
    }

    /// `secret` encrypted for `user_id` under the current key: base64 of the nonce and the
    /// ciphertext.
    pub fn seal(&self, user_id: Uuid, secret: &TotpSecret) -> Result<String, anyhow::Error> {
        let mut nonce = [0_u8; NONCE_BYTES];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .ciphers
            .first()
            .ok_or_else(|| anyhow::anyhow!("no key seals TOTP secrets"))?
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

    /// The secret [`Self::seal`] sealed for `user_id` under any listed key; an error when it
    /// was sealed for another account, under a key no longer listed, or tampered with.
    pub fn open(&self, user_id: Uuid, sealed: &str) -> Result<Opened, anyhow::Error> {
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
        let payload = || Payload {
            msg: ciphertext,
            aad: user_id.as_bytes(),
        };
        self.ciphers
            .iter()
            .enumerate()
            .find_map(|(index, cipher)| {
                let plain = cipher.decrypt(&Nonce::from(nonce), payload()).ok()?;
                Some(Opened {
                    secret: TotpSecret::from_bytes(plain),
                    stale: index > 0,
                })
            })
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "a stored TOTP secret opens under none of the listed JWT secrets: was the \
                     secret that sealed it removed from LATCHKEY_JWT_KEYS?"
                )
            })
    }

    /// A fresh set of recovery codes for the account whose TOTP secret is `secret`, as shown to
    /// the user once, with their stored hashes.
    pub fn recovery_codes(&self, secret: &TotpSecret) -> Vec<(String, String)> {
        (0..RECOVERY_CODES)
            .map(|_| {
                let mut bytes = [0_u8; 10];
                OsRng.fill_bytes(&mut bytes);
                let chars: String = bytes
                    .iter()
                    .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b & 31)]))
                    .collect();
                let code = format!("{}-{}", &chars[..5], &chars[5..]);
                let hash = recovery_hash(secret, &normal(&code));
                (code, hash)
            })
            .collect()
    }

    /// The stored forms a presented recovery code may have (case and dashes aside): keyed by
    /// the account's TOTP secret, then the older forms keyed by each listed HS256 secret.
    pub fn recovery_hashes(&self, secret: &TotpSecret, code: &str) -> Vec<String> {
        let normal = normal(code);
        let legacy = self.legacy_recovery_macs.iter().map(|mac| {
            let mut mac = mac.clone();
            mac.update(normal.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        });
        std::iter::once(recovery_hash(secret, &normal))
            .chain(legacy)
            .collect()
    }
}

/// A recovery code as typed or not: lower case, letters and digits only.
fn normal(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn recovery_hash(secret: &TotpSecret, normal: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(RECOVERY_PURPOSE);
    mac.update(normal.as_bytes());
    hex::encode(mac.finalize().into_bytes())
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
    use crate::auth::JwtSecret;

    const OLD: &str = "kQ7vN2xR9pL4mW8zT3bY6cH1dJ5fG0sA";
    const NEW: &str = "Zp3mQ8wL1xV6bN4cT9rK2yH7dF0gJ5sE";

    /// The keys of `LATCHKEY_JWT_KEYS` listing these secrets, in order.
    fn keys(secrets: &[&str]) -> MfaKeys {
        let entries: Vec<String> = secrets
            .iter()
            .enumerate()
            .map(|(kid, secret)| format!("k{kid}:{secret}"))
            .collect();
        MfaKeys::new(&KeySet::parse(&entries).unwrap())
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_account_and_a_listed_key() {
        let ours = keys(&[OLD]);
        let theirs = keys(&[NEW]);
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let secret = TotpSecret::generate();
        let sealed = ours.seal(ada, &secret).unwrap();
        assert!(!sealed.contains(&secret.base32()));
        let opened = ours.open(ada, &sealed).unwrap();
        assert_eq!(opened.secret, secret);
        assert!(!opened.stale);
        assert!(ours.open(bob, &sealed).is_err());
        assert!(theirs.open(ada, &sealed).is_err());
        assert!(ours.open(ada, "AAAA").is_err());
    }

    #[test]
    fn after_a_rotation_an_old_seal_opens_stale_and_new_seals_use_the_new_key() {
        let before = keys(&[OLD]);
        let during = keys(&[NEW, OLD]);
        let after = keys(&[NEW]);
        let ada = Uuid::new_v4();
        let secret = TotpSecret::generate();
        let old_seal = before.seal(ada, &secret).unwrap();

        let opened = during.open(ada, &old_seal).unwrap();
        assert_eq!(opened.secret, secret);
        assert!(opened.stale);
        assert!(after.open(ada, &old_seal).is_err());
        let resealed = during.seal(ada, &secret).unwrap();
        assert!(!during.open(ada, &resealed).unwrap().stale);
        assert_eq!(after.open(ada, &resealed).unwrap().secret, secret);
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_as_typed_or_not_under_any_server_key() {
        let secret = TotpSecret::generate();
        let codes = keys(&[OLD]).recovery_codes(&secret);
        assert_eq!(codes.len(), RECOVERY_CODES);
        let (code, hash) = &codes[0];
        // Keyed by the account's TOTP secret, not the server's: a rotation changes nothing.
        for keys in [keys(&[OLD]), keys(&[NEW])] {
            assert_eq!(
                &keys.recovery_hashes(&secret, &code.to_uppercase())[0],
                hash
            );
            assert_eq!(
                &keys.recovery_hashes(&secret, &code.replace('-', ""))[0],
                hash
            );
        }
        assert_ne!(&codes[1].1, hash);
        let other = TotpSecret::generate();
        assert!(!keys(&[OLD]).recovery_hashes(&other, code).contains(hash));
    }

    #[test]
    fn codes_hashed_under_a_listed_server_key_still_count() {
        let mac_key = JwtSecret::new(OLD)
            .unwrap()
            .derive_key(b"latchkey recovery-code v1");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&mac_key).unwrap();
        mac.update(b"abcde23456");
        let legacy = hex::encode(mac.finalize().into_bytes());
        let secret = TotpSecret::generate();
        assert!(
            keys(&[NEW, OLD])
                .recovery_hashes(&secret, "ABCDE-23456")
                .contains(&legacy)
        );
        assert!(
            !keys(&[NEW])
                .recovery_hashes(&secret, "abcde-23456")
                .contains(&legacy)
        );
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
