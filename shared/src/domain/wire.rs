//! An enum's wire name (its JSON value, a stored attribute, a key part, a query
//! value) is its serde name, written once in its serde attributes; `wire_name`
//! reads it back, so no `as_str` spells the strings a second time.

use serde::Serialize;
use serde_json::Value;

/// The serde name of a unit variant (`PastDue` → `"past_due"` under
/// `rename_all = "snake_case"`). Empty for a value that is not a unit variant,
/// which no caller passes: `every_wire_name_is_the_serde_name` holds each enum.
pub fn wire_name<T: Serialize>(value: &T) -> &'static str {
    serde_variant::to_variant_name(value).unwrap_or_default()
}

/// The value of `all` whose wire name `v` holds, or a message naming every
/// allowed value in `all`'s order.
pub fn one_of<T: Serialize + Copy>(all: &[T], v: &Value) -> Result<T, String> {
    let asked = v.as_str().unwrap_or_default();
    all.iter().copied().find(|x| wire_name(x) == asked).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(wire_name).collect();
        format!("must be one of {}", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    /// The wire names as they were spelled out before `wire_name` (each enum's
    /// stored values, keys and JSON), so moving the names to serde changed none.
    #[test]
    fn every_wire_name_is_the_serde_name() {
        let cases: Vec<(&str, &str)> = vec![
            (crate::domain::partner::SubscriptionStatus::Active.as_str(), "active"),
            (crate::domain::partner::SubscriptionStatus::Trialing.as_str(), "trialing"),
            (crate::domain::partner::SubscriptionStatus::PastDue.as_str(), "past_due"),
            (crate::domain::partner::SubscriptionStatus::Cancelled.as_str(), "cancelled"),
            (crate::domain::partner::SubscriptionStatus::Expired.as_str(), "expired"),
            (crate::domain::partner::SubscriptionState::Active.as_str(), "active"),
            (crate::domain::partner::SubscriptionState::Trialing.as_str(), "trialing"),
            (crate::domain::partner::SubscriptionState::PastDue.as_str(), "past_due"),
            (crate::domain::partner::SubscriptionState::Cancelling.as_str(), "cancelling"),
            (crate::domain::partner::SubscriptionState::Cancelled.as_str(), "cancelled"),
            (crate::domain::partner::SubscriptionState::Expired.as_str(), "expired"),
            (crate::domain::experiment::ExperimentStatus::Draft.as_str(), "draft"),
            (crate::domain::experiment::ExperimentStatus::Active.as_str(), "active"),
            (crate::domain::experiment::ExperimentStatus::Paused.as_str(), "paused"),
            (crate::domain::experiment::ExperimentStatus::Completed.as_str(), "completed"),
            (crate::domain::experiment::ExperimentStatus::Cancelled.as_str(), "cancelled"),
            (crate::domain::dashboard_job::JobAction::SendReminders.as_str(), "send_reminders"),
            (crate::domain::dashboard_job::JobAction::Renew.as_str(), "renew"),
            (crate::domain::revenue::MovementKind::New.as_str(), "new"),
            (crate::domain::revenue::MovementKind::Expansion.as_str(), "expansion"),
            (crate::domain::revenue::MovementKind::Contraction.as_str(), "contraction"),
            (crate::domain::revenue::MovementKind::Churn.as_str(), "churn"),
            (crate::domain::revenue::MovementKind::Reactivation.as_str(), "reactivation"),
            (crate::domain::locale::Locale::EnUs.as_str(), "en-US"),
            (crate::domain::locale::Locale::EnGb.as_str(), "en-GB"),
            (crate::domain::billing::BillingStatus::Draft.as_str(), "draft"),
            (crate::domain::billing::BillingStatus::Open.as_str(), "open"),
            (crate::domain::billing::BillingStatus::Paid.as_str(), "paid"),
            (crate::domain::billing::BillingStatus::Void.as_str(), "void"),
            (crate::domain::billing::BillingStatus::Uncollectible.as_str(), "uncollectible"),
            (crate::domain::billing::BillingStatus::Refunded.as_str(), "refunded"),
            (crate::domain::billing::BillingStatus::PartiallyRefunded.as_str(), "partially_refunded"),
            (crate::domain::permissions::Role::SalesRep.as_str(), "sales_rep"),
            (crate::domain::permissions::Role::SalesManager.as_str(), "sales_manager"),
            (crate::domain::permissions::Role::Admin.as_str(), "admin"),
            (crate::domain::permissions::Role::Partner.as_str(), "partner"),
            (crate::domain::permissions::Role::Service.as_str(), "service"),
            (crate::domain::money::BillingPeriod::Monthly.as_str(), "monthly"),
            (crate::domain::money::BillingPeriod::Yearly.as_str(), "yearly"),
            (crate::domain::quote::QuoteStatus::Draft.as_str(), "draft"),
            (crate::domain::quote::QuoteStatus::PendingApproval.as_str(), "pending_approval"),
            (crate::domain::quote::QuoteStatus::Sent.as_str(), "sent"),
            (crate::domain::quote::QuoteStatus::Accepted.as_str(), "accepted"),
            (crate::domain::quote::QuoteStatus::Rejected.as_str(), "rejected"),
            (crate::domain::quote::QuoteStatus::Expired.as_str(), "expired"),
            (crate::domain::quote::QuoteStatus::Cancelled.as_str(), "cancelled"),
            (crate::domain::promotion::ReasonCode::NotFound.as_str(), "not_found"),
            (crate::domain::promotion::ReasonCode::NotActive.as_str(), "not_active"),
            (crate::domain::promotion::ReasonCode::NotStarted.as_str(), "not_started"),
            (crate::domain::promotion::ReasonCode::Ended.as_str(), "ended"),
            (crate::domain::promotion::ReasonCode::TierNotEligible.as_str(), "tier_not_eligible"),
            (crate::domain::promotion::ReasonCode::ExcludedTier.as_str(), "excluded_tier"),
            (crate::domain::promotion::ReasonCode::BillingPeriodNotEligible.as_str(), "billing_period_not_eligible"),
            (crate::domain::promotion::ReasonCode::UserTypeNotEligible.as_str(), "user_type_not_eligible"),
            (crate::domain::promotion::ReasonCode::AccountTooNew.as_str(), "account_too_new"),
            (crate::domain::promotion::ReasonCode::AccountTooOld.as_str(), "account_too_old"),
            (crate::domain::promotion::ReasonCode::SegmentNotEligible.as_str(), "segment_not_eligible"),
            (crate::domain::promotion::ReasonCode::MaxRedemptionsReached.as_str(), "max_redemptions_reached"),
            (crate::domain::promotion::ReasonCode::PerUserLimitReached.as_str(), "per_user_limit_reached"),
            (crate::domain::promotion::ReasonCode::MinimumCommitmentNotMet.as_str(), "minimum_commitment_not_met"),
            (crate::domain::promotion::ReasonCode::NotStackable.as_str(), "not_stackable"),
            (crate::domain::promotion::ReasonCode::DuplicateCode.as_str(), "duplicate_code"),
            (crate::domain::promotion::PromotionStatus::Draft.as_str(), "draft"),
            (crate::domain::promotion::PromotionStatus::PendingApproval.as_str(), "pending_approval"),
            (crate::domain::promotion::PromotionStatus::Active.as_str(), "active"),
            (crate::domain::promotion::PromotionStatus::Paused.as_str(), "paused"),
            (crate::domain::promotion::PromotionStatus::Completed.as_str(), "completed"),
            (crate::domain::promotion::PromotionStatus::Cancelled.as_str(), "cancelled"),
            (crate::domain::renewal::NoticeKind::RenewalReminder30.as_str(), "renewal_reminder_30"),
            (crate::domain::renewal::NoticeKind::RenewalUrgent7.as_str(), "renewal_urgent_7"),
            (crate::domain::renewal::NoticeKind::SubscriptionExpired.as_str(), "subscription_expired"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn one_of_finds_by_wire_name_and_names_every_choice() {
        use crate::domain::experiment::ExperimentStatus;
        use serde_json::json;
        let all = ExperimentStatus::ALL;
        assert_eq!(super::one_of(&all, &json!("paused")), Ok(ExperimentStatus::Paused));
        assert_eq!(
            super::one_of(&all, &json!("Paused")),
            Err("must be one of draft, active, paused, completed, cancelled".to_string())
        );
        assert!(super::one_of(&all, &json!(3)).is_err());
    }
}
