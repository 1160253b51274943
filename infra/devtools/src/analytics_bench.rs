//! `bench analytics`: DynamoDB operations per analytics route (an SDK interceptor
//! counts them by name) and the summary's latency, at 1,000 and at 100,000
//! partners (`BENCH_ANALYTICS_SIZES`, comma-separated, to change the sizes). The
//! partners are planned through the real transition functions in memory (signup,
//! then for two in three a paid tier, monthly or yearly), written with batch writes,
//! and their transitions' analytics deltas summed into the aggregate items they
//! would have produced one transaction at a time. Runs on a table of its own.

use crate::gateway::{self, Gateway};
use crate::promotions_bench::{describe, OpCounter};
use crate::{jwt, routes, seed};
use chrono::Days;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tierdesk::domain::analytics::{month_of, CohortFlows, CurrentStats, TierFlows};
use tierdesk::domain::money::BillingPeriod;
use tierdesk::domain::partner::{NewPartner, Partner};
use tierdesk::domain::subscription::{
    plan_signup, plan_tier_change, Catalog, TierChange, Transition, TransitionContext, Trigger, TriggerType,
};
use tierdesk::store::{AnalyticsStore, PartnerStore, TierStore};

type Error = Box<dyn std::error::Error + Send + Sync>;

const SAMPLES: usize = 200;

/// The aggregates of every partner planned so far.
#[derive(Default)]
struct Sums {
    current: BTreeMap<String, CurrentStats>,
    months: BTreeMap<(String, String), TierFlows>,
    cohorts: BTreeMap<(String, String), CohortFlows>,
}

impl Sums {
    fn add(&mut self, t: &Transition) {
        for (tier, d) in &t.stats {
            let c = self.current.entry(tier.clone()).or_default();
            c.live = c.live.plus(*d);
        }
        for (tier, f) in &t.analytics.tiers {
            let c = self.current.entry(tier.clone()).or_default();
            c.flows = c.flows.plus(f.current());
            let m = self.months.entry((tier.clone(), t.analytics.month.clone())).or_default();
            *m = m.plus(*f);
        }
        if let Some((cohort, f)) = &t.analytics.cohort {
            let c = self.cohorts.entry((cohort.clone(), t.analytics.month.clone())).or_default();
            c.signups += f.signups;
            c.d_subscribed += f.d_subscribed;
            c.d_paying += f.d_paying;
            c.d_mrr += f.d_mrr;
        }
    }
}

fn context(day: chrono::NaiveDate, n: usize) -> TransitionContext {
    TransitionContext {
        today: day,
        at: format!("{}T09:00:00.000Z", day.format("%Y-%m-%d")),
        actor: "bench".into(),
        request_id: None,
        transition_id: format!("bench-t-{n}"),
        movement_id: format!("bench-m-{n}"),
        trigger: Trigger { trigger_type: TriggerType::Automated, sales_rep: None, promotion_id: None, reason: None },
    }
}

/// Partners `from..to`: signed up over the last 13 months, two in three then on a
/// paid tier.
fn plan(
    from: usize,
    to: usize,
    tiers: &[tierdesk::domain::tier::Tier],
    sums: &mut Sums,
) -> Result<Vec<Partner>, Error> {
    let catalog = Catalog::new(tiers);
    let today = chrono::Utc::now().date_naive();
    let mut out = Vec::with_capacity(to - from);
    for i in from..to {
        let day = today.checked_sub_days(Days::new((i % 390) as u64)).unwrap_or(today);
        let new = NewPartner::parse(&json!({
            "companyName": format!("Bench Analytics {i}"),
            "primaryEmail": format!("analytics-{i}@bench.example.com"),
        }))?;
        let signup = plan_signup(&format!("prt_bench{i:07}"), new, catalog, &context(day, 2 * i))?;
        sums.add(&signup);
        let mut partner = signup.after;
        if i % 3 != 0 {
            let change = TierChange {
                tier: if i % 3 == 1 { "gold".into() } else { "platinum".into() },
                billing_period: Some(if i % 4 == 0 { BillingPeriod::Yearly } else { BillingPeriod::Monthly }),
                ..TierChange::default()
            };
            let paid = plan_tier_change(&partner, &change, catalog, &context(day, 2 * i + 1))?;
            sums.add(&paid);
            partner = paid.after;
        }
        out.push(partner);
    }
    Ok(out)
}

