//! The Stripe webhook Lambda (`POST /api/webhooks/stripe`).
//!
//! 1. The signature is checked on the raw body (300 s tolerance either way, any
//!    of several `v1=` signatures); a bad or missing one is a 400 and nothing is
//!    written.
//! 2. The event is claimed (`STRIPEEVT#{id}`: INPROGRESS with a lease). A
//!    completed event is a duplicate: 200, no effect. A live claim held by
//!    another delivery is a 409, so Stripe retries later.
//! 3. Its facts are planned through the transition mechanism and written in one
//!    transaction together with the invoice record and the event's APPLIED mark.
//!    Subscription events older than the last subscription event applied to the
//!    partner are ignored, so a late event never rolls the state back; invoices
//!    are ordered by their own record. The email the change calls for is kept on
//!    the claim in the same transaction.
//! 4. The email goes out, and the event is marked COMPLETED (with `notified`) and
//!    a TTL. A failure before that, the email's included, gives the claim back and
//!    answers 5xx, so Stripe's retry finishes it (an APPLIED claim sends its
//!    pending email and writes nothing else).
//!
//! The claim stores a hash of the payload: the same id with another payload is
//! refused (409 `event_payload_mismatch`) and changes nothing.

use chrono::{DateTime, NaiveDate};
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use tierdesk::app::App;
use tierdesk::app::{commission, redemption, Failed, Meaning};
use tierdesk::clock::rfc3339;
use tierdesk::domain::actor::Actor;
use tierdesk::domain::billing::{
    record_payment, record_payment_failure, sync_subscription, AccountChange, BillingChange, BillingNotice,
    InvoiceFacts, InvoiceRecord, PaymentFacts, StripeStatus, SubscriptionFacts,
};
use tierdesk::domain::invoice::{apply_dispute, plan_credit_note};
use tierdesk::domain::money::BillingPeriod;
use tierdesk::domain::partner::Partner;
use tierdesk::domain::promotion::{Application, PromotionError};
use tierdesk::domain::subscription::{
    Catalog, SubscriptionError, TransitionContext, TransitionEvent, Trigger, TriggerType,
};
use tierdesk::domain::tier::Tier;
use tierdesk::domain::validation::parse;
use tierdesk::http::router::match_route;
use tierdesk::http::{json, serve, Ctx, Route};
use tierdesk::mail::billing::email_for;
use tierdesk::mail::{Email, MailError, Mailer, SendOutcome};
use tierdesk::store::{
    BillingWrite, BillingWriteError, CustomerStore, EventClaim, InvoiceStore, PartnerStore, StripeEventStore, TierStore,
};
use tierdesk::stripe_adapter::facts::{self, invoice_partner_hint, subscription_partner_hint};
use tierdesk::stripe_adapter::stripe_shared;
use tierdesk::stripe_adapter::stripe_webhook::{Event, EventObject};
use tierdesk::stripe_adapter::webhook::{payload_hash, verify, Verified};
use tierdesk::stripe_adapter::StripeGateway;
use tierdesk::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Receive,
}

mod payment_methods;

pub const ROUTES: &[Route<Op>] = &[Route { method: "POST", path: "/api/webhooks/stripe", op: Op::Receive }];

/// How long one delivery may hold an event before another may take it over
/// (above the function's timeout).
const CLAIM_LEASE_SECS: i64 = 60;
/// Completed event ids are remembered this long; Stripe retries for 3 days.
const COMPLETED_TTL_SECS: i64 = 30 * 86_400;
const WRITE_ATTEMPTS: usize = 4;

pub struct StripeWebhook {
    app: App,
    pub stripe: StripeGateway,
    pub mailer: Mailer,
}

tierdesk::wraps_app!(StripeWebhook);

/// What processing one event produced.
#[derive(Debug, Default)]
struct Outcome {
    /// A human-readable summary for the response and the log.
    action: &'static str,
    /// The email the change calls for, also kept on the event's claim until sent.
    email: Option<Email>,
}

/// A planned change with what is written and sent alongside it.
struct Plan {
    change: BillingChange,
    record: Option<InvoiceRecord>,
    notice: Option<BillingNotice>,
}

/// A plan as written: the partner it started from and the email it calls for.
struct Written {
    before: Partner,
    plan: Plan,
    email: Option<Email>,
}

impl StripeWebhook {
    pub fn new(app: App, stripe: StripeGateway, mailer: Mailer) -> Self {
        Self { app, stripe, mailer }
    }
}

pub async fn handle(app: &StripeWebhook, req: Request) -> Response<Body> {
    serve(req, app.config.grants, app.clock.as_ref(), |ctx, req| dispatch(app, ctx, req)).await
}

