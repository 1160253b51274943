//! The billing Lambda: a partner's self-service subscription through Stripe
//! (subscribe with Checkout, upgrade and downgrade with proration, cancel at
//! period end) and its subscription and invoices. The caller is always the
//! partner named by its own token; there is no partner id in any path or body.
//!
//! Every change of the partner goes through the transition mechanism: Stripe is
//! asked first (with an idempotency key), then its answer is planned and written
//! in one transaction. The webhook later sees the same state and changes nothing.

use chrono::NaiveDate;
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use tierdesk::app::App;
use tierdesk::app::{redemption, Failed, Meaning};
use tierdesk::domain::actor::Actor;
use tierdesk::domain::addon::{self, AddOnQuote};
use tierdesk::domain::billing::{
    check_plan_change, schedule_downgrade, sync_subscription, AddOnPriceSpec, BillingChange, BillingError,
    BillingNotice, CancelRequest, Effective, InvoiceRecord, PlanChangeRequest, PriceSpec, SubscribeRequest,
};
use tierdesk::domain::experiment;
use tierdesk::domain::money::BillingPeriod;
use tierdesk::domain::partner::{Partner, ScheduledChange};
use tierdesk::domain::pricing_rules::{PricingConfig, RuledPrice};
use tierdesk::domain::promotion::{Application, AppliesTo, Customer, DiscountSpec, PromotionError, Reason, ReasonCode};
use tierdesk::domain::self_service::PaymentMethodRequest;
use tierdesk::domain::subscription::{is_paid, Catalog, SubscriptionError, TransitionContext, Trigger, TriggerType};
use tierdesk::domain::tier::Tier;
use tierdesk::domain::validation::ValidationError;
use tierdesk::http::request::json_body;
use tierdesk::http::response::to_json;
use tierdesk::http::router::match_route;
use tierdesk::http::{json, serve, Ctx, PageRequest, Route};
use tierdesk::idempotency;
use tierdesk::mail::billing::email_for;
use tierdesk::mail::Mailer;
use tierdesk::store::{
    BillingWrite, BillingWriteError, CustomerStore, ExperimentStore, InvoiceStore, Page, PartnerStore, PricingStore,
    Store, TierStore,
};
use tierdesk::stripe_adapter::{facts, CheckoutOffer, CouponOff, CouponSpec, Proration, StripeGateway};
use tierdesk::ApiError;

mod add_ons;
mod commissions;
mod invoices;
mod messages;
mod migration;
mod self_service;
mod statements;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Subscribe,
    AddOns,
    Upgrade,
    Downgrade,
    Cancel,
    Subscription,
    Invoices,
    Statement,
    StaffStatement,
    PaymentMethod,
    UpgradePreview,
    PriceMigration,
    AdminInvoices,
    InvoiceAction(invoices::Action),
    CommissionRates,
    SetCommissionRate,
    CommissionStatement,
    CommissionSummary,
    SetCommissionTargets,
    Messages,
    MessageRead,
    MarketingPreferences,
    SetMarketingPreferences,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Subscribe => "subscribe",
            Op::AddOns => "add-ons",
            Op::Upgrade => "upgrade",
            Op::Downgrade => "downgrade",
            Op::Cancel => "cancel",
            Op::Subscription => "subscription",
            Op::Invoices => "invoices",
            Op::Statement | Op::StaffStatement => "statement",
            Op::PaymentMethod => "payment-method",
            Op::UpgradePreview => "upgrade-preview",
            Op::PriceMigration => "price-migration",
            Op::AdminInvoices => "admin-invoices",
            Op::InvoiceAction(_) => "invoice-action",
            Op::CommissionRates => "commission-rates",
            Op::SetCommissionRate => "commission-rate",
            Op::CommissionStatement => "commission-statement",
            Op::CommissionSummary => "commission-summary",
            Op::SetCommissionTargets => "commission-targets",
            Op::Messages | Op::MessageRead => "messages",
            Op::MarketingPreferences | Op::SetMarketingPreferences => "marketing-preferences",
        }
    }
}

