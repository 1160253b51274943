//! `make run`'s demo invoices: real invoices in the Stripe emulator for a few demo
//! partners, in every state the staff invoice screen filters by (paid, open, void,
//! uncollectible, refunded, partly refunded), recorded in the table as the webhook
//! records them. The console's invoice actions then work on them end to end.
//!
//! The dev gateway is not up yet while `devctl seed` runs, so the emulator's
//! webhooks for these calls are not delivered: the seed reads each invoice back
//! from Stripe and writes its record itself (a partner's invoices already
//! recorded means it was seeded before, and it is left alone).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tierdesk::clock::rfc3339;
use tierdesk::domain::billing::InvoiceRecord;
use tierdesk::domain::invoice::{apply_credit_note, CreditNoteFacts};
use tierdesk::store::{BillingWrite, InvoiceStore, PartnerStore, Store};
use tierdesk::stripe_adapter::StripeGateway;

/// What happens to one demo invoice after it is finalized.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Paid,
    Open,
    Void,
    Uncollectible,
    /// Paid, then this many cents refunded through a credit note.
    Refunded(i64),
}

/// (partner email, [(amount in cents, fate)])
const DEMOS: &[(&str, &[(i64, Fate)])] = &[
    ("contact@buildpro.example.com", &[(360_000, Fate::Paid), (360_000, Fate::Open)]),
    ("ops@techflow.example.com", &[(600_000, Fate::Refunded(600_000)), (600_000, Fate::Void)]),
    ("office@summitroofing.example.com", &[(360_000, Fate::Refunded(100_000)), (360_000, Fate::Paid)]),
    ("accounts@lapsedlumber.example.com", &[(360_000, Fate::Paid), (360_000, Fate::Uncollectible)]),
    ("billing@riversiderealty.example.com", &[(360_000, Fate::Refunded(60_000))]),
];

struct Api {
    base: String,
    key: String,
}

impl Api {
    async fn call(&self, method: &str, path: &str, form: &[(&str, &str)], key: Option<&str>) -> Result<Value, String> {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form.iter()).finish();
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}/v1/{path}", self.base.trim_end_matches('/')))
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?;
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let resp = client.request(req).await.map_err(|e| format!("stripe unreachable: {e}"))?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status == 200 {
            Ok(value)
        } else {
            Err(format!("stripe {method} {path}: {status} {value}"))
        }
    }
}

pub async fn seed_invoices(store: &Store, stripe: &StripeGateway) -> Vec<String> {
    let config = stripe.config();
    let Some(base) = config.api_base.clone() else {
        return vec!["demo invoices: skipped (no STRIPE_API_BASE: not the local emulator)".into()];
    };
    let api = Api { base, key: config.api_key.clone() };
    let mut log = Vec::new();
    for (email, invoices) in DEMOS {
        match seed_partner(store, stripe, &api, email, invoices).await {
            Ok(line) => log.push(line),
            Err(e) => log.push(format!("demo invoices of {email}: {e}")),
        }
    }
    log
}

