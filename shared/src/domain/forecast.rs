//! Revenue forecasts (seed 004 `forecastRevenue`, `identifySeasonalPatterns`,
//! `generateScenarioModeling`): month-end MRR per tier and in total, from the
//! monthly aggregates analytics already keeps (docs/intelligence.md).
//!
//! The models are Grafana's `augurs`: automatic ETS (Hyndman's state-space
//! exponential smoothing, the model picked by AICc) for a series with trend, and
//! MSTL (seasonal-trend decomposition by LOESS, period 12) with ETS on the
//! deseasonalised series once two full years exist. Which of the two forecasts a
//! series is decided by a rolling-origin backtest on its own history: the one with
//! the smaller mean absolute error wins, and its backtest is the `accuracy` shown.
//!
//! Every figure is cents. Model output is `f64`; it becomes cents by rounding half
//! away from zero (`f64::round`), and a bound below zero is clipped to zero (MRR
//! cannot be negative). Nothing here reads a clock or the table.

use augurs::ets::trend::AutoETSTrendModel;
use augurs::ets::AutoETS;
use augurs::mstl::MSTLModel;
use augurs::{Fit, Predict};
use serde::{Deserialize, Serialize};

/// Fewer complete months than this and a series gets no forecast: automatic ETS
/// needs more observations than parameters + 4 (a damped trend has 5).
pub const MIN_HISTORY_MONTHS: usize = 9;
/// MSTL needs two full cycles (period 12) to fit ...
pub const SEASONAL_FIT_MONTHS: usize = 24;
/// ... and seasonality is only tried when it can also be backtested against plain
/// ETS: two origins of `BACKTEST_HORIZON` months past the first fit.
pub const SEASONAL_MIN_MONTHS: usize = SEASONAL_FIT_MONTHS + BACKTEST_HORIZON + 1;
pub const SEASON_PERIOD: usize = 12;
/// The longest horizon stored and served.
pub const MAX_HORIZON: usize = 24;
/// The prediction interval's coverage.
pub const DEFAULT_LEVEL: f64 = 0.80;
/// Rolling-origin backtest: the last `BACKTEST_ORIGINS` origins, each forecasting
/// up to `BACKTEST_HORIZON` months ahead.
pub const BACKTEST_ORIGINS: usize = 6;
pub const BACKTEST_HORIZON: usize = 3;
/// At least this many backtested points, or `accuracy` is left out (too few to mean
/// anything).
pub const MIN_BACKTEST_POINTS: usize = 4;

/// One complete month of history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPoint {
    pub month: String,
    pub value: i64,
}

/// One forecast month: the point forecast and its prediction interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForecastPoint {
    pub month: String,
    pub value: i64,
    pub lower: i64,
    pub upper: i64,
}

/// The seasonal effect of one calendar month (1–12), in cents, from the latest
/// cycle of the decomposition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MonthEffect {
    pub calendar_month: u32,
    pub effect: i64,
}

/// What the decomposition found (`SeasonalityAnalysis`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seasonality {
    pub period: u32,
    /// Wang–Smith–Hyndman strength, 0–1: 1 − var(remainder) ÷ var(season + remainder).
    pub strength: f64,
    /// Whether the seasonal model won the backtest and made the forecast.
    pub used: bool,
    pub effects: Vec<MonthEffect>,
}

/// `ForecastAccuracy`: the rolling-origin backtest of the chosen model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accuracy {
    pub method: String,
    pub origins: u32,
    pub horizon: u32,
    pub points: u32,
    /// Mean absolute percentage error, percent; `None` when every actual was zero.
    pub mape: Option<f64>,
    /// Mean absolute scaled error (scale: the history's mean absolute month-on-month
    /// change, the naive one-month error); errors 1–3 months ahead, so about 1 is
    /// ordinary and below 1 beats a one-month naive forecast.
    pub mase: Option<f64>,
    /// Share of backtested actuals inside the model's own interval, 0–1, against
    /// `level`.
    pub interval_coverage: f64,
    pub level: f64,
    /// The factor the forecast's interval was widened by so that it holds `level`
    /// of the backtest's actuals (1: the model's own interval was wide enough).
    pub calibration_factor: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueCode {
    /// Fewer than `MIN_HISTORY_MONTHS` complete months: no forecast.
    InsufficientHistory,
    /// No revenue in the whole history (a free tier): nothing to forecast.
    NoRevenue,
    /// Under two years: seasonality cannot be estimated, the forecast has none.
    TooShortForSeasonality,
    /// Too few months to backtest: the forecast has no accuracy figure.
    TooShortToBacktest,
    /// The model could not be fitted.
    ModelFailed,
}

/// Seed 004's `DataQualityIssue`, said instead of inventing a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataQualityIssue {
    pub code: IssueCode,
    pub message: String,
}

/// The forecast of one series (a tier's MRR, or the total).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesForecast {
    pub series_id: String,
    pub name: String,
    #[serde(default)]
    pub model: Option<String>,
    pub history: Vec<HistoryPoint>,
    pub points: Vec<ForecastPoint>,
    #[serde(default)]
    pub seasonality: Option<Seasonality>,
    #[serde(default)]
    pub accuracy: Option<Accuracy>,
    pub data_quality_issues: Vec<DataQualityIssue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Candidate {
    Trend,
    Seasonal,
}

struct Prediction {
    point: Vec<f64>,
    lower: Vec<f64>,
    upper: Vec<f64>,
    model: String,
}

fn seasonal_model() -> MSTLModel<AutoETSTrendModel> {
    MSTLModel::new(vec![SEASON_PERIOD], AutoETSTrendModel::from(AutoETS::non_seasonal()))
}

