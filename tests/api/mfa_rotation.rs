//! The second factor across a rotation of the HS256 secret (`LATCHKEY_JWT_KEYS`), which derives
//! the key TOTP secrets are sealed under: while the old and new secrets are both listed, the
//! stored secrets are sealed again under the new one, so retiring the old one strands nobody.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use latchkey::auth::totp::{TotpSecret, base32_decode, step_of};
use latchkey::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, spawn_app_with};

const OLD: &str = "Hq4Wm9Tz2Lx7Vb1Nc6Rk3Yd8Fg5Js0Pe";
const NEW: &str = "Bn7Xq2Vk9Lm4Wz1Tc6Hr3Yd8Gf5Js0Pa";

fn keys(config: &mut Config, entries: &[&str]) {
    config.tokens.jwt_secret = None;
    config.tokens.jwt_keys = entries.iter().map(|entry| (*entry).to_owned()).collect();
}

/// The current TOTP step, at least three seconds before the next one begins.
async fn settled_step() -> i64 {
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        if now % 30 < 27 {
            return step_of(now);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn stored_secret(app: &TestApp) -> String {
    sqlx::query_scalar("SELECT secret FROM mfa_totp")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// Logs in with the password, answers the challenge with `factor`, and returns the status.
async fn log_in_with(app: &TestApp, factor: Value) -> StatusCode {
    let challenge: Value = app
        .login("ada@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let mut answer = json!({ "mfa_token": challenge["mfa_token"] });
    answer
        .as_object_mut()
        .unwrap()
        .extend(factor.as_object().unwrap().clone());
    app.post_json("/v1/auth/mfa/verify", &answer).await.status()
}

#[tokio::test]
async fn retiring_the_old_jwt_secret_strands_no_enrolled_account() {
    let app = spawn_app_with(|config| keys(config, &[&format!("old:{OLD}")])).await;
    let signed_up = app.signed_up("ada@example.com").await;
    let token = signed_up["access_token"].as_str().unwrap();
    let password = json!({ "password": PASSWORD });
    let started: Value = app
        .call(Method::POST, "/v1/me/mfa/totp", token, Some(&password))
        .await
        .json()
        .await
        .unwrap();
    let secret =
        TotpSecret::from_bytes(base32_decode(started["secret"].as_str().unwrap()).unwrap());
    let confirmed_step = settled_step().await - 1;
    let code = json!({ "code": secret.code_at(confirmed_step) });
    let confirmed: Value = app
        .call(Method::POST, "/v1/me/mfa/totp/confirm", token, Some(&code))
        .await
        .json()
        .await
        .unwrap();
    let recovery_code = confirmed["recovery_codes"][0].clone();
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

    // The old one retired: the code and the recovery code still log in.
    let app = app
        .restart_with(|config| keys(config, &[&format!("new:{NEW}")]))
        .await;
    let step = settled_step().await.max(confirmed_step + 1);
    let by_code = log_in_with(&app, json!({ "code": secret.code_at(step) })).await;
    assert_eq!(by_code, StatusCode::OK);
    let by_recovery = log_in_with(&app, json!({ "recovery_code": recovery_code })).await;
    assert_eq!(by_recovery, StatusCode::OK);
}
