//! Counting an experiment's events, shared by the public tracking route (a
//! visitor's signup, conversion or revenue) and the daily campaign step (a
//! conversion attributed to a campaign experiment's send). Each event counts
//! once per (participant, metric, event id): the participant's item is written
//! at the `seq` it was read at, together with its variant's counters, and a
//! round that met a concurrent event of the same participant reads again.

use super::Failed;
use crate::clock::rfc3339;
use crate::domain::experiment::{self, Experiment, ExperimentError, ExperimentStatus, ExperimentType, Track};
use crate::store::{Assignment, ExperimentStore, Store, StoreError};
use crate::Clock;

/// Rounds of read-and-write before a participant's tracking is called too busy.
const TRACK_ATTEMPTS: usize = 8;

/// Who reports the event, which decides the experiments it may reach and
/// whether an unseen participant is enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reporter<'a> {
    /// The public route: pricing experiments only. A visitor not yet assigned
    /// is assigned first (their first exposure) while the experiment is active.
    Visitor,
    /// The campaign step, for a conversion at `converted_at` (RFC 3339):
    /// campaign experiments only. A partner not exposed by then (never sent to
    /// while the experiment was active, or first sent to afterwards) is not a
    /// participant in it, and their conversion is not the experiment's.
    CampaignAttribution { converted_at: &'a str },
}

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tracked {
    Counted {
        variant_id: String,
    },
    /// Counted before (a retried request, a rerun): nothing changed.
    Duplicate {
        variant_id: String,
    },
    /// `CampaignAttribution` only: the partner was not a participant when they
    /// converted.
    NotParticipant,
}

/// Assigns `user` to their hashed variant of `exp` (or reads the assignment a
/// concurrent first call made).
pub async fn assign_visitor(
    store: &Store,
    clock: &dyn Clock,
    exp: &Experiment,
    user: &str,
) -> Result<Assignment, Failed<ExperimentError>> {
    // Allocations sum to 100 (parse), so every bucket has a variant.
    let variant = experiment::assign(&exp.experiment_id, &exp.variants, user)
        .or_else(|| exp.variants.last())
        .ok_or(ExperimentError::NotFound)?;
    // `None`: paused, ended or rolled out since it was read; a retry reads it again.
    let assigned = store.assign(exp, user, &variant.variant_id, &rfc3339(clock.now())).await?;
    Ok(assigned.ok_or(ExperimentError::KeptChanging)?)
}

/// Counts `ask` on experiment `experiment_id` as `reporter` may.
pub async fn track(
    store: &Store,
    clock: &dyn Clock,
    experiment_id: &str,
    ask: &Track,
    reporter: Reporter<'_>,
) -> Result<Tracked, Failed<ExperimentError>> {
    for _ in 0..TRACK_ATTEMPTS {
        let (exp, participant) = store.experiment_and_participant(experiment_id, &ask.user_id).await?;
        let exp = exp.ok_or(ExperimentError::NotFound)?;
        let wanted = match reporter {
            Reporter::Visitor => ExperimentType::Pricing,
            Reporter::CampaignAttribution { .. } => ExperimentType::Campaign,
        };
        // A campaign experiment does not exist to a visitor (and the reverse).
        if exp.experiment_type != wanted {
            return Err(ExperimentError::NotFound.into());
        }
        // Events keep counting while paused: they belong to exposures made.
        if !exp.status.holds_tier() {
            return Err(ExperimentError::NotRunning { status: exp.status.as_str() }.into());
        }
        let participant = match (participant.filter(|p| p.phase == exp.phase), reporter) {
            (Some(p), Reporter::CampaignAttribution { converted_at }) if p.assigned_at.as_str() > converted_at => {
                return Ok(Tracked::NotParticipant)
            }
            (Some(p), _) => p,
            (None, Reporter::CampaignAttribution { .. }) => return Ok(Tracked::NotParticipant),
            (None, Reporter::Visitor) if exp.status == ExperimentStatus::Active => {
                assign_visitor(store, clock, &exp, &ask.user_id).await?.participant
            }
            (None, Reporter::Visitor) => return Err(ExperimentError::NotRunning { status: exp.status.as_str() }.into()),
        };
        let variant_id = participant.variant_id.clone();
        let Some(delta) = experiment::delta(ask, &participant)? else {
            return Ok(Tracked::Duplicate { variant_id });
        };
        match store.track(&exp, &ask.user_id, &participant, &ask.dedupe_key(), &delta).await {
            Ok(true) => return Ok(Tracked::Counted { variant_id }),
            Ok(false) => {}
            // The counters' shard stayed locked through the store's own retries
            // (DynamoDB Local answers lock timeouts this way): back off, read again.
            Err(StoreError::TransactionConflict) => backoff().await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ExperimentError::KeptChanging.into())
}

/// 20–99 ms before another round at an experiment's counters that stayed busy
/// through the store's own retries (jitter spreads rounds apart; not business time).
pub async fn backoff() {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    tokio::time::sleep(std::time::Duration::from_millis(20 + u64::from(nanos % 80))).await;
}
