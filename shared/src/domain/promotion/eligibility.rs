//! The eligibility rules: what the rules know of the customer and the purchase,
//! and every rule a promotion breaks for them, each named.

use super::*;
use crate::domain::money::BillingPeriod;
use crate::domain::partner::Partner;
use crate::domain::tier::Tier;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    NotFound,
    NotActive,
    NotStarted,
    Ended,
    TierNotEligible,
    ExcludedTier,
    BillingPeriodNotEligible,
    UserTypeNotEligible,
    AccountTooNew,
    AccountTooOld,
    SegmentNotEligible,
    MaxRedemptionsReached,
    PerUserLimitReached,
    MinimumCommitmentNotMet,
    NotStackable,
    /// A second code (or id) for a promotion an earlier one already named.
    DuplicateCode,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        crate::domain::wire::wire_name(&self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    pub code: ReasonCode,
    pub message: String,
    /// Which promotion (or code) the reason is about, when several are combined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion_id: Option<String>,
}

impl Reason {
    pub fn new(code: ReasonCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), promotion_id: None }
    }
}

/// What the rules know of the customer. A prospect (no account yet) is a new
/// customer with an account age of 0 and no current tier. Serialized into a
/// Checkout Session's metadata, so the payment's redemption judges the customer
/// as the session's creation did (`redemption::Settlement`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub partner_id: String,
    pub current_tier: Option<String>,
    /// In a free trial now.
    pub trialing: bool,
    pub paying_now: bool,
    pub ever_paid: bool,
    pub signup_date: Option<NaiveDate>,
    /// The catalog segment of the tier the customer is on now (seed 002's
    /// customer segment). None: not known (a prospect, or not read because no
    /// promotion asked); the segment of the tier being bought counts then.
    pub segment: Option<String>,
}

impl Customer {
    pub fn from_partner(p: &Partner) -> Self {
        let paying_now = p.on_paid_term() && !p.subscription_status.is_lapsed();
        Self {
            partner_id: p.partner_id.clone(),
            current_tier: Some(p.engagement_tier.clone()),
            trialing: p.subscription_status == crate::domain::partner::SubscriptionStatus::Trialing,
            paying_now,
            ever_paid: p.first_paid_date.is_some() || p.total_paid > 0 || paying_now || p.churned_date.is_some(),
            signup_date: Some(p.signup_date),
            segment: None,
        }
    }

    /// Whether `promotions` need the customer's own segment and the tier being
    /// bought cannot tell it (the customer is on another tier): then the
    /// caller reads the current tier and fills in `segment`.
    pub fn needs_segment<'a>(&self, buying: &Tier, mut promotions: impl Iterator<Item = &'a Promotion>) -> bool {
        self.segment.is_none()
            && self.current_tier.as_deref().is_some_and(|t| t != buying.tier_id)
            && promotions.any(|p| !p.eligibility_rules.segments.is_empty())
    }

    fn is_churned(&self) -> bool {
        self.ever_paid && !self.paying_now
    }

    fn status_word(&self) -> &'static str {
        match (self.paying_now, self.ever_paid) {
            (true, _) => "an existing paying customer",
            (false, true) => "a churned customer",
            (false, false) => "a new customer",
        }
    }
}

/// Everything a rule check needs besides the promotion itself.
#[derive(Debug, Clone)]
pub struct Purchase<'a> {
    pub today: NaiveDate,
    pub tier: &'a Tier,
    pub billing_period: BillingPeriod,
    /// Months the customer commits to; defaults from the period and the tier.
    pub commitment_months: u32,
    pub customer: Option<&'a Customer>,
    /// How many promotions the request combines.
    pub combined: usize,
}

impl Purchase<'_> {
    /// The commitment a purchase implies: a year on yearly billing, else the tier's
    /// minimum term (at least a month).
    pub fn default_commitment(tier: &Tier, period: BillingPeriod) -> u32 {
        let by_period = match period {
            BillingPeriod::Monthly => 1,
            BillingPeriod::Yearly => 12,
        };
        by_period.max(tier.commitment_months)
    }
}

