//! Sales commissions and targets (seed 002 "commission_rates", issue 21 §5).
//!
//! **What earns.** A paid invoice of a partner earns its sales rep (the partner's
//! assignment when the invoice is first paid) the segment's rate on what was
//! collected: `amountPaid − refundedAmount`. The rep, segment and rate are fixed
//! on the invoice record then (`commission`), so a later rate change or
//! reassignment never moves commission already earned.
//!
//! **Exactly once.** Every change of an invoice record is one conditional write
//! from the record it was computed from; the commission change rides in the same
//! transaction and is the difference between what the record owes after and what
//! it owed before. A redelivered or out-of-order event that changes nothing
//! changes no commission; a refund owes less, and the difference is a reversal.
//!
//! **Rounding.** What an invoice owes is `net × basisPoints / 10 000`, rounded half
//! away from zero to the cent, on the invoice's whole net (never per change), so
//! the ledger of an invoice always sums to what its final state owes.
//!
//! Tierdesk records, reports and exports commissions; it does not pay them (seed
//! 002's Stripe Connect is for a marketplace's platform fee, not a sales team's pay).

use super::actor::Actor;
use super::billing::{CommissionTerms, InvoiceRecord};
use super::validation::{parse, Fields, ValidationError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A segment's rate from a day on (seed 002: Essential 8 %, Signature 10 %,
/// Luxury 12 %).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommissionRate {
    pub segment_id: String,
    pub basis_points: u32,
    pub effective_from: NaiveDate,
    pub updated_at: String,
    pub updated_by: String,
}

impl super::audit::Audited for CommissionRate {
    const ENTITY_TYPE: &'static str = "commission_rate";
    fn entity_id(&self) -> &str {
        &self.segment_id
    }
}

impl CommissionRate {
    /// `PUT /api/admin/commissions/rates/{segmentId}`: `{basisPoints, effectiveFrom}`.
    pub fn parse(segment_id: &str, body: &Value, by: &Actor) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["basisPoints", "effectiveFrom"]);
        let basis_points = f.required("basisPoints", |v| parse::int_in(v, 0, 5_000).map(|n| n as u32));
        let effective_from = f.required("effectiveFrom", parse::date);
        f.finish()?;
        Ok(Self {
            segment_id: segment_id.to_string(),
            basis_points: basis_points.unwrap_or_default(),
            effective_from: effective_from.unwrap_or(by.today),
            updated_at: by.at.clone(),
            updated_by: by.id.clone(),
        })
    }
}

/// Seed 002's rates, effective from `day`.
pub fn default_rates(day: NaiveDate, by: &Actor) -> Vec<CommissionRate> {
    [("essential", 800), ("signature", 1_000), ("luxury", 1_200)]
        .into_iter()
        .map(|(segment, bp)| CommissionRate {
            segment_id: segment.into(),
            basis_points: bp,
            effective_from: day,
            updated_at: by.at.clone(),
            updated_by: by.id.clone(),
        })
        .collect()
}

/// The rate of `segment` on `day`: the latest one effective by then.
pub fn rate_on(rates: &[CommissionRate], segment: &str, day: NaiveDate) -> Option<u32> {
    rates
        .iter()
        .filter(|r| r.segment_id == segment && r.effective_from <= day)
        .max_by_key(|r| r.effective_from)
        .map(|r| r.basis_points)
}

/// `net × bp / 10 000`, rounded half away from zero.
pub fn share(net: i64, basis_points: u32) -> i64 {
    let scaled = i128::from(net) * i128::from(basis_points);
    let rounded = (scaled.abs() * 2 + 10_000) / 20_000;
    i64::try_from(if scaled < 0 { -rounded } else { rounded }).unwrap_or(i64::MAX)
}

/// What was collected on an invoice: paid minus refunded, never below zero.
pub fn collected(record: &InvoiceRecord) -> i64 {
    if record.is_paid() {
        // A chargeback takes the money back as a refund does, until it is won.
        (record.amount_paid - record.refunded_amount - record.disputed_amount()).max(0)
    } else {
        0
    }
}

