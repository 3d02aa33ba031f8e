//! Email verification, over real SMTP: the link signup mails, single use, expiry, resending,
//! email changes, and logins that wait for a verified address when so configured.

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem};
use crate::smtp_sink::{SmtpSink, spawn_app_with_mail};

async fn verify(app: &TestApp, token: &str) -> Response {
    app.post_json("/v1/auth/email/verify", &json!({ "token": token }))
        .await
}

async fn resend(app: &TestApp, access_token: &str) -> Response {
    app.call(Method::POST, "/v1/auth/email/resend", access_token, None)
        .await
}

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

async fn me(app: &TestApp, tokens: &Value) -> Value {
    let response = app.me(access(tokens)).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The verification token of the next mail, which must be for `email`.
async fn verification_token(sink: &SmtpSink, email: &str) -> String {
    let mail = sink.next_mail().await;
    assert_eq!(mail.rcpt_to, [email]);
    assert_eq!(
        mail.header("Subject").unwrap(),
        "Confirm your email address"
    );
    let token = mail.token();
    assert_eq!(
        mail.link(),
        format!("http://app.test/verify-email#token={token}")
    );
    assert!(mail.part("text/html").contains(&mail.link()));
    token
}

#[tokio::test]
async fn signup_mails_a_link_that_verifies_the_address_once() {
    let (app, sink) = spawn_app_with_mail(|_| {}).await;
    let tokens = app.signed_up("ada@example.com").await;
    assert_eq!(tokens["user"]["email_verified"], false);

    let mail = sink.next_mail().await;
    assert!(mail.part("text/plain").contains("within 24 hours"));
    let token = mail.token();
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT token_hash FROM email_tokens WHERE purpose = 'email_verification'",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(stored, [latchkey::auth::token_hash(&token)]);

    assert_eq!(verify(&app, &token).await.status(), StatusCode::NO_CONTENT);

    assert_eq!(me(&app, &tokens).await["email_verified"], true);
    assert_problem(
        verify(&app, &token).await,
        StatusCode::BAD_REQUEST,
        "invalid_verification_token",
    )
    .await;
    assert_eq!(me(&app, &tokens).await["email_verified"], true);
}

#[tokio::test]
async fn unknown_expired_and_reset_tokens_do_not_verify() {
    let (app, sink) = spawn_app_with_mail(|config| config.mail.verify_ttl = 1).await;
    let tokens = app.signed_up("ada@example.com").await;
    let expiring = verification_token(&sink, "ada@example.com").await;
    app.post_json(
        "/v1/auth/password/forgot",
        &json!({ "email": "ada@example.com" }),
    )
    .await;
    let reset = sink.next_mail().await.token();

    tokio::time::sleep(Duration::from_millis(1500)).await;

    for token in ["", "not-a-token", expiring.as_str(), reset.as_str()] {
        assert_problem(
            verify(&app, token).await,
            StatusCode::BAD_REQUEST,
            "invalid_verification_token",
        )
        .await;
    }
    assert_eq!(me(&app, &tokens).await["email_verified"], false);
}

#[tokio::test]
async fn resend_mails_a_new_link_and_is_limited_per_user() {
    let (app, sink) = spawn_app_with_mail(|config| {
        config.abuse.rate_limits = true;
        config.abuse.rate_resend_per_user = "2/h".parse().unwrap();
    })
    .await;
    let ada = app.signed_up("ada@example.com").await;
    let bob = app.signed_up("bob@example.com").await;
    sink.next_mail().await;
    sink.next_mail().await;

    let response = resend(&app, access(&ada)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].is_string());
    let first = verification_token(&sink, "ada@example.com").await;
    assert_eq!(
        resend(&app, access(&ada)).await.status(),
        StatusCode::ACCEPTED
    );
    let second = verification_token(&sink, "ada@example.com").await;
    assert_ne!(first, second);
    let response = resend(&app, access(&ada)).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another user has an allowance of their own.
    assert_eq!(
        resend(&app, access(&bob)).await.status(),
        StatusCode::ACCEPTED
    );
    verification_token(&sink, "bob@example.com").await;
    // Either of Ada's links works.
    assert_eq!(verify(&app, &first).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&app, &ada).await["email_verified"], true);
}