pub const ROUTES: &[Route<Op>] = &[
    Route { method: "POST", path: "/api/billing/subscribe", op: Op::Subscribe },
    Route { method: "PUT", path: "/api/billing/upgrade", op: Op::Upgrade },
    Route { method: "PUT", path: "/api/billing/downgrade", op: Op::Downgrade },
    Route { method: "PUT", path: "/api/billing/add-ons", op: Op::AddOns },
    Route { method: "DELETE", path: "/api/billing/cancel", op: Op::Cancel },
    Route { method: "GET", path: "/api/billing/subscription", op: Op::Subscription },
    Route { method: "GET", path: "/api/billing/invoices", op: Op::Invoices },
    Route { method: "GET", path: "/api/billing/statement", op: Op::Statement },
    Route { method: "GET", path: "/api/billing/messages", op: Op::Messages },
    Route { method: "POST", path: "/api/billing/messages/{messageId}/read", op: Op::MessageRead },
    Route { method: "GET", path: "/api/billing/marketing-preferences", op: Op::MarketingPreferences },
    Route { method: "PUT", path: "/api/billing/marketing-preferences", op: Op::SetMarketingPreferences },
    Route { method: "GET", path: "/api/admin/partners/{partnerId}/statement", op: Op::StaffStatement },
    Route { method: "POST", path: "/api/billing/payment-method", op: Op::PaymentMethod },
    Route { method: "POST", path: "/api/billing/upgrade/preview", op: Op::UpgradePreview },
    Route { method: "POST", path: "/api/admin/tiers/{tierId}/price-migrations", op: Op::PriceMigration },
    Route { method: "GET", path: "/api/admin/invoices", op: Op::AdminInvoices },
    Route { method: "GET", path: "/api/admin/commissions/rates", op: Op::CommissionRates },
    Route { method: "PUT", path: "/api/admin/commissions/rates/{segmentId}", op: Op::SetCommissionRate },
    Route { method: "GET", path: "/api/admin/commissions/statement", op: Op::CommissionStatement },
    Route { method: "GET", path: "/api/admin/commissions/summary", op: Op::CommissionSummary },
    Route { method: "PUT", path: "/api/admin/commissions/targets/{month}", op: Op::SetCommissionTargets },
    Route {
        method: "POST",
        path: "/api/admin/invoices/{invoiceId}/send",
        op: Op::InvoiceAction(invoices::Action::Send),
    },
    Route { method: "POST", path: "/api/admin/invoices/{invoiceId}/pay", op: Op::InvoiceAction(invoices::Action::Pay) },
    Route {
        method: "POST",
        path: "/api/admin/invoices/{invoiceId}/void",
        op: Op::InvoiceAction(invoices::Action::Void),
    },
    Route {
        method: "POST",
        path: "/api/admin/invoices/{invoiceId}/refund",
        op: Op::InvoiceAction(invoices::Action::Refund),
    },
];

/// Attempts at writing a change when a webhook changed the partner meanwhile.
const WRITE_ATTEMPTS: usize = 3;

pub struct Billing {
    app: App,
    pub stripe: StripeGateway,
    pub mailer: Mailer,
}

tierdesk::wraps_app!(Billing);

impl Billing {
    pub fn new(app: App, stripe: StripeGateway, mailer: Mailer) -> Self {
        Self { app, stripe, mailer }
    }

    fn today(&self) -> NaiveDate {
        self.clock.now().date_naive()
    }

    /// What `partner` pays for `tier` billed `period` on a subscription starting
    /// today: the list price, then the pricing rules in force, as the storefront
    /// shows it (a partner who never paid is a new customer).
    pub(crate) fn ruled_price(
        &self,
        config: &PricingConfig,
        tier: &Tier,
        period: BillingPeriod,
        partner: &Partner,
    ) -> RuledPrice {
        let today = self.today();
        let new_customer = !Customer::from_partner(partner).ever_paid;
        config.price(&tier.list_prices(), today, today, new_customer).for_period(period).clone()
    }

    /// The partner acting on its own account, as records name it.
    fn partner_actor(&self, ctx: &Ctx, partner_id: &str) -> Actor {
        self.acting(&format!("partner:{partner_id}"), &ctx.request_id)
    }

