//! Forgotten passwords, over real SMTP: the mailed link, single use, expiry, the answer that
//! does not tell which accounts exist, session revocation, and the limits.

use std::time::{Duration, Instant};

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem, spawn_app_with};
use crate::smtp_sink::{ReceivedMail, SmtpSink, spawn_app_with_mail};

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn forgot(app: &TestApp, email: &str) -> Response {
    app.post_json("/v1/auth/password/forgot", &json!({ "email": email }))
        .await
}

async fn forgot_from(app: &TestApp, ip: &str, email: &str) -> Response {
    app.client
        .post(app.url("/v1/auth/password/forgot"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap()
}

async fn reset(app: &TestApp, token: &str, new_password: &str) -> Response {
    app.post_json(
        "/v1/auth/password/reset",
        &json!({ "token": token, "new_password": new_password }),
    )
    .await
}

/// Signs `email` up and takes the verification mail that signup sends off the sink.
async fn signed_up(app: &TestApp, sink: &SmtpSink, email: &str) -> Value {
    let tokens = app.signed_up(email).await;
    let mail = sink.next_mail().await;
    assert!(mail.link().contains("/verify-email#token="));
    tokens
}

/// Asks for a reset link for `email` and returns the token mailed for it.
async fn reset_token(app: &TestApp, sink: &SmtpSink, email: &str) -> String {
    assert_eq!(forgot(app, email).await.status(), StatusCode::ACCEPTED);
    let mail = sink.next_mail().await;
    assert_eq!(mail.rcpt_to, [email]);
    mail.token()
}

#[tokio::test]
async fn a_mailed_link_resets_the_password_once_and_ends_every_session() {
    let (app, sink) = spawn_app_with_mail(|_| {}).await;
    let signup = signed_up(&app, &sink, "ada@example.com").await;
    let login: Value = app
        .login("ada@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();

    let response = forgot(&app, "Ada@Example.com").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let token = checked_reset_token(&sink.next_mail().await);
    // Only the token's SHA-256 is stored.
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT token_hash FROM email_tokens WHERE purpose = 'password_reset'")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(stored, [latchkey::auth::token_hash(&token)]);

    assert_eq!(
        reset(&app, &token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );

    // The password changed.
    assert_problem(
        app.login("ada@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        app.login("ada@example.com", NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_sessions_are_over(&app, &[&signup, &login]).await;
    // The token is spent.
    assert_problem(
        reset(&app, &token, "yet another passphrase").await,
        StatusCode::BAD_REQUEST,
        "invalid_reset_token",
    )
    .await;
    assert_eq!(
        app.login("ada@example.com", NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
}

/// The token of ada@example.com's reset mail, once its envelope, subject, link (in both parts)
/// and stated lifetime are checked.
fn checked_reset_token(mail: &ReceivedMail) -> String {
    assert_eq!(mail.mail_from, "no-reply@localhost");
    assert_eq!(mail.rcpt_to, ["ada@example.com"]);
    assert_eq!(mail.header("Subject").unwrap(), "Reset your password");
    let link = mail.link();
    let token = mail.token();
    assert_eq!(
        link,
        format!("http://app.test/reset-password#token={token}")
    );
    assert_eq!(token.len(), 43);
    let html = mail.part("text/html");
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    assert!(mail.part("text/plain").contains("1 hour"));
    token
}

/// Every one of these sessions is over: its access token at once, its refresh token too.
async fn assert_sessions_are_over(app: &TestApp, sessions: &[&Value]) {
    for tokens in sessions {
        let me = app.me(tokens["access_token"].as_str().unwrap()).await;
        assert_problem(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
        let refresh = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
        assert_problem(refresh, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    }
}

#[tokio::test]
async fn known_and_unknown_addresses_get_the_same_answer_and_only_one_gets_mail() {
    let (app, sink) = spawn_app_with_mail(|_| {}).await;
    signed_up(&app, &sink, "ada@example.com").await;

    let known = forgot(&app, "ada@example.com").await;
    let unknown = forgot(&app, "nobody@example.com").await;

    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    let header_names = |response: &Response| {
        let mut names: Vec<String> = response
            .headers()
            .keys()
            .filter(|name| *name != "date")
            .map(|name| name.to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(header_names(&known), header_names(&unknown));
    let known = known.text().await.unwrap();
    assert_eq!(known, unknown.text().await.unwrap());
    let body: Value = serde_json::from_str(&known).unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("If an account")
    );

    assert_eq!(sink.next_mail().await.rcpt_to, ["ada@example.com"]);
    sink.assert_no_mail_within(Duration::from_millis(500)).await;
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn the_answer_takes_the_same_time_whether_or_not_the_account_exists() {
    // A relay that takes 300 ms per mail: if the mail (or anything else that only happens for a
    // real account) were on the request path, known addresses would answer that much later.
    let sink = SmtpSink::start_with_delay(Duration::from_millis(300)).await;
    let url = sink.url();
    let app = spawn_app_with(|config| config.mail.smtp_url = Some(url)).await;
    app.signed_up("ada@example.com").await;
    forgot(&app, "warm-up@example.com").await;

    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    // Interleaved, so drift in the machine's load hits both alike.
    for i in 0..15 {
        for (email, samples) in [
            ("ada@example.com".to_owned(), &mut known),
            (format!("nobody{i}@example.com"), &mut unknown),
        ] {
            let started = Instant::now();
            let response = forgot(&app, &email).await;
            samples.push(started.elapsed());
            assert_eq!(response.status(), StatusCode::ACCEPTED);
        }
    }
    let (known, unknown) = (median(known), median(unknown));
    let (fast, slow) = (known.min(unknown), known.max(unknown));
    assert!(
        slow < Duration::from_millis(150),
        "a request waited for the mail: known {known:?}, unknown {unknown:?}"
    );
    assert!(
        slow.as_secs_f64() <= fast.as_secs_f64() * 1.5 + 0.005,
        "medians differ: known {known:?}, unknown {unknown:?}"
    );
    // And the mails did go out, one per request for the real account (the signup's first).
    for _ in 0..16 {
        sink.next_mail().await;
    }
}

#[tokio::test]
async fn an_expired_link_is_refused_and_stays_unspent() {
    let (app, sink) = spawn_app_with_mail(|config| config.mail.reset_ttl = 1).await;
    signed_up(&app, &sink, "ada@example.com").await;
    let token = reset_token(&app, &sink, "ada@example.com").await;

    tokio::time::sleep(Duration::from_millis(1500)).await;

    assert_problem(
        reset(&app, &token, NEW_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_reset_token",
    )
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM email_tokens WHERE used_at IS NOT NULL")
            .await,
        0
    );
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_and_verification_tokens_are_not_reset_tokens() {
    let (app, sink) = spawn_app_with_mail(|_| {}).await;
    app.signed_up("ada@example.com").await;
    let verification = sink.next_mail().await.token();

    for token in [
        "",
        "not-a-token",
        "Mle2jN31EugLSzA19f-uF0BZkrPr2Q60co-_WJFD40s",
        verification.as_str(),
    ] {
        assert_problem(
            reset(&app, token, NEW_PASSWORD).await,
            StatusCode::BAD_REQUEST,
            "invalid_reset_token",
        )
        .await;
    }
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn bodies_that_do_not_fit_get_422() {
    let (app, sink) = spawn_app_with_mail(|_| {}).await;
    signed_up(&app, &sink, "ada@example.com").await;
    let token = reset_token(&app, &sink, "ada@example.com").await;

    let body = assert_problem(
        forgot(&app, "not an email").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "email");
    let body = assert_problem(
        reset(&app, &token, "short").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "new_password");
    let missing = app
        .post_json("/v1/auth/password/reset", &json!({ "token": token }))
        .await;
    assert_problem(
        missing,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    // None of that spent the token.
    assert_eq!(
        reset(&app, &token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn using_one_link_kills_the_others_and_so_does_a_password_change() {
    let (app, sink) = spawn_app_with_mail(|_| {}).await;
    signed_up(&app, &sink, "ada@example.com").await;
    let first = reset_token(&app, &sink, "ada@example.com").await;
    let second = reset_token(&app, &sink, "ada@example.com").await;

    assert_eq!(
        reset(&app, &second, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(
        reset(&app, &first, PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_reset_token",
    )
    .await;

    // A link mailed before a password change must not undo the change.
    let tokens: Value = app
        .login("ada@example.com", NEW_PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let stale = reset_token(&app, &sink, "ada@example.com").await;
    let response = app
        .call(
            Method::PUT,
            "/v1/me/password",
            tokens["access_token"].as_str().unwrap(),
            Some(&json!({ "current_password": NEW_PASSWORD, "new_password": PASSWORD })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_problem(
        reset(&app, &stale, "attacker's choice 123").await,
        StatusCode::BAD_REQUEST,
        "invalid_reset_token",
    )
    .await;
}

#[tokio::test]
async fn concurrent_resets_with_one_token_succeed_once() {
    let (app, sink) = spawn_app_with_mail(|_| {}).await;
    signed_up(&app, &sink, "ada@example.com").await;
    let token = reset_token(&app, &sink, "ada@example.com").await;

    let (a, b) = tokio::join!(
        reset(&app, &token, "first passphrase wins"),
        reset(&app, &token, "second passphrase wins"),
    );

    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::NO_CONTENT, StatusCode::BAD_REQUEST]);
    let winner = if a.status() == StatusCode::NO_CONTENT {
        "first passphrase wins"
    } else {
        "second passphrase wins"
    };
    assert_eq!(
        app.login("ada@example.com", winner).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_link_mailed_to_a_former_address_does_not_work() {
    let (app, sink) = spawn_app_with_mail(|_| {}).await;
    let tokens = signed_up(&app, &sink, "ada@example.com").await;
    let token = reset_token(&app, &sink, "ada@example.com").await;

    let response = app
        .call(
            Method::PATCH,
            "/v1/me",
            tokens["access_token"].as_str().unwrap(),
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

    assert_problem(
        reset(&app, &token, NEW_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_reset_token",
    )
    .await;
}

#[tokio::test]
async fn a_disabled_account_gets_the_same_answer_and_no_mail() {
    let (app, sink) = spawn_app_with_mail(|config| {
        config.operations.bootstrap_admin_email = Some("root@example.com".into());
        config.operations.bootstrap_admin_password = Some(PASSWORD.into());
    })
    .await;
    let ada = signed_up(&app, &sink, "ada@example.com").await;
    let admin: Value = app
        .login("root@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let response = app
        .call(
            Method::PATCH,
            &format!("/v1/users/{}", ada["user"]["id"].as_str().unwrap()),
            admin["access_token"].as_str().unwrap(),
            Some(&json!({ "disabled": true })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    assert_eq!(
        forgot(&app, "ada@example.com").await.status(),
        StatusCode::ACCEPTED
    );
    sink.assert_no_mail_within(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn a_failed_delivery_is_not_shown_to_the_requester() {
    // Nothing listens on this port any more: every delivery fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let app = spawn_app_with(|config| config.mail.smtp_url = Some(url)).await;
    app.signed_up("ada@example.com").await;

    let known = forgot(&app, "ada@example.com").await;
    let unknown = forgot(&app, "nobody@example.com").await;

    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
}

#[tokio::test]
async fn requests_are_limited_per_address_and_per_email_alike_for_unknown_ones() {
    let (app, sink) = spawn_app_with_mail(|config| {
        config.abuse.rate_limits = true;
        config.server.trusted_proxies = vec!["127.0.0.1".into()];
        config.abuse.rate_forgot_per_ip = "3/h".parse().unwrap();
        config.abuse.rate_forgot_per_email = "2/h".parse().unwrap();
    })
    .await;
    signed_up(&app, &sink, "ada@example.com").await;

    // Per email, from any address, known or not.
    for email in ["ada@example.com", "nobody@example.com"] {
        for ip in ["198.51.100.1", "198.51.100.2"] {
            let response = forgot_from(&app, ip, email).await;
            assert_eq!(response.status(), StatusCode::ACCEPTED);
        }
        let response = forgot_from(&app, "198.51.100.3", email).await;
        assert!(response.headers().contains_key("retry-after"));
        assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
    // Per address, whatever the email.
    for i in 0..3 {
        let response = forgot_from(&app, "203.0.113.9", &format!("x{i}@example.com")).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    assert_problem(
        forgot_from(&app, "203.0.113.9", "x3@example.com").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    // Only the two allowed requests for the real account were mailed.
    sink.next_mail().await;
    sink.next_mail().await;
    sink.assert_no_mail_within(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_reset_verifies_the_address_it_was_mailed_to() {
    let (app, sink) =
        spawn_app_with_mail(|config| config.mail.require_email_verification = true).await;
    // Signup hands out no session then, only the verification link.
    assert_eq!(
        app.signup("ada@example.com").await.status(),
        StatusCode::ACCEPTED
    );
    sink.next_mail().await;
    assert_problem(
        app.login("ada@example.com", PASSWORD).await,
        StatusCode::FORBIDDEN,
        "email_not_verified",
    )
    .await;
    sink.next_mail().await; // the fresh verification link that refusal sends

    let token = reset_token(&app, &sink, "ada@example.com").await;
    assert_eq!(
        reset(&app, &token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );

    let response = app.login("ada@example.com", NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["email_verified"], true);
}
