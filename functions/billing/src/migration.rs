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
//! - Real run: for up to `BATCH` candidates per call, the subscription item is
//!   moved to the current version's Stripe price with no proration (the new
//!   price is charged from the next invoice on), then the partner's price,
//!   version and MRR are written through the transition mechanism (a renewal
//!   event, its MRR movement and tier statistics, audited, conditional on the
//!   partner's version). `remaining` says how many are left: call again. A
//!   partner already moved is no longer a candidate, and the Stripe call's
//!   idempotency key names the partner and the version, so a retry after a
//!   failure between the two steps finishes the move once.

use super::{view, Billing, SubscriptionView, WRITE_ATTEMPTS};
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use tierdesk::app::Meaning;
use tierdesk::domain::billing::{
    migration_candidate, sync_subscription, MigrationCandidate, PriceMigrationRequest, PriceSpec,
};
use tierdesk::domain::partner::Partner;
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::subscription::{is_paid, Catalog, SubscriptionError, Trigger, TriggerType};
use tierdesk::domain::tier::{Tier, TierError, TierStatus};
use tierdesk::domain::validation::ValidationError;
use tierdesk::http::request::json_body;
use tierdesk::http::{json, Ctx, PageRequest};
use tierdesk::store::{BillingWrite, BillingWriteError, InvoiceStore, PartnerList, PartnerStore, Store, TierStore};
use tierdesk::stripe_adapter::Proration;
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
    let candidates = candidates(app, &tier, request.from_version).await?;
    let mut moved = Vec::new();
    let mut failed = Vec::new();
    if !request.dry_run {
        for candidate in candidates.iter().take(BATCH) {
            match migrate_one(app, ctx, &who.subject, &tier, candidate).await {
                Ok(after) => moved.push(after),
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

/// Every candidate on the tier, through GSI1 `TIERMEMBERS#{tier}` a page at a time.
async fn candidates(app: &Billing, tier: &Tier, from: Option<u32>) -> Result<Vec<MigrationCandidate>, ApiError> {
    let query = Store::partner_list_query(&PartnerList::Tier(tier.tier_id.clone()));
    let mut page = PageRequest { limit: app.config.max_page_size.max(1), cursor: None };
    let mut out = Vec::new();
    loop {
        let found: tierdesk::store::Page<Partner> = app.store.query_page(&query, &page).await?;
        out.extend(found.items.iter().filter_map(|p| migration_candidate(p, tier, from)));
        match found.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    out.sort_by(|a, b| a.partner_id.cmp(&b.partner_id));
    Ok(out)
}

async fn migrate_one(
    app: &Billing,
    ctx: &Ctx,
    actor: &str,
    tier: &Tier,
    candidate: &MigrationCandidate,
) -> Result<Partner, ApiError> {
    let price = app.stripe.price_for(&PriceSpec::current(tier, candidate.billing_period)).await?;
    let mut partner = app.store.get_partner(&candidate.partner_id).await?.ok_or(SubscriptionError::NotFound)?;
    let subscription_id = partner.stripe_subscription_id.clone().ok_or(SubscriptionError::NotFound)?;
    let current = app.stripe.subscription(&subscription_id).await?;
    let updated = if current.price.as_ref().is_some_and(|p| p.price_id == price.price_id) {
        current
    } else {
        let key = format!("migrate-{}-{}-v{}", partner.partner_id, tier.tier_id, tier.price_version);
        app.stripe.change_price(&current, &price, Proration::NextInvoice, &key).await?.0
    };
    for _ in 0..WRITE_ATTEMPTS {
        let reason = format!(
            "price migration of {} from version {} to {}",
            tier.tier_id,
            candidate.from_version.map_or_else(|| "none".to_string(), |v| v.to_string()),
            tier.price_version
        );
        let by = app.acting(actor, &ctx.request_id);
        let tctx = app.transition_context(&by, Trigger::new(TriggerType::SalesAssisted, Some(reason)));
        let catalog = app.store.active_catalog().await?;
        let change = sync_subscription(&partner, &updated, Catalog::new(&catalog), &tctx)?;
        let Some(after) = change.after().cloned() else { return Ok(partner) };
        let audit = app.audit("partner.price_migration", &tctx.by(), Some(&partner), &after);
        let write = BillingWrite { change: Some(&change), audit: Some(&audit), ..Default::default() };
        match app.store.apply_billing(&write).await {
            Ok(()) => return Ok(after),
            Err(BillingWriteError::Stale) => {
                partner = app.store.get_partner(&candidate.partner_id).await?.ok_or(SubscriptionError::NotFound)?
            }
            Err(BillingWriteError::Partner(refusal)) => return Err(refusal.meaning().into()),
            Err(BillingWriteError::Store(e)) => return Err(e.into()),
            Err(BillingWriteError::ClaimLost) => break,
        }
    }
    Err(SubscriptionError::VersionConflict { current: None }.into())
}
