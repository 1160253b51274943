//! Client idempotency (`Idempotency-Key`): the record a key claims (`store`) and
//! the HTTP wrapper that replays a finished request's answer (`http`), together so
//! one module holds the whole rule.

pub mod http;
mod store;

pub use self::http::{caller_tag, key_of, once, scope_for};
pub use self::store::RequestClaim;