/// What an invoice owes its rep in its current state.
pub fn owed(record: &InvoiceRecord) -> i64 {
    record.commission.as_ref().map_or(0, |t| share(collected(record), t.basis_points))
}

/// The terms an invoice first paid now takes: the partner's rep and the rate of
/// the segment of the invoice's tier on `day`. None without a rep or a rate.
pub fn terms_for(
    rep: Option<&str>,
    segment: &str,
    rates: &[CommissionRate],
    day: NaiveDate,
) -> Option<CommissionTerms> {
    let rep = rep.filter(|r| !r.is_empty())?;
    let basis_points = rate_on(rates, segment, day)?;
    Some(CommissionTerms { rep_id: rep.to_string(), segment: segment.to_string(), basis_points })
}

/// One ledger line: what a change of one invoice record did to its rep's
/// commission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommissionEntry {
    pub rep_id: String,
    pub segment: String,
    pub partner_id: String,
    pub invoice_id: String,
    /// `accrual` (more owed) or `reversal` (a refund: less owed).
    pub kind: String,
    /// Signed cents of commission.
    pub amount: i64,
    /// Signed cents of collected revenue the change moved.
    pub revenue: i64,
    pub basis_points: u32,
    /// `yyyy-mm` of `at`: the statement the line belongs to.
    pub month: String,
    pub at: String,
    /// Distinct per change of the invoice: its credit notes so far.
    pub seq: u32,
}

/// The commission change of an invoice record going from `previous` to `after`
/// at `at` (RFC 3339), or `None` when nothing owed changed.
pub fn change(previous: Option<&InvoiceRecord>, after: &InvoiceRecord, at: &str) -> Option<CommissionEntry> {
    let terms = after.commission.as_ref()?;
    let before_owed = previous.map_or(0, owed);
    let before_collected = previous.filter(|p| p.commission.is_some()).map_or(0, collected);
    let amount = owed(after) - before_owed;
    if amount == 0 {
        return None;
    }
    Some(CommissionEntry {
        rep_id: terms.rep_id.clone(),
        segment: terms.segment.clone(),
        partner_id: after.partner_id.clone(),
        invoice_id: after.invoice_id.clone(),
        kind: if amount > 0 { "accrual" } else { "reversal" }.into(),
        amount,
        revenue: collected(after) - before_collected,
        basis_points: terms.basis_points,
        month: at.get(..7).unwrap_or_default().to_string(),
        at: at.to_string(),
        seq: after.credit_notes.len() as u32,
    })
}

/// A month's commission and collected revenue of one rep or segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CommissionTotals {
    pub commission: i64,
    pub revenue: i64,
}

/// `PUT /api/admin/commissions/targets/{month}`: collected-revenue targets in
/// cents, per rep and per segment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Targets {
    /// From the path; `yyyy-mm`.
    pub month: String,
    pub reps: BTreeMap<String, i64>,
    pub segments: BTreeMap<String, i64>,
}

impl super::audit::Audited for Targets {
    const ENTITY_TYPE: &'static str = "commission_targets";
    fn entity_id(&self) -> &str {
        &self.month
    }
}

impl Targets {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["reps", "segments"]);
        let rep_id = |v: &Value| -> Result<String, String> {
            let s = parse::text(v, 1, 128)?;
            if s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b':' | b'|')) {
                Ok(s)
            } else {
                Err("must be a user id".into())
            }
        };
        let reps = f.map_of("reps", 200, rep_id, parse::cents).unwrap_or_default();
        let segments = f.map_of("segments", 50, parse::slug, parse::cents).unwrap_or_default();
        if !f.has("reps") && !f.has("segments") {
            f.fail("reps", "name a rep or a segment target");
        }
        f.finish()?;
        Ok(Self { month: String::new(), reps, segments })
    }
}

