use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// What a user may do. New accounts are always `User`; nothing a client sends can set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

/// Read from a JSON string only. serde's derived enum reader answers anything but a string (a
/// number, `null`, `true`) with a *syntax* error, which the body extractor rightly takes for
/// malformed JSON (400); a role of the wrong type is valid JSON that does not fit (422).
impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RoleName;

        impl Visitor<'_> for RoleName {
            type Value = Role;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`user` or `admin`")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Role, E> {
                Role::parse(value).ok_or_else(|| E::unknown_variant(value, &["user", "admin"]))
            }
        }

        deserializer.deserialize_str(RoleName)
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "user" => Some(Self::User),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_lowercase_names_only() {
        assert_eq!(
            serde_json::from_str::<Role>(r#""admin""#).unwrap(),
            Role::Admin
        );
        assert_eq!(
            serde_json::from_str::<Role>(r#""user""#).unwrap(),
            Role::User
        );
        assert!(serde_json::from_str::<Role>(r#""Admin""#).is_err());
    }

    #[test]
    fn a_role_of_the_wrong_type_is_a_data_error_not_a_syntax_error() {
        for json in ["5", "null", "true", "{}", "[]", r#""root""#] {
            let err = serde_json::from_str::<Role>(json).unwrap_err();
            assert_eq!(err.classify(), serde_json::error::Category::Data, "{json}");
        }
    }
}
