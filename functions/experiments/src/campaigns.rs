//! Campaign automation's staff routes (docs/campaigns.md): campaigns as data,
//! edited while draft or paused, launched, paused, resumed, completed or
//! cancelled (each audited and conditional on the version read), and their
//! insights. The sending is the daily job's.

use crate::{no_body, Experiments};
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use tierdesk::domain::campaign::{self, apply_action, CampaignError, CampaignInput, CampaignInsights, LifecycleAction};
use tierdesk::domain::experiment::ExperimentStatus;
use tierdesk::domain::permissions::Permission;
use tierdesk::http::request::json_body;
use tierdesk::http::{json, Ctx, PathParams};
use tierdesk::store::{CampaignStore, ExperimentStore, PromotionStore, WriteError};
use tierdesk::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignOp {
    List,
    Create,
    Get,
    Update,
    Lifecycle(LifecycleAction),
    Insights,
}

fn stale(current: Option<u64>) -> ApiError {
    let e = ApiError::new(StatusCode::CONFLICT, "version_conflict", "the campaign changed since it was read");
    match current {
        Some(v) => e.with_details(json!({ "currentVersion": v })),
        None => e,
    }
}

async fn load(app: &Experiments, params: &PathParams) -> Result<campaign::Campaign, ApiError> {
    let id = params.get("campaignId");
    if !campaign::is_campaign_id(id) {
        return Err(CampaignError::NotFound(id.to_string()).into());
    }
    Ok(app.store.campaign(id).await?.ok_or_else(|| CampaignError::NotFound(id.to_string()))?)
}

/// The campaign experiment measuring `c`'s variants, if one is not ended yet
/// (draft, active or paused): its id.
pub(crate) async fn open_experiment(app: &Experiments, c: &campaign::Campaign) -> Result<Option<String>, ApiError> {
    let Some(id) = &c.experiment_id else { return Ok(None) };
    let open = app.store.get_experiment(id).await?.is_some_and(|e| {
        matches!(e.status, ExperimentStatus::Draft | ExperimentStatus::Active | ExperimentStatus::Paused)
    });
    Ok(open.then(|| id.clone()))
}

/// A campaign's offer must be a promotion that can give single-use personal codes.
async fn check_offer(
    app: &Experiments,
    c: &campaign::Campaign,
    by: &tierdesk::domain::actor::Actor,
) -> Result<(), ApiError> {
    let today = by.today;
    if let Some(offer) = &c.offer {
        let usable =
            app.store.get_promotion(&offer.promotion_id).await?.is_some_and(|p| campaign::usable_offer(&p, today));
        if !usable {
            return Err(CampaignError::OfferNotUsable(offer.promotion_id.clone()).into());
        }
    }
    Ok(())
}

