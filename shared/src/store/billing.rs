//! Billing access patterns (keys in `keys`): the Stripe customer lookup, invoices,
//! and billing changes written as one transaction with whatever they touch.
//! Webhook event claims are in `stripe_events`; client idempotency records in
//! `crate::idempotency`.

use super::keys::{self, META};
use super::partners::version_failure;
use super::{build_err, s, ConditionFailed, IndexQuery, SortRange, Store, StoreError};
use crate::domain::audit::AuditEntry;
use crate::domain::billing::{BillingChange, InvoiceRecord};
use crate::domain::partner::Partner;
use crate::domain::subscription::SubscriptionError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerLookup {
    partner_id: String,
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
}
