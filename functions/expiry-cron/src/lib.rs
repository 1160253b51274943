//! The daily expiry job (seed 003 §2.2, §2.4; docs/cron.md). One run, for one run
//! date:
//!
//! 1. reads the catalog and the claims that interrupted runs left behind;
//! 2. reads the `SUBEND#{yyyy-mm}` window around the run date, and the
//!    `SUBRENEW#{yyyy-mm}` terms (self-renewing monthly) past their grace period
//!    (never a Scan);
//! 3. for each partner in it: expires a term that has run out (through
//!    `plan_expiration` and `Store::apply_transition`, with an audit entry) and sends
//!    the expiration notice, or sends the renewal reminder that is due; each email is
//!    claimed with a marker first, so it goes out once per (partner, end date, kind);
//! 4. runs the further daily steps (promotions past their end date are completed,
//!    experiments past their end date end with their results recorded, open quotes past their validity expire, lapsed trials end, scores that an
//!    approaching end date moves are refreshed);
//! 5. writes the day's `STATS#{tier}/DAY#{date}` snapshots.
//!
//! Every step can be repeated: a second run, a concurrent run or a rerun after a crash
//! finds the markers and the partners' versions and does only what is left.

pub mod alerts;
pub mod campaigns;
pub mod experiments;
pub mod grandfathering;
pub mod intelligence;
pub mod overage;
pub mod promotions;
pub mod quotes;
pub mod scores;
pub mod trials;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::StreamExt;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use tierdesk::app::App;
use tierdesk::clock::rfc3339;
use tierdesk::config::ConfigError;
use tierdesk::domain::actor::Actor;
use tierdesk::domain::partner::{fields, Partner, SubscriptionStatus};
use tierdesk::domain::renewal::{
    expiry_due, reminder_due, NoReminder, NoticeDetails, NoticeKind, Recipient, ReminderSchedule, RunSummary, Window,
    DEFAULT_GRACE_DAYS, DEFAULT_REMINDER_DAYS,
};
use tierdesk::domain::subscription::{plan_expiration, Catalog, TransitionContext, Trigger, TriggerType};
use tierdesk::domain::tier::Tier;
use tierdesk::mail::{Email, Mailer, SendOutcome};
use tierdesk::store::{
    count_calls, Claim, DailySnapshot, Marker, MarkerClaim, MarkerState, PartnerRefusal, PartnerStore, ReminderStore,
    SnapshotStore, Store, StoreError, TierStore, WriteError,
};
use tierdesk::stripe_adapter::StripeGateway;

/// Who the cron's transitions and audit entries name.
pub const ACTOR: &str = "system:expiry-cron";
/// Attempts at an expiry whose partner keeps changing underneath it.
const EXPIRY_ATTEMPTS: usize = 3;

pub const DEFAULT_CONSOLE_URL: &str = "http://127.0.0.1:3000/";

/// The job's settings, read once at init (documented in docs/cron.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronConfig {
    /// `RENEWAL_REMINDER_DAYS` (default "30,7") and `RENEWAL_REMINDER_DAYS_BY_TIER`
    /// (e.g. "platinum=60,14; gold=45,10").
    pub schedule: ReminderSchedule,
    /// `EXPIRY_GRACE_DAYS` (default 14): how long an auto-renewing term may wait for
    /// its renewal payment after its end date before it expires.
    pub grace_days: u32,
    /// `CRON_MARKER_LEASE_SECS` (default 900): how long a claim on an email is
    /// honoured; after that a later run may take it over (the claiming run crashed).
    pub lease_secs: u32,
    /// `EXPIRY_LOOKBACK_DAYS` (default 31): how many days of missed runs the expiry
    /// window reaches back over, beyond the grace period.
    pub lookback_days: u32,
    /// `CRON_CONCURRENCY` (default 8): partners worked on at once.
    pub concurrency: usize,
    /// `CONSOLE_URL` (default the dev gateway's): the console staff alerts link to.
    pub console_url: String,
    /// `CAMPAIGN_DAILY_EMAIL_CAP` (default 1): marketing emails a partner may get a
    /// day from all campaigns together (docs/campaigns.md).
    pub campaign_daily_cap: u32,
}

