//! Refresh tokens in an HttpOnly cookie for browser apps, with the CSRF checks that go with it.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with};

const APP_ORIGIN: &str = "https://app.example.test";

async fn cookie_app() -> TestApp {
    spawn_app_with(|config| {
        config.tokens.refresh_cookie = true;
        config.server.cors_origins = vec![APP_ORIGIN.into()];
    })
    .await
}

/// The `latchkey_refresh` Set-Cookie header of a response.
fn set_cookie(response: &Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|value| value.starts_with("latchkey_refresh="))
        .expect("no refresh cookie was set")
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("latchkey_refresh=")
        .to_owned()
}

async fn post_with_cookie(
    app: &TestApp,
    path: &str,
    cookie: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut request = app
        .client
        .post(app.url(path))
        .header("cookie", format!("latchkey_refresh={cookie}"))
        .json(&json!({}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_refresh_token_travels_only_in_a_locked_down_cookie() {
    let app = cookie_app().await;

    let response = app.signup("ada@example.com").await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = set_cookie(&response);
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/v1/auth",
        "Max-Age=2592000",
    ] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing from {cookie}"
        );
    }
    let body: Value = response.json().await.unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "the body must not carry it: {body}"
    );
    assert_eq!(cookie_value(&cookie).len(), 91);
}

