//! The tiers Lambda: the admin tier catalog (CRUD, features, defaults), the
//! storefront segments (docs/storefront.md) and the public catalog (list, compare,
//! upgrade price, segments). Routes are data (`ROUTES`) so a
//! test can hold them against `template.yaml` and `infra/openapi.yaml`.

use chrono::NaiveDate;
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tierdesk::app::App;
use tierdesk::domain::actor::Actor;
use tierdesk::domain::addon::AddOn;
use tierdesk::domain::catalog::{self, UpgradeRequest};
use tierdesk::domain::defaults::default_tiers;
use tierdesk::domain::experiment::{self, LiveExperiment};
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::pricing_rules::{PricingConfig, PricingRuleError};
use tierdesk::domain::segment::{
    self, NewSegment, Reorder, ReorderError, Segment, SegmentError, SegmentOrder, SegmentPatch,
};
use tierdesk::domain::tier::{
    ExperimentTag, FeaturePatch, NewFeature, NewTier, Prices, PublicTier, Tier, TierError, TierPatch, TierStatus,
    TierUpdate,
};
use tierdesk::domain::validation::{parse, ValidationError};
use tierdesk::http::cache::PublicCache;
use tierdesk::http::request::{json_body, query};
use tierdesk::http::response::{json_text, to_json};
use tierdesk::http::router::match_route;
use tierdesk::http::{json, serve, Ctx, PageRequest, PathParams, Route};
use tierdesk::store::{
    ExperimentStore, Page, PricingStore, SegmentStore, TierFilter, TierRefusal, TierStore, WriteError,
};
use tierdesk::ApiError;

mod alerts;
mod pricing;
mod storefront;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ListTiers,
    CreateTier,
    Initialize,
    GetTier,
    UpdateTier,
    ArchiveTier,
    AddFeature,
    UpdateFeature,
    RemoveFeature,
    PriceHistory,
    PublicCatalog,
    Compare,
    UpgradePrice,
    ListSegments,
    CreateSegment,
    ReorderSegments,
    UpdateSegment,
    RetireSegment,
    PublicSegments,
    PublicSegment,
    ListPricingRules,
    CreatePricingRule,
    UpdatePricingRule,
    DeletePricingRule,
    ListPricingConstraints,
    PutPricingConstraints,
    ListUpsellRules,
    CreateUpsellRule,
    UpdateUpsellRule,
    GetFeatureFlags,
    ListAlertRules,
    PutAlertRule,
    PutFeatureFlags,
    EvaluateUpsell,
    PartnerUpsell,
    RecordStorefrontEvent,
    PriceImpact,
    ListCompetitorPrices,
    PutCompetitorPrice,
    DeleteCompetitorPrice,
    ListAddOns,
    CreateAddOn,
    UpdateAddOn,
    StorefrontPrice,
}

