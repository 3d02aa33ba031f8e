//! Bad requests of every kind get a problem+json answer with the right status, never actix's
//! default text/plain.

use reqwest::StatusCode;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/auth/signup"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::BAD_REQUEST, "malformed_json").await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let app = spawn_app().await;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = app
            .client
            .post(app.url("/v1/auth/login"))
            .body("email=ada@example.com&password=x");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_problem(
            response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
}

#[tokio::test]
async fn a_body_over_16_kib_is_413_and_creates_nothing() {
    let app = spawn_app().await;
    let body = serde_json::json!({
        "email": "ada@example.com",
        "password": "correct horse battery",
        "name": "x".repeat(17 * 1024),
    });
    let response = app.post_json("/v1/auth/signup", &body).await;
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
}

#[tokio::test]
async fn an_unknown_route_is_404() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/v1/nope")).send().await.unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_wrong_method_is_405() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/v1/auth/login"))
        .send()
        .await
        .unwrap();
    assert_problem(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

/// Found by schemathesis: serde reads a struct from a JSON array in field order, so an array that
/// fits the fields (`[]` for a patch of optional members, this one for a signup) was accepted.
#[tokio::test]
async fn a_json_array_is_not_a_body_even_when_it_fits_the_fields() {
    let app = spawn_app().await;
    let body = serde_json::json!(["ada@example.com", "correct horse battery", null]);
    let response = app.post_json("/v1/auth/signup", &body).await;
    let problem = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "body");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
}

/// Found by schemathesis: the problem+json rewrite of actix's 405 dropped its `Allow` header,
/// which RFC 9110 §15.5.6 requires.
#[tokio::test]
async fn a_405_lists_the_allowed_methods() {
    let app = spawn_app().await;
    for (method, path, allowed) in [
        ("TRACE", "/healthz", vec!["GET"]),
        ("GET", "/v1/auth/login", vec!["POST"]),
        ("POST", "/v1/me", vec!["DELETE", "GET", "PATCH"]),
        (
            "PUT",
            "/v1/users/7c9e6679-7425-40de-944b-e07fc1f90ae7",
            vec!["DELETE", "GET", "PATCH"],
        ),
    ] {
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        let allow = response
            .headers()
            .get("allow")
            .unwrap_or_else(|| panic!("{method} {path}: no Allow header"))
            .to_str()
            .unwrap()
            .to_owned();
        let mut methods: Vec<&str> = allow.split(',').map(str::trim).collect();
        methods.sort_unstable();
        assert_eq!(methods, allowed, "{method} {path}");
        assert_problem(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
        .await;
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let tokens = app.signed_up("ada@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    for path in ["/healthz", "/v1/me", "/v1/me/sessions", "/v1/nope"] {
        let response = app
            .client
            .get(app.url(path))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["referrer-policy"], "no-referrer");
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
        assert!(response.headers().get("server").is_none());
    }
}