impl Default for CronConfig {
    fn default() -> Self {
        Self {
            schedule: ReminderSchedule::default(),
            grace_days: DEFAULT_GRACE_DAYS,
            lease_secs: 900,
            lookback_days: 31,
            concurrency: 8,
            console_url: DEFAULT_CONSOLE_URL.to_string(),
            campaign_daily_cap: 1,
        }
    }
}

/// `scheme://host[:port]` of a URL (the console's address may name a page).
pub fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => &url[..after_scheme + slash],
        None => url,
    }
}

impl CronConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let invalid = |name: &'static str| move |reason: String| ConfigError::Invalid { name, reason };
        let number = |name: &'static str, default: u32, max: u32| -> Result<u32, ConfigError> {
            match var(name) {
                None => Ok(default),
                Some(raw) => raw
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| invalid(name)(format!("{raw:?} is not a number between 0 and {max}"))),
            }
        };
        let default = var("RENEWAL_REMINDER_DAYS").unwrap_or_else(|| DEFAULT_REMINDER_DAYS.to_string());
        let schedule = ReminderSchedule::parse(&default, &var("RENEWAL_REMINDER_DAYS_BY_TIER").unwrap_or_default())
            .map_err(|e| {
                let name = if e.contains('=') { "RENEWAL_REMINDER_DAYS_BY_TIER" } else { "RENEWAL_REMINDER_DAYS" };
                ConfigError::Invalid { name, reason: e }
            })?;
        let lease_secs = number("CRON_MARKER_LEASE_SECS", 900, 86_400)?;
        if lease_secs < 60 {
            return Err(invalid("CRON_MARKER_LEASE_SECS")("must be at least 60 seconds".into()));
        }
        Ok(Self {
            schedule,
            grace_days: number("EXPIRY_GRACE_DAYS", DEFAULT_GRACE_DAYS, 366)?,
            lease_secs,
            lookback_days: number("EXPIRY_LOOKBACK_DAYS", 31, 366)?,
            concurrency: number("CRON_CONCURRENCY", 8, 64)?.max(1) as usize,
            console_url: var("CONSOLE_URL").unwrap_or_else(|| DEFAULT_CONSOLE_URL.to_string()),
            campaign_daily_cap: number("CAMPAIGN_DAILY_EMAIL_CAP", 1, 10)?.max(1),
        })
    }
}

/// The date a run works for, and the instant its transitions and audit entries
/// carry: from the event, never from the clock, so a rerun of the same event writes
/// the same timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDate {
    pub date: NaiveDate,
    pub at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the event has neither `time` nor `detail.date`")]
    NoDate,
    #[error("the event's time {0:?} is not an RFC 3339 timestamp")]
    BadTime(String),
    #[error("detail.date {0}")]
    BadDate(String),
}

impl RunDate {
    /// The cron acting in this run: its time is the run's, so a rerun writes the
    /// same stamps; the request is the run's date.
    pub fn actor(&self) -> Actor {
        Actor::from_parts(ACTOR, &self.at, self.date, format!("cron-{}", self.date))
    }

    /// A run for `date` (backfill, dev gateway, tests): its instant is the start of
    /// that day, UTC.
    pub fn for_date(date: NaiveDate) -> Self {
        Self { date, at: format!("{}T00:00:00.000Z", date.format("%Y-%m-%d")) }
    }

    pub fn at_instant(at: DateTime<Utc>) -> Self {
        Self { date: at.date_naive(), at: rfc3339(at) }
    }

    /// EventBridge's scheduled event: the run date is its `time`; `detail.date`
    /// (YYYY-MM-DD) overrides it for a backfill.
    pub fn from_event(event: &Value) -> Result<Self, EventError> {
        match &event["detail"]["date"] {
            Value::Null => {}
            date => return fields::date(date).map(Self::for_date).map_err(EventError::BadDate),
        }
        let time = event["time"].as_str().ok_or(EventError::NoDate)?;
        let at = DateTime::parse_from_rfc3339(time).map_err(|_| EventError::BadTime(time.to_string()))?;
        Ok(Self::at_instant(at.with_timezone(&Utc)))
    }
}

