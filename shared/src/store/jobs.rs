//! The subscription dashboard's bulk jobs (keys in `keys`, "Subscription dashboard
//! jobs"): the job record, whose progress writes are conditional on its version,
//! and one item per partner, written with `attribute_not_exists` in the same
//! transaction as the effect.

use super::keys::{self, META};
use super::partners::TransitionIndexes;
use super::{build_err, n, ConditionFailed, Item, PartnerRefusal, Store, StoreError, WriteError};
use crate::domain::audit::AuditEntry;
use crate::domain::dashboard_job::{Job, JobItem};
use crate::domain::subscription::Transition;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};

/// Job records and their items are kept this long.
const JOB_RETENTION_SECS: i64 = 30 * 86_400;

impl Store {
    fn job_item_item(item: &JobItem, ttl_at: i64) -> Result<Item, StoreError> {
        let mut out =
            Self::item(item, &[("PK", keys::job_pk(&item.job_id)), ("SK", keys::job_item_sk(&item.partner_id))])?;
        out.insert("ttl".into(), n(ttl_at + JOB_RETENTION_SECS));
        Ok(out)
    }

    /// The job item an `old_item` of a failed condition holds.
    pub fn job_item_of(old: Option<Item>) -> Option<JobItem> {
        old.and_then(|o| serde_dynamo::from_item(o).ok())
    }
}

/// A transition with extra conditional items: `Err((i, old))` when the `i`-th
/// extra item failed its condition (nothing was written).
pub type ExtraApplied = Result<(), (usize, Option<Item>)>;

/// Dashboard bulk jobs and their items.
pub trait JobStore {
    /// A partner's item for a transaction: written only if the job has none for the
    /// partner yet (the old one comes back if it has).
    fn job_item_put(&self, item: &JobItem, now_epoch: i64) -> Result<TransactWriteItem, StoreError>;
    /// A partner's item on its own (an outcome with no effect to record: skipped).
    /// `Some(existing)`: the job already has one for the partner; nothing was written.
    fn put_job_item(
        &self,
        item: &JobItem,
        now_epoch: i64,
    ) -> impl std::future::Future<Output = Result<Option<JobItem>, StoreError>> + Send;
    /// Changes an item's outcome (the email failed after the claim).
    fn set_job_item(
        &self,
        item: &JobItem,
        now_epoch: i64,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
    fn create_job(&self, job: &Job, now_epoch: i64)
        -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
    fn get_job(&self, job_id: &str) -> impl std::future::Future<Output = Result<Option<Job>, StoreError>> + Send;
    /// Writes a chunk's progress, conditional on the version it started from.
    /// `Ok(false)`: another runner wrote that chunk first; nothing was written.
    fn save_job(
        &self,
        before_version: u64,
        job: &Job,
        now_epoch: i64,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// `apply_transition` with `extra` conditional items in the same transaction.
    /// `Ok(Err((i, old)))`: the `i`-th extra item failed its condition; nothing was
    /// written.
    fn apply_transition_with(
        &self,
        t: &Transition,
        audit: &AuditEntry,
        extra: Vec<TransactWriteItem>,
    ) -> impl std::future::Future<Output = Result<ExtraApplied, WriteError<PartnerRefusal>>> + Send;
}

impl JobStore for Store {
    fn job_item_put(&self, item: &JobItem, now_epoch: i64) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::job_item_item(item, now_epoch)?))
            .condition_expression("attribute_not_exists(PK)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err("Put"))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
    async fn put_job_item(&self, item: &JobItem, now_epoch: i64) -> Result<Option<JobItem>, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::job_item_item(item, now_epoch)?))
            .condition_expression("attribute_not_exists(PK)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(e) => match e.into_service_error() {
                PutItemError::ConditionalCheckFailedException(failed) => {
                    Ok(failed.item().cloned().map(serde_dynamo::from_item).transpose()?)
                }
                other => Err(StoreError::Sdk { operation: "PutItem", source: Box::new(other) }),
            },
        }
    }
    async fn set_job_item(&self, item: &JobItem, now_epoch: i64) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::job_item_item(item, now_epoch)?))
            .send()
            .await
            .map_err(|e| StoreError::sdk("PutItem", e))?;
        Ok(())
    }
    async fn create_job(&self, job: &Job, now_epoch: i64) -> Result<(), StoreError> {
        let mut item = Self::item(job, &[("PK", keys::job_pk(&job.job_id)), ("SK", META.to_string())])?;
        item.insert("ttl".into(), n(now_epoch + JOB_RETENTION_SECS));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(|e| StoreError::sdk("PutItem", e))?;
        Ok(())
    }
    async fn get_job(&self, job_id: &str) -> Result<Option<Job>, StoreError> {
        match self.get(keys::job_pk(job_id), META).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item(item)?)),
            None => Ok(None),
        }
    }
    async fn save_job(&self, before_version: u64, job: &Job, now_epoch: i64) -> Result<bool, StoreError> {
        let mut item = Self::item(job, &[("PK", keys::job_pk(&job.job_id)), ("SK", META.to_string())])?;
        item.insert("ttl".into(), n(now_epoch + JOB_RETENTION_SECS));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(before_version as i64))
            .send()
            .await;
        super::conditional(result.map(|_| ()), "PutItem")
    }
    async fn apply_transition_with(
        &self,
        t: &Transition,
        audit: &AuditEntry,
        extra: Vec<TransactWriteItem>,
    ) -> Result<Result<(), (usize, Option<Item>)>, WriteError<PartnerRefusal>> {
        let (mut items, at): (Vec<TransactWriteItem>, TransitionIndexes) = self.transition_items(t, audit)?;
        let first_extra = items.len();
        items.extend(extra);
        match self.transact(items).await? {
            Ok(()) => Ok(Ok(())),
            Err(ConditionFailed { index, old_item }) if index >= first_extra => {
                Ok(Err((index - first_extra, old_item)))
            }
            Err(failed) => Err(WriteError::Refused(at.failure(failed, t.before.is_none()))),
        }
    }
}
