//! Revenue analytics (seed 000 §2.1, seed 001): what each transition adds to the
//! monthly aggregates, and every figure the analytics endpoints report, computed
//! from those aggregates alone. The definitions and the rounding are written down
//! in docs/analytics.md; the functions here are the single implementation of them.
//!
//! Aggregates are sums of per-transition deltas, so any month's closing value is
//! the live value minus the deltas of the months after it: exact to the cent, and
//! independent of whether the daily snapshot job ran.

use super::money::BillingPeriod;
use super::partner::{Partner, SubscriptionStatus};
use super::revenue::{MovementKind, TierCounts};
use super::transition::TransitionEvent;
use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    #[error("tier not found")]
    TierNotFound,
}

/// LTV when a tier lost no customer last month, and its ceiling otherwise: five
/// years of ARPA. A churn of 0 would make ARPA ÷ churn infinite.
pub const LTV_CAP_MONTHS: i64 = 60;
/// Months of trends per tier.
pub const TREND_MONTHS: u32 = 12;

/// `yyyy-mm` of a day.
pub fn month_of(day: NaiveDate) -> String {
    day.format("%Y-%m").to_string()
}

/// Parses `yyyy-mm` (exactly four digits, `-`, two digits) into its first day.
pub fn parse_month(raw: &str) -> Option<NaiveDate> {
    let b = raw.as_bytes();
    let shaped = b.len() == 7 && b[4] == b'-' && b.iter().enumerate().all(|(i, c)| i == 4 || c.is_ascii_digit());
    if !shaped {
        return None;
    }
    NaiveDate::parse_from_str(&format!("{raw}-01"), "%Y-%m-%d").ok()
}

/// The month `n` months before `month` (`yyyy-mm`).
pub fn month_minus(month: &str, n: u32) -> String {
    let first = parse_month(month).unwrap_or(NaiveDate::MIN);
    month_of(first.checked_sub_months(Months::new(n)).unwrap_or(NaiveDate::MIN))
}

/// Months `from..=to`, oldest first.
pub fn months_between(from: &str, to: &str) -> Vec<String> {
    let (Some(mut at), Some(end)) = (parse_month(from), parse_month(to)) else { return Vec::new() };
    let mut out = Vec::new();
    while at <= end {
        out.push(month_of(at));
        at = match at.checked_add_months(Months::new(1)) {
            Some(next) => next,
            None => break,
        };
    }
    out
}

/// Months between two `yyyy-mm` values (`to − from`).
pub fn month_distance(from: &str, to: &str) -> i64 {
    match (parse_month(from), parse_month(to)) {
        (Some(a), Some(b)) => i64::from(b.year() - a.year()) * 12 + i64::from(b.month()) - i64::from(a.month()),
        _ => 0,
    }
}

// ---- Rounding -------------------------------------------------------------------

/// `num ÷ den` rounded half away from zero; 0 when `den` is 0.
pub fn div_round(num: i64, den: i64) -> i64 {
    if den == 0 {
        return 0;
    }
    let (num, den) = (i128::from(num), i128::from(den));
    let sign = if (num < 0) != (den < 0) { -1 } else { 1 };
    let (n, d) = (num.abs(), den.abs());
    let q = (2 * n + d) / (2 * d);
    (sign * q) as i64
}

