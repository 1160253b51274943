//! Promotions (seed 000 §4): the `Promotion` record, how a request body becomes
//! one, its approval workflow, codes, and the eligibility rules that decide whether
//! a customer may use it, with every failing rule named.
//!
//! Prices come from `pricing`, the one engine quotes share.

pub use super::actor::Actor;
use super::money::{BillingPeriod, Percent};
use super::partner::Partner;
use super::pricing::{self, Adjustment, Discount, Duration, PriceBreakdown};
use super::tier::Tier;
use super::validation::{parse, Fields, ValidationError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
        match self {
            Self::Draft => "draft",
            Self::PendingApproval => "pending_approval",
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(v: &Value) -> Result<Self, String> {
        let s = v.as_str().unwrap_or_default();
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| "must be one of draft, pending_approval, active, paused, completed, cancelled".to_string())
    }

    /// Live promotions are the ones the cron expires at their end date.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Active | Self::Paused)
    }
}

/// The workflow's verbs (the `POST …/{promotionId}/{action}` routes, plus the
/// cron's `complete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Submit,
    Approve,
    Reject,
    Pause,
    Resume,
    Cancel,
    Complete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submit => "submitted",
            Self::Approve => "approved",
            Self::Reject => "rejected",
            Self::Pause => "paused",
            Self::Resume => "resumed",
            Self::Cancel => "cancelled",
            Self::Complete => "completed",
        }
    }
}

