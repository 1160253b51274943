//! Stripe webhook event claims (`STRIPEEVENT#{id}`): one delivery of an event
//! processes it; a retry after a crash finishes its side effects; a finished
//! event is kept until its `ttl` so duplicates are acknowledged.

use super::keys::{self, META};
use super::{conditional, n, s, ClaimAttributes, Item, Store, StoreError};
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

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

impl Store {
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
}

/// Stripe webhook event claims.
pub trait StripeEventStore {
    /// Claims a Stripe event: new, or left behind by a delivery whose lease ran
    /// out. The claim keeps an APPLIED status and the email still to send, so a
    /// retry after a crash finishes the side effects without writing the state
    /// twice. The first claim stores `payload_hash`; a delivery of the same id with
    /// another hash is a `Mismatch` and changes nothing.
    fn claim_stripe_event(
        &self,
        event_id: &str,
        event_type: &str,
        payload_hash: &str,
        token: &str,
        now: i64,
        lease_secs: i64,
    ) -> impl std::future::Future<Output = Result<EventClaim, StoreError>> + Send;
    /// Marks the event done. `notified`: what became of its email (`sent`,
    /// `capped`), recorded on the claim as its last side effect, and the pending
    /// email is dropped.
    fn complete_stripe_event(
        &self,
        event_id: &str,
        token: &str,
        notified: Option<&str>,
        ttl: i64,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
    /// Gives a claim back after a failure, so Stripe's retry can take it at once.
    fn release_stripe_event(
        &self,
        event_id: &str,
        token: &str,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
    /// Keeps a correctly signed event that could not be read, for a human.
    fn keep_unparseable_event(
        &self,
        event_id: &str,
        event_type: Option<&str>,
        raw: &str,
        reason: &str,
        at: &str,
        ttl: i64,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
}

impl StripeEventStore for Store {
    async fn claim_stripe_event(
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
                let status = out.attributes.as_ref().and_then(|a| ClaimAttributes(a).text("status"));
                let pending_email = out.attributes.as_ref().and_then(|a| ClaimAttributes(a).text("pendingEmail"));
                Ok(EventClaim::Claimed { applied: status.as_deref() == Some("APPLIED"), pending_email })
            }
            Err(err) => {
                use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
                if let Some(UpdateItemError::ConditionalCheckFailedException(e)) = err.as_service_error() {
                    // A finished event past its `ttl` is absent: DynamoDB has not
                    // deleted it yet, but it is no longer a reason to refuse.
                    if let Some(expired) = e.item().and_then(|i| ClaimAttributes(i).number("ttl")).filter(|t| *t < now)
                    {
                        return self
                            .reclaim_expired_event(event_id, event_type, payload_hash, token, now, lease_secs, expired)
                            .await;
                    }
                    let status = e.item().and_then(|i| ClaimAttributes(i).text("status"));
                    let stored_hash = e.item().and_then(|i| ClaimAttributes(i).text("payloadHash"));
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
    async fn complete_stripe_event(
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
    async fn release_stripe_event(&self, event_id: &str, token: &str) -> Result<(), StoreError> {
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
    async fn keep_unparseable_event(
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
}
