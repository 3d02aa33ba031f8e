use actix_web::{HttpResponse, web};

use crate::http::error::{ApiError, ApiResult};
use crate::http::state::AppState;

/// Prometheus text exposition.
pub async fn metrics(state: web::Data<AppState>) -> ApiResult {
    let text = state
        .metrics
        .render(state.store.as_ref())
        .map_err(|err| ApiError::Internal(err.into()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}
