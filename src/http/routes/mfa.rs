//! The second factor: enrolling TOTP, its recovery codes, turning it off, an admin's reset; and
//! (in `mfa/login.rs`) the login challenge's verification and the step-up of a session.

mod login;

pub(super) use login::challenge_response;
pub use login::{step_up, verify_challenge};

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::caller::{own_credentials, reauthenticated, require_recent_mfa};
use crate::audit::{self, AuditEvent};
use crate::auth::TotpCode;
use crate::http::error::{ApiError, ApiResult, FieldError};
use crate::http::extract::{AdminUser, AuthUser, ClientIp, JsonBody};
use crate::http::state::AppState;
use crate::mfa::{MfaError, SecondFactor};
use crate::store::{self, RevokeScope};

/// Longest recovery code worth reading.
const MAX_RECOVERY_CODE_CHARS: usize = 64;

impl From<MfaError> for ApiError {
    fn from(err: MfaError) -> Self {
        match err {
            MfaError::AlreadyEnabled => Self::MfaConflict("the second factor is already enabled"),
            MfaError::NotEnabled => {
                Self::MfaConflict("the second factor is not enabled, or no enrollment is pending")
            }
            MfaError::WrongCode => Self::InvalidMfaCode,
            MfaError::InvalidChallenge => Self::InvalidMfaToken,
            MfaError::Store(err) => err.into(),
            MfaError::Internal(err) => Self::Internal(err),
        }
    }
}

/// A TOTP code, or a recovery code instead: exactly one.
#[derive(Deserialize)]
pub struct FactorBody {
    code: Option<String>,
    recovery_code: Option<String>,
}

impl FactorBody {
    fn parse(&self) -> Result<SecondFactor, ApiError> {
        let invalid =
            |field, msg| ApiError::Validation(vec![FieldError::new(field, "invalid", msg)]);
        match (&self.code, &self.recovery_code) {
            (Some(code), None) => TotpCode::parse(code)
                .map(SecondFactor::Totp)
                .map_err(|msg| invalid("code", msg)),
            (None, Some(code))
                if !code.trim().is_empty() && code.chars().count() <= MAX_RECOVERY_CODE_CHARS =>
            {
                Ok(SecondFactor::RecoveryCode(code.clone()))
            }
            (None, Some(_)) => Err(invalid("recovery_code", "is not a recovery code")),
            _ => Err(ApiError::Validation(vec![FieldError::new(
                "code",
                "required",
                "give either code or recovery_code",
            )])),
        }
    }
}

/// Counts a wrong code like a wrong password, against the account's limits and lockout.
async fn counted<T>(
    state: &AppState,
    ip: IpAddr,
    account: &str,
    result: Result<T, MfaError>,
) -> Result<T, ApiError> {
    match result {
        Err(MfaError::WrongCode) => {
            state.limits.password_failed(ip, account).await?;
            Err(ApiError::InvalidMfaCode)
        }
        Err(other) => Err(other.into()),
        Ok(value) => {
            state.limits.password_succeeded(ip, account).await?;
            Ok(value)
        }
    }
}

#[derive(Serialize)]
struct StatusResponse {
    totp: &'static str,
    recovery_codes_left: u32,
}

/// `GET /v1/me/mfa`: whether the caller's second factor is off, pending or on, and how many
/// recovery codes are left, so a client knows what to offer.
pub async fn status(state: web::Data<AppState>, caller: AuthUser) -> ApiResult {
    let (totp, recovery_codes_left) = state.mfa.state(caller.user_id).await?;
    Ok(HttpResponse::Ok().json(StatusResponse {
        totp: totp.as_str(),
        recovery_codes_left,
    }))
}

#[derive(Serialize)]
struct EnrollmentResponse {
    secret: String,
    otpauth_uri: String,
    qr_code: String,
}

/// The account's password, which enrolling asks for.
#[derive(Deserialize)]
pub struct EnrollBody {
    password: String,
}

