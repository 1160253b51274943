//! The experiments Lambda: pricing experiment CRUD and lifecycle, results with
//! their statistics, winner rollout into the tier catalog, and the two public
//! routes, assign and track. Routes are data (`ROUTES`) so a test can hold them
//! against `template.yaml` and `infra/openapi.yaml`.

pub mod campaigns;

use campaigns::CampaignOp;
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::{json, Value};
use tierdesk::app::experiment_tracking::{self, Reporter, Tracked};
use tierdesk::app::App;
use tierdesk::domain::campaign::{self, CampaignError, LifecycleAction};
use tierdesk::domain::experiment::{
    self, Action, Experiment, ExperimentError, ExperimentPatch, ExperimentStatus, ExperimentType, NewExperiment,
    Results, Rollout, Track,
};
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::tier::{Tier, TierPatch, TierStatus};
use tierdesk::domain::validation::{parse, Fields, ValidationError};
use tierdesk::http::csv::{csv_response, Cell, CsvWriter};
use tierdesk::http::request::{json_body, query};
use tierdesk::http::router::match_route;
use tierdesk::http::{json, serve, Ctx, PageRequest, PathParams, Route};
use tierdesk::store::{CampaignStore, ExperimentStore, IntelligenceStore, LinkedWrite, TierStore};
use tierdesk::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    List,
    Create,
    Get,
    Update,
    Workflow(Action),
    ImplementWinner,
    Results,
    Assign,
    Track,
    Recommendations,
    AcceptRecommendation,
    DismissRecommendation,
    Campaign(CampaignOp),
}

pub const ROUTES: &[Route<Op>] = &[
    Route { method: "GET", path: "/api/admin/experiments", op: Op::List },
    Route { method: "POST", path: "/api/admin/experiments", op: Op::Create },
    Route { method: "GET", path: "/api/admin/experiments/{experimentId}", op: Op::Get },
    Route { method: "PUT", path: "/api/admin/experiments/{experimentId}", op: Op::Update },
    Route { method: "POST", path: "/api/admin/experiments/{experimentId}/start", op: Op::Workflow(Action::Start) },
    Route { method: "POST", path: "/api/admin/experiments/{experimentId}/pause", op: Op::Workflow(Action::Pause) },
    Route {
        method: "POST",
        path: "/api/admin/experiments/{experimentId}/complete",
        op: Op::Workflow(Action::Complete),
    },
    Route { method: "POST", path: "/api/admin/experiments/{experimentId}/cancel", op: Op::Workflow(Action::Cancel) },
    Route { method: "POST", path: "/api/admin/experiments/{experimentId}/implement-winner", op: Op::ImplementWinner },
    Route { method: "GET", path: "/api/admin/experiments/{experimentId}/results", op: Op::Results },
    Route { method: "POST", path: "/api/experiments/{experimentId}/assign", op: Op::Assign },
    Route { method: "GET", path: "/api/admin/recommendations", op: Op::Recommendations },
    Route {
        method: "POST",
        path: "/api/admin/recommendations/{recommendationId}/accept",
        op: Op::AcceptRecommendation,
    },
    Route {
        method: "POST",
        path: "/api/admin/recommendations/{recommendationId}/dismiss",
        op: Op::DismissRecommendation,
    },
    Route { method: "POST", path: "/api/experiments/{experimentId}/track", op: Op::Track },
    Route { method: "GET", path: "/api/admin/campaigns", op: Op::Campaign(CampaignOp::List) },
    Route { method: "POST", path: "/api/admin/campaigns", op: Op::Campaign(CampaignOp::Create) },
    Route { method: "GET", path: "/api/admin/campaigns/{campaignId}", op: Op::Campaign(CampaignOp::Get) },
    Route { method: "PUT", path: "/api/admin/campaigns/{campaignId}", op: Op::Campaign(CampaignOp::Update) },
    Route {
        method: "POST",
        path: "/api/admin/campaigns/{campaignId}/launch",
        op: Op::Campaign(CampaignOp::Lifecycle(LifecycleAction::Launch)),
    },
    Route {
        method: "POST",
        path: "/api/admin/campaigns/{campaignId}/pause",
        op: Op::Campaign(CampaignOp::Lifecycle(LifecycleAction::Pause)),
    },
    Route {
        method: "POST",
        path: "/api/admin/campaigns/{campaignId}/resume",
        op: Op::Campaign(CampaignOp::Lifecycle(LifecycleAction::Resume)),
    },
    Route {
        method: "POST",
        path: "/api/admin/campaigns/{campaignId}/complete",
        op: Op::Campaign(CampaignOp::Lifecycle(LifecycleAction::Complete)),
    },
    Route {
        method: "POST",
        path: "/api/admin/campaigns/{campaignId}/cancel",
        op: Op::Campaign(CampaignOp::Lifecycle(LifecycleAction::Cancel)),
    },
    Route { method: "GET", path: "/api/admin/campaigns/{campaignId}/insights", op: Op::Campaign(CampaignOp::Insights) },
];

