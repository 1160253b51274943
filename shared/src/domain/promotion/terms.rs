//! The promotion record and its wire shapes: statuses, the discount, who it
//! applies to, the eligibility terms, ids.

use crate::domain::money::{BillingPeriod, Percent};
use crate::domain::pricing::{Adjustment, Duration};
use crate::domain::validation::{parse, Fields};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum PromotionStatus {
    Draft,
    PendingApproval,
    Active,
    Paused,
    Completed,
    Cancelled,
}

impl PromotionStatus {
    pub const ALL: [Self; 6] =
        [Self::Draft, Self::PendingApproval, Self::Active, Self::Paused, Self::Completed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        crate::domain::wire::wire_name(&self)
    }

    pub fn parse(v: &Value) -> Result<Self, String> {
        crate::domain::wire::one_of(&Self::ALL, v)
    }

    /// Live promotions are the ones the cron expires at their end date.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Active | Self::Paused)
    }
}

/// What the promotion takes off, and how it is expressed on the wire:
/// `discountType` + `discountValue` (percent, cents, or days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "discountType", content = "discountValue", rename_all = "snake_case")]
pub enum DiscountSpec {
    Percentage(Percent),
    FixedAmount(i64),
    /// A trial of this many days for a customer without one.
    FreeTrial(u32),
    /// This many more trial days.
    ExtendedTrial(u32),
}

impl DiscountSpec {
    pub(super) fn adjustment(self) -> Adjustment {
        match self {
            Self::Percentage(p) => Adjustment::PercentOff(p),
            Self::FixedAmount(c) => Adjustment::AmountOff(c),
            Self::FreeTrial(d) | Self::ExtendedTrial(d) => Adjustment::TrialDays(d),
        }
    }

