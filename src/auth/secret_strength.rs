//! Refuses signing secrets that are long enough but guessable: a secret only has the strength of
//! its entropy, and an HS256 secret that can be guessed lets anyone mint an admin token.

/// Fewest different characters a secret must use. 32 random hex digits use 14 on average and
/// fewer than 8 about never; a random base64 string uses more.
const MIN_DISTINCT: usize = 8;

/// Fragments of the placeholders that example files and tutorials ship, compared without case
/// and without `-`, `_`, `.` and spaces.
const PLACEHOLDERS: [&str; 9] = [
    "changeme",
    "replaceme",
    "placeholder",
    "yoursecret",
    "secretkey",
    "example",
    "password",
    "123456",
    "qwerty",
];

/// Why `secret` is too weak to sign tokens, if it is. Meant for operators' secrets, so it errs
/// towards refusing: a random secret passes every rule with overwhelming probability.
pub fn weakness(secret: &str) -> Option<&'static str> {
    let bytes = secret.as_bytes();
    let mut distinct = bytes.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_DISTINCT {
        return Some("it uses too few different characters");
    }
    if is_mostly_repeated(bytes) {
        return Some("it repeats itself");
    }
    let folded: String = secret
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    if PLACEHOLDERS.iter().any(|word| folded.contains(word)) {
        return Some("it contains a placeholder or a common word");
    }
    None
}

/// Whether shifting the secret by some period lines at least 90 % of it up with itself:
/// `"changeme" * 4`, `"ab" * 16`, or a phrase written twice with a suffix.
fn is_mostly_repeated(bytes: &[u8]) -> bool {
    (1..=bytes.len() / 2).any(|period| {
        let compared = bytes.len() - period;
        let equal = bytes
            .iter()
            .zip(&bytes[period..])
            .filter(|(a, b)| a == b)
            .count();
        equal * 10 >= compared * 9
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivial_and_placeholder_secrets_are_weak() {
        for weak in [
            "a".repeat(32),
            "changeme".repeat(4),
            "change-me-change-me-change-me-change-me".to_owned(),
            "0123456789abcdef0123456789abcdef".to_owned(),
            "test-secret-test-secret-test-secret!".to_owned(),
            "abababababababababababababababab".to_owned(),
            "my-Example-Jwt-Signing-Key-For-Prod-2024".to_owned(),
            "Please_Change_Me_Before_Deploying!!".to_owned(),
        ] {
            assert!(weakness(&weak).is_some(), "{weak:?} passed");
        }
    }

    #[test]
    fn random_secrets_pass() {
        for _ in 0..1000 {
            let token = crate::auth::random_token();
            assert_eq!(weakness(&token), None, "{token:?}");
            let mut bytes = [0_u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
            let hex = hex::encode(bytes);
            assert_eq!(weakness(&hex), None, "{hex:?}");
        }
        assert_eq!(weakness("Vq3#kP9!mZ2@rT7$wX5&bN8*cL4^dF6%"), None);
    }
}
