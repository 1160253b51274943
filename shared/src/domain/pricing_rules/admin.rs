//! What admins write (rules and constraints, parsed at the boundary), the stored
//! constraint records, the area's error, and the pricing configuration read as a
//! whole: the rules and constraints every priced read applies.

use super::{
    apply_rules, check_price_change, validate, ConstraintViolation, DayRange, MonthWindow, PriceContext, PricingAction,
    PricingCondition, PricingConstraints, PricingRule, RuledPrice,
};
use crate::domain::actor::Actor;
use crate::domain::money::BillingPeriod;
use crate::domain::validation::{parse, Fields, ValidationError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Rules are read on every priced request (one Query of the pricing partition), so
/// their number is bounded.
pub const MAX_RULES: usize = 50;
/// The largest fixed adjustment: ±$1,000,000.00.
const MAX_FIXED_CENTS: i64 = 100_000_000;
const MAX_LISTED: usize = 50;
const MAX_DAYS: i64 = 3_650;
const MAX_PRIORITY: i64 = 10_000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PricingRuleError {
    #[error("no such pricing rule")]
    NotFound,
    #[error("a pricing rule with this id already exists")]
    AlreadyExists,
    #[error("changed since it was read")]
    VersionConflict { current: Option<u64> },
    /// Seed 004's `PricingConstraintViolation`, with the tier and period it would
    /// break.
    #[error("pricing constraint violated on tier {tier_id} ({}): {violation}", period.as_str())]
    ConstraintViolation { violation: ConstraintViolation, tier_id: String, period: BillingPeriod },
    #[error("at most {MAX_RULES} pricing rules")]
    TooMany,
    /// Seed 004's `CustomerImpactTooHigh`: over an approval limit of the tier's
    /// constraints; an admin approves by applying it with `approveImpact=true`.
    #[error("the change touches {affected_customers} paying customers and moves MRR by {revenue_impact}: it needs an admin's approval")]
    CustomerImpactTooHigh { affected_customers: i64, revenue_impact: i64, exceeds: Vec<&'static str> },
}

/// What a set of constraints applies to. A tier's own constraints win field by
/// field over its segment's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConstraintScope {
    Tier,
    Segment,
}

impl ConstraintScope {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tier" => Some(Self::Tier),
            "segment" => Some(Self::Segment),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tier => "tier",
            Self::Segment => "segment",
        }
    }
}

/// The stored constraints of one tier or segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintRecord {
    pub scope: ConstraintScope,
    pub scope_id: String,
    pub constraints: PricingConstraints,
    pub version: u64,
    pub updated_at: String,
    pub updated_by: String,
}

/// `PUT /api/admin/pricing-constraints/{scope}/{id}`: the version read (0 when
/// there were none) and the whole new set.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstraintInput {
    pub version: u64,
    pub constraints: PricingConstraints,
}

impl ConstraintInput {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["version", "constraints"]);
        let version = f.required("version", |v| parse::int_in(v, 0, i64::MAX).map(|n| n as u64));
        if !f.has("constraints") {
            f.fail("constraints", "is required");
        }
        const FIELDS: &[&str] = &[
            "minPrice",
            "maxPrice",
            "maxChangeBasisPoints",
            "grandfatherMonths",
            "maxAffectedCustomers",
            "maxRevenueImpact",
            "maxAboveCompetitorBasisPoints",
        ];
        let constraints = f.object("constraints", FIELDS, |c| {
            Some(PricingConstraints {
                min_price: c.optional("minPrice", parse::cents),
                max_price: c.optional("maxPrice", parse::cents),
                max_change_basis_points: c
                    .optional("maxChangeBasisPoints", |v| parse::int_in(v, 1, 10_000).map(|n| n as u32)),
                grandfather_months: c.optional("grandfatherMonths", |v| parse::int_in(v, 0, 120).map(|n| n as u32)),
                max_affected_customers: c
                    .optional("maxAffectedCustomers", |v| parse::int_in(v, 0, 10_000_000).map(|n| n as u32)),
                max_revenue_impact: c.optional("maxRevenueImpact", parse::cents),
                max_above_competitor_basis_points: c
                    .optional("maxAboveCompetitorBasisPoints", |v| parse::int_in(v, 0, 10_000).map(|n| n as u32)),
            })
        });
        if let Some(PricingConstraints { min_price: Some(lo), max_price: Some(hi), .. }) = constraints {
            if lo > hi {
                f.fail("constraints.maxPrice", "must not be below minPrice");
            }
        }
        f.finish()?;
        Ok(Self { version: version.unwrap_or_default(), constraints: constraints.unwrap_or_default() })
    }

    pub fn into_record(self, scope: ConstraintScope, scope_id: &str, by: &Actor) -> ConstraintRecord {
        ConstraintRecord {
            scope,
            scope_id: scope_id.to_string(),
            constraints: self.constraints,
            version: self.version + 1,
            updated_at: by.at.clone(),
            updated_by: by.id.clone(),
        }
    }
}

