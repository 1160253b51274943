//! Seed 004 grandfathering, on schedule: a list-price change under a
//! `grandfatherMonths` constraint records the day the tier's older price versions
//! end (`Tier::grandfathered_until`). From that day's run, for a week, this step
//! moves every subscriber still on an older version to the current one, the same
//! move the admin's price-migration route makes (`app::price_migration`): the
//! Stripe item changes with no proration, so the new price is charged from the next
//! invoice on.
//!
//! Repeatable for a date: a partner already moved is no longer a candidate, and the
//! Stripe call's idempotency key names the partner and the version. The week bounds
//! the cost (one Query of the tier's members a day, only on those days); a partner
//! who could not be moved in it (a failure each day) is left for the admin route, and
//! each failure is logged and counted as the step's failure.

use crate::{DailyStep, RunDate, StepFuture};
use tierdesk::app::price_migration;
use tierdesk::app::App;
use tierdesk::domain::billing::migration_candidate;
use tierdesk::domain::subscription::{is_paid, Trigger, TriggerType};
use tierdesk::domain::tier::Tier;
use tierdesk::store::{PartnerStore, Store, TierStore};
use tierdesk::stripe_adapter::StripeGateway;

/// Days after `grandfathered_until` on which a run still looks for partners to move.
pub const WINDOW_DAYS: i64 = 7;
/// Partners read per Query page of a tier's members.
const PAGE: u32 = 100;

pub struct MigrateGrandfathered {
    pub app: App,
    pub stripe: StripeGateway,
}

impl DailyStep for MigrateGrandfathered {
    fn name(&self) -> &'static str {
        "grandfathered_price_migrations"
    }

    fn run<'a>(&'a self, store: &'a Store, run: &'a RunDate) -> StepFuture<'a> {
        Box::pin(async move {
            let catalog = store.active_catalog().await.map_err(|e| e.to_string())?;
            let due = catalog.iter().filter(|t| {
                is_paid(t)
                    && t.grandfathered_until
                        .is_some_and(|until| until <= run.date && (run.date - until).num_days() < WINDOW_DAYS)
            });
            let mut moved = 0;
            let mut failed = Vec::new();
            for tier in due {
                let candidates =
                    price_migration::candidates(store, tier, None, PAGE).await.map_err(|e| e.to_string())?;
                for candidate in &candidates {
                    let reason = format!(
                        "{} (grandfathering ended {})",
                        price_migration::reason(tier, candidate),
                        tier.grandfathered_until.map(|d| d.to_string()).unwrap_or_default()
                    );
                    let trigger = Trigger::new(TriggerType::Automated, Some(reason));
                    let actor = "cron:grandfathering";
                    match price_migration::migrate_one(
                        &self.app,
                        &self.stripe,
                        actor,
                        &run.at,
                        trigger,
                        tier,
                        candidate,
                    )
                    .await
                    {
                        Ok(Some(_)) => moved += 1,
                        Ok(None) => {}
                        // A concurrent run moved them first (its Stripe call held the key).
                        Err(_) if moved_meanwhile(store, tier, &candidate.partner_id).await => {}
                        Err(e) => {
                            tracing::error!(partner = candidate.partner_id, tier = tier.tier_id, error = %e, "grandfathered migration failed");
                            failed.push(format!("{} ({e})", candidate.partner_id));
                        }
                    }
                }
            }
            if failed.is_empty() {
                Ok(moved)
            } else {
                Err(format!("{moved} moved, {} failed (retried by the next run): {}", failed.len(), failed.join(", ")))
            }
        })
    }
}

/// Whether the partner is no longer a candidate (another run, or the admin route,
/// moved them while this run tried).
async fn moved_meanwhile(store: &Store, tier: &Tier, partner_id: &str) -> bool {
    matches!(store.get_partner(partner_id).await, Ok(Some(p)) if migration_candidate(&p, tier, None).is_none())
}
