//! Staff alerts and KPIs (seed 001 "Monitoring", "Success Metrics";
//! docs/alerts.md).
//!
//! Operational counts a day (`OpsCounts`) are added in the same transaction as the
//! events they count: an invoice record's write (payments that succeeded or
//! failed) and a transition's (cancellations, first payments). So each event
//! counts exactly once under webhook retries, as the records themselves do.
//!
//! Alert rules are data. The daily job observes each rule's metric over its
//! window, and a rule whose threshold is crossed fires once per window: the alert
//! is claimed before its email goes out, and a later run finds it.

use crate::domain::billing::InvoiceRecord;
use crate::domain::subscription::Transition;
use crate::domain::transition::TransitionEvent;
use crate::domain::validation::{parse, Fields, ValidationError};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One day's operational counts (`OPS / DAY#{date}#{tier}`, summed over tiers when
/// read), each field a sum of events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OpsCounts {
    /// Invoices that became paid.
    pub payments_succeeded: i64,
    /// Failed payment attempts (each attempt Stripe reports on an invoice).
    pub payment_failures: i64,
    /// Cancellations, at period end or immediate.
    pub cancellations: i64,
    /// Partners paying for the first time, and the days from their signup.
    pub first_payments: i64,
    pub days_to_first_payment: i64,
}

impl OpsCounts {
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    pub fn plus(self, o: Self) -> Self {
        Self {
            payments_succeeded: self.payments_succeeded + o.payments_succeeded,
            payment_failures: self.payment_failures + o.payment_failures,
            cancellations: self.cancellations + o.cancellations,
            first_payments: self.first_payments + o.first_payments,
            days_to_first_payment: self.days_to_first_payment + o.days_to_first_payment,
        }
    }
}

/// What an invoice record's write adds: a payment when it becomes paid, a failure
/// when its status is failed with more attempts than the record it replaces.
pub fn invoice_counts(previous: Option<&InvoiceRecord>, after: &InvoiceRecord) -> OpsCounts {
    let was_paid = previous.is_some_and(|p| p.status == "paid");
    // Every attempt on an unpaid invoice failed: Stripe's attempt count less the
    // failures already counted (at least the one this record reports).
    let failures = if after.status == "failed" {
        match previous.filter(|p| p.status == "failed") {
            Some(p) => after.attempt_count.saturating_sub(p.attempt_count),
            None => after.attempt_count.max(1),
        }
    } else {
        0
    };
    OpsCounts {
        // A $0 invoice (a trial, a 100% discount) is not a payment.
        payments_succeeded: i64::from(after.status == "paid" && !was_paid && after.amount_paid > 0),
        payment_failures: i64::from(failures),
        ..OpsCounts::default()
    }
}

/// What a transition adds: a cancellation, and a first payment with the days it
/// took from signup.
pub fn transition_counts(t: &Transition) -> OpsCounts {
    let first_paid = t.after.first_paid_date.filter(|_| t.before.as_ref().is_none_or(|b| b.first_paid_date.is_none()));
    OpsCounts {
        cancellations: i64::from(t.record.event == TransitionEvent::Cancel),
        first_payments: i64::from(first_paid.is_some()),
        days_to_first_payment: first_paid.map_or(0, |d| (d - t.after.signup_date).num_days().max(0)),
        ..OpsCounts::default()
    }
}

// ---- Rules ----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertMetric {
    /// Failed payment attempts yesterday (a count), above the threshold.
    PaymentFailuresPerDay,
    /// Cancellations in the ISO week of the day before the run, from its Monday
    /// (a count), above the threshold.
    CancellationsPerWeek,
    /// Partners at 80% or more of a usage limit this month (a count), above.
    PartnersAtUsageLimit,
    /// Last complete month's MRR churn, basis points of its opening MRR, above.
    ChurnRate,
    /// This month's forecast MRR (cents), below the threshold.
    ForecastBelowTarget,
}

