//! Checks on the calling user that the handlers of several resources share: their account's
//! credentials, a password typed again, a second factor proved recently.

use std::net::IpAddr;

use chrono::Utc;

use crate::http::error::{ApiError, TokenProblem};
use crate::http::extract::AuthUser;
use crate::http::state::AppState;
use crate::store::Credentials;

/// The caller's account, with its password hash.
pub(super) async fn own_credentials(
    state: &AppState,
    caller: &AuthUser,
) -> Result<Credentials, ApiError> {
    state
        .store
        .credentials_by_id(caller.user_id)
        .await?
        .ok_or(account_gone())
}

/// A wrong current password is a failed login: 401, the same answer as a bad login, and it
/// counts against the same rate limits and lockout.
pub(super) async fn check_password(
    state: &AppState,
    ip: IpAddr,
    credentials: &Credentials,
    password: &str,
) -> Result<(), ApiError> {
    let account = credentials.user.email.as_str();
    state.limits.password_attempt(ip, account).await?;
    let verification = state
        .hasher
        .verify(password, Some(&credentials.password_hash))
        .await?;
    if verification.matches() {
        state.limits.password_succeeded(ip, account).await?;
        Ok(())
    } else {
        state.limits.password_failed(ip, account).await?;
        Err(ApiError::InvalidCredentials)
    }
}

/// A valid signature over a user that no longer exists is a token that no longer counts.
pub(super) fn account_gone() -> ApiError {
    ApiError::Unauthorized(TokenProblem::Invalid(
        "the account of this token no longer exists",
    ))
}

/// For an account with a second factor, a sensitive change needs an `aal2` token whose factor
/// was proved recently; otherwise 403 `mfa_required`.
pub(super) async fn require_recent_mfa(
    state: &AppState,
    caller: &AuthUser,
) -> Result<(), ApiError> {
    if !state.mfa.enabled(caller.user_id).await? {
        return Ok(());
    }
    let since = Utc::now().timestamp() - state.mfa.step_up_max_age.num_seconds();
    if caller.methods.aal() == "aal2" && caller.auth_time >= since {
        Ok(())
    } else {
        Err(ApiError::MfaRequired)
    }
}

/// A sensitive change's proof that the caller is the account's owner now: a recent second factor
/// (when the account has one), then the password typed again. The caller's account, when both
/// hold.
pub(super) async fn reauthenticated(
    state: &AppState,
    caller: &AuthUser,
    ip: IpAddr,
    password: &str,
) -> Result<Credentials, ApiError> {
    require_recent_mfa(state, caller).await?;
    let credentials = own_credentials(state, caller).await?;
    check_password(state, ip, &credentials, password).await?;
    Ok(credentials)
}