/// The scale the models work on: log MRR when every month is positive, so growth
/// and a season proportional to the level become additive; MRR itself otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    Log,
    Linear,
}

impl Scale {
    fn of(y: &[f64]) -> Self {
        if y.iter().all(|v| *v > 0.0) {
            Scale::Log
        } else {
            Scale::Linear
        }
    }
    fn to(self, v: f64) -> f64 {
        match self {
            Scale::Log => v.ln(),
            Scale::Linear => v,
        }
    }
    fn back(self, v: f64) -> f64 {
        match self {
            Scale::Log => v.exp(),
            Scale::Linear => v,
        }
    }
}

fn fit_predict(y: &[f64], candidate: Candidate, horizon: usize, level: f64) -> Result<Prediction, String> {
    let forecast = match candidate {
        Candidate::Trend => {
            let fitted = AutoETS::non_seasonal().fit(y).map_err(|e| e.to_string())?;
            let model = fitted.model();
            let damped = if model.damped() { " damped" } else { "" };
            let name = format!("ETS({}){damped}", model.model_type());
            let f = fitted.predict(horizon, level).map_err(|e| e.to_string())?;
            (f, name)
        }
        Candidate::Seasonal => {
            let fitted = seasonal_model().fit(y).map_err(|e| e.to_string())?;
            let f = fitted.predict(horizon, level).map_err(|e| e.to_string())?;
            (f, format!("MSTL(period {SEASON_PERIOD}) + ETS on the deseasonalised series"))
        }
    };
    let (f, model) = forecast;
    let intervals = f.intervals.ok_or("the model gave no prediction interval")?;
    if f.point.len() != horizon
        || f.point.iter().chain(&intervals.lower).chain(&intervals.upper).any(|v| !v.is_finite())
    {
        return Err("the model gave a non-finite forecast".into());
    }
    Ok(Prediction { point: f.point, lower: intervals.lower, upper: intervals.upper, model })
}

/// Cents from a model's figure: half away from zero, never below zero.
pub fn to_cents(v: f64) -> i64 {
    if v.is_finite() {
        (v.round() as i64).max(0)
    } else {
        0
    }
}

struct Backtest {
    abs_errors: Vec<f64>,
    pct_errors: Vec<f64>,
    /// Actuals inside the model's own interval.
    covered: usize,
    /// Each error as a multiple of the model's interval half-width on its side, on
    /// the model's scale: the calibration's nonconformity scores.
    scores: Vec<f64>,
    origins: usize,
}

fn min_fit(candidate: Candidate) -> usize {
    match candidate {
        Candidate::Trend => MIN_HISTORY_MONTHS,
        Candidate::Seasonal => SEASONAL_FIT_MONTHS,
    }
}

/// Rolling origin: fit on the months before each origin, forecast up to
/// `BACKTEST_HORIZON` months, compare with what happened.
fn backtest(z: &[f64], scale: Scale, candidate: Candidate, level: f64) -> Option<Backtest> {
    let n = z.len();
    // Origins whose whole horizon is known: the last `BACKTEST_ORIGINS` of them, or
    // fewer when the history is short.
    let last = n.saturating_sub(BACKTEST_HORIZON);
    let first = (last + 1).saturating_sub(BACKTEST_ORIGINS).max(min_fit(candidate));
    let mut out = Backtest { abs_errors: vec![], pct_errors: vec![], covered: 0, scores: vec![], origins: 0 };
    for origin in first..=last {
        if origin == 0 {
            continue;
        }
        let h = BACKTEST_HORIZON;
        let Ok(p) = fit_predict(&z[..origin], candidate, h, level) else { continue };
        out.origins += 1;
        for (i, actual_z) in z[origin..origin + h].iter().enumerate() {
            let (actual, point) = (scale.back(*actual_z), scale.back(p.point[i]));
            out.abs_errors.push((actual - point).abs());
            if actual != 0.0 {
                out.pct_errors.push(((actual - point) / actual).abs());
            }
            if p.lower[i] <= *actual_z && *actual_z <= p.upper[i] {
                out.covered += 1;
            }
            let error = actual_z - p.point[i];
            let half = if error >= 0.0 { p.upper[i] - p.point[i] } else { p.point[i] - p.lower[i] };
            if half > 0.0 {
                out.scores.push(error.abs() / half);
            }
        }
    }
    (out.abs_errors.len() >= MIN_BACKTEST_POINTS).then_some(out)
}

/// How much the model's intervals must widen to hold `level` of the backtest's
/// actuals (split-conformal quantile, ⌈(n+1)·level⌉-th smallest score), never
/// narrowing them: MSTL's intervals leave out the uncertainty of the seasonal
/// estimate, and this puts it back from the series' own errors.
fn calibration_factor(scores: &[f64], level: f64) -> f64 {
    if scores.is_empty() {
        return 1.0;
    }
    let mut sorted = scores.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let rank = (((sorted.len() + 1) as f64) * level).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].max(1.0)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn round_to(v: f64, places: i32) -> f64 {
    let k = 10f64.powi(places);
    (v * k).round() / k
}

fn accuracy_of(b: &Backtest, y: &[f64], level: f64, calibration_factor: f64) -> Accuracy {
    let scale = mean(&y.windows(2).map(|w| (w[1] - w[0]).abs()).collect::<Vec<_>>());
    let mae = mean(&b.abs_errors);
    Accuracy {
        method: format!(
            "rolling origin: up to the last {} origins, {} months ahead each, refitted at every origin",
            BACKTEST_ORIGINS, BACKTEST_HORIZON
        ),
        origins: b.origins as u32,
        horizon: BACKTEST_HORIZON as u32,
        points: b.abs_errors.len() as u32,
        mape: (!b.pct_errors.is_empty()).then(|| round_to(100.0 * mean(&b.pct_errors), 2)),
        mase: (scale > 0.0).then(|| round_to(mae / scale, 3)),
        interval_coverage: round_to(b.covered as f64 / b.abs_errors.len() as f64, 3),
        level,
        calibration_factor: round_to(calibration_factor, 3),
    }
}

