//! A partner's personal data (seed 003 "Security": GDPR, "allow partners to
//! download/delete payment history"): what an export holds for whom, and what an
//! erasure replaces. Pure: the store reads and writes, this module decides.
//!
//! Personal data here is the partner's identity and contact fields (company name,
//! primary email), free text written about them (subscription notes, cancellation
//! reasons, sales notes, the reason of a tier change) and the card a payment was
//! made with. Everything the books need stays: tiers, dates, amounts, invoice
//! numbers, statuses, Stripe ids (docs/privacy.md).

use super::billing::InvoiceRecord;
use super::partner::{Partner, SalesNote};
use super::subscription::TierTransition;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The company name an erased partner keeps (never searchable: the name index
/// copy is dropped).
pub const ERASED_NAME: &str = "Erased partner";
/// What erased free text reads as.
pub const ERASED_TEXT: &str = "[erased]";
/// Version of the export document's shape.
pub const EXPORT_FORMAT: &str = "tierdesk.partner-export.v1";

/// The placeholder address of an erased partner: the reserved `.invalid` top-level
/// domain (RFC 2606) never delivers, and the partner id keeps it unique without
/// saying anything about the person. No `EMAIL#` lookup names it.
pub fn erased_email(partner_id: &str) -> String {
    format!("erased+{partner_id}@erased.invalid")
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PrivacyError {
    /// The partner was erased: its record is kept for the books only and no
    /// longer changes.
    #[error("this partner's personal data was erased; the record no longer changes")]
    Erased,
    /// A paid term is still in force: its contract data is needed to perform it.
    #[error("a paid subscription is still in force until {0}; cancel it and erase after it ends")]
    SubscriptionInForce(chrono::NaiveDate),
    /// The partner-only export route, called without a partner identity.
    #[error("this route is for a partner's own account")]
    NotAPartner,
}

/// Who an export is for. A partner's own copy leaves out what is staff-only (ids of
/// staff, internal scores, a note's next sales action), as their other views do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Staff,
    Partner,
}

pub use super::partner::Erasure;

/// A partner whose personal data was erased no longer changes: every route that
/// would write to one (tier changes, notes, billing self-service) goes through this.
pub fn unerased(p: Partner) -> Result<Partner, PrivacyError> {
    match p.erasure {
        Some(_) => Err(PrivacyError::Erased),
        None => Ok(p),
    }
}

/// Refuses an erasure while a paid term runs (in force, including one cancelled at
/// period end). A free, cancelled or expired partner may be erased.
pub fn check_erasable(p: &Partner) -> Result<(), PrivacyError> {
    match p.subscription_end_date {
        Some(end) if p.subscription_state().is_active() => Err(PrivacyError::SubscriptionInForce(end)),
        _ => Ok(()),
    }
}

/// The partner record after erasure: identity, contact fields and free text
/// replaced; tiers, dates, amounts, statuses, scores and Stripe ids kept, so every
/// statistic and ledger line still adds up. Version moves on as for any write.
pub fn erase_partner(p: &Partner, at: &str, actor: &str) -> Partner {
    let mut after = p.clone();
    after.company_name = ERASED_NAME.to_string();
    after.primary_email = erased_email(&p.partner_id);
    after.subscription_notes = None;
    after.cancellation_reason = after.cancellation_reason.as_ref().map(|_| ERASED_TEXT.to_string());
    after.erasure = Some(Erasure { erased_at: at.to_string(), erased_by: actor.to_string() });
    after.version = p.version + 1;
    after.updated_at = at.to_string();
    after.updated_by = actor.to_string();
    after
}

/// A sales note with its content erased (who wrote it and when stay: staff data).
pub fn erase_note(n: &SalesNote) -> SalesNote {
    SalesNote { note: ERASED_TEXT.to_string(), next_action: None, ..n.clone() }
}

/// A transition with its free-text reason and payment card removed; the financial
/// record (tiers, amounts, dates) stays.
pub fn erase_transition(t: &TierTransition) -> TierTransition {
    let mut out = t.clone();
    out.trigger.reason = out.trigger.reason.as_ref().map(|_| ERASED_TEXT.to_string());
    out.payment_method = None;
    out
}

/// An invoice without its hosted links (Stripe's hosted page and PDF show the
/// customer's name and address); number, amounts, dates and status stay.
pub fn erase_invoice(i: &InvoiceRecord) -> InvoiceRecord {
    InvoiceRecord { invoice_url: None, pdf_url: None, ..i.clone() }
}

/// The partner fields an erasure replaces, as they appear in any JSON copy of a
/// partner (the audit trail's before/after snapshots).
pub fn erase_partner_json(v: &Value, partner_id: &str) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        if o.contains_key("companyName") {
            o.insert("companyName".into(), Value::String(ERASED_NAME.into()));
        }
        if o.contains_key("primaryEmail") {
            o.insert("primaryEmail".into(), Value::String(erased_email(partner_id)));
        }
        if o.get("subscriptionNotes").is_some_and(|n| !n.is_null()) {
            o.insert("subscriptionNotes".into(), Value::Null);
        }
        if o.get("cancellationReason").is_some_and(|n| !n.is_null()) {
            o.insert("cancellationReason".into(), Value::String(ERASED_TEXT.into()));
        }
    }
    v
}

