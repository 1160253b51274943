//! Quotes (seed 000 §5): a priced offer to one prospect, its discount authority,
//! the approval workflow and the lifecycle up to acceptance. Pure: the clock, ids
//! and the caller's roles come in as parameters.
//!
//! Pricing goes through the one pricing engine (`pricing::price`): the subtotal is
//! the tier's list price for the billing period plus the customizations, and the
//! discounts are applied to it in order, each recurring on every charge.

pub use super::actor::Actor;
use super::money::{BillingPeriod, Percent};
use super::partner::fields;
use super::permissions::{Permission, Role};
use super::pricing::{self, Adjustment, Discount, Duration};
use super::tier::Tier;
use super::validation::{parse, Fields, ValidationError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuoteStatus {
    Draft,
    PendingApproval,
    Sent,
    Accepted,
    Rejected,
    Expired,
    Cancelled,
}

impl QuoteStatus {
    pub const ALL: [Self; 7] = [
        Self::Draft,
        Self::PendingApproval,
        Self::Sent,
        Self::Accepted,
        Self::Rejected,
        Self::Expired,
        Self::Cancelled,
    ];
    /// The statuses a quote can still leave: the expiry pass looks only at these.
    pub const OPEN: [Self; 3] = [Self::Draft, Self::PendingApproval, Self::Sent];

    pub fn as_str(self) -> &'static str {
        crate::domain::wire::wire_name(&self)
    }

    pub fn parse(v: &Value) -> Result<Self, String> {
        let s = v.as_str().unwrap_or_default();
        Self::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| {
            "must be one of draft, pending_approval, sent, accepted, rejected, expired, cancelled".into()
        })
    }

    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }
}

/// What a discount line takes off: a percent number or an amount in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum DiscountTerms {
    Percentage(Percent),
    FixedAmount(i64),
}

/// One discount line of a quote (seed `discounts[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuoteDiscount {
    #[serde(flatten)]
    pub terms: DiscountTerms,
    pub reason: String,
    /// Cents this line takes off each charge, after the lines before it.
    pub amount: i64,
    pub approval_required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
}

/// A quantity of an add-on at the price list's unit price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddOnLine {
    pub quantity: u32,
    /// Cents per unit per charge of the quote's billing period.
    pub price_per_unit: i64,
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomFeature {
    pub feature_id: String,
    pub name: String,
    /// Cents per charge.
    pub price: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customizations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_listings: Option<AddOnLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_images: Option<AddOnLine>,
    #[serde(default)]
    pub custom_features: Vec<CustomFeature>,
    /// Limits that replace the tier's once the quote is accepted.
    #[serde(default)]
    pub custom_limits: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalOutcome {
    Approved,
    Rejected,
}

/// The last decision on a quote's approval request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalDecision {
    pub outcome: ApprovalOutcome,
    pub by: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What an accepted quote did: the partner and the subscription change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversion {
    pub partner_id: String,
    /// `None` when the partner already had exactly the quoted subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_id: Option<String>,
    pub partner_created: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_by_name: Option<String>,
    /// The Stripe subscription billing the quoted price, once the acceptance's
    /// Stripe step finished (absent: the step is still to do; the next accept
    /// call on the link retries it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe_subscription_id: Option<String>,
}

/// The CRM hand-off of an accepted quote (seed 000 "CRM integration"; docs/events.md
/// "Quote accepted"): what a CRM needs to close the deal and open the account, and
/// nothing of the quote's internals (no token, no approval trail).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuoteAccepted {
    /// Always `quote.accepted`.
    pub event_type: String,
    pub quote_id: String,
    pub quote_number: String,
    pub accepted_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_by_name: Option<String>,
    pub partner_id: String,
    pub partner_created: bool,
    pub prospect_email: String,
    pub prospect_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prospect_company: Option<String>,
    pub sales_rep: String,
    pub tier_id: String,
    pub billing_period: BillingPeriod,
    /// Cents per billing period, after discounts.
    pub final_price: i64,
    pub price_per_month: i64,
    pub total_discount: i64,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment_months: Option<u32>,
}

impl QuoteAccepted {
    pub const EVENT_TYPE: &'static str = "quote.accepted";

    /// The hand-off of an accepted quote; `None` for a quote not (yet) accepted.
    pub fn of(q: &Quote) -> Option<Self> {
        let (accepted_at, conversion) = (q.accepted_at.clone()?, q.conversion.as_ref()?);
        Some(Self {
            event_type: Self::EVENT_TYPE.to_string(),
            quote_id: q.quote_id.clone(),
            quote_number: q.quote_number.clone(),
            accepted_at,
            accepted_by_name: conversion.accepted_by_name.clone(),
            partner_id: conversion.partner_id.clone(),
            partner_created: conversion.partner_created,
            prospect_email: q.prospect_email.clone(),
            prospect_name: q.prospect_name.clone(),
            prospect_company: q.prospect_company.clone(),
            sales_rep: q.sales_rep.clone(),
            tier_id: q.base_tier.clone(),
            billing_period: q.billing_period,
            final_price: q.final_price,
            price_per_month: q.price_per_month,
            total_discount: q.total_discount,
            currency: q.currency.clone(),
            commitment_months: q.commitment_months,
        })
    }
}

/// Seed 000 `Quote`, plus the approval, token and conversion bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    pub quote_id: String,
    pub quote_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    pub prospect_email: String,
    pub prospect_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prospect_company: Option<String>,
    pub sales_rep: String,
    /// Where the rep's notices go (the `email` claim of whoever wrote the quote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales_rep_email: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub base_tier: String,
    pub base_tier_name: String,
    pub billing_period: BillingPeriod,
    /// The tier's list price for the billing period at `priceVersion`.
    pub base_price: i64,
    pub price_version: u32,
    pub currency: String,
    pub customizations: Customizations,
    pub discounts: Vec<QuoteDiscount>,
    pub subtotal: i64,
    pub total_discount: i64,
    pub final_price: i64,
    /// `finalPrice` per month: a twelfth of a yearly price, half up.
    pub price_per_month: i64,
    /// `totalDiscount / subtotal` as a percent number with two decimals (rounded half up).
    pub total_discount_percent: f64,
    pub valid_until: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment_months: Option<u32>,
    pub terms_and_conditions: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub status: QuoteStatus,
    /// The discount is above the authority of whoever priced the quote.
    pub approval_required: bool,
    /// Who last set the price (its author for the self-approval rule).
    pub priced_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_requested_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalDecision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<String>,
    /// The end of `validUntil` (UTC): after it the quote cannot be accepted.
    pub expires_at: String,
    pub view_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_viewed_at: Option<String>,
    /// SHA-256 (hex) of the current view token; the token itself is never stored.
    #[serde(default, skip_serializing)]
    pub token_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion: Option<Conversion>,
    pub version: u64,
    pub updated_at: String,
    pub updated_by: String,
}

/// The token hash is kept on the item but never leaves the server.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StoredQuote<'a> {
    #[serde(flatten)]
    quote: &'a Quote,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_hash: &'a Option<String>,
}

