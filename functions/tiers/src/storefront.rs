//! The storefront's upsell rules, feature flags and funnel events
//! (docs/storefront.md): admin writes, the upsell evaluation and event intake.

use crate::{Op, Tiers};
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use tierdesk::domain::addon::{self, AddOnError};
use tierdesk::domain::billing::BillingError;
use tierdesk::domain::experiment;
use tierdesk::domain::money::BillingPeriod;
use tierdesk::domain::partner::SubscriptionStatus;
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::promotion::Customer;
use tierdesk::domain::segment::SegmentError;
use tierdesk::domain::storefront::StorefrontEvent;
use tierdesk::domain::tier::TierStatus;
use tierdesk::domain::upsell::{self, EvaluateRequest, UpsellContext, UpsellError, UsageShare, MAX_UPSELL_RULES};
use tierdesk::domain::usage::period_of;
use tierdesk::domain::validation::{parse, Fields};
use tierdesk::http::request::json_body;
use tierdesk::http::{json, AuthError, Ctx, PathParams};
use tierdesk::store::{
    CampaignStore, ExperimentStore, PricingRefusal, PricingStore, SegmentStore, TierStore, UsageStore, WriteError,
};
use tierdesk::ApiError;

fn refused(e: WriteError<PricingRefusal>) -> ApiError {
    match e {
        WriteError::Refused(PricingRefusal::Exists) => UpsellError::AlreadyExists.into(),
        WriteError::Refused(PricingRefusal::Missing) => UpsellError::NotFound.into(),
        WriteError::Refused(PricingRefusal::Stale { current }) => UpsellError::VersionConflict { current }.into(),
        WriteError::Store(e) => e.into(),
    }
}

pub(crate) async fn upsell_rules(
    app: &Tiers,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
    op: Op,
) -> Result<Response<Body>, ApiError> {
    if op == Op::ListUpsellRules {
        ctx.require(Permission::TierView)?;
        return json(StatusCode::OK, &json!({ "items": app.store.storefront_config().await?.upsell_rules }));
    }
    let who = ctx.require(Permission::PricingManagement)?;
    let by = ctx.actor(who);
    let body = json_body(req, app.config.max_body_bytes)?;
    let config = app.store.storefront_config().await?;
    let (status, rule) = if op == Op::CreateUpsellRule {
        let rule = upsell::parse_new(&body, &by)?;
        if config.upsell_rules.len() >= MAX_UPSELL_RULES {
            return Err(UpsellError::TooMany.into());
        }
        app.store
            .create_upsell_rule(&rule, &app.audit("upsell_rule.create", &by, None, &rule))
            .await
            .map_err(refused)?;
        (StatusCode::CREATED, rule)
    } else {
        let id = params.get("ruleId");
        let before =
            config.upsell_rules.iter().find(|r| parse::is_slug(id) && r.rule_id == id).ok_or(UpsellError::NotFound)?;
        let after = upsell::parse_edit(&body, before, &by)??;
        let audit = app.audit("upsell_rule.update", &by, Some(before), &after);
        app.store.save_upsell_rule(before, &after, &audit).await.map_err(refused)?;
        (StatusCode::OK, after)
    };
    app.public_cache.clear();
    json(status, &rule)
}

pub(crate) async fn feature_flags(app: &Tiers, ctx: &Ctx, req: &Request, op: Op) -> Result<Response<Body>, ApiError> {
    if op == Op::GetFeatureFlags {
        ctx.require(Permission::TierView)?;
        return json(StatusCode::OK, &app.store.storefront_config().await?.flags.view());
    }
    let who = ctx.require(Permission::SystemConfig)?;
    let body = json_body(req, app.config.max_body_bytes)?;
    let before = app.store.storefront_config().await?.flags;
    let by = ctx.actor(who);
    let after = before.apply(&body, &by)?.map_err(|current| {
        ApiError::new(StatusCode::CONFLICT, "version_conflict", "the flags changed since they were read")
            .with_details(json!({ "currentVersion": current }))
    })?;
    let audit = app.audit("feature_flags.set", &by, Some(&before), &after);
    app.store.put_flags(&after, &audit).await.map_err(|e| match e {
        WriteError::Refused(_) => {
            ApiError::new(StatusCode::CONFLICT, "version_conflict", "the flags changed meanwhile")
        }
        WriteError::Store(e) => e.into(),
    })?;
    app.public_cache.clear();
    json(StatusCode::OK, &after.view())
}

