//! Reading the catalog as a customer does: comparing tiers side by side and
//! pricing an upgrade (seed 002 "Tier comparison", "upgrade price difference").

use super::money::{BillingPeriod, Percent};
use super::tier::{PublicTier, Tier, TierError, TierStatus};
use super::validation::{parse, ValidationError};
use serde::Serialize;
use serde_json::Value;

pub const MIN_COMPARE: usize = 2;
pub const MAX_COMPARE: usize = 3;

/// `?ids=a,b,c`: 2–3 distinct tier ids, order kept (it is the column order).
pub fn parse_compare_ids(raw: Option<&str>) -> Result<Vec<String>, ValidationError> {
    let raw = raw.ok_or_else(|| ValidationError::single("ids", "is required"))?;
    let mut ids: Vec<String> = Vec::new();
    for part in raw.split(',').map(str::trim) {
        let id = super::tier::tier_id(&Value::String(part.to_string()))
            .map_err(|e| ValidationError::single("ids", format!("'{part}' {e}")))?;
        if ids.contains(&id) {
            return Err(ValidationError::single("ids", format!("'{id}' appears more than once")));
        }
        ids.push(id);
    }
    if !(MIN_COMPARE..=MAX_COMPARE).contains(&ids.len()) {
        return Err(ValidationError::single("ids", "must name 2 or 3 tiers"));
    }
    Ok(ids)
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TierComparison {
    pub tiers: Vec<PublicTier>,
    pub features: Vec<FeatureRow>,
    pub limits: Vec<LimitRow>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FeatureRow {
    pub feature_id: String,
    pub name: String,
    pub by_tier: Vec<FeatureCell>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FeatureCell {
    pub tier_id: String,
    pub included: bool,
    pub usage_limit: Option<u64>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LimitRow {
    pub limit: String,
    pub by_tier: Vec<LimitCell>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LimitCell {
    pub tier_id: String,
    /// `None` = unlimited; a tier that does not name the limit gets 0.
    pub value: Option<u64>,
}

/// The feature × tier matrix. Rows are every feature any compared tier enables, in
/// order of first appearance; a column is a tier in the order asked for.
pub fn compare(tiers: &[Tier]) -> TierComparison {
    let mut features: Vec<FeatureRow> = Vec::new();
    for feature in tiers.iter().flat_map(|t| t.features.iter().filter(|f| f.enabled)) {
        if features.iter().any(|r| r.feature_id == feature.feature_id) {
            continue;
        }
        let by_tier = tiers
            .iter()
            .map(|t| {
                let cell = t.features.iter().find(|f| f.feature_id == feature.feature_id && f.enabled);
                FeatureCell {
                    tier_id: t.tier_id.clone(),
                    included: cell.is_some(),
                    usage_limit: cell.and_then(|f| f.usage_limit),
                }
            })
            .collect();
        features.push(FeatureRow { feature_id: feature.feature_id.clone(), name: feature.name.clone(), by_tier });
    }
    let mut limit_names: Vec<&String> = tiers.iter().flat_map(|t| t.limits.keys()).collect();
    limit_names.sort();
    limit_names.dedup();
    let limits = limit_names
        .into_iter()
        .map(|name| LimitRow {
            limit: name.clone(),
            by_tier: tiers.iter().map(|t| LimitCell { tier_id: t.tier_id.clone(), value: limit_of(t, name) }).collect(),
        })
        .collect();
    TierComparison { tiers: tiers.iter().map(PublicTier::from).collect(), features, limits }
}

/// A tier's value for a limit: the number, `None` for unlimited, 0 if it does not
/// grant the limit at all.
fn limit_of(t: &Tier, name: &str) -> Option<u64> {
    match t.limits.get(name) {
        Some(v) => *v,
        None => Some(0),
    }
}

/// `a` is a strictly larger allowance than `b` (unlimited beats any number).
fn raises(from: Option<u64>, to: Option<u64>) -> bool {
    match (from, to) {
        (Some(a), Some(b)) => b > a,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpgradeRequest {
    pub from_tier_id: String,
    pub to_tier_id: String,
    pub billing_period: BillingPeriod,
    /// The visitor, when a pricing experiment may show them a variant's price.
    pub user_id: Option<String>,
}

impl UpgradeRequest {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = super::validation::Fields::new(body, &["fromTierId", "toTierId", "billingPeriod", "userId"]);
        let from = f.required("fromTierId", parse::slug);
        let to = f.required("toTierId", parse::slug);
        let period = f.required("billingPeriod", BillingPeriod::parse);
        let user_id = f.optional("userId", super::experiment::user_id);
        f.finish()?;
        match (from, to, period) {
            (Some(from_tier_id), Some(to_tier_id), Some(billing_period)) => {
                if from_tier_id == to_tier_id {
                    return Err(ValidationError::single("toTierId", "must differ from fromTierId"));
                }
                Ok(Self { from_tier_id, to_tier_id, billing_period, user_id })
            }
            _ => Err(ValidationError::single("body", "is incomplete")),
        }
    }
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradePrice {
    pub from_tier: PricedTier,
    pub to_tier: PricedTier,
    pub billing_period: BillingPeriod,
    pub currency: String,
    /// Target price minus current price, before any incentive.
    pub price_difference: i64,
    pub incentive: Option<Incentive>,
    /// What the upgrade costs on top of the current plan per period, after the
    /// incentive; never below zero.
    pub upgrade_price: i64,
    pub features_gained: Vec<GainedFeature>,
    pub limits_raised: Vec<RaisedLimit>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PricedTier {
    pub tier_id: String,
    pub name: String,
    pub price: i64,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Incentive {
    pub percent_off: Percent,
    pub discount_amount: i64,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GainedFeature {
    pub feature_id: String,
    pub name: String,
    pub usage_limit: Option<u64>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RaisedLimit {
    pub limit: String,
    pub from: Option<u64>,
    pub to: Option<u64>,
}

/// What `to` has that `from` has not: enabled features `from` lacks (or has
/// disabled), and limits `to` raises (unlimited beats any number).
pub fn gains(from: &Tier, to: &Tier) -> (Vec<GainedFeature>, Vec<RaisedLimit>) {
    let features_gained = to
        .features
        .iter()
        .filter(|f| f.enabled && !from.features.iter().any(|g| g.feature_id == f.feature_id && g.enabled))
        .map(|f| GainedFeature { feature_id: f.feature_id.clone(), name: f.name.clone(), usage_limit: f.usage_limit })
        .collect();
    let limits_raised = to
        .limits
        .keys()
        .filter_map(|name| {
            let (a, b) = (limit_of(from, name), limit_of(to, name));
            raises(a, b).then(|| RaisedLimit { limit: name.clone(), from: a, to: b })
        })
        .collect();
    (features_gained, limits_raised)
}

/// Prices moving from `from` to `to`. `segment_tiers` is the active catalog of the
/// target's segment, used to decide whether `to` is the *next* tier up, the only
/// case the "5% off next tier" incentive covers.
pub fn upgrade_price(
    from: &Tier,
    to: &Tier,
    period: BillingPeriod,
    segment_tiers: &[Tier],
) -> Result<UpgradePrice, TierError> {
    if from.status == TierStatus::Archived || to.status == TierStatus::Archived {
        return Err(TierError::Archived);
    }
    if from.currency != to.currency {
        return Err(TierError::CurrencyMismatch);
    }
    if to.rank() <= from.rank() {
        return Err(TierError::NotAnUpgrade);
    }
    let from_price = from.prices.for_period(period);
    let to_price = to.prices.for_period(period);
    let is_next_tier = from.segment == to.segment
        && !segment_tiers.iter().any(|t| {
            t.status == TierStatus::Active
                && t.segment == to.segment
                && t.tier_id != to.tier_id
                && t.rank() > from.rank()
                && t.rank() < to.rank()
        });
    let incentive = to
        .upgrade_incentive_percent
        .filter(|p| is_next_tier && p.basis_points() > 0)
        .map(|percent_off| Incentive { percent_off, discount_amount: percent_off.of(to_price) });
    let discount = incentive.as_ref().map_or(0, |i| i.discount_amount);
    let (features_gained, limits_raised) = gains(from, to);
    Ok(UpgradePrice {
        from_tier: PricedTier { tier_id: from.tier_id.clone(), name: from.name.clone(), price: from_price },
        to_tier: PricedTier { tier_id: to.tier_id.clone(), name: to.name.clone(), price: to_price },
        billing_period: period,
        currency: to.currency.clone(),
        price_difference: to_price - from_price,
        incentive,
        upgrade_price: (to_price - discount - from_price).max(0),
        features_gained,
        limits_raised,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::defaults::default_tiers;

    fn catalog() -> Vec<Tier> {
        let change = crate::domain::actor::Actor::fixture("t", "2026-11-21T00:00:00.000Z");
        default_tiers().into_iter().map(|t| t.into_tier(&change)).collect()
    }

    fn by_id<'a>(c: &'a [Tier], id: &str) -> &'a Tier {
        c.iter().find(|t| t.tier_id == id).unwrap()
    }

    #[test]
    fn compare_ids_parse() {
        assert_eq!(parse_compare_ids(Some("free, gold")).unwrap(), vec!["free", "gold"]);
        assert!(parse_compare_ids(Some("free")).is_err());
        assert!(parse_compare_ids(Some("a,b,c,d")).is_err());
        assert!(parse_compare_ids(Some("a,a")).is_err());
        assert!(parse_compare_ids(Some("a,B#x")).is_err());
        assert!(parse_compare_ids(None).is_err());
    }

    #[test]
    fn comparison_matrix_has_a_cell_per_tier() {
        let c = catalog();
        let m = compare(&[by_id(&c, "free").clone(), by_id(&c, "platinum").clone()]);
        assert_eq!(m.tiers.len(), 2);
        for row in &m.features {
            assert_eq!(row.by_tier.len(), 2);
        }
        let priority = m.features.iter().find(|r| r.feature_id == "priority_placement").unwrap();
        assert!(!priority.by_tier[0].included);
        assert!(priority.by_tier[1].included);
        let listings = m.limits.iter().find(|r| r.limit == "listings").unwrap();
        assert_eq!(listings.by_tier[0].value, Some(1));
        assert_eq!(listings.by_tier[1].value, None);
    }

    #[test]
    fn next_tier_upgrade_gets_the_incentive() {
        let c = catalog();
        let up = upgrade_price(by_id(&c, "gold"), by_id(&c, "platinum"), BillingPeriod::Monthly, &c).unwrap();
        assert_eq!(up.price_difference, 240_000);
        let incentive = up.incentive.as_ref().unwrap();
        assert_eq!(incentive.discount_amount, 30_000); // 5% of 600,000
        assert_eq!(up.upgrade_price, 210_000);
        assert!(up.features_gained.iter().any(|f| f.feature_id == "priority_placement"));
        assert!(up.limits_raised.iter().any(|l| l.limit == "listings" && l.to.is_none()));
    }

    #[test]
    fn skipping_a_tier_gets_no_incentive() {
        let c = catalog();
        let up = upgrade_price(by_id(&c, "free"), by_id(&c, "platinum"), BillingPeriod::Yearly, &c).unwrap();
        assert!(up.incentive.is_none());
        assert_eq!(up.price_difference, 7_200_000);
        assert_eq!(up.upgrade_price, 7_200_000);
    }

    #[test]
    fn downgrades_and_sideways_moves_are_refused() {
        let c = catalog();
        assert!(matches!(
            upgrade_price(by_id(&c, "platinum"), by_id(&c, "gold"), BillingPeriod::Monthly, &c),
            Err(TierError::NotAnUpgrade)
        ));
    }

    #[test]
    fn upgrade_request_parse() {
        use serde_json::json;
        assert!(UpgradeRequest::parse(&json!({"fromTierId": "free", "toTierId": "gold", "billingPeriod": "monthly"}))
            .is_ok());
        let e = UpgradeRequest::parse(&json!({"fromTierId": "free", "billingPeriod": "weekly", "x": 1})).unwrap_err();
        assert_eq!(e.fields.keys().collect::<Vec<_>>(), vec!["billingPeriod", "toTierId", "x"]);
        assert!(UpgradeRequest::parse(&json!({"fromTierId": "gold", "toTierId": "gold", "billingPeriod": "monthly"}))
            .is_err());
    }
}
