//! The analytics Lambda (seed 000 §2.1, seed 001 billing analytics): the tier
//! analytics summary, one tier's metrics, revenue, the conversion funnel, MRR
//! movements and signup cohorts, each as JSON or `?format=csv`. It reads only the
//! pre-aggregated items the transitions maintain (docs/analytics.md), so its cost
//! does not grow with the number of partners. Routes are data (`ROUTES`) so a test
//! can hold them against `template.yaml` and `infra/openapi.yaml`.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tierdesk::app::App;
use tierdesk::domain::analytics::{
    self, month_distance, month_minus, months_between, parse_month, AnalyticsError, TierData,
};
use tierdesk::domain::forecast;
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::storefront;
use tierdesk::domain::validation::ValidationError;
use tierdesk::http::csv::{csv_response, Cell, CsvWriter};
use tierdesk::http::request::{json_body, query};
use tierdesk::http::router::match_route;
use tierdesk::http::{serve, Ctx, PathParams, Route};
use tierdesk::store::{AlertStore, AnalyticsStore, IntelligenceStore, PricingStore, SegmentStore, TierStore};
use tierdesk::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Summary,
    Revenue,
    Funnel,
    TierMetrics,
    Movements,
    Cohorts,
    Storefront,
    Forecast,
    ForecastScenarios,
    Elasticity,
    Alerts,
    Kpis,
}

/// Static segments come before `{tierId}` so `/revenue` is never read as a tier.
pub const ROUTES: &[Route<Op>] = &[
    Route { method: "GET", path: "/api/admin/tiers/analytics", op: Op::Summary },
    Route { method: "GET", path: "/api/admin/tiers/revenue", op: Op::Revenue },
    Route { method: "GET", path: "/api/admin/tiers/funnel", op: Op::Funnel },
    Route { method: "GET", path: "/api/admin/tiers/{tierId}/metrics", op: Op::TierMetrics },
    Route { method: "GET", path: "/api/admin/analytics/movements", op: Op::Movements },
    Route { method: "GET", path: "/api/admin/analytics/cohorts", op: Op::Cohorts },
    Route { method: "GET", path: "/api/admin/analytics/storefront", op: Op::Storefront },
    Route { method: "GET", path: "/api/admin/analytics/forecast", op: Op::Forecast },
    Route { method: "POST", path: "/api/admin/analytics/forecast/scenarios", op: Op::ForecastScenarios },
    Route { method: "GET", path: "/api/admin/analytics/elasticity", op: Op::Elasticity },
    Route { method: "GET", path: "/api/admin/analytics/kpis", op: Op::Kpis },
    Route { method: "GET", path: "/api/admin/alerts", op: Op::Alerts },
];

/// Longest range of months (movements) or cohorts one request may ask for.
pub const MAX_RANGE_MONTHS: i64 = 24;
/// How far back a range may start: month-end values are rebuilt from the live item
/// through every later month, so the look-back bounds the keys read.
pub const MAX_LOOKBACK_MONTHS: i64 = 60;

/// Fields that are revenue figures: shown only with `view_revenue_metrics`.
const REVENUE_FIELDS: &[&str] = &[
    "totalMRR",
    "totalARR",
    "mrr",
    "arr",
    "arpu",
    "lifetimeValue",
    "revenue",
    "revenueBreakdown",
    "netMrrRetention",
    "newMrr",
];

pub struct Analytics {
    app: App,
}

tierdesk::wraps_app!(Analytics);

impl Analytics {
    pub fn new(app: App) -> Self {
        Self { app }
    }

    fn this_month(&self) -> String {
        analytics::month_of(self.clock.now().date_naive())
    }

    /// Every tier with its live item and the month items of `months`: one Query of
    /// the catalog and one BatchGetItem per 100 keys.
    async fn tiers(&self, months: &[String]) -> Result<Vec<TierData>, ApiError> {
        let tiers = self.store.all_tiers().await?;
        let ids: Vec<String> = tiers.iter().map(|t| t.tier_id.clone()).collect();
        let aggregates = self.store.tier_aggregates(&ids, months, false).await?;
        Ok(tiers.iter().zip(aggregates).map(|(t, a)| a.into_data(t)).collect())
    }
}