/// One line of a month's summary: totals, target and attainment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attainment {
    pub id: String,
    pub commission: i64,
    pub revenue: i64,
    pub target: Option<i64>,
    /// `revenue ÷ target` in basis points, rounded half up.
    pub attainment_basis_points: Option<i64>,
}

impl Attainment {
    pub fn new(id: &str, totals: CommissionTotals, target: Option<i64>) -> Self {
        let attainment = target.filter(|t| *t > 0).map(|t| (totals.revenue.max(0) * 20_000 + t) / (2 * t));
        Self {
            id: id.to_string(),
            commission: totals.commission,
            revenue: totals.revenue,
            target,
            attainment_basis_points: attainment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice(paid: i64, refunded: i64, notes: usize, terms: Option<CommissionTerms>) -> InvoiceRecord {
        InvoiceRecord {
            invoice_id: "in_1".into(),
            partner_id: "p1".into(),
            invoice_number: None,
            amount: paid,
            amount_paid: paid,
            currency: "usd".into(),
            tier: "gold".into(),
            billing_reason: None,
            period_start: None,
            period_end: None,
            status: if paid > 0 { "paid" } else { "pending" }.into(),
            paid_at: None,
            invoice_url: None,
            pdf_url: None,
            attempt_count: 1,
            stripe_subscription_id: None,
            stripe_created: 0,
            created_at: String::new(),
            updated_at: String::new(),
            stripe_status: None,
            billing_status: None,
            refunded_amount: refunded,
            credit_notes: (0..notes).map(|i| format!("cn_{i}")).collect(),
            sales_rep: None,
            commission: terms,
            disputes: vec![],
        }
    }

    fn terms(bp: u32) -> Option<CommissionTerms> {
        Some(CommissionTerms { rep_id: "rep-1".into(), segment: "signature".into(), basis_points: bp })
    }

    /// A chargeback reverses like a refund while open and when lost, and a won
    /// one restores the commission; events out of order and repeated change nothing
    /// more (`invoice::apply_dispute`).
    #[test]
    fn chargebacks_reverse_commission_until_won_in_any_delivery_order() {
        use crate::domain::billing::DisputeState;
        use crate::domain::invoice::{apply_dispute, DisputeFacts};
        let paid = invoice(200_000, 0, 0, terms(1_000));
        let facts = |status| DisputeFacts {
            dispute_id: "dp_1".into(),
            payment_intent: Some("pi_1".into()),
            amount: 200_000,
            status,
        };
        let opened = apply_dispute(&paid, &facts(DisputeState::Open), "2026-05-01T00:00:00Z").unwrap();
        let reversal = change(Some(&paid), &opened, "2026-05-01T00:00:00Z").unwrap();
        assert_eq!((reversal.amount, reversal.revenue, reversal.kind.as_str()), (-20_000, -200_000, "reversal"));
        assert_eq!(apply_dispute(&opened, &facts(DisputeState::Open), "2026-05-01T00:00:01Z"), None, "a redelivery");
        let won = apply_dispute(&opened, &facts(DisputeState::Won), "2026-06-01T00:00:00Z").unwrap();
        let back = change(Some(&opened), &won, "2026-06-01T00:00:00Z").unwrap();
        assert_eq!((back.amount, back.kind.as_str()), (20_000, "accrual"), "a won dispute earns again");
        assert_eq!(
            apply_dispute(&won, &facts(DisputeState::Open), "2026-06-02T00:00:00Z"),
            None,
            "closed stays closed"
        );
        // Closed first (the older `created` arrives after): one reversal, then nothing.
        let lost = apply_dispute(&paid, &facts(DisputeState::Lost), "2026-05-02T00:00:00Z").unwrap();
        assert_eq!(change(Some(&paid), &lost, "2026-05-02T00:00:00Z").unwrap().amount, -20_000);
        assert_eq!(apply_dispute(&lost, &facts(DisputeState::Open), "2026-05-03T00:00:00Z"), None);
        // An inquiry takes no money, so it reverses nothing; a partial dispute its share.
        let inquiry = apply_dispute(&paid, &facts(DisputeState::Inquiry), "2026-05-01T00:00:00Z").unwrap();
        assert_eq!(change(Some(&paid), &inquiry, "2026-05-01T00:00:00Z"), None);
        let part = DisputeFacts { amount: 50_001, ..facts(DisputeState::Open) };
        let partial = apply_dispute(&paid, &part, "2026-05-01T00:00:00Z").unwrap();
        assert_eq!(change(Some(&paid), &partial, "2026-05-01T00:00:00Z").unwrap().amount, -5_000, "half away: 5,000.1");
        // Never more than was paid is held, and a refund plus a dispute never goes below zero.
        let refunded = invoice(200_000, 150_000, 1, terms(1_000));
        let both = apply_dispute(&refunded, &facts(DisputeState::Lost), "2026-05-01T00:00:00Z").unwrap();
        assert_eq!(collected(&both), 0);
    }

    #[test]
    fn a_paid_invoice_accrues_and_refunds_reverse_to_what_the_final_state_owes() {
        let open = invoice(0, 0, 0, None);
        let paid = invoice(123_457, 0, 0, terms(1_000));
        let accrual = change(Some(&open), &paid, "2026-03-04T10:00:00Z").unwrap();
        assert_eq!((accrual.amount, accrual.revenue, accrual.kind.as_str()), (12_346, 123_457, "accrual"), "half away");
        assert_eq!(accrual.month, "2026-03");
        let part = invoice(123_457, 3, 1, terms(1_000));
        let first = change(Some(&paid), &part, "2026-04-01T00:00:00Z").unwrap();
        let all = invoice(123_457, 123_457, 2, terms(1_000));
        let second = change(Some(&part), &all, "2026-04-02T00:00:00Z").unwrap();
        assert_eq!(first.kind, "reversal");
        assert_eq!(accrual.amount + first.amount + second.amount, 0, "fully refunded owes nothing");
        assert_eq!(accrual.revenue + first.revenue + second.revenue, 0);
        assert_eq!((first.seq, second.seq), (1, 2), "each change its own line");
        // A change that moves nothing owed (a redelivery) writes no line.
        assert_eq!(change(Some(&paid), &paid, "2026-03-05T00:00:00Z"), None);
        assert_eq!(change(None, &invoice(5_000, 0, 0, None), "2026-03-05T00:00:00Z"), None, "no rep, no commission");
    }

    #[test]
    fn rates_are_effective_dated_and_terms_need_a_rep() {
        let by = Actor::fixture("u-admin", "2026-01-01T00:00:00Z");
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let mut rates = default_rates(day("2026-01-01"), &by);
        rates.push(CommissionRate { basis_points: 1_100, effective_from: day("2026-07-01"), ..rates[1].clone() });
        assert_eq!(rate_on(&rates, "signature", day("2026-06-30")), Some(1_000));
        assert_eq!(rate_on(&rates, "signature", day("2026-07-01")), Some(1_100));
        assert_eq!(rate_on(&rates, "signature", day("2025-12-31")), None);
        assert_eq!(terms_for(None, "luxury", &rates, day("2026-02-01")), None);
        assert_eq!(terms_for(Some("rep-9"), "luxury", &rates, day("2026-02-01")).map(|t| t.basis_points), Some(1_200));
    }

    #[test]
    fn attainment_and_targets() {
        let a = Attainment::new("rep-1", CommissionTotals { commission: 100, revenue: 2_000 }, Some(3_000));
        assert_eq!(a.attainment_basis_points, Some(6_667));
        assert_eq!(Attainment::new("x", CommissionTotals::default(), None).attainment_basis_points, None);
        let e = Targets::parse(&serde_json::json!({"reps": {"rep 1": 5}, "segments": {"essential": -1}})).unwrap_err();
        assert!(e.fields.contains_key("reps.rep 1") && e.fields.contains_key("segments.essential"), "{e:?}");
        assert!(Targets::parse(&serde_json::json!({})).is_err());
    }
}
