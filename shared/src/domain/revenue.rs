//! The revenue ledger's rules: what a partner contributes to MRR, how a change in
//! that contribution is classified, and what a partner adds to its tier's live
//! statistics.
//!
//! MRR follows ChartMogul's definitions:
//! - a yearly price counts as one twelfth per month (rounded half up to the cent);
//! - trials are not MRR, and neither is a partner paying nothing (100% discount);
//! - a cancelled subscription keeps counting until its term actually ends; churn is
//!   recognised when the partner stops paying, not when they give notice;
//! - past-due partners still count: dunning may recover them, and if it does not,
//!   the payment-failure downgrade is the churn.

use super::money::BillingPeriod;
use super::partner::{Partner, SubscriptionState, SubscriptionStatus};
use serde::{Deserialize, Serialize};

pub use super::money::monthly_value;

/// What a partner in this state contributes to MRR, in cents.
pub fn mrr_of(status: SubscriptionStatus, price_per_period: i64, period: Option<BillingPeriod>) -> i64 {
    match (status, period) {
        (SubscriptionStatus::Trialing | SubscriptionStatus::Expired, _) | (_, None) => 0,
        (_, Some(period)) => monthly_value(price_per_period.max(0), period),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    New,
    Expansion,
    Contraction,
    Churn,
    Reactivation,
}

impl MovementKind {
    pub fn as_str(self) -> &'static str {
        crate::domain::wire::wire_name(&self)
    }

    /// The MRR change a movement of this kind and size means, signed.
    pub fn classify(previous_mrr: i64, new_mrr: i64, paid_before: bool) -> Option<Self> {
        match (previous_mrr > 0, new_mrr > 0) {
            (false, true) if paid_before => Some(Self::Reactivation),
            (false, true) => Some(Self::New),
            (true, false) => Some(Self::Churn),
            (true, true) if new_mrr > previous_mrr => Some(Self::Expansion),
            (true, true) if new_mrr < previous_mrr => Some(Self::Contraction),
            _ => None,
        }
    }
}

/// One line of the MRR ledger: `amount` is signed and the ledger's sum over any
/// period equals the change in total MRR over that period, to the cent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Movement {
    pub movement_id: String,
    pub partner_id: String,
    pub kind: MovementKind,
    pub amount: i64,
    pub previous_mrr: i64,
    pub new_mrr: i64,
    pub from_tier: String,
    pub to_tier: String,
    pub currency: String,
    pub at: String,
    pub transition_id: String,
}

/// What one partner adds to the `STATS#{tier}/CURRENT` item of the tier it is on.
/// Tier statistics are kept as sums of these, so a recount from the partners must
/// always reproduce them exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TierCounts {
    /// Every partner on the tier, whatever its status (archiving needs 0).
    pub member_count: i64,
    /// Partners whose subscription is running: active, trialing or past due
    /// (`SubscriptionState::is_running`). Active subscriptions are these plus
    /// `cancelling_count` (`active_subscriptions`).
    pub active_count: i64,
    pub trialing_count: i64,
    pub past_due_count: i64,
    /// Cancelled but still inside the paid term.
    pub cancelling_count: i64,
    /// Contributing MRR.
    pub paying_count: i64,
    pub monthly_count: i64,
    pub yearly_count: i64,
    pub mrr: i64,
}

impl TierCounts {
    pub fn of(partner: &Partner) -> Self {
        let state = partner.subscription_state();
        let paying = partner.mrr > 0;
        let one = |b: bool| i64::from(b);
        Self {
            member_count: 1,
            active_count: one(state.is_running()),
            trialing_count: one(state == SubscriptionState::Trialing),
            past_due_count: one(state == SubscriptionState::PastDue),
            cancelling_count: one(state == SubscriptionState::Cancelling),
            paying_count: one(paying),
            monthly_count: one(paying && partner.billing_period == Some(BillingPeriod::Monthly)),
            yearly_count: one(paying && partner.billing_period == Some(BillingPeriod::Yearly)),
            mrr: partner.mrr,
        }
    }

