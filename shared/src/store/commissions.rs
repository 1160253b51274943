//! Sales commissions: rates, the ledger, monthly totals and targets (keys and
//! their purpose are in `keys`).

use super::keys;
use super::{build_err, counters_of, n, s, Item, Store, StoreError};
use crate::domain::audit::AuditEntry;
use crate::domain::commission::{CommissionEntry, CommissionRate, CommissionTotals, Targets};
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use std::collections::BTreeMap;

/// One month of commissions: totals by rep and by segment, and their targets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommissionMonth {
    pub reps: BTreeMap<String, CommissionTotals>,
    pub segments: BTreeMap<String, CommissionTotals>,
    pub rep_targets: BTreeMap<String, i64>,
    pub segment_targets: BTreeMap<String, i64>,
}

/// Targets one write may set (one transaction with its audit entry).
pub const MAX_TARGETS: usize = 98;

impl Store {
    fn totals_add(&self, pk: String, sk: String, totals: &CommissionTotals) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder().table_name(&self.table).key("PK", s(pk)).key("SK", s(sk));
        let mut parts = Vec::new();
        for (i, (name, value)) in counters_of(totals)?.into_iter().enumerate() {
            parts.push(format!("#t{i} :t{i}"));
            update = update
                .expression_attribute_names(format!("#t{i}"), name)
                .expression_attribute_values(format!(":t{i}"), n(value));
        }
        let update =
            update.update_expression(format!("ADD {}", parts.join(", "))).build().map_err(build_err("Update"))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The items a commission change adds to the transaction of its invoice: the
    /// ledger line and the month's totals of its rep and segment. Unconditional:
    /// the invoice record's own condition makes the transaction happen once.
    pub(crate) fn commission_items(&self, entry: &CommissionEntry) -> Result<Vec<TransactWriteItem>, StoreError> {
        let line = Self::item(
            entry,
            &[
                ("PK", keys::commission_pk(&entry.rep_id)),
                ("SK", keys::commission_sk(&entry.month, &entry.at, &entry.invoice_id, entry.seq)),
            ],
        )?;
        let totals = CommissionTotals { commission: entry.amount, revenue: entry.revenue };
        Ok(vec![
            self.put(line, None)?,
            self.totals_add(keys::commission_month_pk(&entry.month), keys::commission_rep_sk(&entry.rep_id), &totals)?,
            self.totals_add(
                keys::commission_month_pk(&entry.month),
                keys::commission_segment_sk(&entry.segment),
                &totals,
            )?,
        ])
    }
}

/// Commission rates, statements, monthly totals and targets.
pub trait CommissionStore {
    /// Every rate of every segment: one Query.
    fn commission_rates(&self) -> impl std::future::Future<Output = Result<Vec<CommissionRate>, StoreError>> + Send;
    /// Sets a segment's rate from its `effectiveFrom` day (the same day again
    /// replaces it), with the audit entry.
    fn put_commission_rate(
        &self,
        rate: &CommissionRate,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
    /// A rep's ledger lines of `month`, oldest first: one Query of the rep's
    /// partition, the month's key range.
    fn commission_statement(
        &self,
        rep_id: &str,
        month: &str,
    ) -> impl std::future::Future<Output = Result<Vec<CommissionEntry>, StoreError>> + Send;
    /// The month's totals and targets: one Query.
    fn commission_month(
        &self,
        month: &str,
    ) -> impl std::future::Future<Output = Result<CommissionMonth, StoreError>> + Send;
    /// Sets the month's targets named (others stay), with the audit entry, in one
    /// transaction.
    fn put_targets(
        &self,
        month: &str,
        targets: &Targets,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
}

impl CommissionStore for Store {
    async fn commission_rates(&self) -> Result<Vec<CommissionRate>, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk")
                    .expression_attribute_values(":pk", s(keys::COMMISSION_RATES_PARTITION))
            })
            .await?;
        items.into_iter().map(|i| serde_dynamo::from_item(i).map_err(StoreError::from)).collect()
    }
    async fn put_commission_rate(&self, rate: &CommissionRate, audit: &AuditEntry) -> Result<(), StoreError> {
        let item = Self::item(
            rate,
            &[
                ("PK", keys::COMMISSION_RATES_PARTITION.to_string()),
                ("SK", keys::commission_rate_sk(&rate.segment_id, rate.effective_from)),
            ],
        )?;
        let items = vec![self.put(item, None)?, self.audit_put(audit)?];
        self.transact(items).await?.map_err(|_| StoreError::Sdk {
            operation: "put_commission_rate",
            source: "an unconditional write was refused".into(),
        })
    }
    async fn commission_statement(&self, rep_id: &str, month: &str) -> Result<Vec<CommissionEntry>, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk AND begins_with(SK, :month)")
                    .expression_attribute_values(":pk", s(keys::commission_pk(rep_id)))
                    .expression_attribute_values(":month", s(format!("{month}#")))
            })
            .await?;
        items.into_iter().map(|i| serde_dynamo::from_item(i).map_err(StoreError::from)).collect()
    }
    async fn commission_month(&self, month: &str) -> Result<CommissionMonth, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk")
                    .expression_attribute_values(":pk", s(keys::commission_month_pk(month)))
            })
            .await?;
        let mut out = CommissionMonth::default();
        for item in items {
            let sk = item.get("SK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let amount = || item.get("amount").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
            if let Some(rep) = sk.strip_prefix(keys::COMMISSION_TARGET_REP_PREFIX) {
                out.rep_targets.insert(rep.to_string(), amount());
            } else if let Some(segment) = sk.strip_prefix(keys::COMMISSION_TARGET_SEGMENT_PREFIX) {
                out.segment_targets.insert(segment.to_string(), amount());
            } else if let Some(rep) = sk.strip_prefix(keys::COMMISSION_REP_PREFIX) {
                out.reps.insert(rep.to_string(), serde_dynamo::from_item(item)?);
            } else if let Some(segment) = sk.strip_prefix(keys::COMMISSION_SEGMENT_PREFIX) {
                out.segments.insert(segment.to_string(), serde_dynamo::from_item(item)?);
            }
        }
        Ok(out)
    }
    async fn put_targets(&self, month: &str, targets: &Targets, audit: &AuditEntry) -> Result<(), StoreError> {
        let target = |sk: String, amount: i64| -> Result<TransactWriteItem, StoreError> {
            let item = Item::from([
                ("PK".to_string(), s(keys::commission_month_pk(month))),
                ("SK".to_string(), s(sk)),
                ("amount".to_string(), n(amount)),
            ]);
            self.put(item, None)
        };
        let mut items = Vec::new();
        for (rep, amount) in &targets.reps {
            items.push(target(format!("{}{rep}", keys::COMMISSION_TARGET_REP_PREFIX), *amount)?);
        }
        for (segment, amount) in &targets.segments {
            items.push(target(format!("{}{segment}", keys::COMMISSION_TARGET_SEGMENT_PREFIX), *amount)?);
        }
        items.push(self.audit_put(audit)?);
        self.transact(items).await?.map_err(|_| StoreError::Sdk {
            operation: "put_targets",
            source: "an unconditional write was refused".into(),
        })
    }
}