impl AlertMetric {
    pub const ALL: [AlertMetric; 5] = [
        Self::PaymentFailuresPerDay,
        Self::CancellationsPerWeek,
        Self::PartnersAtUsageLimit,
        Self::ChurnRate,
        Self::ForecastBelowTarget,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentFailuresPerDay => "payment_failures_per_day",
            Self::CancellationsPerWeek => "cancellations_per_week",
            Self::PartnersAtUsageLimit => "partners_at_usage_limit",
            Self::ChurnRate => "churn_rate",
            Self::ForecastBelowTarget => "forecast_below_target",
        }
    }

    fn parse(v: &Value) -> Result<Self, String> {
        let s = v.as_str().ok_or("must be a string")?;
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("must be one of {}", Self::ALL.map(|m| m.as_str()).join(", ")))
    }

    /// Fires when the observed value is below the threshold (else above it).
    pub fn fires_below(self) -> bool {
        self == Self::ForecastBelowTarget
    }

    /// What the threshold counts.
    pub fn unit(self) -> &'static str {
        match self {
            Self::ChurnRate => "basis points",
            Self::ForecastBelowTarget => "cents",
            _ => "count",
        }
    }
}

/// A staff alert rule (`ALERTRULES / {ruleId}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertRule {
    pub rule_id: String,
    pub name: String,
    pub metric: AlertMetric,
    pub threshold: i64,
    /// Staff addresses the alert is emailed to.
    pub recipients: Vec<String>,
    pub active: bool,
    pub version: u64,
    pub updated_by: String,
    pub updated_at: String,
}

impl crate::domain::audit::Audited for AlertRule {
    const ENTITY_TYPE: &'static str = "alert_rule";
    fn entity_id(&self) -> &str {
        &self.rule_id
    }
}

pub const MAX_RECIPIENTS: usize = 10;

/// `PUT /api/admin/alert-rules/{ruleId}`: the whole rule; `version` is the one read
/// (absent for a new rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRuleInput {
    pub name: String,
    pub metric: AlertMetric,
    pub threshold: i64,
    pub recipients: Vec<String>,
    pub active: bool,
    pub version: Option<u64>,
}

fn email(v: &Value) -> Result<String, String> {
    let s = v.as_str().ok_or("must be a string")?.trim();
    let ok = s.len() <= 254
        && s.split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.starts_with('.'))
        && !s.contains(char::is_whitespace);
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err("must be email addresses".into())
    }
}

impl AlertRuleInput {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["name", "metric", "threshold", "recipients", "active", "version"]);
        let name = f.required("name", |v| parse::text(v, 1, 80));
        let metric = f.required("metric", AlertMetric::parse);
        let threshold = f.required("threshold", |v| parse::int_in(v, 0, 1_000_000_000_000));
        let recipients = f.required("recipients", |v| {
            let items = v.as_array().ok_or("must be an array of email addresses")?;
            if items.is_empty() || items.len() > MAX_RECIPIENTS {
                return Err(format!("must have 1 to {MAX_RECIPIENTS} addresses"));
            }
            let all: Vec<String> = items.iter().map(email).collect::<Result<_, _>>()?;
            let mut out: Vec<String> = Vec::with_capacity(all.len());
            for a in all {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
            Ok(out)
        });
        let active = f.optional("active", parse::boolean).unwrap_or(true);
        let version = f.optional("version", |v| parse::int_in(v, 1, i64::MAX).map(|n| n as u64));
        f.finish()?;
        match (name, metric, threshold, recipients) {
            (Some(name), Some(metric), Some(threshold), Some(recipients)) => {
                Ok(Self { name, metric, threshold, recipients, active, version })
            }
            _ => Err(ValidationError::single("body", "is incomplete")),
        }
    }

    pub fn into_rule(self, rule_id: &str, previous: Option<&AlertRule>, by: &str, at: &str) -> AlertRule {
        AlertRule {
            rule_id: rule_id.to_string(),
            name: self.name,
            metric: self.metric,
            threshold: self.threshold,
            recipients: self.recipients,
            active: self.active,
            version: previous.map_or(1, |p| p.version + 1),
            updated_by: by.to_string(),
            updated_at: at.to_string(),
        }
    }
}

