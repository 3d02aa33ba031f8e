//! User management for admins. Every handler takes an [`AdminUser`]: a valid token without the
//! admin role gets 403, no or a bad token 401.

use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::{self, AuditEvent};
use crate::domain::{DisplayName, Role};
use crate::http::error::{ApiError, ApiResult, FieldError};
use crate::http::extract::{AdminUser, JsonBody, non_null};
use crate::http::state::AppState;
use crate::store::{self, User, UserChanges, UserQuery};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    email: Option<String>,
}

#[derive(Serialize)]
struct UserPage {
    users: Vec<User>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

pub async fn list_users(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<ListQuery>,
) -> ApiResult {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let email_prefix = query.email.as_deref().map(|e| e.trim().to_lowercase());
    // One row more than asked tells whether there is a next page.
    let mut users = state
        .store
        .list_users(&UserQuery {
            limit: limit + 1,
            after,
            email_prefix,
        })
        .await?;
    let next_cursor = if users.len() > limit as usize {
        users.truncate(limit as usize);
        users.last().map(encode_cursor)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(UserPage { users, next_cursor }))
}

pub async fn get_user(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<Uuid>,
) -> ApiResult {
    let user = state
        .store
        .user_by_id(id.into_inner())
        .await?
        .ok_or_else(|| ApiError::NotFound("no user has this id".into()))?;
    Ok(HttpResponse::Ok().json(user))
}

#[derive(Deserialize)]
pub struct UpdateUserBody {
    #[serde(default, deserialize_with = "non_null")]
    role: Option<Role>,
    #[serde(default, deserialize_with = "non_null")]
    disabled: Option<bool>,
    #[serde(default, deserialize_with = "non_null")]
    name: Option<String>,
}

/// Changes a user's role, disabled flag or name. Demoting or disabling signs the user out
/// everywhere at once; a promotion shows in their token at their next refresh.
pub async fn update_user(
    state: web::Data<AppState>,
    AdminUser(admin): AdminUser,
    id: web::Path<Uuid>,
    JsonBody(body): JsonBody<UpdateUserBody>,
) -> ApiResult {
    let name = body
        .name
        .as_deref()
        .map(DisplayName::parse)
        .transpose()
        .map_err(|msg| ApiError::Validation(vec![FieldError::new("name", "invalid", msg)]))?;
    let changes = UserChanges {
        name,
        role: body.role,
        disabled: body.disabled,
    };
    let user_id = id.into_inner();
    let at = store::now();
    let user = state.sessions.update_user(user_id, &changes, at).await?;
    if let Some(role) = body.role {
        audit::record(AuditEvent::RoleChanged {
            user_id,
            by: admin.user_id,
            role,
        });
    }
    if let Some(disabled) = body.disabled {
        audit::record(AuditEvent::DisabledChanged {
            user_id,
            by: admin.user_id,
            disabled,
        });
    }
    Ok(HttpResponse::Ok().json(user))
}

pub async fn delete_user(
    state: web::Data<AppState>,
    AdminUser(admin): AdminUser,
    id: web::Path<Uuid>,
) -> ApiResult {
    let user_id = id.into_inner();
    let at = store::now();
    state.sessions.delete_user(user_id, at).await?;
    audit::record(AuditEvent::AccountDeletedByAdmin {
        user_id,
        by: admin.user_id,
    });
    Ok(HttpResponse::NoContent().finish())
}

/// An opaque cursor: the position of the last user of a page in `(created_at, id)` order.
fn encode_cursor(user: &User) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}|{}",
        user.created_at.timestamp_micros(),
        user.id
    ))
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let invalid = || ApiError::InvalidQuery("cursor is not one this server issued".into());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (micros, id) = text.split_once('|').ok_or_else(invalid)?;
    let created_at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    let id = id.parse::<Uuid>().map_err(|_| invalid())?;
    Ok((created_at, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips() {
        let user = User {
            id: Uuid::new_v4(),
            email: "ada@example.com".into(),
            name: None,
            role: Role::User,
            disabled: false,
            email_verified: false,
            created_at: store::now(),
            updated_at: store::now(),
        };
        let (created_at, id) = decode_cursor(&encode_cursor(&user)).unwrap();
        assert_eq!((created_at, id), (user.created_at, user.id));
    }

    #[test]
    fn a_forged_cursor_is_refused() {
        for cursor in [
            "",
            "!!!",
            "bm90LWEtY3Vyc29y",
            &URL_SAFE_NO_PAD.encode("1|nope"),
        ] {
            assert!(decode_cursor(cursor).is_err(), "{cursor} was accepted");
        }
    }
}