/// This function's logical id in `template.yaml`: it labels the AWS calls a run
/// makes (`tierdesk::calls`, checked against its IAM policy by the IAM test).
pub const LOGICAL_ID: &str = "ExpiryCronFunction";

pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'a>>;

/// A further daily step, run after reminders and expiries and before the snapshots,
/// reported in the summary's `steps` by name (a failure counts in `failed.steps`).
///
/// Promotion completion (`promotions::CompletePromotions`) and quote expiry
/// (`quotes::ExpireQuotes`) are registered by `new`.
pub trait DailyStep: Send + Sync {
    fn name(&self) -> &'static str;
    /// Does the day's work for `run`; returns how many things it changed. Must be safe
    /// to repeat for the same date, like everything else in the run.
    fn run<'a>(&'a self, store: &'a Store, run: &'a RunDate) -> StepFuture<'a>;
}

pub struct ExpiryCron {
    app: App,
    pub mailer: Mailer,
    pub cron: CronConfig,
    steps: Vec<Box<dyn DailyStep>>,
}

tierdesk::wraps_app!(ExpiryCron);

/// What every partner's work in one run shares.
struct RunCtx<'a> {
    run: &'a RunDate,
    run_id: String,
    now: String,
    lease_until: String,
    catalog: &'a [Tier],
}

impl RunCtx<'_> {
    fn catalog(&self) -> Catalog<'_> {
        Catalog::new(self.catalog)
    }
}

fn campaign_step(app: &App, mailer: &Mailer, cron: &CronConfig) -> campaigns::Campaigns {
    campaigns::Campaigns {
        mailer: mailer.clone(),
        clock: app.clock.clone(),
        lease_secs: cron.lease_secs,
        daily_cap: cron.campaign_daily_cap,
        portal_url: format!("{}/partner-portal", origin_of(&cron.console_url)),
    }
}

impl ExpiryCron {
    pub fn new(app: App, mailer: Mailer, cron: CronConfig) -> Self {
        let ids = app.ids.clone();
        let alerts = alerts::StaffAlerts {
            mailer: mailer.clone(),
            clock: app.clock.clone(),
            lease_secs: cron.lease_secs,
            console_url: cron.console_url.clone(),
        };
        let campaigns = campaign_step(&app, &mailer, &cron);
        let steps: Vec<Box<dyn DailyStep>> = vec![
            Box::new(promotions::CompletePromotions { ids: ids.clone() }),
            Box::new(experiments::EndExperiments { ids: ids.clone() }),
            Box::new(quotes::ExpireQuotes { ids: ids.clone() }),
            Box::new(trials::EndTrials { ids: ids.clone(), lookback_days: cron.lookback_days }),
            Box::new(scores::RefreshScores { ids: ids.clone() }),
            Box::new(intelligence::Intelligence),
            // After the forecast, which its forecast rule reads.
            Box::new(alerts),
            // After the scores, which churn-risk campaigns read.
            Box::new(campaigns),
        ];
        Self { app, mailer, cron, steps }
    }

    /// The campaign step as this job runs it (the seed runs it on its own).
    pub fn campaign_step(&self) -> campaigns::Campaigns {
        campaign_step(&self.app, &self.mailer, &self.cron)
    }

    pub fn with_step(mut self, step: Box<dyn DailyStep>) -> Self {
        self.steps.push(step);
        self
    }

    /// The steps that need Stripe: last month's overage as invoice items, and the
    /// moves of partners whose grandfathered price has ended.
    pub fn with_stripe(self, stripe: StripeGateway) -> Self {
        let migrate = grandfathering::MigrateGrandfathered { app: self.app.clone(), stripe: stripe.clone() };
        self.with_step(Box::new(overage::BillOverage { stripe })).with_step(Box::new(migrate))
    }

