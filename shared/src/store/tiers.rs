//! Tier access patterns (keys and their purpose are in `keys`).

use super::keys::{self, GSI1, META};
use super::PartnerStore;
use super::{
    build_err, cursor_in, cursor_out, s, stored_version, BadCursor, ConditionFailed, IndexQuery, Item, ListError, Page,
    PageRequest, SortRange, Store, StoreError, WriteError,
};
use crate::domain::audit::AuditEntry;
use crate::domain::tier::{Tier, TierStatus, TierUpdate};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use serde::{Deserialize, Serialize};

/// Why a tier write was refused, by the condition that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierRefusal {
    /// The tier to change is not there.
    Missing,
    /// A tier with the id being created is there.
    Exists,
    /// The tier's stored version is not the one the change was computed from.
    Stale { current: Option<u64> },
    /// Archiving: partners are still counted on the tier.
    HasMembers,
    /// The segment's popular badge is held by another tier (`holder`).
    PopularClaimed { segment: String, holder: Option<String> },
}

#[derive(Debug, Default, Clone)]
pub struct TierFilter {
    pub segment: Option<String>,
    pub status: Option<TierStatus>,
}

/// A price version: what the tier cost from `effectiveFrom` on. Written once, with
/// the tier change that made it; never changed after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceVersion {
    pub tier_id: String,
    pub price_version: u32,
    pub prices: crate::domain::tier::Prices,
    pub currency: String,
    pub effective_from: String,
    pub created_by: String,
}

impl Store {
    pub(super) fn tier_item(tier: &Tier) -> Result<Item, StoreError> {
        Self::item(
            tier,
            &[
                ("PK", keys::tier_pk(&tier.tier_id)),
                ("SK", META.to_string()),
                ("GSI1PK", keys::tier_catalog_partition(tier.status).to_string()),
                ("GSI1SK", keys::tier_catalog_sk(&tier.segment, tier.tier_level, tier.sort_order, &tier.tier_id)),
            ],
        )
    }

    pub(super) fn price_put(&self, tier: &Tier) -> Result<TransactWriteItem, StoreError> {
        let version = PriceVersion {
            tier_id: tier.tier_id.clone(),
            price_version: tier.price_version,
            prices: tier.prices,
            currency: tier.currency.clone(),
            effective_from: tier.updated_at.clone(),
            created_by: tier.updated_by.clone(),
        };
        let item = Self::item(
            &version,
            &[("PK", keys::tier_pk(&tier.tier_id)), ("SK", keys::tier_price_sk(tier.price_version))],
        )?;
        // Price versions are immutable: a second write of the same version is a bug.
        self.put(item, Some("attribute_not_exists(PK)"))
    }

    pub(crate) fn audit_put(&self, entry: &AuditEntry) -> Result<TransactWriteItem, StoreError> {
        let item = Self::item(
            entry,
            &[
                ("PK", keys::audit_pk(entry.entity_type, &entry.entity_id)),
                ("SK", keys::audit_sk(&entry.at, &entry.audit_id)),
                ("GSI1PK", keys::audit_day_pk(&entry.at)),
                ("GSI1SK", keys::audit_sk(&entry.at, &entry.audit_id)),
                ("GSI2PK", keys::audit_actor_pk(&entry.actor)),
                ("GSI2SK", keys::audit_sk(&entry.at, &entry.audit_id)),
            ],
        )?;
        self.put(item, None)
    }

    async fn catalog_partition(&self, partition: &str) -> Result<Vec<Tier>, StoreError> {
        let items = self
            .query_all(|q| {
                q.index_name(GSI1)
                    .key_condition_expression("GSI1PK = :pk")
                    .expression_attribute_values(":pk", s(partition))
            })
            .await?;
        items.into_iter().map(|item| serde_dynamo::from_item(item).map_err(StoreError::from)).collect()
    }
}

