//! The partners Lambda: partner records, tier changes and cancellations (the one
//! transition mechanism), the subscription dashboard, history, the customer
//! journey with notes and assignment, and the churn-risk, upsell and win-back
//! lists. Routes are data (`ROUTES`) so a test can hold them against
//! `template.yaml` and `infra/openapi.yaml`.

use chrono::{Days, NaiveDate};
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use tierdesk::app::App;
use tierdesk::clock::rfc3339;
use tierdesk::domain::actor::Actor;
use tierdesk::domain::journey;
use tierdesk::domain::partner::{
    Assignment, DashboardTab, NewNote, NewPartner, Partner, PartnerPatch, SubscriptionState, SubscriptionStatus,
};
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::privacy::{self, Audience, ErasureReport, PrivacyError};
use tierdesk::domain::renewal::{ReminderSchedule, DEFAULT_REMINDER_DAYS};
use tierdesk::domain::scoring::{HIGH_RISK_AT, MEDIUM_RISK_AT, UPSELL_AT};
use tierdesk::domain::subscription::{
    self, Cancellation, Catalog, SubscriptionError, TierChange, TierTransition, Transition, TransitionContext, Trigger,
    TriggerType,
};
use tierdesk::domain::tier::DEFAULT_TIER_ID;
use tierdesk::domain::usage;
use tierdesk::domain::validation::{parse, ValidationError};
use tierdesk::http::csv::{csv_response, Cell, CsvWriter};
use tierdesk::http::identity::AuthError;
use tierdesk::http::request::{json_body, query};
use tierdesk::http::router::match_route;
use tierdesk::http::{json, serve, Ctx, PageRequest, PathParams, Route};
use tierdesk::mail::Mailer;
use tierdesk::store::{
    AnalyticsStore, Page, PartnerList, PartnerRefusal, PartnerStore, PrivacyStore, SignalList, Store, TierStore,
    WriteError,
};
use tierdesk::ApiError;

mod jobs;
mod reminders;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ListPartners,
    CreatePartner,
    UpsellOpportunities,
    ChurnRisk,
    WinBack,
    GetPartner,
    UpdatePartner,
    ChangeTier,
    Cancel,
    History,
    Journey,
    AddNote,
    Assign,
    Subscriptions,
    Export,
    Erase,
    OwnExport,
    SendReminder,
    CreateJob,
    GetJob,
    ContinueJob,
}

/// Static segments come before `{partnerId}` so `/churn-risk` is never read as an id.
pub const ROUTES: &[Route<Op>] = &[
    Route { method: "GET", path: "/api/admin/partners", op: Op::ListPartners },
    Route { method: "POST", path: "/api/admin/partners", op: Op::CreatePartner },
    Route { method: "GET", path: "/api/admin/partners/upsell-opportunities", op: Op::UpsellOpportunities },
    Route { method: "GET", path: "/api/admin/partners/churn-risk", op: Op::ChurnRisk },
    Route { method: "GET", path: "/api/admin/partners/win-back", op: Op::WinBack },
    Route { method: "GET", path: "/api/admin/partners/{partnerId}", op: Op::GetPartner },
    Route { method: "PATCH", path: "/api/admin/partners/{partnerId}", op: Op::UpdatePartner },
    Route { method: "PATCH", path: "/api/admin/partners/{partnerId}/engagement-tier", op: Op::ChangeTier },
    Route { method: "POST", path: "/api/admin/partners/{partnerId}/cancel", op: Op::Cancel },
    Route { method: "GET", path: "/api/admin/partners/{partnerId}/history", op: Op::History },
    Route { method: "GET", path: "/api/admin/partners/{partnerId}/journey", op: Op::Journey },
    Route { method: "POST", path: "/api/admin/partners/{partnerId}/notes", op: Op::AddNote },
    Route { method: "POST", path: "/api/admin/partners/{partnerId}/assign", op: Op::Assign },
    Route { method: "GET", path: "/api/admin/partners/{partnerId}/export", op: Op::Export },
    Route { method: "POST", path: "/api/admin/partners/{partnerId}/erase", op: Op::Erase },
    Route { method: "GET", path: "/api/admin/subscriptions", op: Op::Subscriptions },
    Route { method: "GET", path: "/api/privacy/export", op: Op::OwnExport },
    Route { method: "POST", path: "/api/admin/partners/{partnerId}/reminders", op: Op::SendReminder },
    Route { method: "POST", path: "/api/admin/subscriptions/jobs", op: Op::CreateJob },
    Route { method: "GET", path: "/api/admin/subscriptions/jobs/{jobId}", op: Op::GetJob },
    Route { method: "POST", path: "/api/admin/subscriptions/jobs/{jobId}/continue", op: Op::ContinueJob },
];

