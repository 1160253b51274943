//! The quotes Lambda: quote CRUD with discount authority by role, the approval
//! workflow, send (PDF by email with a tracked link), and the prospect's public
//! view, accept and reject by token. Routes are data (`ROUTES`) so a test can
//! hold them against `template.yaml` and `infra/openapi.yaml`.

use chrono::Datelike;
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tierdesk::app::App;
use tierdesk::app::Meaning;
use tierdesk::clock::rfc3339;
use tierdesk::config::ConfigError;
use tierdesk::domain::actor::Actor;
use tierdesk::domain::partner::NewPartner;
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::quote::{
    self, Conversion, DiscountAuthority, NewQuote, PriceList, Quote, QuoteError, QuoteIds, QuotePatch, QuoteStatus,
};
use tierdesk::domain::subscription::{
    self, Catalog, QuotedPrice, SubscriptionError, TierChange, TransitionContext, Trigger, TriggerType,
};
use tierdesk::domain::validation::ValidationError;
use tierdesk::http::identity::Identity;
use tierdesk::http::request::{json_body, query};
use tierdesk::http::router::match_route;
use tierdesk::http::{json, serve, Ctx, PageRequest, PathParams, Route};
use tierdesk::idempotency;
use tierdesk::mail::quote::{pdf_file_name, quote_email, quote_notice, quote_pdf, QuoteNoticeKind};
use tierdesk::mail::{MailAttachment, Mailer, SendOutcome};
use tierdesk::store::{
    AcceptRefusal, PartnerRefusal, PartnerStore, QuoteList, QuoteRefusal, QuoteStore, TierStore, WriteError,
};
use tierdesk::stripe_adapter::StripeGateway;
use tierdesk::ApiError;

mod billing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    List,
    Create,
    Get,
    Update,
    RequestApproval,
    Approve,
    Reject,
    Send,
    Cancel,
    Pdf,
    View,
    ViewPdf,
    Accept,
    Decline,
}

pub const ROUTES: &[Route<Op>] = &[
    Route { method: "GET", path: "/api/admin/quotes", op: Op::List },
    Route { method: "POST", path: "/api/admin/quotes", op: Op::Create },
    Route { method: "GET", path: "/api/admin/quotes/{quoteId}", op: Op::Get },
    Route { method: "PUT", path: "/api/admin/quotes/{quoteId}", op: Op::Update },
    Route { method: "POST", path: "/api/admin/quotes/{quoteId}/request-approval", op: Op::RequestApproval },
    Route { method: "POST", path: "/api/admin/quotes/{quoteId}/approve", op: Op::Approve },
    Route { method: "POST", path: "/api/admin/quotes/{quoteId}/reject", op: Op::Reject },
    Route { method: "POST", path: "/api/admin/quotes/{quoteId}/send", op: Op::Send },
    Route { method: "POST", path: "/api/admin/quotes/{quoteId}/cancel", op: Op::Cancel },
    Route { method: "GET", path: "/api/admin/quotes/{quoteId}/pdf", op: Op::Pdf },
    Route { method: "GET", path: "/api/quotes/view/{token}", op: Op::View },
    Route { method: "GET", path: "/api/quotes/view/{token}/pdf", op: Op::ViewPdf },
    Route { method: "POST", path: "/api/quotes/view/{token}/accept", op: Op::Accept },
    Route { method: "POST", path: "/api/quotes/view/{token}/reject", op: Op::Decline },
];

/// Where approval requests go when nobody configured a mailbox.
pub const DEFAULT_APPROVALS_EMAIL: &str = "pricing-approvals@tierdesk.local";
/// The path of the prospect's quote page in the web app; by default a link is
/// `{scheme}://{host}{PAGE_PATH}/{token}`. The page reads the public
/// `/api/quotes/view/{token}` routes on the same host.
pub const PAGE_PATH: &str = "/quote";

