//! The expiry cron's notice bookkeeping (keys and their purpose are in `keys`, "Cron"):
//! the `SUBEND#{yyyy-mm}` window queries, the notice markers (claim → mark sent, or
//! release) and the interrupted-claim sweep.
//!
//! Every method reports the read calls it made, so a run can say what it cost.

use super::keys::{self, GSI1, GSI2, META};
use super::ttl;
use super::{build_err, conditional, n, s, ConditionFailed, Item, Store, StoreError};
use crate::domain::partner::Partner;
use crate::domain::renewal::{NoticeDetails, NoticeKind};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Stale claims one run picks up at most; the rest wait for the next run.
const MAX_STALE_CLAIMS: i32 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerState {
    /// A run is sending it; `lease_until` says until when the claim is honoured.
    Claimed,
    Sent,
}

/// `PARTNER#{id}` / `REMINDER#{endDate}#{kind}`: one notice of one term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Marker {
    pub partner_id: String,
    pub end_date: NaiveDate,
    pub kind: NoticeKind,
    pub state: MarkerState,
    /// The run holding (or that last held) the claim.
    pub owner: String,
    pub run_date: NaiveDate,
    pub claimed_at: String,
    /// RFC 3339 UTC; after it, any run may take the claim over.
    pub lease_until: String,
    pub sent_at: Option<String>,
    pub message_id: Option<String>,
    /// The term the email is about (tier, end date, price); kept so the expiry notice
    /// can still be sent after the partner has moved to the free tier. No address or
    /// name: the sender re-reads the partner for those (docs/cron.md, "Markers").
    pub details: Option<NoticeDetails>,
    /// A staff member who sent it from the dashboard (absent for the cron's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_by: Option<String>,
}

impl Marker {
    pub fn is_live_claim(&self, now: &str) -> bool {
        self.state == MarkerState::Claimed && self.lease_until.as_str() >= now
    }
}

/// What a claim attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The claim is ours (new, taken over from a claim whose lease ran out, or
    /// already ours).
    Claimed,
    AlreadySent,
    /// Another run holds a live claim.
    HeldByAnotherRun,
    /// The partner's term is no longer the one the notice is about (renewed,
    /// cancelled, expired): nothing was written.
    PartnerChanged,
}

/// A claim on one notice.
#[derive(Debug, Clone)]
pub struct MarkerClaim<'a> {
    pub partner_id: &'a str,
    pub end_date: NaiveDate,
    pub kind: NoticeKind,
    /// This run's id; a run may re-claim what it already holds.
    pub owner: &'a str,
    pub run_date: NaiveDate,
    /// Wall-clock time (RFC 3339): leases are about real time, not the run date.
    pub now: &'a str,
    pub lease_until: &'a str,
    pub details: Option<&'a NoticeDetails>,
    /// Claim only while the partner's record still has this end date and is `active`
    /// (checked in the same transaction), so a reminder never goes out for a term the
    /// partner has just renewed, whatever the index lagged behind.
    pub require_active_term: bool,
}

/// One window read: partner records, and the markers of the terms in it.
#[derive(Debug, Default)]
pub struct WindowRead {
    pub partners: Vec<Partner>,
    pub markers: Vec<Marker>,
    pub reads: u64,
}

impl Store {
    async fn end_window(
        &self,
        months: &[(NaiveDate, NaiveDate)],
        partition: fn(NaiveDate) -> String,
    ) -> Result<WindowRead, StoreError> {
        let mut out = WindowRead::default();
        for (from, to) in months {
            let (low, high) = keys::sub_end_range(*from, *to);
            let (items, pages) = self
                .query_all_pages(|q| {
                    q.index_name(GSI2)
                        .key_condition_expression("GSI2PK = :pk AND GSI2SK BETWEEN :from AND :to")
                        .expression_attribute_values(":pk", s(partition(*from)))
                        .expression_attribute_values(":from", s(low.clone()))
                        .expression_attribute_values(":to", s(high.clone()))
                })
                .await?;
            out.reads += pages as u64;
            for item in items {
                let sk = item.get("SK").and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_default();
                if sk == META {
                    out.partners.push(serde_dynamo::from_item(item)?);
                } else if sk.starts_with(keys::REMINDER_PREFIX) {
                    out.markers.push(serde_dynamo::from_item(item)?);
                }
            }
        }
        Ok(out)
    }

