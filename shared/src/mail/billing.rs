//! Which email a billing fact sends, with its facts filled from the partner.

use super::{Email, EmailKind, EmailVars};
use crate::domain::billing::{BillingNotice, InvoiceFacts};
use crate::domain::partner::Partner;
use crate::domain::subscription::Catalog;

fn tier_name(catalog: Catalog<'_>, tier_id: &str) -> String {
    catalog.any(tier_id).map_or_else(|| tier_id.to_string(), |t| t.name.clone())
}

/// The email for `notice` about `partner` (its state after the change), or None
/// when the notice sends nothing.
pub fn email_for(
    notice: BillingNotice,
    partner: &Partner,
    before: Option<&Partner>,
    invoice: Option<&InvoiceFacts>,
    catalog: Catalog<'_>,
) -> Email {
    let kind = match notice {
        BillingNotice::UpgradeConfirmation => EmailKind::TierUpgradeConfirmation,
        BillingNotice::Receipt => EmailKind::PaymentReceipt,
        BillingNotice::PaymentFailed { attempt: 1 } => EmailKind::PaymentFailedFriendly,
        BillingNotice::PaymentFailed { attempt: 2 } => EmailKind::PaymentFailedUrgent,
        BillingNotice::PaymentFailed { .. } => EmailKind::PaymentFailedFinal,
        BillingNotice::Expired => EmailKind::SubscriptionExpired,
        BillingNotice::Cancelled => EmailKind::CancellationConfirmation,
    };
    // A final failure or an expiry names the tier that was lost, not the free one.
    let shown_tier = match (notice, before) {
        (BillingNotice::PaymentFailed { .. } | BillingNotice::Expired, Some(b)) => b.engagement_tier.as_str(),
        _ => partner.engagement_tier.as_str(),
    };
    let mut vars = EmailVars {
        company_name: partner.company_name.clone(),
        tier_name: tier_name(catalog, shown_tier),
        previous_tier_name: before
            .filter(|b| b.engagement_tier != partner.engagement_tier)
            .map(|b| tier_name(catalog, &b.engagement_tier)),
        amount: Some(partner.price_per_period).filter(|a| *a > 0),
        currency: partner.currency.clone(),
        billing_period: partner.billing_period,
        start_date: partner.subscription_start_date,
        end_date: partner.subscription_end_date.or(before.and_then(|b| b.subscription_end_date)),
        reason: partner.cancellation_reason.clone(),
        locale: partner.locale,
        ..EmailVars::default()
    };
    if let Some(inv) = invoice {
        vars.amount = Some(if inv.amount_paid > 0 { inv.amount_paid } else { inv.amount_due });
        vars.currency = inv.currency.clone();
        vars.invoice_number = inv.number.clone();
        vars.invoice_url = inv.hosted_url.clone();
        vars.invoice_pdf_url = inv.pdf_url.clone();
        vars.attempt_count = Some(inv.attempt_count);
        vars.next_attempt_date = inv.next_attempt;
        vars.start_date = inv.period_start.or(vars.start_date);
        vars.end_date = inv.period_end.or(vars.end_date);
        if let Some(p) = &inv.price {
            vars.billing_period = Some(p.period);
        }
    }
    Email { kind, to: partner.primary_email.clone(), vars }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::defaults::default_tiers;
    use crate::domain::partner::NewPartner;
    use crate::domain::subscription::{plan_signup, TransitionContext, Trigger, TriggerType};
    use crate::domain::tier::Tier;
    use crate::mail::{render, Locale};
    use chrono::NaiveDate;
    use serde_json::json;

    #[test]
    fn billing_emails_are_written_in_the_partners_locale() {
        let change = crate::domain::actor::Actor::fixture("seed", "2026-01-01T00:00:00Z");
        let tiers: Vec<Tier> = default_tiers().into_iter().map(|t| t.into_tier(&change)).collect();
        let ctx = TransitionContext {
            today: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            at: "2026-01-01T00:00:00.000Z".into(),
            actor: "admin".into(),
            request_id: None,
            transition_id: "tr".into(),
            movement_id: "mv".into(),
            trigger: Trigger {
                trigger_type: TriggerType::SalesAssisted,
                sales_rep: None,
                promotion_id: None,
                reason: None,
            },
        };
        let body = json!({"companyName": "Acme", "primaryEmail": "a@example.com", "locale": "en-GB"});
        let new = NewPartner::parse(&body).unwrap();
        let mut partner = plan_signup("prt_1", new, Catalog::new(&tiers), &ctx).unwrap().after;
        partner.subscription_end_date = NaiveDate::from_ymd_opt(2027, 3, 5);
        let email = email_for(BillingNotice::Cancelled, &partner, None, None, Catalog::new(&tiers));
        assert_eq!(email.vars.locale, Locale::EnGb);
        let text = render(email.kind, &email.vars, "https://x.example/billing").unwrap().text;
        assert!(text.contains("5 March 2027") && !text.contains("March 5, 2027"), "{text}");
    }
}
