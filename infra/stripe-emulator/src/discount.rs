//! Coupon arithmetic: how much a coupon takes off an invoice, and how that amount is shared
//! among the invoice's lines (`discount_amounts`).

use crate::state::CouponValue;

/// Stripe's `percent_off` (a decimal with up to two decimals, above 0 and at most 100) in
/// hundredths of a percent: `"25.5"` → `2550`. `None` if it is not such a number.
pub fn parse_percent(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let fraction = fraction.trim_end_matches('0');
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 2 {
        return None;
    }
    if whole.len() > 3 {
        return None;
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    let hundredths = whole * 100 + fraction;
    (1..=10_000).contains(&hundredths).then_some(hundredths)
}

/// `percent_off` as Stripe shows it (`25.5`).
pub fn percent_value(hundredths: i64) -> f64 {
    hundredths as f64 / 100.0
}

/// What the coupon takes off `base` (the invoice's discountable amount, in minor units): a
/// percentage rounded half up to the minor unit, or the amount off capped at `base`. Nothing
/// is taken off a base of zero or less.
pub fn amount_off(value: &CouponValue, base: i64) -> i64 {
    if base <= 0 {
        return 0;
    }
    match value {
        CouponValue::PercentOff { hundredths } => {
            ((i128::from(base) * i128::from(*hundredths) + 5_000) / 10_000) as i64
        }
        CouponValue::AmountOff { amount, .. } => (*amount).min(base),
    }
}

/// Shares `total` among lines in proportion to their `amounts` (lines with nothing to discount
/// pass 0; negative amounts count as 0). The shares add up to `total` exactly: each line gets
/// its proportional share rounded down, and the cents left over go to the lines with the
/// largest remainders (the first line wins a tie).
pub fn allocate(total: i64, amounts: &[i64]) -> Vec<i64> {
    let weights: Vec<i128> = amounts.iter().map(|&a| i128::from(a.max(0))).collect();
    let sum: i128 = weights.iter().sum();
    if sum == 0 || total <= 0 {
        return vec![0; amounts.len()];
    }
    let total = i128::from(total);
    let mut shares: Vec<i128> = weights.iter().map(|w| total * w / sum).collect();
    let mut left = total - shares.iter().sum::<i128>();
    let mut order: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(total * weights[i] % sum));
    for i in order {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    shares.into_iter().map(|s| s as i64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_off_has_at_most_two_decimals() {
        assert_eq!(parse_percent("25"), Some(2500));
        assert_eq!(parse_percent("25.5"), Some(2550));
        assert_eq!(parse_percent("25.50"), Some(2550));
        assert_eq!(parse_percent("12.345"), None);
        assert_eq!(parse_percent("0.01"), Some(1));
        assert_eq!(parse_percent("100"), Some(10_000));
        assert_eq!(parse_percent("100.01"), None);
        assert_eq!(parse_percent("0"), None);
        assert_eq!(parse_percent("-5"), None);
        assert_eq!(parse_percent("abc"), None);
        assert_eq!(parse_percent(""), None);
    }

    #[test]
    fn percent_rounds_half_up_and_amount_is_capped() {
        let pct = |hundredths| CouponValue::PercentOff { hundredths };
        assert_eq!(amount_off(&pct(2500), 360_000), 90_000);
        // 12.5% of 1,001 = 125.125 → 125; 25% of 1,002 = 250.5 → 251.
        assert_eq!(amount_off(&pct(1250), 1_001), 125);
        assert_eq!(amount_off(&pct(2500), 1_002), 251);
        assert_eq!(amount_off(&pct(2500), -100), 0);
        let off = |amount| CouponValue::AmountOff { amount, currency: "usd".into() };
        assert_eq!(amount_off(&off(5_000), 360_000), 5_000);
        assert_eq!(amount_off(&off(5_000), 3_000), 3_000);
    }

    #[test]
    fn allocation_adds_up_to_the_total() {
        assert_eq!(allocate(100, &[300, 0, 100]), [75, 0, 25]);
        assert_eq!(allocate(10, &[1, 1, 1]), [4, 3, 3]);
        assert_eq!(allocate(5, &[0, -50, 0]), [0, 0, 0]);
        let shares = allocate(251, &[1_000, 2, 7]);
        assert_eq!(shares.iter().sum::<i64>(), 251);
    }
}
