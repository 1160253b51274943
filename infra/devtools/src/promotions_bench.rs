//! `bench promotions`: DynamoDB operations per promotions route, split into reads
//! and writes (an SDK interceptor counts each operation by name), and the latency
//! of `POST /api/promotions/validate` under a bounded loopback load of 1,000
//! concurrent users through a dev gateway on TCP.

use crate::gateway::{self, Gateway};
use crate::{jwt, routes, seed};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// DynamoDB operations by name since the last `take`.
#[derive(Debug, Default, Clone)]
pub(crate) struct OpCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl OpCounter {
    pub(crate) fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Intercept for OpCounter {
    fn name(&self) -> &'static str {
        "bench.OpCounter"
    }

    /// Once per attempt (no retries happen here); the operation's name is in the
    /// config bag by then.
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map_or("?".to_string(), |m| m.name().to_string());
        *self.0.lock().unwrap_or_else(|p| p.into_inner()).entry(name).or_default() += 1;
        Ok(())
    }
}

const READS: [&str; 4] = ["GetItem", "BatchGetItem", "Query", "Scan"];

pub(crate) fn describe(ops: &BTreeMap<String, u64>) -> (u64, u64, String) {
    let reads = ops.iter().filter(|(k, _)| READS.contains(&k.as_str())).map(|(_, v)| v).sum();
    let writes = ops.iter().filter(|(k, _)| !READS.contains(&k.as_str())).map(|(_, v)| v).sum();
    let list = ops.iter().map(|(k, v)| format!("{k} ×{v}")).collect::<Vec<_>>().join(", ");
    (reads, writes, list)
}

