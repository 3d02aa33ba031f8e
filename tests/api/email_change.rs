//! Changing the email address: the new one takes effect only through the link mailed to it, the
//! old one is told, and the new one is taken only at confirmation.

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem};
use crate::smtp_sink::{SmtpSink, spawn_app_with_mail};

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

async fn change_email(app: &TestApp, tokens: &Value, email: &str) -> Response {
    app.call(
        Method::PATCH,
        "/v1/me",
        access(tokens),
        Some(&json!({ "email": email, "current_password": PASSWORD })),
    )
    .await
}

async fn confirm(app: &TestApp, token: &str) -> Response {
    app.post_json("/v1/auth/email/confirm-change", &json!({ "token": token }))
        .await
}

/// Signs `email` up and takes its verification mail.
async fn signed_up(app: &TestApp, sink: &SmtpSink, email: &str) -> Value {
    let tokens = app.signed_up(email).await;
    assert_eq!(sink.next_mail().await.rcpt_to, [email]);
    tokens
}

/// The two mails of a requested change, in either order: the confirmation link's token (to
/// `new`) and the notice's text (to `old`).
async fn change_mails(sink: &SmtpSink, old: &str, new: &str) -> (String, String) {
    let (mut token, mut notice) = (None, None);
    for _ in 0..2 {
        let mail = sink.next_mail().await;
        if mail.rcpt_to == [new] {
            assert_eq!(
                mail.header("Subject").unwrap(),
                "Confirm your new email address"
            );
            assert!(
                mail.link()
                    .starts_with("http://app.test/confirm-email-change#token="),
                "{}",
                mail.link()
            );
            assert!(mail.part("text/html").contains(&mail.link()));
            token = Some(mail.token());
        } else {
            assert_eq!(mail.rcpt_to, [old]);
            assert_eq!(
                mail.header("Subject").unwrap(),
                "Your email address is about to change"
            );
            let text = mail.part("text/plain");
            assert!(!text.contains("#token="), "{text}");
            notice = Some(text);
        }
    }
    (
        token.expect("no confirmation mail"),
        notice.expect("no notice"),
    )
}

async fn email_of(app: &TestApp, tokens: &Value) -> Value {
    app.me(access(tokens)).await.json().await.unwrap()
}

#[tokio::test]
async fn a_new_address_takes_effect_only_once_confirmed_from_its_mailbox() {
    let (app, sink) = spawn_app_with_mail(|_| {}).await;
    let ada = signed_up(&app, &sink, "ada@example.com").await;

    let response = change_email(&app, &ada, "Ada@New.example").await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["pending_email"], "ada@new.example");
    let (token, notice) = change_mails(&sink, "ada@example.com", "ada@new.example").await;
    assert!(notice.contains("ada@new.example"), "{notice}");
    // Until confirmed, only the old address logs in.
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_problem(
        app.login("ada@new.example", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(email_of(&app, &ada).await["email"], "ada@example.com");
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT token_hash FROM email_tokens WHERE purpose = 'email_change'")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(stored, [latchkey::auth::token_hash(&token)]);

    assert_eq!(confirm(&app, &token).await.status(), StatusCode::NO_CONTENT);

    let user = email_of(&app, &ada).await;
    assert_eq!(user["email"], "ada@new.example");
    // The link reached the new mailbox: the new address is verified.
    assert_eq!(user["email_verified"], true);
    assert_eq!(
        app.login("ada@new.example", PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_problem(
        app.login("ada@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    // Used once, the token is spent.
    assert_problem(
        confirm(&app, &token).await,
        StatusCode::BAD_REQUEST,
        "invalid_email_change_token",
    )
    .await;
}

#[tokio::test]
async fn expired_unknown_and_other_tokens_do_not_confirm() {
    let (app, sink) = spawn_app_with_mail(|config| config.mail.verify_ttl = 1).await;
    let ada = signed_up(&app, &sink, "ada@example.com").await;
    assert_eq!(
        change_email(&app, &ada, "ada@new.example").await.status(),
        StatusCode::OK
    );
    let (expiring, _) = change_mails(&sink, "ada@example.com", "ada@new.example").await;
    app.post_json(
        "/v1/auth/password/forgot",
        &json!({ "email": "ada@example.com" }),
    )
    .await;
    let reset = sink.next_mail().await.token();

    tokio::time::sleep(Duration::from_millis(1500)).await;

    for token in ["", "not-a-token", expiring.as_str(), reset.as_str()] {
        assert_problem(
            confirm(&app, token).await,
            StatusCode::BAD_REQUEST,
            "invalid_email_change_token",
        )
        .await;
    }
    assert_eq!(email_of(&app, &ada).await["email"], "ada@example.com");
}

#[tokio::test]
async fn an_address_taken_before_confirmation_gets_409_and_changes_nothing() {
    let (app, sink) = spawn_app_with_mail(|_| {}).await;
    let ada = signed_up(&app, &sink, "ada@example.com").await;
    assert_eq!(
        change_email(&app, &ada, "shared@example.com")
            .await
            .status(),
        StatusCode::OK
    );
    let (token, _) = change_mails(&sink, "ada@example.com", "shared@example.com").await;
    // Someone else signs the address up first.
    signed_up(&app, &sink, "shared@example.com").await;

    assert_problem(
        confirm(&app, &token).await,
        StatusCode::CONFLICT,
        "email_taken",
    )
    .await;

    assert_eq!(email_of(&app, &ada).await["email"], "ada@example.com");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM email_tokens WHERE purpose = 'email_change' AND used_at IS NOT NULL")
            .await,
        0
    );
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_password_change_cancels_a_pending_email_change() {
    let (app, sink) = spawn_app_with_mail(|_| {}).await;
    let ada = signed_up(&app, &sink, "ada@example.com").await;
    assert_eq!(
        change_email(&app, &ada, "mallory@example.com")
            .await
            .status(),
        StatusCode::OK
    );
    let (token, _) = change_mails(&sink, "ada@example.com", "mallory@example.com").await;

    // The owner, warned by the notice, changes the password.
    let response = app
        .call(
            Method::PUT,
            "/v1/me/password",
            access(&ada),
            Some(&json!({ "current_password": PASSWORD, "new_password": "a much better passphrase" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    assert_problem(
        confirm(&app, &token).await,
        StatusCode::BAD_REQUEST,
        "invalid_email_change_token",
    )
    .await;
    assert_eq!(email_of(&app, &ada).await["email"], "ada@example.com");
}