/// Rows a CSV export may hold per request; the rest is reached with the cursor
/// returned in `x-next-cursor`.
const MAX_CSV_ROWS: u32 = 1000;
/// Attempts at adding a note when the partner changes underneath it.
const NOTE_ATTEMPTS: usize = 3;

pub struct Partners {
    app: App,
    /// Sends the dashboard's renewal reminders; `None`: those routes answer 503.
    pub mailer: Option<Mailer>,
    /// The cron's reminder offsets (`RENEWAL_REMINDER_DAYS[_BY_TIER]`), so a reminder
    /// sent from the dashboard is the notice the cron would send.
    pub reminders: ReminderSchedule,
}

tierdesk::wraps_app!(Partners);

impl Partners {
    pub fn new(app: App) -> Self {
        Self { app, mailer: None, reminders: ReminderSchedule::default() }
    }

    pub fn with_mailer(mut self, mailer: Mailer) -> Self {
        self.mailer = Some(mailer);
        self
    }

    pub fn with_reminders(mut self, reminders: ReminderSchedule) -> Self {
        self.reminders = reminders;
        self
    }

    fn today(&self) -> NaiveDate {
        self.clock.now().date_naive()
    }

    /// A sales-assisted transition by `by` (a signed-in user, or a bulk job's
    /// requester with the job as the request), credited to them.
    fn sales_transition(&self, by: &Actor, reason: Option<String>) -> TransitionContext {
        self.transition_context(by, Trigger::new(TriggerType::SalesAssisted, reason).by_rep(&by.id))
    }
}

pub async fn handle(app: &Partners, req: Request) -> Response<Body> {
    serve(req, app.config.grants, app.clock.as_ref(), |ctx, req| dispatch(app, ctx, req)).await
}

async fn dispatch(app: &Partners, ctx: Ctx, req: Request) -> Result<Response<Body>, ApiError> {
    let (op, params) = match_route(ROUTES, req.method(), req.uri().path())?;
    match op {
        Op::ListPartners => list_partners(app, &ctx, &req).await,
        Op::CreatePartner => create_partner(app, &ctx, &req).await,
        Op::UpsellOpportunities | Op::ChurnRisk | Op::WinBack => score_list(app, &ctx, &req, op).await,
        Op::GetPartner => {
            ctx.require(Permission::ViewCustomerInfo)?;
            json(StatusCode::OK, &load(app, &params).await?)
        }
        Op::UpdatePartner => update_partner(app, &ctx, &req, &params).await,
        Op::ChangeTier => change_tier(app, &ctx, &req, &params).await,
        Op::Cancel => cancel(app, &ctx, &req, &params).await,
        Op::History => history(app, &ctx, &req, &params).await,
        Op::Journey => customer_journey(app, &ctx, &params).await,
        Op::AddNote => add_note(app, &ctx, &req, &params).await,
        Op::Assign => assign(app, &ctx, &req, &params).await,
        Op::Subscriptions => subscriptions(app, &ctx, &req).await,
        Op::Export => {
            ctx.require(Permission::SystemConfig)?;
            export(app, params.get("partnerId"), Audience::Staff).await
        }
        Op::OwnExport => {
            let who = ctx.identity.as_ref().ok_or(AuthError::Unauthenticated)?;
            let own = who.partner_id.clone().filter(|_| who.is_partner_only()).ok_or(PrivacyError::NotAPartner)?;
            export(app, &own, Audience::Partner).await
        }
        Op::Erase => erase(app, &ctx, &req, &params).await,
        Op::SendReminder => send_reminder(app, &ctx, &req, &params).await,
        Op::CreateJob => jobs::create(app, &ctx, &req).await,
        Op::GetJob => jobs::get(app, &ctx, params.get("jobId")).await,
        Op::ContinueJob => jobs::resume(app, &ctx, params.get("jobId")).await,
    }
}

