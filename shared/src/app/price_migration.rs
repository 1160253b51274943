//! Moving a tier's subscribers from the price version they signed at
//! (grandfathering) to the tier's current version: the admin route
//! (`POST /api/admin/tiers/{tierId}/price-migrations`) and the daily cron's
//! scheduled step both run this, so a partner moves the same way either way.
//!
//! - Candidates: partners on the tier (GSI1 `TIERMEMBERS#{tier}`, never a Scan) on a
//!   running Stripe subscription, not cancelled, without a downgrade waiting, on an
//!   older version (or on `from` when given): `domain::billing::migration_candidate`.
//! - One move: the subscription item goes to the current version's Stripe price with
//!   no proration (the new price is charged from the next invoice on), then the
//!   partner's price, version and MRR are written through the transition mechanism
//!   (a renewal event, its MRR movement and tier statistics, audited, conditional on
//!   the partner's version). The Stripe call's idempotency key names the partner and
//!   the version, so a retry after a failure between the two steps finishes the move
//!   once, and a partner already moved is no longer a candidate.

use super::{App, Meaning};
use crate::domain::billing::{migration_candidate, sync_subscription, BillingError, MigrationCandidate, PriceSpec};
use crate::domain::partner::Partner;
use crate::domain::subscription::{Catalog, SubscriptionError, Trigger};
use crate::domain::tier::Tier;
use crate::store::{
    BillingWrite, BillingWriteError, InvoiceStore, ListError, Page, PageRequest, PartnerList, PartnerStore, Store,
    StoreError, TierStore,
};
use crate::stripe_adapter::{Proration, StripeGateway};

/// Write attempts when the partner changes between the read and the write.
const WRITE_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(transparent)]
    Billing(#[from] BillingError),
    #[error(transparent)]
    Subscription(#[from] SubscriptionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    List(#[from] ListError),
}

/// Every candidate on the tier, a page of the tier's members at a time, by partner id.
pub async fn candidates(
    store: &Store,
    tier: &Tier,
    from: Option<u32>,
    page_size: u32,
) -> Result<Vec<MigrationCandidate>, ListError> {
    let query = Store::partner_list_query(&PartnerList::Tier(tier.tier_id.clone()));
    let mut page = PageRequest { limit: page_size.max(1), cursor: None };
    let mut out = Vec::new();
    loop {
        let found: Page<Partner> = store.query_page(&query, &page).await?;
        out.extend(found.items.iter().filter_map(|p| migration_candidate(p, tier, from)));
        match found.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    out.sort_by(|a, b| a.partner_id.cmp(&b.partner_id));
    Ok(out)
}

/// Moves one candidate to the tier's current price version; `actor` and `trigger`
/// name who moved it and why in the transition and the audit entry. `None`: the
/// partner was already there (moved meanwhile by another run or the admin route).
pub async fn migrate_one(
    app: &App,
    stripe: &StripeGateway,
    actor: &str,
    request_id: &str,
    trigger: Trigger,
    tier: &Tier,
    candidate: &MigrationCandidate,
) -> Result<Option<Partner>, MigrationError> {
    let price = stripe.price_for(&PriceSpec::current(tier, candidate.billing_period)).await?;
    let mut partner = app.store.get_partner(&candidate.partner_id).await?.ok_or(SubscriptionError::NotFound)?;
    let subscription_id = partner.stripe_subscription_id.clone().ok_or(SubscriptionError::NotFound)?;
    let current = stripe.subscription(&subscription_id).await?;
    let updated = if current.price.as_ref().is_some_and(|p| p.price_id == price.price_id) {
        current
    } else {
        let key = format!("migrate-{}-{}-v{}", partner.partner_id, tier.tier_id, tier.price_version);
        match stripe.change_price(&current, &price, Proration::NextInvoice, &key).await {
            Ok((updated, _)) => updated,
            // A concurrent move of the same partner (another cron run, the admin route)
            // made the change first: its request held this key, and the metadata map's
            // order differs between processes, so Stripe refuses the replay. Its result
            // is what this one wanted.
            Err(e) => match stripe.subscription(&subscription_id).await? {
                now if now.price.as_ref().is_some_and(|p| p.price_id == price.price_id) => now,
                _ => return Err(e.into()),
            },
        }
    };
    for _ in 0..WRITE_ATTEMPTS {
        let by = app.acting(actor, request_id);
        let tctx = app.transition_context(&by, trigger.clone());
        let catalog = app.store.active_catalog().await?;
        let change = sync_subscription(&partner, &updated, Catalog::new(&catalog), &tctx)?;
        let Some(after) = change.after().cloned() else { return Ok(None) };
        let audit = app.audit("partner.price_migration", &tctx.by(), Some(&partner), &after);
        let write = BillingWrite { change: Some(&change), audit: Some(&audit), ..Default::default() };
        match app.store.apply_billing(&write).await {
            Ok(()) => return Ok(Some(after)),
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

/// The reason a migration's transition records.
pub fn reason(tier: &Tier, candidate: &MigrationCandidate) -> String {
    format!(
        "price migration of {} from version {} to {}",
        tier.tier_id,
        candidate.from_version.map_or_else(|| "none".to_string(), |v| v.to_string()),
        tier.price_version
    )
}
