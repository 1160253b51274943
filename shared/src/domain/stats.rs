//! The statistics behind experiment results, with no dependencies: special
//! functions (log-gamma, regularized incomplete gamma and beta), the normal,
//! Student t and chi-square distributions, and the tests built on them.
//!
//! Every function is checked to 1e-6 against SciPy in
//! `shared/tests/fixtures/stats_reference.json` (made by
//! `infra/stats_reference.py`); see docs/experiments.md for the methods.

use std::f64::consts::PI;

const EPS: f64 = 1e-15;
const TINY: f64 = 1e-300;
const MAX_ITER: usize = 10_000;

/// ln Γ(x) for x > 0: Lanczos (g = 7, n = 9), about 15 significant digits;
/// reflection below 0.5.
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularized lower incomplete gamma P(a, x).
pub fn gamma_p(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x < a + 1.0 {
        gamma_series(a, x)
    } else {
        1.0 - gamma_continued_fraction(a, x)
    }
}

/// Regularized upper incomplete gamma Q(a, x) = 1 − P(a, x), computed directly in
/// the tail so small p-values keep their relative precision.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < a + 1.0 {
        1.0 - gamma_series(a, x)
    } else {
        gamma_continued_fraction(a, x)
    }
}

fn gamma_prefix(a: f64, x: f64) -> f64 {
    (-x + a * x.ln() - ln_gamma(a)).exp()
}

fn gamma_series(a: f64, x: f64) -> f64 {
    let mut ap = a;
    let mut term = 1.0 / a;
    let mut sum = term;
    for _ in 0..MAX_ITER {
        ap += 1.0;
        term *= x / ap;
        sum += term;
        if term.abs() < sum.abs() * EPS {
            break;
        }
    }
    sum * gamma_prefix(a, x)
}

/// Lentz's method for the continued fraction of Q(a, x).
fn gamma_continued_fraction(a: f64, x: f64) -> f64 {
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..MAX_ITER {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + an / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < EPS {
            break;
        }
    }
    gamma_prefix(a, x) * h
}

/// Regularized incomplete beta I_x(a, b).
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The continued fraction converges fast on this side of the mean; use the
    // symmetry I_x(a, b) = 1 − I_{1−x}(b, a) on the other.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..MAX_ITER {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// Standard normal upper tail P(Z > z), via erfc(z/√2) = Q(1/2, z²/2), which keeps
/// relative precision far into the tail.
pub fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    let tail = 0.5 * gamma_q(0.5, z * z / 2.0);
    if z >= 0.0 {
        tail
    } else {
        1.0 - tail
    }
}

pub fn normal_cdf(z: f64) -> f64 {
    normal_sf(-z)
}

pub fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * PI).sqrt()
}

/// The z with Φ(z) = p: Acklam's rational approximation (relative error about
/// 1e-9), polished with Halley steps on the exact CDF to full precision.
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    const LOW: f64 = 0.024_25;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let mut x = if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    };
    for _ in 0..3 {
        let e = normal_cdf(x) - p;
        let u = e * (2.0 * PI).sqrt() * (x * x / 2.0).exp();
        x -= u / (1.0 + x * u / 2.0);
    }
    x
}

/// Student t CDF with `df` (real, > 0) degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * beta_inc(df / 2.0, 0.5, df / (df + t * t));
    if t > 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// P(|T| ≥ |t|), computed without the 1 − x cancellation.
pub fn student_t_two_sided(t: f64, df: f64) -> f64 {
    beta_inc(df / 2.0, 0.5, df / (df + t * t)).min(1.0)
}

/// Chi-square survival P(X ≥ x) with `k` degrees of freedom.
pub fn chi_square_sf(x: f64, k: f64) -> f64 {
    gamma_q(k / 2.0, x / 2.0)
}

/// The two-sided critical z for a confidence level in percent (95 → 1.959964).
pub fn z_for_confidence(confidence_percent: f64) -> f64 {
    normal_quantile(1.0 - (1.0 - confidence_percent / 100.0) / 2.0)
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
}

