//! Billing access patterns (keys in `keys`): the Stripe customer lookup, invoices,
//! webhook event claims and client idempotency records, and billing changes
//! written as one transaction with whatever they touch.

use super::keys::{self, META};
use super::partners::version_failure;
use super::{build_err, conditional, n, s, ConditionFailed, IndexQuery, Item, SortRange, Store, StoreError};
use crate::domain::audit::AuditEntry;
use crate::domain::billing::{BillingChange, InvoiceRecord};
use crate::domain::partner::Partner;
use crate::domain::subscription::SubscriptionError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerLookup {
    partner_id: String,
}

/// The outcome of claiming a Stripe event for processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventClaim {
    /// Ours to process. `applied`: an earlier attempt already wrote the state
    /// change and stopped before finishing its side effects. `pending_email`: the
    /// email that attempt planned and did not send (JSON of `mail::Email`), for this
    /// delivery to send.
    Claimed { applied: bool, pending_email: Option<String> },
    /// Processed before: acknowledge, do nothing.
    Duplicate,
    /// Another delivery holds a live claim on it.
    InProgress,
    /// The id was claimed before with a different payload (hash): refuse it.
    Mismatch,
}

/// The start of a request carrying an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestClaim {
    Fresh,
    Replay {
        status: u16,
        body: String,
    },
    InProgress,
    /// The key was used before with a different request.
    Mismatch,
}

/// A billing change and everything written with it, in one transaction.
#[derive(Debug, Default)]
pub struct BillingWrite<'a> {
    pub change: Option<&'a BillingChange>,
    pub audit: Option<&'a AuditEntry>,
    /// The invoice record, conditional on the record it was computed from.
    pub invoice: Option<(&'a InvoiceRecord, Option<&'a InvoiceRecord>)>,
    /// The webhook event being processed (id, claim token): marked APPLIED.
    pub event: Option<(&'a str, &'a str)>,
    /// The email the change calls for (JSON of `mail::Email`), kept on the event's
    /// claim with the APPLIED mark until it is sent.
    pub pending_email: Option<&'a str>,
}