/// draft → pending_approval (or straight to active when the policy needs no
/// approval) → active ⇄ paused → completed | cancelled; a rejection sends it back
/// to draft for edits. Everything else is refused.
pub fn next_status(
    from: PromotionStatus,
    action: Action,
    requires_approval: bool,
) -> Result<PromotionStatus, PromotionError> {
    use Action as A;
    use PromotionStatus as S;
    let to = match (from, action) {
        (S::Draft, A::Submit) if requires_approval => S::PendingApproval,
        (S::Draft, A::Submit) => S::Active,
        (S::PendingApproval, A::Approve) => S::Active,
        (S::PendingApproval, A::Reject) => S::Draft,
        (S::Active, A::Pause) => S::Paused,
        (S::Paused, A::Resume) => S::Active,
        (S::Draft | S::PendingApproval | S::Active | S::Paused, A::Cancel) => S::Cancelled,
        (S::Active | S::Paused, A::Complete) => S::Completed,
        _ => return Err(PromotionError::IllegalTransition { from: from.as_str(), action: action.as_str() }),
    };
    Ok(to)
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
    fn adjustment(self) -> Adjustment {
        match self {
            Self::Percentage(p) => Adjustment::PercentOff(p),
            Self::FixedAmount(c) => Adjustment::AmountOff(c),
            Self::FreeTrial(d) | Self::ExtendedTrial(d) => Adjustment::TrialDays(d),
        }
    }

    fn parse(f: &mut Fields) -> Option<Self> {
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
    fn parse(v: &Value) -> Result<Self, String> {
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
    fn parse(v: &Value) -> Result<Self, String> {
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

/// The approval policy (configurable, `PROMO_APPROVAL_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalPolicy {
    /// A percentage above this needs approval (default 20%).
    pub max_percent_without_approval: Percent,
    /// A fixed amount above this many cents needs approval (default $500).
    pub max_fixed_cents_without_approval: i64,
    /// A trial longer than this many days needs approval (default 30).
    pub max_trial_days_without_approval: u32,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self {
            max_percent_without_approval: Percent::from_basis_points(2_000).unwrap_or(Percent::ZERO),
            max_fixed_cents_without_approval: 50_000,
            max_trial_days_without_approval: 30,
        }
    }
}

impl ApprovalPolicy {
    pub fn requires_approval(&self, discount: DiscountSpec) -> bool {
        match discount {
            DiscountSpec::Percentage(p) => p > self.max_percent_without_approval,
            DiscountSpec::FixedAmount(c) => c > self.max_fixed_cents_without_approval,
            DiscountSpec::FreeTrial(d) | DiscountSpec::ExtendedTrial(d) => d > self.max_trial_days_without_approval,
        }
    }
}

/// The editable terms of a promotion as a create request gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPromotion {
    pub name: String,
    pub description: String,
    pub internal_notes: Option<String>,
    pub discount: DiscountSpec,
    pub applies_to: AppliesTo,
    pub currency: String,
    pub target_tiers: Vec<String>,
    pub eligibility_rules: EligibilityRules,
    pub max_redemptions: Option<u64>,
    pub redemptions_per_user: u32,
    pub minimum_commitment_months: Option<u32>,
    pub stackable: bool,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub auto_expire: bool,
    pub requires_code: bool,
    pub promotion_codes: Vec<String>,
}

const CREATE_FIELDS: &[&str] = &[
    "name",
    "description",
    "internalNotes",
    "discountType",
    "discountValue",
    "appliesTo",
    "currency",
    "targetTiers",
    "eligibilityRules",
    "maxRedemptions",
    "redemptionsPerUser",
    "minimumCommitmentMonths",
    "stackable",
    "startDate",
    "endDate",
    "autoExpire",
    "requiresCode",
    "promotionCodes",
];

const RULE_FIELDS: &[&str] =
    &["userType", "minAccountAge", "maxAccountAge", "currentTiers", "excludeTiers", "segments"];

pub mod fields {
    use super::*;

    pub fn name(v: &Value) -> Result<String, String> {
        parse::text(v, 1, 120)
    }
    pub fn description(v: &Value) -> Result<String, String> {
        parse::text(v, 0, 2_000)
    }
    pub fn date(v: &Value) -> Result<NaiveDate, String> {
        crate::domain::partner::fields::date(v)
    }
    /// Partner ids are `prt_` + a lower-case ULID.
    pub fn partner_id(v: &Value) -> Result<String, String> {
        let s = v.as_str().ok_or("must be a string")?;
        let ok = s
            .strip_prefix("prt_")
            .is_some_and(|rest| rest.len() == 26 && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        if ok {
            Ok(s.to_string())
        } else {
            Err("must be a partner id (prt_…)".into())
        }
    }
    pub fn tier_list(v: &Value) -> Result<Vec<String>, String> {
        slug_list(v, MAX_TIER_LIST)
    }
    pub fn slug_list(v: &Value, max: usize) -> Result<Vec<String>, String> {
        let items = v.as_array().ok_or("must be an array of ids")?;
        if items.len() > max {
            return Err(format!("must have at most {max} items"));
        }
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for item in items {
            let id = parse::slug(item)?;
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Ok(out)
    }
    pub fn days(v: &Value) -> Result<u32, String> {
        parse::int_in(v, 0, 36_500).map(|d| d as u32)
    }
    pub fn months(v: &Value) -> Result<u32, String> {
        parse::int_in(v, 1, 120).map(|d| d as u32)
    }
    pub fn max_redemptions(v: &Value) -> Result<u64, String> {
        parse::int_in(v, 1, 1_000_000_000).map(|n| n as u64)
    }
    pub fn per_user(v: &Value) -> Result<u32, String> {
        parse::int_in(v, 1, 1_000).map(|n| n as u32)
    }
    /// Codes are case-insensitive: kept upper-case, 3–32 of A–Z, 0–9, `-`, `_`.
    pub fn code(v: &Value) -> Result<String, String> {
        let s = v.as_str().ok_or("must be a string")?.trim();
        let ok = (3..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(s.to_ascii_uppercase())
        } else {
            Err("must be 3-32 characters of A-Z, 0-9, '-' or '_'".into())
        }
    }
    pub fn code_list(v: &Value) -> Result<Vec<String>, String> {
        let items = v.as_array().ok_or("must be an array of codes")?;
        if items.len() > MAX_CODES_IN_BODY {
            return Err(format!("must have at most {MAX_CODES_IN_BODY} codes"));
        }
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let code = code(item).map_err(|e| format!("[{i}] {e}"))?;
            if out.contains(&code) {
                return Err(format!("[{i}] repeats {code} (codes are case-insensitive)"));
            }
            out.push(code);
        }
        Ok(out)
    }
}

fn parse_rules(f: &mut Fields) -> Option<EligibilityRules> {
    f.object("eligibilityRules", RULE_FIELDS, |r| {
        let user_type = r.optional("userType", UserType::parse).unwrap_or(UserType::All);
        let min_account_age = r.optional("minAccountAge", fields::days);
        let max_account_age = r.optional("maxAccountAge", fields::days);
        let current_tiers = r.optional("currentTiers", fields::tier_list).unwrap_or_default();
        let exclude_tiers = r.optional("excludeTiers", fields::tier_list).unwrap_or_default();
        let segments = r.optional("segments", fields::tier_list).unwrap_or_default();
        if let (Some(min), Some(max)) = (min_account_age, max_account_age) {
            if min > max {
                r.fail("maxAccountAge", "must not be less than minAccountAge");
            }
        }
        if current_tiers.iter().any(|t| exclude_tiers.contains(t)) {
            r.fail("excludeTiers", "must not name a tier that currentTiers allows");
        }
        Some(EligibilityRules { user_type, min_account_age, max_account_age, current_tiers, exclude_tiers, segments })
    })
}

impl NewPromotion {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, CREATE_FIELDS);
        let name = f.required("name", fields::name);
        let description = f.optional("description", fields::description).unwrap_or_default();
        let internal_notes = f.optional("internalNotes", fields::description);
        let discount = DiscountSpec::parse(&mut f);
        let applies_to = f.required("appliesTo", AppliesTo::parse);
        let currency = f.optional("currency", parse::currency).unwrap_or_else(|| "usd".into());
        let target_tiers = f.optional("targetTiers", fields::tier_list).unwrap_or_default();
        let eligibility_rules = if f.has("eligibilityRules") { parse_rules(&mut f) } else { Some(Default::default()) };
        let max_redemptions = f.optional("maxRedemptions", fields::max_redemptions);
        let redemptions_per_user = f.optional("redemptionsPerUser", fields::per_user).unwrap_or(1);
        let minimum_commitment_months = f.optional("minimumCommitmentMonths", fields::months);
        let stackable = f.optional("stackable", parse::boolean).unwrap_or(false);
        let start_date = f.required("startDate", fields::date);
        let end_date = f.required("endDate", fields::date);
        let auto_expire = f.optional("autoExpire", parse::boolean).unwrap_or(true);
        let promotion_codes = f.optional("promotionCodes", fields::code_list).unwrap_or_default();
        let requires_code = f.optional("requiresCode", parse::boolean).unwrap_or(!promotion_codes.is_empty());
        if let (Some(start), Some(end)) = (start_date, end_date) {
            if end < start {
                f.fail("endDate", "must not be before startDate");
            }
        }
        if let (Some(DiscountSpec::FreeTrial(_) | DiscountSpec::ExtendedTrial(_)), Some(AppliesTo::FirstMonth)) =
            (discount, applies_to)
        {
            f.fail("appliesTo", "a trial has no first month to discount; use both, monthly or yearly");
        }
        f.finish()?;
        match (name, discount, applies_to, eligibility_rules, start_date, end_date) {
            (
                Some(name),
                Some(discount),
                Some(applies_to),
                Some(eligibility_rules),
                Some(start_date),
                Some(end_date),
            ) => Ok(Self {
                name,
                description,
                internal_notes,
                discount,
                applies_to,
                currency,
                target_tiers,
                eligibility_rules,
                max_redemptions,
                redemptions_per_user,
                minimum_commitment_months,
                stackable,
                start_date,
                end_date,
                auto_expire,
                requires_code,
                promotion_codes,
            }),
            _ => Err(ValidationError::single("body", "is incomplete")),
        }
    }

    pub fn into_promotion(self, promotion_id: String, actor: &Actor) -> Result<Promotion, ValidationError> {
        if self.end_date < actor.today {
            return Err(ValidationError::single("endDate", "must not be in the past"));
        }
        Ok(Promotion {
            promotion_id,
            name: self.name,
            description: self.description,
            internal_notes: self.internal_notes,
            discount: self.discount,
            applies_to: self.applies_to,
            currency: self.currency,
            target_tiers: self.target_tiers,
            eligibility_rules: self.eligibility_rules,
            max_redemptions: self.max_redemptions,
            redemptions_per_user: self.redemptions_per_user,
            minimum_commitment_months: self.minimum_commitment_months,
            stackable: self.stackable,
            start_date: self.start_date,
            end_date: self.end_date,
            active: false,
            auto_expire: self.auto_expire,
            requires_code: self.requires_code,
            promotion_codes: self.promotion_codes,
            redemption_count: 0,
            unique_users: 0,
            total_revenue: 0,
            total_discount: 0,
            conversion_rate: 0.0,
            average_deal_size: 0,
            validation_count: 0,
            requires_approval: false,
            status: PromotionStatus::Draft,
            terms_version: 1,
            created_by: actor.id.clone(),
            created_at: actor.at.clone(),
            created_by_email: actor.email.clone(),
            submitted_by: None,
            approved_by: None,
            approved_at: None,
            rejected_by: None,
            rejection_reason: None,
            cancellation_reason: None,
            updated_at: actor.at.clone(),
            updated_by: actor.id.clone(),
            version: 1,
        })
    }
}

