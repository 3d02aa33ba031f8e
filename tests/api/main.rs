//! Black-box tests: each starts the real application on a random port with a fresh database
//! (SQLite by default, PostgreSQL when `TEST_DATABASE_URL` is set) and talks HTTP to it.

mod abuse;
mod account;
mod admin;
mod cli;
mod contention;
mod contract;
mod cookie;
mod cors;
mod device_tokens;
mod email_change;
mod email_verification;
mod errors;
mod health;
mod helpers;
mod login;
mod logout;
mod mail_log;
mod me;
mod normalization;
mod operations;
mod password_reset;
mod process;
mod refresh;
mod restart;
mod revocation;
mod rotation;
mod safe_defaults;
mod sessions;
mod settings;
mod signup;
mod smtp_sink;
mod startup_errors;
mod timing;
mod tokens;
mod verify;