impl Quote {
    /// The item as stored, token hash included.
    pub fn stored(&self) -> impl Serialize + '_ {
        StoredQuote { quote: self, token_hash: &self.token_hash }
    }

    pub fn is_approved(&self) -> bool {
        self.approval.as_ref().is_some_and(|a| a.outcome == ApprovalOutcome::Approved)
    }

    /// Within the pricer's authority, or approved since it was priced.
    pub fn may_be_sent(&self) -> bool {
        !self.approval_required || self.is_approved()
    }

    /// Past `validUntil` on `today`.
    pub fn lapsed(&self, today: NaiveDate) -> bool {
        today > self.valid_until
    }

    /// What the prospect sees through the view link.
    pub fn public_view(&self, today: NaiveDate) -> PublicQuote<'_> {
        let status =
            if self.status == QuoteStatus::Sent && self.lapsed(today) { QuoteStatus::Expired } else { self.status };
        PublicQuote {
            quote_number: &self.quote_number,
            prospect_name: &self.prospect_name,
            prospect_company: self.prospect_company.as_deref(),
            base_tier: &self.base_tier,
            base_tier_name: &self.base_tier_name,
            billing_period: self.billing_period,
            base_price: self.base_price,
            currency: &self.currency,
            customizations: &self.customizations,
            discounts: self
                .discounts
                .iter()
                .map(|d| PublicDiscount { terms: d.terms, reason: &d.reason, amount: d.amount })
                .collect(),
            subtotal: self.subtotal,
            total_discount: self.total_discount,
            final_price: self.final_price,
            price_per_month: self.price_per_month,
            valid_until: self.valid_until,
            commitment_months: self.commitment_months,
            terms_and_conditions: &self.terms_and_conditions,
            status,
            accepted_at: self.accepted_at.as_deref(),
            rejected_at: self.rejected_at.as_deref(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicDiscount<'a> {
    #[serde(flatten)]
    pub terms: DiscountTerms,
    pub reason: &'a str,
    pub amount: i64,
}

/// The prospect's view: the offer, never the internal bookkeeping.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicQuote<'a> {
    pub quote_number: &'a str,
    pub prospect_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prospect_company: Option<&'a str>,
    pub base_tier: &'a str,
    pub base_tier_name: &'a str,
    pub billing_period: BillingPeriod,
    pub base_price: i64,
    pub currency: &'a str,
    pub customizations: &'a Customizations,
    pub discounts: Vec<PublicDiscount<'a>>,
    pub subtotal: i64,
    pub total_discount: i64,
    pub final_price: i64,
    pub price_per_month: i64,
    pub valid_until: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commitment_months: Option<u32>,
    pub terms_and_conditions: &'a str,
    pub status: QuoteStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_at: Option<&'a str>,
}

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

/// Per-role discount caps (`QUOTE_DISCOUNT_AUTHORITY`). `None`: no cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscountAuthority {
    caps: BTreeMap<Role, Option<Percent>>,
}

impl Default for DiscountAuthority {
    /// A rep up to 15% in total, a manager up to 30%, an admin without limit.
    fn default() -> Self {
        let pct = |bp| Percent::from_basis_points(bp);
        Self {
            caps: BTreeMap::from([(Role::SalesRep, pct(1_500)), (Role::SalesManager, pct(3_000)), (Role::Admin, None)]),
        }
    }
}

impl DiscountAuthority {
    /// `sales_rep:15,sales_manager:30,admin:none`; roles not named keep their default.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut out = Self::default();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (role, cap) = part.split_once(':').ok_or_else(|| format!("`{part}` is not role:percent"))?;
            let role = Role::parse(role.trim())
                .filter(|r| *r != Role::Partner)
                .ok_or_else(|| format!("`{}` is not a staff role (sales_rep, sales_manager, admin)", role.trim()))?;
            let cap = match cap.trim() {
                "none" | "unlimited" => None,
                n => {
                    let value: Value = n.parse().map_err(|_| format!("`{n}` is not a percent"))?;
                    Some(Percent::parse(&value).map_err(|e| format!("`{n}` {e}"))?)
                }
            };
            out.caps.insert(role, cap);
        }
        Ok(out)
    }

    /// The most a caller with `roles` may discount without approval: the widest of
    /// their roles' caps (`None`: unlimited). A caller with no staff role gets 0%.
    pub fn cap_for(&self, roles: &[Role]) -> Option<Percent> {
        let mut best = Some(Percent::ZERO);
        for role in roles {
            match self.caps.get(role) {
                Some(None) => return None,
                Some(Some(cap)) if best.is_some_and(|b| *cap > b) => best = Some(*cap),
                _ => {}
            }
        }
        best
    }
}

/// True when `discount` of `subtotal` is more than `cap` (exact, no rounding).
pub fn exceeds(cap: Option<Percent>, discount: i64, subtotal: i64) -> bool {
    match cap {
        None => false,
        Some(_) if subtotal <= 0 => false,
        Some(cap) => i128::from(discount) * 10_000 > i128::from(cap.basis_points()) * i128::from(subtotal),
    }
}

/// Cents per unit per month of the add-ons (`QUOTE_LISTING_UNIT_CENTS`,
/// `QUOTE_IMAGE_UNIT_CENTS`). Server-owned: a rep cannot lower a unit price to
/// slip a discount past the approval rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceList {
    pub listing_monthly: i64,
    pub image_monthly: i64,
}

impl Default for PriceList {
    fn default() -> Self {
        Self { listing_monthly: 1_000, image_monthly: 200 }
    }
}

