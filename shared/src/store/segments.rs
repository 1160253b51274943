//! Segment access patterns and the popular-tier claim (keys and their purpose are
//! in `keys`).

use super::keys::{self, GSI1, META};
use super::{build_err, s, stored_version, ConditionFailed, Item, Store, StoreError, WriteError};
use crate::domain::audit::AuditEntry;
use crate::domain::segment::Segment;
use crate::domain::tier::{Tier, TierStatus};
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use std::collections::BTreeMap;

/// Why a segment write was refused, by the condition that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentRefusal {
    /// The segment to change is not there.
    Missing,
    /// A segment with the id being created is there.
    Exists,
    /// The segment's stored version is not the one the change was computed from.
    Stale { current: Option<u64> },
    /// One transaction holds at most 100 items (the moves and the audit entry).
    TooManyItems,
}

/// The popular-badge items of a tier write, and the claim's position among them
/// with its segment (to tell a refused claim from other failed conditions).
pub(super) type PopularWrites = (Vec<TransactWriteItem>, Option<(usize, String)>);

impl Store {
    fn segment_item(segment: &Segment) -> Result<Item, StoreError> {
        Self::item(
            segment,
            &[
                ("PK", keys::segment_pk(&segment.segment_id)),
                ("SK", META.to_string()),
                ("GSI1PK", keys::SEGMENTS_PARTITION.to_string()),
                ("GSI1SK", keys::segment_list_sk(segment.sort_order, &segment.segment_id)),
            ],
        )
    }

    fn versioned_segment_put(&self, before: &Segment, after: &Segment) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::segment_item(after)?))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(before.version.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err("Put"))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn segment_conflict(failed: ConditionFailed) -> WriteError<SegmentRefusal> {
        WriteError::Refused(match failed.old_item {
            None => SegmentRefusal::Missing,
            Some(old) => SegmentRefusal::Stale { current: stored_version(Some(&old)) },
        })
    }

    /// Claims (`Some(tier)` holder) or releases the popular badge of `segment` for
    /// `tier_id`, conditional on nobody else holding it.
    fn popular_put(&self, segment: &str, tier_id: &str, claim: bool) -> Result<TransactWriteItem, StoreError> {
        let mut item: Item = Item::from([
            ("PK".to_string(), s(keys::segment_pk(segment))),
            ("SK".to_string(), s(keys::SEGMENT_POPULAR)),
        ]);
        if claim {
            item.insert("tierId".to_string(), s(tier_id));
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(tierId) OR tierId = :tier")
            .expression_attribute_values(":tier", s(tier_id))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err("Put"))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The popular-badge writes a tier change needs: release the segment it held
    /// the badge in, claim the one it holds it in now. Returns the items and, when
    /// there is a claim, its position among them.
    pub(super) fn popular_writes(&self, before: Option<&Tier>, after: &Tier) -> Result<PopularWrites, StoreError> {
        let holds = |t: &Tier| t.popular && t.status == TierStatus::Active;
        let held = before.filter(|b| holds(b)).map(|b| b.segment.clone());
        let holding = holds(after).then(|| after.segment.clone());
        let mut items = Vec::new();
        let mut claim = None;
        if held == holding {
            return Ok((items, claim));
        }
        if let Some(old) = held {
            items.push(self.popular_put(&old, &after.tier_id, false)?);
        }
        if let Some(new) = holding {
            claim = Some((items.len(), new.clone()));
            items.push(self.popular_put(&new, &after.tier_id, true)?);
        }
        Ok((items, claim))
    }
}

/// Storefront segments and their popular-tier badges.
pub trait SegmentStore {
    fn get_segment(
        &self,
        segment_id: &str,
    ) -> impl std::future::Future<Output = Result<Option<Segment>, StoreError>> + Send;
    /// Every segment, retired ones included, in storefront order: one Query.
    fn list_segments(&self) -> impl std::future::Future<Output = Result<Vec<Segment>, StoreError>> + Send;
    /// Creates a segment with its audit entry; an existing id is refused.
    fn create_segment(
        &self,
        segment: &Segment,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<SegmentRefusal>>> + Send;
    /// Writes an edit conditional on the version it was computed from.
    fn save_segment(
        &self,
        before: &Segment,
        after: &Segment,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<SegmentRefusal>>> + Send;
    /// Writes every segment's new place in one transaction, each conditional on the
    /// version the caller saw, with one audit entry for the whole order.
    fn reorder_segments(
        &self,
        moves: &[(Segment, Segment)],
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<SegmentRefusal>>> + Send;
    /// The popular tier of each segment named, as the claims record it.
    fn popular_tiers(
        &self,
        segments: &[String],
    ) -> impl std::future::Future<Output = Result<BTreeMap<String, String>, StoreError>> + Send;
}

impl SegmentStore for Store {
    async fn get_segment(&self, segment_id: &str) -> Result<Option<Segment>, StoreError> {
        match self.get(keys::segment_pk(segment_id), META).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item(item)?)),
            None => Ok(None),
        }
    }
    async fn list_segments(&self) -> Result<Vec<Segment>, StoreError> {
        let items = self
            .query_all(|q| {
                q.index_name(GSI1)
                    .key_condition_expression("GSI1PK = :pk")
                    .expression_attribute_values(":pk", s(keys::SEGMENTS_PARTITION))
            })
            .await?;
        items.into_iter().map(|item| serde_dynamo::from_item(item).map_err(StoreError::from)).collect()
    }
    async fn create_segment(&self, segment: &Segment, audit: &AuditEntry) -> Result<(), WriteError<SegmentRefusal>> {
        let items =
            vec![self.put(Self::segment_item(segment)?, Some("attribute_not_exists(PK)"))?, self.audit_put(audit)?];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(WriteError::Refused(SegmentRefusal::Exists)),
        }
    }
    async fn save_segment(
        &self,
        before: &Segment,
        after: &Segment,
        audit: &AuditEntry,
    ) -> Result<(), WriteError<SegmentRefusal>> {
        let items = vec![self.versioned_segment_put(before, after)?, self.audit_put(audit)?];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(failed) => Err(Self::segment_conflict(failed)),
        }
    }
    async fn reorder_segments(
        &self,
        moves: &[(Segment, Segment)],
        audit: &AuditEntry,
    ) -> Result<(), WriteError<SegmentRefusal>> {
        if moves.len() >= 100 {
            return Err(WriteError::Refused(SegmentRefusal::TooManyItems));
        }
        let mut items = Vec::with_capacity(moves.len() + 1);
        for (before, after) in moves {
            items.push(self.versioned_segment_put(before, after)?);
        }
        items.push(self.audit_put(audit)?);
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(failed) => Err(Self::segment_conflict(failed)),
        }
    }
    async fn popular_tiers(&self, segments: &[String]) -> Result<BTreeMap<String, String>, StoreError> {
        let wanted: Vec<(String, String)> =
            segments.iter().map(|id| (keys::segment_pk(id), keys::SEGMENT_POPULAR.to_string())).collect();
        let found = self.batch_get(&wanted).await?;
        let mut out = BTreeMap::new();
        for (id, key) in segments.iter().zip(&wanted) {
            if let Some(tier) = found.get(key).and_then(|item| item.get("tierId")).and_then(|v| v.as_s().ok()) {
                out.insert(id.clone(), tier.clone());
            }
        }
        Ok(out)
    }
}