    /// One run for `run.date`. `Err` only when the run could not start (catalog or
    /// window unreadable); per-partner failures are counted in the summary and retried
    /// by the next run.
    pub async fn run(&self, run: &RunDate) -> Result<RunSummary, StoreError> {
        let started = std::time::Instant::now();
        // Boxed: the run's future is large, and the label's scope would otherwise hold it
        // on the stack (debug builds overflow a test thread's stack).
        let counted = Box::pin(count_calls(self.run_counted(run)));
        let (result, calls) = tierdesk::calls::as_function(LOGICAL_ID, counted).await;
        let mut summary = result?;
        summary.dynamodb_calls = calls;
        tracing::info!(
            date = %run.date,
            reminders_30 = summary.reminders_sent.renewal_reminder_30,
            reminders_7 = summary.reminders_sent.renewal_urgent_7,
            expired = summary.expired,
            expiry_emails = summary.expiry_emails_sent,
            failed_emails = summary.failed.emails,
            failed_expiries = summary.failed.expiries,
            window = summary.window_partners,
            dynamodb_calls = calls,
            ms = started.elapsed().as_millis() as u64,
            "expiry cron run"
        );
        Ok(summary)
    }

    async fn run_counted(&self, run: &RunDate) -> Result<RunSummary, StoreError> {
        let now_instant = self.clock.now();
        let now = rfc3339(now_instant);
        let lease_until = rfc3339(now_instant + Duration::seconds(i64::from(self.cron.lease_secs)));
        let mut summary = RunSummary { date: Some(run.date), run_at: run.at.clone(), ..RunSummary::default() };

        let catalog = self.store.active_catalog().await?;
        summary.dynamodb_reads += 1;
        let ctx = RunCtx { run, run_id: format!("cron-{}", self.ids.new_id()), now, lease_until, catalog: &catalog };

        // Claims interrupted runs left behind whose lease has run out.
        let (stale, reads) = self.store.stale_claims(&ctx.now).await?;
        summary.dynamodb_reads += reads;

        let window = Window::for_run(run.date, &self.cron.schedule, self.cron.grace_days, self.cron.lookback_days);
        let read = self.store.subscription_end_window(&window.months()).await?;
        // Terms that renew monthly by themselves get no reminders: only those whose
        // grace period is over are read, for the expiry.
        let renewing = self.store.renewing_end_window(&window.renewing_months()).await?;
        summary.dynamodb_reads += read.reads + renewing.reads;
        let markers = read.markers;
        let mut partners = read.partners;
        partners.extend(renewing.partners);
        summary.window_partners = partners.len() as u64;

        // Stale claims: a notice still due is worked on with the window's partners (a
        // fresh copy of the partner replaces the window's); an expiry notice whose
        // partner has already expired is sent from what the marker kept (the term) to
        // the partner as it is now (address, name, locale); the rest (the partner
        // renewed, cancelled, or the day passed) are cleared away.
        let mut resumable: Vec<(Marker, Partner)> = Vec::new();
        for marker in stale {
            summary.dynamodb_reads += 1;
            let partner = match self.store.get_partner(&marker.partner_id).await {
                Ok(p) => p,
                Err(e) => {
                    summary.error(&marker.partner_id, "sweep", e.to_string());
                    continue;
                }
            };
            match partner {
                Some(p) if p.subscription_end_date == Some(marker.end_date) && self.still_due(&ctx, &p, &marker) => {
                    partners.retain(|w| w.partner_id != p.partner_id);
                    partners.push(p);
                }
                Some(p)
                    if marker.kind == NoticeKind::SubscriptionExpired
                        && p.subscription_status == SubscriptionStatus::Expired =>
                {
                    resumable.push((marker, p))
                }
                _ => {
                    let cleared = self
                        .store
                        .release_marker(&marker.partner_id, marker.end_date, marker.kind, &marker.owner)
                        .await;
                    if let Err(e) = cleared {
                        summary.error(&marker.partner_id, "sweep", e.to_string());
                    }
                }
            }
        }
        partners
            .sort_by(|a, b| (a.subscription_end_date, &a.partner_id).cmp(&(b.subscription_end_date, &b.partner_id)));

        let ctx = &ctx;
        let mut by_partner: HashMap<&str, Vec<&Marker>> = HashMap::new();
        for m in &markers {
            by_partner.entry(m.partner_id.as_str()).or_default().push(m);
        }
        let by_partner = &by_partner;
        let parts: Vec<RunSummary> = futures::stream::iter(partners)
            .map(|p| async move {
                let seen = by_partner.get(p.partner_id.as_str()).map_or(&[][..], Vec::as_slice);
                self.process(ctx, p, seen).await
            })
            .buffered(self.cron.concurrency)
            .collect()
            .await;
        for part in parts {
            summary.merge(part);
        }
        for (marker, partner) in resumable {
            let part = self.resume_expiry_notice(ctx, marker, &partner).await;
            summary.merge(part);
        }

        for step in &self.steps {
            match step.run(&self.store, run).await {
                Ok(n) => {
                    summary.steps.insert(step.name().to_string(), n);
                }
                Err(e) => {
                    summary.failed.steps += 1;
                    summary.error("-", step.name(), e);
                }
            }
        }

        self.snapshots(ctx, &mut summary).await?;
        Ok(summary)
    }

