//! Pricing rules and constraints (docs/pricing-rules.md): admin writes, each
//! checked against the live catalog's constraints before it is stored.

use crate::{Op, Tiers};
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use std::collections::BTreeSet;
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::pricing_rules::impact::{self, PriceImpact, Subscribers};
use tierdesk::domain::pricing_rules::{
    CompetitorPrice, ConstraintInput, ConstraintScope, ListPrices, NewRule, PricingConfig, PricingRule,
    PricingRuleError, RulePatch, MAX_RULES,
};
use tierdesk::domain::tier::Tier;
use tierdesk::domain::validation::{parse, Fields, ValidationError};
use tierdesk::http::request::{json_body, query};
use tierdesk::http::{json, Ctx, PathParams};
use tierdesk::store::{AnalyticsStore, PricingStore, SegmentStore, TierStore};
use tierdesk::ApiError;

/// The pricing configuration and the live catalog a write is judged against
/// (two Queries).
async fn judged(app: &Tiers) -> Result<(PricingConfig, Vec<Tier>), ApiError> {
    Ok((app.store.pricing_config().await?, app.store.active_catalog().await?))
}

fn prices(catalog: &[Tier]) -> Vec<ListPrices<'_>> {
    catalog.iter().map(Tier::list_prices).collect()
}

/// The tiers and segments a rule's condition names must exist: a rule for a
/// misspelt tier would never apply and nobody would notice.
async fn check_targets(app: &Tiers, rule: &PricingRule, catalog: &[Tier]) -> Result<(), ApiError> {
    let mut fields = std::collections::BTreeMap::new();
    let unknown: Vec<&String> =
        rule.condition.tiers.iter().filter(|id| !catalog.iter().any(|t| &t.tier_id == *id)).collect();
    if !unknown.is_empty() {
        fields.insert("condition.tiers".to_string(), format!("no live tier {unknown:?}"));
    }
    if !rule.condition.segments.is_empty() {
        let mut known: BTreeSet<String> = catalog.iter().map(|t| t.segment.clone()).collect();
        known.extend(app.store.list_segments().await?.into_iter().map(|s| s.segment_id));
        let unknown: Vec<&String> = rule.condition.segments.iter().filter(|s| !known.contains(*s)).collect();
        if !unknown.is_empty() {
            fields.insert("condition.segments".to_string(), format!("no segment {unknown:?}"));
        }
    }
    if fields.is_empty() {
        Ok(())
    } else {
        Err(ValidationError { fields }.into())
    }
}

fn rule_id(params: &PathParams) -> Result<&str, ApiError> {
    let id = params.get("ruleId");
    if parse::is_slug(id) {
        Ok(id)
    } else {
        Err(PricingRuleError::NotFound.into())
    }
}

pub(crate) async fn change_rule(
    app: &Tiers,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
    op: Op,
) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::PricingManagement)?;
    let by = ctx.actor(who);
    let (status, shown) = match op {
        Op::CreatePricingRule => {
            let new = NewRule::parse(&json_body(req, app.config.max_body_bytes)?)?;
            let rule = new.into_rule(&by)?;
            let (config, catalog) = judged(app).await?;
            if config.rules.len() >= MAX_RULES {
                return Err(PricingRuleError::TooMany.into());
            }
            check_targets(app, &rule, &catalog).await?;
            config.check_rule(&rule, &prices(&catalog))?;
            app.store.create_rule(&rule, &app.audit("pricing_rule.create", &by, None, &rule)).await?;
            (StatusCode::CREATED, Some(rule))
        }
        Op::UpdatePricingRule => {
            let patch = RulePatch::parse(&json_body(req, app.config.max_body_bytes)?)?;
            let id = rule_id(params)?;
            let (config, catalog) = judged(app).await?;
            let before = config.rules.iter().find(|r| r.rule_id == id).ok_or(PricingRuleError::NotFound)?;
            let after = before.apply(patch, &by)?;
            check_targets(app, &after, &catalog).await?;
            let mut others = config.clone();
            others.rules.retain(|r| r.rule_id != id);
            others.check_rule(&after, &prices(&catalog))?;
            app.store.save_rule(before, &after, &app.audit("pricing_rule.update", &by, Some(before), &after)).await?;
            (StatusCode::OK, Some(after))
        }
        _ => {
            let id = rule_id(params)?;
            let expected = query(req, "version")
                .map(|v| v.parse::<u64>().map_err(|_| ValidationError::single("version", "must be an integer")))
                .transpose()?;
            let config = app.store.pricing_config().await?;
            let rule = config.rules.iter().find(|r| r.rule_id == id).ok_or(PricingRuleError::NotFound)?;
            if expected.is_some_and(|v| v != rule.version) {
                return Err(PricingRuleError::VersionConflict { current: Some(rule.version) }.into());
            }
            let audit = app.audit("pricing_rule.delete", &by, Some(rule), rule);
            app.store.delete_rule(rule, &audit).await?;
            (StatusCode::NO_CONTENT, None)
        }
    };
    app.public_cache.clear();
    match shown {
        Some(rule) => json(status, &rule),
        None => Ok(Response::builder().status(status).body(Body::Empty).unwrap_or_default()),
    }
}

