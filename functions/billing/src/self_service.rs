//! The partner portal's remaining self-service (seed 003 §3.3): updating the
//! payment method through Stripe's hosted page, and the upgrade flow's preview.
//! Both act for the partner the token names only (`caller` in `lib.rs`).

use super::{ensure_customer, load, load_for_change, Billing};
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use tierdesk::domain::billing::{check_plan_change, BillingError, PlanChangeRequest, PriceSpec};
use tierdesk::domain::money::BillingPeriod;
use tierdesk::domain::self_service::{preview_upgrade, PaymentMethodRequest};
use tierdesk::domain::subscription::{Catalog, SubscriptionError};
use tierdesk::http::request::json_body;
use tierdesk::http::{json, Ctx};
use tierdesk::store::{PricingStore, TierStore};
use tierdesk::ApiError;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SetupAnswer<'a> {
    checkout_session_id: &'a str,
    /// Stripe's hosted page where the partner enters the new card.
    url: Option<&'a str>,
    mode: &'static str,
    stripe_customer_id: &'a str,
    /// The subscription whose default card the saved card becomes, if any.
    stripe_subscription_id: Option<&'a str>,
}

/// `POST /api/billing/payment-method`: a Checkout Session in setup mode. Nothing
/// changes here; when the partner saves a card on Stripe's page, the webhook makes
/// it the default (customer and running subscription) and records its brand and
/// last four on the partner. A partner without a Stripe customer gets one first, so
/// a card can be saved before the first upgrade.
pub(crate) async fn payment_method(
    app: &Billing,
    ctx: &Ctx,
    request: PaymentMethodRequest,
    partner_id: &str,
    stripe_key: &str,
) -> Result<Response<Body>, ApiError> {
    let mut partner = load_for_change(app, partner_id).await?;
    let customer = ensure_customer(app, ctx, &mut partner).await?;
    let subscription = partner
        .stripe_subscription_id
        .as_deref()
        .filter(|_| partner.on_paid_term() && !partner.subscription_status.is_lapsed());
    let config = app.stripe.config();
    let session = app
        .stripe
        .create_setup_checkout(
            &customer,
            partner_id,
            subscription,
            &partner.currency,
            request.success_url.as_deref().unwrap_or(&config.success_url),
            request.cancel_url.as_deref().unwrap_or(&config.cancel_url),
            stripe_key,
        )
        .await?;
    json(
        StatusCode::CREATED,
        &SetupAnswer {
            checkout_session_id: &session.id,
            url: session.url.as_deref(),
            mode: "setup",
            stripe_customer_id: &customer,
            stripe_subscription_id: subscription,
        },
    )
}

/// `POST /api/billing/upgrade/preview`: the body of `PUT /api/billing/upgrade`,
/// checked the same way, answered with what the upgrade would do now (prices,
/// features gained, the proration Stripe would invoice at this second, the next
/// invoice, the effective date, the upsell the scores recommend). Nothing is
/// written and nothing is changed in Stripe (the target's Stripe price may be
/// created on first use, as the upgrade itself would).
pub(crate) async fn upgrade_preview(
    app: &Billing,
    req: &Request,
    partner_id: &str,
) -> Result<Response<Body>, ApiError> {
    let request = PlanChangeRequest::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let partner = load(app, partner_id).await?;
    let catalog = app.store.active_catalog().await?;
    let to = check_plan_change(&partner, &request, Catalog::new(&catalog), true)?;
    let from = Catalog::new(&catalog).any(&partner.engagement_tier).ok_or(SubscriptionError::NotFound)?;
    let period = request.billing_period.or(partner.billing_period).unwrap_or(BillingPeriod::Monthly);
    let ruled = app.ruled_price(&app.store.pricing_config().await?, to, period, &partner);
    let price = app.stripe.price_for(&PriceSpec::ruled(to, period, ruled.price)).await?;
    let subscription_id = partner.stripe_subscription_id.as_deref().ok_or(BillingError::NoStripeSubscription)?;
    let current = app.stripe.current_period(subscription_id).await?;
    let preview = preview_upgrade(&partner, from, to, period, price.unit_amount, &current, app.clock.now().timestamp());
    json(StatusCode::OK, &preview)
}
