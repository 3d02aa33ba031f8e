//! Request ids and metrics.

use reqwest::StatusCode;

use crate::helpers::{PASSWORD, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_request_id_is_echoed_or_generated() {
    let app = spawn_app().await;
    let given = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-42");

    let generated = app.client.get(app.url("/v1/nope")).send().await.unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");

    let odd = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "x".repeat(200))
        .send()
        .await
        .unwrap();
    assert_ne!(odd.headers()["x-request-id"], "x".repeat(200).as_str());
}

#[tokio::test]
async fn metrics_count_requests_logins_and_revocations() {
    let app = spawn_app_with(|config| config.operations.metrics_on_api = true).await;
    let tokens = app.signed_up("ada@example.com").await;
    app.login("ada@example.com", "wrong password").await;
    app.login("ada@example.com", PASSWORD).await;
    app.me(tokens["access_token"].as_str().unwrap()).await;
    app.logout(tokens["access_token"].as_str().unwrap()).await;

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for expected in [
        r#"latchkey_http_requests_total{method="GET",route="/v1/me",status="200"} 1"#,
        r#"latchkey_http_requests_total{method="POST",route="/v1/auth/login",status="401"} 1"#,
        r#"latchkey_logins_total{result="failure"} 1"#,
        r#"latchkey_logins_total{result="success"} 1"#,
        "latchkey_sessions_revoked_total 1",
        "latchkey_http_request_duration_seconds_bucket",
        "latchkey_db_pool_connections",
        "latchkey_refresh_token_reuse_total 0",
        "latchkey_rate_limited_total 0",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    assert!(!text.contains("ada@example.com"));
}

#[tokio::test]
async fn metrics_are_not_public_unless_put_on_the_api_listener() {
    let default = spawn_app().await;
    let response = default
        .client
        .get(default.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let off = spawn_app_with(|config| {
        config.operations.metrics = false;
        config.operations.metrics_on_api = true;
    })
    .await;
    let response = off.client.get(off.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_can_be_served_on_their_own_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let moved =
        spawn_app_with(|config| config.operations.metrics_addr = Some(format!("127.0.0.1:{port}")))
            .await;
    let on_api = moved
        .client
        .get(moved.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(on_api.status(), StatusCode::NOT_FOUND);
    let own = moved
        .client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    assert!(
        own.text()
            .await
            .unwrap()
            .contains("latchkey_http_requests_total")
    );
    // The route table serves /metrics on either listener, and a wrong method there is 405, as on
    // the API's.
    let posted = moved
        .client
        .post(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::METHOD_NOT_ALLOWED);
}
