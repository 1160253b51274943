//! Discounts: a coupon redeemed on a subscription becomes a discount (`di_…`) that takes money
//! off the subscription's invoices for as long as the coupon's `duration` says: `once` for one
//! invoice, `repeating` until `duration_in_months` after it started, `forever` always.

use crate::clock::new_id;
use crate::discount;
use crate::error::ApiError;
use crate::objects;
use crate::state::{Coupon, CouponDuration, CouponValue, Discount, Interval, Recurring, Store};

impl Store {
    /// The coupon named by `param`, if it can be redeemed now on something billed in
    /// `currency` (an `amount_off` coupon only discounts its own currency).
    pub fn redeemable_coupon(&self, id: &str, param: &str, currency: Option<&str>) -> Result<&Coupon, ApiError> {
        let coupon = self.coupons.get(id).ok_or_else(|| ApiError::no_such_param("coupon", id, param))?;
        if !coupon.valid(self.now()) {
            return Err(ApiError::invalid(format!("Coupon expired: {id}"), Some(param.to_owned())));
        }
        if let (CouponValue::AmountOff { currency: own, .. }, Some(currency)) = (&coupon.value, currency) {
            if own != currency {
                return Err(ApiError::invalid(
                    format!("The coupon {id} is in {own} and cannot discount an amount in {currency}."),
                    Some(param.to_owned()),
                ));
            }
        }
        Ok(coupon)
    }

    /// Redeems `coupon` on a new subscription: the discount starts now, and the coupon counts
    /// one more redemption. Returns the discount's id.
    pub(super) fn redeem_coupon(&mut self, coupon: &str, customer: &str, subscription: &str) -> Option<String> {
        let now = self.now();
        let c = self.coupons.get_mut(coupon)?;
        c.times_redeemed += 1;
        let end = match (c.duration, c.duration_in_months) {
            (CouponDuration::Repeating, Some(months)) => {
                Some(Recurring { interval: Interval::Month, interval_count: months }.add_periods(now, 1))
            }
            _ => None,
        };
        let id = new_id("di");
        self.discounts.insert(Discount {
            id: id.clone(),
            coupon: coupon.to_owned(),
            customer: customer.to_owned(),
            subscription: Some(subscription.to_owned()),
            start: now,
            end,
            used: false,
        });
        Some(id)
    }

    /// Whether the discount still takes money off invoices created now.
    fn discount_in_effect(&self, id: &str) -> bool {
        let now = self.now();
        self.discounts.get(id).is_some_and(|d| !d.used && d.end.is_none_or(|end| now < end))
    }

    /// The discount an invoice of `subscription` drafted now gets, if any.
    pub(super) fn discount_for_invoice(&self, subscription: &str) -> Option<String> {
        let sub = self.subscriptions.get(subscription)?;
        sub.discounts.iter().find(|d| self.discount_in_effect(d)).cloned()
    }

    /// Recomputes how much an invoice's discount takes off, and each line's share, from its
    /// current lines. Prorations are not discountable.
    pub(super) fn apply_invoice_discount(&mut self, invoice: &str) {
        let Some(inv) = self.invoices.get(invoice) else { return };
        let coupon =
            inv.discount.as_ref().and_then(|d| self.discounts.get(d)).and_then(|d| self.coupons.get(&d.coupon));
        let amounts: Vec<i64> = inv.lines.iter().map(|l| if l.discountable() { l.amount } else { 0 }).collect();
        let total = match coupon.map(|c| &c.value) {
            Some(CouponValue::AmountOff { currency, .. }) if *currency != inv.currency => 0,
            Some(value) => discount::amount_off(value, amounts.iter().sum()),
            None => 0,
        };
        let shares = discount::allocate(total, &amounts);
        if let Some(inv) = self.invoices.get_mut(invoice) {
            for (line, share) in inv.lines.iter_mut().zip(shares) {
                line.discount_amount = share;
            }
        }
    }

    /// After an invoice is finalized: a `once` discount that took money off it is used up.
    pub(super) fn use_once_discount(&mut self, invoice: &str) {
        let Some(inv) = self.invoices.get(invoice) else { return };
        if inv.discount_amount() <= 0 {
            return;
        }
        let Some(id) = inv.discount.clone() else { return };
        let once = self
            .discounts
            .get(&id)
            .and_then(|d| self.coupons.get(&d.coupon))
            .is_some_and(|c| c.duration == CouponDuration::Once);
        if let (true, Some(d)) = (once, self.discounts.get_mut(&id)) {
            d.used = true;
        }
    }

    /// Before a renewal: removes the subscription's discounts that ended (a used `once`, a
    /// `repeating` one past its end) and emits `customer.discount.deleted` for each.
    pub(super) fn end_discounts(&mut self, subscription: &str) {
        let Some(sub) = self.subscriptions.get(subscription) else { return };
        let ended: Vec<String> = sub.discounts.iter().filter(|d| !self.discount_in_effect(d)).cloned().collect();
        if ended.is_empty() {
            return;
        }
        if let Some(s) = self.subscriptions.get_mut(subscription) {
            s.discounts.retain(|d| !ended.contains(d));
        }
        for id in ended {
            if let Some(object) = self.discounts.get(&id).map(|d| objects::discount(self, d)) {
                self.emit("customer.discount.deleted", object, None);
            }
        }
    }
}