impl PriceList {
    fn per_period(monthly: i64, period: BillingPeriod) -> i64 {
        match period {
            BillingPeriod::Monthly => monthly,
            BillingPeriod::Yearly => monthly * 12,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscountRequest {
    pub terms: DiscountTerms,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomizationRequest {
    pub additional_listings: Option<u32>,
    pub additional_images: Option<u32>,
    pub custom_features: Vec<CustomFeature>,
    pub custom_limits: BTreeMap<String, u64>,
}

/// The priced part of a quote as a create or edit gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteTerms {
    pub base_tier: String,
    pub billing_period: BillingPeriod,
    pub customizations: CustomizationRequest,
    pub discounts: Vec<DiscountRequest>,
    pub valid_until: Option<NaiveDate>,
    pub commitment_months: Option<u32>,
    pub terms_and_conditions: Option<String>,
    pub notes: Option<String>,
}

/// `POST /api/admin/quotes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuote {
    pub prospect_email: String,
    pub prospect_name: String,
    pub prospect_company: Option<String>,
    pub customer_id: Option<String>,
    /// Someone else's book: only a caller who may approve pricing can set it.
    pub sales_rep: Option<String>,
    pub terms: QuoteTerms,
}

/// `PUT /api/admin/quotes/{id}`: any editable field, plus the version read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotePatch {
    pub prospect_email: Option<String>,
    pub prospect_name: Option<String>,
    pub prospect_company: Option<Option<String>>,
    pub base_tier: Option<String>,
    pub billing_period: Option<BillingPeriod>,
    pub customizations: Option<CustomizationRequest>,
    pub discounts: Option<Vec<DiscountRequest>>,
    pub valid_until: Option<NaiveDate>,
    pub commitment_months: Option<Option<u32>>,
    pub terms_and_conditions: Option<String>,
    pub notes: Option<Option<String>>,
    pub version: u64,
}

const TERM_FIELDS: [&str; 8] = [
    "baseTier",
    "billingPeriod",
    "customizations",
    "discounts",
    "validUntil",
    "commitmentMonths",
    "termsAndConditions",
    "notes",
];

fn name(v: &Value) -> Result<String, String> {
    parse::text(v, 1, 200)
}

fn reason(v: &Value) -> Result<String, String> {
    parse::text(v, 1, 500)
}

fn commitment(v: &Value) -> Result<u32, String> {
    parse::int_in(v, 1, MAX_COMMITMENT_MONTHS).map(|n| n as u32)
}

fn terms_text(v: &Value) -> Result<String, String> {
    parse::text(v, 1, 5_000)
}

fn notes(v: &Value) -> Result<String, String> {
    parse::text(v, 1, 2_000)
}

pub fn is_partner_id(s: &str) -> bool {
    s.strip_prefix("prt_").is_some_and(|rest| !rest.is_empty() && rest.len() <= 40 && parse::is_slug(rest))
}

fn partner_id(v: &Value) -> Result<String, String> {
    let s = v.as_str().ok_or("must be a string")?;
    if is_partner_id(s) {
        Ok(s.to_string())
    } else {
        Err("must be a partner id such as prt_…".into())
    }
}

fn read_discounts(f: &mut Fields<'_>) -> Option<Vec<DiscountRequest>> {
    f.array_of_objects("discounts", MAX_DISCOUNTS, &["type", "value", "reason"], |d| {
        let kind = d.required("type", |v| match v.as_str() {
            Some("percentage") => Ok(true),
            Some("fixed_amount") => Ok(false),
            _ => Err("must be percentage or fixed_amount".into()),
        });
        let reason = d.required("reason", reason);
        let terms = match kind {
            Some(true) => d.required("value", |v| {
                let p = Percent::parse(v)?;
                if p.basis_points() == 0 {
                    return Err("must be more than 0".into());
                }
                Ok(DiscountTerms::Percentage(p))
            }),
            Some(false) => d.required("value", |v| match parse::cents(v)? {
                0 => Err("must be at least 1 cent".into()),
                c => Ok(DiscountTerms::FixedAmount(c)),
            }),
            None => None,
        };
        Some(DiscountRequest { terms: terms?, reason: reason? })
    })
}

fn quantity(max: i64) -> impl Fn(&mut Fields<'_>) -> Option<u32> {
    move |q| q.required("quantity", if max == MAX_ADDITIONAL_LISTINGS { listings } else { images })
}

fn listings(v: &Value) -> Result<u32, String> {
    parse::int_in(v, 0, MAX_ADDITIONAL_LISTINGS).map(|n| n as u32)
}

fn images(v: &Value) -> Result<u32, String> {
    parse::int_in(v, 0, MAX_ADDITIONAL_IMAGES).map(|n| n as u32)
}

fn read_customizations(f: &mut Fields<'_>) -> Option<CustomizationRequest> {
    f.object("customizations", &["additionalListings", "additionalImages", "customFeatures", "customLimits"], |c| {
        let additional_listings = c.object("additionalListings", &["quantity"], quantity(MAX_ADDITIONAL_LISTINGS));
        let additional_images = c.object("additionalImages", &["quantity"], quantity(MAX_ADDITIONAL_IMAGES));
        let custom_features = c
            .array_of_objects("customFeatures", MAX_CUSTOM_FEATURES, &["featureId", "name", "price"], |cf| {
                let feature_id = cf.required("featureId", parse::slug);
                let name = cf.required("name", name);
                let price = cf.required("price", parse::cents);
                Some(CustomFeature { feature_id: feature_id?, name: name?, price: price? })
            })
            .unwrap_or_default();
        let mut seen = std::collections::BTreeSet::new();
        if custom_features.iter().any(|cf| !seen.insert(cf.feature_id.clone())) {
            c.fail("customFeatures", "each featureId may appear once");
        }
        let custom_limits =
            c.map_of("customLimits", MAX_CUSTOM_LIMITS, parse::limit_name, parse::count).unwrap_or_default();
        Some(CustomizationRequest { additional_listings, additional_images, custom_features, custom_limits })
    })
}

impl NewQuote {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut allowed = vec!["prospectEmail", "prospectName", "prospectCompany", "customerId", "salesRep"];
        allowed.extend(TERM_FIELDS);
        let mut f = Fields::new(body, &allowed);
        let prospect_email = f.required("prospectEmail", fields::email);
        let prospect_name = f.required("prospectName", name);
        let prospect_company = f.optional("prospectCompany", name);
        let customer_id = f.optional("customerId", partner_id);
        let sales_rep = f.optional("salesRep", fields::user_id);
        let base_tier = f.required("baseTier", parse::slug);
        let billing_period = f.required("billingPeriod", BillingPeriod::parse);
        let customizations = read_customizations(&mut f).unwrap_or_default();
        let discounts = read_discounts(&mut f).unwrap_or_default();
        let valid_until = f.optional("validUntil", fields::date);
        let commitment_months = f.optional("commitmentMonths", commitment);
        let terms_and_conditions = f.optional("termsAndConditions", terms_text);
        let notes = f.optional("notes", notes);
        f.finish()?;
        let missing = || ValidationError::single("body", "is incomplete");
        Ok(Self {
            prospect_email: prospect_email.ok_or_else(missing)?,
            prospect_name: prospect_name.ok_or_else(missing)?,
            prospect_company,
            customer_id,
            sales_rep,
            terms: QuoteTerms {
                base_tier: base_tier.ok_or_else(missing)?,
                billing_period: billing_period.ok_or_else(missing)?,
                customizations,
                discounts,
                valid_until,
                commitment_months,
                terms_and_conditions,
                notes,
            },
        })
    }
}

impl QuotePatch {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut allowed = vec!["prospectEmail", "prospectName", "prospectCompany", "version"];
        allowed.extend(TERM_FIELDS);
        let mut f = Fields::new(body, &allowed);
        let version = f.required("version", fields::version);
        let patch = Self {
            prospect_email: f.optional("prospectEmail", fields::email),
            prospect_name: f.optional("prospectName", name),
            prospect_company: f.nullable("prospectCompany", name),
            base_tier: f.optional("baseTier", parse::slug),
            billing_period: f.optional("billingPeriod", BillingPeriod::parse),
            customizations: read_customizations(&mut f),
            discounts: if f.has("discounts") { read_discounts(&mut f) } else { None },
            valid_until: f.optional("validUntil", fields::date),
            commitment_months: f.nullable("commitmentMonths", commitment),
            terms_and_conditions: f.optional("termsAndConditions", terms_text),
            notes: f.nullable("notes", notes),
            version: version.unwrap_or_default(),
        };
        f.finish()?;
        Ok(patch)
    }
}

