//! Price elasticity of demand per tier (seed 004 `calculatePriceElasticity`,
//! `analyzePricingSensitivity`) and the pricing recommendations it supports
//! (`OptimizationRecommendation`). docs/intelligence.md states the methods.
//!
//! Evidence comes from two places Tierdesk has:
//! - a finished pricing experiment: each variant's price and its conversion rate.
//!   Elasticity is the slope of log conversion rate on log price, by weighted least
//!   squares with each variant weighted by the inverse of its delta-method variance
//!   `(1 − r) ÷ (n·r)`;
//! - a past list-price change: new paying customers a month on the tier in up to six
//!   complete months before and after. Elasticity is `ln(q₂/q₁) ÷ ln(p₂/p₁)` with a
//!   Poisson variance `1/S₁ + 1/S₂` for the log ratio of the counts. This assumes
//!   nothing else changed between the two windows, which the docs say plainly.
//!
//! Several pieces of evidence for one tier are pooled by inverse variance. Nothing
//! here reads a clock or the table.

use crate::domain::stats::z_for_confidence;
use serde::{Deserialize, Serialize};

/// Confidence level of every interval here, percent.
pub const CONFIDENCE: f64 = 95.0;
/// Months each side of a price change.
pub const WINDOW_MONTHS: usize = 6;
/// Fewer months on a side and the change is not used.
pub const MIN_WINDOW_MONTHS: usize = 3;

/// One price an experiment tested and what it converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PricePoint {
    /// Monthly price, cents.
    pub price: i64,
    pub participants: u64,
    pub conversions: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentEvidence {
    pub experiment_id: String,
    pub name: String,
    pub points: Vec<PricePoint>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PriceChangeEvidence {
    pub price_version: u32,
    pub from_price: i64,
    pub to_price: i64,
    /// The first month at the new price.
    pub month: String,
    /// New paying customers a month, before and after.
    pub before: Vec<u64>,
    pub after: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    Experiment,
    PriceChange,
}

/// One estimate from one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    pub kind: EvidenceKind,
    pub source_id: String,
    pub description: String,
    pub elasticity: f64,
    pub standard_error: f64,
    pub observations: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Band {
    pub value: f64,
    pub lower: f64,
    pub upper: f64,
}

/// The tier's elasticity (`ElasticityAnalysis`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElasticityEstimate {
    pub tier_id: String,
    pub elasticity: f64,
    pub standard_error: f64,
    pub confidence_interval: Band,
    pub level: f64,
    pub method: String,
    pub evidence: Vec<Evidence>,
}

fn round_to(v: f64, places: i32) -> f64 {
    let k = 10f64.powi(places);
    (v * k).round() / k
}

