//! The emulator's state: the Stripe objects it keeps, in memory, and the log of events it
//! created. Everything here is plain data; `billing.rs` holds the rules that change it and
//! `objects.rs` turns it into Stripe's JSON.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Months};
use serde_json::{json, Value};

use crate::clock::{new_id, Clock};

pub type Metadata = BTreeMap<String, String>;

/// The Stripe API version async-stripe 1.0.0-rc.10 targets
/// (`stripe_shared::version::VERSION`); events carry it as `api_version`.
pub const API_VERSION: &str = "2026-09-30.endive";

pub trait Keyed {
    fn key(&self) -> &str;
}

/// Rows of one resource, kept in creation order and indexed by id.
#[derive(Debug)]
pub struct Table<T> {
    rows: Vec<T>,
    index: HashMap<String, usize>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table { rows: Vec::new(), index: HashMap::new() }
    }
}

impl<T: Keyed> Table<T> {
    pub fn insert(&mut self, row: T) {
        self.index.insert(row.key().to_owned(), self.rows.len());
        self.rows.push(row);
    }

    pub fn get(&self, id: &str) -> Option<&T> {
        self.index.get(id).map(|&i| &self.rows[i])
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.index.get(id).map(|&i| &mut self.rows[i])
    }

    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.rows.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.rows.iter_mut()
    }
}

macro_rules! keyed {
    ($($t:ty),*) => { $(impl Keyed for $t { fn key(&self) -> &str { &self.id } })* };
}
keyed!(
    Customer,
    Product,
    Price,
    CheckoutSession,
    Subscription,
    Invoice,
    InvoiceItem,
    Coupon,
    Discount,
    CreditNote,
    Refund,
    PaymentMethod,
    SetupIntent,
    Dispute
);

/// A chargeback on a paid invoice's payment (`dp_…`), opened and closed through the
/// emulator's controls (Stripe's come from the card network).
#[derive(Debug, Clone)]
pub struct Dispute {
    pub id: String,
    pub invoice: String,
    pub amount: i64,
    pub currency: String,
    pub created: i64,
    pub reason: String,
    /// `needs_response` while open; `won` or `lost` once closed.
    pub status: String,
}

/// The payment intent that paid an invoice: one per paid invoice, named after it.
pub fn payment_intent_of(invoice: &str) -> String {
    format!("pi_{}", invoice.trim_start_matches("in_"))
}

/// The charge of that payment intent.
pub fn charge_of(invoice: &str) -> String {
    format!("ch_{}", invoice.trim_start_matches("in_"))
}

/// A card saved for later payments (`pm_…`), as a setup-mode checkout collects it. Only
/// the card's brand, last four digits and expiry are kept.
#[derive(Debug, Clone)]
pub struct PaymentMethod {
    pub id: String,
    pub created: i64,
    /// The customer it is attached to.
    pub customer: Option<String>,
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: i32,
    /// Emulator control: charges on this card decline.
    pub fails: bool,
}

/// A SetupIntent (`seti_…`): how a setup-mode checkout saves a card for future payments.
#[derive(Debug, Clone)]
pub struct SetupIntent {
    pub id: String,
    pub created: i64,
    pub customer: Option<String>,
    pub payment_method: Option<String>,
    /// `requires_payment_method` until the customer completes the session, then `succeeded`.
    pub succeeded: bool,
    pub metadata: Metadata,
    pub description: Option<String>,
}

/// A credit note on a paid invoice (`post_payment`), all of it refunded to the
/// invoice's payment (`refund_amount`) or credited outside Stripe.
#[derive(Debug, Clone)]
pub struct CreditNote {
    pub id: String,
    pub number: String,
    pub invoice: String,
    pub customer: String,
    pub amount: i64,
    pub currency: String,
    pub created: i64,
    pub memo: Option<String>,
    pub reason: Option<String>,
    pub metadata: Metadata,
    pub refund: Option<(String, i64)>,
    pub out_of_band_amount: Option<i64>,
}

/// A refund of an invoice's payment, made by a credit note.
#[derive(Debug, Clone)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub created: i64,
    pub customer: String,
    pub invoice: String,
    pub credit_note: String,
}