#[derive(Debug, Clone)]
pub struct Settings {
    pub authority: DiscountAuthority,
    pub price_list: PriceList,
    /// `QUOTE_VIEW_URL`: the prospect's link is `{view_url}/{token}`. Unset, the
    /// link is the web app's quote page (`/quote/{token}`) on the host the send
    /// request came to (the dev gateway locally; in AWS the template sets it to the
    /// console's CloudFront domain, since API Gateway sees its own host name).
    pub view_url: Option<String>,
    /// `QUOTE_APPROVALS_EMAIL`: approval requests, and notices when the rep's
    /// token carried no address.
    pub approvals_email: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            authority: DiscountAuthority::default(),
            price_list: PriceList::default(),
            view_url: None,
            approvals_email: DEFAULT_APPROVALS_EMAIL.into(),
        }
    }
}

/// Reads `QUOTE_DISCOUNT_AUTHORITY` (`sales_rep:15,sales_manager:30,admin:none`),
/// `QUOTE_LISTING_UNIT_CENTS` (1000), `QUOTE_IMAGE_UNIT_CENTS` (200),
/// `QUOTE_VIEW_URL` and `QUOTE_APPROVALS_EMAIL`.
pub fn settings_from_env() -> Result<Settings, ConfigError> {
    let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let mut settings = Settings::default();
    if let Some(raw) = var("QUOTE_DISCOUNT_AUTHORITY") {
        settings.authority = DiscountAuthority::parse(&raw)
            .map_err(|reason| ConfigError::Invalid { name: "QUOTE_DISCOUNT_AUTHORITY", reason })?;
    }
    let cents = |name: &'static str, raw: String| {
        raw.parse::<i64>()
            .ok()
            .filter(|c| (0..=100_000_000).contains(c))
            .ok_or(ConfigError::Invalid { name, reason: "must be a whole number of cents".into() })
    };
    if let Some(raw) = var("QUOTE_LISTING_UNIT_CENTS") {
        settings.price_list.listing_monthly = cents("QUOTE_LISTING_UNIT_CENTS", raw)?;
    }
    if let Some(raw) = var("QUOTE_IMAGE_UNIT_CENTS") {
        settings.price_list.image_monthly = cents("QUOTE_IMAGE_UNIT_CENTS", raw)?;
    }
    if let Some(url) = var("QUOTE_VIEW_URL") {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError::Invalid { name: "QUOTE_VIEW_URL", reason: "must be an http(s) URL".into() });
        }
        settings.view_url = Some(url.trim_end_matches('/').to_string());
    }
    if let Some(email) = var("QUOTE_APPROVALS_EMAIL") {
        settings.approvals_email = tierdesk::domain::partner::fields::email(&serde_json::Value::String(email))
            .map_err(|reason| ConfigError::Invalid { name: "QUOTE_APPROVALS_EMAIL", reason })?;
    }
    Ok(settings)
}

pub struct Quotes {
    app: App,
    pub settings: Settings,
    pub mailer: Mailer,
    /// Stripe, for the subscription an accepted quote bills (`with_stripe`);
    /// without it acceptance records the quote and leaves billing pending.
    pub stripe: Option<StripeGateway>,
}

tierdesk::wraps_app!(Quotes);

/// Attempts at an acceptance whose partner changed under it.
const ACCEPT_ATTEMPTS: u32 = 3;

impl Quotes {
    /// Without Stripe (`with_stripe`), acceptance records the quote and leaves billing pending.
    pub fn new(app: App, settings: Settings, mailer: Mailer) -> Self {
        Self { app, settings, mailer, stripe: None }
    }

    pub fn with_stripe(mut self, stripe: StripeGateway) -> Self {
        self.stripe = Some(stripe);
        self
    }

