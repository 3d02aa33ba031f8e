/// An optional display name: trimmed, at most 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 100;

    /// An empty or all-blank name means "no name".
    pub fn parse(raw: &str) -> Result<Option<Self>, &'static str> {
        let name = raw.trim();
        if name.is_empty() {
            return Ok(None);
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err("must be at most 100 characters");
        }
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters");
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
}