    /// Whether the notice a stale claim is about is still due today; if not (the partner
    /// cancelled, or the run date moved past it), the claim is cleared away.
    fn still_due(&self, ctx: &RunCtx<'_>, partner: &Partner, marker: &Marker) -> bool {
        let today = ctx.run.date;
        match marker.kind {
            NoticeKind::SubscriptionExpired => expiry_due(partner, today, self.cron.grace_days),
            kind => {
                let tier = ctx.catalog().any(&partner.engagement_tier);
                reminder_due(partner, tier, today, &self.cron.schedule).is_ok_and(|(due, _)| due == kind)
            }
        }
    }

    /// One partner of the window: expire, remind, or nothing.
    async fn process(&self, ctx: &RunCtx<'_>, partner: Partner, seen: &[&Marker]) -> RunSummary {
        let mut out = RunSummary::default();
        let today = ctx.run.date;
        if expiry_due(&partner, today, self.cron.grace_days) {
            self.expire(ctx, partner, &mut out).await;
            return out;
        }
        let tier = ctx.catalog().any(&partner.engagement_tier);
        match reminder_due(&partner, tier, today, &self.cron.schedule) {
            Ok((kind, days_left)) => {
                let Some(end) = partner.subscription_end_date else { return out };
                let marker = seen.iter().find(|m| m.end_date == end && m.kind == kind);
                match marker {
                    Some(m) if m.state == MarkerState::Sent => out.skipped.already_sent += 1,
                    Some(m) if m.is_live_claim(&ctx.now) => out.skipped.held_by_another_run += 1,
                    _ => self.remind(ctx, &partner, tier, kind, days_left, &mut out).await,
                }
            }
            Err(NoReminder::RenewsMonthly) => out.skipped.renews_monthly += 1,
            Err(_) => {}
        }
        out
    }

    async fn remind(
        &self,
        ctx: &RunCtx<'_>,
        partner: &Partner,
        tier: Option<&Tier>,
        kind: NoticeKind,
        days_left: i64,
        out: &mut RunSummary,
    ) {
        let id = partner.partner_id.as_str();
        let Some(details) = NoticeDetails::of(partner, tier) else { return };
        let claim = MarkerClaim {
            partner_id: id,
            end_date: details.end_date,
            kind,
            owner: &ctx.run_id,
            run_date: ctx.run.date,
            now: &ctx.now,
            lease_until: &ctx.lease_until,
            details: None,
            require_active_term: true,
        };
        match self.store.claim_marker(&claim).await {
            Ok(Claim::Claimed) => {}
            Ok(Claim::AlreadySent) => return out.skipped.already_sent += 1,
            Ok(Claim::HeldByAnotherRun) => return out.skipped.held_by_another_run += 1,
            Ok(Claim::PartnerChanged) => return out.skipped.no_longer_due += 1,
            Err(e) => {
                out.failed.emails += 1;
                return out.error(id, "claim", e.to_string());
            }
        }
        let email = notice_email(kind, &details, &Recipient::of(partner), Some(days_left));
        match self.mailer.send(&email, ctx.run.date).await {
            Ok(SendOutcome::Sent { message_id }) => {
                out.sent(id, kind);
                self.mark_sent(ctx, id, details.end_date, kind, &message_id, out).await;
            }
            Ok(SendOutcome::Capped) => {
                out.skipped.mail_capped += 1;
                self.release(ctx, id, details.end_date, kind, out).await;
            }
            Err(e) => {
                out.failed.emails += 1;
                out.error(id, kind.as_str(), e.to_string());
                self.release(ctx, id, details.end_date, kind, out).await;
            }
        }
    }

