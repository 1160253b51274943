//! The daily forecast (docs/intelligence.md): reads only the tiers' aggregates
//! (the catalog, then one BatchGetItem of tiers × 37 month items), fits every
//! series and stores the result, so the forecast routes read one item. Its cost
//! grows with tiers and months, never with partners. A rerun for the same date
//! stores the same figures; an older run never replaces a newer forecast.

use crate::{DailyStep, RunDate, StepFuture};
use tierdesk::domain::analytics::{month_of, TierData};
use tierdesk::domain::forecast;
use tierdesk::store::{AnalyticsStore, IntelligenceStore, Store, TierStore};

pub struct Forecasts;

impl DailyStep for Forecasts {
    fn name(&self) -> &'static str {
        "forecasts"
    }

    fn run<'a>(&'a self, store: &'a Store, run: &'a RunDate) -> StepFuture<'a> {
        Box::pin(async move {
            let now = month_of(run.date);
            let tiers = store.all_tiers().await.map_err(|e| e.to_string())?;
            let ids: Vec<String> = tiers.iter().map(|t| t.tier_id.clone()).collect();
            let aggregates =
                store.tier_aggregates(&ids, &forecast::months_to_read(&now), false).await.map_err(|e| e.to_string())?;
            let data: Vec<TierData> = tiers.iter().zip(aggregates).map(|(t, a)| a.into_data(t)).collect();
            let (as_of, at) = (run.date.format("%Y-%m-%d").to_string(), run.at.clone());
            // Fitting is CPU work: keep it off the runtime's threads (the dev gateway
            // serves requests on them while its cron runs).
            let stored = tokio::task::spawn_blocking(move || forecast::from_aggregates(&data, &now, &as_of, &at))
                .await
                .map_err(|e| format!("forecast task: {e}"))?;
            let series = stored.tiers.iter().chain([&stored.total]).filter(|s| !s.points.is_empty()).count();
            store.put_forecast(&stored).await.map_err(|e| e.to_string())?;
            Ok(series as u64)
        })
    }
}