fn bad_signature(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
        .with_details(json!({ "fields": { "Stripe-Signature": "does not verify" } }))
}

async fn dispatch(app: &StripeWebhook, ctx: Ctx, req: Request) -> Result<Response<Body>, ApiError> {
    match_route(ROUTES, req.method(), req.uri().path())?;
    let raw: &[u8] = match req.body() {
        Body::Text(s) => s.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    if raw.len() > app.config.max_body_bytes.max(256 * 1024) {
        return Err(
            tierdesk::http::RequestError::BodyTooLarge { limit: app.config.max_body_bytes.max(256 * 1024) }.into()
        );
    }
    let payload =
        std::str::from_utf8(raw).map_err(|_| bad_signature("signature_mismatch", "the body is not UTF-8".into()))?;
    let header = req.headers().get("stripe-signature").and_then(|v| v.to_str().ok());
    let now = app.clock.now();
    let verified = verify(payload, header, &app.stripe.config().webhook_secrets, now.timestamp())
        .map_err(|e| bad_signature(e.code(), e.to_string()))?;
    let event = match verified {
        Verified::Event(event) => event,
        Verified::Unparseable { event_id, event_type, reason } => {
            // Signed by Stripe but unreadable: keep it for a human and acknowledge,
            // so it does not come back every hour for three days.
            let id =
                event_id.filter(|id| parse::is_slug(id) || id.starts_with("evt_")).unwrap_or_else(|| app.ids.new_id());
            tracing::error!(
                event_id = id,
                event_type = event_type.as_deref().unwrap_or("?"),
                reason,
                "unparseable stripe event kept"
            );
            app.store
                .keep_unparseable_event(
                    &id,
                    event_type.as_deref(),
                    payload,
                    &reason,
                    &rfc3339(now),
                    now.timestamp() + COMPLETED_TTL_SECS,
                )
                .await?;
            return json(StatusCode::OK, &json!({ "received": true, "stored": "unparseable" }));
        }
    };
    let event_id = event.id.as_str().to_string();
    let event_type = event.type_.as_str().to_string();
    let token = app.ids.new_id();
    let hash = payload_hash(payload);
    let claim =
        app.store.claim_stripe_event(&event_id, &event_type, &hash, &token, now.timestamp(), CLAIM_LEASE_SECS).await?;
    let outcome = match claim {
        EventClaim::Duplicate => return json(StatusCode::OK, &json!({ "received": true, "duplicate": true })),
        EventClaim::InProgress => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "event_in_progress",
                "this event is being processed; retry later",
            ))
        }
        EventClaim::Mismatch => {
            // Ids and hashes only: the payload may carry personal data.
            tracing::warn!(event_id, event_type, "stripe event id redelivered with a different payload; rejected");
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "event_payload_mismatch",
                "this event id was received before with a different payload",
            ));
        }
        EventClaim::Claimed { applied: true, pending_email } => {
            // An earlier delivery wrote the change and stopped before the end: the
            // state is not written twice; the email it did not send goes out now.
            let email = pending_email.and_then(|raw| {
                serde_json::from_str::<Email>(&raw)
                    .inspect_err(|e| tracing::error!(event_id, error = %e, "pending billing email unreadable; dropped"))
                    .ok()
            });
            Ok(Outcome { action: "already_applied", email })
        }
        EventClaim::Claimed { applied: false, .. } => process(app, &ctx, &event, &token).await,
    };
    let result = match outcome {
        Ok(outcome) => finish(app, &event_id, &token, outcome, now).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(action) => {
            tracing::info!(event_id, event_type, action, "stripe event processed");
            json(StatusCode::OK, &json!({ "received": true, "action": action }))
        }
        Err(e) => {
            app.store.release_stripe_event(&event_id, &token).await?;
            tracing::error!(event_id, event_type, code = e.code, "stripe event failed; released for retry");
            // Stripe retries a non-2xx; a 4xx here would be a bug of ours, not
            // the sender's, so every failure is a 500.
            Err(if e.status.is_server_error() {
                e
            } else {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            })
        }
    }
}