    /// Claims the expiry notice, writes the expiry transition (re-reading the partner
    /// on a version conflict), then sends the notice.
    async fn expire(&self, ctx: &RunCtx<'_>, mut partner: Partner, out: &mut RunSummary) {
        let id = partner.partner_id.clone();
        let kind = NoticeKind::SubscriptionExpired;
        let mut held: Option<(NaiveDate, NoticeDetails)> = None;
        for _ in 0..EXPIRY_ATTEMPTS {
            let tctx = self.transition_context(ctx, &partner);
            let transition = match plan_expiration(&partner, ctx.catalog(), &tctx, self.cron.grace_days) {
                Ok(Some(t)) => t,
                Ok(None) => {
                    // Renewed, or expired by a concurrent run, since the window read.
                    out.skipped.no_longer_due += 1;
                    if let Some((end, _)) = held {
                        self.release(ctx, &id, end, kind, out).await;
                    }
                    return;
                }
                Err(e) => {
                    out.failed.expiries += 1;
                    out.error(&id, "expire", e.to_string());
                    if let Some((end, _)) = held {
                        self.release(ctx, &id, end, kind, out).await;
                    }
                    return;
                }
            };
            let tier = ctx.catalog().any(&partner.engagement_tier);
            let Some(details) = NoticeDetails::of(&partner, tier) else { return };
            if held.as_ref().map(|(end, _)| *end) != Some(details.end_date) {
                if let Some((end, _)) = held.take() {
                    self.release(ctx, &id, end, kind, out).await;
                }
                let claim = MarkerClaim {
                    partner_id: &id,
                    end_date: details.end_date,
                    kind,
                    owner: &ctx.run_id,
                    run_date: ctx.run.date,
                    now: &ctx.now,
                    lease_until: &ctx.lease_until,
                    details: Some(&details),
                    require_active_term: false,
                };
                match self.store.claim_marker(&claim).await {
                    Ok(Claim::Claimed) => held = Some((details.end_date, details.clone())),
                    Ok(Claim::AlreadySent) => return out.skipped.already_sent += 1,
                    Ok(Claim::HeldByAnotherRun | Claim::PartnerChanged) => return out.skipped.held_by_another_run += 1,
                    Err(e) => {
                        out.failed.expiries += 1;
                        return out.error(&id, "claim", e.to_string());
                    }
                }
            }
            let by = Actor { request_id: ctx.run_id.clone(), ..ctx.run.actor() };
            let audit = self.audit("partner.expire", &by, Some(&partner), &transition.after);
            match self.store.apply_transition(&transition, &audit).await {
                Ok(()) => {
                    out.expired_one(&id);
                    if let Some((end, details)) = held {
                        self.send_expiry_notice(ctx, &id, end, &details, &Recipient::of(&partner), out).await;
                    }
                    return;
                }
                Err(WriteError::Refused(PartnerRefusal::Stale { .. } | PartnerRefusal::Missing)) => {
                    match self.store.get_partner(&id).await {
                        Ok(Some(fresh)) => {
                            out.dynamodb_reads += 1;
                            partner = fresh;
                        }
                        Ok(None) => {
                            out.skipped.no_longer_due += 1;
                            if let Some((end, _)) = held {
                                self.release(ctx, &id, end, kind, out).await;
                            }
                            return;
                        }
                        Err(e) => {
                            out.failed.expiries += 1;
                            out.error(&id, "expire", e.to_string());
                            if let Some((end, _)) = held {
                                self.release(ctx, &id, end, kind, out).await;
                            }
                            return;
                        }
                    }
                }
                Err(e) => {
                    out.failed.expiries += 1;
                    out.error(&id, "expire", e.to_string());
                    if let Some((end, _)) = held {
                        self.release(ctx, &id, end, kind, out).await;
                    }
                    return;
                }
            }
        }
        out.failed.expiries += 1;
        out.error(&id, "expire", "the partner kept changing; retried next run");
        if let Some((end, _)) = held {
            self.release(ctx, &id, end, kind, out).await;
        }
    }

