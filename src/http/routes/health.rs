use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::error::ApiResult;
use crate::http::state::AppState;

/// Liveness: the process answers HTTP.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: the database answers too.
pub async fn readyz(state: web::Data<AppState>) -> ApiResult {
    state.store.ping().await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready" })))
}