/// The offers the upsell rules make for what the caller is looking at. The
/// public route judges an anonymous visitor; the partner route adds the
/// partner's usage, trial and customer history. Reads: the storefront
/// configuration and the live catalog (one Query each), and for a partner its
/// record with this month's usage (one BatchGetItem): flat in the number of
/// partners.
pub(crate) async fn evaluate(app: &Tiers, ctx: &Ctx, req: &Request, op: Op) -> Result<Response<Body>, ApiError> {
    let partner_id = match op {
        Op::PartnerUpsell => {
            let who = ctx.identity.as_ref().ok_or(AuthError::Unauthenticated)?;
            Some(who.partner_id.clone().filter(|_| who.is_partner_only()).ok_or(BillingError::NotAPartner)?)
        }
        _ => None,
    };
    let ask = EvaluateRequest::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let config = app.store.storefront_config().await?;
    let visitor = partner_id.as_deref().or(ask.visitor_id.as_deref());
    if !config.flags.offers_upsell_to(visitor) {
        return json(StatusCode::OK, &json!({ "offers": [], "enabled": false }));
    }
    let live = app.store.active_catalog().await?;
    let viewed = live.iter().find(|t| t.tier_id == ask.tier_id && t.status == TierStatus::Active);
    let viewed = viewed
        .ok_or_else(|| ApiError::not_found("tier").with_details(json!({ "fields": { "tierId": "no live tier" } })))?;
    let today = app.clock.now().date_naive();
    let mut context = UpsellContext {
        viewed,
        period: ask.billing_period,
        add_ons: ask.add_ons.len(),
        today,
        start_date: ask.start_date.unwrap_or(today),
        new_customer: true,
        usage: None,
        trial_end: None,
    };
    if let Some(id) = &partner_id {
        let read = app.store.read_usage(id, &period_of(today)).await?;
        let partner = read.partner.ok_or(BillingError::NotAPartner)?;
        context.new_customer = !Customer::from_partner(&partner).ever_paid;
        if let Some(current) = live.iter().find(|t| t.tier_id == partner.engagement_tier) {
            context.usage = UsageShare::highest(&read.counts, current);
        }
        context.trial_end =
            partner.trial_end_date.filter(|_| partner.subscription_status == SubscriptionStatus::Trialing);
    }
    let new_customer = context.new_customer;
    let price = |t: &tierdesk::domain::tier::Tier| {
        config.pricing.price(&t.list_prices(), today, today, new_customer).for_period(ask.billing_period).price
    };
    let offers = upsell::evaluate(&config.upsell_rules, &context, &live, price);
    // An offer shown to a signed-in partner is a campaign trigger if it is not
    // taken (docs/campaigns.md): one signal per offered tier and day.
    if let (Some(id), Some(to)) = (&partner_id, offers.iter().find_map(|o| o.to_tier_id.clone())) {
        let signal = tierdesk::store::CampaignSignal {
            trigger: tierdesk::domain::campaign::TriggerKind::UpsellNotTaken,
            partner_id: id.clone(),
            source: format!("{to}#{today}"),
            at: tierdesk::clock::rfc3339(app.clock.now()),
            tier: Some(to),
        };
        app.store.put_campaign_signal(&today.to_string(), &signal).await?;
    }
    json(StatusCode::OK, &json!({ "offers": offers, "enabled": true }))
}

fn add_on_refused(e: WriteError<PricingRefusal>) -> ApiError {
    match e {
        WriteError::Refused(PricingRefusal::Exists) => AddOnError::AlreadyExists.into(),
        WriteError::Refused(PricingRefusal::Missing) => AddOnError::NotFound.into(),
        WriteError::Refused(PricingRefusal::Stale { current }) => AddOnError::VersionConflict { current }.into(),
        WriteError::Store(e) => e.into(),
    }
}