/// Wilson score interval for `successes` out of `n`. With no trials there is no
/// information: [0, 1].
pub fn wilson(successes: u64, n: u64, z: f64) -> Interval {
    if n == 0 {
        return Interval { lower: 0.0, upper: 1.0 };
    }
    let n = n as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = z / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Interval { lower: (centre - half).max(0.0), upper: (centre + half).min(1.0) }
}

/// Pooled two-proportion z-test of b against a: (z, two-sided p). `None` when a
/// side has no trials or the pooled variance is zero (all or no successes).
pub fn two_proportion_z(xa: u64, na: u64, xb: u64, nb: u64) -> Option<(f64, f64)> {
    if na == 0 || nb == 0 {
        return None;
    }
    let (na_f, nb_f) = (na as f64, nb as f64);
    let pooled = (xa + xb) as f64 / (na_f + nb_f);
    let se = (pooled * (1.0 - pooled) * (1.0 / na_f + 1.0 / nb_f)).sqrt();
    if se == 0.0 || !se.is_finite() {
        return None;
    }
    let z = (xb as f64 / nb_f - xa as f64 / na_f) / se;
    Some((z, 2.0 * normal_sf(z.abs())))
}

/// Count, mean and unbiased variance of one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    pub n: f64,
    pub mean: f64,
    pub variance: f64,
}

impl Moments {
    /// From a count, sum and sum of squares, in exact integer arithmetic where it
    /// fits (no cancellation in n·Σx² − (Σx)²).
    pub fn from_sums(n: u64, sum: i128, sum_sq: i128) -> Self {
        if n == 0 {
            return Self { n: 0.0, mean: 0.0, variance: 0.0 };
        }
        let nf = n as f64;
        let mean = sum as f64 / nf;
        let variance = if n < 2 {
            0.0
        } else {
            match (i128::from(n)).checked_mul(sum_sq).and_then(|a| sum.checked_mul(sum).map(|b| a - b)) {
                Some(num) => num.max(0) as f64 / (nf * (nf - 1.0)),
                None => ((sum_sq as f64 - nf * mean * mean) / (nf - 1.0)).max(0.0),
            }
        };
        Self { n: nf, mean, variance }
    }
}

/// Welch's unequal-variance t-test of b against a: (t, df, two-sided p).
pub fn welch(a: Moments, b: Moments) -> Option<(f64, f64, f64)> {
    if a.n < 2.0 || b.n < 2.0 {
        return None;
    }
    let (va, vb) = (a.variance / a.n, b.variance / b.n);
    let se2 = va + vb;
    if se2 <= 0.0 || !se2.is_finite() {
        return None;
    }
    let t = (b.mean - a.mean) / se2.sqrt();
    let df = se2 * se2 / (va * va / (a.n - 1.0) + vb * vb / (b.n - 1.0));
    Some((t, df, student_t_two_sided(t, df)))
}

/// Pearson chi-square goodness of fit of observed counts to expected shares
/// (any positive weights): (statistic, p). The sample-ratio-mismatch check.
pub fn chi_square_fit(observed: &[u64], weights: &[f64]) -> Option<(f64, f64)> {
    let total: u64 = observed.iter().sum();
    let weight_sum: f64 = weights.iter().sum();
    if total == 0 || observed.len() != weights.len() || observed.len() < 2 || weight_sum <= 0.0 {
        return None;
    }
    let mut statistic = 0.0;
    for (o, w) in observed.iter().zip(weights) {
        let expected = total as f64 * w / weight_sum;
        if expected <= 0.0 {
            return None;
        }
        statistic += (*o as f64 - expected).powi(2) / expected;
    }
    Some((statistic, chi_square_sf(statistic, (observed.len() - 1) as f64)))
}

/// Participants per variant to detect a relative lift `mde` (0.1 = +10%) over a
/// baseline conversion rate with a two-sided test at `alpha` and `power`:
/// n = (z₁₋α/₂·√(2p̄(1−p̄)) + z_power·√(p₁(1−p₁)+p₂(1−p₂)))² / (p₂−p₁)².
pub fn sample_size_proportion(baseline: f64, mde: f64, alpha: f64, power: f64) -> Option<u64> {
    let p1 = baseline;
    let p2 = baseline * (1.0 + mde);
    if !(p1 > 0.0 && p1 < 1.0 && p2 > 0.0 && p2 < 1.0) || mde == 0.0 {
        return None;
    }
    let za = normal_quantile(1.0 - alpha / 2.0);
    let zb = normal_quantile(power);
    let pbar = (p1 + p2) / 2.0;
    let n = (za * (2.0 * pbar * (1.0 - pbar)).sqrt() + zb * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt()).powi(2)
        / (p2 - p1).powi(2);
    Some(n.ceil() as u64)
}

