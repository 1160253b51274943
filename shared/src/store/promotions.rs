//! Promotion access patterns (keys and their purpose are in `keys`): the promotion
//! and its code lookups written together, the reads behind validate and redeem
//! (one or two BatchGetItems), and the redemption transaction that holds every
//! limit under concurrency.

use super::keys::{self, GSI1, GSI2, GSI3, META};
use super::PageRequest;
use super::PartnerStore;
use super::{
    build_err, n, s, ConditionFailed, IndexQuery, Item, ListError, Page, SortRange, Store, StoreError, WriteError,
};
use crate::domain::audit::AuditEntry;
use crate::domain::partner::Partner;
use crate::domain::promotion::{Promotion, PromotionStatus};
use crate::domain::tier::Tier;
use aws_sdk_dynamodb::types::{Delete, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// `CODE#{code}` / LOOKUP: the code's promotion and a copy of its terms.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeLookup {
    pub code: String,
    pub promotion_id: String,
    pub terms_version: u64,
    pub terms: Promotion,
    /// A campaign's personal code (docs/campaigns.md): only this partner can use
    /// it; to anyone else it does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_to: Option<String>,
}

/// Seed 000 `PromotionRedemption`, plus what a finance reader needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Redemption {
    pub redemption_id: String,
    pub promotion_id: String,
    /// The partner who redeemed (seed `userId`).
    pub user_id: String,
    pub redeemed_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub original_price: i64,
    pub discount_amount: i64,
    pub final_price: i64,
    pub currency: String,
    pub trial_days: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_before: Option<String>,
    pub tier_after: String,
    pub billing_period: crate::domain::money::BillingPeriod,
    /// The staff member who redeemed on the partner's behalf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales_rep: Option<String>,
    /// Other promotions redeemed in the same purchase.
    #[serde(default)]
    pub combined_with: Vec<String>,
}

/// What validate and redeem read in their first BatchGetItem.
#[derive(Debug, Default)]
pub struct ApplicationRead {
    /// Per code asked for: its lookup, when the code exists.
    pub lookups: HashMap<String, CodeLookup>,
    /// Per promotion id read from META (ids asked for, or the second read).
    pub promotions: HashMap<String, Promotion>,
    /// Per promotion id: the customer's redemption count so far.
    pub redeemed: HashMap<String, u64>,
    pub tier: Option<Tier>,
    pub partner: Option<Partner>,
}

/// One promotion's part of a redemption transaction.
#[derive(Debug, Clone)]
pub struct RedemptionLine {
    /// The terms the price was computed with (`termsVersion` is checked).
    pub promotion: Promotion,
    pub redemption: Redemption,
    /// The customer's count the transaction expects (`None`: their first).
    pub seen: Option<u64>,
    /// A stale code lookup to rewrite with these terms, in the same transaction.
    pub repair_code: Option<String>,
    /// The outside event (a Stripe checkout session) this redemption belongs to:
    /// a marker written once, so that event never redeems twice.
    pub once_key: Option<String>,
}

/// Why a promotion write was refused, by the condition that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromotionRefusal {
    /// The promotion's stored version is not the one the change was computed from
    /// (or it is gone, or no longer a draft when deleted).
    Stale { current: Option<u64> },
    /// Another promotion holds this code's unique lookup.
    CodeTaken(String),
}

/// Why a redemption transaction refused, with the stored item that refused.
#[derive(Debug)]
pub enum RedeemRefusal {
    /// The promotion's item failed its condition (status, dates, cap, terms).
    Promotion { line: usize, current: Option<Box<Promotion>> },
    /// The customer's counter failed: it holds `count` redemptions.
    Customer { line: usize, count: u64 },
    /// A redemption id collided (a retry with the same id already applied it).
    Duplicate,
    /// The `once_key` marker exists: this event already redeemed.
    AlreadyApplied,
}

/// Which condition of a redemption transaction an item carries.
#[derive(Debug, Clone, Copy)]
enum Role {
    Promotion,
    Customer,
    Once,
}

fn validation_keys(promotion_id: &str) -> Vec<(String, String)> {
    (0..keys::VALIDATION_SHARDS).map(|i| (keys::promotion_pk(promotion_id), keys::validations_sk(i))).collect()
}

fn validations_in(found: &HashMap<(String, String), Item>, promotion_id: &str) -> u64 {
    validation_keys(promotion_id).iter().filter_map(|k| found.get(k)).map(|i| number(i, "count")).sum()
}