/// Weighted least squares of ln(rate) on ln(price) over the experiment's prices.
pub fn from_experiment(e: &ExperimentEvidence) -> Option<Evidence> {
    // Variants at one price are one observation of that price.
    let mut by_price: Vec<PricePoint> = Vec::new();
    for p in &e.points {
        match by_price.iter_mut().find(|q| q.price == p.price) {
            Some(q) => {
                q.participants += p.participants;
                q.conversions += p.conversions;
            }
            None => by_price.push(*p),
        }
    }
    let obs: Vec<(f64, f64, f64)> = by_price
        .iter()
        .filter(|p| p.price > 0 && p.conversions > 0 && p.conversions < p.participants)
        .map(|p| {
            let r = p.conversions as f64 / p.participants as f64;
            let weight = p.participants as f64 * r / (1.0 - r);
            ((p.price as f64).ln(), r.ln(), weight)
        })
        .collect();
    if obs.len() < 2 {
        return None;
    }
    let w: f64 = obs.iter().map(|o| o.2).sum();
    let x_bar = obs.iter().map(|o| o.2 * o.0).sum::<f64>() / w;
    let y_bar = obs.iter().map(|o| o.2 * o.1).sum::<f64>() / w;
    let sxx: f64 = obs.iter().map(|o| o.2 * (o.0 - x_bar).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = obs.iter().map(|o| o.2 * (o.0 - x_bar) * (o.1 - y_bar)).sum::<f64>() / sxx;
    let prices: Vec<String> = by_price.iter().map(|p| crate::domain::money::format_amount(p.price, "usd")).collect();
    Some(Evidence {
        kind: EvidenceKind::Experiment,
        source_id: e.experiment_id.clone(),
        description: format!("experiment \"{}\": conversion at {}", e.name, prices.join(", ")),
        elasticity: slope,
        standard_error: (1.0 / sxx).sqrt(),
        observations: by_price.iter().map(|p| p.participants).sum(),
    })
}

/// Before and after a list-price change.
pub fn from_price_change(c: &PriceChangeEvidence) -> Option<Evidence> {
    if c.before.len() < MIN_WINDOW_MONTHS || c.after.len() < MIN_WINDOW_MONTHS {
        return None;
    }
    if c.from_price <= 0 || c.to_price <= 0 || c.from_price == c.to_price {
        return None;
    }
    let (s1, s2) = (c.before.iter().sum::<u64>(), c.after.iter().sum::<u64>());
    if s1 == 0 || s2 == 0 {
        return None;
    }
    let q1 = s1 as f64 / c.before.len() as f64;
    let q2 = s2 as f64 / c.after.len() as f64;
    let log_price = (c.to_price as f64 / c.from_price as f64).ln();
    Some(Evidence {
        kind: EvidenceKind::PriceChange,
        source_id: format!("price-version-{}", c.price_version),
        description: format!(
            "list price {} → {} in {}: {:.1} → {:.1} new paying customers a month ({} months before, {} after)",
            crate::domain::money::format_amount(c.from_price, "usd"),
            crate::domain::money::format_amount(c.to_price, "usd"),
            c.month,
            q1,
            q2,
            c.before.len(),
            c.after.len()
        ),
        elasticity: (q2 / q1).ln() / log_price,
        standard_error: (1.0 / s1 as f64 + 1.0 / s2 as f64).sqrt() / log_price.abs(),
        observations: s1 + s2,
    })
}

/// The evidence pooled by inverse variance; `None` without any.
pub fn pool(tier_id: &str, evidence: Vec<Evidence>) -> Option<ElasticityEstimate> {
    let usable: Vec<Evidence> =
        evidence.into_iter().filter(|e| e.standard_error.is_finite() && e.standard_error > 0.0).collect();
    if usable.is_empty() {
        return None;
    }
    let weights: Vec<f64> = usable.iter().map(|e| 1.0 / e.standard_error.powi(2)).collect();
    let total: f64 = weights.iter().sum();
    let e = usable.iter().zip(&weights).map(|(e, w)| e.elasticity * w).sum::<f64>() / total;
    let se = (1.0 / total).sqrt();
    let z = z_for_confidence(CONFIDENCE);
    let method = match usable.len() {
        1 => match usable[0].kind {
            EvidenceKind::Experiment => "log-log weighted least squares over the experiment's prices".to_string(),
            EvidenceKind::PriceChange => "before/after the price change, Poisson counts".to_string(),
        },
        n => format!("{n} estimates pooled by inverse variance"),
    };
    Some(ElasticityEstimate {
        tier_id: tier_id.to_string(),
        elasticity: round_to(e, 3),
        standard_error: round_to(se, 3),
        confidence_interval: Band {
            value: round_to(e, 3),
            lower: round_to(e - z * se, 3),
            upper: round_to(e + z * se, 3),
        },
        level: CONFIDENCE / 100.0,
        method,
        evidence: usable,
    })
}

// ---- Gathering the evidence -------------------------------------------------------

/// One list price a tier had, from its price history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceHistoryEntry {
    pub version: u32,
    /// Monthly price, cents.
    pub monthly: i64,
    /// RFC 3339 or `YYYY-MM-DD`: the first 10 characters are the day.
    pub effective_from: String,
}

/// The monthly list price in force on `day` (`YYYY-MM-DD`): the newest version
/// effective by then, else `current`.
pub fn price_on(history: &[PriceHistoryEntry], day: &str, current: i64) -> i64 {
    history
        .iter()
        .filter(|h| h.effective_from.get(..10).is_some_and(|d| d <= day))
        .max_by_key(|h| h.version)
        .map_or(current, |h| h.monthly)
}

