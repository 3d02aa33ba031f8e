//! The second factor: TOTP enrollment, the login challenge, recovery codes, step-up, an admin's
//! reset. Codes are computed here from the secret the enrollment returns, for chosen steps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey::auth::totp::{TotpSecret, base32_decode, step_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, TestApp, assert_no_secrets, assert_problem, spawn_app, spawn_app_with,
    spawn_app_with_admin,
};

/// The current TOTP step, at least three seconds before the next one begins, so that the steps
/// either side of it are still within the server's skew window for the rest of the test's call.
pub(crate) async fn settled_step() -> i64 {
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        if now % 30 < 27 {
            return step_of(now);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub(crate) struct Enrolled {
    pub(crate) secret: TotpSecret,
    pub(crate) access_token: String,
    pub(crate) recovery_codes: Vec<String>,
    /// The step the confirmation spent.
    pub(crate) step: i64,
}

impl Enrolled {
    pub(crate) fn code(&self, step: i64) -> String {
        self.secret.code_at(step)
    }
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The id of the user an access token is for.
fn user_id(token: &str) -> String {
    claims(token)["sub"].as_str().unwrap().to_owned()
}

async fn start(app: &TestApp, token: &str) -> Value {
    let password = json!({ "password": PASSWORD });
    let response = app
        .call(Method::POST, "/v1/me/mfa/totp", token, Some(&password))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn confirm(app: &TestApp, token: &str, code: &str) -> reqwest::Response {
    app.call(
        Method::POST,
        "/v1/me/mfa/totp/confirm",
        token,
        Some(&json!({ "code": code })),
    )
    .await
}

/// Signs `email` up and enrolls it with the signup's session.
pub(crate) async fn enrolled(app: &TestApp, email: &str) -> Enrolled {
    let signed_up = app.signed_up(email).await;
    let access_token = signed_up["access_token"].as_str().unwrap();
    let started = start(app, access_token).await;
    confirmed(app, access_token, &started).await
}

/// Confirms the enrollment `started` with the code of the step before the current one.
async fn confirmed(app: &TestApp, access_token: &str, started: &Value) -> Enrolled {
    let secret =
        TotpSecret::from_bytes(base32_decode(started["secret"].as_str().unwrap()).unwrap());
    let step = settled_step().await - 1;
    let response = confirm(app, access_token, &secret.code_at(step)).await;
    assert_eq!(response.status(), StatusCode::OK);
    Enrolled {
        secret,
        access_token: access_token.to_owned(),
        recovery_codes: recovery_codes(response).await,
        step,
    }
}

/// The recovery codes a confirmation or a regeneration returns.
async fn recovery_codes(response: reqwest::Response) -> Vec<String> {
    let body: Value = response.json().await.unwrap();
    body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect()
}

/// Logs in to an account without a second factor, where the password alone gives a session;
/// returns its access token.
async fn password_session(app: &TestApp, email: &str) -> String {
    let response = app.login(email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("mfa_required").is_none(), "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// Logs in with the right password and returns the challenge's `mfa_token`.
async fn challenged(app: &TestApp, email: &str) -> String {
    let response = app.login(email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn verify(app: &TestApp, mfa_token: &str, factor: Value) -> reqwest::Response {
    let mut body = json!({ "mfa_token": mfa_token });
    body.as_object_mut()
        .unwrap()
        .extend(factor.as_object().unwrap().clone());
    app.post_json("/v1/auth/mfa/verify", &body).await
}

/// Logs in with the right password, then `factor`; returns the new session's tokens.
pub(crate) async fn aal2_tokens(app: &TestApp, email: &str, factor: Value) -> Value {
    let mfa_token = challenged(app, email).await;
    let response = verify(app, &mfa_token, factor).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn enrollment_returns_the_secret_as_uri_and_qr_code_and_does_nothing_until_confirmed() {
    let app = spawn_app().await;
    let signed_up = app.signed_up("ada@example.com").await;
    let token = signed_up["access_token"].as_str().unwrap();

    let started = start(&app, token).await;

    let secret = started["secret"].as_str().unwrap();
    assert_eq!(base32_decode(secret).unwrap().len(), 20);
    let uri = started["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Latchkey:ada@example.com?secret="),
        "{uri}"
    );
    assert!(uri.contains(secret));
    let qr = started["qr_code"].as_str().unwrap();
    assert!(qr.starts_with("data:image/svg+xml;base64,"));
    // Stored encrypted: the database never holds the secret as the app shows it.
    let stored: String = sqlx::query_scalar("SELECT secret FROM mfa_totp")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(!stored.contains(secret));
    // Unconfirmed, the enrollment changes nothing: the password alone logs in.
    password_session(&app, "ada@example.com").await;
    // A wrong code does not confirm it.
    let secret = TotpSecret::from_bytes(base32_decode(secret).unwrap());
    let step = settled_step().await;
    let wrong = format!(
        "{:06}",
        (secret.code_at(step).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    assert_problem(
        confirm(&app, token, &wrong).await,
        StatusCode::UNAUTHORIZED,
        "invalid_mfa_code",
    )
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM mfa_recovery_codes").await,
        0
    );
}

/// A stolen access token alone must not enroll a factor: confirming would end the owner's other
/// sessions and leave them unable to log in without the thief's authenticator.
#[tokio::test]
async fn enrolling_takes_the_password_not_just_an_access_token() {
    let app = spawn_app().await;
    let signed_up = app.signed_up("ada@example.com").await;
    let token = signed_up["access_token"].as_str().unwrap();

    let response = app
        .call(Method::POST, "/v1/me/mfa/totp", token, Some(&json!({})))
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let wrong = json!({ "password": "not the password" });
    let response = app
        .call(Method::POST, "/v1/me/mfa/totp", token, Some(&wrong))
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM mfa_totp").await, 0);

    let started = start(&app, token).await;
    assert!(started["secret"].is_string());
    assert_eq!(app.count("SELECT COUNT(*) FROM mfa_totp").await, 1);
}

#[tokio::test]
async fn a_right_password_gets_a_challenge_and_the_code_gets_aal2_tokens() {
    let app = spawn_app().await;
    let ada = enrolled(&app, "ada@example.com").await;
    assert_eq!(ada.recovery_codes.len(), 10);

    let response = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let challenge: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(challenge["mfa_required"], true);
    assert_eq!(challenge["expires_in"], 300);
    for token in ["access_token", "refresh_token", "device_token", "user"] {
        assert!(
            challenge.get(token).is_none(),
            "the challenge holds {token}: {text}"
        );
    }
    let sessions = app.count("SELECT COUNT(*) FROM sessions").await;

    let response = verify(
        &app,
        challenge["mfa_token"].as_str().unwrap(),
        json!({ "code": ada.code(ada.step + 1) }),
    )
    .await;

    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert_no_secrets(&text);
    let tokens: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions").await,
        sessions + 1
    );
    let access = tokens["access_token"].as_str().unwrap();
    let issued = claims(access);
    assert_eq!(issued["amr"], json!(["pwd", "otp"]));
    assert_eq!(issued["aal"], "aal2");
    assert!(issued["auth_time"].as_i64().unwrap() > 0);
    let gateway = app.call(Method::GET, "/v1/auth/verify", access, None).await;
    assert_eq!(gateway.status(), StatusCode::NO_CONTENT);
    assert_eq!(gateway.headers()["x-latchkey-aal"], "aal2");
    // A refresh keeps the session's level and its authentication time.
    let refreshed: Value = app
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let again = claims(refreshed["access_token"].as_str().unwrap());
    assert_eq!(again["aal"], "aal2");
    assert_eq!(again["amr"], json!(["pwd", "otp"]));
    assert_eq!(again["auth_time"], issued["auth_time"]);
    // A password-only token says so.
    let first = claims(&ada.access_token);
    assert_eq!(first["amr"], json!(["pwd"]));
    assert_eq!(first["aal"], "aal1");
}

#[tokio::test]
async fn a_code_is_accepted_once_and_one_step_of_skew_either_way() {
    let app = spawn_app().await;
    let ada = enrolled(&app, "ada@example.com").await;
    let now = ada.step + 1;

    // The confirmation spent the step before this one: its code, and any earlier, are refused.
    let mfa_token = challenged(&app, "ada@example.com").await;
    for step in [ada.step, ada.step - 1] {
        let response = verify(&app, &mfa_token, json!({ "code": ada.code(step) })).await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_mfa_code").await;
    }
    // Two steps ahead is past the skew.
    let response = verify(&app, &mfa_token, json!({ "code": ada.code(now + 2) })).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_mfa_code").await;
    let response = verify(&app, &mfa_token, json!({ "code": ada.code(now) })).await;
    assert_eq!(response.status(), StatusCode::OK);
    // The mfa_token is spent, and so is the code, even with a new challenge.
    let response = verify(&app, &mfa_token, json!({ "code": ada.code(now + 1) })).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_mfa_token").await;
    let mfa_token = challenged(&app, "ada@example.com").await;
    let response = verify(&app, &mfa_token, json!({ "code": ada.code(now) })).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_mfa_code").await;
    // One step ahead is within the skew.
    let response = verify(&app, &mfa_token, json!({ "code": ada.code(now + 1) })).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// Replay protection is the database's, not an instance's: of two instances sent the same code
/// at once, one accepts it.
#[tokio::test]
async fn a_code_is_accepted_once_across_instances_even_at_once() {
    let app = spawn_app().await;
    let other = app.another_instance().await;
    let ada = enrolled(&app, "ada@example.com").await;
    let code = json!({ "code": ada.code(ada.step + 1) });
    let here = challenged(&app, "ada@example.com").await;
    let there = challenged(&other, "ada@example.com").await;

    let (here, there) = tokio::join!(
        verify(&app, &here, code.clone()),
        verify(&other, &there, code.clone())
    );
    let mut statuses = [here.status(), there.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::UNAUTHORIZED]);
}

#[tokio::test]
async fn a_recovery_code_works_once_and_says_so_in_amr() {
    let app = spawn_app().await;
    let ada = enrolled(&app, "ada@example.com").await;
    let code = ada.recovery_codes[3].to_uppercase();

    let mfa_token = challenged(&app, "ada@example.com").await;
    let response = verify(&app, &mfa_token, json!({ "recovery_code": code })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    let issued = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(issued["amr"], json!(["pwd", "recovery"]));
    assert_eq!(issued["aal"], "aal2");

    let mfa_token = challenged(&app, "ada@example.com").await;
    let response = verify(&app, &mfa_token, json!({ "recovery_code": code })).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_mfa_code").await;
    let response = verify(&app, &mfa_token, json!({ "recovery_code": "nope-nope" })).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_mfa_code").await;
    let response = verify(
        &app,
        &mfa_token,
        json!({ "recovery_code": &ada.recovery_codes[4] }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_password_for_an_enrolled_account_looks_like_any_other() {
    let app = spawn_app().await;
    enrolled(&app, "ada@example.com").await;
    app.signed_up("bob@example.com").await;

    let enrolled_account = app.login("ada@example.com", "not the password").await;
    let plain_account = app.login("bob@example.com", "not the password").await;
    let unknown = app.login("nobody@example.com", "not the password").await;

    let a = assert_problem(
        enrolled_account,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let b = assert_problem(
        plain_account,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let c = assert_problem(unknown, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(a, b);
    assert_eq!(b, c);
    assert_eq!(app.count("SELECT COUNT(*) FROM mfa_challenges").await, 0);
}

/// A request from `ip`, as a trusted proxy in front of the app would forward it.
fn from(app: &TestApp, ip: &str, path: &str, body: &Value) -> reqwest::RequestBuilder {
    app.client
        .post(app.url(path))
        .header("x-forwarded-for", ip)
        .json(body)
}

#[tokio::test]
async fn an_mfa_token_works_only_from_the_address_that_logged_in() {
    let app = spawn_app_with(|config| {
        config.server.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let ada = enrolled(&app, "ada@example.com").await;
    let login = json!({ "email": "ada@example.com", "password": PASSWORD });
    let challenge: Value = from(&app, "203.0.113.7", "/v1/auth/login", &login)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let answer = json!({ "mfa_token": challenge["mfa_token"], "code": ada.code(ada.step + 1) });

    let elsewhere = from(&app, "198.51.100.9", "/v1/auth/mfa/verify", &answer)
        .send()
        .await
        .unwrap();
    assert_problem(elsewhere, StatusCode::UNAUTHORIZED, "invalid_mfa_token").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);

    let there = from(&app, "203.0.113.7", "/v1/auth/mfa/verify", &answer)
        .send()
        .await
        .unwrap();
    assert_eq!(there.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_mfa_token_dies_after_five_wrong_codes_or_when_it_expires() {
    let app = spawn_app().await;
    let ada = enrolled(&app, "ada@example.com").await;
    let right = ada.code(ada.step + 1);

    let mfa_token = challenged(&app, "ada@example.com").await;
    for _ in 0..5 {
        let response = verify(&app, &mfa_token, json!({ "code": "000000" })).await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_mfa_code").await;
    }
    let response = verify(&app, &mfa_token, json!({ "code": right })).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_mfa_token").await;

    let mfa_token = challenged(&app, "ada@example.com").await;
    sqlx::query("UPDATE mfa_challenges SET expires_at = created_at")
        .execute(&app.db)
        .await
        .unwrap();
    let response = verify(&app, &mfa_token, json!({ "code": right })).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_mfa_token").await;

    // Bad input is a 422, never a 500, and spends nothing.
    let mfa_token = challenged(&app, "ada@example.com").await;
    for factor in [
        json!({}),
        json!({ "code": "12345" }),
        json!({ "code": right, "recovery_code": "x" }),
    ] {
        let response = verify(&app, &mfa_token, factor).await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    let response = verify(&app, "not-a-token", json!({ "code": right })).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_mfa_token").await;
    let response = verify(&app, &mfa_token, json!({ "code": right })).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn wrong_codes_count_towards_the_lockout_like_wrong_passwords() {
    let app = spawn_app_with(|config| {
        config.abuse.rate_limits = true;
        config.abuse.lockout_threshold = 3;
    })
    .await;
    let ada = enrolled(&app, "ada@example.com").await;

    let mfa_token = challenged(&app, "ada@example.com").await;
    for _ in 0..3 {
        let response = verify(&app, &mfa_token, json!({ "code": "000000" })).await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_mfa_code").await;
    }
    let response = verify(&app, &mfa_token, json!({ "code": ada.code(ada.step + 1) })).await;
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let response = app.login("ada@example.com", PASSWORD).await;
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

async fn step_up(app: &TestApp, token: &str, factor: Value) -> reqwest::Response {
    app.call(Method::POST, "/v1/auth/mfa/step-up", token, Some(&factor))
        .await
}

/// Steps the enrolling session up with the code of the step after the confirmation's; returns
/// the raised access token.
async fn raised(app: &TestApp, ada: &Enrolled) -> String {
    let next = json!({ "code": ada.code(ada.step + 1) });
    let response = step_up(app, &ada.access_token, next).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Regenerates the recovery codes with `token`; returns the new ones.
async fn regenerated(app: &TestApp, token: &str) -> Vec<String> {
    let response = app
        .call(Method::POST, "/v1/me/mfa/recovery-codes", token, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    recovery_codes(response).await
}

#[tokio::test]
async fn sensitive_changes_need_an_aal2_token_and_point_to_the_step_up() {
    let app = spawn_app().await;
    let ada = enrolled(&app, "ada@example.com").await;
    let sensitive = [
        (
            Method::PUT,
            "/v1/me/password",
            Some(json!({ "current_password": PASSWORD, "new_password": "another long password" })),
        ),
        (
            Method::PATCH,
            "/v1/me",
            Some(json!({ "email": "new@example.com", "current_password": PASSWORD })),
        ),
        (
            Method::DELETE,
            "/v1/me",
            Some(json!({ "password": PASSWORD })),
        ),
        (
            Method::POST,
            "/v1/me/mfa/totp",
            Some(json!({ "password": PASSWORD })),
        ),
        (Method::POST, "/v1/me/mfa/recovery-codes", None),
        (
            Method::DELETE,
            "/v1/me/mfa/totp",
            Some(json!({ "password": PASSWORD, "code": ada.code(ada.step + 1) })),
        ),
    ];
    // The enrolling session proved only the password.
    for (method, path, body) in &sensitive {
        let response = app
            .call(method.clone(), path, &ada.access_token, body.as_ref())
            .await;
        let problem = assert_problem(response, StatusCode::FORBIDDEN, "mfa_required").await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("/v1/auth/mfa/step-up")
        );
    }
    // A rename is not sensitive.
    let rename = app
        .call(
            Method::PATCH,
            "/v1/me",
            &ada.access_token,
            Some(&json!({ "name": "Ada" })),
        )
        .await;
    assert_eq!(rename.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_step_up_takes_an_unspent_code_and_gives_an_aal2_token_for_sensitive_changes() {
    let app = spawn_app().await;
    let ada = enrolled(&app, "ada@example.com").await;

    let spent = json!({ "code": ada.code(ada.step) });
    let wrong = step_up(&app, &ada.access_token, spent).await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_mfa_code").await;
    let next = json!({ "code": ada.code(ada.step + 1) });
    let response = step_up(&app, &ada.access_token, next).await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["aal"], "aal2");
    let raised = body["access_token"].as_str().unwrap();
    assert_eq!(claims(raised)["amr"], json!(["pwd", "otp"]));
    let new_password =
        json!({ "current_password": PASSWORD, "new_password": "another long password" });
    let changed = app
        .call(Method::PUT, "/v1/me/password", raised, Some(&new_password))
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn an_aal2_token_whose_factor_was_proved_long_ago_must_step_up_again() {
    let app = spawn_app().await;
    let ada = enrolled(&app, "ada@example.com").await;
    let tokens = aal2_tokens(
        &app,
        "ada@example.com",
        json!({ "code": ada.code(ada.step + 1) }),
    )
    .await;
    // As if the code had been typed in 2000: a refresh keeps that authentication time.
    sqlx::query(
        "UPDATE sessions SET auth_time = '2000-01-01T00:00:00+00:00' WHERE amr = 'pwd otp'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let refreshed: Value = app
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let old = refreshed["access_token"].as_str().unwrap();
    assert_eq!(claims(old)["aal"], "aal2");
    let response = app
        .call(Method::POST, "/v1/me/mfa/recovery-codes", old, None)
        .await;
    assert_problem(response, StatusCode::FORBIDDEN, "mfa_required").await;
}

#[tokio::test]
async fn confirming_ends_the_other_sessions() {
    let app = spawn_app().await;
    app.signed_up("ada@example.com").await;
    let other = password_session(&app, "ada@example.com").await;
    let token = password_session(&app, "ada@example.com").await;
    let started = start(&app, &token).await;
    // Starting an enrollment changes nothing yet.
    assert_eq!(app.me(&other).await.status(), StatusCode::OK);

    confirmed(&app, &token, &started).await;

    assert_eq!(app.me(&other).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn regenerating_kills_the_old_recovery_codes_and_ends_the_other_sessions() {
    let app = spawn_app().await;
    let ada = enrolled(&app, "ada@example.com").await;
    let raised = raised(&app, &ada).await;
    let other = aal2_tokens(
        &app,
        "ada@example.com",
        json!({ "code": ada.code(ada.step + 2) }),
    )
    .await;
    let other = other["access_token"].as_str().unwrap();
    let mfa_token = challenged(&app, "ada@example.com").await;
    assert_eq!(app.me(other).await.status(), StatusCode::OK);

    let old_codes = regenerated(&app, &raised).await;
    let new_codes = regenerated(&app, &raised).await;

    assert_ne!(old_codes, new_codes);
    assert_eq!(app.me(other).await.status(), StatusCode::UNAUTHORIZED);
    // A challenge already under way takes the new codes, not the old.
    let response = verify(&app, &mfa_token, json!({ "recovery_code": old_codes[0] })).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_mfa_code").await;
    let response = verify(&app, &mfa_token, json!({ "recovery_code": new_codes[0] })).await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn disable(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.call(Method::DELETE, "/v1/me/mfa/totp", token, Some(&body))
        .await
}

#[tokio::test]
async fn disabling_takes_the_password_and_a_live_code_and_ends_the_other_sessions() {
    let app = spawn_app().await;
    let ada = enrolled(&app, "ada@example.com").await;
    let raised = raised(&app, &ada).await;
    let codes = regenerated(&app, &raised).await;
    let recovery = json!({ "recovery_code": codes[0] });
    let elsewhere = aal2_tokens(&app, "ada@example.com", recovery).await;
    let elsewhere = elsewhere["access_token"].as_str().unwrap();

    let wrong_password = json!({ "password": "not the password", "recovery_code": codes[1] });
    let response = disable(&app, &raised, wrong_password).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    // A code the regeneration replaced.
    let wrong_code = json!({ "password": PASSWORD, "recovery_code": ada.recovery_codes[1] });
    let response = disable(&app, &raised, wrong_code).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_mfa_code").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM mfa_totp").await, 1);
    assert_eq!(app.me(elsewhere).await.status(), StatusCode::OK);
    let right = json!({ "password": PASSWORD, "recovery_code": codes[1] });
    let response = disable(&app, &raised, right).await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(elsewhere).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.count("SELECT COUNT(*) FROM mfa_totp").await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM mfa_recovery_codes").await,
        0
    );
    // The password alone logs in again.
    password_session(&app, "ada@example.com").await;
}

async fn reset_mfa(app: &TestApp, user_id: &str, token: &str) -> reqwest::Response {
    app.call(
        Method::DELETE,
        &format!("/v1/users/{user_id}/mfa"),
        token,
        None,
    )
    .await
}

#[tokio::test]
async fn an_admin_resets_a_users_second_factor_but_not_their_own() {
    let (app, admin) = spawn_app_with_admin().await;
    let admin_token = admin["access_token"].as_str().unwrap();
    let ada = enrolled(&app, "ada@example.com").await;
    let ada_id = user_id(&ada.access_token);
    let admin_id = user_id(admin_token);

    let by_user = reset_mfa(&app, &ada_id, &ada.access_token).await;
    assert_problem(by_user, StatusCode::FORBIDDEN, "forbidden").await;
    let own = reset_mfa(&app, &admin_id, admin_token).await;
    assert_problem(own, StatusCode::FORBIDDEN, "own_mfa_reset").await;

    let reset = reset_mfa(&app, &ada_id, admin_token).await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.me(&ada.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    password_session(&app, "ada@example.com").await;
    let again = reset_mfa(&app, &ada_id, admin_token).await;
    assert_problem(again, StatusCode::CONFLICT, "mfa_conflict").await;
    let nobody = reset_mfa(&app, &uuid::Uuid::new_v4().to_string(), admin_token).await;
    assert_problem(nobody, StatusCode::NOT_FOUND, "not_found").await;
}

/// Disabling an account ends its challenges too: one issued before gets no session, even with
/// the right code, and the password alone gets no new one. Only a caller with both factors
/// learns that the account is disabled.
#[tokio::test]
async fn a_disabled_account_passes_no_challenge() {
    let (app, admin) = spawn_app_with_admin().await;
    let admin_token = admin["access_token"].as_str().unwrap();
    let ada = enrolled(&app, "ada@example.com").await;
    let ada_id = user_id(&ada.access_token);
    let mfa_token = challenged(&app, "ada@example.com").await;
    let disable = json!({ "disabled": true });
    let response = app
        .call(
            Method::PATCH,
            &format!("/v1/users/{ada_id}"),
            admin_token,
            Some(&disable),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let sessions_before = app.count("SELECT COUNT(*) FROM sessions").await;

    let wrong = verify(&app, &mfa_token, json!({ "code": "000000" })).await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_mfa_code").await;
    let right = verify(&app, &mfa_token, json!({ "code": ada.code(ada.step + 1) })).await;
    assert_problem(right, StatusCode::FORBIDDEN, "account_disabled").await;
    let login = app.login("ada@example.com", PASSWORD).await;
    assert_problem(login, StatusCode::FORBIDDEN, "account_disabled").await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions").await,
        sessions_before
    );
}

async fn status(app: &TestApp, token: &str) -> Value {
    let response = app.call(Method::GET, "/v1/me/mfa", token, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// What a client needs to know what to offer: whether the factor is off, pending or on, and
/// how many recovery codes are left.
#[tokio::test]
async fn the_status_says_whether_the_factor_is_on_and_how_many_recovery_codes_are_left() {
    let app = spawn_app().await;
    let signed_up = app.signed_up("ada@example.com").await;
    let token = signed_up["access_token"].as_str().unwrap();
    let off = json!({ "totp": "off", "recovery_codes_left": 0 });
    assert_eq!(status(&app, token).await, off);
    let started = start(&app, token).await;
    let pending = json!({ "totp": "pending", "recovery_codes_left": 0 });
    assert_eq!(status(&app, token).await, pending);

    let ada = confirmed(&app, token, &started).await;
    let on = json!({ "totp": "enabled", "recovery_codes_left": 10 });
    assert_eq!(status(&app, token).await, on);
    let recovery_code = json!({ "recovery_code": ada.recovery_codes[0] });
    let tokens = aal2_tokens(&app, "ada@example.com", recovery_code).await;
    let raised = tokens["access_token"].as_str().unwrap();
    let one_used = json!({ "totp": "enabled", "recovery_codes_left": 9 });
    assert_eq!(status(&app, raised).await, one_used);

    let anonymous = app.client.get(app.url("/v1/me/mfa")).send().await.unwrap();
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthorized").await;
}
