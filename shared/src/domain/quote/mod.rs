//! Quotes (seed 000 §5): a priced offer to one prospect, its discount authority,
//! the approval workflow and the lifecycle up to acceptance. Pure: the clock, ids
//! and the caller's roles come in as parameters.
//!
//! Pricing goes through the one pricing engine (`pricing::price`): the subtotal is
//! the tier's list price for the billing period plus the customizations, and the
//! discounts are applied to it in order, each recurring on every charge.
//!
//! The folder follows those concerns: `terms` (the quote and its wire shapes),
//! `authority` (who may discount how far, the price list), `request` (bodies →
//! terms), `price` (the quote priced by the engine) and `workflow` (creation, edits,
//! approval, sending, acceptance).

mod authority;
mod price;
mod request;
mod terms;
mod workflow;

pub use super::actor::Actor;
pub use authority::*;
pub use price::*;
pub use request::*;
pub use terms::*;
pub use workflow::*;

use super::validation::ValidationError;
use chrono::NaiveDate;

pub const MAX_DISCOUNTS: usize = 10;
pub const MAX_CUSTOM_FEATURES: usize = 20;
pub const MAX_CUSTOM_LIMITS: usize = 20;
/// A quote may be valid for at most this long from the day it is written, which
/// also bounds how many open quotes the daily expiry pass reads.
pub const MAX_VALIDITY_DAYS: i64 = 180;
pub const DEFAULT_VALIDITY_DAYS: u64 = 30;
pub const MAX_COMMITMENT_MONTHS: i64 = 60;
pub const MAX_ADDITIONAL_LISTINGS: i64 = 100_000;
pub const MAX_ADDITIONAL_IMAGES: i64 = 10_000;

pub const DEFAULT_TERMS: &str = "Prices are in the currency shown and exclude taxes. The quoted price applies \
for the commitment term from the day the quote is accepted; the subscription renews at the then-current list \
price unless agreed otherwise. This quote is valid until the date shown.";

#[derive(Debug, thiserror::Error)]
pub enum QuoteError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("quote not found")]
    NotFound,
    #[error("the quote changed since it was read")]
    VersionConflict { current: Option<u64> },
    #[error("a {from} quote cannot be {action}")]
    IllegalTransition { from: &'static str, action: &'static str },
    #[error("the discount is above the author's authority and has not been approved")]
    ApprovalRequired,
    #[error("the discount is within the author's authority; no approval is needed")]
    ApprovalNotRequired,
    #[error("the author of a quote's price cannot approve or reject it")]
    SelfApproval,
    #[error("the discount is above what the approver may grant ({cap})")]
    AboveApproverAuthority { cap: String },
    #[error("the quote expired on {0}")]
    Expired(NaiveDate),
    #[error("the quote's tier is not available any more")]
    TierUnavailable,
    #[error("the partner already uses this email address and cannot take this quote")]
    CustomerMismatch,
}

#[cfg(test)]
mod tests;