/// Anonymous assign/track bodies are a user id, a metric and an event id: a
/// small cap keeps an abusive caller's requests cheap to refuse.
pub const PUBLIC_BODY_BYTES: usize = 2 * 1024;

pub struct Experiments {
    app: App,
}

tierdesk::wraps_app!(Experiments);

impl Experiments {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

pub async fn handle(app: &Experiments, req: Request) -> Response<Body> {
    serve(req, app.config.grants, app.clock.as_ref(), |ctx, req| dispatch(app, ctx, req)).await
}

async fn dispatch(app: &Experiments, ctx: Ctx, req: Request) -> Result<Response<Body>, ApiError> {
    let (op, params) = match_route(ROUTES, req.method(), req.uri().path())?;
    match op {
        Op::List => list(app, &ctx, &req).await,
        Op::Create => create(app, &ctx, &req).await,
        Op::Get => {
            ctx.require(Permission::TierAnalytics)?;
            json(StatusCode::OK, &load(app, &params).await?)
        }
        Op::Update => update(app, &ctx, &req, &params).await,
        Op::Workflow(action) => workflow(app, &ctx, &req, &params, action).await,
        Op::ImplementWinner => implement_winner(app, &ctx, &req, &params).await,
        Op::Results => {
            ctx.require(Permission::TierAnalytics)?;
            let csv = match query(&req, "format").as_deref() {
                None | Some("json") => false,
                Some("csv") => true,
                Some(_) => return Err(ValidationError::single("format", "must be json or csv").into()),
            };
            let exp = load(app, &params).await?;
            let results = results_of(app, &exp).await?;
            if csv {
                let name = format!("experiment-{}-results", exp.experiment_id);
                return Ok(csv_response(results_csv(&results), &name, None));
            }
            json(StatusCode::OK, &results)
        }
        Op::Assign => assign(app, &req, &params).await,
        Op::Track => track(app, &req, &params).await,
        Op::Recommendations => {
            ctx.require(Permission::ViewRevenueMetrics)?;
            let mut list = app.store.recommendations().await?;
            list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.recommendation_id.cmp(&b.recommendation_id)));
            json(StatusCode::OK, &json!({ "recommendations": list }))
        }
        Op::AcceptRecommendation => decide(app, &ctx, &req, &params, true).await,
        Op::DismissRecommendation => decide(app, &ctx, &req, &params, false).await,
        Op::Campaign(op) => campaigns::route(app, &ctx, &req, &params, op).await,
    }
}

/// Attempts at a decision whose recommendation another decision changed meanwhile.
const DECIDE_ATTEMPTS: usize = 3;

