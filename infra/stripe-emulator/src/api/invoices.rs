//! Invoices and invoice items.

use super::{list_response, Result};
use crate::billing::{NewCreditNote, NewInvoice, NewInvoiceItem};
use crate::error::ApiError;
use crate::form::Form;
use crate::objects;
use crate::state::{payment_intent_of, Invoice, InvoiceStatus, Store};

pub fn create(store: &mut Store, form: &Form) -> Result {
    let behavior = form.str("pending_invoice_items_behavior").unwrap_or("exclude");
    let id = store.create_invoice(NewInvoice {
        customer: form.required("customer")?.to_owned(),
        subscription: form.string("subscription"),
        description: form.string("description"),
        metadata: form.metadata("metadata").map(|m| m.into_metadata()).unwrap_or_default(),
        auto_advance: form.bool("auto_advance")?,
        include_pending_items: behavior == "include",
        currency: form.string("currency"),
    })?;
    retrieve(store, &id)
}

pub fn retrieve(store: &Store, id: &str) -> Result {
    let inv = store.invoices.get(id).ok_or_else(|| ApiError::no_such("invoice", id))?;
    Ok(objects::invoice(store, inv))
}

pub fn list(store: &Store, form: &Form) -> Result {
    let customer = form.string("customer");
    let subscription = form.string("subscription");
    let status = match form.string("status") {
        None => None,
        Some(s) => Some(
            InvoiceStatus::parse(&s)
                .ok_or_else(|| ApiError::invalid(format!("Invalid status: {s}"), Some("status".into())))?,
        ),
    };
    let rows = store
        .invoices
        .iter()
        .rev()
        .filter(|i| {
            customer.as_ref().is_none_or(|c| &i.customer == c)
                && subscription.as_ref().is_none_or(|s| i.subscription.as_ref() == Some(s))
                && status.is_none_or(|s| i.status == s)
        })
        .collect();
    list_response(store, form, "/v1/invoices", rows, objects::invoice)
}

pub fn lines(store: &Store, id: &str, form: &Form) -> Result {
    let inv = store.invoices.get(id).ok_or_else(|| ApiError::no_such("invoice", id))?;
    let url = format!("/v1/invoices/{id}/lines");
    // Lines are listed in invoice order, not newest first.
    let limit = form.int("limit")?.unwrap_or(10).clamp(1, 100) as usize;
    let start = match form.string("starting_after") {
        Some(after) => inv.lines.iter().position(|l| l.id == after).map_or(0, |p| p + 1),
        None => 0,
    };
    let rest = &inv.lines[start.min(inv.lines.len())..];
    let data = rest.iter().take(limit).map(|l| objects::invoice_line(store, inv, l)).collect();
    Ok(objects::list(&url, data, rest.len() > limit))
}

pub fn pay(store: &mut Store, id: &str, form: &Form) -> Result {
    store.pay_invoice(id, form.bool("paid_out_of_band")?.unwrap_or(false))?;
    retrieve(store, id)
}

pub fn void(store: &mut Store, id: &str) -> Result {
    store.void_invoice(id)?;
    retrieve(store, id)
}

pub fn send(store: &mut Store, id: &str) -> Result {
    store.send_invoice(id)?;
    retrieve(store, id)
}

pub fn create_credit_note(store: &mut Store, form: &Form) -> Result {
    let id = store.create_credit_note(NewCreditNote {
        invoice: form.required("invoice")?.to_owned(),
        amount: form.int("amount")?,
        refund_amount: form.int("refund_amount")?,
        out_of_band_amount: form.int("out_of_band_amount")?,
        memo: form.string("memo"),
        reason: form.string("reason"),
        metadata: form.metadata("metadata").map(|m| m.into_metadata()).unwrap_or_default(),
    })?;
    retrieve_credit_note(store, &id)
}

pub fn retrieve_credit_note(store: &Store, id: &str) -> Result {
    let note = store.credit_notes.get(id).ok_or_else(|| ApiError::no_such("credit_note", id))?;
    Ok(objects::credit_note(store, note))
}

