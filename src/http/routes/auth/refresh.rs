//! `POST /v1/auth/refresh`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use std::net::IpAddr;

use super::{shifted, stored_refresh_token, token_response};
use crate::audit::{self, AuditEvent};
use crate::auth::{PresentedRefresh, RefreshForm};
use crate::http::error::{ApiError, ApiResult, FieldError};
use crate::http::extract::{ClientIp, OptionalJsonBody};
use crate::http::state::AppState;
use crate::store::RefreshOutcome;

#[derive(Deserialize)]
pub struct RefreshBody {
    /// May be left out in cookie mode, where the cookie carries it (and so may the whole body).
    refresh_token: Option<String>,
}

/// Rotates a refresh token. Presenting one that was rotated away is treated as theft (RFC 9700
/// §4.14.2) unless it happens within the reuse interval, which is what concurrent refreshes from
/// two tabs look like: those get the same successor the first refresh got.
pub async fn refresh(
    state: web::Data<AppState>,
    ClientIp(ip): ClientIp,
    req: HttpRequest,
    OptionalJsonBody(body): OptionalJsonBody<RefreshBody>,
) -> ApiResult {
    state.limits.refresh(ip).await?;
    // No body is `{}`: in cookie mode the cookie carries the token, else the member is missing.
    let token = match body.and_then(|body| body.refresh_token) {
        Some(token) => token,
        None => state.refresh_cookie.read(&req)?.ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                "refresh_token",
                "required",
                "is required",
            )])
        })?,
    };
    let presented = state.refresh_tokens.read(&token);
    let Some((session_id, generation)) = successor_place(&state, &presented).await? else {
        return Err(ApiError::InvalidRefreshToken);
    };
    let successor = state
        .refresh_tokens
        .successor(&token, session_id, generation);
    let next = stored_refresh_token(&state, &successor)?;
    let reuse_since = shifted(next.created_at, -state.refresh_reuse_interval)?;
    // Like login: a required verification gates every new access token, so a session opened
    // before the address had to be verified cannot outlive the rule.
    let require_verified = state.email.verification_required();
    match state
        .sessions
        .rotate(&presented, &next, reuse_since, require_verified)
        .await?
    {
        RefreshOutcome::Rotated(rotation) | RefreshOutcome::Replayed(rotation) => token_response(
            HttpResponse::Ok(),
            &state,
            rotation.user,
            (
                rotation.session_id,
                rotation.methods,
                rotation.auth_time.timestamp(),
            ),
            successor,
        ),
        RefreshOutcome::Reused {
            user_id,
            session_id,
            ..
        } => Err(refresh_token_reused(user_id, session_id, ip)),
        RefreshOutcome::Invalid => Err(ApiError::InvalidRefreshToken),
        RefreshOutcome::Unverified => Err(ApiError::EmailNotVerified),
    }
}

/// The session and generation of the token that replaces `presented` if it is live, or was
/// until moments ago; `None` when no session can be named.
async fn successor_place(
    state: &AppState,
    presented: &PresentedRefresh,
) -> Result<Option<(Uuid, u32)>, ApiError> {
    Ok(match presented.form {
        RefreshForm::Chained {
            session_id,
            generation,
            ..
        } => generation.checked_add(1).map(|next| (session_id, next)),
        RefreshForm::Legacy => state
            .store
            .session_of_legacy_refresh_token(&presented.hash)
            .await?
            .map(|session_id| (session_id, 1)),
    })
}

/// The sessions service has revoked a session whose rotated-away refresh token came back: tell
/// the operator, and the client.
pub(super) fn refresh_token_reused(user_id: Uuid, session_id: Uuid, ip: IpAddr) -> ApiError {
    audit::record(AuditEvent::RefreshTokenReused {
        user_id,
        session_id,
        ip,
    });
    ApiError::RefreshTokenReused
}
