//! The admin list with an email prefix that matches many users: pages in creation order, the
//! cursor going on where the page ended, however the store chooses to read them (on SQLite a
//! prefix matching more than a thousand users is read along the creation order instead).

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestApp, is_postgres, spawn_app_with_admin};

const BULK: i64 = 1_200;

/// `BULK` users bulk00001@example.com … , each a second older than the one before it, copied
/// from the admin's row by SQL (a signup each would take minutes of bcrypt). SQLite times are
/// written as sqlx writes a whole second (no fraction), so they compare with a cursor's.
async fn seed_bulk_users(app: &TestApp) {
    let (email, created_at, numbers) = if is_postgres() {
        (
            "'bulk' || lpad(n.i::text, 5, '0') || '@example.com'",
            "now() - make_interval(secs => n.i)",
            "generate_series(1, $1) AS n(i)",
        )
    } else {
        (
            "'bulk' || printf('%05d', n.i) || '@example.com'",
            "strftime('%Y-%m-%dT%H:%M:%S', 'now', '-' || n.i || ' seconds') || '+00:00'",
            "n",
        )
    };
    let id = if is_postgres() {
        "gen_random_uuid()"
    } else {
        "randomblob(16)"
    };
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
         SELECT {id}, {email}, u.password_hash, 'user', {created_at}, {created_at} \
         FROM users u, {numbers} WHERE u.role = 'admin'"
    );
    sqlx::query(&sql).bind(BULK).execute(&app.db).await.unwrap();
}

async fn page(app: &TestApp, admin: &Value, path: &str) -> (Vec<String>, Option<String>) {
    let token = admin["access_token"].as_str().unwrap();
    let page: Value = app
        .call(Method::GET, path, token, None)
        .await
        .json()
        .await
        .unwrap();
    let emails = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["email"].as_str().unwrap().to_owned())
        .collect();
    (emails, page["next_cursor"].as_str().map(str::to_owned))
}

fn bulk(numbers: impl Iterator<Item = i64>) -> Vec<String> {
    numbers.map(|i| format!("bulk{i:05}@example.com")).collect()
}

#[tokio::test]
async fn a_prefix_matching_many_users_pages_in_creation_order() {
    let (app, admin) = spawn_app_with_admin().await;
    seed_bulk_users(&app).await;

    // The oldest first: bulk01200 was created 1,200 seconds ago.
    let (first, cursor) = page(&app, &admin, "/v1/users?email=bulk&limit=50").await;
    assert_eq!(first, bulk((1_151..=BULK).rev()));
    let cursor = cursor.expect("a next page");
    let (second, _) = page(
        &app,
        &admin,
        &format!("/v1/users?email=bulk&limit=50&cursor={cursor}"),
    )
    .await;
    assert_eq!(second, bulk((1_101..=1_150).rev()));

    // A narrow prefix of the same users, and one that matches none.
    let (narrow, cursor) = page(&app, &admin, "/v1/users?email=bulk0001&limit=50").await;
    assert_eq!(narrow, bulk((10..=19).rev()));
    assert!(cursor.is_none());
    let (none, _) = page(&app, &admin, "/v1/users?email=bulkx").await;
    assert!(none.is_empty());
}