/// The pricing of a quote's terms against its tier.
#[derive(Debug, Clone, PartialEq)]
pub struct Priced {
    pub base_price: i64,
    pub customizations: Customizations,
    pub discounts: Vec<QuoteDiscount>,
    pub subtotal: i64,
    pub total_discount: i64,
    pub final_price: i64,
    pub price_per_month: i64,
    pub total_discount_percent: f64,
}

/// Prices `terms` on `tier`: base + add-ons + custom features = subtotal; the
/// discounts in order through the pricing engine. Every amount is whole cents.
pub fn price_quote(
    tier: &Tier,
    period: BillingPeriod,
    request: &CustomizationRequest,
    discounts: &[DiscountRequest],
    list: PriceList,
) -> Priced {
    let base_price = tier.prices.for_period(period);
    let line = |quantity: Option<u32>, monthly: i64| {
        quantity.filter(|q| *q > 0).map(|q| {
            let unit = PriceList::per_period(monthly, period);
            AddOnLine { quantity: q, price_per_unit: unit, total: unit * i64::from(q) }
        })
    };
    let customizations = Customizations {
        additional_listings: line(request.additional_listings, list.listing_monthly),
        additional_images: line(request.additional_images, list.image_monthly),
        custom_features: request.custom_features.clone(),
        custom_limits: request.custom_limits.clone(),
    };
    let subtotal = base_price
        + customizations.additional_listings.map_or(0, |l| l.total)
        + customizations.additional_images.map_or(0, |l| l.total)
        + customizations.custom_features.iter().map(|f| f.price).sum::<i64>();

    // Each line's amount is what the engine takes off at its step.
    let mut lines = Vec::with_capacity(discounts.len());
    let mut engine: Vec<Discount> = Vec::with_capacity(discounts.len());
    let mut taken = 0;
    for d in discounts {
        let adjustment = match d.terms {
            DiscountTerms::Percentage(p) => Adjustment::PercentOff(p),
            DiscountTerms::FixedAmount(c) => Adjustment::AmountOff(c),
        };
        engine.push(Discount { adjustment, duration: Duration::Forever });
        let so_far = pricing::price(subtotal, period, &engine).discount_amount;
        lines.push(QuoteDiscount {
            terms: d.terms,
            reason: d.reason.clone(),
            amount: so_far - taken,
            approval_required: false,
            approved_by: None,
            approved_at: None,
        });
        taken = so_far;
    }
    let total = pricing::price(subtotal, period, &engine);
    let price_per_month = pricing::first_month_share(total.final_price, period);
    let total_discount_percent = if subtotal > 0 {
        // Basis points half up, shown as a percent number.
        let bp = (i128::from(total.discount_amount) * 10_000 * 2 + i128::from(subtotal)) / (2 * i128::from(subtotal));
        bp as f64 / 100.0
    } else {
        0.0
    };
    Priced {
        base_price,
        customizations,
        discounts: lines,
        subtotal,
        total_discount: total.discount_amount,
        final_price: total.final_price,
        price_per_month,
        total_discount_percent,
    }
}

fn check_valid_until(valid_until: NaiveDate, today: NaiveDate) -> Result<(), ValidationError> {
    if valid_until < today {
        return Err(ValidationError::single("validUntil", "must be today or later"));
    }
    if (valid_until - today).num_days() > MAX_VALIDITY_DAYS {
        return Err(ValidationError::single("validUntil", format!("must be at most {MAX_VALIDITY_DAYS} days ahead")));
    }
    Ok(())
}

/// `validUntil` is inclusive: the quote lapses at the end of that day (UTC).
pub fn expires_at(valid_until: NaiveDate) -> String {
    format!("{valid_until}T23:59:59Z")
}

/// The quote's tier must be active and priced; a free tier is not quoted.
fn quotable(tier: &Tier) -> Result<(), ValidationError> {
    if tier.status != super::tier::TierStatus::Active {
        return Err(ValidationError::single("baseTier", "no active tier with this id"));
    }
    if !super::tier::is_paid(tier) {
        return Err(ValidationError::single("baseTier", "a free tier has nothing to quote"));
    }
    Ok(())
}

/// What `tier` allows of `metric` on its own, as the usage plan reads it:
/// `Some(None)` unlimited, `Some(Some(n))` a limit of `n`, `None` not part of the
/// tier at all (usage of it is refused).
fn tier_allowance(tier: &Tier, metric: &str) -> Option<Option<u64>> {
    if let Some(limit) = tier.limits.get(metric) {
        return Some(*limit);
    }
    if let Some(f) = tier.features.iter().find(|f| f.enabled && f.feature_id == metric && f.usage_limit.is_some()) {
        return Some(f.usage_limit);
    }
    super::usage::METRICS.contains(&metric).then_some(Some(0))
}

/// The metrics whose custom limit gives more than `tier` does: above its limit, or
/// a metric the tier does not include (a custom limit would grant it). A custom
/// limit at or below the tier's, or on an unlimited metric, grants nothing.
pub fn limits_above_tier(tier: &Tier, limits: &BTreeMap<String, u64>) -> Vec<String> {
    limits
        .iter()
        .filter(|(metric, value)| match tier_allowance(tier, metric) {
            Some(None) => false,
            Some(Some(limit)) => **value > limit,
            None => true,
        })
        .map(|(metric, _)| metric.clone())
        .collect()
}

/// Sets the priced fields and the approval requirement: a discount above the
/// pricer's cap, or custom limits above the tier's from a pricer who may not grant
/// them (only callers with `approve_custom_pricing` may).
fn apply_pricing(q: &mut Quote, tier: &Tier, terms: &PricedTerms<'_>, actor: &Actor, cap: Option<Percent>) {
    let priced = price_quote(tier, q.billing_period, terms.customizations, terms.discounts, terms.list);
    let over = exceeds(cap, priced.total_discount, priced.subtotal);
    let limits_over = !actor.can(Permission::ApproveCustomPricing)
        && !limits_above_tier(tier, &priced.customizations.custom_limits).is_empty();
    q.base_tier = tier.tier_id.clone();
    q.base_tier_name = tier.name.clone();
    q.price_version = tier.price_version;
    q.currency = tier.currency.clone();
    q.base_price = priced.base_price;
    q.customizations = priced.customizations;
    q.discounts = priced.discounts.into_iter().map(|d| QuoteDiscount { approval_required: over, ..d }).collect();
    q.subtotal = priced.subtotal;
    q.total_discount = priced.total_discount;
    q.final_price = priced.final_price;
    q.price_per_month = priced.price_per_month;
    q.total_discount_percent = priced.total_discount_percent;
    q.approval_required = over || limits_over;
    q.priced_by = actor.id.clone();
    q.approval = None;
    q.approval_requested_at = None;
}

struct PricedTerms<'a> {
    customizations: &'a CustomizationRequest,
    discounts: &'a [DiscountRequest],
    list: PriceList,
}