/// The tier catalog and its price versions.
pub trait TierStore {
    fn get_tier(&self, tier_id: &str) -> impl std::future::Future<Output = Result<Option<Tier>, StoreError>> + Send;
    /// Several tiers in one BatchGetItem, in the order asked for; missing ones are
    /// left out. Callers pass at most a handful of ids (compare takes 2–3).
    fn get_tiers(&self, ids: &[String]) -> impl std::future::Future<Output = Result<Vec<Tier>, StoreError>> + Send;
    /// The catalog in display order (segment, tier level, sort order), one page:
    /// active tiers, then (unless filtered out) archived ones. The cursor is the
    /// last key read, so a page that ends at the end of the live partition resumes
    /// there, finds it done and goes on into the archive partition.
    fn list_tiers(
        &self,
        filter: &TierFilter,
        page: &PageRequest,
    ) -> impl std::future::Future<Output = Result<Page<Tier>, ListError>> + Send;
    /// A tier's price versions, newest first, one page: a Query on the tier's own
    /// partition (`PRICE#` items sort by version). Strongly consistent, so a price
    /// change just saved is in the history the editor reloads.
    fn list_price_versions(
        &self,
        tier_id: &str,
        page: &PageRequest,
    ) -> impl std::future::Future<Output = Result<Page<PriceVersion>, ListError>> + Send;
    /// Every active tier, all segments. The catalog is small by nature (tens of tiers), so
    /// one Query on the catalog partition serves pricing reads in a single call.
    fn active_catalog(&self) -> impl std::future::Future<Output = Result<Vec<Tier>, StoreError>> + Send;
    /// The live tiers of one segment in catalog order (level, sort order): one
    /// Query of the catalog partition's `{segment}#` range.
    fn segment_tiers(&self, segment: &str) -> impl std::future::Future<Output = Result<Vec<Tier>, StoreError>> + Send;
    /// Every tier in the catalog, archived ones included (their history still
    /// counts): one Query per catalog partition.
    fn all_tiers(&self) -> impl std::future::Future<Output = Result<Vec<Tier>, StoreError>> + Send;
    /// Backfill: re-indexes every tier's META item under the catalog partition its
    /// status calls for (archived tiers written before the archive partition
    /// existed). Idempotent; returns how many items moved. The write is a plain put:
    /// an archived tier accepts no edits, so there is nothing for it to overwrite.
    fn reindex_tier_catalog(&self) -> impl std::future::Future<Output = Result<usize, StoreError>> + Send;
    /// Creates a tier with its first price version and the audit entry, atomically.
    fn create_tier(
        &self,
        tier: &Tier,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<TierRefusal>>> + Send;
    /// Writes a computed change. The write is conditional on the version the change
    /// was computed from (optimistic locking); a price change adds a price version;
    /// archiving additionally requires that no partner is on the tier.
    fn save_tier(
        &self,
        update: &TierUpdate,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<TierRefusal>>> + Send;
}

impl TierStore for Store {
    async fn get_tier(&self, tier_id: &str) -> Result<Option<Tier>, StoreError> {
        match self.get(keys::tier_pk(tier_id), META).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item(item)?)),
            None => Ok(None),
        }
    }
    async fn get_tiers(&self, ids: &[String]) -> Result<Vec<Tier>, StoreError> {
        let wanted: Vec<(String, String)> = ids.iter().map(|id| (keys::tier_pk(id), META.to_string())).collect();
        let found = self.batch_get(&wanted).await?;
        // In the order asked for; missing ones are left out.
        let mut tiers = Vec::with_capacity(found.len());
        for key in &wanted {
            if let Some(item) = found.get(key) {
                tiers.push(serde_dynamo::from_item(item.clone())?);
            }
        }
        Ok(tiers)
    }
    async fn list_tiers(&self, filter: &TierFilter, page: &PageRequest) -> Result<Page<Tier>, ListError> {
        const ATTRS: [&str; 4] = ["PK", "SK", "GSI1PK", "GSI1SK"];
        let partitions = keys::tier_catalog_partitions(filter.status);
        let mut start = None;
        let mut first = 0;
        if let Some(raw) = page.cursor.as_deref() {
            // The cursor names its partition; it must be one this filter reads.
            let found = partitions.iter().enumerate().find_map(|(i, partition)| {
                cursor_in(Some(raw), &ATTRS, ("GSI1PK", partition)).ok().flatten().map(|key| (i, key))
            });
            let (i, key) = found.ok_or(BadCursor)?;
            first = i;
            start = Some(key);
        }
        let mut items = Vec::new();
        let mut last_key: Option<Item> = None;
        for (i, partition) in partitions.iter().enumerate().skip(first) {
            let limit = page.limit as usize;
            let remaining = limit.saturating_sub(items.len());
            if remaining == 0 {
                break;
            }
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .limit(remaining as i32)
                .set_exclusive_start_key(start.take())
                .expression_attribute_values(":pk", s(*partition));
            query = match &filter.segment {
                Some(segment) => query
                    .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :segment)")
                    .expression_attribute_values(":segment", s(keys::tier_segment_prefix(segment))),
                None => query.key_condition_expression("GSI1PK = :pk"),
            };
            if let Some(status) = filter.status {
                let status = match status {
                    TierStatus::Active => "active",
                    TierStatus::Archived => "archived",
                };
                query = query
                    .filter_expression("#status = :status")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":status", s(status));
            }
            let out = query.send().await.map_err(|e| StoreError::sdk("Query", e))?;
            let read = out.items.unwrap_or_default();
            if let Some(lek) = out.last_evaluated_key {
                items.extend(read);
                last_key = Some(lek);
                break;
            }
            // This partition is done: later partitions fill the rest of the page,
            // and a full page resumes after its last item.
            if let Some(item) = read.last() {
                last_key =
                    Some(ATTRS.iter().filter_map(|a| item.get(*a).map(|v| (a.to_string(), v.clone()))).collect());
            }
            items.extend(read);
            if i + 1 == partitions.len() || items.len() < page.limit as usize {
                last_key = None;
            }
        }
        let items = items
            .into_iter()
            .map(serde_dynamo::from_item)
            .collect::<Result<Vec<Tier>, _>>()
            .map_err(StoreError::from)?;
        Ok(Page { items, next_cursor: cursor_out(last_key.as_ref()) })
    }
    async fn list_price_versions(&self, tier_id: &str, page: &PageRequest) -> Result<Page<PriceVersion>, ListError> {
        let q = IndexQuery {
            index: None,
            partition: keys::tier_pk(tier_id),
            range: SortRange::Prefix(keys::TIER_PRICE_PREFIX.to_string()),
            newest_first: true,
            filters: Vec::new(),
        };
        self.query_page(&q, page).await
    }
    async fn active_catalog(&self) -> Result<Vec<Tier>, StoreError> {
        let mut tiers = self.catalog_partition(keys::TIER_CATALOG_PARTITION).await?;
        // A tier archived before the archive partition existed (until reindexed).
        tiers.retain(|t| t.status == TierStatus::Active);
        Ok(tiers)
    }
    async fn segment_tiers(&self, segment: &str) -> Result<Vec<Tier>, StoreError> {
        let items = self
            .query_all(|q| {
                q.index_name(GSI1)
                    .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :segment)")
                    .expression_attribute_values(":pk", s(keys::TIER_CATALOG_PARTITION))
                    .expression_attribute_values(":segment", s(keys::tier_segment_prefix(segment)))
            })
            .await?;
        let mut tiers = items
            .into_iter()
            .map(|item| serde_dynamo::from_item(item).map_err(StoreError::from))
            .collect::<Result<Vec<Tier>, _>>()?;
        tiers.retain(|t| t.status == TierStatus::Active);
        Ok(tiers)
    }
    async fn all_tiers(&self) -> Result<Vec<Tier>, StoreError> {
        // Both partitions at once: every analytics route waits on this read first.
        let (mut tiers, archived) = tokio::try_join!(
            self.catalog_partition(keys::TIER_CATALOG_PARTITION),
            self.catalog_partition(keys::TIER_ARCHIVE_PARTITION)
        )?;
        tiers.extend(archived);
        Ok(tiers)
    }
    async fn reindex_tier_catalog(&self) -> Result<usize, StoreError> {
        let misplaced: Vec<Tier> = self
            .catalog_partition(keys::TIER_CATALOG_PARTITION)
            .await?
            .into_iter()
            .filter(|t| t.status != TierStatus::Active)
            .collect();
        let items = misplaced.iter().map(Self::tier_item).collect::<Result<Vec<_>, _>>()?;
        let moved = items.len();
        self.batch_put(items).await?;
        Ok(moved)
    }
    async fn create_tier(&self, tier: &Tier, audit: &AuditEntry) -> Result<(), WriteError<TierRefusal>> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::tier_item(tier)?))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(build_err("Put"))?;
        let mut items =
            vec![TransactWriteItem::builder().put(put).build(), self.price_put(tier)?, self.audit_put(audit)?];
        let (popular, claim) = self.popular_writes(None, tier)?;
        let claim = claim.map(|(i, segment)| (i + items.len(), segment));
        items.extend(popular);
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(failed) => Err(WriteError::Refused(popular_refusal(&failed, claim).unwrap_or(TierRefusal::Exists))),
        }
    }
    async fn save_tier(&self, update: &TierUpdate, audit: &AuditEntry) -> Result<(), WriteError<TierRefusal>> {
        let tier = &update.after;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::tier_item(tier)?))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(update.before.version.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err("Put"))?;
        let mut items = vec![TransactWriteItem::builder().put(put).build(), self.audit_put(audit)?];
        if tier.price_version != update.before.price_version {
            items.push(self.price_put(tier)?);
        }
        let (popular, claim) = self.popular_writes(Some(&update.before), tier)?;
        let claim = claim.map(|(i, segment)| (i + items.len(), segment));
        items.extend(popular);
        let archiving = update.before.status == TierStatus::Active && tier.status == TierStatus::Archived;
        let members_check_index = items.len();
        if archiving {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key("PK", s(keys::tier_stats_pk(&tier.tier_id)))
                .key("SK", s(keys::STATS_CURRENT))
                .condition_expression("attribute_not_exists(PK) OR memberCount = :zero")
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                .build()
                .map_err(build_err("ConditionCheck"))?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        let failed = match self.transact(items).await? {
            Ok(()) => return Ok(()),
            Err(failed) => failed,
        };
        if let Some(refusal) = popular_refusal(&failed, claim) {
            return Err(WriteError::Refused(refusal));
        }
        Err(WriteError::Refused(match failed {
            ConditionFailed { index: 0, old_item: None } => TierRefusal::Missing,
            ConditionFailed { index: 0, old_item } => TierRefusal::Stale { current: stored_version(old_item.as_ref()) },
            ConditionFailed { index, .. } if archiving && index == members_check_index => TierRefusal::HasMembers,
            ConditionFailed { .. } => TierRefusal::Stale { current: None },
        }))
    }
}

/// The popular claim at `claim` (its index, its segment) failed: another tier of
/// the segment holds the badge (named from the claim's old image).
fn popular_refusal(failed: &ConditionFailed, claim: Option<(usize, String)>) -> Option<TierRefusal> {
    let (index, segment) = claim?;
    (failed.index == index).then(|| TierRefusal::PopularClaimed {
        segment,
        holder: failed.old_item.as_ref().and_then(|i| i.get("tierId")).and_then(|v| v.as_s().ok()).cloned(),
    })
}
