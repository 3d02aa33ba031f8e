//! Black-box tests: each starts the real application on a random port with a fresh database
//! (SQLite by default, PostgreSQL when `TEST_DATABASE_URL` is set) and talks HTTP to it.

mod account;
mod admin;
mod cli;
mod contract;
mod cors;
mod errors;
mod health;
mod helpers;
mod login;
mod logout;
mod me;
mod refresh;
mod restart;
mod revocation;
mod rotation;
mod sessions;
mod signup;
mod tokens;
mod verify;
