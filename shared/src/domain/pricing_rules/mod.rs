//! Pricing rules and constraints (seed 002 "dynamic pricing", seed 004
//! `PricingRule` and `PricingConstraints`): the pure half of issue 21 §4. Routes,
//! storage and the impact preview build on it.
//!
//! **Composition.** The price a customer sees is the tier's list price, then every
//! rule that applies (active, within its effective dates, its condition met) in
//! ascending `priority` (ties by `ruleId`), each on the price the previous one left,
//! then the tier's constraints (`minPrice`/`maxPrice` clamp the result), and only
//! then promotions through `pricing::price`. So "peak season +20%" and "last minute
//! −15%" together give 100 → 120 → 102, not 105.
//!
//! **Rounding.** A percentage step is `price × basisPoints / 10 000` rounded half
//! away from zero to the cent, per step; a fixed step adds its cents. No step takes
//! a price below zero.

mod admin;
pub mod impact;

pub use admin::{
    CompetitorPrice, ConstraintInput, ConstraintRecord, ConstraintScope, ListPrices, NewRule, PricingConfig,
    PricingRuleError, PricingRuleErrorOr, RulePatch, TierPricing, MAX_RULES,
};

use super::money::BillingPeriod;
use super::validation::ValidationError;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// One percent in basis points.
const BP_PER_PERCENT: i64 = 100;
/// A percentage adjustment is at most ±100 %.
const MAX_ADJUSTMENT_BP: i32 = 10_000;

/// Start months, both inclusive (1–12). `from > to` wraps the year end:
/// November–February is `{from: 11, to: 2}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MonthWindow {
    pub from: u32,
    pub to: u32,
}

impl MonthWindow {
    pub fn contains(&self, month: u32) -> bool {
        if self.from <= self.to {
            (self.from..=self.to).contains(&month)
        } else {
            month >= self.from || month <= self.to
        }
    }
}

/// Whole days from the day of the purchase to the subscription's start, both
/// bounds inclusive when given ("less than 30 days out" is `{max: 29}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DayRange {
    pub min: Option<u32>,
    pub max: Option<u32>,
}

impl DayRange {
    pub fn contains(&self, days: i64) -> bool {
        self.min.is_none_or(|m| days >= i64::from(m)) && self.max.is_none_or(|m| days <= i64::from(m))
    }
}

/// When a rule applies. Every part given must hold; an empty list means any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PricingCondition {
    /// The month of the subscription's start (seed 002's peak season, June–September).
    pub start_months: Option<MonthWindow>,
    /// Days between the purchase and the start (seed 002's last minute, < 30 days).
    pub days_before_start: Option<DayRange>,
    pub segments: Vec<String>,
    pub tiers: Vec<String>,
    pub billing_periods: Vec<BillingPeriod>,
    /// `Some(true)`: new customers only; `Some(false)`: existing customers only.
    pub new_customer: Option<bool>,
}

/// What a rule does to the price: a signed percentage in basis points
/// (`2000` = +20 %, `-1500` = −15 %) or a signed amount in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum PricingAction {
    Percentage { basis_points: i32 },
    Fixed { amount: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PricingRule {
    pub rule_id: String,
    pub name: String,
    pub condition: PricingCondition,
    pub action: PricingAction,
    /// Lower runs first.
    pub priority: u32,
    pub is_active: bool,
    pub effective_date: NaiveDate,
    pub expiration_date: Option<NaiveDate>,
    /// Optimistic locking: every edit names the version it read.
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub updated_by: String,
}

/// What a price is judged for.
#[derive(Debug, Clone, Copy)]
pub struct PriceContext<'a> {
    pub segment: &'a str,
    pub tier_id: &'a str,
    pub period: BillingPeriod,
    /// The day of the purchase (or of the quote).
    pub today: NaiveDate,
    /// The day the subscription starts.
    pub start_date: NaiveDate,
    pub new_customer: bool,
}

impl PricingRule {
    /// Active and within its effective dates (both inclusive) on `day`.
    pub fn in_force(&self, day: NaiveDate) -> bool {
        self.is_active && self.effective_date <= day && self.expiration_date.is_none_or(|end| day <= end)
    }