/// The side effects after the state change: the email (kept on the claim since
/// the APPLIED mark), then COMPLETED with what became of it. A send that fails
/// is an error: the claim is given back with its pending email, and Stripe's
/// retry sends it. A capped recipient, or an email that cannot be rendered, is
/// final (logged by the mailer).
async fn finish(
    app: &StripeWebhook,
    event_id: &str,
    token: &str,
    outcome: Outcome,
    now: DateTime<chrono::Utc>,
) -> Result<&'static str, ApiError> {
    let notified = match &outcome.email {
        None => None,
        Some(email) => match app.mailer.send(email, now.date_naive()).await {
            Ok(SendOutcome::Sent { .. }) => Some("sent"),
            Ok(SendOutcome::Capped) => Some("capped"),
            // Permanent: a retry would render it the same way (logged by the mailer).
            Err(MailError::Render(_)) => Some("not_rendered"),
            Err(e) => {
                tracing::error!(event_id, error = %e, kind = email.kind.as_str(), "billing email failed; left for the retry");
                return Err(ApiError::new(StatusCode::BAD_GATEWAY, "mail_provider_error", "the email was not sent"));
            }
        },
    };
    app.store.complete_stripe_event(event_id, token, notified, now.timestamp() + COMPLETED_TTL_SECS).await?;
    Ok(outcome.action)
}

fn event_day(event: &Event) -> NaiveDate {
    DateTime::from_timestamp(event.created, 0).unwrap_or_default().date_naive()
}

async fn process(app: &StripeWebhook, ctx: &Ctx, event: &Event, token: &str) -> Result<Outcome, ApiError> {
    match &event.data.object {
        EventObject::CheckoutSessionCompleted(session) if session.mode == stripe_shared::CheckoutSessionMode::Setup => {
            let hints = [
                session.metadata.as_ref().and_then(|m| m.get(facts::PARTNER_ID_KEY)).cloned(),
                session.client_reference_id.clone(),
            ];
            payment_methods::saved_card_event(app, ctx, event, token, session.id.as_str(), &hints).await
        }
        EventObject::CustomerUpdated(customer) => {
            let hints = [customer.metadata.as_ref().and_then(|m| m.get(facts::PARTNER_ID_KEY)).cloned()];
            payment_methods::card_event(app, ctx, event, token, customer.id.as_str(), &hints).await
        }
        EventObject::CheckoutSessionCompleted(session) => {
            let paid = matches!(session.payment_status, stripe_shared::CheckoutSessionPaymentStatus::Paid)
                || matches!(session.payment_status, stripe_shared::CheckoutSessionPaymentStatus::NoPaymentRequired);
            let Some(sub) = session.subscription.as_ref().filter(|_| paid) else {
                return Ok(Outcome { action: "ignored_unpaid_session", ..Outcome::default() });
            };
            redeem_checkout_promotion(app, session).await;
            let (facts, payment) = app.stripe.subscription_with_payment(sub.id().as_str()).await?;
            let hints = [
                session.metadata.as_ref().and_then(|m| m.get(facts::PARTNER_ID_KEY)).cloned(),
                session.client_reference_id.clone(),
            ];
            let how = How { trigger: TriggerType::SelfService, fresh: true, payment: Some(payment) };
            subscription_event(app, ctx, event, token, &facts, &hints, how).await
        }
        EventObject::CustomerSubscriptionCreated(sub)
        | EventObject::CustomerSubscriptionUpdated(sub)
        | EventObject::CustomerSubscriptionDeleted(sub)
        | EventObject::CustomerSubscriptionResumed(sub)
        | EventObject::CustomerSubscriptionPaused(sub) => {
            let facts = facts::subscription_facts(sub);
            let created = matches!(event.data.object, EventObject::CustomerSubscriptionCreated(_));
            let trigger = if created { TriggerType::SelfService } else { TriggerType::Automated };
            // A subscription that starts paid was paid for by its first invoice: read
            // that payment (one call, expanded) for the history record it causes.
            let payment = if created && facts.status == StripeStatus::Active {
                Some(app.stripe.subscription_with_payment(&facts.subscription_id).await?.1)
            } else {
                None
            };
            let hints = [subscription_partner_hint(sub)];
            subscription_event(app, ctx, event, token, &facts, &hints, How { trigger, fresh: false, payment }).await
        }
        EventObject::InvoicePaid(invoice) | EventObject::InvoicePaymentSucceeded(invoice) => {
            invoice_event(app, ctx, event, token, invoice, InvoiceKind::Paid).await
        }
        EventObject::InvoicePaymentFailed(invoice) => {
            invoice_event(app, ctx, event, token, invoice, InvoiceKind::Failed).await
        }
        EventObject::InvoiceCreated(invoice)
        | EventObject::InvoiceFinalized(invoice)
        | EventObject::InvoiceUpdated(invoice)
        | EventObject::InvoiceVoided(invoice)
        | EventObject::InvoiceMarkedUncollectible(invoice) => {
            invoice_event(app, ctx, event, token, invoice, InvoiceKind::Record).await
        }
        EventObject::CreditNoteCreated(note) => credit_note_event(app, ctx, event, token, note).await,
        EventObject::ChargeDisputeCreated(dispute)
        | EventObject::ChargeDisputeUpdated(dispute)
        | EventObject::ChargeDisputeFundsWithdrawn(dispute)
        | EventObject::ChargeDisputeFundsReinstated(dispute)
        | EventObject::ChargeDisputeClosed(dispute) => dispute_event(app, ctx, event, token, dispute).await,
        _ => Ok(Outcome { action: "ignored", ..Outcome::default() }),
    }
}