    /// Emails staff about `q`. The change is already written: a failed send is
    /// logged (no address) and not retried.
    async fn notify(&self, kind: QuoteNoticeKind, q: &Quote, actor: &str, reason: Option<&str>) {
        let to = match kind {
            QuoteNoticeKind::ApprovalRequested => self.settings.approvals_email.clone(),
            _ => q.sales_rep_email.clone().unwrap_or_else(|| self.settings.approvals_email.clone()),
        };
        let rendered = quote_notice(kind, q, actor, reason);
        let today = self.clock.now().date_naive();
        if let Err(e) = self.mailer.deliver(kind.as_str(), &to, &rendered, today, false).await {
            tracing::error!(error = %e, kind = kind.as_str(), quote = q.quote_id, "quote notice not sent");
        }
    }
}

pub async fn handle(app: &Quotes, req: Request) -> Response<Body> {
    serve(req, app.config.grants, app.clock.as_ref(), |ctx, req| dispatch(app, ctx, req)).await
}

async fn dispatch(app: &Quotes, ctx: Ctx, req: Request) -> Result<Response<Body>, ApiError> {
    let (op, params) = match_route(ROUTES, req.method(), req.uri().path())?;
    match op {
        Op::List => list(app, &ctx, &req).await,
        Op::Create => create(app, &ctx, &req).await,
        Op::Get => {
            let who = ctx.require(Permission::QuoteGeneration)?;
            let q = load_visible(app, who, &params).await?;
            json(StatusCode::OK, &StaffQuote { preview_url: preview_url(&q), quote: &q })
        }
        Op::Update => update(app, &ctx, &req, &params).await,
        Op::RequestApproval | Op::Approve | Op::Reject | Op::Cancel => workflow(app, &ctx, &req, &params, op).await,
        Op::Send => {
            // Permission and visibility first: a replay never answers someone who
            // may not send this quote. The record is the caller's (`idempotency`).
            let who = ctx.require(Permission::QuoteGeneration)?;
            let before = load_visible(app, who, &params).await?;
            let now = app.clock.now().timestamp();
            let route = format!("quote-send#{}", before.quote_id);
            idempotency::once(&app.store, &ctx, &req, &route, now, |_| send(app, &ctx, &req, who, before)).await
        }
        Op::Pdf => {
            let who = ctx.require(Permission::QuoteGeneration)?;
            let q = load_visible(app, who, &params).await?;
            pdf_response(&q, "inline")
        }
        Op::View => view(app, &params).await,
        // The link holder's copy of the document: the same token check as the view,
        // and not counted as a view (the page that offers it already was).
        Op::ViewPdf => pdf_response(&by_token(app, &params).await?, "attachment"),
        Op::Accept => accept(app, &ctx, &req, &params).await,
        Op::Decline => decline(app, &ctx, &req, &params).await,
    }
}

/// The quote's PDF (the one renderer the email attachment uses too). Never cached:
/// the prospect's copy is fetched with the token in its path.
fn pdf_response(q: &Quote, disposition: &str) -> Result<Response<Body>, ApiError> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/pdf")
        .header("content-disposition", format!("{disposition}; filename=\"{}\"", pdf_file_name(q)))
        .header("cache-control", "no-store")
        .body(Body::Binary(quote_pdf(q)))
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "response"))
}

fn page(app: &Quotes, req: &Request) -> Result<PageRequest, ApiError> {
    Ok(PageRequest::from_request(req, app.config.default_page_size, app.config.max_page_size)?)
}

/// Managers and admins see every quote; a rep sees the quotes in their book or
/// written by them. Anything else is "not found", as is an id that could never exist.
async fn load_visible(app: &Quotes, who: &Identity, params: &PathParams) -> Result<Quote, ApiError> {
    let id = params.get("quoteId");
    if !quote::is_quote_id(id) {
        return Err(QuoteError::NotFound.into());
    }
    let q = app.store.get_quote(id).await?.ok_or(QuoteError::NotFound)?;
    let sees_all = who.can(Permission::ApproveCustomPricing);
    if sees_all || q.sales_rep == who.subject || q.created_by == who.subject {
        Ok(q)
    } else {
        Err(QuoteError::NotFound.into())
    }
}