pub async fn handle(app: &Analytics, req: Request) -> Response<Body> {
    serve(req, app.config.grants, app.clock.as_ref(), |ctx, req| dispatch(app, ctx, req)).await
}

async fn dispatch(app: &Analytics, ctx: Ctx, req: Request) -> Result<Response<Body>, ApiError> {
    let (op, params) = match_route(ROUTES, req.method(), req.uri().path())?;
    // Movements and revenue are revenue through and through; the rest is tier
    // analytics, with its money figures left out for callers who may not see revenue.
    let needed = match op {
        Op::Revenue | Op::Movements | Op::Forecast | Op::ForecastScenarios | Op::Elasticity | Op::Alerts | Op::Kpis => {
            Permission::ViewRevenueMetrics
        }
        _ => Permission::TierAnalytics,
    };
    let who = ctx.require(needed)?;
    let sees_revenue = who.can(Permission::ViewRevenueMetrics);
    let csv = match query(&req, "format").as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ValidationError::single("format", "must be json or csv").into()),
    };
    let (mut body, table) = match op {
        Op::Summary => (summary(app).await?, None),
        Op::Revenue => (revenue(app).await?, None),
        Op::Funnel => (funnel(app).await?, None),
        Op::TierMetrics => (tier_metrics(app, &params).await?, None),
        Op::Movements => movements(app, &req).await?,
        Op::Cohorts => cohorts(app, &req).await?,
        Op::Storefront => (storefront(app, &req).await?, None),
        Op::Forecast => {
            let mut body = forecast(app, &req).await?;
            // The growth projection report: one row per series and month.
            let series: Vec<Value> = body["total"]
                .as_object()
                .map(|_| body["total"].clone())
                .into_iter()
                .chain(body["tiers"].as_array().cloned().unwrap_or_default())
                .collect();
            if csv {
                body["series"] = Value::Array(series);
            }
            (body, Some(Table { rows: "series", nested: Some("points"), columns: FORECAST_COLUMNS }))
        }
        Op::ForecastScenarios => (scenarios(app, &req).await?, None),
        Op::Elasticity => (elasticity(app).await?, None),
        Op::Alerts => (json!({ "alerts": app.store.alerts().await? }), None),
        Op::Kpis => (kpis(app, &req).await?, None),
    };
    if !sees_revenue {
        redact(&mut body);
    }
    let name = match op {
        Op::Summary => "tier-analytics",
        Op::Revenue => "revenue",
        Op::Funnel => "funnel",
        Op::TierMetrics => "tier-metrics",
        Op::Movements => "mrr-movements",
        Op::Cohorts => "cohorts",
        Op::Storefront => "storefront",
        Op::Forecast | Op::ForecastScenarios => "forecast",
        Op::Elasticity => "elasticity",
        Op::Alerts => "alerts",
        Op::Kpis => "kpis",
    };
    if csv {
        let text = match table {
            Some(table) => table_csv(&body, table, sees_revenue),
            None => flat_csv(&body),
        };
        return Ok(csv_response(text, name, None));
    }
    tierdesk::http::json(StatusCode::OK, &body)
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error"))
}

/// The trend window: the current month and the eleven before it.
fn trend_months(now: &str) -> Vec<String> {
    months_between(&month_minus(now, analytics::TREND_MONTHS - 1), now)
}

/// The stored forecast (docs/intelligence.md): one GetItem. 404 until the daily
/// job has made one.
async fn stored_forecast(app: &Analytics) -> Result<forecast::StoredForecast, ApiError> {
    app.store.forecast().await?.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "forecast_not_ready", "no forecast yet: the daily job makes it")
    })
}

