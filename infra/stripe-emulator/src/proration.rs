//! Proration, as Stripe computes it for a price change part-way through a period: the unused
//! share of the old price is credited and the remaining share of the new price is charged, both
//! to the second. Money is integer cents throughout.

/// The two proration lines of a price change at `at` inside the period `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceChange {
    /// `−round(old_amount × (end − at) / (end − start))`; zero or negative.
    pub credit: i64,
    /// `round(new_amount × (end − at) / (end − start))`; zero or positive for a positive price.
    pub charge: i64,
}

impl PriceChange {
    pub fn net(&self) -> i64 {
        self.credit + self.charge
    }
}

pub fn price_change(old_amount: i64, new_amount: i64, start: i64, end: i64, at: i64) -> PriceChange {
    PriceChange {
        credit: -remaining_share(old_amount, start, end, at),
        charge: remaining_share(new_amount, start, end, at),
    }
}

/// `amount × (end − at) / (end − start)`, rounded half-up to the cent.
///
/// `at` is clamped into the period: a change at or before the start prorates the whole amount,
/// one at or after the end prorates nothing. Rounding is half away from zero, so a credit is
/// exactly the negation of the matching charge and −0.5¢ becomes −1¢, as Stripe rounds.
pub fn remaining_share(amount: i64, start: i64, end: i64, at: i64) -> i64 {
    if end <= start {
        return 0;
    }
    let at = at.clamp(start, end);
    let numerator = i128::from(amount) * i128::from(end - at);
    div_round_half_up(numerator, i128::from(end - start))
}

/// `numerator / denominator` rounded to the nearest integer, halves away from zero.
/// `denominator` must be positive.
pub fn div_round_half_up(numerator: i128, denominator: i128) -> i64 {
    debug_assert!(denominator > 0);
    let magnitude = (2 * numerator.abs() + denominator) / (2 * denominator);
    let signed = if numerator < 0 { -magnitude } else { magnitude };
    i64::try_from(signed).unwrap_or(if signed < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn upgrade_half_way_through_a_month() {
        // Gold $3,600 → Platinum $6,000 after 15 of 30 days.
        let change = price_change(360_000, 600_000, 0, 30 * DAY, 15 * DAY);
        assert_eq!(change, PriceChange { credit: -180_000, charge: 300_000 });
        assert_eq!(change.net(), 120_000);
    }

    #[test]
    fn downgrade_nets_a_credit() {
        let change = price_change(600_000, 360_000, 0, 30 * DAY, 20 * DAY);
        // 10 of 30 days left: −200,000 + 120,000.
        assert_eq!(change, PriceChange { credit: -200_000, charge: 120_000 });
        assert_eq!(change.net(), -80_000);
    }

    #[test]
    fn rounds_half_up_to_the_cent() {
        // 1000 × 1/3 = 333.33 → 333; 1000 × 2/3 = 666.67 → 667.
        assert_eq!(remaining_share(1000, 0, 3, 2), 333);
        assert_eq!(remaining_share(1000, 0, 3, 1), 667);
        // Exact halves go up: 5 × 1/2 = 2.5 → 3, 1 × 1/2 = 0.5 → 1.
        assert_eq!(remaining_share(5, 0, 2, 1), 3);
        assert_eq!(remaining_share(1, 0, 2, 1), 1);
        // Just under a half goes down: 1 × 49/100 = 0.49 → 0.
        assert_eq!(remaining_share(1, 0, 100, 51), 0);
        // The credit mirrors the charge, so −2.5 → −3.
        assert_eq!(price_change(5, 5, 0, 2, 1), PriceChange { credit: -3, charge: 3 });
    }

    #[test]
    fn rounds_to_the_second_over_a_31_day_month() {
        // $3,600 with 1 day and 1 second left of a 31-day month:
        // 360000 × 86401 / 2678400 = 11613.037… → 11613.
        let end = 31 * DAY;
        assert_eq!(remaining_share(360_000, 0, end, end - DAY - 1), 11_613);
    }

    #[test]
    fn change_outside_the_period_is_clamped() {
        assert_eq!(remaining_share(1000, 100, 200, 50), 1000);
        assert_eq!(remaining_share(1000, 100, 200, 200), 0);
        assert_eq!(remaining_share(1000, 100, 200, 500), 0);
        assert_eq!(remaining_share(1000, 100, 100, 100), 0);
    }

    #[test]
    fn division_rounding_is_symmetric() {
        assert_eq!(div_round_half_up(7, 2), 4);
        assert_eq!(div_round_half_up(-7, 2), -4);
        assert_eq!(div_round_half_up(-5, 10), -1);
        assert_eq!(div_round_half_up(-4, 10), 0);
        assert_eq!(div_round_half_up(0, 3), 0);
    }
}
