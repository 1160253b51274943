//! The revenue forecast against the local stack: 33 months of gold subscriptions
//! (a yearly pattern of signups, and cancellations) and five of platinum go through
//! the real transition mechanism on past dates; the daily job's forecast step reads
//! the aggregates those transitions wrote and stores the forecast; the routes serve
//! it. The history is checked against the test's own count to the cent, a series
//! too short to forecast says so, reruns are idempotent, an older run never
//! replaces a newer forecast, scenarios follow their documented formula, and the
//! role matrix and bad input are checked.

use super::analytics::{apply, ctx, paid_change};
use chrono::NaiveDate;
use expiry_cron::{CronConfig, ExpiryCron, RunDate};
use serde_json::{json, Value};
use tierdesk::domain::money::BillingPeriod;
use tierdesk::domain::partner::NewPartner;
use tierdesk::domain::subscription::{plan_cancel, plan_signup, plan_tier_change, Cancellation, Catalog};
use tierdesk::mail::{MailConfig, Mailer};
use tierdesk::store::TierStore;
use tierdesk_tests::{ses, TestApp};

const GOLD: i64 = 360_000;
const PLATINUM: i64 = 600_000;
/// Gold signups by calendar month (January first): a spring and summer peak.
const SIGNUPS: [usize; 12] = [1, 1, 2, 3, 4, 4, 3, 2, 1, 1, 1, 1];

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn months_from(first: &str, n: u32) -> Vec<String> {
    (0..n).map(|i| tierdesk::domain::forecast::month_plus(first, i)).collect()
}

/// Signs a partner up on `date` and moves them onto `tier`, paying monthly.
async fn subscribe(
    app: &TestApp,
    catalog: Catalog<'_>,
    n: usize,
    tier: &str,
    date: NaiveDate,
) -> tierdesk::domain::partner::Partner {
    let new = NewPartner::parse(
        &json!({"companyName": format!("Forecast {n}"), "primaryEmail": format!("f{n}@example.com")}),
    )
    .unwrap();
    let c = ctx(date);
    let signup = plan_signup(&format!("prt_fc{n:05}"), new, catalog, &c).unwrap();
    apply(app, &signup, &c).await;
    let c = ctx(date);
    let change = paid_change(tier, BillingPeriod::Monthly, day("2031-01-01"), None);
    let paid = plan_tier_change(&signup.after, &change, catalog, &c).unwrap();
    apply(app, &paid, &c).await;
    paid.after
}

/// Plays the history; returns the month-end MRR of gold and platinum by month.
async fn history(app: &TestApp) -> (Vec<(String, i64)>, Vec<(String, i64)>) {
    let tiers = app.store.all_tiers().await.unwrap();
    let catalog = Catalog::new(&tiers);
    let (mut gold, mut platinum) = (Vec::new(), Vec::new());
    let (mut active, mut n) = (Vec::new(), 0);
    let mut platinum_count = 0;
    for (i, month) in months_from("2024-03", 33).iter().enumerate() {
        let calendar: usize = month[5..].parse().unwrap();
        for k in 0..SIGNUPS[calendar - 1] {
            n += 1;
            active.push(subscribe(app, catalog, n, "gold", day(&format!("{month}-{:02}", 3 + k))).await);
        }
        // Every third month the oldest gold customer leaves.
        if i % 3 == 2 {
            let leaving = active.remove(0);
            let c = ctx(day(&format!("{month}-20")));
            let cancel = Cancellation { reason: "moving on".into(), immediate: true, version: None };
            let t = plan_cancel(&leaving, &cancel, catalog, &c).unwrap();
            apply(app, &t, &c).await;
        }
        if month.as_str() >= "2026-07" {
            n += 1;
            platinum_count += 1;
            subscribe(app, catalog, n, "platinum", day(&format!("{month}-10"))).await;
        }
        gold.push((month.clone(), active.len() as i64 * GOLD));
        platinum.push((month.clone(), platinum_count * PLATINUM));
    }
    (gold, platinum)
}

async fn cron(app: &TestApp) -> ExpiryCron {
    let mailer = Mailer::connect(&MailConfig::local(ses::endpoint()), app.store.clone()).await;
    ExpiryCron::new(app.function_app(), mailer, CronConfig::default())
}

fn series<'a>(body: &'a Value, id: &str) -> &'a Value {
    body["tiers"].as_array().unwrap().iter().find(|s| s["seriesId"] == id).unwrap_or_else(|| panic!("{id} in {body}"))
}

