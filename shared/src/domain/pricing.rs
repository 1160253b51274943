//! The one pricing engine: a list price for a billing period, minus the discounts
//! that apply, in integer cents. Promotions use it today; quotes price their lines
//! through it too.
//!
//! Rules, in order:
//! - Discounts are applied one after another to what is left of the price, so two
//!   15% discounts give 27.75% off, never 30%; the order is the order given.
//! - A percentage is rounded half up to the cent (`Percent::of`), on the running
//!   amount at its step.
//! - A fixed amount never takes the price below zero: it is capped at what is left.
//! - A discount that applies only once (`first_month`) prices the first charge; on
//!   a yearly plan the first month is one twelfth of the year, rounded half up.
//! - Trials cost nothing now and add trial days; they never change the price.

use super::money::{BillingPeriod, Percent};
use serde::Serialize;

/// What one discount takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjustment {
    PercentOff(Percent),
    AmountOff(i64),
    TrialDays(u32),
}

/// How long a discount lasts on a subscription (Stripe's coupon `duration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Duration {
    /// Every charge of the subscription.
    Forever,
    /// The first charge only.
    Once,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discount {
    pub adjustment: Adjustment,
    pub duration: Duration,
}

/// The price of one charge after discounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceBreakdown {
    /// The list price of one charge of `billing_period`, in cents.
    pub original_price: i64,
    /// Cents off that charge (never more than `original_price`).
    pub discount_amount: i64,
    /// `original_price - discount_amount`, never below zero.
    pub final_price: i64,
    /// Cents off the first charge only (`Once` discounts), included in
    /// `discount_amount`; later charges are `original_price - recurring_discount`.
    pub first_charge_only_discount: i64,
    /// Free days before the first charge.
    pub trial_days: u32,
}

impl PriceBreakdown {
    /// What each charge after the first costs.
    pub fn recurring_price(&self) -> i64 {
        self.final_price + self.first_charge_only_discount
    }
}

/// The month a `Once` discount prices on a yearly plan: a twelfth of the year,
/// half up.
pub fn first_month_share(list_price: i64, period: BillingPeriod) -> i64 {
    match period {
        BillingPeriod::Monthly => list_price,
        BillingPeriod::Yearly => (list_price + 6).div_euclid(12),
    }
}