// ---- Observing and firing -------------------------------------------------------------

/// A metric's value over its window as the daily run saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    pub metric: AlertMetric,
    pub value: i64,
    /// The window's key: an alert fires at most once per (rule, window).
    pub window: String,
    pub window_label: String,
}

/// What the daily run knows, for `run_date`.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// The 7 days before the run date, oldest first (missing days are zero).
    pub last_days: Vec<OpsCounts>,
    pub partners_at_usage_limit: i64,
    /// Last complete month: MRR lost to churn and MRR at its start.
    pub churn_mrr: i64,
    pub opening_mrr: i64,
    /// This month's forecast MRR, when a forecast exists.
    pub forecast_this_month: Option<i64>,
}

fn iso_week(d: NaiveDate) -> String {
    let w = d.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// Every metric's observation for `run_date` (a run on day D looks at the days
/// before D: D−1 for a day, D−7..D−1 for the week).
pub fn observe(run_date: NaiveDate, s: &Signals) -> Vec<Observation> {
    let yesterday = run_date.pred_opt().unwrap_or(run_date);
    let month = crate::domain::analytics::month_of(run_date);
    let last_month = crate::domain::analytics::month_minus(&month, 1);
    let mut out = vec![
        Observation {
            metric: AlertMetric::PaymentFailuresPerDay,
            value: s.last_days.last().map_or(0, |d| d.payment_failures),
            window: yesterday.format("%Y-%m-%d").to_string(),
            window_label: format!("on {}", yesterday.format("%Y-%m-%d")),
        },
        Observation {
            metric: AlertMetric::CancellationsPerWeek,
            // The ISO week of yesterday, Monday to yesterday: the window and the
            // count are the same days, so a week's cancellations fire it once.
            value: s
                .last_days
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    let day = run_date - chrono::Duration::days((s.last_days.len() - i) as i64);
                    iso_week(day) == iso_week(yesterday)
                })
                .map(|(_, d)| d.cancellations)
                .sum(),
            window: iso_week(yesterday),
            window_label: format!("in week {} (to {})", iso_week(yesterday), yesterday.format("%Y-%m-%d")),
        },
        Observation {
            metric: AlertMetric::PartnersAtUsageLimit,
            value: s.partners_at_usage_limit,
            window: month.clone(),
            window_label: format!("in {month}"),
        },
    ];
    if s.opening_mrr > 0 {
        out.push(Observation {
            metric: AlertMetric::ChurnRate,
            value: crate::domain::analytics::rate_bp(s.churn_mrr, s.opening_mrr).unwrap_or(0),
            window: last_month.clone(),
            window_label: format!("in {last_month}"),
        });
    }
    if let Some(f) = s.forecast_this_month {
        out.push(Observation {
            metric: AlertMetric::ForecastBelowTarget,
            value: f,
            window: month.clone(),
            window_label: format!("for {month}"),
        });
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Claimed by a run that is sending its email.
    Sending,
    Sent,
}

/// A fired alert (`ALERTS / {window}#{ruleId}`): listed in the API, emailed once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub alert_id: String,
    pub rule_id: String,
    pub name: String,
    pub metric: AlertMetric,
    pub value: i64,
    pub threshold: i64,
    pub window: String,
    pub message: String,
    pub state: AlertState,
    pub fired_at: String,
    /// The claim of the run sending it, and until when it holds.
    pub claim: String,
    pub lease_until: String,
    #[serde(default)]
    pub sent_at: Option<String>,
}

fn describe(metric: AlertMetric, value: i64) -> String {
    match metric {
        AlertMetric::ChurnRate => format!("{}.{:02}%", value / 100, value % 100),
        AlertMetric::ForecastBelowTarget => crate::domain::money::format_amount(value, "usd"),
        _ => value.to_string(),
    }
}