fn name(v: &Value) -> Result<String, String> {
    parse::text(v, 1, 100)
}

fn priority(v: &Value) -> Result<u32, String> {
    parse::int_in(v, 0, MAX_PRIORITY).map(|n| n as u32)
}

fn date(v: &Value) -> Result<NaiveDate, String> {
    parse::date(v)
}

fn slugs(v: &Value) -> Result<Vec<String>, String> {
    parse::slugs(v, MAX_LISTED)
}

fn periods(v: &Value) -> Result<Vec<BillingPeriod>, String> {
    let items = v.as_array().ok_or("must be an array of monthly or yearly")?;
    let mut out = Vec::new();
    for item in items {
        let p = BillingPeriod::parse(item)?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

fn month(v: &Value) -> Result<u32, String> {
    parse::int_in(v, 1, 12).map(|n| n as u32)
}

fn days(v: &Value) -> Result<u32, String> {
    parse::int_in(v, 0, MAX_DAYS).map(|n| n as u32)
}

const CONDITION_FIELDS: &[&str] =
    &["startMonths", "daysBeforeStart", "segments", "tiers", "billingPeriods", "newCustomer"];

fn read_condition(f: &mut Fields<'_>) -> Option<PricingCondition> {
    f.object("condition", CONDITION_FIELDS, |c| {
        let start_months = c.object("startMonths", &["from", "to"], |m| {
            let (from, to) = (m.required("from", month), m.required("to", month));
            Some(MonthWindow { from: from?, to: to? })
        });
        let days_before_start = c.object("daysBeforeStart", &["min", "max"], |d| {
            Some(DayRange { min: d.optional("min", days), max: d.optional("max", days) })
        });
        if let Some(DayRange { min: Some(lo), max: Some(hi) }) = days_before_start {
            if lo > hi {
                c.fail("daysBeforeStart.min", "must not exceed max");
            }
        }
        Some(PricingCondition {
            start_months,
            days_before_start,
            segments: c.optional("segments", slugs).unwrap_or_default(),
            tiers: c.optional("tiers", slugs).unwrap_or_default(),
            billing_periods: c.optional("billingPeriods", periods).unwrap_or_default(),
            new_customer: c.optional("newCustomer", parse::boolean),
        })
    })
}

fn read_action(f: &mut Fields<'_>) -> Option<PricingAction> {
    f.object("action", &["type", "basisPoints", "amount"], |a| {
        let kind = a.required("type", |v| match v.as_str() {
            Some(k @ ("percentage" | "fixed")) => Ok(k.to_string()),
            _ => Err("must be percentage or fixed".into()),
        })?;
        if kind == "percentage" {
            if a.has("amount") {
                a.fail("amount", "belongs to a fixed action");
            }
            let bp = a.required("basisPoints", |v| match parse::int_in(v, -10_000, 10_000)? {
                0 => Err("must not be zero".into()),
                n => Ok(n as i32),
            })?;
            Some(PricingAction::Percentage { basis_points: bp })
        } else {
            if a.has("basisPoints") {
                a.fail("basisPoints", "belongs to a percentage action");
            }
            let amount = a.required("amount", |v| match parse::int_in(v, -MAX_FIXED_CENTS, MAX_FIXED_CENTS)? {
                0 => Err("must not be zero".into()),
                n => Ok(n),
            })?;
            Some(PricingAction::Fixed { amount })
        }
    })
}

/// `POST /api/admin/pricing-rules`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRule {
    pub rule_id: String,
    pub name: String,
    pub condition: PricingCondition,
    pub action: PricingAction,
    pub priority: u32,
    pub is_active: bool,
    pub effective_date: Option<NaiveDate>,
    pub expiration_date: Option<NaiveDate>,
}

const RULE_FIELDS: &[&str] =
    &["ruleId", "name", "condition", "action", "priority", "isActive", "effectiveDate", "expirationDate"];

impl NewRule {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, RULE_FIELDS);
        let rule_id = f.required("ruleId", parse::slug);
        let name = f.required("name", name);
        let condition = read_condition(&mut f).unwrap_or_default();
        if !f.has("action") {
            f.fail("action", "is required");
        }
        let action = read_action(&mut f);
        let priority = f.optional("priority", priority).unwrap_or(100);
        let is_active = f.optional("isActive", parse::boolean).unwrap_or(true);
        let effective_date = f.optional("effectiveDate", date);
        let expiration_date = f.optional("expirationDate", date);
        f.finish()?;
        match (rule_id, name, action) {
            (Some(rule_id), Some(name), Some(action)) => {
                Ok(Self { rule_id, name, condition, action, priority, is_active, effective_date, expiration_date })
            }
            _ => Err(ValidationError::single("body", "is incomplete")),
        }
    }

    /// The rule as stored; it takes effect today unless it names a day.
    pub fn into_rule(self, by: &Actor) -> Result<PricingRule, ValidationError> {
        let rule = PricingRule {
            rule_id: self.rule_id,
            name: self.name,
            condition: self.condition,
            action: self.action,
            priority: self.priority,
            is_active: self.is_active,
            effective_date: self.effective_date.unwrap_or(by.today),
            expiration_date: self.expiration_date,
            version: 1,
            updated_at: by.at.clone(),
            updated_by: by.id.clone(),
        };
        validate(&rule)?;
        Ok(rule)
    }
}

