use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use uuid::Uuid;

use super::JwtSecret;

type HmacSha256 = Hmac<Sha256>;

/// The parts of a refresh token, in order: its session, its generation (how many rotations came
/// before it), 256 secret bits, and a tag that proves the server minted the first three.
const SESSION_LEN: usize = 16;
const GENERATION_LEN: usize = 4;
const SECRET_LEN: usize = 32;
const TAG_LEN: usize = 16;
const TOKEN_LEN: usize = SESSION_LEN + GENERATION_LEN + SECRET_LEN + TAG_LEN;

/// An opaque refresh token, base64url-encoded. Only [`RefreshToken::hash`] is ever stored.
pub struct RefreshToken(String);

impl RefreshToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn hash(&self) -> String {
        super::token_hash(&self.0)
    }
}

/// What a presented refresh token claims to be, read without the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedRefresh {
    /// The lookup key (see [`super::token_hash`]).
    pub hash: String,
    pub form: RefreshForm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshForm {
    /// Anything that is not a token of the current form, among them tokens issued before
    /// sessions counted their generations (32 random bytes, each with a row of its own in
    /// `refresh_tokens`): looked up by hash.
    Legacy,
    /// A token of the current form. Its session keeps only the live token's hash and generation;
    /// an older generation is an ancestor of the live token, provided the tag is `authentic`
    /// (else it could be made up by anyone who knows the session's id).
    Chained {
        session_id: Uuid,
        generation: u32,
        authentic: bool,
    },
}

/// Mints and reads refresh tokens.
///
/// A session's first token has random secret bits. Each later one's are the HMAC of its
/// predecessor under a server key, so when two tabs refresh with the same token at once, the
/// server can hand the second one the very token the first got, without storing any usable
/// token: the database holds only the live token's hash, and the successor of a stolen old token
/// cannot be computed without the key.
pub struct RefreshTokens {
    /// Keyed once; each derivation works on a clone.
    successor_mac: HmacSha256,
    tag_mac: HmacSha256,
}

impl RefreshTokens {
    /// The keys are made from the signing secret. After the secret is rotated, a token rotated
    /// moments before is no longer re-issued (which costs that client one login), and an
    /// ancestor minted under the old secret is refused as invalid rather than recognised as
    /// reuse; live tokens are found by hash and keep working.
    pub fn new(secret: &JwtSecret) -> Self {
        let mac = |purpose: &[u8]| {
            HmacSha256::new_from_slice(&secret.derive_key(purpose))
                .expect("HMAC accepts keys of any length")
        };
        Self {
            successor_mac: mac(b"latchkey refresh-token successor v1"),
            tag_mac: mac(b"latchkey refresh-token tag v2"),
        }
    }

    /// The first token of a session: 256 bits from the operating system's CSPRNG.
    pub fn generate(&self, session_id: Uuid) -> RefreshToken {
        let mut secret = [0_u8; SECRET_LEN];
        OsRng.fill_bytes(&mut secret);
        self.mint(session_id, 0, &secret)
    }

    /// The token that replaces `presented`, the session's token of generation `generation - 1`,
    /// when it is rotated.
    pub fn successor(&self, presented: &str, session_id: Uuid, generation: u32) -> RefreshToken {
        let mut mac = self.successor_mac.clone();
        mac.update(presented.as_bytes());
        self.mint(session_id, generation, &mac.finalize().into_bytes())
    }

    pub fn read(&self, presented: &str) -> PresentedRefresh {
        let hash = super::token_hash(presented);
        let form = match URL_SAFE_NO_PAD.decode(presented) {
            Ok(bytes) if bytes.len() == TOKEN_LEN => {
                let (body, tag) = bytes.split_at(TOKEN_LEN - TAG_LEN);
                let (session, rest) = body.split_at(SESSION_LEN);
                let (generation, _) = rest.split_at(GENERATION_LEN);
                let mut mac = self.tag_mac.clone();
                mac.update(body);
                RefreshForm::Chained {
                    session_id: Uuid::from_slice(session).unwrap_or_default(),
                    generation: u32::from_be_bytes(generation.try_into().unwrap_or_default()),
                    authentic: mac.verify_truncated_left(tag).is_ok(),
                }
            }
            _ => RefreshForm::Legacy,
        };
        PresentedRefresh { hash, form }
    }