    /// Sends the expiry notice the marker holds. On failure the claim is kept with its
    /// lease ended, so the next run's sweep sends it (the partner has left the window).
    async fn send_expiry_notice(
        &self,
        ctx: &RunCtx<'_>,
        id: &str,
        end: NaiveDate,
        details: &NoticeDetails,
        to: &Recipient,
        out: &mut RunSummary,
    ) {
        let kind = NoticeKind::SubscriptionExpired;
        match self.mailer.send(&notice_email(kind, details, to, None), ctx.run.date).await {
            Ok(SendOutcome::Sent { message_id }) => {
                out.sent(id, kind);
                self.mark_sent(ctx, id, end, kind, &message_id, out).await;
            }
            Ok(SendOutcome::Capped) => {
                out.skipped.mail_capped += 1;
                self.defer(ctx, id, end, out).await;
            }
            Err(e) => {
                out.failed.emails += 1;
                out.error(id, kind.as_str(), e.to_string());
                self.defer(ctx, id, end, out).await;
            }
        }
    }

    /// An expiry notice a crashed or failed run left unsent, its partner expired: the
    /// term from the marker, the recipient from the partner record just read.
    async fn resume_expiry_notice(&self, ctx: &RunCtx<'_>, marker: Marker, partner: &Partner) -> RunSummary {
        let mut out = RunSummary::default();
        let Some(details) = marker.details.clone() else {
            out.error(&marker.partner_id, "sweep", "the expiry marker keeps no email details");
            return out;
        };
        let claim = MarkerClaim {
            partner_id: &marker.partner_id,
            end_date: marker.end_date,
            kind: marker.kind,
            owner: &ctx.run_id,
            run_date: ctx.run.date,
            now: &ctx.now,
            lease_until: &ctx.lease_until,
            details: Some(&details),
            require_active_term: false,
        };
        match self.store.claim_marker(&claim).await {
            Ok(Claim::Claimed) => {
                out.stale_claims_resumed += 1;
                let to = Recipient::of(partner);
                self.send_expiry_notice(ctx, &marker.partner_id, marker.end_date, &details, &to, &mut out).await;
            }
            Ok(Claim::AlreadySent) => out.skipped.already_sent += 1,
            Ok(_) => out.skipped.held_by_another_run += 1,
            Err(e) => {
                out.failed.emails += 1;
                out.error(&marker.partner_id, "sweep", e.to_string());
            }
        }
        out
    }

    fn transition_context(&self, ctx: &RunCtx<'_>, partner: &Partner) -> TransitionContext {
        let renewing = partner.auto_renewal && partner.subscription_status != SubscriptionStatus::Cancelled;
        let end = partner.subscription_end_date.map(|d| d.to_string()).unwrap_or_default();
        let reason = if renewing {
            format!("no renewal payment within {} days of the term's end ({end})", self.cron.grace_days)
        } else {
            format!("the term ended on {end} and does not renew")
        };
        let by = Actor { request_id: ctx.run_id.clone(), ..ctx.run.actor() };
        self.app.transition_context(&by, Trigger::new(TriggerType::Automated, Some(reason)))
    }

    async fn mark_sent(
        &self,
        ctx: &RunCtx<'_>,
        id: &str,
        end: NaiveDate,
        kind: NoticeKind,
        message_id: &str,
        out: &mut RunSummary,
    ) {
        let sent_at = rfc3339(self.clock.now());
        match self.store.mark_sent(id, end, kind, &ctx.run_id, &sent_at, message_id).await {
            Ok(true) => {}
            // Our lease ran out mid-send and another run took the claim over: the email
            // may go out twice. Only a run slower than the lease gets here.
            Ok(false) => out.error(id, "mark_sent", "the claim was taken over before the send was recorded"),
            Err(e) => out.error(id, "mark_sent", e.to_string()),
        }
    }

    async fn release(&self, ctx: &RunCtx<'_>, id: &str, end: NaiveDate, kind: NoticeKind, out: &mut RunSummary) {
        if let Err(e) = self.store.release_marker(id, end, kind, &ctx.run_id).await {
            // The lease ends on its own; the next run takes the claim over.
            out.error(id, "release", e.to_string());
        }
    }

