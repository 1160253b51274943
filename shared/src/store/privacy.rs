//! A partner's data export and erasure (docs/privacy.md). Reads are Queries of the
//! partner's own partition (and its audit partitions), never a Scan.
//!
//! Erasure is a resumable sequence of two steps:
//! 1. one transaction: the partner record and its index copies anonymised and marked
//!    `erasure` (conditional on the version read), the `EMAIL#` lookup deleted (the
//!    address can be used again at once), the name-search copy dropped, and the
//!    audit entry. From here every read of the partner shows the anonymised form,
//!    and the export shows the history's free text anonymised too.
//! 2. the partner's history items (notes, transitions, invoices) and the audit
//!    snapshots of the partner and its invoices rewritten anonymised, in
//!    transactions of [`ERASE_CHUNK`] conditional updates that only set the erased
//!    attributes. Each is idempotent, so a repeated call (after a crash or not)
//!    finishes what is left and changes nothing else.

use super::keys;
use super::PartnerStore;
use super::{build_err, s, Item, PartnerRefusal, Store, StoreError, WriteError};
use crate::domain::audit::AuditEntry;
use crate::domain::partner::Partner;
use crate::domain::privacy::{self, ExportSource};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use serde_json::Value;

/// Updates per transaction in step 2 (well under DynamoDB's 100-item cap).
pub const ERASE_CHUNK: usize = 25;

