//! Usage tracking and feature gating (seed 001 `UsageTracker`, `FeatureGate`,
//! overage billing, the free trial system; seed 000's tier limits).
//!
//! A partner's **plan** is what it may use this month: the limits and features of
//! its tier, with the custom limits of an accepted quote on top. A trialing
//! partner gets the trialled tier's plan until the trial's last day; a trial that
//! ran out without being converted falls back to the default tier's plan.
//!
//! A limit is **hard** unless the tier prices overage for that metric
//! (`overagePrices`, cents per unit): a hard limit refuses the usage that would
//! pass it, a soft one lets it through and bills each unit beyond it.
//!
//! Everything here is pure; the usage counters live in `PARTNER#{id}/USAGE#{yyyy-mm}`.

use super::partner::{Partner, SubscriptionStatus};
use super::scoring::UsageSnapshot;
use super::tier::{Feature, Tier};
use super::validation::{parse, Fields, ValidationError};
use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The metrics every tier can limit: seed 001's counters (emails processed, AI
/// responses, leads created) and seed 000's tier limits (listings, images per
/// listing). A tier may limit further camelCase metrics of its own.
pub const METRICS: [&str; 5] = ["emailsProcessed", "aiResponses", "leads", "listings", "imagesPerListing"];

/// Most units one track call may report: a product backend batches, but a single
/// call never moves a counter by more than this.
pub const MAX_TRACK_COUNT: i64 = 1_000_000;
/// Client idempotency keys: printable ASCII, as the `Idempotency-Key` header.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// Usage at this share of a limit counts as "near the limit" (seed 000
/// `limitUtilization`: "% using > 80% of limits").
pub const NEAR_LIMIT_PERCENT: u64 = 80;

/// The calendar month usage is counted in, `yyyy-mm` (UTC).
pub fn period_of(day: NaiveDate) -> String {
    format!("{:04}-{:02}", day.year(), day.month())
}

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("partner not found")]
    PartnerNotFound,
    #[error("the partner's tier is missing from the catalog")]
    TierMissing,
    #[error("this usage would pass the {metric} limit of {limit}")]
    LimitExceeded { metric: String, limit: u64, used: u64, requested: u64 },
}

/// One metric's allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Allowance {
    /// `None` = unlimited.
    pub limit: Option<u64>,
    /// Cents per unit beyond the limit; `Some` makes the limit soft.
    pub overage_price: Option<i64>,
    /// The limit comes from the partner's accepted quote, not the tier.
    pub custom: bool,
}

impl Allowance {
    pub fn is_hard(&self) -> bool {
        self.limit.is_some() && self.overage_price.is_none()
    }
}

/// Where a trialing partner stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrialState {
    /// The tier being trialled.
    pub tier_id: String,
    /// Last day of the trial.
    pub ends_on: NaiveDate,
    /// False once the trial ran out without conversion: the default tier applies.
    pub active: bool,
}

/// What a partner may use now.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub partner_id: String,
    /// The tier whose limits and features apply (the default tier after a lapsed trial).
    pub tier_id: String,
    /// Whether the applying tier is paid (for the "high usage on free" signal).
    pub paid: bool,
    pub currency: String,
    pub allowances: BTreeMap<String, Allowance>,
    pub features: Vec<Feature>,
    pub trial: Option<TrialState>,
}

/// Which tier's plan applies to `partner` on `today`: its own, or — for a trial
/// past its last day and never converted — the default tier.
pub fn plan_tier_id(partner: &Partner, today: NaiveDate, default_tier_id: &str) -> String {
    match trial_state(partner, today) {
        Some(t) if !t.active => default_tier_id.to_string(),
        _ => partner.engagement_tier.clone(),
    }
}

fn trial_state(partner: &Partner, today: NaiveDate) -> Option<TrialState> {
    if partner.subscription_status != SubscriptionStatus::Trialing {
        return None;
    }
    // A trialing partner with no end date is treated as trialing to the end of the term.
    let ends_on = partner.trial_end_date.or(partner.subscription_end_date)?;
    Some(TrialState { tier_id: partner.engagement_tier.clone(), ends_on, active: today <= ends_on })
}