    fn marker_item(c: &MarkerClaim<'_>) -> Result<Item, StoreError> {
        let kind = c.kind.as_str();
        let marker = Marker {
            partner_id: c.partner_id.to_string(),
            end_date: c.end_date,
            kind: c.kind,
            state: MarkerState::Claimed,
            owner: c.owner.to_string(),
            run_date: c.run_date,
            claimed_at: c.now.to_string(),
            lease_until: c.lease_until.to_string(),
            sent_at: None,
            message_id: None,
            details: c.details.cloned(),
            sent_by: None,
        };
        let mut item = Self::item(
            &marker,
            &[
                ("PK", keys::partner_pk(c.partner_id)),
                ("SK", keys::reminder_sk(c.end_date, kind)),
                ("GSI1PK", keys::CRON_CLAIMS_PARTITION.to_string()),
                ("GSI1SK", keys::cron_claim_sk(c.lease_until, c.partner_id, c.end_date, kind)),
                ("GSI2PK", keys::sub_end_pk(c.end_date)),
                ("GSI2SK", keys::reminder_window_sk(c.end_date, c.partner_id, kind)),
            ],
        )?;
        item.insert("ttl".into(), n(marker_expiry(c.end_date)));
        Ok(item)
    }

    async fn claim_marker_with(
        &self,
        c: &MarkerClaim<'_>,
        resend_before: Option<&str>,
        extra: Vec<TransactWriteItem>,
    ) -> Result<Result<Claim, (usize, Option<Item>)>, StoreError> {
        const CONDITION: &str = "attribute_not_exists(PK) OR #ttl < :epoch \
             OR (#state = :claimed AND (leaseUntil < :now OR #owner = :owner))";
        // `now` is RFC 3339 (leases compare as text); `ttl` is epoch seconds.
        let epoch = chrono::DateTime::parse_from_rfc3339(c.now).map_or(i64::MIN, |t| t.timestamp());
        let mut names = HashMap::from([
            ("#state".to_string(), "state".to_string()),
            ("#owner".to_string(), "owner".to_string()),
            ("#ttl".to_string(), "ttl".to_string()),
        ]);
        let mut values = HashMap::from([
            (":claimed".to_string(), s("claimed")),
            (":now".to_string(), s(c.now)),
            (":owner".to_string(), s(c.owner)),
            (":epoch".to_string(), n(epoch)),
        ]);
        let condition = match resend_before {
            None => CONDITION.to_string(),
            Some(before) => {
                names.insert("#sentAt".into(), "sentAt".into());
                values.insert(":sent".into(), s("sent"));
                values.insert(":resend_before".into(), s(before));
                format!("{CONDITION} OR (#state = :sent AND #sentAt < :resend_before)")
            }
        };
        let item = Self::marker_item(c)?;
        let failed = if c.require_active_term || !extra.is_empty() {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .build()
                .map_err(build_err("Put"))?;
            let mut items = vec![TransactWriteItem::builder().put(put).build()];
            if c.require_active_term {
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .key("PK", s(keys::partner_pk(c.partner_id)))
                    .key("SK", s(META))
                    .condition_expression("subscriptionEndDate = :end AND subscriptionStatus = :active")
                    .expression_attribute_values(":end", s(c.end_date.format("%Y-%m-%d").to_string()))
                    .expression_attribute_values(":active", s("active"))
                    .build()
                    .map_err(build_err("ConditionCheck"))?;
                items.push(TransactWriteItem::builder().condition_check(check).build());
            }
            let first_extra = items.len();
            items.extend(extra);
            match self.transact(items).await? {
                Ok(()) => return Ok(Ok(Claim::Claimed)),
                Err(ConditionFailed { index, old_item }) if index >= first_extra => {
                    return Ok(Err((index - first_extra, old_item)))
                }
                Err(ConditionFailed { index: 1, .. }) if c.require_active_term => return Ok(Ok(Claim::PartnerChanged)),
                Err(failed) => failed,
            }
        } else {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            match result {
                Ok(_) => return Ok(Ok(Claim::Claimed)),
                Err(e) => match e.into_service_error() {
                    PutItemError::ConditionalCheckFailedException(failed) => {
                        ConditionFailed { index: 0, old_item: failed.item().cloned() }
                    }
                    other => return Err(StoreError::Sdk { operation: "PutItem", source: Box::new(other) }),
                },
            }
        };
        let sent = failed
            .old_item
            .as_ref()
            .and_then(|old| old.get("state"))
            .and_then(|v| v.as_s().ok())
            .is_some_and(|state| state == "sent");
        // No old image: the marker vanished in between (released); the next run sees
        // the truth. Either way this run does not send.
        Ok(Ok(if sent { Claim::AlreadySent } else { Claim::HeldByAnotherRun }))
    }