/// Accepts (creating the draft experiment, docs/intelligence.md) or dismisses a
/// pricing recommendation. Idempotent: a repeat of the decision already taken
/// answers as the first did; the other decision is a 409.
async fn decide(
    app: &Experiments,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
    accept: bool,
) -> Result<Response<Body>, ApiError> {
    use tierdesk::domain::elasticity::{self, RecommendationError, RecommendationStatus};
    use tierdesk::store::{RecommendationRefusal, WriteError};
    let who = ctx.require(Permission::ExperimentManagement)?;
    no_body(req)?;
    let id = params.get("recommendationId");
    let wanted = if accept { RecommendationStatus::Accepted } else { RecommendationStatus::Dismissed };
    for _ in 0..DECIDE_ATTEMPTS {
        let before = app.store.recommendation(id).await?.ok_or(RecommendationError::NotFound)?;
        if before.status == wanted {
            return json(StatusCode::OK, &before);
        }
        let actor = ctx.actor(who);
        let (after, experiment) = if accept {
            let after = before.accept(&actor)?;
            live_tier(app, &after.tier_id).await?;
            let new = NewExperiment::parse(&elasticity::draft_experiment_body(&after))?;
            let exp_id = after.experiment_id.clone().unwrap_or_default();
            (after, Some(new.into_experiment(exp_id, &actor)))
        } else {
            (before.dismiss(&actor)?, None)
        };
        let action = if accept { "recommendation.accept" } else { "recommendation.dismiss" };
        let audit = app.audit(action, &actor, Some(&before), &after);
        match app.store.decide_recommendation(&after, before.version, experiment.as_ref(), &audit).await {
            Ok(()) => return json(StatusCode::OK, &after),
            Err(WriteError::Refused(RecommendationRefusal::Stale)) => continue,
            Err(WriteError::Store(e)) => return Err(e.into()),
        }
    }
    Err(ApiError::new(StatusCode::CONFLICT, "version_conflict", "the recommendation kept changing; try again"))
}

async fn load(app: &Experiments, params: &PathParams) -> Result<Experiment, ApiError> {
    let id = params.get("experimentId");
    if !experiment::is_experiment_id(id) {
        return Err(ExperimentError::NotFound.into());
    }
    app.store.get_experiment(id).await?.ok_or_else(|| ExperimentError::NotFound.into())
}

/// The results as a download: one row per variant (in the experiment's order)
/// with its figures, its comparison with the control (empty on the control's
/// row) and the experiment-wide verdict repeated on every row, so each row reads
/// on its own in a spreadsheet.
fn results_csv(r: &Results) -> String {
    let float = |v: Option<f64>| v.map_or(Cell::Empty, Cell::Float);
    let mut out = CsvWriter::new(&[
        "experimentId",
        "phase",
        "variantId",
        "name",
        "isControl",
        "allocation",
        "participants",
        "signups",
        "conversions",
        "conversionRate",
        "conversionRateLower",
        "conversionRateUpper",
        "revenue",
        "revenueEvents",
        "averageDealSize",
        "revenuePerParticipant",
        "retention30Day",
        "retention90Day",
        "lift",
        "pValue",
        "sequentialPValue",
        "primaryMetric",
        "confidenceLevel",
        "statisticalSignificance",
        "winner",
        "srmMismatch",
    ]);
    let metric = serde_json::to_value(r.primary_metric).ok().and_then(|v| v.as_str().map(str::to_string));
    let int = |v: u64| Cell::Int(i64::try_from(v).unwrap_or(i64::MAX));
    let flag = |b: bool| Cell::from(if b { "true" } else { "false" });
    for v in &r.results {
        let cmp = r.comparisons.iter().find(|c| c.variant_id == v.variant_id);
        out.row(vec![
            r.experiment_id.as_str().into(),
            Cell::Int(i64::from(r.phase)),
            v.variant_id.as_str().into(),
            v.name.as_str().into(),
            flag(v.is_control),
            Cell::Int(i64::from(v.allocation)),
            int(v.participants),
            int(v.signups),
            int(v.conversions),
            Cell::Float(v.conversion_rate),
            Cell::Float(v.confidence_interval.lower),
            Cell::Float(v.confidence_interval.upper),
            Cell::Int(v.revenue),
            int(v.revenue_events),
            Cell::Float(v.average_deal_size),
            Cell::Float(v.revenue_per_participant),
            Cell::Float(v.retention30_day),
            Cell::Float(v.retention90_day),
            float(cmp.and_then(|c| c.lift)),
            float(cmp.and_then(|c| c.p_value)),
            float(cmp.and_then(|c| c.sequential_p_value)),
            metric.clone().into(),
            Cell::Int(i64::from(r.confidence_level)),
            flag(r.statistical_significance),
            flag(r.winner.as_deref() == Some(v.variant_id.as_str())),
            flag(r.srm.mismatch),
        ]);
    }
    out.finish()
}