pub(crate) fn promotion_body(name: &str, extra: Value) -> Value {
    let mut body = json!({
        "name": name, "discountType": "percentage", "discountValue": 15, "appliesTo": "both",
        "startDate": "2026-01-01", "endDate": "2099-12-31",
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    body
}

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
    let admin = jwt::token_for("admin", None, "bench-admin", now, 3_600, &secret);
    let suffix = ulid::Ulid::new().to_string();
    let code = format!("BENCH{}", &suffix[16..]);

    // A customer to redeem for.
    let (_, partner) = seed::call_json(
        &gw,
        "POST",
        "/api/admin/partners",
        Some(&admin),
        Some(json!({"companyName": "Bench Promo", "primaryEmail": format!("promo-{}@bench.example.com", suffix.to_lowercase())})),
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
    let (status, created) = seed::call_json(
        &gw,
        "POST",
        "/api/admin/promotions",
        Some(&manager),
        Some(promotion_body(
            "Bench 25%",
            json!({"discountValue": 25, "promotionCodes": [code], "redemptionsPerUser": 1000}),
        )),
    )
    .await;
    row("POST /api/admin/promotions (1 code)", status);
    let id = created["promotionId"].as_str().ok_or("promotion not created")?.to_string();
    let (status, _) = seed::call_json(&gw, "GET", &format!("/api/admin/promotions/{id}"), Some(&admin), None).await;
    row("GET /api/admin/promotions/{id}", status);
    let (status, _) = seed::call_json(&gw, "GET", "/api/admin/promotions?status=draft", Some(&admin), None).await;
    row("GET /api/admin/promotions?status=draft", status);
    let (status, _) =
        seed::call_json(&gw, "POST", &format!("/api/admin/promotions/{id}/submit"), Some(&manager), None).await;
    row("POST …/{id}/submit (emails the approvers)", status);
    let (status, _) =
        seed::call_json(&gw, "POST", &format!("/api/admin/promotions/{id}/approve"), Some(&admin), None).await;
    row("POST …/{id}/approve (emails the creator)", status);
    let validate_code = json!({"code": code, "tierId": "gold"});
    let (status, _) = seed::call_json(&gw, "POST", "/api/promotions/validate", None, Some(validate_code.clone())).await;
    row("POST /api/promotions/validate (code)", status);
    // A second promotion without codes, to validate and redeem by id.
    let (_, by_id) = seed::call_json(
        &gw,
        "POST",
        "/api/admin/promotions",
        Some(&manager),
        Some(promotion_body("Bench by id", json!({"redemptionsPerUser": 1000}))),
    )
    .await;
    let id2 = by_id["promotionId"].as_str().ok_or("promotion not created")?.to_string();
    seed::call_json(&gw, "POST", &format!("/api/admin/promotions/{id2}/submit"), Some(&manager), None).await;
    counter.take();
    let validate_id = json!({"promotionId": id2, "tierId": "gold", "partnerId": partner_id});
    let (status, _) = seed::call_json(&gw, "POST", "/api/promotions/validate", None, Some(validate_id)).await;
    row("POST /api/promotions/validate (id, with partnerId)", status);
    let redeem_code = json!({"code": code, "tierId": "gold"});
    let (status, _) =
        seed::call_json(&gw, "POST", "/api/promotions/redeem", Some(&partner_token), Some(redeem_code.clone())).await;
    row("POST /api/promotions/redeem (code)", status);
    let (status, _) = seed::call_json(
        &gw,
        "POST",
        "/api/promotions/redeem",
        Some(&partner_token),
        Some(json!({"promotionId": id2, "tierId": "gold"})),
    )
    .await;
    row("POST /api/promotions/redeem (id)", status);
    let (status, _) =
        seed::call_json(&gw, "GET", &format!("/api/admin/promotions/{id}/redemptions"), Some(&admin), None).await;
    row("GET …/{id}/redemptions", status);
    println!();
    println!(
        "Validate also counts the validation (one `UpdateItem` per promotion, the conversion-rate denominator); \
         the redemption's writes are one `TransactWriteItems`."
    );

    // Load through a gateway on loopback TCP.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = gw.clone().router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let base = format!("http://{addr}");
    println!();
    println!("| route | concurrent users | think time | requests | p50 ms | p95 ms | p99 ms | req/s | errors |\n|---|---|---|---|---|---|---|---|---|");
    for with_think_time in [true, false] {
        load(&base, "/api/promotions/validate", &validate_code.to_string(), &[], with_think_time).await?;
    }
    server.abort();
    Ok(())
}

const DEFAULT_USERS: usize = 1_000;

/// `BENCH_USERS` shrinks the load for a quick smoke run of a debug build; the
/// reported figures always use the default 1,000.
pub(crate) fn users() -> usize {
    std::env::var("BENCH_USERS").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(DEFAULT_USERS)
}
const REQUESTS_PER_USER: usize = 5;
const STAGE_DEADLINE: Duration = Duration::from_secs(120);

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// `users()` concurrent users, each sending `REQUESTS_PER_USER` requests; user `u`
/// sends `tokens[u % tokens.len()]` as its bearer token (none when `tokens` is empty).
pub(crate) async fn load(
    base: &str,
    path: &str,
    body: &str,
    tokens: &[String],
    with_think_time: bool,
) -> Result<(), Error> {
    let users_n = users();
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(users_n)
        .build_http::<Full<Bytes>>();
    let url = format!("{base}{path}");
    let started = Instant::now();
    let mut users = tokio::task::JoinSet::new();
    for user in 0..users_n {
        let client = client.clone();
        let url = url.clone();
        let body = body.to_string();
        let token = (!tokens.is_empty()).then(|| tokens[user % tokens.len()].clone());
        users.spawn(async move {
            let mut samples = Vec::with_capacity(REQUESTS_PER_USER);
            let mut errors = 0usize;
            for request in 0..REQUESTS_PER_USER {
                if with_think_time {
                    let ms = 500 + ((user * 7_919 + request * 104_729) % 1_000) as u64;
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                let mut req = http::Request::post(url.as_str()).header("content-type", "application/json");
                if let Some(t) = &token {
                    req = req.header("authorization", format!("Bearer {t}"));
                }
                let Ok(req) = req.body(Full::new(Bytes::from(body.clone()))) else {
                    errors += 1;
                    continue;
                };
                let t = Instant::now();
                let ok = match client.request(req).await {
                    Ok(resp) => {
                        let status = resp.status();
                        resp.into_body().collect().await.is_ok() && status.is_success()
                    }
                    Err(_) => false,
                };
                samples.push(t.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            (samples, errors)
        });
    }
    let mut all = Vec::with_capacity(users_n * REQUESTS_PER_USER);
    let mut errors = 0;
    let collected = tokio::time::timeout(STAGE_DEADLINE, async {
        while let Some(joined) = users.join_next().await {
            if let Ok((samples, e)) = joined {
                all.extend(samples);
                errors += e;
            }
        }
    })
    .await;
    if collected.is_err() {
        users.abort_all();
        errors += users_n * REQUESTS_PER_USER - all.len();
    }
    let elapsed = started.elapsed();
    all.sort();
    println!(
        "| `POST {path}` | {users_n} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {errors} |",
        if with_think_time { "0.5–1.5 s" } else { "none (closed loop)" },
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.95),
        percentile(&all, 0.99),
        all.len() as f64 / elapsed.as_secs_f64(),
    );
    Ok(())
}
