//! Settings at their extremes still give a working server. The maxima of the settings without a
//! named constant are the literals of their `range` in src/config.rs (a unit test there checks
//! each maximum is accepted and one more is refused).

use reqwest::StatusCode;
use serde_json::Value;

use latchkey::config::{MAX_PRUNE_INTERVAL_SECS, MAX_SESSION_SECS};

use crate::helpers::{PASSWORD, spawn_app_with};

#[tokio::test]
async fn every_duration_setting_at_its_maximum_still_signs_up_logs_in_and_refreshes() {
    let app = spawn_app_with(|config| {
        config.tokens.access_ttl = 86_400;
        config.tokens.refresh_ttl = MAX_SESSION_SECS;
        config.tokens.session_max_age = MAX_SESSION_SECS;
        config.tokens.refresh_reuse_interval = 300;
        config.tokens.prune_interval = MAX_PRUNE_INTERVAL_SECS;
        config.abuse.lockout_base_delay = 900;
        config.mail.reset_ttl = 7 * 86_400;
        config.mail.verify_ttl = 30 * 86_400;
    })
    .await;

    app.signed_up("ada@example.com").await;
    let response = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    let response = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
}