/// Prices one charge of `list_price` cents (already the price for `period`).
/// `list_price` must be ≥ 0; a negative one is treated as 0.
pub fn price(list_price: i64, period: BillingPeriod, discounts: &[Discount]) -> PriceBreakdown {
    let original = list_price.max(0);
    let mut remaining = original;
    let mut once_off = 0;
    let mut trial_days: u32 = 0;
    for discount in discounts {
        let base = match discount.duration {
            Duration::Forever => remaining,
            // A first-month discount can take at most that month's share of what is left.
            Duration::Once => first_month_share(remaining, period).min(remaining),
        };
        let off = match discount.adjustment {
            Adjustment::PercentOff(p) => p.of(base),
            Adjustment::AmountOff(cents) => cents.max(0).min(base),
            Adjustment::TrialDays(days) => {
                trial_days = trial_days.saturating_add(days);
                0
            }
        }
        .min(remaining);
        remaining -= off;
        if discount.duration == Duration::Once {
            once_off += off;
        }
    }
    PriceBreakdown {
        original_price: original,
        discount_amount: original - remaining,
        final_price: remaining,
        first_charge_only_discount: once_off,
        trial_days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(bp: u32) -> Percent {
        Percent::from_basis_points(bp).unwrap()
    }

    fn forever(adjustment: Adjustment) -> Discount {
        Discount { adjustment, duration: Duration::Forever }
    }

    #[test]
    fn percentages_round_half_up_and_compound() {
        let p = price(360_000, BillingPeriod::Monthly, &[forever(Adjustment::PercentOff(pct(1500)))]);
        assert_eq!((p.discount_amount, p.final_price), (54_000, 306_000));
        // 12.5% of 999 = 124.875 → 125
        let p = price(999, BillingPeriod::Monthly, &[forever(Adjustment::PercentOff(pct(1250)))]);
        assert_eq!(p.discount_amount, 125);
        // 15% then 15%: 10000 → 8500 → 7225, not 7000
        let both = [forever(Adjustment::PercentOff(pct(1500))), forever(Adjustment::PercentOff(pct(1500)))];
        assert_eq!(price(10_000, BillingPeriod::Monthly, &both).final_price, 7_225);
    }

    #[test]
    fn fixed_amounts_never_go_below_zero() {
        let p = price(5_000, BillingPeriod::Monthly, &[forever(Adjustment::AmountOff(7_500))]);
        assert_eq!((p.discount_amount, p.final_price), (5_000, 0));
        let p = price(0, BillingPeriod::Yearly, &[forever(Adjustment::AmountOff(100))]);
        assert_eq!((p.discount_amount, p.final_price), (0, 0));
    }

    #[test]
    fn first_month_on_a_yearly_plan_is_a_twelfth() {
        let once = Discount { adjustment: Adjustment::PercentOff(pct(5000)), duration: Duration::Once };
        // 43,200.00/yr → month 3,600.00 → 50% = 1,800.00 off the first charge
        let p = price(4_320_000, BillingPeriod::Yearly, &[once]);
        assert_eq!((p.discount_amount, p.first_charge_only_discount), (180_000, 180_000));
        assert_eq!(p.recurring_price(), 4_320_000);
        // Monthly: the whole first charge is the first month.
        let p = price(360_000, BillingPeriod::Monthly, &[once]);
        assert_eq!(p.final_price, 180_000);
        assert_eq!(first_month_share(100, BillingPeriod::Yearly), 8); // 8.33 → 8
        assert_eq!(first_month_share(102, BillingPeriod::Yearly), 9); // 8.5 → 9
    }

    #[test]
    fn trials_add_days_and_cost_nothing() {
        let p = price(
            360_000,
            BillingPeriod::Monthly,
            &[forever(Adjustment::TrialDays(14)), forever(Adjustment::TrialDays(7))],
        );
        assert_eq!((p.final_price, p.discount_amount, p.trial_days), (360_000, 0, 21));
    }

    /// A small deterministic generator so the property runs are repeatable.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
    }

    #[test]
    fn property_final_is_exact_and_bounded() {
        let mut rng = Lcg(42);
        for _ in 0..20_000 {
            let list = (rng.next() % 2_000_000_000) as i64;
            let period = if rng.next().is_multiple_of(2) { BillingPeriod::Monthly } else { BillingPeriod::Yearly };
            let n = (rng.next() % 4) as usize;
            let discounts: Vec<Discount> = (0..n)
                .map(|_| {
                    let adjustment = match rng.next() % 3 {
                        0 => Adjustment::PercentOff(pct((rng.next() % 10_001) as u32)),
                        1 => Adjustment::AmountOff((rng.next() % 3_000_000_000) as i64),
                        _ => Adjustment::TrialDays((rng.next() % 90) as u32),
                    };
                    let duration = if rng.next().is_multiple_of(2) { Duration::Forever } else { Duration::Once };
                    Discount { adjustment, duration }
                })
                .collect();
            let p = price(list, period, &discounts);
            assert!(p.final_price >= 0, "{p:?}");
            assert!(p.discount_amount <= p.original_price, "{p:?}");
            assert_eq!(p.original_price - p.discount_amount, p.final_price, "{p:?}");
            assert!(p.first_charge_only_discount <= p.discount_amount, "{p:?}");
            assert!(p.recurring_price() <= p.original_price, "{p:?}");
            // A single percentage is exactly the half-up rounding of list × bp / 10000.
            if let [Discount { adjustment: Adjustment::PercentOff(q), duration: Duration::Forever }] = discounts[..] {
                let exact = (i128::from(list) * i128::from(q.basis_points()) + 5_000) / 10_000;
                assert_eq!(i128::from(p.discount_amount), exact);
            }
        }
    }
}
