//! Stripe objects (async-stripe types, API 2026-09-30) → the plain facts of
//! `domain::billing`. Only this module knows where Stripe keeps things: the
//! period on the subscription item, the subscription of an invoice under
//! `parent.subscription_details`, the price of a line under `pricing`.

use crate::domain::billing::PaymentFacts;
use crate::domain::billing::{
    parse_lookup_key, InvoiceFacts, InvoiceStatus, PriceFacts, StripeStatus, SubscriptionFacts,
};
use crate::domain::money::BillingPeriod;
use crate::domain::subscription::PaymentMethod;
use chrono::{DateTime, NaiveDate};
use std::collections::HashMap;
use stripe_shared::{Invoice, Price, Subscription};

/// Metadata key linking Stripe objects to a partner.
pub const PARTNER_ID_KEY: &str = "partner_id";
pub const TIER_ID_KEY: &str = "tier_id";
/// On an add-on's Stripe price (and product): which add-on it charges.
pub const ADD_ON_ID_KEY: &str = "add_on_id";
/// The lookup-key prefix of add-on prices: `tierdesk_addon_{id}_v{version}_{period}`.
pub const ADD_ON_KEY_PREFIX: &str = "tierdesk_addon_";
/// Checkout metadata of a promotion applied at checkout: the webhook records the
/// redemption from these once the session is paid.
pub const PROMOTION_ID_KEY: &str = "promotion_id";
pub const PROMOTION_CODE_KEY: &str = "promotion_code";
/// The customer as the promotion rules saw them when the session was created
/// (JSON of `promotion::Customer`): by the time the payment's
/// `checkout.session.completed` arrives, Stripe has already put them on the tier.
pub const PROMOTION_CUSTOMER_KEY: &str = "promotion_customer";
pub const BILLING_PERIOD_KEY: &str = "billing_period";
pub const SCHEDULED_TIER_ID_KEY: &str = "scheduled_tier_id";
/// Price metadata: the tier's `PRICE#` version a Stripe price charges.
pub const PRICE_VERSION_KEY: &str = "price_version";
/// Price and subscription metadata: the quote a price or subscription was made for.
pub const QUOTE_ID_KEY: &str = "quote_id";

pub fn date(ts: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp(ts, 0).map(|d| d.date_naive())
}

pub fn price_facts(price: &Price) -> Option<PriceFacts> {
    let period = match price.recurring.as_ref()?.interval {
        stripe_shared::RecurringInterval::Month => BillingPeriod::Monthly,
        stripe_shared::RecurringInterval::Year => BillingPeriod::Yearly,
        _ => return None,
    };
    let add_on_id = price.metadata.get(ADD_ON_ID_KEY).cloned().or_else(|| {
        let rest = price.lookup_key.as_deref()?.strip_prefix(ADD_ON_KEY_PREFIX)?;
        rest.rsplit_once("_v").map(|(id, _)| id.to_string())
    });
    let from_key = price.lookup_key.as_deref().filter(|_| add_on_id.is_none()).and_then(parse_lookup_key);
    let tier_id =
        price.metadata.get(TIER_ID_KEY).cloned().or_else(|| from_key.as_ref().map(|(tier, _, _)| tier.clone()));
    let price_version = price
        .metadata
        .get(PRICE_VERSION_KEY)
        .and_then(|v| v.parse().ok())
        .or_else(|| from_key.as_ref().and_then(|(_, version, _)| *version));
    Some(PriceFacts {
        price_id: price.id.as_str().to_string(),
        unit_amount: price.unit_amount.unwrap_or(0),
        currency: price.currency.to_string(),
        period,
        tier_id: tier_id.filter(|_| add_on_id.is_none()),
        price_version,
        add_on_id,
    })
}

fn stripe_status(status: &stripe_shared::SubscriptionStatus) -> StripeStatus {
    use stripe_shared::SubscriptionStatus as S;
    match status {
        S::Active => StripeStatus::Active,
        S::Trialing => StripeStatus::Trialing,
        S::PastDue => StripeStatus::PastDue,
        S::Unpaid => StripeStatus::Unpaid,
        S::Canceled => StripeStatus::Canceled,
        S::Incomplete => StripeStatus::Incomplete,
        S::IncompleteExpired => StripeStatus::IncompleteExpired,
        _ => StripeStatus::Paused,
    }
}

