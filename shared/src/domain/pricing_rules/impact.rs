//! Seed 004's impact preview of a list-price change: who it touches, what it does
//! to MRR, who keeps the old price and until when, and whether it needs an
//! admin's approval (`CustomerImpactTooHigh`). Pure: the handler reads the tier's
//! live statistics (one item), so the preview costs the same at any size.

use super::{check_price_change, ListPrices, PricingConfig, PricingRuleError};
use crate::domain::money::{monthly_value, BillingPeriod};
use chrono::{Months, NaiveDate};
use serde::Serialize;

/// A tier's paying subscribers now, as its live statistics count them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Subscribers {
    pub monthly: i64,
    pub yearly: i64,
    pub mrr: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PricePair {
    pub monthly: i64,
    pub yearly: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImpactLimits {
    pub max_affected_customers: Option<u32>,
    pub max_revenue_impact: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceImpact {
    pub tier_id: String,
    pub current: PricePair,
    pub proposed: PricePair,
    /// Paying subscribers of the tier: every one keeps its price version for now.
    pub affected_customers: i64,
    pub mrr_before: i64,
    /// MRR if every paying subscriber were on the proposed prices.
    pub mrr_after: i64,
    /// `mrrAfter − mrrBefore`, cents per month.
    pub revenue_impact: i64,
    pub grandfathered_customers: i64,
    /// The day their grandfathering ends (`grandfatherMonths` after today);
    /// `None`: until a price migration moves them.
    pub grandfathered_until: Option<NaiveDate>,
    /// Which approval limits it is over (`maxAffectedCustomers`, `maxRevenueImpact`).
    pub exceeds: Vec<&'static str>,
    pub requires_approval: bool,
    pub limits: ImpactLimits,
}

/// The impact of moving `before`'s list prices to `after`'s; a change breaking the
/// tier's constraints is refused as it would be when applied.
pub fn impact(
    config: &PricingConfig,
    before: &ListPrices<'_>,
    after: &ListPrices<'_>,
    subscribers: Subscribers,
    today: NaiveDate,
) -> Result<PriceImpact, PricingRuleError> {
    config.check_list_change(before, after)?;
    for (period, price) in [(BillingPeriod::Monthly, after.monthly), (BillingPeriod::Yearly, after.yearly)] {
        let bounds = config.constraints_for(after.tier_id, after.segment).for_period(period);
        check_price_change(price, price, &bounds).map_err(|violation| PricingRuleError::ConstraintViolation {
            violation,
            tier_id: after.tier_id.to_string(),
            period,
        })?;
    }
    let constraints = config.constraints_for(after.tier_id, after.segment);
    let affected = subscribers.monthly + subscribers.yearly;
    let mrr_after = subscribers.monthly * monthly_value(after.monthly, BillingPeriod::Monthly)
        + subscribers.yearly * monthly_value(after.yearly, BillingPeriod::Yearly);
    let revenue_impact = mrr_after - subscribers.mrr;
    let mut exceeds = Vec::new();
    if constraints.max_affected_customers.is_some_and(|m| affected > i64::from(m)) {
        exceeds.push("maxAffectedCustomers");
    }
    if constraints.max_revenue_impact.is_some_and(|m| revenue_impact.abs() > m) {
        exceeds.push("maxRevenueImpact");
    }
    Ok(PriceImpact {
        tier_id: after.tier_id.to_string(),
        current: PricePair { monthly: before.monthly, yearly: before.yearly },
        proposed: PricePair { monthly: after.monthly, yearly: after.yearly },
        affected_customers: affected,
        mrr_before: subscribers.mrr,
        mrr_after,
        revenue_impact,
        grandfathered_customers: affected,
        grandfathered_until: constraints.grandfather_months.and_then(|m| today.checked_add_months(Months::new(m))),
        requires_approval: !exceeds.is_empty(),
        exceeds,
        limits: ImpactLimits {
            max_affected_customers: constraints.max_affected_customers,
            max_revenue_impact: constraints.max_revenue_impact,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::pricing_rules::{ConstraintRecord, ConstraintScope, PricingConstraints};

    #[test]
    fn the_preview_counts_mrr_grandfathering_and_the_approval_limits() {
        let before = ListPrices { tier_id: "gold", segment: "essential", monthly: 360_000, yearly: 4_320_000 };
        let after = ListPrices { monthly: 396_000, yearly: 4_752_000, ..before };
        let subscribers = Subscribers { monthly: 3, yearly: 2, mrr: 3 * 360_000 + 2 * 360_000 };
        let today = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        let open = impact(&PricingConfig::default(), &before, &after, subscribers, today).unwrap();
        assert_eq!((open.affected_customers, open.mrr_after, open.revenue_impact), (5, 5 * 396_000, 5 * 36_000));
        assert_eq!((open.requires_approval, open.grandfathered_until), (false, None));

        let limits = PricingConstraints {
            grandfather_months: Some(6),
            max_affected_customers: Some(4),
            max_revenue_impact: Some(180_000),
            ..Default::default()
        };
        let config = PricingConfig {
            rules: vec![],
            competitors: vec![],
            constraints: vec![ConstraintRecord {
                scope: ConstraintScope::Segment,
                scope_id: "essential".into(),
                constraints: limits,
                version: 1,
                updated_at: String::new(),
                updated_by: String::new(),
            }],
        };
        let tight = impact(&config, &before, &after, subscribers, today).unwrap();
        assert_eq!(tight.exceeds, vec!["maxAffectedCustomers"], "180,000 exactly is within the MRR limit");
        assert!(tight.requires_approval);
        assert_eq!(tight.grandfathered_until, NaiveDate::from_ymd_opt(2026, 7, 31));
        let four = Subscribers { monthly: 2, yearly: 2, mrr: 4 * 360_000 };
        assert!(!impact(&config, &before, &after, four, today).unwrap().requires_approval);
        let steeper = ListPrices { monthly: 460_000, ..after };
        let over = impact(&config, &before, &steeper, four, today).unwrap();
        assert_eq!(over.exceeds, vec!["maxRevenueImpact"], "{over:?}");
    }
}