/// `a × b ÷ den`, multiplied in 128 bits and rounded once like `div_round`;
/// saturates at the bounds of i64.
pub fn mul_div_round(a: i64, b: i64, den: i64) -> i64 {
    if den == 0 {
        return 0;
    }
    let (num, den) = (i128::from(a) * i128::from(b), i128::from(den));
    let sign = if (num < 0) != (den < 0) { -1 } else { 1 };
    let (n, d) = (num.abs(), den.abs());
    // (n + ⌊d/2⌋) ÷ d rounds half up for odd and even d alike, without doubling n.
    let q = sign * ((n + d / 2) / d);
    q.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// A percentage with two decimals (`num ÷ den × 100`, half away from zero), as
/// basis points; `None` when the base is 0.
pub fn rate_bp(num: i64, den: i64) -> Option<i64> {
    (den != 0).then(|| div_round(num.saturating_mul(10_000), den))
}

/// A ratio with two decimals, in hundredths; 0 when `den` is 0.
pub fn ratio_centi(num: i64, den: i64) -> i64 {
    div_round(num.saturating_mul(100), den)
}

/// Hundredths as the JSON number the dashboard shows (`1234` → `12.34`).
pub fn centi(v: i64) -> f64 {
    v as f64 / 100.0
}

// ---- What a transition adds -----------------------------------------------------

/// One tier's flows in one month (`STATS#{tier}/MONTH#{yyyy-mm}`), every field a sum
/// of transitions' deltas. Counts are partners; amounts are MRR cents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TierFlows {
    /// Partners whose subscription on this tier started (signup, move onto it,
    /// reactivation) / ended (move off it, expiry, immediate cancellation).
    pub entered: i64,
    pub exited: i64,
    pub upgrades_in: i64,
    pub downgrades_out: i64,
    /// First payments on this tier (from the free tier or a trial).
    pub conversions: i64,
    /// Partners who became paying customers of this tier: a first payment, a
    /// reactivation, or a paying customer arriving from another tier. Every
    /// conversion is one, so conversions ÷ payingIn is at most 100%.
    pub paying_in: i64,
    pub signups: i64,
    /// Partners starting their first trial on this tier.
    pub trial_starts: i64,
    /// First payments straight from a running trial.
    pub trial_conversions: i64,
    /// First payments by partners who never trialled.
    pub direct_paid: i64,
    /// Customers lost from this tier, not counting partners who started paying in
    /// the same month (the churn-rate numerator).
    pub churned: i64,
    /// Every churn from this tier.
    pub churned_all: i64,
    pub new_mrr: i64,
    pub expansion_mrr: i64,
    pub contraction_mrr: i64,
    pub churn_mrr: i64,
    pub reactivation_mrr: i64,
    pub new_count: i64,
    pub expansion_count: i64,
    pub contraction_count: i64,
    pub churn_count: i64,
    pub reactivation_count: i64,
    /// Changes of the tier's live figures, to rebuild month-end values.
    pub d_subscribed: i64,
    pub d_paying: i64,
    pub d_mrr: i64,
    pub d_mrr_monthly: i64,
    pub d_mrr_yearly: i64,
}

impl TierFlows {
    pub fn plus(self, o: Self) -> Self {
        let mut out = self;
        let mut other = o;
        for (a, b) in out.counters_mut().into_iter().zip(other.counters_mut()) {
            *a += *b;
        }
        out
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// Every counter, for adding two months' flows field by field.
    fn counters_mut(&mut self) -> [&mut i64; 27] {
        [
            &mut self.entered,
            &mut self.exited,
            &mut self.upgrades_in,
            &mut self.downgrades_out,
            &mut self.conversions,
            &mut self.paying_in,
            &mut self.signups,
            &mut self.trial_starts,
            &mut self.trial_conversions,
            &mut self.direct_paid,
            &mut self.churned,
            &mut self.churned_all,
            &mut self.new_mrr,
            &mut self.expansion_mrr,
            &mut self.contraction_mrr,
            &mut self.churn_mrr,
            &mut self.reactivation_mrr,
            &mut self.new_count,
            &mut self.expansion_count,
            &mut self.contraction_count,
            &mut self.churn_count,
            &mut self.reactivation_count,
            &mut self.d_subscribed,
            &mut self.d_paying,
            &mut self.d_mrr,
            &mut self.d_mrr_monthly,
            &mut self.d_mrr_yearly,
        ]
    }

    /// What these flows add to the all-time counters kept on `STATS#{tier}/CURRENT`
    /// next to the live counts.
    pub fn current(&self) -> CurrentFlows {
        CurrentFlows {
            signups: self.signups,
            trial_starts: self.trial_starts,
            trial_conversions: self.trial_conversions,
            direct_paid: self.direct_paid,
            first_payments: self.conversions,
            mrr_monthly: self.d_mrr_monthly,
            mrr_yearly: self.d_mrr_yearly,
        }
    }
}

/// One signup cohort's change in one month (`COHORTS / {cohort}#{month}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CohortFlows {
    pub signups: i64,
    pub d_subscribed: i64,
    pub d_paying: i64,
    pub d_mrr: i64,
}

impl CohortFlows {
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// Everything one transition adds to the analytics aggregates of its month.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyticsDelta {
    pub month: String,
    pub tiers: Vec<(String, TierFlows)>,
    /// Signup month and the flows.
    pub cohort: Option<(String, CohortFlows)>,
}

/// An active subscription (`Partner::is_active_subscription`, the one definition).
pub fn subscribed(p: &Partner) -> bool {
    p.is_active_subscription()
}

fn mrr_split(p: &Partner) -> (i64, i64) {
    match p.billing_period {
        Some(BillingPeriod::Monthly) => (p.mrr, 0),
        Some(BillingPeriod::Yearly) => (0, p.mrr),
        None => (0, 0),
    }
}

