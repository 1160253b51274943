//! Pricing rules and constraints (keys and their purpose are in `keys`).

use super::keys::{self, PRICING_PARTITION};
use super::{build_err, n, s, stored_version, ConditionFailed, Item, Store, StoreError, WriteError};
use crate::domain::audit::AuditEntry;
use crate::domain::pricing_rules::{ConstraintRecord, PricingConfig, PricingRule};
use aws_sdk_dynamodb::types::{Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};

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

/// The pricing configuration: rules and constraints.
pub trait PricingStore {
    /// Every rule and constraint: one Query of the pricing partition.
    fn pricing_config(&self) -> impl std::future::Future<Output = Result<PricingConfig, StoreError>> + Send;
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
    async fn pricing_config(&self) -> Result<PricingConfig, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk").expression_attribute_values(":pk", s(PRICING_PARTITION))
            })
            .await?;
        let mut config = PricingConfig::default();
        for item in items {
            let sk = item.get("SK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            if sk.starts_with(keys::PRICING_RULE_PREFIX) {
                config.rules.push(serde_dynamo::from_item(item)?);
            } else if sk.starts_with(keys::PRICING_LIMITS_PREFIX) {
                config.constraints.push(serde_dynamo::from_item(item)?);
            }
        }
        config.rules.sort_by(|a, b| (a.priority, &a.rule_id).cmp(&(b.priority, &b.rule_id)));
        Ok(config)
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
