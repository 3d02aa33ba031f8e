//! Pruning never blocks traffic: expired sessions go in short batches, each its own write
//! transaction, while logins and refreshes go on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::TimeDelta;
use latchkey::store::{self, PRUNE_BATCH};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, is_postgres, spawn_app};

const EXPIRED: i64 = 1_250;

/// Copies `email`'s one session `EXPIRED` times, each copy past its lifetime.
async fn seed_expired_sessions(app: &TestApp, email: &str) {
    let (new_id, numbers) = if is_postgres() {
        ("gen_random_uuid()", "generate_series(1, $2) AS n(i)")
    } else {
        ("randomblob(16)", "n")
    };
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) \
         INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, \
                               refresh_expires_at) \
         SELECT {new_id}, s.user_id, s.created_at, s.created_at, s.created_at, s.created_at \
         FROM sessions s, {numbers} \
         WHERE s.user_id = (SELECT id FROM users WHERE email = $1)"
    );
    sqlx::query(&sql)
        .bind(email)
        .bind(EXPIRED)
        .execute(&app.db)
        .await
        .unwrap();
}

/// Refreshes `session` one request after another until `stop`, and returns every status.
async fn refresh_until(app: Arc<TestApp>, session: Value, stop: Arc<AtomicBool>) -> Vec<u16> {
    let mut token = session["refresh_token"].as_str().unwrap().to_owned();
    let mut statuses = Vec::new();
    loop {
        let response = app.refresh(&token).await;
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::OK {
            let body: Value = response.json().await.unwrap();
            token = body["refresh_token"].as_str().unwrap().to_owned();
        }
        if stop.load(Ordering::Relaxed) {
            return statuses;
        }
    }
}

#[tokio::test]
async fn expired_sessions_are_pruned_in_short_batches_while_refreshes_go_on() {
    let app = Arc::new(spawn_app().await);
    app.signed_up("ada@example.com").await;
    seed_expired_sessions(&app, "ada@example.com").await;
    let session = app.signed_up("bob@example.com").await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions").await,
        EXPIRED + 2
    );

    let stop = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn(refresh_until(app.clone(), session, stop.clone()));
    // The pruner's own work, from another connection as another instance would run it.
    let pruner = store::open(&app.config.database.database_url)
        .await
        .unwrap();
    let now = store::now();
    let pruned = pruner
        .prune(now, now - TimeDelta::minutes(30))
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let statuses = traffic.await.unwrap();

    // Delivered verification mail may go in the same sweep.
    assert!(pruned.rows >= EXPIRED as u64, "{pruned:?}");
    assert!(pruned.largest_batch <= PRUNE_BATCH as u64, "{pruned:?}");
    assert!(!statuses.is_empty());
    assert!(statuses.iter().all(|&status| status == 200), "{statuses:?}");
    // Both live sessions stay: Ada's own, and Bob's, refreshed all along.
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 2);
}
