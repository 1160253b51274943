//! Invoices: drafting (with the pending invoice items they sweep up), finalization,
//! payment attempts, voiding, manual invoices and invoice items.

use serde_json::Value;

use super::dunning::RETRY_AFTER_DAYS;
use super::{NewInvoice, NewInvoiceItem, Payment, Sweep, DAY};
use crate::clock::new_id;
use crate::error::ApiError;
use crate::state::{
    BillingReason, Invoice, InvoiceItem, InvoiceLine, InvoiceStatus, LineSource, Metadata, Store, SubscriptionItem,
    SubscriptionStatus,
};

impl Store {
    pub(super) fn subscription_line(&self, sub: &str, item: &SubscriptionItem, period: (i64, i64)) -> InvoiceLine {
        let currency = self.prices.get(&item.price).map_or_else(|| "usd".to_owned(), |p| p.currency.clone());
        InvoiceLine {
            id: new_id("il"),
            amount: self.item_amount(&item.price, item.quantity),
            currency,
            description: Some(self.describe_item(&item.price, item.quantity)),
            period,
            proration: false,
            quantity: item.quantity,
            price: Some(item.price.clone()),
            subscription: Some(sub.to_owned()),
            source: LineSource::SubscriptionItem { subscription_item: item.id.clone(), invoice_item: None },
            discount_amount: 0,
        }
    }

    /// Stores a draft invoice with `lines`, then sweeps in the pending invoice items in scope.
    /// An invoice the subscription makes (not a manual one) gets the subscription's discount
    /// while it is in effect.
    pub(super) fn draft_invoice(
        &mut self,
        customer: &str,
        subscription: Option<&str>,
        reason: BillingReason,
        period: (i64, i64),
        lines: Vec<InvoiceLine>,
        sweep: Option<Sweep<'_>>,
    ) -> String {
        let id = new_id("in");
        let now = self.now();
        let sub = subscription.and_then(|s| self.subscriptions.get(s));
        let currency = lines
            .first()
            .map(|l| l.currency.clone())
            .or_else(|| sub.map(|s| s.currency.clone()))
            .or_else(|| self.customers.get(customer).and_then(|c| c.currency.clone()))
            .unwrap_or_else(|| "usd".to_owned());
        let invoice = Invoice {
            id: id.clone(),
            number: None,
            customer: customer.to_owned(),
            subscription: subscription.map(str::to_owned),
            subscription_metadata: sub.map(|s| s.metadata.clone()).unwrap_or_default(),
            status: InvoiceStatus::Draft,
            billing_reason: reason,
            created: now,
            period_start: period.0,
            period_end: period.1,
            currency,
            lines,
            attempt_count: 0,
            attempted: false,
            amount_paid: 0,
            starting_balance: 0,
            ending_balance: None,
            finalized_at: None,
            paid_at: None,
            voided_at: None,
            marked_uncollectible_at: None,
            next_payment_attempt: None,
            auto_advance: true,
            description: None,
            metadata: Metadata::new(),
            discount: subscription
                .filter(|_| reason != BillingReason::Manual)
                .and_then(|s| self.discount_for_invoice(s)),
            sent_count: 0,
        };
        self.invoices.insert(invoice);
        if let Some(sweep) = sweep {
            self.sweep_pending_items(&id, customer, sweep);
        }
        self.apply_invoice_discount(&id);
        id
    }