impl Store {
    /// `SET` of the erased attributes of one existing item.
    fn erase_update(
        &self,
        pk: &str,
        sk: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("PK", s(pk.to_string()))
            .key("SK", s(sk.to_string()))
            .condition_expression("attribute_exists(PK)");
        let mut set = Vec::new();
        for (i, (name, value)) in values.iter().enumerate() {
            set.push(format!("#a{i} = :v{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), *name)
                .expression_attribute_values(format!(":v{i}"), value.clone());
        }
        let update =
            update.update_expression(format!("SET {}", set.join(", "))).build().map_err(build_err("Update"))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Every item of one partition, read consistently (a Query, paged).
    pub(crate) async fn partition_items(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        self.query_all(|q| {
            q.key_condition_expression("PK = :pk")
                .expression_attribute_values(":pk", s(pk.to_string()))
                .consistent_read(true)
        })
        .await
    }
}

/// Partner data export and erasure.
pub trait PrivacyStore {
    /// Everything held under the partner's partition, for the export: one Query
    /// (paged if large). `None` if there is no such partner.
    fn export_source(
        &self,
        partner_id: &str,
    ) -> impl std::future::Future<Output = Result<Option<ExportSource>, StoreError>> + Send;
    /// Step 1 of an erasure: `after` is `privacy::erase_partner(before, …)`.
    fn erase_partner_record(
        &self,
        before: &Partner,
        after: &Partner,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<PartnerRefusal>>> + Send;
    /// Step 2 of an erasure: rewrites whatever of the partner's history and audit
    /// trail still holds personal data; returns how many items it changed (0 when an
    /// earlier call finished the job).
    fn erase_partner_history(
        &self,
        partner_id: &str,
    ) -> impl std::future::Future<Output = Result<usize, WriteError<PartnerRefusal>>> + Send;
}

impl PrivacyStore for Store {
    async fn export_source(&self, partner_id: &str) -> Result<Option<ExportSource>, StoreError> {
        let h = self.partner_history(partner_id).await?;
        Ok(h.partner.map(|partner| ExportSource {
            partner,
            transitions: h.transitions,
            notes: h.notes,
            invoices: h.invoices,
            usage: h.usage,
        }))
    }
    async fn erase_partner_record(
        &self,
        before: &Partner,
        after: &Partner,
        audit: &AuditEntry,
    ) -> Result<(), WriteError<PartnerRefusal>> {
        let mut items = self.partner_writes(after, Some(before.version))?;
        // The lookup of the partner's own address, if it is still theirs.
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .key("PK", s(keys::email_pk(&before.primary_email)))
            .key("SK", s(keys::LOOKUP))
            .condition_expression("attribute_not_exists(PK) OR partnerId = :me")
            .expression_attribute_values(":me", s(before.partner_id.clone()))
            .build()
            .map_err(build_err("Delete"))?;
        items.push(TransactWriteItem::builder().delete(delete).build());
        items.push(self.audit_put(audit)?);
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(failed) => Err(WriteError::Refused(super::partners::version_failure(failed))),
        }
    }
    async fn erase_partner_history(&self, partner_id: &str) -> Result<usize, WriteError<PartnerRefusal>> {
        let history = self.partner_history(partner_id).await?;
        let pk = keys::partner_pk(partner_id);
        let mut updates: Vec<TransactWriteItem> = Vec::new();
        for note in &history.notes {
            let erased = privacy::erase_note(note);
            if &erased != note {
                updates.push(self.erase_update(
                    &pk,
                    &keys::note_sk(&note.timestamp, &note.note_id),
                    &[("note", to_av(&erased.note)?), ("nextAction", AttributeValue::Null(true))],
                )?);
            }
        }
        for t in &history.transitions {
            let erased = privacy::erase_transition(t);
            if &erased != t {
                updates.push(self.erase_update(
                    &pk,
                    &keys::event_sk(&t.timestamp, &t.transition_id),
                    &[("trigger", to_av(&erased.trigger)?), ("paymentMethod", AttributeValue::Null(true))],
                )?);
            }
        }
        // Campaign messages were written with the partner's name in them
        // (docs/campaigns.md): their text goes, the record of the send stays.
        for item in self.partition_items(&pk).await? {
            let Some(sk) = item.get("SK").and_then(|v| v.as_s().ok()).filter(|sk| sk.starts_with(keys::MESSAGE_PREFIX))
            else {
                continue;
            };
            let erased = AttributeValue::S(privacy::ERASED_TEXT.to_string());
            if item.get("body") != Some(&erased) || item.get("subject") != Some(&erased) {
                updates.push(self.erase_update(
                    &pk,
                    sk,
                    &[("subject", erased.clone()), ("body", erased), ("promoCode", AttributeValue::Null(true))],
                )?);
            }
        }
        let mut audit_partitions = vec![keys::audit_pk("partner", partner_id)];
        for i in &history.invoices {
            audit_partitions.push(keys::audit_pk("invoice", &i.invoice_id));
            let erased = privacy::erase_invoice(i);
            if &erased != i {
                updates.push(self.erase_update(
                    &pk,
                    &keys::invoice_sk(i.stripe_created, &i.invoice_id),
                    &[("invoiceUrl", AttributeValue::Null(true)), ("pdfUrl", AttributeValue::Null(true))],
                )?);
            }
        }
        for partition in audit_partitions {
            let invoice_trail = partition.starts_with("AUDIT#invoice#");
            for item in self.partition_items(&partition).await? {
                let Some(sk) = item.get("SK").and_then(|v| v.as_s().ok()).cloned() else {
                    continue;
                };
                let mut changes: Vec<(&str, AttributeValue)> = Vec::new();
                for side in ["before", "after"] {
                    let Some(raw) = item.get(side).filter(|v| !matches!(v, AttributeValue::Null(_))) else {
                        continue;
                    };
                    let value: Value = serde_dynamo::from_attribute_value(raw.clone()).map_err(StoreError::from)?;
                    let erased = if invoice_trail {
                        erase_invoice_json(&value)
                    } else {
                        privacy::erase_partner_json(&value, partner_id)
                    };
                    if erased != value {
                        changes.push((side, to_av(&erased)?));
                    }
                }
                if !changes.is_empty() {
                    updates.push(self.erase_update(&partition, &sk, &changes)?);
                }
            }
        }
        let changed = updates.len();
        for chunk in updates.chunks(ERASE_CHUNK) {
            if self.transact(chunk.to_vec()).await?.is_err() {
                // An item went away underneath (nothing on these paths deletes one):
                // nothing of this chunk applied; a repeated call picks it up again.
                return Err(WriteError::Refused(PartnerRefusal::Gone));
            }
        }
        Ok(changed)
    }
}

fn to_av<T: serde::Serialize>(v: &T) -> Result<AttributeValue, StoreError> {
    Ok(serde_dynamo::to_attribute_value(v)?)
}

/// An invoice snapshot in the audit trail without its hosted links.
fn erase_invoice_json(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in ["invoiceUrl", "pdfUrl"] {
            if o.get(k).is_some_and(|x| !x.is_null()) {
                o.insert(k.into(), Value::Null);
            }
        }
    }
    v
}
