//! Explainable churn-risk and upsell scores for a partner's customer journey.
//!
//! Both scores are plain sums of named factors so that a sales rep can see exactly
//! why a partner is flagged: every factor that fires is returned with its weight and
//! a sentence, and the score is the sum of those weights capped at 100. The weights
//! below are the product's explanation to sales reps; change them here and in this
//! table together.
//!
//! # Churn risk
//!
//! Only partners with something to lose are scored: a paid tier and a status other
//! than expired. Everyone else has probability 0 and no factors.
//!
//! | Code                   | Weight | Fires when                                                              |
//! |------------------------|--------|-------------------------------------------------------------------------|
//! | `cancellation_pending` | 40     | status is cancelled (the paid tier runs until its end date)             |
//! | `payment_failed`       | 35     | status past due, payment past due or failed, or ≥ 1 failed attempt      |
//! | `renewal_off_near_end` | 30     | auto-renewal off, not cancelled, term ends in 0–7 days                  |
//! | `renewal_off_near_end` | 25     | auto-renewal off, not cancelled, term ends in 8–30 days                 |
//! | `downgrade_history`    | 25     | two or more downgrades in the last 365 days                             |
//! | `downgrade_history`    | 15     | one downgrade in the last 365 days                                      |
//! | `low_usage`            | 20     | average usage below 20% of the tier's limits                            |
//! | `inactive`             | 15     | no activity for more than 60 days                                       |
//!
//! Level: high from [`HIGH_RISK_AT`] (60), medium from [`MEDIUM_RISK_AT`] (30), else low.
//!
//! # Upsell
//!
//! Only active and trialing partners are scored: a partner who is behind on payment
//! or has cancelled is a retention case, not an upsell target.
//!
//! | Code                         | Weight | Fires when                                                      |
//! |------------------------------|--------|-----------------------------------------------------------------|
//! | `near_limits`                | 35     | peak usage at 80% or more of the tier's limits                  |
//! | `high_usage_on_free`         | 30     | free tier with average usage at 60% or more                     |
//! | `recently_downgraded`        | 25     | a downgrade in the last 90 days                                 |
//! | `annual_renewal_approaching` | 20     | paid yearly term ending in 0–60 days                            |
//! | `engaged_free_account`       | 10     | free tier with activity in the last 30 days                     |
//!
//! A partner is an opportunity from [`UPSELL_AT`] (40), but only when there is a
//! higher tier to recommend.
//!
//! Day windows count whole calendar days between `today` and the date, inclusive of
//! the boundary named in the table ("in the last 365 days" includes a date exactly
//! 365 days ago). Dates after `today` never count as past events.

use super::money::BillingPeriod;
// The scores' result types are stored on the partner record, so they live there.
pub use super::partner::{ChurnRisk, Factor, RetentionAction, RiskLevel, SeedRiskLevel, Upsell};
use super::partner::{PaymentStatus, SubscriptionStatus};
use chrono::NaiveDate;

/// Churn probability from which a partner is high risk.
pub const HIGH_RISK_AT: u32 = 60;
/// Churn probability from which a partner is medium risk.
pub const MEDIUM_RISK_AT: u32 = 30;
/// Upsell score from which a partner is an opportunity.
pub const UPSELL_AT: u32 = 40;

/// Usage against tier limits, in whole percent (100 = at the limit; may exceed 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageSnapshot {
    pub average_percent: u32,
    pub max_percent: u32,
}

/// Everything the scores look at, gathered by the caller.
#[derive(Debug, Clone)]
pub struct ScoringInput<'a> {
    pub today: NaiveDate,
    /// The partner's tier id and whether it is a paid tier (price > 0).
    pub tier_id: &'a str,
    pub paid_tier: bool,
    pub status: SubscriptionStatus,
    pub payment_status: Option<PaymentStatus>,
    /// Failed attempts in the current dunning run.
    pub payment_failures: u32,
    pub auto_renewal: bool,
    pub billing_period: Option<BillingPeriod>,
    pub subscription_end_date: Option<NaiveDate>,
    /// Dates of every downgrade the partner had (including payment-failure downgrades).
    pub downgrade_dates: &'a [NaiveDate],
    /// Last transition, note, assignment or usage.
    pub last_activity: NaiveDate,
    /// None until usage tracking has data for the partner.
    pub usage: Option<UsageSnapshot>,
    /// The next tier up in rank from the current one, if any (the caller knows the catalog).
    pub next_tier_id: Option<&'a str>,
    /// That tier's monthly list price and the partner's MRR now, cents: the
    /// upgrade's potential revenue.
    pub next_tier_monthly_price: Option<i64>,
    pub mrr: i64,
}

/// Probability from which seed 004's `riskLevel` is `critical`.
pub const CRITICAL_RISK_AT: u32 = 85;

const PAYMENT_FAILED_WEIGHT: u32 = 35;
const CANCELLATION_PENDING_WEIGHT: u32 = 40;
const RENEWAL_OFF_NEAR_END_WEIGHT: u32 = 25;
const RENEWAL_OFF_VERY_NEAR_END_WEIGHT: u32 = 30;
const RENEWAL_OFF_WINDOW_DAYS: i64 = 30;
const RENEWAL_OFF_URGENT_DAYS: i64 = 7;
const ONE_DOWNGRADE_WEIGHT: u32 = 15;
const REPEATED_DOWNGRADES_WEIGHT: u32 = 25;
const DOWNGRADE_HISTORY_DAYS: i64 = 365;
const INACTIVE_WEIGHT: u32 = 15;
const INACTIVE_AFTER_DAYS: i64 = 60;
const LOW_USAGE_WEIGHT: u32 = 20;
const LOW_USAGE_BELOW_PERCENT: u32 = 20;