    async fn notify(&self, notice: BillingNotice, after: &Partner, before: &Partner, catalog: &[Tier]) {
        let email = email_for(notice, after, Some(before), None, Catalog::new(catalog));
        if let Err(e) = self.mailer.send(&email, self.today()).await {
            // The change stands; a lost confirmation is logged, never retried into a
            // second charge.
            tracing::error!(error = %e, kind = email.kind.as_str(), partner = after.partner_id, "billing email failed");
        }
    }
}

pub async fn handle(app: &Billing, req: Request) -> Response<Body> {
    serve(req, app.config.grants, app.clock.as_ref(), |ctx, req| dispatch(app, ctx, req)).await
}

/// The partner the token names. Staff tokens have no billing of their own.
fn caller(ctx: &Ctx) -> Result<String, ApiError> {
    let who = ctx.identity.as_ref().ok_or(tierdesk::http::AuthError::Unauthenticated)?;
    who.partner_id.clone().filter(|_| who.is_partner_only()).ok_or_else(|| BillingError::NotAPartner.into())
}

async fn dispatch(app: &Billing, ctx: Ctx, req: Request) -> Result<Response<Body>, ApiError> {
    let (op, params) = match_route(ROUTES, req.method(), req.uri().path())?;
    match op {
        Op::PriceMigration => return migration::run(app, &ctx, &req, params.get("tierId")).await,
        Op::AdminInvoices => return invoices::list(app, &ctx, &req).await,
        Op::StaffStatement => return statements::staff(app, &ctx, &req, params.get("partnerId")).await,
        Op::InvoiceAction(action) => return invoices::act(app, &ctx, &req, params.get("invoiceId"), action).await,
        Op::CommissionRates
        | Op::SetCommissionRate
        | Op::CommissionStatement
        | Op::CommissionSummary
        | Op::SetCommissionTargets => return commissions::dispatch(app, &ctx, &req, &params, op).await,
        _ => {}
    }
    let partner_id = caller(&ctx)?;
    match op {
        Op::Subscription => subscription(app, &partner_id).await,
        Op::Invoices => invoices(app, &req, &partner_id).await,
        Op::Statement => statements::own(app, &req, &partner_id).await,
        Op::UpgradePreview => self_service::upgrade_preview(app, &req, &partner_id).await,
        Op::Messages => messages::list(app, &partner_id).await,
        Op::MessageRead => messages::mark_read(app, &partner_id, &params).await,
        Op::MarketingPreferences => messages::preferences(app, &partner_id).await,
        Op::SetMarketingPreferences => messages::set_preferences(app, &req, &partner_id).await,
        _ => idempotent(app, &ctx, &req, &partner_id, op).await,
    }
}

/// Runs a changing request at most once per `Idempotency-Key`, caller and partner
/// route (`tierdesk::idempotency`); the caller is a partner of its own account (checked
/// in `dispatch` before this).
async fn idempotent(
    app: &Billing,
    ctx: &Ctx,
    req: &Request,
    partner_id: &str,
    op: Op,
) -> Result<Response<Body>, ApiError> {
    let scope = format!("billing#{partner_id}#{}", op.name());
    let now = app.clock.now().timestamp();
    idempotency::once(&app.store, ctx, req, &scope, now, |key| async move {
        run(app, ctx, req, partner_id, op, key.as_deref()).await
    })
    .await
}

