//! What each store refusal means in its area's domain words: the one place where
//! a failed write condition becomes a domain error (and from there, through
//! `crate::error`, an HTTP answer).

use super::{DomainError, Meaning};
use crate::domain::billing::BillingError;
use crate::domain::experiment::ExperimentError;
use crate::domain::invoice::InvoiceError;
use crate::domain::pricing_rules::PricingRuleError;
use crate::domain::promotion::PromotionError;
use crate::domain::quote::QuoteError;
use crate::domain::segment::SegmentError;
use crate::domain::subscription::SubscriptionError;
use crate::domain::tier::TierError;
use crate::domain::usage::UsageError;
use crate::domain::validation::ValidationError;
use crate::store::{
    ExperimentRefusal, PartnerRefusal, PricingRefusal, PromotionRefusal, QuoteRefusal, SegmentRefusal, TierRefusal,
};

impl DomainError for TierError {}
impl DomainError for ExperimentError {}
impl DomainError for SegmentError {}
impl DomainError for PricingRuleError {}
impl DomainError for PromotionError {}
impl DomainError for QuoteError {}
impl DomainError for SubscriptionError {}
impl DomainError for BillingError {}
impl DomainError for InvoiceError {}
impl DomainError for UsageError {}

impl Meaning for TierRefusal {
    type Domain = TierError;
    fn meaning(self) -> TierError {
        match self {
            Self::Missing => TierError::NotFound,
            Self::Exists => TierError::AlreadyExists,
            Self::Stale { current } => TierError::VersionConflict { current },
            Self::HasMembers => TierError::HasPartners,
            Self::PopularClaimed { segment, holder } => TierError::PopularTaken { segment, current: holder },
        }
    }
}

impl Meaning for ExperimentRefusal {
    type Domain = ExperimentError;
    fn meaning(self) -> ExperimentError {
        match self {
            Self::Missing => ExperimentError::NotFound,
            // Ids are fresh ULIDs: a taken one is a retry racing itself.
            Self::Exists => ExperimentError::VersionConflict { current: None },
            Self::Stale { current } => ExperimentError::VersionConflict { current },
            Self::TierClaimed { holder } => ExperimentError::TierBusy { experiment_id: holder },
            Self::TierChanged => ExperimentError::TierGone,
            Self::CampaignChanged => ExperimentError::CampaignChanged,
        }
    }
}

impl Meaning for SegmentRefusal {
    type Domain = SegmentError;
    fn meaning(self) -> SegmentError {
        match self {
            Self::Missing => SegmentError::NotFound,
            Self::Exists => SegmentError::AlreadyExists,
            Self::Stale { current } => SegmentError::VersionConflict { current },
            Self::TooManyItems => SegmentError::TooMany,
        }
    }
}

impl Meaning for PricingRefusal {
    type Domain = PricingRuleError;
    fn meaning(self) -> PricingRuleError {
        match self {
            Self::Missing => PricingRuleError::NotFound,
            Self::Exists => PricingRuleError::AlreadyExists,
            Self::Stale { current } => PricingRuleError::VersionConflict { current },
        }
    }
}

impl Meaning for PartnerRefusal {
    type Domain = SubscriptionError;
    fn meaning(self) -> SubscriptionError {
        match self {
            Self::Missing => SubscriptionError::NotFound,
            Self::Stale { current } => SubscriptionError::VersionConflict { current },
            // Nothing of the change applied; a repeated call picks it up again.
            Self::Gone => SubscriptionError::VersionConflict { current: None },
            Self::EmailTaken => SubscriptionError::DuplicateEmail,
            Self::TierInactive => ValidationError::single("tier", "no active tier with this id").into(),
            Self::CustomerLinked => {
                ValidationError::single("stripeCustomerId", "already linked to another partner").into()
            }
        }
    }
}

impl Meaning for QuoteRefusal {
    type Domain = QuoteError;
    fn meaning(self) -> QuoteError {
        match self {
            // Ids are fresh ULIDs: a taken one is a retry racing itself.
            Self::Exists => QuoteError::VersionConflict { current: None },
            Self::Stale { current } => QuoteError::VersionConflict { current },
        }
    }
}

impl Meaning for PromotionRefusal {
    type Domain = PromotionError;
    fn meaning(self) -> PromotionError {
        match self {
            Self::Stale { current } => PromotionError::VersionConflict { current },
            Self::CodeTaken(code) => PromotionError::CodeTaken(code),
        }
    }
}
