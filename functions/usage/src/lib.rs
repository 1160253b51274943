//! The usage Lambda (seed 001 `UsageTracker` and `FeatureGate`): track usage with
//! the limit check and the deduction in one conditional write, this month's usage
//! with overage, the limits, and feature checks. Routes are data (`ROUTES`) so a
//! test can hold them against `template.yaml` and `infra/openapi.yaml`.
//!
//! Callers: a partner for itself (its token's `custom:partner_id`; naming another
//! partner is a 404); a product backend as the `service` role, naming the partner
//! (`partnerId` in the body, or `?partnerId=` on reads); an admin for any partner.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tierdesk::app::App;
use tierdesk::clock::rfc3339;
use tierdesk::domain::analytics::{month_minus, months_between};
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::tier::{Tier, DEFAULT_TIER_ID};
use tierdesk::domain::usage::{self, FeatureCheckRequest, Plan, TrackRequest, UsageError};
use tierdesk::domain::validation::ValidationError;
use tierdesk::http::cache::TtlCache;
use tierdesk::http::request::{json_body, query};
use tierdesk::http::router::match_route;
use tierdesk::http::{json, serve, AuthError, Ctx, Route};
use tierdesk::store::{TierStore, TrackOutcome, UsageRead, UsageStore, UsageTrack};
use tierdesk::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Track,
    Current,
    Limits,
    Available,
    Check,
    History,
}

pub const ROUTES: &[Route<Op>] = &[
    Route { method: "POST", path: "/api/usage/track", op: Op::Track },
    Route { method: "GET", path: "/api/usage/current", op: Op::Current },
    Route { method: "GET", path: "/api/usage/limits", op: Op::Limits },
    Route { method: "GET", path: "/api/usage/history", op: Op::History },
    Route { method: "GET", path: "/api/features/available", op: Op::Available },
    Route { method: "POST", path: "/api/features/check", op: Op::Check },
];

/// How long a track call's idempotency key is remembered: past the month it counted
/// in, so a retry across the month's end still counts once.
const IDEMPOTENCY_TTL_SECS: i64 = 40 * 24 * 3600;
/// Tiers one instance keeps (the catalog is a handful).
const TIER_CACHE_ENTRIES: usize = 64;
/// Partners whose last feature-check read one instance keeps (about 2 KB each).
const CHECK_CACHE_ENTRIES: usize = 10_000;

pub struct Usage {
    app: App,
    /// Tiers by id, for `PUBLIC_CACHE_TTL_SECS`. Every call needs its partner's
    /// tier, and the budget of a track call is one read besides its write: the
    /// partner and its counters are that read, so the tier comes from here. A tier
    /// edit reaches an instance within the TTL.
    tiers: TtlCache<Arc<Tier>>,
    /// A partner's record and counters as a feature check last read them, for
    /// `FEATURE_CHECK_CACHE_SECS`. Products check a feature on every page they
    /// render; a few seconds of staleness turns most checks into no read at all.
    /// This instance's own track calls drop the entry, so a check here never
    /// answers from counts older than the partner's last track here.
    checks: TtlCache<Arc<UsageRead>>,
}

tierdesk::wraps_app!(Usage);

impl Usage {
    pub fn new(app: App) -> Self {
        let tiers = TtlCache::new(Duration::from_secs(app.config.public_cache_ttl_secs), TIER_CACHE_ENTRIES);
        let checks = TtlCache::new(Duration::from_secs(app.config.feature_check_cache_secs), CHECK_CACHE_ENTRIES);
        Self { app, tiers, checks }
    }

    /// The tiers named, from the cache or one BatchGetItem for the missing ones.
    async fn tiers(&self, ids: &[&str]) -> Result<Vec<Option<Arc<Tier>>>, ApiError> {
        let now = Instant::now();
        let mut out: Vec<Option<Arc<Tier>>> = ids.iter().map(|id| self.tiers.get(id, now)).collect();
        let missing: Vec<String> =
            ids.iter().zip(&out).filter(|(_, t)| t.is_none()).map(|(id, _)| id.to_string()).collect();
        if missing.is_empty() {
            return Ok(out);
        }
        for tier in self.store.get_tiers(&missing).await? {
            let tier = Arc::new(tier);
            self.tiers.put(tier.tier_id.clone(), tier.clone(), now);
            for (slot, id) in out.iter_mut().zip(ids) {
                if slot.is_none() && *id == tier.tier_id {
                    *slot = Some(tier.clone());
                }
            }
        }
        Ok(out)
    }
}

pub async fn handle(app: &Usage, req: Request) -> Response<Body> {
    serve(req, app.config.grants, app.clock.as_ref(), |ctx, req| dispatch(app, ctx, req)).await
}