#[tokio::test]
async fn refresh_and_logout_accept_the_cookie_with_the_csrf_header() {
    let app = cookie_app().await;
    let signup = app.signup("ada@example.com").await;
    let first = cookie_value(&set_cookie(&signup));
    let csrf = [("x-latchkey-csrf", "1"), ("origin", APP_ORIGIN)];

    let refreshed = post_with_cookie(&app, "/v1/auth/refresh", &first, &csrf).await;

    assert_eq!(refreshed.status(), StatusCode::OK);
    let second = cookie_value(&set_cookie(&refreshed));
    assert_ne!(first, second);
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(
        app.me(body["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    let logout = app
        .client
        .post(app.url("/v1/auth/logout"))
        .header("cookie", format!("latchkey_refresh={second}"))
        .header("x-latchkey-csrf", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert!(
        set_cookie(&logout).contains("Max-Age=0"),
        "logout must clear the cookie"
    );
    assert_problem(
        app.me(body["access_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let after = post_with_cookie(&app, "/v1/auth/refresh", &second, &csrf).await;
    assert_problem(after, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
}

#[tokio::test]
async fn a_cookie_request_without_the_header_or_from_another_origin_is_refused() {
    let app = cookie_app().await;
    let signup = app.signup("ada@example.com").await;
    let token = cookie_value(&set_cookie(&signup));

    let no_header = post_with_cookie(&app, "/v1/auth/refresh", &token, &[]).await;
    assert_problem(no_header, StatusCode::FORBIDDEN, "csrf_failed").await;
    let foreign = post_with_cookie(
        &app,
        "/v1/auth/refresh",
        &token,
        &[
            ("x-latchkey-csrf", "1"),
            ("origin", "https://evil.example.test"),
        ],
    )
    .await;
    assert_problem(foreign, StatusCode::FORBIDDEN, "csrf_failed").await;
    let logout = app
        .client
        .post(app.url("/v1/auth/logout"))
        .header("cookie", format!("latchkey_refresh={token}"))
        .send()
        .await
        .unwrap();
    assert_problem(logout, StatusCode::FORBIDDEN, "csrf_failed").await;

    // The refused attempts spent nothing: the token still works.
    let ok = post_with_cookie(
        &app,
        "/v1/auth/refresh",
        &token,
        &[("x-latchkey-csrf", "1")],
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_cookie_mode_no_cookie_is_set_or_read() {
    let app = spawn_app().await;
    let signup = app.signup("ada@example.com").await;
    assert!(signup.headers().get("set-cookie").is_none());
    let body: Value = signup.json().await.unwrap();
    let token = body["refresh_token"].as_str().unwrap();
    let response =
        post_with_cookie(&app, "/v1/auth/refresh", token, &[("x-latchkey-csrf", "1")]).await;
    let problem = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "refresh_token");
}

/// A browser's `fetch(url, {method: 'POST', credentials: 'include', headers: {'X-Latchkey-Csrf':
/// '1'}})`: the cookie and the CSRF header, no body and no content type.
async fn post_without_body(app: &TestApp, path: &str, cookie: &str) -> Response {
    app.client
        .post(app.url(path))
        .header("cookie", format!("latchkey_refresh={cookie}"))
        .header("x-latchkey-csrf", "1")
        .header("origin", APP_ORIGIN)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn refresh_and_logout_accept_a_cookie_request_without_a_body() {
    let app = cookie_app().await;
    let signup = app.signup("ada@example.com").await;
    let first = cookie_value(&set_cookie(&signup));

    let refreshed = post_without_body(&app, "/v1/auth/refresh", &first).await;

    assert_eq!(refreshed.status(), StatusCode::OK);
    let second = cookie_value(&set_cookie(&refreshed));
    assert_ne!(first, second);
    let body: Value = refreshed.json().await.unwrap();
    let access_token = body["access_token"].as_str().unwrap();
    assert_eq!(app.me(access_token).await.status(), StatusCode::OK);

    let logout = post_without_body(&app, "/v1/auth/logout", &second).await;

    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert!(set_cookie(&logout).contains("Max-Age=0"));
    assert_problem(
        app.me(access_token).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}

/// Only an empty body without a content type counts as no body: anything else is read as before.
#[tokio::test]
async fn a_cookie_refresh_with_a_body_still_needs_json() {
    let app = cookie_app().await;
    let signup = app.signup("ada@example.com").await;
    let token = cookie_value(&set_cookie(&signup));
    let send = |content_type: Option<&'static str>, body: &'static str| {
        let mut request = app
            .client
            .post(app.url("/v1/auth/refresh"))
            .header("cookie", format!("latchkey_refresh={token}"))
            .header("x-latchkey-csrf", "1")
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };

    let untyped = send(None, "{}").await.unwrap();
    assert_problem(
        untyped,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let text = send(Some("text/plain"), "").await.unwrap();
    assert_problem(
        text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let empty_json = send(Some("application/json"), "").await.unwrap();
    assert_problem(empty_json, StatusCode::BAD_REQUEST, "malformed_json").await;
    let bad_json = send(Some("application/json"), "{").await.unwrap();
    assert_problem(bad_json, StatusCode::BAD_REQUEST, "malformed_json").await;

    // None of those spent the token.
    assert_eq!(
        post_without_body(&app, "/v1/auth/refresh", &token)
            .await
            .status(),
        StatusCode::OK
    );
}

/// Without cookie mode the token is in the body as before, and a refresh without one, with or
/// without a body, names the missing field.
#[tokio::test]
async fn in_body_mode_a_refresh_without_a_body_names_the_missing_token() {
    let app = spawn_app().await;
    let tokens = app.signed_up("ada@example.com").await;

    let no_body = app
        .client
        .post(app.url("/v1/auth/refresh"))
        .send()
        .await
        .unwrap();

    let problem = assert_problem(
        no_body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "refresh_token");
    let empty_object = app.post_json("/v1/auth/refresh", &json!({})).await;
    let problem = assert_problem(
        empty_object,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "refresh_token");
    let untyped = app
        .client
        .post(app.url("/v1/auth/refresh"))
        .body(json!({ "refresh_token": tokens["refresh_token"] }).to_string())
        .send()
        .await
        .unwrap();
    assert_problem(
        untyped,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let refreshed = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    assert!(refreshed.headers().get("set-cookie").is_none());
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(body["refresh_token"].as_str().unwrap().len(), 91);
}

/// Logs in again as ada and returns the new session's refresh cookie.
async fn cookie_login(app: &TestApp) -> String {
    let response = app.login("ada@example.com", crate::helpers::PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    cookie_value(&set_cookie(&response))
}

async fn logout_with_cookie(app: &TestApp, scope: &str, cookie: &str) -> Response {
    post_with_cookie(
        app,
        &format!("/v1/auth/logout?scope={scope}"),
        cookie,
        &[("x-latchkey-csrf", "1")],
    )
    .await
}

async fn refresh_with_cookie(app: &TestApp, cookie: &str) -> Response {
    post_with_cookie(app, "/v1/auth/refresh", cookie, &[("x-latchkey-csrf", "1")]).await
}

/// Security review: a rotated-away refresh cookie could call `logout?scope=others` for 30 days
/// and sign the owner out everywhere else.
#[tokio::test]
async fn a_rotated_away_cookie_cannot_log_other_sessions_out() {
    let app = spawn_app_with(|config| {
        config.tokens.refresh_cookie = true;
        config.server.cors_origins = vec![APP_ORIGIN.into()];
        config.tokens.refresh_reuse_interval = 0;
    })
    .await;
    app.signed_up("ada@example.com").await;
    let stolen = cookie_login(&app).await;
    let other_device = cookie_login(&app).await;
    let response = refresh_with_cookie(&app, &stolen).await;
    assert_eq!(response.status(), StatusCode::OK);
    let fresh = cookie_value(&set_cookie(&response));

    let response = logout_with_cookie(&app, "others", &stolen).await;

    assert_problem(response, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    // The other device keeps its session; the one whose token was copied is revoked as stolen.
    assert_eq!(
        refresh_with_cookie(&app, &other_device).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        refresh_with_cookie(&app, &fresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_cookie_of_a_revoked_session_cannot_log_other_sessions_out() {
    let app = cookie_app().await;
    app.signed_up("ada@example.com").await;
    let ended = cookie_login(&app).await;
    let other_device = cookie_login(&app).await;
    let response = logout_with_cookie(&app, "local", &ended).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let response = logout_with_cookie(&app, "global", &ended).await;

    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    let response = refresh_with_cookie(&app, &other_device).await;
    assert_eq!(response.status(), StatusCode::OK);
    // The live cookie still has the power to end the others.
    let live = cookie_value(&set_cookie(&response));
    let response = logout_with_cookie(&app, "others", &live).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

/// A cookie rotated by a refresh a moment ago (within the reuse interval) is a race, not theft:
/// it names nothing (401 `invalid_refresh_token`) and revokes nothing.
#[tokio::test]
async fn a_just_rotated_cookie_names_no_session_and_revokes_nothing() {
    let app = cookie_app().await;
    app.signed_up("ada@example.com").await;
    let raced = cookie_login(&app).await;
    let other_device = cookie_login(&app).await;
    let response = refresh_with_cookie(&app, &raced).await;
    assert_eq!(response.status(), StatusCode::OK);
    let fresh = cookie_value(&set_cookie(&response));

    let response = logout_with_cookie(&app, "others", &raced).await;

    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    for cookie in [&fresh, &other_device] {
        assert_eq!(
            refresh_with_cookie(&app, cookie).await.status(),
            StatusCode::OK
        );
    }
}
