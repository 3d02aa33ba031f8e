use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest};
use uuid::Uuid;

use crate::auth::AuthMethods;
use crate::domain::Role;
use crate::http::error::{ApiError, TokenProblem};

/// Longest `Authorization` header worth parsing; anything longer is refused unread.
const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;

/// The caller, proven by a valid bearer access token whose session has not been revoked. Put it
/// in a handler's signature to require authentication; verification reads only the token and the
/// in-memory revocation list, never the database.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub role: Role,
    /// How the session authenticated, from the token's `amr`.
    pub methods: AuthMethods,
    /// The token's `auth_time`: when the session last proved a factor.
    pub auth_time: i64,
}

/// A validly signed, unexpired access token whose session may since have been revoked. Only for
/// routes that must still answer such a token, like an idempotent logout.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub user: AuthUser,
    pub session_revoked: bool,
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(verify(req).and_then(|token| {
            if token.session_revoked {
                Err(ApiError::Unauthorized(TokenProblem::Invalid(
                    "the session of this access token has been revoked",
                )))
            } else {
                Ok(token.user)
            }
        }))
    }
}

/// An authenticated caller with the admin role. The role comes from the token, which is safe
/// because demoting a user revokes their sessions, and so their tokens, at once.
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

impl FromRequest for AdminUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(
            AuthUser::from_request(req, payload)
                .into_inner()
                .and_then(|user| match user.role {
                    Role::Admin => Ok(AdminUser(user)),
                    Role::User => Err(ApiError::Forbidden),
                }),
        )
    }
}

impl FromRequest for VerifiedToken {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(verify(req))
    }
}

fn verify(req: &HttpRequest) -> Result<VerifiedToken, ApiError> {
    let state = super::app_state(req)?;
    let token = bearer_token(req)?;
    let claims = state
        .tokens
        .verify(token)
        .map_err(|err| ApiError::Unauthorized(TokenProblem::Invalid(err.description())))?;
    Ok(VerifiedToken {
        session_revoked: state.revocations.is_revoked(&claims.sid),
        user: AuthUser {
            user_id: claims.sub,
            session_id: claims.sid,
            role: claims.role,
            methods: AuthMethods::parse(&claims.amr.join(" ")),
            auth_time: claims.auth_time,
        },
    })
}

fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    parse_authorization(req.headers().get(header::AUTHORIZATION))
}

/// The token of an `Authorization: Bearer …` header.
fn parse_authorization(value: Option<&HeaderValue>) -> Result<&str, ApiError> {
    let Some(value) = value else {
        return Err(ApiError::Unauthorized(TokenProblem::Missing));
    };
    let invalid = |why| ApiError::Unauthorized(TokenProblem::Invalid(why));
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return Err(invalid("the authorization header is too large"));
    }
    let value = value
        .to_str()
        .map_err(|_| invalid("the authorization header is not valid text"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme (Basic, …) is not a bearer token at all: answer with the bare challenge.
        return Err(ApiError::Unauthorized(TokenProblem::Missing));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(invalid("the bearer token is empty"));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::auth::{AccessTokens, JwtSecret, KeySet};

    fn header(raw: &str) -> HeaderValue {
        HeaderValue::from_str(raw).unwrap()
    }

    #[test]
    fn takes_the_token_of_a_bearer_header_in_any_case() {
        assert_eq!(
            parse_authorization(Some(&header("Bearer abc"))).ok(),
            Some("abc")
        );
        assert_eq!(
            parse_authorization(Some(&header("bearer  abc "))).ok(),
            Some("abc")
        );
    }

    #[test]
    fn refuses_missing_empty_other_and_oversized_headers() {
        let code = |value: Option<&HeaderValue>| parse_authorization(value).unwrap_err().code();
        assert_eq!(code(None), "unauthorized");
        assert_eq!(code(Some(&header("Basic YTpi"))), "unauthorized");
        assert_eq!(code(Some(&header("Bearer "))), "invalid_token");
        let huge = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_BYTES));
        assert_eq!(code(Some(&header(&huge))), "invalid_token");
    }

    proptest! {
        // Fuzzing: arbitrary bytes as an Authorization header, and whatever token comes out
        // of it through verification, never panic and never verify. Run longer with
        // PROPTEST_CASES=… (see the README).
        #[test]
        fn arbitrary_authorization_headers_never_panic_or_verify(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let tokens = AccessTokens::new(
                &KeySet::single(JwtSecret::new("kQ7vN2xR9pL4mW8zT3bY6cH1dJ5fG0sA").unwrap()),
                "latchkey",
                Duration::from_secs(900),
            );
            if let Ok(value) = HeaderValue::from_bytes(&bytes)
                && let Ok(token) = parse_authorization(Some(&value))
            {
                prop_assert!(tokens.verify(token).is_err());
            }
        }

        #[test]
        fn jwt_shaped_garbage_never_panics_or_verifies(
            header in "[A-Za-z0-9_-]{0,200}",
            payload in "[A-Za-z0-9_-]{0,400}",
            signature in "[A-Za-z0-9_-]{0,100}",
        ) {
            let tokens = AccessTokens::new(
                &KeySet::single(JwtSecret::new("kQ7vN2xR9pL4mW8zT3bY6cH1dJ5fG0sA").unwrap()),
                "latchkey",
                Duration::from_secs(900),
            );
            let token = [header, payload, signature].join(".");
            prop_assert!(tokens.verify(&token).is_err());
        }
    }
}
