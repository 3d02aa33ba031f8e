//! HTTP handlers, one module per resource.

mod auth;
mod caller;
mod docs;
mod email;
mod health;
mod jwks;
mod me;
mod metrics;
mod mfa;
mod openapi;
mod password;
mod sessions;
mod users;

use actix_web::web::{self, delete, get, patch, post, put, resource};

/// Every route is a `resource`, so a known path with the wrong method answers 405, not 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v1/auth/signup").route(post().to(auth::signup)))
        .service(resource("/v1/auth/login").route(post().to(auth::login)))
        .service(resource("/v1/auth/refresh").route(post().to(auth::refresh)))
        .service(resource("/v1/auth/logout").route(post().to(auth::logout)))
        .service(resource("/v1/auth/verify").route(get().to(auth::verify)))
        .service(resource("/v1/auth/mfa/verify").route(post().to(mfa::verify_challenge)))
        .service(resource("/v1/auth/mfa/step-up").route(post().to(mfa::step_up)))
        .service(resource("/v1/auth/password/forgot").route(post().to(password::forgot_password)))
        .service(resource("/v1/auth/password/reset").route(post().to(password::reset_password)))
        .service(resource("/v1/auth/email/verify").route(post().to(email::verify_email)))
        .service(resource("/v1/auth/email/resend").route(post().to(email::resend_verification)))
        .service(
            resource("/v1/auth/email/confirm-change").route(post().to(email::confirm_email_change)),
        )
        .service(
            resource("/v1/me")
                .route(get().to(me::get_me))
                .route(patch().to(me::update_me))
                .route(delete().to(me::delete_me)),
        )
        .service(resource("/v1/me/password").route(put().to(me::change_password)))
        .service(resource("/v1/me/mfa").route(get().to(mfa::status)))
        .service(
            resource("/v1/me/mfa/totp")
                .route(post().to(mfa::start_totp))
                .route(delete().to(mfa::disable_totp)),
        )
        .service(resource("/v1/me/mfa/totp/confirm").route(post().to(mfa::confirm_totp)))
        .service(
            resource("/v1/me/mfa/recovery-codes").route(post().to(mfa::regenerate_recovery_codes)),
        )
        .service(resource("/v1/me/sessions").route(get().to(sessions::list_sessions)))
        .service(resource("/v1/me/sessions/{id}").route(delete().to(sessions::delete_session)))
        .service(resource("/v1/users").route(get().to(users::list_users)))
        .service(
            resource("/v1/users/{id}")
                .route(get().to(users::get_user))
                .route(patch().to(users::update_user))
                .route(delete().to(users::delete_user)),
        )
        .service(resource("/v1/users/{id}/mfa").route(delete().to(mfa::admin_reset)))
        .service(resource("/.well-known/jwks.json").route(get().to(jwks::jwks)))
        .service(resource("/healthz").route(get().to(health::healthz)))
        .service(resource("/readyz").route(get().to(health::readyz)))
        .service(resource("/openapi.yaml").route(get().to(openapi::spec)))
        .service(resource("/docs").route(get().to(docs::page)))
        .service(resource("/docs/redoc.standalone.js").route(get().to(docs::redoc_js)));
}

/// `GET /metrics`: on a listener of its own (`LATCHKEY_METRICS_ADDR`), or on the API's when
/// `LATCHKEY_METRICS_ON_API` allows it.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/metrics").route(get().to(metrics::metrics)));
}