/// The deltas of one transition. `after` already carries its bookkeeping
/// (`payingSince`, `firstTrialDate`), `before` the state the transition left.
pub fn transition_delta(
    before: Option<&Partner>,
    after: &Partner,
    event: TransitionEvent,
    movement: Option<(MovementKind, i64)>,
    today: NaiveDate,
) -> AnalyticsDelta {
    let month = month_of(today);
    let mut tiers: Vec<(String, TierFlows)> = Vec::new();
    let mut add = |tier: &str, f: TierFlows| match tiers.iter_mut().find(|(t, _)| t == tier) {
        Some((_, d)) => *d = d.plus(f),
        None => tiers.push((tier.to_string(), f)),
    };
    let one = |b: bool| i64::from(b);
    let to = after.engagement_tier.as_str();
    let from = before.map(|b| b.engagement_tier.as_str());

    // Live figures: out of the old tier, into the new one.
    let level = |p: &Partner| {
        let (monthly, yearly) = mrr_split(p);
        TierFlows {
            d_subscribed: one(subscribed(p)),
            d_paying: one(p.mrr > 0),
            d_mrr: p.mrr,
            d_mrr_monthly: monthly,
            d_mrr_yearly: yearly,
            ..TierFlows::default()
        }
    };
    if let Some(b) = before {
        let l = level(b);
        add(
            &b.engagement_tier,
            TierFlows {
                d_subscribed: -l.d_subscribed,
                d_paying: -l.d_paying,
                d_mrr: -l.d_mrr,
                d_mrr_monthly: -l.d_mrr_monthly,
                d_mrr_yearly: -l.d_mrr_yearly,
                ..TierFlows::default()
            },
        );
    }
    add(to, level(after));

    // Subscriptions starting and ending, per tier.
    let was_on = |tier: &str| before.is_some_and(|b| b.engagement_tier == tier && subscribed(b));
    let is_on = |tier: &str| after.engagement_tier == tier && subscribed(after);
    if let Some(f) = from.filter(|f| was_on(f) && !is_on(f)) {
        add(f, TierFlows { exited: 1, ..TierFlows::default() });
    }
    if is_on(to) && !was_on(to) {
        add(to, TierFlows { entered: 1, ..TierFlows::default() });
    }
    let moved = from.is_some_and(|f| f != to);
    if moved && event == TransitionEvent::Upgrade {
        add(to, TierFlows { upgrades_in: 1, ..TierFlows::default() });
    }
    if let Some(f) = from.filter(|_| moved && event.is_downgrade()) {
        add(f, TierFlows { downgrades_out: 1, ..TierFlows::default() });
    }

    // Paying customers arriving on the tier they pay on.
    let paid_here_before = before.is_some_and(|b| b.mrr > 0 && b.engagement_tier == to);
    if after.mrr > 0 && !paid_here_before {
        add(to, TierFlows { paying_in: 1, ..TierFlows::default() });
    }

    // Funnel.
    if before.is_none() {
        add(to, TierFlows { signups: 1, ..TierFlows::default() });
    }
    let trialled_before = before.is_some_and(|b| b.first_trial_date.is_some());
    if after.subscription_status == SubscriptionStatus::Trialing && !trialled_before {
        add(to, TierFlows { trial_starts: 1, ..TierFlows::default() });
    }

    // Movements, customer level: onto the tier the partner ends on, churn off the
    // tier it left.
    if let Some((kind, amount)) = movement {
        let magnitude = amount.abs();
        let f = match kind {
            MovementKind::New => {
                let from_trial = before.is_some_and(|b| b.subscription_status == SubscriptionStatus::Trialing);
                TierFlows {
                    new_mrr: magnitude,
                    new_count: 1,
                    conversions: 1,
                    trial_conversions: one(from_trial),
                    direct_paid: one(!from_trial && !trialled_before),
                    ..TierFlows::default()
                }
            }
            MovementKind::Expansion => {
                TierFlows { expansion_mrr: magnitude, expansion_count: 1, ..TierFlows::default() }
            }
            MovementKind::Contraction => {
                TierFlows { contraction_mrr: magnitude, contraction_count: 1, ..TierFlows::default() }
            }
            MovementKind::Reactivation => {
                TierFlows { reactivation_mrr: magnitude, reactivation_count: 1, ..TierFlows::default() }
            }
            MovementKind::Churn => {
                // Joined and churned in the same month: not in the month's opening
                // base, so not in its churn either.
                let joined_this_month =
                    before.and_then(|b| b.paying_since).is_some_and(|since| month_of(since) == month);
                TierFlows {
                    churn_mrr: magnitude,
                    churn_count: 1,
                    churned_all: 1,
                    churned: one(!joined_this_month),
                    ..TierFlows::default()
                }
            }
        };
        let tier = if kind == MovementKind::Churn { from.unwrap_or(to) } else { to };
        add(tier, f);
    }
    tiers.retain(|(_, f)| !f.is_zero());

    let inforce = |p: Option<&Partner>| p.map_or((0, 0, 0), |p| (one(subscribed(p)), one(p.mrr > 0), p.mrr));
    let (s0, p0, m0) = inforce(before);
    let (s1, p1, m1) = inforce(Some(after));
    let cohort =
        CohortFlows { signups: one(before.is_none()), d_subscribed: s1 - s0, d_paying: p1 - p0, d_mrr: m1 - m0 };
    let cohort = (!cohort.is_zero()).then(|| (month_of(after.signup_date), cohort));
    AnalyticsDelta { month, tiers, cohort }
}