/// A `PUT` body: `version` plus the fields to change. Terms change only in draft;
/// a live promotion may be renamed, extended or given a different cap.
#[derive(Debug, Clone, PartialEq)]
pub struct PromotionPatch {
    pub version: u64,
    pub body: Value,
}

/// Fields a live (active or paused) promotion may still change: none of them
/// alters what a redemption costs or who may redeem, beyond what the redemption
/// transaction checks against the stored item itself (end date, cap).
const LIVE_EDITABLE: &[&str] = &["name", "description", "internalNotes", "endDate", "maxRedemptions", "autoExpire"];

impl PromotionPatch {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut allowed: Vec<&str> = CREATE_FIELDS.iter().copied().filter(|f| *f != "promotionCodes").collect();
        allowed.push("version");
        let mut f = Fields::new(body, &allowed);
        let version = f.required("version", |v| parse::int_in(v, 1, i64::MAX).map(|n| n as u64));
        f.finish()?;
        let version = version.ok_or_else(|| ValidationError::single("version", "is required"))?;
        let mut rest = body.clone();
        if let Some(o) = rest.as_object_mut() {
            o.remove("version");
        }
        if rest.as_object().is_none_or(|o| o.is_empty()) {
            return Err(ValidationError::single("body", "must change at least one field"));
        }
        Ok(Self { version, body: rest })
    }
}

impl Promotion {
    pub fn pricing_discount(&self) -> Discount {
        Discount { adjustment: self.discount.adjustment(), duration: self.applies_to.duration() }
    }

    /// The editable fields as a create body, to re-parse after a patch.
    fn as_new(&self) -> Value {
        serde_json::json!({
            "name": self.name,
            "description": self.description,
            "internalNotes": self.internal_notes,
            "discountType": match self.discount {
                DiscountSpec::Percentage(_) => "percentage",
                DiscountSpec::FixedAmount(_) => "fixed_amount",
                DiscountSpec::FreeTrial(_) => "free_trial",
                DiscountSpec::ExtendedTrial(_) => "extended_trial",
            },
            "discountValue": match self.discount {
                DiscountSpec::Percentage(p) => serde_json::to_value(p).unwrap_or(Value::Null),
                DiscountSpec::FixedAmount(c) => Value::from(c),
                DiscountSpec::FreeTrial(d) | DiscountSpec::ExtendedTrial(d) => Value::from(d),
            },
            "appliesTo": self.applies_to,
            "currency": self.currency,
            "targetTiers": self.target_tiers,
            "eligibilityRules": self.eligibility_rules,
            "maxRedemptions": self.max_redemptions,
            "redemptionsPerUser": self.redemptions_per_user,
            "minimumCommitmentMonths": self.minimum_commitment_months,
            "stackable": self.stackable,
            "startDate": self.start_date,
            "endDate": self.end_date,
            "autoExpire": self.auto_expire,
            "requiresCode": self.requires_code,
            "promotionCodes": self.promotion_codes,
        })
    }

    /// Applies a `PUT`: the whole record is re-parsed with the patch laid over it, so
    /// every cross-field rule holds afterwards.
    pub fn apply(&self, patch: &PromotionPatch, actor: &Actor) -> Result<Promotion, PromotionError> {
        if patch.version != self.version {
            return Err(PromotionError::VersionConflict { current: Some(self.version) });
        }
        let Some(changes) = patch.body.as_object() else {
            return Err(ValidationError::single("body", "must be a JSON object").into());
        };
        match self.status {
            PromotionStatus::Draft => {}
            s if s.is_live() => {
                if let Some(field) = changes.keys().find(|k| !LIVE_EDITABLE.contains(&k.as_str())) {
                    return Err(PromotionError::NotEditable { status: s.as_str(), field: field.clone() });
                }
            }
            s => {
                let field = changes.keys().next().cloned().unwrap_or_default();
                return Err(PromotionError::NotEditable { status: s.as_str(), field });
            }
        }
        let mut merged = self.as_new();
        if let (Some(target), Some(changes)) = (merged.as_object_mut(), patch.body.as_object()) {
            for (k, v) in changes {
                target.insert(k.clone(), v.clone());
            }
            // Absent optional values must be absent, not null-as-invalid.
            target.retain(|_, v| !v.is_null());
        }
        let new = NewPromotion::parse(&merged)?;
        if self.status.is_live() {
            if new.end_date < actor.today {
                return Err(ValidationError::single("endDate", "must not be in the past").into());
            }
            if new.max_redemptions.is_some_and(|m| m < self.redemption_count) {
                return Err(ValidationError::single(
                    "maxRedemptions",
                    format!("must not be below the {} redemptions already made", self.redemption_count),
                )
                .into());
            }
        }
        let mut after = self.clone();
        let terms_before = self.terms();
        after.name = new.name;
        after.description = new.description;
        after.internal_notes = new.internal_notes;
        after.discount = new.discount;
        after.applies_to = new.applies_to;
        after.currency = new.currency;
        after.target_tiers = new.target_tiers;
        after.eligibility_rules = new.eligibility_rules;
        after.max_redemptions = new.max_redemptions;
        after.redemptions_per_user = new.redemptions_per_user;
        after.minimum_commitment_months = new.minimum_commitment_months;
        after.stackable = new.stackable;
        after.start_date = new.start_date;
        after.end_date = new.end_date;
        after.auto_expire = new.auto_expire;
        after.requires_code = new.requires_code;
        if after.terms() != terms_before {
            after.terms_version += 1;
        }
        after.touch(actor);
        Ok(after)
    }