/// `PUT /api/admin/pricing-rules/{ruleId}`: the version read and the fields to
/// change; `condition` is replaced as a whole; `expirationDate: null` removes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RulePatch {
    pub version: u64,
    pub name: Option<String>,
    pub condition: Option<PricingCondition>,
    pub action: Option<PricingAction>,
    pub priority: Option<u32>,
    pub is_active: Option<bool>,
    pub effective_date: Option<NaiveDate>,
    pub expiration_date: Option<Option<NaiveDate>>,
}

impl RulePatch {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let allowed: Vec<&str> = RULE_FIELDS.iter().filter(|f| **f != "ruleId").copied().chain(["version"]).collect();
        let mut f = Fields::new(body, &allowed);
        let patch = Self {
            version: f.required("version", |v| parse::int_in(v, 1, i64::MAX).map(|n| n as u64)).unwrap_or_default(),
            name: f.optional("name", name),
            condition: read_condition(&mut f),
            action: read_action(&mut f),
            priority: f.optional("priority", priority),
            is_active: f.optional("isActive", parse::boolean),
            effective_date: f.optional("effectiveDate", date),
            expiration_date: f.nullable("expirationDate", date),
        };
        f.finish()?;
        Ok(patch)
    }
}

impl PricingRule {
    /// The rule after `patch`, checked whole; a stale version is a conflict.
    pub fn apply(&self, patch: RulePatch, by: &Actor) -> Result<PricingRule, PricingRuleErrorOr> {
        if patch.version != self.version {
            return Err(PricingRuleErrorOr::Rule(PricingRuleError::VersionConflict { current: Some(self.version) }));
        }
        let mut after = self.clone();
        after.name = patch.name.unwrap_or(after.name);
        after.condition = patch.condition.unwrap_or(after.condition);
        after.action = patch.action.unwrap_or(after.action);
        after.priority = patch.priority.unwrap_or(after.priority);
        after.is_active = patch.is_active.unwrap_or(after.is_active);
        after.effective_date = patch.effective_date.unwrap_or(after.effective_date);
        after.expiration_date = patch.expiration_date.unwrap_or(after.expiration_date);
        after.version += 1;
        after.updated_at = by.at.clone();
        after.updated_by = by.id.clone();
        validate(&after).map_err(PricingRuleErrorOr::Invalid)?;
        Ok(after)
    }

