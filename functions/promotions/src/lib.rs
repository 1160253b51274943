//! The promotions Lambda: promotion CRUD and its approval workflow, codes, the
//! redemption ledger, and the two customer-facing routes, validate (public) and
//! redeem (atomic, idempotent). Routes are data (`ROUTES`) so a test can hold them
//! against `template.yaml` and `infra/openapi.yaml`.

use chrono::NaiveDate;
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tierdesk::app::redemption;
use tierdesk::app::App;
use tierdesk::config::ConfigError;
use tierdesk::domain::audit::AuditEntry;
use tierdesk::domain::money::{BillingPeriod, Percent};
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::pricing::PriceBreakdown;
use tierdesk::domain::promotion::resolver::{self, Asked};
use tierdesk::domain::promotion::{
    self, Action, Actor, Application, ApprovalPolicy, CodeRequest, Customer, NewPromotion, Promotion, PromotionError,
    PromotionPatch, PromotionStatus, PromotionSummary, Reason, ReasonCode,
};
use tierdesk::domain::tier::Tier;
use tierdesk::domain::validation::{parse, Fields, ValidationError};
use tierdesk::http::cache::PublicCache;
use tierdesk::http::request::{json_body, query};
use tierdesk::http::response::{json_text, to_json};
use tierdesk::http::router::match_route;
use tierdesk::http::{json, serve, AuthError, Ctx, PageRequest, PathParams, Route};
use tierdesk::idempotency;
use tierdesk::mail::staff::{self, PromotionNoticeKind};
use tierdesk::mail::Mailer;
use tierdesk::store::{PromotionRefusal, PromotionStore, Redemption, WriteError};
use tierdesk::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    List,
    Create,
    Get,
    Update,
    Delete,
    Workflow(Action),
    AddCodes,
    Redemptions,
    /// A customer's redemptions, staff (`view_customer_info`).
    PartnerRedemptions,
    /// The calling partner's own redemptions.
    OwnRedemptions,
    Validate,
    Redeem,
}

pub const ROUTES: &[Route<Op>] = &[
    Route { method: "GET", path: "/api/admin/promotions", op: Op::List },
    Route { method: "POST", path: "/api/admin/promotions", op: Op::Create },
    Route { method: "GET", path: "/api/admin/promotions/{promotionId}", op: Op::Get },
    Route { method: "PUT", path: "/api/admin/promotions/{promotionId}", op: Op::Update },
    Route { method: "DELETE", path: "/api/admin/promotions/{promotionId}", op: Op::Delete },
    Route { method: "POST", path: "/api/admin/promotions/{promotionId}/submit", op: Op::Workflow(Action::Submit) },
    Route { method: "POST", path: "/api/admin/promotions/{promotionId}/approve", op: Op::Workflow(Action::Approve) },
    Route { method: "POST", path: "/api/admin/promotions/{promotionId}/reject", op: Op::Workflow(Action::Reject) },
    Route { method: "POST", path: "/api/admin/promotions/{promotionId}/pause", op: Op::Workflow(Action::Pause) },
    Route { method: "POST", path: "/api/admin/promotions/{promotionId}/resume", op: Op::Workflow(Action::Resume) },
    Route { method: "POST", path: "/api/admin/promotions/{promotionId}/cancel", op: Op::Workflow(Action::Cancel) },
    Route { method: "POST", path: "/api/admin/promotions/{promotionId}/codes", op: Op::AddCodes },
    Route { method: "GET", path: "/api/admin/promotions/{promotionId}/redemptions", op: Op::Redemptions },
    Route { method: "GET", path: "/api/admin/partners/{partnerId}/redemptions", op: Op::PartnerRedemptions },
    Route { method: "GET", path: "/api/promotions/redemptions", op: Op::OwnRedemptions },
    Route { method: "POST", path: "/api/promotions/validate", op: Op::Validate },
    Route { method: "POST", path: "/api/promotions/redeem", op: Op::Redeem },
];