    pub fn applies(&self, ctx: &PriceContext<'_>) -> bool {
        let c = &self.condition;
        let listed = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        self.in_force(ctx.today)
            && c.start_months.is_none_or(|w| w.contains(ctx.start_date.month()))
            && c.days_before_start.is_none_or(|r| r.contains((ctx.start_date - ctx.today).num_days()))
            && listed(&c.segments, ctx.segment)
            && listed(&c.tiers, ctx.tier_id)
            && (c.billing_periods.is_empty() || c.billing_periods.contains(&ctx.period))
            && c.new_customer.is_none_or(|n| n == ctx.new_customer)
    }

    /// The price after this rule's step (never below zero).
    pub fn step(&self, price: i64) -> i64 {
        let delta = match self.action {
            PricingAction::Percentage { basis_points } => percent_of(price, basis_points),
            PricingAction::Fixed { amount } => amount,
        };
        price.saturating_add(delta).max(0)
    }
}

/// `price × bp / 10 000`, rounded half away from zero to the cent.
fn percent_of(price: i64, basis_points: i32) -> i64 {
    let scaled = i128::from(price) * i128::from(basis_points);
    let denominator = i128::from(100 * BP_PER_PERCENT);
    let rounded = (scaled.abs() * 2 + denominator) / (2 * denominator);
    i64::try_from(if scaled < 0 { -rounded } else { rounded }).unwrap_or(i64::MAX)
}

/// A tier's (or a segment's) bounds on its price (seed 004 `PricingConstraints`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PricingConstraints {
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    /// The largest change one list-price change or one rule may make, in basis
    /// points of the price it starts from.
    pub max_change_basis_points: Option<u32>,
    /// Seed 004 grandfathering: how many months subscribers keep their price
    /// version after a list-price change (`None`: until migrated by hand).
    pub grandfather_months: Option<u32>,
    /// A list-price change touching more paying customers than this, or moving MRR
    /// (if every one were migrated) by more cents than `maxRevenueImpact`, needs an
    /// admin's approval (seed 004 `CustomerImpactTooHigh`).
    pub max_affected_customers: Option<u32>,
    pub max_revenue_impact: Option<i64>,
    /// Seed 004 `competitiveThresholds`: the list price (and any rule's result) at
    /// most this far above the lowest competitor price point for the tier.
    pub max_above_competitor_basis_points: Option<u32>,
}

impl PricingConstraints {
    /// The bounds a price billed `period` is held to: `minPrice` and `maxPrice` are
    /// monthly amounts, so a yearly price is held to twelve times them (exact, in
    /// cents); the change limit is relative and the same for both.
    pub fn for_period(&self, period: BillingPeriod) -> Self {
        let months = match period {
            BillingPeriod::Monthly => 1,
            BillingPeriod::Yearly => 12,
        };
        Self {
            min_price: self.min_price.map(|m| m.saturating_mul(months)),
            max_price: self.max_price.map(|m| m.saturating_mul(months)),
            ..*self
        }
    }
}

/// One rule's step as the quote shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleStep {
    pub rule_id: String,
    pub name: String,
    pub before: i64,
    pub after: i64,
}

/// The price after the rules and the constraints, with each step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuledPrice {
    pub list_price: i64,
    pub steps: Vec<RuleStep>,
    /// `minPrice` or `maxPrice` when the constraints moved the result.
    pub clamped_by: Option<&'static str>,
    pub price: i64,
}

/// The list price with every applying rule, in the documented order, within the
/// constraints.
pub fn apply_rules(
    list_price: i64,
    ctx: &PriceContext<'_>,
    rules: &[PricingRule],
    constraints: &PricingConstraints,
) -> RuledPrice {
    let mut applying: Vec<&PricingRule> = rules.iter().filter(|r| r.applies(ctx)).collect();
    applying.sort_by(|a, b| (a.priority, &a.rule_id).cmp(&(b.priority, &b.rule_id)));
    let mut price = list_price.max(0);
    let mut steps = Vec::with_capacity(applying.len());
    for rule in applying {
        let after = rule.step(price);
        steps.push(RuleStep { rule_id: rule.rule_id.clone(), name: rule.name.clone(), before: price, after });
        price = after;
    }
    let mut clamped_by = None;
    if let Some(min) = constraints.min_price.filter(|m| price < *m) {
        price = min;
        clamped_by = Some("minPrice");
    }
    if let Some(max) = constraints.max_price.filter(|m| price > *m) {
        price = max;
        clamped_by = Some("maxPrice");
    }
    RuledPrice { list_price, steps, clamped_by, price }
}

