//! Authentication mechanics: password hashing, access-token keys, refresh tokens and the
//! extractors that put an authenticated caller into a handler's signature.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;

mod extractor;
mod jwt;
mod password;
mod refresh;
mod revocation;

pub use extractor::{AdminUser, AuthUser, VerifiedToken};
pub use jwt::{AccessClaims, AccessTokens, IssuedAccessToken, JwtSecret, TokenError};
pub use password::PasswordHasher;
pub use refresh::{RefreshToken, RefreshTokens};
pub use revocation::RevocationList;

/// 256 bits from the operating system's CSPRNG, base64url-encoded without padding.
pub fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}