async fn list(app: &Quotes, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::QuoteGeneration)?;
    let status = query(req, "status")
        .map(|s| QuoteStatus::parse(&serde_json::Value::String(s)))
        .transpose()
        .map_err(|e| ValidationError::single("status", e))?;
    let rep = query(req, "salesRep");
    let page = page(app, req)?;
    let sees_all = who.can(Permission::ApproveCustomPricing);
    let (list, filter) = match (rep, status) {
        // A rep's list is always their own book; asking for another's shows nothing of it.
        (Some(r), _) if !sees_all && r != who.subject => {
            return json(StatusCode::OK, &serde_json::json!({ "items": [], "nextCursor": null }))
        }
        (Some(r), s) => (QuoteList::Rep(r), s),
        (None, s) if !sees_all => (QuoteList::Rep(who.subject.clone()), s),
        (None, Some(s)) => (QuoteList::Status(s), None),
        (None, None) => (QuoteList::All, None),
    };
    json(StatusCode::OK, &app.store.list_quotes(&list, filter, &page).await?)
}

async fn create(app: &Quotes, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::QuoteGeneration)?;
    let new = NewQuote::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let tier = app
        .store
        .get_tier(&new.terms.base_tier)
        .await?
        .ok_or_else(|| ValidationError::single("baseTier", "no active tier with this id"))?;
    if let Some(customer) = &new.customer_id {
        let partner = app
            .store
            .get_partner(customer)
            .await?
            .ok_or_else(|| ValidationError::single("customerId", "no partner with this id"))?;
        billing_contact_only(&partner, &new.prospect_email)?;
    }
    let actor = ctx.actor(who);
    // Validate everything before a number is drawn, so bad input never uses one.
    let probe = QuoteIds { quote_id: String::new(), quote_number: String::new() };
    new.clone().into_quote(probe, &tier, &actor, &app.settings.authority, app.settings.price_list)?;
    let year = app.clock.now().year();
    let number = app.store.next_quote_number(year).await?;
    let ids =
        QuoteIds { quote_id: quote::new_quote_id(&app.ids.new_id()), quote_number: quote::quote_number(year, number) };
    let q = new.into_quote(ids, &tier, &actor, &app.settings.authority, app.settings.price_list)?;
    let audit = app.audit("quote.create", &actor, None, &q);
    app.store.create_quote(&q, &audit).await?;
    if q.status == QuoteStatus::PendingApproval {
        app.notify(QuoteNoticeKind::ApprovalRequested, &q, &actor.id, None).await;
    }
    json(StatusCode::CREATED, &q)
}

async fn update(app: &Quotes, ctx: &Ctx, req: &Request, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::QuoteGeneration)?;
    let patch = QuotePatch::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let before = load_visible(app, who, params).await?;
    if let (Some(customer), Some(email)) = (&before.customer_id, &patch.prospect_email) {
        if let Some(partner) = app.store.get_partner(customer).await? {
            billing_contact_only(&partner, email)?;
        }
    }
    let tier = app
        .store
        .get_tier(before.patched_tier(&patch))
        .await?
        .ok_or_else(|| ValidationError::single("baseTier", "no active tier with this id"))?;
    let actor = ctx.actor(who);
    let after = before.edit(&patch, &tier, &actor, &app.settings.authority, app.settings.price_list)?;
    let audit = app.audit("quote.update", &actor, Some(&before), &after);
    app.store.save_quote(&before, &after, &audit).await?;
    json(StatusCode::OK, &after)
}

/// A quote for an existing partner goes to the partner's billing contact (its
/// stored `primaryEmail`) and nowhere else: the link in that email can change the
/// partner's subscription, so only the partner may hold it.
fn billing_contact_only(partner: &tierdesk::domain::partner::Partner, prospect_email: &str) -> Result<(), ApiError> {
    if partner.primary_email.eq_ignore_ascii_case(prospect_email) {
        Ok(())
    } else {
        Err(ValidationError::single(
            "prospectEmail",
            "a quote for an existing partner (customerId) goes to the partner's billing contact: \
             it must be the partner's primaryEmail",
        )
        .into())
    }
}

