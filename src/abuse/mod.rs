//! Defences against abuse: who the client really is, how often it may try, and when an account
//! stops answering password guesses for a while.

mod bounded;
mod client_ip;
mod limits;
mod lockout;
mod rate;
mod shared;

pub use client_ip::TrustedProxies;
pub use limits::{DeviceId, Limits, LimitsConfig, Refused};
pub use rate::Rate;
pub use shared::{SharedLimits, Unavailable};
