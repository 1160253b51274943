//! Invoices for staff (seed 003 §3.2 "Admin Invoice Dashboard", docs/billing.md):
//!
//! - `GET /api/admin/invoices`: every partner's invoices, newest first, filtered by
//!   `status`, `partnerId`, `tier` and a `from`/`to` date range (Stripe's
//!   `created`, UTC), paged with the project's cursors, `format=csv` for a
//!   download, and on the first page the totals per status of the whole range.
//!   Served by the invoice indexes (`store::keys`, never a Scan). `view_customer_info`:
//!   sales reps see the invoices of their own accounts (the partner's current
//!   `assignedSalesRep`), managers and admins every invoice.
//! - `POST /api/admin/invoices/{invoiceId}/{send|pay|void|refund}`: resend Stripe's
//!   invoice email, mark paid outside Stripe, void an open invoice, refund all or
//!   part of a paid one (a Stripe credit note refunding the payment). Sales
//!   managers and admins (`pricing_management`). Stripe is asked first with an
//!   idempotency key, then its answer is written with the audit entry in one
//!   transaction; the webhook events that follow find it done and change nothing.

use super::{Billing, WRITE_ATTEMPTS};
use chrono::DateTime;
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use tierdesk::app::{commission, Meaning};
use tierdesk::clock::rfc3339;
use tierdesk::domain::actor::Actor;
use tierdesk::domain::billing::{record_payment, BillingChange, InvoiceFacts, InvoiceRecord};
use tierdesk::domain::invoice::{
    plan_credit_note, refund_amount, totals, BillingStatus, InvoiceError, InvoiceFilter, RefundRequest, StatusTotal,
};
use tierdesk::domain::partner::Partner;
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::subscription::{Catalog, SubscriptionError, TransitionContext, Trigger, TriggerType};
use tierdesk::domain::validation::ValidationError;
use tierdesk::http::csv::{csv_response, CsvWriter};
use tierdesk::http::identity::Identity;
use tierdesk::http::request::{json_body, query};
use tierdesk::http::{json, Ctx, PageRequest};
use tierdesk::idempotency;
use tierdesk::store::{
    BillingWrite, BillingWriteError, InvoiceList, InvoiceStore, Page, PartnerStore, Store, TierStore,
};
use tierdesk::ApiError;

/// The most invoices one totals answer adds up; a wider range is refused (narrow it).
pub const TOTALS_CAP: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Send,
    Pay,
    Void,
    Refund,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Send => "send",
            Action::Pay => "pay",
            Action::Void => "void",
            Action::Refund => "refund",
        }
    }

    fn audit_action(self) -> &'static str {
        match self {
            Action::Send => "invoice.send",
            Action::Pay => "invoice.mark_paid",
            Action::Void => "invoice.void",
            Action::Refund => "invoice.refund",
        }
    }
}

/// Stripe invoice ids: `in_` and letters or digits.
fn invoice_id(raw: &str) -> Result<&str, ValidationError> {
    let ok = raw.len() <= 128
        && raw
            .strip_prefix("in_")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()));
    ok.then_some(raw).ok_or_else(|| ValidationError::single("invoiceId", "must be a Stripe invoice id (in_…)"))
}

/// Whether the caller sees every account's invoices (managers, admins) or only
/// their own accounts' (reps).
fn sees_all(who: &Identity) -> bool {
    who.can(Permission::PricingManagement)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ListAnswer {
    items: Vec<InvoiceRecord>,
    next_cursor: Option<String>,
    /// Per status, over the whole filtered range (every status, whatever `status`
    /// asks); on the first page only (null with a cursor).
    totals: Option<std::collections::BTreeMap<&'static str, StatusTotal>>,
}

pub async fn list(app: &Billing, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::ViewCustomerInfo)?;
    let filter = InvoiceFilter::parse(|k| query(req, k))?;
    let csv = match query(req, "format").as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ValidationError::single("format", "must be json or csv").into()),
    };
    let page = PageRequest::from_request(req, app.config.default_page_size, app.config.max_page_size)?;
    let rep = (!sees_all(who)).then(|| who.subject.clone());
    if let (Some(rep), Some(partner)) = (&rep, &filter.partner_id) {
        // A rep asking for another rep's account sees nothing of it.
        let reps = app.store.partner_reps(std::slice::from_ref(partner)).await?;
        if reps.get(partner).cloned().flatten().as_deref() != Some(rep.as_str()) {
            return answer(csv, ListAnswer { items: vec![], next_cursor: None, totals: Some(totals(&[])) });
        }
    }
    let (from, to) = filter.created_bounds();
    let q = Store::invoice_list_query(&list_of(&filter, rep.as_deref(), true), from, to, filters(&filter, true));
    let found: Page<InvoiceRecord> = app.store.query_page(&q, &page).await?;
    let mut items: Vec<InvoiceRecord> = found.items.into_iter().map(InvoiceRecord::normalized).collect();
    if let Some(rep) = &rep {
        items = own_accounts(app, rep, items).await?;
    }
    let totals = match page.cursor {
        Some(_) => None,
        None => {
            let q =
                Store::invoice_list_query(&list_of(&filter, rep.as_deref(), false), from, to, filters(&filter, false));
            let Some(mut all) = app.store.invoice_list_all(&q, TOTALS_CAP).await? else {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "range_too_large",
                    format!("more than {TOTALS_CAP} invoices in the range; narrow it"),
                )
                .with_details(serde_json::json!({ "fields": { "from": "narrow the date range" } })));
            };
            if let Some(rep) = &rep {
                all = own_accounts(app, rep, all).await?;
            }
            Some(totals(&all))
        }
    };
    answer(csv, ListAnswer { items, next_cursor: found.next_cursor, totals })
}

