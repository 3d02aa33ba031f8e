//! The caller's own account: read it, change it, change the password, delete it.

use std::net::IpAddr;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::audit::{self, AuditEvent};
use crate::domain::{DisplayName, Email, Password};
use crate::http::error::{ApiError, ApiResult, FieldError};
use crate::http::extract::{AuthUser, ClientIp, JsonBody, non_null};
use crate::http::routes::caller::{
    account_gone, check_password, own_credentials, reauthenticated, require_recent_mfa,
};
use crate::http::state::AppState;
use crate::mail::log_unqueued;
use crate::store::{self, Credentials, StoreError, User, UserChanges};

pub async fn get_me(state: web::Data<AppState>, caller: AuthUser) -> ApiResult {
    let user = state
        .store
        .user_by_id(caller.user_id)
        .await?
        .ok_or(account_gone())?;
    Ok(HttpResponse::Ok().json(user))
}

#[derive(Deserialize)]
pub struct UpdateMeBody {
    #[serde(default, deserialize_with = "non_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    email: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    current_password: Option<String>,
}

/// The account after a `PATCH /v1/me`, with the address a change was asked for, if one was.
#[derive(Serialize)]
struct UpdatedMe {
    #[serde(flatten)]
    user: User,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_email: Option<String>,
}

/// Changes the caller's name at once, and asks for an email change. A new email needs the
/// current password (a stolen access token alone must not be enough to take the account over),
/// and takes effect only when the link mailed to it is followed: otherwise an account could
/// claim an address its owner never saw, and the user could lock themselves out with a typo. The
/// current address is told, so its owner learns of a change they did not ask for.
pub async fn update_me(
    state: web::Data<AppState>,
    caller: AuthUser,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<UpdateMeBody>,
) -> ApiResult {
    let (email, name) = body.parse()?;
    let credentials = own_credentials(&state, &caller).await?;
    let email = email.filter(|email| email.as_str() != credentials.user.email);
    if let Some(new_email) = &email {
        require_recent_mfa(&state, &caller).await?;
        check_email_change(&state, ip, &credentials, &body, new_email).await?;
    }
    let changes = UserChanges {
        name,
        ..UserChanges::default()
    };
    // Also without a new name: it fails for an account deleted while the password was checked.
    let user = state
        .sessions
        .update_user(caller.user_id, &changes, store::now())
        .await
        .map_err(own_account)?;
    if let Some(new_email) = &email {
        audit::record(AuditEvent::EmailChangeRequested { user_id: user.id });
        state
            .email
            .request_email_change(user.id, &user.email, new_email.as_str())
            .await
            .unwrap_or_else(log_unqueued);
    }
    Ok(HttpResponse::Ok().json(UpdatedMe {
        user,
        pending_email: email.map(|email| email.as_str().to_owned()),
    }))
}

impl UpdateMeBody {
    /// The new email and name, each parsed if given (a blank name is `Some(None)`: no name);
    /// every invalid one is reported.
    fn parse(&self) -> Result<(Option<Email>, Option<Option<DisplayName>>), ApiError> {
        let mut errors = Vec::new();
        let email = self
            .email
            .as_deref()
            .map(Email::parse)
            .transpose()
            .map_err(|msg| errors.push(FieldError::new("email", "invalid", msg)))
            .ok()
            .flatten();
        let name = self
            .name
            .as_deref()
            .map(DisplayName::parse)
            .transpose()
            .map_err(|msg| errors.push(FieldError::new("name", "invalid", msg)))
            .ok()
            .flatten();
        if errors.is_empty() {
            Ok((email, name))
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// A change of email needs the current password, and an address no account has.
async fn check_email_change(
    state: &AppState,
    ip: IpAddr,
    credentials: &Credentials,
    body: &UpdateMeBody,
    new_email: &Email,
) -> Result<(), ApiError> {
    let Some(current_password) = body.current_password.as_deref() else {
        return Err(ApiError::Validation(vec![FieldError::new(
            "current_password",
            "required",
            "is required to change the email",
        )]));
    };
    check_password(state, ip, credentials, current_password).await?;
    // A courtesy to catch a mistyped address early; the address is reserved only when the
    // change is confirmed, which checks again.
    if state.store.credentials_by_email(new_email).await?.is_some() {
        return Err(ApiError::EmailTaken);
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct ChangePasswordBody {
    current_password: String,
    new_password: String,
}

/// Sets a new password and signs every other device out; the calling session stays.
pub async fn change_password(
    state: web::Data<AppState>,
    caller: AuthUser,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<ChangePasswordBody>,
) -> ApiResult {
    let new_password = Password::parse(body.new_password).map_err(|msg| {
        ApiError::Validation(vec![FieldError::new("new_password", "invalid", msg)])
    })?;
    reauthenticated(&state, &caller, ip, &body.current_password).await?;
    let hash = state.hasher.hash(&new_password).await?;
    let at = store::now();
    state
        .sessions
        .set_password(caller.user_id, &hash, Some(caller.session_id), at)
        .await
        .map_err(own_account)?;
    audit::record(AuditEvent::PasswordChanged {
        user_id: caller.user_id,
        session_id: caller.session_id,
    });
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
pub struct DeleteMeBody {
    password: String,
}

/// Deletes the caller's account and every session of it.
pub async fn delete_me(
    state: web::Data<AppState>,
    caller: AuthUser,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<DeleteMeBody>,
) -> ApiResult {
    reauthenticated(&state, &caller, ip, &body.password).await?;
    let at = store::now();
    state
        .sessions
        .delete_user(caller.user_id, at)
        .await
        .map_err(own_account)?;
    audit::record(AuditEvent::AccountDeletedByOwner {
        user_id: caller.user_id,
    });
    Ok(HttpResponse::NoContent().finish())
}

/// A store error while writing the caller's own account. The account can be deleted (by an admin,
/// or by another request of the caller's) while a request is past the token check and verifying a
/// password: that is the same token-whose-account-is-gone 401 as [`account_gone`], never a 404
/// for `/v1/me`.
fn own_account(err: StoreError) -> ApiError {
    match err {
        StoreError::UserNotFound => account_gone(),
        other => other.into(),
    }
}
