//! The caller's sessions: one per signed-in device.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use uuid::Uuid;

use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::AuthUser;
use crate::http::state::AppState;
use crate::store::{self, RevokeScope, SessionInfo};

#[derive(Serialize)]
struct SessionView {
    #[serde(flatten)]
    session: SessionInfo,
    /// Whether this is the session of the access token making the request.
    current: bool,
}

#[derive(Serialize)]
struct SessionList {
    sessions: Vec<SessionView>,
}

pub async fn list_sessions(state: web::Data<AppState>, caller: AuthUser) -> ApiResult {
    let sessions = state
        .store
        .live_sessions(caller.user_id, store::now())
        .await?
        .into_iter()
        .map(|session| SessionView {
            current: session.id == caller.session_id,
            session,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SessionList { sessions }))
}

/// Signs one of the caller's devices out.
pub async fn delete_session(
    state: web::Data<AppState>,
    caller: AuthUser,
    session_id: web::Path<Uuid>,
) -> ApiResult {
    let revoked = revoke_sessions(
        &state,
        caller.user_id,
        RevokeScope::Only(session_id.into_inner()),
    )
    .await?;
    if revoked.is_empty() {
        return Err(ApiError::NotFound(
            "no live session of yours has this id".into(),
        ));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Revokes sessions of the user now.
pub async fn revoke_sessions(
    state: &AppState,
    user_id: Uuid,
    scope: RevokeScope,
) -> Result<Vec<Uuid>, ApiError> {
    Ok(state.sessions.revoke(user_id, scope, store::now()).await?)
}
