use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use jsonwebtoken::Algorithm;

use super::*;

const SECRET: &str = "kQ7vN2xR9pL4mW8zT3bY6cH1dJ5fG0sA";

fn tokens() -> AccessTokens {
    tokens_signed_with(&KeySet::single(JwtSecret::new(SECRET).unwrap()))
}

fn tokens_signed_with(keys: &KeySet) -> AccessTokens {
    AccessTokens::new(keys, "latchkey", Duration::from_secs(900))
}

/// After a rotation: a new key signs, and [`SECRET`] is still listed as `old`.
fn rotated_tokens() -> AccessTokens {
    tokens_signed_with(
        &KeySet::parse(&[
            "new:u8Ke3Wq6Tn1Yz5Pa9Dr2Lm7Fx4Vc0Hb-".to_owned(),
            format!("old:{SECRET}"),
        ])
        .unwrap(),
    )
}

fn sign(header: &Header, claims: &serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn header(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some(ACCESS_TOKEN_TYPE.into());
    header.kid = Some(kid.into());
    header
}

fn claims(iat: i64, exp: i64) -> serde_json::Value {
    serde_json::json!({
        "iss": "latchkey", "sub": Uuid::new_v4(), "sid": Uuid::new_v4(),
        "role": "user", "iat": iat, "exp": exp, "jti": Uuid::new_v4(),
    })
}

#[test]
fn secrets_shorter_than_32_bytes_are_refused() {
    assert!(JwtSecret::new(&"x".repeat(31)).is_err());
    assert!(JwtSecret::new(SECRET).is_ok());
}

#[test]
fn key_sets_parse_kid_secret_pairs_and_refuse_bad_ones() {
    let keys = KeySet::parse(&[
        format!("new:{SECRET}"),
        "old:Zt4Gm8Qx1Rv6Lc3Np9Wk2Hy7Bd5Jf0Ps".to_owned(),
    ]);
    assert_eq!(keys.unwrap().keys.len(), 2);
    for bad in [
        vec![],
        vec![SECRET.to_owned()],
        vec!["k:short".to_owned()],
        vec![format!(":{SECRET}")],
        vec![format!("a b:{SECRET}")],
        vec![format!("k:{SECRET}"), format!("k:{SECRET}")],
    ] {
        assert!(KeySet::parse(&bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn tokens_of_any_listed_key_verify_and_the_first_key_signs() {
    let old = tokens_signed_with(&KeySet::parse(&[format!("old:{SECRET}")]).unwrap());
    let rotated = rotated_tokens();
    let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
    let from_old = old.issue(user, session, Role::User).unwrap().token;
    assert!(rotated.verify(&from_old).is_ok());
    let from_new = rotated.issue(user, session, Role::User).unwrap().token;
    assert_eq!(
        jsonwebtoken::decode_header(&from_new)
            .unwrap()
            .kid
            .as_deref(),
        Some("new")
    );
    assert_eq!(old.verify(&from_new), Err(TokenError::UnknownKey));
}

#[test]
fn a_lone_secret_moved_into_a_key_list_keeps_its_tokens_valid() {
    let lone = tokens();
    let token = lone
        .issue(Uuid::new_v4(), Uuid::new_v4(), Role::User)
        .unwrap()
        .token;
    assert!(rotated_tokens().verify(&token).is_ok());
}

#[test]
fn an_issued_token_verifies_with_its_claims() {
    let tokens = tokens();
    let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
    let issued = tokens.issue(user, session, Role::Admin).unwrap();
    assert_eq!(issued.expires_in, 900);
    let claims = tokens.verify(&issued.token).unwrap();
    assert_eq!(
        (claims.sub, claims.sid, claims.role),
        (user, session, Role::Admin)
    );
    assert_eq!(claims.exp - claims.iat, 900);
    let header = jsonwebtoken::decode_header(&issued.token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
}

#[test]
fn expired_tokens_are_refused_beyond_the_leeway() {
    let tokens = tokens();
    let now = Utc::now().timestamp();
    let kid = tokens.current_kid();
    let stale = sign(&header(&kid), &claims(now - 1000, now - 60), SECRET);
    assert_eq!(tokens.verify(&stale), Err(TokenError::Expired));
    let within_leeway = sign(&header(&kid), &claims(now - 1000, now - 2), SECRET);
    assert!(tokens.verify(&within_leeway).is_ok());
}

#[test]
fn tokens_from_another_secret_or_issuer_are_refused() {
    let tokens = tokens();
    let now = Utc::now().timestamp();
    let kid = tokens.current_kid();
    let forged = sign(
        &header(&kid),
        &claims(now, now + 60),
        "another-secret-another-secret-xx",
    );
    assert_eq!(tokens.verify(&forged), Err(TokenError::BadSignature));
    let mut foreign = claims(now, now + 60);
    foreign["iss"] = "someone-else".into();
    let foreign = sign(&header(&kid), &foreign, SECRET);
    assert_eq!(tokens.verify(&foreign), Err(TokenError::InvalidClaims));
}

#[test]
fn a_token_issued_in_the_future_is_refused() {
    let tokens = tokens();
    let now = Utc::now().timestamp();
    let token = sign(
        &header(&tokens.current_kid()),
        &claims(now + 3600, now + 7200),
        SECRET,
    );
    assert_eq!(tokens.verify(&token), Err(TokenError::InvalidClaims));
}

#[test]
fn missing_claims_and_unknown_kids_are_refused() {
    let tokens = tokens();
    let now = Utc::now().timestamp();
    let mut no_sid = claims(now, now + 60);
    no_sid.as_object_mut().unwrap().remove("sid");
    let token = sign(&header(&tokens.current_kid()), &no_sid, SECRET);
    assert_eq!(tokens.verify(&token), Err(TokenError::Malformed));
    let token = sign(&header("other-kid"), &claims(now, now + 60), SECRET);
    assert_eq!(tokens.verify(&token), Err(TokenError::UnknownKey));
}

#[test]
fn alg_none_and_garbage_are_refused() {
    let tokens = tokens();
    let now = Utc::now().timestamp();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(now, now + 60).to_string());
    let unsigned = format!("{header}.{payload}.");
    assert_eq!(tokens.verify(&unsigned), Err(TokenError::Malformed));
    for garbage in ["", "a", "a.b.c", "....", "eyJ.eyJ.sig"] {
        assert_eq!(tokens.verify(garbage), Err(TokenError::Malformed));
    }
}

#[test]
fn an_audience_is_put_into_tokens_and_required_of_them() {
    let api = tokens().with_audience(Some("api.example.com"));
    let other = tokens().with_audience(Some("billing.example.com"));
    let none = tokens();
    let (user, session) = (Uuid::new_v4(), Uuid::new_v4());

    let for_api = api.issue(user, session, Role::User).unwrap().token;
    let claims = api.verify(&for_api).unwrap();
    assert_eq!(claims.aud.as_deref(), Some("api.example.com"));
    assert_eq!(other.verify(&for_api), Err(TokenError::InvalidClaims));
    assert_eq!(none.verify(&for_api), Err(TokenError::InvalidClaims));

    let without = none.issue(user, session, Role::User).unwrap().token;
    assert_eq!(none.verify(&without).unwrap().aud, None);
    assert_eq!(api.verify(&without), Err(TokenError::InvalidClaims));
}

fn asymmetric(alg: JwtAlgorithm) -> (SigningKeys, AccessTokens) {
    let keys = SigningKeys::new(alg, PrivateKey::generate(alg).unwrap(), vec![], vec![]).unwrap();
    let tokens = AccessTokens::asymmetric(&keys, "latchkey", Duration::from_secs(900));
    (keys, tokens)
}

#[test]
fn asymmetric_tokens_carry_their_algorithm_and_verify() {
    for alg in [JwtAlgorithm::EdDSA, JwtAlgorithm::ES256] {
        let (keys, tokens) = asymmetric(alg);
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let token = tokens.issue(user, session, Role::User).unwrap().token;
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, alg.header_alg());
        assert_eq!(header.kid.as_deref(), Some(keys.current_kid()));
        assert_eq!(tokens.verify(&token).unwrap().sub, user);
        let jwks: serde_json::Value = serde_json::from_slice(&tokens.jwks()).unwrap();
        assert_eq!(jwks["keys"][0]["kid"], keys.current_kid());
    }
}

#[test]
fn the_algorithm_is_pinned_and_only_published_keys_verify() {
    let (keys, eddsa) = asymmetric(JwtAlgorithm::EdDSA);
    let now = Utc::now().timestamp();
    // An HS256 token naming the EdDSA kid, keyed with the public key bytes: the classic
    // algorithm confusion.
    let x = keys.published()[0].jwk().x.clone();
    let confused = sign(&header(keys.current_kid()), &claims(now, now + 60), &x);
    assert_eq!(eddsa.verify(&confused), Err(TokenError::Malformed));
    let hs256 = tokens().issue(Uuid::new_v4(), Uuid::new_v4(), Role::User);
    assert_eq!(
        eddsa.verify(&hs256.unwrap().token),
        Err(TokenError::Malformed)
    );
    let (_, stranger) = asymmetric(JwtAlgorithm::EdDSA);
    let foreign = stranger.issue(Uuid::new_v4(), Uuid::new_v4(), Role::User);
    assert_eq!(
        eddsa.verify(&foreign.unwrap().token),
        Err(TokenError::UnknownKey)
    );
    let es256 = asymmetric(JwtAlgorithm::ES256).1;
    let token = es256.issue(Uuid::new_v4(), Uuid::new_v4(), Role::User);
    assert_eq!(
        eddsa.verify(&token.unwrap().token),
        Err(TokenError::Malformed)
    );
}

#[test]
fn a_tampered_asymmetric_token_is_refused() {
    let (_, tokens) = asymmetric(JwtAlgorithm::ES256);
    let token = tokens
        .issue(Uuid::new_v4(), Uuid::new_v4(), Role::User)
        .unwrap()
        .token;
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["role"] = "admin".into();
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert_eq!(tokens.verify(&tampered), Err(TokenError::BadSignature));
}

#[test]
fn replaced_keys_sign_and_the_old_current_key_still_verifies_as_previous() {
    let alg = JwtAlgorithm::EdDSA;
    let (old_keys, tokens) = asymmetric(alg);
    let old = tokens
        .issue(Uuid::new_v4(), Uuid::new_v4(), Role::User)
        .unwrap()
        .token;
    let new_key = PrivateKey::generate(alg).unwrap();
    let previous = vec![old_keys.published()[0].clone()];
    let rotated = SigningKeys::new(alg, new_key, vec![], previous).unwrap();
    tokens.replace_keys(&rotated).unwrap();
    assert!(tokens.verify(&old).is_ok());
    assert_eq!(tokens.current_kid(), rotated.current_kid());
    let retired = SigningKeys::new(alg, PrivateKey::generate(alg).unwrap(), vec![], vec![]);
    tokens.replace_keys(&retired.unwrap()).unwrap();
    assert_eq!(tokens.verify(&old), Err(TokenError::UnknownKey));
    let es256 = asymmetric(JwtAlgorithm::ES256).0;
    assert!(tokens.replace_keys(&es256).is_err());
}

#[test]
fn hs256_publishes_an_empty_key_set() {
    assert_eq!(&*tokens().jwks(), br#"{"keys":[]}"#.as_slice());
}