fn not_erased(p: Partner) -> Result<Partner, ApiError> {
    Ok(privacy::unerased(p)?)
}

/// A job id from a path: one that could never exist is simply not found.
pub(crate) fn load_job_id(id: &str) -> Result<&str, ApiError> {
    if parse::is_slug(id) {
        Ok(id)
    } else {
        Err(ApiError::not_found("job"))
    }
}

/// `RENEWAL_REMINDER_DAYS` and `RENEWAL_REMINDER_DAYS_BY_TIER`, read as the cron reads
/// them (docs/cron.md, "Offsets per tier").
pub fn reminder_schedule_from_env() -> Result<ReminderSchedule, String> {
    let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let default = var("RENEWAL_REMINDER_DAYS").unwrap_or_else(|| DEFAULT_REMINDER_DAYS.to_string());
    ReminderSchedule::parse(&default, &var("RENEWAL_REMINDER_DAYS_BY_TIER").unwrap_or_default())
        .map_err(|e| format!("RENEWAL_REMINDER_DAYS: {e}"))
}

/// `POST /api/admin/partners/{partnerId}/reminders`: the renewal reminder now. Staff
/// with `view_customer_info` for the partners assigned to them; others need
/// manager rights (`tier_management`). The body is empty or `{}`.
async fn send_reminder(
    app: &Partners,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::ViewCustomerInfo)?;
    let body = match req.body() {
        Body::Empty => serde_json::Value::Null,
        Body::Text(s) if s.trim().is_empty() => serde_json::Value::Null,
        _ => json_body(req, app.config.max_body_bytes)?,
    };
    if !body.is_null() {
        tierdesk::domain::validation::Fields::new(&body, &[]).finish()?;
    }
    let partner = load(app, params).await?;
    if partner.assigned_sales_rep.as_deref() != Some(who.subject.as_str()) {
        who.require(Permission::TierManage)?;
    }
    let catalog = app.store.active_catalog().await?;
    let owner = format!("manual-{}", ctx.request_id);
    let sent = reminders::send_now(app, &partner, &catalog, &owner, &who.subject, Vec::new()).await?;
    json(StatusCode::OK, &sent)
}

/// A partner named in the path. An id that could never exist is simply not found.
async fn load(app: &Partners, params: &PathParams) -> Result<Partner, ApiError> {
    let id = params.get("partnerId");
    if !parse::is_slug(id) {
        return Err(SubscriptionError::NotFound.into());
    }
    app.store.get_partner(id).await?.ok_or_else(|| SubscriptionError::NotFound.into())
}

fn page(app: &Partners, req: &Request) -> Result<PageRequest, ApiError> {
    Ok(PageRequest::from_request(req, app.config.default_page_size, app.config.max_page_size)?)
}

fn query_param<T>(
    req: &Request,
    name: &str,
    parse: fn(&serde_json::Value) -> Result<T, String>,
) -> Result<Option<T>, ApiError> {
    query(req, name)
        .map(|raw| parse(&serde_json::Value::String(raw)).map_err(|e| ValidationError::single(name, e).into()))
        .transpose()
}

fn int_param(req: &Request, name: &str, min: u32, max: u32) -> Result<Option<u32>, ApiError> {
    query(req, name)
        .map(|raw| match raw.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ValidationError::single(name, format!("must be an integer between {min} and {max}")).into()),
        })
        .transpose()
}

