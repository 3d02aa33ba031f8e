//! `POST /v1/auth/signup`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use std::net::IpAddr;

use super::{new_session, token_response};
use crate::audit::{self, AuditEvent};
use crate::auth::AuthMethods;
use crate::domain::{DisplayName, Email, Password, Role};
use crate::http::error::{ApiError, ApiResult, FieldError};
use crate::http::extract::{ClientIp, JsonBody};
use crate::http::routes::password::Accepted;
use crate::http::state::AppState;
use crate::mail::log_unqueued;
use crate::store::{self, NewUser, StoreError};

#[derive(Deserialize)]
pub struct SignupBody {
    email: String,
    password: String,
    name: Option<String>,
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
    state.limits.signup(ip).await?;
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
    let (session, refresh_token, refresh) =
        new_session(&state, &req, ip, new_user.id, AuthMethods::Password)?;
    let user = state
        .sessions
        .sign_up(&new_user, &session, &refresh)
        .await?;
    audit::record(AuditEvent::SignedUp {
        user_id: user.id,
        session_id: session.id,
        ip,
    });
    state
        .email
        .send_verification(user.id, &user.email)
        .await
        .unwrap_or_else(log_unqueued);
    token_response(
        HttpResponse::Created(),
        &state,
        user,
        (
            session.id,
            AuthMethods::Password,
            session.created_at.timestamp(),
        ),
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
            audit::record(AuditEvent::SignedUpAwaitingVerification {
                user_id: user.id,
                ip,
            });
            state
                .email
                .send_verification(user.id, &user.email)
                .await
                .unwrap_or_else(log_unqueued);
        }
        Err(StoreError::EmailTaken) => {
            audit::record(AuditEvent::SignupEmailTaken { ip });
            state
                .email
                .notify_signup_attempt(&new_user.email)
                .await
                .unwrap_or_else(log_unqueued);
        }
        Err(err) => return Err(err.into()),
    }
    Ok(HttpResponse::Accepted().json(Accepted {
        message: SIGNUP_MAILED,
    }))
}

#[cfg(test)]
mod tests {
    use actix_web::FromRequest;
    use actix_web::http::header;
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