    /// Whether the rule can touch a tier of `segment` billed `period`.
    fn scopes(&self, tier_id: &str, segment: &str, period: BillingPeriod) -> bool {
        let c = &self.condition;
        (c.tiers.is_empty() || c.tiers.iter().any(|t| t == tier_id))
            && (c.segments.is_empty() || c.segments.iter().any(|s| s == segment))
            && (c.billing_periods.is_empty() || c.billing_periods.contains(&period))
    }
}

impl crate::domain::audit::Audited for PricingRule {
    const ENTITY_TYPE: &'static str = "pricing_rule";
    fn entity_id(&self) -> &str {
        &self.rule_id
    }
}

impl crate::domain::audit::Audited for ConstraintRecord {
    const ENTITY_TYPE: &'static str = "pricing_constraints";
    fn entity_id(&self) -> &str {
        &self.scope_id
    }
}

/// A rule edit refused either as bad input or by the rules of the area.
#[derive(Debug, Clone, PartialEq)]
pub enum PricingRuleErrorOr {
    Invalid(ValidationError),
    Rule(PricingRuleError),
}

/// A tier's list prices, as the pricing configuration judges them.
#[derive(Debug, Clone, Copy)]
pub struct ListPrices<'a> {
    pub tier_id: &'a str,
    pub segment: &'a str,
    pub monthly: i64,
    pub yearly: i64,
}

impl ListPrices<'_> {
    fn for_period(&self, period: BillingPeriod) -> i64 {
        match period {
            BillingPeriod::Monthly => self.monthly,
            BillingPeriod::Yearly => self.yearly,
        }
    }
}

const PERIODS: [BillingPeriod; 2] = [BillingPeriod::Monthly, BillingPeriod::Yearly];

/// A tier's prices after the rules, per billing period, each with its steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TierPricing {
    pub monthly: RuledPrice,
    pub yearly: RuledPrice,
}

impl TierPricing {
    pub fn for_period(&self, period: BillingPeriod) -> &RuledPrice {
        match period {
            BillingPeriod::Monthly => &self.monthly,
            BillingPeriod::Yearly => &self.yearly,
        }
    }
}

/// Every rule and constraint: what a priced read applies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PricingConfig {
    pub rules: Vec<PricingRule>,
    pub constraints: Vec<ConstraintRecord>,
    pub competitors: Vec<CompetitorPrice>,
}

/// A competitor's monthly price for the equivalent of one of our tiers, entered by
/// an admin (seed 004 `competitiveThresholds`; Tierdesk scrapes nothing). One
/// current point per competitor and tier; earlier ones are in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompetitorPrice {
    pub competitor_id: String,
    pub name: String,
    /// Our tier it is equivalent to.
    pub tier_id: String,
    /// Cents per month.
    pub price: i64,
    pub observed_on: NaiveDate,
    pub updated_at: String,
    pub updated_by: String,
}

impl crate::domain::audit::Audited for CompetitorPrice {
    const ENTITY_TYPE: &'static str = "competitor_price";
    fn entity_id(&self) -> &str {
        &self.competitor_id
    }
}

impl CompetitorPrice {
    /// `PUT /api/admin/competitor-prices/{competitorId}/{tierId}`: `{name, price, observedOn?}`.
    pub fn parse(competitor_id: &str, tier_id: &str, body: &Value, by: &Actor) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["name", "price", "observedOn"]);
        let name = f.required("name", name);
        let price = f.required("price", parse::cents);
        let observed_on = f.optional("observedOn", date);
        if observed_on.is_some_and(|d| d > by.today) {
            f.fail("observedOn", "must not be in the future");
        }
        f.finish()?;
        Ok(Self {
            competitor_id: competitor_id.to_string(),
            name: name.unwrap_or_default(),
            tier_id: tier_id.to_string(),
            price: price.unwrap_or_default(),
            observed_on: observed_on.unwrap_or(by.today),
            updated_at: by.at.clone(),
            updated_by: by.id.clone(),
        })
    }
}

impl PricingConfig {
    fn record(&self, scope: ConstraintScope, id: &str) -> Option<&PricingConstraints> {
        self.constraints.iter().find(|c| c.scope == scope && c.scope_id == id).map(|c| &c.constraints)
    }

