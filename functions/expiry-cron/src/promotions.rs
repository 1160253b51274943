//! The daily step that completes promotions: live (active or paused) promotions
//! with `autoExpire` whose end date has passed become `completed`, through the
//! same workflow step and audited write as any other status change.

use crate::{DailyStep, RunDate, StepFuture};
use std::sync::Arc;
use tierdesk::domain::audit::AuditEntry;
use tierdesk::domain::promotion::{Action, ApprovalPolicy};
use tierdesk::store::{PromotionRefusal, PromotionStore, Store, WriteError};
use tierdesk::IdGen;

/// Who the audit trail names for automatic completions.
pub const ACTOR: &str = "system:expiry-cron";

pub struct CompletePromotions {
    pub ids: Arc<dyn IdGen>,
}

impl DailyStep for CompletePromotions {
    fn name(&self) -> &'static str {
        "promotions_completed"
    }

    /// Reads the sparse `PROMOEXPIRY` index up to the day before the run (cost
    /// follows the promotions due). A promotion someone changed meanwhile is left
    /// to the next run; one already completed is not in the index any more.
    fn run<'a>(&'a self, store: &'a Store, run: &'a RunDate) -> StepFuture<'a> {
        Box::pin(async move {
            let ended = store.promotions_ended_before(run.date).await.map_err(|e| e.to_string())?;
            let actor = run.actor();
            let mut completed = 0;
            for before in ended {
                let Ok(after) = before.transition(Action::Complete, &actor, &ApprovalPolicy::default(), None) else {
                    continue;
                };
                let (shown_before, shown_after) = (before.clone().without_private(), after.clone().without_private());
                let audit = AuditEntry::change(
                    self.ids.new_id(),
                    "promotion.complete",
                    &actor,
                    Some(&shown_before),
                    &shown_after,
                );
                match store.save_promotion(&before, &after, &[], &audit).await {
                    Ok(()) => completed += 1,
                    Err(WriteError::Refused(PromotionRefusal::Stale { .. })) => {}
                    Err(e) => return Err(format!("promotion {}: {e}", before.promotion_id)),
                }
            }
            Ok(completed)
        })
    }
}