async fn run(
    app: &Billing,
    ctx: &Ctx,
    req: &Request,
    partner_id: &str,
    op: Op,
    key: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let limit = app.config.max_body_bytes;
    // The Stripe idempotency key: the client's key when given (a repeat reaches
    // Stripe with the same key), else this request's id.
    let stripe_key = |action: &str| format!("{action}-{partner_id}-{}", key.unwrap_or(&ctx.request_id));
    match op {
        Op::Subscribe => {
            subscribe(app, ctx, SubscribeRequest::parse(&json_body(req, limit)?)?, partner_id, &stripe_key("checkout"))
                .await
        }
        Op::Upgrade => {
            change_plan(
                app,
                ctx,
                PlanChangeRequest::parse(&json_body(req, limit)?)?,
                partner_id,
                true,
                &stripe_key("upgrade"),
            )
            .await
        }
        Op::Downgrade => {
            change_plan(
                app,
                ctx,
                PlanChangeRequest::parse(&json_body(req, limit)?)?,
                partner_id,
                false,
                &stripe_key("downgrade"),
            )
            .await
        }
        Op::Cancel => {
            cancel(app, ctx, CancelRequest::parse(&optional_body(req, limit)?)?, partner_id, &stripe_key("cancel"))
                .await
        }
        Op::AddOns => {
            let wanted = tierdesk::domain::addon::parse_change(&json_body(req, limit)?)?;
            add_ons::change(app, ctx, wanted, partner_id, &stripe_key("add-ons")).await
        }
        Op::PaymentMethod => {
            let request = PaymentMethodRequest::parse(&optional_body(req, limit)?)?;
            self_service::payment_method(app, ctx, request, partner_id, &stripe_key("payment-method")).await
        }
        Op::Subscription
        | Op::Invoices
        | Op::Statement
        | Op::StaffStatement
        | Op::UpgradePreview
        | Op::PriceMigration
        | Op::AdminInvoices
        | Op::InvoiceAction(_)
        | Op::CommissionRates
        | Op::SetCommissionRate
        | Op::CommissionStatement
        | Op::CommissionSummary
        | Op::SetCommissionTargets
        | Op::Messages
        | Op::MessageRead
        | Op::MarketingPreferences
        | Op::SetMarketingPreferences => Err(ApiError::not_found("route")),
    }
}

/// A body that may be absent or blank (`null` then).
fn optional_body(req: &Request, limit: usize) -> Result<serde_json::Value, ApiError> {
    Ok(match req.body() {
        Body::Empty => serde_json::Value::Null,
        Body::Text(s) if s.trim().is_empty() => serde_json::Value::Null,
        _ => json_body(req, limit)?,
    })
}

async fn load(app: &Billing, partner_id: &str) -> Result<Partner, ApiError> {
    app.store.get_partner(partner_id).await?.ok_or_else(|| SubscriptionError::NotFound.into())
}

/// The partner, for a route that changes their billing: an erased partner's
/// record is kept for the books only, so it is refused (`409 partner_erased`)
/// before anything reaches Stripe.
pub(crate) async fn load_for_change(app: &Billing, partner_id: &str) -> Result<Partner, ApiError> {
    Ok(tierdesk::domain::privacy::unerased(load(app, partner_id).await?)?)
}

/// The partner's subscription as the partner sees it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriptionView<'a> {
    partner_id: &'a str,
    tier_id: &'a str,
    status: tierdesk::domain::partner::SubscriptionStatus,
    billing_period: Option<BillingPeriod>,
    price_per_period: i64,
    /// The add-ons on the subscription, each with its price per period.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    add_ons: &'a [tierdesk::domain::partner::SubscribedAddOn],
    /// The tier's price version the partner pays (older than the tier's: grandfathered).
    price_version: Option<u32>,
    currency: &'a str,
    mrr: i64,
    subscription_start_date: Option<NaiveDate>,
    subscription_end_date: Option<NaiveDate>,
    trial_end_date: Option<NaiveDate>,
    auto_renewal: bool,
    cancellation_date: Option<NaiveDate>,
    scheduled_change: Option<&'a ScheduledChange>,
    payment_status: Option<tierdesk::domain::partner::PaymentStatus>,
    last_payment_date: Option<NaiveDate>,
    last_payment_amount: Option<i64>,
    payment_failures: u32,
    total_paid: i64,
    stripe_customer_id: Option<&'a str>,
    stripe_subscription_id: Option<&'a str>,
    /// The default card: brand and last four only.
    payment_method: Option<&'a tierdesk::domain::partner::PaymentMethodSummary>,
}

pub(crate) fn view(p: &Partner) -> SubscriptionView<'_> {
    SubscriptionView {
        partner_id: &p.partner_id,
        tier_id: &p.engagement_tier,
        status: p.subscription_status,
        billing_period: p.billing_period,
        price_per_period: p.price_per_period,
        add_ons: &p.add_ons,
        price_version: p.price_version,
        currency: &p.currency,
        mrr: p.mrr,
        subscription_start_date: p.subscription_start_date,
        subscription_end_date: p.subscription_end_date,
        trial_end_date: p.trial_end_date,
        auto_renewal: p.auto_renewal,
        cancellation_date: p.cancellation_date,
        scheduled_change: p.scheduled_change.as_ref(),
        payment_status: p.payment_status,
        last_payment_date: p.last_payment_date,
        last_payment_amount: p.last_payment_amount,
        payment_failures: p.payment_failures,
        total_paid: p.total_paid,
        stripe_customer_id: p.stripe_customer_id.as_deref(),
        stripe_subscription_id: p.stripe_subscription_id.as_deref(),
        payment_method: p.payment_method.as_ref(),
    }
}

