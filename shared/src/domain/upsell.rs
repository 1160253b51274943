//! The upsell rules engine (seed 002 "Upsell Rules Engine", issue 21 §3): rules
//! are data an admin edits, evaluated against what a visitor or partner is doing.
//! Pure: the handler reads the rules, the catalog with its ruled prices, and (for
//! a signed-in partner) the partner and its usage, then asks `evaluate`.
//!
//! **Deterministic and explainable.** Rules run in ascending `priority` (ties by
//! `ruleId`); each applying rule gives at most one offer, carrying its reason in
//! words, the tier it points to, the price difference per billing period (ruled
//! prices, cents), the features gained and any saving, each computed here.

use super::actor::Actor;
use super::money::BillingPeriod;
use super::pricing_rules::MonthWindow;
use super::tier::Tier;
use super::validation::{parse, Fields, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

pub const MAX_UPSELL_RULES: usize = 50;
/// An evaluation answers at most this many offers (the storefront shows one modal).
pub const MAX_OFFERS: usize = 3;
pub const MAX_ADD_ONS: usize = 20;

/// What sets a rule off (seed 002's triggers, plus the subscription ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum UpsellTrigger {
    /// Viewing a tier of this level ("Viewing tier 1").
    ViewingLevel { tier_level: u32 },
    /// At least this many add-ons selected ("Added 2+ addons").
    AddOnsSelected { min: u32 },
    /// A start date in these months ("High-demand date selected").
    HighDemandStart { start_months: MonthWindow },
    /// A signed-in partner's usage of any limited metric at or above this share of
    /// its limit, in basis points (8000 = 80 %).
    UsageShare { basis_points: u32 },
    /// A signed-in partner's trial ends within this many days.
    TrialEnding { within_days: u32 },
}

/// What an applying rule offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum UpsellAction {
    /// Show the next tier's benefits (the comparison).
    ShowNextTierBenefits,
    /// Suggest the upgrade with a saving: `discountBasisPoints` off the next tier's
    /// price (seed 002 "tier_upgrade: 5% off next tier"; 0 = no discount).
    SuggestUpgrade { discount_basis_points: u32 },
    /// Emphasise limited availability with this message.
    EmphasizeAvailability { message: String },
    /// Offer a promotion code (checked at checkout like any code).
    OfferPromotion { promotion_code: String },
}

/// Conditions on top of the trigger; every one given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UpsellConditions {
    pub segments: Vec<String>,
    pub tiers: Vec<String>,
    pub billing_periods: Vec<BillingPeriod>,
    pub new_customer: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsellRule {
    pub rule_id: String,
    pub name: String,
    pub trigger: UpsellTrigger,
    #[serde(default)]
    pub conditions: UpsellConditions,
    pub action: UpsellAction,
    pub priority: u32,
    pub active: bool,
    pub version: u64,
    pub updated_at: String,
    pub updated_by: String,
}