async fn list_partners(app: &Partners, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    ctx.require(Permission::ViewCustomerInfo)?;
    let tier = query_param(req, "tier", parse::slug)?;
    let rep = query_param(req, "salesRep", tierdesk::domain::partner::fields::user_id)?;
    let status = query_param(req, "status", SubscriptionStatus::parse)?;
    let email = query_param(req, "email", tierdesk::domain::partner::fields::email)?;
    let name = query_param(req, "name", tierdesk::domain::partner::fields::name_prefix)?;
    let page = page(app, req)?;
    if name.is_some() && (tier.is_some() || rep.is_some() || email.is_some()) {
        return Err(ValidationError::single("name", "cannot be combined with tier, salesRep or email").into());
    }
    if let Some(email) = email {
        // Exact lookup through the unique-email item: at most one partner.
        let found = match app.store.partner_id_by_email(&email).await? {
            Some(id) => app.store.get_partner(&id).await?,
            None => None,
        };
        let items: Vec<Partner> =
            found.into_iter().filter(|p| status.is_none_or(|s| p.subscription_status == s)).collect();
        return json(StatusCode::OK, &Page { items, next_cursor: None });
    }
    if tier.is_some() && rep.is_some() {
        return Err(ValidationError::single("salesRep", "cannot be combined with tier").into());
    }
    let list = match (tier, rep, name) {
        (Some(t), _, _) => PartnerList::Tier(t),
        (_, Some(r), _) => PartnerList::Rep(r),
        (_, _, Some(n)) => PartnerList::NamePrefix(n),
        _ => PartnerList::All,
    };
    let mut q = Store::partner_list_query(&list);
    if let Some(s) = status {
        q = q.with_status(s);
    }
    let partners: Page<Partner> = app.store.query_page(&q, &page).await?;
    json(StatusCode::OK, &partners)
}

async fn create_partner(app: &Partners, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::ViewCustomerInfo)?;
    let new = NewPartner::parse(&json_body(req, app.config.max_body_bytes)?)?;
    if new.assigned_sales_rep.as_deref().is_some_and(|rep| rep != who.subject) {
        who.require(Permission::TierManage)?;
    }
    let catalog = app.store.active_catalog().await?;
    let partner_id = format!("prt_{}", app.ids.new_id());
    let by = ctx.actor(who);
    let tctx = app.sales_transition(&by, None);
    let transition = subscription::plan_signup(&partner_id, new, Catalog::new(&catalog), &tctx)?;
    app.store.apply_transition(&transition, &app.audit("partner.create", &by, None, &transition.after)).await?;
    json(StatusCode::CREATED, &transition.after)
}

async fn update_partner(
    app: &Partners,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::ViewCustomerInfo)?;
    let patch = PartnerPatch::parse(&json_body(req, app.config.max_body_bytes)?)?;
    if patch.auto_renewal.is_some() {
        who.require(Permission::TierManage)?;
    }
    let partner = not_erased(load(app, params).await?)?;
    let catalog = app.store.active_catalog().await?;
    let by = ctx.actor(who);
    let after = subscription::edit_profile(&partner, &patch, Catalog::new(&catalog), &by)?;
    let action = if patch.auto_renewal.is_some() { "partner.auto_renewal" } else { "partner.update" };
    app.store.save_partner(&partner, &after, &app.audit(action, &by, Some(&partner), &after), None).await?;
    json(StatusCode::OK, &after)
}

/// Reads the partner and the catalog (two reads), plans, and either previews or
/// writes the transition in one transaction.
async fn change_tier(
    app: &Partners,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::TierManage)?;
    let change = TierChange::parse(&json_body(req, app.config.max_body_bytes)?)?;
    if change.discount_percent.is_some() {
        who.require(Permission::ApproveCustomPricing)?;
    }
    let dry_run = match query(req, "dryRun").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ValidationError::single("dryRun", "must be true or false").into()),
    };
    let partner = not_erased(load(app, params).await?)?;
    let catalog = app.store.active_catalog().await?;
    let by = ctx.actor(who);
    let tctx = app.sales_transition(&by, change.reason.clone());
    let transition = subscription::plan_tier_change(&partner, &change, Catalog::new(&catalog), &tctx)?;
    if dry_run {
        return json(StatusCode::OK, &transition.preview(Catalog::new(&catalog)));
    }
    commit(app, &by, &transition, "partner.tier_change").await
}

