//! Sending an invoice again, and credit notes on paid invoices with the refund of
//! the invoice's payment they make (`refund_amount`), as Stripe plays them.

use serde_json::Value;

use crate::clock::new_id;
use crate::error::ApiError;
use crate::objects;
use crate::state::{CreditNote, InvoiceStatus, Metadata, Refund, Store};

/// `POST /v1/credit_notes` as parsed.
#[derive(Debug, Clone, Default)]
pub struct NewCreditNote {
    pub invoice: String,
    pub amount: Option<i64>,
    pub refund_amount: Option<i64>,
    pub out_of_band_amount: Option<i64>,
    pub memo: Option<String>,
    pub reason: Option<String>,
    pub metadata: Metadata,
}

const REASONS: [&str; 4] = ["duplicate", "fraudulent", "order_change", "product_unsatisfactory"];

impl Store {
    /// `POST /v1/invoices/{id}/send`: emails a finalized invoice (`invoice.sent`).
    pub fn send_invoice(&mut self, id: &str) -> Result<(), ApiError> {
        let inv = self.invoices.get_mut(id).ok_or_else(|| ApiError::no_such("invoice", id))?;
        if matches!(inv.status, InvoiceStatus::Draft | InvoiceStatus::Void) {
            return Err(ApiError::state(format!("You can't send a {} invoice.", inv.status.as_str())));
        }
        inv.sent_count += 1;
        self.emit_invoice("invoice.sent", id);
        Ok(())
    }

    /// What is left to credit on a paid invoice: what was paid less earlier credit notes.
    pub fn creditable(&self, invoice: &str) -> i64 {
        let paid = self.invoices.get(invoice).map_or(0, |i| i.amount_paid);
        let credited: i64 = self.credit_notes.iter().filter(|c| c.invoice == invoice).map(|c| c.amount).sum();
        paid - credited
    }

    /// `POST /v1/credit_notes` on a paid invoice: `amount` (default: all that is left)
    /// must be covered by `refund_amount` + `out_of_band_amount`; the refund goes back
    /// to the invoice's payment. Emits `credit_note.created`, then `refund.created`.
    pub fn create_credit_note(&mut self, new: NewCreditNote) -> Result<String, ApiError> {
        let inv = self
            .invoices
            .get(&new.invoice)
            .ok_or_else(|| ApiError::no_such_param("invoice", &new.invoice, "invoice"))?;
        if inv.status != InvoiceStatus::Paid {
            return Err(ApiError::invalid(
                format!("This emulator credits paid invoices only; invoice {} is {}.", inv.id, inv.status.as_str()),
                Some("invoice".into()),
            ));
        }
        if let Some(reason) = new.reason.as_deref().filter(|r| !REASONS.contains(r)) {
            return Err(ApiError::invalid(format!("Invalid reason: {reason}"), Some("reason".into())));
        }
        let left = self.creditable(&new.invoice);
        let refund = new.refund_amount.unwrap_or(0);
        let out_of_band = new.out_of_band_amount.unwrap_or(0);
        let amount = new.amount.unwrap_or(if refund + out_of_band > 0 { refund + out_of_band } else { left });
        if amount <= 0 || refund < 0 || out_of_band < 0 {
            return Err(ApiError::invalid("The credit note amount must be positive.", Some("amount".into())));
        }
        if amount > left {
            return Err(ApiError::invalid(
                format!("The credit note amount ({amount}) is greater than the amount left to credit ({left})."),
                Some("amount".into()),
            ));
        }
        if refund + out_of_band != amount {
            return Err(ApiError::invalid(
                "The sum of refund_amount and out_of_band_amount must equal the credit note amount on a paid invoice.",
                Some("refund_amount".into()),
            ));
        }
        let (customer, currency, number) =
            (inv.customer.clone(), inv.currency.clone(), inv.number.clone().unwrap_or_else(|| inv.id.clone()));
        let sequence = self.credit_notes.iter().filter(|c| c.invoice == new.invoice).count() + 1;
        let id = new_id("cn");
        let now = self.now();
        let refund_row = (refund > 0).then(|| Refund {
            id: new_id("re"),
            amount: refund,
            currency: currency.clone(),
            created: now,
            customer: customer.clone(),
            invoice: new.invoice.clone(),
            credit_note: id.clone(),
        });
        self.credit_notes.insert(CreditNote {
            id: id.clone(),
            number: format!("{number}-CN-{sequence:02}"),
            invoice: new.invoice.clone(),
            customer,
            amount,
            currency,
            created: now,
            memo: new.memo,
            reason: new.reason,
            metadata: new.metadata,
            refund: refund_row.as_ref().map(|r| (r.id.clone(), r.amount)),
            out_of_band_amount: (out_of_band > 0).then_some(out_of_band),
        });
        let note = self.credit_notes.get(&id).map_or(Value::Null, |c| objects::credit_note(self, c));
        self.emit("credit_note.created", note, None);
        if let Some(r) = refund_row {
            let rid = r.id.clone();
            self.refunds.insert(r);
            let refund = self.refunds.get(&rid).map_or(Value::Null, objects::refund);
            self.emit("refund.created", refund, None);
        }
        Ok(id)
    }
}