fn seasonality_of(y: &[f64], first_month: &str, used: bool) -> Option<Seasonality> {
    let fitted = seasonal_model().fit(y).ok()?;
    let decomposition = fitted.fit();
    let seasonal = decomposition.seasonal().first()?;
    let strength = *decomposition.seasonal_strength().first()?;
    let start = crate::domain::analytics::parse_month(first_month)?;
    let n = seasonal.len();
    let mut effects: Vec<MonthEffect> = (n.saturating_sub(SEASON_PERIOD)..n)
        .map(|i| {
            use chrono::Datelike;
            let month = (start.month0() as usize + i) % 12 + 1;
            MonthEffect { calendar_month: month as u32, effect: seasonal[i].round() as i64 }
        })
        .collect();
    effects.sort_by_key(|e| e.calendar_month);
    Some(Seasonality { period: SEASON_PERIOD as u32, strength: round_to(strength.clamp(0.0, 1.0), 3), used, effects })
}

fn issue(code: IssueCode, message: impl Into<String>) -> DataQualityIssue {
    DataQualityIssue { code, message: message.into() }
}

/// The forecast of one series whose complete months are `history` (oldest first,
/// consecutive), `horizon` months past its last month.
pub fn forecast_series(
    series_id: &str,
    name: &str,
    history: Vec<HistoryPoint>,
    horizon: usize,
    level: f64,
) -> SeriesForecast {
    let mut out = SeriesForecast {
        series_id: series_id.to_string(),
        name: name.to_string(),
        model: None,
        history,
        points: vec![],
        seasonality: None,
        accuracy: None,
        data_quality_issues: vec![],
    };
    let y: Vec<f64> = out.history.iter().map(|p| p.value as f64).collect();
    let n = y.len();
    if y.iter().all(|v| *v == 0.0) {
        out.data_quality_issues.push(issue(IssueCode::NoRevenue, "no revenue in any month of the history"));
        return out;
    }
    if n < MIN_HISTORY_MONTHS {
        out.data_quality_issues.push(issue(
            IssueCode::InsufficientHistory,
            format!("{n} complete months of history; a forecast needs at least {MIN_HISTORY_MONTHS}"),
        ));
        return out;
    }
    let scale = Scale::of(&y);
    let z: Vec<f64> = y.iter().map(|v| scale.to(*v)).collect();
    let trend = backtest(&z, scale, Candidate::Trend, level);
    let seasonal = if n >= SEASONAL_MIN_MONTHS { backtest(&z, scale, Candidate::Seasonal, level) } else { None };
    let chosen = match (&trend, &seasonal) {
        (Some(t), Some(s)) if mean(&s.abs_errors) < mean(&t.abs_errors) => Candidate::Seasonal,
        (None, Some(_)) => Candidate::Seasonal,
        _ => Candidate::Trend,
    };
    if n < SEASONAL_MIN_MONTHS {
        out.data_quality_issues.push(issue(
            IssueCode::TooShortForSeasonality,
            format!(
                "{n} months; seasonality needs {SEASONAL_MIN_MONTHS} (two full years to fit, and months to \
                 backtest it against plain ETS), so none is modelled"
            ),
        ));
    } else {
        out.seasonality = seasonality_of(&y, &out.history[0].month, chosen == Candidate::Seasonal);
    }
    let chosen_backtest = if chosen == Candidate::Seasonal { &seasonal } else { &trend };
    let factor = chosen_backtest.as_ref().map_or(1.0, |b| calibration_factor(&b.scores, level));
    match chosen_backtest {
        Some(b) => out.accuracy = Some(accuracy_of(b, &y, level, factor)),
        None => out.data_quality_issues.push(issue(
            IssueCode::TooShortToBacktest,
            format!(
                "too few months to backtest (fewer than {MIN_BACKTEST_POINTS} held-out points): no accuracy \
                 figure, and the interval is the model's own, uncalibrated"
            ),
        )),
    }
    let horizon = horizon.clamp(1, MAX_HORIZON);
    match fit_predict(&z, chosen, horizon, level) {
        Ok(p) => {
            let last = &out.history[n - 1].month;
            out.points = (0..horizon)
                .map(|i| {
                    let (point, lower, upper) = (p.point[i], p.lower[i].min(p.point[i]), p.upper[i].max(p.point[i]));
                    ForecastPoint {
                        month: month_plus(last, i as u32 + 1),
                        value: to_cents(scale.back(point)),
                        lower: to_cents(scale.back(point - factor * (point - lower))),
                        upper: to_cents(scale.back(point + factor * (upper - point))),
                    }
                })
                .collect();
            let on = if scale == Scale::Log { " on log MRR" } else { "" };
            out.model = Some(format!("{}{on}", p.model));
        }
        Err(e) => out.data_quality_issues.push(issue(IssueCode::ModelFailed, format!("the model failed: {e}"))),
    }
    out
}

/// `yyyy-mm` plus `n` months.
pub fn month_plus(month: &str, n: u32) -> String {
    use chrono::Months;
    crate::domain::analytics::parse_month(month)
        .and_then(|d| d.checked_add_months(Months::new(n)))
        .map(crate::domain::analytics::month_of)
        .unwrap_or_else(|| month.to_string())
}

