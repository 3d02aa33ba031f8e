//! Values parsed once at the edge of the API. Code behind a handler only ever sees these types,
//! never the raw strings a client sent.

mod email;
mod name;
mod password;
mod role;

pub use email::Email;
pub use name::DisplayName;
pub use password::Password;
pub use role::Role;