    /// What a redemption prices and checks besides the live fields (status, dates,
    /// cap), which the redemption transaction reads from the item itself.
    fn terms(&self) -> Value {
        let mut v = self.as_new();
        if let Some(o) = v.as_object_mut() {
            for live in ["name", "description", "internalNotes", "endDate", "maxRedemptions", "autoExpire"] {
                o.remove(live);
            }
        }
        v
    }

    fn touch(&mut self, actor: &Actor) {
        self.updated_at = actor.at.clone();
        self.updated_by = actor.id.clone();
        self.version += 1;
    }

    /// Moves through the workflow. `Approve` needs someone other than the creator.
    pub fn transition(
        &self,
        action: Action,
        actor: &Actor,
        policy: &ApprovalPolicy,
        reason: Option<String>,
    ) -> Result<Promotion, PromotionError> {
        let requires_approval = policy.requires_approval(self.discount);
        let to = next_status(self.status, action, requires_approval)?;
        if to == PromotionStatus::Active && self.end_date < actor.today {
            return Err(PromotionError::Ended);
        }
        let mut after = self.clone();
        match action {
            Action::Submit => {
                if self.requires_code && self.promotion_codes.is_empty() {
                    return Err(PromotionError::CodesRequired);
                }
                after.requires_approval = requires_approval;
                after.submitted_by = Some(actor.id.clone());
                after.rejected_by = None;
                after.rejection_reason = None;
                if !requires_approval {
                    after.approved_by = None;
                    after.approved_at = Some(actor.at.clone());
                }
            }
            Action::Approve => {
                if actor.id == self.created_by {
                    return Err(PromotionError::SelfApproval);
                }
                after.approved_by = Some(actor.id.clone());
                after.approved_at = Some(actor.at.clone());
            }
            Action::Reject => {
                after.rejected_by = Some(actor.id.clone());
                after.rejection_reason = reason;
            }
            Action::Cancel => after.cancellation_reason = reason,
            _ => {}
        }
        after.status = to;
        after.active = to == PromotionStatus::Active;
        after.touch(actor);
        Ok(after)
    }

    /// Fills in the rates the counters imply (they are not stored: they would go
    /// stale with every validation).
    pub fn with_performance(mut self, validations: u64) -> Self {
        self.validation_count = validations.max(self.redemption_count);
        self.conversion_rate = if self.validation_count == 0 {
            0.0
        } else {
            let rate = self.redemption_count as f64 / self.validation_count as f64;
            (rate * 10_000.0).round() / 10_000.0
        };
        self.average_deal_size = if self.redemption_count == 0 {
            0
        } else {
            let n = i128::from(self.redemption_count);
            ((i128::from(self.total_revenue) * 2 + n) / (2 * n)) as i64
        };
        self.active = self.status == PromotionStatus::Active;
        self
    }

    /// The record without the creator's address, which only the notices use:
    /// what answers, audit entries and code copies hold.
    pub fn without_private(mut self) -> Self {
        self.created_by_email = None;
        self
    }

    /// What a client sees in validate answers: no tracking, no internal notes.
    pub fn summary(&self) -> PromotionSummary {
        PromotionSummary {
            promotion_id: self.promotion_id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            discount: self.discount,
            applies_to: self.applies_to,
            stackable: self.stackable,
            end_date: self.end_date,
        }
    }
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

// ---- Codes ------------------------------------------------------------------------

/// A generate request: `{count, prefix?, length?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeRequest {
    pub explicit: Vec<String>,
    pub count: u32,
    pub prefix: String,
    pub length: usize,
}

impl CodeRequest {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["codes", "count", "prefix", "length"]);
        let explicit = f.optional("codes", fields::code_list).unwrap_or_default();
        let count =
            f.optional("count", |v| parse::int_in(v, 1, i64::from(MAX_GENERATED_CODES)).map(|n| n as u32)).unwrap_or(0);
        let prefix = f
            .optional("prefix", |v| {
                let s = v.as_str().ok_or("must be a string")?;
                if s.len() <= 12 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    Ok(s.to_ascii_uppercase())
                } else {
                    Err("must be at most 12 characters of A-Z, 0-9 or '-'".to_string())
                }
            })
            .unwrap_or_default();
        let length = f.optional("length", |v| parse::int_in(v, 6, 16).map(|n| n as usize)).unwrap_or(8);
        if explicit.is_empty() && count == 0 && f.has("codes") {
            f.fail("codes", "must not be empty");
        }
        if !explicit.is_empty() && count > 0 {
            f.fail("count", "give either codes or count, not both");
        }
        if explicit.is_empty() && count == 0 && !f.has("codes") {
            f.fail("count", "is required when no codes are given");
        }
        if prefix.len() + length > 32 {
            f.fail("prefix", "prefix and length together must be at most 32 characters");
        }
        f.finish()?;
        Ok(Self { explicit, count, prefix, length })
    }
}

/// One code of `length` characters from `CODE_ALPHABET` after `prefix`, drawn from
/// `random` (uniform: the alphabet's 31 letters are picked by rejection sampling).
pub fn generate_code(prefix: &str, length: usize, random: &mut impl FnMut() -> u8) -> String {
    let n = CODE_ALPHABET.len() as u8;
    let limit = u8::MAX - (u8::MAX % n);
    let mut out = String::with_capacity(prefix.len() + length);
    out.push_str(prefix);
    while out.len() < prefix.len() + length {
        let b = random();
        if b < limit {
            out.push(CODE_ALPHABET[usize::from(b % n)] as char);
        }
    }
    out
}

