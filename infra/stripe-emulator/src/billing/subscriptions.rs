//! Subscriptions: creation with the first invoice, updates with proration, cancellation,
//! and renewal at the period end.

use super::{
    format_date, ItemUpdate, NewSubscription, Payment, PaymentBehavior, ProrationBehavior, SubscriptionUpdate, Sweep,
    DAY,
};
use crate::clock::new_id;
use crate::error::ApiError;
use crate::state::{
    BillingReason, InvoiceItem, InvoiceLine, Metadata, Recurring, Store, Subscription, SubscriptionItem,
    SubscriptionStatus,
};
use crate::{discount, objects, proration};

/// One subscription item's price × quantity before and after an update (`None`: the item is
/// added or removed).
struct ItemChange {
    item: String,
    old: Option<(String, u64)>,
    new: Option<(String, u64)>,
}

/// A proration the update will create as an invoice item.
struct PlannedProration {
    subscription_item: String,
    price: String,
    quantity: u64,
    amount: i64,
    description: String,
}

impl Store {
    /// Checks items for a subscription: every price recurring and active, one currency, one
    /// billing interval. Returns the currency and the interval.
    pub(super) fn check_items(&self, items: &[(String, String)]) -> Result<(String, Recurring), ApiError> {
        let mut shared: Option<(String, Recurring)> = None;
        for (price, param) in items {
            let (p, recurring) = self.recurring_price(price, param)?;
            match &shared {
                None => shared = Some((p.currency.clone(), recurring)),
                Some((currency, interval)) => {
                    if *currency != p.currency {
                        return Err(ApiError::invalid(
                            "All prices on a subscription must have the same currency.",
                            Some(param.clone()),
                        ));
                    }
                    if *interval != recurring {
                        return Err(ApiError::invalid(
                            "All prices on a subscription must have the same `recurring.interval` and `recurring.interval_count`.",
                            Some(param.clone()),
                        ));
                    }
                }
            }
        }
        shared.ok_or_else(|| ApiError::missing_param("items"))
    }

    pub(super) fn would_decline(&self, customer: &str, total: i64) -> bool {
        let Some(c) = self.customers.get(customer) else { return false };
        (total + c.balance) > 0 && c.card_fails
    }

