//! Stripe billing reduced to the facts Tierdesk acts on, and the planners that
//! turn those facts into changes of the partner through the one transition
//! mechanism (`subscription`).
//!
//! The adapters in `crate::stripe_adapter` translate Stripe objects (webhook events,
//! API answers) into `SubscriptionFacts` and `InvoiceFacts`; nothing here knows
//! Stripe's wire format. Each planner is safe to call again with the same facts:
//! a fact already reflected in the partner plans `BillingChange::Nothing`.

use super::money::BillingPeriod;
use super::partner::{Partner, PaymentStatus, ScheduledChange, SubscriptionStatus};
use super::revenue::{stats_deltas, TierCounts};
use super::subscription::{
    clear_term, finish, is_paid, rescore, Catalog, SubscriptionError, Transition, TransitionContext, TransitionEvent,
};
use super::tier::{Tier, DEFAULT_TIER_ID};
use super::validation::{parse, Fields, ValidationError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Dunning: the attempt at which a failed renewal moves the partner to the free
/// tier (seed 003 §3.4: Stripe retries three times over two weeks).
pub const FINAL_PAYMENT_ATTEMPT: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Subscription(#[from] SubscriptionError),
    #[error("the partner already has a paid subscription; use upgrade or downgrade")]
    AlreadySubscribed,
    #[error("the partner has no Stripe subscription")]
    NoStripeSubscription,
    #[error("the target tier must rank {0} the current tier")]
    WrongDirection(&'static str),
    /// Levels rank tiers within a segment only (seed 002): a move to another
    /// segment's tier is a new subscription, not an upgrade or a downgrade.
    #[error("plan changes stay in the {0} segment; to move to another segment, cancel and subscribe to it")]
    OtherSegment(String),
    #[error("no Stripe price is configured for tier {tier} ({period})")]
    PriceNotConfigured { tier: String, period: &'static str },
    #[error("the promotion code does not apply to this purchase")]
    InvalidPromotionCode(Vec<crate::domain::promotion::Reason>),
    #[error("the payment provider failed: {0}")]
    Provider(String),
    #[error("only a partner account can manage its own billing")]
    NotAPartner,
}

/// Stripe's subscription status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StripeStatus {
    Active,
    Trialing,
    PastDue,
    Unpaid,
    Canceled,
    Incomplete,
    IncompleteExpired,
    Paused,
}

/// A recurring price as Tierdesk reads it: the tier, price version and period
/// come from the price's metadata (`tier_id`, `price_version`) or lookup key
/// (`tierdesk_{tier}_v{version}_{period}`; prices made before versions were
/// named `tierdesk_{tier}_{period}` and carry no version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceFacts {
    pub price_id: String,
    pub unit_amount: i64,
    pub currency: String,
    pub period: BillingPeriod,
    pub tier_id: Option<String>,
    /// The tier's `PRICE#` version this Stripe price charges, when it names one.
    #[serde(default)]
    pub price_version: Option<u32>,
    /// The add-on this price charges (a subscription item beside the tier's).
    #[serde(default)]
    pub add_on_id: Option<String>,
}

/// The Stripe price Tierdesk needs for one price version of a tier and period:
/// what `StripeGateway::price_for` finds or creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceSpec {
    pub tier_id: String,
    pub tier_name: String,
    pub price_version: u32,
    pub period: BillingPeriod,
    /// Cents per period.
    pub amount: i64,
    pub currency: String,
    /// The amount is the list price after pricing rules, not the version's list
    /// price: it gets a Stripe price of its own.
    pub ruled: bool,
}

impl PriceSpec {
    /// The tier's current price version for `period`.
    pub fn current(tier: &Tier, period: BillingPeriod) -> Self {
        Self {
            tier_id: tier.tier_id.clone(),
            tier_name: tier.name.clone(),
            price_version: tier.price_version,
            period,
            amount: tier.prices.for_period(period),
            currency: tier.currency.clone(),
            ruled: false,
        }
    }

    /// The tier's current price version for `period` at `amount`, the price the
    /// pricing rules gave (docs/pricing-rules.md); the list price when no rule
    /// changed it.
    pub fn ruled(tier: &Tier, period: BillingPeriod, amount: i64) -> Self {
        let list = Self::current(tier, period);
        Self { ruled: amount != list.amount, amount, ..list }
    }

    /// The Stripe lookup key naming this version: `tierdesk_{tier}_v{version}_{period}`.
    pub fn lookup_key(&self) -> String {
        if self.ruled {
            ruled_price_lookup_key(&self.tier_id, self.price_version, self.amount, self.period)
        } else {
            price_lookup_key(&self.tier_id, self.price_version, self.period)
        }
    }
}

/// The Stripe price an add-on line needs (issue 21 §2): what
/// `StripeGateway::add_on_price` finds or creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOnPriceSpec {
    pub add_on_id: String,
    pub name: String,
    pub price_version: u32,
    pub period: BillingPeriod,
    /// Cents per period, after the bundle rule.
    pub amount: i64,
    pub list_amount: i64,
    pub currency: String,
}

impl AddOnPriceSpec {
    /// The Stripe price one quoted add-on line is charged at.
    pub fn for_line(line: &super::addon::AddOnLine, period: BillingPeriod, currency: &str) -> Self {
        Self {
            add_on_id: line.add_on_id.clone(),
            name: line.name.clone(),
            price_version: line.price_version,
            period,
            amount: line.price,
            list_amount: line.list_price,
            currency: currency.to_string(),
        }
    }
}

/// The price version a partner is on after its Stripe price became `price`: the
/// version the price names; for a price without one (made before versions), the
/// partner's recorded version while the amount is unchanged, else the tier's
/// current version.
fn version_of(price: &PriceFacts, partner: &Partner, to: &Tier) -> Option<u32> {
    price.price_version.or_else(|| {
        let same = partner.engagement_tier == to.tier_id
            && partner.price_per_period == price.unit_amount
            && partner.billing_period == Some(price.period);
        if same && partner.price_version.is_some() {
            partner.price_version
        } else {
            Some(to.price_version)
        }
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionFacts {
    pub subscription_id: String,
    /// The subscription item carrying the price (what a plan change updates).
    pub item_id: Option<String>,
    pub customer_id: String,
    pub status: StripeStatus,
    pub price: Option<PriceFacts>,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub trial_end: Option<NaiveDate>,
    pub cancel_at_period_end: bool,
    /// `metadata.tier_id` of the subscription, written by Tierdesk at checkout.
    pub tier_hint: Option<String>,
    /// `metadata.scheduled_tier_id`: a downgrade Tierdesk asked Stripe to bill
    /// from the next period; the tier itself changes when that period is paid.
    pub scheduled_tier: Option<String>,
    /// The subscription's add-on items (their prices name an add-on).
    pub add_ons: Vec<crate::domain::partner::SubscribedAddOn>,
}

impl SubscriptionFacts {
    /// The paid tier this subscription is for: named by its price or metadata, or
    /// else the one paid tier whose list price it is.
    fn tier<'a>(&self, catalog: Catalog<'a>) -> Option<&'a Tier> {
        self.price
            .as_ref()
            .and_then(|p| p.tier_id.as_deref())
            .or(self.tier_hint.as_deref())
            .and_then(|id| catalog.active(id))
            .filter(|t| is_paid(t))
            .or_else(|| self.price.as_ref().and_then(|p| tier_priced_at(catalog, p)))
    }
}

/// The one active paid tier whose list price for the period is exactly this
/// price, for prices that carry no tier of their own (created outside Tierdesk).
pub fn tier_priced_at<'a>(catalog: Catalog<'a>, price: &PriceFacts) -> Option<&'a Tier> {
    let mut matching = catalog.tiers.iter().filter(|t| {
        t.status == super::tier::TierStatus::Active
            && is_paid(t)
            && t.prices.for_period(price.period) == price.unit_amount
            && t.currency.eq_ignore_ascii_case(&price.currency)
    });
    let first = matching.next()?;
    matching.next().is_none().then_some(first)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Draft,
    Open,
    Paid,
    Void,
    Uncollectible,
}