async fn results_of(app: &Experiments, exp: &Experiment) -> Result<Results, ApiError> {
    let counts = app.store.variant_counts(&exp.experiment_id, exp.phase).await?;
    Ok(experiment::results(exp, &counts))
}

/// The target tier must exist and be live; a missing one names the field.
async fn live_tier(app: &Experiments, tier_id: &str) -> Result<Tier, ApiError> {
    match app.store.get_tier(tier_id).await? {
        Some(t) if t.status == TierStatus::Active => Ok(t),
        _ => Err(ValidationError::single("targetTier", "no active tier has this id").into()),
    }
}

async fn list(app: &Experiments, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    ctx.require(Permission::TierAnalytics)?;
    let status = query(req, "status")
        .map(|s| ExperimentStatus::parse(&Value::String(s)))
        .transpose()
        .map_err(|e| ValidationError::single("status", e))?;
    let page = PageRequest::from_request(req, app.config.default_page_size, app.config.max_page_size)?;
    json(StatusCode::OK, &app.store.list_experiments(status, &page).await?)
}

async fn create(app: &Experiments, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::ExperimentManagement)?;
    let new = NewExperiment::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let actor = ctx.actor(who);
    let id = experiment::new_experiment_id(&app.ids.new_id());
    let Some(campaign_id) = new.campaign_id.clone() else {
        live_tier(app, &new.target_tier).await?;
        let exp = new.into_experiment(id, &actor);
        app.store.create_experiment(&exp, &app.audit("experiment.create", &actor, None, &exp), None).await?;
        return json(StatusCode::CREATED, &exp);
    };
    // A campaign experiment: its variants are the campaign's, and it is recorded
    // on the campaign in the same transaction (one open experiment a campaign).
    let found = match campaign::is_campaign_id(&campaign_id) {
        true => app.store.campaign(&campaign_id).await?,
        false => None,
    };
    let before = found.ok_or_else(|| ValidationError::single("campaignId", "no campaign has this id"))?;
    if let Some(open) = campaigns::open_experiment(app, &before).await? {
        return Err(CampaignError::UnderExperiment(open).into());
    }
    let variants = campaign::experiment_variants(&before)?;
    let exp = NewExperiment { variants, ..new }.into_experiment(id, &actor);
    let after = campaign::attach_experiment(&before, &exp.experiment_id, &actor.id, &actor.at)?;
    let campaign_audit = app.audit("campaign.experiment", &actor, Some(&before), &after);
    let attach = LinkedWrite::Campaign { before_version: before.version, after: &after, audit: &campaign_audit };
    app.store.create_experiment(&exp, &app.audit("experiment.create", &actor, None, &exp), Some(attach)).await?;
    json(StatusCode::CREATED, &exp)
}

/// A campaign experiment's campaign, which must still be running or about to:
/// an ended campaign sends nothing more to measure or roll out to.
async fn campaign_of(app: &Experiments, exp: &Experiment) -> Result<campaign::Campaign, ApiError> {
    let id = exp.campaign_id.as_deref().unwrap_or_default();
    let c = app.store.campaign(id).await?.ok_or_else(|| CampaignError::NotFound(id.to_string()))?;
    if matches!(c.status, campaign::CampaignStatus::Completed | campaign::CampaignStatus::Cancelled) {
        return Err(CampaignError::InvalidTransition { status: c.status.as_str(), action: "experiment" }.into());
    }
    Ok(c)
}