    /// `POST /v1/subscriptions` (and checkout completion): creates the subscription and its
    /// first invoice and charges it. Emits `customer.subscription.created`,
    /// `customer.discount.created` (with a coupon), `invoice.created`, `invoice.finalized`,
    /// then `invoice.paid` + `invoice.payment_succeeded` or `invoice.payment_failed` (the
    /// subscription is then `incomplete`). With a trial the first period is the trial, its
    /// invoice is for 0 and the subscription is `trialing` until it renews at the trial end.
    pub fn create_subscription(&mut self, new: NewSubscription) -> Result<String, ApiError> {
        self.customer_or_param(&new.customer, "customer")?;
        let checks: Vec<(String, String)> = new.items.iter().map(|i| (i.price.clone(), i.param.clone())).collect();
        let (currency, recurring) = self.check_items(&checks)?;
        let coupon = match &new.coupon {
            Some((id, param)) => Some(self.redeemable_coupon(id, param, Some(&currency))?.value.clone()),
            None => None,
        };
        let trial = new.trial_period_days.filter(|days| *days > 0);
        let pending: i64 = self
            .pending_items_in_scope(&new.customer, Sweep::Customer)
            .filter(|ii| ii.subscription.is_none())
            .map(|ii| ii.amount)
            .sum();
        let items_total: i64 =
            if trial.is_some() { 0 } else { new.items.iter().map(|i| self.item_amount(&i.price, i.quantity)).sum() };
        let first_total = items_total + pending;
        let first_total = first_total - coupon.map_or(0, |c| discount::amount_off(&c, first_total));
        if new.payment_behavior == PaymentBehavior::ErrorIfIncomplete && self.would_decline(&new.customer, first_total)
        {
            return Err(ApiError::card_declined());
        }

        let now = self.now();
        let trial_end = trial.map(|days| now + i64::from(days) * DAY);
        let period = (now, trial_end.unwrap_or_else(|| recurring.add_periods(now, 1)));
        let id = new_id("sub");
        let items: Vec<SubscriptionItem> = new
            .items
            .iter()
            .map(|i| SubscriptionItem {
                id: new_id("si"),
                created: now,
                price: i.price.clone(),
                quantity: i.quantity,
                metadata: i.metadata.clone(),
                current_period_start: period.0,
                current_period_end: period.1,
            })
            .collect();
        let lines = items
            .iter()
            .map(|item| {
                let mut line = self.subscription_line(&id, item, period);
                if trial.is_some() {
                    line.amount = 0;
                    line.description = Some(format!("Trial period for {}", self.product_name(&item.price)));
                }
                line
            })
            .collect();
        self.subscriptions.insert(Subscription {
            id: id.clone(),
            created: now,
            customer: new.customer.clone(),
            currency: currency.clone(),
            description: new.description,
            status: SubscriptionStatus::Incomplete,
            metadata: new.metadata,
            items,
            latest_invoice: None,
            start_date: now,
            // A trial moves the billing cycle to start at its end.
            billing_cycle_anchor: trial_end.unwrap_or(now),
            cancel_at_period_end: false,
            canceled_at: None,
            ended_at: None,
            cancellation_reason: None,
            discounts: Vec::new(),
            trial_start: trial_end.map(|_| now),
            trial_end,
            default_payment_method: None,
        });
        let discount = match &new.coupon {
            Some((coupon, _)) => self.redeem_coupon(coupon, &new.customer, &id),
            None => None,
        };
        if let (Some(s), Some(discount)) = (self.subscriptions.get_mut(&id), &discount) {
            s.discounts.push(discount.clone());
        }
        if let Some(c) = self.customers.get_mut(&new.customer) {
            c.currency.get_or_insert(currency);
        }
        let invoice = self.draft_invoice(
            &new.customer,
            Some(&id),
            BillingReason::SubscriptionCreate,
            (now, now),
            lines,
            Some(Sweep::Subscription(&id)),
        );
        let nothing_due = self.invoices.get(&invoice).is_some_and(|i| self.due_after_finalizing(i) == 0);
        // `default_incomplete` leaves the first invoice open for the customer to confirm.
        let attempt = new.payment_behavior != PaymentBehavior::DefaultIncomplete || nothing_due;
        let started = attempt && self.payment_will_succeed(&invoice);
        if let Some(s) = self.subscriptions.get_mut(&id) {
            s.latest_invoice = Some(invoice.clone());
            s.status = match (started, trial) {
                (true, Some(_)) => SubscriptionStatus::Trialing,
                (true, None) => SubscriptionStatus::Active,
                (false, _) => SubscriptionStatus::Incomplete,
            };
        }
        self.emit_subscription("customer.subscription.created", &id, None);
        if let Some(object) =
            discount.as_deref().and_then(|d| self.discounts.get(d)).map(|d| objects::discount(self, d))
        {
            self.emit("customer.discount.created", object, None);
        }
        self.emit_invoice("invoice.created", &invoice);
        self.finalize_invoice(&invoice)?;
        if attempt {
            self.collect(&invoice);
        }
        Ok(id)
    }

    /// Ends a subscription now and emits `customer.subscription.deleted`.
    pub(super) fn end_subscription(&mut self, id: &str, reason: &'static str, ended_at: Option<i64>) {
        let now = self.now();
        let Some(s) = self.subscriptions.get_mut(id) else { return };
        s.status = SubscriptionStatus::Canceled;
        s.canceled_at.get_or_insert(now);
        s.ended_at = Some(ended_at.unwrap_or(now));
        s.cancellation_reason = Some(reason);
        self.emit_subscription("customer.subscription.deleted", id, None);
    }