impl super::audit::Audited for UpsellRule {
    const ENTITY_TYPE: &'static str = "upsell_rule";
    fn entity_id(&self) -> &str {
        &self.rule_id
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpsellError {
    #[error("no such upsell rule")]
    NotFound,
    #[error("an upsell rule with this id already exists")]
    AlreadyExists,
    #[error("changed since it was read")]
    VersionConflict { current: Option<u64> },
    #[error("at most {MAX_UPSELL_RULES} upsell rules")]
    TooMany,
    #[error("no live tier with this id")]
    TierNotFound,
}

fn slugs(v: &Value) -> Result<Vec<String>, String> {
    parse::slugs(v, 50)
}

fn month(v: &Value) -> Result<u32, String> {
    parse::int_in(v, 1, 12).map(|n| n as u32)
}

fn read_trigger(f: &mut Fields<'_>) -> Option<UpsellTrigger> {
    if !f.has("trigger") {
        f.fail("trigger", "is required");
        return None;
    }
    f.object("trigger", &["type", "tierLevel", "min", "startMonths", "basisPoints", "withinDays"], |t| {
        let kind = t.required("type", |v| v.as_str().map(str::to_string).ok_or_else(|| "must be a string".into()))?;
        let only = |t: &mut Fields<'_>, keep: &[&str]| {
            for key in ["tierLevel", "min", "startMonths", "basisPoints", "withinDays"] {
                if !keep.contains(&key) && t.has(key) {
                    t.fail(key, format!("does not belong to a {kind} trigger"));
                }
            }
        };
        match kind.as_str() {
            "viewing_level" => {
                only(t, &["tierLevel"]);
                let level = t.required("tierLevel", |v| parse::int_in(v, 1, 100).map(|n| n as u32))?;
                Some(UpsellTrigger::ViewingLevel { tier_level: level })
            }
            "add_ons_selected" => {
                only(t, &["min"]);
                let min = t.required("min", |v| parse::int_in(v, 1, MAX_ADD_ONS as i64).map(|n| n as u32))?;
                Some(UpsellTrigger::AddOnsSelected { min })
            }
            "high_demand_start" => {
                only(t, &["startMonths"]);
                if !t.has("startMonths") {
                    t.fail("startMonths", "is required");
                }
                let window = t.object("startMonths", &["from", "to"], |m| {
                    let (from, to) = (m.required("from", month), m.required("to", month));
                    Some(MonthWindow { from: from?, to: to? })
                })?;
                Some(UpsellTrigger::HighDemandStart { start_months: window })
            }
            "usage_share" => {
                only(t, &["basisPoints"]);
                let bp = t.required("basisPoints", |v| parse::int_in(v, 1, 10_000).map(|n| n as u32))?;
                Some(UpsellTrigger::UsageShare { basis_points: bp })
            }
            "trial_ending" => {
                only(t, &["withinDays"]);
                let days = t.required("withinDays", |v| parse::int_in(v, 0, 90).map(|n| n as u32))?;
                Some(UpsellTrigger::TrialEnding { within_days: days })
            }
            _ => {
                t.fail(
                    "type",
                    "must be viewing_level, add_ons_selected, high_demand_start, usage_share or trial_ending",
                );
                None
            }
        }
    })
}

fn read_action(f: &mut Fields<'_>) -> Option<UpsellAction> {
    if !f.has("action") {
        f.fail("action", "is required");
        return None;
    }
    f.object("action", &["type", "discountBasisPoints", "message", "promotionCode"], |a| {
        let kind = a.required("type", |v| v.as_str().map(str::to_string).ok_or_else(|| "must be a string".into()))?;
        let only = |a: &mut Fields<'_>, keep: &[&str]| {
            for key in ["discountBasisPoints", "message", "promotionCode"] {
                if !keep.contains(&key) && a.has(key) {
                    a.fail(key, format!("does not belong to a {kind} action"));
                }
            }
        };
        match kind.as_str() {
            "show_next_tier_benefits" => {
                only(a, &[]);
                Some(UpsellAction::ShowNextTierBenefits)
            }
            "suggest_upgrade" => {
                only(a, &["discountBasisPoints"]);
                let bp =
                    a.optional("discountBasisPoints", |v| parse::int_in(v, 0, 5_000).map(|n| n as u32)).unwrap_or(0);
                Some(UpsellAction::SuggestUpgrade { discount_basis_points: bp })
            }
            "emphasize_availability" => {
                only(a, &["message"]);
                let message = a.required("message", |v| parse::text(v, 1, 200))?;
                Some(UpsellAction::EmphasizeAvailability { message })
            }
            "offer_promotion" => {
                only(a, &["promotionCode"]);
                let code = a.required("promotionCode", |v| {
                    let s = parse::text(v, 3, 32)?;
                    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                        Ok(s.to_ascii_uppercase())
                    } else {
                        Err("must be 3-32 letters, digits, - or _".into())
                    }
                })?;
                Some(UpsellAction::OfferPromotion { promotion_code: code })
            }
            _ => {
                a.fail(
                    "type",
                    "must be show_next_tier_benefits, suggest_upgrade, emphasize_availability or offer_promotion",
                );
                None
            }
        }
    })
}

