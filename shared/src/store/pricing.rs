//! The storefront's configuration (pricing rules and constraints, upsell rules,
//! feature flags) and its event counters (keys and their purpose are in `keys`).

use super::keys::{self, PRICING_PARTITION, STOREFRONT_STATS_PARTITION};
use super::{build_err, counters_of, n, s, stored_version, ttl, ConditionFailed, Item, Store, StoreError, WriteError};
use crate::domain::addon::AddOn;
use crate::domain::audit::AuditEntry;
use crate::domain::pricing_rules::{CompetitorPrice, ConstraintRecord, PricingConfig, PricingRule};
use crate::domain::storefront::{FeatureFlags, FunnelCounts, StorefrontConfig, StorefrontEvent, UpsellCounts};
use crate::domain::upsell::UpsellRule;
use aws_sdk_dynamodb::types::{Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// How long an event id is remembered: a page resends within seconds.
const EVENT_RETENTION_DAYS: u64 = 2;

/// The storefront counters of a range of months, by segment and by upsell rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StorefrontCounts {
    pub funnel: BTreeMap<String, Vec<FunnelCounts>>,
    pub upsell: BTreeMap<String, Vec<UpsellCounts>>,
}

/// Why a pricing write was refused, by the condition that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PricingRefusal {
    Missing,
    Exists,
    Stale { current: Option<u64> },
}

impl Store {
    fn rule_item(rule: &PricingRule) -> Result<Item, StoreError> {
        Self::item(rule, &[("PK", PRICING_PARTITION.to_string()), ("SK", keys::pricing_rule_sk(&rule.rule_id))])
    }

    fn config_item<T: serde::Serialize>(value: &T, sk: String) -> Result<Item, StoreError> {
        Self::item(value, &[("PK", PRICING_PARTITION.to_string()), ("SK", sk)])
    }

    /// `ADD` of every non-zero counter of `counts` to one stats item.
    fn counter_add<T: serde::Serialize>(&self, sk: String, counts: &T) -> Result<TransactWriteItem, StoreError> {
        let mut update =
            Update::builder().table_name(&self.table).key("PK", s(STOREFRONT_STATS_PARTITION)).key("SK", s(sk));
        let mut parts = Vec::new();
        for (i, (name, value)) in counters_of(counts)?.into_iter().filter(|(_, v)| *v != 0).enumerate() {
            parts.push(format!("#c{i} :c{i}"));
            update = update
                .expression_attribute_names(format!("#c{i}"), name)
                .expression_attribute_values(format!(":c{i}"), n(value));
        }
        let update =
            update.update_expression(format!("ADD {}", parts.join(", "))).build().map_err(build_err("Update"))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn limits_item(record: &ConstraintRecord) -> Result<Item, StoreError> {
        Self::item(
            record,
            &[
                ("PK", PRICING_PARTITION.to_string()),
                ("SK", keys::pricing_limits_sk(record.scope.as_str(), &record.scope_id)),
            ],
        )
    }

    /// A put conditional on the version read (`0`: on there being none).
    fn versioned_pricing_put(&self, item: Item, read_version: u64) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = if read_version == 0 {
            put.condition_expression("attribute_not_exists(PK)")
        } else {
            put.condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(read_version as i64))
        };
        let put = put
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err("Put"))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn pricing_conflict(failed: ConditionFailed, creating: bool) -> WriteError<PricingRefusal> {
        WriteError::Refused(match (failed.old_item, creating) {
            (Some(_), true) => PricingRefusal::Exists,
            (None, _) => PricingRefusal::Missing,
            (Some(old), false) => PricingRefusal::Stale { current: stored_version(Some(&old)) },
        })
    }
}

