//! Passwords and emails are compared after Unicode normalization (NFKC): the same text typed on
//! another keyboard or system is the same password, and a look-alike address is the same account.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app};

/// "café" with a precomposed é (U+00E9), as most keyboards type it, and with e + U+0301
/// (a combining acute accent), as some systems send it.
const COMPOSED: &str = "caf\u{e9} au lait, s'il vous pla\u{ee}t";
const DECOMPOSED: &str = "cafe\u{301} au lait, s'il vous plai\u{302}t";

async fn signup_with(app: &TestApp, email: &str, password: &str) -> Value {
    let response = app
        .post_json(
            "/v1/auth/signup",
            &json!({ "email": email, "password": password }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn stored_hash(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar("SELECT password_hash FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_password_signed_up_composed_logs_in_decomposed() {
    assert_ne!(COMPOSED, DECOMPOSED);
    let app = spawn_app().await;
    let tokens = signup_with(&app, "ada@example.com", COMPOSED).await;

    assert_eq!(
        app.login("ada@example.com", DECOMPOSED).await.status(),
        StatusCode::OK
    );
    // The current password of a self-service change is compared the same way.
    let response = app
        .call(
            Method::PUT,
            "/v1/me/password",
            tokens["access_token"].as_str().unwrap(),
            Some(&json!({ "current_password": DECOMPOSED, "new_password": DECOMPOSED })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.login("ada@example.com", COMPOSED).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_full_width_look_alike_email_is_the_same_account() {
    let app = spawn_app().await;
    app.signed_up("ada@example.com").await;

    // Full-width letters and at sign (U+FF41…, U+FF20).
    let response = app
        .signup("\u{ff41}\u{ff44}\u{ff41}\u{ff20}example.com")
        .await;

    assert_problem(response, StatusCode::CONFLICT, "email_taken").await;
}

/// Hashes made before normalization are of the password as it was typed. They keep working, and
/// the first login with them re-hashes the normalized form.
#[tokio::test]
async fn a_hash_of_an_unnormalized_password_still_logs_in_and_is_upgraded() {
    let app = spawn_app().await;
    signup_with(&app, "ada@example.com", COMPOSED).await;
    let legacy = bcrypt::hash(DECOMPOSED, 4).unwrap();
    sqlx::query("UPDATE users SET password_hash = $1 WHERE email = $2")
        .bind(&legacy)
        .bind("ada@example.com")
        .execute(&app.db)
        .await
        .unwrap();

    assert_eq!(
        app.login("ada@example.com", DECOMPOSED).await.status(),
        StatusCode::OK
    );

    let upgraded = stored_hash(&app, "ada@example.com").await;
    assert_ne!(upgraded, legacy, "the hash was not upgraded");
    assert!(bcrypt::verify(COMPOSED, &upgraded).unwrap());
    assert_eq!(
        app.login("ada@example.com", COMPOSED).await.status(),
        StatusCode::OK
    );
}
