use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use uuid::Uuid;

use super::JwtSecret;
use crate::abuse::DeviceId;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
/// Version, user id, issue time (Unix seconds, big-endian), device id, then the MAC of those.
const SIGNED_LEN: usize = 1 + 16 + 8 + 16;
const TOKEN_LEN: usize = SIGNED_LEN + 32;
/// A device token's base64url length: 98 characters.
const ENCODED_LEN: usize = (TOKEN_LEN * 4).div_ceil(3);
/// How long a device token names a known device. Each login hands out a new one, so only a
/// client that has not logged in for this long loses its exemption.
const MAX_AGE: TimeDelta = TimeDelta::days(180);
/// Clock skew tolerated between instances for a token issued "in the future".
const SKEW: TimeDelta = TimeDelta::seconds(60);

/// Device tokens, after OWASP's "device cookies": proof that this client logged in to this
/// account before, so that guesses by everyone else cannot lock it out (see
/// `crate::abuse::Limits::account_attempt`).
///
/// Stateless: the token holds the user id, its issue time and a random device id, with an
/// HMAC-SHA256 over them under a key of its own derived from the signing secret. Nothing is
/// stored, so they cost nothing per login and work on every instance; changing the signing
/// secret turns every device token into no token, which costs each client its exemption until
/// its next login. A device token is never a credential: it only decides which allowance a
/// password attempt is counted in, and the password is checked all the same.
pub struct DeviceTokens {
    mac: HmacSha256,
}

/// What a valid device token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceClaim {
    pub user_id: Uuid,
    pub device: DeviceId,
}

impl DeviceTokens {
    /// Keyed with a key derived for this purpose alone, never the refresh-token or JWT key.
    pub fn new(secret: &JwtSecret) -> Self {
        let key = secret.derive_key(b"latchkey device-token v1");
        Self {
            mac: HmacSha256::new_from_slice(&key).expect("HMAC accepts keys of any length"),
        }
    }

    /// A new device token for `user_id`, naming a new random device.
    pub fn issue(&self, user_id: Uuid, now: DateTime<Utc>) -> String {
        let mut device = [0_u8; 16];
        OsRng.fill_bytes(&mut device);
        let mut token = Vec::with_capacity(TOKEN_LEN);
        token.push(VERSION);
        token.extend_from_slice(user_id.as_bytes());
        token.extend_from_slice(&now.timestamp().to_be_bytes());
        token.extend_from_slice(&device);
        let mut mac = self.mac.clone();
        mac.update(&token);
        token.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The claim of a token this server issued less than [`MAX_AGE`] ago; `None` for anything
    /// else (malformed, tampered, signed with another secret, expired).
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<DeviceClaim> {
        if token.len() != ENCODED_LEN {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
        let (signed, tag) = raw.split_at_checked(SIGNED_LEN)?;
        let mut mac = self.mac.clone();
        mac.update(signed);
        mac.verify_slice(tag).ok()?;
        let (version, rest) = signed.split_first()?;
        let (user_id, rest) = rest.split_at_checked(16)?;
        let (issued_at, device) = rest.split_at_checked(8)?;
        let issued_at =
            DateTime::from_timestamp(i64::from_be_bytes(issued_at.try_into().ok()?), 0)?;
        let fresh = issued_at <= now + SKEW && now - issued_at < MAX_AGE;
        (*version == VERSION && fresh).then_some(())?;
        Some(DeviceClaim {
            user_id: Uuid::from_slice(user_id).ok()?,
            device: DeviceId(device.try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(secret: &str) -> DeviceTokens {
        DeviceTokens::new(&JwtSecret::new(secret).unwrap())
    }

    const SECRET: &str = "kQ7vN2xR9pL4mW8zT3bY6cH1dJ5fG0sA";

    #[test]
    fn a_token_names_its_user_and_a_new_device_each_time() {
        let tokens = tokens(SECRET);
        let ada = Uuid::new_v4();
        let now = Utc::now();
        let first = tokens.issue(ada, now);
        let second = tokens.issue(ada, now);
        assert_eq!(first.len(), ENCODED_LEN);
        let a = tokens.verify(&first, now).unwrap();
        let b = tokens.verify(&second, now).unwrap();
        assert_eq!((a.user_id, b.user_id), (ada, ada));
        assert_ne!(a.device, b.device);
    }

    #[test]
    fn tampered_foreign_expired_and_garbage_tokens_are_no_tokens() {
        let ours = tokens(SECRET);
        let now = Utc::now();
        let token = ours.issue(Uuid::new_v4(), now);

        let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        raw[1] ^= 1;
        assert_eq!(ours.verify(&URL_SAFE_NO_PAD.encode(&raw), now), None);

        let theirs = tokens("Zt4Gm8Qx1Rv6Lc3Np9Wk2Hy7Bd5Jf0Ps");
        assert_eq!(theirs.verify(&token, now), None);

        assert!(
            ours.verify(&token, now + MAX_AGE - TimeDelta::seconds(1))
                .is_some()
        );
        assert_eq!(ours.verify(&token, now + MAX_AGE), None);
        assert_eq!(ours.verify(&token, now - TimeDelta::minutes(5)), None);

        for garbage in [
            "",
            "x",
            &"A".repeat(ENCODED_LEN),
            &"é".repeat(ENCODED_LEN / 2),
        ] {
            assert_eq!(ours.verify(garbage, now), None, "{garbage:?}");
        }
    }
}
