//! `POST /v1/auth/logout`.

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::refresh::refresh_token_reused;
use super::shifted;
use crate::audit::{self, AuditEvent};
use crate::http::error::{ApiError, ApiResult, TokenProblem};
use crate::http::extract::{ClientIp, VerifiedToken};
use crate::http::routes::sessions::revoke_sessions;
use crate::http::state::AppState;
use crate::store::{self, RevokeScope, TokenCheck};

#[derive(Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogoutScope {
    /// The session behind the access token.
    #[default]
    Local,
    /// Every other session of the user.
    Others,
    /// Every session of the user.
    Global,
}

impl LogoutScope {
    fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Others => "others",
            Self::Global => "global",
        }
    }
}

#[derive(Deserialize)]
pub struct LogoutQuery {
    #[serde(default)]
    scope: LogoutScope,
}

/// Ends sessions of the caller, named by a bearer access token or, in cookie mode, by the refresh
/// cookie. With a bearer token it is idempotent: a token whose session is already revoked still
/// gets 204, and changes nothing. In cookie mode the cookie is cleared.
///
/// A refresh cookie is judged exactly as `/v1/auth/refresh` judges it, because a logout with
/// `scope=others` or `global` is power over every session of the account: only the session's
/// live token has it. A rotated-away one is a copy (the session is revoked as stolen, 401
/// `refresh_token_reused`), and any other dead token is 401 `invalid_refresh_token`.
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    ClientIp(ip): ClientIp,
    query: web::Query<LogoutQuery>,
) -> ApiResult {
    let caller = if req.headers().contains_key(header::AUTHORIZATION) {
        let token = VerifiedToken::extract(&req).await?;
        (!token.session_revoked).then_some((token.user.user_id, token.user.session_id))
    } else if let Some(cookie) = state.refresh_cookie.read(&req)? {
        let presented = state.refresh_tokens.read(&cookie);
        let now = store::now();
        let reuse_since = shifted(now, -state.refresh_reuse_interval)?;
        match state.sessions.check(&presented, now, reuse_since).await? {
            TokenCheck::Live {
                user_id,
                session_id,
            } => Some((user_id, session_id)),
            TokenCheck::Reused {
                user_id,
                session_id,
                ..
            } => {
                return Err(refresh_token_reused(user_id, session_id, ip));
            }
            TokenCheck::JustRotated | TokenCheck::Invalid => {
                return Err(ApiError::InvalidRefreshToken);
            }
        }
    } else {
        return Err(ApiError::Unauthorized(TokenProblem::Missing));
    };
    if let Some((user_id, session_id)) = caller {
        audit::record(AuditEvent::Logout {
            user_id,
            session_id,
            scope: query.scope.as_str(),
        });
        let scope = match query.scope {
            LogoutScope::Local => RevokeScope::Only(session_id),
            LogoutScope::Others => RevokeScope::AllExcept(session_id),
            LogoutScope::Global => RevokeScope::All,
        };
        revoke_sessions(&state, user_id, scope).await?;
    }
    let mut response = HttpResponse::NoContent();
    state.refresh_cookie.clear(&mut response);
    Ok(response.finish())
}