/// `GET /api/admin/analytics/kpis?month=` (default: the last complete month):
/// seed 001's success metrics from the month's operational counts (one Query) and
/// its tier flows (the catalog and one BatchGetItem). Flat in partners.
async fn kpis(app: &Analytics, req: &Request) -> Result<Value, ApiError> {
    let now = app.this_month();
    let month = match query(req, "month") {
        None => month_minus(&now, 1),
        Some(raw) => match parse_month(&raw) {
            Some(_)
                if raw.len() == 7
                    && raw.as_str() <= now.as_str()
                    && month_distance(&raw, &now) <= MAX_LOOKBACK_MONTHS =>
            {
                raw
            }
            _ => {
                return Err(ValidationError::single(
                    "month",
                    format!(
                        "must be a month (YYYY-MM) not after this one and at most {MAX_LOOKBACK_MONTHS} months back"
                    ),
                )
                .into())
            }
        },
    };
    let first = format!("{month}-01");
    let last = format!("{month}-31");
    let months = months_between(&month_minus(&month, 1), &now);
    let (days, tiers) = tokio::join!(app.store.ops_days(&first, &last), app.tiers(&months));
    let (days, tiers) = (days?, tiers?);
    let counts: Vec<_> = days.into_iter().map(|(_, c)| c).collect();
    let flows = tiers.iter().fold(analytics::TierFlows::default(), |a, t| a.plus(t.flows(&month)));
    let opening: i64 = tiers.iter().map(|t| t.closing(&month_minus(&month, 1), &now).mrr).sum();
    to_value(&tierdesk::domain::alerts::kpis(&month, &counts, &flows, opening))
}

/// `GET /api/admin/analytics/elasticity`: the stored estimates (one GetItem).
async fn elasticity(app: &Analytics) -> Result<Value, ApiError> {
    let report = app.store.elasticity().await?.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "forecast_not_ready", "no estimates yet: the daily job makes them")
    })?;
    to_value(&report)
}

/// `GET /api/admin/analytics/forecast?horizon=&tier=`.
async fn forecast(app: &Analytics, req: &Request) -> Result<Value, ApiError> {
    let horizon = match query(req, "horizon") {
        None => forecast::DEFAULT_HORIZON,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|h| (1..=forecast::MAX_HORIZON).contains(h))
            .ok_or_else(|| ValidationError::single("horizon", format!("must be 1 to {}", forecast::MAX_HORIZON)))?,
    };
    let doc = stored_forecast(app).await?;
    let tier = query(req, "tier");
    if let Some(t) = &tier {
        if !doc.tiers.iter().any(|s| &s.series_id == t) {
            return Err(ValidationError::single("tier", "is not a tier in the forecast").into());
        }
    }
    Ok(forecast::view(&doc, horizon, tier.as_deref()))
}

/// `POST /api/admin/analytics/forecast/scenarios`: the baseline and each what-if,
/// derived from the stored forecast (no model is fitted on a request).
async fn scenarios(app: &Analytics, req: &Request) -> Result<Value, ApiError> {
    let body = json_body(req, app.config.max_body_bytes)?;
    let doc = stored_forecast(app).await?;
    let tiers: Vec<&str> = doc.tiers.iter().map(|s| s.series_id.as_str()).collect();
    let ask = forecast::ScenarioRequest::parse(&body, &tiers)?;
    let mut out = forecast::view(&doc, ask.horizon, None);
    let results = ask
        .scenarios
        .iter()
        .map(|s| forecast::scenario(&doc, s, ask.horizon))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "scenario_refused", e.to_string()))?;
    out["scenarios"] = to_value(&results)?;
    Ok(out)
}

