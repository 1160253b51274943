//! `bench experiments`: DynamoDB operations per experiments route (reads and
//! writes, counted by an SDK interceptor), and `POST /api/experiments/{id}/assign`
//! under a bounded load of `BENCH_USERS` (default 1,000) concurrent new visitors
//! through the dev gateway in-process: p50/p95/p99 and errors.

use crate::gateway::{self, Gateway};
use crate::promotions_bench::{describe, OpCounter};
use crate::{jwt, routes, seed};
use futures::StreamExt;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

type Error = Box<dyn std::error::Error + Send + Sync>;

pub async fn run() -> Result<(), Error> {
    let config = tierdesk::Config::from_env()?;
    let counter = OpCounter::default();
    let store = tierdesk::store::Store::connect_with_interceptor(&config, counter.clone()).await;
    let template = std::env::var("TIERDESK_TEMPLATE").unwrap_or_else(|_| "template.yaml".into());
    let routes = routes::from_template(&std::fs::read_to_string(template)?)?;
    let handlers = gateway::handlers_on(store, &config).await;
    let secret = jwt::secret_from_env();
    let gw = Arc::new(Gateway::new(routes, &handlers, secret.clone())?);
    let now = chrono::Utc::now().timestamp();
    let manager = jwt::token_for("sales_manager", None, "bench-manager", now, 3_600, &secret);
    let users: usize = std::env::var("BENCH_USERS").ok().and_then(|u| u.parse().ok()).unwrap_or(1_000);

    println!("| route | status | DynamoDB reads | writes | operations |\n|---|---|---|---|---|");
    let row = |label: &str, status: u16| {
        let (reads, writes, list) = describe(&counter.take());
        println!("| `{label}` | {status} | {reads} | {writes} | {list} |");
    };
    // Tiers first: a tier already held by an earlier run's experiment would refuse
    // the start, so the bench makes its own tier.
    let tier_id = format!("bench-exp-{}", &ulid::Ulid::new().to_string().to_lowercase()[16..]);
    let (status, _) = seed::call_json(
        &gw,
        "POST",
        "/api/admin/tiers",
        Some(&jwt::token_for("admin", None, "bench-admin", now, 3_600, &secret)),
        Some(json!({"tierId": tier_id, "name": "Bench", "prices": {"monthly": 10_000, "yearly": 100_000}})),
    )
    .await;
    if status != 201 {
        return Err(format!("bench tier not created: {status}").into());
    }
    counter.take();
    let body = json!({
        "name": "Bench price test", "targetTier": tier_id, "minSampleSize": 1,
        "variants": [
            {"variantId": "control", "name": "Control", "isControl": true, "allocation": 50},
            {"variantId": "higher", "name": "Higher", "allocation": 50, "pricing": {"monthly": 12_000}}
        ]
    });
    let (status, created) = seed::call_json(&gw, "POST", "/api/admin/experiments", Some(&manager), Some(body)).await;
    row("POST /api/admin/experiments", status);
    let id = created["experimentId"].as_str().ok_or("experiment not created")?.to_string();
    let admin_path = |tail: &str| format!("/api/admin/experiments/{id}{tail}");
    let (status, _) = seed::call_json(&gw, "POST", &admin_path("/start"), Some(&manager), None).await;
    row("POST /api/admin/experiments/{id}/start", status);
    let assign_path = format!("/api/experiments/{id}/assign");
    let track_path = format!("/api/experiments/{id}/track");
    let (status, _) = seed::call_json(&gw, "POST", &assign_path, None, Some(json!({"userId": "bench-u1"}))).await;
    row("POST /api/experiments/{id}/assign (first exposure)", status);
    let (status, _) = seed::call_json(&gw, "POST", &assign_path, None, Some(json!({"userId": "bench-u1"}))).await;
    row("POST /api/experiments/{id}/assign (repeat)", status);
    let conversion = json!({"userId": "bench-u1", "metric": "conversion", "value": 12_000});
    let (status, _) = seed::call_json(&gw, "POST", &track_path, None, Some(conversion.clone())).await;
    row("POST /api/experiments/{id}/track (conversion)", status);
    let (status, _) = seed::call_json(&gw, "POST", &track_path, None, Some(conversion)).await;
    row("POST /api/experiments/{id}/track (replay)", status);
    let fresh = json!({"userId": "bench-u2", "metric": "signup"});
    let (status, _) = seed::call_json(&gw, "POST", &track_path, None, Some(fresh)).await;
    row("POST /api/experiments/{id}/track (never assigned)", status);
    let (status, _) = seed::call_json(&gw, "GET", &admin_path("/results"), Some(&manager), None).await;
    row("GET /api/admin/experiments/{id}/results", status);
    let (status, _) = seed::call_json(&gw, "GET", "/api/tiers?userId=bench-u1", None, None).await;
    row("GET /api/tiers?userId= (visitor priced)", status);

    // Bounded load: every visitor new, all at once up to `users` in flight.
    let started = Instant::now();
    let timings: Vec<(u16, f64)> = futures::stream::iter((0..users).map(|i| {
        let gw = gw.clone();
        let path = assign_path.clone();
        async move {
            let t = Instant::now();
            let (status, _) =
                seed::call_json(&gw, "POST", &path, None, Some(json!({"userId": format!("load-{i}")}))).await;
            (status, t.elapsed().as_secs_f64() * 1000.0)
        }
    }))
    .buffer_unordered(users.max(1))
    .collect()
    .await;
    let wall = started.elapsed().as_secs_f64();
    counter.take();
    let errors = timings.iter().filter(|(s, _)| *s != 200).count();
    let mut ms: Vec<f64> = timings.iter().map(|(_, m)| *m).collect();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let pct = |p: f64| ms.get(((ms.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
    println!();
    println!("| assign load | users | p50 ms | p95 ms | p99 ms | errors | wall s |\n|---|---|---|---|---|---|---|");
    println!(
        "| in-process gateway, all new visitors | {users} | {:.1} | {:.1} | {:.1} | {errors} | {wall:.1} |",
        pct(0.50),
        pct(0.95),
        pct(0.99)
    );
    let (status, _) = seed::call_json(&gw, "POST", &admin_path("/cancel"), Some(&manager), None).await;
    row("POST /api/admin/experiments/{id}/cancel", status);
    Ok(())
}