/// Every rule the promotion's stored state and terms break for this purchase
/// (empty: it applies). `redeemed_by_customer` is the customer's count so far.
pub fn check(p: &Promotion, buy: &Purchase, redeemed_by_customer: u64) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let mut fail = |code: ReasonCode, message: String| reasons.push(Reason::new(code, message));
    if p.status != PromotionStatus::Active {
        fail(ReasonCode::NotActive, format!("the promotion is {}", p.status.as_str()));
    }
    if buy.today < p.start_date {
        fail(ReasonCode::NotStarted, format!("the promotion starts on {}", p.start_date));
    }
    if buy.today > p.end_date {
        fail(ReasonCode::Ended, format!("the promotion ended on {}", p.end_date));
    }
    let tier_id = buy.tier.tier_id.as_str();
    if !p.target_tiers.is_empty() && !p.target_tiers.iter().any(|t| t == tier_id) {
        fail(ReasonCode::TierNotEligible, format!("the promotion does not apply to the {tier_id} tier"));
    } else if matches!(p.discount, DiscountSpec::FixedAmount(_)) && buy.tier.currency != p.currency {
        fail(ReasonCode::TierNotEligible, format!("the {tier_id} tier is not priced in {}", p.currency));
    }
    if !p.applies_to.covers(buy.billing_period) {
        fail(
            ReasonCode::BillingPeriodNotEligible,
            format!("the promotion does not apply to {} billing", buy.billing_period.as_str()),
        );
    }
    let rules = &p.eligibility_rules;
    let prospect = Customer {
        partner_id: String::new(),
        current_tier: None,
        trialing: false,
        paying_now: false,
        ever_paid: false,
        signup_date: None,
        segment: None,
    };
    let customer = buy.customer.unwrap_or(&prospect);
    let type_ok = match rules.user_type {
        UserType::All | UserType::Custom => true,
        UserType::New => !customer.ever_paid,
        UserType::Existing => customer.paying_now,
        UserType::Churned => customer.is_churned(),
    };
    if !type_ok {
        let wanted = match rules.user_type {
            UserType::New => "new customers",
            UserType::Existing => "existing paying customers",
            _ => "churned customers",
        };
        fail(
            ReasonCode::UserTypeNotEligible,
            format!("the promotion is for {wanted}; this is {}", customer.status_word()),
        );
    }
    // A free trial is for someone who never paid and is not in a trial; an
    // extension is for someone in a trial now.
    match p.discount {
        DiscountSpec::FreeTrial(_) if customer.ever_paid || customer.trialing => fail(
            ReasonCode::UserTypeNotEligible,
            format!("a free trial is for customers who never had one; this is {}", customer.status_word()),
        ),
        DiscountSpec::ExtendedTrial(_) if !customer.trialing => {
            fail(ReasonCode::UserTypeNotEligible, "an extended trial is for customers in a trial now".into())
        }
        _ => {}
    }
    let age = customer.signup_date.map_or(0, |d| (buy.today - d).num_days().max(0));
    if let Some(min) = rules.min_account_age {
        if age < i64::from(min) {
            fail(ReasonCode::AccountTooNew, format!("the account must be at least {min} days old; it is {age}"));
        }
    }
    if let Some(max) = rules.max_account_age {
        if age > i64::from(max) {
            fail(ReasonCode::AccountTooOld, format!("the account must be at most {max} days old; it is {age}"));
        }
    }
    let current = customer.current_tier.as_deref();
    if !rules.current_tiers.is_empty() && !current.is_some_and(|c| rules.current_tiers.iter().any(|t| t == c)) {
        fail(
            ReasonCode::TierNotEligible,
            format!("the promotion is for customers on {}", rules.current_tiers.join(", ")),
        );
    }
    if let Some(c) = current.filter(|c| rules.exclude_tiers.iter().any(|t| t == c)) {
        fail(ReasonCode::ExcludedTier, format!("customers on the {c} tier are excluded"));
    }
    // The customer's segment is the tier they are on; a prospect's (or a
    // customer's buying their own tier again) is the tier bought.
    let segment = customer.segment.as_deref().unwrap_or(&buy.tier.segment);
    if !rules.segments.is_empty() && !rules.segments.iter().any(|s| s == segment) {
        fail(
            ReasonCode::SegmentNotEligible,
            format!(
                "the promotion is for customers in the {} segment; this one is in {segment}",
                rules.segments.join(", ")
            ),
        );
    }
    if p.max_redemptions.is_some_and(|max| p.redemption_count >= max) {
        fail(ReasonCode::MaxRedemptionsReached, "the promotion has been redeemed as often as it allows".into());
    }
    if redeemed_by_customer >= u64::from(p.redemptions_per_user) {
        fail(
            ReasonCode::PerUserLimitReached,
            format!("a customer may use the promotion {} time(s)", p.redemptions_per_user),
        );
    }
    if let Some(min) = p.minimum_commitment_months {
        if buy.commitment_months < min {
            fail(
                ReasonCode::MinimumCommitmentNotMet,
                format!("needs a commitment of {min} months; this purchase commits {}", buy.commitment_months),
            );
        }
    }
    if buy.combined > 1 && !p.stackable {
        fail(ReasonCode::NotStackable, "the promotion cannot be combined with other promotions".into());
    }
    for r in &mut reasons {
        r.promotion_id = Some(p.promotion_id.clone());
    }
    reasons
}
