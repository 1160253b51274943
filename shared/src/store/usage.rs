//! Usage access patterns (keys and their purpose are in `keys`): the month's
//! counters with the partner in one read, and a track call as one transaction.

use super::keys::{self, META};
use super::{build_err, n, s, ConditionFailed, Item, Store, StoreError};
use crate::domain::partner::Partner;
use crate::domain::usage::{near_limit, Allowance};
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use std::collections::BTreeMap;

/// Counter attributes are `used_{metric}`: metric names are client-chosen words and
/// must never collide with the item's own attributes (`PK`, `period`, `ttl`, …).
const COUNTER_PREFIX: &str = "used_";

/// Rounds of `transact` (each already retries conflicts) for one track call. The
/// counter of a busy partner is one hot item; DynamoDB Local answers heavy
/// contention on it with lock timeouts, which DynamoDB proper would queue.
const TRACK_ROUNDS: u32 = 6;
/// Re-plans after a concurrent call moved the counter out of this call's band.
const TRACK_REPLANS: u32 = 8;

/// The outcome of claiming one partner's month of overage for billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverageClaim {
    /// Ours, first attempt: nothing was sent to Stripe for it yet.
    Fresh,
    /// Ours, taken over from an attempt that stopped midway: some of its invoice
    /// items may exist in Stripe already; look them up before creating any.
    Resumed,
    /// Billed before.
    Billed,
    /// Another run holds a live claim.
    Busy,
}

/// A partner and its counters for one month, read together.
#[derive(Debug, Clone)]
pub struct UsageRead {
    pub partner: Option<Partner>,
    pub counts: BTreeMap<String, u64>,
}

/// One accepted unit of work to record.
#[derive(Debug, Clone)]
pub struct UsageTrack<'a> {
    pub partner_id: &'a str,
    /// The tier whose plan applied: feature adoption is counted per tier.
    pub tier_id: &'a str,
    pub period: &'a str,
    pub metric: &'a str,
    pub count: u64,
    pub allowance: Allowance,
    /// Highest counter value that may still take `count` (hard limits).
    pub ceiling: Option<u64>,
    pub idempotency_key: &'a str,
    pub at: &'a str,
    /// Epoch seconds when the idempotency record may go.
    pub ttl: i64,
    /// Epoch seconds now: a record of the same key past its `ttl` is absent.
    pub now: i64,
    /// The counter as last read; the write re-plans if it moved.
    pub seen: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackOutcome {
    /// Counted; `used` is the counter right after this call's write.
    Applied { used: u64 },
    /// The idempotency key was used before: nothing counted.
    Replayed,
    /// A hard limit refused it; `used` is the counter that refused.
    LimitReached { used: u64 },
}

/// Which values of the old counter give this write the same aggregate effect, so
/// the condition can pin the effect without pinning the exact value (which would
/// fail on every concurrent call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Band {
    first_use: bool,
    crosses_near_limit: bool,
    low: u64,
    high: Option<u64>,
}

fn band(seen: u64, count: u64, allowance: &Allowance, ceiling: Option<u64>) -> Band {
    let threshold =
        allowance.limit.filter(|l| *l > 0).map(|l| (l * crate::domain::usage::NEAR_LIMIT_PERCENT).div_ceil(100));
    let first_use = seen == 0;
    let crosses = !near_limit(allowance, seen) && near_limit(allowance, seen.saturating_add(count));
    let (low, high) = match (first_use, threshold) {
        (true, _) => (0, Some(0)),
        (false, None) => (1, None),
        (false, Some(t)) if crosses => (t.saturating_sub(count).max(1), Some(t - 1)),
        (false, Some(t)) if seen >= t => (t, None),
        (false, Some(t)) => (1, Some(t.saturating_sub(count).saturating_sub(1).max(1))),
    };
    let high = match (high, ceiling) {
        (Some(h), Some(c)) => Some(h.min(c)),
        (h, c) => h.or(c),
    };
    Band { first_use, crosses_near_limit: crosses, low, high }
}

