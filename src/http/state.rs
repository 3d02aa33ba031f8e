//! What every handler can reach.

use std::sync::Arc;

use chrono::TimeDelta;

use crate::abuse::{Limits, TrustedProxies};
use crate::auth::{AccessTokens, DeviceTokens, PasswordHasher, RefreshTokens, RevocationList};
use crate::http::cookie::RefreshCookie;
use crate::mail::EmailFlows;
use crate::metrics::Metrics;
use crate::mfa::Mfa;
use crate::sessions::Sessions;
use crate::store::Store;

pub struct AppState {
    /// Reads and writes that end no session; those that may go through `sessions`.
    pub store: Arc<dyn Store>,
    pub sessions: Sessions,
    /// The second factor: enrollment, login challenges, step-up.
    pub mfa: Arc<Mfa>,
    pub limits: Arc<Limits>,
    pub trusted_proxies: TrustedProxies,
    /// Shared with the key reloader, which swaps in rotated generated keys.
    pub tokens: Arc<AccessTokens>,
    pub refresh_tokens: RefreshTokens,
    pub device_tokens: DeviceTokens,
    pub refresh_cookie: RefreshCookie,
    pub revocations: Arc<RevocationList>,
    pub hasher: PasswordHasher,
    pub refresh_ttl: TimeDelta,
    pub refresh_reuse_interval: TimeDelta,
    pub session_max_age: TimeDelta,
    pub max_sessions_per_user: u32,
    pub metrics: Metrics,
    pub email: EmailFlows,
}