/// Seed 004's `PricingConstraintViolation`: which constraint, its limit and what
/// was proposed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{constraint} is {limit}; the proposal gives {proposed}")]
pub struct ConstraintViolation {
    pub constraint: &'static str,
    pub limit: i64,
    pub proposed: i64,
}

/// A list-price change from `current` to `proposed` within the constraints.
pub fn check_price_change(current: i64, proposed: i64, c: &PricingConstraints) -> Result<(), ConstraintViolation> {
    if let Some(min) = c.min_price.filter(|m| proposed < *m) {
        return Err(ConstraintViolation { constraint: "minPrice", limit: min, proposed });
    }
    if let Some(max) = c.max_price.filter(|m| proposed > *m) {
        return Err(ConstraintViolation { constraint: "maxPrice", limit: max, proposed });
    }
    if let Some(max_bp) = c.max_change_basis_points {
        // |proposed − current| ≤ current × max_bp / 10 000, compared exactly.
        let change = i128::from((proposed - current).abs()) * i128::from(100 * BP_PER_PERCENT);
        if current > 0 && change > i128::from(current) * i128::from(max_bp) {
            return Err(ConstraintViolation {
                constraint: "maxChangePercentage",
                limit: i64::from(max_bp),
                proposed: i64::try_from(change / i128::from(current)).unwrap_or(i64::MAX),
            });
        }
    }
    Ok(())
}

/// A rule may not, alone on the list price, break the constraints: its step is
/// checked as a price change.
pub fn check_rule(rule: &PricingRule, list_price: i64, c: &PricingConstraints) -> Result<(), ConstraintViolation> {
    check_price_change(list_price, rule.step(list_price), c)
}

/// The shape of a rule as an admin writes it (the server owns id and dates of
/// record); the field errors name the field.
pub fn validate(rule: &PricingRule) -> Result<(), ValidationError> {
    let mut fields = std::collections::BTreeMap::new();
    if rule.name.trim().is_empty() || rule.name.len() > 100 {
        fields.insert("name".to_string(), "must be 1 to 100 characters".to_string());
    }
    if let PricingAction::Percentage { basis_points } = rule.action {
        if !(-MAX_ADJUSTMENT_BP..=MAX_ADJUSTMENT_BP).contains(&basis_points) || basis_points == 0 {
            fields.insert("action.basisPoints".to_string(), "must be a non-zero change within ±10000".to_string());
        }
    }
    if let Some(w) = rule.condition.start_months {
        if !(1..=12).contains(&w.from) || !(1..=12).contains(&w.to) {
            fields.insert("condition.startMonths".to_string(), "months are 1 to 12".to_string());
        }
    }
    if let Some(DayRange { min: Some(lo), max: Some(hi) }) = rule.condition.days_before_start {
        if lo > hi {
            fields.insert("condition.daysBeforeStart".to_string(), "min must not exceed max".to_string());
        }
    }
    if rule.expiration_date.is_some_and(|end| end < rule.effective_date) {
        fields.insert("expirationDate".to_string(), "must not be before effectiveDate".to_string());
    }
    if fields.is_empty() {
        Ok(())
    } else {
        Err(ValidationError { fields })
    }
}