const NEAR_LIMITS_WEIGHT: u32 = 35;
const NEAR_LIMITS_FROM_PERCENT: u32 = 80;
const HIGH_USAGE_ON_FREE_WEIGHT: u32 = 30;
const HIGH_USAGE_ON_FREE_FROM_PERCENT: u32 = 60;
const RECENTLY_DOWNGRADED_WEIGHT: u32 = 25;
const RECENT_DOWNGRADE_DAYS: i64 = 90;
const ANNUAL_RENEWAL_APPROACHING_WEIGHT: u32 = 20;
const ANNUAL_RENEWAL_WINDOW_DAYS: i64 = 60;
/// How far ahead an end date moves a score as days pass (the renewal-off and
/// annual-renewal windows): the daily rescoring reads the terms ending this soon.
pub const END_DATE_SIGNAL_DAYS: i64 = if RENEWAL_OFF_WINDOW_DAYS > ANNUAL_RENEWAL_WINDOW_DAYS {
    RENEWAL_OFF_WINDOW_DAYS
} else {
    ANNUAL_RENEWAL_WINDOW_DAYS
};
const ENGAGED_FREE_ACCOUNT_WEIGHT: u32 = 10;
const ENGAGED_WITHIN_DAYS: i64 = 30;

const MAX_SCORE: u32 = 100;

/// How likely the partner is to stop paying, and why.
pub fn churn_risk(input: &ScoringInput) -> ChurnRisk {
    if !input.paid_tier || input.status == SubscriptionStatus::Expired {
        return ChurnRisk::none();
    }

    let mut factors = Vec::new();
    if let Some(description) = payment_trouble(input) {
        factors.push(factor("payment_failed", description, PAYMENT_FAILED_WEIGHT));
    }
    if input.status == SubscriptionStatus::Cancelled {
        factors.push(factor("cancellation_pending", cancellation_sentence(input), CANCELLATION_PENDING_WEIGHT));
    }
    // A cancelled partner already scores for leaving; counting the term end again would double-count it.
    if !input.auto_renewal && input.status != SubscriptionStatus::Cancelled {
        if let Some(days_left) = days_until_end(input).filter(|d| (0..=RENEWAL_OFF_WINDOW_DAYS).contains(d)) {
            let weight = if days_left <= RENEWAL_OFF_URGENT_DAYS {
                RENEWAL_OFF_VERY_NEAR_END_WEIGHT
            } else {
                RENEWAL_OFF_NEAR_END_WEIGHT
            };
            let description = format!("Subscription ends {} and auto-renewal is off", in_days(days_left));
            factors.push(factor("renewal_off_near_end", description, weight));
        }
    }
    match downgrades_within(input, DOWNGRADE_HISTORY_DAYS) {
        0 => {}
        1 => factors.push(factor(
            "downgrade_history",
            "Downgraded once in the last 12 months".to_string(),
            ONE_DOWNGRADE_WEIGHT,
        )),
        count => factors.push(factor(
            "downgrade_history",
            format!("Downgraded {count} times in the last 12 months"),
            REPEATED_DOWNGRADES_WEIGHT,
        )),
    }
    let days_inactive = days_between(input.last_activity, input.today);
    if days_inactive > INACTIVE_AFTER_DAYS {
        factors.push(factor("inactive", format!("No activity for {days_inactive} days"), INACTIVE_WEIGHT));
    }
    if let Some(usage) = input.usage.filter(|u| u.average_percent < LOW_USAGE_BELOW_PERCENT) {
        let description = format!("Uses only {}% of the tier's limits on average", usage.average_percent);
        factors.push(factor("low_usage", description, LOW_USAGE_WEIGHT));
    }

    sort_by_weight(&mut factors);
    let probability = capped_sum(&factors);
    let leaving = input.status == SubscriptionStatus::Cancelled || !input.auto_renewal;
    let known = [input.usage.is_some(), input.payment_status.is_some(), input.subscription_end_date.is_some()];
    ChurnRisk {
        level: level_for(probability),
        probability,
        risk_level: Some(seed_level_for(probability)),
        recommended_actions: factors.iter().filter_map(|f| action_for(&f.code)).collect(),
        time_to_churn: if leaving { days_until_end(input).filter(|d| *d >= 0) } else { None },
        confidence: Some(40 + 20 * known.iter().filter(|k| **k).count() as u32),
        factors,
    }
}

fn seed_level_for(probability: u32) -> SeedRiskLevel {
    if probability >= CRITICAL_RISK_AT {
        SeedRiskLevel::Critical
    } else {
        match level_for(probability) {
            RiskLevel::High => SeedRiskLevel::High,
            RiskLevel::Medium => SeedRiskLevel::Medium,
            RiskLevel::Low => SeedRiskLevel::Low,
        }
    }
}

/// What a rep does about each churn factor (seed 004 `RetentionAction`).
fn action_for(code: &str) -> Option<RetentionAction> {
    let (code, description) = match code {
        "payment_failed" => ("update_payment_method", "Ask the partner to update the card through the billing portal"),
        "cancellation_pending" => ("retention_call", "Call before the term ends; a win-back offer may apply"),
        "renewal_off_near_end" => ("renewal_conversation", "Discuss the renewal before the term ends"),
        "downgrade_history" => ("account_review", "Review the account's needs against its tier"),
        "low_usage" => ("onboarding_session", "Offer a session on the features the tier includes"),
        "inactive" => ("re_engagement", "Reach out: the account has gone quiet"),
        _ => return None,
    };
    Some(RetentionAction { code: code.into(), description: description.into() })
}

