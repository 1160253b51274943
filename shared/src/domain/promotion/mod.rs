//! Promotions (seed 000 §4): the `Promotion` record, how a request body becomes
//! one, its approval workflow, codes, and the eligibility rules that decide whether
//! a customer may use it, with every failing rule named.
//!
//! Prices come from `pricing`, the one engine quotes share.
//!
//! The folder follows those concerns: `terms` (the record and its wire shapes),
//! `request` (bodies → terms), `workflow` (statuses, approval, edits), `codes`,
//! `eligibility` (every rule, each failure named), `resolver` (codes → promotions
//! → checks → price, shared by validate, checkout and redeem) and `price`.

mod codes;
mod eligibility;
mod price;
mod request;
pub mod resolver;
mod terms;
mod workflow;

pub use super::actor::Actor;
pub use codes::*;
pub use eligibility::*;
pub use price::*;
pub use request::*;
pub use terms::*;
pub use workflow::*;

use super::validation::ValidationError;

const MAX_CODES_IN_BODY: usize = 20;
const MAX_TIER_LIST: usize = 50;
/// Codes one generate request may make (each is a lookup item in one transaction).
pub const MAX_GENERATED_CODES: u32 = 90;
/// Codes one promotion may hold in total.
pub const MAX_CODES_PER_PROMOTION: usize = 1_000;
/// Promotions one validate or redeem request may combine.
pub const MAX_STACKED: usize = 3;

/// Code characters: upper-case letters and digits without the look-alikes
/// 0/O, 1/I/L, so a code read aloud or from paper is typed right.
pub const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

#[derive(Debug, thiserror::Error)]
pub enum PromotionError {
    #[error("promotion not found")]
    NotFound,
    #[error("the promotion was changed by someone else; reload it and retry")]
    VersionConflict { current: Option<u64> },
    #[error("a promotion that is {from} cannot be {action}")]
    IllegalTransition { from: &'static str, action: &'static str },
    #[error("{field} cannot be changed while the promotion is {status}")]
    NotEditable { status: &'static str, field: String },
    #[error("a promotion cannot be approved by the person who created it")]
    SelfApproval,
    #[error("the code {0} is already used by a promotion")]
    CodeTaken(String),
    #[error("this promotion requires a code; add codes before submitting it")]
    CodesRequired,
    #[error("a promotion holds at most 1000 codes")]
    TooManyCodes,
    #[error("only draft promotions can be deleted; cancel it instead")]
    NotDeletable,
    #[error("the promotion's end date has passed; move it before going live")]
    Ended,
    #[error("partner not found")]
    PartnerNotFound,
    #[error("this purchase already redeemed its promotions")]
    AlreadyRedeemed,
    #[error("the promotion kept changing while redeeming it; retry")]
    KeptChanging,
    #[error("the promotion's redemption limit is reached")]
    MaxRedemptionsReached,
    #[error("this customer has used the promotion as often as it allows")]
    PerUserLimitReached,
    #[error("the promotion does not apply")]
    NotEligible(Vec<Reason>),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

#[cfg(test)]
mod tests;
