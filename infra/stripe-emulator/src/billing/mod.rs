//! Stripe's billing rules as the emulator plays them: subscriptions and their periods, invoices
//! (draft → open → paid/void/uncollectible), payment attempts against the customer's card,
//! proration on price changes, the dunning policy, and the events each step emits.
//!
//! Every operation checks its inputs before it changes anything, so a rejected request leaves
//! the state as it was. Events are emitted in the order Stripe sends them for the same action.

mod checkout;
mod credit_notes;
mod discounts;
mod disputes;
mod dunning;
mod invoices;
mod payment_methods;
mod subscriptions;

use chrono::DateTime;
use serde_json::Value;

use crate::error::ApiError;
use crate::form::MetadataPatch;
use crate::objects;
use crate::state::{Customer, Metadata, Price, Recurring, Store};

pub use credit_notes::NewCreditNote;
pub use dunning::MAX_PAYMENT_ATTEMPTS;
pub use payment_methods::CardInput;

const DAY: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentBehavior {
    AllowIncomplete,
    DefaultIncomplete,
    ErrorIfIncomplete,
    PendingIfIncomplete,
}

impl PaymentBehavior {
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("") | Some("allow_incomplete") => Ok(Self::AllowIncomplete),
            Some("default_incomplete") => Ok(Self::DefaultIncomplete),
            Some("error_if_incomplete") => Ok(Self::ErrorIfIncomplete),
            Some("pending_if_incomplete") => Ok(Self::PendingIfIncomplete),
            Some(other) => {
                Err(ApiError::invalid(format!("Invalid payment_behavior: {other}"), Some("payment_behavior".into())))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProrationBehavior {
    CreateProrations,
    AlwaysInvoice,
    None,
}

impl ProrationBehavior {
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("") | Some("create_prorations") => Ok(Self::CreateProrations),
            Some("always_invoice") => Ok(Self::AlwaysInvoice),
            Some("none") => Ok(Self::None),
            Some(other) => Err(ApiError::invalid(
                format!("Invalid proration_behavior: {other}"),
                Some("proration_behavior".into()),
            )),
        }
    }
}

/// The outcome of one payment attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payment {
    Paid,
    Failed,
}

#[derive(Debug, Clone)]
pub struct NewItem {
    pub price: String,
    pub quantity: u64,
    pub metadata: Metadata,
    /// Parameter name for errors, e.g. `items[0][price]`.
    pub param: String,
}

#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub customer: String,
    pub items: Vec<NewItem>,
    pub metadata: Metadata,
    pub description: Option<String>,
    pub payment_behavior: PaymentBehavior,
    /// `discounts[0][coupon]`: the coupon id and its parameter name, for errors.
    pub coupon: Option<(String, String)>,
    /// `trial_period_days`: a free trial before the first charge.
    pub trial_period_days: Option<u32>,
}

#[derive(Debug, Clone)]
pub enum ItemUpdate {
    Change { id: String, price: Option<String>, quantity: Option<u64>, metadata: Option<MetadataPatch>, param: String },
    Add(NewItem),
    Delete { id: String, param: String },
}

#[derive(Debug, Clone)]
pub struct SubscriptionUpdate {
    pub items: Vec<ItemUpdate>,
    pub proration_behavior: ProrationBehavior,
    /// Stripe's `proration_date`: prorate as of this time instead of now.
    pub proration_date: Option<i64>,
    pub payment_behavior: PaymentBehavior,
    pub cancel_at_period_end: Option<bool>,
    pub metadata: Option<MetadataPatch>,
    pub description: Option<String>,
    /// `default_payment_method`: a card attached to the subscription's customer.
    pub default_payment_method: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NewInvoiceItem {
    pub customer: Option<String>,
    pub subscription: Option<String>,
    pub invoice: Option<String>,
    pub amount: Option<i64>,
    pub price: Option<String>,
    pub quantity: Option<u64>,
    pub currency: Option<String>,
    pub description: Option<String>,
    pub period: Option<(i64, i64)>,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Default)]
pub struct NewInvoice {
    pub customer: String,
    pub subscription: Option<String>,
    pub description: Option<String>,
    pub metadata: Metadata,
    pub auto_advance: Option<bool>,
    pub include_pending_items: bool,
    pub currency: Option<String>,
}

/// Which pending invoice items an invoice sweeps up.
#[derive(Debug, Clone, Copy)]
enum Sweep<'a> {
    /// A subscription's invoice: that subscription's items and the customer's unattached ones.
    Subscription(&'a str),
    /// A manual invoice: all of the customer's pending items.
    Customer,
}