#[derive(Debug, Clone)]
pub struct Customer {
    pub id: String,
    pub created: i64,
    pub email: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub metadata: Metadata,
    /// Prefix of this customer's invoice numbers (`ABCD1234-0001`).
    pub invoice_prefix: String,
    pub next_invoice_sequence: u32,
    /// Stripe's customer balance: negative is credit owed to the customer.
    pub balance: i64,
    pub currency: Option<String>,
    /// Emulator control: every charge on this customer's card is declined.
    pub card_fails: bool,
    /// The customer's card (one per customer, `pm_` + the customer id's random
    /// part): what Checkout collected and subscriptions pay with. Emulator control
    /// can change its brand and last four digits.
    pub card_brand: String,
    pub card_last4: String,
    /// `invoice_settings.default_payment_method`.
    pub default_payment_method: Option<String>,
}

impl Customer {
    /// The id of the customer's card (`pm_…`).
    pub fn payment_method_id(&self) -> String {
        format!("pm_{}", self.id.trim_start_matches("cus_"))
    }

    /// A new customer with its own invoice number prefix.
    pub fn new(created: i64, email: Option<String>, name: Option<String>, metadata: Metadata) -> Self {
        let id = new_id("cus");
        // Eight characters of the id's random part: unique enough for invoice numbers.
        let invoice_prefix: String = id.chars().rev().take(8).collect::<String>().to_uppercase();
        Customer {
            id,
            created,
            email,
            name,
            description: None,
            metadata,
            invoice_prefix,
            next_invoice_sequence: 1,
            balance: 0,
            currency: None,
            card_fails: false,
            card_brand: "visa".into(),
            card_last4: "4242".into(),
            default_payment_method: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Product {
    pub id: String,
    pub created: i64,
    pub updated: i64,
    pub name: String,
    pub description: Option<String>,
    pub active: bool,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Day,
    Week,
    Month,
    Year,
}

impl Interval {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(Interval::Day),
            "week" => Some(Interval::Week),
            "month" => Some(Interval::Month),
            "year" => Some(Interval::Year),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recurring {
    pub interval: Interval,
    pub interval_count: u32,
}

impl Recurring {
    /// `anchor` moved forward by `n` billing periods. Months are calendar months counted from
    /// the anchor, so a subscription anchored on the 31st bills on the last day of shorter
    /// months and returns to the 31st afterwards, as Stripe does.
    pub fn add_periods(self, anchor: i64, n: u32) -> i64 {
        let count = self.interval_count.max(1).saturating_mul(n);
        let months = match self.interval {
            Interval::Day => return anchor + i64::from(count) * 86_400,
            Interval::Week => return anchor + i64::from(count) * 7 * 86_400,
            Interval::Month => count,
            Interval::Year => count.saturating_mul(12),
        };
        DateTime::from_timestamp(anchor, 0)
            .and_then(|t| t.checked_add_months(Months::new(months)))
            .map_or(i64::MAX, |t| t.timestamp())
    }

    /// The first period boundary after `after` for a cycle anchored at `anchor`.
    pub fn next_boundary(self, anchor: i64, after: i64) -> i64 {
        let mut n = 1;
        loop {
            let boundary = self.add_periods(anchor, n);
            if boundary > after || n == u32::MAX {
                return boundary;
            }
            n += 1;
        }
    }
}

#[derive(Debug, Clone)]
pub struct Price {
    pub id: String,
    pub created: i64,
    pub product: String,
    pub unit_amount: i64,
    pub currency: String,
    pub recurring: Option<Recurring>,
    pub lookup_key: Option<String>,
    pub nickname: Option<String>,
    pub metadata: Metadata,
    pub active: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Open,
    Complete,
    Expired,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Open => "open",
            SessionStatus::Complete => "complete",
            SessionStatus::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SessionLine {
    pub id: String,
    pub price: String,
    pub quantity: u64,
}

#[derive(Debug, Clone)]
pub struct CheckoutSession {
    pub id: String,
    pub created: i64,
    pub expires_at: i64,
    pub mode: String,
    pub customer: Option<String>,
    pub customer_email: Option<String>,
    pub lines: Vec<SessionLine>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub client_reference_id: Option<String>,
    pub metadata: Metadata,
    /// `subscription_data[metadata]`: copied onto the subscription checkout creates.
    pub subscription_metadata: Metadata,
    /// `subscription_data[trial_period_days]`.
    pub trial_period_days: Option<u32>,
    /// `discounts[0][coupon]`: redeemed on the subscription checkout creates.
    pub coupon: Option<String>,
    pub status: SessionStatus,
    pub paid: bool,
    pub subscription: Option<String>,
    pub invoice: Option<String>,
    /// The subscription a declined completion created; a later completion retries its invoice.
    pub pending_subscription: Option<String>,
    /// `mode=setup`: the SetupIntent made with the session, which saves the card.
    pub setup_intent: Option<String>,
    /// `mode=setup`: the session's `currency`.
    pub currency: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Incomplete => "incomplete",
            SubscriptionStatus::IncompleteExpired => "incomplete_expired",
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Canceled => "canceled",
            SubscriptionStatus::Unpaid => "unpaid",
        }
    }

    pub fn is_ended(self) -> bool {
        matches!(self, SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired)
    }
}

#[derive(Debug, Clone)]
pub struct SubscriptionItem {
    pub id: String,
    pub created: i64,
    pub price: String,
    pub quantity: u64,
    pub metadata: Metadata,
    pub current_period_start: i64,
    pub current_period_end: i64,
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub created: i64,
    pub customer: String,
    pub currency: String,
    pub description: Option<String>,
    pub status: SubscriptionStatus,
    pub metadata: Metadata,
    pub items: Vec<SubscriptionItem>,
    pub latest_invoice: Option<String>,
    pub start_date: i64,
    /// Periods are counted from here; it moves when the billing interval changes.
    pub billing_cycle_anchor: i64,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// `cancellation_details.reason`: `cancellation_requested` or `payment_failed`.
    pub cancellation_reason: Option<&'static str>,
    /// Ids of the discounts in effect (at most one: the emulator applies one coupon).
    pub discounts: Vec<String>,
    pub trial_start: Option<i64>,
    pub trial_end: Option<i64>,
    /// `default_payment_method`: charges use it before the customer's default.
    pub default_payment_method: Option<String>,
}

impl Subscription {
    /// The current period, shared by every item of a classic-billing subscription.
    pub fn period(&self) -> (i64, i64) {
        self.items
            .first()
            .map_or((self.start_date, self.start_date), |i| (i.current_period_start, i.current_period_end))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    Draft,
    Open,
    Paid,
    Void,
    Uncollectible,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Draft => "draft",
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Void => "void",
            InvoiceStatus::Uncollectible => "uncollectible",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Draft, Self::Open, Self::Paid, Self::Void, Self::Uncollectible].into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingReason {
    SubscriptionCreate,
    SubscriptionCycle,
    SubscriptionUpdate,
    Manual,
}

impl BillingReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingReason::SubscriptionCreate => "subscription_create",
            BillingReason::SubscriptionCycle => "subscription_cycle",
            BillingReason::SubscriptionUpdate => "subscription_update",
            BillingReason::Manual => "manual",
        }
    }
}

/// Where an invoice line comes from, which decides its `parent` in Stripe's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineSource {
    /// A subscription item's own charge, or a proration of it (then `invoice_item` is set).
    SubscriptionItem { subscription_item: String, invoice_item: Option<String> },
    /// A one-off invoice item.
    InvoiceItem { invoice_item: String },
}