fn number(item: &Item, attr: &str) -> u64 {
    item.get(attr).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

pub(crate) fn counts_of(item: &Item) -> BTreeMap<String, u64> {
    item.iter()
        .filter_map(|(k, v)| {
            let metric = k.strip_prefix(COUNTER_PREFIX)?;
            Some((metric.to_string(), v.as_n().ok()?.parse().ok()?))
        })
        .collect()
}

impl Store {
    fn track_items(&self, t: &UsageTrack<'_>, b: &Band) -> Result<Vec<TransactWriteItem>, StoreError> {
        let record: Item = [
            ("PK", s(keys::usage_idempotency_pk(t.partner_id, t.idempotency_key))),
            ("SK", s(META)),
            ("partnerId", s(t.partner_id)),
            ("metric", s(t.metric)),
            ("count", n(t.count as i64)),
            ("period", s(t.period)),
            ("at", s(t.at)),
            ("ttl", n(t.ttl)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        // A record past its `ttl` counts as absent (DynamoDB deletes it eventually).
        let record = Put::builder()
            .table_name(&self.table)
            .set_item(Some(record))
            .condition_expression("attribute_not_exists(PK) OR #ttl < :now")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", n(t.now))
            .build()
            .map_err(build_err("Put"))?;
        let record = TransactWriteItem::builder().put(record).build();

        let condition = match (b.first_use, b.high) {
            (true, _) => "(attribute_not_exists(#u) OR #u = :zero)".to_string(),
            (false, Some(_)) => "#u BETWEEN :low AND :high".to_string(),
            (false, None) => "#u >= :low".to_string(),
        };
        // A priced (soft) metric puts the month into the overage index: a superset of
        // the partners over a limit, which the billing step narrows exactly.
        let priced = t.allowance.limit.is_some() && t.allowance.overage_price.is_some();
        let mut counter = Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::partner_pk(t.partner_id)))
            .key("SK", s(keys::usage_sk(t.period)))
            .update_expression(if priced {
                "SET partnerId = :pid, #period = :period, updatedAt = :at, GSI2PK = :overage, GSI2SK = :pid ADD #u :n"
            } else {
                "SET partnerId = :pid, #period = :period, updatedAt = :at ADD #u :n"
            })
            .expression_attribute_names("#u", format!("{COUNTER_PREFIX}{}", t.metric))
            .expression_attribute_names("#period", "period")
            .expression_attribute_values(":pid", s(t.partner_id))
            .expression_attribute_values(":period", s(t.period))
            .expression_attribute_values(":at", s(t.at))
            .expression_attribute_values(":n", n(t.count as i64))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if priced {
            counter = counter.expression_attribute_values(":overage", s(keys::overage_month_pk(t.period)));
        }
        // A first use within the ceiling needs no ceiling test: a count above the
        // limit was refused before any write.
        if b.first_use {
            counter = counter.expression_attribute_values(":zero", n(0));
        } else {
            counter = counter.expression_attribute_values(":low", n(b.low as i64));
            if let Some(h) = b.high {
                counter = counter.expression_attribute_values(":high", n(h as i64));
            }
        }
        let counter = counter.condition_expression(condition).build().map_err(build_err("Update"))?;

        let mut items = vec![record, TransactWriteItem::builder().update(counter).build()];
        items.push(self.stats_item(t, b)?);
        // Crossing 80% of a limit is a campaign trigger (docs/campaigns.md), once per
        // metric and month: the band says this call is the one that crosses.
        if b.crosses_near_limit {
            let signal = super::CampaignSignal {
                trigger: crate::domain::campaign::TriggerKind::UsageNearLimit,
                partner_id: t.partner_id.to_string(),
                source: format!("{}#{}", t.metric, t.period),
                at: t.at.to_string(),
                tier: Some(t.tier_id.to_string()),
            };
            items.push(self.campaign_signal_put(t.at.get(..10).unwrap_or_default(), &signal)?);
        }
        Ok(items)
    }

    fn stats_item(&self, t: &UsageTrack<'_>, b: &Band) -> Result<TransactWriteItem, StoreError> {
        let base = format!("{}#{}", t.tier_id, t.metric);
        let mut expression = "ADD #total :n".to_string();
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::usage_stats_pk(t.period)))
            .key("SK", s(keys::usage_stats_sk(t.partner_id)))
            .expression_attribute_names("#total", format!("{base}#total"))
            .expression_attribute_values(":n", n(t.count as i64));
        if b.first_use {
            expression.push_str(", #users :one");
            update = update.expression_attribute_names("#users", format!("{base}#users"));
        }
        if b.crosses_near_limit {
            expression.push_str(", #near :one");
            update = update.expression_attribute_names("#near", format!("{base}#nearLimit"));
        }
        if b.first_use || b.crosses_near_limit {
            update = update.expression_attribute_values(":one", n(1));
        }
        let update = update.update_expression(expression).build().map_err(build_err("Update"))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// A partner's counters by month (`yyyy-mm`), each by metric.
pub type UsageHistory = BTreeMap<String, BTreeMap<String, u64>>;

/// Usage counters, limits and overage claims.
pub trait UsageStore {
    /// The partner and its counters for `period`: one BatchGetItem.
    fn read_usage(
        &self,
        partner_id: &str,
        period: &str,
    ) -> impl std::future::Future<Output = Result<UsageRead, StoreError>> + Send;
    /// The partner's monthly counters for the months `from..=to` (`yyyy-mm`), by month,
    /// read as one key range of its partition (`USAGE#{from}` to `USAGE#{to}`, at most
    /// 13 small items: one Query page), after a read of the partner (`None`: no such
    /// partner). Months without an item have no counts.
    fn usage_history(
        &self,
        partner_id: &str,
        from: &str,
        to: &str,
    ) -> impl std::future::Future<Output = Result<Option<UsageHistory>, StoreError>> + Send;
    /// Records a track call: the idempotency record and the counter update in one
    /// TransactWriteItems. The counter's condition holds the hard limit and the
    /// band of old values for which this call's feature-adoption effect is right;
    /// a refusal is told apart by which item failed (the record: a replay) and by
    /// the counter's old image (past the ceiling: the limit; else a concurrent call
    /// moved it, and the write is planned again from the value it found).
    fn track_usage(
        &self,
        t: &UsageTrack<'_>,
    ) -> impl std::future::Future<Output = Result<TrackOutcome, StoreError>> + Send;
    /// The partners who used an overage-priced metric in `period`: a key Query of
    /// the sparse overage index, paged.
    fn overage_candidates(
        &self,
        period: &str,
    ) -> impl std::future::Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Whether `period`'s overage of the partner was billed already.
    fn overage_billed(
        &self,
        partner_id: &str,
        period: &str,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// Claims the billing of `period`'s overage (`PARTNER#{id}` / `OVERAGEBILLED#{period}`),
    /// written PENDING before anything goes to Stripe: new, or taken over from a
    /// run whose lease (`claimUntil`, unix seconds) ran out. A marker without a
    /// status was written before the PENDING state existed: billed.
    fn claim_overage(
        &self,
        partner_id: &str,
        period: &str,
        token: &str,
        now: i64,
        lease_secs: i64,
        at: &str,
    ) -> impl std::future::Future<Output = Result<OverageClaim, StoreError>> + Send;
    /// Records that `period`'s overage went to Stripe (`items`: the invoice item
    /// ids), conditional on the PENDING claim being this run's (`token`). `false`:
    /// another run took the claim over.
    fn mark_overage_billed(
        &self,
        partner_id: &str,
        period: &str,
        token: &str,
        items: &[String],
        amount: i64,
        at: &str,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// Feature adoption of one month, summed over its shards: one Query.
    /// Keyed by `{tier}#{metric}`.
    fn usage_stats(
        &self,
        period: &str,
    ) -> impl std::future::Future<Output = Result<BTreeMap<String, UsageStats>, StoreError>> + Send;
}

impl UsageStore for Store {
    async fn read_usage(&self, partner_id: &str, period: &str) -> Result<UsageRead, StoreError> {
        let partner_key = (keys::partner_pk(partner_id), META.to_string());
        let usage_key = (keys::partner_pk(partner_id), keys::usage_sk(period));
        let mut found = self.batch_get(&[partner_key.clone(), usage_key.clone()]).await?;
        let partner = match found.remove(&partner_key) {
            Some(item) => Some(serde_dynamo::from_item(item)?),
            None => None,
        };
        let counts = found.remove(&usage_key).map(|item| counts_of(&item)).unwrap_or_default();
        Ok(UsageRead { partner, counts })
    }
    async fn usage_history(
        &self,
        partner_id: &str,
        from: &str,
        to: &str,
    ) -> Result<Option<BTreeMap<String, BTreeMap<String, u64>>>, StoreError> {
        let partner_key = (keys::partner_pk(partner_id), META.to_string());
        if self.batch_get(std::slice::from_ref(&partner_key)).await?.is_empty() {
            return Ok(None);
        }
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(keys::partner_pk(partner_id)))
                    .expression_attribute_values(":from", s(keys::usage_sk(from)))
                    .expression_attribute_values(":to", s(keys::usage_sk(to)))
                    .consistent_read(true)
            })
            .await?;
        let mut out = BTreeMap::new();
        for item in items {
            let sk = item.get("SK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            if let Some(period) = sk.strip_prefix(keys::USAGE_PREFIX) {
                out.insert(period.to_string(), counts_of(&item));
            }
        }
        Ok(Some(out))
    }
    async fn track_usage(&self, t: &UsageTrack<'_>) -> Result<TrackOutcome, StoreError> {
        let mut seen = t.seen;
        for _ in 0..TRACK_REPLANS {
            // Counters only grow within a month, so a value read past the ceiling
            // refuses as surely as the write would, without writing.
            if t.ceiling.is_some_and(|c| seen > c) {
                return Ok(TrackOutcome::LimitReached { used: seen });
            }
            let b = band(seen, t.count, &t.allowance, t.ceiling);
            let items = self.track_items(t, &b)?;
            let mut outcome = None;
            for _ in 0..TRACK_ROUNDS {
                match self.transact(items.clone()).await {
                    Err(StoreError::TransactionConflict) => continue,
                    other => {
                        outcome = Some(other?);
                        break;
                    }
                }
            }
            let Some(outcome) = outcome else { return Err(StoreError::TransactionConflict) };
            match outcome {
                Ok(()) => return Ok(TrackOutcome::Applied { used: seen.max(b.low).saturating_add(t.count) }),
                Err(ConditionFailed { index: 0, .. }) => return Ok(TrackOutcome::Replayed),
                Err(ConditionFailed { old_item, .. }) => {
                    let found = old_item.as_ref().map_or(0, |i| number(i, &format!("{COUNTER_PREFIX}{}", t.metric)));
                    if t.ceiling.is_some_and(|c| found > c) {
                        return Ok(TrackOutcome::LimitReached { used: found });
                    }
                    seen = found;
                }
            }
        }
        Err(StoreError::TransactionConflict)
    }
    async fn overage_candidates(&self, period: &str) -> Result<Vec<String>, StoreError> {
        let items = self
            .query_all(|q| {
                q.index_name(keys::GSI2)
                    .key_condition_expression("GSI2PK = :pk")
                    .expression_attribute_values(":pk", s(keys::overage_month_pk(period)))
                    .projection_expression("GSI2SK")
            })
            .await?;
        Ok(items.iter().filter_map(|i| i.get("GSI2SK")?.as_s().ok().cloned()).collect())
    }
    async fn overage_billed(&self, partner_id: &str, period: &str) -> Result<bool, StoreError> {
        Ok(self
            .get(keys::partner_pk(partner_id), &keys::overage_billed_sk(period))
            .await?
            .is_some_and(|item| item.get("status").and_then(|v| v.as_s().ok()).is_none_or(|s| s == "BILLED")))
    }
    async fn claim_overage(
        &self,
        partner_id: &str,
        period: &str,
        token: &str,
        now: i64,
        lease_secs: i64,
        at: &str,
    ) -> Result<OverageClaim, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::partner_pk(partner_id)))
            .key("SK", s(keys::overage_billed_sk(period)))
            .update_expression(
                "SET #status = :pending, claimToken = :token, claimUntil = :until, #period = :period, \
                 pendingSince = if_not_exists(pendingSince, :at), attempts = if_not_exists(attempts, :zero) + :one",
            )
            .condition_expression("attribute_not_exists(PK) OR (#status = :pending AND claimUntil < :now)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#period", "period")
            .expression_attribute_values(":pending", s("PENDING"))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":until", n(now + lease_secs))
            .expression_attribute_values(":period", s(period))
            .expression_attribute_values(":at", s(at))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            // Attributes before the write: an earlier run's PENDING claim was taken over.
            Ok(out) => Ok(if out.attributes.is_some_and(|a| !a.is_empty()) {
                OverageClaim::Resumed
            } else {
                OverageClaim::Fresh
            }),
            Err(err) => {
                use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
                if let Some(UpdateItemError::ConditionalCheckFailedException(e)) = err.as_service_error() {
                    let status = e.item().and_then(|i| i.get("status")).and_then(|v| v.as_s().ok());
                    return Ok(match status.map(String::as_str) {
                        Some("PENDING") => OverageClaim::Busy,
                        _ => OverageClaim::Billed,
                    });
                }
                Err(StoreError::sdk("UpdateItem", err))
            }
        }
    }
    async fn mark_overage_billed(
        &self,
        partner_id: &str,
        period: &str,
        token: &str,
        items: &[String],
        amount: i64,
        at: &str,
    ) -> Result<bool, StoreError> {
        let item: Item = [
            ("PK", s(keys::partner_pk(partner_id))),
            ("SK", s(keys::overage_billed_sk(period))),
            ("status", s("BILLED")),
            ("period", s(period)),
            ("amount", n(amount)),
            ("invoiceItems", AttributeValue::L(items.iter().map(|i| s(i.clone())).collect())),
            ("billedAt", s(at)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("claimToken = :token")
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => {
                use aws_sdk_dynamodb::operation::put_item::PutItemError;
                if let Some(PutItemError::ConditionalCheckFailedException(_)) = err.as_service_error() {
                    return Ok(false);
                }
                Err(StoreError::sdk("PutItem", err))
            }
        }
    }
    async fn usage_stats(&self, period: &str) -> Result<BTreeMap<String, UsageStats>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(keys::usage_stats_pk(period)))
            .send()
            .await
            .map_err(|e| StoreError::sdk("Query", e))?;
        let mut stats: BTreeMap<String, UsageStats> = BTreeMap::new();
        for item in out.items.unwrap_or_default() {
            for (attr, value) in &item {
                let Some((key, field)) = attr.rsplit_once('#') else { continue };
                let Some(v) = value.as_n().ok().and_then(|v| v.parse::<u64>().ok()) else { continue };
                let entry = stats.entry(key.to_string()).or_default();
                match field {
                    "users" => entry.users += v,
                    "total" => entry.total += v,
                    "nearLimit" => entry.near_limit += v,
                    _ => {}
                }
            }
        }
        Ok(stats)
    }
}