/// Seed 002's two defaults: peak season (June–September starts) +20 %, last
/// minute (starting in under 30 days) −15 %.
pub fn seasonal_defaults(effective: NaiveDate) -> Vec<PricingRule> {
    vec![
        PricingRule {
            rule_id: "peak-season".into(),
            name: "Peak season".into(),
            condition: PricingCondition {
                start_months: Some(MonthWindow { from: 6, to: 9 }),
                ..PricingCondition::default()
            },
            action: PricingAction::Percentage { basis_points: 2_000 },
            priority: 10,
            is_active: true,
            effective_date: effective,
            expiration_date: None,
            version: 1,
            updated_at: String::new(),
            updated_by: String::new(),
        },
        PricingRule {
            rule_id: "last-minute".into(),
            name: "Last minute".into(),
            condition: PricingCondition {
                days_before_start: Some(DayRange { min: None, max: Some(29) }),
                ..PricingCondition::default()
            },
            action: PricingAction::Percentage { basis_points: -1_500 },
            priority: 20,
            is_active: true,
            effective_date: effective,
            expiration_date: None,
            version: 1,
            updated_at: String::new(),
            updated_by: String::new(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn ctx(today: NaiveDate, start: NaiveDate) -> PriceContext<'static> {
        PriceContext {
            segment: "signature",
            tier_id: "gold",
            period: BillingPeriod::Monthly,
            today,
            start_date: start,
            new_customer: true,
        }
    }

    /// xorshift64*: a fixed sequence, so a failure reproduces.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn range(&mut self, lo: i64, hi: i64) -> i64 {
            lo + (self.next() % (hi - lo + 1) as u64) as i64
        }
    }

    #[test]
    fn percentages_round_half_away_from_zero_per_step() {
        assert_eq!(percent_of(1_000, 2_000), 200);
        assert_eq!(percent_of(333, 1_500), 50); // 49.95
        assert_eq!(percent_of(333, -1_500), -50);
        assert_eq!(percent_of(10, 500), 1); // 0.5
        assert_eq!(percent_of(10, -500), -1);
        assert_eq!(percent_of(9, 500), 0); // 0.45
        assert_eq!(percent_of(0, 2_000), 0);
    }

    #[test]
    fn rules_compose_in_priority_order_on_the_running_price() {
        let rules = seasonal_defaults(d("2026-01-01"));
        // A July start, booked 10 days before: peak then last minute.
        let out = apply_rules(360_000, &ctx(d("2026-06-21"), d("2026-07-01")), &rules, &PricingConstraints::default());
        assert_eq!(out.steps.iter().map(|s| s.rule_id.as_str()).collect::<Vec<_>>(), ["peak-season", "last-minute"]);
        assert_eq!(out.steps[0].after, 432_000);
        assert_eq!(out.price, 367_200, "360000 × 1.2 × 0.85, not 360000 × 1.05");
        // Reversing the priorities changes the steps, not the product here; it is the order the steps show.
        let mut reversed = rules.clone();
        reversed[0].priority = 30;
        let out =
            apply_rules(360_000, &ctx(d("2026-06-21"), d("2026-07-01")), &reversed, &PricingConstraints::default());
        assert_eq!(out.steps[0].rule_id, "last-minute");
        assert_eq!(out.steps[0].after, 306_000);
    }

    #[test]
    fn a_twelve_month_replay_switches_peak_season_and_last_minute_on_and_off() {
        // In force since before the first booking (mid-December 2025 for a January start).
        let rules = seasonal_defaults(d("2025-01-01"));
        for month in 1..=12u32 {
            let start = NaiveDate::from_ymd_opt(2026, month, 15).unwrap();
            for (booked_days_before, last_minute) in [(10, true), (29, true), (30, false), (60, false)] {
                let today = start - chrono::Duration::days(booked_days_before);
                let out = apply_rules(100_000, &ctx(today, start), &rules, &PricingConstraints::default());
                let ids: Vec<&str> = out.steps.iter().map(|s| s.rule_id.as_str()).collect();
                let peak = (6..=9).contains(&month);
                assert_eq!(ids.contains(&"peak-season"), peak, "month {month}");
                assert_eq!(ids.contains(&"last-minute"), last_minute, "month {month}, {booked_days_before} days out");
                let want = match (peak, last_minute) {
                    (true, true) => 102_000,
                    (true, false) => 120_000,
                    (false, true) => 85_000,
                    (false, false) => 100_000,
                };
                assert_eq!(out.price, want, "month {month}, {booked_days_before} days out");
            }
        }
    }

    #[test]
    fn effective_dates_inactive_rules_and_conditions_are_honoured() {
        let mut rule = seasonal_defaults(d("2026-03-01")).remove(1);
        let c = ctx(d("2026-02-20"), d("2026-03-01"));
        assert!(!rule.applies(&c), "not yet effective on Feb 20");
        let c = ctx(d("2026-03-01"), d("2026-03-10"));
        assert!(rule.applies(&c));
        rule.expiration_date = Some(d("2026-02-28"));
        assert!(!rule.applies(&c), "expired");
        rule.expiration_date = None;
        rule.is_active = false;
        assert!(!rule.applies(&c));
        rule.is_active = true;
        rule.condition.segments = vec!["luxury".into()];
        assert!(!rule.applies(&c), "another segment");
        rule.condition.segments = vec!["signature".into()];
        rule.condition.new_customer = Some(false);
        assert!(!rule.applies(&c), "existing customers only");
        assert!(MonthWindow { from: 11, to: 2 }.contains(1) && !MonthWindow { from: 11, to: 2 }.contains(3));
    }

    #[test]
    fn the_result_never_leaves_the_constraints_whatever_the_rules() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for case in 0..2_000 {
            let min = rng.range(0, 50_000);
            let max = min + rng.range(0, 500_000);
            let constraints = PricingConstraints { min_price: Some(min), max_price: Some(max), ..Default::default() };
            let rules: Vec<PricingRule> = (0..rng.range(0, 6))
                .map(|i| PricingRule {
                    rule_id: format!("r{i}"),
                    name: format!("rule {i}"),
                    condition: PricingCondition::default(),
                    action: if rng.next().is_multiple_of(2) {
                        PricingAction::Percentage { basis_points: rng.range(-10_000, 10_000) as i32 }
                    } else {
                        PricingAction::Fixed { amount: rng.range(-200_000, 200_000) }
                    },
                    priority: rng.range(0, 3) as u32,
                    is_active: true,
                    effective_date: d("2026-01-01"),
                    expiration_date: None,
                    version: 1,
                    updated_at: String::new(),
                    updated_by: String::new(),
                })
                .collect();
            let list = rng.range(0, 1_000_000);
            let out = apply_rules(list, &ctx(d("2026-05-01"), d("2026-08-01")), &rules, &constraints);
            assert!((min..=max).contains(&out.price), "case {case}: {out:?} outside {min}..={max}");
            // The steps chain, each in (priority, id) order.
            let order: Vec<(u32, String)> = out
                .steps
                .iter()
                .map(|s| {
                    let r = rules.iter().find(|r| r.rule_id == s.rule_id).unwrap();
                    (r.priority, r.rule_id.clone())
                })
                .collect();
            assert!(order.windows(2).all(|w| w[0] <= w[1]), "case {case}: {order:?}");
            assert!(out.steps.windows(2).all(|w| w[0].after == w[1].before), "case {case}");
            assert!(out.steps.iter().all(|s| s.after >= 0));
        }
    }

    #[test]
    fn price_changes_and_rules_are_refused_outside_the_constraints() {
        let c = PricingConstraints {
            min_price: Some(100_000),
            max_price: Some(700_000),
            max_change_basis_points: Some(2_500),
            ..Default::default()
        };
        assert!(check_price_change(360_000, 450_000, &c).is_ok(), "+25% is the limit, inclusive");
        let e = check_price_change(360_000, 450_001, &c).unwrap_err();
        assert_eq!(e.constraint, "maxChangePercentage");
        assert_eq!(check_price_change(360_000, 90_000, &c).unwrap_err().constraint, "minPrice");
        assert_eq!(check_price_change(600_000, 710_000, &c).unwrap_err().constraint, "maxPrice");
        let rules = seasonal_defaults(d("2026-01-01"));
        assert!(check_rule(&rules[0], 360_000, &c).is_ok(), "+20% within 25%");
        let tight = PricingConstraints { max_change_basis_points: Some(1_000), ..c };
        assert_eq!(check_rule(&rules[0], 360_000, &tight).unwrap_err().constraint, "maxChangePercentage");
    }

    #[test]
    fn a_bad_rule_names_its_fields() {
        let mut rule = seasonal_defaults(d("2026-01-01")).remove(0);
        assert!(validate(&rule).is_ok());
        rule.name = " ".into();
        rule.action = PricingAction::Percentage { basis_points: 20_000 };
        rule.condition.start_months = Some(MonthWindow { from: 0, to: 13 });
        rule.condition.days_before_start = Some(DayRange { min: Some(10), max: Some(5) });
        rule.expiration_date = Some(d("2025-12-31"));
        let fields = validate(&rule).unwrap_err().fields;
        for f in ["name", "action.basisPoints", "condition.startMonths", "condition.daysBeforeStart", "expirationDate"]
        {
            assert!(fields.contains_key(f), "{f} in {fields:?}");
        }
    }

    #[test]
    fn rules_read_and_write_their_wire_shape() {
        let rule = seasonal_defaults(d("2026-01-01")).remove(1);
        let v = serde_json::to_value(&rule).unwrap();
        assert_eq!(v["action"], serde_json::json!({"type": "percentage", "basisPoints": -1500}));
        assert_eq!(v["condition"]["daysBeforeStart"], serde_json::json!({"min": null, "max": 29}));
        let back: PricingRule = serde_json::from_value(v).unwrap();
        assert_eq!(back, rule);
    }
}