/// `credit_note.created`: a refund recorded on its invoice and the partner's
/// revenue reversed, once per credit note. The staff refund action records its own
/// credit note before this arrives, so then (and on any redelivery) it is
/// `unchanged`; a credit note made in Stripe's dashboard is recorded here.
async fn credit_note_event(
    app: &StripeWebhook,
    ctx: &Ctx,
    event: &Event,
    token: &str,
    note: &stripe_shared::CreditNote,
) -> Result<Outcome, ApiError> {
    let facts = facts::credit_note_facts(note);
    let Some(record) = app.store.invoice_by_id(&facts.invoice_id).await? else {
        tracing::warn!(event_id = event.id.as_str(), "stripe credit note names no recorded invoice");
        return Ok(Outcome { action: "ignored_unknown_invoice", ..Outcome::default() });
    };
    let step = InvoiceStep { audit: "invoice.refund", done: "refund_recorded", with_partner: true };
    invoice_record_event(app, ctx, event, token, &record, step, |previous, partner, actor| {
        let partner = partner.ok_or(SubscriptionError::NotFound)?;
        Ok(plan_credit_note(partner, previous, &facts, &actor.at, &actor.id))
    })
    .await
}

/// `charge.dispute.*`: a chargeback on an invoice's payment, recorded on the invoice
/// (`invoice::apply_dispute`) with the commission it moves, in one write. The
/// dispute names only its payment intent: one Stripe call finds the invoice. Every
/// event carries the dispute's whole state, so a redelivery, `funds_withdrawn` after
/// `created`, or an older event after the close changes nothing.
async fn dispute_event(
    app: &StripeWebhook,
    ctx: &Ctx,
    event: &Event,
    token: &str,
    dispute: &stripe_shared::Dispute,
) -> Result<Outcome, ApiError> {
    let facts = facts::dispute_facts(dispute);
    let invoice_id = match &facts.payment_intent {
        Some(pi) => app.stripe.invoice_of_payment_intent(pi).await?,
        None => None,
    };
    let record = match invoice_id {
        Some(id) => app.store.invoice_by_id(&id).await?,
        None => None,
    };
    let Some(record) = record else {
        tracing::warn!(event_id = event.id.as_str(), "stripe dispute names no recorded invoice");
        return Ok(Outcome { action: "ignored_unknown_invoice", ..Outcome::default() });
    };
    let step = InvoiceStep { audit: "invoice.dispute", done: "dispute_recorded", with_partner: false };
    invoice_record_event(app, ctx, event, token, &record, step, |previous, _, actor| {
        Ok(apply_dispute(previous, &facts, &actor.at).map(|after| (after, BillingChange::Nothing)))
    })
    .await
}

/// What an event that changes one invoice record writes and says.
struct InvoiceStep {
    /// The audit action of the record's change.
    audit: &'static str,
    /// The outcome when something changed (else `unchanged`).
    done: &'static str,
    /// Whether `plan` needs the partner (read fresh on every attempt).
    with_partner: bool,
}

