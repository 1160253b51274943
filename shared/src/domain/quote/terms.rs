//! The quote and its wire shapes: statuses, discounts, customizations, the
//! acceptance hand-off and the prospect's view.

use crate::domain::money::{BillingPeriod, Percent};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

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
        crate::domain::wire::one_of(&Self::ALL, v)
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
