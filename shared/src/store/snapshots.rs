//! Tier statistics as the cron reads and keeps them: the live counters
//! (`STATS#{tier}/CURRENT`) and the daily snapshots (`STATS#{tier}/DAY#{date}`).

use super::keys;
use super::{build_err, conditional, s, ClaimAttributes, Store, StoreError};
use crate::domain::revenue::TierCounts;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use chrono::NaiveDate;
use std::collections::HashMap;

/// Live tier statistics and the daily snapshots.
pub trait SnapshotStore {
    /// The live statistics of `tiers` (`STATS#{tier}/CURRENT`), in one BatchGetItem; a
    /// tier without an item yet has all-zero counts.
    fn tier_stats(
        &self,
        tiers: &[String],
    ) -> impl std::future::Future<Output = Result<(Vec<(String, TierCounts)>, u64), StoreError>> + Send;
    /// Writes `STATS#{tier}/DAY#{date}` unless that day already has one: the first run
    /// of a day fixes its snapshot, reruns leave it. `Ok(false)`: it existed.
    fn put_daily_snapshot(
        &self,
        snapshot: &DailySnapshot,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
}

impl SnapshotStore for Store {
    async fn tier_stats(&self, tiers: &[String]) -> Result<(Vec<(String, TierCounts)>, u64), StoreError> {
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
                    let tier = ClaimAttributes(&item).text("tierId").unwrap_or_default();
                    found.insert(tier, serde_dynamo::from_item(item)?);
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
    async fn put_daily_snapshot(&self, snapshot: &DailySnapshot) -> Result<bool, StoreError> {
        let item = Self::item(
            &snapshot.counts,
            &[
                ("PK", keys::tier_stats_pk(&snapshot.tier_id)),
                ("SK", keys::stats_day_sk(snapshot.date)),
                ("GSI1PK", keys::stats_day_pk(snapshot.date)),
                ("GSI1SK", snapshot.tier_id.clone()),
                ("tierId", snapshot.tier_id.clone()),
                ("date", snapshot.date.format("%Y-%m-%d").to_string()),
                ("capturedAt", snapshot.captured_at.clone()),
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

/// `STATS#{tier}/DAY#{date}`: the tier's live statistics as the day's run found them.
#[derive(Debug, Clone, PartialEq)]
pub struct DailySnapshot {
    pub tier_id: String,
    pub date: NaiveDate,
    /// When the copy was taken (wall clock): a backfill run for a past date that had
    /// no snapshot records today's figures, and says so here.
    pub captured_at: String,
    pub counts: TierCounts,
}

impl DailySnapshot {
    pub fn new(tier_id: &str, date: NaiveDate, captured_at: &str, counts: TierCounts) -> Self {
        Self { tier_id: tier_id.to_string(), date, captured_at: captured_at.to_string(), counts }
    }
}
