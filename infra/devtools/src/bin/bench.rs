//! `bench`: the figures `make bench` reports. Every stage is bounded in count and
//! time and stops by itself.
//!
//!   bench calls                     DynamoDB calls per tiers route (in-process)
//!   bench cold-init BINARY...       start → first Runtime API poll, peak RSS, sizes,
//!                                   one table for all the binaries given
//!   bench cost                      own time, DynamoDB capacity and calls per route,
//!                                   and the monthly bill at 1,000–100,000 partners
//!   bench load LABEL=URL...         1,000 concurrent users through each dev gateway
//!   bench ddb-get                   raw DynamoDB Local GetItem latency
//!   bench partners                  DynamoDB calls per partners route, and the
//!                                   dashboard/list reads at 1,000 and 50,000 partners
//!   bench billing                   DynamoDB calls per billing route and per Stripe
//!                                   webhook event type, over a real flow
//!   bench cron                      the expiry cron's reads and run time at 10,000 and
//!                                   100,000 partners, 1,000 due each time

use aws_sdk_dynamodb::types::AttributeValue;
use devtools::gateway::{self, Gateway};
use devtools::{jwt, routes, seed};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tierdesk::store::{total_calls, PartnerStore, TierStore};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

async fn gateway_from_env() -> Result<(Arc<Gateway>, String), Error> {
    let config = tierdesk::Config::from_env()?;
    let template = std::env::var("TIERDESK_TEMPLATE").unwrap_or_else(|_| "template.yaml".into());
    let routes = routes::from_template(&std::fs::read_to_string(template)?)?;
    let handlers = gateway::handlers(&config).await;
    let secret = jwt::secret_from_env();
    Ok((Arc::new(Gateway::new(routes, &handlers, secret.clone())?), secret))
}

/// Sequential calls, so the process-wide counter's delta is exactly one request's.
async fn calls_of(gw: &Gateway, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, u64) {
    let before = total_calls();
    let (status, _) = seed::call_json(gw, method, path, token, body).await;
    (status, total_calls() - before)
}

async fn bench_calls() -> Result<(), Error> {
    let (gw, secret) = gateway_from_env().await?;
    let now = chrono::Utc::now().timestamp();
    let admin = jwt::token_for("admin", None, "bench-admin", now, 600, &secret);
    let tok = Some(admin.as_str());
    let upgrade = json!({"fromTierId": "gold", "toTierId": "platinum", "billingPeriod": "monthly"});
    let suffix = ulid::Ulid::new().to_string().to_lowercase();
    let id = format!("bench-{suffix}");
    let body = json!({"tierId": id, "name": "Bench", "tierLevel": 9, "prices": {"monthly": 100, "yearly": 1000},
                      "features": [{"featureId": "f1", "name": "F1"}]});
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/api/tiers".into(), None),
        ("GET", "/api/tiers/compare?ids=free,gold,platinum".into(), None),
        ("POST", "/api/tiers/upgrade-price".into(), Some(upgrade.clone())),
        ("GET", "/api/admin/tiers".into(), None),
        ("GET", "/api/admin/tiers/gold".into(), None),
        ("POST", "/api/admin/tiers".into(), Some(body)),
        ("PUT", format!("/api/admin/tiers/{id}"), Some(json!({"version": 1, "name": "Renamed"}))),
        (
            "PUT",
            format!("/api/admin/tiers/{id}"),
            Some(json!({"version": 2, "prices": {"monthly": 200, "yearly": 2000}})),
        ),
        ("POST", format!("/api/admin/tiers/{id}/features"), Some(json!({"featureId": "f2", "name": "F2"}))),
        ("PUT", format!("/api/admin/tiers/{id}/features/f2"), Some(json!({"enabled": false}))),
        ("DELETE", format!("/api/admin/tiers/{id}/features/f2"), None),
        ("DELETE", format!("/api/admin/tiers/{id}"), None),
        ("POST", "/api/admin/tiers/initialize".into(), None),
    ];
    println!("| route | status | DynamoDB calls |\n|---|---|---|");
    for (method, path, body) in cases {
        let (status, calls) = calls_of(&gw, method, &path, tok, body).await;
        let shown = path.replace(&id, "{tierId}");
        println!("| `{method} {shown}` | {status} | {calls} |");
    }
    // The catalog reads stay one call as the catalog grows.
    for i in 0..200 {
        let t = json!({"tierId": format!("grow-{suffix}-{i}"), "name": "Grow", "segment": "zz", "tierLevel": 1 + (i % 50),
                       "prices": {"monthly": 100 * i, "yearly": 1000 * i}});
        seed::call_json(&gw, "POST", "/api/admin/tiers", tok, Some(t)).await;
    }
    let (_, list) = calls_of(&gw, "GET", "/api/tiers", None, None).await;
    let (_, up) = calls_of(&gw, "POST", "/api/tiers/upgrade-price", None, Some(upgrade)).await;
    println!("\nWith 200 more tiers in the catalog: `GET /api/tiers` {list} call(s), `POST /api/tiers/upgrade-price` {up} call(s).");
    // The storefront reads (docs/storefront.md): anonymous, so no experiment lookup.
    let (_, segments) = calls_of(&gw, "GET", "/api/segments", None, None).await;
    let (status, page) = calls_of(&gw, "GET", "/api/segments/essential", None, None).await;
    println!(
        "Storefront: `GET /api/segments` {segments} call(s), `GET /api/segments/essential` ({status}) {page} call(s)."
    );
    Ok(())
}

