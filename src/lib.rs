//! Latchkey: an authentication API. Users sign up and log in with a password, hold a short-lived
//! access token (HS256, EdDSA or ES256) and a rotating refresh token, and can be logged out for real.

pub mod abuse;
pub mod accounts;
pub mod audit;
pub mod auth;
pub mod config;
pub mod domain;
pub mod healthcheck;
pub mod http;
mod io_error;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod mfa;
pub mod sessions;
pub mod startup;
pub mod store;
pub mod tasks;
pub mod telemetry;

pub use config::Config;
pub use startup::Application;