    pub fn plus(self, o: Self) -> Self {
        Self {
            member_count: self.member_count + o.member_count,
            active_count: self.active_count + o.active_count,
            trialing_count: self.trialing_count + o.trialing_count,
            past_due_count: self.past_due_count + o.past_due_count,
            cancelling_count: self.cancelling_count + o.cancelling_count,
            paying_count: self.paying_count + o.paying_count,
            monthly_count: self.monthly_count + o.monthly_count,
            yearly_count: self.yearly_count + o.yearly_count,
            mrr: self.mrr + o.mrr,
        }
    }

    pub fn negated(self) -> Self {
        Self::default().minus(self)
    }

    pub fn minus(self, o: Self) -> Self {
        Self {
            member_count: self.member_count - o.member_count,
            active_count: self.active_count - o.active_count,
            trialing_count: self.trialing_count - o.trialing_count,
            past_due_count: self.past_due_count - o.past_due_count,
            cancelling_count: self.cancelling_count - o.cancelling_count,
            paying_count: self.paying_count - o.paying_count,
            monthly_count: self.monthly_count - o.monthly_count,
            yearly_count: self.yearly_count - o.yearly_count,
            mrr: self.mrr - o.mrr,
        }
    }

    /// Active subscriptions (`Partner::is_active_subscription`): running or cancelling.
    pub fn active_subscriptions(&self) -> i64 {
        self.active_count + self.cancelling_count
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// The change each tier's statistics undergo when a partner goes from `before`
/// to `after` (or appears, with `before` None). Tiers whose counts do not change
/// are left out, so a no-op writes nothing.
pub fn stats_deltas(before: Option<&Partner>, after: &Partner) -> Vec<(String, TierCounts)> {
    let mut out: Vec<(String, TierCounts)> = Vec::new();
    let mut add = |tier: &str, delta: TierCounts| match out.iter_mut().find(|(t, _)| t == tier) {
        Some((_, d)) => *d = d.plus(delta),
        None => out.push((tier.to_string(), delta)),
    };
    if let Some(b) = before {
        add(&b.engagement_tier, TierCounts::of(b).negated());
    }
    add(&after.engagement_tier, TierCounts::of(after));
    out.retain(|(_, d)| !d.is_zero());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yearly_prices_count_a_twelfth_rounded_half_up() {
        assert_eq!(monthly_value(4_320_000, BillingPeriod::Yearly), 360_000);
        assert_eq!(monthly_value(1000, BillingPeriod::Yearly), 83); // 83.33
        assert_eq!(monthly_value(1002, BillingPeriod::Yearly), 84); // 83.5
        assert_eq!(monthly_value(1001, BillingPeriod::Yearly), 83); // 83.42
        assert_eq!(monthly_value(5, BillingPeriod::Yearly), 0); // 0.42
        assert_eq!(monthly_value(6, BillingPeriod::Yearly), 1); // 0.5
        assert_eq!(monthly_value(360_000, BillingPeriod::Monthly), 360_000);
    }

    #[test]
    fn trials_expired_and_free_partners_are_not_mrr() {
        let m = Some(BillingPeriod::Monthly);
        assert_eq!(mrr_of(SubscriptionStatus::Trialing, 360_000, m), 0);
        assert_eq!(mrr_of(SubscriptionStatus::Expired, 360_000, m), 0);
        assert_eq!(mrr_of(SubscriptionStatus::Active, 0, m), 0);
        assert_eq!(mrr_of(SubscriptionStatus::Active, 360_000, None), 0);
        assert_eq!(mrr_of(SubscriptionStatus::Active, 360_000, m), 360_000);
        assert_eq!(mrr_of(SubscriptionStatus::PastDue, 360_000, m), 360_000);
        // Notice given, term still running: still revenue until it ends.
        assert_eq!(mrr_of(SubscriptionStatus::Cancelled, 360_000, m), 360_000);
    }

    #[test]
    fn movements_follow_chartmogul() {
        use MovementKind::*;
        assert_eq!(MovementKind::classify(0, 100, false), Some(New));
        assert_eq!(MovementKind::classify(0, 100, true), Some(Reactivation));
        assert_eq!(MovementKind::classify(100, 0, true), Some(Churn));
        assert_eq!(MovementKind::classify(100, 150, true), Some(Expansion));
        assert_eq!(MovementKind::classify(150, 100, true), Some(Contraction));
        assert_eq!(MovementKind::classify(100, 100, true), None);
        assert_eq!(MovementKind::classify(0, 0, true), None);
    }
}
