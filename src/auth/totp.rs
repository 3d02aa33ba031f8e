//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA1, 6 digits, 30-second steps,
//! one step of clock skew either way. Pure: the caller supplies the time and the last step the
//! account accepted, and stores the step a code was accepted at, so no code is accepted twice.

use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha1::Sha1;

/// Seconds per step.
pub const STEP_SECS: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Steps of clock skew accepted either side of the current one.
const SKEW_STEPS: i64 = 1;
/// Length of a generated secret: 160 bits, the HMAC-SHA1 output size (RFC 4226 §4 R6).
const SECRET_BYTES: usize = 20;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A shared TOTP secret. Never logged: `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        let mut bytes = vec![0_u8; SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32 without padding, as authenticator apps take it.
    pub fn base32(&self) -> String {
        base32_encode(&self.0)
    }

    /// The code of `step`, zero-padded to [`DIGITS`].
    pub fn code_at(&self, step: i64) -> String {
        format!(
            "{:0width$}",
            hotp(&self.0, step, DIGITS),
            width = DIGITS as usize
        )
    }

    /// The step `code` is right for, among those within the skew of `now` (Unix seconds) and
    /// after `last_step` (the last one accepted): `None` for a wrong, stale or replayed code.
    pub fn accepts(&self, code: &TotpCode, now: i64, last_step: i64) -> Option<i64> {
        let current = step_of(now);
        (current - SKEW_STEPS..=current + SKEW_STEPS)
            .filter(|step| *step > last_step)
            .find(|step| hotp(&self.0, *step, DIGITS) == code.0)
    }

    /// The `otpauth://` URI authenticator apps read from a QR code (the Key Uri Format).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let issuer = percent_encode(issuer);
        format!(
            "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            percent_encode(account),
            self.base32(),
        )
    }
}

/// The step a Unix time falls in.
pub fn step_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// A code as typed: exactly six ASCII digits (spaces between them are dropped).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TotpCode(u32);

impl TotpCode {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let digits: String = raw.chars().filter(|c| *c != ' ').collect();
        if digits.len() != DIGITS as usize || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("must be the 6 digits your authenticator app shows");
        }
        digits
            .parse()
            .map(Self)
            .map_err(|_| "must be the 6 digits your authenticator app shows")
    }
}

/// RFC 4226 §5.3: the dynamic truncation of HMAC-SHA1(secret, counter), modulo 10^digits.
fn hotp(secret: &[u8], step: i64, digits: u32) -> u32 {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        // HMAC takes keys of any length; unreachable, and no code matches it.
        return u32::MAX;
    };
    mac.update(&step.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[19] & 0x0f);
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    binary % 10_u32.pow(digits)
}

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0_u32, 0_u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes RFC 4648 base32 (any case, padding and spaces ignored).
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0_u32, 0_u32);
    for c in text.chars().filter(|c| *c != '=' && *c != ' ') {
        let value = BASE32
            .iter()
            .position(|b| char::from(*b) == c.to_ascii_uppercase())?;
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 seed: the ASCII "12345678901234567890".
    const RFC_SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn matches_the_rfc_6238_sha1_test_vectors() {
        let vectors: [(i64, u32); 6] = [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        for (time, expected) in vectors {
            assert_eq!(hotp(RFC_SEED, step_of(time), 8), expected, "T = {time}");
            let secret = TotpSecret::from_bytes(RFC_SEED.to_vec());
            assert_eq!(
                secret.code_at(step_of(time)),
                format!("{:06}", expected % 1_000_000)
            );
        }
    }

    #[test]
    fn accepts_one_step_of_skew_and_never_a_step_twice() {
        let secret = TotpSecret::generate();
        let now = 1_700_000_015;
        let step = step_of(now);
        let code = |s: i64| TotpCode::parse(&secret.code_at(s)).unwrap();
        assert_eq!(secret.accepts(&code(step), now, -1), Some(step));
        assert_eq!(secret.accepts(&code(step - 1), now, -1), Some(step - 1));
        assert_eq!(secret.accepts(&code(step + 1), now, -1), Some(step + 1));
        assert_eq!(secret.accepts(&code(step - 2), now, -1), None);
        assert_eq!(secret.accepts(&code(step + 2), now, -1), None);
        // A code of the step last accepted, or an earlier one, is a replay.
        assert_eq!(secret.accepts(&code(step), now, step), None);
        assert_eq!(secret.accepts(&code(step - 1), now, step), None);
        assert_eq!(secret.accepts(&code(step + 1), now, step), Some(step + 1));
    }

    #[test]
    fn codes_are_six_digits() {
        assert!(TotpCode::parse("123456").is_ok());
        assert!(TotpCode::parse("123 456").is_ok());
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６", "-12345"] {
            assert!(TotpCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("MZXW6YTBOI======").unwrap(), b"foobar");
        let secret = TotpSecret::generate();
        assert_eq!(base32_decode(&secret.base32()).unwrap(), secret.as_bytes());
        assert_eq!(secret.base32().len(), 32);
    }

    #[test]
    fn the_uri_names_issuer_account_and_parameters() {
        let secret = TotpSecret::from_bytes(b"foobar".to_vec());
        assert_eq!(
            secret.otpauth_uri("Latch key", "ada@example.com"),
            "otpauth://totp/Latch%20key:ada@example.com?secret=MZXW6YTBOI&issuer=Latch%20key\
             &algorithm=SHA1&digits=6&period=30"
        );
    }
}
