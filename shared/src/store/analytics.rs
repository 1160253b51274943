//! Analytics reads: only the pre-aggregated items (`STATS#{tier}/CURRENT`,
//! `STATS#{tier}/MONTH#…`, `COHORTS`, `USAGESTATS#…`) and the tier catalog, so the
//! number of calls depends on tiers and months asked for, never on partners.

use super::keys::{self, META};
use super::UsageStore;
use super::{s, Item, Store, StoreError};
use crate::domain::analytics::{CohortFlows, CurrentStats, MetricAdoption, TierFlows};
use crate::domain::tier::Tier;
use std::collections::{BTreeMap, HashMap};

/// BatchGetItem takes at most 100 keys.
const BATCH_KEYS: usize = 100;

/// One tier's aggregates as read.
#[derive(Debug, Clone, Default)]
pub struct TierAggregates {
    pub tier: Option<Tier>,
    pub current: CurrentStats,
    pub months: BTreeMap<String, TierFlows>,
}

impl TierAggregates {
    /// The aggregates as analytics reads them, named by the tier `t` they belong to.
    pub fn into_data(self, t: &Tier) -> crate::domain::analytics::TierData {
        use crate::domain::analytics::{TierData, TierInfo};
        use crate::domain::tier::TierType;
        let tier_type = match t.tier_type {
            TierType::Individual => "individual",
            TierType::Dealer => "dealer",
        };
        TierData {
            info: TierInfo {
                tier_id: t.tier_id.clone(),
                name: t.name.clone(),
                tier_type: tier_type.to_string(),
                is_premium: t.is_premium,
            },
            current: self.current,
            months: self.months,
        }
    }
}