/// The alerts the rules call for: each active rule whose metric crossed its
/// threshold in its window.
pub fn fire(rules: &[AlertRule], observations: &[Observation], at: &str, claim: &str, lease_until: &str) -> Vec<Alert> {
    rules
        .iter()
        .filter(|r| r.active)
        .filter_map(|r| {
            let o = observations.iter().find(|o| o.metric == r.metric)?;
            let crossed = if r.metric.fires_below() { o.value < r.threshold } else { o.value > r.threshold };
            crossed.then(|| Alert {
                alert_id: format!("{}#{}", o.window, r.rule_id),
                rule_id: r.rule_id.clone(),
                name: r.name.clone(),
                metric: r.metric,
                value: o.value,
                threshold: r.threshold,
                window: o.window.clone(),
                message: format!(
                    "{}: {} {} (threshold {}{})",
                    r.name,
                    describe(r.metric, o.value),
                    o.window_label,
                    if r.metric.fires_below() { "at least " } else { "at most " },
                    describe(r.metric, r.threshold)
                ),
                state: AlertState::Sending,
                fired_at: at.to_string(),
                claim: claim.to_string(),
                lease_until: lease_until.to_string(),
                sent_at: None,
            })
        })
        .collect()
}

/// The rules `make run` seeds (docs/alerts.md); a deployment sets its own.
pub fn default_rules(recipient: &str, by: &str, at: &str) -> Vec<AlertRule> {
    let rule = |id: &str, name: &str, metric, threshold| AlertRule {
        rule_id: id.into(),
        name: name.into(),
        metric,
        threshold,
        recipients: vec![recipient.to_string()],
        active: true,
        version: 1,
        updated_by: by.into(),
        updated_at: at.into(),
    };
    vec![
        rule("payment-failures", "Payment failures", AlertMetric::PaymentFailuresPerDay, 5),
        rule("cancellations", "Cancellations this week", AlertMetric::CancellationsPerWeek, 3),
        rule("usage-limits", "Partners at a usage limit", AlertMetric::PartnersAtUsageLimit, 10),
        rule("churn-rate", "Monthly MRR churn", AlertMetric::ChurnRate, 500),
    ]
}

// ---- KPIs -----------------------------------------------------------------------------

/// Seed 001's success metrics the data supports, for one month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kpis {
    pub month: String,
    /// Percent of payment outcomes that succeeded.
    pub payment_success_rate: Option<f64>,
    pub payments_succeeded: i64,
    pub payment_failures: i64,
    /// Trials converted ÷ trials started in the month, percent.
    pub trial_conversion_rate: Option<f64>,
    /// Expansion MRR ÷ MRR at the month's start, percent.
    pub expansion_rate: Option<f64>,
    /// (Opening + expansion − contraction − churn) ÷ opening MRR, percent (monthly).
    pub net_revenue_retention: Option<f64>,
    /// Mean days from signup to first payment, of partners first paying this month.
    pub average_days_to_first_payment: Option<f64>,
    pub cancellations: i64,
    /// KPIs Tierdesk cannot compute from its own data (docs/alerts.md).
    pub needs_input: Vec<String>,
}

fn pct(num: i64, den: i64) -> Option<f64> {
    (den > 0).then(|| ((num as f64 / den as f64) * 10_000.0).round() / 100.0)
}

