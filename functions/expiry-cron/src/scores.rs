//! The daily step that refreshes stored churn-risk and upsell scores that move with
//! time alone. A partner's scores are recomputed on every write to it, but an end
//! date coming closer (auto-renewal off, a pending cancellation, an annual renewal)
//! changes them with no write at all. The partners it can affect are the terms
//! ending within `scoring::END_DATE_SIGNAL_DAYS`, which the `SUBEND#` index already
//! holds by end date, so the step reads only those (never a Scan) and writes only
//! the partners whose ranking changed.

use crate::{DailyStep, RunDate, StepFuture};
use std::sync::Arc;
use tierdesk::domain::audit::AuditEntry;
use tierdesk::domain::renewal::upcoming_end_months;
use tierdesk::domain::scoring::END_DATE_SIGNAL_DAYS;
use tierdesk::domain::subscription::{refresh_scores, Catalog};
use tierdesk::store::{PartnerRefusal, PartnerStore, ReminderStore, Store, TierStore, WriteError};
use tierdesk::IdGen;

pub struct RefreshScores {
    pub ids: Arc<dyn IdGen>,
}

impl DailyStep for RefreshScores {
    fn name(&self) -> &'static str {
        "scores_refreshed"
    }

    /// Each write is conditional on the version read: a partner changed meanwhile
    /// was rescored by that change, and a rerun finds nothing left to change.
    fn run<'a>(&'a self, store: &'a Store, run: &'a RunDate) -> StepFuture<'a> {
        Box::pin(async move {
            let window = store
                .subscription_end_window(&upcoming_end_months(run.date, END_DATE_SIGNAL_DAYS))
                .await
                .map_err(|e| e.to_string())?;
            if window.partners.is_empty() {
                return Ok(0);
            }
            // Archived tiers still score their members.
            let tiers = store.all_tiers().await.map_err(|e| e.to_string())?;
            let catalog = Catalog::new(&tiers);
            let actor = run.actor();
            let (mut refreshed, mut failed) = (0, Vec::new());
            for before in window.partners {
                let Some(after) = refresh_scores(&before, catalog, &actor) else { continue };
                let audit = AuditEntry::change(self.ids.new_id(), "partner.rescore", &actor, Some(&before), &after);
                match store.save_partner(&before, &after, &audit, None).await {
                    Ok(()) => refreshed += 1,
                    Err(WriteError::Refused(PartnerRefusal::Stale { .. } | PartnerRefusal::Missing)) => {}
                    Err(e) => failed.push(format!("partner {}: {e}", before.partner_id)),
                }
            }
            match failed.first() {
                None => Ok(refreshed),
                Some(first) => Err(format!("{refreshed} partners rescored, {} failed; first: {first}", failed.len())),
            }
        })
    }
}