/// Static segments come before `{tierId}` so `/initialize` is never read as a tier id.
pub const ROUTES: &[Route<Op>] = &[
    Route { method: "GET", path: "/api/admin/tiers", op: Op::ListTiers },
    Route { method: "POST", path: "/api/admin/tiers", op: Op::CreateTier },
    Route { method: "POST", path: "/api/admin/tiers/initialize", op: Op::Initialize },
    Route { method: "GET", path: "/api/admin/tiers/{tierId}", op: Op::GetTier },
    Route { method: "PUT", path: "/api/admin/tiers/{tierId}", op: Op::UpdateTier },
    Route { method: "DELETE", path: "/api/admin/tiers/{tierId}", op: Op::ArchiveTier },
    Route { method: "POST", path: "/api/admin/tiers/{tierId}/features", op: Op::AddFeature },
    Route { method: "PUT", path: "/api/admin/tiers/{tierId}/features/{featureId}", op: Op::UpdateFeature },
    Route { method: "DELETE", path: "/api/admin/tiers/{tierId}/features/{featureId}", op: Op::RemoveFeature },
    Route { method: "GET", path: "/api/admin/tiers/{tierId}/prices", op: Op::PriceHistory },
    Route { method: "POST", path: "/api/admin/tiers/{tierId}/price-impact", op: Op::PriceImpact },
    Route { method: "GET", path: "/api/tiers", op: Op::PublicCatalog },
    Route { method: "GET", path: "/api/tiers/compare", op: Op::Compare },
    Route { method: "POST", path: "/api/tiers/upgrade-price", op: Op::UpgradePrice },
    Route { method: "GET", path: "/api/admin/segments", op: Op::ListSegments },
    Route { method: "POST", path: "/api/admin/segments", op: Op::CreateSegment },
    Route { method: "POST", path: "/api/admin/segments/reorder", op: Op::ReorderSegments },
    Route { method: "PUT", path: "/api/admin/segments/{segmentId}", op: Op::UpdateSegment },
    Route { method: "DELETE", path: "/api/admin/segments/{segmentId}", op: Op::RetireSegment },
    Route { method: "GET", path: "/api/segments", op: Op::PublicSegments },
    Route { method: "GET", path: "/api/segments/{segmentId}", op: Op::PublicSegment },
    Route { method: "GET", path: "/api/admin/pricing-rules", op: Op::ListPricingRules },
    Route { method: "POST", path: "/api/admin/pricing-rules", op: Op::CreatePricingRule },
    Route { method: "PUT", path: "/api/admin/pricing-rules/{ruleId}", op: Op::UpdatePricingRule },
    Route { method: "DELETE", path: "/api/admin/pricing-rules/{ruleId}", op: Op::DeletePricingRule },
    Route { method: "GET", path: "/api/admin/pricing-constraints", op: Op::ListPricingConstraints },
    Route { method: "GET", path: "/api/admin/competitor-prices", op: Op::ListCompetitorPrices },
    Route { method: "PUT", path: "/api/admin/competitor-prices/{competitorId}/{tierId}", op: Op::PutCompetitorPrice },
    Route {
        method: "DELETE",
        path: "/api/admin/competitor-prices/{competitorId}/{tierId}",
        op: Op::DeleteCompetitorPrice,
    },
    Route { method: "PUT", path: "/api/admin/pricing-constraints/{scope}/{scopeId}", op: Op::PutPricingConstraints },
    Route { method: "GET", path: "/api/admin/upsell-rules", op: Op::ListUpsellRules },
    Route { method: "POST", path: "/api/admin/upsell-rules", op: Op::CreateUpsellRule },
    Route { method: "PUT", path: "/api/admin/upsell-rules/{ruleId}", op: Op::UpdateUpsellRule },
    Route { method: "GET", path: "/api/admin/feature-flags", op: Op::GetFeatureFlags },
    Route { method: "GET", path: "/api/admin/alert-rules", op: Op::ListAlertRules },
    Route { method: "PUT", path: "/api/admin/alert-rules/{ruleId}", op: Op::PutAlertRule },
    Route { method: "PUT", path: "/api/admin/feature-flags", op: Op::PutFeatureFlags },
    Route { method: "POST", path: "/api/upsell/evaluate", op: Op::EvaluateUpsell },
    Route { method: "POST", path: "/api/billing/upsell/evaluate", op: Op::PartnerUpsell },
    Route { method: "POST", path: "/api/storefront/events", op: Op::RecordStorefrontEvent },
    Route { method: "GET", path: "/api/admin/add-ons", op: Op::ListAddOns },
    Route { method: "POST", path: "/api/admin/add-ons", op: Op::CreateAddOn },
    Route { method: "PUT", path: "/api/admin/add-ons/{addOnId}", op: Op::UpdateAddOn },
    Route { method: "POST", path: "/api/storefront/price", op: Op::StorefrontPrice },
];

pub struct Tiers {
    app: App,
    public_cache: PublicCache,
}

tierdesk::wraps_app!(Tiers);

/// Distinct public responses one instance keeps (catalog pages, comparisons, quotes).
const PUBLIC_CACHE_ENTRIES: usize = 512;

