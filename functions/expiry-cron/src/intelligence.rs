//! The daily intelligence step (docs/intelligence.md): elasticity per tier, the
//! revenue forecast (whose scenarios use the elasticity) and the pricing
//! recommendations, stored for the routes to read.
//!
//! Reads: the catalog; one BatchGetItem of tiers × 37 month aggregates; the
//! finished experiments (one Query per page of `EXPSTATUS#completed`) and their
//! counters when they ended without recorded results; one price-history Query per
//! tier. Its cost grows with tiers, months and experiments, never with partners. A
//! rerun for the same date stores the same figures; an older run never replaces a
//! newer forecast; a recommendation made again keeps its decision.

use crate::{DailyStep, RunDate, StepFuture};
use std::collections::BTreeMap;
use tierdesk::domain::analytics::{month_of, TierData};
use tierdesk::domain::elasticity::{self, ElasticityReport, NoEstimate, PriceHistoryEntry, TierNow};
use tierdesk::domain::experiment::{Experiment, ExperimentStatus, ExperimentType};
use tierdesk::domain::forecast;
use tierdesk::domain::tier::Tier;
use tierdesk::store::{AnalyticsStore, ExperimentStore, IntelligenceStore, PageRequest, Store, StoreError, TierStore};

pub struct Intelligence;

/// Price versions read per tier (newest first): decades of monthly changes.
const PRICE_VERSIONS: u32 = 100;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn finished_experiments(
    store: &Store,
) -> Result<Vec<(Experiment, Vec<(String, tierdesk::domain::experiment::Counts)>)>, String> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = PageRequest { limit: 100, cursor: cursor.clone() };
        let got = store.list_experiments(Some(ExperimentStatus::Completed), &page).await.map_err(err)?;
        for e in got.items {
            let counts = match e.final_results {
                Some(_) => vec![],
                None => store.variant_counts(&e.experiment_id, e.phase).await.map_err(err)?,
            };
            out.push((e, counts));
        }
        match got.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

async fn history_of(store: &Store, tier: &Tier) -> Result<Vec<PriceHistoryEntry>, StoreError> {
    let page = PageRequest { limit: PRICE_VERSIONS, cursor: None };
    let versions = store
        .list_price_versions(&tier.tier_id, &page)
        .await
        .map_err(|e| StoreError::Sdk { operation: "Query", source: e.to_string().into() })?;
    Ok(versions
        .items
        .into_iter()
        .map(|v| PriceHistoryEntry {
            version: v.price_version,
            monthly: v.prices.monthly,
            effective_from: v.effective_from,
        })
        .collect())
}

