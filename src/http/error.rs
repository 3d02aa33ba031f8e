//! The one error type of the HTTP layer. Every failure a client can see is an [`ApiError`], which
//! renders as an RFC 9457 problem (`application/problem+json`) with a stable snake_case `code`.
//! Internal causes are kept as a source chain for the log and never reach the response body.

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::abuse::{Refused, Unavailable};
use crate::store::StoreError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// What a handler returns.
pub type ApiResult<T = HttpResponse> = Result<T, ApiError>;

/// One invalid field of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// No credentials at all: the challenge carries no error (RFC 6750 §3.1).
    Missing,
    /// The token was sent but is malformed, forged, expired or revoked.
    Invalid(&'static str),
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid")]
    Validation(Vec<FieldError>),
    #[error("the request body is not valid JSON")]
    MalformedJson,
    #[error("the request must be sent as application/json")]
    UnsupportedMediaType,
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("the email or password is incorrect")]
    InvalidCredentials,
    #[error("the refresh token is invalid, expired or already used")]
    InvalidRefreshToken,
    #[error("the refresh token was already used; the session has been revoked")]
    RefreshTokenReused,
    #[error("this account is disabled")]
    AccountDisabled,
    #[error("the email address of this account has not been verified")]
    EmailNotVerified,
    #[error("the password reset token is invalid, expired or already used")]
    InvalidResetToken,
    #[error("the verification token is invalid, expired or already used")]
    InvalidVerificationToken,
    #[error("the email change token is invalid, expired or already used")]
    InvalidEmailChangeToken,
    #[error("this requires the admin role")]
    Forbidden,
    #[error("this needs a recent second factor: POST /v1/auth/mfa/step-up with a code first")]
    MfaRequired,
    #[error("the mfa_token is invalid, expired or used up; log in again")]
    InvalidMfaToken,
    #[error("the code is wrong, expired or already used")]
    InvalidMfaCode,
    #[error("{0}")]
    MfaConflict(&'static str),
    #[error("an admin cannot reset their own second factor; turn it off with a code instead")]
    OwnMfaReset,
    #[error("{0}")]
    CsrfFailed(&'static str),
    #[error("the change would leave no enabled admin")]
    LastAdmin,
    #[error("too many requests; retry after {} seconds", retry_after_secs(*.0))]
    RateLimited(std::time::Duration),
    #[error("a valid bearer access token is required")]
    Unauthorized(TokenProblem),
    #[error("no such resource: {0}")]
    NotFound(String),
    #[error("the query string is not valid: {0}")]
    InvalidQuery(String),
    #[error("the database is unavailable")]
    DatabaseUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("an internal error occurred")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation_failed",
            Self::MalformedJson => "malformed_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::EmailTaken => "email_taken",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::AccountDisabled => "account_disabled",
            Self::EmailNotVerified => "email_not_verified",
            Self::InvalidResetToken => "invalid_reset_token",
            Self::InvalidVerificationToken => "invalid_verification_token",
            Self::InvalidEmailChangeToken => "invalid_email_change_token",
            Self::Forbidden => "forbidden",
            Self::MfaRequired => "mfa_required",
            Self::InvalidMfaToken => "invalid_mfa_token",
            Self::InvalidMfaCode => "invalid_mfa_code",
            Self::MfaConflict(_) => "mfa_conflict",
            Self::OwnMfaReset => "own_mfa_reset",
            Self::CsrfFailed(_) => "csrf_failed",
            Self::LastAdmin => "last_admin",
            Self::RateLimited(_) => "rate_limited",
            Self::Unauthorized(TokenProblem::Missing) => "unauthorized",
            Self::Unauthorized(TokenProblem::Invalid(_)) => "invalid_token",
            Self::NotFound(_) => "not_found",
            Self::InvalidQuery(_) => "invalid_query",
            Self::DatabaseUnavailable(_) => "database_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Unauthorized(TokenProblem::Invalid(why)) => (*why).to_owned(),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::EmailTaken => Self::EmailTaken,
            StoreError::Unavailable(_) => Self::DatabaseUnavailable(Box::new(err)),
            StoreError::UserNotFound => Self::NotFound("no user has this id".into()),
            StoreError::LastAdmin => Self::LastAdmin,
            StoreError::Database(_) | StoreError::Migration(_) => Self::Internal(err.into()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::MalformedJson
            | Self::InvalidQuery(_)
            | Self::InvalidResetToken
            | Self::InvalidVerificationToken
            | Self::InvalidEmailChangeToken => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::EmailTaken | Self::LastAdmin | Self::MfaConflict(_) => StatusCode::CONFLICT,
            Self::AccountDisabled
            | Self::EmailNotVerified
            | Self::Forbidden
            | Self::MfaRequired
            | Self::OwnMfaReset
            | Self::CsrfFailed(_) => StatusCode::FORBIDDEN,
            Self::InvalidCredentials
            | Self::InvalidRefreshToken
            | Self::RefreshTokenReused
            | Self::InvalidMfaToken
            | Self::InvalidMfaCode
            | Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::DatabaseUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = ?error_chain(self), code = self.code(), "request failed");
        }
        let errors = match self {
            Self::Validation(errors) => Some(errors.as_slice()),
            _ => None,
        };
        let mut response = problem_response(status, self.code(), &self.detail(), errors);
        if let Self::RateLimited(wait) = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs(*wait)),
            );
        }
        if let Self::Unauthorized(problem) = self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_str(&bearer_challenge(*problem))
                    .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"latchkey\"")),
            );
        }
        response
    }
}

