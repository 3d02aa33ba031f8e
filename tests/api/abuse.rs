//! Rate limits, lockout and client addresses behind proxies.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem, spawn_app_with};

async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> Response {
    app.client
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

/// Asserts a 429 and returns its Retry-After.
async fn assert_limited(response: Response) -> Duration {
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    Duration::from_secs(retry_after)
}

#[tokio::test]
async fn the_login_limit_per_address_is_hit_and_recovers() {
    let app = spawn_app_with(|config| {
        config.abuse.rate_limits = true;
        config.abuse.rate_login_per_ip = "3/3s".parse().unwrap();
    })
    .await;
    app.signed_up("ada@example.com").await;
    for _ in 0..3 {
        assert_eq!(
            app.login("ada@example.com", PASSWORD).await.status(),
            StatusCode::OK
        );
    }

    let wait = assert_limited(app.login("ada@example.com", PASSWORD).await).await;

    tokio::time::sleep(wait).await;
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_per_account_limit_spans_addresses_but_not_accounts() {
    let app = spawn_app_with(|config| {
        config.abuse.rate_limits = true;
        config.server.trusted_proxies = vec!["127.0.0.1".into()];
        config.abuse.rate_login_per_account = "2/min".parse().unwrap();
    })
    .await;
    app.signed_up("ada@example.com").await;
    app.signed_up("bob@example.com").await;

    for ip in ["198.51.100.1", "198.51.100.2"] {
        let response = login_from(&app, ip, "ada@example.com", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_limited(login_from(&app, "198.51.100.3", "ada@example.com", PASSWORD).await).await;
    let bob = login_from(&app, "198.51.100.3", "bob@example.com", PASSWORD).await;
    assert_eq!(bob.status(), StatusCode::OK);
}

#[tokio::test]
async fn lockout_escalates_resets_on_success_and_spares_other_addresses() {
    let app = spawn_app_with(|config| {
        config.abuse.rate_limits = true;
        config.server.trusted_proxies = vec!["127.0.0.1".into()];
        config.abuse.lockout_threshold = 2;
        config.abuse.lockout_base_delay = 1;
    })
    .await;
    app.signed_up("ada@example.com").await;
    let attacker = "198.51.100.66";
    let victim = "203.0.113.5";

    for _ in 0..2 {
        let wrong = login_from(&app, attacker, "ada@example.com", "wrong password").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    // Locked, even with the right password: the lock is checked before the password.
    let first = assert_limited(login_from(&app, attacker, "ada@example.com", PASSWORD).await).await;
    assert_eq!(first, Duration::from_secs(1));
    // The victim, elsewhere, is not locked out by the attacker.
    let own = login_from(&app, victim, "ada@example.com", PASSWORD).await;
    assert_eq!(own.status(), StatusCode::OK);

    tokio::time::sleep(first).await;
    let wrong = login_from(&app, attacker, "ada@example.com", "wrong password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let second =
        assert_limited(login_from(&app, attacker, "ada@example.com", PASSWORD).await).await;
    assert_eq!(second, Duration::from_secs(2), "the delay doubles");

    tokio::time::sleep(second).await;
    let ok = login_from(&app, attacker, "ada@example.com", PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::OK);
    // The success cleared the record: one more failure does not lock.
    let wrong = login_from(&app, attacker, "ada@example.com", "wrong password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let ok = login_from(&app, attacker, "ada@example.com", PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_current_password_counts_as_a_failed_login() {
    let app = spawn_app_with(|config| {
        config.abuse.rate_limits = true;
        config.abuse.lockout_threshold = 2;
    })
    .await;
    let ada = app.signed_up("ada@example.com").await;
    let access = ada["access_token"].as_str().unwrap();
    for _ in 0..2 {
        let response = app
            .call(
                reqwest::Method::DELETE,
                "/v1/me",
                access,
                Some(&json!({ "password": "not my password" })),
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_limited(app.login("ada@example.com", PASSWORD).await).await;
}

#[tokio::test]
async fn signups_and_refreshes_are_limited_per_address() {
    let app = spawn_app_with(|config| {
        config.abuse.rate_limits = true;
        config.abuse.rate_signup_per_ip = "2/min".parse().unwrap();
        config.abuse.rate_refresh_per_ip = "1/min".parse().unwrap();
    })
    .await;
    let ada = app.signed_up("ada@example.com").await;
    app.signed_up("bob@example.com").await;
    assert_limited(app.signup("cat@example.com").await).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 2);

    let refreshed = app.refresh(ada["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let body: Value = refreshed.json().await.unwrap();
    assert_limited(app.refresh(body["refresh_token"].as_str().unwrap()).await).await;
}

async fn recorded_ip(app: &TestApp, forwarded_for: &str) -> String {
    let response = login_from(app, forwarded_for, "ada@example.com", PASSWORD).await;
    let tokens: Value = response.json().await.unwrap();
    let sessions: Value = app
        .client
        .get(app.url("/v1/me/sessions"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let current = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()
        .clone();
    current["ip"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn forwarded_for_is_read_only_from_trusted_proxies() {
    let untrusting = spawn_app_with(|_| {}).await;
    untrusting.signed_up("ada@example.com").await;
    assert_eq!(recorded_ip(&untrusting, "198.51.100.9").await, "127.0.0.1");

    let behind_proxy = spawn_app_with(|config| {
        config.server.trusted_proxies = vec!["127.0.0.0/8".into(), "10.0.0.0/8".into()];
    })
    .await;
    behind_proxy.signed_up("ada@example.com").await;
    let ip = recorded_ip(&behind_proxy, "6.6.6.6, 198.51.100.9, 10.0.0.2").await;
    assert_eq!(
        ip, "198.51.100.9",
        "the spoofed left-most entry must be ignored"
    );
}

#[tokio::test]
async fn a_spoofed_forwarded_for_does_not_escape_the_limit() {
    let app = spawn_app_with(|config| {
        config.abuse.rate_limits = true;
        config.abuse.rate_login_per_ip = "2/min".parse().unwrap();
    })
    .await;
    app.signed_up("ada@example.com").await;
    for n in 0..2 {
        let response = login_from(
            &app,
            &format!("198.51.100.{n}"),
            "ada@example.com",
            PASSWORD,
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_limited(login_from(&app, "198.51.100.200", "ada@example.com", PASSWORD).await).await;
}

#[tokio::test]
async fn ipv6_clients_share_the_login_limit_per_64() {
    let app = spawn_app_with(|config| {
        config.abuse.rate_limits = true;
        config.server.trusted_proxies = vec!["127.0.0.1".into()];
        config.abuse.rate_login_per_ip = "2/min".parse().unwrap();
    })
    .await;
    app.signed_up("ada@example.com").await;
    for ip in ["2001:db8:1:2::1", "[2001:db8:1:2::2]:443"] {
        let response = login_from(&app, ip, "ada@example.com", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "{ip}");
    }
    // Another address in the same /64 is the same client.
    assert_limited(
        login_from(
            &app,
            "2001:db8:1:2:ffff:ffff:ffff:ffff",
            "ada@example.com",
            PASSWORD,
        )
        .await,
    )
    .await;
    // The next /64 is someone else, and IPv4 addresses count one by one.
    for ip in [
        "2001:db8:1:3::1",
        "198.51.100.1",
        "198.51.100.1",
        "198.51.100.2",
    ] {
        let response = login_from(&app, ip, "ada@example.com", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "{ip}");
    }
    assert_limited(login_from(&app, "::ffff:198.51.100.1", "ada@example.com", PASSWORD).await)
        .await;
}

#[tokio::test]
async fn a_flood_of_new_addresses_does_not_free_a_limited_attacker() {
    let app = spawn_app_with(|config| {
        config.abuse.rate_limits = true;
        config.server.trusted_proxies = vec!["127.0.0.1".into()];
        config.abuse.rate_signup_per_ip = "2/min".parse().unwrap();
        config.abuse.rate_limit_keys = 100;
    })
    .await;
    let attacker = "198.51.100.66";
    let signup_from = |ip: String| {
        app.client
            .post(app.url("/v1/auth/signup"))
            .header("x-forwarded-for", ip)
            // Refused as invalid after the limit is counted: the flood costs no hashing.
            .json(&json!({ "email": "not an email", "password": "x" }))
            .send()
    };
    for _ in 0..2 {
        let response = signup_from(attacker.into()).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_limited(signup_from(attacker.into()).await.unwrap()).await;

    // Ten times as many new addresses as the limit keeps, one request each.
    for n in 0..1_000_u32 {
        let [_, _, a, b] = n.to_be_bytes();
        let response = signup_from(format!("10.0.{a}.{b}")).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    assert_limited(signup_from(attacker.into()).await.unwrap()).await;
}