/// Participants per variant to detect a relative lift `mde` of a mean with
/// standard deviation `sd`: n = 2(z₁₋α/₂ + z_power)²σ² / δ², δ = mde·mean.
pub fn sample_size_mean(mean: f64, sd: f64, mde: f64, alpha: f64, power: f64) -> Option<u64> {
    let delta = (mean * mde).abs();
    if delta == 0.0 || sd <= 0.0 || !delta.is_finite() {
        return None;
    }
    let z = normal_quantile(1.0 - alpha / 2.0) + normal_quantile(power);
    Some((2.0 * z * z * sd * sd / (delta * delta)).ceil() as u64)
}

/// GrowthBook's default sequential tuning parameter N*: the total sample size at
/// which the confidence sequence is tightest.
pub const SEQUENTIAL_TUNING: f64 = 5_000.0;

/// An always-valid confidence sequence for an effect (GrowthBook's Generalized
/// Anytime-Valid Inference, the asymptotic confidence sequence of Waudby-Smith
/// et al.): halfwidth = √(s²) · √(2(Nρ²+1)/(N²ρ²) · ln(√(Nρ²+1)/α)), where
/// s² = N·Var(effect), N the total sample, ρ = √((−2 ln α + ln(−2 ln α + 1))/N*).
/// Also the always-valid p-value: the smallest α' at which the sequence (with ρ
/// tuned at α) excludes zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sequential {
    pub interval: Interval,
    pub p_value: f64,
}

