//! Extractors: what a handler declares in its signature to get a parsed body, an authenticated
//! caller or the client's address.

mod auth;
mod client_ip;
mod json;

pub use auth::{AdminUser, AuthUser, VerifiedToken};
pub use client_ip::ClientIp;
pub use json::{JsonBody, MAX_BODY_BYTES, OptionalJsonBody, non_null};