async fn cancel(app: &Partners, ctx: &Ctx, req: &Request, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::TierManage)?;
    let cancellation = Cancellation::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let partner = not_erased(load(app, params).await?)?;
    let catalog = app.store.active_catalog().await?;
    let by = ctx.actor(who);
    let tctx = app.sales_transition(&by, Some(cancellation.reason.clone()));
    let transition = subscription::plan_cancel(&partner, &cancellation, Catalog::new(&catalog), &tctx)?;
    commit(app, &by, &transition, "partner.cancel").await
}

async fn commit(app: &Partners, by: &Actor, t: &Transition, action: &'static str) -> Result<Response<Body>, ApiError> {
    let audit = app.audit(action, by, t.before.as_ref(), &t.after);
    app.store.apply_transition(t, &audit).await?;
    json(StatusCode::OK, &t.after)
}

async fn history(app: &Partners, ctx: &Ctx, req: &Request, params: &PathParams) -> Result<Response<Body>, ApiError> {
    ctx.require(Permission::ViewCustomerInfo)?;
    let page = page(app, req)?;
    let id = params.get("partnerId");
    if !parse::is_slug(id) {
        return Err(SubscriptionError::NotFound.into());
    }
    let events: Page<TierTransition> = app.store.query_page(&Store::history_query(id), &page).await?;
    // Every partner has at least its signup event, so an empty first page means
    // there is no such partner.
    if events.items.is_empty() && page.cursor.is_none() {
        return Err(SubscriptionError::NotFound.into());
    }
    json(StatusCode::OK, &events)
}

async fn customer_journey(app: &Partners, ctx: &Ctx, params: &PathParams) -> Result<Response<Body>, ApiError> {
    ctx.require(Permission::ViewCustomerInfo)?;
    let id = params.get("partnerId");
    if !parse::is_slug(id) {
        return Err(SubscriptionError::NotFound.into());
    }
    let history = app.store.partner_history(id).await?;
    let partner = history.partner.ok_or(SubscriptionError::NotFound)?;
    let catalog = app.store.active_catalog().await?;
    let today = app.today();
    // This month's limit utilisation feeds the journey's scores (low usage, near
    // limits, high usage on free); the counters came with the partition's Query.
    let usage = history.usage.get(&usage::period_of(today)).and_then(|counts| {
        let tier_id = usage::plan_tier_id(&partner, today, DEFAULT_TIER_ID);
        let tier = catalog.iter().find(|t| t.tier_id == tier_id)?;
        usage::snapshot(&usage::plan(&partner, tier, today), counts)
    });
    let journey = journey::build(&partner, history.transitions, history.notes, Catalog::new(&catalog), today, usage);
    json(StatusCode::OK, &journey)
}

async fn add_note(app: &Partners, ctx: &Ctx, req: &Request, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::ViewCustomerInfo)?;
    let new = NewNote::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let catalog = app.store.active_catalog().await?;
    let note_id = app.ids.new_id();
    // A note does not depend on the partner's state, so a concurrent change is
    // no reason to fail: reload and append again, a bounded number of times.
    for attempt in 1..=NOTE_ATTEMPTS {
        let partner = not_erased(load(app, params).await?)?;
        let by = ctx.actor(who);
        let (after, note) = subscription::add_note(&partner, &new, note_id.clone(), Catalog::new(&catalog), &by);
        let audit = app.audit("partner.note", &by, None, &after);
        match app.store.save_partner(&partner, &after, &audit, Some(&note)).await {
            Ok(()) => return json(StatusCode::CREATED, &note),
            Err(WriteError::Refused(PartnerRefusal::Stale { .. })) if attempt < NOTE_ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(SubscriptionError::VersionConflict { current: None }.into())
}

async fn assign(app: &Partners, ctx: &Ctx, req: &Request, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::ViewCustomerInfo)?;
    let assignment = Assignment::parse(&json_body(req, app.config.max_body_bytes)?)?;
    // A rep may take a partner ("Assign to Me"); handing one to someone else is a manager's call.
    if assignment.sales_rep != who.subject {
        who.require(Permission::TierManage)?;
    }
    let partner = not_erased(load(app, params).await?)?;
    let catalog = app.store.active_catalog().await?;
    let by = ctx.actor(who);
    let after = subscription::assign_rep(&partner, &assignment, Catalog::new(&catalog), &by)?;
    app.store.save_partner(&partner, &after, &app.audit("partner.assign", &by, Some(&partner), &after), None).await?;
    json(StatusCode::OK, &after)
}