async fn subscription(app: &Billing, partner_id: &str) -> Result<Response<Body>, ApiError> {
    let partner = load(app, partner_id).await?;
    json(StatusCode::OK, &view(&partner))
}

async fn invoices(app: &Billing, req: &Request, partner_id: &str) -> Result<Response<Body>, ApiError> {
    let page = PageRequest::from_request(req, app.config.default_page_size, app.config.max_page_size)?;
    let mut invoices: Page<InvoiceRecord> = app.store.query_page(&Store::invoices_query(partner_id), &page).await?;
    // Staff user ids stay with staff: a partner's own list never names its rep.
    invoices.items = invoices
        .items
        .into_iter()
        .map(|r| InvoiceRecord { sales_rep: None, commission: None, ..r.normalized() })
        .collect();
    json(StatusCode::OK, &invoices)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckoutAnswer<'a> {
    checkout_session_id: &'a str,
    url: Option<&'a str>,
    tier_id: &'a str,
    billing_period: BillingPeriod,
    amount: i64,
    currency: &'a str,
    stripe_customer_id: &'a str,
    /// The list price and each pricing rule's step to `amount`.
    pricing: &'a RuledPrice,
    /// `amount` plus the add-ons, per period, before any promotion.
    total: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    add_ons: Option<&'a AddOnQuote>,
    #[serde(skip_serializing_if = "Option::is_none")]
    promotion: Option<&'a PromotionApplied>,
}

async fn subscribe(
    app: &Billing,
    ctx: &Ctx,
    request: SubscribeRequest,
    partner_id: &str,
    stripe_key: &str,
) -> Result<Response<Body>, ApiError> {
    let mut partner = load_for_change(app, partner_id).await?;
    if partner.on_paid_term() && !partner.subscription_status.is_lapsed() {
        return Err(BillingError::AlreadySubscribed.into());
    }
    let catalog = app.store.active_catalog().await?;
    let listed = Catalog::new(&catalog)
        .active(&request.tier_id)
        .filter(|t| is_paid(t))
        .ok_or_else(|| ValidationError::single("tierId", "no active paid tier with this id"))?;
    // The price the storefront showed this visitor: a running pricing experiment's
    // variant (one Query of the live experiments, only when a visitor is named).
    let mut tier_for_visitor = listed.clone();
    if let Some(visitor) = &request.visitor_id {
        experiment::price_for_user(&mut tier_for_visitor, &app.store.live_experiments().await?, visitor);
    }
    let tier = &tier_for_visitor;
    let storefront = app.store.storefront_config().await?;
    let config = &storefront.pricing;
    let period = request.billing_period;
    // Add-ons first: an unavailable one refuses the checkout before Stripe is asked.
    let add_ons = match request.add_ons.is_empty() {
        true => None,
        false => Some(addon::quote(&request.add_ons, &storefront.add_ons, &tier.segment, &tier.currency, period)?),
    };
    let promotion = match &request.promotion_code {
        Some(code) => Some(promotion_offer(app, config, code, tier, period, partner_id).await?),
        None => None,
    };
    let ruled = app.ruled_price(config, tier, period, &partner);
    // Against the catalog's list price, so a variant amount gets a Stripe price of its own.
    let price = app.stripe.price_for(&PriceSpec::ruled(listed, period, ruled.price)).await?;
    let mut add_on_prices = Vec::new();
    for line in add_ons.iter().flat_map(|q| &q.lines) {
        add_on_prices.push(app.stripe.add_on_price(&AddOnPriceSpec::for_line(line, period, &tier.currency)).await?);
    }
    let customer = ensure_customer(app, ctx, &mut partner).await?;
    let config = app.stripe.config();
    let session = app
        .stripe
        .create_checkout(
            &customer,
            partner_id,
            &price,
            &add_on_prices,
            request.success_url.as_deref().unwrap_or(&config.success_url),
            request.cancel_url.as_deref().unwrap_or(&config.cancel_url),
            promotion.as_ref().map(|p| &p.offer).unwrap_or(&CheckoutOffer::default()),
            stripe_key,
        )
        .await?;
    json(
        StatusCode::CREATED,
        &CheckoutAnswer {
            checkout_session_id: &session.id,
            url: session.url.as_deref(),
            tier_id: &tier.tier_id,
            billing_period: request.billing_period,
            amount: price.unit_amount,
            currency: &price.currency,
            stripe_customer_id: partner.stripe_customer_id.as_deref().unwrap_or(&customer),
            pricing: &ruled,
            total: price.unit_amount + add_ons.as_ref().map_or(0, |q| q.total),
            add_ons: add_ons.as_ref(),
            promotion: promotion.as_ref().map(|p| &p.answer),
        },
    )
}