impl Tiers {
    pub fn new(app: App) -> Self {
        let public_cache =
            PublicCache::new(Duration::from_secs(app.config.public_cache_ttl_secs), PUBLIC_CACHE_ENTRIES);
        Self { app, public_cache }
    }
}

pub async fn handle(app: &Tiers, req: Request) -> Response<Body> {
    serve(req, app.config.grants, app.clock.as_ref(), |ctx, req| dispatch(app, ctx, req)).await
}

async fn dispatch(app: &Tiers, ctx: Ctx, req: Request) -> Result<Response<Body>, ApiError> {
    let (op, params) = match_route(ROUTES, req.method(), req.uri().path())?;
    match op {
        Op::ListTiers => list_tiers(app, &ctx, &req).await,
        Op::CreateTier => create_tier(app, &ctx, &req).await,
        Op::Initialize => initialize(app, &ctx).await,
        Op::GetTier => {
            ctx.require(Permission::TierView)?;
            json(StatusCode::OK, &load(app, &params).await?)
        }
        Op::UpdateTier => update_tier(app, &ctx, &req, &params).await,
        Op::ArchiveTier => archive_tier(app, &ctx, &params).await,
        Op::AddFeature | Op::UpdateFeature | Op::RemoveFeature => change_feature(app, &ctx, &req, &params, op).await,
        Op::PriceHistory => price_history(app, &ctx, &req, &params).await,
        Op::PublicCatalog | Op::Compare | Op::UpgradePrice => public_read(app, &ctx, &req, op).await,
        Op::ListSegments => {
            ctx.require(Permission::TierView)?;
            json(StatusCode::OK, &json!({ "items": app.store.list_segments().await? }))
        }
        Op::CreateSegment => create_segment(app, &ctx, &req).await,
        Op::ReorderSegments => reorder_segments(app, &ctx, &req).await,
        Op::UpdateSegment => update_segment(app, &ctx, &req, &params).await,
        Op::RetireSegment => retire_segment(app, &ctx, &params).await,
        Op::PublicSegments | Op::PublicSegment => public_segments(app, &ctx, &req, op, &params).await,
        Op::ListPricingRules | Op::ListPricingConstraints | Op::ListCompetitorPrices => {
            ctx.require(Permission::TierView)?;
            let config = app.store.pricing_config().await?;
            match op {
                Op::ListPricingRules => json(StatusCode::OK, &json!({ "items": config.rules })),
                Op::ListCompetitorPrices => json(StatusCode::OK, &json!({ "items": config.competitors })),
                _ => json(StatusCode::OK, &json!({ "items": config.constraints })),
            }
        }
        Op::PutCompetitorPrice | Op::DeleteCompetitorPrice => {
            pricing::competitor_price(app, &ctx, &req, &params, op).await
        }
        Op::CreatePricingRule | Op::UpdatePricingRule | Op::DeletePricingRule => {
            pricing::change_rule(app, &ctx, &req, &params, op).await
        }
        Op::PutPricingConstraints => pricing::put_constraints(app, &ctx, &req, &params).await,
        Op::ListUpsellRules | Op::CreateUpsellRule | Op::UpdateUpsellRule => {
            storefront::upsell_rules(app, &ctx, &req, &params, op).await
        }
        Op::GetFeatureFlags | Op::PutFeatureFlags => storefront::feature_flags(app, &ctx, &req, op).await,
        Op::ListAlertRules | Op::PutAlertRule => alerts::alert_rules(app, &ctx, &req, &params, op).await,
        Op::EvaluateUpsell | Op::PartnerUpsell => storefront::evaluate(app, &ctx, &req, op).await,
        Op::RecordStorefrontEvent => storefront::record_event(app, &req).await,
        Op::ListAddOns | Op::CreateAddOn | Op::UpdateAddOn => storefront::add_ons(app, &ctx, &req, &params, op).await,
        Op::StorefrontPrice => storefront::price(app, &req).await,
        Op::PriceImpact => {
            ctx.require(Permission::TierManage)?;
            let tier = load(app, &params).await?;
            pricing::preview(app, &ctx, &req, tier).await
        }
    }
}

