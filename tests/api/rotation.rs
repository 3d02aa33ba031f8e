//! Refresh-token rotation, reuse detection and the concurrent-refresh grace interval.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

fn token<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field].as_str().unwrap()
}

#[tokio::test]
async fn reuse_outside_the_interval_revokes_the_whole_session() {
    let app = spawn_app_with(|config| config.tokens.refresh_reuse_interval = 0).await;
    let first = app.signed_up("ada@example.com").await;
    let second: Value = app
        .refresh(token(&first, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();

    let reused = app.refresh(token(&first, "refresh_token")).await;

    assert_problem(reused, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    let newest = app.refresh(token(&second, "refresh_token")).await;
    assert_problem(newest, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    for access in [
        token(&first, "access_token"),
        token(&second, "access_token"),
    ] {
        assert_problem(
            app.me(access).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NOT NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn reuse_does_not_touch_the_users_other_sessions() {
    let app = spawn_app_with(|config| config.tokens.refresh_reuse_interval = 0).await;
    let stolen = app.signed_up("ada@example.com").await;
    let other: Value = app
        .login("ada@example.com", crate::helpers::PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    app.refresh(token(&stolen, "refresh_token")).await;
    app.refresh(token(&stolen, "refresh_token")).await;

    assert_eq!(
        app.me(token(&other, "access_token")).await.status(),
        StatusCode::OK
    );
    let refreshed = app.refresh(token(&other, "refresh_token")).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_repeat_within_the_interval_gets_the_same_new_token() {
    let app = spawn_app().await;
    let first = app.signed_up("ada@example.com").await;

    let a: Value = app
        .refresh(token(&first, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    let b: Value = app
        .refresh(token(&first, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(token(&a, "refresh_token"), token(&b, "refresh_token"));
    assert_eq!(
        app.me(token(&b, "access_token")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE refresh_generation = 1")
            .await,
        1
    );
    let next = app.refresh(token(&a, "refresh_token")).await;
    assert_eq!(next.status(), StatusCode::OK);
}

#[tokio::test]
async fn twenty_parallel_refreshes_leave_exactly_one_live_chain() {
    let app = spawn_app().await;
    let first = app.signed_up("ada@example.com").await;
    let presented = token(&first, "refresh_token").to_owned();

    let responses = futures_util::future::join_all((0..20).map(|_| app.refresh(&presented))).await;

    let mut issued = HashSet::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        issued.insert(token(&body, "refresh_token").to_owned());
    }
    assert_eq!(issued.len(), 1, "parallel refreshes forked the session");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE refresh_generation = 1")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
            .await,
        1
    );
    let survivor = issued.into_iter().next().unwrap();
    assert_eq!(app.refresh(&survivor).await.status(), StatusCode::OK);
}