/// A body that is absent or only whitespace.
fn empty_body(req: &Request) -> bool {
    match req.body() {
        Body::Empty => true,
        Body::Text(s) => s.trim().is_empty(),
        Body::Binary(b) => b.iter().all(u8::is_ascii_whitespace),
        _ => true,
    }
}

async fn workflow(
    app: &Quotes,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
    op: Op,
) -> Result<Response<Body>, ApiError> {
    let who = match op {
        Op::Approve | Op::Reject => ctx.require(Permission::ApproveCustomPricing)?,
        _ => ctx.require(Permission::QuoteGeneration)?,
    };
    let reason = if empty_body(req) {
        None
    } else {
        let body = json_body(req, app.config.max_body_bytes)?;
        match op {
            Op::Approve | Op::Reject | Op::Cancel => quote::parse_optional_reason(&body)?,
            _ => {
                quote::parse_optional_reason(&body)?
                    .map(|_| ValidationError::single("reason", "only approve, reject and cancel take a reason"))
                    .map_or(Ok(()), Err)?;
                None
            }
        }
    };
    let before = load_visible(app, who, params).await?;
    let actor = ctx.actor(who);
    let (after, action, notice) = match op {
        Op::RequestApproval => {
            (before.request_approval(&actor)?, "quote.request_approval", Some(QuoteNoticeKind::ApprovalRequested))
        }
        Op::Approve => (
            before.approve(&actor, &app.settings.authority, reason.clone())?,
            "quote.approve",
            Some(QuoteNoticeKind::Approved),
        ),
        Op::Reject => (
            before.reject_approval(&actor, reason.clone())?,
            "quote.reject_approval",
            Some(QuoteNoticeKind::ApprovalRejected),
        ),
        _ => (before.cancel(&actor, reason.clone())?, "quote.cancel", None),
    };
    let audit = app.audit(action, &actor, Some(&before), &after);
    match app.store.save_quote(&before, &after, &audit).await {
        Ok(()) => {}
        // Another decision (or edit) got there first: say so with where it stands.
        Err(WriteError::Refused(QuoteRefusal::Stale { .. })) => return Err(state_changed(app, &before).await),
        Err(e) => return Err(e.into()),
    }
    if let Some(kind) = notice {
        app.notify(kind, &after, &actor.id, reason.as_deref()).await;
    }
    json(StatusCode::OK, &after)
}

/// `409 quote_state_changed`: the quote moved on between this request's read and
/// its write (two managers deciding at once: one wins, the other gets this), with
/// the quote's current status and version.
async fn state_changed(app: &Quotes, read: &Quote) -> ApiError {
    let current = app.store.get_quote(&read.quote_id).await.ok().flatten();
    let (status, version) = match &current {
        Some(q) => (q.status.as_str(), q.version),
        None => (read.status.as_str(), read.version),
    };
    ApiError::new(
        StatusCode::CONFLICT,
        "quote_state_changed",
        "the quote changed while this request ran; read it again",
    )
    .with_details(serde_json::json!({ "status": status, "currentVersion": version }))
}