/// A digest of the step's inputs: each tier's prices and complete months
/// (closing level and flows), its price history, and the finished experiments
/// with their counters. The current month and live figures are left out: they
/// change daily and no stored figure depends on them alone.
fn inputs_digest(
    now: &str,
    tiers: &[Tier],
    data: &[TierData],
    experiments: &[(Experiment, Vec<(String, tierdesk::domain::experiment::Counts)>)],
    histories: &[Vec<PriceHistoryEntry>],
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(now.as_bytes());
    let complete: Vec<String> = forecast::months_to_read(now).into_iter().filter(|m| m.as_str() < now).collect();
    for (t, d) in tiers.iter().zip(data) {
        h.update(format!("{}|{}|{:?}|{:?}", t.tier_id, t.name, t.prices.monthly, t.status).as_bytes());
        for m in &complete {
            h.update(format!("{m}:{:?}:{:?}", d.closing(m, now), d.flows(m)).as_bytes());
        }
    }
    for history in histories {
        h.update(format!("{history:?}").as_bytes());
    }
    for (e, counts) in experiments {
        h.update(format!("{}|{}|{:?}|{:?}", e.experiment_id, e.phase, e.final_results, counts).as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl DailyStep for Intelligence {
    fn name(&self) -> &'static str {
        "intelligence"
    }

    fn run<'a>(&'a self, store: &'a Store, run: &'a RunDate) -> StepFuture<'a> {
        Box::pin(async move {
            let now = month_of(run.date);
            let tiers = store.all_tiers().await.map_err(err)?;
            let ids: Vec<String> = tiers.iter().map(|t| t.tier_id.clone()).collect();
            let aggregates = store.tier_aggregates(&ids, &forecast::months_to_read(&now), false).await.map_err(err)?;
            let data: Vec<TierData> = tiers.iter().zip(aggregates).map(|(t, a)| a.into_data(t)).collect();
            let experiments = finished_experiments(store).await?;
            let mut histories = Vec::with_capacity(tiers.len());
            for t in &tiers {
                histories.push(history_of(store, t).await.map_err(err)?);
            }
            // The fit and the estimates depend only on complete months, the prices,
            // their history and the finished experiments: when none of those changed
            // since the stored forecast, a run would store the same figures, so it
            // skips the CPU work (most days of a month).
            let digest = inputs_digest(&now, &tiers, &data, &experiments, &histories);
            if store.forecast().await.map_err(err)?.is_some_and(|f| f.inputs.as_deref() == Some(digest.as_str())) {
                return Ok(0);
            }
            let (as_of, at) = (run.date.format("%Y-%m-%d").to_string(), run.at.clone());
            // Fitting is CPU work: keep it off the runtime's threads (the dev gateway
            // serves requests on them while its cron runs).
            let (report, stored, recommendations) = tokio::task::spawn_blocking(move || {
                let complete: Vec<String> =
                    forecast::months_to_read(&now).into_iter().filter(|m| m.as_str() < now.as_str()).collect();
                let mut report = ElasticityReport { as_of: as_of.clone(), estimates: vec![], without_estimate: vec![] };
                for ((tier, history), d) in tiers.iter().zip(&histories).zip(&data) {
                    let mut evidence: Vec<elasticity::Evidence> = experiments
                        .iter()
                        // A campaign experiment tests messages, not a price.
                        .filter(|(e, _)| e.experiment_type == ExperimentType::Pricing && e.target_tier == tier.tier_id)
                        .filter_map(|(e, c)| {
                            elasticity::from_experiment(&elasticity::experiment_evidence(
                                e,
                                c,
                                history,
                                tier.prices.monthly,
                            ))
                        })
                        .collect();
                    evidence.extend(
                        elasticity::price_changes(history, &complete, |m| d.flows(m).paying_in.max(0) as u64)
                            .iter()
                            .filter_map(elasticity::from_price_change),
                    );
                    match elasticity::pool(&tier.tier_id, evidence) {
                        Some(e) => report.estimates.push(e),
                        None => report
                            .without_estimate
                            .push(NoEstimate { tier_id: tier.tier_id.clone(), reason: elasticity::NO_EVIDENCE.into() }),
                    }
                }
                let by_tier: BTreeMap<String, f64> =
                    report.estimates.iter().map(|e| (e.tier_id.clone(), e.elasticity)).collect();
                let mut stored = forecast::from_aggregates(&data, &now, &as_of, &at, &by_tier);
                stored.inputs = Some(digest);
                let recommendations: Vec<elasticity::Recommendation> = report
                    .estimates
                    .iter()
                    .filter_map(|est| {
                        let (tier, d) = tiers.iter().zip(&data).find(|(t, _)| t.tier_id == est.tier_id)?;
                        let drivers = stored.drivers.iter().find(|x| x.tier_id == est.tier_id)?;
                        let now_figures = TierNow {
                            tier_id: tier.tier_id.clone(),
                            name: tier.name.clone(),
                            price: tier.prices.monthly,
                            mrr: d.current.live.mrr,
                            subscribers: d.current.subscribed(),
                            new_mrr_per_month: drivers.new_mrr_per_month,
                        };
                        elasticity::recommend(est, &now_figures, &at)
                    })
                    .collect();
                (report, stored, recommendations)
            })
            .await
            .map_err(|e| format!("intelligence task: {e}"))?;
            store.put_elasticity(&report).await.map_err(err)?;
            store.put_forecast(&stored).await.map_err(err)?;
            let mut new = 0;
            for r in &recommendations {
                if store.add_recommendation(r).await.map_err(err)? {
                    new += 1;
                }
            }
            let series = stored.tiers.iter().chain([&stored.total]).filter(|s| !s.points.is_empty()).count();
            Ok(series as u64 + report.estimates.len() as u64 + new)
        })
    }
}
