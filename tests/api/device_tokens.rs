//! Device tokens: an attacker without the password cannot lock the owner out of a client that
//! logged in before, and guesses against one account stay bounded.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, spawn_app_with};

async fn login_with(
    app: &TestApp,
    ip: &str,
    email: &str,
    password: &str,
    device_token: Option<&str>,
) -> Response {
    let mut body = json!({ "email": email, "password": password });
    if let Some(token) = device_token {
        body["device_token"] = json!(token);
    }
    app.client
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The default limits (20/min per address, 10/min per account, lockout after 5), with client
/// addresses taken from X-Forwarded-For.
async fn app_with_limits() -> TestApp {
    spawn_app_with(|config| {
        config.abuse.rate_limits = true;
        config.server.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await
}

/// Wrong passwords for `email`, each from a new address; how many were answered (not 429).
async fn guesses(app: &TestApp, email: &str, count: u8, device_token: Option<&str>) -> usize {
    let mut answered = 0;
    for n in 0..count {
        let ip = format!("198.51.100.{n}");
        let response = login_with(app, &ip, email, "wrong password", device_token).await;
        match response.status() {
            StatusCode::UNAUTHORIZED => answered += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    answered
}

async fn device_token_of(response: Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["device_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_attacker_on_many_addresses_cannot_lock_the_owner_out_of_a_known_device() {
    let app = app_with_limits().await;
    let owner_ip = "203.0.113.5";
    let signup = app.signed_up("ada@example.com").await;
    assert!(signup["device_token"].is_string());
    let token =
        device_token_of(login_with(&app, owner_ip, "ada@example.com", PASSWORD, None).await).await;

    // The attacker locks the owner's own address out (a shared NAT), then spends the account's
    // allowance from many addresses.
    for _ in 0..5 {
        let response = login_with(&app, owner_ip, "ada@example.com", "wrong password", None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    guesses(&app, "ada@example.com", 30, None).await;

    let elsewhere = login_with(&app, "203.0.113.7", "ada@example.com", PASSWORD, None).await;
    assert_eq!(elsewhere.status(), StatusCode::TOO_MANY_REQUESTS);
    let at_home = login_with(&app, owner_ip, "ada@example.com", PASSWORD, None).await;
    assert_eq!(at_home.status(), StatusCode::TOO_MANY_REQUESTS);

    // The owner's known device gets in, from the locked-out address or any other.
    let next = device_token_of(
        login_with(&app, owner_ip, "ada@example.com", PASSWORD, Some(&token)).await,
    )
    .await;
    assert_ne!(next, token, "each login hands out a new device token");
    let response = login_with(
        &app,
        "203.0.113.7",
        "ada@example.com",
        PASSWORD,
        Some(&next),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    // The signup's device token is one too.
    let from_signup = signup["device_token"].as_str().unwrap();
    let response = login_with(
        &app,
        "203.0.113.8",
        "ada@example.com",
        PASSWORD,
        Some(from_signup),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn guesses_against_one_account_stay_bounded_with_or_without_a_device_token() {
    let app = app_with_limits().await;
    app.signed_up("ada@example.com").await;
    let token =
        device_token_of(login_with(&app, "203.0.113.5", "ada@example.com", PASSWORD, None).await)
            .await;
    app.signed_up("bob@example.com").await;

    // 10/min per account: the burst of 10 (the owner's login above took one), and one more if
    // the window's refill (one every 6 s) came in between.
    let answered = guesses(&app, "ada@example.com", 60, None).await;
    assert!((9..=10).contains(&answered), "{answered} guesses answered");
    let answered = guesses(&app, "bob@example.com", 60, None).await;
    assert!((10..=11).contains(&answered), "{answered} guesses answered");

    // A stolen device token buys only the device's lockout threshold (5), from any addresses.
    let answered = guesses(&app, "ada@example.com", 30, Some(&token)).await;
    assert_eq!(answered, 5);
    let response = login_with(
        &app,
        "203.0.113.9",
        "ada@example.com",
        PASSWORD,
        Some(&token),
    )
    .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_device_token_counts_only_for_its_account_and_a_tampered_one_not_at_all() {
    let app = app_with_limits().await;
    let ada = app.signed_up("ada@example.com").await;
    let ada_token = ada["device_token"].as_str().unwrap();
    app.signed_up("bob@example.com").await;
    let tampered = {
        let mut chars: Vec<char> = ada_token.chars().collect();
        chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect::<String>()
    };

    // Outside any limit, a foreign, tampered or garbage token changes nothing: it is ignored.
    for token in [ada_token, tampered.as_str(), "garbage"] {
        let response = login_with(
            &app,
            "203.0.113.1",
            "bob@example.com",
            PASSWORD,
            Some(token),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    // It is never a credential: the password is checked all the same.
    let response = login_with(
        &app,
        "203.0.113.1",
        "ada@example.com",
        "wrong password",
        Some(ada_token),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    guesses(&app, "bob@example.com", 30, None).await;
    for token in [ada_token, tampered.as_str(), "garbage"] {
        let response = login_with(
            &app,
            "203.0.113.1",
            "bob@example.com",
            PASSWORD,
            Some(token),
        )
        .await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{token}");
    }
}

#[tokio::test]
async fn in_cookie_mode_the_device_token_is_in_the_body() {
    let app = spawn_app_with(|config| config.tokens.refresh_cookie = true).await;
    let signup = app.signed_up("ada@example.com").await;
    assert!(signup.get("refresh_token").is_none());
    assert!(signup["device_token"].is_string());
    let token = device_token_of(app.login("ada@example.com", PASSWORD).await).await;
    assert!(!token.is_empty());
}
