//! Invoice records (keys in `keys`): the staff lists, the `INVOICE#{id}` lookup,
//! and a billing fact written as one transaction with whatever it touches (the
//! partner's change, the invoice, the webhook event's claim). The Stripe customer
//! lookup is in `customers`; webhook event claims in `stripe_events`; client
//! idempotency records in `crate::idempotency`.

use super::keys::{self, META};
use super::partners::version_failure;
use super::PartnerStore;
use super::{build_err, s, IndexQuery, SortRange, Store, StoreError};
use crate::domain::audit::AuditEntry;
use crate::domain::billing::{BillingChange, InvoiceRecord};
use crate::domain::commission::CommissionEntry;
use crate::domain::invoice::BillingStatus;
use crate::domain::partner::Partner;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvoiceLookup {
    partner_id: String,
    stripe_created: i64,
}

/// The staff invoice lists (`GET /api/admin/invoices`), each a key range of
/// Stripe's `created`.
#[derive(Debug, Clone)]
pub enum InvoiceList {
    All,
    Status(BillingStatus),
    Rep(String),
    Partner(String),
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
    /// The commission change of the invoice write (`app::commission::settle`).
    pub commission: Option<&'a CommissionEntry>,
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
    /// The partner's write was refused by one of its other conditions.
    #[error("the partner write was refused: {0:?}")]
    Partner(super::PartnerRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// One staff list as an index query over `created` in `from..=to`; `filters` are
    /// the equality filters the key does not apply.
    pub fn invoice_list_query(
        list: &InvoiceList,
        from: i64,
        to: i64,
        filters: Vec<(&'static str, String)>,
    ) -> IndexQuery {
        let (lo, hi) = keys::invoice_created_range(from, to);
        let (index, partition, range) = match list {
            InvoiceList::Partner(p) => (
                None,
                keys::partner_pk(p),
                SortRange::Between(format!("{}{lo}", keys::INVOICE_PREFIX), format!("{}{hi}", keys::INVOICE_PREFIX)),
            ),
            InvoiceList::All => {
                (Some(keys::GSI1), keys::ALL_INVOICES_PARTITION.to_string(), SortRange::Between(lo, hi))
            }
            InvoiceList::Status(s) => {
                (Some(keys::GSI2), keys::invoice_status_pk(s.as_str()), SortRange::Between(lo, hi))
            }
            InvoiceList::Rep(r) => (Some(keys::GSI3), keys::rep_invoices_pk(r), SortRange::Between(lo, hi)),
        };
        IndexQuery { index, partition, range, newest_first: true, filters }
    }

    /// A partner's invoices, newest first.
    /// A partner's invoices Stripe created in `from..=to` (epoch seconds), oldest
    /// first: a key range of its partition (a month's statement).
    pub fn partner_invoices_created(partner_id: &str, from: i64, to: i64) -> IndexQuery {
        let prefix = keys::INVOICE_PREFIX;
        IndexQuery {
            index: None,
            partition: keys::partner_pk(partner_id),
            range: SortRange::Between(
                format!("{prefix}{}", keys::invoice_list_sk(from, "")),
                format!("{prefix}{}~", keys::invoice_list_sk(to, "")),
            ),
            newest_first: false,
            filters: Vec::new(),
        }
    }

    pub fn invoices_query(partner_id: &str) -> IndexQuery {
        IndexQuery {
            index: None,
            partition: keys::partner_pk(partner_id),
            range: SortRange::Prefix(keys::INVOICE_PREFIX.to_string()),
            newest_first: true,
            filters: Vec::new(),
        }
    }

    /// The invoice item with its index keys (every invoice write goes through here).
    pub(crate) fn invoice_item(record: &InvoiceRecord) -> Result<super::Item, StoreError> {
        let sk = keys::invoice_list_sk(record.stripe_created, &record.invoice_id);
        let mut attrs = vec![
            ("PK", keys::partner_pk(&record.partner_id)),
            ("SK", keys::invoice_sk(record.stripe_created, &record.invoice_id)),
            ("GSI1PK", keys::ALL_INVOICES_PARTITION.to_string()),
            ("GSI1SK", sk.clone()),
            ("GSI2PK", keys::invoice_status_pk(record.billing_status().as_str())),
            ("GSI2SK", sk.clone()),
        ];
        if let Some(rep) = &record.sales_rep {
            attrs.push(("GSI3PK", keys::rep_invoices_pk(rep)));
            attrs.push(("GSI3SK", sk));
        }
        Self::item(record, &attrs)
    }

    fn invoice_lookup_put(&self, record: &InvoiceRecord) -> Result<TransactWriteItem, StoreError> {
        let lookup = Self::item(
            &InvoiceLookup { partner_id: record.partner_id.clone(), stripe_created: record.stripe_created },
            &[("PK", keys::invoice_lookup_pk(&record.invoice_id)), ("SK", keys::LOOKUP.to_string())],
        )?;
        self.put(lookup, None)
    }

    fn invoice_put(
        &self,
        record: &InvoiceRecord,
        previous: Option<&InvoiceRecord>,
    ) -> Result<TransactWriteItem, StoreError> {
        let record = record.clone().normalized();
        let item = Self::invoice_item(&record)?;
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
}

/// Invoice records, their lists, and billing facts written in one transaction.
pub trait InvoiceStore {
    fn invoice(
        &self,
        partner_id: &str,
        created: i64,
        invoice_id: &str,
    ) -> impl std::future::Future<Output = Result<Option<InvoiceRecord>, StoreError>> + Send;
    /// A Stripe invoice's record, through its lookup (two reads), normalized.
    fn invoice_by_id(
        &self,
        invoice_id: &str,
    ) -> impl std::future::Future<Output = Result<Option<InvoiceRecord>, StoreError>> + Send;
    /// Every invoice of a list in the range, for its totals: page after page of the
    /// same index query, at most `cap` records (`None` past it).
    fn invoice_list_all(
        &self,
        q: &IndexQuery,
        cap: usize,
    ) -> impl std::future::Future<Output = Result<Option<Vec<InvoiceRecord>>, super::ListError>> + Send;
    /// The current sales rep of each partner named (one BatchGetItem per 100).
    fn partner_reps(
        &self,
        partner_ids: &[String],
    ) -> impl std::future::Future<Output = Result<std::collections::HashMap<String, Option<String>>, StoreError>> + Send;
    /// Backfill (`devctl reindex-invoices`): rewrites every invoice of every
    /// partner with its index keys, status, rep and lookup. Returns the count.
    fn reindex_all_invoices(&self) -> impl std::future::Future<Output = Result<usize, super::ListError>> + Send;
    /// Writes a billing change, the invoice record and the event's APPLIED mark as
    /// one transaction: either all of it happened or none of it.
    fn apply_billing(
        &self,
        w: &BillingWrite<'_>,
    ) -> impl std::future::Future<Output = Result<(), BillingWriteError>> + Send;
}

impl InvoiceStore for Store {
    async fn invoice(
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
    async fn invoice_by_id(&self, invoice_id: &str) -> Result<Option<InvoiceRecord>, StoreError> {
        let Some(item) = self.get(keys::invoice_lookup_pk(invoice_id), keys::LOOKUP).await? else { return Ok(None) };
        let lookup: InvoiceLookup = serde_dynamo::from_item(item)?;
        Ok(self.invoice(&lookup.partner_id, lookup.stripe_created, invoice_id).await?.map(InvoiceRecord::normalized))
    }
    async fn invoice_list_all(
        &self,
        q: &IndexQuery,
        cap: usize,
    ) -> Result<Option<Vec<InvoiceRecord>>, super::ListError> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = super::PageRequest { limit: 1000, cursor };
            let found: super::Page<InvoiceRecord> = self.query_page(q, &page).await?;
            out.extend(found.items.into_iter().map(InvoiceRecord::normalized));
            if out.len() > cap {
                return Ok(None);
            }
            match found.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(Some(out)),
            }
        }
    }
    async fn partner_reps(
        &self,
        partner_ids: &[String],
    ) -> Result<std::collections::HashMap<String, Option<String>>, StoreError> {
        let mut reps = std::collections::HashMap::new();
        let wanted: Vec<(String, String)> =
            partner_ids.iter().map(|p| (keys::partner_pk(p), META.to_string())).collect();
        for chunk in wanted.chunks(100) {
            for (_, item) in self.batch_get(chunk).await? {
                let p: Partner = serde_dynamo::from_item(item)?;
                reps.insert(p.partner_id.clone(), p.assigned_sales_rep.clone());
            }
        }
        Ok(reps)
    }
    async fn reindex_all_invoices(&self) -> Result<usize, super::ListError> {
        let mut written = 0;
        let mut cursor = None;
        loop {
            let page = super::PageRequest { limit: 100, cursor };
            let partners: super::Page<Partner> =
                self.query_page(&Self::partner_list_query(&super::PartnerList::All), &page).await?;
            for p in &partners.items {
                let q = Self::invoices_query(&p.partner_id);
                let Some(records) = self.invoice_list_all(&q, usize::MAX - 1).await? else { continue };
                let mut items = Vec::new();
                for r in records {
                    let mut r = r.normalized();
                    r.sales_rep = p.assigned_sales_rep.clone();
                    items.push(Self::invoice_item(&r)?);
                    items.push(Self::item(
                        &InvoiceLookup { partner_id: r.partner_id.clone(), stripe_created: r.stripe_created },
                        &[("PK", keys::invoice_lookup_pk(&r.invoice_id)), ("SK", keys::LOOKUP.to_string())],
                    )?);
                    written += 1;
                }
                self.batch_put(items).await?;
            }
            match partners.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(written),
            }
        }
    }
    async fn apply_billing(&self, w: &BillingWrite<'_>) -> Result<(), BillingWriteError> {
        // The invoice record's operational counts (docs/alerts.md): with a
        // transition they join its day's item, else they get their own.
        let invoice_ops = w
            .invoice
            .map(|(record, previous)| super::partners::OpsOf {
                day: record.updated_at.get(..10).unwrap_or_default(),
                tier: &record.tier,
                counts: crate::domain::alerts::invoice_counts(previous, record),
            })
            .filter(|o| !o.counts.is_zero());
        let mut items = Vec::new();
        let mut indexes = None;
        let mut partner_index = None;
        match w.change {
            Some(BillingChange::Transition(t)) => {
                let audit = w.audit.ok_or_else(|| StoreError::Sdk {
                    operation: "apply_billing",
                    source: "a transition needs an audit entry".into(),
                })?;
                let (t_items, at) = self.transition_items_with_ops(t, audit, invoice_ops)?;
                items = t_items;
                indexes = Some(at);
                partner_index = Some(0);
            }
            Some(BillingChange::Account(a)) => {
                items = self.partner_writes(&a.after, Some(a.before.version))?;
                partner_index = Some(0);
                for (tier, delta) in &a.stats {
                    items.push(self.stats_update(tier, delta, &Default::default(), &a.after.updated_at)?);
                }
                if let Some(audit) = w.audit {
                    items.push(self.audit_put(audit)?);
                }
            }
            Some(BillingChange::Nothing) | None => {}
        }
        if matches!(w.change, Some(BillingChange::Nothing) | None) {
            if let Some(audit) = w.audit {
                items.push(self.audit_put(audit)?);
            }
        }
        let invoice_index = items.len();
        if let Some((record, previous)) = w.invoice {
            items.push(self.invoice_put(record, previous)?);
            if previous.is_none() {
                items.push(self.invoice_lookup_put(record)?);
            }
        }
        // Unconditional like the commission's: the record's condition counts it once.
        let ops_item = match (invoice_ops, w.change) {
            (Some(_), Some(BillingChange::Transition(_))) | (None, _) => None,
            (Some(o), _) => Some(self.ops_add(&o)?),
        };
        let event_index = items.len();
        if let Some((id, token)) = w.event {
            items.push(self.event_applied(id, token, w.pending_email)?);
        }
        // Unconditional, after every conditioned item: the invoice record's own
        // condition is what makes the change happen once.
        if let Some(entry) = w.commission.filter(|_| w.invoice.is_some()) {
            items.extend(self.commission_items(entry)?);
        }
        items.extend(ops_item);
        // A failed payment is a campaign trigger (docs/campaigns.md): its signal is
        // written with the record that counts it, once per invoice.
        if let Some((record, previous)) = w.invoice {
            if crate::domain::alerts::invoice_counts(previous, record).payment_failures > 0 {
                let signal = super::CampaignSignal {
                    trigger: crate::domain::campaign::TriggerKind::PaymentFailed,
                    partner_id: record.partner_id.clone(),
                    source: record.invoice_id.clone(),
                    at: record.updated_at.clone(),
                    tier: Some(record.tier.clone()),
                };
                items.push(self.campaign_signal_put(record.updated_at.get(..10).unwrap_or_default(), &signal)?);
            }
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
                Some(at) => Err(BillingWriteError::Partner(at.failure(failed, false))),
                None => Err(BillingWriteError::Partner(version_failure(failed))),
            },
        }
    }
}
