//! Invoices for staff (seed 003 §3.2 "Admin Invoice Dashboard"): the status a
//! billing team filters by, the list's filters, the refund rules and the plan of
//! a refund. Pure: the billing Lambda asks Stripe and writes what is planned here.
//!
//! A refund reverses revenue exactly once: the partner's `totalPaid` (lifetime
//! value) goes down by the refunded cents and the invoice records the credit note
//! that did it, so a repeated action or a redelivered `credit_note.created` finds
//! the credit note already recorded and plans nothing. MRR is not moved: as
//! ChartMogul defines it (docs/analytics.md), a refund is not an MRR movement; the
//! subscription's MRR changes only when the subscription does (a cancellation is
//! its own action and records the churn then).

use super::billing::InvoiceRecord;
use super::partner::Partner;
use super::validation::{Fields, ValidationError};
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::Value;

// The staff status is derived from the invoice record's Stripe status, so it is
// defined beside the record (`billing`); this module's rules use it.
pub use super::billing::{stripe_status_of_legacy, BillingStatus};

/// Why an invoice action was refused.
#[derive(Debug, thiserror::Error)]
pub enum InvoiceError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("invoice not found")]
    NotFound,
    /// The invoice's state does not allow the action (void a paid invoice, refund
    /// an unpaid one): 409, naming the state.
    #[error("the invoice is {}; {action} needs {needs}", status.as_str())]
    WrongState { status: BillingStatus, action: &'static str, needs: &'static str },
    #[error(transparent)]
    Billing(#[from] super::billing::BillingError),
}

/// `GET /api/admin/invoices` filters. `from`/`to` are UTC dates of Stripe's
/// `created`, both inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceFilter {
    pub status: Option<BillingStatus>,
    pub partner_id: Option<String>,
    pub tier: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// The longest range one totals request adds up (its reads follow the invoices in it).
pub const MAX_RANGE_DAYS: i64 = 400;

impl InvoiceFilter {
    /// From the query string's values (`get` returns a parameter's value).
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Result<Self, ValidationError> {
        let mut errors = ValidationError::default();
        let mut fail = |k: &str, m: &str| {
            errors.fields.insert(k.to_string(), m.to_string());
        };
        let status = match get("status") {
            Some(s) => BillingStatus::parse(&s).or_else(|| {
                fail("status", "must be one of draft, open, paid, void, uncollectible, refunded, partially_refunded");
                None
            }),
            None => None,
        };
        let partner_id = get("partnerId")
            .and_then(|p| super::usage::partner_id(&Value::String(p)).map_err(|m| fail("partnerId", &m)).ok());
        let tier = get("tier").and_then(|t| {
            if super::validation::parse::is_slug(&t) {
                Some(t)
            } else {
                fail("tier", "must be a tier id (lowercase letters, digits and -)");
                None
            }
        });
        let date = |key: &str, fail: &mut dyn FnMut(&str, &str)| {
            get(key).and_then(|d| super::partner::fields::date(&Value::String(d)).map_err(|m| fail(key, &m)).ok())
        };
        let from = date("from", &mut fail);
        let to = date("to", &mut fail);
        if let (Some(f), Some(t)) = (from, to) {
            if t < f {
                fail("to", "must not be before from");
            } else if (t - f).num_days() > MAX_RANGE_DAYS {
                fail("to", "the range may cover at most 400 days");
            }
        }
        if errors.fields.is_empty() {
            Ok(Self { status, partner_id, tier, from, to })
        } else {
            Err(errors)
        }
    }

    /// Stripe `created` bounds (epoch seconds, inclusive) of the date range.
    pub fn created_bounds(&self) -> (i64, i64) {
        let start = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp());
        let from = self.from.map_or(0, start);
        let to = self.to.map_or(9_999_999_999, |d| d.succ_opt().map_or(9_999_999_999, start) - 1);
        (from.max(0), to.max(0))
    }

    /// Whether a record passes the filters the index query did not apply.
    pub fn matches(&self, r: &InvoiceRecord) -> bool {
        let (from, to) = self.created_bounds();
        self.status.is_none_or(|s| r.billing_status() == s)
            && self.partner_id.as_deref().is_none_or(|p| r.partner_id == p)
            && self.tier.as_deref().is_none_or(|t| r.tier == t)
            && (from..=to).contains(&r.stripe_created)
    }
}

/// `POST /api/admin/invoices/{invoiceId}/refund`: `amount` in cents, all of the
/// refundable remainder when left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefundRequest {
    pub amount: Option<i64>,
    pub reason: Option<String>,
}

impl RefundRequest {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        if body.is_null() {
            return Ok(Self::default());
        }
        let mut f = Fields::new(body, &["amount", "reason"]);
        let amount = f.optional("amount", |v| super::validation::parse::int_in(v, 1, 10_000_000_000));
        let reason = f.optional("reason", |v| super::validation::parse::text(v, 1, 500));
        f.finish()?;
        Ok(Self { amount, reason })
    }
}