/// The add-on catalog (issue 21 §2): staff read it; `pricing_management` creates
/// and edits (a price change is a new price version, a new Stripe price).
pub(crate) async fn add_ons(
    app: &Tiers,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
    op: Op,
) -> Result<Response<Body>, ApiError> {
    if op == Op::ListAddOns {
        ctx.require(Permission::TierView)?;
        return json(StatusCode::OK, &json!({ "items": app.store.storefront_config().await?.add_ons }));
    }
    let who = ctx.require(Permission::PricingManagement)?;
    let by = ctx.actor(who);
    let body = json_body(req, app.config.max_body_bytes)?;
    let config = app.store.storefront_config().await?;
    let (status, add_on) = if op == Op::CreateAddOn {
        let add_on = addon::parse_new(&body, &by)?;
        if config.add_ons.len() >= addon::MAX_ADD_ONS {
            return Err(AddOnError::TooMany.into());
        }
        app.store
            .create_add_on(&add_on, &app.audit("add_on.create", &by, None, &add_on))
            .await
            .map_err(add_on_refused)?;
        (StatusCode::CREATED, add_on)
    } else {
        let id = params.get("addOnId");
        let before = config.add_ons.iter().find(|a| a.add_on_id == id).ok_or(AddOnError::NotFound)?;
        let after = addon::parse_edit(&body, before, &by)??;
        let audit = app.audit("add_on.update", &by, Some(before), &after);
        app.store.save_add_on(before, &after, &audit).await.map_err(add_on_refused)?;
        (StatusCode::OK, after)
    };
    app.public_cache.clear();
    json(status, &add_on)
}

/// `POST /api/storefront/price`: what a visitor would pay per period for a tier
/// with add-ons: the tier's ruled price (new customer, today) and the add-on lines
/// with seed 002's bundle rule. Nothing is written; two reads (the configuration
/// and the live catalog), flat in the number of partners.
pub(crate) async fn price(app: &Tiers, req: &Request) -> Result<Response<Body>, ApiError> {
    let body = json_body(req, app.config.max_body_bytes)?;
    let mut f = Fields::new(&body, &["tierId", "billingPeriod", "addOns", "visitorId"]);
    let tier_id = f.required("tierId", parse::slug);
    let period = f.optional("billingPeriod", BillingPeriod::parse).unwrap_or(BillingPeriod::Monthly);
    let asked = f.optional("addOns", addon::parse_ids).unwrap_or_default();
    let visitor = f.optional("visitorId", experiment::user_id);
    f.finish()?;
    let config = app.store.storefront_config().await?;
    let live = app.store.active_catalog().await?;
    let mut tier =
        live.iter().find(|t| Some(&t.tier_id) == tier_id.as_ref()).cloned().ok_or_else(|| {
            ApiError::not_found("tier").with_details(json!({ "fields": { "tierId": "no live tier" } }))
        })?;
    // The visitor's pricing experiment variant, as the segment page and checkout price it.
    if let Some(visitor) = &visitor {
        experiment::price_for_user(&mut tier, &app.store.live_experiments().await?, visitor);
    }
    let today = app.clock.now().date_naive();
    let ruled = config.pricing.price(&tier.list_prices(), today, today, true).for_period(period).clone();
    let add_ons = addon::quote(&asked, &config.add_ons, &tier.segment, &tier.currency, period)?;
    json(
        StatusCode::OK,
        &json!({
            "tierId": tier.tier_id,
            "billingPeriod": period,
            "currency": tier.currency,
            "pricing": ruled,
            "addOns": add_ons,
            "total": ruled.price + add_ons.total,
        }),
    )
}

/// Counts one storefront event (seed 002's tracking events) in this month's
/// aggregates, once per `eventId`: a GetItem of the segment, then one
/// transaction.
pub(crate) async fn record_event(app: &Tiers, req: &Request) -> Result<Response<Body>, ApiError> {
    let event = StorefrontEvent::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let segment = app.store.get_segment(&event.segment_id).await?.filter(|s| s.active);
    if segment.is_none() {
        return Err(ApiError::from(SegmentError::NotFound)
            .with_details(json!({ "fields": { "segmentId": "no live segment" } })));
    }
    let today = app.clock.now().date_naive();
    let counted = app.store.record_storefront_event(&event, &period_of(today), today).await?;
    json(StatusCode::ACCEPTED, &json!({ "eventId": event.event_id, "counted": counted }))
}