/// The anonymous read routes, served from the instance's cache while fresh. The key
/// is the route plus what selects the answer (query string, or the parsed body, and
/// the visitor a pricing experiment may price differently).
async fn public_read(app: &Tiers, ctx: &Ctx, req: &Request, op: Op) -> Result<Response<Body>, ApiError> {
    let mut upgrade = match op {
        Op::UpgradePrice => Some(UpgradeRequest::parse(&json_body(req, app.config.max_body_bytes)?)?),
        _ => None,
    };
    let named = match &upgrade {
        Some(u) => u.user_id.clone(),
        None => query(req, "userId")
            .map(|u| experiment::user_id(&Value::String(u)).map_err(|e| ValidationError::single("userId", e)))
            .transpose()?,
    };
    // A verified token names the visitor when no parameter does (API Gateway passes
    // claims only where an authorizer ran; see docs/experiments.md).
    let visitor = named.or_else(|| ctx.identity.as_ref().map(|i| i.subject.clone()));
    if let Some(u) = upgrade.as_mut() {
        u.user_id = visitor.clone();
    }
    // The day is part of the key: which pricing rules are in force changes at midnight.
    let today = app.clock.now().date_naive();
    let key = match &upgrade {
        Some(u) => format!("{op:?} {today} {} {} {:?} {:?}", u.from_tier_id, u.to_tier_id, u.billing_period, u.user_id),
        None => format!("{op:?} {today} {} {visitor:?}", req.uri().query().unwrap_or_default()),
    };
    if let Some(body) = app.public_cache.get(&key, Instant::now()) {
        return Ok(json_text(body));
    }
    let body = match upgrade {
        Some(ask) => upgrade_price(app, ask).await?,
        None if op == Op::Compare => compare(app, req).await?,
        None => public_catalog(app, req, visitor.as_deref()).await?,
    };
    app.public_cache.put(key, body.clone(), Instant::now());
    Ok(json_text(body))
}

/// A tier named in the path. An id that could never exist is simply not found.
async fn load(app: &Tiers, params: &PathParams) -> Result<Tier, ApiError> {
    let id = params.get("tierId");
    if !parse::is_slug(id) {
        return Err(TierError::NotFound.into());
    }
    app.store.get_tier(id).await?.ok_or_else(|| TierError::NotFound.into())
}

fn list_filter(req: &Request) -> Result<TierFilter, ValidationError> {
    let segment = query(req, "segment")
        .map(|s| parse::slug(&Value::String(s)).map_err(|e| ValidationError::single("segment", e)))
        .transpose()?;
    let status = query(req, "status")
        .map(|s| TierStatus::parse(&Value::String(s)).map_err(|e| ValidationError::single("status", e)))
        .transpose()?;
    Ok(TierFilter { segment, status })
}

fn page(app: &Tiers, req: &Request) -> Result<PageRequest, ApiError> {
    Ok(PageRequest::from_request(req, app.config.default_page_size, app.config.max_page_size)?)
}

async fn list_tiers(app: &Tiers, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    ctx.require(Permission::TierView)?;
    let filter = list_filter(req)?;
    let tiers = app.store.list_tiers(&filter, &page(app, req)?).await?;
    json(StatusCode::OK, &tiers)
}

/// A tier's price versions, newest first, paged. Every tier is created with version
/// 1, so an empty first page means the tier does not exist (one GetItem, only then).
async fn price_history(app: &Tiers, ctx: &Ctx, req: &Request, params: &PathParams) -> Result<Response<Body>, ApiError> {
    ctx.require(Permission::TierView)?;
    let id = params.get("tierId");
    if !parse::is_slug(id) {
        return Err(TierError::NotFound.into());
    }
    let page = page(app, req)?;
    let first = page.cursor.is_none();
    let versions = app.store.list_price_versions(id, &page).await?;
    if first && versions.items.is_empty() && app.store.get_tier(id).await?.is_none() {
        return Err(TierError::NotFound.into());
    }
    json(StatusCode::OK, &versions)
}