/// `POST /v1/me/mfa/totp`: a new secret for the authenticator app; nothing changes until it is
/// confirmed with a code. The password is asked for because an access token alone is not proof
/// enough: whoever enrolls a factor decides who can log in to the account afterwards.
pub async fn start_totp(
    state: web::Data<AppState>,
    caller: AuthUser,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<EnrollBody>,
) -> ApiResult {
    let credentials = reauthenticated(&state, &caller, ip, &body.password).await?;
    let enrollment = state
        .mfa
        .enroll(caller.user_id, &credentials.user.email)
        .await?;
    Ok(secret_response().json(EnrollmentResponse {
        secret: enrollment.secret,
        otpauth_uri: enrollment.otpauth_uri,
        qr_code: enrollment.qr_code,
    }))
}

/// Enrollment's confirmation: a code from the app (never a recovery code, there are none yet).
#[derive(Deserialize)]
pub struct ConfirmBody {
    code: String,
}

#[derive(Serialize)]
struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

/// `POST /v1/me/mfa/totp/confirm`: a right code activates the enrollment; the recovery codes are
/// shown this once. Every other session of the account ends.
pub async fn confirm_totp(
    state: web::Data<AppState>,
    caller: AuthUser,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<ConfirmBody>,
) -> ApiResult {
    let code = TotpCode::parse(&body.code)
        .map_err(|msg| ApiError::Validation(vec![FieldError::new("code", "invalid", msg)]))?;
    let credentials = own_credentials(&state, &caller).await?;
    let account = credentials.user.email.as_str();
    state.limits.password_attempt(ip, account).await?;
    let confirmed = state.mfa.confirm(caller.user_id, &code).await;
    let recovery_codes = counted(&state, ip, account, confirmed).await?;
    changed(&state, &caller, "enabled").await?;
    Ok(secret_response().json(RecoveryCodes { recovery_codes }))
}

/// `POST /v1/me/mfa/recovery-codes`: new recovery codes; the old ones die.
pub async fn regenerate_recovery_codes(state: web::Data<AppState>, caller: AuthUser) -> ApiResult {
    require_recent_mfa(&state, &caller).await?;
    let recovery_codes = state.mfa.regenerate(caller.user_id).await?;
    changed(&state, &caller, "recovery_codes_regenerated").await?;
    Ok(secret_response().json(RecoveryCodes { recovery_codes }))
}

#[derive(Deserialize)]
pub struct DisableBody {
    password: String,
    #[serde(flatten)]
    factor: FactorBody,
}

/// `DELETE /v1/me/mfa/totp`: turns the second factor off, with the password and a current code.
pub async fn disable_totp(
    state: web::Data<AppState>,
    caller: AuthUser,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<DisableBody>,
) -> ApiResult {
    let factor = body.factor.parse()?;
    let credentials = reauthenticated(&state, &caller, ip, &body.password).await?;
    let account = credentials.user.email.as_str();
    state.limits.password_attempt(ip, account).await?;
    let disabled = state.mfa.disable(caller.user_id, Some(&factor)).await;
    counted(&state, ip, account, disabled).await?;
    changed(&state, &caller, "disabled").await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /v1/users/{id}/mfa`: an admin turns a user's second factor off (a lost phone); every
/// session of the user ends. Not one's own: that takes the owner's path, with a code.
pub async fn admin_reset(
    state: web::Data<AppState>,
    AdminUser(admin): AdminUser,
    id: web::Path<Uuid>,
) -> ApiResult {
    let user_id = id.into_inner();
    if user_id == admin.user_id {
        return Err(ApiError::OwnMfaReset);
    }
    if state.store.user_by_id(user_id).await?.is_none() {
        return Err(ApiError::NotFound("no user has this id".into()));
    }
    state.mfa.disable(user_id, None).await?;
    state
        .sessions
        .revoke(user_id, RevokeScope::All, store::now())
        .await?;
    audit::record(AuditEvent::MfaChanged {
        user_id,
        by: admin.user_id,
        action: "reset_by_admin",
    });
    Ok(HttpResponse::NoContent().finish())
}

/// The caller changed their own second factor: their other sessions end, and it is audited.
async fn changed(
    state: &AppState,
    caller: &AuthUser,
    action: &'static str,
) -> Result<(), ApiError> {
    state
        .sessions
        .revoke(
            caller.user_id,
            RevokeScope::AllExcept(caller.session_id),
            store::now(),
        )
        .await?;
    audit::record(AuditEvent::MfaChanged {
        user_id: caller.user_id,
        by: caller.user_id,
        action,
    });
    Ok(())
}

/// A 200 whose body holds a secret no cache may keep.
fn secret_response() -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::Ok();
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    builder
}