/// Seed 002's storefront analytics for `from..=to` (default: this month): the
/// funnel and revenue by segment, and upsell success by rule. Reads: the
/// segments, the catalog, the storefront counters (one Query), the configuration
/// (one Query) and the tiers' month aggregates (BatchGetItem): flat in partners.
async fn storefront(app: &Analytics, req: &Request) -> Result<Value, ApiError> {
    let now = app.this_month();
    let (from, to) = match (query(req, "from"), query(req, "to")) {
        (None, None) => (now.clone(), now.clone()),
        _ => month_range(req, &now)?,
    };
    if month_distance(&from, &to) >= MAX_RANGE_MONTHS {
        return Err(ValidationError::single("from", format!("the range is at most {MAX_RANGE_MONTHS} months")).into());
    }
    let months = months_between(&from, &to);
    let (segments, tiers, counts, config) = tokio::join!(
        app.store.list_segments(),
        app.store.all_tiers(),
        app.store.storefront_counts(&from, &to),
        app.store.storefront_config()
    );
    let (segments, tiers, counts, config) = (segments?, tiers?, counts?, config?);
    let ids: Vec<String> = tiers.iter().map(|t| t.tier_id.clone()).collect();
    let aggregates = app.store.tier_aggregates(&ids, &months, false).await?;
    let tier_flows = tiers
        .iter()
        .zip(aggregates)
        .map(|(t, a)| (t.tier_id.clone(), (a.months.into_values().collect(), a.current.live.mrr)))
        .collect();
    to_value(&storefront::report(storefront::ReportInput {
        from: &from,
        to: &to,
        segments: &segments,
        tiers: &tiers,
        tier_flows,
        funnel: counts.funnel,
        upsell: counts.upsell,
        rules: &config.upsell_rules,
    }))
}

async fn summary(app: &Analytics) -> Result<Value, ApiError> {
    let now = app.this_month();
    let months = trend_months(&now);
    let (tiers, usage) = tokio::join!(app.tiers(&months), app.store.adoption(&now));
    to_value(&analytics::summary(&tiers?, &now, &usage?))
}

async fn tier_metrics(app: &Analytics, params: &PathParams) -> Result<Value, ApiError> {
    let tier_id = params.get("tierId");
    let valid = !tier_id.is_empty()
        && tier_id.len() <= 64
        && tier_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(AnalyticsError::TierNotFound.into());
    }
    let now = app.this_month();
    let ids = [tier_id.to_string()];
    let months = trend_months(&now);
    let (aggregates, usage) = tokio::join!(app.store.tier_aggregates(&ids, &months, true), app.store.adoption(&now));
    let mut aggregates = aggregates?;
    let aggregate = aggregates.pop().ok_or(AnalyticsError::TierNotFound)?;
    let tier = aggregate.tier.clone().ok_or(AnalyticsError::TierNotFound)?;
    let data = aggregate.into_data(&tier);
    let usage = usage?;
    let empty = BTreeMap::new();
    to_value(&analytics::tier_metrics(&data, &now, usage.get(tier_id).unwrap_or(&empty)))
}

async fn revenue(app: &Analytics) -> Result<Value, ApiError> {
    let now = app.this_month();
    let months = trend_months(&now);
    let tiers = app.tiers(&months).await?;
    let total: i64 = tiers.iter().map(|t| t.current.live.mrr).sum();
    let paying: i64 = tiers.iter().map(|t| t.current.live.paying_count).sum();
    let moves = analytics::movements(&tiers, &months, &now);
    let trends: Vec<Value> = moves
        .iter()
        .map(|m| {
            let by_tier: Vec<Value> =
                tiers.iter().map(|t| json!({"tierId": t.info.tier_id, "mrr": t.closing(&m.month, &now).mrr})).collect();
            json!({
                "month": m.month,
                "mrr": m.closing_mrr,
                "arr": m.closing_mrr.saturating_mul(12),
                "netNewMrr": m.net_new_mrr,
                "byTier": by_tier,
            })
        })
        .collect();
    Ok(json!({
        "month": now,
        "totalMRR": total,
        "totalARR": total.saturating_mul(12),
        "payingCustomers": paying,
        "arpu": analytics::div_round(total, paying),
        "revenueBreakdown": to_value(&analytics::revenue_breakdown(&tiers))?,
        "trends": trends,
    }))
}

