//! Instances on one PostgreSQL count as one: the rate limits and the lockout are kept in the
//! database. (SQLite is served by one process, which keeps them in memory; two instances on one
//! SQLite file are not a deployment, so these tests run on PostgreSQL only.)

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, is_postgres, spawn_app_with};

async fn login(app: &TestApp, ip: &str, password: &str, device_token: Option<&str>) -> Response {
    let mut body = json!({ "email": "ada@example.com", "password": password });
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

/// Two instances on one database with the limits on, client addresses from X-Forwarded-For.
async fn two_instances(change: impl FnOnce(&mut latchkey::Config)) -> (TestApp, TestApp) {
    let a = spawn_app_with(|config| {
        config.abuse.rate_limits = true;
        config.server.trusted_proxies = vec!["127.0.0.1".into()];
        change(config);
    })
    .await;
    let b = a.another_instance().await;
    a.signed_up("ada@example.com").await;
    (a, b)
}

#[tokio::test]
async fn an_attacker_alternating_between_instances_gets_the_guesses_of_one() {
    if !is_postgres() {
        return;
    }
    let (a, b) = two_instances(|config| {
        config.abuse.rate_login_per_ip = "4/min".parse().unwrap();
        config.abuse.lockout_threshold = 100;
    })
    .await;
    let mut answered = 0;
    for instance in [&a, &b].into_iter().cycle().take(12) {
        match login(instance, "198.51.100.9", "wrong password", None)
            .await
            .status()
        {
            StatusCode::UNAUTHORIZED => answered += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(answered, 4);
}

#[tokio::test]
async fn a_lockout_earned_on_one_instance_holds_on_the_other() {
    if !is_postgres() {
        return;
    }
    let (a, b) = two_instances(|config| config.abuse.lockout_threshold = 2).await;
    for _ in 0..2 {
        let response = login(&a, "198.51.100.9", "wrong password", None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let locked = login(&b, "198.51.100.9", PASSWORD, None).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.headers().contains_key("retry-after"));
    // Only that address is locked out of the account.
    let elsewhere = login(&b, "203.0.113.7", PASSWORD, None).await;
    assert_eq!(elsewhere.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_attack_on_one_instance_does_not_lock_the_owners_known_device_out_of_the_other() {
    if !is_postgres() {
        return;
    }
    let (a, b) = two_instances(|config| {
        config.abuse.rate_login_per_account = "3/min".parse().unwrap();
        config.abuse.lockout_threshold = 2;
    })
    .await;
    let owner_ip = "203.0.113.5";
    let owner = login(&a, owner_ip, PASSWORD, None).await;
    assert_eq!(owner.status(), StatusCode::OK);
    let body: Value = owner.json().await.unwrap();
    let device = body["device_token"].as_str().unwrap().to_owned();

    // On the other instance the attacker locks out the owner's address and spends the
    // account's allowance from many addresses.
    for n in 0..10 {
        login(&b, owner_ip, "wrong password", None).await;
        login(&b, &format!("198.51.100.{n}"), "wrong password", None).await;
    }
    let without_device = login(&a, owner_ip, PASSWORD, None).await;
    assert_eq!(without_device.status(), StatusCode::TOO_MANY_REQUESTS);

    let with_device = login(&a, owner_ip, PASSWORD, Some(&device)).await;
    assert_eq!(with_device.status(), StatusCode::OK);
}