pub fn sequential(effect: f64, variance: f64, n_total: f64, alpha: f64, tuning: f64) -> Option<Sequential> {
    if variance <= 0.0 || n_total <= 0.0 || !variance.is_finite() || !(0.0..1.0).contains(&alpha) {
        return None;
    }
    let rho2 = (-2.0 * alpha.ln() + (-2.0 * alpha.ln() + 1.0).ln()) / tuning;
    let s2 = variance * n_total;
    let factor = 2.0 * (n_total * rho2 + 1.0) / (n_total * n_total * rho2);
    let root = (n_total * rho2 + 1.0).sqrt();
    let half = (s2 * factor * (root / alpha).ln()).sqrt();
    let p_value = (root * (-effect * effect / (s2 * factor)).exp()).min(1.0);
    Some(Sequential { interval: Interval { lower: effect - half, upper: effect + half }, p_value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert!((normal_cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-12);
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-12);
        assert!((ln_gamma(0.5) - PI.sqrt().ln()).abs() < 1e-13);
        assert!((ln_gamma(10.0) - 362_880f64.ln()).abs() < 1e-12);
        assert!((chi_square_sf(3.841_458_820_694_124, 1.0) - 0.05).abs() < 1e-12);
        assert!((student_t_cdf(2.228_138_851_986_274, 10.0) - 0.975).abs() < 1e-12);
    }

    #[test]
    fn quantile_inverts_cdf_across_the_range() {
        for p in [1e-12, 1e-6, 0.001, 0.0242, 0.0243, 0.3, 0.5, 0.9, 0.9999, 1.0 - 1e-9] {
            let z = normal_quantile(p);
            let back = normal_cdf(z);
            assert!((back - p).abs() <= 1e-12_f64.max(p * 1e-10), "{p} {z} {back}");
        }
    }

    #[test]
    fn degenerate_inputs_have_no_test() {
        assert_eq!(two_proportion_z(0, 0, 1, 10), None);
        assert_eq!(two_proportion_z(0, 10, 0, 10), None);
        assert_eq!(wilson(0, 0, 1.96), Interval { lower: 0.0, upper: 1.0 });
        let one = Moments::from_sums(1, 5, 25);
        assert_eq!(welch(one, one), None);
        assert_eq!(chi_square_fit(&[0, 0], &[50.0, 50.0]), None);
        assert_eq!(sample_size_proportion(0.0, 0.1, 0.05, 0.8), None);
    }

    /// Every case of the SciPy table (infra/stats_reference.py) to 1e-6; p-values
    /// below 1e-6 also to 1e-6 relative, so tails are not waved through.
    #[test]
    fn matches_the_scipy_reference_table() {
        let table: serde_json::Value =
            serde_json::from_str(include_str!("../../fixtures/stats_reference.json")).expect("fixture parses");
        let rows = |name: &str| table[name].as_array().expect(name).clone();
        let f = |v: &serde_json::Value| v.as_f64().expect("number");
        let close = |got: f64, want: f64, what: &str| {
            let diff = (got - want).abs();
            let ok = diff <= 1e-6 && (want.abs() >= 1e-6 || diff <= (1e-6 * want.abs()).max(1e-14));
            assert!(ok, "{what}: got {got}, want {want}");
        };
        for r in rows("normal_cdf") {
            close(normal_cdf(f(&r[0])), f(&r[1]), &format!("normal_cdf {r}"));
        }
        for r in rows("normal_sf") {
            close(normal_sf(f(&r[0])), f(&r[1]), &format!("normal_sf {r}"));
        }
        for r in rows("normal_quantile") {
            close(normal_quantile(f(&r[0])), f(&r[1]), &format!("normal_quantile {r}"));
        }
        for r in rows("t_cdf") {
            close(student_t_cdf(f(&r[0]), f(&r[1])), f(&r[2]), &format!("t_cdf {r}"));
        }
        for r in rows("chi2_sf") {
            close(chi_square_sf(f(&r[0]), f(&r[1])), f(&r[2]), &format!("chi2_sf {r}"));
        }
        for r in rows("wilson") {
            let ci = wilson(r[0].as_u64().unwrap(), r[1].as_u64().unwrap(), z_for_confidence(f(&r[2])));
            close(ci.lower, f(&r[3]), &format!("wilson lower {r}"));
            close(ci.upper, f(&r[4]), &format!("wilson upper {r}"));
        }
        for r in rows("ztest") {
            let u = |i: usize| r[i].as_u64().unwrap();
            let (z, p) = two_proportion_z(u(0), u(1), u(2), u(3)).expect("a test");
            close(z, f(&r[4]), &format!("z {r}"));
            close(p, f(&r[5]), &format!("z p {r}"));
        }
        for r in rows("welch") {
            let i = |k: usize| r[k].as_i64().unwrap() as i128;
            let a = Moments::from_sums(r[0].as_u64().unwrap(), i(1), i(2));
            let b = Moments::from_sums(r[3].as_u64().unwrap(), i(4), i(5));
            let (t, _, p) = welch(a, b).expect("a test");
            // SciPy's statistic is a − b; ours is challenger minus control, b − a.
            close(t, -f(&r[6]), &format!("welch t {r}"));
            close(p, f(&r[7]), &format!("welch p {r}"));
        }
        for r in rows("srm") {
            let observed: Vec<u64> = r[0].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
            let weights: Vec<f64> = r[1].as_array().unwrap().iter().map(f).collect();
            let (stat, p) = chi_square_fit(&observed, &weights).expect("a test");
            close(stat, f(&r[2]), &format!("srm statistic {r}"));
            close(p, f(&r[3]), &format!("srm p {r}"));
        }
        for r in rows("sample_size_proportion") {
            let n = sample_size_proportion(f(&r[0]), f(&r[1]), f(&r[2]), f(&r[3]));
            assert_eq!(n, r[4].as_u64(), "{r}");
        }
        for r in rows("sample_size_mean") {
            let n = sample_size_mean(f(&r[0]), f(&r[1]), f(&r[2]), f(&r[3]), f(&r[4]));
            assert_eq!(n, r[5].as_u64(), "{r}");
        }
        for r in rows("sequential") {
            let s = sequential(f(&r[0]), f(&r[1]), f(&r[2]), f(&r[3]), SEQUENTIAL_TUNING).expect("a sequence");
            close(s.interval.lower, f(&r[4]), &format!("sequential lower {r}"));
            close(s.interval.upper, f(&r[5]), &format!("sequential upper {r}"));
            close(s.p_value, f(&r[6]), &format!("sequential p {r}"));
        }
    }
}