fn sizes() -> Vec<usize> {
    std::env::var("BENCH_ANALYTICS_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect::<Vec<usize>>())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec![1_000, 100_000])
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

pub async fn run() -> Result<(), Error> {
    let base = tierdesk::Config::from_env()?;
    let table = format!("tierdesk-bench-analytics-{}", ulid::Ulid::new().to_string().to_lowercase());
    let config = tierdesk::Config::for_table(&table, base.dynamodb_endpoint.clone());
    let counter = OpCounter::default();
    let store = tierdesk::store::Store::connect_with_interceptor(&config, counter.clone()).await;
    let template_path = std::env::var("TIERDESK_TEMPLATE").unwrap_or_else(|_| "template.yaml".into());
    let template = std::fs::read_to_string(template_path)?;
    tierdesk::store::table::create_from_template(store.client(), &template, &table).await?;
    let handlers = gateway::handlers_on(store.clone(), &config).await;
    let secret = jwt::secret_from_env();
    let gw = Arc::new(Gateway::new(routes::from_template(&template)?, &handlers, secret.clone())?);
    let admin = jwt::token_for("admin", None, "bench-admin", chrono::Utc::now().timestamp(), 3_600, &secret);
    seed::call_json(&gw, "POST", "/api/admin/tiers/initialize", Some(&admin), None).await;
    let tiers = store.active_catalog().await?;
    let this_month = month_of(chrono::Utc::now().date_naive());

    let routes = [
        "/api/admin/tiers/analytics".to_string(),
        "/api/admin/tiers/analytics?format=csv".to_string(),
        "/api/admin/tiers/gold/metrics".to_string(),
        "/api/admin/tiers/revenue".to_string(),
        "/api/admin/tiers/funnel".to_string(),
        "/api/admin/analytics/movements".to_string(),
        format!(
            "/api/admin/analytics/movements?from={}&to={this_month}",
            tierdesk::domain::analytics::month_minus(&this_month, 23)
        ),
        "/api/admin/analytics/cohorts".to_string(),
    ];
    let mut sums = Sums::default();
    let mut loaded = 0;
    let mut ops_by_size: Vec<Vec<(u16, String, u64)>> = Vec::new();
    let mut latency: Vec<(usize, f64, f64, u64)> = Vec::new();
    for size in sizes() {
        let started = Instant::now();
        let partners = plan(loaded, size, &tiers, &mut sums)?;
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in partners.chunks(500) {
            let (store, chunk) = (store.clone(), chunk.to_vec());
            tasks.spawn(async move { store.backfill_partners(&chunk).await });
            if tasks.len() >= 8 {
                if let Some(done) = tasks.join_next().await {
                    done??;
                }
            }
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        let current: Vec<(String, CurrentStats)> = sums.current.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let months: Vec<(String, String, TierFlows)> =
            sums.months.iter().map(|((t, m), f)| (t.clone(), m.clone(), *f)).collect();
        let cohorts: Vec<(String, String, CohortFlows)> =
            sums.cohorts.iter().map(|((c, m), f)| (c.clone(), m.clone(), *f)).collect();
        store.backfill_analytics(&current, &months, &cohorts).await?;
        loaded = size;
        eprintln!("loaded {size} partners and their aggregates in {:.0} s", started.elapsed().as_secs_f64());

        counter.take();
        let mut ops = Vec::new();
        for path in &routes {
            let (status, _) = seed::call_json(&gw, "GET", path, Some(&admin), None).await;
            let (reads, writes, list) = describe(&counter.take());
            ops.push((status, list, reads + writes));
        }
        ops_by_size.push(ops);
        let mut samples = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let t = Instant::now();
            seed::call_json(&gw, "GET", "/api/admin/tiers/analytics", Some(&admin), None).await;
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let calls = describe(&counter.take()).0 / SAMPLES as u64;
        samples.sort_by(|a, b| a.total_cmp(b));
        latency.push((size, percentile(&samples, 0.5), percentile(&samples, 0.95), calls));
    }

    let sizes = sizes();
    print!("| route |");
    for s in &sizes {
        print!(" {s} partners: status, DynamoDB operations |");
    }
    println!(" equal |");
    println!("|---|{}---|", "---|".repeat(sizes.len()));
    let mut all_equal = true;
    for (i, path) in routes.iter().enumerate() {
        print!("| `GET {path}` |");
        for ops in &ops_by_size {
            print!(" {} {} ({} calls) |", ops[i].0, ops[i].1, ops[i].2);
        }
        let equal = ops_by_size.windows(2).all(|w| w[0][i].1 == w[1][i].1);
        all_equal &= equal;
        println!(" {} |", if equal { "yes" } else { "NO" });
    }
    println!();
    println!("| partners | summary p50 ms | summary p95 ms | DynamoDB calls per summary |\n|---|---|---|---|");
    for (size, p50, p95, calls) in &latency {
        println!("| {size} | {p50:.1} | {p95:.1} | {calls} |");
    }
    println!();
    println!(
        "{SAMPLES} sequential summaries per size through the in-process dev gateway. Calls equal at every size: {}.",
        if all_equal { "yes" } else { "NO" }
    );
    Ok(())
}
