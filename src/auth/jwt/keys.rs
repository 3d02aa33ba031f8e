//! Asymmetric access-token keys (Ed25519 for EdDSA, P-256 for ES256): parsed once from PEM or
//! generated, each named by its RFC 7638 JWK thumbprint, so the same key always has the same
//! `kid` on every instance whoever configured it.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, LineEnding};
use rand::rngs::OsRng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The algorithm access tokens are signed with (`LATCHKEY_JWT_ALG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with the shared secret: every verifier can also mint tokens.
    HS256,
    /// Ed25519 signatures (RFC 8037).
    EdDSA,
    /// ECDSA on P-256 with SHA-256.
    ES256,
}

impl JwtAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
        }
    }

    pub fn is_asymmetric(self) -> bool {
        self != Self::HS256
    }

    pub(super) fn header_alg(self) -> Algorithm {
        match self {
            Self::HS256 => Algorithm::HS256,
            Self::EdDSA => Algorithm::EdDSA,
            Self::ES256 => Algorithm::ES256,
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JwtAlgorithm {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        [Self::HS256, Self::EdDSA, Self::ES256]
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| format!("{text:?} is not one of HS256, EdDSA, ES256"))
    }
}

/// A public key as RFC 7517 publishes it: public members only, by construction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicJwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub x: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    pub kid: String,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
}

/// A key that verifies tokens: its `kid`, its JWK and the key jsonwebtoken checks with.
#[derive(Clone)]
pub struct PublicKey {
    pub(super) jwk: PublicJwk,
    pub(super) decoding: DecodingKey,
}

impl PublicKey {
    /// Ed25519 public key bytes, or a P-256 point's affine coordinates.
    fn new(alg: JwtAlgorithm, x: &[u8], y: Option<&[u8]>) -> Result<Self, String> {
        let x = URL_SAFE_NO_PAD.encode(x);
        let y = y.map(|y| URL_SAFE_NO_PAD.encode(y));
        let (kty, crv, decoding) = match (alg, &y) {
            (JwtAlgorithm::EdDSA, None) => ("OKP", "Ed25519", DecodingKey::from_ed_components(&x)),
            (JwtAlgorithm::ES256, Some(y)) => {
                ("EC", "P-256", DecodingKey::from_ec_components(&x, y))
            }
            _ => return Err(format!("not a public key for {alg}")),
        };
        let decoding = decoding.map_err(|_| format!("not a public key for {alg}"))?;
        // RFC 7638 §3.2: the required members only, in lexicographic order, no whitespace.
        let thumbprint_input = match &y {
            None => format!(r#"{{"crv":"{crv}","kty":"{kty}","x":"{x}"}}"#),
            Some(y) => format!(r#"{{"crv":"{crv}","kty":"{kty}","x":"{x}","y":"{y}"}}"#),
        };
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));
        let jwk = PublicJwk {
            kty,
            crv,
            x,
            y,
            kid,
            alg: alg.as_str(),
            use_: "sig",
        };
        Ok(Self { jwk, decoding })
    }

    pub fn kid(&self) -> &str {
        &self.jwk.kid
    }

    pub fn jwk(&self) -> &PublicJwk {
        &self.jwk
    }

    /// A `PUBLIC KEY` (SubjectPublicKeyInfo) PEM of `alg`'s curve.
    pub fn from_pem(alg: JwtAlgorithm, pem: &str) -> Result<Self, String> {
        let refused = || format!("not an {alg} public key in PEM (SubjectPublicKeyInfo)");
        match alg {
            JwtAlgorithm::EdDSA => {
                let key =
                    ed25519_dalek::VerifyingKey::from_public_key_pem(pem).map_err(|_| refused())?;
                Self::new(alg, key.as_bytes(), None)
            }
            JwtAlgorithm::ES256 => {
                let key = p256::PublicKey::from_public_key_pem(pem).map_err(|_| refused())?;
                Self::from_p256(&key)
            }
            JwtAlgorithm::HS256 => Err(refused()),
        }
    }

    fn from_p256(key: &p256::PublicKey) -> Result<Self, String> {
        let point = key.to_encoded_point(false);
        match (point.x(), point.y()) {
            (Some(x), Some(y)) => Self::new(JwtAlgorithm::ES256, x, Some(y)),
            _ => Err("not a P-256 public key".to_owned()),
        }
    }
}

/// A key that signs: its public half and the PKCS#8 document it was read from. Its `Debug`
/// shows the `kid` only.
#[derive(Clone)]
pub struct PrivateKey {
    public: PublicKey,
    pkcs8: Zeroizing<Vec<u8>>,
    pub(super) encoding: EncodingKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.public.kid())
    }
}

impl PrivateKey {
    /// A new random key for `alg` from the operating system's CSPRNG.
    pub fn generate(alg: JwtAlgorithm) -> Result<Self, String> {
        let der = match alg {
            JwtAlgorithm::EdDSA => ed25519_dalek::SigningKey::generate(&mut OsRng).to_pkcs8_der(),
            JwtAlgorithm::ES256 => p256::SecretKey::random(&mut OsRng).to_pkcs8_der(),
            JwtAlgorithm::HS256 => return Err("HS256 has no key pair".to_owned()),
        }
        .map_err(|_| format!("could not encode a new {alg} key"))?;
        Self::from_pkcs8_der(alg, der.as_bytes())
    }

    /// A PKCS#8 DER document (the form generated keys are stored in).
    pub fn from_pkcs8_der(alg: JwtAlgorithm, der: &[u8]) -> Result<Self, String> {
        let refused = || format!("not an {alg} private key in PKCS#8");
        let public = match alg {
            JwtAlgorithm::EdDSA => {
                let key = ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(|_| refused())?;
                PublicKey::new(alg, key.verifying_key().as_bytes(), None)?
            }
            JwtAlgorithm::ES256 => {
                let key = p256::SecretKey::from_pkcs8_der(der).map_err(|_| refused())?;
                PublicKey::from_p256(&key.public_key())?
            }
            JwtAlgorithm::HS256 => return Err(refused()),
        };
        let encoding = match alg {
            JwtAlgorithm::EdDSA => EncodingKey::from_ed_der(der),
            _ => EncodingKey::from_ec_der(der),
        };
        Ok(Self {
            public,
            pkcs8: Zeroizing::new(der.to_vec()),
            encoding,
        })
    }

    /// A `PRIVATE KEY` (PKCS#8) PEM, or for ES256 also an `EC PRIVATE KEY` (SEC1) one, as
    /// `openssl genpkey` and `openssl ecparam -genkey` write them.
    pub fn from_pem(alg: JwtAlgorithm, pem: &str) -> Result<Self, String> {
        let refused = || format!("not an {alg} private key in PEM (PKCS#8)");
        let der = match alg {
            JwtAlgorithm::EdDSA => ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
                .map_err(|_| refused())?
                .to_pkcs8_der(),
            JwtAlgorithm::ES256 => p256::SecretKey::from_pkcs8_pem(pem)
                .or_else(|_| p256::SecretKey::from_sec1_pem(pem))
                .map_err(|_| refused())?
                .to_pkcs8_der(),
            JwtAlgorithm::HS256 => return Err(refused()),
        }
        .map_err(|_| refused())?;
        Self::from_pkcs8_der(alg, der.as_bytes())
    }

    /// The key as a PKCS#8 PEM, for writing a key file (tests, tools). Secret: never log it.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        let label = "PRIVATE KEY";
        p256::pkcs8::der::pem::encode_string(label, LineEnding::LF, &self.pkcs8)
            .map(Zeroizing::new)
            .unwrap_or_default()
    }

    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn kid(&self) -> &str {
        self.public.kid()
    }
}

/// A key file that may hold either half: a next or previous key needs only its public half.
pub fn any_key_from_pem(alg: JwtAlgorithm, pem: &str) -> Result<PublicKey, String> {
    if pem.contains("PUBLIC KEY-----") {
        PublicKey::from_pem(alg, pem)
    } else {
        PrivateKey::from_pem(alg, pem).map(|key| key.public)
    }
}

#[cfg(test)]
mod tests;
