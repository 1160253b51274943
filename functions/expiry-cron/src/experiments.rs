//! The daily step that enforces experiments' `endDate`: an experiment still holding
//! its tier (active or paused) whose last day is before the run date completes, with
//! its results as of the run recorded on it (`finalResults`), through the same
//! versioned, audited write as a manual `complete`. Completing releases the tier
//! slot, so a second run no longer sees it; a concurrent run loses the version
//! check: the result is recorded exactly once.

use crate::{DailyStep, RunDate, StepFuture};
use std::sync::Arc;
use tierdesk::domain::audit::AuditEntry;
use tierdesk::domain::experiment::{self};
use tierdesk::store::{ExperimentRefusal, ExperimentStore, Store, WriteError};
use tierdesk::IdGen;

/// Who the audit trail names for automatic ends.
pub const ACTOR: &str = "system:expiry-cron";

pub struct EndExperiments {
    pub ids: Arc<dyn IdGen>,
}

impl DailyStep for EndExperiments {
    fn name(&self) -> &'static str {
        "experiments_ended"
    }

    /// Reads the `EXPLIVE` partition (the experiments holding a tier: one per tier
    /// at most, so tens of items) and, for each one past its end date, the
    /// experiment and its counters.
    fn run<'a>(&'a self, store: &'a Store, run: &'a RunDate) -> StepFuture<'a> {
        Box::pin(async move {
            let live = store.live_experiments().await.map_err(|e| e.to_string())?;
            let actor = run.actor();
            let mut ended = 0;
            for slot in live {
                let due = slot
                    .end_date
                    .as_deref()
                    .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                    .is_some_and(|end| end < run.date);
                if !due {
                    continue;
                }
                let id = slot.experiment_id;
                let Some(before) = store.get_experiment(&id).await.map_err(|e| e.to_string())? else { continue };
                if !before.past_end_date(run.date) {
                    continue;
                }
                let counts = store.variant_counts(&id, before.phase).await.map_err(|e| e.to_string())?;
                let results = experiment::results(&before, &counts);
                let Ok(after) = before.end_on_end_date(&results, run.date, &actor) else { continue };
                let audit =
                    AuditEntry::change(self.ids.new_id(), "experiment.end_date_reached", &actor, Some(&before), &after);
                match store.save_experiment(&before, &after, &audit).await {
                    Ok(()) => ended += 1,
                    Err(WriteError::Refused(ExperimentRefusal::Stale { .. } | ExperimentRefusal::Missing)) => {}
                    Err(e) => return Err(format!("experiment {id}: {e}")),
                }
            }
            Ok(ended)
        })
    }
}