async fn funnel(app: &Analytics) -> Result<Value, ApiError> {
    let now = app.this_month();
    let months = trend_months(&now);
    let tiers = app.tiers(&months).await?;
    let monthly: Vec<Value> = months
        .iter()
        .map(|m| {
            let mut v = to_value(&analytics::month_funnel(&tiers, m))?;
            v["month"] = json!(m);
            Ok(v)
        })
        .collect::<Result<_, ApiError>>()?;
    let by_tier: Vec<Value> = tiers
        .iter()
        .map(|t| {
            json!({
                "tierId": t.info.tier_id,
                "signups": t.current.flows.signups,
                "trialStarts": t.current.flows.trial_starts,
                "trialConversions": t.current.flows.trial_conversions,
                "directPaid": t.current.flows.direct_paid,
                "firstPayments": t.current.flows.first_payments,
            })
        })
        .collect();
    Ok(json!({
        "month": now,
        "conversionFunnel": to_value(&analytics::all_time_funnel(&tiers))?,
        "monthly": monthly,
        "byTier": by_tier,
    }))
}

/// `from`/`to` as months, defaulting to the trend window; the range is bounded
/// (`MAX_RANGE_MONTHS`, `MAX_LOOKBACK_MONTHS`) and may not reach past this month.
fn month_range(req: &Request, now: &str) -> Result<(String, String), ApiError> {
    let read = |name: &'static str, default: String| -> Result<String, ValidationError> {
        match query(req, name) {
            None => Ok(default),
            Some(raw) => match parse_month(&raw) {
                Some(first) => Ok(analytics::month_of(first)),
                None => Err(ValidationError::single(name, "must be a month as YYYY-MM")),
            },
        }
    };
    let mut errors = ValidationError::default();
    let to = read("to", now.to_string()).unwrap_or_else(|e| {
        errors.fields.extend(e.fields);
        now.to_string()
    });
    // Twelve months ending with `to`, cut at the look-back limit, so a `to` alone
    // never fails on a `from` the caller did not send.
    let earliest = month_minus(now, MAX_LOOKBACK_MONTHS as u32);
    let twelve_back = month_minus(&to, analytics::TREND_MONTHS - 1);
    let default_from = if month_distance(&earliest, &twelve_back) < 0 { earliest } else { twelve_back };
    let from = read("from", default_from.clone()).unwrap_or_else(|e| {
        errors.fields.extend(e.fields);
        default_from
    });
    if !errors.fields.is_empty() {
        return Err(errors.into());
    }
    if month_distance(now, &to) > 0 {
        return Err(ValidationError::single("to", "must not be after the current month").into());
    }
    let mut too_old = ValidationError::default();
    for (name, month) in [("from", &from), ("to", &to)] {
        if month_distance(month, now) > MAX_LOOKBACK_MONTHS {
            too_old.fields.insert(name.into(), format!("must be within the last {MAX_LOOKBACK_MONTHS} months"));
        }
    }
    if !too_old.fields.is_empty() {
        return Err(too_old.into());
    }
    if month_distance(&from, &to) < 0 {
        return Err(ValidationError::single("from", "must not be after to").into());
    }
    if month_distance(&from, &to) >= MAX_RANGE_MONTHS {
        return Err(
            ValidationError::single("from", format!("the range may span at most {MAX_RANGE_MONTHS} months")).into()
        );
    }
    Ok((from, to))
}

const MOVEMENT_COLUMNS: &[&str] = &[
    "month",
    "openingMrr",
    "new",
    "expansion",
    "contraction",
    "churn",
    "reactivation",
    "netNewMrr",
    "closingMrr",
    "newCount",
    "expansionCount",
    "contractionCount",
    "churnCount",
    "reactivationCount",
    "openingCustomers",
    "churnedCustomers",
    "customerChurnRate",
    "grossMrrChurnRate",
    "netMrrChurnRate",
];