/// A partner row as the dashboard and the score lists show it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PartnerRow {
    #[serde(flatten)]
    partner: Partner,
    days_until_expiration: Option<i64>,
    /// `Partner::subscription_state`: tells a cancellation at period end apart.
    subscription_state: SubscriptionState,
}

fn rows(partners: Vec<Partner>, today: NaiveDate) -> Vec<PartnerRow> {
    partners
        .into_iter()
        .map(|partner| PartnerRow {
            days_until_expiration: partner.subscription_end_date.map(|end| (end - today).num_days()),
            subscription_state: partner.subscription_state(),
            partner,
        })
        .collect()
}

/// The active paid subscriptions of the view (one tier or every paid tier) by
/// state, from the tier statistics analytics reads, so the dashboard and analytics
/// count the same thing.
#[derive(Debug, Default)]
struct StateCounts {
    active: i64,
    trialing: i64,
    past_due: i64,
    cancelling: i64,
}

async fn state_counts(store: &Store, tier: Option<&str>) -> Result<StateCounts, ApiError> {
    let tiers: Vec<String> = match tier {
        Some(t) => vec![t.to_string()],
        None => store.all_tiers().await?.into_iter().filter(subscription::is_paid).map(|t| t.tier_id).collect(),
    };
    let mut counts = StateCounts::default();
    if tiers.is_empty() {
        return Ok(counts);
    }
    for agg in store.tier_aggregates(&tiers, &[], false).await? {
        let c = agg.current;
        counts.active += c.subscribed();
        counts.trialing += c.live.trialing_count;
        counts.past_due += c.live.past_due_count;
        counts.cancelling += c.live.cancelling_count;
    }
    Ok(counts)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Active,
    Expiring,
    Expired,
    Cancelled,
    History,
}

impl View {
    fn parse(v: &serde_json::Value) -> Result<Self, String> {
        match v.as_str() {
            Some("active") => Ok(Self::Active),
            Some("expiring") => Ok(Self::Expiring),
            Some("expired") => Ok(Self::Expired),
            Some("cancelled") => Ok(Self::Cancelled),
            Some("history") => Ok(Self::History),
            _ => Err("must be one of active, expiring, expired, cancelled, history".into()),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expiring => "expiring",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::History => "history",
        }
    }
}

/// Days ahead that count as "expiring soon" (seed 003: less than 30 days left).
const EXPIRING_WITHIN_DAYS: u64 = 29;

/// `GET /api/admin/subscriptions`: each tab is one Query on one index partition,
/// so a page costs the same whatever the number of partners.
async fn subscriptions(app: &Partners, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    ctx.require(Permission::ViewCustomerInfo)?;
    let view = query_param(req, "view", View::parse)?.unwrap_or(View::Active);
    let tier = query_param(req, "tier", parse::slug)?;
    let newest_first = match query(req, "sort").as_deref() {
        None | Some("expiration") => view == View::History,
        Some("-expiration") => view != View::History,
        Some(_) => return Err(ValidationError::single("sort", "must be expiration or -expiration").into()),
    };
    let csv = match query(req, "format").as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ValidationError::single("format", "must be json or csv").into()),
    };
    let max = if csv { MAX_CSV_ROWS } else { app.config.max_page_size };
    let page = PageRequest::from_request(req, app.config.default_page_size, max)?;
    let today = app.today();
    if view == View::History {
        let q = Store::transition_log_query(tier.as_deref(), newest_first);
        let events: Page<TierTransition> = app.store.query_page(&q, &page).await?;
        return if csv {
            Ok(csv_response(history_csv(&events.items), "subscriptions", events.next_cursor))
        } else {
            json(
                StatusCode::OK,
                &serde_json::json!({"view": view.as_str(), "items": events.items, "nextCursor": events.next_cursor}),
            )
        };
    }
    let tab = match view {
        View::Active | View::Expiring => DashboardTab::Active,
        View::Expired => DashboardTab::Expired,
        _ => DashboardTab::Cancelled,
    };
    let dated = (view == View::Expiring)
        .then(|| (today, today.checked_add_days(Days::new(EXPIRING_WITHIN_DAYS)).unwrap_or(today)));
    let q = Store::dashboard_query(tab, tier.as_deref(), dated, newest_first);
    let partners: Page<Partner> = app.store.query_page(&q, &page).await?;
    let items = rows(partners.items, today);
    if csv {
        return Ok(csv_response(partners_csv(&items), "subscriptions", partners.next_cursor));
    }
    let mut body = serde_json::json!({"view": view.as_str(), "items": items, "nextCursor": partners.next_cursor});
    // The first page of the active view says how many there are, by state.
    if view == View::Active && query(req, "cursor").is_none() {
        let c = state_counts(&app.store, tier.as_deref()).await?;
        body["counts"] = serde_json::json!({
            "active": c.active, "trialing": c.trialing, "pastDue": c.past_due, "cancelling": c.cancelling,
        });
    }
    json(StatusCode::OK, &body)
}

