use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::auth::AuthUser;
use crate::error::{ApiError, TokenProblem};
use crate::startup::AppState;

/// The caller's own account.
pub async fn get_me(
    state: web::Data<AppState>,
    caller: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let user = state
        .store
        .user_by_id(caller.user_id)
        .await?
        // A valid signature over a user that no longer exists is a token that no longer counts.
        .ok_or(ApiError::Unauthorized(TokenProblem::Invalid(
            "the account of this token no longer exists",
        )))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(user))
}
