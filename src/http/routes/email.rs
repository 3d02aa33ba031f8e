//! Email verification (spend a mailed token, or ask for a new one) and confirmation of an email
//! change.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::caller::account_gone;
use super::password::Accepted;
use crate::audit::{self, AuditEvent};
use crate::auth::token_hash;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AuthUser, JsonBody};
use crate::http::state::AppState;
use crate::store;

const VERIFICATION_SENT: &str =
    "Unless the address is already verified, a new verification link has been sent to it.";

#[derive(Deserialize)]
pub struct VerifyEmailBody {
    token: String,
}

/// Marks the address the token was mailed to as verified. No bearer token: the link may well be
/// opened on another device than the one that signed up.
pub async fn verify_email(
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<VerifyEmailBody>,
) -> ApiResult {
    let user_id = state
        .store
        .verify_email(&token_hash(&body.token), store::now())
        .await?
        .ok_or(ApiError::InvalidVerificationToken)?;
    audit::record(AuditEvent::EmailVerified { user_id });
    Ok(HttpResponse::NoContent().finish())
}

/// Moves the account to the new address the token was mailed to. No bearer token, like
/// verification: the link may be opened on another device.
pub async fn confirm_email_change(
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<VerifyEmailBody>,
) -> ApiResult {
    let user_id = state
        .store
        .confirm_email_change(&token_hash(&body.token), store::now())
        .await?
        .ok_or(ApiError::InvalidEmailChangeToken)?;
    audit::record(AuditEvent::EmailChanged { user_id });
    Ok(HttpResponse::NoContent().finish())
}

/// Mails the caller a new verification link for their current address. Earlier links keep
/// working until they expire.
pub async fn resend_verification(state: web::Data<AppState>, caller: AuthUser) -> ApiResult {
    state.limits.resend_verification(caller.user_id).await?;
    let user = state
        .store
        .user_by_id(caller.user_id)
        .await?
        .ok_or_else(account_gone)?;
    if !user.email_verified {
        state.email.send_verification(user.id, &user.email).await?;
    }
    Ok(HttpResponse::Accepted().json(Accepted {
        message: VERIFICATION_SENT,
    }))
}