/// Partners in varied states, planned by the domain exactly as the API would, for a
/// backfill. Deterministic, so every run measures the same table.
fn synthetic_partners(
    from: usize,
    to: usize,
    tiers: &[tierdesk::domain::tier::Tier],
) -> Vec<tierdesk::domain::partner::Partner> {
    use tierdesk::domain::partner::NewPartner;
    use tierdesk::domain::subscription::{
        self, Cancellation, Catalog, TierChange, TransitionContext, Trigger, TriggerType,
    };
    let catalog = Catalog::new(tiers);
    let today = chrono::Utc::now().date_naive();
    let ctx = TransitionContext {
        today,
        at: tierdesk::clock::rfc3339(chrono::Utc::now()),
        actor: "bench".into(),
        request_id: None,
        transition_id: "bench".into(),
        movement_id: "bench".into(),
        trigger: Trigger { trigger_type: TriggerType::Automated, sales_rep: None, promotion_id: None, reason: None },
    };
    (from..to)
        .filter_map(|i| {
            let new = NewPartner::parse(
                &json!({"companyName": format!("Bench {i}"), "primaryEmail": format!("p{i}@bench.example.com")}),
            )
            .ok()?;
            let mut p = subscription::plan_signup(&format!("prt_bench{i:08}"), new, catalog, &ctx).ok()?.after;
            if i % 3 != 0 {
                let end = today + chrono::Duration::days(1 + (i % 400) as i64);
                let change = TierChange {
                    tier: if i % 2 == 0 { "gold".into() } else { "platinum".into() },
                    subscription_end_date: Some(end),
                    auto_renewal: Some(i % 5 != 0),
                    ..TierChange::default()
                };
                p = subscription::plan_tier_change(&p, &change, catalog, &ctx).ok()?.after;
                if i % 7 == 0 {
                    let cancel = Cancellation { reason: "bench".into(), immediate: i % 14 == 0, version: None };
                    p = subscription::plan_cancel(&p, &cancel, catalog, &ctx).ok()?.after;
                }
            }
            Some(p)
        })
        .collect()
}