/// The payment behind a subscription that Stripe just started or moved: its
/// latest invoice's amount when paid, and the card it is billed to (brand and
/// last four only). Known when the subscription was read with those expanded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentFacts {
    pub amount_paid: Option<i64>,
    pub card: Option<super::subscription::PaymentMethod>,
}

impl PaymentFacts {
    /// Stamps a transition's history record with the payment that caused it: only
    /// a move onto a paid term (upgrade, reactivation, renewal, trial conversion)
    /// and only a payment of more than 0 (a trial's first invoice pays nothing).
    pub fn stamp(&self, record: &mut super::subscription::TierTransition) {
        use super::subscription::TransitionEvent as E;
        let paid_for = matches!(record.event, E::Upgrade | E::Reactivate | E::Renewal | E::TrialConversion);
        if let Some(amount) = self.amount_paid.filter(|a| *a > 0 && paid_for) {
            record.amount_paid = Some(amount);
            record.payment_method = self.card.clone();
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceFacts {
    pub invoice_id: String,
    pub number: Option<String>,
    pub customer_id: String,
    pub subscription_id: Option<String>,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: String,
    pub status: InvoiceStatus,
    pub billing_reason: Option<String>,
    /// The period of the subscription line (not of proration lines).
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub hosted_url: Option<String>,
    pub pdf_url: Option<String>,
    pub attempt_count: u32,
    /// Epoch seconds; part of the invoice's key, so every event about one invoice
    /// lands on the same item.
    pub created: i64,
    pub next_attempt: Option<NaiveDate>,
    pub price: Option<PriceFacts>,
}

impl InvoiceFacts {
    fn is_renewal(&self) -> bool {
        self.billing_reason.as_deref() == Some("subscription_cycle")
    }
}

/// Seed 003 `partner_invoices`, stored under the partner
/// (`PARTNER#{id}` / `INVOICE#{created}#{invoiceId}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceRecord {
    pub invoice_id: String,
    pub partner_id: String,
    pub invoice_number: Option<String>,
    /// Amount due, in cents.
    pub amount: i64,
    pub amount_paid: i64,
    pub currency: String,
    pub tier: String,
    pub billing_reason: Option<String>,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    /// paid | pending | failed | void | uncollectible.
    pub status: String,
    pub paid_at: Option<String>,
    pub invoice_url: Option<String>,
    pub pdf_url: Option<String>,
    pub attempt_count: u32,
    pub stripe_subscription_id: Option<String>,
    pub stripe_created: i64,
    pub created_at: String,
    pub updated_at: String,
    /// Stripe's own status (`draft`, `open`, `paid`, `void`, `uncollectible`);
    /// absent on records written before it was kept (`billing_status` derives it).
    #[serde(default)]
    pub stripe_status: Option<InvoiceStatus>,
    /// The staff status (`invoice::BillingStatus`), also the `INVOICESTATUS#` index
    /// key; always set on write (`normalized`).
    #[serde(default)]
    pub billing_status: Option<BillingStatus>,
    /// Cents refunded through credit notes.
    #[serde(default)]
    pub refunded_amount: i64,
    /// The credit notes already applied: each counts once.
    #[serde(default)]
    pub credit_notes: Vec<String>,
    /// The partner's sales rep when the invoice was last written (the
    /// `REPINVOICES#` index); the rep's access is checked against the partner.
    #[serde(default)]
    pub sales_rep: Option<String>,
    /// Who earns commission on it and at what rate, fixed when it was first paid
    /// (`domain::commission`); staff-only, like `salesRep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commission: Option<CommissionTerms>,
    /// Chargebacks on the invoice's payment, one entry per Stripe dispute
    /// (`invoice::apply_dispute`, docs/billing.md "Disputes").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disputes: Vec<DisputeEntry>,
}

/// One chargeback on an invoice's payment and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisputeEntry {
    pub dispute_id: String,
    pub amount: i64,
    pub status: DisputeState,
    pub updated_at: String,
}

/// Where a dispute stands, as far as the money goes: an inquiry takes nothing, an
/// open or lost dispute holds its amount back from the business, a won one returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeState {
    Inquiry,
    Open,
    Won,
    Lost,
}

impl DisputeState {
    /// Won and lost are final: an older event arriving later never reopens them.
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Won | Self::Lost)
    }

    /// Whether the disputed amount is out of the business's hands.
    pub fn holds_funds(self) -> bool {
        matches!(self, Self::Open | Self::Lost)
    }
}

/// Who earns commission on an invoice and at what rate (docs/billing.md
/// "Commissions"), fixed when it is first paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommissionTerms {
    pub rep_id: String,
    pub segment: String,
    pub basis_points: u32,
}

impl InvoiceRecord {
    pub fn is_paid(&self) -> bool {
        self.status == "paid"
    }

    /// Cents held back by open or lost chargebacks.
    pub fn disputed_amount(&self) -> i64 {
        self.disputes.iter().filter(|d| d.status.holds_funds()).map(|d| d.amount).sum()
    }

    /// Stripe's status, for records written before it was kept too.
    pub fn stripe_status(&self) -> InvoiceStatus {
        self.stripe_status.unwrap_or_else(|| stripe_status_of_legacy(&self.status))
    }

    /// The staff status computed from Stripe's status and the refunds.
    pub fn derived_status(&self) -> BillingStatus {
        BillingStatus::of(self.stripe_status(), self.amount_paid, self.refunded_amount)
    }

    pub fn billing_status(&self) -> BillingStatus {
        self.billing_status.unwrap_or_else(|| self.derived_status())
    }

    /// With `billingStatus` and `stripeStatus` filled in (records written before they were kept).
    pub fn normalized(mut self) -> Self {
        self.stripe_status = Some(self.stripe_status());
        self.billing_status = Some(self.derived_status());
        self
    }