/// Why a billing write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BillingWriteError {
    /// The partner or the invoice changed since it was read: read again and replan.
    #[error("changed concurrently")]
    Stale,
    /// This delivery no longer holds the event's claim.
    #[error("the event claim was lost")]
    ClaimLost,
    #[error(transparent)]
    Subscription(#[from] SubscriptionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn attr_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn attr_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

impl Store {
    pub async fn partner_id_by_stripe_customer(&self, customer_id: &str) -> Result<Option<String>, StoreError> {
        match self.get(keys::stripe_customer_pk(customer_id), keys::LOOKUP).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item::<_, CustomerLookup>(item)?.partner_id)),
            None => Ok(None),
        }
    }

    /// Saves the partner with its new Stripe customer id and the lookup naming it.
    pub async fn link_stripe_customer(
        &self,
        before: &Partner,
        after: &Partner,
        audit: &AuditEntry,
    ) -> Result<(), SubscriptionError> {
        let Some(customer) = &after.stripe_customer_id else { return Ok(()) };
        let mut items = self.partner_writes(after, Some(before.version))?;
        let lookup = Self::item(
            &CustomerLookup { partner_id: after.partner_id.clone() },
            &[("PK", keys::stripe_customer_pk(customer)), ("SK", keys::LOOKUP.to_string())],
        )?;
        let lookup_index = items.len();
        items.push(self.put(lookup, Some("attribute_not_exists(PK) OR partnerId = :me"))?);
        if let Some(TransactWriteItem { put: Some(put), .. }) = items.last_mut() {
            put.expression_attribute_values =
                Some([(":me".to_string(), s(after.partner_id.clone()))].into_iter().collect());
        }
        items.push(self.audit_put(audit)?);
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(ConditionFailed { index, .. }) if index == lookup_index => {
                Err(SubscriptionError::Invalid(crate::domain::validation::ValidationError::single(
                    "stripeCustomerId",
                    "already linked to another partner",
                )))
            }
            Err(other) => Err(version_failure(other)),
        }
    }

    pub async fn invoice(
        &self,
        partner_id: &str,
        created: i64,
        invoice_id: &str,
    ) -> Result<Option<InvoiceRecord>, StoreError> {
        match self.get(keys::partner_pk(partner_id), &keys::invoice_sk(created, invoice_id)).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item(item)?)),
            None => Ok(None),
        }
    }

    /// A partner's invoices, newest first.
    pub fn invoices_query(partner_id: &str) -> IndexQuery {
        IndexQuery {
            index: None,
            partition: keys::partner_pk(partner_id),
            range: SortRange::Prefix(keys::INVOICE_PREFIX.to_string()),
            newest_first: true,
            filters: Vec::new(),
        }
    }

    fn invoice_put(
        &self,
        record: &InvoiceRecord,
        previous: Option<&InvoiceRecord>,
    ) -> Result<TransactWriteItem, StoreError> {
        let item = Self::item(
            record,
            &[
                ("PK", keys::partner_pk(&record.partner_id)),
                ("SK", keys::invoice_sk(record.stripe_created, &record.invoice_id)),
            ],
        )?;
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        put = match previous {
            None => put.condition_expression("attribute_not_exists(PK)"),
            Some(p) => put
                .condition_expression("updatedAt = :seen")
                .expression_attribute_values(":seen", s(p.updated_at.clone())),
        };
        Ok(TransactWriteItem::builder().put(put.build().map_err(build_err("Put"))?).build())
    }

    fn event_applied(
        &self,
        event_id: &str,
        token: &str,
        pending_email: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::stripe_event_pk(event_id)))
            .key("SK", s(META))
            .update_expression(match pending_email {
                Some(_) => "SET #status = :applied, pendingEmail = :email",
                None => "SET #status = :applied",
            })
            .condition_expression("claimToken = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":applied", s("APPLIED"))
            .expression_attribute_values(":token", s(token));
        if let Some(email) = pending_email {
            update = update.expression_attribute_values(":email", s(email));
        }
        let update = update.build().map_err(build_err("Update"))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Writes a billing change, the invoice record and the event's APPLIED mark as
    /// one transaction: either all of it happened or none of it.
    pub async fn apply_billing(&self, w: &BillingWrite<'_>) -> Result<(), BillingWriteError> {
        let mut items = Vec::new();
        let mut indexes = None;
        let mut partner_index = None;
        match w.change {
            Some(BillingChange::Transition(t)) => {
                let audit = w.audit.ok_or_else(|| StoreError::Sdk {
                    operation: "apply_billing",
                    source: "a transition needs an audit entry".into(),
                })?;
                let (t_items, at) = self.transition_items(t, audit)?;
                items = t_items;
                indexes = Some(at);
                partner_index = Some(0);
            }
            Some(BillingChange::Account(a)) => {
                items = self.partner_writes(&a.after, Some(a.before.version))?;
                partner_index = Some(0);
                for (tier, delta) in &a.stats {
                    items.push(self.stats_update(tier, delta, &[], &a.after.updated_at)?);
                }
                if let Some(audit) = w.audit {
                    items.push(self.audit_put(audit)?);
                }
            }
            Some(BillingChange::Nothing) | None => {}
        }
        let invoice_index = items.len();
        if let Some((record, previous)) = w.invoice {
            items.push(self.invoice_put(record, previous)?);
        }
        let event_index = items.len();
        if let Some((id, token)) = w.event {
            items.push(self.event_applied(id, token, w.pending_email)?);
        }
        if items.is_empty() {
            return Ok(());
        }
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(failed) if w.event.is_some() && failed.index == event_index => Err(BillingWriteError::ClaimLost),
            Err(failed) if w.invoice.is_some() && failed.index == invoice_index => Err(BillingWriteError::Stale),
            Err(failed) if Some(failed.index) == partner_index => Err(BillingWriteError::Stale),
            Err(failed) => match indexes {
                Some(at) => Err(at.failure(failed, false).into()),
                None => Err(version_failure(failed).into()),
            },
        }
    }

    /// Claims a Stripe event: new, or left behind by a delivery whose lease ran
    /// out. The claim keeps an APPLIED status and the email still to send, so a
    /// retry after a crash finishes the side effects without writing the state
    /// twice. The first claim stores `payload_hash`; a delivery of the same id with
    /// another hash is a `Mismatch` and changes nothing.
    pub async fn claim_stripe_event(
        &self,
        event_id: &str,
        event_type: &str,
        payload_hash: &str,
        token: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<EventClaim, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::stripe_event_pk(event_id)))
            .key("SK", s(META))
            .update_expression(
                "SET claimToken = :token, claimExpiresAt = :until, eventType = :type, \
                 #status = if_not_exists(#status, :inprogress), attempts = if_not_exists(attempts, :zero) + :one, \
                 payloadHash = if_not_exists(payloadHash, :hash)",
            )
            .condition_expression(
                "attribute_not_exists(PK) OR (#status <> :completed AND claimExpiresAt < :now \
                 AND (attribute_not_exists(payloadHash) OR payloadHash = :hash))",
            )
            .expression_attribute_values(":hash", s(payload_hash))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":until", n(now + lease_secs))
            .expression_attribute_values(":type", s(event_type))
            .expression_attribute_values(":inprogress", s("INPROGRESS"))
            .expression_attribute_values(":completed", s("COMPLETED"))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let status = out.attributes.as_ref().and_then(|a| attr_s(a, "status"));
                let pending_email = out.attributes.as_ref().and_then(|a| attr_s(a, "pendingEmail"));
                Ok(EventClaim::Claimed { applied: status.as_deref() == Some("APPLIED"), pending_email })
            }
            Err(err) => {
                use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
                if let Some(UpdateItemError::ConditionalCheckFailedException(e)) = err.as_service_error() {
                    // A finished event past its `ttl` is absent: DynamoDB has not
                    // deleted it yet, but it is no longer a reason to refuse.
                    if let Some(expired) = e.item().and_then(|i| attr_n(i, "ttl")).filter(|t| *t < now) {
                        return self
                            .reclaim_expired_event(event_id, event_type, payload_hash, token, now, lease_secs, expired)
                            .await;
                    }
                    let status = e.item().and_then(|i| attr_s(i, "status"));
                    let stored_hash = e.item().and_then(|i| attr_s(i, "payloadHash"));
                    if stored_hash.is_some_and(|h| h != payload_hash) {
                        return Ok(EventClaim::Mismatch);
                    }
                    return Ok(match status.as_deref() {
                        Some("COMPLETED" | "UNPARSEABLE") => EventClaim::Duplicate,
                        _ => EventClaim::InProgress,
                    });
                }
                Err(StoreError::sdk("UpdateItem", err))
            }
        }
    }

    /// Replaces an event record whose `ttl` has passed with a fresh claim,
    /// conditional on that same expired `ttl` (of two deliveries, one wins).
    // The claim's own fields plus the expired ttl it is conditional on.
    #[allow(clippy::too_many_arguments)]
    async fn reclaim_expired_event(
        &self,
        event_id: &str,
        event_type: &str,
        payload_hash: &str,
        token: &str,
        now: i64,
        lease_secs: i64,
        expired_ttl: i64,
    ) -> Result<EventClaim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("PK", s(keys::stripe_event_pk(event_id)))
            .item("SK", s(META))
            .item("claimToken", s(token))
            .item("claimExpiresAt", n(now + lease_secs))
            .item("eventType", s(event_type))
            .item("payloadHash", s(payload_hash))
            .item("status", s("INPROGRESS"))
            .item("attempts", n(1))
            .condition_expression("#ttl = :expired")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":expired", n(expired_ttl))
            .send()
            .await;
        match conditional(result.map(|_| ()), "PutItem")? {
            true => Ok(EventClaim::Claimed { applied: false, pending_email: None }),
            false => Ok(EventClaim::InProgress),
        }
    }

    /// Marks the event done. `notified`: what became of its email (`sent`,
    /// `capped`), recorded on the claim as its last side effect, and the pending
    /// email is dropped.
    pub async fn complete_stripe_event(
        &self,
        event_id: &str,
        token: &str,
        notified: Option<&str>,
        ttl: i64,
    ) -> Result<(), StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::stripe_event_pk(event_id)))
            .key("SK", s(META));
        update = match notified {
            Some(outcome) => update
                .update_expression(
                    "SET #status = :completed, #ttl = :ttl, notified = :notified REMOVE claimExpiresAt, pendingEmail",
                )
                .expression_attribute_values(":notified", s(outcome)),
            None => update.update_expression("SET #status = :completed, #ttl = :ttl REMOVE claimExpiresAt"),
        };
        let result = update
            .condition_expression("claimToken = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":completed", s("COMPLETED"))
            .expression_attribute_values(":ttl", n(ttl))
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        conditional(result.map(|_| ()), "UpdateItem").map(|_| ())
    }

    /// Gives a claim back after a failure, so Stripe's retry can take it at once.
    pub async fn release_stripe_event(&self, event_id: &str, token: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::stripe_event_pk(event_id)))
            .key("SK", s(META))
            .update_expression("SET claimExpiresAt = :zero")
            .condition_expression("claimToken = :token AND #status <> :completed")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":completed", s("COMPLETED"))
            .send()
            .await;
        conditional(result.map(|_| ()), "UpdateItem").map(|_| ())
    }

    /// Keeps a correctly signed event that could not be read, for a human.
    pub async fn keep_unparseable_event(
        &self,
        event_id: &str,
        event_type: Option<&str>,
        raw: &str,
        reason: &str,
        at: &str,
        ttl: i64,
    ) -> Result<(), StoreError> {
        let mut item: Item = [
            ("PK".to_string(), s(keys::stripe_event_pk(event_id))),
            ("SK".to_string(), s(META)),
            ("status".to_string(), s("UNPARSEABLE")),
            ("raw".to_string(), s(raw)),
            ("reason".to_string(), s(reason)),
            ("receivedAt".to_string(), s(at)),
            ("ttl".to_string(), n(ttl)),
        ]
        .into_iter()
        .collect();
        if let Some(t) = event_type {
            item.insert("eventType".into(), s(t));
        }
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        conditional(result.map(|_| ()), "PutItem").map(|_| ())
    }

    /// Starts a request carrying an Idempotency-Key: the first one claims it; a
    /// repeat gets the stored answer, or waits while the first is still running.
    /// A record past its `ttl` is absent (DynamoDB deletes expired items only
    /// eventually, sometimes days later): it is claimed afresh.
    pub async fn claim_request(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<RequestClaim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("PK", s(keys::idempotency_pk(scope, key)))
            .item("SK", s(META))
            .item("status", s("INPROGRESS"))
            .item("requestHash", s(request_hash))
            .item("claimExpiresAt", n(now + lease_secs))
            .item("ttl", n(now + 86_400))
            .condition_expression(
                "attribute_not_exists(PK) OR #ttl < :now OR (#status = :inprogress AND claimExpiresAt < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":inprogress", s("INPROGRESS"))
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(RequestClaim::Fresh),
            Err(err) => {
                use aws_sdk_dynamodb::operation::put_item::PutItemError;
                if let Some(PutItemError::ConditionalCheckFailedException(e)) = err.as_service_error() {
                    let Some(old) = e.item() else { return Ok(RequestClaim::InProgress) };
                    if attr_s(old, "requestHash").as_deref() != Some(request_hash) {
                        return Ok(RequestClaim::Mismatch);
                    }
                    return Ok(match (attr_s(old, "status").as_deref(), attr_n(old, "responseStatus")) {
                        (Some("COMPLETED"), Some(status)) => RequestClaim::Replay {
                            status: u16::try_from(status).unwrap_or(200),
                            body: attr_s(old, "responseBody").unwrap_or_default(),
                        },
                        _ => RequestClaim::InProgress,
                    });
                }
                Err(StoreError::sdk("PutItem", err))
            }
        }
    }

    pub async fn finish_request(&self, scope: &str, key: &str, status: u16, body: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::idempotency_pk(scope, key)))
            .key("SK", s(META))
            .update_expression(
                "SET #status = :completed, responseStatus = :code, responseBody = :body REMOVE claimExpiresAt",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":completed", s("COMPLETED"))
            .expression_attribute_values(":code", n(i64::from(status)))
            .expression_attribute_values(":body", s(body))
            .send()
            .await
            .map_err(|e| StoreError::sdk("UpdateItem", e))?;
        Ok(())
    }

    /// Forgets a claimed key whose request failed on our side, so a retry runs.
    pub async fn abandon_request(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(keys::idempotency_pk(scope, key)))
            .key("SK", s(META))
            .condition_expression("#status = :inprogress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":inprogress", AttributeValue::S("INPROGRESS".into()))
            .send()
            .await;
        conditional(result.map(|_| ()), "DeleteItem").map(|_| ())
    }
}
