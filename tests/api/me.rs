use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_no_secrets, assert_problem, spawn_app};

#[tokio::test]
async fn me_returns_the_callers_account() {
    let app = spawn_app().await;
    let tokens = app.signed_up("ada@example.com").await;

    let response = app.me(tokens["access_token"].as_str().unwrap()).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let text = response.text().await.unwrap();
    assert_no_secrets(&text);
    let me: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(me, tokens["user"]);
}

#[tokio::test]
async fn me_without_a_token_is_401_with_a_bare_challenge() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/v1/me")).send().await.unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"latchkey\""
    );
    assert_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn another_scheme_is_not_a_bearer_token() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/v1/me"))
        .basic_auth("ada@example.com", Some("password"))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn a_token_whose_user_is_gone_is_refused() {
    let app = spawn_app().await;
    let tokens = app.signed_up("ada@example.com").await;
    sqlx::query("DELETE FROM users")
        .execute(&app.db)
        .await
        .unwrap();
    let response = app.me(tokens["access_token"].as_str().unwrap()).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
}