/// Writes what `plan` makes of an invoice record, with the commission the change
/// moves, the event's claim and an audit entry, in one transaction conditional on
/// the record read; re-read and planned again when a concurrent write got there
/// first. `plan` answers `None` when the event changes nothing.
async fn invoice_record_event<F>(
    app: &StripeWebhook,
    ctx: &Ctx,
    event: &Event,
    token: &str,
    record: &InvoiceRecord,
    step: InvoiceStep,
    mut plan: F,
) -> Result<Outcome, ApiError>
where
    F: FnMut(&InvoiceRecord, Option<&Partner>, &Actor) -> Result<Option<(InvoiceRecord, BillingChange)>, ApiError>,
{
    let actor = stripe_actor(app, ctx, event);
    for _ in 0..WRITE_ATTEMPTS {
        let partner = match step.with_partner {
            true => Some(app.store.get_partner(&record.partner_id).await?.ok_or(SubscriptionError::NotFound)?),
            false => None,
        };
        let Some(previous) = app.store.invoice(&record.partner_id, record.stripe_created, &record.invoice_id).await?
        else {
            return Ok(Outcome { action: "ignored_unknown_invoice", ..Outcome::default() });
        };
        let previous = previous.normalized();
        let mut planned = plan(&previous, partner.as_ref(), &actor)?;
        let commission = match planned.as_mut() {
            Some((after, _)) => commission::settle(&app.store, Some(&previous), after, &actor.at, actor.today).await?,
            None => None,
        };
        let entry = planned.as_ref().map(|(after, _)| app.audit(step.audit, &actor, Some(&previous), after));
        let write = BillingWrite {
            change: planned.as_ref().map(|(_, change)| change),
            audit: entry.as_ref(),
            invoice: planned.as_ref().map(|(after, _)| (after, Some(&previous))),
            event: Some((event.id.as_str(), token)),
            pending_email: None,
            commission: commission.as_ref(),
        };
        match app.store.apply_billing(&write).await {
            Ok(()) => {
                let action = if planned.is_some() { step.done } else { "unchanged" };
                return Ok(Outcome { action, ..Outcome::default() });
            }
            Err(BillingWriteError::Stale) => continue,
            Err(BillingWriteError::ClaimLost) => {
                return Err(ApiError::new(StatusCode::CONFLICT, "event_in_progress", "claim lost"))
            }
            Err(BillingWriteError::Partner(refusal)) => return Err(refusal.meaning().into()),
            Err(BillingWriteError::Store(e)) => return Err(e.into()),
        }
    }
    Err(SubscriptionError::VersionConflict { current: None }.into())
}

/// Records the redemption of a promotion applied at checkout, once per session
/// (the session id is the redemption's once-key, so a redelivery or a retry after
/// a crash records nothing more). Stripe has already applied the discount: a
/// refusal now (the promotion's cap was reached by others while this customer
/// was paying) is logged for a human, with ids only, and does not fail the event.
async fn redeem_checkout_promotion(app: &StripeWebhook, session: &stripe_shared::CheckoutSession) {
    let Some(meta) = session.metadata.as_ref() else { return };
    let (Some(code), Some(partner_id)) = (meta.get(facts::PROMOTION_CODE_KEY), meta.get(facts::PARTNER_ID_KEY)) else {
        return;
    };
    let promotion_id = meta.get(facts::PROMOTION_ID_KEY).cloned().unwrap_or_default();
    let ask = Application {
        codes: vec![code.clone()],
        promotion_ids: vec![],
        partner_id: Some(partner_id.clone()),
        tier_id: meta.get(facts::TIER_ID_KEY).cloned().unwrap_or_default(),
        billing_period: meta
            .get(facts::BILLING_PERIOD_KEY)
            .and_then(|p| BillingPeriod::parse(&serde_json::Value::String(p.clone())).ok())
            .unwrap_or(BillingPeriod::Monthly),
        commitment_months: None,
    };
    let session_id = session.id.as_str();
    let settles = redemption::Settlement {
        key: session_id,
        customer_as_of: meta.get(facts::PROMOTION_CUSTOMER_KEY).and_then(|c| serde_json::from_str(c).ok()),
    };
    match redemption::redeem(&app.store, &ask, partner_id, None, Some(settles), app.clock.now(), app.ids.as_ref()).await
    {
        Ok(done) => tracing::info!(
            promotion = promotion_id,
            partner = partner_id.as_str(),
            redemptions = done.redemptions.len(),
            "checkout promotion redeemed"
        ),
        Err(Failed::Refused(PromotionError::AlreadyRedeemed)) => {}
        Err(e) => tracing::error!(
            promotion = promotion_id,
            partner = partner_id.as_str(),
            session = session_id,
            error = %e,
            "checkout promotion not recorded; the discount was applied by Stripe"
        ),
    }
}

/// The partner an event is about: through the customer lookup, else the
/// `partner_id` the Stripe object carries in its metadata.
async fn find_partner(
    app: &StripeWebhook,
    customer_id: &str,
    hints: &[Option<String>],
) -> Result<Option<Partner>, ApiError> {
    if !customer_id.is_empty() {
        if let Some(id) = app.store.partner_id_by_stripe_customer(customer_id).await? {
            if let Some(p) = app.store.get_partner(&id).await? {
                return Ok(Some(p));
            }
        }
    }
    for hint in hints.iter().flatten() {
        if parse::is_slug(hint) {
            if let Some(p) = app.store.get_partner(hint).await? {
                return Ok(Some(p));
            }
        }
    }
    Ok(None)
}