    fn mint(&self, session_id: Uuid, generation: u32, secret: &[u8]) -> RefreshToken {
        let mut bytes = Vec::with_capacity(TOKEN_LEN);
        bytes.extend_from_slice(session_id.as_bytes());
        bytes.extend_from_slice(&generation.to_be_bytes());
        bytes.extend_from_slice(secret);
        let mut mac = self.tag_mac.clone();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes()[..TAG_LEN]);
        RefreshToken(URL_SAFE_NO_PAD.encode(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(secret: &str) -> RefreshTokens {
        RefreshTokens::new(&JwtSecret::new(secret).unwrap())
    }

    const OURS: &str = "kQ7vN2xR9pL4mW8zT3bY6cH1dJ5fG0sA";

    #[test]
    fn a_token_names_its_session_and_generation_and_is_base64url() {
        let tokens = tokens(OURS);
        let session = Uuid::new_v4();
        let a = tokens.generate(session);
        assert_ne!(a.as_str(), tokens.generate(session).as_str());
        assert_eq!(a.as_str().len(), 91);
        assert!(
            a.as_str()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        let read = tokens.read(a.as_str());
        assert_eq!(read.hash, a.hash());
        assert_eq!(
            read.form,
            RefreshForm::Chained {
                session_id: session,
                generation: 0,
                authentic: true
            }
        );
    }

    #[test]
    fn the_stored_hash_is_sha256_of_the_token() {
        let token = tokens(OURS).generate(Uuid::new_v4());
        assert_eq!(token.hash(), super::super::token_hash(token.as_str()));
        assert_eq!(token.hash().len(), 64);
    }

    #[test]
    fn a_successor_is_deterministic_per_key_and_unlike_its_parent() {
        let ours = tokens(OURS);
        let theirs = tokens("Zt4Gm8Qx1Rv6Lc3Np9Wk2Hy7Bd5Jf0Ps");
        let session = Uuid::new_v4();
        let parent = ours.generate(session);
        let child = ours.successor(parent.as_str(), session, 1);
        assert_eq!(
            child.as_str(),
            ours.successor(parent.as_str(), session, 1).as_str()
        );
        assert_ne!(child.as_str(), parent.as_str());
        assert_ne!(
            child.as_str(),
            theirs.successor(parent.as_str(), session, 1).as_str()
        );
        assert!(matches!(
            ours.read(child.as_str()).form,
            RefreshForm::Chained {
                generation: 1,
                authentic: true,
                ..
            }
        ));
    }

    #[test]
    fn a_token_with_a_changed_session_or_generation_or_another_keys_tag_is_not_authentic() {
        let ours = tokens(OURS);
        let theirs = tokens("Zt4Gm8Qx1Rv6Lc3Np9Wk2Hy7Bd5Jf0Ps");
        let token = ours.generate(Uuid::new_v4());
        let bytes = URL_SAFE_NO_PAD.decode(token.as_str()).unwrap();
        for at in [0, SESSION_LEN + GENERATION_LEN - 1, TOKEN_LEN - 1] {
            let mut changed = bytes.clone();
            changed[at] ^= 1;
            let form = ours.read(&URL_SAFE_NO_PAD.encode(&changed)).form;
            assert!(
                matches!(
                    form,
                    RefreshForm::Chained {
                        authentic: false,
                        ..
                    }
                ),
                "{at}"
            );
        }
        assert!(matches!(
            theirs.read(token.as_str()).form,
            RefreshForm::Chained {
                authentic: false,
                ..
            }
        ));
    }

    #[test]
    fn a_token_of_the_old_form_or_any_other_string_is_read_as_legacy() {
        let tokens = tokens(OURS);
        for presented in [super::super::random_token(), "".to_owned(), "!".repeat(91)] {
            assert_eq!(tokens.read(&presented).form, RefreshForm::Legacy);
        }
    }
}
