/// An optional display name: at most 100 characters and no control characters as sent, then
/// trimmed.
///
/// Both rules apply to the value as sent, before trimming, so that they are exactly the
/// contract's `maxLength: 100` and `pattern` (no U+0000–U+001F, U+007F–U+009F): a tab or a newline
/// is refused even at the ends, and surrounding spaces count towards the length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 100;

    /// An empty or all-blank name means "no name".
    pub fn parse(raw: &str) -> Result<Option<Self>, &'static str> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err("must be at most 100 characters");
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        let name = raw.trim();
        if name.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self(name.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_treats_blank_as_absent() {
        assert_eq!(
            DisplayName::parse("  Ada  ").unwrap().unwrap().as_str(),
            "Ada"
        );
        assert_eq!(DisplayName::parse("   ").unwrap(), None);
    }

    #[test]
    fn rejects_long_names_and_control_characters() {
        assert!(DisplayName::parse(&"a".repeat(101)).is_err());
        assert!(DisplayName::parse(&"a".repeat(100)).is_ok());
        assert!(DisplayName::parse("Ada\u{0}Lovelace").is_err());
    }

    #[test]
    fn the_rules_apply_to_the_name_as_sent() {
        // Exactly the contract's schema: its maxLength and pattern see the untrimmed value.
        assert!(DisplayName::parse(&format!(" {} ", "a".repeat(99))).is_err());
        assert!(DisplayName::parse(&format!(" {}", "a".repeat(99))).is_ok());
        for raw in ["\tAda", "Ada\n", "\u{85}Ada", "\u{9f}", "\u{7f}"] {
            assert!(DisplayName::parse(raw).is_err(), "{raw:?} was accepted");
        }
        assert!(DisplayName::parse("Ada\u{a0}King").is_ok());
    }
}