/// The series' months cut to the months from its first non-zero one: a tier's
/// months before it had any revenue are not its history.
pub fn trim_leading_zeros(history: Vec<HistoryPoint>) -> Vec<HistoryPoint> {
    let first = history.iter().position(|p| p.value != 0).unwrap_or(history.len());
    history.into_iter().skip(first).collect()
}

// ---- The stored forecast and its scenarios ------------------------------------------

/// What drives a tier's MRR besides its history, measured over the last
/// `DRIVER_MONTHS` complete months: the scenarios move these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TierDrivers {
    pub tier_id: String,
    /// New and reactivated MRR a month, cents (mean, rounded half away from zero).
    pub new_mrr_per_month: i64,
    /// MRR lost to churn ÷ MRR at the month's start, summed over the months.
    pub monthly_churn_rate: f64,
    /// The tier's price elasticity of demand when one was estimated (docs/intelligence.md).
    #[serde(default)]
    pub elasticity: Option<f64>,
}

pub const DRIVER_MONTHS: usize = 6;

/// One month of a tier for its drivers: MRR at the month's start, and its flows.
#[derive(Debug, Clone, Copy, Default)]
pub struct DriverMonth {
    pub opening_mrr: i64,
    pub new_mrr: i64,
    pub churn_mrr: i64,
}

pub fn drivers(tier_id: &str, months: &[DriverMonth], elasticity: Option<f64>) -> TierDrivers {
    let recent = &months[months.len().saturating_sub(DRIVER_MONTHS)..];
    let new: i64 = recent.iter().map(|m| m.new_mrr).sum();
    let opening: i64 = recent.iter().map(|m| m.opening_mrr).sum();
    let churn: i64 = recent.iter().map(|m| m.churn_mrr).sum();
    TierDrivers {
        tier_id: tier_id.to_string(),
        new_mrr_per_month: if recent.is_empty() { 0 } else { (new as f64 / recent.len() as f64).round() as i64 },
        monthly_churn_rate: if opening > 0 { round_to(churn as f64 / opening as f64, 4) } else { 0.0 },
        elasticity,
    }
}

/// The forecast the daily job stores (seed 004 `RevenueForecast`), `MAX_HORIZON`
/// months long; requests cut it to their horizon and derive scenarios from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredForecast {
    pub forecast_id: String,
    /// A digest of everything the fit read (`inputs_digest`): a run whose inputs
    /// digest the same skips the fit, as it would store the same figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
    /// The run date it was made on.
    pub as_of: String,
    pub last_updated: String,
    pub level: f64,
    pub total: SeriesForecast,
    pub tiers: Vec<SeriesForecast>,
    pub drivers: Vec<TierDrivers>,
}

/// Assumptions every forecast rests on, listed beside it.
pub const ASSUMPTIONS: &[&str] = &[
    "History is month-end MRR per tier, rebuilt from the monthly aggregates; the current month is not history until it ends.",
    "Each series is modelled on log MRR when every month is positive (growth and a season proportional to the level), on MRR otherwise.",
    "Seasonality is looked for at a 12-month period only, and used only if it beats plain ETS in the backtest.",
    "The prediction interval is the model's own, widened where needed to hold the stated share of the backtest's actuals.",
    "The total is forecast as its own series; tier forecasts need not add up to it exactly.",
    "Revenue over the horizon is the sum of the monthly MRR forecasts; its interval sums the monthly bounds, which assumes the months' errors move together (the widest case).",
    "Nothing outside Tierdesk's own history is known to the model: no market data, no planned campaigns or price changes unless given as a scenario.",
];

/// A sum of forecast points: value and the bounds summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Range {
    pub value: i64,
    pub lower: i64,
    pub upper: i64,
}

pub fn horizon_sum(points: &[ForecastPoint]) -> Range {
    points.iter().fold(Range { value: 0, lower: 0, upper: 0 }, |r, p| Range {
        value: r.value + p.value,
        lower: r.lower + p.lower,
        upper: r.upper + p.upper,
    })
}

/// A what-if (seed 004 `Scenario`): changes applied from the first forecast month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scenario {
    pub name: String,
    /// The tier it changes; `None`: every tier.
    #[serde(default)]
    pub tier_id: Option<String>,
    /// A list-price change in percent (−50 to +100).
    #[serde(default)]
    pub price_change_percent: Option<f64>,
    /// Added to the monthly churn rate, in percentage points (−20 to +20).
    #[serde(default)]
    pub churn_change_points: Option<f64>,
    /// A relative change of new customers, in percent (−100 to +200).
    #[serde(default)]
    pub conversion_change_percent: Option<f64>,
}

/// The forecast as `GET /api/admin/analytics/forecast` serves it (seed 004
/// `RevenueForecast`), cut to `horizon` months and, with `tier`, to one tier.
pub fn view(doc: &StoredForecast, horizon: usize, tier: Option<&str>) -> serde_json::Value {
    let cut = |s: &SeriesForecast| {
        let mut s = s.clone();
        s.points.truncate(horizon);
        s
    };
    let total = cut(&doc.total);
    let tiers: Vec<SeriesForecast> =
        doc.tiers.iter().filter(|t| tier.is_none_or(|id| id == t.series_id)).map(cut).collect();
    let headline = match tier {
        Some(_) => tiers.first().cloned().unwrap_or_else(|| total.clone()),
        None => total.clone(),
    };
    let end = headline.points.last();
    serde_json::json!({
        "forecastId": doc.forecast_id,
        "asOf": doc.as_of,
        "lastUpdated": doc.last_updated,
        "metric": "mrr",
        "timeHorizon": {
            "months": horizon,
            "from": headline.points.first().map(|p| p.month.clone()),
            "to": end.map(|p| p.month.clone()),
        },
        "baselineRevenue": headline.history.last().map(|p| p.value),
        "forecastedRevenue": end.map(|p| p.value),
        "confidenceInterval": {
            "level": doc.level,
            "lower": end.map(|p| p.lower),
            "upper": end.map(|p| p.upper),
        },
        "horizonRevenue": (!headline.points.is_empty()).then(|| horizon_sum(&headline.points)),
        "accuracy": headline.accuracy,
        "seasonality": headline.seasonality,
        "dataQualityIssues": headline.data_quality_issues,
        "assumptions": ASSUMPTIONS,
        "total": if tier.is_none() { Some(total) } else { None },
        "tiers": tiers,
        "drivers": doc.drivers.iter().filter(|d| tier.is_none_or(|id| id == d.tier_id)).collect::<Vec<_>>(),
        "scenarios": [],
    })
}