#[tokio::test]
async fn resend_needs_a_session_and_sends_nothing_for_a_verified_address() {
    let (app, sink) = spawn_app_with_mail(|_| {}).await;
    let tokens = app.signed_up("ada@example.com").await;
    let token = verification_token(&sink, "ada@example.com").await;

    let anonymous = app
        .client
        .post(app.url("/v1/auth/email/resend"))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthorized").await;

    assert_eq!(verify(&app, &token).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        resend(&app, access(&tokens)).await.status(),
        StatusCode::ACCEPTED
    );
    sink.assert_no_mail_within(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn a_confirmed_new_email_is_verified_and_links_to_the_old_one_stop_working() {
    let (app, sink) = spawn_app_with_mail(|_| {}).await;
    let tokens = app.signed_up("ada@example.com").await;
    verification_token(&sink, "ada@example.com").await;
    let unused = {
        let response = resend(&app, access(&tokens)).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        verification_token(&sink, "ada@example.com").await
    };

    let response = app
        .call(
            Method::PATCH,
            "/v1/me",
            access(&tokens),
            Some(&json!({ "email": "ada@new.example.com", "current_password": PASSWORD })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut confirmation = None;
    for _ in 0..2 {
        let mail = sink.next_mail().await;
        if mail.rcpt_to == ["ada@new.example.com"] {
            confirmation = Some(mail.token());
        }
    }
    let response = app
        .post_json(
            "/v1/auth/email/confirm-change",
            &json!({ "token": confirmation.expect("no confirmation mail") }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let user = me(&app, &tokens).await;
    assert_eq!(user["email"], "ada@new.example.com");
    assert_eq!(user["email_verified"], true);
    // A link mailed to the former address no longer does anything.
    assert_problem(
        verify(&app, &unused).await,
        StatusCode::BAD_REQUEST,
        "invalid_verification_token",
    )
    .await;

    // Changing only the name leaves the mark alone and sends nothing.
    let response = app
        .call(
            Method::PATCH,
            "/v1/me",
            access(&tokens),
            Some(&json!({ "name": "Ada" })),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email_verified"], true);
    assert!(body.get("pending_email").is_none(), "{body}");
    sink.assert_no_mail_within(Duration::from_millis(300)).await;
}

/// The subject of the mail to an account's owner when their address is signed up again.
const SIGNUP_NOTICE: &str = "Someone tried to sign up with your email address";

/// The keys of a JSON object, sorted.
fn keys(body: &Value) -> Vec<String> {
    let mut keys: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn logins_wait_for_a_verified_address_when_required() {
    let (app, sink) = spawn_app_with_mail(|config| {
        config.mail.require_email_verification = true;
        config.operations.bootstrap_admin_email = Some("root@example.com".into());
        config.operations.bootstrap_admin_password = Some(PASSWORD.into());
    })
    .await;
    assert_eq!(
        app.signup("ada@example.com").await.status(),
        StatusCode::ACCEPTED
    );
    let from_signup = verification_token(&sink, "ada@example.com").await;

    // A wrong password learns nothing about the address.
    assert_problem(
        app.login("ada@example.com", "wrong password").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    sink.assert_no_mail_within(Duration::from_millis(300)).await;
    // The right one is told, and gets a fresh link (the first may have expired).
    assert_problem(
        app.login("ada@example.com", PASSWORD).await,
        StatusCode::FORBIDDEN,
        "email_not_verified",
    )
    .await;
    let from_login = verification_token(&sink, "ada@example.com").await;
    assert_ne!(from_signup, from_login);

    assert_eq!(
        verify(&app, &from_login).await.status(),
        StatusCode::NO_CONTENT
    );
    let response = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap()["user"]["email_verified"],
        true
    );
    // An admin an operator created counts as verified.
    let admin = app.login("root@example.com", PASSWORD).await;
    assert_eq!(admin.status(), StatusCode::OK);
}

#[tokio::test]
async fn when_verification_is_required_signup_hands_out_no_session() {
    let (app, sink) =
        spawn_app_with_mail(|config| config.mail.require_email_verification = true).await;

    let response = app.signup("ada@example.com").await;

    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(response.headers().get("set-cookie").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(keys(&body), ["message"], "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
    // The mailed link is the way in.
    let token = verification_token(&sink, "ada@example.com").await;
    assert_eq!(verify(&app, &token).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn when_verification_is_required_a_taken_address_gets_the_same_answer_and_its_owner_a_notice()
{
    let (app, sink) =
        spawn_app_with_mail(|config| config.mail.require_email_verification = true).await;
    let first = app.signup("ada@example.com").await;
    let first_status = first.status();
    let first_body: Value = first.json().await.unwrap();
    verification_token(&sink, "ada@example.com").await;

    let again = app
        .post_json(
            "/v1/auth/signup",
            &json!({ "email": "ADA@example.com", "password": "another passphrase" }),
        )
        .await;

    assert_eq!(again.status(), first_status);
    let again_body: Value = again.json().await.unwrap();
    assert_eq!(keys(&again_body), keys(&first_body));
    assert_eq!(again_body, first_body);
    // The owner is told, with no link that could do anything.
    let notice = sink.next_mail().await;
    assert_eq!(notice.rcpt_to, ["ada@example.com"]);
    assert_eq!(notice.header("Subject").unwrap(), SIGNUP_NOTICE);
    let text = notice.part("text/plain");
    assert!(
        text.contains("log in") && text.contains("reset your password"),
        "{text}"
    );
    assert!(!text.contains("#token="), "{text}");
    assert!(notice.part("text/html").contains("ada@example.com"));
    // Nothing about the account changed: one user, the first password.
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
    assert_problem(
        app.login("ada@example.com", "another passphrase").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    sink.assert_no_mail_within(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn when_verification_is_required_an_unverified_session_cannot_be_refreshed() {
    // A session from before the setting was turned on.
    let (app, sink) = spawn_app_with_mail(|_| {}).await;
    let tokens = app.signed_up("ada@example.com").await;
    let token = verification_token(&sink, "ada@example.com").await;
    let app = app
        .restart_with(|config| config.mail.require_email_verification = true)
        .await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    assert_problem(
        app.refresh(refresh_token).await,
        StatusCode::FORBIDDEN,
        "email_not_verified",
    )
    .await;
    // The refusal changed nothing: the token was not spent.
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM sessions \
             WHERE refresh_generation = 0 AND refresh_rotated_at IS NULL"
        )
        .await,
        1
    );

    // Verified, the same session refreshes again.
    assert_eq!(verify(&app, &token).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.refresh(refresh_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_required_verification_a_taken_address_still_gets_409() {
    // Signup must then hand out a session at once, which it cannot do for a taken address, so
    // it cannot pretend: the 409 stays.
    let (app, sink) = spawn_app_with_mail(|_| {}).await;
    app.signed_up("ada@example.com").await;
    verification_token(&sink, "ada@example.com").await;

    assert_problem(
        app.signup("ada@example.com").await,
        StatusCode::CONFLICT,
        "email_taken",
    )
    .await;
    sink.assert_no_mail_within(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn by_default_an_unverified_user_logs_in() {
    let (app, sink) = spawn_app_with_mail(|_| {}).await;
    app.signed_up("ada@example.com").await;
    sink.next_mail().await;

    let response = app.login("ada@example.com", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["email_verified"], false);
    sink.assert_no_mail_within(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn the_smtp_url_credentials_and_sender_are_used() {
    let sink = SmtpSink::start().await;
    let url = sink.url().replace("smtp://", "smtp://mailer:p%40ss@");
    let app = crate::helpers::spawn_app_with(|config| {
        config.mail.smtp_url = Some(url);
        config.mail.mail_from = "Acme Accounts <accounts@acme.test>".into();
        config.mail.public_url = "https://acme.test/app/".into();
    })
    .await;

    app.signed_up("ada@example.com").await;

    let mail = sink.next_mail().await;
    assert_eq!(mail.auth.as_deref(), Some("mailer:p@ss"));
    assert_eq!(mail.mail_from, "accounts@acme.test");
    assert!(mail.header("From").unwrap().contains("Acme Accounts"));
    assert!(
        mail.link()
            .starts_with("https://acme.test/app/verify-email#token="),
        "{}",
        mail.link()
    );
}
