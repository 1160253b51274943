//! The customer journey (seed 000 §3 `CustomerJourney`): one partner's state,
//! timeline, money, transitions, engagement, risk, opportunities and sales
//! activity, assembled from its partition and scored as of today.

use super::partner::{Partner, SalesNote, SubscriptionStatus};
use super::scoring::Factor;
use super::subscription::{is_paid, months_started, rescore, Catalog, TierTransition, TransitionEvent};
use chrono::NaiveDate;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerJourney {
    pub user_id: String,
    pub partner_id: String,
    pub email: String,
    pub name: String,

    pub current_tier: String,
    pub current_tier_name: String,
    pub is_premium: bool,
    pub subscription_status: SubscriptionStatus,
    pub pcr_multiplier: Option<f64>,

    pub signup_date: NaiveDate,
    pub first_paid_date: Option<NaiveDate>,
    /// The end of the term when it will renew; None when it will not.
    pub next_renewal_date: Option<NaiveDate>,
    pub subscription_end_date: Option<NaiveDate>,
    pub days_as_customer: i64,

    pub currency: String,
    pub mrr: i64,
    /// Paid so far plus what the running term still commits (MRR × months left).
    pub lifetime_value: i64,
    pub total_spent: i64,
    /// Total spent over the months since the first payment, rounded half up.
    pub average_monthly_spend: i64,

    /// Oldest first: the journey's timeline.
    pub transitions: Vec<TierTransition>,
    pub transition_count: usize,
    pub upgrade_count: usize,
    pub downgrade_count: usize,

    pub engagement: Engagement,

    pub churn_risk: super::scoring::RiskLevel,
    pub churn_probability: u32,
    pub churn_factors: Vec<Factor>,

    pub upsell_opportunity: bool,
    pub upsell_score: u32,
    pub recommended_tier: Option<String>,
    pub upsell_reasons: Vec<Factor>,

    pub last_contact_date: Option<String>,
    pub last_contact_type: Option<String>,
    pub assigned_sales_rep: Option<String>,
    /// Newest first.
    pub sales_notes: Vec<NoteView>,
    pub scored_on: NaiveDate,
}

/// Logins and listings live in the identity provider and the listing service,
/// which Tierdesk does not read; they are reported as unknown rather than zero.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Engagement {
    pub last_activity_date: Option<NaiveDate>,
    pub last_login_date: Option<String>,
    pub login_count: Option<u64>,
    pub listing_count: Option<u64>,
    /// Percent of tier limits used; None until usage tracking has data.
    pub average_usage: Option<u32>,
    pub note_count: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NoteView {
    pub timestamp: String,
    pub rep: String,
    pub note: String,
    pub next_action: Option<String>,
    pub contact_type: String,
}

fn divide_half_up(amount: i64, by: i64) -> i64 {
    if by <= 0 {
        return 0;
    }
    (2 * amount + by).div_euclid(2 * by)
}

pub fn build(
    partner: &Partner,
    mut transitions: Vec<TierTransition>,
    mut notes: Vec<SalesNote>,
    catalog: Catalog<'_>,
    today: NaiveDate,
    usage: Option<super::scoring::UsageSnapshot>,
) -> CustomerJourney {
    let mut scored = partner.clone();
    rescore(&mut scored, catalog, today, usage);
    let tier = catalog.any(&partner.engagement_tier);
    transitions.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
    notes.sort_by(|a, b| b.timestamp.cmp(&a.timestamp));
    let count = |pred: fn(TransitionEvent) -> bool| transitions.iter().filter(|t| pred(t.event)).count();
    let upgrade_count = count(|e| e == TransitionEvent::Upgrade);
    let downgrade_count = count(|e| matches!(e, TransitionEvent::Downgrade | TransitionEvent::PaymentFailureDowngrade));
    let running = !partner.subscription_status.is_lapsed();
    let remaining_commitment = match partner.subscription_end_date {
        Some(end) if partner.subscription_status != SubscriptionStatus::Expired => {
            partner.mrr * months_started(today, end)
        }
        _ => 0,
    };
    let paying_months = partner.first_paid_date.map_or(0, |first| months_started(first, today).max(1));
    CustomerJourney {
        user_id: partner.partner_id.clone(),
        partner_id: partner.partner_id.clone(),
        email: partner.primary_email.clone(),
        name: partner.company_name.clone(),
        current_tier: partner.engagement_tier.clone(),
        current_tier_name: tier.map_or_else(|| partner.engagement_tier.clone(), |t| t.name.clone()),
        is_premium: tier.is_some_and(|t| t.is_premium || is_paid(t)),
        subscription_status: partner.subscription_status,
        pcr_multiplier: tier.map(|t| t.pcr_multiplier),
        signup_date: partner.signup_date,
        first_paid_date: partner.first_paid_date,
        next_renewal_date: partner.subscription_end_date.filter(|_| running && partner.auto_renewal),
        subscription_end_date: partner.subscription_end_date,
        days_as_customer: (today - partner.signup_date).num_days().max(0),
        currency: partner.currency.clone(),
        mrr: partner.mrr,
        lifetime_value: partner.total_paid + remaining_commitment,
        total_spent: partner.total_paid,
        average_monthly_spend: divide_half_up(partner.total_paid, paying_months),
        transition_count: transitions.len(),
        upgrade_count,
        downgrade_count,
        transitions,
        engagement: Engagement {
            last_activity_date: super::subscription::last_activity_date(partner),
            last_login_date: None,
            login_count: None,
            listing_count: None,
            average_usage: usage.map(|u| u.average_percent),
            note_count: notes.len(),
        },
        churn_risk: scored.churn_risk.level,
        churn_probability: scored.churn_risk.probability,
        churn_factors: scored.churn_risk.factors,
        upsell_opportunity: scored.upsell.opportunity,
        upsell_score: scored.upsell.score,
        recommended_tier: scored.upsell.recommended_tier,
        upsell_reasons: scored.upsell.reasons,
        last_contact_date: partner.last_contact_date.clone(),
        last_contact_type: partner.last_contact_type.clone(),
        assigned_sales_rep: partner.assigned_sales_rep.clone(),
        sales_notes: notes
            .into_iter()
            .map(|n| NoteView {
                timestamp: n.timestamp,
                rep: n.rep,
                note: n.note,
                next_action: n.next_action,
                contact_type: n.contact_type,
            })
            .collect(),
        scored_on: today,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn months_count_started_months() {
        assert_eq!(months_started(day("2026-01-10"), day("2026-01-10")), 0);
        assert_eq!(months_started(day("2026-01-10"), day("2026-01-11")), 1);
        assert_eq!(months_started(day("2026-01-10"), day("2026-03-10")), 2);
        assert_eq!(months_started(day("2026-01-10"), day("2026-03-11")), 3);
    }

    #[test]
    fn averages_round_half_up() {
        assert_eq!(divide_half_up(10, 4), 3); // 2.5
        assert_eq!(divide_half_up(9, 4), 2); // 2.25
        assert_eq!(divide_half_up(11, 4), 3); // 2.75
        assert_eq!(divide_half_up(5, 0), 0);
    }
}