fn number_in(min: f64, max: f64) -> impl Fn(&serde_json::Value) -> Result<f64, String> {
    move |v| match v.as_f64() {
        Some(x) if x.is_finite() && (min..=max).contains(&x) => Ok(x),
        _ => Err(format!("must be a number from {min} to {max}")),
    }
}

pub const MAX_SCENARIOS: usize = 5;

impl Scenario {
    /// One scenario of `POST /api/admin/analytics/forecast/scenarios`.
    pub fn read(f: &mut crate::domain::validation::Fields<'_>) -> Option<Self> {
        use crate::domain::validation::parse;
        let name = f.required("name", |v| parse::text(v, 1, 80));
        let tier_id = f.optional("tierId", parse::slug);
        let price = f.optional("priceChangePercent", |v| number_in(-50.0, 100.0)(v));
        let churn = f.optional("churnChangePoints", |v| number_in(-20.0, 20.0)(v));
        let conversion = f.optional("conversionChangePercent", |v| number_in(-100.0, 200.0)(v));
        if price.is_none() && churn.is_none() && conversion.is_none() {
            f.fail("priceChangePercent", "a scenario changes the price, churn or conversion");
        }
        Some(Self {
            name: name?,
            tier_id,
            price_change_percent: price,
            churn_change_points: churn,
            conversion_change_percent: conversion,
        })
    }
}

/// `POST /api/admin/analytics/forecast/scenarios`: `{horizon?, scenarios: [...]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioRequest {
    pub horizon: usize,
    pub scenarios: Vec<Scenario>,
}

pub const DEFAULT_HORIZON: usize = 12;

/// A horizon in months: 1 to `MAX_HORIZON`.
pub fn parse_horizon(v: &serde_json::Value) -> Result<usize, String> {
    crate::domain::validation::parse::int_in(v, 1, MAX_HORIZON as i64).map(|h| h as usize)
}

impl ScenarioRequest {
    /// Parses the body; `tiers` are the forecast's tier ids, so an unknown one is
    /// named as the field it came in.
    pub fn parse(body: &serde_json::Value, tiers: &[&str]) -> Result<Self, crate::domain::validation::ValidationError> {
        let mut f = crate::domain::validation::Fields::new(body, &["horizon", "scenarios"]);
        let horizon = f.optional("horizon", parse_horizon).unwrap_or(DEFAULT_HORIZON);
        let allowed = ["name", "tierId", "priceChangePercent", "churnChangePoints", "conversionChangePercent"];
        let scenarios = f.array_of_objects("scenarios", MAX_SCENARIOS, &allowed, Scenario::read);
        if body.get("scenarios").is_none_or(serde_json::Value::is_null) {
            f.fail("scenarios", "is required");
        }
        if let Some(list) = &scenarios {
            if list.is_empty() {
                f.fail("scenarios", "must have at least one scenario");
            }
            for (i, s) in list.iter().enumerate() {
                if let Some(t) = &s.tier_id {
                    if !tiers.contains(&t.as_str()) {
                        f.fail(&format!("scenarios[{i}].tierId"), "is not a tier in the forecast");
                    }
                }
            }
        }
        f.finish()?;
        Ok(Self { horizon, scenarios: scenarios.unwrap_or_default() })
    }
}

/// Seed 004's `ScenarioForecast`: the total under the scenario, beside the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioForecast {
    pub name: String,
    pub scenario: Scenario,
    pub assumptions: Vec<String>,
    pub points: Vec<ForecastPoint>,
    /// MRR in the horizon's last month, and its change from the baseline's.
    pub forecasted_revenue: i64,
    pub change_from_baseline: i64,
    pub horizon_revenue: Range,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    #[error("no tier {0} in the forecast")]
    UnknownTier(String),
}

/// A tier's path under the scenario, month `h` (1-based) of the horizon:
/// `(b·(1+p) + h·n·(1+p)·(e·p + c)) · (1−Δ)^h` for baseline `b`, new MRR a month
/// `n`, price change `p`, elasticity `e`, conversion change `c`, churn change `Δ`.
fn adjust(b: f64, h: usize, d: &TierDrivers, s: &Scenario) -> f64 {
    let p = s.price_change_percent.unwrap_or(0.0) / 100.0;
    let c = s.conversion_change_percent.unwrap_or(0.0) / 100.0;
    // A cut cannot take churn below zero: at most the tier's own rate.
    let churn = (s.churn_change_points.unwrap_or(0.0) / 100.0).max(-d.monthly_churn_rate);
    let e = d.elasticity.unwrap_or(0.0);
    let n = d.new_mrr_per_month as f64;
    let v = b * (1.0 + p) + h as f64 * n * (1.0 + p) * (e * p + c);
    v * (1.0 - churn).powi(h as i32)
}