    /// The record for `invoice` as of now, keeping what an earlier event recorded.
    pub fn from_facts(
        invoice: &InvoiceFacts,
        partner: &Partner,
        previous: Option<&InvoiceRecord>,
        at: &str,
    ) -> InvoiceRecord {
        let status = match invoice.status {
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Void => "void",
            InvoiceStatus::Uncollectible => "uncollectible",
            InvoiceStatus::Open if invoice.attempt_count > 0 => "failed",
            InvoiceStatus::Open | InvoiceStatus::Draft => "pending",
        };
        let tier = invoice
            .price
            .as_ref()
            .and_then(|p| p.tier_id.clone())
            .or_else(|| previous.map(|p| p.tier.clone()))
            .unwrap_or_else(|| partner.engagement_tier.clone());
        InvoiceRecord {
            invoice_id: invoice.invoice_id.clone(),
            partner_id: partner.partner_id.clone(),
            invoice_number: invoice.number.clone(),
            amount: invoice.amount_due,
            amount_paid: invoice.amount_paid,
            currency: invoice.currency.clone(),
            tier,
            billing_reason: invoice.billing_reason.clone(),
            period_start: invoice.period_start,
            period_end: invoice.period_end,
            status: status.to_string(),
            paid_at: match invoice.status {
                InvoiceStatus::Paid => previous.and_then(|p| p.paid_at.clone()).or_else(|| Some(at.to_string())),
                _ => None,
            },
            invoice_url: invoice.hosted_url.clone(),
            pdf_url: invoice.pdf_url.clone(),
            attempt_count: invoice.attempt_count.max(previous.map_or(0, |p| p.attempt_count)),
            stripe_subscription_id: invoice.subscription_id.clone(),
            stripe_created: invoice.created,
            created_at: previous.map_or_else(|| at.to_string(), |p| p.created_at.clone()),
            updated_at: at.to_string(),
            stripe_status: Some(invoice.status),
            billing_status: None,
            // Refunds are Tierdesk's record of the credit notes; Stripe's invoice
            // events never carry them, so they are kept from the previous record.
            refunded_amount: previous.map_or(0, |p| p.refunded_amount),
            credit_notes: previous.map(|p| p.credit_notes.clone()).unwrap_or_default(),
            sales_rep: partner.assigned_sales_rep.clone(),
            // Kept: the terms are fixed when the invoice is first paid.
            commission: previous.and_then(|p| p.commission.clone()),
            // Tierdesk's record of the disputes, as with refunds.
            disputes: previous.map(|p| p.disputes.clone()).unwrap_or_default(),
        }
        .normalized()
    }
}

/// A change of the partner that is not a tier transition (a payment recorded, a
/// dunning status): the partner and its tier statistics change, MRR does not, so
/// there is no history event and no MRR movement.
#[derive(Debug, Clone)]
pub struct AccountChange {
    pub before: Partner,
    pub after: Partner,
    pub stats: Vec<(String, TierCounts)>,
}

#[derive(Debug, Clone)]
pub enum BillingChange {
    Transition(Box<Transition>),
    Account(Box<AccountChange>),
    Nothing,
}

impl BillingChange {
    pub fn after(&self) -> Option<&Partner> {
        match self {
            Self::Transition(t) => Some(&t.after),
            Self::Account(a) => Some(&a.after),
            Self::Nothing => None,
        }
    }

    pub fn event(&self) -> Option<TransitionEvent> {
        match self {
            Self::Transition(t) => Some(t.record.event),
            _ => None,
        }
    }
}

/// Which email a billing fact calls for, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingNotice {
    UpgradeConfirmation,
    Receipt,
    PaymentFailed { attempt: u32 },
    Expired,
    Cancelled,
}

pub(crate) fn account_change(
    before: &Partner,
    mut after: Partner,
    catalog: Catalog<'_>,
    ctx: &TransitionContext,
) -> BillingChange {
    if after == *before {
        return BillingChange::Nothing;
    }
    rescore(&mut after, catalog, ctx.today, None);
    after.version = before.version + 1;
    after.updated_at = ctx.at.clone();
    after.updated_by = ctx.actor.clone();
    let stats = stats_deltas(Some(before), &after);
    BillingChange::Account(Box::new(AccountChange { before: before.clone(), after, stats }))
}

/// Event type of a move onto `to` from the partner's current tier.
fn direction(partner: &Partner, from: Option<&Tier>, to: &Tier) -> TransitionEvent {
    if partner.subscription_status.is_lapsed()
        || !partner.on_paid_term() && from.is_some_and(|f| f.tier_id == to.tier_id)
    {
        return TransitionEvent::Reactivate;
    }
    match from.map(|f| f.rank().cmp(&to.rank())) {
        Some(std::cmp::Ordering::Less) | None => TransitionEvent::Upgrade,
        Some(std::cmp::Ordering::Greater) => TransitionEvent::Downgrade,
        Some(std::cmp::Ordering::Equal) => TransitionEvent::Renewal,
    }
}

fn status_of(stripe: StripeStatus, current: SubscriptionStatus) -> SubscriptionStatus {
    match stripe {
        StripeStatus::Active => SubscriptionStatus::Active,
        StripeStatus::Trialing => SubscriptionStatus::Trialing,
        StripeStatus::PastDue | StripeStatus::Unpaid => SubscriptionStatus::PastDue,
        _ => current,
    }
}

/// Brings the partner in line with its Stripe subscription (checkout completed,
/// `customer.subscription.created|updated`, the answer to an upgrade). Stripe is
/// the truth for tier, price, period and status, with one exception: a downgrade
/// the partner scheduled waits for the end of the paid period, so a lower price
/// already on the subscription does not lower the tier early.
pub fn sync_subscription(
    partner: &Partner,
    facts: &SubscriptionFacts,
    catalog: Catalog<'_>,
    ctx: &TransitionContext,
) -> Result<BillingChange, SubscriptionError> {
    match facts.status {
        StripeStatus::Canceled => return subscription_ended(partner, facts, catalog, ctx),
        StripeStatus::Incomplete | StripeStatus::IncompleteExpired | StripeStatus::Paused => {
            return Ok(BillingChange::Nothing)
        }
        _ => {}
    }
    if partner.stripe_subscription_id.as_deref().is_some_and(|s| s != facts.subscription_id)
        && partner.on_paid_term()
        && !partner.subscription_status.is_lapsed()
    {
        // A second subscription while one is running is not ours to merge.
        return Ok(BillingChange::Nothing);
    }
    let from = catalog.any(&partner.engagement_tier);
    let Some(mut to) = facts.tier(catalog).or_else(|| from.filter(|t| is_paid(t) && partner.on_paid_term())) else {
        return Ok(BillingChange::Nothing);
    };
    let waiting = partner.scheduled_change.as_ref().is_some_and(|s| s.tier_id == to.tier_id)
        || facts.scheduled_tier.as_deref() == Some(to.tier_id.as_str());
    if waiting {
        if let Some(current) = from.filter(|f| f.rank() > to.rank() && partner.on_paid_term()) {
            to = current;
        }
    }
    let mut after = partner.clone();
    after.stripe_subscription_id = Some(facts.subscription_id.clone());
    after.stripe_customer_id = Some(facts.customer_id.clone());
    after.add_ons = facts.add_ons.clone();
    let tier_changes = after.engagement_tier != to.tier_id || !partner.on_paid_term();
    after.engagement_tier = to.tier_id.clone();
    after.currency = to.currency.clone();
    let keep_price = waiting && to.tier_id == partner.engagement_tier;
    if let Some(price) = facts.price.as_ref().filter(|_| !keep_price) {
        after.price_version = version_of(price, partner, to);
        after.billing_period = Some(price.period);
        after.price_per_period = price.unit_amount;
        after.currency = price.currency.clone();
        after.discount_percent = None;
    }
    if after.billing_period.is_none() {
        after.billing_period = Some(BillingPeriod::Monthly);
        after.price_per_period = to.prices.monthly;
    }
    if tier_changes || after.subscription_start_date.is_none() {
        after.subscription_start_date = facts.period_start.or(Some(ctx.today));
    }
    // Stripe moves the period on when it invoices, paid or not; the paid-through
    // date moves only while the subscription is paid up (dunning keeps it).
    let paid_up = matches!(facts.status, StripeStatus::Active | StripeStatus::Trialing);
    if let Some(end) = facts.period_end.filter(|_| paid_up || partner.subscription_end_date.is_none()) {
        after.subscription_end_date = Some(end);
    }
    if after.subscription_end_date.is_none() {
        return Ok(BillingChange::Nothing);
    }
    after.trial_end_date = facts.trial_end.filter(|t| *t > ctx.today);
    after.subscription_status = status_of(facts.status, partner.subscription_status);
    if facts.cancel_at_period_end {
        after.subscription_status = SubscriptionStatus::Cancelled;
        after.auto_renewal = false;
        after.cancellation_date = partner.cancellation_date.or(Some(ctx.today));
        after.cancellation_reason =
            partner.cancellation_reason.clone().or_else(|| Some("cancelled at period end".into()));
        after.scheduled_change = None;
    } else {
        after.auto_renewal = true;
        after.cancellation_date = None;
        after.cancellation_reason = None;
    }
    if after.subscription_status == SubscriptionStatus::Active && partner.payment_status.is_none() {
        after.payment_status = Some(PaymentStatus::Current);
    }

    let event = if tier_changes {
        Some(direction(partner, from, to))
    } else if after.subscription_status == SubscriptionStatus::Cancelled
        && partner.subscription_status != SubscriptionStatus::Cancelled
    {
        Some(TransitionEvent::Cancel)
    } else if partner.subscription_status == SubscriptionStatus::Cancelled
        && after.subscription_status != SubscriptionStatus::Cancelled
    {
        Some(TransitionEvent::Reactivate)
    } else if after.subscription_end_date > partner.subscription_end_date
        || after.price_per_period != partner.price_per_period
        || after.billing_period != partner.billing_period
    {
        Some(TransitionEvent::Renewal)
    } else {
        None
    };
    match event {
        Some(event) => {
            Ok(BillingChange::Transition(Box::new(finish(Some(partner), after, event, from, to, catalog, ctx))))
        }
        None => Ok(account_change(partner, after, catalog, ctx)),
    }
}