/// Everything Tierdesk holds about one partner, read from its partition.
#[derive(Debug, Clone)]
pub struct ExportSource {
    pub partner: Partner,
    /// Oldest first.
    pub transitions: Vec<TierTransition>,
    pub notes: Vec<SalesNote>,
    pub invoices: Vec<InvoiceRecord>,
    pub usage: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Partner fields that are staff-only: staff ids, internal scores.
const STAFF_ONLY_PARTNER_FIELDS: [&str; 7] =
    ["assignedSalesRep", "churnRisk", "upsell", "scoredOn", "createdBy", "updatedBy", "erasure"];

fn without(mut v: Value, keys: &[&str]) -> Value {
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    v
}

/// The export as one JSON document. An erased partner's children are shown
/// anonymised even if the erasure's second step has not reached them yet, so an
/// export never shows a half-erased partner.
pub fn export_document(src: &ExportSource, audience: Audience, exported_at: &str) -> Value {
    let erased = src.partner.erasure.is_some();
    let to = |v: Result<Value, serde_json::Error>| v.unwrap_or(Value::Null);
    let staff = audience == Audience::Staff;
    let partner = to(serde_json::to_value(&src.partner));
    let partner = if staff { partner } else { without(partner, &STAFF_ONLY_PARTNER_FIELDS) };
    let history: Vec<Value> = src
        .transitions
        .iter()
        .map(|t| {
            let t = if erased { erase_transition(t) } else { t.clone() };
            let mut v = to(serde_json::to_value(&t));
            if !staff {
                // Staff ids stay with staff.
                v["trigger"]["salesRep"] = Value::Null;
                v["metadata"]["actor"] = Value::Null;
                v["metadata"]["requestId"] = Value::Null;
            }
            v
        })
        .collect();
    let invoices: Vec<Value> = src
        .invoices
        .iter()
        .map(|i| {
            let i = if erased { erase_invoice(i) } else { i.clone() }.normalized();
            let i = if staff { i } else { InvoiceRecord { sales_rep: None, commission: None, ..i } };
            to(serde_json::to_value(&i))
        })
        .collect();
    let notes: Vec<Value> = src
        .notes
        .iter()
        .map(|n| {
            let n = if erased { erase_note(n) } else { n.clone() };
            let v = to(serde_json::to_value(&n));
            if staff {
                v
            } else {
                without(v, &["rep", "nextAction"])
            }
        })
        .collect();
    let usage: Vec<Value> =
        src.usage.iter().map(|(period, counts)| serde_json::json!({"period": period, "counts": counts})).collect();
    let mut doc = Map::new();
    doc.insert("format".into(), EXPORT_FORMAT.into());
    doc.insert("exportedAt".into(), exported_at.into());
    doc.insert("partnerId".into(), src.partner.partner_id.clone().into());
    doc.insert("erased".into(), erased.into());
    doc.insert("partner".into(), partner);
    doc.insert("history".into(), history.into());
    doc.insert("invoices".into(), invoices.into());
    doc.insert("usage".into(), usage.into());
    doc.insert("notes".into(), notes.into());
    Value::Object(doc)
}

/// What an erasure request answers.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasureReport {
    pub partner_id: String,
    pub erased_at: String,
    pub erased_by: String,
    /// False when an earlier call had already erased the record (this call only
    /// finished what was left, if anything).
    pub newly_erased: bool,
    /// Items of the partner's history anonymised by this call.
    pub items_anonymised: usize,
    /// The partner as it now reads.
    pub partner: Partner,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::subscription::PaymentMethod;
    use serde_json::json;

