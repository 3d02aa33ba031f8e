use reqwest::StatusCode;

use crate::helpers::{PASSWORD, spawn_app};

#[tokio::test]
async fn a_restart_keeps_users_sessions_and_issued_access_tokens() {
    // On SQLite this runs without a configured secret: the generated one must survive.
    let app = spawn_app().await;
    let tokens = app.signed_up("ada@example.com").await;

    let app = app.restart().await;

    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.me(access).await.status(), StatusCode::OK);
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
    let refreshed = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}
