//! Chargebacks: the card network disputes a paid invoice's payment. Stripe takes the
//! funds back at once (`charge.dispute.created`, `charge.dispute.funds_withdrawn`);
//! the dispute closes won (`charge.dispute.closed`, `charge.dispute.funds_reinstated`)
//! or lost (`charge.dispute.closed`). Opened and closed through the emulator's
//! controls, since in Stripe they come from outside.

use crate::clock::new_id;
use crate::error::ApiError;
use crate::objects;
use crate::state::{Dispute, InvoiceStatus, Store};

const REASONS: [&str; 6] =
    ["fraudulent", "duplicate", "product_not_received", "subscription_canceled", "credit_not_processed", "general"];

impl Store {
    /// Opens a dispute over `amount` (default: all that was paid) of a paid invoice.
    pub fn open_dispute(
        &mut self,
        invoice: &str,
        amount: Option<i64>,
        reason: Option<String>,
    ) -> Result<String, ApiError> {
        let inv = self.invoices.get(invoice).ok_or_else(|| ApiError::no_such("invoice", invoice))?;
        if inv.status != InvoiceStatus::Paid || inv.amount_paid <= 0 {
            return Err(ApiError::state(format!(
                "Only a paid invoice's payment can be disputed; {invoice} is {}.",
                inv.status.as_str()
            )));
        }
        let disputed: i64 = self.disputes.iter().filter(|d| d.invoice == invoice).map(|d| d.amount).sum();
        let amount = amount.unwrap_or(inv.amount_paid - disputed);
        if amount <= 0 || amount + disputed > inv.amount_paid {
            return Err(ApiError::invalid(
                "The disputed amount must be positive and at most what was paid.",
                Some("amount".into()),
            ));
        }
        let reason = reason.unwrap_or_else(|| "fraudulent".into());
        if !REASONS.contains(&reason.as_str()) {
            return Err(ApiError::invalid(format!("Invalid reason: {reason}"), Some("reason".into())));
        }
        let id = new_id("dp");
        let dispute = Dispute {
            id: id.clone(),
            invoice: invoice.to_string(),
            amount,
            currency: inv.currency.clone(),
            created: self.now(),
            reason,
            status: "needs_response".into(),
        };
        let object = objects::dispute(&dispute);
        self.disputes.insert(dispute);
        self.emit("charge.dispute.created", object.clone(), None);
        self.emit("charge.dispute.funds_withdrawn", object, None);
        Ok(id)
    }

    /// Closes an open dispute `won` (the funds come back) or `lost`.
    pub fn close_dispute(&mut self, id: &str, status: &str) -> Result<(), ApiError> {
        if !matches!(status, "won" | "lost") {
            return Err(ApiError::invalid("status must be won or lost", Some("status".into())));
        }
        let dispute = self.disputes.get_mut(id).ok_or_else(|| ApiError::no_such("dispute", id))?;
        if matches!(dispute.status.as_str(), "won" | "lost") {
            return Err(ApiError::state(format!("Dispute {id} is already closed ({}).", dispute.status)));
        }
        let previous = serde_json::json!({ "status": dispute.status });
        dispute.status = status.to_string();
        let object = objects::dispute(dispute);
        self.emit("charge.dispute.closed", object.clone(), Some(previous));
        if status == "won" {
            self.emit("charge.dispute.funds_reinstated", object, None);
        }
        Ok(())
    }
}
