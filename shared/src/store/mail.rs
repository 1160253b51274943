//! The per-recipient daily email quota: one counter item per recipient and day,
//! claimed with a conditional `ADD`, so concurrent senders (cron runs, webhooks)
//! can never send more than the cap between them.

use super::{conditional, keys, n, s, Store, StoreError};
use chrono::NaiveDate;

/// The per-recipient daily email quota.
pub trait MailQuotaStore {
    /// Takes one unit of `recipient`'s quota for `day`. `Ok(false)`: the cap is
    /// reached (nothing changed). A cap of 0 refuses everything without a call.
    fn claim_mail_quota(
        &self,
        recipient: &str,
        day: NaiveDate,
        cap: u32,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// Gives back one unit claimed by `claim_mail_quota` (the send failed). Never
    /// goes below zero; releasing when nothing was claimed is a no-op.
    fn release_mail_quota(
        &self,
        recipient: &str,
        day: NaiveDate,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
    /// Units of `recipient`'s quota used on `day` (strongly consistent).
    fn mail_quota_used(
        &self,
        recipient: &str,
        day: NaiveDate,
    ) -> impl std::future::Future<Output = Result<u32, StoreError>> + Send;
}

impl MailQuotaStore for Store {
    async fn claim_mail_quota(&self, recipient: &str, day: NaiveDate, cap: u32) -> Result<bool, StoreError> {
        if cap == 0 {
            return Ok(false);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::mail_quota_pk(&keys::mail_recipient_hash(recipient))))
            .key("SK", s(keys::mail_quota_sk(day)))
            .update_expression("ADD #sent :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#sent) OR #sent < :cap")
            .expression_attribute_names("#sent", "sent")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cap", n(i64::from(cap)))
            .expression_attribute_values(":ttl", n(quota_expiry(day)))
            .send()
            .await;
        conditional(result.map(|_| ()), "UpdateItem")
    }
    async fn release_mail_quota(&self, recipient: &str, day: NaiveDate) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::mail_quota_pk(&keys::mail_recipient_hash(recipient))))
            .key("SK", s(keys::mail_quota_sk(day)))
            .update_expression("ADD #sent :minus_one")
            .condition_expression("#sent > :zero")
            .expression_attribute_names("#sent", "sent")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        // Never below zero: nothing to give back is not an error.
        conditional(result.map(|_| ()), "UpdateItem").map(|_| ())
    }
    async fn mail_quota_used(&self, recipient: &str, day: NaiveDate) -> Result<u32, StoreError> {
        let item =
            self.get(keys::mail_quota_pk(&keys::mail_recipient_hash(recipient)), &keys::mail_quota_sk(day)).await?;
        Ok(item
            .as_ref()
            .and_then(|i| i.get("sent"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0))
    }
}

/// Epoch seconds at which the quota item of `day` may be deleted: midnight UTC
/// `QUOTA_RETENTION_DAYS` after the day.
pub(crate) fn quota_expiry(day: NaiveDate) -> i64 {
    super::ttl::days_after(day, super::ttl::QUOTA_RETENTION_DAYS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_items_expire_three_days_after_their_day() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        // 2026-11-24T00:00:00Z
        assert_eq!(quota_expiry(day), 1_795_478_400);
    }
}