pub fn subscription_facts(sub: &Subscription) -> SubscriptionFacts {
    // The tier's item; add-ons are items of their own beside it.
    let item = sub
        .items
        .data
        .iter()
        .find(|i| price_facts(&i.price).is_none_or(|p| p.add_on_id.is_none()))
        .or_else(|| sub.items.data.first());
    SubscriptionFacts {
        subscription_id: sub.id.as_str().to_string(),
        item_id: item.map(|i| i.id.as_str().to_string()),
        customer_id: sub.customer.id().as_str().to_string(),
        status: stripe_status(&sub.status),
        price: item.and_then(|i| price_facts(&i.price)),
        period_start: item.and_then(|i| date(i.current_period_start)),
        period_end: item.and_then(|i| date(i.current_period_end)),
        trial_end: sub.trial_end.and_then(date),
        cancel_at_period_end: sub.cancel_at_period_end,
        tier_hint: sub.metadata.get(TIER_ID_KEY).cloned(),
        scheduled_tier: sub.metadata.get(SCHEDULED_TIER_ID_KEY).cloned().filter(|t| !t.is_empty()),
        add_ons: sub
            .items
            .data
            .iter()
            .filter_map(|i| {
                let price = price_facts(&i.price)?;
                Some(crate::domain::partner::SubscribedAddOn {
                    add_on_id: price.add_on_id?,
                    price: price.unit_amount,
                    price_id: price.price_id,
                    item_id: i.id.as_str().to_string(),
                })
            })
            .collect(),
    }
}

/// The payment behind a subscription read with `latest_invoice` and
/// `default_payment_method` expanded (`StripeGateway::subscription_with_payment`):
/// the latest invoice's amount if it is paid, and the card's brand and last four
/// digits (never more). Unexpanded (a webhook's snapshot) gives nothing.
pub fn subscription_payment(sub: &Subscription) -> PaymentFacts {
    let amount_paid = sub
        .latest_invoice
        .as_ref()
        .and_then(|i| i.as_object())
        .filter(|i| matches!(i.status, Some(stripe_shared::InvoiceStatus::Paid)))
        .map(|i| i.amount_paid);
    let card = sub
        .default_payment_method
        .as_ref()
        .and_then(|pm| pm.as_object())
        .and_then(|pm| pm.card.as_ref())
        .and_then(|c| PaymentMethod::card(&c.brand, &c.last4));
    PaymentFacts { amount_paid, card }
}

/// The partner a subscription names in its metadata.
pub fn subscription_partner_hint(sub: &Subscription) -> Option<String> {
    sub.metadata.get(PARTNER_ID_KEY).cloned()
}