// ---- Reading the aggregates -----------------------------------------------------

/// The all-time counters `STATS#{tier}/CURRENT` keeps next to the live counts: the
/// funnel and the MRR split by billing period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CurrentFlows {
    pub signups: i64,
    pub trial_starts: i64,
    pub trial_conversions: i64,
    pub direct_paid: i64,
    pub first_payments: i64,
    pub mrr_monthly: i64,
    pub mrr_yearly: i64,
}

impl CurrentFlows {
    pub fn plus(self, o: Self) -> Self {
        Self {
            signups: self.signups + o.signups,
            trial_starts: self.trial_starts + o.trial_starts,
            trial_conversions: self.trial_conversions + o.trial_conversions,
            direct_paid: self.direct_paid + o.direct_paid,
            first_payments: self.first_payments + o.first_payments,
            mrr_monthly: self.mrr_monthly + o.mrr_monthly,
            mrr_yearly: self.mrr_yearly + o.mrr_yearly,
        }
    }
}

/// `STATS#{tier}/CURRENT`: the tier's live counts and, on the same item, its
/// all-time counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CurrentStats {
    pub live: TierCounts,
    pub flows: CurrentFlows,
}

impl CurrentStats {
    /// Active subscriptions (`Partner::is_active_subscription`): running or cancelling.
    pub fn subscribed(&self) -> i64 {
        self.live.active_subscriptions()
    }
}

/// A tier as analytics names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierInfo {
    pub tier_id: String,
    pub name: String,
    pub tier_type: String,
    pub is_premium: bool,
}

/// Everything read for one tier: its live item and its month items.
#[derive(Debug, Clone)]
pub struct TierData {
    pub info: TierInfo,
    pub current: CurrentStats,
    pub months: BTreeMap<String, TierFlows>,
}

/// Month-end values of one tier (or all), rebuilt backwards from the live item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Level {
    pub subscribed: i64,
    pub paying: i64,
    pub mrr: i64,
}

impl TierData {
    pub fn flows(&self, month: &str) -> TierFlows {
        self.months.get(month).copied().unwrap_or_default()
    }

    /// Values at the end of `month`, given that `now` is the current month.
    pub fn closing(&self, month: &str, now: &str) -> Level {
        let mut level = Level {
            subscribed: self.current.subscribed(),
            paying: self.current.live.paying_count,
            mrr: self.current.live.mrr,
        };
        for (m, f) in self.months.range(format!("{month}~")..) {
            if m.as_str() <= now {
                level.subscribed -= f.d_subscribed;
                level.paying -= f.d_paying;
                level.mrr -= f.d_mrr;
            }
        }
        level
    }
}

/// Usage adoption of one tier and metric in the current month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricAdoption {
    pub users: i64,
    pub total: i64,
    pub near_limit: i64,
}

