use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponseBuilder};

use crate::http::error::ApiError;

const COOKIE_NAME: &str = "latchkey_refresh";
const COOKIE_PATH: &str = "/v1/auth";
/// Header a browser app must send with cookie-authenticated requests. A cross-origin page cannot
/// add it without a CORS preflight, which only the configured origins pass.
pub const CSRF_HEADER: &str = "x-latchkey-csrf";

/// The refresh token as an `HttpOnly` cookie, for browser apps (`LATCHKEY_REFRESH_COOKIE`), so
/// script on the page never sees it.
pub struct RefreshCookie {
    enabled: bool,
    max_age: CookieDuration,
    allowed_origins: Vec<String>,
}

impl RefreshCookie {
    pub fn new(enabled: bool, max_age_secs: u64, allowed_origins: &[String]) -> Self {
        Self {
            enabled,
            max_age: CookieDuration::seconds(i64::try_from(max_age_secs).unwrap_or(i64::MAX)),
            allowed_origins: allowed_origins
                .iter()
                .map(|o| o.trim().to_owned())
                .collect(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Sets the cookie on a token response.
    pub fn set(&self, response: &mut HttpResponseBuilder, token: &str) {
        response.cookie(self.cookie(token.to_owned(), self.max_age));
    }

    /// Clears the cookie (logout), when the mode is on.
    pub fn clear(&self, response: &mut HttpResponseBuilder) {
        if self.enabled {
            response.cookie(self.cookie(String::new(), CookieDuration::ZERO));
        }
    }

    /// The refresh token from the cookie, when the mode is on and the cookie was sent. A request
    /// authenticated by the cookie must pass the CSRF check.
    pub fn read(&self, req: &HttpRequest) -> Result<Option<String>, ApiError> {
        if !self.enabled {
            return Ok(None);
        }
        let Some(cookie) = req.cookie(COOKIE_NAME).filter(|c| !c.value().is_empty()) else {
            return Ok(None);
        };
        self.check_csrf(req)?;
        Ok(Some(cookie.value().to_owned()))
    }

    /// A cookie is sent by the browser whoever made the page; the custom header and, when the
    /// browser names one, an allowed `Origin` prove the request comes from our app.
    fn check_csrf(&self, req: &HttpRequest) -> Result<(), ApiError> {
        if !req.headers().contains_key(CSRF_HEADER) {
            return Err(ApiError::CsrfFailed(
                "the X-Latchkey-Csrf header is missing",
            ));
        }
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let allowed = origin
                .to_str()
                .is_ok_and(|origin| self.allowed_origins.iter().any(|o| o == origin));
            if !allowed {
                return Err(ApiError::CsrfFailed(
                    "the request comes from an origin that is not allowed",
                ));
            }
        }
        Ok(())
    }

    fn cookie(&self, value: String, max_age: CookieDuration) -> Cookie<'static> {
        Cookie::build(COOKIE_NAME, value)
            .path(COOKIE_PATH)
            .http_only(true)
            .secure(true)
            .same_site(SameSite::Strict)
            .max_age(max_age)
            .finish()
    }
}