#[derive(Debug, Clone)]
pub struct InvoiceLine {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub description: Option<String>,
    pub period: (i64, i64),
    pub proration: bool,
    pub quantity: u64,
    pub price: Option<String>,
    pub subscription: Option<String>,
    pub source: LineSource,
    /// This line's share of the invoice's discount (`discount_amounts`).
    pub discount_amount: i64,
}

impl InvoiceLine {
    /// Stripe never discounts prorations.
    pub fn discountable(&self) -> bool {
        !self.proration
    }
}

#[derive(Debug, Clone)]
pub struct Invoice {
    pub id: String,
    pub number: Option<String>,
    pub customer: String,
    pub subscription: Option<String>,
    /// The subscription's metadata when the invoice was made
    /// (`parent.subscription_details.metadata`).
    pub subscription_metadata: Metadata,
    pub status: InvoiceStatus,
    pub billing_reason: BillingReason,
    pub created: i64,
    pub period_start: i64,
    pub period_end: i64,
    pub currency: String,
    pub lines: Vec<InvoiceLine>,
    pub attempt_count: u32,
    pub attempted: bool,
    pub amount_paid: i64,
    /// Customer balance applied at finalization (negative is credit).
    pub starting_balance: i64,
    pub ending_balance: Option<i64>,
    pub finalized_at: Option<i64>,
    pub paid_at: Option<i64>,
    pub voided_at: Option<i64>,
    pub marked_uncollectible_at: Option<i64>,
    pub next_payment_attempt: Option<i64>,
    pub auto_advance: bool,
    pub description: Option<String>,
    pub metadata: Metadata,
    /// The discount applied to the invoice (its subscription's), if any.
    pub discount: Option<String>,
    /// Times `POST /v1/invoices/{id}/send` emailed it.
    pub sent_count: u32,
}