/// A tabular CSV: where the rows are, and the columns.
/// The growth projection report's columns (`GET …/forecast?format=csv`).
const FORECAST_COLUMNS: &[&str] = &["seriesId", "name", "model", "month", "value", "lower", "upper"];

#[derive(Clone, Copy)]
struct Table {
    rows: &'static str,
    nested: Option<&'static str>,
    columns: &'static [&'static str],
}

async fn movements(app: &Analytics, req: &Request) -> Result<(Value, Option<Table>), ApiError> {
    let now = app.this_month();
    let (from, to) = month_range(req, &now)?;
    // Month-end values need every month from the range's first to now.
    let tiers = app.tiers(&months_between(&from, &now)).await?;
    let months = months_between(&from, &to);
    let body = json!({ "from": from, "to": to, "months": to_value(&analytics::movements(&tiers, &months, &now))? });
    Ok((body, Some(Table { rows: "months", nested: None, columns: MOVEMENT_COLUMNS })))
}

const COHORT_COLUMNS: &[&str] = &[
    "cohort",
    "signups",
    "month",
    "offset",
    "activePartners",
    "payingCustomers",
    "mrr",
    "partnerRetention",
    "customerRetention",
    "netMrrRetention",
];

async fn cohorts(app: &Analytics, req: &Request) -> Result<(Value, Option<Table>), ApiError> {
    let now = app.this_month();
    let (from, to) = month_range(req, &now)?;
    let items = app.store.cohort_flows(&from, &to).await?;
    let body = json!({
        "from": from,
        "to": to,
        "cohorts": to_value(&analytics::cohorts(&months_between(&from, &to), &items, &now))?,
    });
    Ok((body, Some(Table { rows: "cohorts", nested: Some("months"), columns: COHORT_COLUMNS })))
}

fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| !REVENUE_FIELDS.contains(&k.as_str()));
            map.values_mut().for_each(redact);
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn cell(v: &Value) -> Cell {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Cell::Int(i),
            None => n.as_f64().map_or(Cell::Empty, Cell::Float),
        },
        Value::String(s) => Cell::Text(s.clone()),
        Value::Bool(b) => Cell::Text(b.to_string()),
        _ => Cell::Empty,
    }
}

/// Nested answers as `field,value` rows, one per figure, the field being the JSON
/// Pointer (RFC 6901) of the figure in the JSON answer.
fn flat_csv(body: &Value) -> String {
    fn walk(v: &Value, path: &str, w: &mut CsvWriter) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    walk(child, &format!("{path}/{}", k.replace('~', "~0").replace('/', "~1")), w);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{path}/{i}"), w);
                }
            }
            leaf => w.row(vec![Cell::Text(path.to_string()), cell(leaf)]),
        }
    }
    let mut w = CsvWriter::new(&["field", "value"]);
    walk(body, "", &mut w);
    w.finish()
}

/// One row per entry of `table.rows` (per nested entry, with the parent's scalar
/// columns repeated); redacted columns are left out of the header.
fn table_csv(body: &Value, table: Table, sees_revenue: bool) -> String {
    let rows: Vec<serde_json::Map<String, Value>> = body[table.rows]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_object)
                .flat_map(|parent| match table.nested.and_then(|n| parent.get(n)).and_then(Value::as_array) {
                    Some(children) => children
                        .iter()
                        .filter_map(Value::as_object)
                        .map(|child| {
                            let mut row = parent.clone();
                            row.extend(child.clone());
                            row
                        })
                        .collect::<Vec<_>>(),
                    None if table.nested.is_some() => Vec::new(),
                    None => vec![parent.clone()],
                })
                .collect()
        })
        .unwrap_or_default();
    let columns: Vec<&str> =
        table.columns.iter().copied().filter(|c| sees_revenue || !REVENUE_FIELDS.contains(c)).collect();
    let mut w = CsvWriter::new(&columns);
    for row in &rows {
        w.row(columns.iter().map(|c| row.get(*c).map_or(Cell::Empty, cell)).collect());
    }
    w.finish()
}
