//! `POST /v1/auth/mfa/verify` (the second half of a login) and `POST /v1/auth/mfa/step-up`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{FactorBody, counted};
use crate::audit::{self, AuditEvent};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AuthUser, ClientIp, JsonBody};
use crate::http::routes::auth::logged_in;
use crate::http::routes::caller::account_gone;
use crate::http::state::AppState;
use crate::mfa::Challenge;

#[derive(Deserialize)]
pub struct VerifyBody {
    mfa_token: String,
    #[serde(flatten)]
    factor: FactorBody,
}

/// The answer to a right password for an account with a second factor: no token, a challenge.
#[derive(Serialize)]
struct ChallengeResponse {
    mfa_required: bool,
    mfa_token: String,
    expires_in: u64,
}

pub(in crate::http::routes) fn challenge_response(challenge: Challenge) -> HttpResponse {
    super::secret_response().json(ChallengeResponse {
        mfa_required: true,
        mfa_token: challenge.mfa_token,
        expires_in: challenge.expires_in,
    })
}

/// Completes a login with the second factor: the token response of a login, at `aal2`. A wrong
/// code counts against the account's limits and the challenge, which dies after five.
pub async fn verify_challenge(
    state: web::Data<AppState>,
    req: HttpRequest,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<VerifyBody>,
) -> ApiResult {
    let factor = body.factor.parse()?;
    state.limits.address_attempt(ip).await?;
    let challenge = state
        .mfa
        .find_challenge(&body.mfa_token, &ip.to_string())
        .await?;
    let user = state
        .store
        .user_by_id(challenge.user_id)
        .await?
        .ok_or(ApiError::InvalidMfaToken)?;
    // The address was counted above: the account's lockout and allowance now.
    state.limits.account_attempt(ip, &user.email, None).await?;
    let completed = state.mfa.complete(&challenge, &factor).await;
    let proof = counted(&state, ip, &user.email, completed).await?;
    if user.disabled {
        return Err(ApiError::AccountDisabled);
    }
    logged_in(&state, &req, ip, user, proof.methods(), false).await
}

#[derive(Serialize)]
struct StepUpResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    aal: &'static str,
}

/// Raises the caller's session to `aal2` with a code: a fresh access token, and the session's
/// refresh token refreshes at that level from now on.
pub async fn step_up(
    state: web::Data<AppState>,
    caller: AuthUser,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<FactorBody>,
) -> ApiResult {
    let factor = body.parse()?;
    let user = state
        .store
        .user_by_id(caller.user_id)
        .await?
        .ok_or_else(account_gone)?;
    state.limits.password_attempt(ip, &user.email).await?;
    let raised = state
        .mfa
        .step_up(caller.user_id, caller.session_id, &factor)
        .await;
    let proof = counted(&state, ip, &user.email, raised).await?;
    let methods = proof.methods();
    let access = state
        .tokens
        .issue_with(
            user.id,
            caller.session_id,
            user.role,
            (methods, chrono::Utc::now().timestamp()),
        )
        .map_err(|err| ApiError::Internal(err.into()))?;
    audit::record(AuditEvent::MfaChanged {
        user_id: user.id,
        by: user.id,
        action: "step_up",
    });
    Ok(super::secret_response().json(StepUpResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        aal: methods.aal(),
    }))
}