pub struct Promotions {
    app: App,
    pub settings: Settings,
    pub mailer: Mailer,
    /// Prospects' validate answers, for `PUBLIC_CACHE_TTL_SECS`; this instance's
    /// writes clear it.
    public_cache: PublicCache,
    single_flight: SingleFlight,
    tally: Tally,
}

tierdesk::wraps_app!(Promotions);

/// Distinct prospect validations one instance keeps.
const PUBLIC_CACHE_ENTRIES: usize = 512;

/// Where approval requests go when nobody configured a mailbox.
pub const DEFAULT_APPROVALS_EMAIL: &str = "pricing-approvals@tierdesk.local";

#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: ApprovalPolicy,
    /// `PROMO_APPROVALS_EMAIL`: the approvers' mailbox (requests; outcomes when the
    /// creator's token carried no address).
    pub approvals_email: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self { policy: ApprovalPolicy::default(), approvals_email: DEFAULT_APPROVALS_EMAIL.into() }
    }
}

/// `PROMO_APPROVAL_PERCENT` (default 20), `PROMO_APPROVAL_FIXED_CENTS` (50000),
/// `PROMO_APPROVAL_TRIAL_DAYS` (30): above these a promotion needs approval.
pub fn settings_from_env() -> Result<Settings, ConfigError> {
    let mut policy = ApprovalPolicy::default();
    let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if let Some(raw) = var("PROMO_APPROVAL_PERCENT") {
        let value: serde_json::Value = raw.parse().map_err(|_| invalid("PROMO_APPROVAL_PERCENT"))?;
        policy.max_percent_without_approval = Percent::parse(&value).map_err(|_| invalid("PROMO_APPROVAL_PERCENT"))?;
    }
    if let Some(raw) = var("PROMO_APPROVAL_FIXED_CENTS") {
        policy.max_fixed_cents_without_approval = raw.parse().map_err(|_| invalid("PROMO_APPROVAL_FIXED_CENTS"))?;
    }
    if let Some(raw) = var("PROMO_APPROVAL_TRIAL_DAYS") {
        policy.max_trial_days_without_approval = raw.parse().map_err(|_| invalid("PROMO_APPROVAL_TRIAL_DAYS"))?;
    }
    let approvals_email = match var("PROMO_APPROVALS_EMAIL") {
        Some(e) => parse_email(&e).ok_or_else(|| ConfigError::Invalid {
            name: "PROMO_APPROVALS_EMAIL",
            reason: "must be an email address".into(),
        })?,
        None => DEFAULT_APPROVALS_EMAIL.into(),
    };
    Ok(Settings { policy, approvals_email })
}

fn parse_email(s: &str) -> Option<String> {
    tierdesk::domain::partner::fields::email(&serde_json::Value::String(s.to_string())).ok()
}

fn invalid(name: &'static str) -> ConfigError {
    ConfigError::Invalid { name, reason: "must be a non-negative number".into() }
}

impl Promotions {
    pub fn new(app: App, settings: Settings, mailer: Mailer) -> Self {
        let public_cache =
            PublicCache::new(Duration::from_secs(app.config.public_cache_ttl_secs), PUBLIC_CACHE_ENTRIES);
        Self { app, settings, mailer, public_cache, single_flight: SingleFlight::default(), tally: Tally::default() }
    }

    /// Emails the approvers (a request) or the creator (an outcome). The change is
    /// already written: a failed send is logged (no address) and not retried.
    async fn notify(&self, kind: PromotionNoticeKind, p: &Promotion, actor: &Actor, reason: Option<&str>) {
        let to = match kind {
            PromotionNoticeKind::ApprovalRequested => self.settings.approvals_email.clone(),
            _ => p.created_by_email.clone().unwrap_or_else(|| self.settings.approvals_email.clone()),
        };
        let rendered = staff::promotion_notice(kind, p, &actor.id, reason);
        if let Err(e) = self.mailer.deliver(kind.as_str(), &to, &rendered, actor.today, false).await {
            tracing::error!(error = %e, kind = kind.as_str(), promotion = p.promotion_id, "promotion notice not sent");
        }
    }

