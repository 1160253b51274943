//! The expiry cron on the local stack. In AWS, EventBridge invokes the
//! `ExpiryCronFunction` once a day (`template.yaml`); locally the dev gateway does
//! both jobs of that schedule:
//!
//! - on demand: `POST /_local/cron/expiry-cron?date=YYYY-MM-DD` runs the job for that
//!   date (today when no date is given) and answers the run summary;
//! - daily: a task runs it for the current date at `TIERDESK_CRON_DAILY_AT` (UTC,
//!   default `06:15`, the template's schedule; `off` turns it off).
//!
//! `devctl invoke events/expiry-cron.json` feeds a scheduled event to the same code
//! (routing in `devtools::invoke`).

use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::{DateTime, NaiveTime, Utc};
use expiry_cron::{CronConfig, ExpiryCron, RunDate};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use tierdesk::mail::MailConfig;

pub const CRON_PATH: &str = "/_local/cron/expiry-cron";
/// The logical id of the scheduled function in `template.yaml`.
pub const CRON_FUNCTION: &str = expiry_cron::LOGICAL_ID;
const DEFAULT_DAILY_AT: &str = "06:15";

#[derive(Debug, thiserror::Error)]
pub enum CronSetupError {
    #[error(transparent)]
    Config(#[from] tierdesk::config::ConfigError),
    #[error("TIERDESK_CRON_DAILY_AT must be HH:MM (UTC) or off, not {0:?}")]
    DailyAt(String),
}

/// The job as the Lambda would build it, from the same environment variables.
pub async fn from_env(config: &tierdesk::Config) -> Result<ExpiryCron, CronSetupError> {
    let cron = CronConfig::from_env()?;
    let mail = MailConfig::from_env()?;
    let stripe = crate::gateway::Services::from_env().await.stripe;
    Ok(connect(config, cron, &mail).await.with_stripe(stripe))
}

/// The job over the table `config` names, as the Lambda's `main` wires it (without Stripe).
pub async fn connect(config: &tierdesk::Config, cron: CronConfig, mail: &MailConfig) -> ExpiryCron {
    let app = tierdesk::app::App::connect(config.clone()).await;
    let mailer = app.mailer(mail).await;
    ExpiryCron::new(app, mailer, cron)
}

/// The on-demand route, to merge into the router the dev gateway serves.
pub fn router(cron: Arc<ExpiryCron>) -> axum::Router {
    axum::Router::new().route(CRON_PATH, post(run_now)).with_state(cron)
}

#[derive(Debug, Deserialize)]
struct RunParams {
    date: Option<String>,
}

async fn run_now(State(cron): State<Arc<ExpiryCron>>, Query(params): Query<RunParams>) -> axum::response::Response {
    let date = match params.date {
        None => Utc::now().date_naive(),
        Some(raw) => match tierdesk::domain::partner::fields::date(&Value::String(raw)) {
            Ok(d) => d,
            Err(reason) => {
                let body = json!({"error": {"code": "validation_failed", "message": "invalid query parameter",
                                             "details": {"fields": {"date": reason}}}});
                return json_response(StatusCode::BAD_REQUEST, &body);
            }
        },
    };
    match cron.run(&RunDate::for_date(date)).await {
        Ok(summary) => json_response(StatusCode::OK, &json!(summary)),
        Err(e) => {
            tracing::error!(error = %e, %date, "expiry cron run failed");
            let body = json!({"error": {"code": "internal", "message": "the cron run could not read the table"}});
            json_response(StatusCode::INTERNAL_SERVER_ERROR, &body)
        }
    }
}

/// axum's `json` feature is off in this workspace; the body is small.
fn json_response(status: StatusCode, body: &Value) -> axum::response::Response {
    (status, [(http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// When the daily task fires, from `TIERDESK_CRON_DAILY_AT`; `None` = off.
pub fn daily_at_from_env() -> Result<Option<NaiveTime>, CronSetupError> {
    let raw = std::env::var("TIERDESK_CRON_DAILY_AT").unwrap_or_else(|_| DEFAULT_DAILY_AT.into());
    match raw.trim() {
        "off" => Ok(None),
        t => NaiveTime::parse_from_str(t, "%H:%M").map(Some).map_err(|_| CronSetupError::DailyAt(raw.clone())),
    }
}

/// Runs the job every day at `at` (UTC) for that day's date, like the EventBridge
/// schedule. The first run is at the next `at`, not at start-up, so a freshly seeded
/// stack can still be run by hand for today.
pub fn spawn_daily(cron: Arc<ExpiryCron>, at: NaiveTime) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let now = Utc::now();
            let next = next_daily_run(now, at);
            let wait = (next - now).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            match cron.run(&RunDate::at_instant(next)).await {
                Ok(summary) => tracing::info!(summary = %json!(summary), "daily expiry cron run"),
                Err(e) => tracing::error!(error = %e, "daily expiry cron run failed"),
            }
        }
    })
}

/// The daily task's next run after `now`: today at `at` (UTC) if that is still ahead,
/// else tomorrow at `at`. A run is never due at `now` itself, so a task that wakes up
/// exactly on time schedules the following day.
pub fn next_daily_run(now: DateTime<Utc>, at: NaiveTime) -> DateTime<Utc> {
    let today_at = now.date_naive().and_time(at).and_utc();
    if today_at > now {
        today_at
    } else {
        today_at + chrono::Duration::days(1)
    }
}

/// Whether `event` is an EventBridge scheduled event (what `devctl invoke` hands to
/// the cron rather than to an HTTP function).
pub fn is_scheduled_event(event: &Value) -> bool {
    event["source"] == "aws.events" || event["detail-type"] == "Scheduled Event"
}

/// Functions in `template.yaml` with a `Schedule` event.
pub fn scheduled_functions(template: &str) -> Result<Vec<String>, serde_yaml::Error> {
    let doc: serde_yaml::Value = serde_yaml::from_str(template)?;
    let mut out = Vec::new();
    if let Some(resources) = doc["Resources"].as_mapping() {
        for (name, resource) in resources {
            let scheduled = resource["Properties"]["Events"].as_mapping().is_some_and(|events| {
                events.values().any(|e| matches!(e["Type"].as_str(), Some("Schedule" | "ScheduleV2")))
            });
            if scheduled {
                out.extend(name.as_str().map(str::to_string));
            }
        }
    }
    Ok(out)
}