pub fn scenario(doc: &StoredForecast, s: &Scenario, horizon: usize) -> Result<ScenarioForecast, ScenarioError> {
    if let Some(t) = &s.tier_id {
        if !doc.tiers.iter().any(|f| &f.series_id == t) {
            return Err(ScenarioError::UnknownTier(t.clone()));
        }
    }
    let baseline: Vec<ForecastPoint> = doc.total.points.iter().take(horizon).cloned().collect();
    let mut points = baseline.clone();
    let mut assumptions = vec![
        "Changes apply to every affected subscriber from the first forecast month (no grandfathering, no notice period).".to_string(),
        "The baseline's interval is carried through the same change; the scenario's own uncertainty is not added.".to_string(),
    ];
    let affected = doc.tiers.iter().filter(|t| s.tier_id.as_ref().is_none_or(|id| id == &t.series_id));
    for tier in affected {
        let Some(d) = doc.drivers.iter().find(|d| d.tier_id == tier.series_id) else { continue };
        if s.price_change_percent.is_some() {
            assumptions.push(match d.elasticity {
                Some(e) => format!(
                    "{}: new customers respond to the price with elasticity {e:.2}; existing ones stay.",
                    tier.name
                ),
                None => format!(
                    "{}: no elasticity estimate, so the number of new customers is assumed not to change with the price.",
                    tier.name
                ),
            });
        }
        for (i, (out, b)) in points.iter_mut().zip(&tier.points).enumerate() {
            let h = i + 1;
            let shift = |v: i64| (adjust(v as f64, h, d, s) - v as f64).round() as i64;
            out.value = (out.value + shift(b.value)).max(0);
            out.lower = (out.lower + shift(b.lower)).max(0);
            out.upper = (out.upper + shift(b.upper)).max(0);
        }
    }
    if s.churn_change_points.is_some() {
        assumptions.push(
            "Extra churn compounds monthly on the affected tiers' MRR; a cut is at most each tier's own churn rate \
             (last 6 months)."
                .into(),
        );
    }
    if s.conversion_change_percent.is_some() {
        assumptions.push(
            "A conversion change scales the tiers' recent new MRR a month (last 6 months), each month's new customers kept."
                .into(),
        );
    }
    let last = |v: &[ForecastPoint]| v.last().map_or(0, |p| p.value);
    Ok(ScenarioForecast {
        name: s.name.clone(),
        scenario: s.clone(),
        assumptions,
        forecasted_revenue: last(&points),
        change_from_baseline: last(&points) - last(&baseline),
        horizon_revenue: horizon_sum(&points),
        points,
    })
}

// ---- From the analytics aggregates ---------------------------------------------------

/// How many complete months a forecast is fitted on (three seasonal cycles).
pub const HISTORY_MONTHS: u32 = 36;

/// The months the daily step reads: `HISTORY_MONTHS` complete months and the
/// current one (month-end values are rebuilt backwards from the live item through
/// every later month).
pub fn months_to_read(now: &str) -> Vec<String> {
    crate::domain::analytics::months_between(&crate::domain::analytics::month_minus(now, HISTORY_MONTHS), now)
}