/// The plan of `partner` on `today`, given the tier `plan_tier_id` named.
pub fn plan(partner: &Partner, tier: &Tier, today: NaiveDate) -> Plan {
    let mut allowances: BTreeMap<String, Allowance> = BTreeMap::new();
    for metric in METRICS {
        allowances.insert(metric.to_string(), Allowance { limit: Some(0), overage_price: None, custom: false });
    }
    // A metric the tier does not name is not part of it: a zero hard limit, so an
    // unknown allowance is never read as "unlimited".
    for (metric, limit) in &tier.limits {
        allowances.insert(metric.clone(), Allowance { limit: *limit, overage_price: None, custom: false });
    }
    for feature in tier.features.iter().filter(|f| f.enabled) {
        if let Some(limit) = feature.usage_limit {
            allowances.entry(feature.feature_id.clone()).or_insert(Allowance {
                limit: Some(limit),
                overage_price: None,
                custom: false,
            });
        }
    }
    for (metric, price) in &tier.overage_prices {
        if let Some(a) = allowances.get_mut(metric) {
            a.overage_price = Some(*price);
        }
    }
    for (metric, limit) in &partner.custom_limits {
        let a =
            allowances.entry(metric.clone()).or_insert(Allowance { limit: None, overage_price: None, custom: true });
        a.limit = Some(*limit);
        a.custom = true;
        a.overage_price = tier.overage_prices.get(metric).copied();
    }
    Plan {
        partner_id: partner.partner_id.clone(),
        tier_id: tier.tier_id.clone(),
        paid: super::tier::is_paid(tier),
        currency: tier.currency.clone(),
        allowances,
        features: tier.features.iter().filter(|f| f.enabled).cloned().collect(),
        trial: trial_state(partner, today),
    }
}

/// `POST /api/usage/track`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackRequest {
    pub metric: String,
    pub count: u64,
    pub idempotency_key: String,
    pub partner_id: Option<String>,
}

/// Months `GET /api/usage/history` covers at most (this month and the 12 before).
pub const HISTORY_MONTHS: u32 = 13;

/// One partner's monthly usage, oldest month first: `metrics[m][i]` is the count
/// of metric `m` in `months[i]` (0 for a month with no use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageHistory {
    pub partner_id: String,
    pub months: Vec<String>,
    pub metrics: BTreeMap<String, Vec<u64>>,
}

/// The history of `months` (oldest first) from the counters read by month. With
/// `only`, that metric alone (zeros when never used); else every metric used in
/// any of the months.
pub fn usage_history(
    partner_id: &str,
    months: Vec<String>,
    counters: &BTreeMap<String, BTreeMap<String, u64>>,
    only: Option<&str>,
) -> UsageHistory {
    let names: std::collections::BTreeSet<String> = match only {
        Some(m) => std::iter::once(m.to_string()).collect(),
        None => months.iter().filter_map(|m| counters.get(m)).flat_map(|c| c.keys().cloned()).collect(),
    };
    let metrics = names
        .into_iter()
        .map(|name| {
            let row = months.iter().map(|m| counters.get(m).and_then(|c| c.get(&name)).copied().unwrap_or(0)).collect();
            (name, row)
        })
        .collect();
    UsageHistory { partner_id: partner_id.to_string(), months, metrics }
}

/// `?metric=` of the history: a metric name.
pub fn metric_param(v: &Value) -> Result<String, String> {
    metric_name(v)
}

/// A metric name: a camelCase limit name or a feature id.
fn metric_name(v: &Value) -> Result<String, String> {
    let s = v.as_str().ok_or("must be a string")?;
    if parse::limit_name(v).is_ok() || parse::is_slug(s) {
        Ok(s.to_string())
    } else {
        Err("must be a metric name such as leads or emailsProcessed".into())
    }
}

fn idempotency_key(v: &Value) -> Result<String, String> {
    let s = v.as_str().ok_or("must be a string")?;
    if !s.is_empty() && s.len() <= MAX_IDEMPOTENCY_KEY_LEN && s.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(s.to_string())
    } else {
        Err(format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} printable ASCII characters"))
    }
}

/// Partner ids are ULIDs (lower case) or slugs; never contain `#`.
pub fn partner_id(v: &Value) -> Result<String, String> {
    parse::slug(v).map_err(|_| "must be a partner id".to_string())
}

