//! The tiers Lambda: the admin tier catalog (CRUD, features, defaults) and the
//! public catalog (list, compare, upgrade price). Routes are data (`ROUTES`) so a
//! test can hold them against `template.yaml` and `infra/openapi.yaml`.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tierdesk::clock::rfc3339;
use tierdesk::domain::audit::{AuditEntry, Performed};
use tierdesk::domain::catalog::{self, UpgradeRequest};
use tierdesk::domain::defaults::default_tiers;
use tierdesk::domain::experiment::{self, LiveExperiment};
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::tier::{
    Change, ExperimentTag, FeaturePatch, NewFeature, NewTier, PublicTier, Tier, TierError, TierPatch, TierStatus,
    TierUpdate,
};
use tierdesk::domain::validation::{parse, ValidationError};
use tierdesk::http::cache::PublicCache;
use tierdesk::http::identity::Identity;
use tierdesk::http::request::{json_body, query};
use tierdesk::http::response::{json_text, to_json};
use tierdesk::http::router::match_route;
use tierdesk::http::{json, serve, Ctx, PageRequest, PathParams, Route};
use tierdesk::store::{Page, Store, TierFilter};
use tierdesk::{ApiError, Clock, Config, IdGen, SystemClock, UlidGen};

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
    Route { method: "GET", path: "/api/tiers", op: Op::PublicCatalog },
    Route { method: "GET", path: "/api/tiers/compare", op: Op::Compare },
    Route { method: "POST", path: "/api/tiers/upgrade-price", op: Op::UpgradePrice },
];

pub struct Tiers {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub config: Config,
    public_cache: PublicCache,
}

/// Distinct public responses one instance keeps (catalog pages, comparisons, quotes).
const PUBLIC_CACHE_ENTRIES: usize = 512;

impl Tiers {
    pub async fn connect(config: Config) -> Self {
        let store = Store::connect(&config).await;
        Self::with_store(store, config)
    }

    pub fn with_store(store: Store, config: Config) -> Self {
        Self::new(store, config, Arc::new(SystemClock), Arc::new(UlidGen))
    }

    pub fn new(store: Store, config: Config, clock: Arc<dyn Clock>, ids: Arc<dyn IdGen>) -> Self {
        let public_cache = PublicCache::new(Duration::from_secs(config.public_cache_ttl_secs), PUBLIC_CACHE_ENTRIES);
        Self { store, clock, ids, config, public_cache }
    }

    fn change(&self, who: &Identity) -> Change {
        Change { actor: who.subject.clone(), at: rfc3339(self.clock.now()) }
    }