/// `customer.subscription.deleted`: the Stripe subscription is over and the
/// partner moves to the free tier. A term the partner had cancelled ends as an
/// expiration; one cancelled outright (dashboard, unpaid) is a cancellation.
pub fn subscription_ended(
    partner: &Partner,
    facts: &SubscriptionFacts,
    catalog: Catalog<'_>,
    ctx: &TransitionContext,
) -> Result<BillingChange, SubscriptionError> {
    let ours = partner.stripe_subscription_id.as_deref().is_none_or(|s| s == facts.subscription_id);
    if !ours || !partner.on_paid_term() {
        return Ok(BillingChange::Nothing);
    }
    let from = catalog.any(&partner.engagement_tier);
    let free = catalog.active(DEFAULT_TIER_ID).ok_or(SubscriptionError::DefaultTierMissing)?;
    let mut after = partner.clone();
    after.engagement_tier = free.tier_id.clone();
    clear_term(&mut after);
    after.stripe_subscription_id = None;
    after.scheduled_change = None;
    after.auto_renewal = false;
    after.add_ons.clear();
    let event = if partner.subscription_status == SubscriptionStatus::Cancelled {
        after.subscription_status = SubscriptionStatus::Expired;
        TransitionEvent::Expiration
    } else {
        after.subscription_status = SubscriptionStatus::Cancelled;
        after.cancellation_date = Some(ctx.today);
        after.cancellation_reason = Some("subscription ended in Stripe".into());
        TransitionEvent::Cancel
    };
    Ok(BillingChange::Transition(Box::new(finish(Some(partner), after, event, from, free, catalog, ctx))))
}

/// `invoice.paid` / `invoice.payment_succeeded`. Records the payment once per
/// invoice (`previous` is what an earlier event about it stored), brings the
/// partner back from past due, and moves the paid-through date to the end of the
/// invoiced period: a renewal in the history. A renewal invoice also carries out
/// a downgrade that was waiting for it, and a first invoice that arrives before
/// the checkout event activates the subscription itself.
pub fn record_payment(
    partner: &Partner,
    invoice: &InvoiceFacts,
    previous: Option<&InvoiceRecord>,
    catalog: Catalog<'_>,
    ctx: &TransitionContext,
) -> Result<BillingChange, SubscriptionError> {
    if previous.is_some_and(InvoiceRecord::is_paid) {
        return Ok(BillingChange::Nothing);
    }
    let mut after = partner.clone();
    after.last_payment_date = Some(ctx.today);
    after.last_payment_amount = Some(invoice.amount_paid);
    after.total_paid += invoice.amount_paid;
    after.payment_status = Some(PaymentStatus::Current);
    after.payment_failures = 0;
    if after.subscription_status == SubscriptionStatus::PastDue {
        after.subscription_status = SubscriptionStatus::Active;
    }
    if invoice.subscription_id.is_none() || invoice.amount_paid == 0 && invoice.period_end.is_none() {
        return Ok(account_change(partner, after, catalog, ctx));
    }
    let from = catalog.any(&partner.engagement_tier);
    let invoiced_tier = invoice
        .price
        .as_ref()
        .and_then(|p| p.tier_id.as_deref().and_then(|id| catalog.active(id)).or_else(|| tier_priced_at(catalog, p)));

    // The first invoice of a subscription the partner is not on yet: activate.
    if !partner.on_paid_term() || partner.subscription_status.is_lapsed() {
        let (Some(to), Some(price), Some(start), Some(end)) =
            (invoiced_tier.filter(|t| is_paid(t)), invoice.price.as_ref(), invoice.period_start, invoice.period_end)
        else {
            return Ok(account_change(partner, after, catalog, ctx));
        };
        after.engagement_tier = to.tier_id.clone();
        after.stripe_subscription_id = invoice.subscription_id.clone();
        after.stripe_customer_id = Some(invoice.customer_id.clone());
        after.price_version = version_of(price, partner, to);
        after.billing_period = Some(price.period);
        after.price_per_period = price.unit_amount;
        after.currency = price.currency.clone();
        after.discount_percent = None;
        after.subscription_start_date = Some(start);
        after.subscription_end_date = Some(end);
        after.subscription_status = SubscriptionStatus::Active;
        after.auto_renewal = true;
        after.cancellation_date = None;
        after.cancellation_reason = None;
        let event = direction(partner, from, to);
        return Ok(BillingChange::Transition(Box::new(finish(Some(partner), after, event, from, to, catalog, ctx))));
    }

    let mut to = from;
    let mut event = None;
    if let Some(end) = invoice.period_end.filter(|end| partner.subscription_end_date.is_none_or(|e| *end > e)) {
        after.subscription_end_date = Some(end);
        event = Some(TransitionEvent::Renewal);
    }
    if let Some(scheduled) = partner.scheduled_change.as_ref().filter(|_| invoice.is_renewal()) {
        if let Some(target) = catalog.active(&scheduled.tier_id).filter(|t| is_paid(t)) {
            after.engagement_tier = target.tier_id.clone();
            after.currency = target.currency.clone();
            after.billing_period = Some(scheduled.billing_period);
            after.price_per_period =
                invoice.price.as_ref().map_or(target.prices.for_period(scheduled.billing_period), |p| p.unit_amount);
            after.price_version = invoice.price.as_ref().and_then(|p| p.price_version).or(Some(target.price_version));
            after.discount_percent = None;
            after.subscription_start_date = invoice.period_start.or(Some(ctx.today));
            to = Some(target);
            event = Some(direction(partner, from, target));
        }
        after.scheduled_change = None;
    }
    match (event, to) {
        (Some(event), Some(to)) => {
            Ok(BillingChange::Transition(Box::new(finish(Some(partner), after, event, from, to, catalog, ctx))))
        }
        _ => Ok(account_change(partner, after, catalog, ctx)),
    }
}

