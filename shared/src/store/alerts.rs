//! Staff alerts and the daily operational counts (docs/alerts.md).

use super::keys;
use super::{build_err, conditional, n, s, Store, StoreError, WriteError};
use crate::domain::alerts::{Alert, AlertRule, OpsCounts};
use crate::domain::audit::AuditEntry;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

/// The rule changed since it was read (or exists when it was meant to be new).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleRule;

pub trait AlertStore {
    /// The days `from..=to` (`YYYY-MM-DD`) that have counts, oldest first: one
    /// Query of the `OPS` partition.
    fn ops_days(
        &self,
        from: &str,
        to: &str,
    ) -> impl std::future::Future<Output = Result<Vec<(String, OpsCounts)>, StoreError>> + Send;
    /// Every rule: one Query.
    fn alert_rules(&self) -> impl std::future::Future<Output = Result<Vec<AlertRule>, StoreError>> + Send;
    fn alert_rule(&self, id: &str) -> impl std::future::Future<Output = Result<Option<AlertRule>, StoreError>> + Send;
    /// Creates or replaces a rule, conditional on the version read (`None`: new),
    /// with its audit entry, in one transaction.
    fn put_alert_rule(
        &self,
        rule: &AlertRule,
        expected_version: Option<u64>,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<StaleRule>>> + Send;
    /// Claims an alert for sending: succeeds when it was never fired in its
    /// window, or when an earlier run's claim lapsed (`leaseUntil < now`) before
    /// it was sent. `Ok(false)`: sent already, or another run is sending it.
    fn claim_alert(
        &self,
        alert: &Alert,
        now: &str,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// Marks a claimed alert sent (conditional on the claim).
    fn mark_alert_sent(
        &self,
        alert: &Alert,
        sent_at: &str,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// Gives a claimed alert back (its email failed), so the next run retries it.
    fn release_alert(&self, alert: &Alert) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// Every fired alert, newest first: one Query of the partition.
    fn alerts(&self) -> impl std::future::Future<Output = Result<Vec<Alert>, StoreError>> + Send;
}

impl AlertStore for Store {
    async fn ops_days(&self, from: &str, to: &str) -> Result<Vec<(String, OpsCounts)>, StoreError> {
        let (first, last) = keys::ops_days_range(from, to);
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(keys::OPS_PARTITION))
                    .expression_attribute_values(":from", s(&first))
                    .expression_attribute_values(":to", s(&last))
            })
            .await?;
        // The items come in date order, one per tier and day: summed by date.
        let mut days: Vec<(String, OpsCounts)> = Vec::new();
        for item in items {
            let date = super::ClaimAttributes(&item).text("date").unwrap_or_default();
            let counts: OpsCounts = serde_dynamo::from_item(item)?;
            match days.last_mut() {
                Some((last, sum)) if *last == date => *sum = sum.plus(counts),
                _ => days.push((date, counts)),
            }
        }
        Ok(days)
    }

    async fn alert_rules(&self) -> Result<Vec<AlertRule>, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk")
                    .expression_attribute_values(":pk", s(keys::ALERT_RULES_PARTITION))
            })
            .await?;
        items.into_iter().map(|i| serde_dynamo::from_item(i).map_err(StoreError::from)).collect()
    }

    async fn alert_rule(&self, id: &str) -> Result<Option<AlertRule>, StoreError> {
        match self.get(keys::ALERT_RULES_PARTITION.into(), id).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item(item)?)),
            None => Ok(None),
        }
    }

    async fn put_alert_rule(
        &self,
        rule: &AlertRule,
        expected_version: Option<u64>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError<StaleRule>> {
        let item = Self::item(rule, &[("PK", keys::ALERT_RULES_PARTITION.into()), ("SK", rule.rule_id.clone())])?;
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = match expected_version {
            Some(v) => put.condition_expression("version = :v").expression_attribute_values(":v", n(v as i64)),
            None => put.condition_expression("attribute_not_exists(PK)"),
        };
        let put = put.build().map_err(build_err("Put"))?;
        let items = vec![TransactWriteItem::builder().put(put).build(), self.audit_put(audit)?];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(WriteError::Refused(StaleRule)),
        }
    }

    async fn claim_alert(&self, alert: &Alert, now: &str) -> Result<bool, StoreError> {
        let item = Self::item(alert, &[("PK", keys::ALERTS_PARTITION.into()), ("SK", alert.alert_id.clone())])?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR (#state = :sending AND leaseUntil < :now)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":now", s(now))
            .send()
            .await;
        conditional(result.map(|_| ()), "PutItem")
    }

    async fn mark_alert_sent(&self, alert: &Alert, sent_at: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::ALERTS_PARTITION))
            .key("SK", s(&alert.alert_id))
            .update_expression("SET #state = :sent, sentAt = :at")
            .condition_expression("claim = :claim")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sent", s("sent"))
            .expression_attribute_values(":at", s(sent_at))
            .expression_attribute_values(":claim", s(&alert.claim))
            .send()
            .await;
        conditional(result.map(|_| ()), "UpdateItem")
    }

    async fn release_alert(&self, alert: &Alert) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(keys::ALERTS_PARTITION))
            .key("SK", s(&alert.alert_id))
            .condition_expression("claim = :claim AND #state = :sending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":claim", s(&alert.claim))
            .send()
            .await;
        conditional(result.map(|_| ()), "DeleteItem")
    }

    async fn alerts(&self) -> Result<Vec<Alert>, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk").expression_attribute_values(":pk", s(keys::ALERTS_PARTITION))
            })
            .await?;
        let mut out: Vec<Alert> = items
            .into_iter()
            .map(|i| serde_dynamo::from_item(i).map_err(StoreError::from))
            .collect::<Result<_, _>>()?;
        out.sort_by(|a, b| b.fired_at.cmp(&a.fired_at).then(a.alert_id.cmp(&b.alert_id)));
        Ok(out)
    }
}
