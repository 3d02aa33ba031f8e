//! The gateway verify endpoint.

use reqwest::StatusCode;

use crate::helpers::{assert_problem, spawn_app};

async fn verify(app: &crate::helpers::TestApp, access_token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/v1/auth/verify"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_valid_token_gets_204_with_the_identity_headers() {
    let app = spawn_app().await;
    let tokens = app.signed_up("ada@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();

    let response = verify(&app, access).await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let headers = response.headers();
    assert_eq!(
        headers["x-latchkey-user-id"],
        tokens["user"]["id"].as_str().unwrap()
    );
    assert_eq!(headers["x-latchkey-role"], "user");
    let sessions: serde_json::Value = app
        .client
        .get(app.url("/v1/me/sessions"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        headers["x-latchkey-session-id"],
        sessions["sessions"][0]["id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn a_revoked_or_missing_token_gets_401() {
    let app = spawn_app().await;
    let tokens = app.signed_up("ada@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    app.logout(access).await;

    assert_problem(
        verify(&app, access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let response = app
        .client
        .get(app.url("/v1/auth/verify"))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}