async fn dispatch(app: &Usage, ctx: Ctx, req: Request) -> Result<Response<Body>, ApiError> {
    let (op, _) = match_route(ROUTES, req.method(), req.uri().path())?;
    match op {
        Op::Track => track(app, &ctx, &req).await,
        Op::Check => check(app, &ctx, &req).await,
        Op::History => history(app, &ctx, &req).await,
        Op::Current | Op::Limits | Op::Available => read(app, &ctx, &req, op).await,
    }
}

#[derive(Clone, Copy)]
enum Access {
    Read,
    Report,
}

/// The partner a call is about. A partner token is for itself only (another id is
/// a 404, as if it did not exist); staff and services need the permission and
/// must name the partner.
fn subject(ctx: &Ctx, named: Option<String>, access: Access) -> Result<String, ApiError> {
    let who = ctx.identity.as_ref().ok_or(AuthError::Unauthenticated)?;
    if who.is_partner_only() {
        let own = who.partner_id.clone().ok_or_else(|| {
            ApiError::new(StatusCode::FORBIDDEN, "not_a_partner", "the token names no partner account")
        })?;
        return match named {
            Some(other) if other != own => Err(ApiError::not_found("partner")),
            _ => Ok(own),
        };
    }
    who.require(match access {
        Access::Read => Permission::UsageView,
        Access::Report => Permission::UsageReporting,
    })?;
    named.ok_or_else(|| ValidationError::single("partnerId", "is required when calling for a partner").into())
}

/// What every route works from: the partner's plan today and its counters.
struct Standing {
    plan: Plan,
    counts: std::collections::BTreeMap<String, u64>,
    period: String,
    /// The trialled tier, when a lapsed trial put the partner on the default tier.
    trialled: Option<Arc<Tier>>,
    now: chrono::DateTime<chrono::Utc>,
}

/// One BatchGetItem (partner and counters), and the tiers from the cache or one
/// more BatchGetItem.
async fn standing(app: &Usage, partner_id: &str) -> Result<Standing, ApiError> {
    let period = usage::period_of(app.clock.now().date_naive());
    let read = app.store.read_usage(partner_id, &period).await?;
    standing_from(app, read, period).await
}

/// As `standing`, from the partner's cached read when it is fresh and of this
/// month (a check only ever answers; it never writes).
async fn cached_standing(app: &Usage, partner_id: &str) -> Result<Standing, ApiError> {
    let period = usage::period_of(app.clock.now().date_naive());
    let key = check_key(partner_id, &period);
    let read = match app.checks.get(&key, Instant::now()) {
        Some(read) => read,
        None => {
            let read = Arc::new(app.store.read_usage(partner_id, &period).await?);
            if read.partner.is_some() {
                app.checks.put(key, read.clone(), Instant::now());
            }
            read
        }
    };
    standing_from(app, UsageRead::clone(&read), period).await
}

fn check_key(partner_id: &str, period: &str) -> String {
    format!("{partner_id}#{period}")
}

async fn standing_from(app: &Usage, read: UsageRead, period: String) -> Result<Standing, ApiError> {
    let now = app.clock.now();
    let today = now.date_naive();
    let partner = read.partner.ok_or(UsageError::PartnerNotFound)?;
    let tier_id = usage::plan_tier_id(&partner, today, DEFAULT_TIER_ID);
    let lapsed = tier_id != partner.engagement_tier;
    let wanted: Vec<&str> =
        if lapsed { vec![tier_id.as_str(), partner.engagement_tier.as_str()] } else { vec![tier_id.as_str()] };
    let mut tiers = app.tiers(&wanted).await?.into_iter();
    let tier = tiers.next().flatten().ok_or(UsageError::TierMissing)?;
    let trialled = tiers.next().flatten();
    Ok(Standing { plan: usage::plan(&partner, &tier, today), counts: read.counts, period, trialled, now })
}

fn named_in_query(req: &Request) -> Result<Option<String>, ApiError> {
    match query(req, "partnerId") {
        None => Ok(None),
        Some(raw) => {
            usage::partner_id(&Value::String(raw)).map(Some).map_err(|e| ValidationError::single("partnerId", e).into())
        }
    }
}