/// Attributes only redemptions change.
const COUNTERS: [&str; 4] = ["redemptionCount", "uniqueUsers", "totalRevenue", "totalDiscount"];

fn promotion_from(item: Item) -> Result<Promotion, StoreError> {
    Ok(serde_dynamo::from_item(item)?)
}

fn number(item: &Item, attr: &str) -> u64 {
    item.get(attr).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

impl Store {
    fn promotion_item(p: &Promotion) -> Result<Item, StoreError> {
        let mut keys = vec![
            ("PK", keys::promotion_pk(&p.promotion_id)),
            ("SK", META.to_string()),
            ("GSI1PK", keys::promotion_status_pk(p.status.as_str())),
            ("GSI1SK", keys::dated_sk(p.start_date, &p.promotion_id)),
            ("GSI3PK", keys::PROMOTIONS_PARTITION.to_string()),
            ("GSI3SK", p.promotion_id.clone()),
        ];
        if p.auto_expire && p.status.is_live() {
            keys.push(("GSI2PK", keys::PROMO_EXPIRY_PARTITION.to_string()));
            keys.push(("GSI2SK", keys::dated_sk(p.end_date, &p.promotion_id)));
        }
        Self::item(p, &keys)
    }

    fn code_item(p: &Promotion, code: &str) -> Result<Item, StoreError> {
        let lookup = CodeLookup {
            code: code.to_string(),
            promotion_id: p.promotion_id.clone(),
            terms_version: p.terms_version,
            terms: p.clone().without_private(),
            bound_to: None,
        };
        Self::item(&lookup, &[("PK", keys::code_pk(code)), ("SK", keys::LOOKUP.to_string())])
    }

    /// A campaign's personal code for `partner_id`: a lookup bound to the partner,
    /// written only if the code is free. The promotion's own code list is left
    /// alone (a campaign may mint thousands).
    pub(crate) fn personal_code_put(
        &self,
        p: &Promotion,
        code: &str,
        partner_id: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let lookup = CodeLookup {
            code: code.to_string(),
            promotion_id: p.promotion_id.clone(),
            terms_version: p.terms_version,
            terms: p.clone().without_private(),
            bound_to: Some(partner_id.to_string()),
        };
        let item = Self::item(&lookup, &[("PK", keys::code_pk(code)), ("SK", keys::LOOKUP.to_string())])?;
        self.put(item, Some("attribute_not_exists(PK)"))
    }

    fn code_put(&self, p: &Promotion, code: &str, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
        self.put(Self::code_item(p, code)?, condition)
    }

    /// The META update of an edit or workflow step: every attribute but the
    /// redemption counters is set from `after` (counters belong to redemptions,
    /// which never wait for an editor), conditional on the version it was computed
    /// from. Optional attributes `after` no longer has (a cleared rejection, a lifted
    /// cap, the expiry index entry of a promotion no longer live) are removed.
    fn promotion_update(&self, before: &Promotion, after: &Promotion) -> Result<TransactWriteItem, StoreError> {
        self.versioned_update(Self::promotion_item(before)?, Self::promotion_item(after)?, &COUNTERS, None)
    }

    fn edit_failed(failed: ConditionFailed, codes: &[String]) -> WriteError<PromotionRefusal> {
        WriteError::Refused(match failed.index {
            0 => PromotionRefusal::Stale {
                current: failed.old_item.as_ref().map(|i| number(i, "version")).filter(|v| *v > 0),
            },
            i => match codes.get(i - 1) {
                Some(code) => PromotionRefusal::CodeTaken(code.clone()),
                None => PromotionRefusal::Stale { current: None },
            },
        })
    }

    fn promotion_keys(&self, promotion_ids: &[String], partner_id: Option<&str>) -> Vec<(String, String)> {
        let mut wanted = Vec::new();
        for id in promotion_ids {
            wanted.push((keys::promotion_pk(id), META.to_string()));
            if let Some(pid) = partner_id {
                wanted.push((keys::promotion_pk(id), keys::redeemer_sk(pid)));
            }
        }
        wanted
    }

    fn collect_promotions(
        &self,
        found: &HashMap<(String, String), Item>,
        promotion_ids: &[String],
        partner_id: Option<&str>,
        read: &mut ApplicationRead,
    ) -> Result<(), StoreError> {
        for id in promotion_ids {
            if let Some(item) = found.get(&(keys::promotion_pk(id), META.to_string())) {
                read.promotions.insert(id.clone(), promotion_from(item.clone())?);
            }
            if let Some(pid) = partner_id {
                let count = found
                    .get(&(keys::promotion_pk(id), keys::redeemer_sk(pid)))
                    .map_or(0, |i| number(i, "redemptionCount"));
                read.redeemed.insert(id.clone(), count);
            }
        }
        Ok(())
    }
}

/// Promotions, their codes, redemptions and validation counts.
pub trait PromotionStore {
    /// A new promotion, its code lookups (each unique across promotions) and the
    /// audit entry, in one transaction.
    fn create_promotion(
        &self,
        p: &Promotion,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<PromotionRefusal>>> + Send;
    /// An edit or workflow step: META conditional on `before`'s version, lookups
    /// for `new_codes` (unique), and the audit entry, together. Existing lookups
    /// keep their copy of the terms; a redemption through a stale copy fails its
    /// `termsVersion` condition and rewrites it (`redeem`).
    fn save_promotion(
        &self,
        before: &Promotion,
        after: &Promotion,
        new_codes: &[String],
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<PromotionRefusal>>> + Send;
    /// Deletes a draft and frees its codes.
    fn delete_promotion(
        &self,
        p: &Promotion,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<PromotionRefusal>>> + Send;
    /// The promotion with its validation count (one BatchGetItem).
    fn get_promotion(
        &self,
        promotion_id: &str,
    ) -> impl std::future::Future<Output = Result<Option<Promotion>, StoreError>> + Send;
    /// Promotions by status (oldest start first) or all of them (newest first).
    fn list_promotions(
        &self,
        status: Option<PromotionStatus>,
        page: &PageRequest,
    ) -> impl std::future::Future<Output = Result<Page<Promotion>, ListError>> + Send;
    fn list_redemptions(
        &self,
        promotion_id: &str,
        page: &PageRequest,
    ) -> impl std::future::Future<Output = Result<Page<Redemption>, ListError>> + Send;
    /// One customer's redemptions of every promotion, newest first: a page of the
    /// sparse `REDEEMER#{partnerId}` partition of GSI2 (written with each
    /// redemption), after a read of the partner (`None`: no such partner).
    fn partner_redemptions(
        &self,
        partner_id: &str,
        page: &PageRequest,
    ) -> impl std::future::Future<Output = Result<Option<Page<Redemption>>, ListError>> + Send;
    /// Adds `count` validations of a promotion (the conversion-rate denominator) to
    /// one of its counter shards; `shard` spreads concurrent writers.
    fn record_validations(
        &self,
        promotion_id: &str,
        shard: u32,
        count: u64,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
    /// The first read of validate and redeem: code lookups or promotions, the tier,
    /// the partner and (for promotions named by id) the partner's counters, in one
    /// BatchGetItem.
    fn read_application(
        &self,
        codes: &[String],
        promotion_ids: &[String],
        tier_id: &str,
        partner_id: Option<&str>,
    ) -> impl std::future::Future<Output = Result<ApplicationRead, StoreError>> + Send;
    /// The second read of validate by code: the promotions' live items and the
    /// customer's counters.
    fn read_promotions(
        &self,
        promotion_ids: &[String],
        partner_id: Option<&str>,
        read: &mut ApplicationRead,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
    /// Records a purchase's redemptions in one transaction. Per promotion:
    /// - META: +1 redemption, revenue and discount totals, +1 unique user on the
    ///   customer's first; conditional on status active, inside its dates, below
    ///   its cap and at the terms version the price was computed with;
    /// - the customer's counter: +1, conditional on the count it was seen at (or
    ///   not existing) and below `redemptionsPerUser`;
    /// - the redemption item (unique id);
    /// - a stale code lookup rewritten, when there is one.
    fn redeem(
        &self,
        lines: &[RedemptionLine],
        today: chrono::NaiveDate,
    ) -> impl std::future::Future<Output = Result<Result<(), RedeemRefusal>, StoreError>> + Send;
    /// Live promotions with autoExpire whose end date is before `today` (the
    /// cron's sparse GSI2 range, never a Scan).
    fn promotions_ended_before(
        &self,
        today: chrono::NaiveDate,
    ) -> impl std::future::Future<Output = Result<Vec<Promotion>, StoreError>> + Send;
}

impl PromotionStore for Store {
    async fn create_promotion(&self, p: &Promotion, audit: &AuditEntry) -> Result<(), WriteError<PromotionRefusal>> {
        let mut items = vec![self.put(Self::promotion_item(p)?, Some("attribute_not_exists(PK)"))?];
        for code in &p.promotion_codes {
            items.push(self.code_put(p, code, Some("attribute_not_exists(PK)"))?);
        }
        items.push(self.audit_put(audit)?);
        self.transact(items).await?.map_err(|f| Self::edit_failed(f, &p.promotion_codes))
    }
    async fn save_promotion(
        &self,
        before: &Promotion,
        after: &Promotion,
        new_codes: &[String],
        audit: &AuditEntry,
    ) -> Result<(), WriteError<PromotionRefusal>> {
        let mut items = vec![self.promotion_update(before, after)?];
        for code in new_codes {
            items.push(self.code_put(after, code, Some("attribute_not_exists(PK)"))?);
        }
        items.push(self.audit_put(audit)?);
        self.transact(items).await?.map_err(|f| Self::edit_failed(f, new_codes))
    }
    async fn delete_promotion(&self, p: &Promotion, audit: &AuditEntry) -> Result<(), WriteError<PromotionRefusal>> {
        let meta = Delete::builder()
            .table_name(&self.table)
            .key("PK", s(keys::promotion_pk(&p.promotion_id)))
            .key("SK", s(META))
            .condition_expression("version = :v AND #status = :draft")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":v", n(p.version as i64))
            .expression_attribute_values(":draft", s(PromotionStatus::Draft.as_str()))
            .build()
            .map_err(build_err("Delete"))?;
        let mut items = vec![TransactWriteItem::builder().delete(meta).build()];
        for code in &p.promotion_codes {
            let delete = Delete::builder()
                .table_name(&self.table)
                .key("PK", s(keys::code_pk(code)))
                .key("SK", s(keys::LOOKUP))
                .condition_expression("promotionId = :me")
                .expression_attribute_values(":me", s(p.promotion_id.clone()))
                .build()
                .map_err(build_err("Delete"))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        items.push(self.audit_put(audit)?);
        self.transact(items).await?.map_err(|_| WriteError::Refused(PromotionRefusal::Stale { current: None }))
    }
    async fn get_promotion(&self, promotion_id: &str) -> Result<Option<Promotion>, StoreError> {
        let pk = keys::promotion_pk(promotion_id);
        let mut wanted = validation_keys(promotion_id);
        wanted.push((pk.clone(), META.to_string()));
        let found = self.batch_get(&wanted).await?;
        let validations = validations_in(&found, promotion_id);
        match found.get(&(pk, META.to_string())) {
            Some(item) => Ok(Some(promotion_from(item.clone())?.with_performance(validations))),
            None => Ok(None),
        }
    }
    async fn list_promotions(
        &self,
        status: Option<PromotionStatus>,
        page: &PageRequest,
    ) -> Result<Page<Promotion>, ListError> {
        let q = match status {
            Some(status) => IndexQuery {
                index: Some(GSI1),
                partition: keys::promotion_status_pk(status.as_str()),
                range: SortRange::All,
                newest_first: false,
                filters: vec![],
            },
            None => IndexQuery {
                index: Some(GSI3),
                partition: keys::PROMOTIONS_PARTITION.to_string(),
                range: SortRange::All,
                newest_first: true,
                filters: vec![],
            },
        };
        let mut page: Page<Promotion> = self.query_page(&q, page).await?;
        // The rates need each promotion's validation count: one more BatchGetItem
        // per page (pages hold at most 100, BatchGetItem's own limit).
        let wanted: Vec<(String, String)> = page.items.iter().flat_map(|p| validation_keys(&p.promotion_id)).collect();
        let mut counts = HashMap::new();
        for chunk in wanted.chunks(100) {
            counts.extend(self.batch_get(chunk).await?);
        }
        page.items = page
            .items
            .into_iter()
            .map(|p| {
                let validations = validations_in(&counts, &p.promotion_id);
                p.with_performance(validations).without_private()
            })
            .collect();
        Ok(page)
    }
    async fn list_redemptions(&self, promotion_id: &str, page: &PageRequest) -> Result<Page<Redemption>, ListError> {
        let q = IndexQuery {
            index: None,
            partition: keys::promotion_pk(promotion_id),
            range: SortRange::Prefix(keys::REDEMPTION_PREFIX.to_string()),
            newest_first: true,
            filters: vec![],
        };
        self.query_page(&q, page).await
    }
    async fn partner_redemptions(
        &self,
        partner_id: &str,
        page: &PageRequest,
    ) -> Result<Option<Page<Redemption>>, ListError> {
        let partner_key = (keys::partner_pk(partner_id), META.to_string());
        if self.batch_get(std::slice::from_ref(&partner_key)).await.map_err(ListError::Store)?.is_empty() {
            return Ok(None);
        }
        let q = IndexQuery {
            index: Some(GSI2),
            partition: keys::redeemer_pk(partner_id),
            range: SortRange::All,
            newest_first: true,
            filters: vec![],
        };
        Ok(Some(self.query_page(&q, page).await?))
    }
    async fn record_validations(&self, promotion_id: &str, shard: u32, count: u64) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::promotion_pk(promotion_id)))
            .key("SK", s(keys::validations_sk(shard)))
            .update_expression("ADD #count :n")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":n", n(count as i64))
            .send()
            .await
            .map_err(|e| StoreError::sdk("UpdateItem", e))?;
        Ok(())
    }
    async fn read_application(
        &self,
        codes: &[String],
        promotion_ids: &[String],
        tier_id: &str,
        partner_id: Option<&str>,
    ) -> Result<ApplicationRead, StoreError> {
        let mut wanted: Vec<(String, String)> = codes.iter().map(|c| (keys::code_pk(c), keys::LOOKUP.into())).collect();
        wanted.extend(self.promotion_keys(promotion_ids, partner_id));
        wanted.push((keys::tier_pk(tier_id), META.into()));
        if let Some(pid) = partner_id {
            wanted.push((keys::partner_pk(pid), META.into()));
        }
        let found = self.batch_get(&wanted).await?;
        let mut read = ApplicationRead::default();
        for code in codes {
            if let Some(item) = found.get(&(keys::code_pk(code), keys::LOOKUP.to_string())) {
                let lookup: CodeLookup = serde_dynamo::from_item(item.clone())?;
                // A personal code is someone else's: as if it did not exist.
                if lookup.bound_to.as_deref().is_none_or(|b| Some(b) == partner_id) {
                    read.lookups.insert(code.clone(), lookup);
                }
            }
        }
        self.collect_promotions(&found, promotion_ids, partner_id, &mut read)?;
        if let Some(item) = found.get(&(keys::tier_pk(tier_id), META.to_string())) {
            read.tier = Some(serde_dynamo::from_item(item.clone())?);
        }
        if let Some(pid) = partner_id {
            if let Some(item) = found.get(&(keys::partner_pk(pid), META.to_string())) {
                read.partner = Some(serde_dynamo::from_item(item.clone())?);
            }
        }
        Ok(read)
    }
    async fn read_promotions(
        &self,
        promotion_ids: &[String],
        partner_id: Option<&str>,
        read: &mut ApplicationRead,
    ) -> Result<(), StoreError> {
        let found = self.batch_get(&self.promotion_keys(promotion_ids, partner_id)).await?;
        self.collect_promotions(&found, promotion_ids, partner_id, read)
    }
    async fn redeem(
        &self,
        lines: &[RedemptionLine],
        today: chrono::NaiveDate,
    ) -> Result<Result<(), RedeemRefusal>, StoreError> {
        let mut items = Vec::new();
        let mut roles = Vec::new();
        let today = today.format("%Y-%m-%d").to_string();
        for (line_no, line) in lines.iter().enumerate() {
            let p = &line.promotion;
            let r = &line.redemption;
            let first = line.seen.is_none();
            let meta = Update::builder()
                .table_name(&self.table)
                .key("PK", s(keys::promotion_pk(&p.promotion_id)))
                .key("SK", s(META))
                .update_expression(
                    "SET redemptionCount = redemptionCount + :one, uniqueUsers = uniqueUsers + :u, \
                     totalRevenue = totalRevenue + :rev, totalDiscount = totalDiscount + :disc",
                )
                .condition_expression(
                    "#status = :active AND startDate <= :today AND endDate >= :today AND termsVersion = :tv \
                     AND (attribute_not_exists(maxRedemptions) OR redemptionCount < maxRedemptions)",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":u", n(i64::from(first)))
                .expression_attribute_values(":rev", n(r.final_price))
                .expression_attribute_values(":disc", n(r.discount_amount))
                .expression_attribute_values(":active", s(PromotionStatus::Active.as_str()))
                .expression_attribute_values(":today", s(today.clone()))
                .expression_attribute_values(":tv", n(p.terms_version as i64))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .build()
                .map_err(build_err("Update"))?;
            roles.push((line_no, Some(Role::Promotion)));
            items.push(TransactWriteItem::builder().update(meta).build());

            let mut counter = Update::builder()
                .table_name(&self.table)
                .key("PK", s(keys::promotion_pk(&p.promotion_id)))
                .key("SK", s(keys::redeemer_sk(&r.user_id)))
                .update_expression(
                    "SET partnerId = :pid, lastRedeemedAt = :at, firstRedeemedAt = if_not_exists(firstRedeemedAt, :at) \
                     ADD redemptionCount :one",
                )
                .expression_attribute_values(":pid", s(r.user_id.clone()))
                .expression_attribute_values(":at", s(r.redeemed_at.clone()))
                .expression_attribute_values(":one", n(1))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
            counter = match line.seen {
                None => counter.condition_expression("attribute_not_exists(PK)"),
                Some(seen) => counter
                    .condition_expression("redemptionCount = :seen AND redemptionCount < :limit")
                    .expression_attribute_values(":seen", n(seen as i64))
                    .expression_attribute_values(":limit", n(i64::from(p.redemptions_per_user))),
            };
            roles.push((line_no, Some(Role::Customer)));
            items.push(TransactWriteItem::builder().update(counter.build().map_err(build_err("Update"))?).build());

            let item = Self::item(
                r,
                &[
                    ("PK", keys::promotion_pk(&p.promotion_id)),
                    ("SK", keys::redemption_sk(&r.redeemed_at, &r.redemption_id)),
                    ("GSI2PK", keys::redeemer_pk(&r.user_id)),
                    ("GSI2SK", keys::audit_sk(&r.redeemed_at, &r.redemption_id)),
                ],
            )?;
            roles.push((line_no, None));
            items.push(self.put(item, Some("attribute_not_exists(PK)"))?);
            if let Some(key) = &line.once_key {
                let marker = HashMap::from([
                    ("PK".to_string(), s(keys::promotion_pk(&p.promotion_id))),
                    ("SK".to_string(), s(keys::redemption_once_sk(key))),
                    ("redemptionId".to_string(), s(r.redemption_id.clone())),
                ]);
                roles.push((line_no, Some(Role::Once)));
                items.push(self.put(marker, Some("attribute_not_exists(PK)"))?);
            }
            if let Some(code) = &line.repair_code {
                // Only the terms are rewritten: a personal code stays bound.
                let terms = serde_dynamo::to_attribute_value(p.clone().without_private())?;
                let update = Update::builder()
                    .table_name(&self.table)
                    .key("PK", s(keys::code_pk(code)))
                    .key("SK", s(keys::LOOKUP))
                    .update_expression("SET terms = :terms, termsVersion = :tv")
                    .condition_expression("promotionId = :pid")
                    .expression_attribute_values(":terms", terms)
                    .expression_attribute_values(":tv", n(p.terms_version as i64))
                    .expression_attribute_values(":pid", s(p.promotion_id.clone()))
                    .build()
                    .map_err(build_err("Update"))?;
                roles.push((line_no, None));
                items.push(TransactWriteItem::builder().update(update).build());
            }
        }
        match self.transact(items).await? {
            Ok(()) => Ok(Ok(())),
            Err(failed) => {
                let (line, role) = roles.get(failed.index).copied().unwrap_or((0, None));
                let refusal = match role {
                    Some(Role::Once) => RedeemRefusal::AlreadyApplied,
                    Some(Role::Promotion) => RedeemRefusal::Promotion {
                        line,
                        current: failed.old_item.map(promotion_from).transpose()?.map(Box::new),
                    },
                    Some(Role::Customer) => RedeemRefusal::Customer {
                        line,
                        count: failed.old_item.as_ref().map_or(0, |i| number(i, "redemptionCount")),
                    },
                    None => RedeemRefusal::Duplicate,
                };
                Ok(Err(refusal))
            }
        }
    }
    async fn promotions_ended_before(&self, today: chrono::NaiveDate) -> Result<Vec<Promotion>, StoreError> {
        let items = self
            .query_all(|q| {
                q.index_name(GSI2)
                    .key_condition_expression("GSI2PK = :pk AND GSI2SK < :today")
                    .expression_attribute_values(":pk", s(keys::PROMO_EXPIRY_PARTITION))
                    .expression_attribute_values(":today", s(today.format("%Y-%m-%d").to_string()))
            })
            .await?;
        items.into_iter().map(promotion_from).collect()
    }
}
