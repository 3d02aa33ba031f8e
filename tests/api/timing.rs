//! A login for an unknown email, with a wrong password, for a disabled account and for an account
//! whose hash has an older, lower cost take the same time, and so do a signup for a new and for a
//! taken address when signups hide which addresses have accounts; measured statistically: many
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

/// Logins of each `(email, password, status)` case, interleaved so drift in the machine's load
/// hits all alike, must have medians within 35 % of each other. A round can still be spoiled by
/// other tests hashing beside it, so up to three rounds are taken: a real difference (a sixteenth
/// of the hashing time, or none at all) fails every one of them.
async fn assert_same_time(app: &TestApp, cases: &[(&str, &str, StatusCode)]) {
    let _sampling = SAMPLING.lock().await;
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let mut samples = vec![Vec::new(); cases.len()];
        for _ in 0..SAMPLES {
            for (case, (email, password, status)) in cases.iter().enumerate() {
                samples[case].push(time_login(app, email, password, *status).await);
            }
        }
        let medians: Vec<Duration> = samples.into_iter().map(median).collect();
        let fastest = *medians.iter().min().unwrap();
        let slowest = *medians.iter().max().unwrap();
        if slowest.as_secs_f64() <= fastest.as_secs_f64() * 1.35 {
            return;
        }
        rounds.push(medians);
    }
    panic!("medians differ in every round: {rounds:?} for {cases:?}");
}

#[tokio::test]
async fn unknown_email_wrong_password_and_disabled_account_take_the_same_time() {
    // A cost at which bcrypt dominates the request, as it does in production.
    let app = spawn_app_with(|config| {
        config.passwords.bcrypt_cost = 8;
        config.operations.bootstrap_admin_email = Some("root@example.com".into());
        config.operations.bootstrap_admin_password = Some(PASSWORD.into());
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

    // bcrypt at cost 8 takes milliseconds; a database lookup that answers "no such user"
    // without a hash to check would show as a large relative gap.
    assert_same_time(
        &app,
        &[
            ("nobody@example.com", PASSWORD, StatusCode::UNAUTHORIZED),
            (
                "ada@example.com",
                "wrong password",
                StatusCode::UNAUTHORIZED,
            ),
            ("off@example.com", PASSWORD, StatusCode::FORBIDDEN),
        ],
    )
    .await;
}

/// After `LATCHKEY_BCRYPT_COST` is raised, accounts whose hash still has the old cost must not
/// answer a wrong password faster than an unknown email does: that would list dormant accounts.
#[tokio::test]
async fn an_account_with_an_older_cheaper_hash_answers_as_slowly_as_an_unknown_email() {
    let app = spawn_app_with(|config| config.passwords.bcrypt_cost = 8).await;
    app.signed_up("old@example.com").await;
    // The hash it would have kept from before the cost was raised.
    let old_hash = bcrypt::hash(PASSWORD, 4).unwrap();
    sqlx::query("UPDATE users SET password_hash = $1 WHERE email = $2")
        .bind(old_hash)
        .bind("old@example.com")
        .execute(&app.db)
        .await
        .unwrap();

    // Unpadded, cost 4 against cost 8 is a sixteenth of the hashing time.
    assert_same_time(
        &app,
        &[
            (
                "nobody@example.com",
                "wrong password",
                StatusCode::UNAUTHORIZED,
            ),
            (
                "old@example.com",
                "wrong password",
                StatusCode::UNAUTHORIZED,
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn with_verification_required_a_signup_for_a_taken_address_takes_as_long_as_a_new_one() {
    // A new address costs one committed insert more than a taken one (whose insert fails and
    // is rolled back): ~20 ms on the test machine's PostgreSQL, next to a hash that takes a
    // quarter of a second at the default cost. Cost 10 keeps that ratio honest in a debug build.
    let app = spawn_app_with(|config| {
        config.passwords.bcrypt_cost = 10;
        config.mail.require_email_verification = true;
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

    // Without hashing the password of a taken address, its answer would come in a fraction of
    // the time. Up to three rounds, as in `assert_same_time`.
    let _sampling = SAMPLING.lock().await;
    let mut rounds = Vec::new();
    for round in 0..3 {
        let (mut new, mut taken) = (Vec::new(), Vec::new());
        for i in 0..SAMPLES {
            new.push(time_signup(format!("new{round}-{i}@example.com")).await);
            taken.push(time_signup("ada@example.com".into()).await);
        }
        let (new, taken) = (median(new), median(taken));
        let (fastest, slowest) = (new.min(taken), new.max(taken));
        if slowest.as_secs_f64() <= fastest.as_secs_f64() * 1.35 {
            return;
        }
        rounds.push((new, taken));
    }
    panic!("medians (new, taken) differ in every round: {rounds:?}");
}