/// How much of the invoice may still be refunded, in cents.
pub fn refundable(record: &InvoiceRecord) -> i64 {
    (record.amount_paid - record.refunded_amount).max(0)
}

/// The amount a refund request takes: all of the remainder, or the amount asked
/// if it fits. Refused for an invoice that is not paid or has nothing left.
pub fn refund_amount(record: &InvoiceRecord, request: &RefundRequest) -> Result<i64, InvoiceError> {
    let status = record.billing_status();
    if !matches!(status, BillingStatus::Paid | BillingStatus::PartiallyRefunded) || refundable(record) == 0 {
        return Err(InvoiceError::WrongState {
            status,
            action: "a refund",
            needs: "a paid invoice with money left to refund",
        });
    }
    let left = refundable(record);
    match request.amount {
        None => Ok(left),
        Some(a) if a > left => {
            Err(ValidationError::single("amount", format!("must be at most {left}, the refundable remainder in cents"))
                .into())
        }
        Some(a) => Ok(a),
    }
}

/// A credit note Stripe made for an invoice, with the cents it refunded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditNoteFacts {
    pub credit_note_id: String,
    pub invoice_id: String,
    pub refunded: i64,
}

/// The invoice after a credit note and the cents of revenue it reverses, or `None`
/// when the credit note is already recorded (a repeated action, a redelivered
/// event). The refund never exceeds what was paid.
pub fn apply_credit_note(record: &InvoiceRecord, note: &CreditNoteFacts, at: &str) -> Option<(InvoiceRecord, i64)> {
    if record.credit_notes.iter().any(|c| c == &note.credit_note_id) {
        return None;
    }
    let refunded = note.refunded.clamp(0, refundable(record));
    let mut after = record.clone();
    after.credit_notes.push(note.credit_note_id.clone());
    after.refunded_amount += refunded;
    after.updated_at = at.to_string();
    after.billing_status = Some(after.derived_status());
    Some((after, refunded))
}

/// A Stripe dispute's facts (`stripe_adapter::facts::dispute_facts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeFacts {
    pub dispute_id: String,
    /// The payment intent it disputes: how its invoice is found.
    pub payment_intent: Option<String>,
    pub amount: i64,
    pub status: super::billing::DisputeState,
}

/// The invoice with a dispute's news, or `None` when it changes nothing: the same
/// state again (a redelivery, or `funds_withdrawn` after `created`), or an older
/// open state after the dispute closed (events out of order). Never more than what
/// was paid is held.
pub fn apply_dispute(record: &InvoiceRecord, facts: &DisputeFacts, at: &str) -> Option<InvoiceRecord> {
    let mut after = record.clone();
    let entry = match after.disputes.iter_mut().find(|d| d.dispute_id == facts.dispute_id) {
        Some(e) if e.status == facts.status || e.status.is_closed() => return None,
        Some(e) => e,
        None => {
            after.disputes.push(super::billing::DisputeEntry {
                dispute_id: facts.dispute_id.clone(),
                amount: 0,
                status: facts.status,
                updated_at: at.to_string(),
            });
            after.disputes.last_mut()?
        }
    };
    entry.status = facts.status;
    entry.amount = facts.amount.clamp(0, record.amount_paid);
    entry.updated_at = at.to_string();
    after.updated_at = at.to_string();
    Some(after)
}

/// The partner with `refunded` cents of revenue reversed (its lifetime `totalPaid`).
pub fn reverse_revenue(partner: &Partner, refunded: i64) -> Partner {
    let mut p = partner.clone();
    p.total_paid = (p.total_paid - refunded).max(0);
    p
}

/// A credit note planned as one write: the invoice's new record and the partner's
/// revenue reversal (an account change: no transition, no MRR movement). `None`
/// when the credit note is already recorded.
pub fn plan_credit_note(
    partner: &Partner,
    record: &InvoiceRecord,
    note: &CreditNoteFacts,
    at: &str,
    actor: &str,
) -> Option<(InvoiceRecord, super::billing::BillingChange)> {
    let (after_record, reversed) = apply_credit_note(record, note, at)?;
    if reversed == 0 {
        return Some((after_record, super::billing::BillingChange::Nothing));
    }
    let mut after = reverse_revenue(partner, reversed);
    after.version = partner.version + 1;
    after.updated_at = at.to_string();
    after.updated_by = actor.to_string();
    let stats = super::revenue::stats_deltas(Some(partner), &after);
    let change = super::billing::AccountChange { before: partner.clone(), after, stats };
    Some((after_record, super::billing::BillingChange::Account(Box::new(change))))
}

/// Totals per status, for the range: count, amount due, paid and refunded (cents).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusTotal {
    pub count: i64,
    pub amount: i64,
    pub amount_paid: i64,
    pub amount_refunded: i64,
}