    pub(super) fn live_subscription(&self, id: &str) -> Result<&Subscription, ApiError> {
        let s = self.subscriptions.get(id).ok_or_else(|| ApiError::no_such("subscription", id))?;
        if s.status.is_ended() {
            return Err(ApiError::state(format!(
                "A canceled subscription can only update its cancellation_details and metadata: {id}"
            )));
        }
        Ok(s)
    }

    /// `DELETE /v1/subscriptions/{id}`: cancels at once.
    pub fn cancel_subscription(&mut self, id: &str) -> Result<(), ApiError> {
        self.live_subscription(id)?;
        self.end_subscription(id, "cancellation_requested", None);
        Ok(())
    }

    /// `POST /v1/subscriptions/{id}`. Price or quantity changes are prorated per
    /// `proration_behavior`; an interval change restarts the period and is invoiced at once.
    /// Emits `customer.subscription.updated` (when anything changed), then the invoice events
    /// of an immediate invoice.
    pub fn update_subscription(&mut self, id: &str, upd: SubscriptionUpdate) -> Result<(), ApiError> {
        let sub = self.subscriptions.get(id).ok_or_else(|| ApiError::no_such("subscription", id))?.clone();
        let only_metadata =
            upd.items.is_empty() && upd.cancel_at_period_end.is_none() && upd.default_payment_method.is_none();
        if sub.status.is_ended() && !only_metadata {
            self.live_subscription(id)?;
        }
        if let Some(pm) = &upd.default_payment_method {
            self.customer_card(&sub.customer, pm, "default_payment_method")?;
        }
        let now = self.now();
        let at = upd.proration_date.unwrap_or(now);
        let (start, end) = sub.period();
        let old_recurring = sub.items.first().and_then(|i| self.prices.get(&i.price)).and_then(|p| p.recurring);

        // 1. The item list after the update, and what changed (old vs new price × quantity).
        let mut items = sub.items.clone();
        let mut changes: Vec<ItemChange> = Vec::new();
        for update in &upd.items {
            match update {
                ItemUpdate::Change { id: item_id, price, quantity, metadata, param } => {
                    let Some(item) = items.iter_mut().find(|i| &i.id == item_id) else {
                        return Err(ApiError::no_such_param("subscription item", item_id, &format!("{param}[id]")));
                    };
                    let old = (item.price.clone(), item.quantity);
                    if let Some(price) = price {
                        self.recurring_price(price, &format!("{param}[price]"))?;
                        item.price = price.clone();
                    }
                    if let Some(quantity) = quantity {
                        item.quantity = *quantity;
                    }
                    if let Some(patch) = metadata {
                        patch.apply(&mut item.metadata);
                    }
                    let new = (item.price.clone(), item.quantity);
                    if old != new {
                        changes.push(ItemChange { item: item.id.clone(), old: Some(old), new: Some(new) });
                    }
                }
                ItemUpdate::Add(new) => {
                    self.recurring_price(&new.price, &new.param)?;
                    let item = SubscriptionItem {
                        id: new_id("si"),
                        created: now,
                        price: new.price.clone(),
                        quantity: new.quantity,
                        metadata: new.metadata.clone(),
                        current_period_start: start,
                        current_period_end: end,
                    };
                    changes.push(ItemChange {
                        item: item.id.clone(),
                        old: None,
                        new: Some((item.price.clone(), item.quantity)),
                    });
                    items.push(item);
                }
                ItemUpdate::Delete { id: item_id, param } => {
                    let Some(pos) = items.iter().position(|i| &i.id == item_id) else {
                        return Err(ApiError::no_such_param("subscription item", item_id, &format!("{param}[id]")));
                    };
                    let item = items.remove(pos);
                    changes.push(ItemChange { item: item.id, old: Some((item.price, item.quantity)), new: None });
                }
            }
        }
        let checks: Vec<(String, String)> = items.iter().map(|i| (i.price.clone(), "items".to_owned())).collect();
        let (_, new_recurring) = self.check_items(&checks)?;
        let interval_changed = !changes.is_empty() && Some(new_recurring) != old_recurring;

        // 2. Prorations (credit the unused old price, charge the remaining new price) and
        //    whether to invoice now. An interval change restarts the period at `at`, so the new
        //    price is charged for a whole new period instead of prorated.
        let mut prorations: Vec<PlannedProration> = Vec::new();
        if upd.proration_behavior != ProrationBehavior::None {
            let date = format_date(at);
            for ItemChange { item: item_id, old, new } in &changes {
                let old_amount = old.as_ref().map_or(0, |(p, q)| self.item_amount(p, *q));
                let new_amount =
                    if interval_changed { 0 } else { new.as_ref().map_or(0, |(p, q)| self.item_amount(p, *q)) };
                let lines = proration::price_change(old_amount, new_amount, start, end, at);
                let quantity_label = |q: u64| if q == 1 { String::new() } else { format!("{q} × ") };
                if let Some((price, quantity)) = old.as_ref().filter(|_| lines.credit != 0) {
                    prorations.push(PlannedProration {
                        subscription_item: item_id.clone(),
                        price: price.clone(),
                        quantity: *quantity,
                        amount: lines.credit,
                        description: format!(
                            "Unused time on {}{} after {date}",
                            quantity_label(*quantity),
                            self.product_name(price)
                        ),
                    });
                }
                if let Some((price, quantity)) = new.as_ref().filter(|_| lines.charge != 0) {
                    prorations.push(PlannedProration {
                        subscription_item: item_id.clone(),
                        price: price.clone(),
                        quantity: *quantity,
                        amount: lines.charge,
                        description: format!(
                            "Remaining time on {}{} after {date}",
                            quantity_label(*quantity),
                            self.product_name(price)
                        ),
                    });
                }
            }
        }
        let invoice_now = !changes.is_empty()
            && (interval_changed
                || (upd.proration_behavior == ProrationBehavior::AlwaysInvoice && !prorations.is_empty()));
        let new_period = if interval_changed { (at, new_recurring.add_periods(at, 1)) } else { (start, end) };
        if invoice_now && upd.payment_behavior == PaymentBehavior::ErrorIfIncomplete {
            let full: i64 =
                if interval_changed { items.iter().map(|i| self.item_amount(&i.price, i.quantity)).sum() } else { 0 };
            let pending: i64 =
                self.pending_items_in_scope(&sub.customer, Sweep::Subscription(id)).map(|ii| ii.amount).sum();
            let total = full + pending + prorations.iter().map(|p| p.amount).sum::<i64>();
            if self.would_decline(&sub.customer, total) {
                return Err(ApiError::card_declined());
            }
        }

        // 3. Apply.
        let before = self.subscription_json(id);
        for proration in &prorations {
            let currency =
                self.prices.get(&proration.price).map_or_else(|| sub.currency.clone(), |p| p.currency.clone());
            self.invoice_items.insert(InvoiceItem {
                id: new_id("ii"),
                created: now,
                customer: sub.customer.clone(),
                subscription: Some(id.to_owned()),
                subscription_item: Some(proration.subscription_item.clone()),
                amount: proration.amount,
                currency,
                description: Some(proration.description.clone()),
                period: (at.clamp(start, end), end),
                proration: true,
                quantity: proration.quantity,
                price: Some(proration.price.clone()),
                invoice: None,
                metadata: Metadata::new(),
            });
        }
        if interval_changed {
            for item in &mut items {
                item.current_period_start = new_period.0;
                item.current_period_end = new_period.1;
            }
        }
        let full_charges: Vec<InvoiceLine> = if interval_changed {
            items.iter().map(|item| self.subscription_line(id, item, new_period)).collect()
        } else {
            Vec::new()
        };
        let s = self.subscriptions.get_mut(id).ok_or_else(|| ApiError::no_such("subscription", id))?;
        s.items = items;
        if interval_changed {
            s.billing_cycle_anchor = at;
        }
        if let Some(patch) = &upd.metadata {
            patch.apply(&mut s.metadata);
        }
        if let Some(description) = upd.description {
            s.description = Some(description);
        }
        if let Some(pm) = &upd.default_payment_method {
            s.default_payment_method = Some(pm.clone());
        }
        match upd.cancel_at_period_end {
            Some(true) if !s.cancel_at_period_end => {
                s.cancel_at_period_end = true;
                s.canceled_at = Some(now);
                s.cancellation_reason = Some("cancellation_requested");
            }
            Some(false) if s.cancel_at_period_end => {
                s.cancel_at_period_end = false;
                s.canceled_at = None;
                s.cancellation_reason = None;
            }
            _ => {}
        }
        if let Some(pm) = &upd.default_payment_method {
            self.use_card(&sub.customer, pm);
        }
        let invoice = invoice_now.then(|| {
            self.draft_invoice(
                &sub.customer,
                Some(id),
                BillingReason::SubscriptionUpdate,
                (at, at),
                full_charges,
                Some(Sweep::Subscription(id)),
            )
        });
        if let Some(invoice) = &invoice {
            let pays = self.payment_will_succeed(invoice);
            if let Some(s) = self.subscriptions.get_mut(id) {
                s.latest_invoice = Some(invoice.clone());
                if !pays && s.status == SubscriptionStatus::Active {
                    s.status = SubscriptionStatus::PastDue;
                }
            }
        }
        self.emit_subscription_updated(id, &before);
        if let Some(invoice) = invoice {
            self.emit_invoice("invoice.created", &invoice);
            self.finalize_invoice(&invoice)?;
            self.collect(&invoice);
        }
        Ok(())
    }