/// The partner's Stripe customer, created (with the `STRIPECUS#` lookup, in one
/// transaction) on first use; `partner` is updated to what was written.
pub(crate) async fn ensure_customer(app: &Billing, ctx: &Ctx, partner: &mut Partner) -> Result<String, ApiError> {
    if let Some(c) = &partner.stripe_customer_id {
        return Ok(c.clone());
    }
    let partner_id = partner.partner_id.clone();
    let customer = app
        .stripe
        .create_customer(&partner_id, &partner.company_name, &partner.primary_email, &format!("customer-{partner_id}"))
        .await?;
    let by = app.partner_actor(ctx, &partner_id);
    let mut after = partner.clone();
    after.stripe_customer_id = Some(customer.clone());
    after.version += 1;
    after.updated_at = by.at.clone();
    after.updated_by = by.id.clone();
    app.store
        .link_stripe_customer(partner, &after, &app.audit("partner.stripe_customer", &by, Some(partner), &after))
        .await?;
    *partner = after;
    Ok(customer)
}

/// A promotion applied at checkout, as the partner is told and Stripe is asked.
struct PromotionOffer {
    offer: CheckoutOffer,
    answer: PromotionApplied,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PromotionApplied {
    promotion_id: String,
    code: String,
    original_price: i64,
    discount_amount: i64,
    final_price: i64,
    recurring_price: i64,
    trial_days: u32,
}

/// Checks `code` through the promotions rules for this partner and purchase (no
/// write: the redemption is recorded when Stripe confirms the checkout), then
/// turns it into a Stripe coupon or trial days for the session.
async fn promotion_offer(
    app: &Billing,
    pricing: &PricingConfig,
    code: &str,
    tier: &Tier,
    period: BillingPeriod,
    partner_id: &str,
) -> Result<PromotionOffer, ApiError> {
    let code = code.to_ascii_uppercase();
    let ask = Application {
        codes: vec![code.clone()],
        promotion_ids: vec![],
        partner_id: Some(partner_id.to_string()),
        tier_id: tier.tier_id.clone(),
        billing_period: period,
        commitment_months: None,
    };
    let redemption::Quoted { promotions, price, customer, .. } =
        match redemption::quote(&app.store, &ask, partner_id, app.clock.now().date_naive(), pricing).await {
            Ok(found) => found,
            Err(Failed::Refused(PromotionError::NotEligible(reasons))) => {
                return Err(BillingError::InvalidPromotionCode(reasons).into())
            }
            Err(Failed::Refused(PromotionError::MaxRedemptionsReached)) => {
                return Err(BillingError::InvalidPromotionCode(vec![Reason::new(
                    ReasonCode::MaxRedemptionsReached,
                    "the promotion has been redeemed as often as it allows",
                )])
                .into())
            }
            Err(Failed::Refused(PromotionError::PerUserLimitReached)) => {
                return Err(BillingError::InvalidPromotionCode(vec![Reason::new(
                    ReasonCode::PerUserLimitReached,
                    "this partner has used the promotion as often as it allows",
                )])
                .into())
            }
            Err(e) => return Err(e.into()),
        };
    let Some(promotion) = promotions.into_iter().next() else {
        return Err(BillingError::InvalidPromotionCode(vec![redemption::not_found_reason(&code)]).into());
    };
    let mut offer = CheckoutOffer {
        coupon_id: None,
        trial_days: None,
        metadata: vec![
            (facts::PROMOTION_ID_KEY.into(), promotion.promotion_id.clone()),
            (facts::PROMOTION_CODE_KEY.into(), code.clone()),
            (facts::BILLING_PERIOD_KEY.into(), period.as_str().into()),
            (facts::PROMOTION_CUSTOMER_KEY.into(), serde_json::to_string(&customer).unwrap_or_default()),
        ],
    };
    let off = match promotion.discount {
        DiscountSpec::Percentage(p) => Some(CouponOff::Percent(p.as_number())),
        DiscountSpec::FixedAmount(cents) => Some(CouponOff::Amount { cents, currency: promotion.currency.clone() }),
        DiscountSpec::FreeTrial(days) | DiscountSpec::ExtendedTrial(days) => {
            offer.trial_days = Some(days);
            None
        }
    };
    if let Some(off) = off {
        let spec = CouponSpec {
            id: format!("tierdesk_{}_v{}", promotion.promotion_id, promotion.terms_version),
            name: promotion.name.chars().take(40).collect(),
            off,
            once: promotion.applies_to == AppliesTo::FirstMonth,
        };
        offer.coupon_id = Some(app.stripe.ensure_coupon(&spec).await?);
    }
    let answer = PromotionApplied {
        promotion_id: promotion.promotion_id.clone(),
        code,
        original_price: price.original_price,
        discount_amount: price.discount_amount,
        final_price: price.final_price,
        recurring_price: price.recurring_price(),
        trial_days: price.trial_days,
    };
    Ok(PromotionOffer { offer, answer })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanChangeAnswer<'a> {
    subscription: SubscriptionView<'a>,
    effective: Effective,
    /// The prorated difference invoiced now (upgrades), in cents.
    proration_invoice: Option<ProrationInvoice>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProrationInvoice {
    invoice_id: String,
    amount_due: i64,
    amount_paid: i64,
}

/// Writes a planned change, replanning from a fresh read when a webhook changed
/// the partner in between. Returns the partner before and after.
async fn write_change<F>(
    app: &Billing,
    ctx: &Ctx,
    mut partner: Partner,
    catalog: Vec<Tier>,
    action: &'static str,
    mut plan: F,
) -> Result<(Partner, Partner, Vec<Tier>), ApiError>
where
    F: FnMut(&Partner, &[Tier], &TransitionContext) -> Result<BillingChange, ApiError>,
{
    for _ in 0..WRITE_ATTEMPTS {
        let by = app.partner_actor(ctx, &partner.partner_id);
        let tctx = app.transition_context(&by, Trigger::new(TriggerType::SelfService, None));
        let change = plan(&partner, &catalog, &tctx)?;
        let Some(after) = change.after().cloned() else { return Ok((partner.clone(), partner, catalog)) };
        let audit = app.audit(action, &by, Some(&partner), &after);
        let write = BillingWrite { change: Some(&change), audit: Some(&audit), ..Default::default() };
        match app.store.apply_billing(&write).await {
            Ok(()) => return Ok((partner, after, catalog)),
            // The webhook changed the partner meanwhile: plan again from it.
            Err(BillingWriteError::Stale) => partner = load(app, &partner.partner_id).await?,
            Err(BillingWriteError::Partner(refusal)) => return Err(refusal.meaning().into()),
            Err(BillingWriteError::Store(e)) => return Err(e.into()),
            Err(BillingWriteError::ClaimLost) => break,
        }
    }
    Err(SubscriptionError::VersionConflict { current: None }.into())
}

/// Upgrades apply now and charge the prorated difference at once. Downgrades
/// keep the paid tier until the period ends (the partner keeps what they paid
/// for; Stripe bills the lower price from the next period, with no proration);
/// `effective: "immediately"` instead moves now and credits the unused time on
/// the next invoice.
async fn change_plan(
    app: &Billing,
    ctx: &Ctx,
    request: PlanChangeRequest,
    partner_id: &str,
    up: bool,
    stripe_key: &str,
) -> Result<Response<Body>, ApiError> {
    let partner = load_for_change(app, partner_id).await?;
    let catalog = app.store.active_catalog().await?;
    let to = check_plan_change(&partner, &request, Catalog::new(&catalog), up)?.clone();
    let period = request.billing_period.or(partner.billing_period).unwrap_or(BillingPeriod::Monthly);
    let effective = if up { Effective::Immediately } else { request.effective.unwrap_or(Effective::PeriodEnd) };
    // The target tier's current price version after the pricing rules in force
    // today: every move is priced as a new sale.
    let ruled = app.ruled_price(&app.store.pricing_config().await?, &to, period, &partner);
    let price = app.stripe.price_for(&PriceSpec::ruled(&to, period, ruled.price)).await?;
    let subscription_id = partner.stripe_subscription_id.clone().ok_or(BillingError::NoStripeSubscription)?;
    let current = app.stripe.subscription(&subscription_id).await?;
    let proration = match (up, effective) {
        (true, _) => Proration::ChargeNow,
        (false, Effective::Immediately) => Proration::CreditNext,
        (false, Effective::PeriodEnd) => Proration::None,
    };
    let (updated, invoice_id) = app.stripe.change_price(&current, &price, proration, stripe_key).await?;
    let action = if up { "partner.upgrade" } else { "partner.downgrade" };
    let (before, after, catalog) = write_change(app, ctx, partner, catalog, action, |p, tiers, tctx| {
        if effective == Effective::PeriodEnd && !up {
            let target = Catalog::new(tiers).active(&to.tier_id).ok_or(SubscriptionError::NotFound)?;
            return Ok(schedule_downgrade(p, target, period, Catalog::new(tiers), tctx));
        }
        let mut p = p.clone();
        p.scheduled_change = None;
        Ok(sync_subscription(&p, &updated, Catalog::new(tiers), tctx)?)
    })
    .await?;
    if up && after.engagement_tier != before.engagement_tier {
        app.notify(BillingNotice::UpgradeConfirmation, &after, &before, &catalog).await;
    }
    let proration_invoice = match (up, invoice_id) {
        (true, Some(id)) => {
            let (amount_due, amount_paid) = app.stripe.invoice_amount(&id).await?;
            Some(ProrationInvoice { invoice_id: id, amount_due, amount_paid })
        }
        _ => None,
    };
    let body = PlanChangeAnswer { subscription: view(&after), effective, proration_invoice };
    Ok(tierdesk::http::response::json_text(to_json(&body)?))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CancelAnswer<'a> {
    subscription: SubscriptionView<'a>,
    voided_invoices: u32,
}

/// Cancels at the end of the paid period and voids open invoices, so nothing is
/// charged after a cancellation.
async fn cancel(
    app: &Billing,
    ctx: &Ctx,
    request: CancelRequest,
    partner_id: &str,
    stripe_key: &str,
) -> Result<Response<Body>, ApiError> {
    let partner = load_for_change(app, partner_id).await?;
    if partner.subscription_status == tierdesk::domain::partner::SubscriptionStatus::Cancelled && partner.on_paid_term()
    {
        return Err(SubscriptionError::AlreadyEnded("cancelled").into());
    }
    let subscription_id = partner
        .stripe_subscription_id
        .clone()
        .filter(|_| partner.on_paid_term() && !partner.subscription_status.is_lapsed())
        .ok_or(BillingError::NoStripeSubscription)?;
    let updated = app.stripe.cancel_at_period_end(&subscription_id, stripe_key).await?;
    let voided = app.stripe.void_open_invoices(&subscription_id, stripe_key).await?;
    let reason = request.reason.clone().unwrap_or_else(|| "cancelled by the partner".into());
    let catalog = app.store.active_catalog().await?;
    let (before, after, catalog) = write_change(app, ctx, partner, catalog, "partner.cancel", |p, tiers, tctx| {
        let mut p = p.clone();
        p.cancellation_reason = Some(reason.clone());
        let change = sync_subscription(&p, &updated, Catalog::new(tiers), tctx)?;
        Ok(change)
    })
    .await?;
    if after.subscription_status != before.subscription_status {
        app.notify(BillingNotice::Cancelled, &after, &before, &catalog).await;
    }
    json(StatusCode::OK, &CancelAnswer { subscription: view(&after), voided_invoices: voided })
}