/// One tier's and metric's adoption in a month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageStats {
    /// Partners with any use.
    pub users: u64,
    /// Units used.
    pub total: u64,
    /// Partners who reached 80% of the limit.
    pub near_limit: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hard(limit: u64) -> Allowance {
        Allowance { limit: Some(limit), overage_price: None, custom: false }
    }

    #[test]
    fn bands_pin_the_aggregate_effect_and_the_ceiling() {
        // limit 100: near-limit from 80.
        let a = hard(100);
        let first = band(0, 5, &a, Some(95));
        assert!(first.first_use && !first.crosses_near_limit);
        let below = band(10, 5, &a, Some(95));
        assert_eq!((below.low, below.high, below.crosses_near_limit), (1, Some(74), false));
        let crossing = band(76, 5, &a, Some(95));
        assert_eq!((crossing.low, crossing.high, crossing.crosses_near_limit), (75, Some(79), true));
        let above = band(85, 5, &a, Some(95));
        assert_eq!((above.low, above.high), (80, Some(95)));
        let unlimited = band(3, 5, &Allowance { limit: None, overage_price: None, custom: false }, None);
        assert_eq!((unlimited.low, unlimited.high), (1, None));
    }

    #[test]
    fn counters_are_read_from_their_prefixed_attributes() {
        let item: Item = [("used_leads", n(4)), ("period", s("2026-01")), ("used_aiResponses", n(2))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let counts = counts_of(&item);
        assert_eq!(counts.len(), 2);
        assert_eq!(counts["leads"], 4);
    }
}