fn answer(csv: bool, a: ListAnswer) -> Result<Response<Body>, ApiError> {
    if csv {
        Ok(csv_response(invoices_csv(&a.items), "invoices", a.next_cursor))
    } else {
        json(StatusCode::OK, &a)
    }
}

/// The index a list reads: one partner's partition, a rep's accounts, one status,
/// or every invoice. `by_status`: the status filter may pick the index.
fn list_of(filter: &InvoiceFilter, rep: Option<&str>, by_status: bool) -> InvoiceList {
    match (&filter.partner_id, rep, filter.status.filter(|_| by_status)) {
        (Some(p), _, _) => InvoiceList::Partner(p.clone()),
        (None, Some(r), _) => InvoiceList::Rep(r.to_string()),
        (None, None, Some(s)) => InvoiceList::Status(s),
        (None, None, None) => InvoiceList::All,
    }
}

/// The equality filters the chosen key leaves to apply.
fn filters(filter: &InvoiceFilter, with_status: bool) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(t) = &filter.tier {
        out.push(("tier", t.clone()));
    }
    if let Some(s) = filter.status.filter(|_| with_status) {
        out.push(("billingStatus", s.as_str().to_string()));
    }
    out
}

/// Keeps the rows whose partner's current rep is `rep` (the index copy of the rep
/// is from the invoice's last write; a reassigned account leaves its old rep at once).
async fn own_accounts(app: &Billing, rep: &str, items: Vec<InvoiceRecord>) -> Result<Vec<InvoiceRecord>, ApiError> {
    let mut ids: Vec<String> = items.iter().map(|r| r.partner_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let reps = app.store.partner_reps(&ids).await?;
    Ok(items.into_iter().filter(|r| reps.get(&r.partner_id).cloned().flatten().as_deref() == Some(rep)).collect())
}

fn invoices_csv(items: &[InvoiceRecord]) -> String {
    let mut out = CsvWriter::new(&[
        "invoiceId",
        "invoiceNumber",
        "partnerId",
        "tier",
        "status",
        "amount",
        "amountPaid",
        "refundedAmount",
        "currency",
        "created",
        "periodStart",
        "periodEnd",
        "paidAt",
        "salesRep",
    ]);
    for r in items {
        let created = DateTime::from_timestamp(r.stripe_created, 0).map(rfc3339);
        out.row(vec![
            r.invoice_id.as_str().into(),
            r.invoice_number.clone().into(),
            r.partner_id.as_str().into(),
            r.tier.as_str().into(),
            r.billing_status().as_str().into(),
            r.amount.into(),
            r.amount_paid.into(),
            r.refunded_amount.into(),
            r.currency.as_str().into(),
            created.into(),
            r.period_start.map(|d| d.to_string()).into(),
            r.period_end.map(|d| d.to_string()).into(),
            r.paid_at.clone().into(),
            r.sales_rep.clone().into(),
        ]);
    }
    out.finish()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ActionAnswer {
    action: &'static str,
    invoice: InvoiceRecord,
    /// Refunds: the credit note and the cents it refunded.
    #[serde(skip_serializing_if = "Option::is_none")]
    credit_note_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refunded: Option<i64>,
}

pub async fn act(
    app: &Billing,
    ctx: &Ctx,
    req: &Request,
    raw_id: &str,
    action: Action,
) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::PricingManagement)?;
    let by = ctx.actor(who);
    let id = invoice_id(raw_id)?;
    let refund = match action {
        Action::Refund => Some(RefundRequest::parse(&optional_body(req, app.config.max_body_bytes)?)?),
        _ => None,
    };
    let record = app.store.invoice_by_id(id).await?.ok_or(InvoiceError::NotFound)?;
    let scope = format!("invoice#{id}#{}", action.name());
    let now = app.clock.now().timestamp();
    idempotency::once(&app.store, ctx, req, &scope, now, |key| async move {
        let answer = match action {
            Action::Send => send(app, ctx, &by, record, key.as_deref()).await?,
            Action::Pay => pay(app, ctx, &by, record, key.as_deref()).await?,
            Action::Void => void(app, ctx, &by, record, key.as_deref()).await?,
            Action::Refund => refund_invoice(app, &by, record, &refund.unwrap_or_default(), key.as_deref()).await?,
        };
        json(StatusCode::OK, &answer)
    })
    .await
}

