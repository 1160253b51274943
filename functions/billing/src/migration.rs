//! `POST /api/admin/tiers/{tierId}/price-migrations`: moves a tier's subscribers
//! from the price version they signed at (grandfathering) to the tier's current
//! version, explicitly and auditably.
//!
//! - Who: `tier_management` at manager level plus `pricing_management` (as for
//!   a tier price edit): sales managers and admins.
//! - Candidates: partners on the tier (GSI1 `TIERMEMBERS#{tier}`, never a Scan)
//!   on a running Stripe subscription, not cancelled, without a downgrade
//!   waiting, on an older version (or on `fromVersion` when given).
//! - Dry run: the count, the MRR change in cents and the first
//!   `LISTED` candidates; nothing changes.
//! - Real run: up to `BATCH` candidates per call, each moved by
//!   `tierdesk::app::price_migration` (as the daily cron moves partners whose
//!   grandfathering has ended). `remaining` says how many are left: call again.

use super::{view, Billing, SubscriptionView};
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use tierdesk::app::price_migration::{self, MigrationError};
use tierdesk::domain::billing::{MigrationCandidate, PriceMigrationRequest};
use tierdesk::domain::partner::Partner;
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::subscription::{is_paid, Trigger, TriggerType};
use tierdesk::domain::tier::{Tier, TierError, TierStatus};
use tierdesk::domain::validation::ValidationError;
use tierdesk::http::request::json_body;
use tierdesk::http::{json, Ctx};
use tierdesk::store::TierStore;
use tierdesk::ApiError;

/// Candidates listed in an answer (the count and MRR change cover all).
pub const LISTED: usize = 100;
/// Partners moved per call of a real run (each is two Stripe calls and a write).
pub const BATCH: usize = 10;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MigrationAnswer<'a> {
    tier_id: &'a str,
    to_version: u32,
    from_version: Option<u32>,
    dry_run: bool,
    /// Candidates before this call.
    affected: usize,
    /// Sum over the candidates of (MRR at the current version − MRR now), cents.
    mrr_change: i64,
    partners: &'a [MigrationCandidate],
    truncated: bool,
    migrated: Vec<SubscriptionView<'a>>,
    failed: Vec<Failure>,
    /// Candidates left for the next call (0 on a dry run means none were moved).
    remaining: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Failure {
    partner_id: String,
    code: String,
}

pub async fn run(app: &Billing, ctx: &Ctx, req: &Request, tier_id: &str) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::TierManage)?;
    who.require(Permission::PricingManagement)?;
    let request = PriceMigrationRequest::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let tier = app.store.get_tier(tier_id).await?.ok_or(TierError::NotFound)?;
    if tier.status != TierStatus::Active || !is_paid(&tier) {
        return Err(ValidationError::single("tierId", "only an active paid tier has subscribers to migrate").into());
    }
    if request.from_version.is_some_and(|v| v >= tier.price_version) {
        return Err(
            ValidationError::single("fromVersion", "must be older than the tier's current price version").into()
        );
    }
    let candidates =
        price_migration::candidates(&app.store, &tier, request.from_version, app.config.max_page_size).await?;
    let mut moved = Vec::new();
    let mut failed = Vec::new();
    if !request.dry_run {
        for candidate in candidates.iter().take(BATCH) {
            match migrate_one(app, ctx, &who.subject, &tier, candidate).await {
                Ok(Some(after)) => moved.push(after),
                Ok(None) => {}
                Err(e) => failed.push(Failure { partner_id: candidate.partner_id.clone(), code: e.code.into() }),
            }
        }
    }
    let mrr_change = candidates.iter().map(|c| c.mrr_after - c.mrr_before).sum();
    let listed = &candidates[..candidates.len().min(LISTED)];
    let answer = MigrationAnswer {
        tier_id: &tier.tier_id,
        to_version: tier.price_version,
        from_version: request.from_version,
        dry_run: request.dry_run,
        affected: candidates.len(),
        mrr_change,
        partners: listed,
        truncated: candidates.len() > listed.len(),
        migrated: moved.iter().map(view).collect(),
        failed,
        remaining: candidates.len() - moved.len(),
    };
    json(StatusCode::OK, &answer)
}

/// The admin route's move of one candidate, answered in the API's words.
async fn migrate_one(
    app: &Billing,
    ctx: &Ctx,
    actor: &str,
    tier: &Tier,
    candidate: &MigrationCandidate,
) -> Result<Option<Partner>, ApiError> {
    let trigger = Trigger::new(TriggerType::SalesAssisted, Some(price_migration::reason(tier, candidate)));
    price_migration::migrate_one(app, &app.stripe, actor, &ctx.request_id, trigger, tier, candidate)
        .await
        .map_err(api_error)
}

pub(crate) fn api_error(e: MigrationError) -> ApiError {
    match e {
        MigrationError::Billing(e) => e.into(),
        MigrationError::Subscription(e) => e.into(),
        MigrationError::Store(e) => e.into(),
        MigrationError::List(e) => e.into(),
    }
}