    fn today(&self) -> NaiveDate {
        self.clock.now().date_naive()
    }

    /// A promotion's audit entry leaves out what only its owner may read.
    fn promotion_audit(
        &self,
        action: &'static str,
        actor: &Actor,
        before: Option<&Promotion>,
        after: &Promotion,
    ) -> AuditEntry {
        let before = before.map(|p| p.clone().without_private());
        self.app.audit(action, actor, before.as_ref(), &after.clone().without_private())
    }
}

pub async fn handle(app: &Promotions, req: Request) -> Response<Body> {
    serve(req, app.config.grants, app.clock.as_ref(), |ctx, req| dispatch(app, ctx, req)).await
}

async fn dispatch(app: &Promotions, ctx: Ctx, req: Request) -> Result<Response<Body>, ApiError> {
    let (op, params) = match_route(ROUTES, req.method(), req.uri().path())?;
    if matches!(op, Op::List | Op::Get) {
        flush_tally(app).await;
    }
    let answer = route(app, &ctx, &req, &params, op).await;
    if !matches!(op, Op::List | Op::Get | Op::Redemptions | Op::PartnerRedemptions | Op::OwnRedemptions | Op::Validate)
    {
        // Any change here may change a cached validate answer.
        app.public_cache.clear();
    }
    answer
}

async fn route(
    app: &Promotions,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
    op: Op,
) -> Result<Response<Body>, ApiError> {
    match op {
        Op::List => list(app, ctx, req).await,
        Op::Create => create(app, ctx, req).await,
        Op::Get => {
            ctx.require(Permission::TierView)?;
            json(StatusCode::OK, &load(app, params).await?.without_private())
        }
        Op::Update => update(app, ctx, req, params).await,
        Op::Delete => delete(app, ctx, params).await,
        Op::Workflow(action) => workflow(app, ctx, req, params, action).await,
        Op::AddCodes => add_codes(app, ctx, req, params).await,
        Op::Redemptions => {
            ctx.require(Permission::ViewCustomerInfo)?;
            let promotion = load(app, params).await?;
            let page = page(app, req)?;
            json(StatusCode::OK, &app.store.list_redemptions(&promotion.promotion_id, &page).await?)
        }
        Op::PartnerRedemptions => {
            ctx.require(Permission::ViewCustomerInfo)?;
            customer_redemptions(app, req, params.get("partnerId")).await
        }
        Op::OwnRedemptions => {
            let who = ctx.identity.as_ref().ok_or(AuthError::Unauthenticated)?;
            let own = match (who.is_partner_only(), &who.partner_id) {
                (true, Some(own)) => own.clone(),
                _ => {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "not_a_partner",
                        "only a partner token has its own redemptions; staff use /api/admin/partners/{partnerId}/redemptions",
                    ))
                }
            };
            customer_redemptions(app, req, &own).await
        }
        Op::Validate => validate(app, ctx, req).await,
        Op::Redeem => redeem(app, ctx, req).await,
    }
}

/// A customer's redemptions of every promotion, newest first, paged by the
/// customer's index partition; an id that could never exist, or no such partner,
/// is not found.
async fn customer_redemptions(app: &Promotions, req: &Request, partner_id: &str) -> Result<Response<Body>, ApiError> {
    if promotion::fields::partner_id(&serde_json::Value::String(partner_id.to_string())).is_err() {
        return Err(ApiError::not_found("partner"));
    }
    let page = page(app, req)?;
    let found = app.store.partner_redemptions(partner_id, &page).await?;
    json(StatusCode::OK, &found.ok_or_else(|| ApiError::not_found("partner"))?)
}

fn page(app: &Promotions, req: &Request) -> Result<PageRequest, ApiError> {
    Ok(PageRequest::from_request(req, app.config.default_page_size, app.config.max_page_size)?)
}