impl Invoice {
    /// Before discounts.
    pub fn subtotal(&self) -> i64 {
        self.lines.iter().map(|l| l.amount).sum()
    }

    pub fn discount_amount(&self) -> i64 {
        self.lines.iter().map(|l| l.discount_amount).sum()
    }

    /// After discounts.
    pub fn total(&self) -> i64 {
        self.subtotal() - self.discount_amount()
    }

    /// What the customer is asked to pay: the total after the customer balance, never below 0.
    pub fn amount_due(&self) -> i64 {
        (self.total() + self.starting_balance).max(0)
    }

    pub fn amount_remaining(&self) -> i64 {
        match self.status {
            InvoiceStatus::Paid | InvoiceStatus::Void => 0,
            _ => self.amount_due() - self.amount_paid,
        }
    }
}

#[derive(Debug, Clone)]
pub struct InvoiceItem {
    pub id: String,
    pub created: i64,
    pub customer: String,
    pub subscription: Option<String>,
    pub subscription_item: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub description: Option<String>,
    pub period: (i64, i64),
    pub proration: bool,
    pub quantity: u64,
    pub price: Option<String>,
    /// The invoice it was swept into; `None` while pending.
    pub invoice: Option<String>,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouponDuration {
    Once,
    Repeating,
    Forever,
}

impl CouponDuration {
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Once, Self::Repeating, Self::Forever].into_iter().find(|d| d.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CouponDuration::Once => "once",
            CouponDuration::Repeating => "repeating",
            CouponDuration::Forever => "forever",
        }
    }
}

/// What a coupon takes off: a percentage (kept in hundredths of a percent, so `25.5` is
/// `2550`, exact to Stripe's two decimals) or an amount in the coupon's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CouponValue {
    PercentOff { hundredths: i64 },
    AmountOff { amount: i64, currency: String },
}

#[derive(Debug, Clone)]
pub struct Coupon {
    pub id: String,
    pub created: i64,
    pub name: Option<String>,
    pub value: CouponValue,
    pub duration: CouponDuration,
    pub duration_in_months: Option<u32>,
    pub max_redemptions: Option<i64>,
    pub redeem_by: Option<i64>,
    /// Subscriptions that redeemed it.
    pub times_redeemed: i64,
    pub metadata: Metadata,
}

impl Coupon {
    /// Stripe's `valid`: not past `redeem_by` and not redeemed `max_redemptions` times.
    pub fn valid(&self, now: i64) -> bool {
        self.redeem_by.is_none_or(|by| now <= by) && self.max_redemptions.is_none_or(|max| self.times_redeemed < max)
    }
}