fn optional_body(req: &Request, limit: usize) -> Result<serde_json::Value, ApiError> {
    Ok(match req.body() {
        Body::Empty => serde_json::Value::Null,
        Body::Text(s) if s.trim().is_empty() => serde_json::Value::Null,
        _ => json_body(req, limit)?,
    })
}

fn needs(
    record: &InvoiceRecord,
    allowed: &[BillingStatus],
    action: &'static str,
    what: &'static str,
) -> Result<(), InvoiceError> {
    let status = record.billing_status();
    if allowed.contains(&status) {
        Ok(())
    } else {
        Err(InvoiceError::WrongState { status, action, needs: what })
    }
}

/// The Stripe idempotency key of an action: the caller's key when given (a
/// repeat reaches Stripe with the same key), else this request's id.
fn stripe_key(ctx: &Ctx, action: Action, id: &str, key: Option<&str>) -> String {
    format!("invoice-{}-{id}-{}", action.name(), key.unwrap_or(&ctx.request_id))
}

async fn send(
    app: &Billing,
    ctx: &Ctx,
    by: &Actor,
    record: InvoiceRecord,
    key: Option<&str>,
) -> Result<ActionAnswer, ApiError> {
    use BillingStatus::*;
    needs(&record, &[Open, Paid, Uncollectible, Refunded, PartiallyRefunded], "sending", "a finalized invoice")?;
    app.stripe.send_invoice(&record.invoice_id, &stripe_key(ctx, Action::Send, &record.invoice_id, key)).await?;
    let entry = app.audit(Action::Send.audit_action(), by, Some(&record), &record);
    app.store.apply_billing(&BillingWrite { audit: Some(&entry), ..Default::default() }).await.map_err(write_error)?;
    Ok(ActionAnswer { action: "send", invoice: record, credit_note_id: None, refunded: None })
}

fn write_error(e: BillingWriteError) -> ApiError {
    match e {
        BillingWriteError::Partner(refusal) => refusal.meaning().into(),
        BillingWriteError::Store(e) => e.into(),
        BillingWriteError::Stale | BillingWriteError::ClaimLost => {
            SubscriptionError::VersionConflict { current: None }.into()
        }
    }
}

fn context(app: &Billing, by: &Actor) -> TransitionContext {
    app.transition_context(by, Trigger::new(TriggerType::SalesAssisted, Some("invoice action by staff".into())))
}

/// Writes Stripe's answer about an invoice (and the partner change it plans),
/// replanning from fresh reads when the webhook wrote first. Returns the record.
async fn write_facts<F>(
    app: &Billing,
    by: &Actor,
    action: Action,
    original: &InvoiceRecord,
    facts: &InvoiceFacts,
    mut plan: F,
) -> Result<InvoiceRecord, ApiError>
where
    F: FnMut(&Partner, Option<&InvoiceRecord>, &TransitionContext) -> Result<BillingChange, ApiError>,
{
    for _ in 0..WRITE_ATTEMPTS {
        let partner = app.store.get_partner(&original.partner_id).await?.ok_or(SubscriptionError::NotFound)?;
        let previous = app.store.invoice(&original.partner_id, original.stripe_created, &original.invoice_id).await?;
        let tctx = context(app, by);
        let change = plan(&partner, previous.as_ref(), &tctx)?;
        let mut record =
            InvoiceRecord::from_facts(facts, change.after().unwrap_or(&partner), previous.as_ref(), &tctx.at);
        let commission = commission::settle(&app.store, previous.as_ref(), &mut record, &by.at, by.today).await?;
        // Events may have recorded the same state already: then only the audit is new.
        let unchanged = previous.as_ref().is_some_and(|p| same_state(p, &record));
        let before = previous.clone().map(InvoiceRecord::normalized).unwrap_or_else(|| original.clone());
        let entry = app.audit(action.audit_action(), by, Some(&before), &record);
        let write = BillingWrite {
            change: Some(&change),
            audit: Some(&entry),
            invoice: (!unchanged).then_some((&record, previous.as_ref())),
            commission: commission.as_ref().filter(|_| !unchanged),
            ..Default::default()
        };
        match app.store.apply_billing(&write).await {
            Ok(()) => return Ok(if unchanged { before } else { record }),
            Err(BillingWriteError::Stale) => continue,
            Err(e) => return Err(write_error(e)),
        }
    }
    Err(SubscriptionError::VersionConflict { current: None }.into())
}

