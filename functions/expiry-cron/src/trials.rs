//! The daily step that ends lapsed trials: a trial the cron owns (not one Stripe
//! bills) whose last day has passed without a conversion takes the partner back to
//! the default tier through the transition mechanism (`plan_trial_end`,
//! `trial_expired`), so history, statistics, analytics and the dashboards follow.
//! Usage already applies the default tier's plan from the day after the trial's
//! last day; this step makes the record agree.

use crate::{DailyStep, RunDate, StepFuture};
use std::sync::Arc;
use tierdesk::domain::audit::AuditEntry;
use tierdesk::domain::renewal::trial_end_months;
use tierdesk::domain::subscription::{plan_trial_end, Catalog, TransitionContext, Trigger, TriggerType};
use tierdesk::store::{PartnerRefusal, PartnerStore, ReminderStore, Store, TierStore, WriteError};
use tierdesk::IdGen;

pub struct EndTrials {
    pub ids: Arc<dyn IdGen>,
    /// Days of missed runs the step reaches back over (`EXPIRY_LOOKBACK_DAYS`).
    pub lookback_days: u32,
}

impl DailyStep for EndTrials {
    fn name(&self) -> &'static str {
        "trials_ended"
    }

    /// Reads the sparse `TRIALEND#{yyyy-mm}` index up to yesterday: only running
    /// trials are in it, so the cost follows the trials due. Each transition is
    /// conditional on the partner's version, so a second or concurrent run ends
    /// nothing twice (an ended trial leaves the index); a partner someone changed
    /// meanwhile is read again by the next run.
    fn run<'a>(&'a self, store: &'a Store, run: &'a RunDate) -> StepFuture<'a> {
        Box::pin(async move {
            let due = store
                .trial_end_window(&trial_end_months(run.date, self.lookback_days))
                .await
                .map_err(|e| e.to_string())?;
            if due.partners.is_empty() {
                return Ok(0);
            }
            let catalog = store.active_catalog().await.map_err(|e| e.to_string())?;
            let catalog = Catalog::new(&catalog);
            let (mut ended, mut failed) = (0, Vec::new());
            for partner in due.partners {
                let last_day = partner.trial_end_date.map(|d| d.to_string()).unwrap_or_default();
                let reason = format!("the {} trial ended on {last_day} without a conversion", partner.engagement_tier);
                let ctx = TransitionContext::new(
                    &run.actor(),
                    Trigger::new(TriggerType::Automated, Some(reason)),
                    self.ids.as_ref(),
                );
                let transition = match plan_trial_end(&partner, catalog, &ctx) {
                    Ok(Some(t)) => t,
                    Ok(None) => continue,
                    Err(e) => {
                        failed.push(format!("partner {}: {e}", partner.partner_id));
                        continue;
                    }
                };
                let by = run.actor();
                let audit =
                    AuditEntry::change(self.ids.new_id(), "partner.trial_end", &by, Some(&partner), &transition.after);
                match store.apply_transition(&transition, &audit).await {
                    Ok(()) => ended += 1,
                    // Converted, changed or ended by a concurrent run since the read.
                    Err(WriteError::Refused(PartnerRefusal::Stale { .. } | PartnerRefusal::Missing)) => {}
                    Err(e) => failed.push(format!("partner {}: {e}", partner.partner_id)),
                }
            }
            // One partner's failure does not hold up the others; the failed ones are
            // still in the index and the next run tries them again.
            match failed.first() {
                None => Ok(ended),
                Some(first) => Err(format!("{} trials ended, {} failed; first: {first}", ended, failed.len())),
            }
        })
    }
}
