//! A purchase's price with promotions applied, through the one pricing engine.

use super::*;
use crate::domain::money::BillingPeriod;
use crate::domain::pricing::{self, Discount, PriceBreakdown};
use crate::domain::tier::Tier;

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