/// "Today" is the event's day (a late delivery still renews for the right day);
/// the record's timestamp is when it was written, so history stays in order.
fn context(app: &StripeWebhook, ctx: &Ctx, event: &Event, trigger: TriggerType) -> TransitionContext {
    let by = Actor { today: event_day(event), ..app.acting("stripe", &ctx.request_id) };
    let reason = format!("stripe {} {}", event.type_.as_str(), event.id.as_str());
    app.transition_context(&by, Trigger::new(trigger, Some(reason)))
}

/// Stripe acting through `event`, now, as records and the audit trail name it.
fn stripe_actor(app: &StripeWebhook, ctx: &Ctx, event: &Event) -> Actor {
    app.acting(&format!("stripe:{}", event.id.as_str()), &ctx.request_id)
}

/// Stamps a subscription event's time on the planned partner: the ordering guard
/// of the partner's subscription object (`stripeEventAt`). Invoice events do not
/// stamp it: each invoice is ordered by its own record (see `invoice_event`), and a
/// subscription event older than a later invoice's is still news about the
/// subscription.
fn stamp(change: &mut BillingChange, created: i64) {
    let after = match change {
        BillingChange::Transition(t) => &mut t.after,
        BillingChange::Account(a) => &mut a.after,
        BillingChange::Nothing => return,
    };
    after.stripe_event_at = Some(after.stripe_event_at.map_or(created, |t| t.max(created)));
}

/// Writes a planned change with the event's APPLIED mark and the email it calls
/// for (and, for an invoice event, the invoice record, conditional on the record
/// it was planned from), replanning from a fresh read when the partner or the
/// invoice changed meanwhile. `subscription_order`: the change is stamped with the
/// event's time (subscription events).
#[allow(clippy::too_many_arguments)]
async fn write<F>(
    app: &StripeWebhook,
    ctx: &Ctx,
    event: &Event,
    token: &str,
    mut partner: Partner,
    invoice: Option<&InvoiceFacts>,
    subscription_order: bool,
    mut plan: F,
) -> Result<Written, ApiError>
where
    F: FnMut(&Partner, &[Tier], Option<&InvoiceRecord>) -> Result<Plan, ApiError>,
{
    for _ in 0..WRITE_ATTEMPTS {
        let catalog = app.store.active_catalog().await?;
        let previous = match invoice {
            Some(i) => app.store.invoice(&partner.partner_id, i.created, &i.invoice_id).await?,
            None => None,
        };
        let mut planned = plan(&partner, &catalog, previous.as_ref())?;
        if subscription_order {
            stamp(&mut planned.change, event.created);
        }
        let at = stripe_actor(app, ctx, event).at;
        let commission = match planned.record.as_mut() {
            Some(record) => {
                commission::settle(&app.store, previous.as_ref(), record, &at, app.clock.now().date_naive()).await?
            }
            None => None,
        };
        let audit = planned.change.after().filter(|after| !only_stamp_moved(&partner, after)).map(|after| {
            // At the time the change was stamped on the partner.
            let by = Actor { at: after.updated_at.clone(), ..stripe_actor(app, ctx, event) };
            app.audit("partner.billing", &by, Some(&partner), after)
        });
        let email = planned.notice.map(|notice| {
            let after = planned.change.after().unwrap_or(&partner);
            email_for(notice, after, Some(&partner), invoice, Catalog::new(&catalog))
        });
        let pending = email.as_ref().map(serde_json::to_string).transpose().map_err(|e| {
            tracing::error!(error = %e, "billing email not serializable");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
        })?;
        let write = BillingWrite {
            change: Some(&planned.change),
            audit: audit.as_ref(),
            invoice: planned.record.as_ref().map(|r| (r, previous.as_ref())),
            event: Some((event.id.as_str(), token)),
            pending_email: pending.as_deref(),
            commission: commission.as_ref(),
        };
        match app.store.apply_billing(&write).await {
            Ok(()) => return Ok(Written { before: partner, plan: planned, email }),
            Err(BillingWriteError::Stale) => {
                partner = app.store.get_partner(&partner.partner_id).await?.ok_or(SubscriptionError::NotFound)?;
            }
            Err(BillingWriteError::ClaimLost) => {
                return Err(ApiError::new(StatusCode::CONFLICT, "event_in_progress", "claim lost"))
            }
            Err(BillingWriteError::Partner(refusal)) => return Err(refusal.meaning().into()),
            Err(BillingWriteError::Store(e)) => return Err(e.into()),
        }
    }
    Err(SubscriptionError::VersionConflict { current: None }.into())
}

