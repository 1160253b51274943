//! Plumbing every HTTP function shares: identity, permission checks, body and
//! query parsing with caps (a page request's `limit` and `cursor` among them),
//! routing, and the response/error envelope.

pub mod cache;
pub mod csv;
pub mod identity;
pub mod request;
pub mod response;
pub mod router;

pub use identity::{AuthError, Identity};
pub use request::{Ctx, PageRequest, RequestError};
pub use response::{json, serve};
pub use router::{PathParams, Route};