/// The promotion named in the path; an id that could never exist is not found.
async fn load(app: &Promotions, params: &PathParams) -> Result<Promotion, ApiError> {
    let id = params.get("promotionId");
    if !promotion::is_promotion_id(id) {
        return Err(PromotionError::NotFound.into());
    }
    app.store.get_promotion(id).await?.ok_or_else(|| PromotionError::NotFound.into())
}

async fn list(app: &Promotions, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    ctx.require(Permission::TierView)?;
    let status = query(req, "status")
        .map(|s| PromotionStatus::parse(&serde_json::Value::String(s)))
        .transpose()
        .map_err(|e| ValidationError::single("status", e))?;
    json(StatusCode::OK, &app.store.list_promotions(status, &page(app, req)?).await?)
}

async fn create(app: &Promotions, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::PromotionManagement)?;
    let new = NewPromotion::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let actor = ctx.actor(who);
    let promotion = new.into_promotion(promotion::new_promotion_id(&app.ids.new_id()), &actor)?;
    app.store.create_promotion(&promotion, &app.promotion_audit("promotion.create", &actor, None, &promotion)).await?;
    json(StatusCode::CREATED, &promotion.without_private())
}

async fn update(app: &Promotions, ctx: &Ctx, req: &Request, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::PromotionManagement)?;
    let patch = PromotionPatch::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let before = load(app, params).await?;
    let actor = ctx.actor(who);
    let after = before.apply(&patch, &actor)?;
    let audit = app.promotion_audit("promotion.update", &actor, Some(&before), &after);
    app.store.save_promotion(&before, &after, &[], &audit).await?;
    json(StatusCode::OK, &after.without_private())
}

async fn delete(app: &Promotions, ctx: &Ctx, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::PromotionManagement)?;
    let promotion = load(app, params).await?;
    if promotion.status != PromotionStatus::Draft {
        return Err(PromotionError::NotDeletable.into());
    }
    let actor = ctx.actor(who);
    let audit = app.promotion_audit("promotion.delete", &actor, Some(&promotion), &promotion);
    app.store.delete_promotion(&promotion, &audit).await?;
    Ok(Response::builder().status(StatusCode::NO_CONTENT).body(Body::Empty).unwrap_or_default())
}

/// `{reason?}` for reject and cancel; the other steps take no body.
fn workflow_reason(req: &Request, limit: usize, action: Action) -> Result<Option<String>, ApiError> {
    let empty = match req.body() {
        Body::Empty => true,
        Body::Text(s) => s.trim().is_empty(),
        Body::Binary(b) => b.iter().all(u8::is_ascii_whitespace),
        _ => true,
    };
    if empty {
        return Ok(None);
    }
    let body = json_body(req, limit)?;
    let mut f = Fields::new(&body, &["reason"]);
    let reason = f.optional("reason", |v| parse::text(v, 1, 1_000));
    if reason.is_some() && !matches!(action, Action::Reject | Action::Cancel) {
        f.fail("reason", "only reject and cancel take a reason");
    }
    f.finish()?;
    Ok(reason)
}

async fn workflow(
    app: &Promotions,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
    action: Action,
) -> Result<Response<Body>, ApiError> {
    let who = match action {
        Action::Approve | Action::Reject => ctx.require(Permission::ApproveCustomPricing)?,
        _ => ctx.require(Permission::PromotionManagement)?,
    };
    let reason = workflow_reason(req, app.config.max_body_bytes, action)?;
    let before = load(app, params).await?;
    let actor = ctx.actor(who);
    let after = before.transition(action, &actor, &app.settings.policy, reason.clone())?;
    let name = match action {
        Action::Submit => "promotion.submit",
        Action::Approve => "promotion.approve",
        Action::Reject => "promotion.reject",
        Action::Pause => "promotion.pause",
        Action::Resume => "promotion.resume",
        Action::Cancel => "promotion.cancel",
        Action::Complete => "promotion.complete",
    };
    app.store.save_promotion(&before, &after, &[], &app.promotion_audit(name, &actor, Some(&before), &after)).await?;
    let notice = match (action, after.status) {
        (Action::Submit, PromotionStatus::PendingApproval) => Some(PromotionNoticeKind::ApprovalRequested),
        (Action::Approve, _) => Some(PromotionNoticeKind::Approved),
        (Action::Reject, _) => Some(PromotionNoticeKind::Rejected),
        _ => None,
    };
    if let Some(kind) = notice {
        app.notify(kind, &after, &actor, reason.as_deref()).await;
    }
    json(StatusCode::OK, &after.without_private())
}