impl TrackRequest {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["metric", "count", "idempotencyKey", "partnerId"]);
        let metric = f.required("metric", metric_name);
        let count = f.required("count", |v| parse::int_in(v, 1, MAX_TRACK_COUNT).map(|n| n as u64));
        let idempotency_key = f.required("idempotencyKey", idempotency_key);
        let partner_id = f.optional("partnerId", partner_id);
        f.finish()?;
        match (metric, count, idempotency_key) {
            (Some(metric), Some(count), Some(idempotency_key)) => {
                Ok(Self { metric, count, idempotency_key, partner_id })
            }
            _ => Err(ValidationError::single("body", "is incomplete")),
        }
    }
}

/// `POST /api/features/check`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureCheckRequest {
    pub feature: String,
    pub partner_id: Option<String>,
}

impl FeatureCheckRequest {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["feature", "partnerId"]);
        let feature = f.required("feature", metric_name);
        let partner_id = f.optional("partnerId", partner_id);
        f.finish()?;
        let feature = feature.ok_or_else(|| ValidationError::single("feature", "is required"))?;
        Ok(Self { feature, partner_id })
    }
}

/// How a track call is written: `ceiling` is the highest counter value the
/// conditional update may find and still add the count (hard limits only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackWrite {
    pub allowance: Allowance,
    pub ceiling: Option<u64>,
}

/// Decides how to write a track call, or refuses it outright when the count alone
/// passes a hard limit. `used` is the counter as last read, for the refusal only:
/// the decision that counts is the conditional write's.
pub fn plan_track(plan: &Plan, metric: &str, count: u64, used: u64) -> Result<TrackWrite, UsageError> {
    let allowance = *plan
        .allowances
        .get(metric)
        .ok_or_else(|| ValidationError::single("metric", format!("is not a metric of the {} tier", plan.tier_id)))?;
    let ceiling = match (allowance.is_hard(), allowance.limit) {
        (true, Some(limit)) => match limit.checked_sub(count) {
            Some(c) => Some(c),
            None => return Err(UsageError::LimitExceeded { metric: metric.into(), limit, used, requested: count }),
        },
        _ => None,
    };
    Ok(TrackWrite { allowance, ceiling })
}

/// One metric's standing this month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricUsage {
    pub metric: String,
    pub used: u64,
    /// `None` = unlimited.
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub hard: bool,
    /// Units beyond a soft limit.
    pub overage: u64,
    pub overage_price: Option<i64>,
    /// `overage × overagePrice`, in cents.
    pub overage_amount: i64,
}

pub fn metric_usage(metric: &str, allowance: &Allowance, used: u64) -> MetricUsage {
    let overage = match (allowance.limit, allowance.overage_price) {
        (Some(limit), Some(_)) => used.saturating_sub(limit),
        _ => 0,
    };
    let price = allowance.overage_price.unwrap_or(0);
    MetricUsage {
        metric: metric.to_string(),
        used,
        limit: allowance.limit,
        remaining: allowance.limit.map(|l| l.saturating_sub(used)),
        hard: allowance.is_hard(),
        overage,
        overage_price: allowance.overage_price,
        overage_amount: overage_amount(overage, price),
    }
}

/// Units × cents per unit, saturating: counters are bounded far below overflow,
/// but a bill must never wrap.
pub fn overage_amount(units: u64, unit_price: i64) -> i64 {
    i64::try_from(units).unwrap_or(i64::MAX).saturating_mul(unit_price.max(0))
}

/// `GET /api/usage/current`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    pub partner_id: String,
    pub tier_id: String,
    pub period: String,
    pub currency: String,
    pub metrics: Vec<MetricUsage>,
    /// Sum of every metric's overage amount, in cents: what the next invoice adds.
    pub overage_total: i64,
    pub trial: Option<TrialState>,
}

pub fn report(plan: &Plan, period: &str, counts: &BTreeMap<String, u64>) -> UsageReport {
    let metrics: Vec<MetricUsage> =
        plan.allowances.iter().map(|(m, a)| metric_usage(m, a, counts.get(m).copied().unwrap_or(0))).collect();
    let overage_total = metrics.iter().fold(0i64, |sum, m| sum.saturating_add(m.overage_amount));
    UsageReport {
        partner_id: plan.partner_id.clone(),
        tier_id: plan.tier_id.clone(),
        period: period.to_string(),
        currency: plan.currency.clone(),
        metrics,
        overage_total,
        trial: plan.trial.clone(),
    }
}

