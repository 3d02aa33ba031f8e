//! Defaults that are safe, and settings that are unsafe refused at start.

use std::os::unix::fs::PermissionsExt;

use latchkey::Application;

use crate::helpers::{is_postgres, spawn_app, spawn_app_with};

/// Security review: the SQLite file was created 0644, and it holds the generated signing secret,
/// from which a local user forged an admin token.
#[tokio::test]
async fn the_sqlite_database_is_readable_by_its_owner_only() {
    if is_postgres() {
        return;
    }
    let app = spawn_app().await;
    app.signed_up("ada@example.com").await;
    let path = app
        .config
        .database
        .database_url
        .strip_prefix("sqlite://")
        .unwrap()
        .to_owned();
    let mut checked = 0;
    for file in [path.clone(), format!("{path}-wal"), format!("{path}-shm")] {
        let Ok(metadata) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = metadata.permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{file} is {mode:o}");
        checked += 1;
    }
    assert!(checked >= 2, "the database and its WAL were not found");
}

/// Security review: a 32-byte secret of one repeated letter, or the placeholder of an example
/// file, was accepted.
#[tokio::test]
async fn a_weak_secret_stops_the_server_with_a_way_to_make_a_good_one() {
    for weak in [
        "a".repeat(32),
        "changeme".repeat(4),
        "change-me-change-me-change-me-change-me".to_owned(),
    ] {
        let app = spawn_app_with(|_| {}).await;
        let mut config = app.config.clone();
        config.tokens.jwt_keys = Vec::new();
        config.tokens.jwt_secret = Some(weak.clone());
        let err = Application::build(config.clone())
            .await
            .err()
            .unwrap_or_else(|| panic!("{weak:?} was accepted"));
        let message = format!("{err:#}");
        assert!(message.contains("too weak"), "{message}");
        assert!(message.contains("openssl rand"), "{message}");
        assert!(!message.contains(&weak), "the secret is in the message");

        config.tokens.jwt_secret = None;
        config.tokens.jwt_keys = vec![format!("k1:{weak}")];
        assert!(
            Application::build(config).await.is_err(),
            "{weak:?} as a key"
        );
    }
}
