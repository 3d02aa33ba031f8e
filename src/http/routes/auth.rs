use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, HttpResponseBuilder, web};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use std::net::IpAddr;

use super::password::Accepted;
use super::sessions::revoke_sessions;
use crate::abuse::DeviceId;
use crate::auth::{RefreshToken, Verification};
use crate::domain::{DisplayName, Email, Password, Role};
use crate::http::error::{ApiError, ApiResult, FieldError, TokenProblem};
use crate::http::extract::{AuthUser, ClientIp, JsonBody, OptionalJsonBody, VerifiedToken};
use crate::http::state::AppState;
use crate::store::{
    self, Credentials, NewRefreshToken, NewSession, NewUser, RefreshOutcome, RevokeScope,
    StoreError, TokenCheck, User,
};

/// Longest `User-Agent` kept with a session.
const MAX_USER_AGENT_CHARS: usize = 512;

#[derive(Deserialize)]
pub struct SignupBody {
    email: String,
    password: String,
    name: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginBody {
    email: String,
    password: String,
    /// From an earlier token response for this account; anything else is ignored.
    device_token: Option<String>,
}

#[derive(Deserialize)]
pub struct RefreshBody {
    /// May be left out in cookie mode, where the cookie carries it (and so may the whole body).
    refresh_token: Option<String>,
}

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

struct Signup {
    email: Email,
    password: Password,
    name: Option<DisplayName>,
}

impl SignupBody {
    /// Checks every field and reports all that are wrong at once.
    fn parse(self) -> Result<Signup, ApiError> {
        let mut errors = Vec::new();
        let email = Email::parse(&self.email)
            .map_err(|msg| errors.push(FieldError::new("email", "invalid", msg)))
            .ok();
        let password = Password::parse(self.password)
            .map_err(|msg| errors.push(FieldError::new("password", "invalid", msg)))
            .ok();
        let name = DisplayName::parse(self.name.as_deref().unwrap_or(""))
            .map_err(|msg| errors.push(FieldError::new("name", "invalid", msg)))
            .ok();
        match (email, password, name) {
            (Some(email), Some(password), Some(name)) => Ok(Signup {
                email,
                password,
                name,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// Creates an account. Without required verification, the answer is 201 with a first session,
/// and a taken address gets 409: a signup that hands out a session at once cannot pretend to
/// have created an account it did not. With `LATCHKEY_REQUIRE_EMAIL_VERIFICATION`, no session is
/// handed out until the address is verified, so signup can hide which addresses have accounts:
/// see [`signup_pending_verification`].
pub async fn signup(
    state: web::Data<AppState>,
    req: HttpRequest,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<SignupBody>,
) -> ApiResult {
    state.limits.signup(ip)?;
    let signup = body.parse()?;
    let password_hash = state.hasher.hash(&signup.password).await?;
    let new_user = NewUser {
        id: Uuid::new_v4(),
        email: signup.email,
        password_hash,
        name: signup.name,
        role: Role::User,
        created_at: store::now(),
        email_verified_at: None,
    };
    if state.email.verification_required() {
        return signup_pending_verification(&state, ip, new_user).await;
    }
    let (session, refresh_token, refresh) = new_session(&state, &req, ip, new_user.id)?;
    let user = state
        .sessions
        .sign_up(&new_user, &session, &refresh)
        .await?;
    tracing::info!(
        target: "latchkey::audit",
        event = "signup",
        user_id = %user.id,
        session_id = %session.id,
        %ip,
        "account created"
    );
    state.email.send_verification(user.id, user.email.clone());
    token_response(
        HttpResponse::Created(),
        &state,
        user,
        session.id,
        refresh_token,
    )
}

/// The one answer to a signup when verification is required, whether the address was free or
/// taken.
const SIGNUP_MAILED: &str =
    "A mail has been sent to this address. Follow its instructions, then log in.";

/// Signup without a session: 202, the same body for a new and a taken address. Both paths hash
/// the password (the caller did) and try the same insert, so they take the same time; the new
/// account's address gets a verification link, a taken one's owner a notice (both mailed after
/// the response).
async fn signup_pending_verification(state: &AppState, ip: IpAddr, new_user: NewUser) -> ApiResult {
    match state.store.create_account(&new_user).await {
        Ok(user) => {
            tracing::info!(
                target: "latchkey::audit",
                event = "signup",
                user_id = %user.id,
                %ip,
                "account created, awaiting verification"
            );
            state.email.send_verification(user.id, user.email);
        }
        Err(StoreError::EmailTaken) => {
            tracing::info!(
                target: "latchkey::audit",
                event = "signup_email_taken",
                %ip,
                "signup for an address that has an account"
            );
            state.email.notify_signup_attempt(new_user.email);
        }
        Err(err) => return Err(err.into()),
    }
    Ok(HttpResponse::Accepted().json(Accepted {
        message: SIGNUP_MAILED,
    }))
}

pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<LoginBody>,
) -> ApiResult {
    let email = body.parse_email()?;
    state.limits.address_attempt(ip)?;
    let credentials = state.store.credentials_by_email(&email).await?;
    let device = known_device(&state, &body, credentials.as_ref());
    state.limits.account_attempt(ip, email.as_str(), device)?;
    let attempt = LoginAttempt {
        ip,
        email: &email,
        device,
    };
    let (credentials, verification) =
        check_login_password(&state, &attempt, credentials, &body.password).await?;
    admit(&state, &credentials.user)?;
    upgrade_hash(&state, &credentials, &body.password, verification).await;
    let user = credentials.user;
    let (session, refresh_token, refresh) = new_session(&state, &req, ip, user.id)?;
    state
        .sessions
        .start(&session, &refresh, state.max_sessions_per_user)
        .await?;
    state.metrics.login(true);
    tracing::info!(
        target: "latchkey::audit",
        event = "login_succeeded",
        user_id = %user.id,
        session_id = %session.id,
        %ip,
        known_device = device.is_some(),
        "login succeeded"
    );
    token_response(HttpResponse::Ok(), &state, user, session.id, refresh_token)
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
    let known_user = credentials.as_ref().map(|c| c.user.id.to_string());
    let verification = state.hasher.verify(password, stored_hash).await?;
    let Some(credentials) = credentials.filter(|_| verification.matches()) else {
        state.limits.attempt_failed(ip, email.as_str(), device);
        state.metrics.login(false);
        tracing::info!(
            target: "latchkey::audit",
            event = "login_failed",
            user_id = known_user.as_deref().unwrap_or("unknown"),
            %ip,
            known_device = device.is_some(),
            "login failed"
        );
        return Err(ApiError::InvalidCredentials);
    };
    state.limits.attempt_succeeded(ip, email.as_str(), device);
    Ok((credentials, verification))
}

/// Whether a user who proved the password may have a session. Only a caller who knows the
/// password learns that the account is disabled or unverified.
fn admit(state: &AppState, user: &User) -> Result<(), ApiError> {
    if user.disabled {
        return Err(ApiError::AccountDisabled);
    }
    if state.email.verification_required() && !user.email_verified {
        // Without a session the user cannot ask for another link, and the first one may have
        // expired: send a fresh one, within the resend limit.
        if state.limits.resend_verification(user.id).is_ok() {
            state.email.send_verification(user.id, user.email.clone());
        }
        return Err(ApiError::EmailNotVerified);
    }
    Ok(())
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
    state.limits.refresh(ip)?;
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
    let presented = RefreshToken::hash_presented(&token);
    let successor = state.refresh_tokens.successor(&token);
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
            rotation.session_id,
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

/// The sessions service has revoked a session whose rotated-away refresh token came back: tell
/// the operator, and the client.
fn refresh_token_reused(user_id: Uuid, session_id: Uuid, ip: IpAddr) -> ApiError {
    tracing::warn!(
        target: "latchkey::audit",
        event = "refresh_token_reused",
        %user_id,
        %session_id,
        %ip,
        "a rotated-away refresh token was presented again; the session is revoked"
    );
    ApiError::RefreshTokenReused
}

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
        let presented = RefreshToken::hash_presented(&cookie);
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
        tracing::info!(
            target: "latchkey::audit",
            event = "logout",
            %user_id,
            %session_id,
            scope = query.scope.as_str(),
            "logout"
        );
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

/// For gateways (nginx `auth_request`, Traefik ForwardAuth, Caddy `forward_auth`): 204 with the
/// caller's identity in headers, or 401. It reads the token and the revocation list, nothing else.
pub async fn verify(caller: AuthUser) -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("X-Latchkey-User-Id", caller.user_id.to_string()))
        .insert_header(("X-Latchkey-Role", caller.role.as_str()))
        .insert_header(("X-Latchkey-Session-Id", caller.session_id.to_string()))
        .finish()
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

fn new_session(
    state: &AppState,
    req: &HttpRequest,
    ip: IpAddr,
    user_id: Uuid,
) -> Result<(NewSession, RefreshToken, NewRefreshToken), ApiError> {
    let refresh_token = state.refresh_tokens.generate();
    let refresh = stored_refresh_token(state, &refresh_token)?;
    let session = NewSession {
        id: Uuid::new_v4(),
        user_id,
        created_at: refresh.created_at,
        expires_at: shifted(refresh.created_at, state.session_max_age)?,
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().take(MAX_USER_AGENT_CHARS).collect()),
        ip: Some(ip.to_string()),
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

fn token_response(
    mut builder: HttpResponseBuilder,
    state: &AppState,
    user: User,
    session_id: Uuid,
    refresh_token: RefreshToken,
) -> ApiResult {
    let access = state
        .tokens
        .issue(user.id, session_id, user.role)
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

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;
    use proptest::prelude::*;

    use super::*;

    /// Fuzzing the request extractor: arbitrary bytes as a signup body, under a JSON or another
    /// content type, give a signup or one of the documented client errors; never a panic or a
    /// server error. Run longer with PROPTEST_CASES=… (see the README).
    #[test]
    fn arbitrary_signup_bodies_never_panic_or_fail_the_server() {
        let runtime = actix_web::rt::Runtime::new().unwrap();
        proptest!(|(
            body in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..512),
                "\\{(\"(email|password|name|role)\":(\"[^\"]{0,80}\"|[0-9]{1,5}|null|\\[\\]|\\{\\}),?){0,4}\\}"
                    .prop_map(String::into_bytes),
            ],
            json in any::<bool>(),
        )| {
            let content_type = if json { "application/json" } else { "text/plain" };
            let (req, mut payload) = TestRequest::post()
                .insert_header((header::CONTENT_TYPE, content_type))
                .set_payload(body)
                .to_http_parts();
            let parsed = runtime.block_on(JsonBody::<SignupBody>::from_request(&req, &mut payload));
            let status = match parsed {
                Ok(JsonBody(signup)) => match signup.parse() {
                    Ok(_) => 200,
                    Err(err) => actix_web::ResponseError::status_code(&err).as_u16(),
                },
                Err(err) => actix_web::ResponseError::status_code(&err).as_u16(),
            };
            prop_assert!([200, 400, 413, 415, 422].contains(&status), "status {status}");
        });
    }
}