/// One overage line for the next invoice (a Stripe invoice item once the billing
/// period closes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverageLine {
    pub metric: String,
    pub quantity: u64,
    pub unit_amount: i64,
    pub amount: i64,
    pub currency: String,
    pub period: String,
}

pub fn overage_lines(report: &UsageReport) -> Vec<OverageLine> {
    report
        .metrics
        .iter()
        .filter(|m| m.overage > 0)
        .map(|m| OverageLine {
            metric: m.metric.clone(),
            quantity: m.overage,
            unit_amount: m.overage_price.unwrap_or(0),
            amount: m.overage_amount,
            currency: report.currency.clone(),
            period: report.period.clone(),
        })
        .collect()
}

/// `POST /api/features/check`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureCheck {
    pub feature: String,
    pub allowed: bool,
    /// `included`, `within_limit`, `unlimited`, `overage` (allowed, billed),
    /// `limit_reached`, `trial_ended`, `not_in_tier`.
    pub reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    pub tier_id: String,
}

/// Seed 001 `FeatureGate.can_access_feature`: a metric is allowed while under its
/// limit (or past a soft one, billed); a feature while the applying tier includes it.
/// `trialled` is the trialled tier when a lapsed trial put the partner back on the
/// default tier, to say why a feature went away.
pub fn check_feature(
    plan: &Plan,
    feature: &str,
    counts: &BTreeMap<String, u64>,
    trialled: Option<&Tier>,
) -> FeatureCheck {
    let answer = |allowed, reason, limit, used| FeatureCheck {
        feature: feature.to_string(),
        allowed,
        reason,
        limit,
        used,
        tier_id: plan.tier_id.clone(),
    };
    let included = plan.features.iter().any(|f| f.feature_id == feature);
    if let Some(a) = plan.allowances.get(feature) {
        let used = counts.get(feature).copied().unwrap_or(0);
        return match a.limit {
            None => answer(true, "unlimited", None, Some(used)),
            Some(limit) if used < limit => {
                answer(true, if included { "included" } else { "within_limit" }, Some(limit), Some(used))
            }
            Some(limit) if a.overage_price.is_some() => answer(true, "overage", Some(limit), Some(used)),
            Some(limit) => answer(false, "limit_reached", Some(limit), Some(used)),
        };
    }
    if included {
        return answer(true, "included", None, None);
    }
    let lost_with_trial = trialled.is_some_and(|t| t.features.iter().any(|f| f.enabled && f.feature_id == feature));
    answer(false, if lost_with_trial { "trial_ended" } else { "not_in_tier" }, None, None)
}

/// Limit utilisation for churn-risk and upsell scoring: the average and the peak
/// share of each finite, non-zero limit used this month. `None` when the plan has
/// no such limit (nothing to measure against).
pub fn snapshot(plan: &Plan, counts: &BTreeMap<String, u64>) -> Option<UsageSnapshot> {
    let shares: Vec<u64> = plan
        .allowances
        .iter()
        .filter_map(|(m, a)| a.limit.filter(|l| *l > 0).map(|l| counts.get(m).copied().unwrap_or(0) * 100 / l))
        .collect();
    if shares.is_empty() {
        return None;
    }
    let average = shares.iter().sum::<u64>() / shares.len() as u64;
    let max = shares.iter().copied().max().unwrap_or(0);
    Some(UsageSnapshot {
        average_percent: u32::try_from(average).unwrap_or(u32::MAX),
        max_percent: u32::try_from(max).unwrap_or(u32::MAX),
    })
}

