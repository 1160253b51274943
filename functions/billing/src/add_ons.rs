//! `PUT /api/billing/add-ons` (issue 21 §2): a partner on a running subscription
//! attaches or removes add-ons. The whole wanted set is priced by the one add-on
//! engine (availability in the tier's segment, the bundle rule per line), each line
//! gets its Stripe price, and the subscription's add-on items change to match:
//! an item already at its price stays, the others are replaced or added, prorated
//! on the next invoice (`domain::addon::item_changes`). The tier's item is never
//! touched. The partner record then holds the items Stripe answered with, as the
//! webhook that follows will (an account change: no transition).

use super::{load_for_change, view, write_change, Billing, SubscriptionView};
use http::StatusCode;
use lambda_http::{Body, Response};
use serde::Serialize;
use tierdesk::domain::addon::{self, AddOnQuote};
use tierdesk::domain::billing::{sync_subscription, AddOnPriceSpec, BillingError};
use tierdesk::domain::money::BillingPeriod;
use tierdesk::domain::partner::SubscriptionStatus;
use tierdesk::domain::subscription::{Catalog, SubscriptionError};
use tierdesk::http::{json, Ctx};
use tierdesk::store::{PricingStore, TierStore};
use tierdesk::ApiError;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AddOnsAnswer<'a> {
    subscription: SubscriptionView<'a>,
    /// What the add-ons cost per billing period from now on.
    add_ons: &'a AddOnQuote,
}

pub(crate) async fn change(
    app: &Billing,
    ctx: &Ctx,
    wanted: Vec<String>,
    partner_id: &str,
    stripe_key: &str,
) -> Result<Response<Body>, ApiError> {
    let partner = load_for_change(app, partner_id).await?;
    let subscription_id = partner
        .stripe_subscription_id
        .clone()
        .filter(|_| {
            partner.on_paid_term()
                && !partner.subscription_status.is_lapsed()
                && partner.subscription_status != SubscriptionStatus::Cancelled
        })
        .ok_or(BillingError::NoStripeSubscription)?;
    let period = partner.billing_period.unwrap_or(BillingPeriod::Monthly);
    let catalog = app.store.active_catalog().await?;
    let tier = Catalog::new(&catalog).any(&partner.engagement_tier).ok_or(SubscriptionError::NotFound)?.clone();
    let storefront = app.store.storefront_config().await?;
    let quote = addon::quote(&wanted, &storefront.add_ons, &tier.segment, &tier.currency, period)?;
    let mut prices = Vec::with_capacity(quote.lines.len());
    for line in &quote.lines {
        let spec = AddOnPriceSpec::for_line(line, period, &tier.currency);
        prices.push((line.add_on_id.clone(), app.stripe.add_on_price(&spec).await?.price_id));
    }
    let current = app.stripe.subscription(&subscription_id).await?;
    let (remove, add) = addon::item_changes(&current.add_ons, &prices);
    let updated = if remove.is_empty() && add.is_empty() {
        current
    } else {
        app.stripe.change_add_ons(&subscription_id, &remove, &add, stripe_key).await?
    };
    let (_, after, _) = write_change(app, ctx, partner, catalog, "partner.add_ons", |p, tiers, tctx| {
        Ok(sync_subscription(p, &updated, Catalog::new(tiers), tctx)?)
    })
    .await?;
    json(StatusCode::OK, &AddOnsAnswer { subscription: view(&after), add_ons: &quote })
}