fn format_money(amount: i64, currency: &str) -> String {
    let symbol = match currency {
        "usd" => "$",
        "eur" => "€",
        "gbp" => "£",
        _ => "",
    };
    let sign = if amount < 0 { "-" } else { "" };
    let cents = amount.unsigned_abs();
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let code = if symbol.is_empty() { format!(" {}", currency.to_uppercase()) } else { String::new() };
    format!("{sign}{symbol}{grouped}.{:02}{code}", cents % 100)
}

fn format_date(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0).map_or_else(|| unix.to_string(), |t| t.format("%-d %b %Y").to_string())
}

impl Store {
    // ---- lookups -------------------------------------------------------------------------

    pub fn customer_or_param(&self, id: &str, param: &str) -> Result<&Customer, ApiError> {
        self.customers.get(id).ok_or_else(|| ApiError::no_such_param("customer", id, param))
    }

    fn recurring_price(&self, id: &str, param: &str) -> Result<(&Price, Recurring), ApiError> {
        let price = self.prices.get(id).ok_or_else(|| ApiError::no_such_param("price", id, param))?;
        if !price.active {
            return Err(ApiError::invalid(format!("The price specified is inactive: {id}"), Some(param.to_owned())));
        }
        let recurring = price.recurring.ok_or_else(|| {
            ApiError::invalid(
                format!("The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`: {id}"),
                Some(param.to_owned()),
            )
        })?;
        Ok((price, recurring))
    }

    fn item_amount(&self, price: &str, quantity: u64) -> i64 {
        self.prices.get(price).map_or(0, |p| p.unit_amount * quantity as i64)
    }

    fn product_name(&self, price: &str) -> String {
        self.prices
            .get(price)
            .and_then(|p| self.products.get(&p.product))
            .map_or_else(|| price.to_owned(), |p| p.name.clone())
    }

    fn describe_item(&self, price: &str, quantity: u64) -> String {
        let Some(p) = self.prices.get(price) else { return format!("{quantity} × {price}") };
        let per = p.recurring.map_or(String::new(), |r| match r.interval_count {
            1 => format!(" / {}", r.interval.as_str()),
            n => format!(" / every {n} {}s", r.interval.as_str()),
        });
        format!("{quantity} × {} (at {}{per})", self.product_name(price), format_money(p.unit_amount, &p.currency))
    }

    fn subscription_json(&self, id: &str) -> Value {
        self.subscriptions.get(id).map_or(Value::Null, |s| objects::subscription(self, s))
    }

    fn emit_subscription(&mut self, type_: &str, id: &str, previous: Option<Value>) {
        let object = self.subscription_json(id);
        self.emit(type_, object, previous);
    }

    /// `customer.subscription.updated` with the fields that changed since `before`; nothing is
    /// emitted when nothing changed.
    fn emit_subscription_updated(&mut self, id: &str, before: &Value) {
        let after = self.subscription_json(id);
        if let Some(previous) = objects::previous_attributes(before, &after) {
            self.emit("customer.subscription.updated", after, Some(previous));
        }
    }

