//! Experiment access patterns (keys and their purpose are in `keys`).

use super::keys::{self, GSI1, GSI3, META};
use super::partners::{IndexQuery, SortRange};
use super::ListError;
use super::PageRequest;
use super::PartnerStore;
use super::{build_err, n, s, ConditionFailed, Item, Page, Store, StoreError, WriteError};
use crate::domain::audit::AuditEntry;
use crate::domain::campaign::Campaign;
use crate::domain::experiment::{Counts, Delta, Experiment, ExperimentStatus, LiveExperiment, Participant};
use crate::domain::tier::TierUpdate;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use std::collections::HashMap;

/// Why an experiment write was refused, by the condition that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExperimentRefusal {
    /// The experiment to change is not there.
    Missing,
    /// An experiment with the id being created is there.
    Exists,
    /// The experiment's stored version is not the one the change was computed from.
    Stale { current: Option<u64> },
    /// Another experiment (`holder`) holds the tier's slot.
    TierClaimed { holder: Option<String> },
    /// Rolling out a winner: the tier changed or was archived since it was read.
    TierChanged,
    /// A campaign experiment's write: the campaign changed since it was read.
    CampaignChanged,
}

/// A record an experiment's write changes in the same transaction, each at the
/// version read and with its audit entry: a pricing winner's new tier version,
/// or a campaign experiment's campaign (recording the experiment when it is
/// created, reallocated to the winner when it is rolled out).
pub enum LinkedWrite<'a> {
    Tier(&'a TierUpdate, &'a AuditEntry),
    Campaign { before_version: u64, after: &'a Campaign, audit: &'a AuditEntry },
}

/// A participant's assignment as stored; `new` when this call made it.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub participant: Participant,
    pub new: bool,
}

