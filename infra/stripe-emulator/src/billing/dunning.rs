//! Dunning: what happens when automatic payment attempts keep failing.

use super::Payment;
use crate::error::ApiError;
use crate::state::Store;

/// Tierdesk runs Stripe's retry schedule with "cancel the subscription if all retries
/// fail". The subscription is canceled after its invoice's 3rd failed attempt, which matches
/// Tierdesk's own handling by `attempt_count` (1: reminder, 2: urgent, 3: downgrade).
pub const MAX_PAYMENT_ATTEMPTS: u32 = 3;

/// Days from a failed automatic attempt to the next one (`next_payment_attempt`), by attempt.
pub(super) const RETRY_AFTER_DAYS: [i64; 2] = [3, 5];

impl Store {
    /// Emulator control: the next automatic payment attempt on an open invoice (Stripe's smart
    /// retry). Applies the dunning policy.
    pub fn retry_invoice(&mut self, id: &str) -> Result<Payment, ApiError> {
        let sub = self.open_invoice(id)?.subscription.clone();
        let before = sub.as_deref().map(|s| self.subscription_json(s));
        let payment = self.collect(id);
        let (Some(sub), Some(before)) = (sub, before) else { return Ok(payment) };
        match payment {
            Payment::Paid => self.reactivate(&sub, &before),
            Payment::Failed => {
                let attempts = self.invoices.get(id).map_or(0, |i| i.attempt_count);
                let live = self.subscriptions.get(&sub).is_some_and(|s| !s.status.is_ended());
                if attempts >= MAX_PAYMENT_ATTEMPTS && live {
                    if let Some(inv) = self.invoices.get_mut(id) {
                        inv.next_payment_attempt = None;
                    }
                    self.end_subscription(&sub, "payment_failed", None);
                }
            }
        }
        Ok(payment)
    }
}