/// A finished experiment's prices and conversions: each variant at its own monthly
/// price, a variant without one at the tier's price when the experiment started.
/// Counts come from the results recorded when it ended, else from its counters.
pub fn experiment_evidence(
    exp: &crate::domain::experiment::Experiment,
    counts: &[(String, crate::domain::experiment::Counts)],
    history: &[PriceHistoryEntry],
    current_monthly: i64,
) -> ExperimentEvidence {
    let started = exp.start_date.clone().unwrap_or_else(|| exp.created_at.clone());
    let base = price_on(history, started.get(..10).unwrap_or(""), current_monthly);
    let points = exp
        .variants
        .iter()
        .map(|v| {
            let (participants, conversions) = match &exp.final_results {
                Some(f) => f
                    .variants
                    .iter()
                    .find(|x| x.variant_id == v.variant_id)
                    .map_or((0, 0), |x| (x.participants, x.conversions)),
                None => counts
                    .iter()
                    .find(|(id, _)| id == &v.variant_id)
                    .map_or((0, 0), |(_, c)| (c.participants, c.conversions)),
            };
            PricePoint { price: v.pricing.monthly.unwrap_or(base), participants, conversions }
        })
        .collect();
    ExperimentEvidence { experiment_id: exp.experiment_id.clone(), name: exp.name.clone(), points }
}

/// Every list-price change of a tier with its new paying customers a month before
/// and after, from `paying_in(month)` over the complete `months` the aggregates
/// cover (oldest first). The month a change happened in is on neither side.
pub fn price_changes(
    history: &[PriceHistoryEntry],
    months: &[String],
    paying_in: impl Fn(&str) -> u64,
) -> Vec<PriceChangeEvidence> {
    let mut sorted: Vec<&PriceHistoryEntry> = history.iter().collect();
    sorted.sort_by_key(|h| h.version);
    let month_of = |h: &PriceHistoryEntry| h.effective_from.get(..7).unwrap_or("").to_string();
    let mut out = Vec::new();
    for (k, pair) in sorted.windows(2).enumerate() {
        let (old, new) = (pair[0], pair[1]);
        if old.monthly == new.monthly {
            continue;
        }
        let (from, at) = (month_of(old), month_of(new));
        let until = sorted.get(k + 2).map(|h| month_of(h));
        let before: Vec<u64> =
            months.iter().filter(|m| **m > from && **m < at).rev().take(WINDOW_MONTHS).map(|m| paying_in(m)).collect();
        let after: Vec<u64> = months
            .iter()
            .filter(|m| **m > at && until.as_ref().is_none_or(|u| *m < u))
            .take(WINDOW_MONTHS)
            .map(|m| paying_in(m))
            .collect();
        out.push(PriceChangeEvidence {
            price_version: new.version,
            from_price: old.monthly,
            to_price: new.monthly,
            month: at,
            before,
            after,
        });
    }
    out
}

/// What the daily job stores: each tier's estimate, or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElasticityReport {
    pub as_of: String,
    pub estimates: Vec<ElasticityEstimate>,
    pub without_estimate: Vec<NoEstimate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoEstimate {
    pub tier_id: String,
    pub reason: String,
}

pub const NO_EVIDENCE: &str = "no finished pricing experiment with two or more prices that converted, and no list-price change with three or more months of sales on each side";

// ---- Recommendations ---------------------------------------------------------------

