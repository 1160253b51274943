//! `devctl assign-segments [--dry-run]`: the seed 002 backfill. Creates the default
//! segments that are missing, then moves every live tier whose `segment` names no
//! registered segment into the one its monthly price calls for (seed 002's
//! thresholds), keeping its level clamped into 1–3. Each move is the ordinary
//! versioned tier write with its audit entry and the popular-badge claim, so the
//! backfill is idempotent (a second run finds nothing to do) and safe to run while
//! admins edit. `--dry-run` reads and prints the same plan and writes nothing.

use tierdesk::domain::actor::Actor;
use tierdesk::domain::audit::AuditEntry;
use tierdesk::domain::segment::{default_segments, plan_backfill, Segment};
use tierdesk::domain::tier::TierUpdate;
use tierdesk::store::{SegmentRefusal, SegmentStore, Store, TierRefusal, TierStore, WriteError};
use tierdesk::{IdGen, UlidGen};

pub const ACTOR: &str = "devctl-assign-segments";

#[derive(Debug, Default, PartialEq)]
pub struct Backfill {
    /// One human-readable line per step.
    pub lines: Vec<String>,
    pub segments_created: Vec<String>,
    /// (tierId, segment) moved (or, in a dry run, that would move).
    pub tiers_moved: Vec<(String, String)>,
}

pub async fn assign_segments(
    store: &Store,
    dry_run: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Backfill, String> {
    let by = Actor::system(ACTOR, now, "assign-segments");
    let verb = if dry_run { "would " } else { "" };
    let mut out = Backfill::default();
    let mut segments: Vec<Segment> = store.list_segments().await.map_err(|e| e.to_string())?;
    for new in default_segments() {
        if segments.iter().any(|s| s.segment_id == new.segment_id) {
            continue;
        }
        let created = new.into_segment(&by);
        if !dry_run {
            let audit = AuditEntry::change(UlidGen.new_id(), "segment.create", &by, None, &created);
            match store.create_segment(&created, &audit).await {
                Ok(()) | Err(WriteError::Refused(SegmentRefusal::Exists)) => {}
                Err(e) => return Err(format!("segment {}: {e}", created.segment_id)),
            }
        }
        out.lines.push(format!("{verb}create segment {} ({})", created.segment_id, created.name));
        out.segments_created.push(created.segment_id.clone());
        segments.push(created);
    }
    let tiers = store.all_tiers().await.map_err(|e| e.to_string())?;
    let ids: Vec<String> = segments.iter().map(|s| s.segment_id.clone()).collect();
    let popular = store.popular_tiers(&ids).await.map_err(|e| e.to_string())?;
    let plan = plan_backfill(&tiers, &segments, &popular);
    for step in &plan {
        let mut line = format!(
            "{verb}move tier {} from {} to {} (monthly {} cents), level {} -> {}",
            step.tier_id, step.from_segment, step.to_segment, step.monthly_price, step.from_level, step.to_level
        );
        if step.popular_dropped {
            line.push_str(", popular badge dropped (the segment has one)");
        }
        out.lines.push(line);
        out.tiers_moved.push((step.tier_id.clone(), step.to_segment.clone()));
        if dry_run {
            continue;
        }
        let Some(before) = store.get_tier(&step.tier_id).await.map_err(|e| e.to_string())? else { continue };
        if before.segment != step.from_segment {
            continue; // moved by someone else since the plan was read
        }
        let mut after = before.clone();
        after.segment = step.to_segment.clone();
        after.tier_level = step.to_level;
        after.popular = before.popular && !step.popular_dropped;
        after.version = before.version + 1;
        after.updated_at = by.at.clone();
        after.updated_by = by.id.clone();
        let mut update = TierUpdate { before, after };
        let audit =
            AuditEntry::change(UlidGen.new_id(), "tier.segment_backfill", &by, Some(&update.before), &update.after);
        match store.save_tier(&update, &audit).await {
            Ok(()) => {}
            Err(WriteError::Refused(TierRefusal::PopularClaimed { .. })) => {
                // Another tier took the badge since the plan was read: move without it.
                update.after.popular = false;
                let audit = AuditEntry::change(
                    UlidGen.new_id(),
                    "tier.segment_backfill",
                    &by,
                    Some(&update.before),
                    &update.after,
                );
                store.save_tier(&update, &audit).await.map_err(|e| format!("tier {}: {e}", step.tier_id))?;
                out.lines.push(format!("tier {}: popular badge dropped (taken meanwhile)", step.tier_id));
            }
            Err(e) => return Err(format!("tier {}: {e}", step.tier_id)),
        }
    }
    if plan.is_empty() {
        out.lines.push("every live tier is already in a registered segment".into());
    }
    Ok(out)
}