fn date_cell(d: Option<NaiveDate>) -> Cell {
    d.map_or(Cell::Empty, |d| Cell::Text(d.format("%Y-%m-%d").to_string()))
}

fn partners_csv(rows: &[PartnerRow]) -> String {
    let mut out = CsvWriter::new(&[
        "partnerId",
        "companyName",
        "primaryEmail",
        "engagementTier",
        "subscriptionStatus",
        "subscriptionState",
        "subscriptionStartDate",
        "subscriptionEndDate",
        "daysUntilExpiration",
        "billingPeriod",
        "autoRenewal",
        "pricePerPeriod",
        "mrr",
        "currency",
        "assignedSalesRep",
        "cancellationDate",
        "cancellationReason",
    ]);
    for row in rows {
        let p = &row.partner;
        out.row(vec![
            p.partner_id.as_str().into(),
            p.company_name.as_str().into(),
            p.primary_email.as_str().into(),
            p.engagement_tier.as_str().into(),
            p.subscription_status.as_str().into(),
            row.subscription_state.as_str().into(),
            date_cell(p.subscription_start_date),
            date_cell(p.subscription_end_date),
            row.days_until_expiration.into(),
            p.billing_period.map(|b| b.as_str().to_string()).into(),
            (if p.auto_renewal { "true" } else { "false" }).into(),
            p.price_per_period.into(),
            p.mrr.into(),
            p.currency.as_str().into(),
            p.assigned_sales_rep.clone().into(),
            date_cell(p.cancellation_date),
            p.cancellation_reason.clone().into(),
        ]);
    }
    out.finish()
}

fn history_csv(events: &[TierTransition]) -> String {
    let mut out = CsvWriter::new(&[
        "timestamp",
        "transitionId",
        "partnerId",
        "event",
        "fromTier",
        "toTier",
        "triggerType",
        "salesRep",
        "reason",
        "previousMRR",
        "newMRR",
        "mrrChange",
    ]);
    let text = |v: serde_json::Value| v.as_str().map(String::from);
    for e in events {
        out.row(vec![
            e.timestamp.as_str().into(),
            e.transition_id.as_str().into(),
            e.partner_id.as_str().into(),
            text(serde_json::to_value(e.event).unwrap_or_default()).into(),
            e.from_tier.clone().into(),
            e.to_tier.as_str().into(),
            text(serde_json::to_value(e.trigger.trigger_type).unwrap_or_default()).into(),
            e.trigger.sales_rep.clone().into(),
            e.trigger.reason.clone().into(),
            e.financial_impact.previous_mrr.into(),
            e.financial_impact.new_mrr.into(),
            e.financial_impact.mrr_change.into(),
        ]);
    }
    out.finish()
}