/// Adds the given codes, or generates `count` new ones, each unique across every
/// promotion (a taken generated code is drawn again).
async fn add_codes(
    app: &Promotions,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::PromotionManagement)?;
    let ask = CodeRequest::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let before = load(app, params).await?;
    if matches!(before.status, PromotionStatus::Completed | PromotionStatus::Cancelled) {
        return Err(
            PromotionError::NotEditable { status: before.status.as_str(), field: "promotionCodes".into() }.into()
        );
    }
    let wanted = if ask.explicit.is_empty() { ask.count as usize } else { ask.explicit.len() };
    if before.promotion_codes.len() + wanted > promotion::MAX_CODES_PER_PROMOTION {
        return Err(PromotionError::TooManyCodes.into());
    }
    let actor = ctx.actor(who);
    for _ in 0..3 {
        let codes: Vec<String> = if ask.explicit.is_empty() { generate(&ask) } else { ask.explicit.clone() };
        if let Some(dup) = codes.iter().find(|c| before.promotion_codes.contains(c)) {
            if !ask.explicit.is_empty() {
                return Err(PromotionError::CodeTaken(dup.clone()).into());
            }
            continue;
        }
        let mut after = before.clone();
        after.promotion_codes.extend(codes.iter().cloned());
        after.updated_at = actor.at.clone();
        after.updated_by = actor.id.clone();
        after.version += 1;
        let audit = app.promotion_audit("promotion.codes", &actor, Some(&before), &after);
        match app.store.save_promotion(&before, &after, &codes, &audit).await {
            Ok(()) => {
                let promotion = after.without_private();
                return json(StatusCode::CREATED, &serde_json::json!({ "codes": codes, "promotion": promotion }));
            }
            Err(WriteError::Refused(PromotionRefusal::CodeTaken(_))) if ask.explicit.is_empty() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(StatusCode::CONFLICT, "codes_exhausted", "could not draw unused codes; use a longer length"))
}