    async fn defer(&self, ctx: &RunCtx<'_>, id: &str, end: NaiveDate, out: &mut RunSummary) {
        let kind = NoticeKind::SubscriptionExpired;
        if let Err(e) = self.store.defer_marker(id, end, kind, &ctx.run_id, &ctx.now).await {
            out.error(id, "defer", e.to_string());
        }
    }

    /// `STATS#{tier}/DAY#{date}` for every active tier, copied from `CURRENT` after the
    /// run's expiries; the first run of a date writes them, reruns leave them.
    async fn snapshots(&self, ctx: &RunCtx<'_>, summary: &mut RunSummary) -> Result<(), StoreError> {
        let tiers: Vec<String> = ctx.catalog.iter().map(|t| t.tier_id.clone()).collect();
        let (stats, reads) = self.store.tier_stats(&tiers).await?;
        summary.dynamodb_reads += reads;
        for (tier, counts) in stats {
            let snapshot = DailySnapshot::new(&tier, ctx.run.date, &ctx.now, counts);
            if self.store.put_daily_snapshot(&snapshot).await? {
                summary.snapshots += 1;
            }
        }
        Ok(())
    }
}

fn notice_email(kind: NoticeKind, d: &NoticeDetails, to: &Recipient, days_left: Option<i64>) -> Email {
    tierdesk::mail::renewal::notice_email(kind, d, to, days_left)
}

/// The Lambda handler: the summary as JSON. A run with failures returns an error
/// (after doing everything it could), so Lambda's retries rerun it — safe, every step
/// is repeatable — and the on-failure destination and alarm see it.
pub async fn handle(cron: &ExpiryCron, event: Value) -> Result<Value, lambda_runtime::Error> {
    let run = RunDate::from_event(&event)?;
    let summary = cron.run(&run).await?;
    let json = serde_json::to_value(&summary)?;
    if summary.has_failures() {
        return Err(format!("expiry cron run for {} finished with failures: {json}", run.date).into());
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tierdesk::mail::EmailKind;

    #[test]
    fn the_run_date_is_the_event_time_unless_detail_names_one() {
        let scheduled = json!({
            "version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "time": "2026-11-21T06:15:00Z", "region": "us-east-1", "resources": [], "detail": {}
        });
        let run = RunDate::from_event(&scheduled).unwrap();
        assert_eq!(run.date, NaiveDate::from_ymd_opt(2026, 11, 21).unwrap());
        assert_eq!(run.at, "2026-11-21T06:15:00.000Z");
        let backfill = json!({"time": "2026-11-21T06:15:00Z", "detail": {"date": "2026-10-01"}});
        let run = RunDate::from_event(&backfill).unwrap();
        assert_eq!((run.date.to_string().as_str(), run.at.as_str()), ("2026-10-01", "2026-10-01T00:00:00.000Z"));
        assert!(matches!(RunDate::from_event(&json!({"detail": {"date": "2026-02-30"}})), Err(EventError::BadDate(_))));
        assert!(matches!(RunDate::from_event(&json!({"time": "yesterday"})), Err(EventError::BadTime(_))));
        assert!(matches!(RunDate::from_event(&json!({})), Err(EventError::NoDate)));
    }

    #[test]
    fn notices_carry_the_terms_facts_in_cents() {
        let d = NoticeDetails {
            tier_id: "gold".into(),
            tier_name: "Power Gold".into(),
            end_date: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
            start_date: None,
            price_per_period: 360_000,
            currency: "usd".into(),
            billing_period: None,
            auto_renewal: false,
        };
        let to = Recipient {
            primary_email: "ops@example.com".into(),
            company_name: "BuildPro".into(),
            locale: tierdesk::mail::Locale::EnGb,
        };
        let e = notice_email(NoticeKind::RenewalUrgent7, &d, &to, Some(3));
        assert_eq!((e.kind, e.vars.amount, e.vars.days_left), (EmailKind::RenewalUrgent7, Some(360_000), Some(3)));
        assert_eq!((e.to.as_str(), e.vars.company_name.as_str()), ("ops@example.com", "BuildPro"));
        assert_eq!(e.vars.locale, tierdesk::mail::Locale::EnGb);
        let e = notice_email(NoticeKind::SubscriptionExpired, &d, &to, None);
        assert_eq!(e.vars.previous_tier_name.as_deref(), Some("Power Gold"));
    }
}