/// An invoice's facts, and the ids of its subscription lines' prices in line
/// order, which the caller resolves to the tier's `PriceFacts` (invoice lines carry
/// only the id; add-on lines sit beside the tier's).
pub fn invoice_facts(invoice: &Invoice) -> (InvoiceFacts, Vec<String>) {
    use stripe_shared::InvoiceStatus as S;
    let subscription_parent = invoice.parent.as_ref().and_then(|p| p.subscription_details.as_ref());
    let subscription_id = subscription_parent
        .map(|d| d.subscription.id().as_str().to_string())
        .or_else(|| invoice.subscription.as_ref().map(|s| s.id().as_str().to_string()));
    // The subscription line: not a proration, not a one-off invoice item.
    let line = invoice
        .lines
        .data
        .iter()
        .find(|l| l.parent.as_ref().and_then(|p| p.subscription_item_details.as_ref()).is_some_and(|d| !d.proration))
        .or_else(|| invoice.lines.data.first());
    let price_of = |l: &stripe_shared::InvoiceLineItem| {
        l.pricing.as_ref().and_then(|p| p.price_details.as_ref()).map(|d| d.price.id().as_str().to_string())
    };
    let mut price_ids: Vec<String> = invoice
        .lines
        .data
        .iter()
        .filter(|l| l.parent.as_ref().and_then(|p| p.subscription_item_details.as_ref()).is_some_and(|d| !d.proration))
        .filter_map(price_of)
        .collect();
    if price_ids.is_empty() {
        price_ids.extend(line.and_then(price_of));
    }
    let status = match invoice.status.as_ref() {
        Some(S::Paid) => InvoiceStatus::Paid,
        Some(S::Void) => InvoiceStatus::Void,
        Some(S::Uncollectible) => InvoiceStatus::Uncollectible,
        Some(S::Open) => InvoiceStatus::Open,
        _ => InvoiceStatus::Draft,
    };
    let facts = InvoiceFacts {
        invoice_id: invoice.id.as_ref().map(|i| i.as_str().to_string()).unwrap_or_default(),
        number: invoice.number.clone(),
        customer_id: invoice.customer.as_ref().map(|c| c.id().as_str().to_string()).unwrap_or_default(),
        subscription_id,
        amount_due: invoice.amount_due,
        amount_paid: invoice.amount_paid,
        currency: invoice.currency.to_string(),
        status,
        billing_reason: invoice.billing_reason.as_ref().map(|r| r.as_str().to_string()),
        period_start: line.and_then(|l| date(l.period.start)),
        period_end: line.and_then(|l| date(l.period.end)),
        hosted_url: invoice.hosted_invoice_url.clone(),
        pdf_url: invoice.invoice_pdf.clone(),
        attempt_count: u32::try_from(invoice.attempt_count).unwrap_or(u32::MAX),
        created: invoice.created,
        next_attempt: invoice.next_payment_attempt.and_then(date),
        price: None,
    };
    (facts, price_ids)
}

/// A credit note's facts: the cents it gave back (refunds and anything refunded
/// outside Stripe), for the invoice's refund record.
pub fn credit_note_facts(note: &stripe_shared::CreditNote) -> crate::domain::invoice::CreditNoteFacts {
    let refunded: i64 =
        note.refunds.iter().map(|r| r.amount_refunded).sum::<i64>() + note.out_of_band_amount.unwrap_or(0);
    crate::domain::invoice::CreditNoteFacts {
        credit_note_id: note.id.as_str().to_string(),
        invoice_id: note.invoice.id().as_ref().map(|i| i.as_str().to_string()).unwrap_or_default(),
        refunded,
    }
}

/// A dispute's facts: which payment, how much, and where it stands for the money
/// (an inquiry or a prevented dispute takes nothing; `warning_closed` ends an
/// inquiry with nothing taken, as a win does).
pub fn dispute_facts(d: &stripe_shared::Dispute) -> crate::domain::invoice::DisputeFacts {
    use crate::domain::billing::DisputeState;
    use stripe_shared::DisputeStatus as S;
    let status = match &d.status {
        S::NeedsResponse | S::UnderReview => DisputeState::Open,
        S::Lost => DisputeState::Lost,
        S::Won | S::WarningClosed | S::Prevented => DisputeState::Won,
        _ => DisputeState::Inquiry,
    };
    crate::domain::invoice::DisputeFacts {
        dispute_id: d.id.as_str().to_string(),
        payment_intent: d.payment_intent.as_ref().map(|p| p.id().as_str().to_string()),
        amount: d.amount,
        status,
    }
}

/// The partner an invoice names: its own metadata, then its subscription's.
pub fn invoice_partner_hint(invoice: &Invoice) -> Option<String> {
    let own = invoice.metadata.as_ref().and_then(|m| m.get(PARTNER_ID_KEY)).cloned();
    own.or_else(|| {
        invoice
            .parent
            .as_ref()
            .and_then(|p| p.subscription_details.as_ref())
            .and_then(|d| d.metadata.as_ref())
            .and_then(|m: &HashMap<String, String>| m.get(PARTNER_ID_KEY))
            .cloned()
    })
}