    #[allow(clippy::too_many_arguments)]
    async fn mark_sent_by(
        &self,
        partner_id: &str,
        end: NaiveDate,
        kind: NoticeKind,
        owner: &str,
        sent_at: &str,
        message_id: &str,
        sent_by: Option<&str>,
    ) -> Result<bool, StoreError> {
        let set_by = if sent_by.is_some() { ", sentBy = :by" } else { "" };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::partner_pk(partner_id)))
            .key("SK", s(keys::reminder_sk(end, kind.as_str())))
            .update_expression(format!(
                "SET #state = :sent, sentAt = :at, messageId = :mid{set_by} REMOVE GSI1PK, GSI1SK"
            ))
            .condition_expression("#owner = :owner AND #state = :claimed")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":sent", s("sent"))
            .expression_attribute_values(":claimed", s("claimed"))
            .expression_attribute_values(":at", s(sent_at))
            .expression_attribute_values(":mid", s(message_id))
            .expression_attribute_values(":owner", s(owner));
        if let Some(by) = sent_by {
            update = update.expression_attribute_values(":by", s(by));
        }
        conditional(update.send().await.map(|_| ()), "UpdateItem")
    }
}

/// Renewal and expiry notice markers and the end-date windows.
pub trait ReminderStore {
    /// Partners whose term ends in `from..=to`, with their notice markers, from the
    /// `SUBEND#{yyyy-mm}` partitions the range spans (one Query per month, paged). Never
    /// a Scan: the cost follows the partners in the window, not the table.
    fn subscription_end_window(
        &self,
        months: &[(NaiveDate, NaiveDate)],
    ) -> impl std::future::Future<Output = Result<WindowRead, StoreError>> + Send;
    /// The same from the `SUBRENEW#{yyyy-mm}` partitions: terms that renew monthly by
    /// themselves, for the expiry pass only.
    fn renewing_end_window(
        &self,
        months: &[(NaiveDate, NaiveDate)],
    ) -> impl std::future::Future<Output = Result<WindowRead, StoreError>> + Send;
    /// Running trials the cron ends when they lapse, whose last day is in `from..=to`,
    /// from the `TRIALEND#{yyyy-mm}` partitions the range spans.
    fn trial_end_window(
        &self,
        months: &[(NaiveDate, NaiveDate)],
    ) -> impl std::future::Future<Output = Result<WindowRead, StoreError>> + Send;
    /// Claims a notice: a conditional put that succeeds when no marker exists, when the
    /// existing claim's lease has run out (a crashed run), or when this run already
    /// holds it. One PutItem, or one TransactWriteItems with the partner check.
    /// A marker past its `ttl` is absent (DynamoDB deletes expired items only
    /// eventually) and is claimed afresh.
    fn claim_marker(&self, c: &MarkerClaim<'_>) -> impl std::future::Future<Output = Result<Claim, StoreError>> + Send;
    /// A staff member's "send reminder now" (and the dashboard's bulk reminders): the
    /// cron's claim, which may also take over a notice already `sent` on an earlier
    /// day (`sentAt < resend_before`, the start of today), so one goes out again; one
    /// sent today is `AlreadySent`, and the cron, finding the marker `sent`, sends no
    /// second one the same day. `extra` items (conditional) join the claim's
    /// transaction; `Err(i)`: the `i`-th of them failed its condition, nothing was
    /// written.
    fn claim_manual_reminder(
        &self,
        c: &MarkerClaim<'_>,
        resend_before: &str,
        extra: Vec<TransactWriteItem>,
    ) -> impl std::future::Future<Output = Result<Result<Claim, (usize, Option<Item>)>, StoreError>> + Send;
    /// A manual reminder went out: as `mark_sent`, also naming who sent it (`sentBy`).
    #[allow(clippy::too_many_arguments)]
    fn mark_manual_sent(
        &self,
        partner_id: &str,
        end: NaiveDate,
        kind: NoticeKind,
        owner: &str,
        sent_at: &str,
        message_id: &str,
        sent_by: &str,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// The email went out: the marker becomes `sent` and leaves the claims index.
    /// `Ok(false)`: the claim was no longer ours (our lease ran out and another run
    /// took it over), which the caller logs.
    fn mark_sent(
        &self,
        partner_id: &str,
        end: NaiveDate,
        kind: NoticeKind,
        owner: &str,
        sent_at: &str,
        message_id: &str,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// Gives a claim up (the send failed, or the notice is not due after all), so the
    /// next run can claim it again. Only our own live claim is deleted.
    fn release_marker(
        &self,
        partner_id: &str,
        end: NaiveDate,
        kind: NoticeKind,
        owner: &str,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// Keeps our claim but ends its lease now, so the next run's sweep retries it. Used
    /// for the expiry notice, whose partner has already left the window.
    fn defer_marker(
        &self,
        partner_id: &str,
        end: NaiveDate,
        kind: NoticeKind,
        owner: &str,
        now: &str,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// Claims whose lease ended before `now`: what crashed (or deferred) runs left
    /// behind. Normally empty: one Query.
    fn stale_claims(
        &self,
        now: &str,
    ) -> impl std::future::Future<Output = Result<(Vec<Marker>, u64), StoreError>> + Send;
    /// One marker, strongly consistent (tests and the sweep's follow-up).
    fn get_marker(
        &self,
        partner_id: &str,
        end: NaiveDate,
        kind: NoticeKind,
    ) -> impl std::future::Future<Output = Result<Option<Marker>, StoreError>> + Send;
}

impl ReminderStore for Store {
    async fn subscription_end_window(&self, months: &[(NaiveDate, NaiveDate)]) -> Result<WindowRead, StoreError> {
        self.end_window(months, keys::sub_end_pk).await
    }
    async fn renewing_end_window(&self, months: &[(NaiveDate, NaiveDate)]) -> Result<WindowRead, StoreError> {
        self.end_window(months, keys::sub_renew_pk).await
    }
    async fn trial_end_window(&self, months: &[(NaiveDate, NaiveDate)]) -> Result<WindowRead, StoreError> {
        self.end_window(months, keys::trial_end_pk).await
    }
    async fn claim_marker(&self, c: &MarkerClaim<'_>) -> Result<Claim, StoreError> {
        match self.claim_marker_with(c, None, Vec::new()).await? {
            Ok(claim) => Ok(claim),
            // No extra items were given.
            Err(_) => Ok(Claim::HeldByAnotherRun),
        }
    }
    async fn claim_manual_reminder(
        &self,
        c: &MarkerClaim<'_>,
        resend_before: &str,
        extra: Vec<TransactWriteItem>,
    ) -> Result<Result<Claim, (usize, Option<Item>)>, StoreError> {
        self.claim_marker_with(c, Some(resend_before), extra).await
    }
    async fn mark_manual_sent(
        &self,
        partner_id: &str,
        end: NaiveDate,
        kind: NoticeKind,
        owner: &str,
        sent_at: &str,
        message_id: &str,
        sent_by: &str,
    ) -> Result<bool, StoreError> {
        self.mark_sent_by(partner_id, end, kind, owner, sent_at, message_id, Some(sent_by)).await
    }
    async fn mark_sent(
        &self,
        partner_id: &str,
        end: NaiveDate,
        kind: NoticeKind,
        owner: &str,
        sent_at: &str,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        self.mark_sent_by(partner_id, end, kind, owner, sent_at, message_id, None).await
    }
    async fn release_marker(
        &self,
        partner_id: &str,
        end: NaiveDate,
        kind: NoticeKind,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(keys::partner_pk(partner_id)))
            .key("SK", s(keys::reminder_sk(end, kind.as_str())))
            .condition_expression("#owner = :owner AND #state = :claimed")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":claimed", s("claimed"))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        conditional(result.map(|_| ()), "DeleteItem")
    }
    async fn defer_marker(
        &self,
        partner_id: &str,
        end: NaiveDate,
        kind: NoticeKind,
        owner: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::partner_pk(partner_id)))
            .key("SK", s(keys::reminder_sk(end, kind.as_str())))
            .update_expression("SET leaseUntil = :now, GSI1PK = :claims, GSI1SK = :claim_sk")
            .condition_expression("#owner = :owner AND #state = :claimed")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":claimed", s("claimed"))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":claims", s(keys::CRON_CLAIMS_PARTITION))
            .expression_attribute_values(":claim_sk", s(keys::cron_claim_sk(now, partner_id, end, kind.as_str())))
            .send()
            .await;
        conditional(result.map(|_| ()), "UpdateItem")
    }
    async fn stale_claims(&self, now: &str) -> Result<(Vec<Marker>, u64), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk AND GSI1SK < :now")
            .expression_attribute_values(":pk", s(keys::CRON_CLAIMS_PARTITION))
            .expression_attribute_values(":now", s(now))
            .limit(MAX_STALE_CLAIMS)
            .send()
            .await
            .map_err(|e| StoreError::sdk("Query", e))?;
        let markers = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(serde_dynamo::from_item)
            .collect::<Result<Vec<Marker>, _>>()?;
        Ok((markers, 1))
    }
    async fn get_marker(
        &self,
        partner_id: &str,
        end: NaiveDate,
        kind: NoticeKind,
    ) -> Result<Option<Marker>, StoreError> {
        match self.get(keys::partner_pk(partner_id), &keys::reminder_sk(end, kind.as_str())).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item(item)?)),
            None => Ok(None),
        }
    }
}

fn marker_expiry(end: NaiveDate) -> i64 {
    ttl::days_after(end, ttl::MARKER_RETENTION_DAYS)
}
