//! The daily step that expires quotes: every open quote (draft, pending approval
//! or sent) whose `validUntil` has passed becomes `expired`, audited like any
//! other status change.

use crate::{DailyStep, RunDate, StepFuture};
use std::sync::Arc;
use tierdesk::domain::audit::AuditEntry;
use tierdesk::store::{QuoteRefusal, QuoteStore, Store, WriteError};
use tierdesk::IdGen;

pub use crate::promotions::ACTOR;

pub struct ExpireQuotes {
    pub ids: Arc<dyn IdGen>,
}

impl DailyStep for ExpireQuotes {
    fn name(&self) -> &'static str {
        "quotes_expired"
    }

    /// Reads the open statuses' index partitions filtered on the date (open
    /// quotes are bounded: validity is at most 180 days). Each write is
    /// conditional on the version read, so a second or concurrent run expires
    /// nothing twice; a quote someone changed meanwhile is left to the next run.
    fn run<'a>(&'a self, store: &'a Store, run: &'a RunDate) -> StepFuture<'a> {
        Box::pin(async move {
            let lapsed = store.lapsed_quotes(run.date).await.map_err(|e| e.to_string())?;
            let actor = run.actor();
            let mut expired = 0;
            for before in lapsed {
                let Some(after) = before.expire(run.date, &run.at) else { continue };
                let audit = AuditEntry::change(self.ids.new_id(), "quote.expire", &actor, Some(&before), &after);
                match store.save_quote(&before, &after, &audit).await {
                    Ok(()) => expired += 1,
                    Err(WriteError::Refused(QuoteRefusal::Stale { .. })) => {}
                    Err(e) => return Err(format!("quote {}: {e}", before.quote_id)),
                }
            }
            Ok(expired)
        })
    }
}
