//! The daily step that enforces experiments' `endDate`: an experiment still
//! running (active or paused; pricing or campaign) whose last day is before the
//! run date completes, with its results as of the run recorded on it
//! (`finalResults`), through the same versioned, audited write as a manual
//! `complete`. A completed experiment is no longer listed, so a second run does
//! not see it; a concurrent run loses the version check: the result is recorded
//! exactly once.

use crate::{DailyStep, RunDate, StepFuture};
use std::sync::Arc;
use tierdesk::domain::audit::AuditEntry;
use tierdesk::domain::experiment::{self, ExperimentStatus};
use tierdesk::store::{ExperimentRefusal, ExperimentStore, PageRequest, Store, WriteError};
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

    /// Reads the active and the paused experiments (two Queries of the status
    /// index: pricing experiments are one per tier at most, campaign ones one per
    /// campaign, so tens of items) and, for each one past its end date, the
    /// experiment again (consistently) and its counters.
    fn run<'a>(&'a self, store: &'a Store, run: &'a RunDate) -> StepFuture<'a> {
        Box::pin(async move {
            let mut open = Vec::new();
            for status in [ExperimentStatus::Active, ExperimentStatus::Paused] {
                let mut page = PageRequest { limit: 100, cursor: None };
                loop {
                    let found = store.list_experiments(Some(status), &page).await.map_err(|e| e.to_string())?;
                    open.extend(found.items.into_iter().filter(|e| e.past_end_date(run.date)));
                    match found.next_cursor {
                        Some(cursor) => page.cursor = Some(cursor),
                        None => break,
                    }
                }
            }
            let actor = run.actor();
            let mut ended = 0;
            for listed in open {
                let id = listed.experiment_id;
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