    pub(super) fn pending_items_in_scope<'a>(
        &'a self,
        customer: &'a str,
        sweep: Sweep<'a>,
    ) -> impl Iterator<Item = &'a InvoiceItem> {
        self.invoice_items.iter().filter(move |ii| {
            ii.invoice.is_none()
                && ii.customer == customer
                && match sweep {
                    Sweep::Subscription(sub) => ii.subscription.as_deref().is_none_or(|s| s == sub),
                    Sweep::Customer => true,
                }
        })
    }

    pub(super) fn sweep_pending_items(&mut self, invoice: &str, customer: &str, sweep: Sweep<'_>) {
        let ids: Vec<String> = self.pending_items_in_scope(customer, sweep).map(|ii| ii.id.clone()).collect();
        for id in ids {
            self.attach_item(&id, invoice);
        }
    }

    pub(super) fn attach_item(&mut self, item: &str, invoice: &str) {
        let Some(ii) = self.invoice_items.get_mut(item) else { return };
        ii.invoice = Some(invoice.to_owned());
        let ii = ii.clone();
        let source = match &ii.subscription_item {
            Some(si) => {
                LineSource::SubscriptionItem { subscription_item: si.clone(), invoice_item: Some(ii.id.clone()) }
            }
            None => LineSource::InvoiceItem { invoice_item: ii.id.clone() },
        };
        let line = InvoiceLine {
            id: new_id("il"),
            amount: ii.amount,
            currency: ii.currency.clone(),
            description: ii.description.clone(),
            period: ii.period,
            proration: ii.proration,
            quantity: ii.quantity,
            price: ii.price.clone(),
            subscription: ii.subscription.clone(),
            source,
            discount_amount: 0,
        };
        if let Some(inv) = self.invoices.get_mut(invoice) {
            inv.lines.push(line);
        }
        self.apply_invoice_discount(invoice);
    }

    /// What an invoice will ask the customer to pay once finalized.
    pub(super) fn due_after_finalizing(&self, invoice: &Invoice) -> i64 {
        match invoice.status {
            InvoiceStatus::Draft => {
                let balance = self.customers.get(&invoice.customer).map_or(0, |c| c.balance);
                (invoice.total() + balance).max(0)
            }
            _ => invoice.amount_remaining(),
        }
    }

    /// Whether the next payment attempt on this invoice will succeed. Payments are
    /// deterministic: nothing due always succeeds, otherwise the customer's card decides.
    pub(super) fn payment_will_succeed(&self, invoice: &str) -> bool {
        let Some(inv) = self.invoices.get(invoice) else { return false };
        let card_fails = self.customers.get(&inv.customer).is_some_and(|c| c.card_fails);
        self.due_after_finalizing(inv) == 0 || !card_fails
    }

    /// Draft → open: assigns the number, applies the customer balance, emits `invoice.finalized`.
    pub fn finalize_invoice(&mut self, id: &str) -> Result<(), ApiError> {
        let inv = self.invoices.get(id).ok_or_else(|| ApiError::no_such("invoice", id))?;
        if inv.status != InvoiceStatus::Draft {
            return Err(ApiError::state(format!(
                "This invoice is already finalized, you can't re-finalize a non-draft invoice: {id}"
            )));
        }
        let customer_id = inv.customer.clone();
        let total = inv.total();
        let now = self.now();
        let customer =
            self.customers.get_mut(&customer_id).ok_or_else(|| ApiError::no_such("customer", &customer_id))?;
        let number = format!("{}-{:04}", customer.invoice_prefix, customer.next_invoice_sequence);
        customer.next_invoice_sequence += 1;
        // The customer balance (negative = credit) is applied here; an invoice that nets below
        // zero is due 0 and leaves the rest as credit for the next invoice.
        let starting_balance = customer.balance;
        let ending_balance = (total + starting_balance).min(0);
        customer.balance = ending_balance;
        if let Some(inv) = self.invoices.get_mut(id) {
            inv.status = InvoiceStatus::Open;
            inv.number = Some(number);
            inv.finalized_at = Some(now);
            inv.starting_balance = starting_balance;
            inv.ending_balance = Some(ending_balance);
        }
        self.use_once_discount(id);
        self.emit_invoice("invoice.finalized", id);
        Ok(())
    }

    /// One payment attempt on an open invoice. Paid emits `invoice.paid` and
    /// `invoice.payment_succeeded`; declined emits `invoice.payment_failed`.
    pub(super) fn collect(&mut self, id: &str) -> Payment {
        let succeeds = self.payment_will_succeed(id);
        let now = self.now();
        let Some(inv) = self.invoices.get_mut(id) else { return Payment::Failed };
        let due = inv.amount_remaining();
        inv.attempted = true;
        if due > 0 {
            inv.attempt_count += 1;
        }
        if succeeds {
            inv.amount_paid += due;
            inv.status = InvoiceStatus::Paid;
            inv.paid_at = Some(now);
            inv.next_payment_attempt = None;
            self.emit_invoice("invoice.paid", id);
            self.emit_invoice("invoice.payment_succeeded", id);
            Payment::Paid
        } else {
            // A subscription's first invoice is not retried automatically (the subscription
            // stays incomplete); later invoices follow the retry schedule until it runs out.
            let retry_in_days = match inv.billing_reason {
                BillingReason::SubscriptionCreate => None,
                _ => RETRY_AFTER_DAYS.get(inv.attempt_count as usize - 1).copied(),
            };
            inv.next_payment_attempt = retry_in_days.map(|days| now + days * DAY);
            self.emit_invoice("invoice.payment_failed", id);
            Payment::Failed
        }
    }

    /// After a successful payment: a subscription waiting on it becomes active again.
    pub(super) fn reactivate(&mut self, sub: &str, before: &Value) {
        let Some(s) = self.subscriptions.get_mut(sub) else { return };
        if matches!(s.status, SubscriptionStatus::PastDue | SubscriptionStatus::Incomplete | SubscriptionStatus::Unpaid)
        {
            s.status = SubscriptionStatus::Active;
            self.emit_subscription_updated(sub, before);
        }
    }

    pub(super) fn open_invoice(&self, id: &str) -> Result<&Invoice, ApiError> {
        let inv = self.invoices.get(id).ok_or_else(|| ApiError::no_such("invoice", id))?;
        match inv.status {
            InvoiceStatus::Open => Ok(inv),
            InvoiceStatus::Paid => Err(ApiError::state("Invoice is already paid")),
            InvoiceStatus::Void => Err(ApiError::state("This invoice has been voided and can no longer be paid.")),
            InvoiceStatus::Uncollectible => Err(ApiError::state("This invoice is uncollectible.")),
            InvoiceStatus::Draft => Err(ApiError::state("This invoice is a draft; finalize it first.")),
        }
    }

    /// `POST /v1/invoices/{id}/pay`: finalizes a draft, then attempts payment (or records
    /// `paid_out_of_band`). A declined card is a 402, after `invoice.payment_failed`.
    pub fn pay_invoice(&mut self, id: &str, paid_out_of_band: bool) -> Result<(), ApiError> {
        if self.invoices.get(id).is_some_and(|i| i.status == InvoiceStatus::Draft) {
            self.finalize_invoice(id)?;
        }
        let sub = self.open_invoice(id)?.subscription.clone();
        let before = sub.as_deref().map(|s| self.subscription_json(s));
        let payment = if paid_out_of_band {
            let now = self.now();
            if let Some(inv) = self.invoices.get_mut(id) {
                // Paid outside Stripe: the whole amount due counts as paid.
                inv.amount_paid = inv.amount_due();
                inv.status = InvoiceStatus::Paid;
                inv.paid_at = Some(now);
                inv.next_payment_attempt = None;
            }
            self.emit_invoice("invoice.paid", id);
            Payment::Paid
        } else {
            self.collect(id)
        };
        match (payment, sub, before) {
            (Payment::Paid, Some(sub), Some(before)) => {
                self.reactivate(&sub, &before);
                Ok(())
            }
            (Payment::Paid, _, _) => Ok(()),
            (Payment::Failed, _, _) => Err(ApiError::card_declined()),
        }
    }

    /// `POST /v1/invoices/{id}/void`: only an open invoice can be voided.
    pub fn void_invoice(&mut self, id: &str) -> Result<(), ApiError> {
        let inv = self.invoices.get(id).ok_or_else(|| ApiError::no_such("invoice", id))?;
        if inv.status != InvoiceStatus::Open {
            return Err(ApiError::state(format!(
                "You can only void open invoices; this one is {}.",
                inv.status.as_str()
            )));
        }
        // Give back whatever customer balance finalization consumed.
        let applied = inv.ending_balance.unwrap_or(inv.starting_balance) - inv.starting_balance;
        let customer = inv.customer.clone();
        let now = self.now();
        if let Some(c) = self.customers.get_mut(&customer) {
            c.balance -= applied;
        }
        if let Some(inv) = self.invoices.get_mut(id) {
            inv.status = InvoiceStatus::Void;
            inv.voided_at = Some(now);
            inv.next_payment_attempt = None;
        }
        self.emit_invoice("invoice.voided", id);
        Ok(())
    }

    pub fn mark_uncollectible(&mut self, id: &str) -> Result<(), ApiError> {
        self.open_invoice(id)?;
        let now = self.now();
        if let Some(inv) = self.invoices.get_mut(id) {
            inv.status = InvoiceStatus::Uncollectible;
            inv.marked_uncollectible_at = Some(now);
            inv.next_payment_attempt = None;
        }
        self.emit_invoice("invoice.marked_uncollectible", id);
        Ok(())
    }

    /// `POST /v1/invoices`: a manual draft invoice; emits `invoice.created`.
    pub fn create_invoice(&mut self, new: NewInvoice) -> Result<String, ApiError> {
        self.customer_or_param(&new.customer, "customer")?;
        if let Some(sub) = &new.subscription {
            let s = self
                .subscriptions
                .get(sub)
                .ok_or_else(|| ApiError::no_such_param("subscription", sub, "subscription"))?;
            if s.customer != new.customer {
                return Err(ApiError::invalid(
                    "The subscription does not belong to this customer.",
                    Some("subscription".into()),
                ));
            }
        }
        let now = self.now();
        let sweep = match (&new.subscription, new.include_pending_items) {
            (_, false) => None,
            (Some(sub), true) => Some(Sweep::Subscription(sub.as_str())),
            (None, true) => Some(Sweep::Customer),
        };
        let id = self.draft_invoice(
            &new.customer.clone(),
            new.subscription.clone().as_deref(),
            BillingReason::Manual,
            (now, now),
            Vec::new(),
            sweep,
        );
        if let Some(inv) = self.invoices.get_mut(&id) {
            inv.description = new.description;
            inv.metadata = new.metadata;
            inv.auto_advance = new.auto_advance.unwrap_or(false);
            if let Some(currency) = new.currency {
                inv.currency = currency;
            }
        }
        self.emit_invoice("invoice.created", &id);
        Ok(id)
    }

    /// `POST /v1/invoices/{id}/finalize`; an invoice with nothing due is paid at once.
    pub fn finalize_manually(&mut self, id: &str) -> Result<(), ApiError> {
        self.finalize_invoice(id)?;
        if self.invoices.get(id).is_some_and(|i| i.amount_due() == 0) {
            self.collect(id);
        }
        Ok(())
    }

    /// `POST /v1/invoiceitems`: pending until the next invoice of its subscription/customer,
    /// or added to the draft invoice named by `invoice`.
    pub fn create_invoice_item(&mut self, new: NewInvoiceItem) -> Result<String, ApiError> {
        let sub = match &new.subscription {
            Some(id) => Some(
                self.subscriptions
                    .get(id)
                    .ok_or_else(|| ApiError::no_such_param("subscription", id, "subscription"))?,
            ),
            None => None,
        };
        let customer = new
            .customer
            .clone()
            .or_else(|| sub.map(|s| s.customer.clone()))
            .ok_or_else(|| ApiError::missing_param("customer"))?;
        self.customer_or_param(&customer, "customer")?;
        if sub.is_some_and(|s| s.customer != customer) {
            return Err(ApiError::invalid(
                "The subscription does not belong to this customer.",
                Some("subscription".into()),
            ));
        }
        if let Some(inv) = &new.invoice {
            let inv = self.invoices.get(inv).ok_or_else(|| ApiError::no_such_param("invoice", inv, "invoice"))?;
            if inv.status != InvoiceStatus::Draft {
                return Err(ApiError::state("Invoice items can only be added to draft invoices."));
            }
        }
        let quantity = new.quantity.unwrap_or(1);
        let (amount, currency) = match (&new.price, new.amount) {
            (Some(price), _) => {
                let p = self.prices.get(price).ok_or_else(|| ApiError::no_such_param("price", price, "price"))?;
                (p.unit_amount * quantity as i64, p.currency.clone())
            }
            (None, Some(amount)) => {
                let currency = new.currency.clone().ok_or_else(|| ApiError::missing_param("currency"))?;
                (amount, currency)
            }
            (None, None) => return Err(ApiError::missing_param("amount")),
        };
        let now = self.now();
        let id = new_id("ii");
        self.invoice_items.insert(InvoiceItem {
            id: id.clone(),
            created: now,
            customer,
            subscription: new.subscription.clone(),
            subscription_item: None,
            amount,
            currency,
            description: new.description,
            period: new.period.unwrap_or((now, now)),
            proration: false,
            quantity,
            price: new.price,
            invoice: None,
            metadata: new.metadata,
        });
        if let Some(inv) = new.invoice {
            self.attach_item(&id, &inv);
        }
        Ok(id)
    }
}
