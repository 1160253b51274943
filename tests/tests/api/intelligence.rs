//! The revenue forecast against the local stack: 33 months of gold subscriptions
//! (a yearly pattern of signups, and cancellations) and five of platinum go through
//! the real transition mechanism on past dates; the daily job's forecast step reads
//! the aggregates those transitions wrote and stores the forecast; the routes serve
//! it. The history is checked against the replay's own count to the cent, a series
//! too short to forecast says so, reruns are idempotent, an older run never
//! replaces a newer forecast, scenarios follow their documented formula, and the
//! role matrix and bad input are checked.

use chrono::NaiveDate;
use expiry_cron::{CronConfig, ExpiryCron, RunDate};
use futures::StreamExt;
use serde_json::{json, Value};
use tierdesk::mail::{MailConfig, Mailer};
use tierdesk_tests::{ses, TestApp};

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Plays 33 months from 2024-03 (platinum over the last five); returns the
/// month-end MRR of gold and platinum by month.
async fn history(app: &TestApp) -> (Vec<(String, i64)>, Vec<(String, i64)>) {
    let months = devtools::seed_history::replay(&app.store, "2024-03", 33, 5, "forecast.example.com").await.unwrap();
    assert_eq!(months.last().unwrap().month, "2026-11");
    // The pattern's own arithmetic: signups by calendar month, one churn every third month.
    let gold_customers: i64 =
        (0..33).map(|i| devtools::seed_history::GOLD_SIGNUPS[(2 + i) % 12] as i64).sum::<i64>() - 11;
    assert_eq!(months.last().unwrap().gold, gold_customers * 360_000);
    (
        months.iter().map(|m| (m.month.clone(), m.gold)).collect(),
        months.iter().map(|m| (m.month.clone(), m.platinum)).collect(),
    )
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
    assert_eq!(summary.steps.get("intelligence"), Some(&2), "{summary:?}");

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
    assert_eq!(platinum.last().unwrap().1, 5 * 600_000);
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

    // The growth projection report: a CSV row per series and month, the JSON's figures.
    let (status, _, csv) = app.call_text("GET", "/api/admin/analytics/forecast?horizon=3&format=csv", "admin").await;
    assert_eq!(status, 200, "{csv}");
    let rows = tierdesk::http::csv::parse(&csv).unwrap();
    assert_eq!(rows[0], ["seriesId", "name", "model", "month", "value", "lower", "upper"]);
    assert_eq!(rows.len(), 1 + 2 * 3, "total and gold, three months each: {csv}");
    let (_, three) = app.call("GET", "/api/admin/analytics/forecast?horizon=3", Some("admin"), None).await;
    assert_eq!(rows[1][0], "total");
    assert_eq!(rows[3][4], three["total"]["points"][2]["value"].to_string());

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
        (json!({"scenarios": null}), "scenarios"),
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

const EXPERIMENTS: &str = "/api/admin/experiments";

/// A finished gold experiment: the current price against +10%, 1,000 visitors
/// each way, converting at 20% and 14% (strongly elastic demand). Returns each
/// variant's (participants, conversions).
async fn finished_experiment(app: &TestApp) -> Vec<(String, u64, u64)> {
    let body = json!({
        "name": "Gold +10%", "hypothesis": "h", "targetTier": "gold", "minSampleSize": 1,
        "variants": [
            {"variantId": "control", "name": "Control", "isControl": true, "allocation": 50},
            {"variantId": "higher", "name": "Higher", "allocation": 50, "pricing": {"monthly": 396_000}}
        ]
    });
    let (status, e) = app.call("POST", EXPERIMENTS, Some("sales_manager"), Some(body)).await;
    assert_eq!(status, 201, "{e}");
    let id = e["experimentId"].as_str().unwrap().to_string();
    let (status, e) = app.call("POST", &format!("{EXPERIMENTS}/{id}/start"), Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{e}");
    let assigned: Vec<(String, String)> = futures::stream::iter(0..2_000)
        .map(|i| {
            let (app, id) = (app, &id);
            async move {
                let user = format!("visitor-{i:05}");
                let (status, a) = app
                    .call("POST", &format!("/api/experiments/{id}/assign"), None, Some(json!({"userId": user})))
                    .await;
                assert_eq!(status, 200, "{a}");
                (user, a["variantId"].as_str().unwrap().to_string())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut out = Vec::new();
    for (variant, rate) in [("control", 0.20), ("higher", 0.14)] {
        let users: Vec<&String> = assigned.iter().filter(|(_, v)| v == variant).map(|(u, _)| u).collect();
        let converting = (users.len() as f64 * rate).round() as usize;
        futures::stream::iter(users.iter().take(converting))
            .for_each_concurrent(16, |user| {
                let (app, id) = (app, &id);
                async move {
                    let ask = json!({"userId": user, "metric": "conversion"});
                    let (status, t) = app.call("POST", &format!("/api/experiments/{id}/track"), None, Some(ask)).await;
                    assert_eq!(status, 200, "{t}");
                }
            })
            .await;
        out.push((variant.to_string(), users.len() as u64, converting as u64));
    }
    let (status, e) = app.call("POST", &format!("{EXPERIMENTS}/{id}/complete"), Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{e}");
    out
}

#[tokio::test]
async fn a_finished_experiment_gives_an_elasticity_and_a_recommendation_accepted_once_as_a_draft_experiment() {
    let app = TestApp::seeded().await;
    let (status, body) = app.call("GET", "/api/admin/analytics/elasticity", Some("admin"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("forecast_not_ready")), "{body}");
    let counts = finished_experiment(&app).await;
    let today = chrono::Utc::now().date_naive();
    let cron = cron(&app).await;
    cron.run(&RunDate::for_date(today)).await.unwrap();

    // The estimate is the log-log slope through the two prices, with the
    // delta-method standard error, recomputed here from the counts.
    let (status, report) = app.call("GET", "/api/admin/analytics/elasticity", Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{report}");
    let gold = report["estimates"].as_array().unwrap().iter().find(|e| e["tierId"] == "gold").expect("gold");
    let rate = |i: usize| counts[i].2 as f64 / counts[i].1 as f64;
    let log_price = (396_000f64 / 360_000f64).ln();
    let want = (rate(1).ln() - rate(0).ln()) / log_price;
    let var = |i: usize| (1.0 - rate(i)) / (counts[i].1 as f64 * rate(i));
    let se = (var(0) + var(1)).sqrt() / log_price;
    assert!((gold["elasticity"].as_f64().unwrap() - want).abs() < 0.001, "{gold} vs {want}");
    assert!((gold["standardError"].as_f64().unwrap() - se).abs() < 0.001, "{gold} vs {se}");
    assert!((gold["confidenceInterval"]["upper"].as_f64().unwrap() - (want + 1.959964 * se)).abs() < 0.002);
    assert_eq!(gold["evidence"][0]["kind"], "experiment");
    assert_eq!(gold["evidence"][0]["observations"], counts[0].1 + counts[1].1);
    assert!(report["withoutEstimate"].as_array().unwrap().iter().any(|t| t["tierId"] == "platinum"), "{report}");

    // Elastic beyond doubt (the interval is below −1): a 10% cut, never applied by itself.
    let (status, list) = app.call("GET", "/api/admin/recommendations", Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{list}");
    let recs = list["recommendations"].as_array().unwrap();
    assert_eq!(recs.len(), 1, "{list}");
    let rec = &recs[0];
    assert_eq!(rec["recommendationId"], "rec_gold_down_324000");
    assert_eq!((rec["type"].as_str(), rec["status"].as_str()), (Some("pricing"), Some("open")));
    assert_eq!((rec["currentPrice"].as_i64(), rec["proposedPrice"].as_i64()), (Some(360_000), Some(324_000)));
    let impact = &rec["expectedImpact"];
    assert!(impact["mrr"]["lower"].as_i64() <= impact["mrr"]["value"].as_i64());
    assert!(impact["conversions"]["value"].as_f64().unwrap() > 0.0, "a cut brings customers: {impact}");
    assert!(impact["churn"].is_null());
    assert!(!rec["riskAssessment"]["factors"].as_array().unwrap().is_empty());
    let (_, tier) = app.call("GET", "/api/admin/tiers/gold", Some("admin"), None).await;
    assert_eq!(tier["prices"]["monthly"], 360_000, "nothing applied by itself");

    // Roles.
    let accept = "/api/admin/recommendations/rec_gold_down_324000/accept";
    app.assert_access("GET", "/api/admin/recommendations", Some("sales_rep"), None, false).await;
    app.assert_access("GET", "/api/admin/recommendations", Some("partner"), None, false).await;
    app.assert_access("GET", "/api/admin/analytics/elasticity", Some("sales_rep"), None, false).await;
    app.assert_access("POST", accept, None, None, false).await;
    app.assert_access("POST", accept, Some("partner"), None, false).await;
    app.assert_access("POST", accept, Some("sales_rep"), None, false).await;

    // Eight concurrent acceptances: one decision, one draft experiment, every
    // answer the same.
    let answers: Vec<(u16, Value)> =
        futures::future::join_all((0..8).map(|_| app.call("POST", accept, Some("sales_manager"), None))).await;
    for (status, a) in &answers {
        assert_eq!(*status, 200, "{a}");
        assert_eq!(a, &answers[0].1);
    }
    let accepted = &answers[0].1;
    assert_eq!((accepted["status"].as_str(), accepted["version"].as_i64()), (Some("accepted"), Some(2)));
    let exp_id = accepted["experimentId"].as_str().unwrap();
    let (status, exp) = app.call("GET", &format!("{EXPERIMENTS}/{exp_id}"), Some("admin"), None).await;
    assert_eq!(status, 200, "{exp}");
    assert_eq!((exp["status"].as_str(), exp["targetTier"].as_str()), (Some("draft"), Some("gold")));
    assert_eq!(exp["variants"][1]["pricing"]["monthly"], 324_000);
    let (_, drafts) = app.call("GET", &format!("{EXPERIMENTS}?status=draft"), Some("admin"), None).await;
    assert_eq!(drafts["items"].as_array().map(Vec::len), Some(1), "{drafts}");

    // The other decision is refused; an unknown one is not found; a body is refused.
    let (status, body) =
        app.call("POST", "/api/admin/recommendations/rec_gold_down_324000/dismiss", Some("admin"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("recommendation_decided")), "{body}");
    let (status, _) = app.call("POST", "/api/admin/recommendations/rec_nope/accept", Some("admin"), None).await;
    assert_eq!(status, 404);
    let (status, body) = app.call("POST", accept, Some("admin"), Some(json!({"price": 1}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["details"]["fields"]["price"].is_string(), "{body}");

    // The next day's run makes the same advice again: its decision stands.
    cron.run(&RunDate::for_date(today.succ_opt().unwrap())).await.unwrap();
    let (_, list) = app.call("GET", "/api/admin/recommendations", Some("admin"), None).await;
    assert_eq!(list["recommendations"].as_array().unwrap().len(), 1);
    assert_eq!(list["recommendations"][0]["status"], "accepted");
}

/// §5 of the issue: the daily intelligence and alert steps read aggregates only,
/// so tripling the partners changes none of their DynamoDB calls.
#[tokio::test]
async fn the_daily_steps_make_the_same_calls_whatever_the_number_of_partners() {
    use expiry_cron::DailyStep;
    use tierdesk::store::count_calls;
    let app = TestApp::seeded().await;
    let (status, _) = app
        .call(
            "PUT",
            "/api/admin/alert-rules/quiet",
            Some("admin"),
            Some(json!({"name": "Quiet", "metric": "churn_rate", "threshold": 10_000, "recipients": ["ops@example.com"]})),
        )
        .await;
    assert_eq!(status, 201);
    let mailer = Mailer::connect(&MailConfig::local(ses::endpoint()), app.store.clone()).await;
    let alerts = expiry_cron::alerts::StaffAlerts {
        mailer,
        clock: std::sync::Arc::new(tierdesk::SystemClock),
        lease_secs: 900,
        console_url: "http://127.0.0.1:3000/".into(),
    };
    let run = RunDate::for_date(day("2026-12-07"));
    let mut calls = Vec::new();
    for domain in ["one.example.com", "two.example.com", "three.example.com"] {
        devtools::seed_history::replay(&app.store, "2025-06", 18, 4, domain).await.unwrap();
        let (done, intelligence) = count_calls(expiry_cron::intelligence::Intelligence.run(&app.store, &run)).await;
        done.unwrap();
        let (done, alerting) = count_calls(alerts.run(&app.store, &run)).await;
        done.unwrap();
        calls.push((intelligence, alerting));
    }
    assert_eq!(calls[0], calls[2], "calls with 1× and 3× the partners: {calls:?}");
    eprintln!("intelligence step {} calls, staff alerts step {} calls", calls[0].0, calls[0].1);
}