    /// Emulator control: moves a subscription into its next period, moving the clock to the
    /// period end first if it is behind. With `cancel_at_period_end` the subscription ends
    /// instead (`customer.subscription.deleted`). Otherwise the cycle invoice (the next period
    /// at the current prices plus pending invoice items) is created and charged: events
    /// `invoice.created`, `invoice.finalized`, `invoice.paid` + `invoice.payment_succeeded` or
    /// `invoice.payment_failed`, then `customer.subscription.updated` (new period; `past_due`
    /// if the payment failed).
    pub fn advance_subscription(&mut self, id: &str) -> Result<(), ApiError> {
        let sub = self.live_subscription(id)?.clone();
        if sub.status == SubscriptionStatus::Incomplete {
            return Err(ApiError::state(format!(
                "Subscription {id} is incomplete: its first invoice must be paid before it renews."
            )));
        }
        let (start, end) = sub.period();
        self.clock.advance_to(end);
        if sub.cancel_at_period_end {
            self.end_subscription(id, "cancellation_requested", Some(end));
            return Ok(());
        }

        let before = self.subscription_json(id);
        self.end_discounts(id);
        let recurring = sub.items.first().and_then(|i| self.prices.get(&i.price)).and_then(|p| p.recurring);
        let next_end = recurring.map_or(end, |r| r.next_boundary(sub.billing_cycle_anchor, end));
        let lines = sub.items.iter().map(|item| self.subscription_line(id, item, (end, next_end))).collect();
        let invoice = self.draft_invoice(
            &sub.customer,
            Some(id),
            BillingReason::SubscriptionCycle,
            (start, end),
            lines,
            Some(Sweep::Subscription(id)),
        );
        self.emit_invoice("invoice.created", &invoice);
        self.finalize_invoice(&invoice)?;
        let payment = self.collect(&invoice);
        if let Some(s) = self.subscriptions.get_mut(id) {
            for item in &mut s.items {
                item.current_period_start = end;
                item.current_period_end = next_end;
            }
            s.latest_invoice = Some(invoice);
            s.status = match payment {
                Payment::Paid => SubscriptionStatus::Active,
                Payment::Failed => SubscriptionStatus::PastDue,
            };
        }
        self.emit_subscription_updated(id, &before);
        Ok(())
    }
}