pub(crate) async fn route(
    app: &Experiments,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
    op: CampaignOp,
) -> Result<Response<Body>, ApiError> {
    match op {
        CampaignOp::List => {
            ctx.require(Permission::TierAnalytics)?;
            json(StatusCode::OK, &json!({ "campaigns": app.store.campaigns().await? }))
        }
        CampaignOp::Get => {
            ctx.require(Permission::TierAnalytics)?;
            json(StatusCode::OK, &load(app, params).await?)
        }
        CampaignOp::Create => {
            let who = ctx.require(Permission::PromotionManagement)?;
            let input = CampaignInput::parse(&json_body(req, app.config.max_body_bytes)?)?;
            if input.version.is_some() {
                return Err(tierdesk::domain::validation::ValidationError::single(
                    "version",
                    "is only for an edit (PUT)",
                )
                .into());
            }
            let by = ctx.actor(who);
            let id = campaign::new_campaign_id(&app.ids.new_id());
            let c = input.into_campaign(&id, None, &by.id, &by.at)?;
            let audit = app.audit("campaign.create", &by, None, &c);
            app.store.put_campaign(&c, None, &audit).await.map_err(|e| match e {
                WriteError::Refused(_) => stale(None),
                WriteError::Store(e) => e.into(),
            })?;
            json(StatusCode::CREATED, &c)
        }
        CampaignOp::Update => {
            let who = ctx.require(Permission::PromotionManagement)?;
            let input = CampaignInput::parse(&json_body(req, app.config.max_body_bytes)?)?;
            let before = load(app, params).await?;
            let by = ctx.actor(who);
            let after = input.into_campaign(&before.campaign_id, Some(&before), &by.id, &by.at)?;
            // Changing who gets what mid-test would break the experiment's
            // comparison (an experiment ended since this read unlocks them).
            if campaign::variants_change(&before, &after) {
                if let Some(open) = open_experiment(app, &before).await? {
                    return Err(CampaignError::UnderExperiment(open).into());
                }
            }
            if after.status == campaign::CampaignStatus::Paused {
                check_offer(app, &after, &by).await?;
            }
            let audit = app.audit("campaign.update", &by, Some(&before), &after);
            app.store.put_campaign(&after, Some(before.version), &audit).await.map_err(|e| match e {
                WriteError::Refused(_) => stale(Some(before.version)),
                WriteError::Store(e) => e.into(),
            })?;
            json(StatusCode::OK, &after)
        }
        CampaignOp::Lifecycle(action) => {
            let who = ctx.require(Permission::PromotionManagement)?;
            no_body(req)?;
            let before = load(app, params).await?;
            let by = ctx.actor(who);
            // Idempotent: a repeat of the move already made answers as the first.
            let already = matches!(
                (action, before.status),
                (LifecycleAction::Launch | LifecycleAction::Resume, campaign::CampaignStatus::Active)
                    | (LifecycleAction::Pause, campaign::CampaignStatus::Paused)
                    | (LifecycleAction::Complete, campaign::CampaignStatus::Completed)
                    | (LifecycleAction::Cancel, campaign::CampaignStatus::Cancelled)
            );
            if already {
                return json(StatusCode::OK, &before);
            }
            let after = apply_action(&before, action, &by.id, &by.at)?;
            if matches!(action, LifecycleAction::Launch | LifecycleAction::Resume) {
                check_offer(app, &after, &by).await?;
            }
            let name = match action {
                LifecycleAction::Launch => "campaign.launch",
                LifecycleAction::Pause => "campaign.pause",
                LifecycleAction::Resume => "campaign.resume",
                LifecycleAction::Complete => "campaign.complete",
                LifecycleAction::Cancel => "campaign.cancel",
            };
            let audit = app.audit(name, &by, Some(&before), &after);
            app.store.put_campaign(&after, Some(before.version), &audit).await.map_err(|e| match e {
                WriteError::Refused(_) => stale(Some(before.version)),
                WriteError::Store(e) => e.into(),
            })?;
            json(StatusCode::OK, &after)
        }
        CampaignOp::Insights => {
            ctx.require(Permission::ViewRevenueMetrics)?;
            let c = load(app, params).await?;
            let (totals, skipped, mut variants) = app.store.campaign_counts(&c.campaign_id).await?;
            // Every variant, in the campaign's order, including those not sent yet.
            variants = c
                .content
                .variants
                .iter()
                .map(|v| {
                    variants
                        .iter()
                        .find(|x| x.variant_id == v.variant_id)
                        .cloned()
                        .unwrap_or_else(|| campaign::VariantInsight::new(&v.variant_id, 0, 0, 0))
                })
                .collect();
            campaign::compare_variants(&mut variants);
            let insights = CampaignInsights {
                campaign_id: c.campaign_id.clone(),
                conversion_rate_bp: campaign::rate_bp(totals.conversions, totals.sent),
                totals,
                variants,
                skipped,
                opens: None,
                attribution_window_days: c.attribution_window_days,
            };
            json(StatusCode::OK, &insights)
        }
    }
}
