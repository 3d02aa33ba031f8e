//! `GET /.well-known/jwks.json` and asymmetric access tokens (`LATCHKEY_JWT_ALG`): the published
//! keys verify the issued tokens with nothing else, hold no private member, and configured keys
//! are published by state.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use latchkey::Config;
use latchkey::auth::{JwtAlgorithm, PrivateKey};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, is_postgres, spawn_app_with, start_error_with};

/// RFC 7517/7518/8037 public members; anything else (`d`, `p`, `q`, `k`, …) must never appear.
const PUBLIC_MEMBERS: [&str; 7] = ["kty", "crv", "x", "y", "kid", "alg", "use"];

pub async fn jwks(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=300",
        "the key set must be cacheable"
    );
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

pub fn kids(set: &Value) -> Vec<String> {
    set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn header_of(token: &str) -> Header {
    jsonwebtoken::decode_header(token).unwrap()
}

/// What a third-party resource server does: find the token's key in the JWKS by `kid`, check
/// the signature with the key's own `alg`, and the issuer.
fn verify_with_jwks(set: &Value, token: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let set: JwkSet = serde_json::from_value(set.clone()).unwrap();
    let kid = header_of(token).kid.unwrap_or_default();
    let jwk = set.find(&kid).expect("the token's key is not published");
    let alg = jwk
        .common
        .key_algorithm
        .unwrap()
        .to_string()
        .parse()
        .unwrap();
    let mut validation = Validation::new(alg);
    validation.set_issuer(&["latchkey"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &validation)
        .map(|data| data.claims)
}

fn asymmetric(alg: JwtAlgorithm) -> impl FnOnce(&mut Config) {
    move |config| {
        config.tokens.jwt_alg = alg;
        // On PostgreSQL a key must be configured: a fresh one per test.
        config.tokens.jwt_private_key = is_postgres().then(|| {
            PrivateKey::generate(alg)
                .unwrap()
                .to_pkcs8_pem()
                .to_string()
        });
    }
}

#[tokio::test]
async fn with_hs256_the_key_set_is_empty() {
    let app = spawn_app_with(|config| {
        config.tokens.jwt_alg = JwtAlgorithm::HS256;
        config.tokens.jwt_private_key = None;
    })
    .await;
    let set = jwks(&app).await;
    assert_eq!(set, serde_json::json!({ "keys": [] }));
    let token = app.signed_up("ada@example.com").await["access_token"].clone();
    assert_eq!(
        header_of(token.as_str().unwrap()).alg,
        jsonwebtoken::Algorithm::HS256
    );
}

#[tokio::test]
async fn the_published_keys_alone_verify_issued_tokens_and_hold_no_private_member() {
    for alg in [JwtAlgorithm::EdDSA, JwtAlgorithm::ES256] {
        let app = spawn_app_with(asymmetric(alg)).await;
        let tokens = app.signed_up("ada@example.com").await;
        let token = tokens["access_token"].as_str().unwrap();
        let header = header_of(token);
        assert_eq!(format!("{:?}", header.alg), alg.as_str());
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));

        let set = jwks(&app).await;
        for key in set["keys"].as_array().unwrap() {
            for member in key.as_object().unwrap().keys() {
                assert!(
                    PUBLIC_MEMBERS.contains(&member.as_str()),
                    "{alg}: {member} in {key}"
                );
            }
            assert_eq!(key["use"], "sig");
            assert_eq!(key["alg"], alg.as_str());
        }
        let claims = verify_with_jwks(&set, token).unwrap();
        assert_eq!(claims["sub"], tokens["user"]["id"]);
        // The extractor, /v1/me and the gateway check accept it as before.
        assert_eq!(app.me(token).await.status(), StatusCode::OK);
        let verify = app
            .call(reqwest::Method::GET, "/v1/auth/verify", token, None)
            .await;
        assert_eq!(verify.status(), StatusCode::NO_CONTENT);
        // Refresh tokens still work (they are keyed by the HS256 secret).
        let refreshed = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
        assert_eq!(refreshed.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn an_hs256_token_keyed_with_a_published_key_is_refused() {
    let app = spawn_app_with(asymmetric(JwtAlgorithm::EdDSA)).await;
    let token = app.signed_up("ada@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let set = jwks(&app).await;
    let mut header = header_of(&token);
    header.alg = jsonwebtoken::Algorithm::HS256;
    let claims = verify_with_jwks(&set, &token).unwrap();
    let x = set["keys"][0]["x"].as_str().unwrap();
    let confused =
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(x.as_bytes())).unwrap();
    assert_eq!(app.me(&confused).await.status(), StatusCode::UNAUTHORIZED);
}

/// A key file in the target directory, as an operator would write it.
fn key_file(pem: &str) -> std::path::PathBuf {
    let path = std::path::PathBuf::from(format!(
        "{}/key-{}.pem",
        env!("CARGO_TARGET_TMPDIR"),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, pem).unwrap();
    path
}

/// Signs `claims` as Latchkey would, with a key of the operator's.
fn sign_with(key: &PrivateKey, claims: &Value) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(key.pkcs8_der())).unwrap()
}

#[tokio::test]
async fn configured_keys_are_published_by_state_and_next_and_previous_keys_verify() {
    let alg = JwtAlgorithm::EdDSA;
    let [current, next, previous] = [(); 3].map(|_| PrivateKey::generate(alg).unwrap());
    let (current_file, next_file, previous_file) = (
        key_file(&current.to_pkcs8_pem()),
        key_file(&next.to_pkcs8_pem()),
        key_file(&previous.to_pkcs8_pem()),
    );
    let app = spawn_app_with(|config| {
        config.tokens.jwt_alg = alg;
        config.tokens.jwt_private_key = None;
        config.tokens.jwt_private_key_file = Some(current_file);
        config.tokens.jwt_next_key_file = Some(next_file);
        config.tokens.jwt_previous_key_files = vec![previous_file];
    })
    .await;
    assert_eq!(
        kids(&jwks(&app).await),
        [current.kid(), next.kid(), previous.kid()]
    );
    let token = app.signed_up("ada@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(header_of(&token).kid.as_deref(), Some(current.kid()));

    // During a rolling restart another instance may already sign with the next key, and one
    // not yet restarted still with the previous one: both verify here.
    let claims = verify_with_jwks(&jwks(&app).await, &token).unwrap();
    for key in [&next, &previous] {
        let status = app.me(&sign_with(key, &claims)).await.status();
        assert_eq!(status, StatusCode::OK, "a token of the {} key", key.kid());
    }
    let stranger = PrivateKey::generate(alg).unwrap();
    let refused = app.me(&sign_with(&stranger, &claims)).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn unusable_key_configuration_stops_the_start_without_showing_the_key() {
    let ed25519 = PrivateKey::generate(JwtAlgorithm::EdDSA)
        .unwrap()
        .to_pkcs8_pem();
    let ed25519_text = ed25519.to_string();
    let wrong_algorithm = start_error_with(|config| {
        config.tokens.jwt_alg = JwtAlgorithm::ES256;
        config.tokens.jwt_private_key = Some(ed25519_text);
    })
    .await;
    assert!(
        wrong_algorithm.contains("LATCHKEY_JWT_PRIVATE_KEY"),
        "{wrong_algorithm}"
    );
    let body = ed25519.lines().nth(1).unwrap();
    assert!(!wrong_algorithm.contains(body), "{wrong_algorithm}");

    let missing = key_file("");
    std::fs::remove_file(&missing).unwrap();
    let no_file = start_error_with(|config| {
        config.tokens.jwt_alg = JwtAlgorithm::EdDSA;
        config.tokens.jwt_private_key = None;
        config.tokens.jwt_private_key_file = Some(missing);
    })
    .await;
    assert!(
        no_file.contains("LATCHKEY_JWT_PRIVATE_KEY_FILE"),
        "{no_file}"
    );
    assert!(no_file.contains("no such file"), "{no_file}");

    let files_with_hs256 = start_error_with(|config| {
        config.tokens.jwt_alg = JwtAlgorithm::HS256;
        config.tokens.jwt_private_key = Some(ed25519.to_string());
    })
    .await;
    assert!(
        files_with_hs256.contains("LATCHKEY_JWT_ALG"),
        "{files_with_hs256}"
    );
}

#[tokio::test]
async fn on_postgresql_an_asymmetric_algorithm_needs_a_configured_key() {
    if !is_postgres() {
        return;
    }
    let why = start_error_with(|config| {
        config.tokens.jwt_alg = JwtAlgorithm::EdDSA;
        config.tokens.jwt_private_key = None;
    })
    .await;
    assert!(why.contains("LATCHKEY_JWT_PRIVATE_KEY_FILE"), "{why}");
    assert!(why.contains("PostgreSQL"), "{why}");
}
