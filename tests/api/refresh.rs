use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn a_refresh_token_buys_a_new_pair() {
    let app = spawn_app().await;
    let tokens = app.signed_up("ada@example.com").await;
    let first = tokens["refresh_token"].as_str().unwrap();

    let response = app.refresh(first).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let renewed: Value = response.json().await.unwrap();
    let second = renewed["refresh_token"].as_str().unwrap();
    assert_ne!(first, second);
    assert_eq!(renewed["user"]["email"], "ada@example.com");
    assert_eq!(
        app.me(renewed["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // A used token is refused once the reuse interval is over (see rotation.rs); the new one works.
    assert_eq!(app.refresh(second).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_and_expired_refresh_tokens_are_refused() {
    let app = spawn_app().await;
    let tokens = app.signed_up("ada@example.com").await;

    let unknown = app
        .refresh("bm90LWEtcmVhbC10b2tlbi1ub3QtYS1yZWFsLXRva2Vu")
        .await;
    assert_problem(unknown, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;

    sqlx::query("UPDATE sessions SET refresh_expires_at = created_at")
        .execute(&app.db)
        .await
        .unwrap();
    let expired = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_problem(expired, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
}

#[tokio::test]
async fn a_session_past_its_absolute_lifetime_cannot_refresh() {
    let app = spawn_app().await;
    let tokens = app.signed_up("ada@example.com").await;
    sqlx::query("UPDATE sessions SET expires_at = created_at")
        .execute(&app.db)
        .await
        .unwrap();
    let response = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
}

#[tokio::test]
async fn only_the_sha256_of_a_refresh_token_is_stored() {
    let app = spawn_app().await;
    let tokens = app.signed_up("ada@example.com").await;
    let token = tokens["refresh_token"].as_str().unwrap();

    let stored: Vec<String> = sqlx::query_scalar("SELECT refresh_hash FROM sessions")
        .fetch_all(&app.db)
        .await
        .unwrap();

    assert_eq!(stored, vec![hex::encode(Sha256::digest(token.as_bytes()))]);
    assert_eq!(app.count("SELECT COUNT(*) FROM refresh_tokens").await, 0);
}

#[tokio::test]
async fn a_refresh_without_a_token_gets_422() {
    let app = spawn_app().await;
    let response = app.post_json("/v1/auth/refresh", &json!({})).await;
    let problem = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "refresh_token");
}
