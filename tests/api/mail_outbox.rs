//! The mail outbox: a request that answered 202 has its mail stored, and the mail is delivered
//! later whatever happens meanwhile: a refusing SMTP server, a restart, a flood, a second
//! instance delivering from the same table. (Every signup also queues a verification mail.)

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with};
use crate::smtp_sink::{ReceivedMail, SmtpSink, spawn_app_with_mail};

async fn forgot(app: &TestApp, email: &str) -> Response {
    app.post_json("/v1/auth/password/forgot", &json!({ "email": email }))
        .await
}

/// A port nothing listens on: every delivery fails to connect.
fn unreachable_smtp() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("smtp://127.0.0.1:{port}")
}

fn subject(mail: &ReceivedMail) -> String {
    mail.header("Subject").unwrap_or_default()
}

async fn outbox_rows(app: &TestApp, condition: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) FROM mail_outbox WHERE {condition}"
    ))
    .await
}

/// Waits (up to 20 s) until `count` rows of the outbox meet `condition`.
async fn wait_for_rows(app: &TestApp, condition: &str, count: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while outbox_rows(app, condition).await != count {
        assert!(
            Instant::now() < deadline,
            "the outbox never had {count} rows with {condition}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_mail_refused_twice_is_retried_and_arrives_once() {
    let sink = SmtpSink::start_refusing(2).await;
    let url = sink.url();
    let app = spawn_app_with(|config| {
        config.mail.smtp_url = Some(url);
        config.mail.mail_retry_delay = 1;
    })
    .await;
    // The signup's verification mail meets both refusals.
    app.signed_up("ada@example.com").await;

    let mail = sink.next_mail().await;
    assert_eq!(mail.rcpt_to, ["ada@example.com"]);
    assert_eq!(subject(&mail), "Confirm your email address");
    sink.assert_no_mail_within(Duration::from_secs(2)).await;
    wait_for_rows(&app, "delivered_at IS NOT NULL AND attempts = 2", 1).await;
}

#[tokio::test]
async fn a_mail_accepted_before_a_restart_is_delivered_after_it() {
    let app = spawn_app_with(|config| {
        config.mail.smtp_url = Some(unreachable_smtp());
        config.mail.mail_retry_delay = 1;
    })
    .await;
    app.signed_up("ada@example.com").await;
    let accepted = forgot(&app, "ada@example.com").await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    wait_for_rows(&app, "kind = 'password_reset' AND attempts >= 1", 1).await;

    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = app
        .restart_with(|config| config.mail.smtp_url = Some(url))
        .await;
    // The signup's verification mail and the reset link, in either order.
    let mut subjects = vec![
        subject(&sink.next_mail().await),
        subject(&sink.next_mail().await),
    ];
    subjects.sort();
    assert_eq!(
        subjects,
        ["Confirm your email address", "Reset your password"]
    );
    wait_for_rows(&app, "delivered_at IS NOT NULL", 2).await;
}

#[tokio::test]
async fn a_mail_that_fails_every_delivery_allowed_becomes_a_dead_letter() {
    let app = spawn_app_with(|config| {
        config.mail.smtp_url = Some(unreachable_smtp());
        config.mail.mail_max_attempts = 2;
        config.mail.mail_retry_delay = 1;
    })
    .await;
    app.signed_up("ada@example.com").await;
    let accepted = forgot(&app, "ada@example.com").await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);

    let dead = "kind = 'password_reset' AND dead_at IS NOT NULL AND attempts = 2";
    wait_for_rows(&app, dead, 1).await;
    let explained = "kind = 'password_reset' AND lower(last_error) LIKE '%connect%'";
    assert_eq!(outbox_rows(&app, explained).await, 1);
}

#[tokio::test]
async fn a_flood_of_reset_requests_stores_every_mail() {
    let app = spawn_app_with(|config| config.mail.smtp_url = Some(unreachable_smtp())).await;
    app.signed_up("ada@example.com").await;
    // More than the in-memory queue of old held (1,024), which dropped the rest.
    let flood =
        futures_util::future::join_all((0..1_100).map(|_| forgot(&app, "ada@example.com"))).await;
    assert!(
        flood
            .iter()
            .all(|response| response.status() == StatusCode::ACCEPTED)
    );
    assert_eq!(outbox_rows(&app, "kind = 'password_reset'").await, 1_100);
}

#[tokio::test]
async fn two_instances_deliver_each_of_two_hundred_mails_exactly_once() {
    let (a, sink) = spawn_app_with_mail(|_| {}).await;
    let b = a.another_instance().await;
    a.signed_up("ada@example.com").await;
    for n in 0..200 {
        let instance = if n % 2 == 0 { &a } else { &b };
        let accepted = forgot(instance, "ada@example.com").await;
        assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    }

    // The 200 reset links and the signup's verification mail.
    let mut tokens = HashSet::new();
    for _ in 0..201 {
        let mail = sink.next_mail().await;
        if subject(&mail) == "Reset your password" {
            tokens.insert(mail.token());
        }
    }
    assert_eq!(tokens.len(), 200, "a mail was delivered twice");
    sink.assert_no_mail_within(Duration::from_secs(2)).await;
    wait_for_rows(&a, "delivered_at IS NOT NULL", 201).await;
}

#[tokio::test]
async fn a_stopping_server_finishes_the_delivery_in_flight() {
    // A relay that takes two seconds to accept each mail.
    let sink = SmtpSink::start_with_delay(Duration::from_secs(2)).await;
    let url = sink.url();
    let app = spawn_app_with(|config| config.mail.smtp_url = Some(url)).await;
    app.signed_up("ada@example.com").await;
    wait_for_rows(&app, "claimed_until IS NOT NULL", 1).await;

    app.stop().await;

    assert_eq!(
        subject(&sink.next_mail().await),
        "Confirm your email address"
    );
    wait_for_rows(&app, "delivered_at IS NOT NULL", 1).await;
}
