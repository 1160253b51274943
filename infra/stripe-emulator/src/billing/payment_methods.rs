//! Saved cards: a setup-mode Checkout Session collects a card (`pm_…`) through a SetupIntent
//! (`seti_…`) and attaches it to the customer; making it the customer's (or a subscription's)
//! default is the integrator's own call (`POST /v1/customers/{id}` with
//! `invoice_settings[default_payment_method]`, `POST /v1/subscriptions/{id}` with
//! `default_payment_method`), as in Stripe.
//!
//! The emulator charges a customer's card through `card_fails`: making a card a default sets
//! it from that card, so a partner in dunning who saves a working card is charged successfully
//! on the next attempt.

use serde_json::Value;

use crate::clock::new_id;
use crate::error::ApiError;
use crate::objects;
use crate::state::{PaymentMethod, SessionStatus, Store};

/// The card a customer types on the setup page (`POST /_emulator/checkout/sessions/{id}/complete`
/// with `{"card": {"brand", "last4", "fails"}}`); Stripe's test Visa 4242 by default.
#[derive(Debug, Clone)]
pub struct CardInput {
    pub brand: String,
    pub last4: String,
    pub fails: bool,
}

impl Default for CardInput {
    fn default() -> Self {
        Self { brand: "visa".into(), last4: "4242".into(), fails: false }
    }
}

impl CardInput {
    /// `brand` one of Stripe's card brands, `last4` four digits.
    pub fn parse(card: &Value) -> Result<Self, ApiError> {
        let mut out = Self::default();
        if card.is_null() {
            return Ok(out);
        }
        if let Some(brand) = card.get("brand").and_then(Value::as_str) {
            const BRANDS: [&str; 8] =
                ["amex", "diners", "discover", "eftpos_au", "jcb", "mastercard", "unionpay", "visa"];
            if !BRANDS.contains(&brand) {
                return Err(ApiError::invalid(format!("Unknown card brand {brand}."), Some("card[brand]".into())));
            }
            out.brand = brand.to_owned();
        }
        if let Some(last4) = card.get("last4").and_then(Value::as_str) {
            if last4.len() != 4 || !last4.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::invalid("last4 must be four digits.", Some("card[last4]".into())));
            }
            out.last4 = last4.to_owned();
        }
        out.fails = card.get("fails").and_then(Value::as_bool).unwrap_or(false);
        Ok(out)
    }
}

impl Store {
    /// `pm` is a card attached to `customer`, else Stripe's 400 on `param`.
    pub(crate) fn customer_card(&self, customer: &str, pm: &str, param: &str) -> Result<(), ApiError> {
        match self.payment_methods.get(pm) {
            None => Err(ApiError::no_such_param("payment_method", pm, param)),
            Some(card) if card.customer.as_deref() != Some(customer) => Err(ApiError::invalid(
                format!("The customer does not have a payment method with the ID {pm}."),
                Some(param.to_owned()),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Charges on `customer` now go to `pm`: they decline when that card does.
    pub(crate) fn use_card(&mut self, customer: &str, pm: &str) {
        let fails = self.payment_methods.get(pm).is_some_and(|p| p.fails);
        if let Some(c) = self.customers.get_mut(customer) {
            c.card_fails = fails;
        }
    }

    /// A SetupIntent for a new setup-mode session (`setup_intent.created`).
    pub(crate) fn create_setup_intent(
        &mut self,
        customer: Option<String>,
        metadata: crate::state::Metadata,
        description: Option<String>,
    ) -> String {
        let intent = crate::state::SetupIntent {
            id: new_id("seti"),
            created: self.now(),
            customer,
            payment_method: None,
            succeeded: false,
            metadata,
            description,
        };
        let id = intent.id.clone();
        let value = objects::setup_intent(&intent);
        self.setup_intents.insert(intent);
        self.emit("setup_intent.created", value, None);
        id
    }

    /// Emulator control: the customer saves `card` on a setup-mode session's page. The card is
    /// attached to the customer (`payment_method.attached`), the SetupIntent succeeds
    /// (`setup_intent.succeeded`) and the session completes (`checkout.session.completed`, with
    /// `payment_status: no_payment_required`). Nothing is made a default: that is the
    /// integrator's call, as in Stripe.
    pub fn complete_setup(&mut self, id: &str, card: &CardInput) -> Result<(), ApiError> {
        let session = self.sessions.get(id).ok_or_else(|| ApiError::no_such("checkout.session", id))?.clone();
        if session.status != SessionStatus::Open {
            return Err(ApiError::state(format!("Checkout session {id} is {}, not open.", session.status.as_str())));
        }
        let customer = match &session.customer {
            Some(c) => c.clone(),
            None => self.create_customer_for_checkout(&session),
        };
        let now = self.now();
        let pm = PaymentMethod {
            id: new_id("pm"),
            created: now,
            customer: Some(customer.clone()),
            brand: card.brand.clone(),
            last4: card.last4.clone(),
            exp_month: 12,
            exp_year: chrono::DateTime::from_timestamp(now, 0).map_or(2030, |t| chrono::Datelike::year(&t) + 4),
            fails: card.fails,
        };
        let pm_id = pm.id.clone();
        let value = objects::payment_method(&pm);
        self.payment_methods.insert(pm);
        self.emit("payment_method.attached", value, None);
        let intent_id = session.setup_intent.clone().unwrap_or_default();
        if let Some(intent) = self.setup_intents.get_mut(&intent_id) {
            intent.customer = Some(customer.clone());
            intent.payment_method = Some(pm_id);
            intent.succeeded = true;
        }
        if let Some(intent) = self.setup_intents.get(&intent_id) {
            let value = objects::setup_intent(intent);
            self.emit("setup_intent.succeeded", value, None);
        }
        if let Some(s) = self.sessions.get_mut(id) {
            s.customer = Some(customer);
            s.status = SessionStatus::Complete;
        }
        let object = self.sessions.get(id).map_or(Value::Null, |s| objects::checkout_session(self, s));
        self.emit("checkout.session.completed", object, None);
        Ok(())
    }
}