    fn partner() -> Partner {
        serde_json::from_str(
            r#"{
            "partnerId": "prt_a", "companyName": "Acme Jane Ltd", "primaryEmail": "jane@acme.example",
            "engagementTier": "gold", "subscriptionStatus": "cancelled", "subscriptionStartDate": "2026-01-01",
            "subscriptionEndDate": "2027-01-01", "trialEndDate": null, "billingPeriod": "monthly",
            "autoRenewal": false, "cancellationDate": "2026-06-01", "cancellationReason": "Jane moved to Lisbon",
            "subscriptionNotes": "call Jane", "stripeCustomerId": "cus_1", "stripeSubscriptionId": "sub_1",
            "lastPaymentDate": null, "lastPaymentAmount": 360000, "paymentStatus": null,
            "assignedSalesRep": "rep-1", "signupDate": "2026-01-01", "pricePerPeriod": 360000,
            "priceVersion": 1, "discountPercent": null, "mrr": 360000, "currency": "usd",
            "firstPaidDate": "2026-01-01", "churnedDate": null, "churnedFromTier": null, "churnedMrr": null,
            "totalPaid": 1800000, "paymentFailures": 0, "recentDowngrades": [], "lastContactDate": null,
            "lastContactType": null, "lastActivityAt": "2026-06-01T00:00:00.000Z",
            "churnRisk": {"level": "low", "probability": 0, "factors": []},
            "upsell": {"opportunity": false, "score": 0, "recommendedTier": null, "reasons": []},
            "scoredOn": "2026-06-01", "version": 7, "createdAt": "2026-01-01T00:00:00.000Z",
            "createdBy": "admin-1", "updatedAt": "2026-06-01T00:00:00.000Z", "updatedBy": "admin-1"
        }"#,
        )
        .expect("partner json")
    }

    #[test]
    fn erasure_replaces_identity_and_free_text_and_keeps_the_books() {
        let p = partner();
        let e = erase_partner(&p, "2026-12-06T00:00:00.000Z", "admin-2");
        assert_eq!((e.company_name.as_str(), e.primary_email.as_str()), (ERASED_NAME, "erased+prt_a@erased.invalid"));
        assert_eq!((e.subscription_notes.as_deref(), e.cancellation_reason.as_deref()), (None, Some(ERASED_TEXT)));
        assert_eq!(
            e.erasure,
            Some(Erasure { erased_at: "2026-12-06T00:00:00.000Z".into(), erased_by: "admin-2".into() })
        );
        assert_eq!((e.version, e.updated_by.as_str()), (8, "admin-2"));
        // Everything the books and the statistics read is unchanged.
        assert_eq!((e.mrr, e.total_paid, e.price_per_period), (p.mrr, p.total_paid, p.price_per_period));
        assert_eq!(
            (&e.engagement_tier, e.subscription_status, &e.stripe_customer_id),
            (&p.engagement_tier, p.subscription_status, &p.stripe_customer_id)
        );
        assert_eq!(
            (e.churn_risk.clone(), e.upsell.clone(), e.signup_date),
            (p.churn_risk.clone(), p.upsell.clone(), p.signup_date)
        );
        // The JSON form (audit snapshots) agrees with the record form.
        let json = erase_partner_json(&serde_json::to_value(&p).unwrap(), "prt_a");
        let record = serde_json::to_value(&e).unwrap();
        for k in ["companyName", "primaryEmail", "subscriptionNotes", "cancellationReason", "mrr", "totalPaid"] {
            assert_eq!(json[k], record[k], "{k}");
        }
        // Applying it twice changes nothing more.
        assert_eq!(erase_partner_json(&json, "prt_a"), json);
    }

    #[test]
    fn a_paid_term_in_force_blocks_erasure_until_it_ends() {
        let mut p = partner();
        // Cancelled at period end with the term running: still in force.
        p.subscription_status = crate::domain::partner::SubscriptionStatus::Cancelled;
        let in_force = p.subscription_state().is_active();
        let end = p.subscription_end_date.unwrap();
        assert_eq!(check_erasable(&p).is_err(), in_force);
        p.subscription_status = crate::domain::partner::SubscriptionStatus::Active;
        assert_eq!(check_erasable(&p), Err(PrivacyError::SubscriptionInForce(end)));
        p.subscription_end_date = None;
        p.engagement_tier = "free".into();
        assert_eq!(check_erasable(&p), Ok(()));
    }

    #[test]
    fn notes_transitions_and_invoices_keep_their_figures() {
        let n = SalesNote {
            note_id: "n1".into(),
            partner_id: "prt_a".into(),
            timestamp: "t".into(),
            rep: "rep-1".into(),
            note: "Jane's cell".into(),
            next_action: Some("call Jane".into()),
            contact_type: "call".into(),
        };
        let e = erase_note(&n);
        assert_eq!((e.note.as_str(), e.next_action.as_deref(), e.rep.as_str()), (ERASED_TEXT, None, "rep-1"));
        assert_eq!(erase_note(&e), e, "idempotent");
        assert_eq!(
            PaymentMethod::card("Visa", "4242"),
            Some(PaymentMethod { brand: "visa".into(), last4: "4242".into() })
        );
        assert_eq!(PaymentMethod::card("visa", "4242424242424242"), None, "never more than four digits");
        assert_eq!(PaymentMethod::card("visa", "42a2"), None);
        assert_eq!(PaymentMethod::card("", "4242"), None);
    }

    #[test]
    fn a_partners_own_export_leaves_staff_fields_out() {
        let src = ExportSource {
            partner: partner(),
            transitions: Vec::new(),
            notes: vec![SalesNote {
                note_id: "n1".into(),
                partner_id: "prt_a".into(),
                timestamp: "t".into(),
                rep: "rep-1".into(),
                note: "hello".into(),
                next_action: Some("upsell".into()),
                contact_type: "note".into(),
            }],
            invoices: Vec::new(),
            usage: BTreeMap::from([("2026-12".to_string(), BTreeMap::from([("leads".to_string(), 3u64)]))]),
        };
        let own = export_document(&src, Audience::Partner, "2026-12-06T00:00:00.000Z");
        assert!(own["partner"].get("assignedSalesRep").is_none() && own["partner"].get("churnRisk").is_none());
        assert_eq!(own["partner"]["companyName"], "Acme Jane Ltd");
        assert_eq!(
            own["notes"][0],
            json!({"noteId": "n1", "partnerId": "prt_a", "timestamp": "t", "note": "hello", "contactType": "note"})
        );
        assert_eq!(own["usage"], json!([{"period": "2026-12", "counts": {"leads": 3}}]));
        let staff = export_document(&src, Audience::Staff, "2026-12-06T00:00:00.000Z");
        assert_eq!(
            (staff["partner"]["assignedSalesRep"].as_str(), staff["notes"][0]["rep"].as_str()),
            (Some("rep-1"), Some("rep-1"))
        );
        assert_eq!(staff["erased"], false);
        // An erased partner's history reads anonymised even before step 2 reached it.
        let erased = ExportSource { partner: erase_partner(&src.partner, "t2", "admin"), ..src };
        let doc = export_document(&erased, Audience::Staff, "t3");
        assert_eq!((doc["erased"].as_bool(), doc["notes"][0]["note"].as_str()), (Some(true), Some(ERASED_TEXT)));
        assert!(!doc.to_string().contains("Acme Jane") && !doc.to_string().contains("jane@acme"));
    }
}
