//! A login for an unknown email, with a wrong password, for a disabled account and for an account
//! whose hash has an older, lower cost take the same time, measured statistically: many
//! interleaved samples, compared medians.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, spawn_app_with};

const SAMPLES: usize = 25;

/// Held while a test takes its samples: two timing tests hashing at once would add each other's
/// bursts to their samples.
static SAMPLING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn time_login(app: &TestApp, email: &str, password: &str, expected: StatusCode) -> Duration {
    let started = Instant::now();
    let response = app.login(email, password).await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), expected);
    elapsed
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn unknown_email_wrong_password_and_disabled_account_take_the_same_time() {
    // A cost at which bcrypt dominates the request, as it does in production.
    let app = spawn_app_with(|config| {
        config.bcrypt_cost = 8;
        config.bootstrap_admin_email = Some("root@example.com".into());
        config.bootstrap_admin_password = Some(PASSWORD.into());
    })
    .await;
    app.signed_up("ada@example.com").await;
    let off = app.signed_up("off@example.com").await;
    let admin: serde_json::Value = app
        .login("root@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let response = app
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/users/{}", off["user"]["id"].as_str().unwrap()),
            admin["access_token"].as_str().unwrap(),
            Some(&json!({ "disabled": true })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let (mut unknown, mut wrong, mut disabled) = (Vec::new(), Vec::new(), Vec::new());
    let _sampling = SAMPLING.lock().await;
    // Interleaved, so drift in the machine's load hits all three alike.
    for _ in 0..SAMPLES {
        unknown.push(
            time_login(
                &app,
                "nobody@example.com",
                PASSWORD,
                StatusCode::UNAUTHORIZED,
            )
            .await,
        );
        wrong.push(
            time_login(
                &app,
                "ada@example.com",
                "wrong password",
                StatusCode::UNAUTHORIZED,
            )
            .await,
        );
        disabled.push(time_login(&app, "off@example.com", PASSWORD, StatusCode::FORBIDDEN).await);
    }
    let medians = [median(unknown), median(wrong), median(disabled)];
    let fastest = *medians.iter().min().unwrap();
    let slowest = *medians.iter().max().unwrap();
    // bcrypt at cost 8 takes milliseconds; a database lookup that answers "no such user"
    // without a hash to check would show as a large relative gap.
    assert!(
        slowest.as_secs_f64() <= fastest.as_secs_f64() * 1.35,
        "medians differ: {medians:?}"
    );
}

/// After `LATCHKEY_BCRYPT_COST` is raised, accounts whose hash still has the old cost must not
/// answer a wrong password faster than an unknown email does: that would list dormant accounts.
#[tokio::test]
async fn an_account_with_an_older_cheaper_hash_answers_as_slowly_as_an_unknown_email() {
    let app = spawn_app_with(|config| config.bcrypt_cost = 8).await;
    app.signed_up("old@example.com").await;
    // The hash it would have kept from before the cost was raised.
    let old_hash = bcrypt::hash(PASSWORD, 4).unwrap();
    sqlx::query("UPDATE users SET password_hash = $1 WHERE email = $2")
        .bind(old_hash)
        .bind("old@example.com")
        .execute(&app.db)
        .await
        .unwrap();

    let (mut unknown, mut old) = (Vec::new(), Vec::new());
    let _sampling = SAMPLING.lock().await;
    for _ in 0..SAMPLES {
        unknown.push(
            time_login(
                &app,
                "nobody@example.com",
                "wrong password",
                StatusCode::UNAUTHORIZED,
            )
            .await,
        );
        old.push(
            time_login(
                &app,
                "old@example.com",
                "wrong password",
                StatusCode::UNAUTHORIZED,
            )
            .await,
        );
    }
    let (unknown, old) = (median(unknown), median(old));
    let (fastest, slowest) = (unknown.min(old), unknown.max(old));
    // Unpadded, cost 4 against cost 8 is a sixteenth of the hashing time.
    assert!(
        slowest.as_secs_f64() <= fastest.as_secs_f64() * 1.35,
        "medians differ: unknown {unknown:?}, older hash {old:?}"
    );
}