fn generate(ask: &CodeRequest) -> Vec<String> {
    let mut codes: Vec<String> = Vec::with_capacity(ask.count as usize);
    while codes.len() < ask.count as usize {
        // A ULID's 80 random bits give 10 bytes per draw.
        let mut bytes: Vec<u8> = Vec::new();
        let mut random = || {
            if bytes.is_empty() {
                bytes = ulid::Ulid::new().random().to_le_bytes()[..10].to_vec();
            }
            bytes.pop().unwrap_or(0)
        };
        let code = promotion::generate_code(&ask.prefix, ask.length, &mut random);
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes
}

// ---- Validate and redeem ------------------------------------------------------------

/// The customer a validate or redeem is for. A partner acts for itself only (any
/// other id is "not found"); staff need `staff_permission` to name a partner.
///
/// Validate is a public route (a pricing page checks a code before sign-in), so
/// API Gateway passes no identity there; a `partnerId` is then taken as given. It
/// works as a capability (ids are random ULIDs) and the answer holds only reason
/// codes about that one promotion, never the partner's record.
fn customer_id(ctx: &Ctx, named: Option<&str>, staff_permission: Permission) -> Result<Option<String>, ApiError> {
    match &ctx.identity {
        None => Ok(named.map(str::to_string)),
        Some(who) if who.is_partner_only() => {
            let own = who.partner_id.clone().ok_or_else(|| ApiError::not_found("partner"))?;
            match named {
                Some(other) if other != own => Err(ApiError::not_found("partner")),
                _ => Ok(Some(own)),
            }
        }
        Some(who) => {
            if named.is_some() {
                who.require(staff_permission)?;
            }
            Ok(named.map(str::to_string))
        }
    }
}

fn active_tier(tier: Option<Tier>) -> Result<Tier, ApiError> {
    Ok(redemption::active_tier(tier)?)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Validation {
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    promotion: Option<PromotionSummary>,
    promotions: Vec<PromotionSummary>,
    tier_id: String,
    billing_period: BillingPeriod,
    currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_price: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    discount_amount: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    final_price: Option<i64>,
    /// What each later charge costs when a discount applies to the first only.
    #[serde(skip_serializing_if = "Option::is_none")]
    recurring_price: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trial_days: Option<u32>,
    reasons: Vec<Reason>,
}

/// An anonymous caller learns which rule failed, not the customer facts behind it
/// (tier, account age, paying status).
fn neutral(mut r: Reason) -> Reason {
    let message = match r.code {
        ReasonCode::UserTypeNotEligible => "the customer is not the kind of customer this promotion is for",
        ReasonCode::AccountTooNew => "the customer's account is too new for this promotion",
        ReasonCode::AccountTooOld => "the customer's account is too old for this promotion",
        ReasonCode::ExcludedTier => "customers on the customer's current tier are excluded",
        _ => return r,
    };
    r.message = message.to_string();
    r
}

/// `POST /api/promotions/validate`: every failing rule of every promotion asked
/// for, or the price with all of them applied. At most two reads: the lookups,
/// tier and partner; then (codes only) the promotions and the customer's counts.
async fn validate(app: &Promotions, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    let ask = Application::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let partner_id = customer_id(ctx, ask.partner_id.as_deref(), Permission::ViewCustomerInfo)?;
    // Requests spread over the validation counter's shards by their id.
    let shard = ctx.request_id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    // A prospect's answer depends only on the request: served from the instance's
    // cache while fresh (as the public catalog is), the validation still counted.
    let cache_key = partner_id.is_none().then(|| {
        format!(
            "{:?} {:?} {} {:?} {:?}",
            ask.codes, ask.promotion_ids, ask.tier_id, ask.billing_period, ask.commitment_months
        )
    });
    // One request per key computes a missing answer; the others wait for it and
    // take it from the cache, so a code on every screen at once is read once.
    let _computing = match &cache_key {
        Some(key) => {
            if let Some(hit) = cached_validation(app, key, shard).await {
                return Ok(hit);
            }
            let guard = app.single_flight.lock(key).await;
            if let Some(hit) = cached_validation(app, key, shard).await {
                return Ok(hit);
            }
            Some(guard)
        }
        None => None,
    };
    let mut read =
        app.store.read_application(&ask.codes, &ask.promotion_ids, &ask.tier_id, partner_id.as_deref()).await?;
    let tier = active_tier(read.tier.take())?;
    let mut customer = match (&partner_id, &read.partner) {
        (Some(_), None) => return Err(ApiError::not_found("partner")),
        (_, Some(p)) => Some(Customer::from_partner(p)),
        _ => None,
    };
    let staff = ctx.identity.as_ref().is_some_and(|who| !who.is_partner_only());
    if !ask.codes.is_empty() {
        let wanted: Vec<String> =
            ask.codes.iter().filter_map(|c| read.lookups.get(c).map(|l| l.promotion_id.clone())).collect();
        if !wanted.is_empty() {
            app.store.read_promotions(&wanted, partner_id.as_deref(), &mut read).await?;
        }
    }
    if let Some(c) = customer.as_mut() {
        redemption::place_in_segment(&app.store, c, &tier, read.promotions.values()).await?;
    }
    // Each code or id with the promotion it names, in the order asked.
    let named = |asked: &String| -> Option<&Promotion> {
        if ask.codes.is_empty() {
            read.promotions.get(asked).filter(|p| resolver::usable_by_id(p, staff))
        } else {
            read.lookups.get(asked).and_then(|l| read.promotions.get(&l.promotion_id))
        }
    };
    let asked: Vec<Asked> = ask
        .codes
        .iter()
        .chain(&ask.promotion_ids)
        .map(|a| {
            let p = named(a);
            Asked::new(a, p, p.and_then(|p| read.redeemed.get(&p.promotion_id).copied()).unwrap_or(0))
        })
        .collect();
    let resolved = resolver::resolve(&asked, &redemption::resolver_ask(app.today(), &ask, &tier, customer.as_ref()));
    let anonymous = ctx.identity.is_none();
    let reasons: Vec<Reason> = resolved.reasons().into_iter().map(|r| if anonymous { neutral(r) } else { r }).collect();
    let found = &resolved.promotions;
    for p in found {
        count_validation(app, &p.promotion_id, shard).await;
    }
    let summaries: Vec<PromotionSummary> = found.iter().map(|p| p.summary()).collect();
    let valid = resolved.applies();
    let price: Option<PriceBreakdown> = resolved.price;
    let body = Validation {
        valid,
        promotion: summaries.first().cloned(),
        promotions: summaries,
        tier_id: tier.tier_id.clone(),
        billing_period: ask.billing_period,
        currency: tier.currency.clone(),
        original_price: price.map(|p| p.original_price),
        discount_amount: price.map(|p| p.discount_amount),
        final_price: price.map(|p| p.final_price),
        recurring_price: price.map(|p| p.recurring_price()),
        trial_days: price.map(|p| p.trial_days).filter(|d| *d > 0),
        reasons,
    };
    let body = to_json(&body)?;
    if let Some(key) = cache_key {
        app.public_cache.put(key, body.clone(), Instant::now());
    }
    Ok(json_text(body))
}

/// A cached prospect answer, with its validations counted.
async fn cached_validation(app: &Promotions, key: &str, shard: u32) -> Option<Response<Body>> {
    let body = app.public_cache.get(key, Instant::now())?;
    let answered: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let ids = answered["promotions"].as_array().cloned().unwrap_or_default();
    for id in ids.iter().filter_map(|p| p["promotionId"].as_str()) {
        count_validation(app, id, shard).await;
    }
    Some(json_text(body))
}

/// Per-key locks for computing cache misses one at a time. Entries are dropped
/// once nobody holds or waits for them, so the map stays as small as the work in
/// flight.
#[derive(Debug, Default)]
struct SingleFlight {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

struct Flight<'a> {
    owner: &'a SingleFlight,
    key: String,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut locks = self.owner.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Two references: the map's and this guard's mutex; none waiting.
        if locks.get(&self.key).is_some_and(|l| Arc::strong_count(l) <= 2) {
            locks.remove(&self.key);
        }
    }
}

impl SingleFlight {
    async fn lock(&self, key: &str) -> Flight<'_> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(key.to_string()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        Flight { owner: self, key: key.to_string(), _guard: guard }
    }
}