/// Churn risk (highest first, from `?level=`), upsell opportunities (highest first,
/// from `?minScore=`) and win-back (churned within `?days=`, newest first): each a
/// key range on its own sparse index, kept current on every write.
async fn score_list(app: &Partners, ctx: &Ctx, req: &Request, op: Op) -> Result<Response<Body>, ApiError> {
    ctx.require(Permission::ViewCustomerInfo)?;
    let page = page(app, req)?;
    let today = app.today();
    let list = match op {
        Op::ChurnRisk => {
            let min_probability = match query(req, "level").as_deref() {
                None | Some("medium") => MEDIUM_RISK_AT,
                Some("high") => HIGH_RISK_AT,
                Some("low") => 1,
                Some(_) => return Err(ValidationError::single("level", "must be low, medium or high").into()),
            };
            SignalList::ChurnRisk { min_probability }
        }
        Op::UpsellOpportunities => {
            SignalList::Upsell { min_score: int_param(req, "minScore", UPSELL_AT, 100)?.unwrap_or(UPSELL_AT) }
        }
        _ => {
            let days = int_param(req, "days", 1, 730)?.unwrap_or(90);
            SignalList::WinBack { churned_since: today.checked_sub_days(Days::new(u64::from(days))).unwrap_or(today) }
        }
    };
    let q = Store::signal_list_query(list);
    let partners: Page<Partner> = app.store.query_page(&q, &page).await?;
    json(StatusCode::OK, &Page { items: rows(partners.items, today), next_cursor: partners.next_cursor })
}

/// The partner's data as one JSON document (docs/privacy.md): one Query of the
/// partner's partition.
async fn export(app: &Partners, partner_id: &str, audience: Audience) -> Result<Response<Body>, ApiError> {
    if !parse::is_slug(partner_id) {
        return Err(SubscriptionError::NotFound.into());
    }
    let source = app.store.export_source(partner_id).await?.ok_or(SubscriptionError::NotFound)?;
    let doc = privacy::export_document(&source, audience, &rfc3339(app.clock.now()));
    json(StatusCode::OK, &doc)
}

/// `POST …/erase` with `{"confirmPartnerId": "<the same id>"}`: step 1 (one
/// transaction) unless an earlier call did it, then step 2 (the history), which a
/// repeated call finishes if a crash cut it short.
async fn erase(app: &Partners, ctx: &Ctx, req: &Request, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::SystemConfig)?;
    let body = json_body(req, app.config.max_body_bytes)?;
    let confirm = EraseRequest::parse(&body)?;
    let partner = load(app, params).await?;
    if confirm.confirm_partner_id != partner.partner_id {
        return Err(ValidationError::single("confirmPartnerId", "must repeat the partner id of the path").into());
    }
    let (erased, newly) = match &partner.erasure {
        Some(_) => (partner, false),
        None => {
            privacy::check_erasable(&partner)?;
            let by = ctx.actor(who);
            let after = privacy::erase_partner(&partner, &by.at, &by.id);
            // The entry holds the anonymised record only: the trail never keeps
            // what was erased.
            let audit = app.audit::<Partner>("partner.erase", &by, None, &after);
            app.store.erase_partner_record(&partner, &after, &audit).await?;
            (after, true)
        }
    };
    let items_anonymised = app.store.erase_partner_history(&erased.partner_id).await?;
    let erasure = erased.erasure.clone().ok_or(PrivacyError::Erased)?;
    tracing::info!(partner = erased.partner_id, newly, items_anonymised, "partner erased");
    json(
        StatusCode::OK,
        &ErasureReport {
            partner_id: erased.partner_id.clone(),
            erased_at: erasure.erased_at,
            erased_by: erasure.erased_by,
            newly_erased: newly,
            items_anonymised,
            partner: erased,
        },
    )
}

struct EraseRequest {
    confirm_partner_id: String,
}

impl EraseRequest {
    fn parse(body: &serde_json::Value) -> Result<Self, ValidationError> {
        let mut f = tierdesk::domain::validation::Fields::new(body, &["confirmPartnerId"]);
        let id = f.required("confirmPartnerId", parse::slug);
        f.finish()?;
        Ok(Self { confirm_partner_id: id.unwrap_or_default() })
    }
}