fn values(points: &Value, field: &str) -> Vec<i64> {
    points.as_array().unwrap().iter().map(|p| p[field].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn the_daily_job_forecasts_each_tier_from_its_history_and_the_routes_serve_it() {
    let app = TestApp::seeded().await;
    let (status, body) = app.call("GET", "/api/admin/analytics/forecast", Some("admin"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("forecast_not_ready")), "{body}");

    let (gold, platinum) = history(&app).await;
    let cron = cron(&app).await;
    let summary = cron.run(&RunDate::for_date(day("2026-12-07"))).await.unwrap();
    // Gold and the total are forecast; platinum (5 months) and free (no revenue) are not.
    assert_eq!(summary.steps.get("forecasts"), Some(&2), "{summary:?}");

    let (status, body) = app.call("GET", "/api/admin/analytics/forecast?horizon=6", Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["asOf"], "2026-12-07");
    assert_eq!(body["timeHorizon"], json!({"months": 6, "from": "2026-12", "to": "2027-05"}));

    // Gold's history is the month-end MRR the transitions left, to the cent.
    let g = series(&body, "gold");
    let got: Vec<(String, i64)> = g["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["month"].as_str().unwrap().to_string(), p["value"].as_i64().unwrap()))
        .collect();
    assert_eq!(got, gold);
    assert_eq!(g["points"].as_array().unwrap().len(), 6);
    for p in g["points"].as_array().unwrap() {
        assert!(p["lower"].as_i64() <= p["value"].as_i64() && p["value"].as_i64() <= p["upper"].as_i64(), "{p}");
    }
    // A growing book is forecast to keep growing.
    assert!(g["points"][5]["value"].as_i64().unwrap() > gold.last().unwrap().1, "{}", g["points"]);
    let acc = &g["accuracy"];
    assert!(acc["points"].as_u64().unwrap() >= 4 && acc["mase"].is_number() && acc["level"] == 0.8, "{acc}");
    assert!(g["seasonality"]["effects"].as_array().is_some_and(|e| e.len() == 12), "{g}");
    assert!(g["model"].as_str().unwrap().contains("ETS"), "{g}");

    // Platinum's five months are too few: no line, and the reason.
    let p = series(&body, "platinum");
    assert_eq!(p["points"], json!([]));
    assert_eq!(p["dataQualityIssues"][0]["code"], "insufficient_history");
    assert_eq!(values(&p["history"], "value"), platinum.iter().skip(28).map(|(_, v)| *v).collect::<Vec<_>>());
    assert_eq!(series(&body, "free")["dataQualityIssues"][0]["code"], "no_revenue");

    // The total is every tier's month-end MRR summed; the headline figures are its.
    let total: Vec<i64> = gold.iter().zip(&platinum).map(|(g, p)| g.1 + p.1).collect();
    assert_eq!(values(&body["total"]["history"], "value"), total);
    assert_eq!(body["baselineRevenue"], *total.last().unwrap());
    let points = values(&body["total"]["points"], "value");
    assert_eq!(body["forecastedRevenue"], points[5]);
    assert_eq!(body["horizonRevenue"]["value"], points.iter().sum::<i64>());
    assert_eq!(body["confidenceInterval"]["upper"], body["total"]["points"][5]["upper"]);
    assert!(body["assumptions"].as_array().unwrap().len() >= 5);

    // One tier: its series is the headline.
    let (_, one) = app.call("GET", "/api/admin/analytics/forecast?tier=gold&horizon=24", Some("admin"), None).await;
    assert_eq!((one["total"].is_null(), one["tiers"].as_array().unwrap().len()), (true, 1), "{one}");
    assert_eq!(one["baselineRevenue"], gold.last().unwrap().1);
    assert_eq!(one["timeHorizon"]["to"], "2028-11");

    // A rerun of the day stores the same forecast; an older day's run never replaces it.
    let (_, before) = app.call("GET", "/api/admin/analytics/forecast", Some("admin"), None).await;
    cron.run(&RunDate::for_date(day("2026-12-07"))).await.unwrap();
    cron.run(&RunDate::for_date(day("2026-11-07"))).await.unwrap();
    let (_, after) = app.call("GET", "/api/admin/analytics/forecast", Some("admin"), None).await;
    assert_eq!(before, after);
}

/// `(b·(1+p) + h·n·(1+p)·(e·p + c)) · (1−Δ)^h`, as docs/intelligence.md states it.
fn adjusted(b: i64, h: usize, new_mrr: i64, elasticity: f64, p: f64, c: f64, churn: f64) -> i64 {
    let v = b as f64 * (1.0 + p) + h as f64 * new_mrr as f64 * (1.0 + p) * (elasticity * p + c);
    (v * (1.0 - churn).powi(h as i32) - b as f64).round() as i64 + b
}

#[tokio::test]
async fn scenarios_move_the_baseline_as_documented_and_bad_input_is_named() {
    let app = TestApp::seeded().await;
    history(&app).await;
    cron(&app).await.run(&RunDate::for_date(day("2026-12-07"))).await.unwrap();

    let ask = json!({"horizon": 3, "scenarios": [
        {"name": "Gold +10%", "tierId": "gold", "priceChangePercent": 10},
        {"name": "Churn +1 point, conversion +20%", "churnChangePoints": 1, "conversionChangePercent": 20},
    ]});
    let (status, body) =
        app.call("POST", "/api/admin/analytics/forecast/scenarios", Some("sales_manager"), Some(ask)).await;
    assert_eq!(status, 200, "{body}");
    let total = values(&body["total"]["points"], "value");
    assert_eq!(total.len(), 3);
    let drivers = |tier: &str| {
        let d = body["drivers"].as_array().unwrap().iter().find(|d| d["tierId"] == tier).unwrap().clone();
        (d["newMrrPerMonth"].as_i64().unwrap(), d["elasticity"].as_f64().unwrap_or(0.0))
    };
    let (gold_new, gold_e) = drivers("gold");
    assert!(gold_new > 0, "gold gained customers in its last six months: {}", body["drivers"]);
    let gold = values(&series(&body, "gold")["points"], "value");
    let price = &body["scenarios"][0];
    assert_eq!(price["name"], "Gold +10%");
    for h in 0..3 {
        let want = total[h] + adjusted(gold[h], h + 1, gold_new, gold_e, 0.10, 0.0, 0.0) - gold[h];
        assert_eq!(price["points"][h]["value"], want, "month {h}");
    }
    assert_eq!(price["changeFromBaseline"], price["points"][2]["value"].as_i64().unwrap() - total[2]);
    assert!(price["assumptions"].as_array().unwrap().iter().any(|a| a.as_str().unwrap().contains("Gold")));

    // The second changes every tier with a forecast (platinum has none, so only gold
    // moves) and lists its assumptions.
    let both = &body["scenarios"][1];
    for h in 0..3 {
        let want = total[h] + adjusted(gold[h], h + 1, gold_new, gold_e, 0.0, 0.20, 0.01) - gold[h];
        assert_eq!(both["points"][h]["value"], want, "month {h}");
    }
    assert!(both["horizonRevenue"]["value"].as_i64().unwrap() < body["horizonRevenue"]["value"].as_i64().unwrap());

    // Roles: revenue figures, so managers and admins only; nothing is written.
    for (method, path, body) in [
        ("GET", "/api/admin/analytics/forecast", None),
        (
            "POST",
            "/api/admin/analytics/forecast/scenarios",
            Some(json!({"scenarios": [{"name": "x", "priceChangePercent": 5}]})),
        ),
    ] {
        app.assert_access(method, path, None, body.clone(), false).await;
        app.assert_access(method, path, Some("partner"), body.clone(), false).await;
        app.assert_access(method, path, Some("sales_rep"), body.clone(), false).await;
        app.assert_access(method, path, Some("sales_manager"), body.clone(), true).await;
        app.assert_access(method, path, Some("admin"), body.clone(), true).await;
    }

    for (path, field) in [
        ("/api/admin/analytics/forecast?horizon=0", "horizon"),
        ("/api/admin/analytics/forecast?horizon=25", "horizon"),
        ("/api/admin/analytics/forecast?horizon=twelve", "horizon"),
        ("/api/admin/analytics/forecast?tier=nope", "tier"),
    ] {
        let (status, body) = app.call("GET", path, Some("admin"), None).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"]["details"]["fields"][field].is_string(), "{path}: {body}");
    }
    for (ask, field) in [
        (json!({}), "scenarios"),
        (json!({"scenarios": []}), "scenarios"),
        (json!({"scenarios": [{"name": "nothing"}]}), "scenarios[0].priceChangePercent"),
        (json!({"scenarios": [{"name": "x", "tierId": "nope", "priceChangePercent": 5}]}), "scenarios[0].tierId"),
        (json!({"scenarios": [{"name": "x", "priceChangePercent": 500}]}), "scenarios[0].priceChangePercent"),
        (json!({"scenarios": [{"name": "x", "churnChangePoints": "1"}]}), "scenarios[0].churnChangePoints"),
        (json!({"scenarios": [{"name": "x", "priceChangePercent": 5, "mrr": 1}]}), "scenarios[0].mrr"),
        (json!({"horizon": 99, "scenarios": [{"name": "x", "priceChangePercent": 5}]}), "horizon"),
    ] {
        let (status, body) =
            app.call("POST", "/api/admin/analytics/forecast/scenarios", Some("admin"), Some(ask.clone())).await;
        assert_eq!(status, 400, "{ask}: {body}");
        assert!(body["error"]["details"]["fields"][field].is_string(), "{ask}: {body}");
    }
}