async fn create_tier(app: &Tiers, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::TierManage)?;
    who.require(Permission::PricingManagement)?;
    let new = NewTier::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let by = ctx.actor(who);
    let tier = new.into_tier(&by);
    check_segment_fields(app, None, &tier).await?;
    app.store.pricing_config().await?.check_tier(&tier.list_prices())?;
    app.store.create_tier(&tier, &app.audit("tier.create", &by, None, &tier)).await?;
    app.public_cache.clear();
    json(StatusCode::CREATED, &tier)
}

/// Seeds the default catalog. Each tier is a conditional create, so repeated and
/// concurrent calls create each default exactly once and never overwrite edits.
async fn initialize(app: &Tiers, ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::SystemConfig)?;
    let by = ctx.actor(who);
    let (mut created, mut existing) = (Vec::new(), Vec::new());
    for new in default_tiers() {
        let tier = new.into_tier(&by);
        match app.store.create_tier(&tier, &app.audit("tier.initialize", &by, None, &tier)).await {
            Ok(()) => created.push(tier.tier_id),
            Err(WriteError::Refused(TierRefusal::Exists)) => existing.push(tier.tier_id),
            Err(e) => return Err(e.into()),
        }
    }
    app.public_cache.clear();
    json(StatusCode::OK, &json!({ "created": created, "existing": existing }))
}

async fn save(app: &Tiers, by: &Actor, update: TierUpdate, action: &'static str) -> Result<Response<Body>, ApiError> {
    let action = if update.prices_changed() { "tier.price_change" } else { action };
    let audit = app.audit(action, by, Some(&update.before), &update.after);
    app.store.save_tier(&update, &audit).await?;
    app.public_cache.clear();
    json(StatusCode::OK, &update.after)
}

async fn update_tier(app: &Tiers, ctx: &Ctx, req: &Request, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::TierManage)?;
    let patch = TierPatch::parse(&json_body(req, app.config.max_body_bytes)?)?;
    if patch.touches_pricing() {
        who.require(Permission::PricingManagement)?;
    }
    let tier = load(app, params).await?;
    let by = ctx.actor(who);
    let mut update = tier.apply(patch, &by)?;
    check_segment_fields(app, Some(&update.before), &update.after).await?;
    if update.prices_changed() || update.before.segment != update.after.segment {
        // Seed 004's constraints: the change within its limit, the new list price
        // within the bounds, and every rule still within them (one Query).
        let config = app.store.pricing_config().await?;
        config.check_list_change(&update.before.list_prices(), &update.after.list_prices())?;
        config.check_tier(&update.after.list_prices())?;
        if update.prices_changed() {
            // Seed 004's approval limit: over it, only an admin applies the change,
            // and only by saying so (`?approveImpact=true`).
            let impact = pricing::impact_of(app, &config, &update.before, &update.after.list_prices()).await?;
            let approved = query(req, "approveImpact").as_deref() == Some("true") && who.can(Permission::SystemConfig);
            if impact.requires_approval && !approved {
                return Err(PricingRuleError::CustomerImpactTooHigh {
                    affected_customers: impact.affected_customers,
                    revenue_impact: impact.revenue_impact,
                    exceeds: impact.exceeds,
                }
                .into());
            }
            // The schedule the preview showed: subscribers keep their version through
            // this day, then the daily cron moves them (docs/pricing-rules.md).
            update.after.grandfathered_until = impact.grandfathered_until;
        }
    }
    save(app, &by, update, "tier.update").await
}

async fn archive_tier(app: &Tiers, ctx: &Ctx, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::TierManage)?;
    let tier = load(app, params).await?;
    let by = ctx.actor(who);
    match tier.archive(&by)? {
        Some(update) => save(app, &by, update, "tier.archive").await,
        None => json(StatusCode::OK, &tier),
    }
}