async fn seed_partner(
    store: &Store,
    stripe: &StripeGateway,
    api: &Api,
    email: &str,
    invoices: &[(i64, Fate)],
) -> Result<String, String> {
    let partner_id =
        store.partner_id_by_email(email).await.map_err(|e| e.to_string())?.ok_or("no such demo partner")?;
    let partner = store.get_partner(&partner_id).await.map_err(|e| e.to_string())?.ok_or("no such demo partner")?;
    let existing: tierdesk::store::Page<InvoiceRecord> = store
        .query_page(&Store::invoices_query(&partner_id), &tierdesk::http::PageRequest { limit: 1, cursor: None })
        .await
        .map_err(|e| e.to_string())?;
    if !existing.items.is_empty() {
        return Ok(format!("demo invoices of {}: exist", partner.company_name));
    }
    let customer = api
        .call(
            "POST",
            "customers",
            &[("email", email), ("name", &partner.company_name), ("metadata[partner_id]", &partner_id)],
            Some(&format!("seed-customer-{partner_id}")),
        )
        .await?;
    let customer = customer["id"].as_str().ok_or("customer without id")?.to_string();
    let mut states = Vec::new();
    for (n, (amount, fate)) in invoices.iter().enumerate() {
        let key = |step: &str| format!("seed-{partner_id}-{n}-{step}");
        let amount_text = amount.to_string();
        let description = format!("{} partnership ({})", partner.engagement_tier, partner.company_name);
        api.call(
            "POST",
            "invoiceitems",
            &[("customer", &customer), ("amount", &amount_text), ("currency", "usd"), ("description", &description)],
            Some(&key("item")),
        )
        .await?;
        let invoice = api
            .call(
                "POST",
                "invoices",
                &[
                    ("customer", &customer),
                    ("pending_invoice_items_behavior", "include"),
                    ("auto_advance", "false"),
                    ("metadata[partner_id]", &partner_id),
                ],
                Some(&key("invoice")),
            )
            .await?;
        let id = invoice["id"].as_str().ok_or("invoice without id")?.to_string();
        api.call("POST", &format!("invoices/{id}/finalize"), &[], Some(&key("finalize"))).await?;
        let mut note = None;
        match fate {
            Fate::Open => {}
            Fate::Paid => {
                api.call("POST", &format!("invoices/{id}/pay"), &[], Some(&key("pay"))).await?;
            }
            Fate::Void => {
                api.call("POST", &format!("invoices/{id}/void"), &[], Some(&key("void"))).await?;
            }
            Fate::Uncollectible => {
                api.call("POST", &format!("invoices/{id}/mark_uncollectible"), &[], Some(&key("uncollectible")))
                    .await?;
            }
            Fate::Refunded(cents) => {
                api.call("POST", &format!("invoices/{id}/pay"), &[], Some(&key("pay"))).await?;
                let cents = cents.to_string();
                let created = api
                    .call(
                        "POST",
                        "credit_notes",
                        &[("invoice", &id), ("amount", &cents), ("refund_amount", &cents), ("memo", "demo refund")],
                        Some(&key("refund")),
                    )
                    .await?;
                let refunded = created["refunds"]
                    .as_array()
                    .map_or(0, |r| r.iter().filter_map(|x| x["amount_refunded"].as_i64()).sum());
                note = Some(CreditNoteFacts {
                    credit_note_id: created["id"].as_str().unwrap_or_default().to_string(),
                    invoice_id: id.clone(),
                    refunded,
                });
            }
        }
        let facts = stripe.invoice(&id).await.map_err(|e| e.to_string())?;
        states.push(record(store, &partner, &facts, note.as_ref()).await?.billing_status().as_str());
    }
    Ok(format!("demo invoices of {}: {}", partner.company_name, states.join(", ")))
}

/// Writes the invoice's record as the webhook would, conditional on what is there
/// (where webhooks are delivered, one may have recorded the invoice first).
async fn record(
    store: &Store,
    partner: &tierdesk::domain::partner::Partner,
    facts: &tierdesk::domain::billing::InvoiceFacts,
    note: Option<&CreditNoteFacts>,
) -> Result<InvoiceRecord, String> {
    for _ in 0..5 {
        let previous = store
            .invoice(&partner.partner_id, facts.created, &facts.invoice_id)
            .await
            .map_err(|e| e.to_string())?
            .map(InvoiceRecord::normalized);
        let at = rfc3339(chrono::Utc::now());
        let mut record = InvoiceRecord::from_facts(facts, partner, previous.as_ref(), &at);
        if let Some((after, _)) = note.and_then(|n| apply_credit_note(&record, n, &at)) {
            record = after;
        }
        let write = BillingWrite { invoice: Some((&record, previous.as_ref())), ..Default::default() };
        match store.apply_billing(&write).await {
            Ok(()) => return Ok(record),
            Err(tierdesk::store::BillingWriteError::Stale) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("the invoice kept changing".into())
}