    /// The tier's constraints: its own, field by field over its segment's.
    pub fn constraints_for(&self, tier_id: &str, segment: &str) -> PricingConstraints {
        let own = self.record(ConstraintScope::Tier, tier_id).copied().unwrap_or_default();
        let inherited = self.record(ConstraintScope::Segment, segment).copied().unwrap_or_default();
        PricingConstraints {
            min_price: own.min_price.or(inherited.min_price),
            max_price: own.max_price.or(inherited.max_price),
            max_change_basis_points: own.max_change_basis_points.or(inherited.max_change_basis_points),
            grandfather_months: own.grandfather_months.or(inherited.grandfather_months),
            max_affected_customers: own.max_affected_customers.or(inherited.max_affected_customers),
            max_revenue_impact: own.max_revenue_impact.or(inherited.max_revenue_impact),
            max_above_competitor_basis_points: own
                .max_above_competitor_basis_points
                .or(inherited.max_above_competitor_basis_points),
        }
    }

    /// The highest price `period` may be under the competitive threshold: the
    /// lowest competitor price point for the tier plus `maxAboveCompetitorBasisPoints`
    /// of it, rounded down to the cent (twelve months of it for yearly). `None`
    /// without a threshold or a price point.
    pub fn competitive_ceiling(&self, tier_id: &str, segment: &str, period: BillingPeriod) -> Option<i64> {
        let bp = self.constraints_for(tier_id, segment).max_above_competitor_basis_points?;
        let lowest = self.competitors.iter().filter(|c| c.tier_id == tier_id).map(|c| c.price).min()?;
        let monthly = i64::try_from(i128::from(lowest) * i128::from(10_000 + bp) / 10_000).unwrap_or(i64::MAX);
        Some(match period {
            BillingPeriod::Monthly => monthly,
            BillingPeriod::Yearly => monthly.saturating_mul(12),
        })
    }

    /// One price of a tier moving from `was` to `now` within its constraints and
    /// its competitive threshold. A price above the threshold is refused unless it
    /// does not go up (a cut toward the band is welcome).
    fn judge(
        &self,
        tier_id: &str,
        segment: &str,
        period: BillingPeriod,
        was: i64,
        now: i64,
    ) -> Result<(), PricingRuleError> {
        let refuse =
            |violation| PricingRuleError::ConstraintViolation { violation, tier_id: tier_id.to_string(), period };
        check_price_change(was, now, &self.constraints_for(tier_id, segment).for_period(period)).map_err(refuse)?;
        if let Some(limit) = self.competitive_ceiling(tier_id, segment, period) {
            if now > limit && now >= was {
                return Err(refuse(ConstraintViolation { constraint: "competitiveThreshold", limit, proposed: now }));
            }
        }
        Ok(())
    }

    /// The tier's prices for a purchase made `today` that starts on `start`.
    pub fn price(&self, tier: &ListPrices<'_>, today: NaiveDate, start: NaiveDate, new_customer: bool) -> TierPricing {
        let constraints = self.constraints_for(tier.tier_id, tier.segment);
        let one = |period: BillingPeriod| {
            let ctx = PriceContext {
                segment: tier.segment,
                tier_id: tier.tier_id,
                period,
                today,
                start_date: start,
                new_customer,
            };
            let mut ruled = apply_rules(tier.for_period(period), &ctx, &self.rules, &constraints.for_period(period));
            if let Some(limit) = self.competitive_ceiling(tier.tier_id, tier.segment, period) {
                // Rules never lift a price above the competitive band (nor does the
                // band cut a list price the rules did not raise).
                if ruled.price > ruled.list_price && ruled.price > limit {
                    ruled.price = limit.max(ruled.list_price);
                    ruled.clamped_by = Some("competitiveThreshold");
                }
            }
            ruled
        };
        TierPricing { monthly: one(BillingPeriod::Monthly), yearly: one(BillingPeriod::Yearly) }
    }

