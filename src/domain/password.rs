use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// A new password that bcrypt can hash without loss: at least 8 characters and at most 72 bytes,
/// both as sent and in its NFKC normal form, which is what is hashed. Both, because the contract's
/// `minLength`/`maxLength` describe what clients send, while bcrypt sees the normal form.
///
/// bcrypt silently ignores everything after the 72nd byte, so a longer password is refused rather
/// than truncated: otherwise two different passwords would log into the same account.
///
/// Unicode lets the same text arrive as different code points (é precomposed or as e plus a
/// combining accent, full-width or ASCII letters), depending on the keyboard and system. NIST SP
/// 800-63B §5.1.1.2 advises normalizing before hashing so the user's password stays their
/// password wherever they type it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_BYTES: usize = 72;

    pub fn parse(raw: String) -> Result<Self, &'static str> {
        let password = Self::normalize(&raw);
        if [&raw, &password]
            .iter()
            .any(|form| form.chars().count() < Self::MIN_CHARS)
        {
            return Err("must be at least 8 characters");
        }
        if [&raw, &password]
            .iter()
            .any(|form| form.len() > Self::MAX_BYTES)
        {
            return Err("must be at most 72 bytes (UTF-8); longer passwords are not truncated");
        }
        Ok(Self(password))
    }

    /// The NFKC normal form a password is hashed and checked in.
    pub fn normalize(raw: &str) -> String {
        raw.nfkc().collect()
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Never prints the password, so it cannot end up in a log line by accident.
impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_eight_characters_up_to_72_bytes() {
        assert!(Password::parse("12345678".into()).is_ok());
        assert!(Password::parse("x".repeat(72)).is_ok());
    }

    #[test]
    fn rejects_short_passwords() {
        assert!(Password::parse("1234567".into()).is_err());
    }

    #[test]
    fn counts_characters_for_the_minimum_and_bytes_for_the_maximum() {
        // Eight two-byte characters: long enough, 16 bytes.
        assert!(Password::parse("éééééééé".into()).is_ok());
        // 37 two-byte characters are 74 bytes: over bcrypt's limit.
        assert!(Password::parse("é".repeat(37)).is_err());
    }

    #[test]
    fn refuses_rather_than_truncates_73_bytes() {
        assert!(Password::parse("x".repeat(73)).is_err());
    }

    #[test]
    fn composed_and_decomposed_forms_are_the_same_password() {
        let composed = Password::parse("caf\u{e9} cr\u{e8}me".into()).unwrap();
        let decomposed = Password::parse("cafe\u{301} cre\u{300}me".into()).unwrap();
        assert_eq!(composed.expose(), decomposed.expose());
        assert_eq!(composed.expose(), "caf\u{e9} cr\u{e8}me");
        // Compatibility forms too: full-width letters and the "fi" ligature.
        let wide = Password::parse("\u{ff50}\u{ff41}\u{ff53}\u{ff53}\u{fb01}x12".into()).unwrap();
        assert_eq!(wide.expose(), "passfix12");
    }

    #[test]
    fn the_limits_apply_as_sent_and_normalized() {
        // 24 times e + U+0301 is 72 bytes as sent, 48 (24 × é) normalized.
        assert_eq!(
            Password::parse("e\u{301}".repeat(24))
                .unwrap()
                .expose()
                .len(),
            48
        );
        // 36 of them are 72 bytes normalized but 108 as sent.
        assert!(Password::parse("e\u{301}".repeat(36)).is_err());
        // Four are 8 characters as sent, 4 normalized.
        assert!(Password::parse("e\u{301}".repeat(4)).is_err());
        // U+00B8 (cedilla) normalizes to a space and a combining cedilla: 7 characters as sent
        // are 8 normalized, still too short.
        assert!(Password::parse("abcdef\u{b8}".into()).is_err());
        // U+FDFA is 3 bytes that normalize to 33: five of them are over the limit.
        assert!(Password::parse("\u{fdfa}".repeat(5)).is_err());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let password = Password::parse("correct horse battery".into()).unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }
}