/// The storefront's configuration and counters.
pub trait PricingStore {
    /// Every pricing rule, constraint and upsell rule, and the flags: one Query of
    /// the configuration partition.
    fn storefront_config(&self) -> impl std::future::Future<Output = Result<StorefrontConfig, StoreError>> + Send;
    /// The pricing rules and constraints (the same Query).
    fn pricing_config(&self) -> impl std::future::Future<Output = Result<PricingConfig, StoreError>> + Send;
    fn create_upsell_rule(
        &self,
        rule: &UpsellRule,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<PricingRefusal>>> + Send;
    fn save_upsell_rule(
        &self,
        before: &UpsellRule,
        after: &UpsellRule,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<PricingRefusal>>> + Send;
    /// Creates an add-on (refused when the id is taken), audited.
    fn create_add_on(
        &self,
        add_on: &AddOn,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<PricingRefusal>>> + Send;
    /// Writes an add-on edit conditional on the version it was computed from.
    fn save_add_on(
        &self,
        before: &AddOn,
        after: &AddOn,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<PricingRefusal>>> + Send;
    /// Sets a competitor's price point for a tier (replacing the last one), audited.
    fn put_competitor_price(
        &self,
        point: &CompetitorPrice,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
    /// Removes a price point, audited; `false` when there was none.
    fn delete_competitor_price(
        &self,
        point: &CompetitorPrice,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// Writes the flags conditional on the version read (`flags.version - 1`).
    fn put_flags(
        &self,
        flags: &FeatureFlags,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<PricingRefusal>>> + Send;
    /// Counts one storefront event in `month` (its segment's funnel and, for upsell
    /// events, its rule) with the event id's marker, in one transaction: `false`
    /// when the id was counted already.
    fn record_storefront_event(
        &self,
        event: &StorefrontEvent,
        month: &str,
        today: NaiveDate,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// The counters of the months `from..=to` (`yyyy-mm`): one Query.
    fn storefront_counts(
        &self,
        from: &str,
        to: &str,
    ) -> impl std::future::Future<Output = Result<StorefrontCounts, StoreError>> + Send;
    fn create_rule(
        &self,
        rule: &PricingRule,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<PricingRefusal>>> + Send;
    /// Writes an edit conditional on the version it was computed from.
    fn save_rule(
        &self,
        before: &PricingRule,
        after: &PricingRule,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<PricingRefusal>>> + Send;
    /// Deletes a rule at the version read; the audit entry keeps what it was.
    fn delete_rule(
        &self,
        rule: &PricingRule,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<PricingRefusal>>> + Send;
    /// Writes a tier's or segment's constraints conditional on the version read
    /// (`record.version - 1`; 0 when there were none).
    fn put_constraints(
        &self,
        record: &ConstraintRecord,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<PricingRefusal>>> + Send;
}

impl PricingStore for Store {
    async fn storefront_config(&self) -> Result<StorefrontConfig, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk").expression_attribute_values(":pk", s(PRICING_PARTITION))
            })
            .await?;
        let mut config = StorefrontConfig::default();
        for item in items {
            let sk = item.get("SK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            if sk.starts_with(keys::PRICING_RULE_PREFIX) {
                config.pricing.rules.push(serde_dynamo::from_item(item)?);
            } else if sk.starts_with(keys::PRICING_LIMITS_PREFIX) {
                config.pricing.constraints.push(serde_dynamo::from_item(item)?);
            } else if sk.starts_with(keys::UPSELL_RULE_PREFIX) {
                config.upsell_rules.push(serde_dynamo::from_item(item)?);
            } else if sk.starts_with(keys::ADD_ON_PREFIX) {
                config.add_ons.push(serde_dynamo::from_item(item)?);
            } else if sk.starts_with(keys::COMPETITOR_PREFIX) {
                config.pricing.competitors.push(serde_dynamo::from_item(item)?);
            } else if sk == keys::FLAGS_SK {
                config.flags = serde_dynamo::from_item(item)?;
            }
        }
        config.pricing.rules.sort_by(|a, b| (a.priority, &a.rule_id).cmp(&(b.priority, &b.rule_id)));
        config.upsell_rules.sort_by(|a, b| (a.priority, &a.rule_id).cmp(&(b.priority, &b.rule_id)));
        config.add_ons.sort_by(|a, b| (a.sort_order, &a.add_on_id).cmp(&(b.sort_order, &b.add_on_id)));
        Ok(config)
    }
    async fn pricing_config(&self) -> Result<PricingConfig, StoreError> {
        Ok(self.storefront_config().await?.pricing)
    }
    async fn create_upsell_rule(
        &self,
        rule: &UpsellRule,
        audit: &AuditEntry,
    ) -> Result<(), WriteError<PricingRefusal>> {
        let item = Self::config_item(rule, keys::upsell_rule_sk(&rule.rule_id))?;
        let items = vec![self.versioned_pricing_put(item, 0)?, self.audit_put(audit)?];
        self.transact(items).await?.map_err(|f| Self::pricing_conflict(f, true))
    }
    async fn save_upsell_rule(
        &self,
        before: &UpsellRule,
        after: &UpsellRule,
        audit: &AuditEntry,
    ) -> Result<(), WriteError<PricingRefusal>> {
        let item = Self::config_item(after, keys::upsell_rule_sk(&after.rule_id))?;
        let items = vec![self.versioned_pricing_put(item, before.version)?, self.audit_put(audit)?];
        self.transact(items).await?.map_err(|f| Self::pricing_conflict(f, false))
    }
    async fn create_add_on(&self, add_on: &AddOn, audit: &AuditEntry) -> Result<(), WriteError<PricingRefusal>> {
        let item = Self::config_item(add_on, keys::add_on_sk(&add_on.add_on_id))?;
        let items = vec![self.versioned_pricing_put(item, 0)?, self.audit_put(audit)?];
        self.transact(items).await?.map_err(|f| Self::pricing_conflict(f, true))
    }
    async fn save_add_on(
        &self,
        before: &AddOn,
        after: &AddOn,
        audit: &AuditEntry,
    ) -> Result<(), WriteError<PricingRefusal>> {
        let item = Self::config_item(after, keys::add_on_sk(&after.add_on_id))?;
        let items = vec![self.versioned_pricing_put(item, before.version)?, self.audit_put(audit)?];
        self.transact(items).await?.map_err(|f| Self::pricing_conflict(f, false))
    }
    async fn put_competitor_price(&self, point: &CompetitorPrice, audit: &AuditEntry) -> Result<(), StoreError> {
        let item = Self::config_item(point, keys::competitor_sk(&point.competitor_id, &point.tier_id))?;
        let items = vec![self.put(item, None)?, self.audit_put(audit)?];
        self.transact(items).await?.map_err(|_| StoreError::Sdk {
            operation: "put_competitor_price",
            source: "an unconditional write was refused".into(),
        })
    }
    async fn delete_competitor_price(&self, point: &CompetitorPrice, audit: &AuditEntry) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("PK", s(PRICING_PARTITION))
            .key("SK", s(keys::competitor_sk(&point.competitor_id, &point.tier_id)))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(build_err("Delete"))?;
        let items = vec![TransactWriteItem::builder().delete(delete).build(), self.audit_put(audit)?];
        Ok(self.transact(items).await?.is_ok())
    }
    async fn put_flags(&self, flags: &FeatureFlags, audit: &AuditEntry) -> Result<(), WriteError<PricingRefusal>> {
        let item = Self::config_item(flags, keys::FLAGS_SK.to_string())?;
        let items = vec![self.versioned_pricing_put(item, flags.version.saturating_sub(1))?, self.audit_put(audit)?];
        self.transact(items).await?.map_err(|f| Self::pricing_conflict(f, false))
    }
    async fn record_storefront_event(
        &self,
        event: &StorefrontEvent,
        month: &str,
        today: NaiveDate,
    ) -> Result<bool, StoreError> {
        let marker = Item::from([
            ("PK".to_string(), s(keys::storefront_event_pk(&event.event_id))),
            ("SK".to_string(), s(keys::META)),
            ("ttl".to_string(), n(ttl::days_after(today, EVENT_RETENTION_DAYS))),
        ]);
        let mut items = vec![
            self.put(marker, Some("attribute_not_exists(PK)"))?,
            self.counter_add(keys::funnel_sk(month, &event.segment_id), &FunnelCounts::one(event.step))?,
        ];
        if let Some(rule) = &event.rule_id {
            let one = FunnelCounts::one(event.step);
            let counts = UpsellCounts { upsell_shown: one.upsell_shown, upsell_accepted: one.upsell_accepted };
            items.push(self.counter_add(keys::upsell_stats_sk(month, rule), &counts)?);
        }
        Ok(self.transact(items).await?.is_ok())
    }
    async fn storefront_counts(&self, from: &str, to: &str) -> Result<StorefrontCounts, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(STOREFRONT_STATS_PARTITION))
                    .expression_attribute_values(":from", s(format!("{from}#")))
                    .expression_attribute_values(":to", s(format!("{to}#~")))
            })
            .await?;
        let mut counts = StorefrontCounts::default();
        for item in items {
            let sk = item.get("SK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let mut parts = sk.splitn(3, '#');
            let (_, kind, id) = (parts.next(), parts.next(), parts.next().unwrap_or_default().to_string());
            match kind {
                Some("FUNNEL") => counts.funnel.entry(id).or_default().push(serde_dynamo::from_item(item)?),
                Some("UPSELL") => counts.upsell.entry(id).or_default().push(serde_dynamo::from_item(item)?),
                _ => {}
            }
        }
        Ok(counts)
    }
    async fn create_rule(&self, rule: &PricingRule, audit: &AuditEntry) -> Result<(), WriteError<PricingRefusal>> {
        let items = vec![self.versioned_pricing_put(Self::rule_item(rule)?, 0)?, self.audit_put(audit)?];
        self.transact(items).await?.map_err(|f| Self::pricing_conflict(f, true))
    }
    async fn save_rule(
        &self,
        before: &PricingRule,
        after: &PricingRule,
        audit: &AuditEntry,
    ) -> Result<(), WriteError<PricingRefusal>> {
        let items = vec![self.versioned_pricing_put(Self::rule_item(after)?, before.version)?, self.audit_put(audit)?];
        self.transact(items).await?.map_err(|f| Self::pricing_conflict(f, false))
    }
    async fn delete_rule(&self, rule: &PricingRule, audit: &AuditEntry) -> Result<(), WriteError<PricingRefusal>> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("PK", s(PRICING_PARTITION))
            .key("SK", s(keys::pricing_rule_sk(&rule.rule_id)))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", n(rule.version as i64))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err("Delete"))?;
        let items = vec![TransactWriteItem::builder().delete(delete).build(), self.audit_put(audit)?];
        self.transact(items).await?.map_err(|f| Self::pricing_conflict(f, false))
    }
    async fn put_constraints(
        &self,
        record: &ConstraintRecord,
        audit: &AuditEntry,
    ) -> Result<(), WriteError<PricingRefusal>> {
        let read = record.version.saturating_sub(1);
        let items = vec![self.versioned_pricing_put(Self::limits_item(record)?, read)?, self.audit_put(audit)?];
        // Constraints are set, not created: one there already is a stale read.
        self.transact(items).await?.map_err(|f| Self::pricing_conflict(f, false))
    }
}