/// The month's KPIs from its daily counts and its tier flows.
pub fn kpis(month: &str, days: &[OpsCounts], flows: &crate::domain::analytics::TierFlows, opening_mrr: i64) -> Kpis {
    let sum = days.iter().fold(OpsCounts::default(), |a, d| a.plus(*d));
    let outcomes = sum.payments_succeeded + sum.payment_failures;
    let retained = opening_mrr + flows.expansion_mrr - flows.contraction_mrr - flows.churn_mrr;
    Kpis {
        month: month.to_string(),
        payment_success_rate: pct(sum.payments_succeeded, outcomes),
        payments_succeeded: sum.payments_succeeded,
        payment_failures: sum.payment_failures,
        trial_conversion_rate: pct(flows.trial_conversions, flows.trial_starts),
        expansion_rate: pct(flows.expansion_mrr, opening_mrr),
        net_revenue_retention: pct(retained, opening_mrr),
        average_days_to_first_payment: (sum.first_payments > 0)
            .then(|| ((sum.days_to_first_payment as f64 / sum.first_payments as f64) * 10.0).round() / 10.0),
        cancellations: sum.cancellations,
        needs_input: vec![
            "customer acquisition cost (needs marketing spend)".into(),
            "customer satisfaction (needs survey results)".into(),
            "support tickets (needs the support desk's counts)".into(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn rule(metric: AlertMetric, threshold: i64) -> AlertRule {
        AlertRule {
            rule_id: "r".into(),
            name: "Rule".into(),
            metric,
            threshold,
            recipients: vec!["ops@example.com".into()],
            active: true,
            version: 1,
            updated_by: "a".into(),
            updated_at: "t".into(),
        }
    }

    fn day(failures: i64, cancellations: i64) -> OpsCounts {
        OpsCounts { payment_failures: failures, cancellations, ..OpsCounts::default() }
    }

    #[test]
    fn observations_take_their_windows_before_the_run_date() {
        let signals = Signals {
            last_days: vec![day(1, 1), day(0, 0), day(0, 2), day(0, 0), day(0, 0), day(0, 1), day(7, 0)],
            partners_at_usage_limit: 4,
            churn_mrr: 30_000,
            opening_mrr: 400_000,
            forecast_this_month: Some(1_000_000),
        };
        let o = observe(d("2026-12-07"), &signals);
        let get = |m| o.iter().find(|x| x.metric == m).unwrap();
        assert_eq!(
            (get(AlertMetric::PaymentFailuresPerDay).value, get(AlertMetric::PaymentFailuresPerDay).window.as_str()),
            (7, "2026-12-06")
        );
        assert_eq!(
            (get(AlertMetric::CancellationsPerWeek).value, get(AlertMetric::CancellationsPerWeek).window.as_str()),
            (4, "2026-W49")
        );
        assert_eq!((get(AlertMetric::ChurnRate).value, get(AlertMetric::ChurnRate).window.as_str()), (750, "2026-11"));
        assert_eq!(get(AlertMetric::ForecastBelowTarget).window, "2026-12");
        // No opening MRR: no churn rate to judge; no forecast: nothing to compare.
        let bare = observe(d("2026-12-07"), &Signals::default());
        assert!(bare
            .iter()
            .all(|x| x.metric != AlertMetric::ChurnRate && x.metric != AlertMetric::ForecastBelowTarget));
    }

    #[test]
    fn a_rule_fires_past_its_threshold_in_its_direction_and_names_the_window() {
        let o = observe(
            d("2026-12-07"),
            &Signals {
                last_days: vec![day(6, 0)],
                forecast_this_month: Some(900_000),
                opening_mrr: 1,
                ..Signals::default()
            },
        );
        let fired = fire(
            &[rule(AlertMetric::PaymentFailuresPerDay, 5), rule(AlertMetric::ForecastBelowTarget, 1_000_000)],
            &o,
            "at",
            "claim",
            "lease",
        );
        assert_eq!(fired.len(), 2);
        assert_eq!(fired[0].alert_id, "2026-12-06#r");
        assert_eq!(fired[0].message, "Rule: 6 on 2026-12-06 (threshold at most 5)");
        assert_eq!(fired[1].message, "Rule: $9,000.00 for 2026-12 (threshold at least $10,000.00)");
        // At the threshold, or inactive: nothing.
        assert!(fire(&[rule(AlertMetric::PaymentFailuresPerDay, 6)], &o, "a", "c", "l").is_empty());
        let mut off = rule(AlertMetric::PaymentFailuresPerDay, 0);
        off.active = false;
        assert!(fire(&[off], &o, "a", "c", "l").is_empty());
    }

    #[test]
    fn rules_parse_with_every_bad_field_named() {
        let ok = AlertRuleInput::parse(&serde_json::json!({
            "name": "Failures", "metric": "payment_failures_per_day", "threshold": 3,
            "recipients": ["Ops@Example.com"]
        }))
        .unwrap();
        assert_eq!((ok.recipients[0].as_str(), ok.active, ok.version), ("ops@example.com", true, None));
        let err = AlertRuleInput::parse(&serde_json::json!({
            "name": "", "metric": "mood", "threshold": -1, "recipients": ["not-an-address"], "extra": 1
        }))
        .unwrap_err();
        for field in ["name", "metric", "threshold", "recipients", "extra"] {
            assert!(err.fields.contains_key(field), "{field}: {err:?}");
        }
    }

    #[test]
    fn kpis_come_from_the_months_counts_and_flows() {
        let days = [
            OpsCounts {
                payments_succeeded: 9,
                payment_failures: 1,
                first_payments: 2,
                days_to_first_payment: 25,
                cancellations: 1,
            },
            OpsCounts { payments_succeeded: 10, ..OpsCounts::default() },
        ];
        let flows = crate::domain::analytics::TierFlows {
            trial_starts: 8,
            trial_conversions: 2,
            expansion_mrr: 50_000,
            contraction_mrr: 10_000,
            churn_mrr: 20_000,
            ..Default::default()
        };
        let k = kpis("2026-11", &days, &flows, 1_000_000);
        assert_eq!(k.payment_success_rate, Some(95.0));
        assert_eq!(k.trial_conversion_rate, Some(25.0));
        assert_eq!(k.expansion_rate, Some(5.0));
        assert_eq!(k.net_revenue_retention, Some(102.0));
        assert_eq!(k.average_days_to_first_payment, Some(12.5));
        assert_eq!(k.cancellations, 1);
        assert_eq!(kpis("2026-11", &[], &Default::default(), 0).payment_success_rate, None);
    }

    fn invoice(status: &str, attempts: u32, paid: i64) -> InvoiceRecord {
        serde_json::from_value(serde_json::json!({
            "invoiceId": "in_1", "partnerId": "p", "invoiceNumber": null, "amount": 1000, "amountPaid": paid,
            "currency": "usd", "tier": "gold", "billingReason": null, "periodStart": null, "periodEnd": null,
            "status": status, "paidAt": null, "invoiceUrl": null, "pdfUrl": null, "attemptCount": attempts,
            "stripeSubscriptionId": null, "stripeCreated": 1, "createdAt": "t", "updatedAt": "t"
        }))
        .unwrap()
    }

    #[test]
    fn each_failed_attempt_counts_once_and_a_payment_needs_money() {
        let failed = |prev: Option<&InvoiceRecord>, after: &InvoiceRecord| invoice_counts(prev, after).payment_failures;
        assert_eq!(failed(None, &invoice("failed", 1, 0)), 1);
        assert_eq!(failed(Some(&invoice("failed", 1, 0)), &invoice("failed", 3, 0)), 2, "a missed event's attempt too");
        assert_eq!(failed(Some(&invoice("failed", 3, 0)), &invoice("failed", 3, 0)), 0, "a redelivery");
        assert_eq!(failed(Some(&invoice("pending", 0, 0)), &invoice("failed", 2, 0)), 2);
        let paid = |prev: Option<&InvoiceRecord>, after: &InvoiceRecord| invoice_counts(prev, after).payments_succeeded;
        assert_eq!(paid(Some(&invoice("failed", 2, 0)), &invoice("paid", 3, 1000)), 1);
        assert_eq!(paid(Some(&invoice("paid", 1, 1000)), &invoice("paid", 1, 1000)), 0);
        assert_eq!(paid(None, &invoice("paid", 0, 0)), 0, "a $0 invoice is no payment");
    }

    #[test]
    fn recipients_are_deduplicated_in_order() {
        let r = AlertRuleInput::parse(&serde_json::json!({
            "name": "x", "metric": "churn_rate", "threshold": 1, "recipients": ["a@x.io", "b@x.io", "A@x.io"]
        }))
        .unwrap();
        assert_eq!(r.recipients, ["a@x.io", "b@x.io"]);
    }
}