async fn bench_partners() -> Result<(), Error> {
    let (gw, secret) = gateway_from_env().await?;
    let config = tierdesk::Config::from_env()?;
    let store = tierdesk::store::Store::connect(&config).await;
    let now = chrono::Utc::now().timestamp();
    let admin = jwt::token_for("admin", None, "bench-admin", now, 3600, &secret);
    let tok = Some(admin.as_str());

    let email = format!("bench-{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
    let (_, created) = seed::call_json(
        &gw,
        "POST",
        "/api/admin/partners",
        tok,
        Some(json!({"companyName": "Bench", "primaryEmail": email})),
    )
    .await;
    let id = created["partnerId"].as_str().unwrap_or_default().to_string();
    let p = format!("/api/admin/partners/{id}");
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", p.clone(), None),
        ("PATCH", format!("{p}/engagement-tier?dryRun=true"), Some(json!({"tier": "gold"}))),
        ("PATCH", format!("{p}/engagement-tier"), Some(json!({"tier": "gold"}))),
        ("PATCH", format!("{p}/engagement-tier"), Some(json!({"tier": "platinum", "version": 2}))),
        ("PATCH", p.clone(), Some(json!({"autoRenewal": false}))),
        ("POST", format!("{p}/notes"), Some(json!({"note": "bench"}))),
        ("POST", format!("{p}/assign"), Some(json!({"salesRep": "bench-rep"}))),
        ("POST", format!("{p}/cancel"), Some(json!({"reason": "bench"}))),
        ("GET", format!("{p}/history"), None),
        ("GET", format!("{p}/journey"), None),
    ];
    println!("| route | status | DynamoDB calls |\n|---|---|---|");
    let (status, calls) = {
        let before = total_calls();
        let email = format!("bench2-{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
        let (status, _) = seed::call_json(
            &gw,
            "POST",
            "/api/admin/partners",
            tok,
            Some(json!({"companyName": "B", "primaryEmail": email})),
        )
        .await;
        (status, total_calls() - before)
    };
    println!("| `POST /api/admin/partners` | {status} | {calls} |");
    for (method, path, body) in cases {
        let (status, calls) = calls_of(&gw, method, &path, tok, body).await;
        println!("| `{method} {}` | {status} | {calls} |", path.replace(&id, "{partnerId}"));
    }

    let reads = [
        "/api/admin/partners",
        "/api/admin/partners?tier=gold",
        "/api/admin/partners?status=cancelled",
        "/api/admin/subscriptions?view=active",
        "/api/admin/subscriptions?view=expiring&tier=gold",
        "/api/admin/subscriptions?view=cancelled",
        "/api/admin/subscriptions?view=history",
        "/api/admin/subscriptions?view=active&format=csv&limit=1000",
        "/api/admin/partners/churn-risk",
        "/api/admin/partners/upsell-opportunities",
        "/api/admin/partners/win-back",
    ];
    let tiers = store.active_catalog().await?;
    let mut results: Vec<Vec<(u64, f64)>> = Vec::new();
    let mut storefront: Vec<(u64, u64)> = Vec::new();
    let mut loaded = 0;
    for target in [1_000usize, 50_000] {
        let started = Instant::now();
        let mut tasks = Vec::new();
        let chunk = 500;
        for start in (loaded..target).step_by(chunk) {
            let batch = synthetic_partners(start, (start + chunk).min(target), &tiers);
            let store = store.clone();
            tasks.push(tokio::spawn(async move { store.backfill_partners(&batch).await }));
            if tasks.len() >= 8 {
                for t in tasks.drain(..) {
                    t.await??;
                }
            }
        }
        for t in tasks {
            t.await??;
        }
        eprintln!("loaded {} partners in {:.0} s", target, started.elapsed().as_secs_f64());
        loaded = target;
        let mut row = Vec::new();
        for path in reads {
            let mut times = Vec::new();
            let mut calls = 0;
            for _ in 0..10 {
                let t = Instant::now();
                calls = calls_of(&gw, "GET", path, tok, None).await.1;
                times.push(t.elapsed());
            }
            times.sort();
            row.push((calls, percentile(&times, 0.5)));
        }
        results.push(row);
        // The storefront (issue 21): one segment with its tiers and rules, for a
        // named visitor (the experiment lookup included; a fresh cache key per
        // size), and the upsell evaluation. Neither reads a partner.
        let (_, segment) =
            calls_of(&gw, "GET", &format!("/api/segments/essential?userId=bench-{target}"), None, None).await;
        let ask = json!({"tierId": "free", "addOns": ["album", "video"], "startDate": "2027-07-01"});
        let (_, upsell) = calls_of(&gw, "POST", "/api/upsell/evaluate", None, Some(ask)).await;
        storefront.push((segment, upsell));
    }
    println!("\n| read (one page, default 50 rows) | calls @ 1,000 | calls @ 50,000 | p50 ms @ 1,000 | p50 ms @ 50,000 |\n|---|---|---|---|---|");
    for (i, path) in reads.iter().enumerate() {
        let (a, b) = (results[0][i], results[1][i]);
        println!("| `GET {path}` | {} | {} | {:.1} | {:.1} |", a.0, b.0, a.1, b.1);
    }
    println!("\n| storefront read | calls @ 1,000 | calls @ 50,000 |\n|---|---|---|");
    println!(
        "| `GET /api/segments/essential?userId=…` (segment, tiers, rules, experiments) | {} | {} |",
        storefront[0].0, storefront[1].0
    );
    println!("| `POST /api/upsell/evaluate` (configuration, catalog) | {} | {} |", storefront[0].1, storefront[1].1);
    Ok(())
}

/// Partners for the cron benchmark, planned by the domain as of 60 days ago: every
/// `due_every`-th one is due on `today` (a 30-day notice, an urgent notice, or an
/// expiry, in turn); of the rest a third are free and the others hold paid terms ending
/// after the reminder window.
fn cron_partners(
    from: usize,
    to: usize,
    due_every: usize,
    tiers: &[tierdesk::domain::tier::Tier],
    today: chrono::NaiveDate,
) -> Vec<tierdesk::domain::partner::Partner> {
    use tierdesk::domain::partner::NewPartner;
    use tierdesk::domain::subscription::{self, Catalog, TierChange, TransitionContext, Trigger, TriggerType};
    let catalog = Catalog::new(tiers);
    let then = today - chrono::Duration::days(60);
    let ctx = TransitionContext {
        today: then,
        at: format!("{then}T09:00:00.000Z"),
        actor: "bench".into(),
        request_id: None,
        transition_id: "bench".into(),
        movement_id: "bench".into(),
        trigger: Trigger { trigger_type: TriggerType::Automated, sales_rep: None, promotion_id: None, reason: None },
    };
    let days = |n: i64| today + chrono::Duration::days(n);
    (from..to)
        .filter_map(|i| {
            let new = NewPartner::parse(
                &json!({"companyName": format!("Cron Bench {i}"), "primaryEmail": format!("c{i}@cronbench.example.com")}),
            )
            .ok()?;
            let p = subscription::plan_signup(&format!("prt_cronbench{i:08}"), new, catalog, &ctx).ok()?.after;
            let (end, auto) = if i % due_every == 0 {
                match (i / due_every) % 10 {
                    0..=3 => (days(8 + (i % 23) as i64), false), // 30-day notice
                    4..=6 => (days((i % 8) as i64), false),      // urgent notice
                    _ => (days(-1 - (i % 3) as i64), false),     // ended: expires
                }
            } else if i % 3 == 0 {
                return Some(p);
            } else {
                (days(31 + (i % 370) as i64), i % 5 != 0)
            };
            let change = TierChange {
                tier: if i % 2 == 0 { "gold".into() } else { "platinum".into() },
                subscription_start_date: Some(then),
                subscription_end_date: Some(end),
                auto_renewal: Some(auto),
                ..TierChange::default()
            };
            Some(subscription::plan_tier_change(&p, &change, catalog, &ctx).ok()?.after)
        })
        .collect()
}

/// The expiry cron at 10,000 and at 100,000 partners, 1,000 of them due each time:
/// its DynamoDB reads follow the partners due, not the table. Each size gets its own
/// table; emails go to the stack's SES emulator.
async fn bench_cron() -> Result<(), Error> {
    let base = tierdesk::Config::from_env()?;
    let template =
        std::fs::read_to_string(std::env::var("TIERDESK_TEMPLATE").unwrap_or_else(|_| "template.yaml".into()))?;
    let secret = jwt::secret_from_env();
    let today = chrono::Utc::now().date_naive();
    const DUE: usize = 1_000;
    println!("| partners | due today | window partners | DynamoDB reads | all DynamoDB calls | reminders (30 / 7) | expired | run time s |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut rerun_lines = Vec::new();
    for total in [10_000usize, 100_000] {
        let table = format!("cron-bench-{}", ulid::Ulid::new().to_string().to_lowercase());
        let config = tierdesk::Config { table_name: table.clone(), ..base.clone() };
        let store = tierdesk::store::Store::connect(&config).await;
        tierdesk::store::table::create_from_template(store.client(), &template, &table).await?;
        // DynamoDB Local slows every write to a stream-enabled table by an order of
        // magnitude once other tables' streams hold tens of thousands of records (the
        // partners stage leaves 150,000): measured 2,300 → 240 items/s. An emulator
        // artefact, and the cron never reads the stream, so this table has none.
        let no_stream = aws_sdk_dynamodb::types::StreamSpecification::builder().stream_enabled(false).build()?;
        store.client().update_table().table_name(&table).stream_specification(no_stream).send().await?;
        let handlers = gateway::handlers_on(store.clone(), &config).await;
        let gw = Gateway::new(routes::from_template(&template)?, &handlers, secret.clone())?;
        let admin = jwt::token_for("admin", None, "bench-admin", chrono::Utc::now().timestamp(), 600, &secret);
        let (status, body) = seed::call_json(&gw, "POST", "/api/admin/tiers/initialize", Some(&admin), None).await;
        if status != 200 {
            return Err(format!("initialize: {status} {body}").into());
        }
        let tiers = store.active_catalog().await?;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for start in (0..total).step_by(500) {
            let batch = cron_partners(start, (start + 500).min(total), total / DUE, &tiers, today);
            let store = store.clone();
            tasks.spawn(async move { store.backfill_partners(&batch).await });
            while tasks.len() >= 8 {
                if let Some(done) = tasks.join_next().await {
                    done??;
                }
            }
            if start > 0 && start % 10_000 == 0 {
                eprintln!("cron bench: {start} partners queued, {:.0} s", started.elapsed().as_secs_f64());
            }
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        eprintln!("cron bench: loaded {total} partners in {:.0} s", started.elapsed().as_secs_f64());

        let mail = tierdesk::mail::MailConfig::from_env()?;
        let cron = devtools::cron::connect(&config, expiry_cron::CronConfig::default(), &mail).await;
        let run = expiry_cron::RunDate::for_date(today);
        for pass in ["first", "rerun"] {
            let t = Instant::now();
            let summary = tokio::time::timeout(Duration::from_secs(600), cron.run(&run)).await??;
            let line = format!(
                "| {total} | {DUE} | {} | {} | {} | {} / {} | {} | {:.1} |",
                summary.window_partners,
                summary.dynamodb_reads,
                summary.dynamodb_calls,
                summary.reminders_sent.renewal_reminder_30,
                summary.reminders_sent.renewal_urgent_7,
                summary.expired,
                t.elapsed().as_secs_f64()
            );
            if summary.has_failures() {
                eprintln!("cron bench: failures {:?}", summary.errors);
            }
            if pass == "first" {
                println!("{line}");
            } else {
                rerun_lines.push(line);
            }
        }
    }
    println!("\nA second run for the same date (everything already sent and expired):\n");
    println!("| partners | due today | window partners | DynamoDB reads | all DynamoDB calls | reminders (30 / 7) | expired | run time s |");
    println!("|---|---|---|---|---|---|---|---|");
    for line in rerun_lines {
        println!("{line}");
    }
    Ok(())
}

/// Cold init of each function bootstrap, one table: start → first Runtime API poll
/// (a fake Runtime API on loopback holds the poll), peak RSS at that poll, the size
/// of the x86_64 release binary, and of the arm64 one from `make build`
/// (`target/lambda/<function>/bootstrap`) when present.
const BENCH_SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:000000000000:secret:tierdesk-bench-stripe";

async fn bench_cold_init(binaries: &[String]) -> Result<(), Error> {
    use axum::routing::get;
    const STARTS: usize = 20;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let app = axum::Router::new()
        .route(
            "/2018-06-01/runtime/invocation/next",
            get(move || {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(Instant::now());
                    // Hold the poll open, like a real Runtime API with no invocation.
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    ""
                }
            }),
        )
        // Secrets Manager's GetSecretValue (the AWS JSON protocol posts to `/`): the
        // Stripe functions read their key at cold start in Lambda, so the bench
        // starts them the same way, with the call answered on loopback.
        .route(
            "/",
            axum::routing::post(|| async {
                let secret = serde_json::json!({"apiKey": "sk_test_bench", "webhookSecrets": ["whsec_bench"]});
                (
                    [(axum::http::header::CONTENT_TYPE, "application/x-amz-json-1.1")],
                    serde_json::json!({
                        "ARN": BENCH_SECRET_ARN,
                        "Name": "tierdesk-bench-stripe",
                        "VersionId": "bench",
                        "SecretString": secret.to_string(),
                    })
                    .to_string(),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mib = |bytes: u64| bytes as f64 / 1024.0 / 1024.0;
    println!("| function | init p50 ms | init p95 ms | starts | peak RSS at first poll MiB | x86_64 size MiB (stripped) | arm64 size MiB (`make build`) |");
    println!("|---|---|---|---|---|---|---|");
    for binary in binaries {
        let name = std::path::Path::new(binary).file_name().and_then(|n| n.to_str()).unwrap_or(binary).to_string();
        let size = std::fs::metadata(binary)?.len();
        let arm64 = std::fs::metadata(format!("target/lambda/{name}/bootstrap"))
            .map_or_else(|_| "—".to_string(), |m| format!("{:.1}", mib(m.len())));
        let mut inits = Vec::new();
        let mut rss_kib = Vec::new();
        for _ in 0..STARTS {
            let started = Instant::now();
            let mut child = tokio::process::Command::new(binary)
                .env_clear()
                .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
                .env("AWS_LAMBDA_FUNCTION_NAME", &name)
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
                .env("TABLE_NAME", "tierdesk-bench")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ACCESS_KEY_ID", "bench")
                .env("AWS_SECRET_ACCESS_KEY", "bench")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                // Only the Stripe functions read these: the deployed stack's secret, as
                // `template.yaml` passes it, fetched from the loopback stand-in above.
                .env("STRIPE_SECRET_ARN", BENCH_SECRET_ARN)
                .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", format!("http://{addr}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()?;
            let Ok(Some(polled)) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await else {
                // A bootstrap that refuses its configuration exits before its first
                // poll: said in its row, and the other functions are still measured.
                inits.clear();
                break;
            };
            inits.push(polled - started);
            if let Some(pid) = child.id() {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                if let Some(kib) =
                    status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1))
                {
                    rss_kib.push(kib.parse::<u64>().unwrap_or(0));
                }
            }
            child.kill().await?;
        }
        if inits.is_empty() {
            println!(
                "| {name} | no poll within 10 s (it refused the bench's configuration) | — | — | — | {:.1} | {arm64} |",
                mib(size)
            );
            continue;
        }
        inits.sort();
        rss_kib.sort();
        println!(
            "| {name} | {:.1} | {:.1} | {STARTS} | {:.1} | {:.1} | {arm64} |",
            percentile(&inits, 0.5),
            percentile(&inits, 0.95),
            mib(rss_kib.get(rss_kib.len() / 2).copied().unwrap_or(0) * 1024),
            mib(size)
        );
    }
    Ok(())
}

const USERS: usize = 1_000;
const REQUESTS_PER_USER: usize = 5;
const STAGE_DEADLINE: Duration = Duration::from_secs(120);

/// Think time between one user's requests: 0.5–1.5 s (mean 1 s), spread
/// deterministically over users so runs are comparable. `None` = closed loop.
fn think_time(user: usize, request: usize) -> Duration {
    Duration::from_millis(500 + ((user * 7_919 + request * 104_729) % 1_000) as u64)
}

async fn load_route(base: &str, label: &str, path: &str, with_think_time: bool) -> Result<(), Error> {
    let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(USERS).build_http::<Empty<Bytes>>();
    let url: hyper::Uri = format!("{base}{path}").parse()?;
    let started = Instant::now();
    let mut users = tokio::task::JoinSet::new();
    for user in 0..USERS {
        let client = client.clone();
        let url = url.clone();
        users.spawn(async move {
            let mut samples = Vec::with_capacity(REQUESTS_PER_USER);
            let mut errors = 0usize;
            for request in 0..REQUESTS_PER_USER {
                if with_think_time {
                    tokio::time::sleep(think_time(user, request)).await;
                }
                let t = Instant::now();
                let ok = match client.get(url.clone()).await {
                    Ok(resp) => {
                        let status = resp.status();
                        let body_ok = resp.into_body().collect().await.is_ok();
                        status.is_success() && body_ok
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
    let mut all = Vec::with_capacity(USERS * REQUESTS_PER_USER);
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
        errors += USERS * REQUESTS_PER_USER - all.len();
    }
    let elapsed = started.elapsed();
    all.sort();
    println!(
        "| `GET {path}` | {label} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {} |",
        USERS,
        if with_think_time { "0.5–1.5 s" } else { "none (closed loop)" },
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.95),
        percentile(&all, 0.99),
        all.len() as f64 / elapsed.as_secs_f64(),
        errors
    );
    Ok(())
}

/// `targets`: `label=base_url` pairs, e.g. the gateway with and without the cache.
async fn bench_load(targets: &[String]) -> Result<(), Error> {
    println!(
        "| route | gateway | concurrent users | think time | requests | p50 ms | p95 ms | p99 ms | req/s | errors |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for target in targets {
        let (label, base) = target.split_once('=').ok_or("load targets are label=url")?;
        for with_think_time in [true, false] {
            load_route(base, label, "/api/tiers", with_think_time).await?;
            load_route(base, label, "/api/tiers/compare?ids=free,gold,platinum", with_think_time).await?;
        }
    }
    Ok(())
}

async fn bench_ddb_get() -> Result<(), Error> {
    let config = tierdesk::Config::from_env()?;
    let store = tierdesk::store::Store::connect(&config).await;
    let get = || {
        store
            .client()
            .get_item()
            .table_name(&config.table_name)
            .key("PK", AttributeValue::S("TIER#gold".into()))
            .key("SK", AttributeValue::S("META".into()))
            .send()
    };
    for _ in 0..50 {
        get().await?;
    }
    let mut samples = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        let t = Instant::now();
        get().await?;
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "| DynamoDB Local GetItem (sequential, 2,000) | p50 {:.2} ms | p95 {:.2} ms | p99 {:.2} ms |",
        percentile(&samples, 0.5),
        percentile(&samples, 0.95),
        percentile(&samples, 0.99)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("calls") => bench_calls().await,
        Some("cold-init") if args.len() > 1 => bench_cold_init(&args[1..]).await,
        Some("cost") => devtools::cost_bench::run().await,
        Some("load") if args.len() > 1 => bench_load(&args[1..]).await,
        Some("ddb-get") => bench_ddb_get().await,
        Some("partners") => bench_partners().await,
        Some("cron") => bench_cron().await,
        Some("billing") => devtools::billing_bench::run().await,
        Some("promotions") => devtools::promotions_bench::run().await,
        Some("usage") => devtools::usage_bench::run().await,
        Some("analytics") => devtools::analytics_bench::run().await,
        Some("experiments") => devtools::experiments_bench::run().await,
        Some("quotes") => devtools::quotes_bench::run().await,
        _ => Err("usage: bench calls | cold-init BINARY... | cost | load LABEL=BASE_URL... | ddb-get | partners | cron | billing | promotions | usage | experiments | quotes | analytics".into()),
    }
}
