//! A database too busy to take a write: SQLite's one write lock held by another process (the
//! admin CLI, a backup) for longer than the server waits.

use reqwest::StatusCode;

use crate::helpers::{assert_problem, is_postgres, spawn_app};

#[tokio::test]
async fn writes_blocked_by_another_processs_lock_get_503_and_change_nothing() {
    if is_postgres() {
        // PostgreSQL locks rows, not the database: no other client can hold every write back.
        return;
    }
    let app = spawn_app().await;
    let mut other_process = app.db.acquire().await.expect("no connection");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *other_process)
        .await
        .expect("could not take the write lock");

    // One writer gets its turn and waits for the lock until SQLite gives up; the other waits for
    // its turn until the server gives up. Both are "not now", never a 500.
    let (first, second) = tokio::join!(
        app.signup("first@example.com"),
        app.signup("second@example.com")
    );
    assert_problem(
        first,
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
    )
    .await;
    assert_problem(
        second,
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
    )
    .await;

    sqlx::query("ROLLBACK")
        .execute(&mut *other_process)
        .await
        .expect("could not release the write lock");
    drop(other_process);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
    assert_eq!(
        app.signup("first@example.com").await.status(),
        StatusCode::CREATED
    );
}