async fn update(app: &Experiments, ctx: &Ctx, req: &Request, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::ExperimentManagement)?;
    let patch = ExperimentPatch::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let before = load(app, params).await?;
    if let Some(tier) = patch.target_tier.as_deref().filter(|t| *t != before.target_tier) {
        if before.experiment_type == ExperimentType::Pricing {
            live_tier(app, tier).await?;
        }
    }
    let actor = ctx.actor(who);
    let after = before.apply(patch, &actor)?;
    let action = if after.phase != before.phase { "experiment.new_phase" } else { "experiment.update" };
    app.store.save_experiment(&before, &after, &app.audit(action, &actor, Some(&before), &after)).await?;
    json(StatusCode::OK, &after)
}

/// Lifecycle steps take no body (an empty JSON object is tolerated).
pub(crate) fn no_body(req: &Request) -> Result<(), ApiError> {
    let empty = match req.body() {
        Body::Empty => true,
        Body::Text(s) => s.trim().is_empty(),
        Body::Binary(b) => b.iter().all(u8::is_ascii_whitespace),
        _ => true,
    };
    if !empty {
        Fields::new(&json_body(req, PUBLIC_BODY_BYTES)?, &[]).finish()?;
    }
    Ok(())
}

async fn workflow(
    app: &Experiments,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
    action: Action,
) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::ExperimentManagement)?;
    no_body(req)?;
    let before = load(app, params).await?;
    let actor = ctx.actor(who);
    let after = before.transition(action, &actor)?;
    if action == Action::Start {
        match after.experiment_type {
            ExperimentType::Pricing => drop(live_tier(app, &after.target_tier).await?),
            ExperimentType::Campaign => drop(campaign_of(app, &after).await?),
        }
    }
    let name = match action {
        Action::Start => "experiment.start",
        Action::Pause => "experiment.pause",
        Action::Complete => "experiment.complete",
        Action::Cancel => "experiment.cancel",
    };
    app.store.save_experiment(&before, &after, &app.audit(name, &actor, Some(&before), &after)).await?;
    json(StatusCode::OK, &after)
}

struct WinnerRequest {
    variant_id: Option<String>,
    force: bool,
    reason: Option<String>,
}

