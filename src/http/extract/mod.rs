//! Extractors: what a handler declares in its signature to get a parsed body, an authenticated
//! caller or the client's address.

mod auth;
mod client_ip;
mod json;

pub use auth::{AdminUser, AuthUser, VerifiedToken};
pub use client_ip::ClientIp;
pub use json::{JsonBody, MAX_BODY_BYTES, OptionalJsonBody, non_null};

use actix_web::{HttpRequest, web};

use crate::http::error::ApiError;
use crate::http::state::AppState;

/// The application state, which every app built by `startup` registers.
fn app_state(req: &HttpRequest) -> Result<&AppState, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .map(web::Data::get_ref)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state is missing")))
}