/// `GET /v1/credit_notes[?invoice]`, newest first.
pub fn list_credit_notes(store: &Store, form: &Form) -> Result {
    let invoice = form.string("invoice");
    let rows = store.credit_notes.iter().rev().filter(|c| invoice.as_deref().is_none_or(|i| c.invoice == i)).collect();
    list_response(store, form, "/v1/credit_notes", rows, objects::credit_note)
}

pub fn retrieve_refund(store: &Store, id: &str) -> Result {
    store.refunds.get(id).map(objects::refund).ok_or_else(|| ApiError::no_such("refund", id))
}

pub fn finalize(store: &mut Store, id: &str) -> Result {
    store.finalize_manually(id)?;
    retrieve(store, id)
}

pub fn mark_uncollectible(store: &mut Store, id: &str) -> Result {
    store.mark_uncollectible(id)?;
    retrieve(store, id)
}

pub fn create_item(store: &mut Store, form: &Form) -> Result {
    let period = if form.has("period") {
        let p = form.child("period");
        let start = p.int("start")?.ok_or_else(|| ApiError::missing_param(&p.name("start")))?;
        let end = p.int("end")?.ok_or_else(|| ApiError::missing_param(&p.name("end")))?;
        Some((start, end))
    } else {
        None
    };
    let quantity = match form.int("quantity")? {
        None => None,
        Some(q) => Some(
            u64::try_from(q)
                .map_err(|_| ApiError::invalid("quantity must not be negative", Some("quantity".into())))?,
        ),
    };
    let id = store.create_invoice_item(NewInvoiceItem {
        customer: form.string("customer"),
        subscription: form.string("subscription"),
        invoice: form.string("invoice"),
        amount: form.int("amount")?,
        price: form.string("price").or_else(|| form.child("pricing").string("price")),
        quantity,
        currency: form.string("currency").map(|c| c.to_lowercase()),
        description: form.string("description"),
        period,
        metadata: form.metadata("metadata").map(|m| m.into_metadata()).unwrap_or_default(),
    })?;
    retrieve_item(store, &id)
}

pub fn retrieve_item(store: &Store, id: &str) -> Result {
    let ii = store.invoice_items.get(id).ok_or_else(|| ApiError::no_such("invoiceitem", id))?;
    Ok(objects::invoice_item(store, ii))
}

pub fn list_items(store: &Store, form: &Form) -> Result {
    let customer = form.string("customer");
    let invoice = form.string("invoice");
    let pending = form.bool("pending")?;
    let rows = store
        .invoice_items
        .iter()
        .rev()
        .filter(|ii| {
            customer.as_ref().is_none_or(|c| &ii.customer == c)
                && invoice.as_ref().is_none_or(|i| ii.invoice.as_ref() == Some(i))
                && pending.is_none_or(|p| ii.invoice.is_none() == p)
        })
        .collect();
    list_response(store, form, "/v1/invoiceitems", rows, objects::invoice_item)
}

/// `GET /v1/invoice_payments`: the payments of paid invoices, by `invoice` or by
/// `payment[payment_intent]` (how a dispute, which names only the payment intent,
/// finds its invoice). One payment intent per paid invoice.
pub fn list_invoice_payments(store: &Store, form: &Form) -> Result {
    let invoice = form.string("invoice");
    let payment = form.child("payment");
    let intent = payment.string("payment_intent");
    if let Some(t) = payment.string("type").filter(|t| t != "payment_intent") {
        return Err(ApiError::invalid(format!("Invalid payment[type]: {t}"), Some("payment[type]".into())));
    }
    let rows: Vec<&Invoice> = store
        .invoices
        .iter()
        .rev()
        .filter(|i| {
            i.status == InvoiceStatus::Paid
                && i.amount_paid > 0
                && invoice.as_ref().is_none_or(|id| &i.id == id)
                && intent.as_ref().is_none_or(|pi| &payment_intent_of(&i.id) == pi)
        })
        .collect();
    list_response(store, form, "/v1/invoice_payments", rows, |_, i| objects::invoice_payment(i))
}
