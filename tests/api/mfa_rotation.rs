//! The second factor across a rotation of the HS256 secret (`LATCHKEY_JWT_KEYS`), which derives
//! the key TOTP secrets are sealed under: while the old and new secrets are both listed, the
//! stored secrets are sealed again under the new one, so retiring the old one strands nobody.

use std::time::Duration;

use latchkey::config::Config;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with};
use crate::mfa::{aal2_tokens, enrolled, settled_step};

const OLD: &str = "Hq4Wm9Tz2Lx7Vb1Nc6Rk3Yd8Fg5Js0Pe";
const NEW: &str = "Bn7Xq2Vk9Lm4Wz1Tc6Hr3Yd8Gf5Js0Pa";

fn keys(config: &mut Config, entries: &[&str]) {
    config.tokens.jwt_secret = None;
    config.tokens.jwt_keys = entries.iter().map(|entry| (*entry).to_owned()).collect();
}

async fn stored_secret(app: &TestApp) -> String {
    sqlx::query_scalar("SELECT secret FROM mfa_totp")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn retiring_the_old_jwt_secret_strands_no_enrolled_account() {
    let app = spawn_app_with(|config| keys(config, &[&format!("old:{OLD}")])).await;
    let ada = enrolled(&app, "ada@example.com").await;
    let sealed_under_old = stored_secret(&app).await;

    // Both listed: the instance seals the secret again under the new one, in the background.
    let app = app
        .restart_with(|config| keys(config, &[&format!("new:{NEW}"), &format!("old:{OLD}")]))
        .await;
    let mut waited = Duration::ZERO;
    while stored_secret(&app).await == sealed_under_old {
        assert!(
            waited < Duration::from_secs(10),
            "the secret was not sealed again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }

    // The old one retired: a code and a recovery code still log in.
    let app = app
        .restart_with(|config| keys(config, &[&format!("new:{NEW}")]))
        .await;
    let step = settled_step().await.max(ada.step + 1);
    aal2_tokens(&app, "ada@example.com", json!({ "code": ada.code(step) })).await;
    let recovery_code = json!({ "recovery_code": ada.recovery_codes[0] });
    aal2_tokens(&app, "ada@example.com", recovery_code).await;
}
