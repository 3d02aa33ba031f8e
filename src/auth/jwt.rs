use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::Role;

/// Clock skew tolerated between instances when checking `exp` and `iat` (RFC 8725 §3.10 asks for
/// as little as possible; the product limit is 30 s).
const LEEWAY_SECS: u64 = 10;

/// `typ` of every access token (RFC 9068), so no other JWT signed with the same key passes.
const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// An HS256 signing secret of at least 256 bits.
pub struct JwtSecret(Vec<u8>);

impl JwtSecret {
    pub const MIN_BYTES: usize = 32;

    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.len() < Self::MIN_BYTES {
            return Err(format!(
                "the JWT secret must be at least {} bytes long, got {}",
                Self::MIN_BYTES,
                secret.len()
            ));
        }
        if let Some(why) = super::secret_strength::weakness(secret) {
            return Err(format!(
                "the JWT secret is too weak ({why}); generate a random one, for example with \
                 `openssl rand -hex 32`"
            ));
        }
        Ok(Self(secret.as_bytes().to_vec()))
    }

    /// A key for another purpose, derived so that it reveals nothing about the secret.
    pub(super) fn derive_key(&self, purpose: &[u8]) -> [u8; 32] {
        let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(&self.0)
            .expect("HMAC accepts keys of any length");
        hmac::Mac::update(&mut mac, purpose);
        hmac::Mac::finalize(mac).into_bytes().into()
    }

    /// A short, stable fingerprint used as the `kid` of a lone secret: it changes when the
    /// secret does, so a token signed with an old secret is told apart before its signature is
    /// even checked.
    fn fingerprint(&self) -> String {
        let digest = Sha256::digest([b"latchkey-kid:".as_slice(), &self.0].concat());
        hex::encode(&digest[..8])
    }
}

/// The signing keys, each with its `kid`. The first signs new tokens; a token signed with any of
/// them verifies. Rotation: put a new key first, keep the old one listed until the access
/// tokens it signed have expired, then drop it.
pub struct KeySet {
    keys: Vec<(String, JwtSecret)>,
}

impl KeySet {
    /// One secret, named by its fingerprint.
    pub fn single(secret: JwtSecret) -> Self {
        Self {
            keys: vec![(secret.fingerprint(), secret)],
        }
    }

    /// `kid:secret` entries, the signing key first.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut keys: Vec<(String, JwtSecret)> = Vec::new();
        for entry in entries.iter().filter(|entry| !entry.trim().is_empty()) {
            let (kid, secret) = entry
                .split_once(':')
                .ok_or_else(|| "each key must be written kid:secret".to_owned())?;
            let kid = kid.trim();
            if kid.is_empty()
                || !kid
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(format!("{kid:?} is not a key id (letters, digits, - _ .)"));
            }
            if keys.iter().any(|(known, _)| known == kid) {
                return Err(format!("the key id {kid:?} is listed twice"));
            }
            let secret = JwtSecret::new(secret).map_err(|why| format!("key {kid:?}: {why}"))?;
            keys.push((kid.to_owned(), secret));
        }
        if keys.is_empty() {
            return Err("no keys are listed".to_owned());
        }
        Ok(Self { keys })
    }

    /// The key new tokens are signed with.
    pub fn signing_secret(&self) -> &JwtSecret {
        &self.keys[0].1
    }
}

/// The claims of a Latchkey access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The configured audience (`LATCHKEY_AUDIENCE`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    pub sub: Uuid,
    pub sid: Uuid,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
}

pub struct IssuedAccessToken {
    pub token: String,
    pub expires_in: u64,
}

/// Why a presented access token was refused. The text goes into `error_description`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    Expired,
    BadSignature,
    UnknownKey,
    InvalidClaims,
}

impl TokenError {
    pub fn description(self) -> &'static str {
        match self {
            Self::Malformed => "the access token is malformed",
            Self::Expired => "the access token has expired",
            Self::BadSignature => "the access token signature is invalid",
            Self::UnknownKey => "the access token was signed with an unknown key",
            Self::InvalidClaims => "the access token has invalid claims",
        }
    }
}

/// Issues and verifies HS256 access tokens. Verification reads nothing but the token.
pub struct AccessTokens {
    kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
    issuer: String,
    audience: Option<String>,
    ttl: Duration,
}

impl AccessTokens {
    pub fn new(keys: &KeySet, issuer: &str, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss"]);
        let (kid, signing) = &keys.keys[0];
        Self {
            kid: kid.clone(),
            encoding: EncodingKey::from_secret(&signing.0),
            // A key is also known by its fingerprint, the `kid` it had as a lone
            // LATCHKEY_JWT_SECRET, so moving that secret into a key list logs nobody out.
            decoding: keys
                .keys
                .iter()
                .flat_map(|(kid, secret)| {
                    let key = DecodingKey::from_secret(&secret.0);
                    [(secret.fingerprint(), key.clone()), (kid.clone(), key)]
                })
                .collect(),
            validation,
            issuer: issuer.to_owned(),
            audience: None,
            ttl,
        }
    }

    /// Puts `audience` into issued tokens as `aud`, and requires it of every token verified
    /// (RFC 8725 §3.9: a token meant for one service must not be accepted by another).
    pub fn with_audience(mut self, audience: Option<&str>) -> Self {
        if let Some(audience) = audience {
            self.validation.set_audience(&[audience]);
            self.validation
                .set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        }
        self.audience = audience.map(str::to_owned);
        self
    }

    /// How long after issue an access token can still pass verification: its lifetime plus the
    /// clock-skew leeway.
    pub fn longest_validity(&self) -> Duration {
        self.ttl + Duration::from_secs(LEEWAY_SECS)
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        role: Role,
    ) -> Result<IssuedAccessToken, jsonwebtoken::errors::Error> {
        let now = Utc::now().timestamp();
        let ttl = self.ttl.as_secs();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id,
            sid: session_id,
            role,
            iat: now,
            exp: now.saturating_add_unsigned(ttl),
            jti: Uuid::new_v4(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)?;
        Ok(IssuedAccessToken {
            token,
            expires_in: ttl,
        })
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::HS256 || header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(TokenError::Malformed);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding.get(kid))
            .ok_or(TokenError::UnknownKey)?;
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation).map_err(|err| {
                match err.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::InvalidSignature => TokenError::BadSignature,
                    ErrorKind::InvalidIssuer
                    | ErrorKind::InvalidAudience
                    | ErrorKind::MissingRequiredClaim(_)
                    | ErrorKind::ImmatureSignature => TokenError::InvalidClaims,
                    _ => TokenError::Malformed,
                }
            })?;
        let issued_in_future = data.claims.iat > Utc::now().timestamp() + LEEWAY_SECS as i64;
        if issued_in_future {
            return Err(TokenError::InvalidClaims);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests;
