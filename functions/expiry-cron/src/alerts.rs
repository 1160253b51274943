//! The daily staff alerts (docs/alerts.md): each active rule's metric over its
//! window, and an email to the rule's recipients for each one crossed, once per
//! window.
//!
//! Reads: the rules (one Query), the last 7 days' operational counts (one Query),
//! this month's usage adoption (one Query), the tiers' aggregates of the last two
//! months (the catalog and one BatchGetItem) and the stored forecast (one GetItem):
//! flat in partners. An alert is claimed before its email goes out; a rerun, or a
//! concurrent run, finds the claim and sends nothing again. A claim whose email
//! failed is given back and the step fails, so Lambda's retry of the run (the
//! same date, so the same windows) sends it; one whose run crashed lapses after
//! the lease.

use crate::{DailyStep, RunDate, StepFuture};
use chrono::Duration;
use tierdesk::clock::rfc3339;
use tierdesk::domain::alerts::{self, OpsCounts, Signals};
use tierdesk::domain::analytics::{month_minus, month_of, months_between};
use tierdesk::mail::staff::alert_notice;
use tierdesk::mail::Mailer;
use tierdesk::store::{AlertStore, AnalyticsStore, IntelligenceStore, Store, TierStore};

pub struct StaffAlerts {
    pub mailer: Mailer,
    pub clock: std::sync::Arc<dyn tierdesk::Clock>,
    pub lease_secs: u32,
    /// Where the email sends staff: the console.
    pub console_url: String,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// What the run knows for its date.
async fn signals(store: &Store, run: &RunDate) -> Result<Signals, String> {
    let day = |n: i64| (run.date - Duration::days(n)).format("%Y-%m-%d").to_string();
    let counted = store.ops_days(&day(7), &day(1)).await.map_err(err)?;
    let last_days: Vec<OpsCounts> = (1..=7)
        .rev()
        .map(|n| counted.iter().find(|(d, _)| *d == day(n)).map_or_else(OpsCounts::default, |(_, c)| *c))
        .collect();
    let now = month_of(run.date);
    let last = month_minus(&now, 1);
    let adoption = store.adoption(&now).await.map_err(err)?;
    // A partner near two limits counts once per metric: the largest count per tier
    // is the number certain to be at a limit.
    let partners_at_usage_limit =
        adoption.values().map(|metrics| metrics.values().map(|m| m.near_limit).max().unwrap_or(0)).sum();
    let tiers = store.all_tiers().await.map_err(err)?;
    let ids: Vec<String> = tiers.iter().map(|t| t.tier_id.clone()).collect();
    let aggregates = store.tier_aggregates(&ids, &months_between(&last, &now), false).await.map_err(err)?;
    let (mut churn_mrr, mut opening_mrr) = (0, 0);
    for (t, a) in tiers.iter().zip(aggregates) {
        let data = a.into_data(t);
        churn_mrr += data.flows(&last).churn_mrr;
        opening_mrr += data.closing(&month_minus(&last, 1), &now).mrr;
    }
    let forecast_this_month = store
        .forecast()
        .await
        .map_err(err)?
        .and_then(|f| f.total.points.iter().find(|p| p.month == now).map(|p| p.value));
    Ok(Signals { last_days, partners_at_usage_limit, churn_mrr, opening_mrr, forecast_this_month })
}

impl DailyStep for StaffAlerts {
    fn name(&self) -> &'static str {
        "staff_alerts"
    }

    fn run<'a>(&'a self, store: &'a Store, run: &'a RunDate) -> StepFuture<'a> {
        Box::pin(async move {
            let rules = store.alert_rules().await.map_err(err)?;
            if !rules.iter().any(|r| r.active) {
                return Ok(0);
            }
            let observations = alerts::observe(run.date, &signals(store, run).await?);
            let now = self.clock.now();
            let claim = ulid::Ulid::new().to_string().to_lowercase();
            let lease_until = rfc3339(now + Duration::seconds(i64::from(self.lease_secs)));
            let (mut sent, mut failures) = (0, Vec::new());
            for alert in alerts::fire(&rules, &observations, &run.at, &claim, &lease_until) {
                if !store.claim_alert(&alert, &rfc3339(now)).await.map_err(err)? {
                    continue;
                }
                let rendered = alert_notice(&alert, &self.console_url);
                let rule = rules.iter().find(|r| r.rule_id == alert.rule_id);
                let mut failed = false;
                for to in rule.map(|r| r.recipients.as_slice()).unwrap_or_default() {
                    if let Err(e) = self.mailer.deliver("staff_alert", to, &rendered, run.date, false).await {
                        tracing::error!(rule = %alert.rule_id, error = %e, "staff alert not sent");
                        failed = true;
                    }
                }
                if failed {
                    // Given back for Lambda's retry of this run (same date, same
                    // windows); the other alerts still go out.
                    store.release_alert(&alert).await.map_err(err)?;
                    failures.push(alert.alert_id);
                    continue;
                }
                store.mark_alert_sent(&alert, &rfc3339(self.clock.now())).await.map_err(err)?;
                sent += 1;
            }
            if failures.is_empty() {
                Ok(sent)
            } else {
                Err(format!("alerts {} could not be emailed; a retry of this run sends them", failures.join(", ")))
            }
        })
    }
}