// ---- Eligibility ------------------------------------------------------------------

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
        match self {
            Self::NotFound => "not_found",
            Self::NotActive => "not_active",
            Self::NotStarted => "not_started",
            Self::Ended => "ended",
            Self::TierNotEligible => "tier_not_eligible",
            Self::ExcludedTier => "excluded_tier",
            Self::BillingPeriodNotEligible => "billing_period_not_eligible",
            Self::UserTypeNotEligible => "user_type_not_eligible",
            Self::AccountTooNew => "account_too_new",
            Self::AccountTooOld => "account_too_old",
            Self::SegmentNotEligible => "segment_not_eligible",
            Self::MaxRedemptionsReached => "max_redemptions_reached",
            Self::PerUserLimitReached => "per_user_limit_reached",
            Self::MinimumCommitmentNotMet => "minimum_commitment_not_met",
            Self::NotStackable => "not_stackable",
            Self::DuplicateCode => "duplicate_code",
        }
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
            trialing: p.subscription_status == super::partner::SubscriptionStatus::Trialing,
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

/// The price of the first charge with every promotion applied, in the order given.
pub fn price_with(tier: &Tier, period: BillingPeriod, promotions: &[&Promotion]) -> PriceBreakdown {
    let discounts: Vec<Discount> = promotions.iter().map(|p| p.pricing_discount()).collect();
    pricing::price(tier.prices.for_period(period), period, &discounts)
}

/// The price of the first charge with `promotion` applied, broken down per
/// promotion for the redemption records: each gets the part of the discount its
/// own step took.
pub fn discount_shares(tier: &Tier, period: BillingPeriod, promotions: &[&Promotion]) -> Vec<i64> {
    let mut shares = Vec::with_capacity(promotions.len());
    let mut before = pricing::price(tier.prices.for_period(period), period, &[]).discount_amount;
    for i in 0..promotions.len() {
        let now = price_with(tier, period, &promotions[..=i]).discount_amount;
        shares.push(now - before);
        before = now;
    }
    shares
}

/// A validate or redeem request.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    /// Codes (upper-case) or promotion ids, as given.
    pub codes: Vec<String>,
    pub promotion_ids: Vec<String>,
    pub partner_id: Option<String>,
    pub tier_id: String,
    pub billing_period: BillingPeriod,
    pub commitment_months: Option<u32>,
}

impl Application {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(
            body,
            &["code", "codes", "promotionId", "partnerId", "tierId", "billingPeriod", "commitmentMonths"],
        );
        let code = f.optional("code", fields::code);
        let mut codes = f
            .optional("codes", |v| {
                let list = fields::code_list(v)?;
                if list.is_empty() || list.len() > MAX_STACKED {
                    return Err(format!("must have 1 to {MAX_STACKED} codes"));
                }
                Ok(list)
            })
            .unwrap_or_default();
        let promotion_id = f.optional("promotionId", |v| {
            let s = v.as_str().ok_or("must be a string")?;
            if is_promotion_id(s) {
                Ok(s.to_string())
            } else {
                Err("must be a promotion id".to_string())
            }
        });
        let partner_id = f.optional("partnerId", fields::partner_id);
        let tier_id = f.required("tierId", parse::slug);
        let billing_period = f.optional("billingPeriod", BillingPeriod::parse).unwrap_or(BillingPeriod::Monthly);
        let commitment_months = f.optional("commitmentMonths", fields::months);
        if let Some(c) = code {
            if codes.contains(&c) {
                f.fail("code", "is also listed in codes");
            }
            codes.insert(0, c);
        }
        let given = usize::from(!codes.is_empty()) + usize::from(promotion_id.is_some());
        if given == 0 && !f.has("code") && !f.has("codes") && !f.has("promotionId") {
            f.fail("code", "give a code, codes or a promotionId");
        }
        if given > 1 {
            f.fail("promotionId", "give either codes or a promotionId, not both");
        }
        if codes.len() > MAX_STACKED {
            f.fail("codes", format!("at most {MAX_STACKED} promotions can be combined"));
        }
        f.finish()?;
        let tier_id = tier_id.ok_or_else(|| ValidationError::single("tierId", "is required"))?;
        Ok(Self {
            codes,
            promotion_ids: promotion_id.into_iter().collect(),
            partner_id,
            tier_id,
            billing_period,
            commitment_months,
        })
    }
}