/// Whether the partner is worth a conversation about a higher tier, and why.
pub fn upsell(input: &ScoringInput) -> Upsell {
    if !matches!(input.status, SubscriptionStatus::Active | SubscriptionStatus::Trialing) {
        return Upsell::none();
    }

    let mut reasons = Vec::new();
    if let Some(usage) = input.usage {
        if usage.max_percent >= NEAR_LIMITS_FROM_PERCENT {
            let description =
                format!("Peak usage reached {}% of the {} tier's limits", usage.max_percent, input.tier_id);
            reasons.push(factor("near_limits", description, NEAR_LIMITS_WEIGHT));
        }
        if !input.paid_tier && usage.average_percent >= HIGH_USAGE_ON_FREE_FROM_PERCENT {
            let description = format!("Uses {}% of the free tier's limits on average", usage.average_percent);
            reasons.push(factor("high_usage_on_free", description, HIGH_USAGE_ON_FREE_WEIGHT));
        }
    }
    if downgrades_within(input, RECENT_DOWNGRADE_DAYS) > 0 {
        reasons.push(factor(
            "recently_downgraded",
            "Downgraded in the last 90 days and already knows the higher tier".to_string(),
            RECENTLY_DOWNGRADED_WEIGHT,
        ));
    }
    if input.paid_tier && input.billing_period == Some(BillingPeriod::Yearly) {
        if let Some(days_left) = days_until_end(input).filter(|d| (0..=ANNUAL_RENEWAL_WINDOW_DAYS).contains(d)) {
            let description = format!("Annual subscription renews {}", in_days(days_left));
            reasons.push(factor("annual_renewal_approaching", description, ANNUAL_RENEWAL_APPROACHING_WEIGHT));
        }
    }
    if !input.paid_tier && days_between(input.last_activity, input.today) <= ENGAGED_WITHIN_DAYS {
        reasons.push(factor(
            "engaged_free_account",
            "Free account active in the last 30 days".to_string(),
            ENGAGED_FREE_ACCOUNT_WEIGHT,
        ));
    }

    sort_by_weight(&mut reasons);
    let score = capped_sum(&reasons);
    let recommended_tier = input.next_tier_id.map(str::to_string);
    let opportunity = score >= UPSELL_AT && recommended_tier.is_some();
    let near_limits = reasons.iter().any(|r| r.code == "near_limits");
    let opportunity_type = match (&recommended_tier, near_limits) {
        (Some(_), _) if score > 0 => Some("upgrade".to_string()),
        (None, true) => Some("usage_increase".to_string()),
        _ => None,
    };
    let potential_revenue = match (&opportunity_type, input.next_tier_monthly_price) {
        (Some(t), Some(price)) if t == "upgrade" => Some((price - input.mrr).max(0)),
        _ => None,
    };
    Upsell {
        opportunity,
        score,
        recommended_tier,
        reasons,
        probability: opportunity_type.as_ref().map(|_| score),
        opportunity_type,
        potential_revenue,
    }
}

/// The sentence for `payment_failed`, or None when payments are in order.
fn payment_trouble(input: &ScoringInput) -> Option<String> {
    if input.payment_failures == 1 {
        return Some("1 failed payment attempt in the current dunning run".to_string());
    }
    if input.payment_failures > 1 {
        return Some(format!("{} failed payment attempts in the current dunning run", input.payment_failures));
    }
    if input.payment_status == Some(PaymentStatus::Failed) {
        return Some("The last payment failed".to_string());
    }
    if input.status == SubscriptionStatus::PastDue || input.payment_status == Some(PaymentStatus::PastDue) {
        return Some("Payment is past due".to_string());
    }
    None
}

fn cancellation_sentence(input: &ScoringInput) -> String {
    match days_until_end(input) {
        Some(days_left) if days_left >= 0 => {
            format!("Subscription is cancelled and the paid tier ends {}", in_days(days_left))
        }
        _ => "Subscription is cancelled and will not renew".to_string(),
    }
}

fn days_until_end(input: &ScoringInput) -> Option<i64> {
    input.subscription_end_date.map(|end| days_between(input.today, end))
}

/// Downgrades between `window_days` ago and today, both inclusive.
fn downgrades_within(input: &ScoringInput, window_days: i64) -> usize {
    input.downgrade_dates.iter().filter(|date| (0..=window_days).contains(&days_between(**date, input.today))).count()
}

/// Whole days from `earlier` to `later`; negative when `later` comes first.
fn days_between(earlier: NaiveDate, later: NaiveDate) -> i64 {
    later.signed_duration_since(earlier).num_days()
}

fn in_days(days: i64) -> String {
    match days {
        0 => "today".to_string(),
        1 => "in 1 day".to_string(),
        n => format!("in {n} days"),
    }
}

fn factor(code: &str, description: String, weight: u32) -> Factor {
    Factor { code: code.to_string(), description, weight }
}

/// Heaviest first so the main reason reads first; code breaks ties so the order is stable.
fn sort_by_weight(factors: &mut [Factor]) {
    factors.sort_by(|a, b| b.weight.cmp(&a.weight).then_with(|| a.code.cmp(&b.code)));
}

fn capped_sum(factors: &[Factor]) -> u32 {
    factors.iter().map(|f| f.weight).sum::<u32>().min(MAX_SCORE)
}

