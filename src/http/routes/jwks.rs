use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, web};

use crate::auth::JWKS_MAX_AGE_SECS;
use crate::http::state::AppState;

/// `GET /.well-known/jwks.json`: the public keys that verify access tokens (RFC 7517), current,
/// next and previous; `{"keys":[]}` under HS256, whose secret is never published. Cacheable: a
/// next key is published at least `JWKS_MAX_AGE_SECS` before it signs.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((
            CACHE_CONTROL,
            format!("public, max-age={JWKS_MAX_AGE_SECS}"),
        ))
        .body(state.tokens.jwks().to_vec())
}