async fn change_feature(
    app: &Tiers,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
    op: Op,
) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::TierManage)?;
    let feature_id = params.get("featureId").to_string();
    let by = ctx.actor(who);
    let update = match op {
        Op::AddFeature => {
            let new = NewFeature::parse(&json_body(req, app.config.max_body_bytes)?)?;
            load(app, params).await?.add_feature(new, &by)?
        }
        Op::UpdateFeature => {
            let patch = FeaturePatch::parse(&json_body(req, app.config.max_body_bytes)?)?;
            load(app, params).await?.update_feature(&feature_id, patch, &by)?
        }
        _ => {
            let expected = query(req, "version")
                .map(|v| v.parse::<u64>().map_err(|_| ValidationError::single("version", "must be an integer")))
                .transpose()?;
            load(app, params).await?.remove_feature(&feature_id, expected, &by)?
        }
    };
    save(app, &by, update, "tier.feature_change").await
}

/// The running pricing experiments, read only when a visitor is named (one Query).
async fn live_for(app: &Tiers, visitor: Option<&str>) -> Result<Vec<LiveExperiment>, ApiError> {
    match visitor {
        Some(_) => Ok(app.store.live_experiments().await?),
        None => Ok(Vec::new()),
    }
}

/// What a priced public read applies: the visitor's experiments, the pricing
/// rules and constraints (one Query), and the day.
struct Pricing {
    live: Vec<LiveExperiment>,
    config: PricingConfig,
    today: NaiveDate,
    segments_enabled: bool,
    add_ons: Vec<AddOn>,
}

async fn pricing_for(app: &Tiers, visitor: Option<&str>) -> Result<Pricing, ApiError> {
    let storefront = app.store.storefront_config().await?;
    Ok(Pricing {
        live: live_for(app, visitor).await?,
        config: storefront.pricing,
        today: app.clock.now().date_naive(),
        segments_enabled: storefront.flags.segments_enabled,
        add_ons: storefront.add_ons,
    })
}

/// The tier as `visitor` sees it: a running experiment's variant price, tagged,
/// then the pricing rules in force today on a subscription starting today. The
/// storefront prices for a new customer; a partner's own price is priced at
/// checkout (functions/billing).
fn priced_for(tier: &Tier, pricing: &Pricing, visitor: Option<&str>) -> PublicTier {
    let mut tier = tier.clone();
    let tag = visitor.and_then(|u| experiment::price_for_user(&mut tier, &pricing.live, u));
    let mut public = PublicTier::from(&tier);
    public.experiment = tag.map(|(experiment_id, variant_id)| ExperimentTag { experiment_id, variant_id });
    public.pricing = Some(pricing.config.price(&tier.list_prices(), pricing.today, pricing.today, true));
    public
}

async fn public_catalog(app: &Tiers, req: &Request, visitor: Option<&str>) -> Result<String, ApiError> {
    let mut filter = list_filter(req)?;
    filter.status = Some(TierStatus::Active);
    let page = app.store.list_tiers(&filter, &page(app, req)?).await?;
    let pricing = pricing_for(app, visitor).await?;
    let items = page.items.iter().map(|t| priced_for(t, &pricing, visitor)).collect();
    to_json(&Page { items, next_cursor: page.next_cursor })
}

async fn compare(app: &Tiers, req: &Request) -> Result<String, ApiError> {
    let ids = catalog::parse_compare_ids(query(req, "ids").as_deref())?;
    let tiers: Vec<Tier> =
        app.store.get_tiers(&ids).await?.into_iter().filter(|t| t.status == TierStatus::Active).collect();
    let missing: Vec<&String> = ids.iter().filter(|id| !tiers.iter().any(|t| &t.tier_id == *id)).collect();
    if !missing.is_empty() {
        return Err(ApiError::not_found("tier").with_details(json!({ "missing": missing })));
    }
    to_json(&catalog::compare(&tiers))
}