/// Adds up `records` per billing status; every status is present.
pub fn totals<'a>(
    records: impl IntoIterator<Item = &'a InvoiceRecord>,
) -> std::collections::BTreeMap<&'static str, StatusTotal> {
    let mut out: std::collections::BTreeMap<&'static str, StatusTotal> =
        BillingStatus::ALL.into_iter().map(|s| (s.as_str(), StatusTotal::default())).collect();
    for r in records {
        let t = out.entry(r.billing_status().as_str()).or_default();
        t.count += 1;
        t.amount += r.amount;
        t.amount_paid += r.amount_paid;
        t.amount_refunded += r.refunded_amount;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::billing::InvoiceStatus;

    fn record(paid: i64, refunded: i64) -> InvoiceRecord {
        InvoiceRecord {
            invoice_id: "in_1".into(),
            partner_id: "prt_1".into(),
            invoice_number: None,
            amount: paid,
            amount_paid: paid,
            currency: "usd".into(),
            tier: "gold".into(),
            billing_reason: None,
            period_start: None,
            period_end: None,
            status: "paid".into(),
            paid_at: None,
            invoice_url: None,
            pdf_url: None,
            attempt_count: 1,
            stripe_subscription_id: None,
            stripe_created: 1_700_000_000,
            created_at: "t".into(),
            updated_at: "t".into(),
            stripe_status: Some(InvoiceStatus::Paid),
            billing_status: None,
            refunded_amount: refunded,
            credit_notes: vec![],
            sales_rep: None,
            commission: None,
            disputes: vec![],
        }
    }

    #[test]
    fn paid_invoices_show_their_refunds() {
        assert_eq!(BillingStatus::of(InvoiceStatus::Paid, 100, 0), BillingStatus::Paid);
        assert_eq!(BillingStatus::of(InvoiceStatus::Paid, 100, 40), BillingStatus::PartiallyRefunded);
        assert_eq!(BillingStatus::of(InvoiceStatus::Paid, 100, 100), BillingStatus::Refunded);
        assert_eq!(BillingStatus::of(InvoiceStatus::Open, 0, 0), BillingStatus::Open);
        assert_eq!(record(100, 40).billing_status(), BillingStatus::PartiallyRefunded);
    }

    #[test]
    fn a_refund_is_bounded_by_the_remainder_and_needs_a_paid_invoice() {
        let r = record(10_000, 4_000);
        assert_eq!(refund_amount(&r, &RefundRequest::default()).unwrap(), 6_000);
        assert_eq!(refund_amount(&r, &RefundRequest { amount: Some(6_000), reason: None }).unwrap(), 6_000);
        match refund_amount(&r, &RefundRequest { amount: Some(6_001), reason: None }) {
            Err(InvoiceError::Invalid(v)) => assert!(v.fields.contains_key("amount")),
            other => panic!("{other:?}"),
        }
        let mut open = record(0, 0);
        open.stripe_status = Some(InvoiceStatus::Open);
        assert!(matches!(refund_amount(&open, &RefundRequest::default()), Err(InvoiceError::WrongState { .. })));
        assert!(matches!(
            refund_amount(&record(100, 100), &RefundRequest::default()),
            Err(InvoiceError::WrongState { .. })
        ));
    }

    #[test]
    fn a_credit_note_counts_once() {
        let note = CreditNoteFacts { credit_note_id: "cn_1".into(), invoice_id: "in_1".into(), refunded: 4_000 };
        let (after, reversed) = apply_credit_note(&record(10_000, 0), &note, "t2").unwrap();
        assert_eq!((after.refunded_amount, reversed), (4_000, 4_000));
        assert_eq!(after.billing_status(), BillingStatus::PartiallyRefunded);
        assert!(apply_credit_note(&after, &note, "t3").is_none());
        let rest = CreditNoteFacts { credit_note_id: "cn_2".into(), invoice_id: "in_1".into(), refunded: 9_000 };
        let (all, reversed) = apply_credit_note(&after, &rest, "t3").unwrap();
        assert_eq!((all.refunded_amount, reversed, all.billing_status()), (10_000, 6_000, BillingStatus::Refunded));
    }

    #[test]
    fn filters_parse_and_name_bad_fields() {
        let q = |pairs: &'static [(&'static str, &'static str)]| {
            InvoiceFilter::parse(|k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
        };
        let f = q(&[("status", "partially_refunded"), ("from", "2026-01-01"), ("to", "2026-01-31")]).unwrap();
        assert_eq!(f.status, Some(BillingStatus::PartiallyRefunded));
        assert_eq!(f.created_bounds(), (1_767_225_600, 1_769_903_999));
        let e =
            q(&[("status", "pending"), ("from", "2026-02-01"), ("to", "2026-01-01"), ("tier", "Gold!")]).unwrap_err();
        assert!(e.fields.contains_key("status") && e.fields.contains_key("to") && e.fields.contains_key("tier"));
    }
}