/// Whether two records of one invoice show the same state (times aside).
fn same_state(a: &InvoiceRecord, b: &InvoiceRecord) -> bool {
    a.status == b.status
        && a.amount_paid == b.amount_paid
        && a.stripe_status() == b.stripe_status()
        && a.refunded_amount == b.refunded_amount
}

async fn pay(
    app: &Billing,
    ctx: &Ctx,
    by: &Actor,
    record: InvoiceRecord,
    key: Option<&str>,
) -> Result<ActionAnswer, ApiError> {
    needs(
        &record,
        &[BillingStatus::Open, BillingStatus::Uncollectible],
        "marking paid",
        "an open or uncollectible invoice",
    )?;
    let facts =
        app.stripe.pay_out_of_band(&record.invoice_id, &stripe_key(ctx, Action::Pay, &record.invoice_id, key)).await?;
    let catalog = app.store.active_catalog().await?;
    let invoice = write_facts(app, by, Action::Pay, &record, &facts, |p, previous, tctx| {
        Ok(record_payment(p, &facts, previous, Catalog::new(&catalog), tctx)?)
    })
    .await?;
    Ok(ActionAnswer { action: "pay", invoice, credit_note_id: None, refunded: None })
}

async fn void(
    app: &Billing,
    ctx: &Ctx,
    by: &Actor,
    record: InvoiceRecord,
    key: Option<&str>,
) -> Result<ActionAnswer, ApiError> {
    needs(&record, &[BillingStatus::Open], "voiding", "an open invoice")?;
    let facts =
        app.stripe.void_invoice(&record.invoice_id, &stripe_key(ctx, Action::Void, &record.invoice_id, key)).await?;
    let invoice = write_facts(app, by, Action::Void, &record, &facts, |_, _, _| Ok(BillingChange::Nothing)).await?;
    Ok(ActionAnswer { action: "void", invoice, credit_note_id: None, refunded: None })
}

/// Refunds through a Stripe credit note. Without a client key the Stripe key names
/// the invoice, the amount and what was refunded before, so a retry after a
/// failure between Stripe's answer and the write gets the same credit note back
/// and records it once.
async fn refund_invoice(
    app: &Billing,
    by: &Actor,
    record: InvoiceRecord,
    request: &RefundRequest,
    key: Option<&str>,
) -> Result<ActionAnswer, ApiError> {
    let amount = refund_amount(&record, request)?;
    let stripe_key = match key {
        Some(k) => format!("invoice-refund-{}-{k}", record.invoice_id),
        None => format!("invoice-refund-{}-r{}-a{amount}", record.invoice_id, record.refunded_amount),
    };
    let note = app.stripe.refund_invoice(&record.invoice_id, amount, request.reason.as_deref(), &stripe_key).await?;
    for _ in 0..WRITE_ATTEMPTS {
        let partner = app.store.get_partner(&record.partner_id).await?.ok_or(SubscriptionError::NotFound)?;
        let previous = app
            .store
            .invoice(&record.partner_id, record.stripe_created, &record.invoice_id)
            .await?
            .ok_or(InvoiceError::NotFound)?
            .normalized();
        let Some((mut after, change)) = plan_credit_note(&partner, &previous, &note, &by.at, &by.id) else {
            // The webhook (or an earlier try) recorded this credit note already.
            return Ok(ActionAnswer {
                action: "refund",
                invoice: previous,
                credit_note_id: Some(note.credit_note_id),
                refunded: Some(note.refunded),
            });
        };
        let commission = commission::settle(&app.store, Some(&previous), &mut after, &by.at, by.today).await?;
        let entry = app.audit(Action::Refund.audit_action(), by, Some(&previous), &after);
        let write = BillingWrite {
            change: Some(&change),
            audit: Some(&entry),
            invoice: Some((&after, Some(&previous))),
            commission: commission.as_ref(),
            ..Default::default()
        };
        match app.store.apply_billing(&write).await {
            Ok(()) => {
                return Ok(ActionAnswer {
                    action: "refund",
                    invoice: after,
                    credit_note_id: Some(note.credit_note_id),
                    refunded: Some(note.refunded),
                })
            }
            Err(BillingWriteError::Stale) => continue,
            Err(e) => return Err(write_error(e)),
        }
    }
    Err(SubscriptionError::VersionConflict { current: None }.into())
}
