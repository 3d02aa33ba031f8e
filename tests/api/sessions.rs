//! Logout scopes and the caller's device list.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp, assert_problem, spawn_app};

async fn login_from(app: &TestApp, user_agent: &str) -> Value {
    app.client
        .post(app.url("/v1/auth/login"))
        .header("user-agent", user_agent)
        .json(&serde_json::json!({ "email": "ada@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Ada signed in on three devices.
async fn three_sessions(app: &TestApp) -> [Value; 3] {
    app.signed_up("ada@example.com").await;
    [
        login_from(app, "laptop").await,
        login_from(app, "phone").await,
        login_from(app, "tablet").await,
    ]
}

fn access(session: &Value) -> &str {
    session["access_token"].as_str().unwrap()
}

fn refresh(session: &Value) -> &str {
    session["refresh_token"].as_str().unwrap()
}

async fn list(app: &TestApp, access_token: &str) -> Vec<Value> {
    let response = app
        .client
        .get(app.url("/v1/me/sessions"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    body["sessions"].as_array().unwrap().clone()
}

async fn delete(app: &TestApp, access_token: &str, id: &str) -> reqwest::Response {
    app.client
        .delete(app.url(&format!("/v1/me/sessions/{id}")))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn local_logout_ends_only_the_callers_session_and_its_access_token() {
    let app = spawn_app().await;
    let [laptop, phone, _] = three_sessions(&app).await;

    assert_eq!(
        app.logout(access(&laptop)).await.status(),
        StatusCode::NO_CONTENT
    );

    assert_problem(
        app.me(access(&laptop)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_eq!(app.me(access(&phone)).await.status(), StatusCode::OK);
    assert_eq!(
        app.logout(access(&laptop)).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn logout_others_keeps_only_the_callers_session() {
    let app = spawn_app().await;
    let [laptop, phone, tablet] = three_sessions(&app).await;

    let response = app.logout_scope(access(&laptop), "others").await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(access(&laptop)).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(refresh(&laptop)).await.status(), StatusCode::OK);
    for other in [&phone, &tablet] {
        assert_problem(
            app.me(access(other)).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
        assert_problem(
            app.refresh(refresh(other)).await,
            StatusCode::UNAUTHORIZED,
            "invalid_refresh_token",
        )
        .await;
    }
}

#[tokio::test]
async fn logout_global_ends_every_session() {
    let app = spawn_app().await;
    let sessions = three_sessions(&app).await;

    let response = app.logout_scope(access(&sessions[1]), "global").await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for session in &sessions {
        assert_problem(
            app.me(access(session)).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
            .await,
        0
    );
    let again = app.logout_scope(access(&sessions[1]), "global").await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn an_unknown_logout_scope_is_400() {
    let app = spawn_app().await;
    let tokens = app.signed_up("ada@example.com").await;
    let response = app.logout_scope(access(&tokens), "everything").await;
    assert_problem(response, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_eq!(app.me(access(&tokens)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_session_list_shows_live_sessions_and_marks_the_current_one() {
    let app = spawn_app().await;
    let [laptop, phone, tablet] = three_sessions(&app).await;
    app.logout(access(&tablet)).await;

    let sessions = list(&app, access(&laptop)).await;

    // The signup session and the laptop and phone logins; the tablet logged out.
    assert_eq!(sessions.len(), 3);
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["user_agent"], "laptop");
    assert_eq!(current[0]["ip"], "127.0.0.1");
    let agents: Vec<&str> = sessions
        .iter()
        .filter_map(|s| s["user_agent"].as_str())
        .collect();
    assert!(agents.contains(&"phone") && !agents.contains(&"tablet"));
    for field in ["id", "created_at", "last_used_at", "expires_at"] {
        assert!(current[0][field].is_string(), "{field} missing");
    }
    let _ = phone;
}

#[tokio::test]
async fn deleting_a_session_signs_that_device_out() {
    let app = spawn_app().await;
    let [laptop, phone, _] = three_sessions(&app).await;
    let phone_id = list(&app, access(&phone))
        .await
        .into_iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let response = delete(&app, access(&laptop), &phone_id).await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.me(access(&phone)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_problem(
        app.refresh(refresh(&phone)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert!(
        list(&app, access(&laptop))
            .await
            .iter()
            .all(|s| s["id"] != phone_id.as_str())
    );
    let again = delete(&app, access(&laptop), &phone_id).await;
    assert_problem(again, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn another_users_session_or_a_bad_id_is_404() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada@example.com").await;
    let bob = app.signed_up("bob@example.com").await;
    let bob_session = list(&app, access(&bob)).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let response = delete(&app, access(&ada), &bob_session).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.me(access(&bob)).await.status(), StatusCode::OK);

    let response = delete(&app, access(&ada), "not-a-uuid").await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
}

/// Security review: every login added a session, so repeated logins grew a user's session list
/// (and the table) without bound.
#[tokio::test]
async fn logins_past_the_cap_revoke_the_oldest_sessions() {
    let app =
        crate::helpers::spawn_app_with(|config| config.tokens.max_sessions_per_user = 3).await;
    let first = app.signed_up("ada@example.com").await;
    let mut logins = Vec::new();
    for device in ["phone", "laptop", "tablet"] {
        logins.push(login_from(&app, device).await);
    }

    let first_access = first["access_token"].as_str().unwrap();
    assert_eq!(
        app.me(first_access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_problem(
        app.refresh(first["refresh_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    let newest = logins[2]["access_token"].as_str().unwrap();
    let listed = list(&app, newest).await;
    let mut agents: Vec<&str> = listed
        .iter()
        .map(|session| session["user_agent"].as_str().unwrap_or(""))
        .collect();
    agents.sort_unstable();
    assert_eq!(agents, ["laptop", "phone", "tablet"]);
    for login in &logins {
        let access = login["access_token"].as_str().unwrap();
        assert_eq!(app.me(access).await.status(), StatusCode::OK);
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
            .await,
        3
    );
}
