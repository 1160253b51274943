//! Tierdesk's domain crate: pure pricing and catalog logic (`domain`), the
//! workflows over it (`app`), the one DynamoDB adapter (`store`), and the plumbing
//! every HTTP Lambda shares (`http`). `docs/architecture.md` draws the layers.

pub mod app;
pub mod calls;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod mail;
pub mod meter;
pub mod store;
pub mod stripe_adapter;
pub mod telemetry;

pub use clock::{Clock, IdGen, SystemClock, UlidGen};
pub use config::Config;
pub use error::ApiError;
