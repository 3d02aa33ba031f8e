//! CORS: nothing is allowed by default; configured origins get exact answers and preflights.

use reqwest::{Method, StatusCode};

use crate::helpers::{spawn_app, spawn_app_with};

const SPA: &str = "http://spa.example.test:3000";

async fn preflight(app: &crate::helpers::TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url("/v1/me"))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_configured_origin_is_allowed_with_the_authorization_header() {
    let app = spawn_app_with(|config| config.server.cors_origins = vec![SPA.into()]).await;

    let response = preflight(&app, SPA).await;

    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(response.headers()["access-control-allow-origin"], SPA);
    let allowed = response.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    assert!(
        response
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );

    let tokens = app.signed_up("ada@example.com").await;
    let response = app
        .client
        .get(app.url("/v1/me"))
        .header("origin", SPA)
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], SPA);
}

#[tokio::test]
async fn other_origins_get_no_cors_headers() {
    let app = spawn_app_with(|config| config.server.cors_origins = vec![SPA.into()]).await;
    let response = preflight(&app, "http://evil.example.test").await;
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let unconfigured = spawn_app().await;
    let response = preflight(&unconfigured, SPA).await;
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
