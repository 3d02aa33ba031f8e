use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePublicKey;

use super::*;

const ASYMMETRIC: [JwtAlgorithm; 2] = [JwtAlgorithm::EdDSA, JwtAlgorithm::ES256];

#[test]
fn algorithms_parse_by_name_and_nothing_else() {
    assert_eq!("EdDSA".parse(), Ok(JwtAlgorithm::EdDSA));
    assert_eq!("es256".parse(), Ok(JwtAlgorithm::ES256));
    assert_eq!("HS256".parse(), Ok(JwtAlgorithm::HS256));
    for bad in ["", "RS256", "none", "HS512"] {
        assert!(bad.parse::<JwtAlgorithm>().is_err(), "{bad} was accepted");
    }
}

/// RFC 8037 appendix A.1 and A.3: the Ed25519 key and its RFC 7638 thumbprint.
#[test]
fn the_kid_is_the_rfc_7638_thumbprint() {
    let d = URL_SAFE_NO_PAD
        .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
        .unwrap();
    let signing = ed25519_dalek::SigningKey::from_bytes(&d.try_into().unwrap());
    let der = signing.to_pkcs8_der().unwrap();
    let key = PrivateKey::from_pkcs8_der(JwtAlgorithm::EdDSA, der.as_bytes()).unwrap();
    assert_eq!(
        key.public().jwk().x,
        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    );
    assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
}

#[test]
fn a_key_read_back_from_its_pem_is_the_same_key() {
    for alg in ASYMMETRIC {
        let key = PrivateKey::generate(alg).unwrap();
        let again = PrivateKey::from_pem(alg, &key.to_pkcs8_pem()).unwrap();
        assert_eq!(again.kid(), key.kid());
        assert_eq!(again.public().jwk(), key.public().jwk());
    }
}

#[test]
fn a_published_key_has_public_members_only() {
    for alg in ASYMMETRIC {
        let jwk = serde_json::to_value(PrivateKey::generate(alg).unwrap().public().jwk()).unwrap();
        let members: Vec<&str> = jwk
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for member in &members {
            assert!(
                ["kty", "crv", "x", "y", "kid", "alg", "use"].contains(member),
                "{alg}: {member} is published"
            );
        }
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["alg"], alg.as_str());
        assert_eq!(jwk["y"].is_string(), alg == JwtAlgorithm::ES256);
    }
}

#[test]
fn public_key_files_are_read_for_next_and_previous_keys() {
    let key = PrivateKey::generate(JwtAlgorithm::EdDSA).unwrap();
    let signing = ed25519_dalek::SigningKey::from_pkcs8_der(key.pkcs8_der()).unwrap();
    let public_pem = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let from_public = any_key_from_pem(JwtAlgorithm::EdDSA, &public_pem).unwrap();
    assert_eq!(from_public.kid(), key.kid());
    let from_private = any_key_from_pem(JwtAlgorithm::EdDSA, &key.to_pkcs8_pem()).unwrap();
    assert_eq!(from_private.kid(), key.kid());
}

#[test]
fn a_key_of_another_algorithm_or_garbage_is_refused_without_echoing_it() {
    let ed = PrivateKey::generate(JwtAlgorithm::EdDSA)
        .unwrap()
        .to_pkcs8_pem();
    let ec = PrivateKey::generate(JwtAlgorithm::ES256)
        .unwrap()
        .to_pkcs8_pem();
    for (alg, pem) in [
        (JwtAlgorithm::ES256, ed.as_str()),
        (JwtAlgorithm::EdDSA, ec.as_str()),
        (
            JwtAlgorithm::EdDSA,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ),
        (JwtAlgorithm::HS256, ed.as_str()),
    ] {
        let why = PrivateKey::from_pem(alg, pem).unwrap_err();
        assert!(!why.contains("BEGIN") && !why.contains("AAAA"), "{why}");
    }
}

#[test]
fn an_es256_key_is_read_from_sec1_as_openssl_ecparam_writes_it() {
    use p256::elliptic_curve::SecretKey;
    let key = PrivateKey::generate(JwtAlgorithm::ES256).unwrap();
    let secret: SecretKey<p256::NistP256> = SecretKey::from_pkcs8_der(key.pkcs8_der()).unwrap();
    let sec1 = secret.to_sec1_pem(LineEnding::LF).unwrap();
    assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    let again = PrivateKey::from_pem(JwtAlgorithm::ES256, &sec1).unwrap();
    assert_eq!(again.kid(), key.kid());
    let public_pem = secret
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let public = any_key_from_pem(JwtAlgorithm::ES256, &public_pem).unwrap();
    assert_eq!(public.kid(), key.kid());
}
