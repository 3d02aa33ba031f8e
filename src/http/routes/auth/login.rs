//! `POST /v1/auth/login`.

use actix_web::{HttpRequest, web};
use serde::Deserialize;

use std::net::IpAddr;

use super::logged_in;
use crate::abuse::DeviceId;
use crate::audit::{self, AuditEvent};
use crate::auth::{AuthMethods, Verification};
use crate::domain::{Email, Password};
use crate::http::error::{ApiError, ApiResult, FieldError};
use crate::http::extract::{ClientIp, JsonBody};
use crate::http::routes::mfa::challenge_response;
use crate::http::state::AppState;
use crate::mail::log_unqueued;
use crate::store::{self, Credentials, User};

#[derive(Deserialize)]
pub struct LoginBody {
    email: String,
    password: String,
    /// From an earlier token response for this account; anything else is ignored.
    device_token: Option<String>,
}

pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<LoginBody>,
) -> ApiResult {
    let email = body.parse_email()?;
    state.limits.address_attempt(ip).await?;
    let credentials = state.store.credentials_by_email(&email).await?;
    let device = known_device(&state, &body, credentials.as_ref());
    state
        .limits
        .account_attempt(ip, email.as_str(), device)
        .await?;
    let attempt = LoginAttempt {
        ip,
        email: &email,
        device,
    };
    let (credentials, verification) =
        check_login_password(&state, &attempt, credentials, &body.password).await?;
    admit(&state, &credentials.user).await?;
    upgrade_hash(&state, &credentials, &body.password, verification).await;
    let user = credentials.user;
    if let Some(challenge) = state
        .mfa
        .challenge(user.id, &ip.to_string(), store::now())
        .await?
    {
        return Ok(challenge_response(challenge));
    }
    logged_in(
        &state,
        &req,
        ip,
        user,
        AuthMethods::Password,
        device.is_some(),
    )
    .await
}

impl LoginBody {
    fn parse_email(&self) -> Result<Email, ApiError> {
        let email = Email::parse(&self.email)
            .map_err(|msg| ApiError::Validation(vec![FieldError::new("email", "invalid", msg)]))?;
        if self.password.is_empty() {
            return Err(ApiError::Validation(vec![FieldError::new(
                "password",
                "required",
                "is required",
            )]));
        }
        Ok(email)
    }
}

/// Who is trying: what the limits and the audit log count a login attempt by.
struct LoginAttempt<'a> {
    ip: IpAddr,
    email: &'a Email,
    device: Option<DeviceId>,
}

/// The device of a device token issued to this account. Any other (another account's,
/// tampered, expired, signed with an old secret) is treated as absent rather than refused: it
/// only ever decides which allowance the attempt is counted in.
fn known_device(
    state: &AppState,
    body: &LoginBody,
    credentials: Option<&Credentials>,
) -> Option<DeviceId> {
    body.device_token
        .as_deref()
        .and_then(|token| state.device_tokens.verify(token, store::now()))
        .filter(|claim| credentials.is_some_and(|c| c.user.id == claim.user_id))
        .map(|claim| claim.device)
}

/// Verifies the password (against a dummy hash when there is no such account, so both take the
/// same time) and counts the attempt; a wrong password and an unknown account look the same.
async fn check_login_password(
    state: &AppState,
    attempt: &LoginAttempt<'_>,
    credentials: Option<Credentials>,
    password: &str,
) -> Result<(Credentials, Verification), ApiError> {
    let LoginAttempt { ip, email, device } = *attempt;
    let stored_hash = credentials.as_ref().map(|c| c.password_hash.as_str());
    let known_user = credentials.as_ref().map(|c| c.user.id);
    let verification = state.hasher.verify(password, stored_hash).await?;
    let Some(credentials) = credentials.filter(|_| verification.matches()) else {
        state
            .limits
            .attempt_failed(ip, email.as_str(), device)
            .await?;
        state.metrics.login(false);
        audit::record(AuditEvent::LoginFailed {
            user_id: known_user,
            ip,
            known_device: device.is_some(),
        });
        return Err(ApiError::InvalidCredentials);
    };
    state
        .limits
        .attempt_succeeded(ip, email.as_str(), device)
        .await?;
    Ok((credentials, verification))
}

/// Whether a user who proved the password may have a session. Only a caller who knows the
/// password learns that the account is disabled or unverified.
async fn admit(state: &AppState, user: &User) -> Result<(), ApiError> {
    if user.disabled {
        return Err(ApiError::AccountDisabled);
    }
    if state.email.verification_required() && !user.email_verified {
        // Without a session the user cannot ask for another link, and the first one may have
        // expired: send a fresh one, within the resend limit.
        if state.limits.resend_verification(user.id).await.is_ok() {
            state
                .email
                .send_verification(user.id, &user.email)
                .await
                .unwrap_or_else(log_unqueued);
        }
        return Err(ApiError::EmailNotVerified);
    }
    Ok(())
}

/// Re-hashes the password at the configured cost when the stored hash has another one, so a
/// raised `LATCHKEY_BCRYPT_COST` reaches every active user without a reset, and from its
/// normalized form when only the form as typed matched (a hash from before passwords were
/// normalized). Best effort: the login succeeds whether or not the upgrade does, and the next
/// login tries again.
async fn upgrade_hash(
    state: &AppState,
    credentials: &Credentials,
    password: &str,
    verification: Verification,
) {
    if verification != Verification::MatchAsTyped
        && !state.hasher.needs_upgrade(&credentials.password_hash)
    {
        return;
    }
    // A password set under older rules cannot be re-hashed as a `Password`; it keeps its hash.
    // `parse` normalizes, so the new hash is of the normalized form.
    let Ok(password) = Password::parse(password.to_owned()) else {
        return;
    };
    let upgraded = match state.hasher.hash(&password).await {
        Ok(hash) => state
            .store
            .upgrade_password_hash(credentials.user.id, &hash)
            .await
            .map_err(anyhow::Error::from),
        Err(err) => Err(err),
    };
    if let Err(err) = upgraded {
        tracing::warn!(user_id = %credentials.user.id, error = %err, "could not upgrade a password hash");
    }
}