/// `invoice.payment_failed`, by attempt (seed 003 §3.4): attempts before the
/// final one put the partner in past due, keeping the tier (the grace period);
/// the final one moves the partner to the free tier as a
/// `payment_failure_downgrade`. An attempt already handled plans nothing.
pub fn record_payment_failure(
    partner: &Partner,
    invoice: &InvoiceFacts,
    previous: Option<&InvoiceRecord>,
    catalog: Catalog<'_>,
    ctx: &TransitionContext,
) -> Result<(BillingChange, Option<BillingNotice>), SubscriptionError> {
    let attempt = invoice.attempt_count.max(1);
    if previous.is_some_and(|p| p.is_paid() || p.attempt_count >= attempt) {
        return Ok((BillingChange::Nothing, None));
    }
    let notice = Some(BillingNotice::PaymentFailed { attempt });
    let mut after = partner.clone();
    after.payment_failures = attempt;
    if !partner.on_paid_term() {
        // Nothing left to downgrade (already free): record the failure only.
        after.payment_status = Some(PaymentStatus::Failed);
        return Ok((account_change(partner, after, catalog, ctx), None));
    }
    if attempt < FINAL_PAYMENT_ATTEMPT {
        after.payment_status = Some(PaymentStatus::PastDue);
        if matches!(after.subscription_status, SubscriptionStatus::Active | SubscriptionStatus::Trialing) {
            after.subscription_status = SubscriptionStatus::PastDue;
        }
        return Ok((account_change(partner, after, catalog, ctx), notice));
    }
    let from = catalog.any(&partner.engagement_tier);
    let free = catalog.active(DEFAULT_TIER_ID).ok_or(SubscriptionError::DefaultTierMissing)?;
    after.engagement_tier = free.tier_id.clone();
    clear_term(&mut after);
    after.subscription_status = SubscriptionStatus::Expired;
    after.payment_status = Some(PaymentStatus::Failed);
    after.auto_renewal = false;
    after.scheduled_change = None;
    let t = finish(Some(partner), after, TransitionEvent::PaymentFailureDowngrade, from, free, catalog, ctx);
    Ok((BillingChange::Transition(Box::new(t)), notice))
}

/// `POST /api/billing/subscribe`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscribeRequest {
    pub tier_id: String,
    pub billing_period: BillingPeriod,
    pub promotion_code: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    /// Add-on ids to attach as subscription items (issue 21 §2).
    pub add_ons: Vec<String>,
    /// The storefront visitor id the partner browsed under: a running pricing
    /// experiment on the tier charges the variant that visitor was shown.
    pub visitor_id: Option<String>,
}

/// A return URL Stripe's hosted pages send the customer back to.
pub(crate) fn url(v: &Value) -> Result<String, String> {
    let s = parse::text(v, 1, 2048)?;
    if s.starts_with("https://") || s.starts_with("http://") {
        Ok(s)
    } else {
        Err("must be an http(s) URL".into())
    }
}

fn period(v: &Value) -> Result<BillingPeriod, String> {
    BillingPeriod::parse(v)
}

fn code(v: &Value) -> Result<String, String> {
    let s = parse::text(v, 1, 64)?;
    if s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        Ok(s)
    } else {
        Err("may contain letters, digits, '-' and '_' only".into())
    }
}

impl SubscribeRequest {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(
            body,
            &["tierId", "billingPeriod", "promotionCode", "successUrl", "cancelUrl", "addOns", "visitorId"],
        );
        let tier_id = f.required("tierId", parse::slug);
        let billing_period = f.optional("billingPeriod", period);
        let promotion_code = f.optional("promotionCode", code);
        let success_url = f.optional("successUrl", url);
        let cancel_url = f.optional("cancelUrl", url);
        let add_ons = f.optional("addOns", super::addon::parse_ids).unwrap_or_default();
        let visitor_id = f.optional("visitorId", super::experiment::user_id);
        f.finish()?;
        Ok(Self {
            tier_id: tier_id.unwrap_or_default(),
            billing_period: billing_period.unwrap_or(BillingPeriod::Monthly),
            promotion_code,
            success_url,
            cancel_url,
            add_ons,
            visitor_id,
        })
    }
}

/// When a self-service plan change takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effective {
    Immediately,
    PeriodEnd,
}

/// `PUT /api/billing/upgrade` and `PUT /api/billing/downgrade`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanChangeRequest {
    pub tier_id: String,
    pub billing_period: Option<BillingPeriod>,
    pub effective: Option<Effective>,
}

impl PlanChangeRequest {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["tierId", "billingPeriod", "effective"]);
        let tier_id = f.required("tierId", parse::slug);
        let billing_period = f.optional("billingPeriod", period);
        let effective = f.optional("effective", |v| match v.as_str() {
            Some("immediately") => Ok(Effective::Immediately),
            Some("period_end") => Ok(Effective::PeriodEnd),
            _ => Err("must be immediately or period_end".to_string()),
        });
        f.finish()?;
        Ok(Self { tier_id: tier_id.unwrap_or_default(), billing_period, effective })
    }
}

/// `DELETE /api/billing/cancel` (the body is optional).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CancelRequest {
    pub reason: Option<String>,
}

impl CancelRequest {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        if body.is_null() {
            return Ok(Self::default());
        }
        let mut f = Fields::new(body, &["reason"]);
        let reason = f.optional("reason", |v| parse::text(v, 1, 500));
        f.finish()?;
        Ok(Self { reason })
    }
}

/// `POST /api/admin/tiers/{tierId}/price-migrations`: move the tier's
/// subscribers on an older price version (all of them, or those on
/// `fromVersion`) to its current version.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceMigrationRequest {
    pub from_version: Option<u32>,
    pub dry_run: bool,
}

impl PriceMigrationRequest {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["fromVersion", "dryRun"]);
        let from_version = f.optional("fromVersion", |v| parse::int_in(v, 1, i64::from(u32::MAX)).map(|n| n as u32));
        let dry_run = f.required("dryRun", parse::boolean);
        f.finish()?;
        Ok(Self { from_version, dry_run: dry_run.unwrap_or(true) })
    }
}

/// One subscriber a price migration moves, and what it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationCandidate {
    pub partner_id: String,
    pub company_name: String,
    pub billing_period: BillingPeriod,
    pub from_version: Option<u32>,
    pub to_version: u32,
    pub current_price: i64,
    pub new_price: i64,
    pub mrr_before: i64,
    pub mrr_after: i64,
}

/// Whether `partner`, listed on `tier`, is a subscriber the migration moves: on
/// a running Stripe subscription of the tier (not cancelled, no downgrade
/// waiting), on a price version older than the current one (and `from_version`
/// when given). Returns what the move changes.
pub fn migration_candidate(partner: &Partner, tier: &Tier, from_version: Option<u32>) -> Option<MigrationCandidate> {
    let period = partner.billing_period?;
    let eligible = partner.engagement_tier == tier.tier_id
        && partner.on_paid_term()
        && partner.stripe_subscription_id.is_some()
        && matches!(partner.subscription_status, SubscriptionStatus::Active | SubscriptionStatus::PastDue)
        && partner.scheduled_change.is_none()
        && partner.price_version.is_none_or(|v| v < tier.price_version)
        && from_version.is_none_or(|v| partner.price_version == Some(v));
    if !eligible {
        return None;
    }
    let new_price = tier.prices.for_period(period);
    Some(MigrationCandidate {
        partner_id: partner.partner_id.clone(),
        company_name: partner.company_name.clone(),
        billing_period: period,
        from_version: partner.price_version,
        to_version: tier.price_version,
        current_price: partner.price_per_period,
        new_price,
        mrr_before: partner.mrr,
        mrr_after: super::revenue::mrr_of(partner.subscription_status, new_price, Some(period)),
    })
}

