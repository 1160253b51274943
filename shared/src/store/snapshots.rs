//! Tier statistics as the cron reads and keeps them: the live counters
//! (`STATS#{tier}/CURRENT`) and the daily snapshots (`STATS#{tier}/DAY#{date}`).

use super::keys;
use super::{build_err, conditional, s, Store, StoreError};
use crate::domain::revenue::TierCounts;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

impl Store {
    /// The live statistics of `tiers` (`STATS#{tier}/CURRENT`), in one BatchGetItem; a
    /// tier without an item yet has all-zero counts.
    pub async fn tier_stats(&self, tiers: &[String]) -> Result<(Vec<(String, TierCounts)>, u64), StoreError> {
        let mut found: HashMap<String, TierCounts> = HashMap::new();
        let mut reads = 0;
        for chunk in tiers.chunks(100) {
            let mut request = KeysAndAttributes::builder().consistent_read(true);
            for tier in chunk {
                request = request.keys(HashMap::from([
                    ("PK".to_string(), s(keys::tier_stats_pk(tier))),
                    ("SK".to_string(), s(keys::STATS_CURRENT)),
                ]));
            }
            let mut pending =
                HashMap::from([(self.table.clone(), request.build().map_err(build_err("BatchGetItem"))?)]);
            // UnprocessedKeys only appear under throttling; retry them a bounded number of times.
            for _ in 0..3 {
                let out = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(pending))
                    .send()
                    .await
                    .map_err(|e| StoreError::sdk("BatchGetItem", e))?;
                reads += 1;
                for item in out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default() {
                    let row: StatsRow = serde_dynamo::from_item(item)?;
                    found.insert(row.tier_id.clone(), row.counts());
                }
                match out.unprocessed_keys.filter(|u| !u.is_empty()) {
                    Some(rest) => pending = rest,
                    None => break,
                }
            }
        }
        let stats = tiers.iter().map(|t| (t.clone(), found.get(t).copied().unwrap_or_default())).collect();
        Ok((stats, reads))
    }

    /// Writes `STATS#{tier}/DAY#{date}` unless that day already has one: the first run
    /// of a day fixes its snapshot, reruns leave it. `Ok(false)`: it existed.
    pub async fn put_daily_snapshot(&self, snapshot: &DailySnapshot) -> Result<bool, StoreError> {
        let item = Self::item(
            snapshot,
            &[
                ("PK", keys::tier_stats_pk(&snapshot.tier_id)),
                ("SK", keys::stats_day_sk(snapshot.date)),
                ("GSI1PK", keys::stats_day_pk(snapshot.date)),
                ("GSI1SK", snapshot.tier_id.clone()),
            ],
        )?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        conditional(result.map(|_| ()), "PutItem")
    }
}

/// `STATS#{tier}/CURRENT` as stored: counters added by transitions (a missing one
/// counts as 0).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct StatsRow {
    tier_id: String,
    member_count: i64,
    active_count: i64,
    trialing_count: i64,
    past_due_count: i64,
    cancelling_count: i64,
    paying_count: i64,
    monthly_count: i64,
    yearly_count: i64,
    mrr: i64,
}

impl StatsRow {
    fn counts(&self) -> TierCounts {
        TierCounts {
            member_count: self.member_count,
            active_count: self.active_count,
            trialing_count: self.trialing_count,
            past_due_count: self.past_due_count,
            cancelling_count: self.cancelling_count,
            paying_count: self.paying_count,
            monthly_count: self.monthly_count,
            yearly_count: self.yearly_count,
            mrr: self.mrr,
        }
    }
}

/// `STATS#{tier}/DAY#{date}`: the tier's live statistics as the day's run found them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DailySnapshot {
    pub tier_id: String,
    pub date: NaiveDate,
    /// When the copy was taken (wall clock): a backfill run for a past date that had
    /// no snapshot records today's figures, and says so here.
    pub captured_at: String,
    pub member_count: i64,
    pub active_count: i64,
    pub trialing_count: i64,
    pub past_due_count: i64,
    pub cancelling_count: i64,
    pub paying_count: i64,
    pub monthly_count: i64,
    pub yearly_count: i64,
    pub mrr: i64,
}

impl DailySnapshot {
    pub fn new(tier_id: &str, date: NaiveDate, captured_at: &str, c: TierCounts) -> Self {
        Self {
            tier_id: tier_id.to_string(),
            date,
            captured_at: captured_at.to_string(),
            member_count: c.member_count,
            active_count: c.active_count,
            trialing_count: c.trialing_count,
            past_due_count: c.past_due_count,
            cancelling_count: c.cancelling_count,
            paying_count: c.paying_count,
            monthly_count: c.monthly_count,
            yearly_count: c.yearly_count,
            mrr: c.mrr,
        }
    }
}
