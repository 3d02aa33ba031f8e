use reqwest::StatusCode;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn logout_kills_the_sessions_refresh_token_and_is_idempotent() {
    let app = spawn_app().await;
    let tokens = app.signed_up("ada@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();

    assert_eq!(app.logout(access).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NOT NULL")
            .await,
        1
    );
    let refresh = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_problem(refresh, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    assert_eq!(app.logout(access).await.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn logout_leaves_the_users_other_sessions_alone() {
    let app = spawn_app().await;
    let first = app.signed_up("ada@example.com").await;
    let second: serde_json::Value = app
        .login("ada@example.com", crate::helpers::PASSWORD)
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(
        app.logout(first["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::NO_CONTENT
    );

    let refreshed = app.refresh(second["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_without_a_token_is_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"latchkey\""
    );
    assert_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}