    pub(super) fn parse(f: &mut Fields) -> Option<Self> {
        let kind = f.required("discountType", |v| match v.as_str() {
            Some(k @ ("percentage" | "fixed_amount" | "free_trial" | "extended_trial")) => Ok(k.to_string()),
            _ => Err("must be one of percentage, fixed_amount, free_trial, extended_trial".into()),
        })?;
        match kind.as_str() {
            "percentage" => f
                .required("discountValue", |v| {
                    let p = Percent::parse(v)?;
                    if p.basis_points() == 0 {
                        return Err("must be more than 0".into());
                    }
                    Ok(p)
                })
                .map(Self::Percentage),
            "fixed_amount" => f
                .required("discountValue", |v| {
                    let c = parse::cents(v).map_err(|e| format!("{e} (fixed amounts are in cents)"))?;
                    if c == 0 {
                        return Err("must be more than 0".into());
                    }
                    Ok(c)
                })
                .map(Self::FixedAmount),
            trial => {
                let days = f.required("discountValue", |v| {
                    parse::int_in(v, 1, 365).map(|d| d as u32).map_err(|e| format!("{e} (trial days)"))
                })?;
                Some(if trial == "free_trial" { Self::FreeTrial(days) } else { Self::ExtendedTrial(days) })
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppliesTo {
    Monthly,
    Yearly,
    Both,
    /// The first charge only (Stripe `duration: once`).
    FirstMonth,
}

impl AppliesTo {
    pub(super) fn parse(v: &Value) -> Result<Self, String> {
        match v.as_str() {
            Some("monthly") => Ok(Self::Monthly),
            Some("yearly") => Ok(Self::Yearly),
            Some("both") => Ok(Self::Both),
            Some("first_month") => Ok(Self::FirstMonth),
            _ => Err("must be one of monthly, yearly, both, first_month".into()),
        }
    }

    pub fn covers(self, period: BillingPeriod) -> bool {
        match self {
            Self::Monthly => period == BillingPeriod::Monthly,
            Self::Yearly => period == BillingPeriod::Yearly,
            Self::Both | Self::FirstMonth => true,
        }
    }

    pub fn duration(self) -> Duration {
        match self {
            Self::FirstMonth => Duration::Once,
            _ => Duration::Forever,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserType {
    All,
    /// Never paid for a tier.
    New,
    /// On a running paid term now.
    Existing,
    /// Paid once, not paying now (win-back).
    Churned,
    /// No user-type restriction; the other rules (segments, tiers, age) decide.
    Custom,
}

impl UserType {
    pub(super) fn parse(v: &Value) -> Result<Self, String> {
        match v.as_str() {
            Some("all") => Ok(Self::All),
            Some("new") => Ok(Self::New),
            Some("existing") => Ok(Self::Existing),
            Some("churned") => Ok(Self::Churned),
            Some("custom") => Ok(Self::Custom),
            _ => Err("must be one of all, new, existing, churned, custom".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EligibilityRules {
    pub user_type: UserType,
    /// Days since signup, at least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_account_age: Option<u32>,
    /// Days since signup, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_account_age: Option<u32>,
    /// The customer's current tier must be one of these (empty: any).
    #[serde(default)]
    pub current_tiers: Vec<String>,
    /// Customers currently on one of these tiers are excluded.
    #[serde(default)]
    pub exclude_tiers: Vec<String>,
    /// Customer segments (empty: any): the segment of the tier the customer is
    /// on, or for a prospect of the tier bought (`Customer::segment`).
    #[serde(default)]
    pub segments: Vec<String>,
}

impl Default for EligibilityRules {
    fn default() -> Self {
        Self {
            user_type: UserType::All,
            min_account_age: None,
            max_account_age: None,
            current_tiers: vec![],
            exclude_tiers: vec![],
            segments: vec![],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Promotion {
    pub promotion_id: String,
    pub name: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_notes: Option<String>,
    #[serde(flatten)]
    pub discount: DiscountSpec,
    pub applies_to: AppliesTo,
    /// Fixed amounts are in this currency; tiers priced in another are not eligible.
    pub currency: String,
    /// Tiers the promotion may be used to buy (empty: any tier).
    pub target_tiers: Vec<String>,
    pub eligibility_rules: EligibilityRules,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_redemptions: Option<u64>,
    pub redemptions_per_user: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_commitment_months: Option<u32>,
    pub stackable: bool,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    /// `status == active` (seed field, kept for clients that read it).
    pub active: bool,
    pub auto_expire: bool,
    pub requires_code: bool,
    pub promotion_codes: Vec<String>,
    // Tracking (server-owned).
    pub redemption_count: u64,
    pub unique_users: u64,
    /// Cents charged on redeemed first charges, after discount.
    pub total_revenue: i64,
    pub total_discount: i64,
    /// Redemptions ÷ validations, 0–1 with 4 decimals; filled in on reads.
    #[serde(default)]
    pub conversion_rate: f64,
    /// `totalRevenue ÷ redemptionCount`, half up, in cents; filled in on reads.
    #[serde(default)]
    pub average_deal_size: i64,
    #[serde(default)]
    pub validation_count: u64,
    /// Whether the approval policy asked for a second person when it was submitted.
    pub requires_approval: bool,
    pub status: PromotionStatus,
    /// Bumped whenever what a redemption prices or checks changes (only in draft).
    /// Code lookups carry a copy of the terms with this number; a redemption is
    /// conditional on it, so a stale copy is never used.
    pub terms_version: u64,
    // Attribution (server-owned).
    pub created_by: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
    pub updated_at: String,
    pub updated_by: String,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromotionSummary {
    pub promotion_id: String,
    pub name: String,
    pub description: String,
    #[serde(flatten)]
    pub discount: DiscountSpec,
    pub applies_to: AppliesTo,
    pub stackable: bool,
    pub end_date: NaiveDate,
}

/// Promotion ids are `promo_` + a lower-case ULID.
pub fn is_promotion_id(s: &str) -> bool {
    s.strip_prefix("promo_")
        .is_some_and(|rest| rest.len() == 26 && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

pub fn new_promotion_id(ulid: &str) -> String {
    format!("promo_{ulid}")
}

impl crate::domain::audit::Audited for Promotion {
    const ENTITY_TYPE: &'static str = "promotion";
    fn entity_id(&self) -> &str {
        &self.promotion_id
    }
}
