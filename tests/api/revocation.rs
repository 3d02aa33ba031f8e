//! Revocation reaches access tokens at once, survives restarts, spans instances, and expired
//! rows are pruned.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{PASSWORD, is_postgres, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_revoked_sessions_access_token_stays_refused_after_a_restart() {
    let app = spawn_app().await;
    let tokens = app.signed_up("ada@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    app.logout(access).await;

    let app = app.restart().await;

    assert_eq!(app.me(access).await.status(), StatusCode::UNAUTHORIZED);
    let fresh: serde_json::Value = app
        .login("ada@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        app.me(fresh["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn expired_sessions_and_refresh_tokens_are_pruned_in_the_background() {
    let app = spawn_app_with(|config| config.tokens.prune_interval = 1).await;
    app.signed_up("ada@example.com").await;
    let live = app.signed_up("bob@example.com").await;
    sqlx::query(
        "UPDATE sessions SET expires_at = created_at WHERE user_id = \
         (SELECT id FROM users WHERE email = 'ada@example.com')",
    )
    .execute(&app.db)
    .await
    .unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while app.count("SELECT COUNT(*) FROM sessions").await > 1 {
        assert!(
            Instant::now() < deadline,
            "the expired session was never pruned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE u.email = 'bob@example.com'"
        )
        .await,
        1
    );
    let refreshed = app.refresh(live["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_logout_on_one_instance_is_honoured_by_another_within_a_second() {
    if !is_postgres() {
        // Several instances share only PostgreSQL; SQLite is one process.
        return;
    }
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let tokens = a.signed_up("ada@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(b.me(access).await.status(), StatusCode::OK);

    assert_eq!(a.logout(access).await.status(), StatusCode::NO_CONTENT);

    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let status = b.me(access).await.status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "instance B still accepts the token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Security review: the SQLite server polled revocations by a time window, and a revocation
/// committed by another process (the admin CLI) with a timestamp taken before it waited for the
/// write lock fell outside it and never reached the running server.
#[tokio::test]
async fn a_revocation_committed_late_by_another_process_still_reaches_the_server() {
    if is_postgres() {
        return;
    }
    let app = spawn_app().await;
    let tokens = app.signed_up("ada@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.me(access).await.status(), StatusCode::OK);
    // Let the server's first polls pass, so only the later ones can see the revocation.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // What the CLI writes when its timestamp is a minute older than its commit.
    let stale = "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-60 seconds')";
    sqlx::query(&format!("UPDATE sessions SET revoked_at = {stale}"))
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query(&format!(
        "INSERT INTO session_revocations (session_id, revoked_at) SELECT id, {stale} FROM sessions"
    ))
    .execute(&app.db)
    .await
    .unwrap();

    let deadline = Instant::now() + Duration::from_secs(5);
    while app.me(access).await.status() != StatusCode::UNAUTHORIZED {
        assert!(
            Instant::now() < deadline,
            "the revocation never reached the running server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
