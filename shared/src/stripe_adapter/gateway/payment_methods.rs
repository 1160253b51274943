//! The partner's payment method and the numbers the upgrade preview needs: a
//! setup-mode Checkout Session (Stripe's hosted page saves the card), making the
//! saved card the default for the customer and its subscription, reading the
//! customer's default card (brand and last four only), and the subscription's
//! running period.

use super::{idempotent, provider, CheckoutSession, StripeGateway};
use crate::domain::billing::BillingError;
use crate::domain::money::BillingPeriod;
use crate::domain::partner::PaymentMethodSummary;
use crate::domain::self_service::CurrentPeriod;
use crate::meter::{MeteredCall, Service};
use crate::stripe_adapter::facts::PARTNER_ID_KEY;
use std::collections::HashMap;
use stripe::StripeRequest;

/// Metadata key of a setup session and its SetupIntent: the subscription whose
/// default card the saved card becomes (Stripe's documented pattern for
/// "update payment details" with Checkout).
pub const SUBSCRIPTION_ID_KEY: &str = "subscription_id";

/// A completed setup session: the card it saved, and whom it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCard {
    pub payment_method_id: String,
    pub customer_id: String,
    pub subscription_id: Option<String>,
}

fn summary(pm: &stripe_shared::PaymentMethod) -> Option<PaymentMethodSummary> {
    pm.card.as_ref().map(|c| PaymentMethodSummary { brand: c.brand.clone(), last4: c.last4.clone() })
}

impl StripeGateway {
    /// A Checkout Session in `mode=setup` for `customer`: Stripe's hosted page
    /// collects a card and saves it to the customer; nothing is charged.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_setup_checkout(
        &self,
        customer_id: &str,
        partner_id: &str,
        subscription_id: Option<&str>,
        currency: &str,
        success_url: &str,
        cancel_url: &str,
        key: &str,
    ) -> Result<CheckoutSession, BillingError> {
        use stripe_checkout::checkout_session::{CreateCheckoutSession, CreateCheckoutSessionSetupIntentData};
        let mut metadata = HashMap::from([(PARTNER_ID_KEY.to_string(), partner_id.to_string())]);
        if let Some(sub) = subscription_id {
            metadata.insert(SUBSCRIPTION_ID_KEY.to_string(), sub.to_string());
        }
        let mut setup = CreateCheckoutSessionSetupIntentData::new();
        setup.metadata = Some(metadata.clone());
        let currency: stripe_types::Currency =
            currency.parse().map_err(|_| BillingError::Provider(format!("unknown currency {currency}")))?;
        let session = CreateCheckoutSession::new()
            .mode(stripe_shared::CheckoutSessionMode::Setup)
            .customer(customer_id)
            .currency(currency)
            .client_reference_id(partner_id)
            .metadata(metadata)
            .setup_intent_data(setup)
            .success_url(success_url)
            .cancel_url(cancel_url)
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        Ok(CheckoutSession { id: session.id.as_str().to_string(), url: session.url })
    }

    /// The card a completed setup session saved, read from Stripe (the session
    /// with its SetupIntent expanded). `None`: not a completed setup session, or
    /// no card was saved.
    pub async fn saved_card(&self, session_id: &str) -> Result<Option<SavedCard>, BillingError> {
        let session = stripe_checkout::checkout_session::RetrieveCheckoutSession::new(session_id)
            .expand(vec!["setup_intent".to_string()])
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        if session.mode != stripe_shared::CheckoutSessionMode::Setup
            || session.status != Some(stripe_shared::CheckoutSessionStatus::Complete)
        {
            return Ok(None);
        }
        let Some(intent) = session.setup_intent.as_ref().and_then(|i| i.as_object()) else { return Ok(None) };
        let Some(pm) = intent.payment_method.as_ref() else { return Ok(None) };
        let customer = session
            .customer
            .as_ref()
            .or(intent.customer.as_ref())
            .map(|c| c.id().as_str().to_string())
            .unwrap_or_default();
        let subscription_id = intent
            .metadata
            .as_ref()
            .and_then(|m| m.get(SUBSCRIPTION_ID_KEY))
            .or_else(|| session.metadata.as_ref().and_then(|m| m.get(SUBSCRIPTION_ID_KEY)))
            .filter(|s| !s.is_empty())
            .cloned();
        Ok(Some(SavedCard { payment_method_id: pm.id().as_str().to_string(), customer_id: customer, subscription_id }))
    }

    /// Makes `card` the customer's default for invoices and, when it names one, the
    /// subscription's default (a subscription's own default wins over the
    /// customer's). Keys derived from `key`, so a redelivered event repeats nothing.
    pub async fn make_default_card(&self, card: &SavedCard, key: &str) -> Result<(), BillingError> {
        use stripe_core::customer::{UpdateCustomer, UpdateCustomerInvoiceSettings};
        let mut settings = UpdateCustomerInvoiceSettings::new();
        settings.default_payment_method = Some(card.payment_method_id.clone());
        UpdateCustomer::new(card.customer_id.as_str())
            .invoice_settings(settings)
            .customize()
            .request_strategy(idempotent(&format!("{key}-customer"))?)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        if let Some(sub) = &card.subscription_id {
            stripe_billing::subscription::UpdateSubscription::new(sub.as_str())
                .default_payment_method(card.payment_method_id.clone())
                .customize()
                .request_strategy(idempotent(&format!("{key}-subscription"))?)
                .send(&self.client)
                .metered(Service::Stripe)
                .await
                .map_err(provider)?;
        }
        Ok(())
    }

    /// The customer's default card as Stripe has it now (brand and last four), if any.
    pub async fn default_card(&self, customer_id: &str) -> Result<Option<PaymentMethodSummary>, BillingError> {
        use stripe_core::customer::{RetrieveCustomer, RetrieveCustomerReturned};
        let found = RetrieveCustomer::new(customer_id)
            .expand(vec!["invoice_settings.default_payment_method".to_string()])
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        let RetrieveCustomerReturned::Customer(customer) = found else { return Ok(None) };
        Ok(customer
            .invoice_settings
            .as_ref()
            .and_then(|s| s.default_payment_method.as_ref())
            .and_then(|pm| pm.as_object())
            .and_then(summary))
    }

    /// The subscription's running period (epoch seconds) and what its item charges
    /// per period now: what a price change is prorated against.
    pub async fn current_period(&self, subscription_id: &str) -> Result<CurrentPeriod, BillingError> {
        let sub = stripe_billing::subscription::RetrieveSubscription::new(subscription_id)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        let item = sub.items.data.first().ok_or_else(|| BillingError::Provider("subscription has no item".into()))?;
        let interval = match item.price.recurring.as_ref().map(|r| &r.interval) {
            Some(stripe_shared::RecurringInterval::Year) => BillingPeriod::Yearly,
            _ => BillingPeriod::Monthly,
        };
        let quantity = item.quantity.unwrap_or(1).max(1) as i64;
        Ok(CurrentPeriod {
            start: item.current_period_start,
            end: item.current_period_end,
            amount: item.price.unit_amount.unwrap_or(0) * quantity,
            interval,
        })
    }
}
