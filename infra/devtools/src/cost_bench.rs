//! `bench cost`: Tierdesk's own time per warm request, the DynamoDB capacity and
//! outside calls behind it, and the monthly bill the cost model (`crate::cost`)
//! makes of them at 1,000, 10,000 and 100,000 partners.
//!
//! Every handler of the dev gateway is wrapped in a metering scope
//! (`tierdesk::meter`): handler wall time, the time spent waiting on DynamoDB, SES
//! and Stripe, DynamoDB's `ConsumedCapacity` and the bytes the function logs (as
//! JSON, the way it logs in Lambda). Own time = wall − waiting. A fixed flow that
//! touches the routes the other stages exercise runs `BENCH_COST_REPS` times
//! (default 200) after one warm-up pass, sequentially, in-process; Stripe is the
//! in-process emulator (its webhooks reach the gateway over loopback TCP), SES the
//! stack's emulator. Then the expiry cron runs twice for today under the meter.

use crate::cost::{self, Invocation, Prices, Runtime, Traffic};
use crate::gateway::{self, Gateway, Handler, Services};
use crate::{billing_bench, jwt, promotions_bench, quotes_bench, routes, seed};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stripe_emulator::{Emulator, EmulatorConfig};
use tierdesk::meter::{self, Usage};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone)]
struct Sample {
    status: u16,
    wall: Duration,
    usage: Usage,
    log_bytes: u64,
}

impl Sample {
    fn own(&self) -> Duration {
        self.wall.saturating_sub(self.usage.wait)
    }
}

type Samples = Arc<Mutex<BTreeMap<String, Vec<Sample>>>>;

/// Off during the warm-up pass.
static RECORDING: AtomicBool = AtomicBool::new(false);

tokio::task_local! {
    static LOG_BYTES: Arc<AtomicU64>;
}

/// Log lines go nowhere; their bytes are counted for the request being metered.
#[derive(Clone, Copy)]
struct CountingWriter;

impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = LOG_BYTES.try_with(|b| b.fetch_add(buf.len() as u64, Ordering::Relaxed));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The functions' logs as `tierdesk::telemetry` writes them in Lambda (JSON, no
/// time, the template's default `LogLevel` info), into the counter.
fn count_logs() {
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_target(false)
        .with_ansi(false)
        .json()
        .without_time()
        .with_current_span(false)
        .with_writer(|| CountingWriter)
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
}

fn route_key(req: &lambda_http::Request) -> String {
    use lambda_http::RequestExt;
    match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c.route_key.clone().unwrap_or_default(),
        _ => format!("{} {}", req.method(), req.uri().path()),
    }
}

