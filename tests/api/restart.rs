use reqwest::StatusCode;

use crate::helpers::{PASSWORD, is_postgres, spawn_app, spawn_two_apps_at_once};

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

/// Replicas of a deployment start together on one PostgreSQL database (the README's recipe
/// does). Counting the applied migrations used to create sqlx's bookkeeping table outside the
/// migrator's advisory lock, and the second instance failed with `type "_sqlx_migrations"
/// already exists`. SQLite has one process per file: nothing to race.
#[tokio::test]
async fn two_instances_starting_together_on_a_fresh_postgresql_database_both_serve() {
    if !is_postgres() {
        return;
    }
    let (first, second) = spawn_two_apps_at_once().await;

    let tokens = first.signed_up("ada@example.com").await;

    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(second.me(access).await.status(), StatusCode::OK);
}
