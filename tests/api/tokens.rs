//! Access tokens that are forged, tampered with, unsigned or expired are all refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use latchkey::auth::JwtAlgorithm;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TEST_SECRET, TestApp, assert_problem, spawn_app_with};

async fn app_with_known_secret() -> (TestApp, Value) {
    // These tests forge HS256 tokens with the secret, whatever TEST_JWT_ALG says.
    let app = spawn_app_with(|config| {
        config.tokens.jwt_alg = JwtAlgorithm::HS256;
        config.tokens.jwt_private_key = None;
        config.tokens.jwt_secret = Some(TEST_SECRET.into());
    })
    .await;
    let tokens = app.signed_up("ada@example.com").await;
    (app, tokens)
}

fn parts(token: &str) -> (Value, Value) {
    let mut segments = token.split('.');
    let mut decode = || -> Value {
        let bytes = URL_SAFE_NO_PAD.decode(segments.next().unwrap()).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    (decode(), decode())
}

fn sign(header: &Value, claims: &Value, secret: &str) -> String {
    let header: Header = serde_json::from_value(header.clone()).unwrap();
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn assert_refused(app: &TestApp, token: &str) {
    let response = app.me(token).await;
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with(
            "Bearer realm=\"latchkey\", error=\"invalid_token\", error_description=\""
        ),
        "challenge was {challenge}"
    );
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn issued_tokens_carry_the_documented_header_and_claims() {
    let (_app, tokens) = app_with_known_secret().await;
    let (header, claims) = parts(tokens["access_token"].as_str().unwrap());
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "at+jwt");
    assert!(header["kid"].is_string());
    assert_eq!(claims["iss"], "latchkey");
    assert_eq!(claims["sub"], tokens["user"]["id"]);
    assert_eq!(claims["role"], "user");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    for claim in ["sid", "jti"] {
        assert!(uuid::Uuid::parse_str(claims[claim].as_str().unwrap()).is_ok());
    }
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_refused() {
    let (app, tokens) = app_with_known_secret().await;
    let (header, claims) = parts(tokens["access_token"].as_str().unwrap());
    let forged = sign(&header, &claims, "some-other-secret-some-other-secret!");
    assert_refused(&app, &forged).await;
}

#[tokio::test]
async fn a_token_with_a_changed_payload_is_refused() {
    let (app, tokens) = app_with_known_secret().await;
    let token = tokens["access_token"].as_str().unwrap();
    let (_, mut claims) = parts(token);
    claims["role"] = json!("admin");
    let segments: Vec<&str> = token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        segments[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        segments[2]
    );
    assert_refused(&app, &tampered).await;
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_refused() {
    let (app, tokens) = app_with_known_secret().await;
    let (mut header, claims) = parts(tokens["access_token"].as_str().unwrap());
    header["alg"] = json!("none");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    assert_refused(&app, &unsigned).await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let (app, tokens) = app_with_known_secret().await;
    let (header, mut claims) = parts(tokens["access_token"].as_str().unwrap());
    let now = chrono::Utc::now().timestamp();
    claims["iat"] = json!(now - 3600);
    claims["exp"] = json!(now - 1800);
    let expired = sign(&header, &claims, TEST_SECRET);
    let response = app.me(&expired).await;
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("expired"), "challenge was {challenge}");
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn a_correctly_signed_token_without_sid_or_from_another_issuer_is_refused() {
    let (app, tokens) = app_with_known_secret().await;
    let (header, claims) = parts(tokens["access_token"].as_str().unwrap());
    let mut no_sid = claims.clone();
    no_sid.as_object_mut().unwrap().remove("sid");
    assert_refused(&app, &sign(&header, &no_sid, TEST_SECRET)).await;
    let mut foreign = claims.clone();
    foreign["iss"] = json!("someone-else");
    assert_refused(&app, &sign(&header, &foreign, TEST_SECRET)).await;
    let mut hs512 = header.clone();
    hs512["alg"] = json!("HS512");
    assert_refused(&app, &sign(&hs512, &claims, TEST_SECRET)).await;
}

#[tokio::test]
async fn garbage_and_oversized_bearer_tokens_are_refused() {
    let (app, _) = app_with_known_secret().await;
    assert_refused(&app, "not-a-jwt").await;
    assert_refused(&app, &"a".repeat(9 * 1024)).await;
}

#[tokio::test]
async fn signing_keys_rotate_across_restarts_without_logging_anyone_out() {
    let first = format!("k1:{TEST_SECRET}");
    let second = format!("k2:{}", "Rb5Nw2Xk8Mv4Qj7Tz1Cy6Hf3Ld9Gp0Sa#");
    let app = spawn_app_with(|config| {
        config.tokens.jwt_alg = JwtAlgorithm::HS256;
        config.tokens.jwt_private_key = None;
        config.tokens.jwt_secret = None;
        config.tokens.jwt_keys = vec![first.clone()];
    })
    .await;
    let before = app.signed_up("ada@example.com").await;
    let old_token = before["access_token"].as_str().unwrap().to_owned();

    // Step 1: the new key signs, the old one still verifies.
    let app = app
        .restart_with(|config| config.tokens.jwt_keys = vec![second.clone(), first.clone()])
        .await;
    assert_eq!(app.me(&old_token).await.status(), StatusCode::OK);
    let renewed: Value = app
        .refresh(before["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let new_token = renewed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(parts(&new_token).0["kid"], "k2");

    // Step 2, once old tokens have expired: the old key goes.
    let app = app
        .restart_with(|config| config.tokens.jwt_keys = vec![second.clone()])
        .await;
    assert_eq!(app.me(&new_token).await.status(), StatusCode::OK);
    let response = app.me(&old_token).await;
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("unknown key"), "{challenge}");
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

/// `LATCHKEY_AUDIENCE`: tokens name the APIs they are for, and an instance accepts only tokens
/// for its audience; with none configured, a token that names one is refused.
#[tokio::test]
async fn an_audience_is_in_every_token_and_a_token_for_another_is_refused() {
    let app =
        spawn_app_with(|config| config.tokens.audience = Some("api.example.com".into())).await;
    let for_api = app.signed_up("ada@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, claims) = parts(&for_api);
    assert_eq!(claims["aud"], "api.example.com");
    assert_eq!(app.me(&for_api).await.status(), StatusCode::OK);

    let app = app
        .restart_with(|config| config.tokens.audience = Some("billing.example.com".into()))
        .await;
    assert_refused(&app, &for_api).await;
    let app = app
        .restart_with(|config| config.tokens.audience = None)
        .await;
    assert_refused(&app, &for_api).await;
    let without = app.login("ada@example.com", PASSWORD).await;
    let body: Value = without.json().await.unwrap();
    let without = body["access_token"].as_str().unwrap().to_owned();
    assert!(parts(&without).1.get("aud").is_none());

    let app = app
        .restart_with(|config| config.tokens.audience = Some("api.example.com".into()))
        .await;
    assert_refused(&app, &without).await;
    assert_eq!(app.me(&for_api).await.status(), StatusCode::OK);
}
