//! Plumbing every HTTP function shares: identity, permission checks, body and
//! query parsing with caps, routing, cursors, and the response/error envelope.

pub mod cache;
pub mod csv;
pub mod cursor;
pub mod identity;
pub mod request;
pub mod response;
pub mod router;

pub use identity::{AuthError, Identity};
pub use request::{Ctx, PageRequest, RequestError};
pub use response::{json, serve};
pub use router::{PathParams, Route};