    fn audit(
        &self,
        ctx: &Ctx,
        change: &Change,
        action: &'static str,
        before: Option<&Tier>,
        after: &Tier,
    ) -> AuditEntry {
        let by = Performed { actor: &change.actor, at: &change.at, request_id: &ctx.request_id };
        AuditEntry::change(self.ids.new_id(), action, by, before, after)
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
    let key = match &upgrade {
        Some(u) => format!("{op:?} {} {} {:?} {:?}", u.from_tier_id, u.to_tier_id, u.billing_period, u.user_id),
        None => format!("{op:?} {} {visitor:?}", req.uri().query().unwrap_or_default()),
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
    let change = app.change(who);
    let tier = new.into_tier(&change);
    app.store.create_tier(&tier, &app.audit(ctx, &change, "tier.create", None, &tier)).await?;
    app.public_cache.clear();
    json(StatusCode::CREATED, &tier)
}

/// Seeds the default catalog. Each tier is a conditional create, so repeated and
/// concurrent calls create each default exactly once and never overwrite edits.
async fn initialize(app: &Tiers, ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::SystemConfig)?;
    let change = app.change(who);
    let (mut created, mut existing) = (Vec::new(), Vec::new());
    for new in default_tiers() {
        let tier = new.into_tier(&change);
        match app.store.create_tier(&tier, &app.audit(ctx, &change, "tier.initialize", None, &tier)).await {
            Ok(()) => created.push(tier.tier_id),
            Err(TierError::AlreadyExists) => existing.push(tier.tier_id),
            Err(e) => return Err(e.into()),
        }
    }
    app.public_cache.clear();
    json(StatusCode::OK, &json!({ "created": created, "existing": existing }))
}

async fn save(
    app: &Tiers,
    ctx: &Ctx,
    change: &Change,
    update: TierUpdate,
    action: &'static str,
) -> Result<Response<Body>, ApiError> {
    let action = if update.prices_changed() { "tier.price_change" } else { action };
    let audit = app.audit(ctx, change, action, Some(&update.before), &update.after);
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
    let change = app.change(who);
    let update = tier.apply(patch, &change)?;
    save(app, ctx, &change, update, "tier.update").await
}

async fn archive_tier(app: &Tiers, ctx: &Ctx, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::TierManage)?;
    let tier = load(app, params).await?;
    let change = app.change(who);
    match tier.archive(&change)? {
        Some(update) => save(app, ctx, &change, update, "tier.archive").await,
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
    let change = app.change(who);
    let update = match op {
        Op::AddFeature => {
            let new = NewFeature::parse(&json_body(req, app.config.max_body_bytes)?)?;
            load(app, params).await?.add_feature(new, &change)?
        }
        Op::UpdateFeature => {
            let patch = FeaturePatch::parse(&json_body(req, app.config.max_body_bytes)?)?;
            load(app, params).await?.update_feature(&feature_id, patch, &change)?
        }
        _ => {
            let expected = query(req, "version")
                .map(|v| v.parse::<u64>().map_err(|_| ValidationError::single("version", "must be an integer")))
                .transpose()?;
            load(app, params).await?.remove_feature(&feature_id, expected, &change)?
        }
    };
    save(app, ctx, &change, update, "tier.feature_change").await
}

/// The running pricing experiments, read only when a visitor is named (one Query).
async fn live_for(app: &Tiers, visitor: Option<&str>) -> Result<Vec<LiveExperiment>, ApiError> {
    match visitor {
        Some(_) => Ok(app.store.live_experiments().await?),
        None => Ok(Vec::new()),
    }
}

/// The tier as `visitor` sees it: a running experiment's variant price, tagged.
fn priced_for(tier: &Tier, live: &[LiveExperiment], visitor: Option<&str>) -> PublicTier {
    let mut tier = tier.clone();
    let tag = visitor.and_then(|u| experiment::price_for_user(&mut tier, live, u));
    let mut public = PublicTier::from(&tier);
    public.experiment = tag.map(|(experiment_id, variant_id)| ExperimentTag { experiment_id, variant_id });
    public
}

async fn public_catalog(app: &Tiers, req: &Request, visitor: Option<&str>) -> Result<String, ApiError> {
    let mut filter = list_filter(req)?;
    filter.status = Some(TierStatus::Active);
    let page = app.store.list_tiers(&filter, &page(app, req)?).await?;
    let live = live_for(app, visitor).await?;
    let items = page.items.iter().map(|t| priced_for(t, &live, visitor)).collect();
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

async fn upgrade_price(app: &Tiers, ask: UpgradeRequest) -> Result<String, ApiError> {
    let mut active = app.store.active_catalog().await?;
    if let Some(visitor) = ask.user_id.as_deref() {
        let live = live_for(app, Some(visitor)).await?;
        for tier in &mut active {
            experiment::price_for_user(tier, &live, visitor);
        }
    }
    let find = |id: &str| active.iter().find(|t| t.tier_id == id).ok_or(TierError::NotFound);
    let priced = catalog::upgrade_price(find(&ask.from_tier_id)?, find(&ask.to_tier_id)?, ask.billing_period, &active)?;
    to_json(&priced)
}
