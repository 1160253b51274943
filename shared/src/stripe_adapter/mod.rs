//! The Stripe adapter: configuration, the outgoing API calls (`gateway`), the
//! translation of Stripe objects into domain facts (`facts`) and webhook
//! signature verification (`webhook`). Billing's rules are `domain::billing`; the
//! emails a billing fact sends are `mail::billing`.

pub mod config;
pub mod facts;
pub mod gateway;
pub mod webhook;

pub use config::StripeConfig;
pub use gateway::{CheckoutOffer, CheckoutSession, CouponOff, CouponSpec, InvoiceItemSpec, Proration, StripeGateway};

/// Stripe's object and event types, for the functions that match on them.
pub use {stripe_shared, stripe_webhook};