/// The analytics aggregates (live, monthly, cohorts, adoption).
pub trait AnalyticsStore {
    /// Benchmarks only: writes aggregate items as they would stand after the
    /// transitions they sum (BatchWriteItem, overwriting). No request path calls it.
    fn backfill_analytics(
        &self,
        current: &[(String, CurrentStats)],
        months: &[(String, String, TierFlows)],
        cohorts: &[(String, String, CohortFlows)],
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
    /// The live item and the month items of `tiers` for `months`, and with
    /// `with_meta` the tier records too: BatchGetItem of tiers × (months + 1) keys,
    /// one call per 100 keys, sent concurrently.
    fn tier_aggregates(
        &self,
        tiers: &[String],
        months: &[String],
        with_meta: bool,
    ) -> impl std::future::Future<Output = Result<Vec<TierAggregates>, StoreError>> + Send;
    /// Cohort month items of the signup months `from..=to` (`yyyy-mm`), by cohort then
    /// month: one Query of the cohort partition (a page holds thousands of them).
    fn cohort_flows(
        &self,
        from: &str,
        to: &str,
    ) -> impl std::future::Future<Output = Result<BTreeMap<String, BTreeMap<String, CohortFlows>>, StoreError>> + Send;
    /// This month's feature adoption by tier and metric (`Store::usage_stats`).
    fn adoption(
        &self,
        period: &str,
    ) -> impl std::future::Future<Output = Result<BTreeMap<String, BTreeMap<String, MetricAdoption>>, StoreError>> + Send;
}

impl AnalyticsStore for Store {
    async fn backfill_analytics(
        &self,
        current: &[(String, CurrentStats)],
        months: &[(String, String, TierFlows)],
        cohorts: &[(String, String, CohortFlows)],
    ) -> Result<(), StoreError> {
        let mut items = Vec::new();
        for (tier, c) in current {
            let mut item = Self::item(
                &c.live,
                &[("PK", keys::tier_stats_pk(tier)), ("SK", keys::STATS_CURRENT.into()), ("tierId", tier.clone())],
            )?;
            item.extend(serde_dynamo::to_item::<_, Item>(c.flows)?);
            items.push(item);
        }
        for (tier, month, f) in months {
            let k = [
                ("PK", keys::tier_stats_pk(tier)),
                ("SK", keys::stats_month_sk(month)),
                ("tierId", tier.clone()),
                ("month", month.clone()),
            ];
            items.push(Self::item(f, &k)?);
        }
        for (cohort, month, f) in cohorts {
            let k = [
                ("PK", keys::COHORTS_PARTITION.to_string()),
                ("SK", keys::cohort_sk(cohort, month)),
                ("cohort", cohort.clone()),
                ("month", month.clone()),
            ];
            items.push(Self::item(f, &k)?);
        }
        self.batch_put(items).await
    }
    async fn tier_aggregates(
        &self,
        tiers: &[String],
        months: &[String],
        with_meta: bool,
    ) -> Result<Vec<TierAggregates>, StoreError> {
        let mut wanted = Vec::new();
        for tier in tiers {
            let pk = keys::tier_stats_pk(tier);
            wanted.push((pk.clone(), keys::STATS_CURRENT.to_string()));
            wanted.extend(months.iter().map(|m| (pk.clone(), keys::stats_month_sk(m))));
            if with_meta {
                wanted.push((keys::tier_pk(tier), META.to_string()));
            }
        }
        // The chunks go out together: a dozen tiers over a year's months is two
        // batches, and the summary need not wait for one before sending the other.
        let batches =
            futures::future::try_join_all(wanted.chunks(BATCH_KEYS).map(|chunk| self.batch_get(chunk))).await?;
        let mut found: HashMap<(String, String), Item> = batches.into_iter().flatten().collect();
        let mut out = Vec::with_capacity(tiers.len());
        for tier in tiers {
            let pk = keys::tier_stats_pk(tier);
            let mut agg = TierAggregates::default();
            if let Some(item) = found.remove(&(pk.clone(), keys::STATS_CURRENT.to_string())) {
                // One item, two halves: the live counts and the all-time counters.
                let flows = serde_dynamo::from_item(item.clone())?;
                agg.current = CurrentStats { live: serde_dynamo::from_item(item)?, flows };
            }
            for m in months {
                if let Some(item) = found.remove(&(pk.clone(), keys::stats_month_sk(m))) {
                    agg.months.insert(m.clone(), serde_dynamo::from_item(item)?);
                }
            }
            if with_meta {
                if let Some(item) = found.remove(&(keys::tier_pk(tier), META.to_string())) {
                    agg.tier = Some(serde_dynamo::from_item(item)?);
                }
            }
            out.push(agg);
        }
        Ok(out)
    }
    async fn cohort_flows(
        &self,
        from: &str,
        to: &str,
    ) -> Result<BTreeMap<String, BTreeMap<String, CohortFlows>>, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(keys::COHORTS_PARTITION))
                    .expression_attribute_values(":from", s(format!("{from}#")))
                    // `~` sorts after every `#yyyy-mm` suffix.
                    .expression_attribute_values(":to", s(format!("{to}#~")))
                    .consistent_read(true)
            })
            .await?;
        let mut out: BTreeMap<String, BTreeMap<String, CohortFlows>> = BTreeMap::new();
        for item in items {
            let sk = item.get("SK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let Some((cohort, month)) = sk.split_once('#') else { continue };
            let flows: CohortFlows = serde_dynamo::from_item(item)?;
            out.entry(cohort.to_string()).or_default().insert(month.to_string(), flows);
        }
        Ok(out)
    }
    async fn adoption(&self, period: &str) -> Result<BTreeMap<String, BTreeMap<String, MetricAdoption>>, StoreError> {
        let mut out: BTreeMap<String, BTreeMap<String, MetricAdoption>> = BTreeMap::new();
        for (key, stats) in self.usage_stats(period).await? {
            let Some((tier, metric)) = key.split_once('#') else { continue };
            let to_i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            out.entry(tier.to_string()).or_default().insert(
                metric.to_string(),
                MetricAdoption {
                    users: to_i(stats.users),
                    total: to_i(stats.total),
                    near_limit: to_i(stats.near_limit),
                },
            );
        }
        Ok(out)
    }
}