/// The identifiers a new quote gets from the server.
pub struct QuoteIds {
    pub quote_id: String,
    pub quote_number: String,
}

/// `Q-YYYY-NNN`: the year's running number, at least three digits.
pub fn quote_number(year: i32, n: u64) -> String {
    format!("Q-{year}-{n:03}")
}

pub fn new_quote_id(ulid: &str) -> String {
    format!("quo_{}", ulid.to_ascii_lowercase())
}

pub fn is_quote_id(s: &str) -> bool {
    s.strip_prefix("quo_")
        .is_some_and(|rest| rest.len() == 26 && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

impl NewQuote {
    /// The quote as created: `pending_approval` when the discount is above the
    /// caller's cap, `draft` otherwise.
    pub fn into_quote(
        self,
        ids: QuoteIds,
        tier: &Tier,
        actor: &Actor,
        authority: &DiscountAuthority,
        list: PriceList,
    ) -> Result<Quote, QuoteError> {
        quotable(tier)?;
        let valid_until = self.terms.valid_until.unwrap_or(actor.today + chrono::Days::new(DEFAULT_VALIDITY_DAYS));
        check_valid_until(valid_until, actor.today)?;
        let sales_rep = match self.sales_rep {
            Some(rep) if rep != actor.id && !actor.can(Permission::ApproveCustomPricing) => {
                return Err(ValidationError::single(
                    "salesRep",
                    "only a sales manager may write a quote for another rep",
                )
                .into())
            }
            Some(rep) => rep,
            None => actor.id.clone(),
        };
        let mut q = Quote {
            quote_id: ids.quote_id,
            quote_number: ids.quote_number,
            customer_id: self.customer_id,
            prospect_email: self.prospect_email,
            prospect_name: self.prospect_name,
            prospect_company: self.prospect_company,
            sales_rep_email: if sales_rep == actor.id { actor.email.clone() } else { None },
            sales_rep,
            created_by: actor.id.clone(),
            created_at: actor.at.clone(),
            base_tier: String::new(),
            base_tier_name: String::new(),
            billing_period: self.terms.billing_period,
            base_price: 0,
            price_version: 0,
            currency: String::new(),
            customizations: Customizations::default(),
            discounts: Vec::new(),
            subtotal: 0,
            total_discount: 0,
            final_price: 0,
            price_per_month: 0,
            total_discount_percent: 0.0,
            valid_until,
            commitment_months: self.terms.commitment_months,
            terms_and_conditions: self.terms.terms_and_conditions.unwrap_or_else(|| DEFAULT_TERMS.to_string()),
            notes: self.terms.notes,
            status: QuoteStatus::Draft,
            approval_required: false,
            priced_by: actor.id.clone(),
            approval_requested_at: None,
            approval: None,
            sent_at: None,
            accepted_at: None,
            rejected_at: None,
            rejection_reason: None,
            cancelled_at: None,
            cancellation_reason: None,
            expired_at: None,
            expires_at: expires_at(valid_until),
            view_count: 0,
            last_viewed_at: None,
            token_hash: None,
            conversion: None,
            version: 1,
            updated_at: actor.at.clone(),
            updated_by: actor.id.clone(),
        };
        let terms = PricedTerms { customizations: &self.terms.customizations, discounts: &self.terms.discounts, list };
        apply_pricing(&mut q, tier, &terms, actor, authority.cap_for(&actor.roles));
        if q.approval_required {
            q.status = QuoteStatus::PendingApproval;
            q.approval_requested_at = Some(actor.at.clone());
        }
        Ok(q)
    }
}

impl Quote {
    fn illegal(&self, action: &'static str) -> QuoteError {
        QuoteError::IllegalTransition { from: self.status.as_str(), action }
    }

    fn touched(mut self, actor: &Actor) -> Self {
        self.version += 1;
        self.updated_at = actor.at.clone();
        self.updated_by = actor.id.clone();
        self
    }

    fn check_version(&self, expected: u64) -> Result<(), QuoteError> {
        if expected != self.version {
            return Err(QuoteError::VersionConflict { current: Some(self.version) });
        }
        Ok(())
    }

    /// The tier the edited quote is priced on (`None`: unchanged).
    pub fn patched_tier<'a>(&'a self, patch: &'a QuotePatch) -> &'a str {
        patch.base_tier.as_deref().unwrap_or(&self.base_tier)
    }

    /// An edit: draft or pending only. Repriced against `tier` at its current
    /// version; any approval is cleared, so the quote returns to draft and needs
    /// approval again if it is still above the editor's cap.
    pub fn edit(
        &self,
        patch: &QuotePatch,
        tier: &Tier,
        actor: &Actor,
        authority: &DiscountAuthority,
        list: PriceList,
    ) -> Result<Self, QuoteError> {
        self.check_version(patch.version)?;
        if !matches!(self.status, QuoteStatus::Draft | QuoteStatus::PendingApproval) {
            return Err(self.illegal("edited"));
        }
        quotable(tier)?;
        let mut q = self.clone();
        if let Some(e) = &patch.prospect_email {
            q.prospect_email = e.clone();
        }
        if let Some(n) = &patch.prospect_name {
            q.prospect_name = n.clone();
        }
        if let Some(c) = &patch.prospect_company {
            q.prospect_company = c.clone();
        }
        if let Some(p) = patch.billing_period {
            q.billing_period = p;
        }
        if let Some(v) = patch.valid_until {
            check_valid_until(v, actor.today)?;
            q.valid_until = v;
            q.expires_at = expires_at(v);
        }
        if let Some(c) = patch.commitment_months {
            q.commitment_months = c;
        }
        if let Some(t) = &patch.terms_and_conditions {
            q.terms_and_conditions = t.clone();
        }
        if let Some(n) = &patch.notes {
            q.notes = n.clone();
        }
        let current = self.requested_customizations();
        let customizations = patch.customizations.as_ref().unwrap_or(&current);
        let discounts = match &patch.discounts {
            Some(d) => d.clone(),
            None => {
                self.discounts.iter().map(|d| DiscountRequest { terms: d.terms, reason: d.reason.clone() }).collect()
            }
        };
        let terms = PricedTerms { customizations, discounts: &discounts, list };
        apply_pricing(&mut q, tier, &terms, actor, authority.cap_for(&actor.roles));
        q.status = QuoteStatus::Draft;
        Ok(q.touched(actor))
    }

    fn requested_customizations(&self) -> CustomizationRequest {
        CustomizationRequest {
            additional_listings: self.customizations.additional_listings.map(|l| l.quantity),
            additional_images: self.customizations.additional_images.map(|l| l.quantity),
            custom_features: self.customizations.custom_features.clone(),
            custom_limits: self.customizations.custom_limits.clone(),
        }
    }

    /// draft → pending_approval, for a quote that needs it.
    pub fn request_approval(&self, actor: &Actor) -> Result<Self, QuoteError> {
        if self.status != QuoteStatus::Draft {
            return Err(self.illegal("sent for approval"));
        }
        if self.may_be_sent() {
            return Err(QuoteError::ApprovalNotRequired);
        }
        let mut q = self.clone();
        q.status = QuoteStatus::PendingApproval;
        q.approval_requested_at = Some(actor.at.clone());
        q.approval = None;
        Ok(q.touched(actor))
    }

    fn decide_checks(&self, actor: &Actor, authority: &DiscountAuthority) -> Result<(), QuoteError> {
        if self.status != QuoteStatus::PendingApproval {
            return Err(self.illegal("decided"));
        }
        if actor.id == self.created_by || actor.id == self.priced_by {
            return Err(QuoteError::SelfApproval);
        }
        let cap = authority.cap_for(&actor.roles);
        if exceeds(cap, self.total_discount, self.subtotal) {
            return Err(QuoteError::AboveApproverAuthority {
                cap: cap.map_or_else(|| "unlimited".into(), |c| format!("{}%", c.as_number())),
            });
        }
        Ok(())
    }

    /// pending_approval → draft, approved (with the approver's note, if any): it
    /// may now be sent as priced.
    pub fn approve(
        &self,
        actor: &Actor,
        authority: &DiscountAuthority,
        reason: Option<String>,
    ) -> Result<Self, QuoteError> {
        self.decide_checks(actor, authority)?;
        let mut q = self.clone();
        q.status = QuoteStatus::Draft;
        q.approval = Some(ApprovalDecision {
            outcome: ApprovalOutcome::Approved,
            by: actor.id.clone(),
            at: actor.at.clone(),
            reason,
        });
        for d in q.discounts.iter_mut().filter(|d| d.approval_required) {
            d.approved_by = Some(actor.id.clone());
            d.approved_at = Some(actor.at.clone());
        }
        Ok(q.touched(actor))
    }

    /// pending_approval → draft, refused: the rep must lower the discount (an
    /// edit) or ask again. A refusal needs no authority over the amount.
    pub fn reject_approval(&self, actor: &Actor, reason: Option<String>) -> Result<Self, QuoteError> {
        if self.status != QuoteStatus::PendingApproval {
            return Err(self.illegal("decided"));
        }
        if actor.id == self.created_by || actor.id == self.priced_by {
            return Err(QuoteError::SelfApproval);
        }
        let mut q = self.clone();
        q.status = QuoteStatus::Draft;
        q.approval = Some(ApprovalDecision {
            outcome: ApprovalOutcome::Rejected,
            by: actor.id.clone(),
            at: actor.at.clone(),
            reason,
        });
        Ok(q.touched(actor))
    }

    /// draft → sent (or sent → sent: a new link, the old one stops working).
    pub fn send(&self, actor: &Actor, token_hash: String) -> Result<Self, QuoteError> {
        if !matches!(self.status, QuoteStatus::Draft | QuoteStatus::Sent) {
            return Err(self.illegal("sent"));
        }
        if !self.may_be_sent() {
            return Err(QuoteError::ApprovalRequired);
        }
        if self.lapsed(actor.today) {
            return Err(QuoteError::Expired(self.valid_until));
        }
        let mut q = self.clone();
        q.status = QuoteStatus::Sent;
        q.sent_at = Some(actor.at.clone());
        q.token_hash = Some(token_hash);
        Ok(q.touched(actor))
    }

    /// Any open quote → cancelled.
    pub fn cancel(&self, actor: &Actor, reason: Option<String>) -> Result<Self, QuoteError> {
        if !self.status.is_open() {
            return Err(self.illegal("cancelled"));
        }
        let mut q = self.clone();
        q.status = QuoteStatus::Cancelled;
        q.cancelled_at = Some(actor.at.clone());
        q.cancellation_reason = reason;
        Ok(q.touched(actor))
    }

    /// The expiry pass: an open quote past `validUntil` → expired. `None` when not
    /// due, so the cron can call it blindly.
    pub fn expire(&self, today: NaiveDate, at: &str) -> Option<Self> {
        if !self.status.is_open() || !self.lapsed(today) {
            return None;
        }
        let mut q = self.clone();
        q.status = QuoteStatus::Expired;
        q.expired_at = Some(at.to_string());
        q.version += 1;
        q.updated_at = at.to_string();
        q.updated_by = "system:expiry-cron".into();
        Some(q)
    }

    /// Checks that the prospect may accept now.
    pub fn check_acceptable(&self, today: NaiveDate) -> Result<(), QuoteError> {
        if self.status == QuoteStatus::Sent && self.lapsed(today) {
            return Err(QuoteError::Expired(self.valid_until));
        }
        if self.status != QuoteStatus::Sent {
            return Err(self.illegal("accepted"));
        }
        Ok(())
    }

    /// sent → accepted, with what it converted into.
    pub fn accept(&self, at: &str, today: NaiveDate, conversion: Conversion) -> Result<Self, QuoteError> {
        self.check_acceptable(today)?;
        let mut q = self.clone();
        q.status = QuoteStatus::Accepted;
        q.accepted_at = Some(at.to_string());
        if q.customer_id.is_none() {
            q.customer_id = Some(conversion.partner_id.clone());
        }
        q.conversion = Some(conversion);
        q.version += 1;
        q.updated_at = at.to_string();
        q.updated_by = "prospect".into();
        Ok(q)
    }

    /// sent → rejected by the prospect.
    pub fn reject_by_prospect(&self, at: &str, today: NaiveDate, reason: String) -> Result<Self, QuoteError> {
        if self.status == QuoteStatus::Sent && self.lapsed(today) {
            return Err(QuoteError::Expired(self.valid_until));
        }
        if self.status != QuoteStatus::Sent {
            return Err(self.illegal("rejected"));
        }
        let mut q = self.clone();
        q.status = QuoteStatus::Rejected;
        q.rejected_at = Some(at.to_string());
        q.rejection_reason = Some(reason);
        q.version += 1;
        q.updated_at = at.to_string();
        q.updated_by = "prospect".into();
        Ok(q)
    }
}

/// `{acceptedBy?}` for accept; `{reason}` for the prospect's reject.
pub fn parse_acceptance(body: &Value) -> Result<Option<String>, ValidationError> {
    let mut f = Fields::new(body, &["acceptedBy"]);
    let by = f.optional("acceptedBy", name);
    f.finish()?;
    Ok(by)
}

pub fn parse_prospect_rejection(body: &Value) -> Result<String, ValidationError> {
    let mut f = Fields::new(body, &["reason"]);
    let reason = f.required("reason", |v| parse::text(v, 1, 1_000));
    f.finish()?;
    reason.ok_or_else(|| ValidationError::single("reason", "is required"))
}

/// `{reason?}` for the staff reject and cancel.
pub fn parse_optional_reason(body: &Value) -> Result<Option<String>, ValidationError> {
    let mut f = Fields::new(body, &["reason"]);
    let reason = f.optional("reason", |v| parse::text(v, 1, 1_000));
    f.finish()?;
    Ok(reason)
}

impl super::audit::Audited for Quote {
    const ENTITY_TYPE: &'static str = "quote";
    fn entity_id(&self) -> &str {
        &self.quote_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::defaults::default_tiers;
    use serde_json::json;

    fn gold() -> Tier {
        let change = crate::domain::actor::Actor::fixture("t", "2026-01-01T00:00:00.000Z");
        default_tiers().into_iter().map(|n| n.into_tier(&change)).find(|t| t.tier_id == "gold").unwrap()
    }

    fn actor(id: &str, role: Role) -> Actor {
        Actor { roles: vec![role], ..Actor::fixture(id, "2026-11-30T10:00:00Z") }
    }

    fn new_quote(discounts: Value) -> NewQuote {
        NewQuote::parse(&json!({
            "prospectEmail": "buyer@example.com",
            "prospectName": "Ada Buyer",
            "baseTier": "gold",
            "billingPeriod": "monthly",
            "discounts": discounts,
            "validUntil": "2026-12-30"
        }))
        .unwrap()
    }

    fn ids() -> QuoteIds {
        QuoteIds { quote_id: "quo_01".into(), quote_number: quote_number(2026, 7) }
    }

    fn create(discounts: Value, who: &Actor) -> Quote {
        new_quote(discounts)
            .into_quote(ids(), &gold(), who, &DiscountAuthority::default(), PriceList::default())
            .unwrap()
    }

    #[test]
    fn quote_numbers_are_zero_padded_and_grow_past_999() {
        assert_eq!(quote_number(2026, 1), "Q-2026-001");
        assert_eq!(quote_number(2026, 42), "Q-2026-042");
        assert_eq!(quote_number(2026, 1000), "Q-2026-1000");
    }

    #[test]
    fn customizations_add_up_and_discounts_compound() {
        let request = CustomizationRequest {
            additional_listings: Some(5),
            additional_images: Some(10),
            custom_features: vec![CustomFeature { feature_id: "sso".into(), name: "SSO".into(), price: 25_000 }],
            custom_limits: BTreeMap::new(),
        };
        let pct = |bp| DiscountTerms::Percentage(Percent::from_basis_points(bp).unwrap());
        let discounts = vec![
            DiscountRequest { terms: pct(1000), reason: "volume".into() },
            DiscountRequest { terms: DiscountTerms::FixedAmount(10_000), reason: "loyalty".into() },
        ];
        let p = price_quote(&gold(), BillingPeriod::Monthly, &request, &discounts, PriceList::default());
        // 360,000 + 5×1,000 + 10×200 + 25,000 = 392,000
        assert_eq!(p.subtotal, 392_000);
        assert_eq!(p.discounts[0].amount, 39_200);
        assert_eq!(p.discounts[1].amount, 10_000);
        assert_eq!((p.total_discount, p.final_price), (49_200, 342_800));
        assert_eq!(p.price_per_month, 342_800);
        // 49,200 / 392,000 = 12.551% → 12.55
        assert!((p.total_discount_percent - 12.55).abs() < 1e-9);

        // Yearly: add-ons are twelve months; the per-month figure is a twelfth, half up.
        let y = price_quote(&gold(), BillingPeriod::Yearly, &request, &[], PriceList::default());
        assert_eq!(y.customizations.additional_listings.unwrap().price_per_unit, 12_000);
        assert_eq!(y.subtotal, gold().prices.yearly + 60_000 + 24_000 + 25_000);
        assert_eq!(y.price_per_month, (y.final_price + 6) / 12);
    }

    #[test]
    fn authority_caps_by_role_and_boundary_is_inclusive() {
        let rep = actor("rep-1", Role::SalesRep);
        assert_eq!(
            create(json!([{"type": "percentage", "value": 15, "reason": "r"}]), &rep).status,
            QuoteStatus::Draft
        );
        let over = create(json!([{"type": "percentage", "value": 15.01, "reason": "r"}]), &rep);
        assert_eq!(over.status, QuoteStatus::PendingApproval);
        assert!(over.approval_required && over.discounts[0].approval_required);
        let manager = actor("mgr-1", Role::SalesManager);
        assert_eq!(
            create(json!([{"type": "percentage", "value": 30, "reason": "r"}]), &manager).status,
            QuoteStatus::Draft
        );
        let admin = actor("adm-1", Role::Admin);
        assert_eq!(
            create(json!([{"type": "percentage", "value": 90, "reason": "r"}]), &admin).status,
            QuoteStatus::Draft
        );
        // Two 10% lines are 19% in total: above a rep's 15%.
        let two = create(
            json!([{"type": "percentage", "value": 10, "reason": "a"}, {"type": "percentage", "value": 10, "reason": "b"}]),
            &rep,
        );
        assert_eq!((two.total_discount, two.status), (68_400, QuoteStatus::PendingApproval));
        let custom = DiscountAuthority::parse("sales_rep:20, admin:50").unwrap();
        assert_eq!(custom.cap_for(&[Role::SalesRep]), Percent::from_basis_points(2_000));
        assert_eq!(custom.cap_for(&[Role::SalesRep, Role::SalesManager]), Percent::from_basis_points(3_000));
        assert_eq!(custom.cap_for(&[Role::Admin]), Percent::from_basis_points(5_000));
        assert!(DiscountAuthority::parse("partner:10").is_err());
        assert!(DiscountAuthority::parse("sales_rep:abc").is_err());
        assert!(!exceeds(None, 10, 10) && !exceeds(Percent::from_basis_points(0), 5, 0));
    }

    #[test]
    fn approval_workflow_and_self_approval() {
        let rep = actor("rep-1", Role::SalesRep);
        let q = create(json!([{"type": "percentage", "value": 25, "reason": "strategic"}]), &rep);
        let auth = DiscountAuthority::default();
        assert!(matches!(q.send(&rep, "h".into()), Err(QuoteError::IllegalTransition { .. })));
        let manager = actor("mgr-1", Role::SalesManager);
        let approved = q.approve(&manager, &auth, None).unwrap();
        assert_eq!((approved.status, approved.version), (QuoteStatus::Draft, 2));
        assert_eq!(approved.discounts[0].approved_by.as_deref(), Some("mgr-1"));
        assert!(approved.send(&rep, "h".into()).is_ok());
        // The author cannot approve their own quote, whatever their role.
        let own = create(json!([{"type": "percentage", "value": 40, "reason": "x"}]), &manager);
        assert!(matches!(own.approve(&manager, &auth, None), Err(QuoteError::SelfApproval)));
        // 40% is above a manager's own cap: only an admin may approve it.
        let other = actor("mgr-2", Role::SalesManager);
        assert!(matches!(own.approve(&other, &auth, None), Err(QuoteError::AboveApproverAuthority { .. })));
        assert!(own.approve(&actor("adm-1", Role::Admin), &auth, None).is_ok());
        // Refused: back to draft, still not sendable; asking again works.
        let refused = q.reject_approval(&manager, Some("too deep".into())).unwrap();
        assert_eq!(refused.status, QuoteStatus::Draft);
        assert!(matches!(refused.send(&rep, "h".into()), Err(QuoteError::ApprovalRequired)));
        assert_eq!(refused.request_approval(&rep).unwrap().status, QuoteStatus::PendingApproval);
    }

    #[test]
    fn editing_an_approved_quote_needs_approval_again() {
        let rep = actor("rep-1", Role::SalesRep);
        let auth = DiscountAuthority::default();
        let q = create(json!([{"type": "percentage", "value": 25, "reason": "strategic"}]), &rep);
        let approved = q.approve(&actor("mgr-1", Role::SalesManager), &auth, None).unwrap();
        let patch = QuotePatch::parse(&json!({"version": approved.version, "notes": "call Tuesday"})).unwrap();
        let edited = approved.edit(&patch, &gold(), &rep, &auth, PriceList::default()).unwrap();
        assert_eq!(edited.status, QuoteStatus::Draft);
        assert!(edited.approval.is_none() && !edited.may_be_sent());
        let stale = QuotePatch::parse(&json!({"version": 1, "notes": "x"})).unwrap();
        assert!(matches!(
            approved.edit(&stale, &gold(), &rep, &auth, PriceList::default()),
            Err(QuoteError::VersionConflict { current: Some(2) })
        ));
        // Lowering the discount within authority makes it sendable without approval.
        let lower = QuotePatch::parse(&json!({
            "version": edited.version,
            "discounts": [{"type": "percentage", "value": 10, "reason": "r"}]
        }))
        .unwrap();
        assert!(edited.edit(&lower, &gold(), &rep, &auth, PriceList::default()).unwrap().may_be_sent());
    }

    #[test]
    fn custom_limits_above_the_tier_need_an_approver() {
        let tier = gold();
        let (metric, limit) = tier.limits.iter().find_map(|(m, l)| l.map(|l| (m.clone(), l))).unwrap();
        let quote = |limits: Value, who: &Actor| {
            NewQuote::parse(&json!({
                "prospectEmail": "buyer@example.com",
                "prospectName": "Ada Buyer",
                "baseTier": "gold",
                "billingPeriod": "monthly",
                "customizations": {"customLimits": limits},
                "validUntil": "2026-12-30"
            }))
            .unwrap()
            .into_quote(ids(), &tier, who, &DiscountAuthority::default(), PriceList::default())
            .unwrap()
        };
        let rep = actor("rep-1", Role::SalesRep);
        let at_limit = quote(json!({ metric.clone(): limit }), &rep);
        assert_eq!((at_limit.status, at_limit.approval_required), (QuoteStatus::Draft, false));
        let above = quote(json!({ metric.clone(): limit + 1 }), &rep);
        assert_eq!((above.status, above.approval_required), (QuoteStatus::PendingApproval, true));
        assert!(!above.may_be_sent());
        // A metric the tier does not include would be granted by the quote.
        let new_metric = quote(json!({"customMetric": 1}), &rep);
        assert_eq!(new_metric.status, QuoteStatus::PendingApproval);
        assert_eq!(limits_above_tier(&tier, &new_metric.customizations.custom_limits), vec!["customMetric"]);
        // Whoever may approve custom pricing may grant them.
        for role in [Role::SalesManager, Role::Admin] {
            assert_eq!(
                quote(json!({ metric.clone(): 1_000_000_000_000u64 }), &actor("m", role)).status,
                QuoteStatus::Draft
            );
        }
        let approved = above.approve(&actor("mgr-1", Role::SalesManager), &DiscountAuthority::default(), None).unwrap();
        assert!(approved.may_be_sent());
    }

    #[test]
    fn acceptance_and_expiry_rules() {
        let rep = actor("rep-1", Role::SalesRep);
        let sent = create(json!([]), &rep).send(&rep, "h".into()).unwrap();
        let last_day = NaiveDate::from_ymd_opt(2026, 12, 30).unwrap();
        assert!(sent.check_acceptable(last_day).is_ok());
        let after = last_day.succ_opt().unwrap();
        assert!(matches!(sent.check_acceptable(after), Err(QuoteError::Expired(_))));
        assert!(sent.expire(last_day, "t").is_none());
        let expired = sent.expire(after, "t").unwrap();
        assert_eq!(expired.status, QuoteStatus::Expired);
        assert!(expired.expire(after, "t").is_none());
        let conversion = Conversion {
            partner_id: "prt_x".into(),
            transition_id: None,
            partner_created: true,
            accepted_by_name: None,
            stripe_subscription_id: None,
        };
        let accepted = sent.accept("t", last_day, conversion.clone()).unwrap();
        assert_eq!((accepted.status, accepted.customer_id.as_deref()), (QuoteStatus::Accepted, Some("prt_x")));
        assert!(matches!(accepted.accept("t", last_day, conversion), Err(QuoteError::IllegalTransition { .. })));
        assert!(accepted.cancel(&rep, None).is_err());
    }

    #[test]
    fn bad_input_names_each_field() {
        let err = NewQuote::parse(&json!({
            "prospectEmail": "nope",
            "baseTier": "Gold!",
            "billingPeriod": "weekly",
            "discounts": [{"type": "percentage", "value": 120, "reason": ""}, {"type": "bogus", "value": 1, "reason": "r"}],
            "customizations": {"additionalListings": {"quantity": -1}, "customLimits": {"leads": "many"}},
            "status": "accepted",
            "finalPrice": 1
        }))
        .unwrap_err();
        for field in [
            "prospectEmail",
            "prospectName",
            "baseTier",
            "billingPeriod",
            "discounts[0].value",
            "discounts[0].reason",
            "discounts[1].type",
            "customizations.additionalListings.quantity",
            "customizations.customLimits.leads",
            "status",
            "finalPrice",
        ] {
            assert!(err.fields.contains_key(field), "{field} not named: {:?}", err.fields);
        }
        let rep = actor("rep-1", Role::SalesRep);
        let far = NewQuote::parse(&json!({
            "prospectEmail": "a@b.example", "prospectName": "A", "baseTier": "gold",
            "billingPeriod": "monthly", "validUntil": "2027-12-01"
        }))
        .unwrap();
        let err = far.into_quote(ids(), &gold(), &rep, &DiscountAuthority::default(), PriceList::default());
        assert!(matches!(err, Err(QuoteError::Invalid(v)) if v.fields.contains_key("validUntil")));
    }

    #[test]
    fn stored_form_keeps_the_token_hash_and_the_api_form_does_not() {
        let rep = actor("rep-1", Role::SalesRep);
        let sent = create(json!([{"type": "fixed_amount", "value": 5_000, "reason": "r"}]), &rep)
            .send(&rep, "abc".into())
            .unwrap();
        let api = serde_json::to_value(&sent).unwrap();
        assert!(api.get("tokenHash").is_none());
        assert_eq!(api["discounts"][0]["type"], "fixed_amount");
        assert_eq!(api["discounts"][0]["value"], 5_000);
        let stored = serde_json::to_value(sent.stored()).unwrap();
        assert_eq!(stored["tokenHash"], "abc");
        let back: Quote = serde_json::from_value(stored).unwrap();
        assert_eq!(back.token_hash.as_deref(), Some("abc"));
        assert_eq!(back.discounts, sent.discounts);
    }
}
