use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_no_secrets, assert_problem, spawn_app};

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

async fn name_seen(app: &TestApp, access_token: &str) -> Value {
    let response = app.me(access_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    me["name"].clone()
}

async fn rename(app: &TestApp, access_token: &str, name: &str) {
    let response = app
        .client
        .patch(app.url("/v1/me"))
        .bearer_auth(access_token)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// `GET /v1/me` is served from memory for a moment; a change must not wait for that moment on
/// the instance that made it, and another instance sees it within the revocation bound.
#[tokio::test]
async fn a_change_shows_at_once_where_it_was_made_and_soon_on_another_instance() {
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let tokens = a.signed_up("ada@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(name_seen(&a, access).await, Value::Null);
    assert_eq!(name_seen(&b, access).await, Value::Null);

    rename(&a, access, "Ada L.").await;
    assert_eq!(name_seen(&a, access).await, json!("Ada L."));

    let deadline = Instant::now() + Duration::from_secs(5);
    while name_seen(&b, access).await != json!("Ada L.") {
        assert!(
            Instant::now() < deadline,
            "the other instance never saw the change"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
