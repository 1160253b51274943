//! Which email a billing fact sends, with its facts filled from the partner.

use crate::domain::billing::{BillingNotice, InvoiceFacts};
use crate::domain::partner::Partner;
use crate::domain::subscription::Catalog;
use crate::mail::{Email, EmailKind, EmailVars};

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
