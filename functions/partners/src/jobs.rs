//! Bulk actions on a filtered subscriptions view, as a job (docs/cron.md "Bulk
//! actions from the dashboard"):
//!
//! - `POST /api/admin/subscriptions/jobs` creates `JOB#{id}` and runs its first chunk;
//! - `POST /api/admin/subscriptions/jobs/{jobId}/continue` runs the next chunk;
//! - `GET /api/admin/subscriptions/jobs/{jobId}` reads its progress.
//!
//! A chunk is one page of the view (`CHUNK` partners) from the job's cursor. Each
//! partner's effect (a reminder's claim, a renewal's transition) is written in one
//! transaction with the job's `ITEM#{partnerId}`, conditional on it not existing, so
//! a partner is acted on once per job, whoever runs the chunk and however often. The
//! chunk's counts and the next cursor are then written conditional on the job's
//! version: of two runners of one chunk only one counts it, and a chunk cut short
//! by a crash is run again from the same cursor, finding its done partners' items.

use super::reminders::{send_now, NotSent};
use super::{load_job_id, Partners};
use chrono::Days;
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use tierdesk::clock::rfc3339;
use tierdesk::domain::dashboard_job::{
    renewable, Counts, Job, JobAction, JobItem, JobRequest, JobStatus, JobView, Outcome, CHUNK,
};
use tierdesk::domain::partner::Partner;
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::renewal::ReminderError;
use tierdesk::domain::subscription::{self, Catalog, SubscriptionError, TierChange};
use tierdesk::domain::tier::Tier;
use tierdesk::http::request::json_body;
use tierdesk::http::{json, Ctx, PageRequest};
use tierdesk::store::{JobStore, Page, PartnerRefusal, PartnerStore, Store, TierStore, WriteError};
use tierdesk::ApiError;

/// Days ahead that the `expiring` view covers (as the dashboard's).
const EXPIRING_WITHIN_DAYS: u64 = 29;

pub(crate) async fn create(app: &Partners, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::TierManage)?;
    let request = JobRequest::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let now = app.clock.now();
    let job = Job {
        job_id: format!("job_{}", app.ids.new_id()),
        action: request.action,
        view: request.view,
        tier: request.tier,
        status: JobStatus::Running,
        counts: Counts::default(),
        cursor: None,
        chunks: 0,
        created_on: now.date_naive(),
        created_by: who.subject.clone(),
        created_at: rfc3339(now),
        updated_at: rfc3339(now),
        completed_at: None,
        version: 1,
    };
    app.store.create_job(&job, now.timestamp()).await?;
    let job = run_chunk(app, job, &who.subject).await?;
    json(StatusCode::CREATED, &job)
}

pub(crate) async fn get(app: &Partners, ctx: &Ctx, job_id: &str) -> Result<Response<Body>, ApiError> {
    ctx.require(Permission::TierManage)?;
    json(StatusCode::OK, &load(app, job_id).await?)
}

pub(crate) async fn resume(app: &Partners, ctx: &Ctx, job_id: &str) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::TierManage)?;
    let job = load(app, job_id).await?;
    if job.status == JobStatus::Completed {
        return json(StatusCode::OK, &job);
    }
    json(StatusCode::OK, &run_chunk(app, job, &who.subject).await?)
}

async fn load(app: &Partners, job_id: &str) -> Result<Job, ApiError> {
    let id = load_job_id(job_id)?;
    app.store.get_job(id).await?.ok_or_else(|| ApiError::not_found("job"))
}

/// One chunk: the next page of the view, each partner once, then the progress.
/// Returns the job as stored afterwards.
pub(crate) async fn run_chunk(app: &Partners, job: Job, actor: &str) -> Result<Job, ApiError> {
    let chunk = job.chunks + 1;
    let catalog = app.store.active_catalog().await?;
    let dated = (job.view == JobView::Expiring).then(|| {
        (job.created_on, job.created_on.checked_add_days(Days::new(EXPIRING_WITHIN_DAYS)).unwrap_or(job.created_on))
    });
    let q = Store::dashboard_query(job.view.tab(), job.tier.as_deref(), dated, false);
    let page = PageRequest { limit: CHUNK, cursor: job.cursor.clone() };
    let partners: Page<Partner> = app.store.query_page(&q, &page).await?;
    let mut counts = Counts::default();
    for partner in &partners.items {
        if let Some(outcome) = one(app, &job, chunk, partner, &catalog, actor).await? {
            counts.add(outcome);
        }
    }
    let now = app.clock.now();
    let mut after = job.clone();
    after.chunks = chunk;
    after.counts = job.counts.plus(counts);
    after.cursor = partners.next_cursor.clone();
    after.updated_at = rfc3339(now);
    after.version = job.version + 1;
    if after.cursor.is_none() {
        after.status = JobStatus::Completed;
        after.completed_at = Some(rfc3339(now));
    }
    if app.store.save_job(job.version, &after, now.timestamp()).await? {
        return Ok(after);
    }
    // Another runner counted this chunk first: its record stands.
    load(app, &job.job_id).await
}