/// The whole forecast from the tiers' aggregates, `now` being the run's month:
/// each tier's month-end MRR and the total over the complete months, the drivers
/// of the last months, every series forecast `MAX_HORIZON` months ahead.
pub fn from_aggregates(
    tiers: &[crate::domain::analytics::TierData],
    now: &str,
    as_of: &str,
    at: &str,
    elasticity: &std::collections::BTreeMap<String, f64>,
) -> StoredForecast {
    use crate::domain::analytics::month_minus;
    let months: Vec<String> = months_to_read(now).into_iter().filter(|m| m.as_str() < now).collect();
    let mut total = vec![0i64; months.len()];
    let mut series = Vec::new();
    let mut drivers_out = Vec::new();
    for t in tiers {
        let values: Vec<i64> = months.iter().map(|m| t.closing(m, now).mrr).collect();
        for (sum, v) in total.iter_mut().zip(&values) {
            *sum += v;
        }
        let history = months.iter().zip(&values).map(|(m, v)| HistoryPoint { month: m.clone(), value: *v }).collect();
        series.push(forecast_series(
            &t.info.tier_id,
            &t.info.name,
            trim_leading_zeros(history),
            MAX_HORIZON,
            DEFAULT_LEVEL,
        ));
        let driver_months: Vec<DriverMonth> = months
            .iter()
            .map(|m| {
                let f = t.flows(m);
                DriverMonth {
                    opening_mrr: t.closing(&month_minus(m, 1), now).mrr,
                    new_mrr: f.new_mrr + f.reactivation_mrr,
                    churn_mrr: f.churn_mrr,
                }
            })
            .collect();
        drivers_out.push(drivers(&t.info.tier_id, &driver_months, elasticity.get(&t.info.tier_id).copied()));
    }
    let total_history = months.iter().zip(&total).map(|(m, v)| HistoryPoint { month: m.clone(), value: *v }).collect();
    StoredForecast {
        forecast_id: format!("fc_{as_of}"),
        inputs: None,
        as_of: as_of.to_string(),
        last_updated: at.to_string(),
        level: DEFAULT_LEVEL,
        total: forecast_series("total", "All tiers", trim_leading_zeros(total_history), MAX_HORIZON, DEFAULT_LEVEL),
        tiers: series,
        drivers: drivers_out,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// xorshift64* and Box–Muller: a fixed, dependency-free noise source.
    pub(crate) struct Noise(u64);
    impl Noise {
        pub fn new(seed: u64) -> Self {
            Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }
        pub fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        pub fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    pub(crate) fn months(first: &str, values: &[f64]) -> Vec<HistoryPoint> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| HistoryPoint { month: month_plus(first, i as u32), value: v.round() as i64 })
            .collect()
    }

    /// Trend, a ±15% yearly season peaking in July, and noise.
    pub(crate) fn seasonal_series(seed: u64, len: usize) -> Vec<f64> {
        let mut noise = Noise::new(seed);
        (0..len)
            .map(|t| {
                let season = 1.0 + 0.15 * (2.0 * std::f64::consts::PI * (t as f64 - 3.0) / 12.0).sin();
                (1_000_000.0 + 12_000.0 * t as f64) * season + 20_000.0 * noise.normal()
            })
            .collect()
    }

    #[test]
    fn too_little_history_says_so_and_draws_no_line() {
        let f = forecast_series("gold", "Gold", months("2026-01", &[1e5; 8]), 12, DEFAULT_LEVEL);
        assert!(f.points.is_empty() && f.model.is_none() && f.accuracy.is_none());
        assert_eq!(f.data_quality_issues[0].code, IssueCode::InsufficientHistory);
        assert!(f.data_quality_issues[0].message.contains("8 complete months"));
    }

    #[test]
    fn a_series_without_revenue_is_not_forecast() {
        let f = forecast_series("free", "Free", months("2025-01", &[0.0; 20]), 6, DEFAULT_LEVEL);
        assert!(f.points.is_empty());
        assert_eq!(f.data_quality_issues[0].code, IssueCode::NoRevenue);
    }

    #[test]
    fn a_short_series_is_forecast_without_seasonality_and_says_why() {
        let y: Vec<f64> = (0..14).map(|t| 500_000.0 + 10_000.0 * t as f64 + 3_000.0 * ((t * 7 % 5) as f64)).collect();
        let f = forecast_series("gold", "Gold", months("2025-10", &y), 6, DEFAULT_LEVEL);
        assert_eq!(f.points.len(), 6);
        assert_eq!(f.points[0].month, "2026-12");
        assert_eq!(f.points[5].month, "2027-05");
        assert!(f.seasonality.is_none());
        assert!(f.data_quality_issues.iter().any(|i| i.code == IssueCode::TooShortForSeasonality));
        // A growing series keeps growing, inside its interval.
        assert!(f.points[5].value > y[13] as i64, "{:?}", f.points);
        for p in &f.points {
            assert!(p.lower <= p.value && p.value <= p.upper, "{p:?}");
        }
        let acc = f.accuracy.expect("14 months backtest from month 9");
        // Origins 9, 10 and 11, each with its three months known.
        assert_eq!((acc.origins, acc.points), (3, 9));
        assert!(acc.mape.unwrap() < 10.0, "{acc:?}");
    }

    #[test]
    fn the_seasonal_model_is_found_and_wins_on_a_seasonal_series() {
        let y = seasonal_series(7, 48);
        let f = forecast_series("total", "All tiers", months("2023-01", &y), 12, DEFAULT_LEVEL);
        let s = f.seasonality.as_ref().expect("four years of history");
        assert!(s.used, "the seasonal model should beat plain ETS: {:?}", f.accuracy);
        assert!(s.strength > 0.6, "{s:?}");
        // The season peaks in July and bottoms out in January (sin at t−3).
        let peak = s.effects.iter().max_by_key(|e| e.effect).unwrap();
        let trough = s.effects.iter().min_by_key(|e| e.effect).unwrap();
        assert!((6..=7).contains(&peak.calendar_month), "{:?}", s.effects);
        assert!(trough.calendar_month == 1 || trough.calendar_month == 12, "{:?}", s.effects);
        assert_eq!(f.model.as_deref(), Some("MSTL(period 12) + ETS on the deseasonalised series on log MRR"));
    }

    /// The done-means test: over many seasonal series, the interval holds the
    /// held-out months at about the stated rate.
    #[test]
    fn the_interval_covers_held_out_months_at_the_stated_rate() {
        let (mut covered, mut total) = (0, 0);
        for (seed, train) in (1..=40).flat_map(|s| [(s, 36), (s + 100, 48)]) {
            let y = seasonal_series(seed, train + 12);
            let f = forecast_series("s", "s", months("2022-01", &y[..train]), 12, DEFAULT_LEVEL);
            assert!(f.seasonality.as_ref().is_some_and(|s| s.used), "seed {seed}: {:?}", f.model);
            for (p, actual) in f.points.iter().zip(&y[train..]) {
                total += 1;
                if (p.lower as f64) <= *actual && *actual <= p.upper as f64 {
                    covered += 1;
                }
            }
        }
        assert_eq!(total, 960);
        let rate = covered as f64 / total as f64;
        assert!((0.72..=0.88).contains(&rate), "80% intervals covered {rate:.3} of held-out months");
    }

    /// Without the backtest's calibration MSTL's own intervals hold far fewer: the
    /// reason the calibration exists.
    #[test]
    fn the_seasonal_models_own_interval_is_too_narrow_and_is_widened() {
        let y = seasonal_series(3, 48);
        let f = forecast_series("s", "s", months("2022-01", &y), 12, DEFAULT_LEVEL);
        let acc = f.accuracy.unwrap();
        assert!(acc.calibration_factor > 1.0, "{acc:?}");
    }

    #[test]
    fn cents_round_half_away_from_zero_and_never_go_negative() {
        assert_eq!(to_cents(10.5), 11);
        assert_eq!(to_cents(10.49), 10);
        assert_eq!(to_cents(-3.0), 0);
        assert_eq!(to_cents(f64::NAN), 0);
    }

    #[test]
    fn leading_months_without_revenue_are_not_history() {
        let h = trim_leading_zeros(months("2026-01", &[0.0, 0.0, 5.0, 0.0, 7.0]));
        assert_eq!(h.iter().map(|p| p.month.as_str()).collect::<Vec<_>>(), ["2026-03", "2026-04", "2026-05"]);
    }

    fn doc_with(tier_points: &[i64], elasticity: Option<f64>) -> StoredForecast {
        let pts = |v: &[i64]| -> Vec<ForecastPoint> {
            v.iter()
                .enumerate()
                .map(|(i, x)| ForecastPoint {
                    month: month_plus("2026-11", i as u32 + 1),
                    value: *x,
                    lower: x - 100,
                    upper: x + 100,
                })
                .collect()
        };
        let series = |id: &str, v: &[i64]| SeriesForecast {
            series_id: id.into(),
            name: id.into(),
            model: Some("m".into()),
            history: vec![],
            points: pts(v),
            seasonality: None,
            accuracy: None,
            data_quality_issues: vec![],
        };
        StoredForecast {
            forecast_id: "fc".into(),
            inputs: None,
            as_of: "2026-12-07".into(),
            last_updated: "2026-12-07T06:00:00Z".into(),
            level: DEFAULT_LEVEL,
            total: series("total", &tier_points.iter().map(|v| v * 2).collect::<Vec<_>>()),
            tiers: vec![series("gold", tier_points), series("platinum", tier_points)],
            drivers: vec![
                TierDrivers { tier_id: "gold".into(), new_mrr_per_month: 10_000, monthly_churn_rate: 0.02, elasticity },
                TierDrivers {
                    tier_id: "platinum".into(),
                    new_mrr_per_month: 0,
                    monthly_churn_rate: 0.0,
                    elasticity: None,
                },
            ],
        }
    }

    fn what_if(tier: Option<&str>, price: Option<f64>, churn: Option<f64>, conv: Option<f64>) -> Scenario {
        Scenario {
            name: "s".into(),
            tier_id: tier.map(String::from),
            price_change_percent: price,
            churn_change_points: churn,
            conversion_change_percent: conv,
        }
    }

    #[test]
    fn a_price_rise_reprices_the_tier_and_costs_new_customers_by_the_elasticity() {
        let doc = doc_with(&[1_000_000, 1_000_000], Some(-2.0));
        let f = scenario(&doc, &what_if(Some("gold"), Some(10.0), None, None), 2).unwrap();
        // Month 1: 1,000,000·1.1 + 1·10,000·1.1·(−2·0.1) = 1,100,000 − 2,200.
        assert_eq!(f.points[0].value, 2_000_000 + 100_000 - 2_200);
        // Month 2: the lost new customers accumulate: −4,400.
        assert_eq!(f.points[1].value, 2_000_000 + 100_000 - 4_400);
        assert_eq!(f.change_from_baseline, 95_600);
        assert!(f.assumptions.iter().any(|a| a.contains("elasticity -2.00")), "{:?}", f.assumptions);
    }

    #[test]
    fn without_an_elasticity_the_scenario_says_volume_is_assumed_unchanged() {
        let doc = doc_with(&[1_000_000], None);
        let f = scenario(&doc, &what_if(Some("gold"), Some(-10.0), None, None), 1).unwrap();
        assert_eq!(f.points[0].value, 2_000_000 - 100_000);
        assert!(f.assumptions.iter().any(|a| a.contains("no elasticity estimate")));
    }

    #[test]
    fn churn_compounds_and_conversion_adds_new_mrr_on_every_tier() {
        let doc = doc_with(&[1_000_000, 1_000_000], None);
        let f = scenario(&doc, &what_if(None, None, Some(1.0), None), 2).unwrap();
        // Two tiers, each 1,000,000 → ·0.99 and ·0.9801.
        assert_eq!(f.points[0].value, 2_000_000 - 20_000);
        assert_eq!(f.points[1].value, 2_000_000 - 2 * 19_900);
        let g = scenario(&doc, &what_if(None, None, None, Some(50.0)), 2).unwrap();
        // Only gold has new MRR: 10,000·0.5 a month, accumulating.
        assert_eq!(g.points[0].value - 2_000_000, 5_000);
        assert_eq!(g.points[1].value - 2_000_000, 10_000);
        assert_eq!(g.horizon_revenue.value, 4_000_000 + 15_000);
    }

    #[test]
    fn a_churn_cut_stops_at_the_tiers_own_churn() {
        let doc = doc_with(&[1_000_000, 1_000_000], None);
        // Gold churns 2% a month: a 20-point cut is a 2-point cut.
        let f = scenario(&doc, &what_if(Some("gold"), None, Some(-20.0), None), 2).unwrap();
        assert_eq!(f.points[0].value, 2_000_000 + 20_000);
        assert_eq!(f.points[1].value, 2_000_000 + 40_400);
    }

    #[test]
    fn an_unknown_tier_is_refused() {
        let doc = doc_with(&[1], None);
        assert_eq!(
            scenario(&doc, &what_if(Some("nope"), Some(1.0), None, None), 1),
            Err(ScenarioError::UnknownTier("nope".into()))
        );
    }

    #[test]
    fn drivers_average_the_last_six_months() {
        let m = |o, n, c| DriverMonth { opening_mrr: o, new_mrr: n, churn_mrr: c };
        let months: Vec<_> = (0..8).map(|i| m(100_000, if i < 2 { 999_999 } else { 1_001 }, 1_000)).collect();
        let d = drivers("gold", &months, None);
        assert_eq!(d.new_mrr_per_month, 1_001);
        assert_eq!(d.monthly_churn_rate, 0.01);
        assert_eq!(drivers("x", &[], None).new_mrr_per_month, 0);
    }
}