/// Whole seconds to wait, rounded up and at least one.
fn retry_after_secs(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0 || wait.is_zero())
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::RateLimited(wait) => Self::RateLimited(wait),
            Refused::Unavailable(err) => err.into(),
        }
    }
}

/// The shared limit state is in the database: without it, password checks fail closed.
impl From<Unavailable> for ApiError {
    fn from(err: Unavailable) -> Self {
        Self::DatabaseUnavailable(Box::new(err))
    }
}

/// `WWW-Authenticate` value for a refused bearer token (RFC 6750 §3).
fn bearer_challenge(problem: TokenProblem) -> String {
    match problem {
        TokenProblem::Missing => "Bearer realm=\"latchkey\"".to_owned(),
        TokenProblem::Invalid(why) => format!(
            "Bearer realm=\"latchkey\", error=\"invalid_token\", error_description=\"{}\"",
            why.replace(['"', '\\'], "")
        ),
    }
}

/// Renders the whole source chain of an error on one line, for the log.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

/// Builds a problem+json response. `type` is `about:blank`, so `title` is the status phrase and
/// `code` is what clients switch on.
pub fn problem_response(
    status: StatusCode,
    code: &str,
    detail: &str,
    errors: Option<&[FieldError]>,
) -> HttpResponse {
    let body = Problem {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        code,
        errors,
    };
    HttpResponse::build(status)
        .content_type(PROBLEM_JSON)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// Gives every error response that is not already a problem (actix's own 404, 405, …) the
/// problem+json shape, so clients never see a bare text/plain error.
pub fn render_bare_error<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(PROBLEM_JSON));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let (req, res) = res.into_parts();
    let status = res.status();
    let code = status_code_name(status);
    let detail = match status {
        StatusCode::NOT_FOUND => format!("no route matches {} {}", req.method(), req.path()),
        StatusCode::METHOD_NOT_ALLOWED => {
            format!("{} is not allowed on {}", req.method(), req.path())
        }
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let mut problem = problem_response(status, &code, &detail, None);
    // A 405 must say which methods the resource supports (RFC 9110 §15.5.6); actix's own answer
    // carries that `Allow` header, so keep it.
    if let Some(allow) = res.headers().get(header::ALLOW) {
        problem.headers_mut().insert(header::ALLOW, allow.clone());
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, problem).map_into_right_body(),
    ))
}

/// `Method Not Allowed` becomes `method_not_allowed`.
fn status_code_name(status: StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("error")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
        .map(|c| {
            if c == ' ' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_token_challenge_names_the_error() {
        let value = bearer_challenge(TokenProblem::Invalid("the token has expired"));
        assert_eq!(
            value,
            "Bearer realm=\"latchkey\", error=\"invalid_token\", error_description=\"the token has expired\""
        );
    }

    #[test]
    fn missing_token_challenge_has_no_error() {
        assert_eq!(
            bearer_challenge(TokenProblem::Missing),
            "Bearer realm=\"latchkey\""
        );
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        use std::time::Duration;
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2500)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn bare_statuses_get_snake_case_codes() {
        assert_eq!(status_code_name(StatusCode::NOT_FOUND), "not_found");
        assert_eq!(
            status_code_name(StatusCode::METHOD_NOT_ALLOWED),
            "method_not_allowed"
        );
        assert_eq!(status_code_name(StatusCode::IM_A_TEAPOT), "im_a_teapot");
    }

    #[test]
    fn internal_errors_hide_their_cause_from_the_client() {
        let err = ApiError::Internal(anyhow::anyhow!("secret connection string"));
        assert_eq!(err.detail(), "an internal error occurred");
        assert_eq!(err.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