/// 32 bytes from the operating system's CSPRNG, base64url: the view link's token.
fn new_token() -> Result<String, ApiError> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "no randomness; retry"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a token: hex SHA-256. Tokens are 256 random bits, so a
/// plain hash is enough (nothing to brute-force).
pub fn token_hash(token: &str) -> String {
    use std::fmt::Write;
    Sha256::digest(token.as_bytes()).iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Where view links point: the configured base, else the web app's quote page on
/// the host this request came to (`https` behind API Gateway, which sets
/// `x-forwarded-proto`).
fn view_base(settings: &Settings, req: &Request) -> String {
    if let Some(base) = &settings.view_url {
        return base.clone();
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty());
    let scheme = header("x-forwarded-proto").unwrap_or("http");
    let host = header("host").unwrap_or("127.0.0.1:3000");
    format!("{scheme}://{host}{PAGE_PATH}")
}

/// A token as it can appear in a path; anything else is simply not found.
fn plausible_token(token: &str) -> bool {
    token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The staff preview of a quote: the staff-only PDF route (the document the
/// prospect receives). It cannot accept anything; the link that can (its token)
/// travels only in the prospect's email.
fn preview_url(q: &Quote) -> String {
    format!("/api/admin/quotes/{}/pdf", q.quote_id)
}

/// A quote as staff read it: with the preview link, never the prospect's token.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StaffQuote<'a> {
    #[serde(flatten)]
    quote: &'a Quote,
    preview_url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SendAnswer<'a> {
    #[serde(flatten)]
    quote: &'a Quote,
    email_sent: bool,
    /// Where the link went: the prospect, or an existing partner's billing contact.
    sent_to: &'a str,
    preview_url: String,
}

/// Sends (or re-sends with a new link) the quote: status, token lookup and audit
/// in one transaction, then the email with the PDF. A failed email leaves the
/// quote sent with `emailSent: false`; sending again makes a new link. The token
/// is in the email only: the answer (which an `Idempotency-Key` stores) has the
/// staff preview link instead. A quote for an existing partner goes to the
/// partner's billing contact as stored now.
async fn send(
    app: &Quotes,
    ctx: &Ctx,
    req: &Request,
    who: &Identity,
    before: Quote,
) -> Result<Response<Body>, ApiError> {
    let recipient = match &before.customer_id {
        Some(customer) => app.store.get_partner(customer).await?.ok_or(QuoteError::CustomerMismatch)?.primary_email,
        None => before.prospect_email.clone(),
    };
    let actor = ctx.actor(who);
    let token = new_token()?;
    let after = before.send(&actor, token_hash(&token))?;
    let action = if before.status == QuoteStatus::Sent { "quote.resend" } else { "quote.send" };
    let audit = app.audit(action, &actor, Some(&before), &after);
    app.store.save_quote(&before, &after, &audit).await?;
    let tracking_url = format!("{}/{token}", view_base(&app.settings, req));
    let attachment = MailAttachment {
        file_name: pdf_file_name(&after),
        content_type: "application/pdf".into(),
        data: quote_pdf(&after),
    };
    let email = quote_email(&after, &tracking_url);
    let email_sent = match app.mailer.deliver_with("quote", &recipient, &email, &[attachment], actor.today, true).await
    {
        Ok(SendOutcome::Sent { .. }) => true,
        Ok(SendOutcome::Capped) => false,
        Err(e) => {
            tracing::error!(error = %e, quote = after.quote_id, "quote email not sent");
            false
        }
    };
    json(
        StatusCode::OK,
        &SendAnswer { preview_url: preview_url(&after), quote: &after, email_sent, sent_to: &recipient },
    )
}

async fn by_token(app: &Quotes, params: &PathParams) -> Result<Quote, ApiError> {
    let token = params.get("token");
    if !plausible_token(token) {
        return Err(QuoteError::NotFound.into());
    }
    Ok(app.store.quote_by_token_hash(&token_hash(token)).await?.ok_or(QuoteError::NotFound)?)
}

/// The prospect's view. Each view of a sent quote is counted.
async fn view(app: &Quotes, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let mut q = by_token(app, params).await?;
    let now = app.clock.now();
    if q.status == QuoteStatus::Sent {
        if let Some(count) = app.store.record_quote_view(&q.quote_id, &rfc3339(now)).await? {
            q.view_count = count;
        }
    }
    json(StatusCode::OK, &q.public_view(now.date_naive()))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AcceptAnswer<'a> {
    quote_number: &'a str,
    status: QuoteStatus,
    accepted_at: Option<&'a str>,
    subscription_created: bool,
    partner_id: &'a str,
    subscription_id: Option<&'a str>,
    tier: &'a str,
    final_price: i64,
    billing_period: tierdesk::domain::money::BillingPeriod,
    /// `subscribed` once Stripe bills the quoted price, else `pending`.
    billing_status: &'static str,
    stripe_subscription_id: Option<&'a str>,
}

fn accept_answer(q: &Quote) -> Result<Response<Body>, ApiError> {
    let conversion = q.conversion.as_ref().ok_or(QuoteError::NotFound)?;
    json(
        StatusCode::OK,
        &AcceptAnswer {
            quote_number: &q.quote_number,
            status: q.status,
            accepted_at: q.accepted_at.as_deref(),
            subscription_created: conversion.transition_id.is_some(),
            partner_id: &conversion.partner_id,
            subscription_id: conversion.transition_id.as_deref(),
            tier: &q.base_tier,
            final_price: q.final_price,
            billing_period: q.billing_period,
            billing_status: if conversion.stripe_subscription_id.is_some() { "subscribed" } else { "pending" },
            stripe_subscription_id: conversion.stripe_subscription_id.as_deref(),
        },
    )
}

/// The prospect accepts: the partner (created from the prospect's details when
/// new) moves to the quoted tier at the quoted price, in the same transaction as
/// the quote's acceptance. A repeat, or a concurrent second accept, answers with
/// the one acceptance that happened.
async fn accept(app: &Quotes, ctx: &Ctx, req: &Request, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let accepted_by =
        if empty_body(req) { None } else { quote::parse_acceptance(&json_body(req, app.config.max_body_bytes)?)? };
    let mut q = by_token(app, params).await?;
    for _ in 0..ACCEPT_ATTEMPTS {
        if q.status == QuoteStatus::Accepted {
            // A repeat (or a concurrent second) accept finishes a Stripe step an
            // earlier call could not.
            let q = billing::bill_accepted(app, ctx, q).await;
            return accept_answer(&q);
        }
        let prospect = Actor::system("prospect", app.clock.now(), &ctx.request_id);
        let (today, at) = (prospect.today, prospect.at.clone());
        q.check_acceptable(today)?;
        let catalog = app.store.active_catalog().await?;
        if Catalog::new(&catalog).active(&q.base_tier).is_none() {
            return Err(QuoteError::TierUnavailable.into());
        }
        let reason = format!("Accepted quote {} ({})", q.quote_number, q.quote_id);
        let trigger = Trigger::new(TriggerType::SalesAssisted, Some(reason)).by_rep(&q.sales_rep);
        let tctx = |by: &Actor| app.transition_context(by, trigger.clone());
        let (partner, partner_created) = partner_for(app, &q, &catalog, &tctx(&prospect)).await?;
        let change = TierChange {
            tier: q.base_tier.clone(),
            billing_period: Some(q.billing_period),
            subscription_start_date: Some(today),
            subscription_end_date: q.commitment_months.and_then(|m| today.checked_add_months(chrono::Months::new(m))),
            auto_renewal: Some(true),
            reason: Some(format!("quote {}", q.quote_number)),
            quoted: Some(QuotedPrice { price_per_period: q.final_price, price_version: q.price_version }),
            ..TierChange::default()
        };
        let planned = match subscription::plan_tier_change(&partner, &change, Catalog::new(&catalog), &tctx(&prospect))
        {
            Ok(mut t) => {
                t.after.custom_limits = q.customizations.custom_limits.clone();
                if t.after.assigned_sales_rep.is_none() {
                    t.after.assigned_sales_rep = Some(q.sales_rep.clone());
                }
                Some(t)
            }
            // Already exactly this subscription: the conversion is recorded alone.
            Err(SubscriptionError::NoChange) => None,
            Err(e) => return Err(e.into()),
        };
        let conversion = Conversion {
            partner_id: partner.partner_id.clone(),
            transition_id: planned.as_ref().map(|t| t.record.transition_id.clone()),
            partner_created,
            accepted_by_name: accepted_by.clone(),
            stripe_subscription_id: None,
        };
        let after = q.accept(&at, today, conversion)?;
        let audit = app.audit("quote.accept", &prospect, Some(&q), &after);
        let transition_audit =
            planned.as_ref().map(|t| app.audit("partner.tier_change", &prospect, t.before.as_ref(), &t.after));
        let pair = planned.as_ref().zip(transition_audit.as_ref());
        match app.store.accept_quote(&q, &after, pair, &audit).await? {
            Ok(()) => {
                app.notify(QuoteNoticeKind::AcceptedByProspect, &after, "prospect", None).await;
                let after = billing::bill_accepted(app, ctx, after).await;
                return accept_answer(&after);
            }
            // Someone else moved the quote (a concurrent accept, a cancel): read it again.
            Err(AcceptRefusal::Quote) => {}
            // The partner changed meanwhile: plan again on the new state.
            Err(AcceptRefusal::Subscription(PartnerRefusal::Stale { .. })) => {}
            Err(AcceptRefusal::Subscription(refusal)) => return Err(refusal.meaning().into()),
        }
        q = app.store.get_quote(&q.quote_id).await?.ok_or(QuoteError::NotFound)?;
    }
    Err(ApiError::new(StatusCode::CONFLICT, "concurrent_update", "the quote kept changing; retry"))
}

/// The quote's customer: the partner it names, else the partner with the
/// prospect's email, else a new partner from the prospect's details (free tier,
/// the rep assigned), created in its own signup transaction.
async fn partner_for(
    app: &Quotes,
    q: &Quote,
    catalog: &[tierdesk::domain::tier::Tier],
    tctx: &TransitionContext,
) -> Result<(tierdesk::domain::partner::Partner, bool), ApiError> {
    for _ in 0..2 {
        let id = match &q.customer_id {
            Some(id) => Some(id.clone()),
            None => app.store.partner_id_by_email(&q.prospect_email).await?,
        };
        if let Some(id) = id {
            let partner = app.store.get_partner(&id).await?.ok_or(QuoteError::CustomerMismatch)?;
            return Ok((partner, false));
        }
        let new = NewPartner {
            company_name: q.prospect_company.clone().unwrap_or_else(|| q.prospect_name.clone()),
            primary_email: q.prospect_email.clone(),
            assigned_sales_rep: Some(q.sales_rep.clone()),
            subscription_notes: Some(format!("Created on acceptance of quote {}", q.quote_number)),
            locale: None,
        };
        let partner_id = format!("prt_{}", app.ids.new_id());
        let signup = subscription::plan_signup(&partner_id, new, Catalog::new(catalog), tctx)?;
        let audit = app.audit("partner.create", &tctx.by(), None, &signup.after);
        match app.store.apply_transition(&signup, &audit).await {
            Ok(()) => return Ok((signup.after, true)),
            // A concurrent accept created the partner first: use that one.
            Err(WriteError::Refused(PartnerRefusal::EmailTaken)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(StatusCode::CONFLICT, "concurrent_update", "the customer kept changing; retry"))
}

async fn decline(app: &Quotes, ctx: &Ctx, req: &Request, params: &PathParams) -> Result<Response<Body>, ApiError> {
    let reason = quote::parse_prospect_rejection(&json_body(req, app.config.max_body_bytes)?)?;
    let before = by_token(app, params).await?;
    let now = app.clock.now();
    let prospect = Actor::system("prospect", now, &ctx.request_id);
    let after = before.reject_by_prospect(&prospect.at, prospect.today, reason.clone())?;
    let audit = app.audit("quote.rejected_by_prospect", &prospect, Some(&before), &after);
    app.store.save_quote(&before, &after, &audit).await?;
    app.notify(QuoteNoticeKind::RejectedByProspect, &after, "prospect", Some(&reason)).await;
    json(StatusCode::OK, &after.public_view(now.date_naive()))
}