fn winner_request(req: &Request, limit: usize) -> Result<WinnerRequest, ApiError> {
    let empty = match req.body() {
        Body::Empty => true,
        Body::Text(s) => s.trim().is_empty(),
        _ => false,
    };
    if empty {
        return Ok(WinnerRequest { variant_id: None, force: false, reason: None });
    }
    let body = json_body(req, limit)?;
    let mut f = Fields::new(&body, &["variantId", "force", "reason"]);
    let variant_id = f.optional("variantId", parse::slug);
    let force = f.optional("force", parse::boolean).unwrap_or(false);
    let reason = f.optional("reason", |v| parse::text(v, 1, 1_000));
    if force && reason.is_none() {
        f.fail("reason", "is required to force a rollout");
    }
    if !force && reason.is_some() {
        f.fail("reason", "only a forced rollout takes a reason");
    }
    f.finish()?;
    Ok(WinnerRequest { variant_id, force, reason })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RolloutAnswer {
    experiment: Experiment,
    variant_id: String,
    /// The tier after the rollout; absent when the control won (no price change).
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<Tier>,
    /// A campaign experiment's campaign after the rollout: the winner at 100%.
    #[serde(skip_serializing_if = "Option::is_none")]
    campaign: Option<campaign::Campaign>,
    #[serde(skip_serializing_if = "Option::is_none")]
    price_version: Option<u32>,
    statistical_significance: bool,
    p_value: Option<f64>,
}

/// `POST …/implement-winner`: the winning variant's price becomes the tier's new
/// price version; subscribers keep the version their term started at.
async fn implement_winner(
    app: &Experiments,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::ExperimentManagement)?;
    let ask = winner_request(req, app.config.max_body_bytes)?;
    let before = load(app, params).await?;
    let results = results_of(app, &before).await?;
    let chosen = match (&ask.variant_id, &results.winner, ask.force) {
        (Some(asked), Some(winner), false) if asked != winner => return Err(ExperimentError::NoWinner.into()),
        (_, Some(winner), false) => winner.clone(),
        (_, None, false) => return Err(ExperimentError::NoWinner.into()),
        (Some(asked), _, true) => asked.clone(),
        (None, Some(winner), true) => winner.clone(),
        (None, None, true) => {
            return Err(ValidationError::single("variantId", "is required when no winner is significant").into())
        }
    };
    let variant = before
        .variant(&chosen)
        .cloned()
        .ok_or_else(|| ValidationError::single("variantId", "is not a variant of this experiment"))?;
    let actor = ctx.actor(who);
    if before.experiment_type == ExperimentType::Campaign {
        // The winner goes to every recipient: the campaign's variants are
        // reallocated (winner 100, the others 0), in one transaction with the
        // experiment's completion.
        let c = campaign_of(app, &before).await?;
        // Only onto the split this experiment measured: not once a later
        // experiment has taken the campaign, nor once its variants were edited
        // after this one ended.
        let measured = campaign::experiment_variants(&c).ok();
        if c.experiment_id.as_deref() != Some(before.experiment_id.as_str())
            || measured != Some(before.variants.clone())
        {
            return Err(ExperimentError::CampaignChanged.into());
        }
        let reallocated = campaign::roll_out(&c, &chosen, &actor.id, &actor.at)?;
        let rollout = Rollout { price_version: None, campaign_version: Some(reallocated.version) };
        let after = before.implement(&chosen, rollout, ask.force, ask.reason.clone(), &actor)?;
        let audit = app.audit("experiment.implement_winner", &actor, Some(&before), &after);
        let campaign_audit = app.audit("campaign.roll_out", &actor, Some(&c), &reallocated);
        let write = LinkedWrite::Campaign { before_version: c.version, after: &reallocated, audit: &campaign_audit };
        app.store.implement_winner(&before, &after, &audit, Some(write)).await?;
        let answer = RolloutAnswer {
            experiment: after,
            variant_id: chosen,
            tier: None,
            campaign: Some(reallocated),
            price_version: None,
            statistical_significance: results.statistical_significance,
            p_value: results.p_value,
        };
        return json(StatusCode::OK, &answer);
    }
    let tier = app.store.get_tier(&before.target_tier).await?.filter(|t| t.status == TierStatus::Active);
    let tier = tier.ok_or(ExperimentError::TierGone)?;
    let prices = experiment::rollout_prices(&tier, &variant);
    // The winner's feature differences go into the tier with its price.
    let features = experiment::features_over(&tier.features, &variant.features);
    let tier_update = if variant.is_control || (prices == tier.prices && features == tier.features) {
        None
    } else {
        let patch = TierPatch {
            version: tier.version,
            prices: (prices != tier.prices).then_some(prices),
            features: (features != tier.features).then_some(features),
            ..TierPatch::default()
        };
        Some(tier.apply(patch, &actor).map_err(|_| ExperimentError::TierGone)?)
    };
    let price_version = tier_update.as_ref().map(|u| u.after.price_version);
    let rollout = Rollout { price_version, campaign_version: None };
    let after = before.implement(&chosen, rollout, ask.force, ask.reason.clone(), &actor)?;
    let audit = app.audit("experiment.implement_winner", &actor, Some(&before), &after);
    let tier_audit = tier_update.as_ref().map(|u| app.audit("tier.price_change", &actor, Some(&u.before), &u.after));
    let tier_write = tier_update.as_ref().zip(tier_audit.as_ref()).map(|(u, a)| LinkedWrite::Tier(u, a));
    app.store.implement_winner(&before, &after, &audit, tier_write).await?;
    let rollout = RolloutAnswer {
        experiment: after,
        variant_id: chosen,
        campaign: None,
        tier: tier_update.map(|u| u.after),
        price_version,
        statistical_significance: results.statistical_significance,
        p_value: results.p_value,
    };
    json(StatusCode::OK, &rollout)
}