fn level_for(probability: u32) -> RiskLevel {
    if probability >= HIGH_RISK_AT {
        RiskLevel::High
    } else if probability >= MEDIUM_RISK_AT {
        RiskLevel::Medium
    } else {
        RiskLevel::Low
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Days;

    const NO_DOWNGRADES: &[NaiveDate] = &[];

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 15).unwrap()
    }

    fn days_ago(days: u64) -> NaiveDate {
        today().checked_sub_days(Days::new(days)).unwrap()
    }

    fn days_ahead(days: u64) -> NaiveDate {
        today().checked_add_days(Days::new(days)).unwrap()
    }

    /// A healthy paid partner: no factor of either score fires.
    fn healthy_paid() -> ScoringInput<'static> {
        ScoringInput {
            today: today(),
            tier_id: "silver",
            paid_tier: true,
            status: SubscriptionStatus::Active,
            payment_status: Some(PaymentStatus::Current),
            payment_failures: 0,
            auto_renewal: true,
            billing_period: Some(BillingPeriod::Monthly),
            subscription_end_date: Some(days_ahead(20)),
            downgrade_dates: NO_DOWNGRADES,
            last_activity: days_ago(5),
            usage: Some(UsageSnapshot { average_percent: 50, max_percent: 60 }),
            next_tier_id: Some("gold"),
            next_tier_monthly_price: Some(360_000),
            mrr: 150_000,
        }
    }

    /// A quiet free partner: no factor of either score fires.
    fn quiet_free() -> ScoringInput<'static> {
        ScoringInput {
            tier_id: "free",
            paid_tier: false,
            payment_status: None,
            billing_period: None,
            subscription_end_date: None,
            last_activity: days_ago(45),
            usage: Some(UsageSnapshot { average_percent: 30, max_percent: 50 }),
            next_tier_id: Some("silver"),
            mrr: 0,
            ..healthy_paid()
        }
    }

    fn codes(factors: &[Factor]) -> Vec<&str> {
        factors.iter().map(|f| f.code.as_str()).collect()
    }

    fn only_factor(risk: &ChurnRisk) -> &Factor {
        assert_eq!(risk.factors.len(), 1, "expected exactly one factor, got {:?}", risk.factors);
        &risk.factors[0]
    }

    fn only_reason(upsell: &Upsell) -> &Factor {
        assert_eq!(upsell.reasons.len(), 1, "expected exactly one reason, got {:?}", upsell.reasons);
        &upsell.reasons[0]
    }

    // ---- churn risk ----

    #[test]
    fn healthy_paid_partner_has_no_risk() {
        let risk = churn_risk(&healthy_paid());
        assert_eq!((risk.probability, risk.factors.len(), risk.recommended_actions.len()), (0, 0, 0));
        assert_eq!((risk.level, risk.risk_level, risk.time_to_churn), (RiskLevel::Low, Some(SeedRiskLevel::Low), None));
    }

    #[test]
    fn free_partner_scores_zero_even_with_every_signal() {
        let downgrades = [days_ago(10), days_ago(20)];
        let input = ScoringInput {
            status: SubscriptionStatus::Cancelled,
            payment_status: Some(PaymentStatus::Failed),
            payment_failures: 3,
            downgrade_dates: &downgrades,
            last_activity: days_ago(200),
            usage: Some(UsageSnapshot { average_percent: 1, max_percent: 2 }),
            ..quiet_free()
        };
        assert_eq!(churn_risk(&input), ChurnRisk::none());
    }

    #[test]
    fn expired_partner_scores_zero() {
        let input = ScoringInput {
            status: SubscriptionStatus::Expired,
            payment_failures: 2,
            last_activity: days_ago(200),
            ..healthy_paid()
        };
        assert_eq!(churn_risk(&input), ChurnRisk::none());
    }

    #[test]
    fn payment_failed_from_past_due_status() {
        let input = ScoringInput { status: SubscriptionStatus::PastDue, payment_status: None, ..healthy_paid() };
        let risk = churn_risk(&input);
        let f = only_factor(&risk);
        assert_eq!((f.code.as_str(), f.weight), ("payment_failed", 35));
        assert_eq!(f.description, "Payment is past due");
        assert_eq!(risk.probability, 35);
        assert_eq!(risk.level, RiskLevel::Medium);
    }

    #[test]
    fn payment_failed_from_payment_status() {
        for (status, sentence) in
            [(PaymentStatus::PastDue, "Payment is past due"), (PaymentStatus::Failed, "The last payment failed")]
        {
            let risk = churn_risk(&ScoringInput { payment_status: Some(status), ..healthy_paid() });
            let f = only_factor(&risk);
            assert_eq!((f.code.as_str(), f.weight), ("payment_failed", 35));
            assert_eq!(f.description, sentence);
        }
    }

    #[test]
    fn payment_failed_mentions_the_attempt_count() {
        let risk = churn_risk(&ScoringInput { payment_failures: 1, ..healthy_paid() });
        assert_eq!(only_factor(&risk).description, "1 failed payment attempt in the current dunning run");
        let risk = churn_risk(&ScoringInput { payment_failures: 3, ..healthy_paid() });
        let f = only_factor(&risk);
        assert_eq!((f.code.as_str(), f.weight), ("payment_failed", 35));
        assert_eq!(f.description, "3 failed payment attempts in the current dunning run");
    }

    #[test]
    fn payment_failed_counts_once_when_every_signal_is_present() {
        let input = ScoringInput {
            status: SubscriptionStatus::PastDue,
            payment_status: Some(PaymentStatus::Failed),
            payment_failures: 2,
            ..healthy_paid()
        };
        let risk = churn_risk(&input);
        assert_eq!(only_factor(&risk).weight, 35);
        assert_eq!(risk.probability, 35);
    }

    #[test]
    fn cancellation_pending_alone() {
        let input = ScoringInput {
            status: SubscriptionStatus::Cancelled,
            auto_renewal: false,
            subscription_end_date: Some(days_ahead(5)),
            ..healthy_paid()
        };
        let risk = churn_risk(&input);
        // Auto-renewal off with 5 days left would be renewal_off_near_end, but cancellation already says it.
        let f = only_factor(&risk);
        assert_eq!((f.code.as_str(), f.weight), ("cancellation_pending", 40));
        assert_eq!(f.description, "Subscription is cancelled and the paid tier ends in 5 days");
        assert_eq!(risk.level, RiskLevel::Medium);
    }

    #[test]
    fn cancellation_without_a_known_end_date_still_reads_well() {
        let input =
            ScoringInput { status: SubscriptionStatus::Cancelled, subscription_end_date: None, ..healthy_paid() };
        assert_eq!(only_factor(&churn_risk(&input)).description, "Subscription is cancelled and will not renew");
    }

    fn renewal_off_with_days_left(days_left: u64) -> ChurnRisk {
        churn_risk(&ScoringInput {
            auto_renewal: false,
            subscription_end_date: Some(days_ahead(days_left)),
            ..healthy_paid()
        })
    }

    #[test]
    fn renewal_off_weighs_more_inside_the_last_week() {
        for (days_left, weight) in [(0, 30), (1, 30), (7, 30), (8, 25), (30, 25)] {
            let risk = renewal_off_with_days_left(days_left);
            let f = only_factor(&risk);
            assert_eq!((f.code.as_str(), f.weight), ("renewal_off_near_end", weight), "{days_left} days left");
        }
        assert!(renewal_off_with_days_left(31).factors.is_empty());
    }

    #[test]
    fn renewal_off_description() {
        assert_eq!(
            only_factor(&renewal_off_with_days_left(5)).description,
            "Subscription ends in 5 days and auto-renewal is off"
        );
        assert_eq!(
            only_factor(&renewal_off_with_days_left(0)).description,
            "Subscription ends today and auto-renewal is off"
        );
        assert_eq!(
            only_factor(&renewal_off_with_days_left(1)).description,
            "Subscription ends in 1 day and auto-renewal is off"
        );
    }

    #[test]
    fn renewal_off_ignores_past_or_missing_end_dates_and_auto_renewing_partners() {
        let ended = ScoringInput { auto_renewal: false, subscription_end_date: Some(days_ago(1)), ..healthy_paid() };
        assert!(churn_risk(&ended).factors.is_empty());
        let no_end = ScoringInput { auto_renewal: false, subscription_end_date: None, ..healthy_paid() };
        assert!(churn_risk(&no_end).factors.is_empty());
        let renewing = ScoringInput { subscription_end_date: Some(days_ahead(3)), ..healthy_paid() };
        assert!(churn_risk(&renewing).factors.is_empty());
    }

    #[test]
    fn one_downgrade_in_the_last_year() {
        let downgrades = [days_ago(100)];
        let risk = churn_risk(&ScoringInput { downgrade_dates: &downgrades, ..healthy_paid() });
        let f = only_factor(&risk);
        assert_eq!((f.code.as_str(), f.weight), ("downgrade_history", 15));
        assert_eq!(f.description, "Downgraded once in the last 12 months");
    }

    #[test]
    fn repeated_downgrades_in_the_last_year() {
        let downgrades = [days_ago(300), days_ago(200), days_ago(100)];
        let risk = churn_risk(&ScoringInput { downgrade_dates: &downgrades, ..healthy_paid() });
        let f = only_factor(&risk);
        assert_eq!((f.code.as_str(), f.weight), ("downgrade_history", 25));
        assert_eq!(f.description, "Downgraded 3 times in the last 12 months");
    }

    #[test]
    fn downgrade_window_includes_day_365_and_excludes_day_366() {
        let at_edge = [days_ago(365)];
        let risk = churn_risk(&ScoringInput { downgrade_dates: &at_edge, ..healthy_paid() });
        assert_eq!(only_factor(&risk).weight, 15);

        let past_edge = [days_ago(366)];
        assert!(churn_risk(&ScoringInput { downgrade_dates: &past_edge, ..healthy_paid() }).factors.is_empty());

        // Only one of the two falls in the window, so it is the single-downgrade weight.
        let straddling = [days_ago(366), days_ago(365)];
        let risk = churn_risk(&ScoringInput { downgrade_dates: &straddling, ..healthy_paid() });
        assert_eq!(only_factor(&risk).weight, 15);
    }

    #[test]
    fn downgrades_dated_after_today_do_not_count() {
        let future = [days_ahead(1)];
        assert!(churn_risk(&ScoringInput { downgrade_dates: &future, ..healthy_paid() }).factors.is_empty());
    }

    #[test]
    fn inactive_after_sixty_days() {
        assert!(churn_risk(&ScoringInput { last_activity: days_ago(60), ..healthy_paid() }).factors.is_empty());
        let risk = churn_risk(&ScoringInput { last_activity: days_ago(61), ..healthy_paid() });
        let f = only_factor(&risk);
        assert_eq!((f.code.as_str(), f.weight), ("inactive", 15));
        assert_eq!(f.description, "No activity for 61 days");
        assert_eq!(risk.level, RiskLevel::Low);
    }

    #[test]
    fn low_usage_below_twenty_percent() {
        let usage_at = |average_percent| ScoringInput {
            usage: Some(UsageSnapshot { average_percent, max_percent: 50 }),
            ..healthy_paid()
        };
        assert!(churn_risk(&usage_at(20)).factors.is_empty());
        let risk = churn_risk(&usage_at(19));
        let f = only_factor(&risk);
        assert_eq!((f.code.as_str(), f.weight), ("low_usage", 20));
        assert_eq!(f.description, "Uses only 19% of the tier's limits on average");
    }

    #[test]
    fn no_usage_data_is_not_low_usage() {
        assert!(churn_risk(&ScoringInput { usage: None, ..healthy_paid() }).factors.is_empty());
    }

    #[test]
    fn probability_is_capped_at_one_hundred() {
        let downgrades = [days_ago(10), days_ago(20)];
        let input = ScoringInput {
            status: SubscriptionStatus::Cancelled,
            payment_failures: 2,
            downgrade_dates: &downgrades,
            last_activity: days_ago(90),
            usage: Some(UsageSnapshot { average_percent: 5, max_percent: 10 }),
            ..healthy_paid()
        };
        let risk = churn_risk(&input);
        // 40 + 35 + 25 + 20 + 15 = 135
        assert_eq!(risk.factors.iter().map(|f| f.weight).sum::<u32>(), 135);
        assert_eq!(risk.probability, 100);
        assert_eq!(risk.level, RiskLevel::High);
    }

    #[test]
    fn factors_are_sorted_by_weight_then_code() {
        let downgrades = [days_ago(10)];
        let input = ScoringInput {
            payment_failures: 1,
            auto_renewal: false,
            subscription_end_date: Some(days_ahead(20)),
            downgrade_dates: &downgrades,
            last_activity: days_ago(90),
            usage: Some(UsageSnapshot { average_percent: 5, max_percent: 10 }),
            ..healthy_paid()
        };
        let risk = churn_risk(&input);
        // downgrade_history and inactive tie at 15 and are ordered by code.
        assert_eq!(
            codes(&risk.factors),
            ["payment_failed", "renewal_off_near_end", "low_usage", "downgrade_history", "inactive"]
        );
        // 35 + 25 + 20 + 15 + 15 = 110, capped.
        assert_eq!(risk.probability, 100);
    }

    #[test]
    fn risk_level_thresholds() {
        assert_eq!((HIGH_RISK_AT, MEDIUM_RISK_AT), (60, 30));
        assert_eq!(level_for(0), RiskLevel::Low);
        assert_eq!(level_for(29), RiskLevel::Low);
        assert_eq!(level_for(30), RiskLevel::Medium);
        assert_eq!(level_for(59), RiskLevel::Medium);
        assert_eq!(level_for(60), RiskLevel::High);
        assert_eq!(level_for(100), RiskLevel::High);
    }

    #[test]
    fn risk_level_thresholds_through_real_factors() {
        // 15: one old downgrade.
        let one = [days_ago(200)];
        // 15 + 15 = 30: add inactivity.
        let medium = churn_risk(&ScoringInput { downgrade_dates: &one, last_activity: days_ago(61), ..healthy_paid() });
        assert_eq!((medium.probability, medium.level), (30, RiskLevel::Medium));
        // 25 + 15 + 20 = 60: two downgrades, inactivity and low usage.
        let two = [days_ago(200), days_ago(100)];
        let high = churn_risk(&ScoringInput {
            downgrade_dates: &two,
            last_activity: days_ago(61),
            usage: Some(UsageSnapshot { average_percent: 0, max_percent: 0 }),
            ..healthy_paid()
        });
        assert_eq!((high.probability, high.level), (60, RiskLevel::High));
        // 25 + 20 = 45 stays medium; one downgrade alone (15) is low.
        let below_high = churn_risk(&ScoringInput {
            downgrade_dates: &two,
            usage: Some(UsageSnapshot { average_percent: 0, max_percent: 0 }),
            ..healthy_paid()
        });
        assert_eq!((below_high.probability, below_high.level), (45, RiskLevel::Medium));
        let low = churn_risk(&ScoringInput { downgrade_dates: &one, ..healthy_paid() });
        assert_eq!((low.probability, low.level), (15, RiskLevel::Low));
    }

    #[test]
    fn trialing_paid_partner_is_scored() {
        let input = ScoringInput { status: SubscriptionStatus::Trialing, payment_failures: 1, ..healthy_paid() };
        assert_eq!(churn_risk(&input).probability, 35);
    }

    #[test]
    fn churn_risk_serializes_for_the_api() {
        let risk = churn_risk(&ScoringInput { status: SubscriptionStatus::PastDue, ..healthy_paid() });
        let json = serde_json::to_value(&risk).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "level": "medium",
                "probability": 35,
                "riskLevel": "medium",
                "recommendedActions": [{
                    "code": "update_payment_method",
                    "description": "Ask the partner to update the card through the billing portal"
                }],
                "confidence": 100,
                "factors": [{ "code": "payment_failed", "description": "Payment is past due", "weight": 35 }]
            })
        );
    }

    #[test]
    fn scores_read_back_from_the_stored_partner_record() {
        let downgrades = [days_ago(10)];
        let input = ScoringInput { payment_failures: 2, downgrade_dates: &downgrades, ..healthy_paid() };
        let risk = churn_risk(&input);
        let stored = serde_json::to_string(&risk).unwrap();
        assert_eq!(serde_json::from_str::<ChurnRisk>(&stored).unwrap(), risk);
        let up = upsell(&input);
        let stored = serde_json::to_string(&up).unwrap();
        assert_eq!(serde_json::from_str::<Upsell>(&stored).unwrap(), up);
    }

    #[test]
    fn none_is_the_unscored_result() {
        let none = ChurnRisk::none();
        assert_eq!((none.level, none.probability, none.factors.len()), (RiskLevel::Low, 0, 0));
        assert_eq!((none.risk_level, none.confidence, none.time_to_churn), (Some(SeedRiskLevel::Low), None, None));
        let up = Upsell::none();
        assert_eq!((up.opportunity, up.score, up.recommended_tier, up.opportunity_type), (false, 0, None, None));
    }

    // ---- seed 004's fields ----

    #[test]
    fn critical_is_a_fourth_band_above_high_and_actions_follow_the_factors() {
        let input = ScoringInput {
            status: SubscriptionStatus::Cancelled,
            payment_failures: 2,
            last_activity: days_ago(90),
            ..healthy_paid()
        };
        let risk = churn_risk(&input);
        // 40 + 35 + 15 = 90: high on the three-band scale, critical on seed 004's.
        assert_eq!(
            (risk.probability, risk.level, risk.risk_level),
            (90, RiskLevel::High, Some(SeedRiskLevel::Critical))
        );
        let actions: Vec<&str> = risk.recommended_actions.iter().map(|a| a.code.as_str()).collect();
        assert_eq!(actions, ["retention_call", "update_payment_method", "re_engagement"]);
        // Cancelled: the term's end dates the churn.
        assert_eq!(risk.time_to_churn, Some(20));
        assert_eq!(risk.confidence, Some(100));
        let unknown = churn_risk(&ScoringInput { usage: None, payment_status: None, ..input });
        assert_eq!(unknown.confidence, Some(60));
        let staying = churn_risk(&ScoringInput { payment_failures: 1, ..healthy_paid() });
        assert_eq!((staying.risk_level, staying.time_to_churn), (Some(SeedRiskLevel::Medium), None));
    }

    #[test]
    fn an_upgrade_opportunity_names_its_type_revenue_and_probability() {
        let hot =
            ScoringInput { usage: Some(UsageSnapshot { average_percent: 85, max_percent: 92 }), ..healthy_paid() };
        let up = upsell(&hot);
        assert_eq!(up.opportunity_type.as_deref(), Some("upgrade"));
        assert_eq!(up.potential_revenue, Some(360_000 - 150_000));
        assert_eq!(up.probability, Some(up.score));
        let top = upsell(&ScoringInput { next_tier_id: None, next_tier_monthly_price: None, ..hot });
        assert_eq!((top.opportunity_type.as_deref(), top.potential_revenue), (Some("usage_increase"), None));
        assert_eq!(upsell(&healthy_paid()).opportunity_type, None);
    }

    // ---- upsell ----

    #[test]
    fn quiet_partners_are_not_upsell_targets() {
        for input in [healthy_paid(), quiet_free()] {
            let up = upsell(&input);
            assert_eq!((up.score, up.opportunity), (0, false));
            assert!(up.reasons.is_empty());
            // The next tier is named even without an opportunity, for the detail view.
            assert!(up.recommended_tier.is_some());
        }
    }

    #[test]
    fn only_active_and_trialing_partners_are_scored() {
        let hot = |status| ScoringInput {
            status,
            usage: Some(UsageSnapshot { average_percent: 90, max_percent: 95 }),
            ..quiet_free()
        };
        for status in [SubscriptionStatus::PastDue, SubscriptionStatus::Cancelled, SubscriptionStatus::Expired] {
            assert_eq!(upsell(&hot(status)), Upsell::none(), "{status:?}");
        }
        for status in [SubscriptionStatus::Active, SubscriptionStatus::Trialing] {
            let up = upsell(&hot(status));
            assert!(up.opportunity, "{status:?}");
            assert_eq!(up.score, 65);
        }
    }

    #[test]
    fn near_limits_from_eighty_percent_peak() {
        let peak_at = |max_percent| ScoringInput {
            usage: Some(UsageSnapshot { average_percent: 50, max_percent }),
            ..healthy_paid()
        };
        assert!(upsell(&peak_at(79)).reasons.is_empty());
        let up = upsell(&peak_at(80));
        let r = only_reason(&up);
        assert_eq!((r.code.as_str(), r.weight), ("near_limits", 35));
        assert_eq!(r.description, "Peak usage reached 80% of the silver tier's limits");
        assert_eq!(up.score, 35);
        assert!(!up.opportunity, "35 is below the upsell threshold");
        // Over the limit is still near it.
        assert_eq!(only_reason(&upsell(&peak_at(140))).code, "near_limits");
    }

    #[test]
    fn high_usage_on_free_from_sixty_percent_average() {
        let average_at = |average_percent| ScoringInput {
            usage: Some(UsageSnapshot { average_percent, max_percent: 70 }),
            ..quiet_free()
        };
        assert!(upsell(&average_at(59)).reasons.is_empty());
        let up = upsell(&average_at(60));
        let r = only_reason(&up);
        assert_eq!((r.code.as_str(), r.weight), ("high_usage_on_free", 30));
        assert_eq!(r.description, "Uses 60% of the free tier's limits on average");
    }

    #[test]
    fn high_average_usage_on_a_paid_tier_is_not_high_usage_on_free() {
        let input =
            ScoringInput { usage: Some(UsageSnapshot { average_percent: 75, max_percent: 79 }), ..healthy_paid() };
        assert!(upsell(&input).reasons.is_empty());
    }

    #[test]
    fn recently_downgraded_within_ninety_days() {
        let at_edge = [days_ago(90)];
        let up = upsell(&ScoringInput { downgrade_dates: &at_edge, ..healthy_paid() });
        let r = only_reason(&up);
        assert_eq!((r.code.as_str(), r.weight), ("recently_downgraded", 25));
        assert_eq!(r.description, "Downgraded in the last 90 days and already knows the higher tier");

        let past_edge = [days_ago(91)];
        assert!(upsell(&ScoringInput { downgrade_dates: &past_edge, ..healthy_paid() }).reasons.is_empty());
    }

    #[test]
    fn recently_downgraded_counts_once() {
        let downgrades = [days_ago(5), days_ago(30), days_ago(60)];
        let up = upsell(&ScoringInput { downgrade_dates: &downgrades, ..healthy_paid() });
        assert_eq!(only_reason(&up).weight, 25);
    }

    fn yearly_ending_in(days_left: u64) -> ScoringInput<'static> {
        ScoringInput {
            billing_period: Some(BillingPeriod::Yearly),
            subscription_end_date: Some(days_ahead(days_left)),
            ..healthy_paid()
        }
    }

    #[test]
    fn annual_renewal_approaching_within_sixty_days() {
        for days_left in [0, 1, 60] {
            let up = upsell(&yearly_ending_in(days_left));
            let r = only_reason(&up);
            assert_eq!((r.code.as_str(), r.weight), ("annual_renewal_approaching", 20), "{days_left} days left");
        }
        assert_eq!(only_reason(&upsell(&yearly_ending_in(45))).description, "Annual subscription renews in 45 days");
        assert!(upsell(&yearly_ending_in(61)).reasons.is_empty());
    }

    #[test]
    fn annual_renewal_needs_a_yearly_paid_term_ending_ahead() {
        let monthly = ScoringInput { billing_period: Some(BillingPeriod::Monthly), ..yearly_ending_in(10) };
        assert!(upsell(&monthly).reasons.is_empty());
        let unknown_period = ScoringInput { billing_period: None, ..yearly_ending_in(10) };
        assert!(upsell(&unknown_period).reasons.is_empty());
        let ended = ScoringInput { subscription_end_date: Some(days_ago(1)), ..yearly_ending_in(10) };
        assert!(upsell(&ended).reasons.is_empty());
        let free = ScoringInput {
            billing_period: Some(BillingPeriod::Yearly),
            subscription_end_date: Some(days_ahead(10)),
            ..quiet_free()
        };
        assert!(upsell(&free).reasons.is_empty());
    }

    #[test]
    fn engaged_free_account_within_thirty_days() {
        assert!(upsell(&ScoringInput { last_activity: days_ago(31), ..quiet_free() }).reasons.is_empty());
        let up = upsell(&ScoringInput { last_activity: days_ago(30), ..quiet_free() });
        let r = only_reason(&up);
        assert_eq!((r.code.as_str(), r.weight), ("engaged_free_account", 10));
        assert_eq!(r.description, "Free account active in the last 30 days");
    }

    #[test]
    fn engaged_paid_account_is_not_engaged_free_account() {
        assert!(upsell(&ScoringInput { last_activity: today(), ..healthy_paid() }).reasons.is_empty());
    }

    #[test]
    fn opportunity_from_the_threshold() {
        assert_eq!(UPSELL_AT, 40);
        // 30 + 10 = 40: exactly at the threshold.
        let at = ScoringInput {
            last_activity: days_ago(1),
            usage: Some(UsageSnapshot { average_percent: 60, max_percent: 70 }),
            ..quiet_free()
        };
        let up = upsell(&at);
        assert_eq!((up.score, up.opportunity), (40, true));
        assert_eq!(up.recommended_tier.as_deref(), Some("silver"));
        // 35 alone: just below.
        let below =
            ScoringInput { usage: Some(UsageSnapshot { average_percent: 50, max_percent: 90 }), ..healthy_paid() };
        let up = upsell(&below);
        assert_eq!((up.score, up.opportunity), (35, false));
    }

    #[test]
    fn opportunity_needs_a_next_tier() {
        let top_tier = ScoringInput {
            tier_id: "platinum",
            usage: Some(UsageSnapshot { average_percent: 70, max_percent: 95 }),
            downgrade_dates: &[],
            next_tier_id: None,
            ..yearly_ending_in(10)
        };
        let up = upsell(&top_tier);
        // The score is still shown so reps can see a maxed-out top-tier partner.
        assert_eq!(up.score, 55);
        assert!(!up.opportunity);
        assert_eq!(up.recommended_tier, None);
        let with_next = upsell(&ScoringInput { next_tier_id: Some("enterprise"), ..top_tier });
        assert!(with_next.opportunity);
        assert_eq!(with_next.recommended_tier.as_deref(), Some("enterprise"));
    }

    #[test]
    fn upsell_score_is_capped_and_reasons_sorted() {
        let downgrades = [days_ago(10)];
        let input = ScoringInput {
            downgrade_dates: &downgrades,
            last_activity: days_ago(2),
            usage: Some(UsageSnapshot { average_percent: 85, max_percent: 99 }),
            ..quiet_free()
        };
        let up = upsell(&input);
        assert_eq!(
            codes(&up.reasons),
            ["near_limits", "high_usage_on_free", "recently_downgraded", "engaged_free_account"]
        );
        // 35 + 30 + 25 + 10 = 100: at the cap.
        assert_eq!(up.score, 100);

        let paid_downgrades = [days_ago(10)];
        let paid = ScoringInput {
            downgrade_dates: &paid_downgrades,
            usage: Some(UsageSnapshot { average_percent: 85, max_percent: 99 }),
            ..yearly_ending_in(10)
        };
        let up = upsell(&paid);
        assert_eq!(codes(&up.reasons), ["near_limits", "recently_downgraded", "annual_renewal_approaching"]);
        assert_eq!(up.score, 80);
    }

    #[test]
    fn upsell_capped_when_the_sum_exceeds_one_hundred() {
        // No single partner can fire every reason today (free and paid-only reasons exclude each
        // other), so the cap is checked on the summing helper directly.
        let heavy = [factor("a", String::new(), 70), factor("b", String::new(), 50)];
        assert_eq!(capped_sum(&heavy), 100);
    }

    #[test]
    fn upsell_serializes_for_the_api() {
        let up = upsell(&ScoringInput { last_activity: days_ago(1), ..quiet_free() });
        assert_eq!(
            serde_json::to_value(&up).unwrap(),
            serde_json::json!({
                "opportunity": false,
                "opportunityType": "upgrade",
                "potentialRevenue": 360_000,
                "probability": 10,
                "score": 10,
                "recommendedTier": "silver",
                "reasons": [{
                    "code": "engaged_free_account",
                    "description": "Free account active in the last 30 days",
                    "weight": 10
                }]
            })
        );
    }
}
