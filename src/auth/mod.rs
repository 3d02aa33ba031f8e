//! Authentication mechanics: password hashing, access-token keys, refresh and device tokens, and
//! the revocation list. The extractors that use them are in
//! the HTTP wing (src/http/extract).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;

mod device;
mod jwt;
mod mfa_keys;
mod password;
mod refresh;
mod revocation;
mod secret_strength;
pub mod totp;

pub use device::{DeviceClaim, DeviceTokens};
pub use jwt::{
    AccessClaims, AccessTokens, IssuedAccessToken, JWKS_MAX_AGE_SECS, JwtAlgorithm, JwtSecret,
    KeyRing, KeySet, KeyState, PrivateKey, PublicJwk, PublicKey, RotateRefused, SigningKeys,
    TokenError, any_key_from_pem,
};
pub use mfa_keys::{AuthMethods, MfaKeys, RECOVERY_CODES};
pub use password::{PasswordHasher, Verification};
pub use refresh::{PresentedRefresh, RefreshForm, RefreshToken, RefreshTokens};
pub use revocation::RevocationList;
pub use totp::{TotpCode, TotpSecret};

/// 256 bits from the operating system's CSPRNG, base64url-encoded without padding.
pub fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored lookup key of a [`random_token`] (refresh, reset and verification tokens): its
/// SHA-256, hex-encoded. A fast hash is right here: the token carries 256 bits of entropy, so
/// there is nothing to brute-force, and a database dump alone cannot be replayed.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}
