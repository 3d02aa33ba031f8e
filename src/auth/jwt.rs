use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::AuthMethods;
use crate::domain::Role;

mod keys;
mod ring;
mod secret;

pub use keys::{JwtAlgorithm, PrivateKey, PublicJwk, PublicKey, any_key_from_pem};
pub use ring::{KeyRing, KeyState, RotateRefused, SigningKeys};
pub use secret::{JwtSecret, KeySet};

/// Clock skew tolerated between instances when checking `exp` and `iat` (RFC 8725 §3.10 asks for
/// as little as possible; the product limit is 30 s).
const LEEWAY_SECS: u64 = 10;

/// How long verifiers may cache `GET /.well-known/jwks.json` (`Cache-Control: max-age`). A next
/// key is published at least this long before it signs.
pub const JWKS_MAX_AGE_SECS: u64 = 300;

/// `typ` of every access token (RFC 9068), so no other JWT signed with the same key passes.
const ACCESS_TOKEN_TYPE: &str = "at+jwt";

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
    /// How the session's user authenticated (RFC 8176): `["pwd"]`, `["pwd","otp"]` or
    /// `["pwd","recovery"]`. Tokens from before it existed read as `["pwd"]`.
    #[serde(default = "password_only")]
    pub amr: Vec<String>,
    /// `aal1`, or `aal2` with a second factor.
    #[serde(default = "aal1")]
    pub aal: String,
    /// When the user last proved a factor (OpenID Connect `auth_time`); a refresh keeps it.
    #[serde(default)]
    pub auth_time: i64,
}

fn password_only() -> Vec<String> {
    AuthMethods::Password.amr()
}

fn aal1() -> String {
    AuthMethods::Password.aal().to_owned()
}

impl AccessClaims {
    /// Whether the token is of level `aal2` and its factor was proved at or after `since`.
    pub fn aal2_since(&self, since: i64) -> bool {
        self.aal == "aal2" && self.auth_time >= since
    }
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

/// The keys in use, swapped whole when generated keys are reloaded.
struct ActiveKeys {
    kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    /// `GET /.well-known/jwks.json`, serialized once.
    jwks: Arc<[u8]>,
}

impl ActiveKeys {
    fn symmetric(keys: &KeySet) -> Self {
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
            jwks: Arc::from(br#"{"keys":[]}"#.as_slice()),
        }
    }

    fn asymmetric(keys: &SigningKeys) -> Self {
        let jwks: Vec<&PublicJwk> = keys.published.iter().map(PublicKey::jwk).collect();
        let jwks = serde_json::to_vec(&serde_json::json!({ "keys": jwks })).unwrap_or_default();
        Self {
            kid: keys.current_kid().to_owned(),
            encoding: keys.current.encoding.clone(),
            decoding: keys
                .published
                .iter()
                .map(|key| (key.kid().to_owned(), key.decoding.clone()))
                .collect(),
            jwks: Arc::from(jwks),
        }
    }
}

/// Issues and verifies access tokens, with the configured algorithm only. Verification reads
/// nothing but the token.
pub struct AccessTokens {
    alg: JwtAlgorithm,
    active: RwLock<Arc<ActiveKeys>>,
    validation: Validation,
    issuer: String,
    audience: Option<String>,
    ttl: Duration,
}

impl AccessTokens {
    /// HS256 with the secrets of `keys`.
    pub fn new(keys: &KeySet, issuer: &str, ttl: Duration) -> Self {
        Self::with_keys(
            JwtAlgorithm::HS256,
            ActiveKeys::symmetric(keys),
            issuer,
            ttl,
        )
    }

    /// EdDSA or ES256: the current key of `keys` signs, every published key verifies.
    pub fn asymmetric(keys: &SigningKeys, issuer: &str, ttl: Duration) -> Self {
        Self::with_keys(keys.alg, ActiveKeys::asymmetric(keys), issuer, ttl)
    }

    fn with_keys(alg: JwtAlgorithm, active: ActiveKeys, issuer: &str, ttl: Duration) -> Self {
        let mut validation = Validation::new(alg.header_alg());
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss"]);
        Self {
            alg,
            active: RwLock::new(Arc::new(active)),
            validation,
            issuer: issuer.to_owned(),
            audience: None,
            ttl,
        }
    }

    /// Swaps in reloaded keys (generated keys after a rotation, or a previous key retired).
    /// Keys of another algorithm are refused: the algorithm is fixed at start.
    pub fn replace_keys(&self, keys: &SigningKeys) -> Result<(), String> {
        if keys.alg != self.alg {
            return Err(format!("the keys are {}, not {}", keys.alg, self.alg));
        }
        let active = Arc::new(ActiveKeys::asymmetric(keys));
        *self.active.write().unwrap_or_else(PoisonError::into_inner) = active;
        Ok(())
    }

    fn active(&self) -> Arc<ActiveKeys> {
        self.active
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn algorithm(&self) -> JwtAlgorithm {
        self.alg
    }

    /// The `kid` new tokens are signed with.
    pub fn current_kid(&self) -> String {
        self.active().kid.clone()
    }

    /// The JWK set of the public keys that verify tokens, as JSON: `{"keys":[]}` for HS256.
    pub fn jwks(&self) -> Arc<[u8]> {
        self.active().jwks.clone()
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
        Self::longest_validity_for(self.ttl)
    }

    /// [`Self::longest_validity`] of tokens that live `ttl`.
    pub fn longest_validity_for(ttl: Duration) -> Duration {
        ttl + Duration::from_secs(LEEWAY_SECS)
    }

    /// A token of a password-only session authenticated now.
    pub fn issue(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        role: Role,
    ) -> Result<IssuedAccessToken, jsonwebtoken::errors::Error> {
        let now = Utc::now().timestamp();
        self.issue_with(user_id, session_id, role, (AuthMethods::Password, now))
    }

    /// A token of a session authenticated with `methods` at `auth_time` (Unix seconds).
    pub fn issue_with(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        role: Role,
        (methods, auth_time): (AuthMethods, i64),
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
            amr: methods.amr(),
            aal: methods.aal().to_owned(),
            auth_time,
        };
        let active = self.active();
        let mut header = Header::new(self.alg.header_alg());
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(active.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &active.encoding)?;
        Ok(IssuedAccessToken {
            token,
            expires_in: ttl,
        })
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != self.alg.header_alg() || header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(TokenError::Malformed);
        }
        let active = self.active();
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| active.decoding.get(kid))
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
