//! Rotating generated keys (SQLite, EdDSA/ES256 without key files) with `latchkey keys rotate`:
//! nobody is logged out, every instance on the database follows, the next key is published
//! before it signs, and a retired key's tokens are refused.

use std::time::Duration;

use latchkey::auth::JwtAlgorithm;
use reqwest::StatusCode;
use serde_json::Value;

use crate::cli::latchkey;
use crate::helpers::{TestApp, is_postgres, spawn_app_with};
use crate::jwks::{jwks, kids};

const RING_SETTING: &str = "generated_jwt_keys_eddsa";

/// An EdDSA instance with generated keys, reloading them every second. `None` on PostgreSQL,
/// where keys are configured, never generated.
async fn app_with_generated_keys() -> Option<TestApp> {
    if is_postgres() {
        return None;
    }
    let app = spawn_app_with(|config| {
        config.tokens.jwt_alg = JwtAlgorithm::EdDSA;
        config.tokens.jwt_private_key = None;
        config.tokens.jwt_key_reload_interval = 1;
    })
    .await;
    Some(app)
}

/// `latchkey keys rotate --jwt-alg EdDSA` on the app's database, as an operator runs it.
async fn rotate(app: &TestApp, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["keys", "rotate", "--jwt-alg", "EdDSA"];
    args.extend_from_slice(extra);
    latchkey(app, &args, "").await
}

/// Waits (up to a generous bound, for a loaded machine) until `app` publishes `expected`.
async fn until_published(app: &TestApp, expected: &[String]) {
    for _ in 0..300 {
        if kids(&jwks(app).await) == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} never published {expected:?}", app.address);
}

/// Waits until `app` publishes `kid` first, as the signing key; returns what it publishes.
async fn until_signing(app: &TestApp, kid: &str) -> Vec<String> {
    for _ in 0..300 {
        let published = kids(&jwks(app).await);
        if published.first().map(String::as_str) == Some(kid) {
            return published;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} never signed with {kid}", app.address);
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn access_token(app: &TestApp, email: &str) -> String {
    app.signed_up(email).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn tokens_signed_before_a_rotation_verify_after_it_here_and_on_another_instance() {
    let Some(app) = app_with_generated_keys().await else {
        return;
    };
    let other = app.another_instance().await;
    let before = access_token(&app, "ada@example.com").await;
    let [current, next] = <[String; 2]>::try_from(kids(&jwks(&app).await)).unwrap();
    assert_eq!(kid_of(&before), current);
    assert_eq!(kids(&jwks(&other).await), [current.clone(), next.clone()]);

    let (ok, output) = rotate(&app, &["--force"]).await;
    assert!(ok, "{output}");
    assert!(
        output.contains("signing_key_rotated"),
        "no audit event: {output}"
    );
    assert!(!output.contains("PRIVATE KEY"), "{output}");

    // The next key signs now, the old current one is previous, and a new next key is
    // published: on both instances, without a restart.
    let after = until_signing(&app, &next).await;
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!((&after[0], &after[2]), (&next, &current));
    assert!(after[1] != current && after[1] != next);
    until_published(&other, &after).await;
    for instance in [&app, &other] {
        assert_eq!(instance.me(&before).await.status(), StatusCode::OK);
    }
    let renewed = access_token(&other, "grace@example.com").await;
    assert_eq!(kid_of(&renewed), next);
    assert_eq!(app.me(&renewed).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_retired_key_s_tokens_are_refused() {
    let Some(app) = app_with_generated_keys().await else {
        return;
    };
    let old_token = access_token(&app, "ada@example.com").await;
    let [old_kid, next] = <[String; 2]>::try_from(kids(&jwks(&app).await)).unwrap();
    assert_eq!(kid_of(&old_token), old_kid);
    let (ok, output) = rotate(&app, &["--force"]).await;
    assert!(ok, "{output}");
    let mut published = until_signing(&app, &next).await;
    assert_eq!(app.me(&old_token).await.status(), StatusCode::OK);

    // The access TTL passes: the previous key's last token has expired.
    let stored: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(RING_SETTING)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let mut ring: Value = serde_json::from_str(&stored).unwrap();
    for key in ring["keys"].as_array_mut().unwrap() {
        if key["kid"] == old_kid.as_str() {
            key["retired_at"] = (chrono::Utc::now().timestamp() - 3600).into();
        }
    }
    sqlx::query("UPDATE settings SET value = $1 WHERE key = $2")
        .bind(ring.to_string())
        .bind(RING_SETTING)
        .execute(&app.db)
        .await
        .unwrap();

    published.retain(|kid| *kid != old_kid);
    until_published(&app, &published).await;
    let response = app.me(&old_token).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("unknown key"), "{challenge}");
    let fresh = access_token(&app, "grace@example.com").await;
    assert_eq!(app.me(&fresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn generated_keys_survive_a_restart() {
    let Some(app) = app_with_generated_keys().await else {
        return;
    };
    let token = access_token(&app, "ada@example.com").await;
    let published = kids(&jwks(&app).await);
    let app = app.restart().await;
    assert_eq!(kids(&jwks(&app).await), published);
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_next_key_must_be_published_a_while_before_it_signs() {
    let Some(app) = app_with_generated_keys().await else {
        return;
    };
    let published = kids(&jwks(&app).await);
    let (ok, output) = rotate(&app, &[]).await;
    assert!(!ok && output.contains("--force"), "{output}");
    assert_eq!(kids(&jwks(&app).await), published);
}

#[tokio::test]
async fn the_rotate_command_explains_when_there_are_no_generated_keys() {
    if is_postgres() {
        return;
    }
    let app = spawn_app_with(|config| config.tokens.jwt_alg = JwtAlgorithm::HS256).await;
    let (ok, output) = rotate(&app, &["--force"]).await;
    assert!(!ok, "{output}");
    assert!(output.contains("no generated EdDSA keys"), "{output}");
}