/// True when `used` is at or above the near-limit share of a finite limit.
pub fn near_limit(allowance: &Allowance, used: u64) -> bool {
    allowance.limit.is_some_and(|l| l > 0 && used.saturating_mul(100) >= l.saturating_mul(NEAR_LIMIT_PERCENT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::defaults::default_tiers;
    use serde_json::json;

    fn tier(id: &str) -> Tier {
        let change = crate::domain::actor::Actor::fixture("t", "2026-01-01T00:00:00.000Z");
        default_tiers().into_iter().find(|t| t.tier_id == id).unwrap().into_tier(&change)
    }

    fn partner(tier: &str) -> Partner {
        let catalog: Vec<Tier> = default_tiers()
            .into_iter()
            .map(|t| t.into_tier(&crate::domain::actor::Actor::fixture("t", "2026-01-01T00:00:00.000Z")))
            .collect();
        let ctx = crate::domain::subscription::TransitionContext {
            today: day("2026-01-01"),
            at: "2026-01-01T00:00:00.000Z".into(),
            actor: "t".into(),
            transition_id: "tr1".into(),
            movement_id: "mv1".into(),
            request_id: None,
            trigger: crate::domain::subscription::Trigger {
                trigger_type: crate::domain::subscription::TriggerType::SalesAssisted,
                sales_rep: None,
                promotion_id: None,
                reason: None,
            },
        };
        let new =
            crate::domain::partner::NewPartner::parse(&json!({"companyName": "A", "primaryEmail": "a@b.co"})).unwrap();
        let cat = crate::domain::subscription::Catalog::new(&catalog);
        let mut p = crate::domain::subscription::plan_signup("p1", new, cat, &ctx).unwrap().after;
        p.engagement_tier = tier.into();
        p
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn counts(entries: &[(&str, u64)]) -> BTreeMap<String, u64> {
        entries.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn periods_are_calendar_months() {
        assert_eq!(period_of(day("2026-03-31")), "2026-03");
        assert_eq!(period_of(day("2026-04-01")), "2026-04");
    }

    #[test]
    fn limits_are_hard_unless_the_tier_prices_overage() {
        let gold = plan(&partner("gold"), &tier("gold"), day("2026-01-10"));
        assert!(gold.allowances["aiResponses"].is_hard());
        assert!(!gold.allowances["leads"].is_hard());
        assert_eq!(gold.allowances["leads"].overage_price, Some(50));
        let platinum = plan(&partner("platinum"), &tier("platinum"), day("2026-01-10"));
        assert_eq!(platinum.allowances["leads"].limit, None);
        assert!(!platinum.allowances["leads"].is_hard());
    }

    #[test]
    fn custom_limits_override_the_tier() {
        let mut p = partner("gold");
        p.custom_limits.insert("aiResponses".into(), 900);
        p.custom_limits.insert("leads".into(), 300);
        let plan = plan(&p, &tier("gold"), day("2026-01-10"));
        assert_eq!(plan.allowances["aiResponses"].limit, Some(900));
        assert!(plan.allowances["aiResponses"].custom);
        assert_eq!(plan.allowances["leads"].limit, Some(300));
        assert_eq!(plan.allowances["leads"].overage_price, Some(50), "a custom limit keeps the tier's overage price");
    }

    #[test]
    fn hard_limits_set_a_ceiling_and_refuse_a_count_above_the_limit() {
        let free = plan(&partner("free"), &tier("free"), day("2026-01-10"));
        assert_eq!(plan_track(&free, "leads", 3, 0).unwrap().ceiling, Some(7));
        assert!(matches!(plan_track(&free, "leads", 11, 0), Err(UsageError::LimitExceeded { limit: 10, .. })));
        let gold = plan(&partner("gold"), &tier("gold"), day("2026-01-10"));
        assert_eq!(plan_track(&gold, "leads", 500, 0).unwrap().ceiling, None, "soft limits never refuse");
        assert!(matches!(plan_track(&gold, "nope", 1, 0), Err(UsageError::Invalid(_))));
    }

    #[test]
    fn overage_is_units_beyond_a_soft_limit_times_the_unit_price() {
        let gold = plan(&partner("gold"), &tier("gold"), day("2026-01-10"));
        let r = report(&gold, "2026-01", &counts(&[("leads", 237), ("aiResponses", 12)]));
        let leads = r.metrics.iter().find(|m| m.metric == "leads").unwrap();
        assert_eq!((leads.used, leads.limit, leads.remaining, leads.overage), (237, Some(200), Some(0), 37));
        assert_eq!(leads.overage_amount, 37 * 50);
        assert_eq!(r.overage_total, 1850);
        let lines = overage_lines(&r);
        assert_eq!(lines.len(), 1);
        assert_eq!((lines[0].quantity, lines[0].unit_amount, lines[0].amount), (37, 50, 1850));
        assert_eq!(overage_amount(u64::MAX, 50), i64::MAX);
    }

    #[test]
    fn a_trial_gives_the_trialled_tier_until_its_last_day() {
        let mut p = partner("gold");
        p.subscription_status = SubscriptionStatus::Trialing;
        p.trial_end_date = Some(day("2026-01-15"));
        assert_eq!(plan_tier_id(&p, day("2026-01-15"), "free"), "gold");
        assert_eq!(plan_tier_id(&p, day("2026-01-16"), "free"), "free");
        let lapsed = plan(&p, &tier("free"), day("2026-01-16"));
        assert_eq!(lapsed.trial.as_ref().map(|t| t.active), Some(false));
        let check = check_feature(&lapsed, "pcr_boost", &BTreeMap::new(), Some(&tier("gold")));
        assert_eq!((check.allowed, check.reason), (false, "trial_ended"));
        p.subscription_status = SubscriptionStatus::Active;
        assert_eq!(plan_tier_id(&p, day("2026-03-01"), "free"), "gold");
    }

    #[test]
    fn feature_checks_per_tier() {
        let free = plan(&partner("free"), &tier("free"), day("2026-01-10"));
        let gold = plan(&partner("gold"), &tier("gold"), day("2026-01-10"));
        let platinum = plan(&partner("platinum"), &tier("platinum"), day("2026-01-10"));
        let none = BTreeMap::new();
        assert_eq!(check_feature(&free, "basic_profile", &none, None).reason, "included");
        assert_eq!(check_feature(&free, "pcr_boost", &none, None).reason, "not_in_tier");
        assert!(check_feature(&gold, "pcr_boost", &none, None).allowed);
        assert!(!check_feature(&gold, "priority_placement", &none, None).allowed);
        assert!(check_feature(&platinum, "priority_placement", &none, None).allowed);
        let full = counts(&[("leads", 10), ("aiResponses", 3)]);
        let c = check_feature(&free, "leads", &full, None);
        assert_eq!((c.allowed, c.reason, c.limit, c.used), (false, "limit_reached", Some(10), Some(10)));
        assert_eq!(check_feature(&free, "aiResponses", &full, None).reason, "within_limit");
        let over = counts(&[("leads", 250)]);
        assert_eq!(check_feature(&gold, "leads", &over, None).reason, "overage");
        assert_eq!(check_feature(&platinum, "leads", &over, None).reason, "unlimited");
    }

    #[test]
    fn snapshot_feeds_scoring_with_average_and_peak_utilisation() {
        let free = plan(&partner("free"), &tier("free"), day("2026-01-10"));
        let s = snapshot(&free, &counts(&[("leads", 9), ("emailsProcessed", 50)])).unwrap();
        // leads 90%, emails 50%, aiResponses 0, listings 0, images 0 → average 28.
        assert_eq!((s.average_percent, s.max_percent), (28, 90));
        assert!(near_limit(&free.allowances["leads"], 8));
        assert!(!near_limit(&free.allowances["leads"], 7));
    }

    #[test]
    fn bad_input_names_each_field() {
        let err = TrackRequest::parse(&json!({"metric": "no such!", "count": 0, "used": 3})).unwrap_err();
        let fields: Vec<&str> = err.fields.keys().map(String::as_str).collect();
        assert_eq!(fields, vec!["count", "idempotencyKey", "metric", "used"]);
        let err = TrackRequest::parse(&json!({"metric": "leads", "count": 1.5, "idempotencyKey": "a b"})).unwrap_err();
        assert!(err.fields.contains_key("count") && err.fields.contains_key("idempotencyKey"));
        let ok = TrackRequest::parse(&json!({"metric": "leads", "count": 2, "idempotencyKey": "k-1"})).unwrap();
        assert_eq!((ok.count, ok.partner_id), (2, None));
        assert!(FeatureCheckRequest::parse(&json!({})).unwrap_err().fields.contains_key("feature"));
    }
}
