//! Money is an integer count of minor units (cents). Percentages are held as basis
//! points so that `12.5` is exact; every conversion to cents rounds explicitly.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A percentage between 0 and 100 with at most two decimals, held in basis points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent {
    basis_points: u32,
}

impl Percent {
    pub const MAX_BASIS_POINTS: u32 = 10_000;
    pub const ZERO: Self = Self { basis_points: 0 };

    pub fn from_basis_points(basis_points: u32) -> Option<Self> {
        (basis_points <= Self::MAX_BASIS_POINTS).then_some(Self { basis_points })
    }

    pub fn basis_points(self) -> u32 {
        self.basis_points
    }

    pub fn as_number(self) -> f64 {
        f64::from(self.basis_points) / 100.0
    }

    /// Reads a JSON number such as `5`, `12.5` or `33.33`.
    pub fn parse(v: &Value) -> Result<Self, String> {
        let f = v.as_f64().ok_or("must be a number")?;
        Self::from_number(f).ok_or_else(|| "must be between 0 and 100 with at most two decimals".into())
    }

    fn from_number(f: f64) -> Option<Self> {
        if !f.is_finite() || !(0.0..=100.0).contains(&f) {
            return None;
        }
        let scaled = f * 100.0;
        let rounded = scaled.round();
        // Anything finer than a hundredth of a percent is refused rather than silently rounded.
        if (scaled - rounded).abs() > 1e-6 {
            return None;
        }
        Self::from_basis_points(rounded as u32)
    }

    /// This percentage of `amount` cents, rounded half up to a whole cent.
    ///
    /// Half-up (not banker's) rounding because it is what a customer checks with a
    /// calculator: 5% of 10 cents is 1 cent (0.5 → 1). Amounts are non-negative and
    /// bounded by `parse::MAX_CENTS`, so the i128 product cannot overflow.
    pub fn of(self, amount_cents: i64) -> i64 {
        let product = i128::from(amount_cents) * i128::from(self.basis_points);
        let rounded = (product + 5_000).div_euclid(10_000);
        rounded as i64
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.basis_points.is_multiple_of(100) {
            s.serialize_u32(self.basis_points / 100)
        } else {
            s.serialize_f64(self.as_number())
        }
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f = f64::deserialize(d)?;
        Self::from_number(f).ok_or_else(|| serde::de::Error::custom("percent out of range"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BillingPeriod {
    Monthly,
    Yearly,
}

impl BillingPeriod {
    pub fn as_str(self) -> &'static str {
        crate::domain::wire::wire_name(&self)
    }

    pub fn parse(v: &Value) -> Result<Self, String> {
        match v.as_str() {
            Some("monthly") => Ok(Self::Monthly),
            Some("yearly") => Ok(Self::Yearly),
            _ => Err("must be monthly or yearly".into()),
        }
    }
}

/// What a price billed `period` is worth per month, in cents (MRR).
pub fn monthly_value(price_per_period: i64, period: BillingPeriod) -> i64 {
    match period {
        BillingPeriod::Monthly => price_per_period,
        // Half up: 1000 → 83 (83.33), 1002 → 84 (83.5).
        BillingPeriod::Yearly => (price_per_period + 6).div_euclid(12),
    }
}

/// A money amount for people: "$3,600.00", "€12.50", "¥5,000", "-$20.00",
/// "3,600.00 CHF". `cents` is in the currency's minor unit, as Stripe counts it.
pub fn format_amount(cents: i64, currency: &str) -> String {
    let code = currency.trim().to_ascii_lowercase();
    let code = if code.is_empty() { "usd".to_string() } else { code };
    let decimals = minor_unit_digits(&code);
    let magnitude = cents.unsigned_abs();
    let scale = 10u64.pow(decimals);
    let whole = group_thousands(magnitude / scale);
    let number =
        if decimals == 0 { whole } else { format!("{whole}.{:0width$}", magnitude % scale, width = decimals as usize) };
    let sign = if cents < 0 { "-" } else { "" };
    match symbol(&code) {
        Some(symbol) => format!("{sign}{symbol}{number}"),
        None => format!("{sign}{number} {}", code.to_ascii_uppercase()),
    }
}

fn symbol(code: &str) -> Option<&'static str> {
    Some(match code {
        "usd" => "$",
        "eur" => "€",
        "gbp" => "£",
        "jpy" => "¥",
        "krw" => "₩",
        _ => return None,
    })
}

/// Digits after the decimal point in Stripe's minor unit for a currency.
fn minor_unit_digits(code: &str) -> u32 {
    const ZERO_DECIMAL: &[&str] = &[
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
    ];
    const THREE_DECIMAL: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];
    if ZERO_DECIMAL.contains(&code) {
        0
    } else if THREE_DECIMAL.contains(&code) {
        3
    } else {
        2
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn percent_parses_two_decimals_and_refuses_finer() {
        assert_eq!(Percent::parse(&json!(12.5)).map(Percent::basis_points), Ok(1250));
        assert_eq!(Percent::parse(&json!(33.33)).map(Percent::basis_points), Ok(3333));
        assert_eq!(Percent::parse(&json!(5)).map(Percent::basis_points), Ok(500));
        assert!(Percent::parse(&json!(33.333)).is_err());
        assert!(Percent::parse(&json!(-1)).is_err());
        assert!(Percent::parse(&json!(100.01)).is_err());
        assert!(Percent::parse(&json!("5")).is_err());
    }

    #[test]
    fn percent_of_rounds_half_up_to_the_cent() {
        let five = Percent::from_basis_points(500).unwrap();
        assert_eq!(five.of(10), 1); // 0.5 → 1
        assert_eq!(five.of(9), 0); // 0.45 → 0
        assert_eq!(five.of(360_000), 18_000);
        let third = Percent::from_basis_points(3333).unwrap();
        assert_eq!(third.of(100), 33); // 33.33 → 33
        assert_eq!(third.of(150), 50); // 49.995 → 50
        let all = Percent::from_basis_points(10_000).unwrap();
        assert_eq!(all.of(1_000_000_000_000), 1_000_000_000_000);
    }

    #[test]
    fn percent_serializes_as_the_number_clients_sent() {
        let p = Percent::from_basis_points(1250).unwrap();
        assert_eq!(serde_json::to_value(p).unwrap(), json!(12.5));
        let p = Percent::from_basis_points(500).unwrap();
        assert_eq!(serde_json::to_value(p).unwrap(), json!(5));
        let back: Percent = serde_json::from_value(json!(12.5)).unwrap();
        assert_eq!(back.basis_points(), 1250);
    }
}