/// The upgrade's price difference on the prices an existing customer pays today:
/// the experiment variant's list price, then the pricing rules.
async fn upgrade_price(app: &Tiers, ask: UpgradeRequest) -> Result<String, ApiError> {
    let mut active = app.store.active_catalog().await?;
    let pricing = pricing_for(app, ask.user_id.as_deref()).await?;
    for tier in &mut active {
        if let Some(visitor) = ask.user_id.as_deref() {
            experiment::price_for_user(tier, &pricing.live, visitor);
        }
        let ruled = pricing.config.price(&tier.list_prices(), pricing.today, pricing.today, false);
        tier.prices = Prices { monthly: ruled.monthly.price, yearly: ruled.yearly.price };
    }
    let find = |id: &str| active.iter().find(|t| t.tier_id == id).ok_or(TierError::NotFound);
    let priced = catalog::upgrade_price(find(&ask.from_tier_id)?, find(&ask.to_tier_id)?, ask.billing_period, &active)?;
    to_json(&priced)
}

/// The segment rules of a created or edited tier, against the table: a registered
/// segment must be active to receive a tier and holds levels 1–3 only; every
/// `upsellTargets` id must be a live tier. Reads happen only when the fields they
/// judge change (one GetItem, one BatchGetItem). A tier whose `segment` names no
/// registered segment (the legacy free-form value, `standard`) keeps the old rules
/// until the backfill moves it.
async fn check_segment_fields(app: &Tiers, before: Option<&Tier>, after: &Tier) -> Result<(), ApiError> {
    let placement_changed = before.is_none_or(|b| b.segment != after.segment || b.tier_level != after.tier_level);
    let mut in_segment = false;
    if placement_changed {
        if let Some(found) = app.store.get_segment(&after.segment).await? {
            if !found.active && before.is_none_or(|b| b.segment != after.segment) {
                return Err(SegmentError::Retired.into());
            }
            in_segment = true;
        }
    }
    after.check_package_fields(in_segment)?;
    let targets_changed = before.is_none_or(|b| b.upsell_targets != after.upsell_targets);
    if targets_changed && !after.upsell_targets.is_empty() {
        let live: Vec<String> = app
            .store
            .get_tiers(&after.upsell_targets)
            .await?
            .into_iter()
            .filter(|t| t.status == TierStatus::Active)
            .map(|t| t.tier_id)
            .collect();
        let missing: Vec<&String> = after.upsell_targets.iter().filter(|id| !live.contains(id)).collect();
        if !missing.is_empty() {
            return Err(ValidationError::single("upsellTargets", format!("no live tier {missing:?}")).into());
        }
    }
    Ok(())
}

/// A segment named in the path; an id that could never exist is not found.
async fn load_segment(app: &Tiers, params: &PathParams) -> Result<Segment, ApiError> {
    let id = params.get("segmentId");
    if !parse::is_slug(id) {
        return Err(SegmentError::NotFound.into());
    }
    app.store.get_segment(id).await?.ok_or_else(|| SegmentError::NotFound.into())
}

async fn create_segment(app: &Tiers, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::SystemConfig)?;
    let new = NewSegment::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let by = ctx.actor(who);
    let created = new.into_segment(&by);
    app.store.create_segment(&created, &app.audit("segment.create", &by, None, &created)).await?;
    app.public_cache.clear();
    json(StatusCode::CREATED, &created)
}

async fn update_segment(
    app: &Tiers,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::SystemConfig)?;
    let patch = SegmentPatch::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let before = load_segment(app, params).await?;
    let by = ctx.actor(who);
    let after = before.apply(patch, &by)?;
    let action = if before.active != after.active { "segment.activation" } else { "segment.update" };
    app.store.save_segment(&before, &after, &app.audit(action, &by, Some(&before), &after)).await?;
    app.public_cache.clear();
    json(StatusCode::OK, &after)
}

/// Retires a segment: off the storefront, no new tiers; its tiers stay where they
/// are. Retiring a retired segment changes nothing.
async fn retire_segment(app: &Tiers, ctx: &Ctx, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::SystemConfig)?;
    let before = load_segment(app, params).await?;
    let by = ctx.actor(who);
    let Some(after) = before.retire(&by) else {
        return json(StatusCode::OK, &before);
    };
    let audit = app.audit("segment.retire", &by, Some(&before), &after);
    app.store.save_segment(&before, &after, &audit).await?;
    app.public_cache.clear();
    json(StatusCode::OK, &after)
}