async fn track(app: &Usage, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    // Who may call comes before what they sent: an outsider learns nothing from a 400.
    ctx.identity.as_ref().ok_or(AuthError::Unauthenticated)?;
    let body = TrackRequest::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let partner_id = subject(ctx, body.partner_id.clone(), Access::Report)?;
    let st = standing(app, &partner_id).await?;
    let seen = st.counts.get(&body.metric).copied().unwrap_or(0);
    let write = usage::plan_track(&st.plan, &body.metric, body.count, seen)?;
    let at = rfc3339(st.now);
    let outcome = app
        .store
        .track_usage(&UsageTrack {
            partner_id: &partner_id,
            tier_id: &st.plan.tier_id,
            period: &st.period,
            metric: &body.metric,
            count: body.count,
            allowance: write.allowance,
            ceiling: write.ceiling,
            idempotency_key: &body.idempotency_key,
            at: &at,
            ttl: st.now.timestamp() + IDEMPOTENCY_TTL_SECS,
            now: st.now.timestamp(),
            seen,
        })
        .await;
    app.checks.remove(&check_key(&partner_id, &st.period));
    let (used, replayed) = match outcome? {
        TrackOutcome::Applied { used } => (used, false),
        TrackOutcome::Replayed => (seen, true),
        TrackOutcome::LimitReached { used } => {
            return Err(UsageError::LimitExceeded {
                metric: body.metric,
                limit: write.allowance.limit.unwrap_or(0),
                used,
                requested: body.count,
            }
            .into())
        }
    };
    let mut answer = serde_json::to_value(usage::metric_usage(&body.metric, &write.allowance, used))
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error"))?;
    answer["period"] = json!(st.period);
    answer["partnerId"] = json!(partner_id);
    answer["replayed"] = json!(replayed);
    json(StatusCode::OK, &answer)
}

/// `GET /api/usage/history[?partnerId=][&metric=][&months=]`: the last `months`
/// (1 to 13, default 13) calendar months of usage per metric, this month last: a
/// read of the partner and one key-range Query of its monthly counters.
async fn history(app: &Usage, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    ctx.identity.as_ref().ok_or(AuthError::Unauthenticated)?;
    let partner_id = subject(ctx, named_in_query(req)?, Access::Read)?;
    let mut errors = ValidationError::default();
    let metric = match query(req, "metric") {
        None => None,
        Some(raw) => match usage::metric_param(&Value::String(raw)) {
            Ok(m) => Some(m),
            Err(e) => {
                errors.fields.insert("metric".into(), e);
                None
            }
        },
    };
    let months = match query(req, "months") {
        None => usage::HISTORY_MONTHS,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=usage::HISTORY_MONTHS).contains(&n) => n,
            _ => {
                errors
                    .fields
                    .insert("months".into(), format!("must be an integer from 1 to {}", usage::HISTORY_MONTHS));
                0
            }
        },
    };
    if !errors.fields.is_empty() {
        return Err(errors.into());
    }
    let to = usage::period_of(app.clock.now().date_naive());
    let from = month_minus(&to, months - 1);
    let counters = app.store.usage_history(&partner_id, &from, &to).await?.ok_or(UsageError::PartnerNotFound)?;
    let periods = months_between(&from, &to);
    json(StatusCode::OK, &usage::usage_history(&partner_id, periods, &counters, metric.as_deref()))
}

async fn check(app: &Usage, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    ctx.identity.as_ref().ok_or(AuthError::Unauthenticated)?;
    let body = FeatureCheckRequest::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let partner_id = subject(ctx, body.partner_id, Access::Read)?;
    let st = cached_standing(app, &partner_id).await?;
    let answer = usage::check_feature(&st.plan, &body.feature, &st.counts, st.trialled.as_deref());
    json(StatusCode::OK, &answer)
}

async fn read(app: &Usage, ctx: &Ctx, req: &Request, op: Op) -> Result<Response<Body>, ApiError> {
    ctx.identity.as_ref().ok_or(AuthError::Unauthenticated)?;
    let partner_id = subject(ctx, named_in_query(req)?, Access::Read)?;
    let st = standing(app, &partner_id).await?;
    match op {
        Op::Current => json(StatusCode::OK, &usage::report(&st.plan, &st.period, &st.counts)),
        Op::Limits => {
            let limits: serde_json::Map<String, Value> = st
                .plan
                .allowances
                .iter()
                .map(|(metric, a)| {
                    let entry = json!({
                        "limit": a.limit,
                        "hard": a.is_hard(),
                        "overagePrice": a.overage_price,
                        "custom": a.custom,
                    });
                    (metric.clone(), entry)
                })
                .collect();
            json(
                StatusCode::OK,
                &json!({
                    "partnerId": partner_id,
                    "tierId": st.plan.tier_id,
                    "period": st.period,
                    "currency": st.plan.currency,
                    "limits": limits,
                    "trial": st.plan.trial,
                }),
            )
        }
        _ => {
            let features: Vec<Value> = st
                .plan
                .features
                .iter()
                .map(|f| {
                    json!({
                        "featureId": f.feature_id,
                        "name": f.name,
                        "description": f.description,
                        "usageLimit": f.usage_limit,
                    })
                })
                .collect();
            json(
                StatusCode::OK,
                &json!({
                    "partnerId": partner_id,
                    "tierId": st.plan.tier_id,
                    "features": features,
                    "trial": st.plan.trial,
                }),
            )
        }
    }
}
