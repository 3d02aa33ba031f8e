use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PASSWORD, assert_no_secrets, assert_problem, spawn_app};

#[tokio::test]
async fn the_right_password_logs_in_and_opens_a_new_session() {
    let app = spawn_app().await;
    app.signed_up("ada@example.com").await;

    let response = app.login("ADA@example.com ", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let text = response.text().await.unwrap();
    assert_no_secrets(&text);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(
        app.me(body["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 2);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401() {
    let app = spawn_app().await;
    app.signed_up("ada@example.com").await;

    let wrong_password = app.login("ada@example.com", "not the password").await;
    let unknown_email = app.login("nobody@example.com", PASSWORD).await;

    let a = assert_problem(
        wrong_password,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let b = assert_problem(
        unknown_email,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(a, b);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);
}

#[tokio::test]
async fn bytes_beyond_72_never_log_in() {
    let app = spawn_app().await;
    let password = "x".repeat(72);
    let response = app
        .post_json(
            "/v1/auth/signup",
            &serde_json::json!({ "email": "long@example.com", "password": password }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let longer = format!("{password}tail");
    let response = app.login("long@example.com", &longer).await;

    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(app.login("long@example.com", &password).await.status(), 200);
}

#[tokio::test]
async fn malformed_login_input_gets_422() {
    let app = spawn_app().await;
    let response = app.login("not-an-email", PASSWORD).await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let response = app.login("ada@example.com", "").await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}