fn num(item: &Item, name: &str) -> i128 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn text(item: &Item, name: &str) -> String {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

fn participant_from(item: &Item) -> Participant {
    Participant {
        variant_id: text(item, "variantId"),
        phase: num(item, "phase") as u32,
        seq: num(item, "seq") as u64,
        events: item
            .get("events")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|e| e.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
        revenue: num(item, "revenue") as i64,
        assigned_at: text(item, "assignedAt"),
    }
}

/// The shard a participant's counters go to: a fixed function of the user, so one
/// participant's writes always meet the same item.
pub fn shard_of(experiment_id: &str, user_id: &str) -> u32 {
    (crate::domain::experiment::bucket(experiment_id, user_id) % u64::from(keys::EXPERIMENT_SHARDS)) as u32
}

impl Store {
    pub(crate) fn experiment_item(e: &Experiment) -> Result<Item, StoreError> {
        let sort = format!("{}#{}", e.created_at, e.experiment_id);
        Self::item(
            e,
            &[
                ("PK", keys::experiment_pk(&e.experiment_id)),
                ("SK", META.to_string()),
                ("GSI1PK", keys::experiment_status_pk(e.status.as_str())),
                ("GSI1SK", sort),
                ("GSI3PK", keys::EXPERIMENTS_PARTITION.to_string()),
                ("GSI3SK", e.experiment_id.clone()),
            ],
        )
    }

    fn live_item(e: &Experiment) -> Result<Item, StoreError> {
        Self::item(&e.live(), &[("PK", keys::EXPERIMENT_LIVE_PARTITION.to_string()), ("SK", e.target_tier.clone())])
    }

    /// The META write conditional on the version `before` was read at.
    fn versioned_put(&self, before: &Experiment, after: &Experiment) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::experiment_item(after)?))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", n(before.version as i64))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err("Put"))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The tier slot: claimed when the experiment starts holding its tier (at most
    /// one per tier), refreshed while it holds it, released when it ends.
    fn live_write(&self, before: &Experiment, after: &Experiment) -> Result<Option<TransactWriteItem>, StoreError> {
        let (was, is) = (before.holds_tier(), after.holds_tier());
        let mine = ":mine";
        let write = match (was, is) {
            (false, true) => {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(Self::live_item(after)?))
                    .condition_expression("attribute_not_exists(PK)")
                    .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                    .build()
                    .map_err(build_err("Put"))?;
                TransactWriteItem::builder().put(put).build()
            }
            (true, true) => {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(Self::live_item(after)?))
                    .condition_expression("experimentId = :mine")
                    .expression_attribute_values(mine, s(after.experiment_id.clone()))
                    .build()
                    .map_err(build_err("Put"))?;
                TransactWriteItem::builder().put(put).build()
            }
            (true, false) => {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .key("PK", s(keys::EXPERIMENT_LIVE_PARTITION))
                    .key("SK", s(before.target_tier.clone()))
                    .condition_expression("attribute_not_exists(PK) OR experimentId = :mine")
                    .expression_attribute_values(mine, s(before.experiment_id.clone()))
                    .build()
                    .map_err(build_err("Delete"))?;
                TransactWriteItem::builder().delete(delete).build()
            }
            (false, false) => return Ok(None),
        };
        Ok(Some(write))
    }

    fn experiment_conflict(failed: ConditionFailed) -> WriteError<ExperimentRefusal> {
        WriteError::Refused(match failed {
            ConditionFailed { index: 0, old_item: None } => ExperimentRefusal::Missing,
            ConditionFailed { index: 0, old_item: Some(old) } => {
                ExperimentRefusal::Stale { current: Some(num(&old, "version") as u64) }
            }
            ConditionFailed { index: 1, old_item } => ExperimentRefusal::TierClaimed {
                holder: old_item.map(|o| text(&o, "experimentId")).filter(|s| !s.is_empty()),
            },
            ConditionFailed { .. } => ExperimentRefusal::Stale { current: None },
        })
    }

    /// The linked record's writes: the tier's new version (and price version),
    /// or the campaign at the version read; each first, then its audit entry.
    fn linked_writes(&self, write: Option<LinkedWrite<'_>>) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut items = Vec::new();
        match write {
            None => {}
            Some(LinkedWrite::Tier(update, tier_audit)) => {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(Self::tier_item(&update.after)?))
                    .condition_expression("version = :expected AND #status = :active")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":expected", n(update.before.version as i64))
                    .expression_attribute_values(":active", s("active"))
                    .build()
                    .map_err(build_err("Put"))?;
                items.push(TransactWriteItem::builder().put(put).build());
                if update.after.price_version != update.before.price_version {
                    items.push(self.price_put(&update.after)?);
                }
                items.push(self.audit_put(tier_audit)?);
            }
            Some(LinkedWrite::Campaign { before_version, after, audit }) => {
                items.push(self.campaign_put(after, Some(before_version))?);
                items.push(self.audit_put(audit)?);
            }
        }
        Ok(items)
    }

    fn counter_update(
        &self,
        e: &Experiment,
        variant_id: &str,
        user_id: &str,
        adds: &[(&str, i128)],
    ) -> Result<TransactWriteItem, StoreError> {
        let adds: Vec<&(&str, i128)> = adds.iter().filter(|(_, v)| *v != 0).collect();
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::experiment_pk(&e.experiment_id)))
            .key("SK", s(keys::variant_shard_sk(e.phase, variant_id, shard_of(&e.experiment_id, user_id))));
        let parts = ["variantId = :variant", "phase = :phase"];
        update = update
            .expression_attribute_values(":variant", s(variant_id))
            .expression_attribute_values(":phase", n(i64::from(e.phase)));
        let mut add_parts = Vec::new();
        for (i, (name, value)) in adds.iter().enumerate() {
            add_parts.push(format!("#a{i} :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), *name)
                .expression_attribute_values(format!(":a{i}"), AttributeValue::N(value.to_string()));
        }
        let mut expression = format!("SET {}", parts.join(", "));
        if !add_parts.is_empty() {
            expression.push_str(&format!(" ADD {}", add_parts.join(", ")));
        }
        let update = update.update_expression(expression).build().map_err(build_err("Update"))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// Pricing experiments, assignments and their counters.
pub trait ExperimentStore {
    fn get_experiment(
        &self,
        experiment_id: &str,
    ) -> impl std::future::Future<Output = Result<Option<Experiment>, StoreError>> + Send;
    fn list_experiments(
        &self,
        status: Option<ExperimentStatus>,
        page: &PageRequest,
    ) -> impl std::future::Future<Output = Result<Page<Experiment>, ListError>> + Send;
    /// A new experiment with its audit entry; a campaign experiment also records
    /// itself on its campaign (at the version read, audited) in the same
    /// transaction, so two experiments cannot both take one campaign.
    fn create_experiment(
        &self,
        e: &Experiment,
        audit: &AuditEntry,
        campaign: Option<LinkedWrite<'_>>,
    ) -> impl std::future::Future<Output = Result<(), WriteError<ExperimentRefusal>>> + Send;
    /// An edit or a lifecycle step: META (versioned), the tier slot, the audit entry.
    fn save_experiment(
        &self,
        before: &Experiment,
        after: &Experiment,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<ExperimentRefusal>>> + Send;
    /// Rolls a winner out in one transaction: the experiment completes and leaves
    /// its tier; when the winner changes the price, the tier gets a new price
    /// version (conditional on the tier version read) with its own audit entry.
    /// Partners keep the price version their term started at (grandfathering).
    fn implement_winner(
        &self,
        before: &Experiment,
        after: &Experiment,
        audit: &AuditEntry,
        rollout: Option<LinkedWrite<'_>>,
    ) -> impl std::future::Future<Output = Result<(), WriteError<ExperimentRefusal>>> + Send;
    /// First exposure: the assignment and the variant's participant count, in one
    /// transaction, conditional on the experiment still being active in `e`'s
    /// phase (`None` when it is not any more). A participant already assigned in
    /// this phase gets the stored assignment back (from the failed condition's
    /// old image, no extra read).
    fn assign(
        &self,
        e: &Experiment,
        user_id: &str,
        variant_id: &str,
        at: &str,
    ) -> impl std::future::Future<Output = Result<Option<Assignment>, StoreError>> + Send;
    /// The experiment and one participant's assignment in one BatchGetItem.
    fn experiment_and_participant(
        &self,
        experiment_id: &str,
        user_id: &str,
    ) -> impl std::future::Future<Output = Result<(Option<Experiment>, Option<Participant>), StoreError>> + Send;
    /// One tracking event: the participant's state (conditional on the `seq` it was
    /// read at, so concurrent events of one participant apply one at a time) and
    /// the variant's counters, together. `Ok(false)`: the participant changed in
    /// between; read again.
    fn track(
        &self,
        e: &Experiment,
        user_id: &str,
        p: &Participant,
        key: &str,
        d: &Delta,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// Every variant's counters in one phase: one Query over the shards.
    fn variant_counts(
        &self,
        experiment_id: &str,
        phase: u32,
    ) -> impl std::future::Future<Output = Result<Vec<(String, Counts)>, StoreError>> + Send;
    /// Every experiment holding a tier (one Query; tens of items at most).
    fn live_experiments(&self) -> impl std::future::Future<Output = Result<Vec<LiveExperiment>, StoreError>> + Send;
}

impl ExperimentStore for Store {
    async fn get_experiment(&self, experiment_id: &str) -> Result<Option<Experiment>, StoreError> {
        match self.get(keys::experiment_pk(experiment_id), META).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item(item)?)),
            None => Ok(None),
        }
    }
    async fn list_experiments(
        &self,
        status: Option<ExperimentStatus>,
        page: &PageRequest,
    ) -> Result<Page<Experiment>, ListError> {
        let q = match status {
            Some(status) => IndexQuery {
                index: Some(GSI1),
                partition: keys::experiment_status_pk(status.as_str()),
                range: SortRange::All,
                newest_first: true,
                filters: vec![],
            },
            None => IndexQuery {
                index: Some(GSI3),
                partition: keys::EXPERIMENTS_PARTITION.to_string(),
                range: SortRange::All,
                newest_first: true,
                filters: vec![],
            },
        };
        self.query_page(&q, page).await
    }
    async fn create_experiment(
        &self,
        e: &Experiment,
        audit: &AuditEntry,
        campaign: Option<LinkedWrite<'_>>,
    ) -> Result<(), WriteError<ExperimentRefusal>> {
        let mut items =
            vec![self.put(Self::experiment_item(e)?, Some("attribute_not_exists(PK)"))?, self.audit_put(audit)?];
        let with_campaign = campaign.is_some();
        items.extend(self.linked_writes(campaign)?);
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(ConditionFailed { index: 0, .. }) => Err(WriteError::Refused(ExperimentRefusal::Exists)),
            Err(_) if with_campaign => Err(WriteError::Refused(ExperimentRefusal::CampaignChanged)),
            Err(_) => Err(WriteError::Refused(ExperimentRefusal::Exists)),
        }
    }
    async fn save_experiment(
        &self,
        before: &Experiment,
        after: &Experiment,
        audit: &AuditEntry,
    ) -> Result<(), WriteError<ExperimentRefusal>> {
        let mut items = vec![self.versioned_put(before, after)?];
        if let Some(live) = self.live_write(before, after)? {
            items.push(live);
        }
        items.push(self.audit_put(audit)?);
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(failed) => Err(Self::experiment_conflict(failed)),
        }
    }
    async fn implement_winner(
        &self,
        before: &Experiment,
        after: &Experiment,
        audit: &AuditEntry,
        rollout: Option<LinkedWrite<'_>>,
    ) -> Result<(), WriteError<ExperimentRefusal>> {
        let mut items = vec![self.versioned_put(before, after)?];
        let live = self.live_write(before, after)?;
        let has_live = live.is_some();
        items.extend(live);
        items.push(self.audit_put(audit)?);
        let rollout_index = items.len();
        let refusal = match &rollout {
            Some(LinkedWrite::Campaign { .. }) => ExperimentRefusal::CampaignChanged,
            _ => ExperimentRefusal::TierChanged,
        };
        items.extend(self.linked_writes(rollout)?);
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(ConditionFailed { index, .. }) if index == rollout_index => Err(WriteError::Refused(refusal)),
            Err(ConditionFailed { index: 1, .. }) if !has_live => {
                Err(WriteError::Refused(ExperimentRefusal::Stale { current: None }))
            }
            Err(failed) => Err(Self::experiment_conflict(failed)),
        }
    }
    async fn assign(
        &self,
        e: &Experiment,
        user_id: &str,
        variant_id: &str,
        at: &str,
    ) -> Result<Option<Assignment>, StoreError> {
        let item: Item = HashMap::from([
            ("PK".to_string(), s(keys::experiment_pk(&e.experiment_id))),
            ("SK".to_string(), s(keys::assignment_sk(user_id))),
            ("experimentId".to_string(), s(e.experiment_id.clone())),
            ("userId".to_string(), s(user_id)),
            ("variantId".to_string(), s(variant_id)),
            ("phase".to_string(), n(i64::from(e.phase))),
            ("assignedAt".to_string(), s(at)),
            ("seq".to_string(), n(0)),
            ("revenue".to_string(), n(0)),
            ("events".to_string(), AttributeValue::L(vec![])),
        ]);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR phase < :phase")
            .expression_attribute_values(":phase", n(i64::from(e.phase)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err("Put"))?;
        let count = self.counter_update(e, variant_id, user_id, &[("participants", 1)])?;
        // Only while the experiment is still active in this phase: a pause, an
        // end or a rollout since it was read counts nobody more.
        let running = ConditionCheck::builder()
            .table_name(&self.table)
            .key("PK", s(keys::experiment_pk(&e.experiment_id)))
            .key("SK", s(META))
            .condition_expression("#status = :active AND phase = :phase")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":phase", n(i64::from(e.phase)))
            .build()
            .map_err(build_err("ConditionCheck"))?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            count,
            TransactWriteItem::builder().condition_check(running).build(),
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(Some(Assignment {
                participant: Participant {
                    variant_id: variant_id.to_string(),
                    phase: e.phase,
                    assigned_at: at.to_string(),
                    ..Participant::default()
                },
                new: true,
            })),
            Err(ConditionFailed { index: 2, .. }) => Ok(None),
            Err(ConditionFailed { old_item: Some(old), .. }) => {
                Ok(Some(Assignment { participant: participant_from(&old), new: false }))
            }
            // The condition only fails on an existing item, which DynamoDB returns.
            Err(ConditionFailed { .. }) => Err(StoreError::TransactionConflict),
        }
    }
    async fn experiment_and_participant(
        &self,
        experiment_id: &str,
        user_id: &str,
    ) -> Result<(Option<Experiment>, Option<Participant>), StoreError> {
        let meta = (keys::experiment_pk(experiment_id), META.to_string());
        let assignment = (keys::experiment_pk(experiment_id), keys::assignment_sk(user_id));
        let mut found = self.batch_get(&[meta.clone(), assignment.clone()]).await?;
        let experiment = match found.remove(&meta) {
            Some(item) => Some(serde_dynamo::from_item(item)?),
            None => None,
        };
        Ok((experiment, found.remove(&assignment).map(|i| participant_from(&i))))
    }
    async fn track(
        &self,
        e: &Experiment,
        user_id: &str,
        p: &Participant,
        key: &str,
        d: &Delta,
    ) -> Result<bool, StoreError> {
        let mut events: Vec<AttributeValue> = p.events.iter().map(|k| s(k.clone())).collect();
        events.push(s(key));
        let update = Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::experiment_pk(&e.experiment_id)))
            .key("SK", s(keys::assignment_sk(user_id)))
            .update_expression("SET seq = :next, events = :events, revenue = :revenue")
            .condition_expression("seq = :seq AND phase = :phase")
            .expression_attribute_values(":next", n(p.seq as i64 + 1))
            .expression_attribute_values(":seq", n(p.seq as i64))
            .expression_attribute_values(":phase", n(i64::from(p.phase)))
            .expression_attribute_values(":events", AttributeValue::L(events))
            .expression_attribute_values(":revenue", n(d.new_revenue))
            .build()
            .map_err(build_err("Update"))?;
        let counters = self.counter_update(
            e,
            &p.variant_id,
            user_id,
            &[
                ("signups", i128::from(d.signups)),
                ("conversions", i128::from(d.conversions)),
                ("revenueCount", i128::from(d.revenue_count)),
                ("revenueSum", i128::from(d.revenue_sum)),
                ("revenueSumSq", d.revenue_sum_sq),
                ("payers", i128::from(d.payers)),
                ("retention30", i128::from(d.retention30)),
                ("retention90", i128::from(d.retention90)),
            ],
        )?;
        Ok(self.transact(vec![TransactWriteItem::builder().update(update).build(), counters]).await?.is_ok())
    }
    async fn variant_counts(&self, experiment_id: &str, phase: u32) -> Result<Vec<(String, Counts)>, StoreError> {
        let mut totals: Vec<(String, Counts)> = Vec::new();
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                    .expression_attribute_values(":pk", s(keys::experiment_pk(experiment_id)))
                    .expression_attribute_values(":prefix", s(keys::variant_phase_prefix(phase)))
                    .consistent_read(true)
            })
            .await?;
        {
            for item in items {
                let shard = Counts {
                    participants: num(&item, "participants") as u64,
                    signups: num(&item, "signups") as u64,
                    conversions: num(&item, "conversions") as u64,
                    revenue_count: num(&item, "revenueCount") as u64,
                    revenue_sum: num(&item, "revenueSum"),
                    revenue_sum_sq: num(&item, "revenueSumSq"),
                    payers: num(&item, "payers") as u64,
                    retention30: num(&item, "retention30") as u64,
                    retention90: num(&item, "retention90") as u64,
                };
                let variant = text(&item, "variantId");
                match totals.iter_mut().find(|(v, _)| *v == variant) {
                    Some((_, c)) => c.add(&shard),
                    None => totals.push((variant, shard)),
                }
            }
        }
        Ok(totals)
    }
    async fn live_experiments(&self) -> Result<Vec<LiveExperiment>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(keys::EXPERIMENT_LIVE_PARTITION))
            .send()
            .await
            .map_err(|e| StoreError::sdk("Query", e))?;
        let mut live = Vec::new();
        for item in out.items.unwrap_or_default() {
            live.push(serde_dynamo::from_item(item)?);
        }
        Ok(live)
    }
}
