//! Checkout completion: the customer pays on the checkout page.

use serde_json::Value;

use super::{NewItem, NewSubscription, Payment, PaymentBehavior};
use crate::error::ApiError;
use crate::objects;
use crate::state::{CheckoutSession, Customer, Metadata, SessionStatus, Store, SubscriptionStatus};

impl Store {
    /// Emulator control: the customer pays on the checkout page. Creates the subscription as
    /// `POST /v1/subscriptions` would, then completes the session (`checkout.session.completed`).
    /// A declined card leaves the session open with an incomplete subscription; completing it
    /// again retries that subscription's invoice.
    pub fn complete_checkout(&mut self, id: &str) -> Result<(), ApiError> {
        let session = self.sessions.get(id).ok_or_else(|| ApiError::no_such("checkout.session", id))?.clone();
        if session.status != SessionStatus::Open {
            return Err(ApiError::state(format!("Checkout session {id} is {}, not open.", session.status.as_str())));
        }
        if session.mode == "setup" {
            return self.complete_setup(id, &super::CardInput::default());
        }

        let sub = match session.pending_subscription.clone() {
            Some(sub) => {
                let invoice = self.subscriptions.get(&sub).and_then(|s| s.latest_invoice.clone()).unwrap_or_default();
                let before = self.subscription_json(&sub);
                self.open_invoice(&invoice)?;
                if self.collect(&invoice) == Payment::Paid {
                    self.reactivate(&sub, &before);
                }
                sub
            }
            None => {
                let customer = match &session.customer {
                    Some(c) => c.clone(),
                    None => self.create_customer_for_checkout(&session),
                };
                let items = session
                    .lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| NewItem {
                        price: l.price.clone(),
                        quantity: l.quantity,
                        metadata: Metadata::new(),
                        param: format!("line_items[{i}][price]"),
                    })
                    .collect();
                let sub = self.create_subscription(NewSubscription {
                    customer: customer.clone(),
                    items,
                    metadata: session.subscription_metadata.clone(),
                    description: None,
                    payment_behavior: PaymentBehavior::AllowIncomplete,
                    coupon: session.coupon.clone().map(|c| (c, "discounts[0][coupon]".to_owned())),
                    trial_period_days: session.trial_period_days,
                })?;
                if let Some(s) = self.sessions.get_mut(id) {
                    s.customer = Some(customer);
                    s.pending_subscription = Some(sub.clone());
                }
                sub
            }
        };

        let Some(s) = self.subscriptions.get(&sub) else { return Ok(()) };
        if !matches!(s.status, SubscriptionStatus::Active | SubscriptionStatus::Trialing) {
            return Ok(());
        }
        let invoice = s.latest_invoice.clone();
        if let Some(session) = self.sessions.get_mut(id) {
            session.status = SessionStatus::Complete;
            session.paid = true;
            session.subscription = Some(sub);
            session.invoice = invoice;
            session.pending_subscription = None;
        }
        let object = self.sessions.get(id).map_or(Value::Null, |s| objects::checkout_session(self, s));
        self.emit("checkout.session.completed", object, None);
        Ok(())
    }

    pub(super) fn create_customer_for_checkout(&mut self, session: &CheckoutSession) -> String {
        let now = self.now();
        let customer = Customer::new(now, session.customer_email.clone(), None, Metadata::new());
        let id = customer.id.clone();
        self.customers.insert(customer);
        id
    }
}
