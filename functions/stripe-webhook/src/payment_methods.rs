//! The payment method (seed 003 §3.3 "Update payment method"): what follows the
//! partner saving a card on Stripe's setup page (`POST /api/billing/payment-method`).
//!
//! - `checkout.session.completed` in setup mode: the saved card becomes the
//!   default of the customer and of the subscription the session names (two Stripe
//!   calls with keys named by the card, so a redelivery repeats nothing), then it is
//!   recorded as below.
//! - `customer.updated` (which the first step causes, as does a change made in
//!   Stripe's dashboard): the customer's default card is read from Stripe and its
//!   brand and last four recorded on the partner.
//!
//! The card is always read fresh from Stripe and stamped with the event's `created`:
//! an older event never puts an older card back (`record_payment_method`), and the
//! same card again writes nothing. The partner write carries the event's APPLIED
//! mark in the same transaction, as every webhook write does.

use super::{find_partner, write, Outcome, Plan, StripeWebhook, Written};
use tierdesk::domain::billing::BillingChange;
use tierdesk::domain::self_service::record_payment_method;
use tierdesk::domain::subscription::{Catalog, TriggerType};
use tierdesk::http::Ctx;
use tierdesk::stripe_adapter::gateway::SavedCard;
use tierdesk::stripe_adapter::stripe_webhook::Event;
use tierdesk::ApiError;

pub(crate) async fn saved_card_event(
    app: &StripeWebhook,
    ctx: &Ctx,
    event: &Event,
    token: &str,
    session_id: &str,
    hints: &[Option<String>],
) -> Result<Outcome, ApiError> {
    let Some(card) = app.stripe.saved_card(session_id).await? else {
        return Ok(Outcome { action: "ignored_setup_without_card", ..Outcome::default() });
    };
    let Some(partner) = find_partner(app, &card.customer_id, hints).await? else {
        tracing::warn!(event_id = event.id.as_str(), "stripe setup session names no known partner");
        return Ok(Outcome { action: "ignored_unknown_partner", ..Outcome::default() });
    };
    // Only the partner's own running subscription takes the card as its default.
    let card = SavedCard {
        subscription_id: card.subscription_id.filter(|s| partner.stripe_subscription_id.as_deref() == Some(s.as_str())),
        ..card
    };
    app.stripe.make_default_card(&card, &format!("default-pm-{}", card.payment_method_id)).await?;
    let customer = card.customer_id.clone();
    record(app, ctx, event, token, partner, &customer).await
}

pub(crate) async fn card_event(
    app: &StripeWebhook,
    ctx: &Ctx,
    event: &Event,
    token: &str,
    customer_id: &str,
    hints: &[Option<String>],
) -> Result<Outcome, ApiError> {
    let Some(partner) = find_partner(app, customer_id, hints).await? else {
        return Ok(Outcome { action: "ignored_unknown_partner", ..Outcome::default() });
    };
    // Another partner's customer never writes here (`find_partner` prefers the lookup).
    if partner.stripe_customer_id.as_deref().is_some_and(|c| c != customer_id) {
        return Ok(Outcome { action: "ignored_other_customer", ..Outcome::default() });
    }
    record(app, ctx, event, token, partner, customer_id).await
}

async fn record(
    app: &StripeWebhook,
    ctx: &Ctx,
    event: &Event,
    token: &str,
    partner: tierdesk::domain::partner::Partner,
    customer_id: &str,
) -> Result<Outcome, ApiError> {
    let card = app.stripe.default_card(customer_id).await?;
    let tctx = super::context(app, ctx, event, TriggerType::SelfService);
    let Written { plan, .. } = write(app, ctx, event, token, partner, None, false, |p, tiers, _| {
        let change = record_payment_method(p, card.as_ref(), event.created, Catalog::new(tiers), &tctx);
        Ok(Plan { change, record: None, notice: None })
    })
    .await?;
    let action = match plan.change {
        BillingChange::Nothing => "unchanged",
        _ => "payment_method_recorded",
    };
    Ok(Outcome { action, email: None })
}