fn read_conditions(f: &mut Fields<'_>) -> Option<UpsellConditions> {
    f.object("conditions", &["segments", "tiers", "billingPeriods", "newCustomer"], |c| {
        Some(UpsellConditions {
            segments: c.optional("segments", slugs).unwrap_or_default(),
            tiers: c.optional("tiers", slugs).unwrap_or_default(),
            billing_periods: c
                .optional("billingPeriods", |v| {
                    let items = v.as_array().ok_or("must be an array of monthly or yearly")?;
                    items.iter().map(BillingPeriod::parse).collect::<Result<Vec<_>, _>>()
                })
                .unwrap_or_default(),
            new_customer: c.optional("newCustomer", parse::boolean),
        })
    })
}

fn name(v: &Value) -> Result<String, String> {
    parse::text(v, 1, 100)
}

fn priority(v: &Value) -> Result<u32, String> {
    parse::int_in(v, 0, 10_000).map(|n| n as u32)
}

/// `POST /api/admin/upsell-rules`.
pub fn parse_new(body: &Value, by: &Actor) -> Result<UpsellRule, ValidationError> {
    let mut f = Fields::new(body, &["ruleId", "name", "trigger", "conditions", "action", "priority", "active"]);
    let rule_id = f.required("ruleId", parse::slug);
    let name = f.required("name", name);
    let trigger = read_trigger(&mut f);
    let conditions = read_conditions(&mut f).unwrap_or_default();
    let action = read_action(&mut f);
    let priority = f.optional("priority", priority).unwrap_or(100);
    let active = f.optional("active", parse::boolean).unwrap_or(true);
    f.finish()?;
    match (rule_id, name, trigger, action) {
        (Some(rule_id), Some(name), Some(trigger), Some(action)) => Ok(UpsellRule {
            rule_id,
            name,
            trigger,
            conditions,
            action,
            priority,
            active,
            version: 1,
            updated_at: by.at.clone(),
            updated_by: by.id.clone(),
        }),
        _ => Err(ValidationError::single("body", "is incomplete")),
    }
}

/// `PUT /api/admin/upsell-rules/{ruleId}`: `version` and the fields to change
/// (`trigger`, `conditions` and `action` are replaced whole).
pub fn parse_edit(
    body: &Value,
    before: &UpsellRule,
    by: &Actor,
) -> Result<Result<UpsellRule, UpsellError>, ValidationError> {
    let mut f = Fields::new(body, &["version", "name", "trigger", "conditions", "action", "priority", "active"]);
    let version = f.required("version", |v| parse::int_in(v, 1, i64::MAX).map(|n| n as u64));
    let name = f.optional("name", name);
    let trigger = if f.has("trigger") { read_trigger(&mut f) } else { None };
    let conditions = read_conditions(&mut f);
    let action = if f.has("action") { read_action(&mut f) } else { None };
    let priority = f.optional("priority", priority);
    let active = f.optional("active", parse::boolean);
    f.finish()?;
    if version != Some(before.version) {
        return Ok(Err(UpsellError::VersionConflict { current: Some(before.version) }));
    }
    let mut after = before.clone();
    after.name = name.unwrap_or(after.name);
    after.trigger = trigger.unwrap_or(after.trigger);
    after.conditions = conditions.unwrap_or(after.conditions);
    after.action = action.unwrap_or(after.action);
    after.priority = priority.unwrap_or(after.priority);
    after.active = active.unwrap_or(after.active);
    after.version += 1;
    after.updated_at = by.at.clone();
    after.updated_by = by.id.clone();
    Ok(Ok(after))
}

/// `POST /api/upsell/evaluate`: what the visitor or partner is looking at.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluateRequest {
    pub tier_id: String,
    pub billing_period: BillingPeriod,
    pub add_ons: Vec<String>,
    pub start_date: Option<chrono::NaiveDate>,
    pub visitor_id: Option<String>,
}

impl EvaluateRequest {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["tierId", "billingPeriod", "addOns", "startDate", "visitorId"]);
        let tier_id = f.required("tierId", parse::slug);
        let billing_period = f.optional("billingPeriod", BillingPeriod::parse).unwrap_or(BillingPeriod::Monthly);
        let add_ons = f.optional("addOns", |v| parse::slugs(v, MAX_ADD_ONS)).unwrap_or_default();
        let start_date = f.optional("startDate", parse::date);
        let visitor_id = f.optional("visitorId", |v| {
            let s = parse::text(v, 1, 128)?;
            if s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')) {
                Ok(s)
            } else {
                Err("must be 1-128 letters, digits or - _ . :".into())
            }
        });
        f.finish()?;
        Ok(Self { tier_id: tier_id.unwrap_or_default(), billing_period, add_ons, start_date, visitor_id })
    }
}

