//! Forgotten passwords: a reset link by mail, and the reset itself.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::audit::{self, AuditEvent};
use crate::auth::token_hash;
use crate::domain::{Email, Password};
use crate::http::error::{ApiError, ApiResult, FieldError};
use crate::http::extract::{ClientIp, JsonBody};
use crate::http::state::AppState;
use crate::store::{self, EmailTokenPurpose};

/// The one answer to a reset request, whether or not an account has the address.
const RESET_REQUESTED: &str =
    "If an account has this email address, a link to reset its password has been sent to it.";

#[derive(Deserialize)]
pub struct ForgotPasswordBody {
    email: String,
}

/// The body of a 202: what happens next, in words.
#[derive(Serialize)]
pub struct Accepted {
    pub message: &'static str,
}

/// Asks for a reset link. The answer is the same 202, in the same time, whether or not an
/// account has the address: the lookup, the token and the mail all happen on the mail worker,
/// after the response. Malformed addresses get 422 (that says nothing about any account), and
/// the rate limits count every request, for known and unknown addresses alike.
pub async fn forgot_password(
    state: web::Data<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<ForgotPasswordBody>,
) -> ApiResult {
    let email = Email::parse(&body.email)
        .map_err(|msg| ApiError::Validation(vec![FieldError::new("email", "invalid", msg)]))?;
    state.limits.forgot_password(ip, email.as_str()).await?;
    state.email.request_password_reset(&email).await?;
    Ok(HttpResponse::Accepted().json(Accepted {
        message: RESET_REQUESTED,
    }))
}

#[derive(Deserialize)]
pub struct ResetPasswordBody {
    token: String,
    new_password: String,
}

/// Spends a reset token: sets the new password and signs the user out everywhere, access tokens
/// included. The token works once; every other reset link of the user dies with it.
pub async fn reset_password(
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<ResetPasswordBody>,
) -> ApiResult {
    let new_password = Password::parse(body.new_password).map_err(|msg| {
        ApiError::Validation(vec![FieldError::new("new_password", "invalid", msg)])
    })?;
    let presented = token_hash(&body.token);
    // A cheap look first, so that a made-up token costs one query instead of a bcrypt hash.
    // The spend below is what decides, atomically, if two resets race with one token.
    let live = state
        .store
        .email_token_is_live(&presented, EmailTokenPurpose::PasswordReset, store::now())
        .await?;
    if !live {
        return Err(ApiError::InvalidResetToken);
    }
    let password_hash = state.hasher.hash(&new_password).await?;
    let at = store::now();
    let user_id = state
        .sessions
        .reset_password(&presented, &password_hash, at)
        .await?
        .ok_or(ApiError::InvalidResetToken)?;
    audit::record(AuditEvent::PasswordReset { user_id });
    Ok(HttpResponse::NoContent().finish())
}