    /// A rule, alone on each live tier's list price it can touch, within that
    /// tier's constraints.
    pub fn check_rule(&self, rule: &PricingRule, tiers: &[ListPrices<'_>]) -> Result<(), PricingRuleError> {
        if !rule.is_active {
            return Ok(());
        }
        for tier in tiers {
            for period in PERIODS.into_iter().filter(|p| rule.scopes(tier.tier_id, tier.segment, *p)) {
                let list = tier.for_period(period);
                self.judge(tier.tier_id, tier.segment, period, list, rule.step(list))?;
            }
        }
        Ok(())
    }

    /// A list-price change of one tier within its constraints.
    pub fn check_list_change(&self, before: &ListPrices<'_>, after: &ListPrices<'_>) -> Result<(), PricingRuleError> {
        for period in PERIODS {
            let (was, now) = (before.for_period(period), after.for_period(period));
            if was != now {
                self.judge(after.tier_id, after.segment, period, was, now)?;
            }
        }
        Ok(())
    }

    /// A tier as it is written (created, or with new list prices): its list prices
    /// within its bounds, and every active rule that can touch it within its
    /// constraints.
    pub fn check_tier(&self, tier: &ListPrices<'_>) -> Result<(), PricingRuleError> {
        let constraints = self.constraints_for(tier.tier_id, tier.segment);
        for period in PERIODS {
            let list = tier.for_period(period);
            check_price_change(list, list, &constraints.for_period(period)).map_err(|violation| {
                PricingRuleError::ConstraintViolation { violation, tier_id: tier.tier_id.to_string(), period }
            })?;
        }
        for rule in &self.rules {
            self.check_rule(rule, std::slice::from_ref(tier))?;
        }
        Ok(())
    }

    /// New constraints (`record`, replacing any of its scope) hold for every live
    /// tier they cover: its list prices are within them, and so is every active
    /// rule that can touch it.
    pub fn check_constraints(
        &self,
        record: &ConstraintRecord,
        tiers: &[ListPrices<'_>],
    ) -> Result<(), PricingRuleError> {
        let mut next = self.clone();
        next.constraints.retain(|c| !(c.scope == record.scope && c.scope_id == record.scope_id));
        next.constraints.push(record.clone());
        let covered = |t: &ListPrices<'_>| match record.scope {
            ConstraintScope::Tier => t.tier_id == record.scope_id,
            ConstraintScope::Segment => t.segment == record.scope_id,
        };
        let covered: Vec<ListPrices<'_>> = tiers.iter().copied().filter(|t| covered(t)).collect();
        for tier in &covered {
            for period in PERIODS {
                let list = tier.for_period(period);
                next.judge(tier.tier_id, tier.segment, period, list, list)?;
            }
        }
        for rule in &next.rules {
            next.check_rule(rule, &covered)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn by() -> Actor {
        Actor::fixture("u-admin", "2026-03-10T09:00:00Z")
    }

    fn gold() -> ListPrices<'static> {
        ListPrices { tier_id: "gold", segment: "essential", monthly: 360_000, yearly: 3_888_000 }
    }

    #[test]
    fn a_rule_is_parsed_with_defaults_and_every_bad_field_is_named() {
        let rule = NewRule::parse(&json!({
            "ruleId": "winter", "name": "Winter", "action": {"type": "fixed", "amount": -5000},
            "condition": {"startMonths": {"from": 11, "to": 2}, "billingPeriods": ["monthly"]}
        }))
        .unwrap()
        .into_rule(&by())
        .unwrap();
        assert_eq!(rule.effective_date, by().today);
        assert_eq!((rule.priority, rule.is_active, rule.version), (100, true, 1));
        assert_eq!(rule.condition.billing_periods, vec![BillingPeriod::Monthly]);

        let e = NewRule::parse(&json!({
            "ruleId": "Bad Id", "name": "", "priority": -1, "effectiveDate": "2026-02-30", "extra": 1,
            "action": {"type": "percentage", "basisPoints": 0},
            "condition": {"startMonths": {"from": 13, "to": 1}, "daysBeforeStart": {"min": 9, "max": 3},
                          "billingPeriods": ["weekly"]}
        }))
        .unwrap_err();
        for field in [
            "ruleId",
            "name",
            "priority",
            "effectiveDate",
            "extra",
            "action.basisPoints",
            "condition.startMonths.from",
            "condition.daysBeforeStart.min",
            "condition.billingPeriods",
        ] {
            assert!(e.fields.contains_key(field), "{field} in {:?}", e.fields);
        }
        let e = NewRule::parse(&json!({"ruleId": "x", "name": "X"})).unwrap_err();
        assert!(e.fields.contains_key("action"), "{e:?}");
        let e = NewRule::parse(&json!({"ruleId": "x", "name": "X", "action": {"type": "fixed", "basisPoints": 5}}))
            .unwrap_err();
        assert!(e.fields.contains_key("action.basisPoints") && e.fields.contains_key("action.amount"), "{e:?}");
    }

    #[test]
    fn an_edit_names_its_version_and_is_checked_whole() {
        let rule =
            NewRule::parse(&json!({"ruleId": "r", "name": "R", "action": {"type": "percentage", "basisPoints": 500},
                                          "effectiveDate": "2026-03-01"}))
            .unwrap()
            .into_rule(&by())
            .unwrap();
        let stale = RulePatch::parse(&json!({"version": 2, "isActive": false})).unwrap();
        assert_eq!(
            rule.apply(stale, &by()),
            Err(PricingRuleErrorOr::Rule(PricingRuleError::VersionConflict { current: Some(1) }))
        );
        let off = rule.apply(RulePatch::parse(&json!({"version": 1, "isActive": false})).unwrap(), &by()).unwrap();
        assert_eq!((off.is_active, off.version, off.name.as_str()), (false, 2, "R"));
        let backwards = RulePatch::parse(&json!({"version": 1, "expirationDate": "2026-01-01"})).unwrap();
        assert!(
            matches!(rule.apply(backwards, &by()), Err(PricingRuleErrorOr::Invalid(e)) if e.fields.contains_key("expirationDate"))
        );
        assert!(RulePatch::parse(&json!({"version": 1, "ruleId": "other"})).unwrap_err().fields.contains_key("ruleId"));
    }

    #[test]
    fn tier_constraints_win_field_by_field_over_the_segment() {
        let record = |scope, id: &str, c| ConstraintRecord {
            scope,
            scope_id: id.into(),
            constraints: c,
            version: 1,
            updated_at: String::new(),
            updated_by: String::new(),
        };
        let config = PricingConfig {
            rules: vec![],
            competitors: vec![],
            constraints: vec![
                record(
                    ConstraintScope::Segment,
                    "essential",
                    PricingConstraints {
                        min_price: Some(1),
                        max_price: Some(9),
                        max_change_basis_points: Some(500),
                        ..Default::default()
                    },
                ),
                record(ConstraintScope::Tier, "gold", PricingConstraints { max_price: Some(5), ..Default::default() }),
            ],
        };
        assert_eq!(
            config.constraints_for("gold", "essential"),
            PricingConstraints {
                min_price: Some(1),
                max_price: Some(5),
                max_change_basis_points: Some(500),
                ..Default::default()
            }
        );
        assert_eq!(config.constraints_for("free", "luxury"), PricingConstraints::default());
        // Bounds are monthly; a yearly price is held to twelve times them.
        let yearly = config.constraints_for("gold", "essential").for_period(BillingPeriod::Yearly);
        assert_eq!(
            (yearly.min_price, yearly.max_price, yearly.max_change_basis_points),
            (Some(12), Some(60), Some(500))
        );
    }

    #[test]
    fn rules_list_changes_and_constraints_are_refused_with_the_tier_and_period() {
        let mut config = PricingConfig { rules: super::super::seasonal_defaults(by().today), ..Default::default() };
        let tight = ConstraintRecord {
            scope: ConstraintScope::Segment,
            scope_id: "essential".into(),
            constraints: PricingConstraints { max_change_basis_points: Some(1_000), ..Default::default() },
            version: 1,
            updated_at: String::new(),
            updated_by: String::new(),
        };
        // Peak season (+20 %) breaks a 10 % change limit.
        let e = config.check_constraints(&tight, &[gold()]).unwrap_err();
        assert!(
            matches!(&e, PricingRuleError::ConstraintViolation { violation, tier_id, .. }
            if violation.constraint == "maxChangePercentage" && tier_id == "gold"),
            "{e:?}"
        );
        // A segment the tier is not in is not judged.
        let elsewhere = ConstraintRecord { scope_id: "luxury".into(), ..tight.clone() };
        assert!(config.check_constraints(&elsewhere, &[gold()]).is_ok());
        // A cap below the list price is refused.
        let capped = ConstraintRecord {
            scope: ConstraintScope::Tier,
            scope_id: "gold".into(),
            constraints: PricingConstraints { max_price: Some(300_000), ..Default::default() },
            ..tight.clone()
        };
        let e = config.check_constraints(&capped, &[gold()]).unwrap_err();
        assert!(
            matches!(&e, PricingRuleError::ConstraintViolation { violation, period: BillingPeriod::Monthly, .. }
            if violation.constraint == "maxPrice"),
            "{e:?}"
        );

        config.rules.clear();
        config.constraints.push(tight);
        let limit = ListPrices { monthly: 396_000, ..gold() };
        assert!(config.check_list_change(&gold(), &limit).is_ok(), "+10 % is the limit, inclusive");
        let over = ListPrices { monthly: 396_001, ..gold() };
        let e = config.check_list_change(&gold(), &over).unwrap_err();
        assert!(
            matches!(&e, PricingRuleError::ConstraintViolation { violation, period: BillingPeriod::Monthly, .. }
            if violation.constraint == "maxChangePercentage"),
            "{e:?}"
        );
    }

    #[test]
    fn the_competitive_threshold_bounds_list_changes_rules_and_the_price() {
        let competitor = |id: &str, price| CompetitorPrice {
            competitor_id: id.into(),
            name: id.into(),
            tier_id: "gold".into(),
            price,
            observed_on: by().today,
            updated_at: String::new(),
            updated_by: String::new(),
        };
        let band = ConstraintRecord {
            scope: ConstraintScope::Tier,
            scope_id: "gold".into(),
            constraints: PricingConstraints { max_above_competitor_basis_points: Some(1_000), ..Default::default() },
            version: 1,
            updated_at: String::new(),
            updated_by: String::new(),
        };
        let mut config = PricingConfig {
            rules: vec![],
            constraints: vec![band],
            competitors: vec![competitor("acme", 350_000), competitor("globex", 340_000)],
        };
        // The lowest point (340,000) + 10 % = 374,000; yearly twelve times that.
        assert_eq!(config.competitive_ceiling("gold", "essential", BillingPeriod::Monthly), Some(374_000));
        assert_eq!(config.competitive_ceiling("gold", "essential", BillingPeriod::Yearly), Some(4_488_000));
        assert_eq!(config.competitive_ceiling("free", "essential", BillingPeriod::Monthly), None);
        let raise = ListPrices { monthly: 374_001, ..gold() };
        let e = config.check_list_change(&gold(), &raise).unwrap_err();
        assert!(
            matches!(&e, PricingRuleError::ConstraintViolation { violation, .. }
            if violation.constraint == "competitiveThreshold" && violation.limit == 374_000),
            "{e:?}"
        );
        assert!(config.check_list_change(&gold(), &ListPrices { monthly: 374_000, ..gold() }).is_ok());
        // Peak season (+20 %) would take gold past the band: refused as a rule…
        let peak = super::super::seasonal_defaults(by().today).remove(0);
        assert!(config.check_rule(&peak, &[gold()]).is_err());
        // …and clamped if it is in force anyway (it was there before the band).
        config.rules.push(peak);
        let july = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
        let priced = config.price(&gold(), july, july, true);
        assert_eq!((priced.monthly.price, priced.monthly.clamped_by), (374_000, Some("competitiveThreshold")));
    }

    #[test]
    fn the_price_applies_rules_then_constraints_per_period() {
        let mut config = PricingConfig { rules: super::super::seasonal_defaults(by().today), ..Default::default() };
        let july = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
        let priced = config.price(&gold(), july, july, true);
        // Peak season then last minute (both in force on a same-day July start).
        assert_eq!(priced.monthly.price, 367_200, "360000 → 432000 → 367200");
        assert_eq!(priced.monthly.steps.len(), 2);
        assert_eq!(priced.yearly.list_price, 3_888_000);
        config.rules[1].is_active = false;
        let priced = config.price(&gold(), july, july, true);
        assert_eq!((priced.monthly.price, priced.for_period(BillingPeriod::Yearly).price), (432_000, 4_665_600));
    }
}