/// The highest share of a limit a partner has used this month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageShare {
    pub metric: String,
    pub used: u64,
    pub limit: u64,
}

impl UsageShare {
    /// The partner's most-used limited metric (ties by metric name), from its
    /// counters and its tier's limits; `None` without a limited metric.
    pub fn highest(counts: &std::collections::BTreeMap<String, u64>, tier: &Tier) -> Option<Self> {
        tier.limits
            .iter()
            .filter_map(|(metric, limit)| {
                let limit = (*limit)?;
                (limit > 0).then(|| Self {
                    metric: metric.clone(),
                    used: counts.get(metric).copied().unwrap_or(0),
                    limit,
                })
            })
            .max_by(|a, b| {
                (u128::from(a.used) * u128::from(b.limit))
                    .cmp(&(u128::from(b.used) * u128::from(a.limit)))
                    .then_with(|| b.metric.cmp(&a.metric))
            })
    }

    fn at_least(&self, basis_points: u32) -> bool {
        u128::from(self.used) * 10_000 >= u128::from(self.limit) * u128::from(basis_points)
    }
}

/// Everything an evaluation judges.
#[derive(Debug, Clone)]
pub struct UpsellContext<'a> {
    pub viewed: &'a Tier,
    pub period: BillingPeriod,
    pub add_ons: usize,
    pub today: chrono::NaiveDate,
    pub start_date: chrono::NaiveDate,
    pub new_customer: bool,
    /// A signed-in partner's highest usage share.
    pub usage: Option<UsageShare>,
    /// A signed-in partner's trial end.
    pub trial_end: Option<chrono::NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsellOffer {
    pub rule_id: String,
    pub rule_name: String,
    /// The trigger's and the action's wire names.
    pub trigger: &'static str,
    pub action: &'static str,
    /// Why this offer is shown, in words.
    pub reason: String,
    pub from_tier_id: String,
    pub to_tier_id: Option<String>,
    pub to_tier_name: Option<String>,
    /// Target price − viewed price, per billing period, on the prices the visitor
    /// pays today (after pricing rules), in cents.
    pub price_difference: Option<i64>,
    /// `discountBasisPoints` of the target's price, rounded half away from zero.
    pub saving: Option<i64>,
    pub upgrade_price: Option<i64>,
    pub features_gained: Vec<String>,
    pub promotion_code: Option<String>,
    pub message: Option<String>,
}

impl UpsellTrigger {
    pub fn wire(&self) -> &'static str {
        match self {
            Self::ViewingLevel { .. } => "viewing_level",
            Self::AddOnsSelected { .. } => "add_ons_selected",
            Self::HighDemandStart { .. } => "high_demand_start",
            Self::UsageShare { .. } => "usage_share",
            Self::TrialEnding { .. } => "trial_ending",
        }
    }

    /// Why it fired, or `None` when it does not.
    fn fires(&self, ctx: &UpsellContext<'_>) -> Option<String> {
        use chrono::Datelike;
        match self {
            Self::ViewingLevel { tier_level } => (ctx.viewed.tier_level == *tier_level)
                .then(|| format!("viewing a level-{tier_level} tier ({})", ctx.viewed.name)),
            Self::AddOnsSelected { min } => (ctx.add_ons >= *min as usize)
                .then(|| format!("{} add-ons selected (rule: {min} or more)", ctx.add_ons)),
            Self::HighDemandStart { start_months } => start_months
                .contains(ctx.start_date.month())
                .then(|| format!("a high-demand start date ({})", ctx.start_date)),
            Self::UsageShare { basis_points } => ctx.usage.as_ref().filter(|u| u.at_least(*basis_points)).map(|u| {
                format!("{} of {} {} used this month (rule: {}%)", u.used, u.limit, u.metric, basis_points / 100)
            }),
            Self::TrialEnding { within_days } => ctx.trial_end.and_then(|end| {
                let left = (end - ctx.today).num_days();
                (0..=i64::from(*within_days)).contains(&left).then(|| format!("the trial ends in {left} days ({end})"))
            }),
        }
    }
}

