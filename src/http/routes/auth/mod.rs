//! The token endpoints: signup, login, refresh, logout, and the gateway check; with what they
//! share, the token response and the making of a new session.

mod login;
mod logout;
mod refresh;
mod signup;

pub use login::login;
pub use logout::logout;
pub use refresh::refresh;
pub use signup::signup;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use uuid::Uuid;

use std::net::IpAddr;

use crate::audit::{self, AuditEvent};
use crate::auth::{AuthMethods, RefreshToken};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::AuthUser;
use crate::http::state::AppState;
use crate::store::{self, NewRefreshToken, NewSession, User};
/// Longest `User-Agent` kept with a session.
const MAX_USER_AGENT_CHARS: usize = 512;

/// The OAuth 2.0 style token response (RFC 6749 §5.1) with the user alongside.
#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    /// Absent in cookie mode: the refresh token is then only in the HttpOnly cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    /// Names this client as one that logged in to the account, for later logins (see
    /// `crate::auth::DeviceTokens`). In the body in cookie mode too: it is no credential, and a
    /// browser app keeps it in storage script can read, like the user's email.
    device_token: String,
    user: User,
}

/// For gateways (nginx `auth_request`, Traefik ForwardAuth, Caddy `forward_auth`): 204 with the
/// caller's identity in headers, or 401. It reads the token and the revocation list, nothing else.
pub async fn verify(caller: AuthUser) -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("X-Latchkey-User-Id", caller.user_id.to_string()))
        .insert_header(("X-Latchkey-Role", caller.role.as_str()))
        .insert_header(("X-Latchkey-Session-Id", caller.session_id.to_string()))
        .insert_header(("X-Latchkey-Aal", caller.methods.aal()))
        .finish()
}

pub(super) fn new_session(
    state: &AppState,
    req: &HttpRequest,
    ip: IpAddr,
    user_id: Uuid,
    methods: AuthMethods,
) -> Result<(NewSession, RefreshToken, NewRefreshToken), ApiError> {
    let session_id = Uuid::new_v4();
    let refresh_token = state.refresh_tokens.generate(session_id);
    let refresh = stored_refresh_token(state, &refresh_token)?;
    let session = NewSession {
        id: session_id,
        user_id,
        created_at: refresh.created_at,
        expires_at: shifted(refresh.created_at, state.session_max_age)?,
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().take(MAX_USER_AGENT_CHARS).collect()),
        ip: Some(ip.to_string()),
        methods,
    };
    Ok((session, refresh_token, refresh))
}

fn stored_refresh_token(
    state: &AppState,
    token: &RefreshToken,
) -> Result<NewRefreshToken, ApiError> {
    let now = store::now();
    Ok(NewRefreshToken {
        hash: token.hash(),
        created_at: now,
        expires_at: shifted(now, state.refresh_ttl)?,
    })
}

/// `at + by`, checked. The configured maxima (src/config.rs) keep it far inside chrono's range,
/// but an overflow would panic the worker and drop the connection without an answer; this way a
/// setting that slipped past them is a logged 500 instead.
fn shifted(at: DateTime<Utc>, by: TimeDelta) -> Result<DateTime<Utc>, ApiError> {
    at.checked_add_signed(by).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "{at} + {by} is past the representable dates: check the duration settings"
        ))
    })
}

/// A login that passed every check (the password, and the second factor if the account has
/// one): a new session at the level `methods` prove, the login counted and audited, and the token
/// response.
pub(super) async fn logged_in(
    state: &AppState,
    req: &HttpRequest,
    ip: IpAddr,
    user: User,
    methods: AuthMethods,
    known_device: bool,
) -> ApiResult {
    let (session, refresh_token, refresh) = new_session(state, req, ip, user.id, methods)?;
    state
        .sessions
        .start(&session, &refresh, state.max_sessions_per_user)
        .await?;
    state.metrics.login(true);
    audit::record(AuditEvent::LoginSucceeded {
        user_id: user.id,
        session_id: session.id,
        ip,
        known_device,
    });
    let authn = (session.id, methods, session.created_at.timestamp());
    token_response(HttpResponse::Ok(), state, user, authn, refresh_token)
}

pub(super) fn token_response(
    mut builder: HttpResponseBuilder,
    state: &AppState,
    user: User,
    (session_id, methods, auth_time): (Uuid, AuthMethods, i64),
    refresh_token: RefreshToken,
) -> ApiResult {
    let access = state
        .tokens
        .issue_with(user.id, session_id, user.role, (methods, auth_time))
        .map_err(|err| ApiError::Internal(err.into()))?;
    let refresh_token = if state.refresh_cookie.enabled() {
        state
            .refresh_cookie
            .set(&mut builder, refresh_token.as_str());
        None
    } else {
        Some(refresh_token.into_string())
    };
    let body = TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        refresh_token,
        device_token: state.device_tokens.issue(user.id, store::now()),
        user,
    };
    Ok(builder
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body))
}
