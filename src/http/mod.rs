//! The HTTP wing: the application state handlers share, the error type's mapping to problem
//! details, the extractors, cookies, middleware and the handlers themselves. The mechanisms
//! below it (`domain`, `auth`, `abuse`, `sessions`, `store`, `mail`) know nothing of HTTP.

pub mod cookie;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod routes;
pub mod state;

pub use error::ApiError;
pub use state::AppState;