async fn reorder_segments(app: &Tiers, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::SystemConfig)?;
    let reorder = Reorder::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let current = app.store.list_segments().await?;
    let by = ctx.actor(who);
    let moves = reorder.apply(&current, &by).map_err(|e| match e {
        ReorderError::Invalid(v) => ApiError::from(v),
        ReorderError::Conflict(c) => ApiError::from(c),
    })?;
    let order_of = |segments: &mut Vec<&Segment>| {
        segments.sort_by_key(|s| (s.sort_order, s.segment_id.clone()));
        SegmentOrder { segment_ids: segments.iter().map(|s| s.segment_id.clone()).collect() }
    };
    let before = order_of(&mut moves.iter().map(|(b, _)| b).collect());
    let after = order_of(&mut moves.iter().map(|(_, a)| a).collect());
    let audit = app.audit("segment.reorder", &by, Some(&before), &after);
    app.store.reorder_segments(&moves, &audit).await?;
    app.public_cache.clear();
    let items: Vec<&Segment> = moves.iter().map(|(_, a)| a).collect();
    json(StatusCode::OK, &json!({ "items": items }))
}

/// The storefront's segment reads, served from the public cache like the catalog:
/// the list of live segments (one Query), and one segment with its tiers grouped by
/// level and the comparison matrix (one GetItem, one Query of the segment's catalog
/// range, and the live experiments when a visitor is named).
async fn public_segments(
    app: &Tiers,
    ctx: &Ctx,
    req: &Request,
    op: Op,
    params: &PathParams,
) -> Result<Response<Body>, ApiError> {
    let visitor = match op {
        Op::PublicSegment => query(req, "userId")
            .map(|u| experiment::user_id(&Value::String(u)).map_err(|e| ValidationError::single("userId", e)))
            .transpose()?
            .or_else(|| ctx.identity.as_ref().map(|i| i.subject.clone())),
        _ => None,
    };
    let key = format!("{op:?} {} {} {visitor:?}", app.clock.now().date_naive(), req.uri().path());
    if let Some(body) = app.public_cache.get(&key, Instant::now()) {
        return Ok(json_text(body));
    }
    let body = match op {
        Op::PublicSegment => {
            let id = params.get("segmentId");
            if !parse::is_slug(id) {
                return Err(SegmentError::NotFound.into());
            }
            let pricing = pricing_for(app, visitor.as_deref()).await?;
            if !pricing.segments_enabled {
                return Err(SegmentError::NotFound.into());
            }
            let found = app.store.get_segment(id).await?.filter(|s| s.active).ok_or(SegmentError::NotFound)?;
            let tiers = app.store.segment_tiers(id).await?;
            let priced = tiers.iter().map(|t| priced_for(t, &pricing, visitor.as_deref())).collect();
            let mut page = serde_json::to_value(segment::segment_packages(&found, &tiers, priced))
                .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error"))?;
            // The add-ons offered in the segment (issue 21 §2), for the storefront.
            let add_ons: Vec<&AddOn> = pricing.add_ons.iter().filter(|a| a.offered_in(id)).collect();
            page["addOns"] = json!(add_ons
                .iter()
                .map(|a| json!({"addOnId": a.add_on_id, "name": a.name, "description": a.description,
                                "prices": a.prices, "currency": a.currency}))
                .collect::<Vec<_>>());
            page.to_string()
        }
        _ => {
            // `segments.enabled` off: the storefront shows no segments.
            let enabled = app.store.storefront_config().await?.flags.segments_enabled;
            let items: Vec<segment::PublicSegment> = match enabled {
                true => app
                    .store
                    .list_segments()
                    .await?
                    .iter()
                    .filter(|s| s.active)
                    .map(segment::PublicSegment::from)
                    .collect(),
                false => Vec::new(),
            };
            to_json(&json!({ "items": items }))?
        }
    };
    app.public_cache.put(key, body.clone(), Instant::now());
    Ok(json_text(body))
}