/// One partner of a chunk. `None`: the job met it in an earlier chunk (its index
/// entry moved on, e.g. renewed): already counted there.
async fn one(
    app: &Partners,
    job: &Job,
    chunk: u32,
    partner: &Partner,
    catalog: &[Tier],
    actor: &str,
) -> Result<Option<Outcome>, ApiError> {
    let now = app.clock.now();
    let item = |outcome: Outcome, reason: Option<&str>| JobItem {
        job_id: job.job_id.clone(),
        partner_id: partner.partner_id.clone(),
        outcome,
        reason: reason.map(str::to_string),
        chunk,
        at: rfc3339(now),
    };
    let counted = |existing: JobItem| (existing.chunk == chunk).then_some(existing.outcome);
    let tier = Catalog::new(catalog).any(&partner.engagement_tier);
    match job.action {
        JobAction::SendReminders => {
            let claimed = item(Outcome::Succeeded, None);
            let extra = vec![app.store.job_item_put(&claimed, now.timestamp())?];
            let owner = format!("{}-{}", job.job_id, partner.partner_id);
            match send_now(app, partner, catalog, &owner, actor, extra).await {
                Ok(_) => Ok(Some(Outcome::Succeeded)),
                Err(NotSent::Extra(old)) => Ok(Store::job_item_of(old).and_then(counted)),
                Err(NotSent::Refused(ReminderError::Mail(_) | ReminderError::Capped)) => {
                    // The claim (and its item) were written, the email was not: record it.
                    let failed = item(Outcome::Failed, Some("mail"));
                    app.store.set_job_item(&failed, now.timestamp()).await?;
                    Ok(Some(Outcome::Failed))
                }
                Err(NotSent::Refused(why)) => skip(app, &item(Outcome::Skipped, Some(reason(&why))), chunk).await,
                Err(NotSent::Failed(e)) => Err(e),
            }
        }
        JobAction::Renew => {
            if let Err(why) = renewable(partner, tier) {
                return skip(app, &item(Outcome::Skipped, Some(why)), chunk).await;
            }
            let change = TierChange {
                tier: partner.engagement_tier.clone(),
                subscription_start_date: None,
                subscription_end_date: None,
                billing_period: None,
                auto_renewal: Some(false),
                reason: Some(format!("bulk renewal {}", job.job_id)),
                version: Some(partner.version),
                trial_days: None,
                trial: false,
                discount_percent: None,
                quoted: None,
            };
            // The job's requester acts, with the job as the request.
            let by = app.acting(actor, &job.job_id);
            let tctx = app.sales_transition(&by, change.reason.clone());
            let transition = match subscription::plan_tier_change(partner, &change, Catalog::new(catalog), &tctx) {
                Ok(t) => t,
                Err(e) => return skip(app, &item(Outcome::Skipped, Some(error_code(&e))), chunk).await,
            };
            let audit = app.audit("partner.bulk_renewal", &by, Some(partner), &transition.after);
            let extra = vec![app.store.job_item_put(&item(Outcome::Succeeded, None), now.timestamp())?];
            match app.store.apply_transition_with(&transition, &audit, extra).await {
                Ok(Ok(())) => Ok(Some(Outcome::Succeeded)),
                Ok(Err((_, old))) => Ok(Store::job_item_of(old).and_then(counted)),
                // The partner changed since the page was read: leave it to a rerun of
                // the job, recorded as failed here.
                Err(WriteError::Refused(PartnerRefusal::Stale { .. })) => {
                    skip(app, &item(Outcome::Failed, Some("version_conflict")), chunk).await
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Records an outcome that has no effect of its own (skipped, or failed before any
/// write), once per partner and job.
async fn skip(app: &Partners, item: &JobItem, chunk: u32) -> Result<Option<Outcome>, ApiError> {
    match app.store.put_job_item(item, app.clock.now().timestamp()).await? {
        None => Ok(Some(item.outcome)),
        Some(existing) => Ok((existing.chunk == chunk).then_some(existing.outcome)),
    }
}

fn reason(why: &ReminderError) -> &'static str {
    match why {
        ReminderError::NotRemindable(r) => r.code(),
        ReminderError::AlreadySentToday => "already_sent_today",
        ReminderError::InProgress => "in_progress",
        ReminderError::PartnerChanged => "partner_changed",
        ReminderError::Mail(_) => "mail",
        ReminderError::Capped => "mail_capped",
    }
}

fn error_code(e: &SubscriptionError) -> &'static str {
    match e {
        SubscriptionError::VersionConflict { .. } => "version_conflict",
        SubscriptionError::NoChange => "no_change",
        _ => "not_renewable",
    }
}