/// Promotion ids are `promo_` + a lower-case ULID.
pub fn is_promotion_id(s: &str) -> bool {
    s.strip_prefix("promo_")
        .is_some_and(|rest| rest.len() == 26 && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

pub fn new_promotion_id(ulid: &str) -> String {
    format!("promo_{ulid}")
}

impl super::audit::Audited for Promotion {
    const ENTITY_TYPE: &'static str = "promotion";
    fn entity_id(&self) -> &str {
        &self.promotion_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::defaults::default_tiers;
    use serde_json::json;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn actor(id: &str) -> Actor {
        Actor::fixture(id, "2026-11-01T00:00:00.000Z")
    }

    fn tier(id: &str) -> Tier {
        let change = crate::domain::actor::Actor::fixture("t", "2026-01-01T00:00:00.000Z");
        default_tiers().into_iter().map(|n| n.into_tier(&change)).find(|t| t.tier_id == id).unwrap()
    }

    fn base() -> Value {
        json!({
            "name": "Winter", "discountType": "percentage", "discountValue": 15,
            "appliesTo": "both", "startDate": "2026-11-01", "endDate": "2026-12-31",
        })
    }

    fn promo(body: Value) -> Promotion {
        let mut p = NewPromotion::parse(&body)
            .unwrap()
            .into_promotion(new_promotion_id("01jc0000000000000000000000"), &actor("creator"))
            .unwrap();
        p.status = PromotionStatus::Active;
        p
    }

    fn with(mut body: Value, extra: Value) -> Value {
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    #[test]
    fn promotions_round_trip_through_json_and_dynamo() {
        for body in [
            base(),
            with(base(), json!({"discountType": "fixed_amount", "discountValue": 2500})),
            with(base(), json!({"discountType": "free_trial", "discountValue": 14})),
            with(base(), json!({"discountValue": 12.5, "maxRedemptions": 10, "promotionCodes": ["win-1"]})),
        ] {
            let p = promo(body);
            let v = serde_json::to_value(&p).unwrap();
            assert!(v["discountType"].is_string() && v["discountValue"].is_number(), "{v}");
            let back: Promotion = serde_json::from_value(v).unwrap();
            assert_eq!(back, p);
            let item: serde_dynamo::Item = serde_dynamo::to_item(&p).unwrap();
            let back: Promotion = serde_dynamo::from_item(item).unwrap();
            assert_eq!(back, p);
        }
        let p = promo(with(base(), json!({"discountValue": 12.5})));
        assert_eq!(serde_json::to_value(&p).unwrap()["discountValue"], json!(12.5));
    }

    #[test]
    fn bad_bodies_name_their_fields() {
        let cases = [
            (json!({}), "name"),
            (with(base(), json!({"discountType": "bogus"})), "discountType"),
            (with(base(), json!({"discountValue": 0})), "discountValue"),
            (with(base(), json!({"discountValue": 101})), "discountValue"),
            (with(base(), json!({"discountType": "fixed_amount", "discountValue": 10.5})), "discountValue"),
            (with(base(), json!({"appliesTo": "weekly"})), "appliesTo"),
            (with(base(), json!({"endDate": "2026-10-01"})), "endDate"),
            (with(base(), json!({"startDate": "11/01/2026"})), "startDate"),
            (with(base(), json!({"status": "active"})), "status"),
            (with(base(), json!({"redemptionCount": 5})), "redemptionCount"),
            (with(base(), json!({"redemptionsPerUser": 0})), "redemptionsPerUser"),
            (with(base(), json!({"promotionCodes": ["ok1", "OK1"]})), "promotionCodes"),
            (with(base(), json!({"promotionCodes": ["a"]})), "promotionCodes"),
            (with(base(), json!({"eligibilityRules": {"userType": "vip"}})), "eligibilityRules.userType"),
            (
                with(base(), json!({"eligibilityRules": {"minAccountAge": 30, "maxAccountAge": 10}})),
                "eligibilityRules.maxAccountAge",
            ),
            (with(base(), json!({"targetTiers": ["Gold!"]})), "targetTiers"),
            (
                with(base(), json!({"discountType": "free_trial", "discountValue": 7, "appliesTo": "first_month"})),
                "appliesTo",
            ),
        ];
        for (body, field) in cases {
            let err = NewPromotion::parse(&body).expect_err(field);
            assert!(err.fields.contains_key(field), "{field}: {:?}", err.fields);
        }
    }

    #[test]
    fn workflow_allows_only_its_edges() {
        use Action::*;
        use PromotionStatus::*;
        let actions = [Submit, Approve, Reject, Pause, Resume, Cancel, Complete];
        let legal = [
            (Draft, Submit, true, PendingApproval),
            (Draft, Submit, false, Active),
            (PendingApproval, Approve, true, Active),
            (PendingApproval, Reject, true, Draft),
            (Active, Pause, true, Paused),
            (Paused, Resume, true, Active),
            (Draft, Cancel, true, Cancelled),
            (PendingApproval, Cancel, true, Cancelled),
            (Active, Cancel, true, Cancelled),
            (Paused, Cancel, true, Cancelled),
            (Active, Complete, true, Completed),
            (Paused, Complete, true, Completed),
        ];
        for from in PromotionStatus::ALL {
            for action in actions {
                let expected = legal.iter().find(|(f, a, r, _)| *f == from && *a == action && *r).map(|l| l.3);
                match (next_status(from, action, true), expected) {
                    (Ok(to), Some(e)) => assert_eq!(to, e),
                    (Err(PromotionError::IllegalTransition { .. }), None) => {}
                    (got, want) => panic!("{from:?} {action:?}: {got:?} vs {want:?}"),
                }
            }
        }
        assert_eq!(next_status(Draft, Submit, false).unwrap(), Active);
    }

    #[test]
    fn approval_policy_and_self_approval() {
        let policy = ApprovalPolicy::default();
        let mut p = promo(with(base(), json!({"discountValue": 25})));
        p.status = PromotionStatus::Draft;
        let submitted = p.transition(Action::Submit, &actor("creator"), &policy, None).unwrap();
        assert_eq!(submitted.status, PromotionStatus::PendingApproval);
        assert!(submitted.requires_approval);
        assert!(matches!(
            submitted.transition(Action::Approve, &actor("creator"), &policy, None),
            Err(PromotionError::SelfApproval)
        ));
        let approved = submitted.transition(Action::Approve, &actor("boss"), &policy, None).unwrap();
        assert_eq!((approved.status, approved.approved_by.as_deref()), (PromotionStatus::Active, Some("boss")));
        assert!(approved.active);
        // 20% exactly needs none; $500.01 fixed does; 31 trial days do.
        assert!(!policy.requires_approval(DiscountSpec::Percentage(Percent::from_basis_points(2_000).unwrap())));
        assert!(policy.requires_approval(DiscountSpec::FixedAmount(50_001)));
        assert!(!policy.requires_approval(DiscountSpec::FixedAmount(50_000)));
        assert!(policy.requires_approval(DiscountSpec::FreeTrial(31)));
    }

    #[test]
    fn a_live_promotion_keeps_its_terms() {
        let p = promo(base());
        let patch = PromotionPatch::parse(&json!({"version": 1, "discountValue": 50})).unwrap();
        assert!(matches!(p.apply(&patch, &actor("m")), Err(PromotionError::NotEditable { .. })));
        let patch = PromotionPatch::parse(&json!({"version": 1, "endDate": "2027-01-31", "name": "Longer"})).unwrap();
        let after = p.apply(&patch, &actor("m")).unwrap();
        assert_eq!((after.end_date, after.version, after.terms_version), (d("2027-01-31"), 2, 1));
        let stale = PromotionPatch::parse(&json!({"version": 7, "name": "x"})).unwrap();
        assert!(matches!(p.apply(&stale, &actor("m")), Err(PromotionError::VersionConflict { .. })));
        let mut draft = promo(base());
        draft.status = PromotionStatus::Draft;
        let patch = PromotionPatch::parse(&json!({"version": 1, "discountValue": 30})).unwrap();
        let after = draft.apply(&patch, &actor("m")).unwrap();
        assert_eq!(after.terms_version, 2);
        assert_eq!(after.discount, DiscountSpec::Percentage(Percent::from_basis_points(3_000).unwrap()));
    }

    fn purchase<'a>(tier: &'a Tier, customer: Option<&'a Customer>) -> Purchase<'a> {
        Purchase {
            today: d("2026-11-15"),
            tier,
            billing_period: BillingPeriod::Monthly,
            commitment_months: 12,
            customer,
            combined: 1,
        }
    }

    fn codes(reasons: &[Reason]) -> Vec<&'static str> {
        reasons.iter().map(|r| r.code.as_str()).collect()
    }

    #[test]
    fn every_reason_has_a_case() {
        let gold = tier("gold");
        let paying = Customer {
            partner_id: "p".into(),
            current_tier: Some("gold".into()),
            trialing: false,
            paying_now: true,
            ever_paid: true,
            signup_date: Some(d("2026-11-10")),
            segment: None,
        };
        let churned = Customer { paying_now: false, current_tier: Some("free".into()), ..paying.clone() };
        let new = Customer { ever_paid: false, paying_now: false, current_tier: Some("free".into()), ..paying.clone() };
        let ok = promo(base());
        assert!(check(&ok, &purchase(&gold, Some(&paying)), 0).is_empty());

        let mut paused = ok.clone();
        paused.status = PromotionStatus::Paused;
        let cases: Vec<(Promotion, Purchase, u64, &str)> = vec![
            (paused, purchase(&gold, None), 0, "not_active"),
            (promo(with(base(), json!({"startDate": "2026-11-20"}))), purchase(&gold, None), 0, "not_started"),
            (promo(with(base(), json!({"endDate": "2026-11-14"}))), purchase(&gold, None), 0, "ended"),
            (promo(with(base(), json!({"targetTiers": ["platinum"]}))), purchase(&gold, None), 0, "tier_not_eligible"),
            (
                promo(with(base(), json!({"eligibilityRules": {"excludeTiers": ["gold"]}}))),
                purchase(&gold, Some(&paying)),
                0,
                "excluded_tier",
            ),
            (
                promo(with(base(), json!({"appliesTo": "yearly"}))),
                purchase(&gold, None),
                0,
                "billing_period_not_eligible",
            ),
            (
                promo(with(base(), json!({"eligibilityRules": {"userType": "new"}}))),
                purchase(&gold, Some(&churned)),
                0,
                "user_type_not_eligible",
            ),
            (
                promo(with(base(), json!({"eligibilityRules": {"userType": "existing"}}))),
                purchase(&gold, Some(&new)),
                0,
                "user_type_not_eligible",
            ),
            (
                promo(with(base(), json!({"eligibilityRules": {"userType": "churned"}}))),
                purchase(&gold, Some(&paying)),
                0,
                "user_type_not_eligible",
            ),
            (
                promo(with(base(), json!({"eligibilityRules": {"minAccountAge": 30}}))),
                purchase(&gold, Some(&paying)),
                0,
                "account_too_new",
            ),
            (
                promo(with(base(), json!({"eligibilityRules": {"maxAccountAge": 2}}))),
                purchase(&gold, Some(&paying)),
                0,
                "account_too_old",
            ),
            (
                promo(with(base(), json!({"eligibilityRules": {"segments": ["luxury"]}}))),
                purchase(&gold, None),
                0,
                "segment_not_eligible",
            ),
            (
                {
                    let mut p = promo(with(base(), json!({"maxRedemptions": 3})));
                    p.redemption_count = 3;
                    p
                },
                purchase(&gold, None),
                0,
                "max_redemptions_reached",
            ),
            (promo(base()), purchase(&gold, Some(&paying)), 1, "per_user_limit_reached"),
            (
                promo(with(base(), json!({"minimumCommitmentMonths": 24}))),
                purchase(&gold, None),
                0,
                "minimum_commitment_not_met",
            ),
            (promo(base()), Purchase { combined: 2, ..purchase(&gold, None) }, 0, "not_stackable"),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for (p, buy, used, expected) in cases {
            let got = check(&p, &buy, used);
            assert_eq!(codes(&got), vec![expected], "{expected}: {got:?}");
            seen.insert(expected);
        }
        assert_eq!(seen.len() + 1, 15, "every reason code but not_found (a store answer) has a case");
    }

    #[test]
    fn trials_are_for_customers_without_one_and_extensions_for_those_in_one() {
        let gold = tier("gold");
        let fresh = Customer {
            partner_id: "p".into(),
            current_tier: Some("free".into()),
            trialing: false,
            paying_now: false,
            ever_paid: false,
            signup_date: Some(d("2026-11-01")),
            segment: None,
        };
        let trialing = Customer { trialing: true, ..fresh.clone() };
        let paid_before = Customer { ever_paid: true, ..fresh.clone() };
        let trial = promo(with(base(), json!({"discountType": "free_trial", "discountValue": 14})));
        let extension = promo(with(base(), json!({"discountType": "extended_trial", "discountValue": 7})));
        assert!(check(&trial, &purchase(&gold, Some(&fresh)), 0).is_empty());
        assert!(check(&trial, &purchase(&gold, None), 0).is_empty(), "a prospect may start a trial");
        for c in [&trialing, &paid_before] {
            assert_eq!(codes(&check(&trial, &purchase(&gold, Some(c)), 0)), vec!["user_type_not_eligible"]);
        }
        assert!(check(&extension, &purchase(&gold, Some(&trialing)), 0).is_empty());
        assert_eq!(codes(&check(&extension, &purchase(&gold, Some(&fresh)), 0)), vec!["user_type_not_eligible"]);
        assert_eq!(price_with(&gold, BillingPeriod::Monthly, &[&extension]).trial_days, 7);
    }

    #[test]
    fn segments_are_the_customers_own_and_a_prospects_is_the_tier_bought() {
        let mut luxury_tier = tier("platinum");
        luxury_tier.segment = "luxury".into();
        let for_luxury = promo(with(base(), json!({"eligibilityRules": {"segments": ["luxury"]}})));
        let on_essential = Customer {
            partner_id: "p".into(),
            current_tier: Some("essential-basic".into()),
            trialing: false,
            paying_now: true,
            ever_paid: true,
            signup_date: Some(d("2026-10-01")),
            segment: Some("essential".into()),
        };
        let on_luxury = Customer { segment: Some("luxury".into()), ..on_essential.clone() };
        // An essential customer buying a luxury tier is still an essential customer.
        let refused = check(&for_luxury, &purchase(&luxury_tier, Some(&on_essential)), 0);
        assert_eq!(codes(&refused), vec!["segment_not_eligible"]);
        assert!(refused[0].message.contains("this one is in essential"), "{}", refused[0].message);
        // A luxury customer qualifies whatever tier they buy.
        assert!(check(&for_luxury, &purchase(&tier("gold"), Some(&on_luxury)), 0).is_empty());
        // A prospect, or a customer whose segment was not read, is placed by the tier bought.
        assert!(check(&for_luxury, &purchase(&luxury_tier, None), 0).is_empty());
        let unknown = Customer { segment: None, ..on_essential.clone() };
        assert!(check(&for_luxury, &purchase(&luxury_tier, Some(&unknown)), 0).is_empty());

        // The current tier is read only when a promotion asks for segments and
        // the customer is on another tier than the one bought.
        assert!(unknown.needs_segment(&luxury_tier, [&for_luxury].into_iter()));
        assert!(!unknown.needs_segment(&luxury_tier, [&promo(base())].into_iter()));
        assert!(!on_essential.needs_segment(&luxury_tier, [&for_luxury].into_iter()), "already known");
        let same = Customer { current_tier: Some("platinum".into()), ..unknown };
        assert!(!same.needs_segment(&luxury_tier, [&for_luxury].into_iter()), "buying the tier they are on");
    }

    #[test]
    fn a_promotion_past_its_end_cannot_go_live() {
        let mut p = promo(with(base(), json!({"endDate": "2026-11-05"})));
        p.status = PromotionStatus::Draft;
        let later = Actor { today: d("2026-11-06"), ..actor("m") };
        assert!(matches!(
            p.transition(Action::Submit, &later, &ApprovalPolicy::default(), None),
            Err(PromotionError::Ended)
        ));
        let cancelled = p.transition(Action::Cancel, &later, &ApprovalPolicy::default(), Some("typo".into())).unwrap();
        assert_eq!(cancelled.cancellation_reason.as_deref(), Some("typo"));
    }

    #[test]
    fn every_failing_rule_is_listed_not_just_the_first() {
        let gold = tier("gold");
        let mut p = promo(with(
            base(),
            json!({"targetTiers": ["platinum"], "appliesTo": "yearly", "eligibilityRules": {"segments": ["luxury"]}}),
        ));
        p.status = PromotionStatus::Paused;
        let got = check(&p, &Purchase { combined: 2, ..purchase(&gold, None) }, 0);
        assert_eq!(
            codes(&got),
            vec![
                "not_active",
                "tier_not_eligible",
                "billing_period_not_eligible",
                "segment_not_eligible",
                "not_stackable"
            ]
        );
    }

    #[test]
    fn stacked_prices_share_the_discount_exactly() {
        let gold = tier("gold");
        let a = promo(with(base(), json!({"stackable": true})));
        let b =
            promo(with(base(), json!({"stackable": true, "discountType": "fixed_amount", "discountValue": 10_000})));
        let price = price_with(&gold, BillingPeriod::Monthly, &[&a, &b]);
        // 360,000 → 15% → 306,000 → −10,000 → 296,000
        assert_eq!((price.original_price, price.final_price), (360_000, 296_000));
        let shares = discount_shares(&gold, BillingPeriod::Monthly, &[&a, &b]);
        assert_eq!(shares, vec![54_000, 10_000]);
        assert_eq!(shares.iter().sum::<i64>(), price.discount_amount);
    }

    #[test]
    fn generated_codes_use_the_unambiguous_alphabet() {
        let mut state = 7u32;
        let mut random = || {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (state >> 16) as u8
        };
        let code = generate_code("WIN-", 10, &mut random);
        assert_eq!(code.len(), 14);
        assert!(code.starts_with("WIN-"));
        assert!(code[4..].bytes().all(|b| CODE_ALPHABET.contains(&b)));
        for bad in [b'0', b'O', b'1', b'I', b'L'] {
            assert!(!CODE_ALPHABET.contains(&bad));
        }
        let req = CodeRequest::parse(&json!({"count": 5, "prefix": "vip"})).unwrap();
        assert_eq!((req.count, req.prefix.as_str(), req.length), (5, "VIP", 8));
        assert!(CodeRequest::parse(&json!({"count": 91})).is_err());
        assert!(CodeRequest::parse(&json!({})).is_err());
    }

    #[test]
    fn applications_take_a_code_codes_or_an_id() {
        let a = Application::parse(&json!({"code": "win-1", "tierId": "gold"})).unwrap();
        assert_eq!((a.codes, a.billing_period), (vec!["WIN-1".to_string()], BillingPeriod::Monthly));
        let err = Application::parse(&json!({"tierId": "gold"})).unwrap_err();
        assert!(err.fields.contains_key("code"));
        let err = Application::parse(
            &json!({"code": "AAA", "promotionId": "promo_01jc0000000000000000000000", "tierId": "gold"}),
        )
        .unwrap_err();
        assert!(err.fields.contains_key("promotionId"));
        let err = Application::parse(&json!({"code": "AAA"})).unwrap_err();
        assert!(err.fields.contains_key("tierId"));
    }
}
