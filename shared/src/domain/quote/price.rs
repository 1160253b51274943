//! A quote priced by the one engine: subtotal, discounts in order, limits.

use super::*;
use crate::domain::actor::Actor;
use crate::domain::money::{BillingPeriod, Percent};
use crate::domain::permissions::Permission;
use crate::domain::pricing::{self, Adjustment, Discount, Duration};
use crate::domain::tier::Tier;
use crate::domain::validation::ValidationError;
use chrono::NaiveDate;
use std::collections::BTreeMap;

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

pub(super) fn check_valid_until(valid_until: NaiveDate, today: NaiveDate) -> Result<(), ValidationError> {
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
pub(super) fn quotable(tier: &Tier) -> Result<(), ValidationError> {
    if tier.status != crate::domain::tier::TierStatus::Active {
        return Err(ValidationError::single("baseTier", "no active tier with this id"));
    }
    if !crate::domain::tier::is_paid(tier) {
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
    crate::domain::usage::METRICS.contains(&metric).then_some(Some(0))
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
pub(super) fn apply_pricing(q: &mut Quote, tier: &Tier, terms: &PricedTerms<'_>, actor: &Actor, cap: Option<Percent>) {
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

pub(super) struct PricedTerms<'a> {
    pub(super) customizations: &'a CustomizationRequest,
    pub(super) discounts: &'a [DiscountRequest],
    pub(super) list: PriceList,
}
