//! A session costs the same storage however often it refreshes: one row holds its live refresh
//! token's hash and generation; ancestors are recognised by the generation they carry.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;
use uuid::Uuid;

use crate::helpers::{TestApp, assert_problem, is_postgres, spawn_app_upgrading, spawn_app_with};

/// Every row the sessions and their refresh tokens occupy.
async fn session_rows(app: &TestApp) -> i64 {
    app.count(
        "SELECT (SELECT COUNT(*) FROM sessions) + (SELECT COUNT(*) FROM refresh_tokens) \
         + (SELECT COUNT(*) FROM session_revocations)",
    )
    .await
}

async fn refreshed(app: &TestApp, token: &str) -> String {
    let response = app.refresh(token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["refresh_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn two_thousand_refreshes_keep_one_row_and_replaying_the_third_token_ends_the_session() {
    // No reuse interval: every rotated-away token presented again is a copy.
    let app = spawn_app_with(|config| config.tokens.refresh_reuse_interval = 0).await;
    let first = app.signed_up("ada@example.com").await;
    let mut token = refreshed(&app, first["refresh_token"].as_str().unwrap()).await;
    let after_one = session_rows(&app).await;
    let mut third = String::new();
    for refresh in 2..=2_000 {
        token = refreshed(&app, &token).await;
        if refresh == 3 {
            third = token.clone();
        }
    }
    assert_eq!(session_rows(&app).await, after_one);
    assert_eq!(after_one, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE refresh_generation = 2000")
            .await,
        1
    );

    assert_problem(
        app.refresh(&third).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    )
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NOT NULL")
            .await,
        1
    );
    assert_problem(
        app.refresh(&token).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
}

#[tokio::test]
async fn an_old_generation_made_up_without_the_key_is_refused_and_ends_nothing() {
    let app = spawn_app_with(|config| config.tokens.refresh_reuse_interval = 0).await;
    let first = app.signed_up("ada@example.com").await;
    let live = refreshed(&app, first["refresh_token"].as_str().unwrap()).await;
    // The live token's session, an older generation, and a tag that cannot be right.
    let mut made_up = URL_SAFE_NO_PAD.decode(&live).unwrap();
    made_up[16..20].copy_from_slice(&0_u32.to_be_bytes());

    assert_problem(
        app.refresh(&URL_SAFE_NO_PAD.encode(&made_up)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
            .await,
        1
    );
    refreshed(&app, &live).await;
}

/// A value as an SQL literal of the test's database: its schema stores a UUID as a 16-byte BLOB
/// on SQLite and as `uuid` on PostgreSQL.
fn uuid_literal(id: Uuid) -> String {
    if is_postgres() {
        format!("'{id}'::uuid")
    } else {
        format!("X'{}'", id.simple())
    }
}

fn time_literal(rfc3339: &str) -> String {
    if is_postgres() {
        format!("'{rfc3339}'::timestamptz")
    } else {
        format!("'{rfc3339}'")
    }
}

fn sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The schema as it was before sessions counted their generations, with one session whose live
/// refresh token is `live` and whose token `stolen` was rotated away long ago.
async fn old_schema_with_a_session(pool: &AnyPool, live: &str, stolen: &str) {
    let mut migrator = if is_postgres() {
        sqlx::migrate!("./migrations/postgres")
    } else {
        sqlx::migrate!("./migrations/sqlite")
    };
    let all = migrator.migrations.len();
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|migration| migration.description != "session refresh chain")
        .cloned()
        .collect::<Vec<_>>()
        .into();
    assert_eq!(migrator.migrations.len(), all - 1);
    migrator.run(pool).await.unwrap();
    let (user, session) = (uuid_literal(Uuid::new_v4()), uuid_literal(Uuid::new_v4()));
    let (past, now, future) = (
        time_literal("2020-01-01T00:00:00+00:00"),
        time_literal("2026-01-01T00:00:00+00:00"),
        time_literal("2099-01-01T00:00:00+00:00"),
    );
    for statement in [
        format!(
            "INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
             VALUES ({user}, 'ada@example.com', 'unused', 'user', {now}, {now})"
        ),
        format!(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at) \
             VALUES ({session}, {user}, {past}, {now}, {future})"
        ),
        format!(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at, rotated_at) \
             VALUES ('{}', {session}, {past}, {future}, {past}), \
                    ('{}', {session}, {now}, {future}, NULL)",
            sha256(stolen),
            sha256(live)
        ),
    ] {
        sqlx::query(&statement).execute(pool).await.unwrap();
    }
}

#[tokio::test]
async fn tokens_issued_before_the_upgrade_keep_working_until_they_rotate() {
    let (live, stolen) = (
        latchkey::auth::random_token(),
        latchkey::auth::random_token(),
    );
    let app =
        spawn_app_upgrading(async |pool| old_schema_with_a_session(pool, &live, &stolen).await)
            .await;

    let response = app.refresh(&live).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let successor = body["refresh_token"].as_str().unwrap();
    assert_eq!(successor.len(), 91);
    let sessions: Value = app
        .client
        .get(app.url("/v1/me/sessions"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        1,
        "{sessions}"
    );
    refreshed(&app, successor).await;

    // The old token's own row remembers its rotation: its thief is caught as before.
    assert_problem(
        app.refresh(&stolen).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    )
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NOT NULL")
            .await,
        1
    );
}