impl UpsellAction {
    pub fn wire(&self) -> &'static str {
        match self {
            Self::ShowNextTierBenefits => "show_next_tier_benefits",
            Self::SuggestUpgrade { .. } => "suggest_upgrade",
            Self::EmphasizeAvailability { .. } => "emphasize_availability",
            Self::OfferPromotion { .. } => "offer_promotion",
        }
    }

    fn needs_target(&self) -> bool {
        matches!(self, Self::ShowNextTierBenefits | Self::SuggestUpgrade { .. })
    }
}

impl UpsellConditions {
    fn hold(&self, ctx: &UpsellContext<'_>) -> bool {
        let listed = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        listed(&self.segments, &ctx.viewed.segment)
            && listed(&self.tiers, &ctx.viewed.tier_id)
            && (self.billing_periods.is_empty() || self.billing_periods.contains(&ctx.period))
            && self.new_customer.is_none_or(|n| n == ctx.new_customer)
    }
}

/// The tier an upsell points to: the viewed tier's first live `upsellTargets`
/// entry, else the next level up in its segment (the popular one first, then by
/// sort order).
pub fn next_tier<'a>(viewed: &Tier, live: &'a [Tier]) -> Option<&'a Tier> {
    if let Some(t) = viewed.upsell_targets.iter().find_map(|id| live.iter().find(|t| &t.tier_id == id)) {
        return Some(t);
    }
    let up: Vec<&Tier> =
        live.iter().filter(|t| t.segment == viewed.segment && t.tier_level > viewed.tier_level).collect();
    let level = up.iter().map(|t| t.tier_level).min()?;
    up.into_iter().filter(|t| t.tier_level == level).min_by_key(|t| (!t.popular, t.sort_order, t.tier_id.clone()))
}

/// `price × bp / 10 000`, rounded half away from zero (prices are never negative).
fn share_of(price: i64, basis_points: u32) -> i64 {
    let scaled = i128::from(price.max(0)) * i128::from(basis_points);
    i64::try_from((scaled * 2 + 10_000) / 20_000).unwrap_or(i64::MAX)
}

/// The offers that apply, in rule order, at most `MAX_OFFERS`. `price` gives a
/// tier's price for the context's period as the visitor would pay it today.
pub fn evaluate(
    rules: &[UpsellRule],
    ctx: &UpsellContext<'_>,
    live: &[Tier],
    price: impl Fn(&Tier) -> i64,
) -> Vec<UpsellOffer> {
    let mut ordered: Vec<&UpsellRule> = rules.iter().filter(|r| r.active).collect();
    ordered.sort_by(|a, b| (a.priority, &a.rule_id).cmp(&(b.priority, &b.rule_id)));
    let target = next_tier(ctx.viewed, live);
    let mut offers = Vec::new();
    for rule in ordered {
        if offers.len() == MAX_OFFERS {
            break;
        }
        let Some(reason) = rule.trigger.fires(ctx).filter(|_| rule.conditions.hold(ctx)) else { continue };
        if rule.action.needs_target() && target.is_none() {
            continue;
        }
        let to = target.filter(|_| !matches!(rule.action, UpsellAction::OfferPromotion { .. }));
        let difference = to.map(|t| price(t) - price(ctx.viewed));
        let saving = match (&rule.action, to) {
            (UpsellAction::SuggestUpgrade { discount_basis_points }, Some(t)) if *discount_basis_points > 0 => {
                Some(share_of(price(t), *discount_basis_points))
            }
            _ => None,
        };
        let gained: Vec<String> = match to {
            Some(t) => {
                let had: BTreeSet<&str> =
                    ctx.viewed.features.iter().filter(|f| f.enabled).map(|f| f.feature_id.as_str()).collect();
                t.features
                    .iter()
                    .filter(|f| f.enabled && !had.contains(f.feature_id.as_str()))
                    .map(|f| f.name.clone())
                    .collect()
            }
            None => Vec::new(),
        };
        offers.push(UpsellOffer {
            rule_id: rule.rule_id.clone(),
            rule_name: rule.name.clone(),
            trigger: rule.trigger.wire(),
            action: rule.action.wire(),
            reason,
            from_tier_id: ctx.viewed.tier_id.clone(),
            to_tier_id: to.map(|t| t.tier_id.clone()),
            to_tier_name: to.map(|t| t.name.clone()),
            price_difference: difference,
            saving,
            upgrade_price: to.map(|t| price(t) - saving.unwrap_or(0)),
            features_gained: gained,
            promotion_code: match &rule.action {
                UpsellAction::OfferPromotion { promotion_code } => Some(promotion_code.clone()),
                _ => None,
            },
            message: match &rule.action {
                UpsellAction::EmphasizeAvailability { message } => Some(message.clone()),
                _ => None,
            },
        });
    }
    offers
}

