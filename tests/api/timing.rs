//! A login for an unknown email, with a wrong password, and for a disabled account take the same
//! time, and so do a signup for a new and for a taken address when signups hide which addresses
//! have accounts; measured statistically: many interleaved samples, compared medians.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, spawn_app_with};

const SAMPLES: usize = 25;

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

#[tokio::test]
async fn with_verification_required_a_signup_for_a_taken_address_takes_as_long_as_a_new_one() {
    // A new address costs one committed insert more than a taken one (whose insert fails and
    // is rolled back): ~20 ms on the test machine's PostgreSQL, next to a hash that takes a
    // quarter of a second at the default cost. Cost 10 keeps that ratio honest in a debug build.
    let app = spawn_app_with(|config| {
        config.bcrypt_cost = 10;
        config.require_email_verification = true;
    })
    .await;
    assert_eq!(
        app.signup("ada@example.com").await.status(),
        StatusCode::ACCEPTED
    );
    let time_signup = |email: String| {
        let app = &app;
        async move {
            let started = Instant::now();
            let response = app.signup(&email).await;
            let elapsed = started.elapsed();
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            elapsed
        }
    };

    let (mut new, mut taken) = (Vec::new(), Vec::new());
    for i in 0..SAMPLES {
        new.push(time_signup(format!("new{i}@example.com")).await);
        taken.push(time_signup("ada@example.com".into()).await);
    }
    let (new, taken) = (median(new), median(taken));
    // Without hashing the password of a taken address, its answer would come in a fraction of
    // the time.
    let (fastest, slowest) = (new.min(taken), new.max(taken));
    assert!(
        slowest.as_secs_f64() <= fastest.as_secs_f64() * 1.35,
        "medians differ: new {new:?}, taken {taken:?}"
    );
}