/// Checks a self-service move from the partner's paid tier to `to`: `up` for an
/// upgrade (higher rank, or a longer billing period on the same tier), otherwise
/// a downgrade to a lower-ranked paid tier (to leave paid tiers, cancel).
pub fn check_plan_change<'a>(
    partner: &Partner,
    request: &PlanChangeRequest,
    catalog: Catalog<'a>,
    up: bool,
) -> Result<&'a Tier, BillingError> {
    if partner.stripe_subscription_id.is_none() || !partner.on_paid_term() || partner.subscription_status.is_lapsed() {
        return Err(BillingError::NoStripeSubscription);
    }
    let to = catalog
        .active(&request.tier_id)
        .filter(|t| is_paid(t))
        .ok_or_else(|| ValidationError::single("tierId", "no active paid tier with this id"))?;
    let from = catalog.any(&partner.engagement_tier).ok_or(SubscriptionError::NotFound)?;
    let period = request.billing_period.or(partner.billing_period).unwrap_or(BillingPeriod::Monthly);
    let longer_period = period == BillingPeriod::Yearly && partner.billing_period == Some(BillingPeriod::Monthly);
    if to.segment != from.segment || to.currency != from.currency {
        return Err(BillingError::OtherSegment(from.segment.clone()));
    }
    let ok = if up {
        to.rank() > from.rank() || to.tier_id == from.tier_id && longer_period
    } else {
        to.rank() < from.rank()
    };
    if !ok {
        return Err(BillingError::WrongDirection(if up { "above" } else { "below" }));
    }
    Ok(to)
}

/// Records a downgrade that waits for the end of the paid period.
pub fn schedule_downgrade(
    partner: &Partner,
    to: &Tier,
    period: BillingPeriod,
    catalog: Catalog<'_>,
    ctx: &TransitionContext,
) -> BillingChange {
    let mut after = partner.clone();
    after.scheduled_change = Some(ScheduledChange {
        tier_id: to.tier_id.clone(),
        billing_period: period,
        effective_date: partner.subscription_end_date.unwrap_or(ctx.today),
        requested_at: ctx.at.clone(),
    });
    after.last_activity_at = ctx.at.clone();
    account_change(partner, after, catalog, ctx)
}

/// The Stripe lookup key of one price version of a tier for a period.
pub fn price_lookup_key(tier_id: &str, price_version: u32, period: BillingPeriod) -> String {
    format!("tierdesk_{tier_id}_v{price_version}_{}", period.as_str())
}

/// The Stripe lookup key of a price version at a rule-adjusted amount:
/// `tierdesk_{tier}_v{version}_r{cents}_{period}`. One Stripe price per amount, so
/// every partner charged that amount shares it and a rule change never alters what
/// an existing subscription pays.
pub fn ruled_price_lookup_key(tier_id: &str, price_version: u32, amount: i64, period: BillingPeriod) -> String {
    format!("tierdesk_{tier_id}_v{price_version}_r{amount}_{}", period.as_str())
}

/// Reads `tierdesk_{tier}_v{version}[_r{cents}]_{period}` back, and the unversioned
/// `tierdesk_{tier}_{period}` of prices made before versions (no version).
pub fn parse_lookup_key(key: &str) -> Option<(String, Option<u32>, BillingPeriod)> {
    let rest = key.strip_prefix("tierdesk_")?;
    let (head, period) = rest.rsplit_once('_')?;
    let period = BillingPeriod::parse(&Value::String(period.to_string())).ok()?;
    let head = match head.rsplit_once("_r") {
        Some((versioned, cents))
            if !cents.is_empty() && cents.bytes().all(|b| b.is_ascii_digit()) && versioned.contains("_v") =>
        {
            versioned
        }
        _ => head,
    };
    let versioned = head.rsplit_once("_v").and_then(|(tier, v)| {
        let version = v.parse::<u32>().ok().filter(|_| v.bytes().all(|b| b.is_ascii_digit()))?;
        (!tier.is_empty()).then(|| (tier.to_string(), version))
    });
    match versioned {
        Some((tier, version)) => Some((tier, Some(version), period)),
        None => Some((head.to_string(), None, period)),
    }
}

/// What a billing team filters by: Stripe's invoice status, with a paid invoice
/// that was refunded shown as `refunded` (all of what was paid) or
/// `partially_refunded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingStatus {
    Draft,
    Open,
    Paid,
    Void,
    Uncollectible,
    Refunded,
    PartiallyRefunded,
}

impl BillingStatus {
    pub const ALL: [Self; 7] =
        [Self::Draft, Self::Open, Self::Paid, Self::Void, Self::Uncollectible, Self::Refunded, Self::PartiallyRefunded];

    pub fn as_str(self) -> &'static str {
        crate::domain::wire::wire_name(&self)
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The status of an invoice in `stripe` status, `paid` of which `refunded` went back.
    pub fn of(stripe: InvoiceStatus, paid: i64, refunded: i64) -> Self {
        match stripe {
            InvoiceStatus::Paid if refunded > 0 && refunded >= paid => Self::Refunded,
            InvoiceStatus::Paid if refunded > 0 => Self::PartiallyRefunded,
            InvoiceStatus::Paid => Self::Paid,
            InvoiceStatus::Draft => Self::Draft,
            InvoiceStatus::Open => Self::Open,
            InvoiceStatus::Void => Self::Void,
            InvoiceStatus::Uncollectible => Self::Uncollectible,
        }
    }
}

/// Stripe's status of a record written before `stripeStatus` was kept, from the
/// partner-facing status it has (`pending` and `failed` are open invoices).
pub fn stripe_status_of_legacy(status: &str) -> InvoiceStatus {
    match status {
        "paid" => InvoiceStatus::Paid,
        "void" => InvoiceStatus::Void,
        "uncollectible" => InvoiceStatus::Uncollectible,
        _ => InvoiceStatus::Open,
    }
}

