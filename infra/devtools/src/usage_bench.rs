//! `bench usage`: DynamoDB operations per usage route, split into reads and writes
//! (the promotions bench's interceptor counts each operation by name), and the
//! latency of `POST /api/features/check` under a bounded loopback load of 1,000
//! concurrent users through a dev gateway on TCP, each user a partner of its own
//! (so the first check of every user misses the instance's check cache).

use crate::gateway::{self, Gateway};
use crate::promotions_bench::{describe, load, users, OpCounter};
use crate::{jwt, routes, seed};
use futures::StreamExt;
use serde_json::json;
use std::sync::Arc;

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
    let admin = jwt::token_for("admin", None, "bench-admin", now, 3_600, &secret);
    let service = jwt::token_for("service", None, "bench-product", now, 3_600, &secret);
    let suffix = ulid::Ulid::new().to_string().to_lowercase();

    // The catalog (a no-op when `make run` seeded it) and a free partner.
    seed::call_json(&gw, "POST", "/api/admin/tiers/initialize", Some(&admin), None).await;
    let (_, partner) = seed::call_json(
        &gw,
        "POST",
        "/api/admin/partners",
        Some(&admin),
        Some(json!({"companyName": "Bench Usage", "primaryEmail": format!("usage-{suffix}@bench.example.com")})),
    )
    .await;
    let partner_id = partner["partnerId"].as_str().ok_or("partner not created")?.to_string();
    let partner_token = jwt::token_for("partner", Some(&partner_id), "bench-partner", now, 3_600, &secret);

    println!("| route | status | DynamoDB reads | writes | operations |\n|---|---|---|---|---|");
    let row = |label: &str, status: u16| {
        let (reads, writes, list) = describe(&counter.take());
        println!("| `{label}` | {status} | {reads} | {writes} | {list} |");
    };
    counter.take();
    let track = |key: &str| json!({"metric": "leads", "count": 1, "idempotencyKey": key});
    let (status, _) = seed::call_json(&gw, "POST", "/api/usage/track", Some(&partner_token), Some(track("k1"))).await;
    row("POST /api/usage/track (first this month, tier read: cold cache)", status);
    let (status, _) = seed::call_json(&gw, "POST", "/api/usage/track", Some(&partner_token), Some(track("k2"))).await;
    row("POST /api/usage/track", status);
    let (status, _) = seed::call_json(&gw, "POST", "/api/usage/track", Some(&partner_token), Some(track("k2"))).await;
    row("POST /api/usage/track (replayed key)", status);
    let by_service = json!({"metric": "aiResponses", "count": 2, "idempotencyKey": "s1", "partnerId": partner_id});
    let (status, _) = seed::call_json(&gw, "POST", "/api/usage/track", Some(&service), Some(by_service)).await;
    row("POST /api/usage/track (service, names the partner)", status);
    let over = json!({"metric": "leads", "count": 50, "idempotencyKey": "k3"});
    let (status, _) = seed::call_json(&gw, "POST", "/api/usage/track", Some(&partner_token), Some(over)).await;
    row("POST /api/usage/track (refused: count above the hard limit)", status);
    for n in 0..8 {
        let key = format!("fill{n}");
        seed::call_json(&gw, "POST", "/api/usage/track", Some(&partner_token), Some(track(&key))).await;
    }
    counter.take();
    let (status, _) = seed::call_json(&gw, "POST", "/api/usage/track", Some(&partner_token), Some(track("k4"))).await;
    row("POST /api/usage/track (refused: limit reached, seen in the read)", status);
    let (status, _) = seed::call_json(&gw, "GET", "/api/usage/current", Some(&partner_token), None).await;
    row("GET /api/usage/current", status);
    let (status, _) = seed::call_json(&gw, "GET", "/api/usage/limits", Some(&partner_token), None).await;
    row("GET /api/usage/limits", status);
    let (status, _) = seed::call_json(&gw, "GET", "/api/features/available", Some(&partner_token), None).await;
    row("GET /api/features/available", status);
    let check = json!({"feature": "leads"});
    let (status, _) =
        seed::call_json(&gw, "POST", "/api/features/check", Some(&partner_token), Some(check.clone())).await;
    row("POST /api/features/check", status);
    let (status, _) =
        seed::call_json(&gw, "POST", "/api/features/check", Some(&partner_token), Some(check.clone())).await;
    row("POST /api/features/check (again within FEATURE_CHECK_CACHE_SECS)", status);
    println!();
    println!(
        "Tiers come from the instance's cache (`PUBLIC_CACHE_TTL_SECS`); a cold cache adds one BatchGetItem. \
         A track call's write is one `TransactWriteItems` (idempotency record, counter, adoption shard). \
         A feature check reuses the partner's last read on the instance for `FEATURE_CHECK_CACHE_SECS`."
    );

    // One partner per load-test user, so each user's first check is a cache miss.
    let tokens: Vec<String> = futures::stream::iter(0..users())
        .map(|n| {
            let (gw, admin, secret, suffix) = (&gw, &admin, &secret, &suffix);
            async move {
                let body = json!({
                    "companyName": format!("Bench Check {n}"),
                    "primaryEmail": format!("check-{n}-{suffix}@bench.example.com"),
                });
                let (_, p) = seed::call_json(gw, "POST", "/api/admin/partners", Some(admin), Some(body)).await;
                let id = p["partnerId"].as_str().map(str::to_string);
                id.map(|id| jwt::token_for("partner", Some(&id), "bench-partner", now, 3_600, secret))
            }
        })
        .buffer_unordered(16)
        .filter_map(|t| async move { t })
        .collect()
        .await;
    if tokens.len() != users() {
        return Err(format!("created {} of {} load-test partners", tokens.len(), users()).into());
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = gw.clone().router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let base = format!("http://{addr}");
    println!();
    println!("| route | concurrent users | think time | requests | p50 ms | p95 ms | p99 ms | req/s | errors |\n|---|---|---|---|---|---|---|---|---|");
    for with_think_time in [true, false] {
        load(&base, "/api/features/check", &check.to_string(), &tokens, with_think_time).await?;
    }
    server.abort();
    Ok(())
}
