//! The Stripe step of an accepted quote: the quoted price billed by a Stripe
//! subscription.
//!
//! Ordering: the acceptance (quote, partner transition, audit) is one
//! transaction and comes first; it is the prospect's binding act and never
//! waits on Stripe. This step runs after it, on the same call, and every part
//! of it is idempotent by the quote id:
//! - the partner's Stripe customer (created once, key `customer-{partner}`),
//! - one Stripe price per quote for the quoted amount (lookup key
//!   `tierdesk_quote_{quote}_{period}`, metadata tier, price version, quote),
//! - the subscription: a live one of the partner moves to that price (the
//!   difference charged now, as an upgrade is); otherwise one is created with
//!   `metadata.quote_id`, found again by that metadata when a retry comes after
//!   Stripe forgot its idempotency key.
//!
//! When it finishes, the quote's `conversion.stripeSubscriptionId` records it
//! (version-conditional). When Stripe fails, the acceptance stands, the answer
//! says `billingStatus: "pending"`, and the next accept call on the same link
//! (a repeat is answered with the one acceptance) runs the step again. The
//! partner record follows the subscription through the Stripe webhook, as after
//! a checkout.

use super::Quotes;
use tierdesk::domain::actor::Actor;
use tierdesk::domain::billing::{PriceSpec, StripeStatus};
use tierdesk::domain::quote::{Quote, QuoteError};
use tierdesk::domain::subscription::SubscriptionError;
use tierdesk::http::Ctx;
use tierdesk::store::{CustomerStore, PartnerStore, QuoteStore, TierStore};
use tierdesk::stripe_adapter::facts::QUOTE_ID_KEY;
use tierdesk::stripe_adapter::{Proration, StripeGateway};
use tierdesk::ApiError;

/// Runs the Stripe step of an accepted quote unless it is done; returns the
/// quote as recorded after it. Never fails: a failure leaves billing pending.
pub async fn bill_accepted(app: &Quotes, ctx: &Ctx, q: Quote) -> Quote {
    let Some(stripe) = app.stripe.as_ref() else { return q };
    if q.conversion.as_ref().is_none_or(|c| c.stripe_subscription_id.is_some()) {
        return q;
    }
    match subscribe(app, stripe, ctx, &q).await {
        Ok(subscription_id) => record(app, ctx, q, subscription_id).await,
        Err(e) => {
            tracing::error!(
                code = e.code,
                quote = q.quote_id,
                "the accepted quote's Stripe step failed; the next accept call retries it"
            );
            q
        }
    }
}

async fn subscribe(app: &Quotes, stripe: &StripeGateway, ctx: &Ctx, q: &Quote) -> Result<String, ApiError> {
    let conversion = q.conversion.as_ref().ok_or(QuoteError::NotFound)?;
    let mut partner = app.store.get_partner(&conversion.partner_id).await?.ok_or(SubscriptionError::NotFound)?;
    let tier = app.store.get_tier(&q.base_tier).await?.ok_or(QuoteError::TierUnavailable)?;
    let customer = match partner.stripe_customer_id.clone() {
        Some(c) => c,
        None => {
            let key = format!("customer-{}", partner.partner_id);
            let customer = stripe
                .create_customer(&partner.partner_id, &partner.company_name, &partner.primary_email, &key)
                .await?;
            for _ in 0..3 {
                if partner.stripe_customer_id.is_some() {
                    break;
                }
                let mut after = partner.clone();
                after.stripe_customer_id = Some(customer.clone());
                after.version += 1;
                let prospect = Actor::system("prospect", app.clock.now(), &ctx.request_id);
                after.updated_at = prospect.at.clone();
                after.updated_by = prospect.id.clone();
                let audit = app.audit("partner.stripe_customer", &prospect, Some(&partner), &after);
                match app.store.link_stripe_customer(&partner, &after, &audit).await {
                    Ok(()) => partner = after,
                    // Changed meanwhile (a concurrent accept, the webhook): read again.
                    Err(_) => {
                        partner =
                            app.store.get_partner(&partner.partner_id).await?.ok_or(SubscriptionError::NotFound)?
                    }
                }
            }
            partner.stripe_customer_id.clone().unwrap_or(customer)
        }
    };
    let spec = PriceSpec {
        tier_id: tier.tier_id.clone(),
        tier_name: tier.name.clone(),
        price_version: q.price_version,
        period: q.billing_period,
        amount: q.final_price,
        currency: q.currency.clone(),
        ruled: false,
    };
    let price = stripe.quote_price(&q.quote_id, &spec).await?;
    if let Some(subscription_id) = partner.stripe_subscription_id.clone() {
        let current = stripe.subscription(&subscription_id).await?;
        let live = !matches!(
            current.status,
            StripeStatus::Canceled | StripeStatus::IncompleteExpired | StripeStatus::Incomplete
        );
        if live {
            if current.price.as_ref().is_none_or(|p| p.price_id != price.price_id) {
                let key = format!("quote-{}", q.quote_id);
                stripe.change_price(&current, &price, Proration::ChargeNow, &key).await?;
            }
            return Ok(subscription_id);
        }
    }
    if let Some(found) = stripe.find_subscription(&customer, QUOTE_ID_KEY, &q.quote_id).await? {
        return Ok(found.subscription_id);
    }
    let key = format!("quote-subscription-{}", q.quote_id);
    let created = stripe
        .create_subscription(&customer, &partner.partner_id, &price, &[(QUOTE_ID_KEY, &q.quote_id)], &key)
        .await?;
    Ok(created.subscription_id)
}

/// Records the finished step on the quote (conditional on its version). Losing
/// to a concurrent accept that recorded it first is fine: its record is read.
async fn record(app: &Quotes, ctx: &Ctx, q: Quote, subscription_id: String) -> Quote {
    let mut after = q.clone();
    if let Some(c) = after.conversion.as_mut() {
        c.stripe_subscription_id = Some(subscription_id);
    }
    after.version += 1;
    let prospect = Actor::system("prospect", app.clock.now(), &ctx.request_id);
    after.updated_at = prospect.at.clone();
    let audit = app.audit("quote.billing_started", &prospect, Some(&q), &after);
    match app.store.save_quote(&q, &after, &audit).await {
        Ok(()) => after,
        Err(_) => match app.store.get_quote(&q.quote_id).await {
            Ok(Some(stored)) if stored.conversion.as_ref().is_some_and(|c| c.stripe_subscription_id.is_some()) => {
                stored
            }
            _ => after,
        },
    }
}