fn user_of(body: &Value) -> Result<String, ApiError> {
    let mut f = Fields::new(body, &["userId"]);
    let user = f.required("userId", experiment::user_id);
    f.finish()?;
    user.ok_or_else(|| ValidationError::single("userId", "is required").into())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AssignAnswer<'a> {
    experiment_id: &'a str,
    user_id: &'a str,
    variant_id: &'a str,
    name: &'a str,
    is_control: bool,
    target_tier: &'a str,
    pricing: experiment::VariantPricing,
    /// The variant's feature differences from the tier (empty: the tier's own).
    features: &'a [tierdesk::domain::tier::Feature],
    #[serde(skip_serializing_if = "Option::is_none")]
    messaging: Option<&'a experiment::Messaging>,
    phase: u32,
    /// True on first exposure (the participant was counted now).
    new: bool,
}

/// Assigns (or re-reads) a participant of `exp`.
async fn assign_user(app: &Experiments, exp: &Experiment, user: &str) -> Result<tierdesk::store::Assignment, ApiError> {
    Ok(experiment_tracking::assign_visitor(&app.store, app.clock.as_ref(), exp, user).await?)
}

/// `POST /api/experiments/{id}/assign` (public): the participant's variant; the
/// first call records the exposure. One BatchGetItem reads the experiment and the
/// participant together: a returning visitor (the common case, every page view)
/// costs that read alone; a new one adds one transaction, which also hands back
/// the assignment a concurrent first call wrote.
async fn assign(app: &Experiments, req: &Request, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let user = user_of(&json_body(req, PUBLIC_BODY_BYTES)?)?;
    let id = params.get("experimentId");
    if !experiment::is_experiment_id(id) {
        return Err(ExperimentError::NotFound.into());
    }
    let (exp, known) = app.store.experiment_and_participant(id, &user).await?;
    let exp = exp.ok_or(ExperimentError::NotFound)?;
    // A campaign experiment is measured by its campaign's sends: to a visitor it
    // does not exist.
    if exp.experiment_type != ExperimentType::Pricing {
        return Err(ExperimentError::NotFound.into());
    }
    if exp.status != ExperimentStatus::Active {
        return Err(ExperimentError::NotRunning { status: exp.status.as_str() }.into());
    }
    let assignment = match known.filter(|p| p.phase == exp.phase) {
        Some(participant) => tierdesk::store::Assignment { participant, new: false },
        None => assign_user(app, &exp, &user).await?,
    };
    let p = &assignment.participant;
    let variant = exp
        .variant(&p.variant_id)
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error"))?;
    let answer = AssignAnswer {
        experiment_id: &exp.experiment_id,
        user_id: &user,
        variant_id: &variant.variant_id,
        name: &variant.name,
        is_control: variant.is_control,
        target_tier: &exp.target_tier,
        pricing: variant.pricing,
        features: &variant.features,
        messaging: variant.messaging.as_ref(),
        phase: exp.phase,
        new: assignment.new,
    };
    json(StatusCode::OK, &answer)
}

/// `POST /api/experiments/{id}/track` (public): one metric event of a
/// participant, counted once per (user, metric, event id). A participant never
/// assigned is assigned first (its first exposure). Tracking continues while the
/// experiment is paused: the events belong to exposures already made.
async fn track(app: &Experiments, req: &Request, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let ask = Track::parse(&json_body(req, PUBLIC_BODY_BYTES)?)?;
    let id = params.get("experimentId");
    if !experiment::is_experiment_id(id) {
        return Err(ExperimentError::NotFound.into());
    }
    let (counted, variant_id) =
        match experiment_tracking::track(&app.store, app.clock.as_ref(), id, &ask, Reporter::Visitor).await? {
            Tracked::Counted { variant_id } => (true, variant_id),
            Tracked::Duplicate { variant_id } => (false, variant_id),
            // Only the campaign step's reports can meet a non-participant.
            Tracked::NotParticipant => return Err(ExperimentError::NotFound.into()),
        };
    json(
        StatusCode::OK,
        &json!({"counted": counted, "duplicate": !counted, "variantId": variant_id, "metric": ask.metric}),
    )
}