    fn emit_invoice(&mut self, type_: &str, id: &str) {
        let object = self.invoices.get(id).map_or(Value::Null, |i| objects::invoice(self, i));
        self.emit(type_, object, None);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::Clock;
    use crate::state::{Interval, InvoiceStatus, Product, SubscriptionStatus};

    const T0: i64 = 1_799_999_200;

    #[test]
    fn money_is_formatted_like_stripe_descriptions() {
        assert_eq!(format_money(360_000, "usd"), "$3,600.00");
        assert_eq!(format_money(5, "eur"), "€0.05");
        assert_eq!(format_money(-123_456_789, "usd"), "-$1,234,567.89");
        assert_eq!(format_money(100, "jpy"), "1.00 JPY");
    }

    /// A store at T0 with one customer subscribed monthly to a $3,600 price.
    fn subscribed() -> (Store, String, String) {
        let mut store = Store::new(Arc::new(Clock::new(Some(T0))), "http://emulator".into());
        let customer = Customer::new(T0, Some("p@example.com".into()), None, Metadata::new());
        let customer_id = customer.id.clone();
        store.customers.insert(customer);
        store.products.insert(Product {
            id: "prod_gold".into(),
            created: T0,
            updated: T0,
            name: "Gold".into(),
            description: None,
            active: true,
            metadata: Metadata::new(),
        });
        store.prices.insert(Price {
            id: "price_gold".into(),
            created: T0,
            product: "prod_gold".into(),
            unit_amount: 360_000,
            currency: "usd".into(),
            recurring: Some(Recurring { interval: Interval::Month, interval_count: 1 }),
            lookup_key: None,
            nickname: None,
            metadata: Metadata::new(),
            active: true,
        });
        let sub = store
            .create_subscription(NewSubscription {
                customer: customer_id.clone(),
                items: vec![NewItem {
                    price: "price_gold".into(),
                    quantity: 1,
                    metadata: Metadata::new(),
                    param: "items[0][price]".into(),
                }],
                metadata: Metadata::new(),
                description: None,
                payment_behavior: PaymentBehavior::AllowIncomplete,
                coupon: None,
                trial_period_days: None,
            })
            .unwrap();
        store.events.clear();
        (store, customer_id, sub)
    }

    fn event_types(store: &Store) -> Vec<&str> {
        store.events.iter().map(|e| e.type_.as_str()).collect()
    }

    #[test]
    fn dunning_cancels_after_three_failed_attempts() {
        let (mut store, customer, sub) = subscribed();
        store.customers.get_mut(&customer).unwrap().card_fails = true;
        store.advance_subscription(&sub).unwrap();
        assert_eq!(
            event_types(&store),
            ["invoice.created", "invoice.finalized", "invoice.payment_failed", "customer.subscription.updated"]
        );
        assert_eq!(store.subscriptions.get(&sub).unwrap().status, SubscriptionStatus::PastDue);
        let invoice = store.subscriptions.get(&sub).unwrap().latest_invoice.clone().unwrap();

        store.events.clear();
        assert_eq!(store.retry_invoice(&invoice), Ok(Payment::Failed));
        assert_eq!(event_types(&store), ["invoice.payment_failed"]);
        assert_eq!(store.subscriptions.get(&sub).unwrap().status, SubscriptionStatus::PastDue);

        store.events.clear();
        assert_eq!(store.retry_invoice(&invoice), Ok(Payment::Failed));
        assert_eq!(event_types(&store), ["invoice.payment_failed", "customer.subscription.deleted"]);
        let s = store.subscriptions.get(&sub).unwrap();
        assert_eq!((s.status, s.cancellation_reason), (SubscriptionStatus::Canceled, Some("payment_failed")));
        let inv = store.invoices.get(&invoice).unwrap();
        assert_eq!(
            (inv.attempt_count, inv.status, inv.next_payment_attempt),
            (MAX_PAYMENT_ATTEMPTS, InvoiceStatus::Open, None)
        );
    }

    #[test]
    fn advance_with_cancel_at_period_end_ends_at_the_period_end() {
        let (mut store, _, sub) = subscribed();
        let (_, end) = store.subscriptions.get(&sub).unwrap().period();
        let update = SubscriptionUpdate {
            items: Vec::new(),
            proration_behavior: ProrationBehavior::CreateProrations,
            proration_date: None,
            payment_behavior: PaymentBehavior::AllowIncomplete,
            cancel_at_period_end: Some(true),
            metadata: None,
            description: None,
            default_payment_method: None,
        };
        store.update_subscription(&sub, update).unwrap();
        assert_eq!(event_types(&store), ["customer.subscription.updated"]);
        store.events.clear();
        store.advance_subscription(&sub).unwrap();
        assert_eq!(event_types(&store), ["customer.subscription.deleted"]);
        let s = store.subscriptions.get(&sub).unwrap();
        assert_eq!((s.status, s.ended_at, s.canceled_at), (SubscriptionStatus::Canceled, Some(end), Some(T0)));
        assert_eq!(store.now(), end);
        assert_eq!(store.invoices.iter().count(), 1, "no renewal invoice");
        assert!(store.advance_subscription(&sub).is_err());
    }

    #[test]
    fn rejected_updates_change_nothing() {
        let (mut store, customer, sub) = subscribed();
        store.customers.get_mut(&customer).unwrap().card_fails = true;
        let item = store.subscriptions.get(&sub).unwrap().items[0].id.clone();
        let before = format!("{:?}", store.subscriptions.get(&sub));
        let update = |price: &str, behavior| SubscriptionUpdate {
            items: vec![ItemUpdate::Change {
                id: item.clone(),
                price: Some(price.into()),
                quantity: Some(2),
                metadata: None,
                param: "items[0]".into(),
            }],
            proration_behavior: ProrationBehavior::AlwaysInvoice,
            proration_date: None,
            payment_behavior: behavior,
            cancel_at_period_end: None,
            metadata: None,
            description: None,
            default_payment_method: None,
        };
        let missing = store.update_subscription(&sub, update("price_missing", PaymentBehavior::AllowIncomplete));
        assert_eq!(missing.unwrap_err().param.as_deref(), Some("items[0][price]"));
        let declined = store.update_subscription(&sub, update("price_gold", PaymentBehavior::ErrorIfIncomplete));
        assert_eq!(declined.unwrap_err().status, 402);
        assert_eq!(format!("{:?}", store.subscriptions.get(&sub)), before);
        assert!(store.events.is_empty());
        assert_eq!(store.invoice_items.iter().count(), 0);
    }
}