/// The count is analytics (the conversion rate's denominator): it is tallied in
/// memory and written at most once per `TALLY_INTERVAL` per instance (one
/// `UpdateItem` per promotion with the sum), and a failed write must not fail the
/// customer's validation.
async fn count_validation(app: &Promotions, promotion_id: &str, shard: u32) {
    if let Some(due) = app.tally.add(promotion_id, Instant::now()) {
        write_tally(app, due, shard).await;
    }
}

/// Writes what this instance has tallied, before a read that reports it.
async fn flush_tally(app: &Promotions) {
    let pending = app.tally.take_all();
    if !pending.is_empty() {
        write_tally(app, pending, 0).await;
    }
}

async fn write_tally(app: &Promotions, tally: HashMap<String, u64>, shard: u32) {
    for (promotion_id, count) in tally {
        if let Err(e) = app.store.record_validations(&promotion_id, shard, count).await {
            tracing::warn!(error = %e, promotion = promotion_id, count, "validations not counted");
        }
    }
}

/// How often an instance writes its validation counts under load.
const TALLY_INTERVAL: Duration = Duration::from_secs(1);

/// Validations counted on this instance and not yet written. The first validation
/// after a quiet second is written at once; under load they are summed and written
/// once a second, so a popular code costs one write per second per instance instead
/// of one per request. What an instance tallied in its last second can be lost when
/// Lambda retires it; the count is analytics, not money.
#[derive(Debug, Default)]
struct Tally {
    state: Mutex<(HashMap<String, u64>, Option<Instant>)>,
}