fn pct(bp: Option<i64>) -> Option<f64> {
    bp.map(centi)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureUsage {
    pub feature_id: String,
    pub name: String,
    pub users_using_feature: i64,
    pub usage_percentage: Option<f64>,
    pub avg_usage_per_user: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MonthlyTrend {
    pub month: String,
    pub subscriptions: i64,
    pub revenue: i64,
    pub churn: i64,
}

/// Seed 000 `TierMetrics`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TierMetrics {
    pub tier_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub tier_type: String,
    pub is_premium: bool,
    pub month: String,
    pub active_subscriptions: i64,
    pub paying_customers: i64,
    /// Active subscriptions by state: `activeSubscriptions` includes these.
    pub trialing: i64,
    pub past_due: i64,
    pub cancelling: i64,
    pub new_subscriptions_this_month: i64,
    pub cancellations_this_month: i64,
    pub net_change: i64,
    pub growth_rate: Option<f64>,
    pub mrr: i64,
    pub arr: i64,
    pub arpu: i64,
    pub lifetime_value: i64,
    pub customer_churn_rate: Option<f64>,
    pub conversion_rate: Option<f64>,
    pub upgrade_rate: Option<f64>,
    pub downgrade_rate: Option<f64>,
    pub retention_rate: Option<f64>,
    pub avg_listings_per_user: f64,
    pub avg_images_per_listing: f64,
    pub limit_utilization: Option<f64>,
    pub feature_usage: Vec<FeatureUsage>,
    pub monthly_trends: Vec<MonthlyTrend>,
    #[serde(skip)]
    pub growth_bp: Option<i64>,
    #[serde(skip)]
    pub churn_bp: Option<i64>,
}

/// One tier's metrics as of month `now` (the current month, so month-to-date);
/// churn-based figures use the last complete month.
pub fn tier_metrics(t: &TierData, now: &str, usage: &BTreeMap<String, MetricAdoption>) -> TierMetrics {
    let c = &t.current;
    let this = t.flows(now);
    let last = month_minus(now, 1);
    let subscribed = c.subscribed();
    let opening = t.closing(&last, now);
    let net_change = this.entered - this.exited;
    let growth_bp = rate_bp(net_change, opening.subscribed);
    let arpu = div_round(c.live.mrr, c.live.paying_count);

    // Last complete month's customer churn: churned ÷ paying at its start.
    let last_opening = t.closing(&month_minus(now, 2), now);
    let last_flows = t.flows(&last);
    let churn_bp = rate_bp(last_flows.churned, last_opening.paying);
    let cap = arpu.saturating_mul(LTV_CAP_MONTHS);
    let lifetime_value = if last_flows.churned == 0 || last_opening.paying == 0 {
        cap
    } else {
        mul_div_round(arpu, last_opening.paying, last_flows.churned).min(cap)
    };
    // About 90 days: the last three complete months.
    let base = t.closing(&month_minus(now, 4), now).paying;
    let churned3: i64 = (1..=3).map(|k| t.flows(&month_minus(now, k)).churned).sum();
    let retention_bp = rate_bp((base - churned3).max(0), base);

    let metric = |name: &str| usage.get(name).copied().unwrap_or_default();
    let listings = metric("listings");
    let images = metric("imagesPerListing");
    let near = usage.values().map(|m| m.near_limit).max().unwrap_or(0);
    let feature_usage = usage
        .iter()
        .map(|(name, m)| FeatureUsage {
            feature_id: name.clone(),
            name: name.clone(),
            users_using_feature: m.users,
            usage_percentage: pct(rate_bp(m.users, subscribed)),
            avg_usage_per_user: centi(ratio_centi(m.total, m.users)),
        })
        .collect();
    let monthly_trends = months_between(&month_minus(now, TREND_MONTHS - 1), now)
        .into_iter()
        .map(|m| {
            let level = t.closing(&m, now);
            MonthlyTrend { churn: t.flows(&m).churned, subscriptions: level.subscribed, revenue: level.mrr, month: m }
        })
        .collect();
    TierMetrics {
        tier_id: t.info.tier_id.clone(),
        name: t.info.name.clone(),
        tier_type: t.info.tier_type.clone(),
        is_premium: t.info.is_premium,
        month: now.to_string(),
        active_subscriptions: subscribed,
        paying_customers: c.live.paying_count,
        trialing: c.live.trialing_count,
        past_due: c.live.past_due_count,
        cancelling: c.live.cancelling_count,
        new_subscriptions_this_month: this.entered,
        cancellations_this_month: this.exited,
        net_change,
        growth_rate: pct(growth_bp),
        mrr: c.live.mrr,
        arr: c.live.mrr.saturating_mul(12),
        arpu,
        lifetime_value,
        customer_churn_rate: pct(churn_bp),
        conversion_rate: pct(rate_bp(this.conversions, this.paying_in)),
        upgrade_rate: pct(rate_bp(this.upgrades_in, this.entered)),
        downgrade_rate: pct(rate_bp(this.downgrades_out, opening.subscribed)),
        retention_rate: pct(retention_bp),
        avg_listings_per_user: centi(ratio_centi(listings.total, subscribed)),
        avg_images_per_listing: centi(ratio_centi(images.total, listings.total)),
        limit_utilization: pct(rate_bp(near, subscribed)),
        feature_usage,
        monthly_trends,
        growth_bp,
        churn_bp,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversionFunnel {
    pub free_users: i64,
    pub trial_users: i64,
    pub paid_users: i64,
    pub trial_conversions: i64,
    pub direct_paid: i64,
    pub free_to_trial: Option<f64>,
    pub trial_to_paid: Option<f64>,
    pub free_to_direct_paid: Option<f64>,
}

/// The funnel of the counts given (all time from the live items, or a month).
pub fn funnel(signups: i64, trial_starts: i64, first_payments: i64, trial_conv: i64, direct: i64) -> ConversionFunnel {
    ConversionFunnel {
        free_users: signups,
        trial_users: trial_starts,
        paid_users: first_payments,
        trial_conversions: trial_conv,
        direct_paid: direct,
        free_to_trial: pct(rate_bp(trial_starts, signups)),
        trial_to_paid: pct(rate_bp(trial_conv, trial_starts)),
        free_to_direct_paid: pct(rate_bp(direct, signups)),
    }
}

pub fn all_time_funnel(tiers: &[TierData]) -> ConversionFunnel {
    let sum = |f: fn(&CurrentStats) -> i64| tiers.iter().map(|t| f(&t.current)).sum::<i64>();
    funnel(
        sum(|c| c.flows.signups),
        sum(|c| c.flows.trial_starts),
        sum(|c| c.flows.first_payments),
        sum(|c| c.flows.trial_conversions),
        sum(|c| c.flows.direct_paid),
    )
}

pub fn month_funnel(tiers: &[TierData], month: &str) -> ConversionFunnel {
    let f = tiers.iter().fold(TierFlows::default(), |acc, t| acc.plus(t.flows(month)));
    funnel(f.signups, f.trial_starts, f.conversions, f.trial_conversions, f.direct_paid)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Share {
    pub key: String,
    pub revenue: i64,
    pub percentage: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevenueBreakdown {
    pub by_tier: Vec<serde_json::Value>,
    pub by_type: Vec<serde_json::Value>,
    pub by_billing_period: Vec<serde_json::Value>,
}

pub fn revenue_breakdown(tiers: &[TierData]) -> RevenueBreakdown {
    let total: i64 = tiers.iter().map(|t| t.current.live.mrr).sum();
    let share = |name: &str, key: &str, revenue: i64| serde_json::json!({ name: key, "revenue": revenue, "percentage": pct(rate_bp(revenue, total)) });
    let by_tier = tiers.iter().map(|t| share("tierId", &t.info.tier_id, t.current.live.mrr)).collect();
    let mut types: BTreeMap<&str, i64> = BTreeMap::new();
    for t in tiers {
        *types.entry(t.info.tier_type.as_str()).or_default() += t.current.live.mrr;
    }
    let by_type = types.into_iter().map(|(k, v)| share("type", k, v)).collect();
    let monthly: i64 = tiers.iter().map(|t| t.current.flows.mrr_monthly).sum();
    let yearly: i64 = tiers.iter().map(|t| t.current.flows.mrr_yearly).sum();
    let by_billing_period = vec![share("period", "monthly", monthly), share("period", "yearly", yearly)];
    RevenueBreakdown { by_tier, by_type, by_billing_period }
}

/// Seed 000 `TierAnalyticsSummary`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub month: String,
    #[serde(rename = "totalMRR")]
    pub total_mrr: i64,
    #[serde(rename = "totalARR")]
    pub total_arr: i64,
    pub total_active_subscriptions: i64,
    /// Of the active subscriptions, those trialing, past due and cancelling (cancelled
    /// at period end, term still running), all tiers.
    pub trialing: i64,
    pub past_due: i64,
    pub cancelling: i64,
    pub paying_customers: i64,
    pub average_churn_rate: Option<f64>,
    pub top_performing_tier: Option<String>,
    pub fastest_growing_tier: Option<String>,
    pub highest_churn_tier: Option<String>,
    pub conversion_funnel: ConversionFunnel,
    pub revenue_breakdown: RevenueBreakdown,
    pub metrics: Vec<TierMetrics>,
}

/// Ties go to the tier listed first (catalog order).
fn leader(metrics: &[TierMetrics], key: impl Fn(&TierMetrics) -> Option<(i64, i64)>) -> Option<String> {
    let mut best: Option<(&TierMetrics, (i64, i64))> = None;
    for m in metrics {
        if let Some(k) = key(m) {
            if best.as_ref().is_none_or(|(_, b)| k > *b) {
                best = Some((m, k));
            }
        }
    }
    best.map(|(m, _)| m.tier_id.clone())
}

pub fn summary(tiers: &[TierData], now: &str, usage: &BTreeMap<String, BTreeMap<String, MetricAdoption>>) -> Summary {
    let empty = BTreeMap::new();
    let metrics: Vec<TierMetrics> =
        tiers.iter().map(|t| tier_metrics(t, now, usage.get(&t.info.tier_id).unwrap_or(&empty))).collect();
    let total_mrr: i64 = tiers.iter().map(|t| t.current.live.mrr).sum();
    let last = month_minus(now, 1);
    let churned: i64 = tiers.iter().map(|t| t.flows(&last).churned).sum();
    let base: i64 = tiers.iter().map(|t| t.closing(&month_minus(now, 2), now).paying).sum();
    Summary {
        month: now.to_string(),
        total_mrr,
        total_arr: total_mrr.saturating_mul(12),
        total_active_subscriptions: tiers.iter().map(|t| t.current.subscribed()).sum(),
        trialing: tiers.iter().map(|t| t.current.live.trialing_count).sum(),
        past_due: tiers.iter().map(|t| t.current.live.past_due_count).sum(),
        cancelling: tiers.iter().map(|t| t.current.live.cancelling_count).sum(),
        paying_customers: tiers.iter().map(|t| t.current.live.paying_count).sum(),
        average_churn_rate: pct(rate_bp(churned, base)),
        top_performing_tier: leader(&metrics, |m| Some((m.mrr, m.active_subscriptions))),
        fastest_growing_tier: leader(&metrics, |m| m.growth_bp.map(|g| (g, m.net_change))),
        highest_churn_tier: leader(&metrics, |m| m.churn_bp.filter(|c| *c > 0).map(|c| (c, 0))),
        conversion_funnel: all_time_funnel(tiers),
        revenue_breakdown: revenue_breakdown(tiers),
        metrics,
    }
}

/// One month of the MRR ledger, all tiers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MonthMovements {
    pub month: String,
    pub opening_mrr: i64,
    pub new: i64,
    pub expansion: i64,
    pub contraction: i64,
    pub churn: i64,
    pub reactivation: i64,
    pub net_new_mrr: i64,
    pub closing_mrr: i64,
    pub new_count: i64,
    pub expansion_count: i64,
    pub contraction_count: i64,
    pub churn_count: i64,
    pub reactivation_count: i64,
    pub opening_customers: i64,
    pub churned_customers: i64,
    pub customer_churn_rate: Option<f64>,
    pub gross_mrr_churn_rate: Option<f64>,
    pub net_mrr_churn_rate: Option<f64>,
}

pub fn movements(tiers: &[TierData], months: &[String], now: &str) -> Vec<MonthMovements> {
    months
        .iter()
        .map(|m| {
            let f = tiers.iter().fold(TierFlows::default(), |acc, t| acc.plus(t.flows(m)));
            let prev = month_minus(m, 1);
            let opening = tiers.iter().fold(Level::default(), |acc, t| {
                let l = t.closing(&prev, now);
                Level { subscribed: acc.subscribed + l.subscribed, paying: acc.paying + l.paying, mrr: acc.mrr + l.mrr }
            });
            let closing: i64 = tiers.iter().map(|t| t.closing(m, now).mrr).sum();
            let lost = f.churn_mrr + f.contraction_mrr;
            MonthMovements {
                month: m.clone(),
                opening_mrr: opening.mrr,
                new: f.new_mrr,
                expansion: f.expansion_mrr,
                contraction: f.contraction_mrr,
                churn: f.churn_mrr,
                reactivation: f.reactivation_mrr,
                net_new_mrr: f.new_mrr + f.expansion_mrr + f.reactivation_mrr - lost,
                closing_mrr: closing,
                new_count: f.new_count,
                expansion_count: f.expansion_count,
                contraction_count: f.contraction_count,
                churn_count: f.churn_count,
                reactivation_count: f.reactivation_count,
                opening_customers: opening.paying,
                churned_customers: f.churned,
                customer_churn_rate: pct(rate_bp(f.churned, opening.paying)),
                gross_mrr_churn_rate: pct(rate_bp(lost, opening.mrr)),
                net_mrr_churn_rate: pct(rate_bp(lost - f.expansion_mrr - f.reactivation_mrr, opening.mrr)),
            }
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CohortMonth {
    pub month: String,
    pub offset: i64,
    pub active_partners: i64,
    pub paying_customers: i64,
    pub mrr: i64,
    pub partner_retention: Option<f64>,
    pub customer_retention: Option<f64>,
    pub net_mrr_retention: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cohort {
    pub cohort: String,
    pub signups: i64,
    pub months: Vec<CohortMonth>,
}

/// Cohorts from their month items (`{cohort: {month: flows}}`), each from its signup
/// month to `now`. Retention is against the end of the signup month.
pub fn cohorts(
    cohort_months: &[String],
    items: &BTreeMap<String, BTreeMap<String, CohortFlows>>,
    now: &str,
) -> Vec<Cohort> {
    let empty = BTreeMap::new();
    cohort_months
        .iter()
        .map(|c| {
            let months = items.get(c).unwrap_or(&empty);
            let signups: i64 = months.values().map(|f| f.signups).sum();
            let (mut s, mut p, mut m) = (0, 0, 0);
            let mut base: Option<(i64, i64)> = None;
            let rows = months_between(c, now)
                .into_iter()
                .map(|month| {
                    let f = months.get(&month).copied().unwrap_or_default();
                    s += f.d_subscribed;
                    p += f.d_paying;
                    m += f.d_mrr;
                    let (bp, bm) = *base.get_or_insert((p, m));
                    CohortMonth {
                        offset: month_distance(c, &month),
                        month,
                        active_partners: s,
                        paying_customers: p,
                        mrr: m,
                        partner_retention: pct(rate_bp(s, signups)),
                        customer_retention: pct(rate_bp(p, bp)),
                        net_mrr_retention: pct(rate_bp(m, bm)),
                    }
                })
                .collect();
            Cohort { cohort: c.clone(), signups, months: rows }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -3);
        assert_eq!(div_round(4, 3), 1);
        assert_eq!(div_round(7, 0), 0);
        assert_eq!(rate_bp(1, 3), Some(3333));
        assert_eq!(rate_bp(2, 3), Some(6667));
        assert_eq!(rate_bp(-1, 8), Some(-1250));
        assert_eq!(rate_bp(1, 0), None);
        assert_eq!(ratio_centi(10, 4), 250);
    }

    #[test]
    fn products_are_divided_once_in_128_bits() {
        assert_eq!(mul_div_round(7, 3, 2), 11); // 10.5 → 11
        assert_eq!(mul_div_round(-7, 3, 2), -11);
        assert_eq!(mul_div_round(10, 1, 3), 3);
        assert_eq!(mul_div_round(20, 1, 3), 7); // 6.67
        assert_eq!(mul_div_round(i64::MAX, 4, 2), i64::MAX, "saturates");
        assert_eq!(mul_div_round(i64::MAX / 2, 6, 3), i64::MAX - 1, "an i64 product would overflow");
        assert_eq!(mul_div_round(5, 5, 0), 0);
        for (a, b, d) in [(360_000, 7, 3), (1, 1, 2), (999, 1001, 17)] {
            assert_eq!(mul_div_round(a, b, d), div_round(a * b, d));
        }
    }

    #[test]
    fn months_step_over_year_ends() {
        assert_eq!(month_minus("2026-01", 1), "2025-12");
        assert_eq!(month_minus("2026-03", 14), "2025-01");
        assert_eq!(months_between("2025-11", "2026-02"), vec!["2025-11", "2025-12", "2026-01", "2026-02"]);
        assert_eq!(month_distance("2025-11", "2026-02"), 3);
        assert!(parse_month("2026-13").is_none() && parse_month("2026-1").is_none());
        // chrono alone would read these as 2026-03: the shape is checked first.
        for odd in [" 2026-3", "2026- 3", "+2026-3", "2026-3 ", "2026/03", "２026-03"] {
            assert!(parse_month(odd).is_none(), "{odd:?}");
        }
        assert_eq!(parse_month("2026-03"), NaiveDate::from_ymd_opt(2026, 3, 1));
    }

    #[test]
    fn closing_values_are_rebuilt_from_the_live_item() {
        let mut months = BTreeMap::new();
        months.insert("2026-03".to_string(), TierFlows { d_mrr: 100, d_paying: 1, ..TierFlows::default() });
        months.insert("2026-02".to_string(), TierFlows { d_mrr: 50, d_paying: 1, ..TierFlows::default() });
        let t = TierData {
            info: TierInfo {
                tier_id: "gold".into(),
                name: "Gold".into(),
                tier_type: "dealer".into(),
                is_premium: true,
            },
            current: CurrentStats {
                live: TierCounts { mrr: 150, paying_count: 2, ..TierCounts::default() },
                ..CurrentStats::default()
            },
            months,
        };
        assert_eq!(t.closing("2026-03", "2026-03").mrr, 150);
        assert_eq!(t.closing("2026-02", "2026-03").mrr, 50);
        assert_eq!(t.closing("2026-01", "2026-03").mrr, 0);
        let m = tier_metrics(&t, "2026-03", &BTreeMap::new());
        assert_eq!((m.arpu, m.arr), (75, 1800));
        // No churn last month: the cap.
        assert_eq!(m.lifetime_value, 75 * LTV_CAP_MONTHS);
    }
}