impl super::audit::Audited for InvoiceRecord {
    const ENTITY_TYPE: &'static str = "invoice";
    fn entity_id(&self) -> &str {
        &self.invoice_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::defaults;
    use crate::domain::subscription::{plan_signup, Trigger, TriggerType};

    fn tiers() -> Vec<Tier> {
        let change = crate::domain::actor::Actor::fixture("seed", "2026-01-01T00:00:00Z");
        defaults::default_tiers().into_iter().map(|t| t.into_tier(&change)).collect()
    }

    fn ctx(day: &str, id: &str) -> TransitionContext {
        TransitionContext {
            today: day.parse().unwrap(),
            at: format!("{day}T12:00:00.000Z"),
            actor: "stripe".into(),
            request_id: None,
            transition_id: format!("t{id}"),
            movement_id: format!("m{id}"),
            trigger: Trigger {
                trigger_type: TriggerType::Automated,
                sales_rep: None,
                promotion_id: None,
                reason: None,
            },
        }
    }

    fn free_partner(tiers: &[Tier]) -> Partner {
        let new = crate::domain::partner::NewPartner::parse(
            &serde_json::json!({"companyName":"Acme","primaryEmail":"a@example.com"}),
        )
        .unwrap();
        plan_signup("prt_1", new, Catalog::new(tiers), &ctx("2026-01-01", "0")).unwrap().after
    }

    #[test]
    fn plan_changes_rank_within_the_current_segment_only() {
        let mut tiers = tiers();
        let mut luxury = tiers.iter().find(|t| t.tier_id == "gold").unwrap().clone();
        luxury.tier_id = "luxury-select".into();
        luxury.segment = "luxury".into();
        luxury.tier_level = 1;
        luxury.prices.monthly = 1_500_000;
        tiers.push(luxury);
        let mut p = free_partner(&tiers);
        p.engagement_tier = "platinum".into();
        p.stripe_subscription_id = Some("sub_1".into());
        p.subscription_end_date = Some("2026-02-01".parse().unwrap());
        p.billing_period = Some(BillingPeriod::Monthly);
        let ask = |tier: &str| PlanChangeRequest { tier_id: tier.into(), billing_period: None, effective: None };
        let c = Catalog::new(&tiers);
        // By level alone the luxury tier would rank below platinum: a "downgrade" to
        // a tier four times the price. Levels rank within a segment only.
        assert!(
            matches!(check_plan_change(&p, &ask("luxury-select"), c, false), Err(BillingError::OtherSegment(s)) if s == "standard")
        );
        assert!(matches!(check_plan_change(&p, &ask("luxury-select"), c, true), Err(BillingError::OtherSegment(_))));
        assert_eq!(check_plan_change(&p, &ask("gold"), c, false).unwrap().tier_id, "gold");
        assert!(matches!(check_plan_change(&p, &ask("gold"), c, true), Err(BillingError::WrongDirection("above"))));
    }

    fn gold_price() -> PriceFacts {
        PriceFacts {
            price_id: "price_gold".into(),
            unit_amount: 360_000,
            currency: "usd".into(),
            period: BillingPeriod::Monthly,
            tier_id: Some("gold".into()),
            price_version: Some(1),
            add_on_id: None,
        }
    }

    fn sub(status: StripeStatus, start: &str, end: &str) -> SubscriptionFacts {
        SubscriptionFacts {
            subscription_id: "sub_1".into(),
            item_id: Some("si_1".into()),
            customer_id: "cus_1".into(),
            status,
            price: Some(gold_price()),
            period_start: Some(start.parse().unwrap()),
            period_end: Some(end.parse().unwrap()),
            trial_end: None,
            cancel_at_period_end: false,
            tier_hint: None,
            scheduled_tier: None,
            add_ons: vec![],
        }
    }

    fn invoice(reason: &str, start: &str, end: &str, attempt: u32, status: InvoiceStatus) -> InvoiceFacts {
        InvoiceFacts {
            invoice_id: "in_1".into(),
            number: Some("A-0001".into()),
            customer_id: "cus_1".into(),
            subscription_id: Some("sub_1".into()),
            amount_due: 360_000,
            amount_paid: if status == InvoiceStatus::Paid { 360_000 } else { 0 },
            currency: "usd".into(),
            status,
            billing_reason: Some(reason.into()),
            period_start: Some(start.parse().unwrap()),
            period_end: Some(end.parse().unwrap()),
            hosted_url: None,
            pdf_url: None,
            attempt_count: attempt,
            created: 1,
            next_attempt: None,
            price: Some(gold_price()),
        }
    }

    fn applied(change: BillingChange) -> Partner {
        change.after().cloned().expect("a change")
    }

    fn active_gold(tiers: &[Tier]) -> Partner {
        let p = free_partner(tiers);
        let c = sync_subscription(
            &p,
            &sub(StripeStatus::Active, "2026-01-01", "2026-02-01"),
            Catalog::new(tiers),
            &ctx("2026-01-01", "1"),
        )
        .unwrap();
        applied(c)
    }

    #[test]
    fn an_active_subscription_moves_a_free_partner_onto_its_tier_with_stripes_period() {
        let tiers = tiers();
        let p = free_partner(&tiers);
        let change = sync_subscription(
            &p,
            &sub(StripeStatus::Active, "2026-01-01", "2026-02-01"),
            Catalog::new(&tiers),
            &ctx("2026-01-01", "1"),
        )
        .unwrap();
        assert_eq!(change.event(), Some(TransitionEvent::Upgrade));
        let after = applied(change);
        assert_eq!(after.engagement_tier, "gold");
        assert_eq!(after.subscription_end_date, Some("2026-02-01".parse().unwrap()));
        assert_eq!(after.mrr, 360_000);
        assert_eq!(after.stripe_subscription_id.as_deref(), Some("sub_1"));
        // The same facts again change nothing.
        let again = sync_subscription(
            &after,
            &sub(StripeStatus::Active, "2026-01-01", "2026-02-01"),
            Catalog::new(&tiers),
            &ctx("2026-01-01", "2"),
        )
        .unwrap();
        assert!(matches!(again, BillingChange::Nothing), "{again:?}");
    }

    #[test]
    fn paying_the_next_invoice_is_a_renewal_and_counts_once_per_invoice() {
        let tiers = tiers();
        let p = active_gold(&tiers);
        let paid = invoice("subscription_cycle", "2026-02-01", "2026-03-01", 1, InvoiceStatus::Paid);
        let change = record_payment(&p, &paid, None, Catalog::new(&tiers), &ctx("2026-02-01", "3")).unwrap();
        assert_eq!(change.event(), Some(TransitionEvent::Renewal));
        let after = applied(change);
        assert_eq!(after.subscription_end_date, Some("2026-03-01".parse().unwrap()));
        assert_eq!(after.total_paid, 360_000);
        assert_eq!(after.last_payment_amount, Some(360_000));
        let record = InvoiceRecord::from_facts(&paid, &after, None, "2026-02-01T12:00:00.000Z");
        let again =
            record_payment(&after, &paid, Some(&record), Catalog::new(&tiers), &ctx("2026-02-01", "4")).unwrap();
        assert!(matches!(again, BillingChange::Nothing));
    }

    #[test]
    fn dunning_keeps_the_tier_until_the_final_attempt() {
        let tiers = tiers();
        let p = active_gold(&tiers);
        let mut record = None;
        let mut partner = p;
        for attempt in 1..=3 {
            let failed = invoice("subscription_cycle", "2026-02-01", "2026-03-01", attempt, InvoiceStatus::Open);
            let (change, notice) = record_payment_failure(
                &partner,
                &failed,
                record.as_ref(),
                Catalog::new(&tiers),
                &ctx("2026-02-02", &attempt.to_string()),
            )
            .unwrap();
            assert_eq!(notice, Some(BillingNotice::PaymentFailed { attempt }));
            let after = applied(change.clone());
            if attempt < 3 {
                assert_eq!(after.engagement_tier, "gold");
                assert_eq!(after.subscription_status, SubscriptionStatus::PastDue);
                assert_eq!(after.mrr, 360_000, "past due still counts");
            } else {
                assert_eq!(change.event(), Some(TransitionEvent::PaymentFailureDowngrade));
                assert_eq!(after.engagement_tier, "free");
                assert_eq!(after.mrr, 0);
            }
            record = Some(InvoiceRecord::from_facts(&failed, &after, record.as_ref(), "x"));
            // The same attempt delivered again does nothing.
            let (dup, dup_notice) =
                record_payment_failure(&after, &failed, record.as_ref(), Catalog::new(&tiers), &ctx("2026-02-02", "d"))
                    .unwrap();
            assert!(matches!(dup, BillingChange::Nothing));
            assert_eq!(dup_notice, None);
            partner = after;
        }
    }

    #[test]
    fn a_scheduled_downgrade_waits_for_the_renewal_invoice() {
        let tiers = tiers();
        let p = applied(
            sync_subscription(
                &free_partner(&tiers),
                &SubscriptionFacts {
                    price: Some(PriceFacts { tier_id: Some("platinum".into()), unit_amount: 600_000, ..gold_price() }),
                    ..sub(StripeStatus::Active, "2026-01-01", "2026-02-01")
                },
                Catalog::new(&tiers),
                &ctx("2026-01-01", "1"),
            )
            .unwrap(),
        );
        let gold = Catalog::new(&tiers).active("gold").unwrap();
        let scheduled = applied(schedule_downgrade(
            &p,
            gold,
            BillingPeriod::Monthly,
            Catalog::new(&tiers),
            &ctx("2026-01-10", "2"),
        ));
        assert_eq!(scheduled.engagement_tier, "platinum");
        // Stripe already shows the lower price: the tier stays until the period ends.
        let synced = sync_subscription(
            &scheduled,
            &sub(StripeStatus::Active, "2026-01-01", "2026-02-01"),
            Catalog::new(&tiers),
            &ctx("2026-01-10", "3"),
        )
        .unwrap();
        assert!(
            synced.after().is_none_or(|a| a.engagement_tier == "platinum" && a.price_per_period == 600_000),
            "{synced:?}"
        );
        let renewal = invoice("subscription_cycle", "2026-02-01", "2026-03-01", 1, InvoiceStatus::Paid);
        let change = record_payment(&scheduled, &renewal, None, Catalog::new(&tiers), &ctx("2026-02-01", "4")).unwrap();
        assert_eq!(change.event(), Some(TransitionEvent::Downgrade));
        let after = applied(change);
        assert_eq!(after.engagement_tier, "gold");
        assert_eq!(after.mrr, 360_000);
        assert_eq!(after.scheduled_change, None);
    }

    #[test]
    fn a_deleted_subscription_ends_on_free() {
        let tiers = tiers();
        let p = active_gold(&tiers);
        let ended = SubscriptionFacts {
            status: StripeStatus::Canceled,
            ..sub(StripeStatus::Canceled, "2026-01-01", "2026-02-01")
        };
        let change = sync_subscription(&p, &ended, Catalog::new(&tiers), &ctx("2026-01-20", "5")).unwrap();
        assert_eq!(change.event(), Some(TransitionEvent::Cancel));
        assert_eq!(applied(change).engagement_tier, "free");

        let cancelling = applied(
            sync_subscription(
                &p,
                &SubscriptionFacts {
                    cancel_at_period_end: true,
                    ..sub(StripeStatus::Active, "2026-01-01", "2026-02-01")
                },
                Catalog::new(&tiers),
                &ctx("2026-01-10", "6"),
            )
            .unwrap(),
        );
        assert_eq!(cancelling.subscription_status, SubscriptionStatus::Cancelled);
        assert_eq!(cancelling.engagement_tier, "gold");
        let change = subscription_ended(&cancelling, &ended, Catalog::new(&tiers), &ctx("2026-02-01", "7")).unwrap();
        assert_eq!(change.event(), Some(TransitionEvent::Expiration));
        assert_eq!(applied(change).subscription_status, SubscriptionStatus::Expired);
    }

    #[test]
    fn a_price_without_a_tier_maps_to_the_one_tier_at_that_price() {
        let tiers = tiers();
        let catalog = Catalog::new(&tiers);
        let bare = PriceFacts { tier_id: None, ..gold_price() };
        assert_eq!(tier_priced_at(catalog, &bare).map(|t| t.tier_id.as_str()), Some("gold"));
        assert!(tier_priced_at(catalog, &PriceFacts { unit_amount: 1, ..bare.clone() }).is_none());
        assert!(tier_priced_at(catalog, &PriceFacts { currency: "eur".into(), ..bare }).is_none());
    }

    #[test]
    fn lookup_keys_round_trip() {
        let key = price_lookup_key("gold_plus", 3, BillingPeriod::Yearly);
        assert_eq!(key, "tierdesk_gold_plus_v3_yearly");
        assert_eq!(parse_lookup_key(&key), Some(("gold_plus".into(), Some(3), BillingPeriod::Yearly)));
        assert_eq!(parse_lookup_key("tierdesk_gold_monthly"), Some(("gold".into(), None, BillingPeriod::Monthly)));
        assert_eq!(parse_lookup_key("other_gold_monthly"), None);
        let ruled = ruled_price_lookup_key("gold_plus", 3, 367_200, BillingPeriod::Monthly);
        assert_eq!(ruled, "tierdesk_gold_plus_v3_r367200_monthly");
        assert_eq!(parse_lookup_key(&ruled), Some(("gold_plus".into(), Some(3), BillingPeriod::Monthly)));
        // A tier whose id ends in `_r` and digits is not mistaken for a ruled key.
        assert_eq!(parse_lookup_key("tierdesk_top_r2_monthly"), Some(("top_r2".into(), None, BillingPeriod::Monthly)));
    }

    #[test]
    fn a_migration_moves_running_subscribers_on_older_versions_only() {
        let mut tiers = tiers();
        let gold = tiers.iter_mut().find(|t| t.tier_id == "gold").unwrap();
        gold.price_version = 2;
        gold.prices.monthly = 400_000;
        let gold = gold.clone();
        let p = active_gold(&tiers);
        assert_eq!(p.price_version, Some(1), "the price names version 1");
        let c = migration_candidate(&p, &gold, None).expect("on version 1");
        assert_eq!((c.current_price, c.new_price, c.mrr_before, c.mrr_after), (360_000, 400_000, 360_000, 400_000));
        assert!(migration_candidate(&p, &gold, Some(1)).is_some());
        assert!(migration_candidate(&p, &gold, Some(3)).is_none(), "not on the version asked for");
        let current = Partner { price_version: Some(2), ..p.clone() };
        assert!(migration_candidate(&current, &gold, None).is_none(), "already on the current version");
        let cancelled = Partner { subscription_status: SubscriptionStatus::Cancelled, ..p.clone() };
        assert!(migration_candidate(&cancelled, &gold, None).is_none());
        let no_stripe = Partner { stripe_subscription_id: None, ..p };
        assert!(migration_candidate(&no_stripe, &gold, None).is_none());

        let err = PriceMigrationRequest::parse(&serde_json::json!({"fromVersion": 0, "x": 1})).unwrap_err();
        for field in ["fromVersion", "dryRun", "x"] {
            assert!(err.fields.contains_key(field), "{field}: {err:?}");
        }
    }

    #[test]
    fn a_renewal_at_a_grandfathered_price_keeps_the_partners_version() {
        let mut tiers = tiers();
        tiers.iter_mut().find(|t| t.tier_id == "gold").unwrap().price_version = 2;
        let p = active_gold(&tiers);
        assert_eq!(p.price_version, Some(1));
        let renewed = sync_subscription(
            &p,
            &sub(StripeStatus::Active, "2026-02-01", "2026-03-01"),
            Catalog::new(&tiers),
            &ctx("2026-02-01", "9"),
        )
        .unwrap();
        assert_eq!(applied(renewed).price_version, Some(1));
    }

    #[test]
    fn requests_name_the_failing_fields() {
        let err = SubscribeRequest::parse(&serde_json::json!({"tierId": "Gold!", "billingPeriod": "weekly", "x": 1}))
            .unwrap_err();
        for field in ["tierId", "billingPeriod", "x"] {
            assert!(err.fields.contains_key(field), "{field}: {err:?}");
        }
        let ok = SubscribeRequest::parse(&serde_json::json!({"tierId": "gold"})).unwrap();
        assert_eq!(ok.billing_period, BillingPeriod::Monthly);
        assert!(CancelRequest::parse(&Value::Null).unwrap().reason.is_none());
    }
}