/// The price step a recommendation proposes, percent.
pub const STEP_PERCENT: i64 = 10;
/// The months the expected MRR impact is measured over.
pub const IMPACT_MONTHS: i64 = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecommendationStatus {
    Open,
    Accepted,
    Dismissed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MoneyBand {
    pub value: i64,
    pub lower: i64,
    pub upper: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedImpact {
    /// MRR change after `horizonMonths`, cents.
    pub mrr: MoneyBand,
    /// Change of new paying customers a month, percent.
    pub conversions: Band,
    /// Not estimated: Tierdesk has no evidence of churn's response to price yet.
    pub churn: Option<Band>,
    pub horizon_months: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RiskAssessment {
    pub level: RiskLevel,
    pub factors: Vec<String>,
}

/// Seed 004 `OptimizationRecommendation`, type `pricing`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub recommendation_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub tier_id: String,
    pub description: String,
    pub current_price: i64,
    pub proposed_price: i64,
    pub change_percent: i64,
    pub expected_impact: ExpectedImpact,
    pub implementation_complexity: String,
    pub risk_assessment: RiskAssessment,
    pub elasticity: ElasticityEstimate,
    pub status: RecommendationStatus,
    pub created_at: String,
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub decided_at: Option<String>,
    /// The draft experiment accepting it created.
    #[serde(default)]
    pub experiment_id: Option<String>,
    pub version: u64,
}

/// What a recommendation needs to know about its tier now.
#[derive(Debug, Clone, PartialEq)]
pub struct TierNow {
    pub tier_id: String,
    pub name: String,
    /// Monthly list price, cents.
    pub price: i64,
    pub mrr: i64,
    pub subscribers: i64,
    pub new_mrr_per_month: i64,
}

/// MRR change after `IMPACT_MONTHS` for a price change `x` (fraction) at elasticity
/// `e`: the base repriced, and new customers' volume moved by `e·x` a month.
fn mrr_change(t: &TierNow, x: f64, e: f64) -> i64 {
    (t.mrr as f64 * x + IMPACT_MONTHS as f64 * t.new_mrr_per_month as f64 * (1.0 + x) * e * x).round() as i64
}

/// A recommendation when the interval says on which side of unit elasticity the
/// tier is: wholly above −1 (inelastic: a rise earns more than it loses) proposes
/// +10%; wholly below −1 (elastic) proposes −10%. Straddling −1 is inconclusive and
/// proposes nothing. The proposed price is rounded to the whole currency unit, half
/// up (for a currency with cents), and nothing is proposed when that rounds back to
/// the current price.
pub fn recommend(est: &ElasticityEstimate, t: &TierNow, created_at: &str) -> Option<Recommendation> {
    let ci = est.confidence_interval;
    let step = if ci.lower > -1.0 {
        STEP_PERCENT
    } else if ci.upper < -1.0 {
        -STEP_PERCENT
    } else {
        return None;
    };
    if t.price <= 0 {
        return None;
    }
    let proposed = (t.price * (100 + step) + 5_000) / 10_000 * 100;
    // A price so small that the step rounds back to it: nothing to test.
    if proposed == t.price {
        return None;
    }
    let x = step as f64 / 100.0;
    let (a, b) = (mrr_change(t, x, ci.lower), mrr_change(t, x, ci.upper));
    let conv = |e: f64| round_to(100.0 * e * x, 2);
    let (ca, cb) = (conv(ci.lower), conv(ci.upper));
    let mut factors = vec![
        format!("{} current subscribers would pay the new price at renewal unless grandfathered", t.subscribers),
        "Churn's response to the price is not measured; it is assumed unchanged".to_string(),
    ];
    let width = ci.upper - ci.lower;
    let observations: u64 = est.evidence.iter().map(|e| e.observations).sum();
    let level = if width > 2.0 || observations < 500 {
        factors.push(format!("Thin evidence: {observations} observations, interval {:.2} wide", width));
        RiskLevel::High
    } else if est.evidence.len() == 1 {
        factors.push("A single source of evidence".to_string());
        RiskLevel::Medium
    } else {
        RiskLevel::Low
    };
    let direction = if step > 0 { "up" } else { "down" };
    Some(Recommendation {
        recommendation_id: format!("rec_{}_{direction}_{proposed}", t.tier_id),
        kind: "pricing".into(),
        tier_id: t.tier_id.clone(),
        description: format!(
            "Test {} at {} a month ({:+}%): its elasticity is {:.2} ({:.2} to {:.2}), so a {} should raise revenue",
            t.name,
            crate::domain::money::format_amount(proposed, "usd"),
            step,
            est.elasticity,
            ci.lower,
            ci.upper,
            if step > 0 {
                "higher price loses fewer customers than it gains in price"
            } else {
                "lower price wins more customers than it gives up in price"
            }
        ),
        current_price: t.price,
        proposed_price: proposed,
        change_percent: step,
        expected_impact: ExpectedImpact {
            mrr: MoneyBand { value: mrr_change(t, x, est.elasticity), lower: a.min(b), upper: a.max(b) },
            conversions: Band { value: conv(est.elasticity), lower: ca.min(cb), upper: ca.max(cb) },
            churn: None,
            horizon_months: IMPACT_MONTHS,
        },
        implementation_complexity: "low".into(),
        risk_assessment: RiskAssessment { level, factors },
        elasticity: est.clone(),
        status: RecommendationStatus::Open,
        created_at: created_at.to_string(),
        decided_by: None,
        decided_at: None,
        experiment_id: None,
        version: 1,
    })
}

impl crate::domain::audit::Audited for Recommendation {
    const ENTITY_TYPE: &'static str = "recommendation";
    fn entity_id(&self) -> &str {
        &self.recommendation_id
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecommendationError {
    #[error("recommendation not found")]
    NotFound,
    #[error("the recommendation was already {0}")]
    AlreadyDecided(&'static str),
}

fn status_word(s: RecommendationStatus) -> &'static str {
    match s {
        RecommendationStatus::Open => "open",
        RecommendationStatus::Accepted => "accepted",
        RecommendationStatus::Dismissed => "dismissed",
    }
}

/// The id of the draft experiment accepting `r` creates: derived from the
/// recommendation, so a retried or concurrent acceptance names the same one.
pub fn draft_experiment_id(recommendation_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(recommendation_id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("exp_{}", &hex[..26])
}

impl Recommendation {
    fn decided(&self, status: RecommendationStatus, by: &crate::domain::actor::Actor) -> Self {
        Self {
            status,
            decided_by: Some(by.id.clone()),
            decided_at: Some(by.at.clone()),
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// Open → accepted, naming the draft experiment.
    pub fn accept(&self, by: &crate::domain::actor::Actor) -> Result<Self, RecommendationError> {
        match self.status {
            RecommendationStatus::Open => {
                let mut out = self.decided(RecommendationStatus::Accepted, by);
                out.experiment_id = Some(draft_experiment_id(&self.recommendation_id));
                Ok(out)
            }
            other => Err(RecommendationError::AlreadyDecided(status_word(other))),
        }
    }

    /// Open → dismissed.
    pub fn dismiss(&self, by: &crate::domain::actor::Actor) -> Result<Self, RecommendationError> {
        match self.status {
            RecommendationStatus::Open => Ok(self.decided(RecommendationStatus::Dismissed, by)),
            other => Err(RecommendationError::AlreadyDecided(status_word(other))),
        }
    }
}

/// The draft experiment accepting a recommendation creates: the current price
/// against the proposed one, half the visitors each, through the normal experiment
/// validation (and, when started and won, the normal constraints and approval).
pub fn draft_experiment_body(r: &Recommendation) -> serde_json::Value {
    serde_json::json!({
        "name": format!("{} at {}", r.tier_id, crate::domain::money::format_amount(r.proposed_price, "usd")),
        "description": r.description,
        "hypothesis": format!(
            "Elasticity {:.2} ({:.2} to {:.2}) predicts an MRR change of {} after {} months",
            r.elasticity.elasticity,
            r.elasticity.confidence_interval.lower,
            r.elasticity.confidence_interval.upper,
            crate::domain::money::format_amount(r.expected_impact.mrr.value, "usd"),
            r.expected_impact.horizon_months
        ),
        "targetTier": r.tier_id,
        "primaryMetric": "revenue",
        "variants": [
            {"variantId": "control", "name": "Current price", "isControl": true, "allocation": 50},
            {"variantId": "proposed", "name": "Recommended price", "isControl": false, "allocation": 50,
             "pricing": {"monthly": r.proposed_price}},
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::forecast::tests::Noise;

    fn binomial(noise: &mut Noise, n: u64, p: f64) -> u64 {
        (0..n).filter(|_| noise.uniform() < p).count() as u64
    }

    fn poisson(noise: &mut Noise, lambda: f64) -> u64 {
        let (limit, mut k, mut prod) = ((-lambda).exp(), 0, noise.uniform());
        while prod > limit {
            k += 1;
            prod *= noise.uniform();
        }
        k
    }

    /// Conversion r(p) = 8% · (p / $100)^e, three prices, `n` visitors each.
    fn experiment_of(seed: u64, e: f64, n: u64) -> ExperimentEvidence {
        let mut noise = Noise::new(seed);
        let points = [9_000, 10_000, 11_500]
            .map(|price| {
                let r = 0.08 * (price as f64 / 10_000.0).powf(e);
                PricePoint { price, participants: n, conversions: binomial(&mut noise, n, r) }
            })
            .to_vec();
        ExperimentEvidence { experiment_id: format!("exp_{seed}"), name: "test".into(), points }
    }

    fn experiment(seed: u64, e: f64) -> ExperimentEvidence {
        experiment_of(seed, e, 3_000)
    }

    /// 20 new customers a month at $100, then `(p₂/p₁)^e` times as many at $120.
    fn price_change(seed: u64, e: f64) -> PriceChangeEvidence {
        let mut noise = Noise::new(seed);
        let after_rate = 20.0 * 1.2f64.powf(e);
        PriceChangeEvidence {
            price_version: 2,
            from_price: 10_000,
            to_price: 12_000,
            month: "2026-05".into(),
            before: (0..6).map(|_| poisson(&mut noise, 20.0)).collect(),
            after: (0..6).map(|_| poisson(&mut noise, after_rate)).collect(),
        }
    }

    fn covers(est: &ElasticityEstimate, truth: f64) -> bool {
        est.confidence_interval.lower <= truth && truth <= est.confidence_interval.upper
    }

    /// The done-means test: a known elasticity is recovered within the interval, and
    /// over many draws the 95% interval holds it about 95% of the time.
    #[test]
    fn a_known_elasticity_is_recovered_from_an_experiment() {
        let est = pool("gold", vec![from_experiment(&experiment_of(1, -1.5, 30_000)).unwrap()]).unwrap();
        assert!(covers(&est, -1.5), "{est:?}");
        assert!((est.elasticity + 1.5).abs() < 0.3 && est.standard_error < 0.15, "{est:?}");
        assert_eq!(est.method, "log-log weighted least squares over the experiment's prices");
        let hits = (1..=200)
            .filter(|s| covers(&pool("g", vec![from_experiment(&experiment(*s, -1.5)).unwrap()]).unwrap(), -1.5))
            .count();
        assert!((180..=198).contains(&hits), "95% intervals held the truth {hits}/200 times");
    }

    #[test]
    fn a_known_elasticity_is_recovered_from_a_price_change() {
        let hits = (1..=200)
            .filter(|s| covers(&pool("g", vec![from_price_change(&price_change(*s, -2.0)).unwrap()]).unwrap(), -2.0))
            .count();
        assert!((180..=198).contains(&hits), "95% intervals held the truth {hits}/200 times");
    }

    #[test]
    fn pooling_narrows_the_interval_and_names_the_method() {
        let a = from_experiment(&experiment(3, -1.5)).unwrap();
        let b = from_price_change(&price_change(3, -1.5)).unwrap();
        let one = pool("g", vec![a.clone()]).unwrap();
        let both = pool("g", vec![a, b]).unwrap();
        assert!(both.standard_error < one.standard_error);
        assert_eq!(both.method, "2 estimates pooled by inverse variance");
        assert_eq!(both.evidence.len(), 2);
    }

    #[test]
    fn evidence_that_cannot_identify_a_slope_is_not_used() {
        let flat = ExperimentEvidence {
            experiment_id: "e".into(),
            name: "one price".into(),
            points: vec![
                PricePoint { price: 100, participants: 50, conversions: 5 },
                PricePoint { price: 100, participants: 50, conversions: 7 },
            ],
        };
        assert!(from_experiment(&flat).is_none());
        let mut short = price_change(1, -1.0);
        short.after.truncate(2);
        assert!(from_price_change(&short).is_none());
        assert!(pool("g", vec![]).is_none());
    }

    fn tier_now() -> TierNow {
        TierNow {
            tier_id: "gold".into(),
            name: "Gold".into(),
            price: 360_000,
            mrr: 36_000_000,
            subscribers: 100,
            new_mrr_per_month: 1_080_000,
        }
    }

    fn estimate(e: f64, lower: f64, upper: f64) -> ElasticityEstimate {
        ElasticityEstimate {
            tier_id: "gold".into(),
            elasticity: e,
            standard_error: (upper - lower) / 3.92,
            confidence_interval: Band { value: e, lower, upper },
            level: 0.95,
            method: "m".into(),
            evidence: vec![Evidence {
                kind: EvidenceKind::Experiment,
                source_id: "exp".into(),
                description: "d".into(),
                elasticity: e,
                standard_error: 0.1,
                observations: 9_000,
            }],
        }
    }

    #[test]
    fn inelastic_demand_recommends_a_rise_with_its_impact_and_risk() {
        let r = recommend(&estimate(-0.5, -0.8, -0.2), &tier_now(), "2026-12-07T06:00:00Z").unwrap();
        assert_eq!((r.change_percent, r.proposed_price), (10, 396_000));
        assert_eq!(r.recommendation_id, "rec_gold_up_396000");
        // 36,000,000·0.1 + 12·1,080,000·1.1·(−0.5)·0.1 = 3,600,000 − 712,800.
        assert_eq!(r.expected_impact.mrr.value, 2_887_200);
        assert_eq!(r.expected_impact.mrr.lower, 3_600_000 - 1_140_480);
        assert_eq!(r.expected_impact.mrr.upper, 3_600_000 - 285_120);
        assert_eq!(r.expected_impact.conversions, Band { value: -5.0, lower: -8.0, upper: -2.0 });
        assert_eq!(r.risk_assessment.level, RiskLevel::Medium);
        assert!(r.risk_assessment.factors[0].starts_with("100 current subscribers"));
    }

    #[test]
    fn elastic_demand_recommends_a_cut_and_an_inconclusive_interval_nothing() {
        let r = recommend(&estimate(-2.0, -2.6, -1.4), &tier_now(), "t").unwrap();
        assert_eq!((r.change_percent, r.proposed_price), (-10, 324_000));
        assert!(recommend(&estimate(-1.0, -1.6, -0.4), &tier_now(), "t").is_none());
        let cheap = TierNow { price: 500, ..tier_now() };
        assert!(recommend(&estimate(-2.0, -2.6, -1.4), &cheap, "t").is_none(), "$5 − 10% rounds back to $5");
    }

    #[test]
    fn the_draft_experiment_passes_the_normal_validation() {
        let r = recommend(&estimate(-0.5, -0.8, -0.2), &tier_now(), "t").unwrap();
        let parsed = crate::domain::experiment::NewExperiment::parse(&draft_experiment_body(&r)).unwrap();
        assert_eq!(parsed.target_tier, "gold");
        assert_eq!(parsed.variants[1].pricing.monthly, Some(396_000));
    }

    fn entry(version: u32, monthly: i64, from: &str) -> PriceHistoryEntry {
        PriceHistoryEntry { version, monthly, effective_from: from.into() }
    }

    #[test]
    fn price_changes_take_whole_months_on_each_side_and_skip_the_change_month() {
        let history = [
            entry(1, 10_000, "2025-01-01T00:00:00Z"),
            entry(2, 10_000, "2025-03-01T00:00:00Z"),
            entry(3, 12_000, "2025-09-15T00:00:00Z"),
        ];
        let months: Vec<String> = (0..24).map(|i| crate::domain::forecast::month_plus("2025-01", i)).collect();
        let changes = price_changes(&history, &months, |m| m[5..].parse::<u64>().unwrap());
        // Version 2 kept the price: no change there.
        assert_eq!(changes.len(), 1);
        let c = &changes[0];
        assert_eq!((c.price_version, c.from_price, c.to_price, c.month.as_str()), (3, 10_000, 12_000, "2025-09"));
        // Before: April–August (March is v2's own month, September the change's).
        assert_eq!(c.before, vec![8, 7, 6, 5, 4]);
        // After: October onwards, six months.
        assert_eq!(c.after, vec![10, 11, 12, 1, 2, 3]);
        assert_eq!(price_on(&history, "2025-09-14", 1), 10_000);
        assert_eq!(price_on(&history, "2025-09-15", 1), 12_000);
        assert_eq!(price_on(&history, "2024-01-01", 7), 7);
    }
}