/// The impact of giving `tier` the list prices `proposed` (seed 004's preview)
/// under `config`: reads the tier's live statistics (one item).
pub(crate) async fn impact_of(
    app: &Tiers,
    config: &PricingConfig,
    tier: &Tier,
    proposed: &ListPrices<'_>,
) -> Result<PriceImpact, ApiError> {
    let live = app
        .store
        .tier_aggregates(std::slice::from_ref(&tier.tier_id), &[], false)
        .await?
        .into_iter()
        .next()
        .map(|a| a.current.live)
        .unwrap_or_default();
    let subscribers = Subscribers { monthly: live.monthly_count, yearly: live.yearly_count, mrr: live.mrr };
    Ok(impact::impact(config, &tier.list_prices(), proposed, subscribers, app.clock.now().date_naive())?)
}

/// `POST /api/admin/tiers/{tierId}/price-impact`: the dry run of a list-price
/// change. Nothing is written.
pub(crate) async fn preview(app: &Tiers, ctx: &Ctx, req: &Request, tier: Tier) -> Result<Response<Body>, ApiError> {
    ctx.require(Permission::PricingManagement)?;
    let body = json_body(req, app.config.max_body_bytes)?;
    let mut f = Fields::new(&body, &["prices"]);
    if !f.has("prices") {
        f.fail("prices", "is required");
    }
    let prices = f.object("prices", &["monthly", "yearly"], |p| {
        let (m, y) = (p.required("monthly", parse::cents), p.required("yearly", parse::cents));
        Some((m?, y?))
    });
    f.finish()?;
    let (monthly, yearly) = prices.ok_or_else(|| ValidationError::single("prices", "is required"))?;
    let proposed = ListPrices { monthly, yearly, ..tier.list_prices() };
    let config = app.store.pricing_config().await?;
    json(StatusCode::OK, &impact_of(app, &config, &tier, &proposed).await?)
}

/// A competitor's price point for one of our tiers (seed 004 competitive
/// thresholds): set or removed, audited. Recording a fact is never refused; the
/// threshold judges our price changes and rules against it.
pub(crate) async fn competitor_price(
    app: &Tiers,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
    op: Op,
) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::PricingManagement)?;
    let (competitor, tier_id) = (params.get("competitorId"), params.get("tierId"));
    if !parse::is_slug(competitor) || !parse::is_slug(tier_id) || app.store.get_tier(tier_id).await?.is_none() {
        return Err(ApiError::not_found("tier"));
    }
    let by = ctx.actor(who);
    if op == Op::DeleteCompetitorPrice {
        let config = app.store.pricing_config().await?;
        let point = config
            .competitors
            .iter()
            .find(|c| c.competitor_id == competitor && c.tier_id == tier_id)
            .ok_or_else(|| ApiError::not_found("competitor price"))?;
        let audit = app.audit("competitor_price.delete", &by, Some(point), point);
        if !app.store.delete_competitor_price(point, &audit).await? {
            return Err(ApiError::not_found("competitor price"));
        }
        app.public_cache.clear();
        return Ok(Response::builder().status(StatusCode::NO_CONTENT).body(Body::Empty).unwrap_or_default());
    }
    let point = CompetitorPrice::parse(competitor, tier_id, &json_body(req, app.config.max_body_bytes)?, &by)?;
    app.store.put_competitor_price(&point, &app.audit("competitor_price.set", &by, None, &point)).await?;
    app.public_cache.clear();
    json(StatusCode::OK, &point)
}

pub(crate) async fn put_constraints(
    app: &Tiers,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::PricingManagement)?;
    let input = ConstraintInput::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let scope = ConstraintScope::parse(params.get("scope")).ok_or_else(|| ApiError::not_found("constraint scope"))?;
    let scope_id = params.get("scopeId");
    let (config, catalog) = judged(app).await?;
    let exists = match scope {
        ConstraintScope::Tier => app.store.get_tier(scope_id).await?.is_some(),
        ConstraintScope::Segment => {
            catalog.iter().any(|t| t.segment == scope_id) || app.store.get_segment(scope_id).await?.is_some()
        }
    };
    if !parse::is_slug(scope_id) || !exists {
        return Err(ApiError::not_found(scope.as_str()));
    }
    let before = config.constraints.iter().find(|c| c.scope == scope && c.scope_id == scope_id);
    let read = before.map_or(0, |b| b.version);
    if input.version != read {
        return Err(PricingRuleError::VersionConflict { current: Some(read) }.into());
    }
    let by = ctx.actor(who);
    let record = input.into_record(scope, scope_id, &by);
    config.check_constraints(&record, &prices(&catalog))?;
    app.store.put_constraints(&record, &app.audit("pricing_constraints.set", &by, before, &record)).await?;
    app.public_cache.clear();
    json(StatusCode::OK, &record)
}