impl Tally {
    /// Counts one validation; returns everything pending when it is time to write.
    fn add(&self, promotion_id: &str, now: Instant) -> Option<HashMap<String, u64>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *state.0.entry(promotion_id.to_string()).or_default() += 1;
        let due = state.1.is_none_or(|last| now.duration_since(last) >= TALLY_INTERVAL);
        if due {
            state.1 = Some(now);
            Some(std::mem::take(&mut state.0))
        } else {
            None
        }
    }

    fn take_all(&self) -> HashMap<String, u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut state.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_writes_at_once_after_a_quiet_second_and_sums_under_load() {
        let tally = Tally::default();
        let t0 = Instant::now();
        assert_eq!(tally.add("a", t0), Some(HashMap::from([("a".to_string(), 1)])));
        assert_eq!(tally.add("a", t0 + Duration::from_millis(10)), None);
        assert_eq!(tally.add("b", t0 + Duration::from_millis(20)), None);
        assert_eq!(tally.add("a", t0 + Duration::from_millis(30)), None);
        let due = tally.add("a", t0 + Duration::from_millis(1_000)).unwrap();
        assert_eq!(due, HashMap::from([("a".to_string(), 3), ("b".to_string(), 1)]));
        assert_eq!(tally.add("b", t0 + Duration::from_millis(1_100)), None);
        assert_eq!(tally.take_all(), HashMap::from([("b".to_string(), 1)]));
        assert!(tally.take_all().is_empty());
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RedeemAnswer {
    redemption: Redemption,
    redemptions: Vec<Redemption>,
    original_price: i64,
    discount_amount: i64,
    final_price: i64,
    recurring_price: i64,
    trial_days: u32,
    currency: String,
}

/// `POST /api/promotions/redeem`: one read, one transaction (see
/// `Store::redeem`), once per `Idempotency-Key`.
async fn redeem(app: &Promotions, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    let who = ctx.identity.as_ref().ok_or(AuthError::Unauthenticated)?;
    let ask = Application::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let partner_id = match customer_id(ctx, ask.partner_id.as_deref(), Permission::PromotionManagement)? {
        Some(id) => id,
        None => {
            who.require(Permission::PromotionManagement)?;
            return Err(ValidationError::single("partnerId", "is required when staff redeem for a partner").into());
        }
    };
    // Who may redeem for whom is settled above; the record is the caller's own.
    let now = app.clock.now().timestamp();
    let sales_rep = (!who.is_partner_only()).then(|| who.subject.clone());
    idempotency::once(&app.store, ctx, req, "promo-redeem", now, |_| redeem_once(app, ask, partner_id, sales_rep)).await
}

/// Records the redemption and answers it (see `redemption::redeem`).
async fn redeem_once(
    app: &Promotions,
    ask: Application,
    partner_id: String,
    sales_rep: Option<String>,
) -> Result<Response<Body>, ApiError> {
    let done =
        redemption::redeem(&app.store, &ask, &partner_id, sales_rep, None, app.clock.now(), app.ids.as_ref()).await?;
    let answer = RedeemAnswer {
        redemption: done.redemptions[0].clone(),
        original_price: done.price.original_price,
        discount_amount: done.price.discount_amount,
        final_price: done.price.final_price,
        recurring_price: done.price.recurring_price(),
        trial_days: done.price.trial_days,
        currency: done.currency,
        redemptions: done.redemptions,
    };
    json(StatusCode::CREATED, &answer)
}