/// Seed 002's three rules, as `make run` seeds them.
pub fn default_rules(by: &Actor) -> Vec<UpsellRule> {
    let rule = |id: &str, name: &str, trigger, action, priority| UpsellRule {
        rule_id: id.into(),
        name: name.into(),
        trigger,
        conditions: UpsellConditions::default(),
        action,
        priority,
        active: true,
        version: 1,
        updated_at: by.at.clone(),
        updated_by: by.id.clone(),
    };
    vec![
        rule(
            "level-one-benefits",
            "Show the next tier's benefits",
            UpsellTrigger::ViewingLevel { tier_level: 1 },
            UpsellAction::ShowNextTierBenefits,
            10,
        ),
        rule(
            "add-ons-upgrade",
            "Two add-ons: the next tier may be better value",
            UpsellTrigger::AddOnsSelected { min: 2 },
            UpsellAction::SuggestUpgrade { discount_basis_points: 500 },
            20,
        ),
        rule(
            "peak-availability",
            "Peak season: limited availability",
            UpsellTrigger::HighDemandStart { start_months: MonthWindow { from: 6, to: 9 } },
            UpsellAction::EmphasizeAvailability { message: "Peak season dates fill quickly.".into() },
            30,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::defaults::default_tiers;
    use serde_json::json;

    fn by() -> Actor {
        Actor::fixture("u-admin", "2026-07-01T09:00:00Z")
    }

    fn catalog() -> Vec<Tier> {
        default_tiers()
            .into_iter()
            .map(|t| {
                let mut tier = t.into_tier(&by());
                tier.segment = "essential".into();
                tier
            })
            .collect()
    }

    fn ctx<'a>(viewed: &'a Tier) -> UpsellContext<'a> {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
        UpsellContext {
            viewed,
            period: BillingPeriod::Monthly,
            add_ons: 0,
            today: day,
            start_date: day,
            new_customer: true,
            usage: None,
            trial_end: None,
        }
    }

    #[test]
    fn seed_rules_fire_in_priority_order_with_their_reasons_and_computed_prices() {
        let live = catalog();
        let free = live.iter().find(|t| t.tier_id == "free").unwrap();
        let mut c = ctx(free);
        c.add_ons = 2;
        let offers = evaluate(&default_rules(&by()), &c, &live, |t| t.prices.monthly);
        let ids: Vec<&str> = offers.iter().map(|o| o.rule_id.as_str()).collect();
        assert_eq!(ids, ["level-one-benefits", "add-ons-upgrade", "peak-availability"]);
        let gold = live.iter().find(|t| t.tier_id == "gold").unwrap();
        let first = &offers[0];
        assert_eq!(first.to_tier_id.as_deref(), Some("gold"), "the next level up");
        assert_eq!(first.price_difference, Some(gold.prices.monthly - free.prices.monthly));
        assert!(!first.features_gained.is_empty(), "gold has features free lacks");
        assert!(first.reason.contains("level-1"), "{}", first.reason);
        // 5 % of 3,600.00 is 180.00.
        assert_eq!((offers[1].saving, offers[1].upgrade_price), (Some(18_000), Some(gold.prices.monthly - 18_000)));
        assert_eq!(offers[2].message.as_deref(), Some("Peak season dates fill quickly."));

        // In December nothing is high-demand; with no add-ons only the level rule fires.
        let mut december = ctx(free);
        december.start_date = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let offers = evaluate(&default_rules(&by()), &december, &live, |t| t.prices.monthly);
        assert_eq!(offers.len(), 1);
        // The top tier has nothing to upsell to: target-needing actions stay silent.
        let platinum = live.iter().find(|t| t.tier_id == "platinum").unwrap();
        let mut top = ctx(platinum);
        top.add_ons = 3;
        let offers = evaluate(&default_rules(&by()), &top, &live, |t| t.prices.monthly);
        assert_eq!(offers.iter().map(|o| o.rule_id.as_str()).collect::<Vec<_>>(), ["peak-availability"]);
    }

    #[test]
    fn usage_and_trial_triggers_read_the_partner_and_conditions_narrow_them() {
        let live = catalog();
        let gold = live.iter().find(|t| t.tier_id == "gold").unwrap();
        let (metric, limit) =
            gold.limits.iter().find_map(|(m, l)| l.map(|l| (m.clone(), l))).expect("a limited metric");
        let counts = std::collections::BTreeMap::from([(metric.clone(), limit * 8 / 10)]);
        let share = UsageShare::highest(&counts, gold).unwrap();
        assert_eq!(share.metric, metric);
        let rules = vec![
            parse_new(&json!({"ruleId": "usage", "name": "Usage", "priority": 10, "trigger": {"type": "usage_share", "basisPoints": 8000},
                              "action": {"type": "suggest_upgrade"}}), &by()).unwrap(),
            parse_new(&json!({"ruleId": "trial", "name": "Trial", "trigger": {"type": "trial_ending", "withinDays": 7},
                              "conditions": {"newCustomer": false},
                              "action": {"type": "offer_promotion", "promotionCode": "stay10"}}), &by()).unwrap(),
        ];
        let mut c = ctx(gold);
        c.new_customer = false;
        c.usage = Some(share.clone());
        c.trial_end = Some(c.today + chrono::Duration::days(7));
        let offers = evaluate(&rules, &c, &live, |t| t.prices.monthly);
        assert_eq!(offers.len(), 2, "{offers:?}");
        assert_eq!(offers[0].to_tier_id.as_deref(), Some("platinum"));
        assert_eq!(offers[1].promotion_code.as_deref(), Some("STAY10"));
        assert_eq!(offers[1].to_tier_id, None);
        c.usage = Some(UsageShare { used: share.used - 1, ..share });
        c.trial_end = Some(c.today + chrono::Duration::days(8));
        assert!(evaluate(&rules, &c, &live, |t| t.prices.monthly).is_empty(), "just under both thresholds");
        c.trial_end = Some(c.today);
        c.new_customer = true;
        assert!(evaluate(&rules, &c, &live, |t| t.prices.monthly).is_empty(), "existing customers only");
    }

    #[test]
    fn bad_rules_name_every_field() {
        let e = parse_new(
            &json!({"ruleId": "X Y", "name": "", "trigger": {"type": "viewing_level", "min": 2},
                    "action": {"type": "suggest_upgrade", "discountBasisPoints": 9000}, "extra": true}),
            &by(),
        )
        .unwrap_err();
        for field in ["ruleId", "name", "trigger.tierLevel", "trigger.min", "action.discountBasisPoints", "extra"] {
            assert!(e.fields.contains_key(field), "{field} in {:?}", e.fields);
        }
        let e = parse_new(
            &json!({"ruleId": "a", "name": "A", "trigger": {"type": "moon"}, "action": {"type": "x"}}),
            &by(),
        )
        .unwrap_err();
        assert!(e.fields.contains_key("trigger.type") && e.fields.contains_key("action.type"), "{e:?}");
        let rule = default_rules(&by()).remove(0);
        let stale = parse_edit(&json!({"version": 9, "active": false}), &rule, &by()).unwrap();
        assert_eq!(stale, Err(UpsellError::VersionConflict { current: Some(1) }));
        let off = parse_edit(&json!({"version": 1, "active": false}), &rule, &by()).unwrap().unwrap();
        assert_eq!((off.active, off.version), (false, 2));
        let request =
            EvaluateRequest::parse(&json!({"tierId": "gold", "addOns": ["a", "b"], "startDate": "2026-02-30"}));
        assert!(request.unwrap_err().fields.contains_key("startDate"));
    }
}
