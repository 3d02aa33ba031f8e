use std::fmt;

/// A new password that bcrypt can hash without loss: at least 8 characters and at most 72 bytes.
///
/// bcrypt silently ignores everything after the 72nd byte, so a longer password is refused rather
/// than truncated: otherwise two different passwords would log into the same account.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_BYTES: usize = 72;

    pub fn parse(raw: String) -> Result<Self, &'static str> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err("must be at least 8 characters");
        }
        if raw.len() > Self::MAX_BYTES {
            return Err("must be at most 72 bytes (UTF-8); longer passwords are not truncated");
        }
        Ok(Self(raw))
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
    fn debug_output_hides_the_password() {
        let password = Password::parse("correct horse battery".into()).unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }
}