/// A subscription event, ordered per subscription object by `stripeEventAt`:
/// - older than the last subscription event applied: ignored (`ignored_stale`);
/// - newer: its snapshot is applied;
/// - the same second (Stripe's `created` has whole seconds and event ids are not
///   in time order, so which of two same-second snapshots is newer cannot be
///   told): the subscription is read from Stripe and its current state applied,
///   so the outcome does not depend on the delivery order. A `canceled` snapshot is
///   final and applied as is. `fresh`: the facts were just read from Stripe.
async fn subscription_event(
    app: &StripeWebhook,
    ctx: &Ctx,
    event: &Event,
    token: &str,
    facts: &SubscriptionFacts,
    hints: &[Option<String>],
    how: How,
) -> Result<Outcome, ApiError> {
    let How { trigger, fresh, payment } = how;
    let Some(partner) = find_partner(app, &facts.customer_id, hints).await? else {
        tracing::warn!(event_id = event.id.as_str(), "stripe subscription names no known partner");
        return Ok(Outcome { action: "ignored_unknown_partner", ..Outcome::default() });
    };
    let current = if tie(&partner, event) && !fresh && facts.status != StripeStatus::Canceled {
        Some(app.stripe.subscription(&facts.subscription_id).await?)
    } else {
        None
    };
    let tctx = context(app, ctx, event, trigger);
    let Written { before, plan, email } = write(app, ctx, event, token, partner, None, true, |p, tiers, _| {
        let mut change = if stale(p, event) {
            BillingChange::Nothing
        } else {
            let facts = current.as_ref().filter(|_| tie(p, event)).unwrap_or(facts);
            sync_subscription(p, facts, Catalog::new(tiers), &tctx)?
        };
        if let (BillingChange::Transition(t), Some(payment)) = (&mut change, &payment) {
            payment.stamp(&mut t.record);
        }
        // A newer snapshot of the partner's subscription that changes nothing still
        // moves its clock: a same-second snapshot after it is then a tie.
        let newer = p.stripe_event_at.is_none_or(|last| last < event.created);
        if matches!(change, BillingChange::Nothing)
            && newer
            && p.stripe_subscription_id.as_deref() == Some(facts.subscription_id.as_str())
        {
            change = stamp_only(p, &tctx);
        }
        let notice = match change.event() {
            Some(TransitionEvent::Upgrade) => Some(BillingNotice::UpgradeConfirmation),
            Some(TransitionEvent::Reactivate)
                if change.after().is_some_and(|a| a.on_paid_term()) && !p.on_paid_term() =>
            {
                Some(BillingNotice::UpgradeConfirmation)
            }
            Some(TransitionEvent::Expiration) => Some(BillingNotice::Expired),
            // Whoever writes the cancellation confirms it: this delivery, or the billing
            // route when it wrote first.
            Some(TransitionEvent::Cancel) => Some(BillingNotice::Cancelled),
            _ => None,
        };
        Ok(Plan { change, record: None, notice })
    })
    .await?;
    let action = match (&plan.change, stale(&before, event)) {
        (_, true) => "ignored_stale",
        (BillingChange::Nothing, _) => "unchanged",
        (BillingChange::Account(a), _) if only_stamp_moved(&a.before, &a.after) => "unchanged",
        (BillingChange::Transition(t), _) => transition_name(t.record.event),
        (BillingChange::Account(_), _) => "updated",
    };
    Ok(Outcome { action, email })
}

/// A change that only records a subscription event's time (stamped by `write`).
fn stamp_only(p: &Partner, ctx: &TransitionContext) -> BillingChange {
    let mut after = p.clone();
    after.version = p.version + 1;
    after.updated_at = ctx.at.clone();
    after.updated_by = ctx.actor.clone();
    BillingChange::Account(Box::new(AccountChange { before: p.clone(), after, stats: Vec::new() }))
}

/// Whether `after` differs from `before` only by the ordering stamp and the
/// bookkeeping of a write (no audit entry for that).
fn only_stamp_moved(before: &Partner, after: &Partner) -> bool {
    let mut same = after.clone();
    same.stripe_event_at = before.stripe_event_at;
    same.version = before.version;
    same.updated_at = before.updated_at.clone();
    same.updated_by = before.updated_by.clone();
    same == *before
}

/// Older than the last subscription event applied to the partner.
fn stale(before: &Partner, event: &Event) -> bool {
    before.stripe_event_at.is_some_and(|last| last > event.created)
}

/// The same second as the last subscription event applied to the partner.
fn tie(before: &Partner, event: &Event) -> bool {
    before.stripe_event_at == Some(event.created)
}