fn metering(inner: Handler, samples: Samples) -> Handler {
    Arc::new(move |req: lambda_http::Request| {
        let inner = inner.clone();
        let samples = samples.clone();
        let key = route_key(&req);
        Box::pin(async move {
            let bytes = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let (response, usage) = LOG_BYTES.scope(bytes.clone(), meter::metered(inner(req))).await;
            let wall = started.elapsed();
            if RECORDING.load(Ordering::Relaxed) {
                let sample = Sample {
                    status: response.status().as_u16(),
                    wall,
                    usage,
                    log_bytes: bytes.load(Ordering::Relaxed),
                };
                samples.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_default().push(sample);
            }
            response
        })
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Per route: the mean of everything, and own-time percentiles.
struct RouteStats {
    n: usize,
    statuses: String,
    own_p50: f64,
    own_p99: f64,
    wall_p50: f64,
    mean: Invocation,
}

fn stats(samples: &[Sample], via_api_gateway: bool) -> RouteStats {
    let n = samples.len().max(1) as f64;
    let mut own: Vec<f64> = samples.iter().map(|s| ms(s.own())).collect();
    own.sort_by(f64::total_cmp);
    let mut wall: Vec<f64> = samples.iter().map(|s| ms(s.wall)).collect();
    wall.sort_by(f64::total_cmp);
    let mean = |f: &dyn Fn(&Sample) -> f64| samples.iter().map(f).sum::<f64>() / n;
    let mut statuses: Vec<u16> = samples.iter().map(|s| s.status).collect();
    statuses.sort_unstable();
    statuses.dedup();
    RouteStats {
        n: samples.len(),
        statuses: statuses.iter().map(u16::to_string).collect::<Vec<_>>().join("/"),
        own_p50: pct(&own, 0.5),
        own_p99: pct(&own, 0.99),
        wall_p50: pct(&wall, 0.5),
        mean: Invocation {
            own_ms: mean(&|s| ms(s.own())),
            dynamodb_calls: mean(&|s| s.usage.dynamodb_calls as f64),
            ses_calls: mean(&|s| s.usage.ses_calls as f64),
            stripe_calls: mean(&|s| s.usage.stripe_calls as f64),
            read_units: mean(&|s| s.usage.read_units),
            write_units: mean(&|s| s.usage.write_units),
            log_bytes: mean(&|s| s.log_bytes as f64),
            via_api_gateway,
        },
    }
}

/// `MemorySize` of each function in `template.yaml` (its own, else `Globals`).
fn memory_by_function(template: &str) -> Result<BTreeMap<String, f64>, Error> {
    let doc: serde_yaml::Value = serde_yaml::from_str(template)?;
    let global = doc["Globals"]["Function"]["MemorySize"].as_f64().unwrap_or(128.0);
    let mut out = BTreeMap::new();
    for (name, r) in doc["Resources"].as_mapping().into_iter().flatten() {
        if r["Type"].as_str() == Some("AWS::Serverless::Function") {
            let own = r["Properties"]["MemorySize"].as_f64().unwrap_or(global);
            out.insert(name.as_str().unwrap_or_default().to_string(), own);
        }
    }
    Ok(out)
}

fn reps() -> usize {
    std::env::var("BENCH_COST_REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
}

/// What DynamoDB Local answers when asked for `ReturnConsumedCapacity=TOTAL`, one
/// call of each kind the handlers make, read through the same meter.
async fn capacity_check(store: &tierdesk::store::Store, table: &str) -> Result<String, Error> {
    use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
    let c = store.client();
    let s = |v: &str| AttributeValue::S(v.to_string());
    let key = || std::collections::HashMap::from([("PK".to_string(), s("TIER#gold")), ("SK".to_string(), s("META"))]);
    let (r, get) =
        meter::metered(c.get_item().table_name(table).set_key(Some(key())).consistent_read(true).send()).await;
    r?;
    let (r, query) = meter::metered(
        c.query()
            .table_name(table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s("TIER#gold"))
            .send(),
    )
    .await;
    r?;
    let keys = KeysAndAttributes::builder().keys(key()).consistent_read(true).build()?;
    let (r, batch) = meter::metered(c.batch_get_item().request_items(table, keys).send()).await;
    r?;
    let pk = format!("BENCH#CAPACITY#{}", ulid::Ulid::new());
    let put = Put::builder()
        .table_name(table)
        .item("PK", s(&pk))
        .item("SK", s("META"))
        .item("pad", s(&"x".repeat(1500)))
        .build()?;
    let (r, transact) =
        meter::metered(c.transact_write_items().transact_items(TransactWriteItem::builder().put(put).build()).send())
            .await;
    r?;
    c.delete_item().table_name(table).key("PK", s(&pk)).key("SK", s("META")).send().await?;
    Ok(format!(
        "DynamoDB Local's `ConsumedCapacity` (TOTAL): GetItem {} RCU, Query {} RCU, BatchGetItem {} RCU, \
         TransactWriteItems of one 1.5 KB item {} WCU.",
        get.read_units, query.read_units, batch.read_units, transact.write_units
    ))
}

pub async fn run() -> Result<(), Error> {
    count_logs();
    let config = tierdesk::Config::from_env()?;
    let template_text =
        std::fs::read_to_string(std::env::var("TIERDESK_TEMPLATE").unwrap_or_else(|_| "template.yaml".into()))?;
    let template_routes = routes::from_template(&template_text)?;
    let memory = memory_by_function(&template_text)?;
    let emulator = Emulator::start(EmulatorConfig::default()).await?;
    let mut services = Services::from_env().await;
    services.stripe = tierdesk::stripe_adapter::StripeGateway::new(tierdesk::stripe_adapter::StripeConfig::local(
        emulator.base_url(),
    ))
    .map_err(|e| e.to_string())?;
    let store = tierdesk::store::Store::connect(&config).await;
    let capacity_line = capacity_check(&store, &config.table_name).await?;
    let samples: Samples = Arc::default();
    let handlers: std::collections::HashMap<String, Handler> =
        gateway::handlers_with(store.clone(), &config, &services)
            .await
            .into_iter()
            .map(|(name, h)| (name, metering(h, samples.clone())))
            .collect();
    let secret = jwt::secret_from_env();
    let gw = Arc::new(Gateway::new(template_routes.clone(), &handlers, secret.clone())?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = gw.clone().router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    emulator.set_webhook(Some(format!("http://{addr}/api/webhooks/stripe")), None);
    for line in seed::seed_stripe_prices_with(&store, &services.stripe).await {
        tracing::debug!(line);
    }

    let now = chrono::Utc::now().timestamp();
    let admin = jwt::token_for("admin", None, "bench-admin", now, 7_200, &secret);
    let manager = jwt::token_for("sales_manager", None, "bench-manager", now, 7_200, &secret);
    let rep = jwt::token_for("sales_rep", None, "bench-rep", now, 7_200, &secret);
    seed::call_json(&gw, "POST", "/api/admin/tiers/initialize", Some(&admin), None).await;
    let experiment = start_experiment(&gw, &admin, &manager).await?;

    let reps = reps();
    let started = Instant::now();
    for i in 0..=reps {
        RECORDING.store(i > 0, Ordering::Relaxed);
        let flow = Flow { gw: &gw, emulator: &emulator, admin: &admin, manager: &manager, rep: &rep, secret: &secret };
        flow.run(i, &experiment).await?;
        if i % 50 == 0 {
            eprintln!("cost bench: pass {i} of {reps}, {:.0} s", started.elapsed().as_secs_f64());
        }
    }
    RECORDING.store(false, Ordering::Relaxed);
    server.abort();

    // The expiry cron for today, twice: the reminders the flows made due, then
    // nothing left to send (the daily run's floor).
    let mail = tierdesk::mail::MailConfig::from_env()?;
    let cron = crate::cron::connect(&config, expiry_cron::CronConfig::default(), &mail).await;
    let run_date = expiry_cron::RunDate::for_date(chrono::Utc::now().date_naive());
    let mut cron_runs = Vec::new();
    for _ in 0..2 {
        let bytes = Arc::new(AtomicU64::new(0));
        let t = Instant::now();
        let (summary, usage) = LOG_BYTES.scope(bytes.clone(), meter::metered(cron.run(&run_date))).await;
        let wall = t.elapsed();
        let summary = summary?;
        let sent = summary.reminders_sent.renewal_reminder_30
            + summary.reminders_sent.renewal_urgent_7
            + summary.expiry_emails_sent;
        cron_runs.push((summary, sent, Sample { status: 200, wall, usage, log_bytes: bytes.load(Ordering::Relaxed) }));
    }

    report(&samples, &template_routes, &memory, &cron_runs, reps, &capacity_line);
    Ok(())
}

/// Passes (after the warm-up) that also make and archive a tier.
const TIER_CHURN_PASSES: usize = 20;

struct Flow<'a> {
    gw: &'a Gateway,
    emulator: &'a Emulator,
    admin: &'a str,
    manager: &'a str,
    rep: &'a str,
    secret: &'a str,
}

impl Flow<'_> {
    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        seed::call_json(self.gw, method, path, token, body).await
    }

    async fn new_partner(&self, label: &str, i: usize) -> Result<(String, String), Error> {
        let email = format!("cost-{label}-{i}-{}@bench.example.com", ulid::Ulid::new().to_string().to_lowercase());
        let (_, p) = self
            .call(
                "POST",
                "/api/admin/partners",
                Some(self.admin),
                Some(json!({"companyName": format!("Cost {label} {i}"), "primaryEmail": email})),
            )
            .await;
        let id = p["partnerId"].as_str().ok_or("partner not created")?.to_string();
        let token =
            jwt::token_for("partner", Some(&id), "bench-partner", chrono::Utc::now().timestamp(), 7_200, self.secret);
        Ok((id, token))
    }

    /// A tier made, edited and archived. Only in the first passes: a sales team
    /// retires a few tiers a year, and every archived tier stays in `all_tiers`
    /// (analytics reads their history), so one per pass would model a catalog of
    /// hundreds of retired tiers.
    async fn tier_lifecycle(&self, suffix: &str) {
        let admin = Some(self.admin);
        let tier = format!("cost-{suffix}");
        let body = json!({"tierId": tier, "name": "Cost", "segment": "zz-cost", "tierLevel": 9,
                          "prices": {"monthly": 100, "yearly": 1000}, "features": [{"featureId": "f1", "name": "F1"}]});
        self.call("POST", "/api/admin/tiers", admin, Some(body)).await;
        let t = format!("/api/admin/tiers/{tier}");
        self.call("PUT", &t, admin, Some(json!({"version": 1, "name": "Renamed"}))).await;
        self.call("POST", &format!("{t}/features"), admin, Some(json!({"featureId": "f2", "name": "F2"}))).await;
        self.call("PUT", &format!("{t}/features/f2"), admin, Some(json!({"enabled": false}))).await;
        self.call("DELETE", &format!("{t}/features/f2"), admin, None).await;
        self.call("DELETE", &t, admin, None).await;
    }

    async fn run(&self, i: usize, experiment: &str) -> Result<(), Error> {
        let admin = Some(self.admin);
        let suffix = ulid::Ulid::new().to_string().to_lowercase();
        // Public and catalog.
        self.call("GET", "/api/tiers", None, None).await;
        self.call("GET", "/api/tiers/compare?ids=free,gold,platinum", None, None).await;
        let upgrade = json!({"fromTierId": "gold", "toTierId": "platinum", "billingPeriod": "monthly"});
        self.call("POST", "/api/tiers/upgrade-price", None, Some(upgrade)).await;
        self.call("GET", "/api/admin/tiers", admin, None).await;
        self.call("GET", "/api/admin/tiers/gold", admin, None).await;
        if i <= TIER_CHURN_PASSES {
            self.tier_lifecycle(&suffix).await;
        }

        // A partner's account, staff side; its gold term ends within the cron's
        // reminder windows (7-day or 30-day notice) without renewal.
        let (id, partner) = self.new_partner("acct", i).await?;
        let ptok = Some(partner.as_str());
        let p = format!("/api/admin/partners/{id}");
        self.call("GET", &p, admin, None).await;
        self.call("PATCH", &format!("{p}/engagement-tier?dryRun=true"), admin, Some(json!({"tier": "gold"}))).await;
        let end = chrono::Utc::now().date_naive() + chrono::Duration::days(if i.is_multiple_of(2) { 5 } else { 20 });
        // Renewing at first, then switched off by the profile edit (a PATCH that
        // changes nothing is refused as `no_change`, and would be measured as such).
        let change = json!({"tier": "gold", "subscriptionEndDate": end.to_string(), "autoRenewal": true});
        self.call("PATCH", &format!("{p}/engagement-tier"), admin, Some(change)).await;
        self.call("PATCH", &p, admin, Some(json!({"autoRenewal": false}))).await;
        self.call("POST", &format!("{p}/notes"), admin, Some(json!({"note": "cost bench"}))).await;
        self.call("POST", &format!("{p}/assign"), admin, Some(json!({"salesRep": "bench-rep"}))).await;
        self.call("GET", &format!("{p}/history"), admin, None).await;
        self.call("GET", &format!("{p}/journey"), admin, None).await;
        self.call("GET", "/api/admin/partners", admin, None).await;
        self.call("GET", "/api/admin/subscriptions?view=active", admin, None).await;

        // The partner's product: usage and feature gates.
        for k in 0..3 {
            let track = json!({"metric": "leads", "count": 1, "idempotencyKey": format!("k{k}")});
            self.call("POST", "/api/usage/track", ptok, Some(track)).await;
        }
        self.call("GET", "/api/usage/current", ptok, None).await;
        self.call("GET", "/api/usage/limits", ptok, None).await;
        self.call("GET", "/api/features/available", ptok, None).await;
        for _ in 0..2 {
            self.call("POST", "/api/features/check", ptok, Some(json!({"feature": "leads"}))).await;
        }

        // Promotions: made, approved (35% is above the discount a manager may
        // activate alone, so submit asks an admin by email), validated and redeemed.
        let code = format!("COST{}", &suffix.to_uppercase()[16..]);
        let promo = promotions_bench::promotion_body(
            &format!("Cost {i}"),
            json!({"discountValue": 35, "promotionCodes": [code], "redemptionsPerUser": 1000}),
        );
        let (_, created) = self.call("POST", "/api/admin/promotions", Some(self.manager), Some(promo)).await;
        if let Some(pid) = created["promotionId"].as_str() {
            let pp = format!("/api/admin/promotions/{pid}");
            self.call("GET", &pp, admin, None).await;
            self.call("POST", &format!("{pp}/submit"), Some(self.manager), None).await;
            self.call("POST", &format!("{pp}/approve"), admin, None).await;
            let v = json!({"code": code, "tierId": "gold"});
            self.call("POST", "/api/promotions/validate", None, Some(v.clone())).await;
            self.call("POST", "/api/promotions/redeem", ptok, Some(v)).await;
            self.call("GET", &format!("{pp}/redemptions"), admin, None).await;
        }

        // A price test: a new visitor, the same visitor again, a conversion.
        let ex = format!("/api/experiments/{experiment}");
        let user = format!("cost-{i}-{suffix}");
        self.call("POST", &format!("{ex}/assign"), None, Some(json!({"userId": user}))).await;
        self.call("POST", &format!("{ex}/assign"), None, Some(json!({"userId": user}))).await;
        let conversion = json!({"userId": user, "metric": "conversion", "value": 12_000});
        self.call("POST", &format!("{ex}/track"), None, Some(conversion)).await;
        self.call("GET", &format!("/api/admin/experiments/{experiment}/results"), Some(self.manager), None).await;

        // A quote: made, read, rendered, sent (PDF + email), viewed and accepted.
        let prospect = format!("cost-quote-{i}-{suffix}@bench.example.com");
        let qbody = json!({
            "prospectEmail": prospect, "prospectName": "Cost Prospect", "baseTier": "gold", "billingPeriod": "yearly",
            "customizations": {"additionalListings": {"quantity": 5}},
            "discounts": [{"type": "percentage", "value": 10, "reason": "bench"}]
        });
        let (_, q) = self.call("POST", "/api/admin/quotes", Some(self.rep), Some(qbody)).await;
        if let Some(qid) = q["quoteId"].as_str() {
            let qp = format!("/api/admin/quotes/{qid}");
            self.call("GET", &qp, Some(self.rep), None).await;
            self.call("GET", "/api/admin/quotes", Some(self.rep), None).await;
            self.call("GET", &format!("{qp}/pdf"), Some(self.rep), None).await;
            self.call("PUT", &qp, Some(self.rep), Some(json!({"version": q["version"], "notes": "cost"}))).await;
            let (_, sent) = self.call("POST", &format!("{qp}/send"), Some(self.rep), None).await;
            if let Some(to) = sent["sentTo"].as_str() {
                let token = quotes_bench::emailed_token(to).await?;
                self.call("GET", &format!("/api/quotes/view/{token}"), None, None).await;
                self.call("POST", &format!("/api/quotes/view/{token}/accept"), None, None).await;
            }
        }

        // Staff dashboards.
        for path in [
            "/api/admin/tiers/analytics",
            "/api/admin/tiers/gold/metrics",
            "/api/admin/tiers/revenue",
            "/api/admin/tiers/funnel",
            "/api/admin/analytics/movements",
            "/api/admin/analytics/cohorts",
        ] {
            self.call("GET", path, admin, None).await;
        }

        // Billing through Stripe: checkout, renewal, upgrade, downgrade at period
        // end, cancel; every webhook the emulator sends is metered too.
        let (_, btoken) = self.new_partner("billing", i).await?;
        let bt = Some(btoken.as_str());
        let (_, session) = self.call("POST", "/api/billing/subscribe", bt, Some(json!({"tierId": "gold"}))).await;
        let cs = session["checkoutSessionId"].as_str().ok_or("no checkout session")?.to_string();
        billing_bench::control(self.emulator, &format!("checkout/sessions/{cs}/complete"), json!({})).await?;
        let (_, view) = self.call("GET", "/api/billing/subscription", bt, None).await;
        self.call("GET", "/api/billing/invoices", bt, None).await;
        let sub = view["stripeSubscriptionId"].as_str().ok_or("not subscribed")?.to_string();
        let advance = format!("subscriptions/{sub}/advance");
        billing_bench::control(self.emulator, &advance, json!({})).await?;
        self.call("PUT", "/api/billing/upgrade", bt, Some(json!({"tierId": "platinum"}))).await;
        self.call("PUT", "/api/billing/downgrade", bt, Some(json!({"tierId": "gold"}))).await;
        billing_bench::control(self.emulator, &advance, json!({})).await?;
        self.call("DELETE", "/api/billing/cancel", bt, None).await;
        billing_bench::control(self.emulator, &advance, json!({})).await?;

        // Partner cancellation, staff side, on one account in four.
        if i % 4 == 3 {
            self.call("POST", &format!("{p}/cancel"), admin, Some(json!({"reason": "cost bench"}))).await;
        }
        Ok(())
    }
}

/// A running price test on a tier of its own (a tier can hold one experiment).
async fn start_experiment(gw: &Gateway, admin: &str, manager: &str) -> Result<String, Error> {
    let tier = format!("cost-exp-{}", &ulid::Ulid::new().to_string().to_lowercase()[16..]);
    let body = json!({"tierId": tier, "name": "Cost", "prices": {"monthly": 10_000, "yearly": 100_000}});
    let (status, _) = seed::call_json(gw, "POST", "/api/admin/tiers", Some(admin), Some(body)).await;
    if status != 201 {
        return Err(format!("cost bench tier not created: {status}").into());
    }
    let body = json!({
        "name": "Cost price test", "targetTier": tier, "minSampleSize": 1,
        "variants": [
            {"variantId": "control", "name": "Control", "isControl": true, "allocation": 50},
            {"variantId": "higher", "name": "Higher", "allocation": 50, "pricing": {"monthly": 12_000}}
        ]
    });
    let (_, created) = seed::call_json(gw, "POST", "/api/admin/experiments", Some(manager), Some(body)).await;
    let id = created["experimentId"].as_str().ok_or("experiment not created")?.to_string();
    let (status, _) =
        seed::call_json(gw, "POST", &format!("/api/admin/experiments/{id}/start"), Some(manager), None).await;
    if status != 200 {
        return Err(format!("experiment not started: {status}").into());
    }
    Ok(id)
}

fn money(d: f64) -> String {
    if d >= 100.0 {
        format!("${d:.0}")
    } else if d >= 1.0 {
        format!("${d:.2}")
    } else {
        format!("${d:.4}")
    }
}

fn report(
    samples: &Samples,
    template_routes: &[routes::TemplateRoute],
    memory: &BTreeMap<String, f64>,
    cron_runs: &[(tierdesk::domain::renewal::RunSummary, u64, Sample)],
    reps: usize,
    capacity_line: &str,
) {
    let samples = samples.lock().unwrap_or_else(|p| p.into_inner());
    let function_of = |route: &str| {
        template_routes
            .iter()
            .find(|r| format!("{} {}", r.method, r.path) == route)
            .map(|r| r.function.clone())
            .unwrap_or_default()
    };
    let memory_of = |function: &str| memory.get(function).copied().unwrap_or(256.0);
    println!(
        "{reps} passes of one flow over the routes the other stages exercise (after a warm-up pass), sequential, \
         in-process, release build. Own = handler wall time − time waiting on DynamoDB Local, SES and Stripe \
         emulators (from handing the request to the HTTP client to its response headers). Calls, capacity and \
         log bytes are means per request.\n"
    );
    println!("{capacity_line}\n");
    println!(
        "| route | requests | status | own p50 ms | own p99 ms | own mean ms | wall p50 ms | DynamoDB calls | RCU | WCU | SES | Stripe | log bytes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut measured: BTreeMap<String, Invocation> = BTreeMap::new();
    let mut functions: BTreeMap<String, String> = BTreeMap::new();
    let mut slow = Vec::new();
    let mut refused = Vec::new();
    let mut medians = Vec::new();
    for (route, list) in samples.iter() {
        let s = stats(list, true);
        println!(
            "| `{route}` | {} | {} | {:.3} | {:.3} | {:.3} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |",
            s.n,
            s.statuses,
            s.own_p50,
            s.own_p99,
            s.mean.own_ms,
            s.wall_p50,
            s.mean.dynamodb_calls,
            s.mean.read_units,
            s.mean.write_units,
            s.mean.ses_calls,
            s.mean.stripe_calls,
            s.mean.log_bytes
        );
        if s.own_p50 > 0.5 {
            slow.push(format!("`{route}` ({:.2} ms)", s.own_p50));
        }
        if list.iter().any(|sample| sample.status >= 400) {
            refused.push(format!("`{route}` ({})", s.statuses));
        }
        medians.push((s.own_p50, s.mean));
        measured.insert(route.clone(), s.mean);
        functions.insert(route.clone(), function_of(route));
    }
    println!();
    // A refused request measures the refusal, not the route's work: the flow is
    // meant to succeed everywhere, so any 4xx/5xx is named here.
    if refused.is_empty() {
        println!("Every request of the flow was answered 2xx.\n");
    } else {
        println!("Answered 4xx/5xx in the flow (these rows measure a refusal): {}.\n", refused.join(", "));
    }
    if slow.is_empty() {
        println!("Every route's own-time median is within the 0.5 ms aim.");
    } else {
        println!("Above the 0.5 ms own-time aim (median): {}.", slow.join(", "));
    }
    if let Some(fit) = cost::explain_own_time(&medians) {
        let [fixed, read, write, stripe, ses] = fit.coefficients;
        println!(
            "\nWhat the own-time medians grow with (least squares over the {} routes that reach DynamoDB, R² {:.2}): \
             {fixed:.3} ms fixed, {read:.3} ms per read unit, {write:.3} ms per write unit, {stripe:.3} ms per Stripe \
             call, {ses:.3} ms per SES call.",
            fit.routes, fit.r_squared
        );
    }

    // The cron: the first run sends what the flows made due, the second finds
    // nothing left; the difference per email sent is one reminder's work.
    println!("\n| expiry cron run (today) | window partners | reminders + expiry emails | wall ms | own ms | DynamoDB calls | RCU | WCU | SES | log bytes |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (label, (summary, sent, s)) in ["first", "second (nothing left)"].iter().zip(cron_runs) {
        println!(
            "| {label} | {} | {sent} | {:.1} | {:.1} | {} | {:.1} | {:.1} | {} | {} |",
            summary.window_partners,
            ms(s.wall),
            ms(s.own()),
            s.usage.dynamodb_calls,
            s.usage.read_units,
            s.usage.write_units,
            s.usage.ses_calls,
            s.log_bytes
        );
    }
    let cron_inv = |s: &Sample, k: f64| Invocation {
        own_ms: ms(s.own()) * k,
        dynamodb_calls: s.usage.dynamodb_calls as f64 * k,
        ses_calls: s.usage.ses_calls as f64 * k,
        stripe_calls: s.usage.stripe_calls as f64 * k,
        read_units: s.usage.read_units * k,
        write_units: s.usage.write_units * k,
        log_bytes: s.log_bytes as f64 * k,
        via_api_gateway: false,
    };
    if let [(_, sent, first), (_, _, second)] = cron_runs {
        let base = cron_inv(second, 1.0);
        measured.insert("cron run".into(), base);
        functions.insert("cron run".into(), expiry_cron::LOGICAL_ID.into());
        if *sent > 0 {
            let all = cron_inv(first, 1.0 / *sent as f64);
            let floor = cron_inv(second, 1.0 / *sent as f64);
            let reminder = Invocation {
                own_ms: (all.own_ms - floor.own_ms).max(0.0),
                dynamodb_calls: (all.dynamodb_calls - floor.dynamodb_calls).max(0.0),
                ses_calls: (all.ses_calls - floor.ses_calls).max(0.0),
                stripe_calls: 0.0,
                read_units: (all.read_units - floor.read_units).max(0.0),
                write_units: (all.write_units - floor.write_units).max(0.0),
                log_bytes: (all.log_bytes - floor.log_bytes).max(0.0),
                via_api_gateway: false,
            };
            measured.insert("cron reminder".into(), reminder);
            functions.insert("cron reminder".into(), expiry_cron::LOGICAL_ID.into());
        }
    }

    // The bill. A reminder is not an invocation of its own: it adds duration and
    // calls to the daily run, so its Lambda request price is taken off below.
    let prices = Prices::LIST;
    let runtime_of = |route: &str| Runtime::at_memory(memory_of(functions.get(route).map_or("", String::as_str)));
    let bill_of = |t: &Traffic, partners: f64| -> Option<cost::Bill> {
        let i = measured.get(t.route)?;
        let rt = runtime_of(t.route);
        let mut one = cost::invocation_bill(i, &rt, &prices);
        if t.route == "cron reminder" {
            one.lambda_requests = 0.0;
            one.logs -= rt.platform_log_bytes / 1e9 * prices.logs_gb;
            // Its own share of duration, not rounded as an invocation of its own.
            let unrounded =
                i.own_ms * rt.cpu_stretch() + i.dynamodb_calls * rt.dynamodb_call_ms + i.ses_calls * rt.ses_call_ms;
            one.lambda_duration = unrounded / 1000.0 * (rt.memory_mb / 1024.0) * prices.lambda_gb_second;
        }
        Some(one * cost::monthly_calls(t, partners))
    };
    let rt0 = Runtime::at_memory(memory_of("TiersFunction"));
    println!(
        "\n### Cost model (prices: {}, {}; `infra/devtools/src/cost.rs`, `docs/costs.md`)\n",
        cost::prices::REGION,
        cost::prices::AS_OF
    );
    println!(
        "Lambda bills each invocation's duration rounded up to 1 ms at the template's `MemorySize` ({} MB). At that \
         memory a function gets {:.0}/{:.0} of a vCPU, so own time measured here on one core is multiplied by {:.2}; \
         each DynamoDB call adds {} ms, each SES send {} ms, each Stripe call {} ms of in-region waiting (assumed, \
         not measured here). Lambda's own log lines add {} bytes per invocation.\n",
        rt0.memory_mb,
        rt0.memory_mb,
        rt0.full_vcpu_mb,
        rt0.cpu_stretch(),
        rt0.dynamodb_call_ms,
        rt0.ses_call_ms,
        rt0.stripe_call_ms,
        rt0.platform_log_bytes
    );
    let sizes = [1_000.0, 10_000.0, 100_000.0];
    let mut by_size = Vec::new();
    for n in sizes {
        let routes: Vec<(&str, cost::Bill)> =
            cost::TRAFFIC.iter().filter_map(|t| bill_of(t, n).map(|b| (t.route, b))).collect();
        by_size.push(routes);
    }
    let missing: Vec<&str> =
        cost::TRAFFIC.iter().filter(|t| !measured.contains_key(t.route)).map(|t| t.route).collect();
    println!("| monthly, by service | 1,000 partners | 10,000 partners | 100,000 partners |\n|---|---|---|---|");
    let totals: Vec<cost::Bill> = by_size.iter().map(|r| cost::sum(r)).collect();
    for (k, (name, _)) in totals[0].lines().iter().enumerate() {
        let cells: Vec<String> = totals.iter().map(|b| money(b.lines()[k].1)).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    let cells: Vec<String> = totals.iter().map(|b| format!("**{}**", money(b.total()))).collect();
    println!("| **total** | {} |", cells.join(" | "));
    let per: Vec<String> = totals.iter().zip(sizes).map(|(b, n)| format!("{:.4}", b.total() / n)).collect();
    println!("| per partner per month, $ | {} |", per.join(" | "));

    println!("\n| top routes at 100,000 partners | calls / month | billed ms each | $ / month | share | biggest part |\n|---|---|---|---|---|---|");
    let mut top = by_size[2].clone();
    top.sort_by(|a, b| b.1.total().total_cmp(&a.1.total()));
    let grand = totals[2].total();
    for (route, bill) in top.iter().take(10) {
        let t = cost::TRAFFIC.iter().find(|t| t.route == *route);
        let calls = t.map_or(0.0, |t| cost::monthly_calls(t, 100_000.0));
        let billed = measured.get(*route).map_or(0.0, |i| runtime_of(route).billed_ms(i));
        let (part, _) = bill.lines().into_iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap_or(("", 0.0));
        println!(
            "| `{route}` | {calls:.0} | {billed:.0} | {} | {:.0}% | {part} |",
            money(bill.total()),
            100.0 * bill.total() / grand
        );
    }
    if !missing.is_empty() {
        println!("\nIn the traffic model but not measured (left out of the bill): {}.", missing.join(", "));
    }
}