/// A coupon applied to a subscription (Stripe's `discount` object, `di_…`).
#[derive(Debug, Clone)]
pub struct Discount {
    pub id: String,
    pub coupon: String,
    pub customer: String,
    pub subscription: Option<String>,
    pub start: i64,
    /// For a `repeating` coupon: `start` + `duration_in_months`.
    pub end: Option<i64>,
    /// A `once` discount that has taken money off an invoice; it is removed at the next one.
    pub used: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
    /// No webhook URL was configured when its turn came: recorded only.
    NotSent,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::NotSent => "not_sent",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DeliveryAttempt {
    /// Emulator time of the attempt (the signature's `t`).
    pub at: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EventRecord {
    pub id: String,
    pub type_: String,
    pub created: i64,
    /// The event JSON exactly as delivered and signed.
    pub payload: String,
    pub state: DeliveryState,
    pub attempts: Vec<DeliveryAttempt>,
}

/// The API request being served, stamped on the events it causes (`event.request`).
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub id: String,
    pub idempotency_key: Option<String>,
}

/// A response saved under an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct SavedResponse {
    pub fingerprint: String,
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub struct Store {
    pub clock: Arc<Clock>,
    pub base_url: String,
    pub customers: Table<Customer>,
    pub products: Table<Product>,
    pub prices: Table<Price>,
    pub sessions: Table<CheckoutSession>,
    pub subscriptions: Table<Subscription>,
    pub invoices: Table<Invoice>,
    pub invoice_items: Table<InvoiceItem>,
    pub credit_notes: Table<CreditNote>,
    pub refunds: Table<Refund>,
    pub coupons: Table<Coupon>,
    pub discounts: Table<Discount>,
    pub payment_methods: Table<PaymentMethod>,
    pub setup_intents: Table<SetupIntent>,
    pub disputes: Table<Dispute>,
    pub events: Vec<EventRecord>,
    pub idempotency: HashMap<String, SavedResponse>,
    pub request: Option<RequestInfo>,
}

impl Store {
    pub fn new(clock: Arc<Clock>, base_url: String) -> Self {
        Store {
            clock,
            base_url,
            customers: Table::default(),
            products: Table::default(),
            prices: Table::default(),
            sessions: Table::default(),
            subscriptions: Table::default(),
            invoices: Table::default(),
            invoice_items: Table::default(),
            credit_notes: Table::default(),
            refunds: Table::default(),
            coupons: Table::default(),
            discounts: Table::default(),
            payment_methods: Table::default(),
            setup_intents: Table::default(),
            disputes: Table::default(),
            events: Vec::new(),
            idempotency: HashMap::new(),
            request: None,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Appends an event to the log; the delivery worker sends it in creation order.
    /// `previous` is `data.previous_attributes`, given for `*.updated` events.
    pub fn emit(&mut self, type_: &str, object: Value, previous: Option<Value>) {
        let id = new_id("evt");
        let created = self.now();
        let mut data = json!({ "object": object });
        if let Some(previous) = previous {
            data["previous_attributes"] = previous;
        }
        let request = match &self.request {
            Some(r) => json!({ "id": r.id, "idempotency_key": r.idempotency_key }),
            None => json!({ "id": null, "idempotency_key": null }),
        };
        let event = json!({
            "id": id,
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": data,
            "livemode": false,
            "pending_webhooks": 1,
            "request": request,
            "type": type_,
        });
        self.events.push(EventRecord {
            id,
            type_: type_.to_owned(),
            created,
            payload: event.to_string(),
            state: DeliveryState::Pending,
            attempts: Vec::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    #[test]
    fn monthly_periods_follow_the_anchor_day() {
        let monthly = Recurring { interval: Interval::Month, interval_count: 1 };
        let anchor = ts("2026-01-31T10:00:00Z");
        assert_eq!(monthly.add_periods(anchor, 1), ts("2026-02-28T10:00:00Z"));
        assert_eq!(monthly.add_periods(anchor, 2), ts("2026-03-31T10:00:00Z"));
        assert_eq!(monthly.next_boundary(anchor, ts("2026-02-28T10:00:00Z")), ts("2026-03-31T10:00:00Z"));
        let yearly = Recurring { interval: Interval::Year, interval_count: 1 };
        assert_eq!(yearly.add_periods(ts("2028-02-29T00:00:00Z"), 1), ts("2029-02-28T00:00:00Z"));
    }
}