fn transition_name(event: TransitionEvent) -> &'static str {
    match event {
        TransitionEvent::Signup => "signup",
        TransitionEvent::Upgrade => "upgrade",
        TransitionEvent::Downgrade => "downgrade",
        TransitionEvent::Cancel => "cancel",
        TransitionEvent::Reactivate => "reactivate",
        TransitionEvent::Renewal => "renewal",
        TransitionEvent::Expiration => "expiration",
        TransitionEvent::PaymentFailureDowngrade => "payment_failure_downgrade",
        TransitionEvent::TrialConversion => "trial_conversion",
        TransitionEvent::TrialExpired => "trial_expired",
    }
}

/// How a subscription event is applied: its trigger, whether its facts were just
/// read from Stripe, and the payment behind it when one was read.
struct How {
    trigger: TriggerType,
    fresh: bool,
    payment: Option<PaymentFacts>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvoiceKind {
    Paid,
    Failed,
    Record,
}

/// An invoice event, ordered per invoice object by the invoice's own record (not
/// by time, not by the partner's `stripeEventAt`, which it leaves alone): a paid
/// record is final, a void one only becomes paid, `attemptCount` never goes down,
/// and a failed attempt already recorded is ignored.
async fn invoice_event(
    app: &StripeWebhook,
    ctx: &Ctx,
    event: &Event,
    token: &str,
    invoice: &stripe_shared::Invoice,
    kind: InvoiceKind,
) -> Result<Outcome, ApiError> {
    let (mut facts, price_ids) = facts::invoice_facts(invoice);
    if facts.invoice_id.is_empty() {
        return Ok(Outcome { action: "ignored_invoice_without_id", ..Outcome::default() });
    }
    let Some(partner) = find_partner(app, &facts.customer_id, &[invoice_partner_hint(invoice)]).await? else {
        tracing::warn!(event_id = event.id.as_str(), "stripe invoice names no known partner");
        return Ok(Outcome { action: "ignored_unknown_partner", ..Outcome::default() });
    };
    facts.price = app.stripe.tier_price(&price_ids).await?;
    // A paid invoice that may start (or restart) the partner's paid term causes a
    // transition whose history record names the card: read it (one call) only then,
    // not for the renewals of a running subscription.
    let starts_term = partner.stripe_subscription_id.as_deref() != facts.subscription_id.as_deref()
        || !partner.on_paid_term()
        || partner.subscription_status.is_lapsed();
    let card = match (&facts.subscription_id, kind) {
        (Some(sub), InvoiceKind::Paid) if starts_term && facts.amount_paid > 0 => {
            app.stripe.subscription_with_payment(sub).await?.1.card
        }
        _ => None,
    };
    let tctx = context(app, ctx, event, TriggerType::Automated);
    let Written { plan, email, .. } =
        write(app, ctx, event, token, partner, Some(&facts), false, |p, tiers, previous| {
            let already_paid = previous.is_some_and(InvoiceRecord::is_paid);
            let (change, notice) = match kind {
                InvoiceKind::Paid => {
                    let mut c = record_payment(p, &facts, previous, Catalog::new(tiers), &tctx)?;
                    // A transition this payment caused carries its amount and card.
                    if let BillingChange::Transition(t) = &mut c {
                        PaymentFacts { amount_paid: Some(facts.amount_paid), card: card.clone() }.stamp(&mut t.record);
                    }
                    (c, (!already_paid).then_some(BillingNotice::Receipt))
                }
                InvoiceKind::Failed => record_payment_failure(p, &facts, previous, Catalog::new(tiers), &tctx)?,
                InvoiceKind::Record => (BillingChange::Nothing, None),
            };
            // A record never goes back from paid or void (events arrive out of order).
            let terminal = previous.is_some_and(|r| r.status == "paid" || r.status == "void");
            let record = (!terminal || kind == InvoiceKind::Paid && !already_paid)
                .then(|| InvoiceRecord::from_facts(&facts, change.after().unwrap_or(p), previous, &tctx.at))
                .filter(|r| previous != Some(r));
            Ok(Plan { change, record, notice })
        })
        .await?;
    let action = match (&plan.change, kind) {
        (BillingChange::Transition(t), _) => transition_name(t.record.event),
        (BillingChange::Account(_), InvoiceKind::Paid) => "payment_recorded",
        (BillingChange::Account(_), _) => "payment_failed",
        (BillingChange::Nothing, _) if plan.record.is_some() => "invoice_recorded",
        (BillingChange::Nothing, _) => "unchanged",
    };
    Ok(Outcome { action, email })
}
