//! The subscription state machine. Every change of a partner's tier or status
//! (admin tier change, cancellation, Stripe renewal or dunning, the expiry cron,
//! an accepted quote, a redeemed promotion) is planned here as a `Transition`:
//! the partner before and after, the `TierTransition` history record (seed 000),
//! the MRR movement, and the tier-statistics deltas. The store writes a
//! transition as one transaction, so these always agree.

use super::analytics::{transition_delta, AnalyticsDelta};
use super::money::{BillingPeriod, Percent};
use super::partner::{fields, NewPartner, Partner, SubscriptionStatus};
use super::revenue::{mrr_of, stats_deltas, Movement, MovementKind, TierCounts};
use super::scoring::{self, ChurnRisk, ScoringInput, Upsell, UsageSnapshot};
use super::tier::{Tier, TierStatus, DEFAULT_TIER_ID};
use super::validation::{parse, Fields, ValidationError};
use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Downgrade dates kept on the partner for scoring (the signal looks back a year).
const RECENT_DOWNGRADES_KEPT: usize = 5;
use super::actor::Actor;
pub use super::tier::is_paid;
use super::tier::MAX_TRIAL_DAYS;
pub use super::transition::TransitionEvent;
use crate::clock::IdGen;

#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error("partner not found")]
    NotFound,
    #[error("the partner was changed by someone else; reload it and retry")]
    VersionConflict { current: Option<u64> },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("the request changes nothing")]
    NoChange,
    #[error("the partner has no paid subscription to cancel")]
    NoPaidSubscription,
    #[error("the subscription is already {0}")]
    AlreadyEnded(&'static str),
    #[error("the subscription is cancelled; reactivate it with a tier change")]
    Cancelled,
    #[error("the default tier is missing from the catalog; initialize the tiers first")]
    DefaultTierMissing,
    #[error("another partner already uses this email address")]
    DuplicateEmail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerType {
    SelfService,
    SalesAssisted,
    Automated,
    Promotion,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    #[serde(rename = "type")]
    pub trigger_type: TriggerType,
    pub sales_rep: Option<String>,
    pub promotion_id: Option<String>,
    pub reason: Option<String>,
}

impl Trigger {
    /// A trigger of `trigger_type` for `reason`, with no rep or promotion behind it.
    pub fn new(trigger_type: TriggerType, reason: Option<String>) -> Self {
        Self { trigger_type, sales_rep: None, promotion_id: None, reason }
    }

    /// The same trigger, credited to the sales rep `rep`.
    pub fn by_rep(mut self, rep: impl Into<String>) -> Self {
        self.sales_rep = Some(rep.into());
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinancialImpact {
    #[serde(rename = "previousMRR")]
    pub previous_mrr: i64,
    #[serde(rename = "newMRR")]
    pub new_mrr: i64,
    #[serde(rename = "mrrChange")]
    pub mrr_change: i64,
    /// The contracted value of the new term: new MRR × the term's months.
    #[serde(rename = "expectedLTV")]
    pub expected_ltv: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransitionMetadata {
    pub billing_period: Option<BillingPeriod>,
    pub previous_status: Option<SubscriptionStatus>,
    pub new_status: SubscriptionStatus,
    pub subscription_start_date: Option<NaiveDate>,
    pub subscription_end_date: Option<NaiveDate>,
    pub previous_end_date: Option<NaiveDate>,
    pub price_per_period: i64,
    pub price_version: Option<u32>,
    pub currency: String,
    /// PCR multipliers before and after: what the scoring system recalculates with.
    pub previous_multiplier: Option<f64>,
    pub new_multiplier: f64,
    pub movement: Option<MovementKind>,
    pub actor: String,
    pub request_id: Option<String>,
}

/// Seed 000 `TierTransition`. Stored under the partner and streamed to the PCR
/// scoring system as the outbox (see docs/events.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TierTransition {
    pub transition_id: String,
    pub partner_id: String,
    /// Seed 000 names the subject `userId`; here it is the partner.
    pub user_id: String,
    pub timestamp: String,
    pub event: TransitionEvent,
    pub from_tier: Option<String>,
    pub to_tier: String,
    pub trigger: Trigger,
    pub financial_impact: FinancialImpact,
    pub metadata: TransitionMetadata,
    /// Seed 003 `amount_paid`: the payment that caused the transition, in cents
    /// (a paid Stripe invoice or completed checkout); `null` otherwise.
    #[serde(default)]
    pub amount_paid: Option<i64>,
    /// Seed 003 `payment_method`: the card of that payment, brand and last four
    /// digits only; `null` when no payment caused it or Stripe named no card.
    #[serde(default)]
    pub payment_method: Option<PaymentMethod>,
}

/// A payment card as history shows it: never more than the brand and the last
/// four digits (no expiry, holder, fingerprint or full number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentMethod {
    pub brand: String,
    pub last4: String,
}

impl PaymentMethod {
    /// Only a brand of letters, digits, `_`, ` ` or `-` (up to 32) and exactly four
    /// digits pass; anything else is not recorded.
    pub fn card(brand: &str, last4: &str) -> Option<Self> {
        let brand_ok = !brand.is_empty()
            && brand.len() <= 32
            && brand.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ' ' | '-'));
        let last4_ok = last4.len() == 4 && last4.chars().all(|c| c.is_ascii_digit());
        (brand_ok && last4_ok).then(|| Self { brand: brand.to_ascii_lowercase(), last4: last4.to_string() })
    }
}

/// Who and when, plus the ids a transition needs; all supplied by the caller.
#[derive(Debug, Clone)]
pub struct TransitionContext {
    pub today: NaiveDate,
    pub at: String,
    pub actor: String,
    pub request_id: Option<String>,
    pub transition_id: String,
    pub movement_id: String,
    pub trigger: Trigger,
}

impl TransitionContext {
    /// A transition by `by` for `trigger`, with fresh ids for its record and its
    /// MRR movement.
    pub fn new(by: &Actor, trigger: Trigger, ids: &dyn IdGen) -> Self {
        Self {
            today: by.today,
            at: by.at.clone(),
            actor: by.id.clone(),
            request_id: Some(by.request_id.clone()),
            transition_id: ids.new_id(),
            movement_id: ids.new_id(),
            trigger,
        }
    }

    /// Who makes the transition, for its audit entry.
    pub fn by(&self) -> Actor {
        Actor::from_parts(&self.actor, &self.at, self.today, self.request_id.clone().unwrap_or_default())
    }
}

/// A planned change, complete: the store writes exactly this.
#[derive(Debug, Clone)]
pub struct Transition {
    pub before: Option<Partner>,
    pub after: Partner,
    pub record: TierTransition,
    pub movement: Option<Movement>,
    pub stats: Vec<(String, TierCounts)>,
    /// What the transition adds to the monthly analytics aggregates.
    pub analytics: AnalyticsDelta,
}

/// The active catalog, with the lookups transitions need.
#[derive(Debug, Clone, Copy)]
pub struct Catalog<'a> {
    pub tiers: &'a [Tier],
}

impl<'a> Catalog<'a> {
    pub fn new(tiers: &'a [Tier]) -> Self {
        Self { tiers }
    }

    pub fn active(&self, tier_id: &str) -> Option<&'a Tier> {
        self.tiers.iter().find(|t| t.tier_id == tier_id && t.status == TierStatus::Active)
    }

    /// Any tier by id, archived or not: a partner may sit on a tier archived later
    /// only if archiving raced nothing, which the stats check prevents, but history
    /// must still resolve names.
    pub fn any(&self, tier_id: &str) -> Option<&'a Tier> {
        self.tiers.iter().find(|t| t.tier_id == tier_id)
    }

    /// The lowest-ranked active tier above `tier` in its segment.
    pub fn next_up(&self, tier: &Tier) -> Option<&'a Tier> {
        self.tiers
            .iter()
            .filter(|t| t.status == TierStatus::Active && t.segment == tier.segment && t.rank() > tier.rank())
            .min_by_key(|t| t.rank())
    }
}

/// `PATCH /api/admin/partners/{id}/engagement-tier`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TierChange {
    pub tier: String,
    pub subscription_start_date: Option<NaiveDate>,
    pub subscription_end_date: Option<NaiveDate>,
    pub billing_period: Option<BillingPeriod>,
    pub auto_renewal: Option<bool>,
    pub reason: Option<String>,
    pub version: Option<u64>,
    pub trial_days: Option<u32>,
    /// `trial: true`: a trial as long as the target tier's `trialDays`.
    pub trial: bool,
    pub discount_percent: Option<Percent>,
    /// A price agreed in an accepted quote: server-set, never read from a body.
    pub quoted: Option<QuotedPrice>,
}

/// The price per billing period a quote fixed, and the tier price version it
/// was written against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedPrice {
    pub price_per_period: i64,
    pub price_version: u32,
}

fn reason(v: &Value) -> Result<String, String> {
    parse::text(v, 1, 500)
}

impl TierChange {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(
            body,
            &[
                "tier",
                "subscriptionStartDate",
                "subscriptionEndDate",
                "billingPeriod",
                "autoRenewal",
                "reason",
                "version",
                "trialDays",
                "trial",
                "discountPercent",
            ],
        );
        let tier = f.required("tier", parse::slug);
        let change = Self {
            tier: tier.unwrap_or_default(),
            subscription_start_date: f.optional("subscriptionStartDate", fields::date),
            subscription_end_date: f.optional("subscriptionEndDate", fields::date),
            billing_period: f.optional("billingPeriod", BillingPeriod::parse),
            auto_renewal: f.optional("autoRenewal", parse::boolean),
            reason: f.optional("reason", reason),
            version: f.optional("version", fields::version),
            trial_days: f.optional("trialDays", |v| parse::int_in(v, 1, MAX_TRIAL_DAYS).map(|n| n as u32)),
            trial: f.optional("trial", parse::boolean).unwrap_or(false),
            discount_percent: f.optional("discountPercent", Percent::parse),
            quoted: None,
        };
        if change.trial && change.trial_days.is_some() {
            f.fail("trial", "give either trial or trialDays, not both");
        }
        if let (Some(start), Some(end)) = (change.subscription_start_date, change.subscription_end_date) {
            if end <= start {
                f.fail("subscriptionEndDate", "must be after subscriptionStartDate");
            }
        }
        f.finish()?;
        Ok(change)
    }

    /// Fields that only make sense for a paid tier, as given.
    fn paid_only_fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.subscription_start_date.is_some() {
            out.push("subscriptionStartDate");
        }
        if self.subscription_end_date.is_some() {
            out.push("subscriptionEndDate");
        }
        if self.billing_period.is_some() {
            out.push("billingPeriod");
        }
        if self.trial_days.is_some() {
            out.push("trialDays");
        }
        if self.trial {
            out.push("trial");
        }
        if self.discount_percent.is_some() {
            out.push("discountPercent");
        }
        out
    }
}

/// `POST /api/admin/partners/{id}/cancel`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cancellation {
    pub reason: String,
    pub immediate: bool,
    pub version: Option<u64>,
}

impl Cancellation {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["reason", "immediate", "version"]);
        let reason = f.required("reason", reason);
        let immediate = f.optional("immediate", parse::boolean).unwrap_or(false);
        let version = f.optional("version", fields::version);
        f.finish()?;
        let reason = reason.ok_or_else(|| ValidationError::single("reason", "is required"))?;
        Ok(Self { reason, immediate, version })
    }
}

pub(super) fn check_version(partner: &Partner, expected: Option<u64>) -> Result<(), SubscriptionError> {
    match expected {
        Some(v) if v != partner.version => Err(SubscriptionError::VersionConflict { current: Some(partner.version) }),
        _ => Ok(()),
    }
}

fn add_months(date: NaiveDate, months: u32) -> NaiveDate {
    date.checked_add_months(Months::new(months)).unwrap_or(NaiveDate::MAX)
}

/// Months from `from` to `to`, a started month counting as one; 0 if `to` is not
/// after `from`.
pub fn months_started(from: NaiveDate, to: NaiveDate) -> i64 {
    if to <= from {
        return 0;
    }
    let mut months = i64::from(to.year() - from.year()) * 12 + i64::from(to.month()) - i64::from(from.month());
    if to.day() > from.day() {
        months += 1;
    }
    months.max(1)
}

/// A term lasts at least one month.
fn term_months(start: NaiveDate, end: NaiveDate) -> i64 {
    months_started(start, end).max(1)
}

/// The default term of a paid tier: its commitment, or one billing period.
fn default_term_months(tier: &Tier, period: BillingPeriod) -> u32 {
    match (tier.commitment_months, period) {
        (0, BillingPeriod::Monthly) => 1,
        (0, BillingPeriod::Yearly) => 12,
        (n, _) => n,
    }
}

/// Plans a tier change. Upgrade or downgrade is decided by tier rank (level, then
/// monthly price), never by price per day; moving back onto a paid tier from a
/// cancelled or expired subscription is a reactivation; the same tier again is a
/// renewal (new term, current price).
pub fn plan_tier_change(
    partner: &Partner,
    change: &TierChange,
    catalog: Catalog<'_>,
    ctx: &TransitionContext,
) -> Result<Transition, SubscriptionError> {
    check_version(partner, change.version)?;
    let to =
        catalog.active(&change.tier).ok_or_else(|| ValidationError::single("tier", "no active tier with this id"))?;
    let from = catalog.any(&partner.engagement_tier);
    let mut after = partner.clone();
    after.engagement_tier = to.tier_id.clone();
    after.currency = to.currency.clone();
    after.cancellation_date = None;
    after.cancellation_reason = None;

    if let Some(conversion) = trial_conversion(partner, change, to, catalog, ctx) {
        return Ok(conversion);
    }
    let trial_days = if change.trial {
        Some(to.trial_days.ok_or_else(|| ValidationError::single("trial", "this tier offers no trial"))?)
    } else {
        change.trial_days
    };
    if is_paid(to) {
        let period = change.billing_period.or(partner.billing_period).unwrap_or(BillingPeriod::Monthly);
        let term = default_term_months(to, period);
        // Renewing a running term on the same tier extends it from its end date;
        // anything else starts a new term (today unless given).
        let extends = match (partner.subscription_end_date, change.subscription_start_date) {
            (Some(current_end), None)
                if partner.engagement_tier == to.tier_id && !partner.subscription_status.is_lapsed() =>
            {
                Some(current_end)
            }
            _ => None,
        };
        let start =
            change.subscription_start_date.or(extends.and(partner.subscription_start_date)).unwrap_or(ctx.today);
        let end = change.subscription_end_date.unwrap_or_else(|| add_months(extends.unwrap_or(start), term));
        let mut errors = ValidationError::default();
        if end <= start {
            errors.fields.insert("subscriptionEndDate".into(), "must be after subscriptionStartDate".into());
        }
        if end <= ctx.today {
            errors.fields.insert("subscriptionEndDate".into(), "must be in the future".into());
        }
        let trial_end = trial_days.map(|d| start + chrono::Days::new(u64::from(d)));
        if trial_end.is_some_and(|t| t >= end) {
            errors.fields.insert("trialDays".into(), "the trial must end before the subscription does".into());
        }
        if !errors.fields.is_empty() {
            return Err(errors.into());
        }
        let list_price = to.prices.for_period(period);
        let discount = change.discount_percent.filter(|p| p.basis_points() > 0);
        after.billing_period = Some(period);
        after.subscription_start_date = Some(start);
        after.subscription_end_date = Some(end);
        after.trial_end_date = trial_end.filter(|t| *t > ctx.today);
        after.subscription_status =
            if after.trial_end_date.is_some() { SubscriptionStatus::Trialing } else { SubscriptionStatus::Active };
        after.auto_renewal = change.auto_renewal.unwrap_or(true);
        after.discount_percent = discount;
        after.price_per_period = list_price - discount.map_or(0, |d| d.of(list_price));
        after.price_version = Some(to.price_version);
        if let Some(quoted) = change.quoted {
            after.discount_percent = None;
            after.price_per_period = quoted.price_per_period;
            after.price_version = Some(quoted.price_version);
        }
    } else {
        let paid_only = change.paid_only_fields();
        if !paid_only.is_empty() {
            let fields = paid_only.into_iter().map(|f| (f.to_string(), "must not be set for a free tier".into()));
            return Err(ValidationError { fields: fields.collect() }.into());
        }
        clear_term(&mut after);
        after.subscription_status = SubscriptionStatus::Active;
        after.auto_renewal = change.auto_renewal.unwrap_or(partner.auto_renewal);
    }

    let event = if partner.subscription_status.is_lapsed() && is_paid(to) {
        TransitionEvent::Reactivate
    } else {
        match from.map(|f| f.rank().cmp(&to.rank())) {
            Some(std::cmp::Ordering::Less) | None => TransitionEvent::Upgrade,
            Some(std::cmp::Ordering::Greater) => TransitionEvent::Downgrade,
            Some(std::cmp::Ordering::Equal) => TransitionEvent::Renewal,
        }
    };
    if same_subscription(partner, &after) {
        return Err(SubscriptionError::NoChange);
    }
    Ok(finish(Some(partner), after, event, from, to, catalog, ctx))
}

/// A tier change to the tier a partner is trialling, naming nothing but the tier
/// (and optionally auto-renewal or a reason), converts the trial: the term and
/// price stay, the trial ends today and the partner starts paying. It goes through
/// `finish` like every transition, so MRR, the movement (`new`), statistics and the
/// history record agree.
fn trial_conversion(
    partner: &Partner,
    change: &TierChange,
    to: &Tier,
    catalog: Catalog<'_>,
    ctx: &TransitionContext,
) -> Option<Transition> {
    let converting = partner.subscription_status == SubscriptionStatus::Trialing
        && partner.engagement_tier == to.tier_id
        && change.subscription_start_date.is_none()
        && change.subscription_end_date.is_none()
        && change.billing_period.is_none()
        && change.trial_days.is_none()
        && !change.trial
        && change.discount_percent.is_none();
    if !converting {
        return None;
    }
    let mut after = partner.clone();
    after.trial_end_date = None;
    after.subscription_status = SubscriptionStatus::Active;
    if let Some(auto) = change.auto_renewal {
        after.auto_renewal = auto;
    }
    Some(finish(Some(partner), after, TransitionEvent::TrialConversion, Some(to), to, catalog, ctx))
}

/// Cancels a paid subscription. Without `immediate` the partner keeps the tier to
/// the end of the term (and keeps counting as MRR until then); with it, the
/// partner moves to the default tier now.
pub fn plan_cancel(
    partner: &Partner,
    cancel: &Cancellation,
    catalog: Catalog<'_>,
    ctx: &TransitionContext,
) -> Result<Transition, SubscriptionError> {
    check_version(partner, cancel.version)?;
    match partner.subscription_status {
        SubscriptionStatus::Expired => return Err(SubscriptionError::AlreadyEnded("expired")),
        SubscriptionStatus::Cancelled if !(cancel.immediate && partner.on_paid_term()) => {
            return Err(SubscriptionError::AlreadyEnded("cancelled"))
        }
        _ if !partner.on_paid_term() => return Err(SubscriptionError::NoPaidSubscription),
        _ => {}
    }
    let from = catalog.any(&partner.engagement_tier);
    let mut after = partner.clone();
    after.subscription_status = SubscriptionStatus::Cancelled;
    after.auto_renewal = false;
    after.cancellation_date = Some(ctx.today);
    after.cancellation_reason = Some(cancel.reason.clone());
    let to = if cancel.immediate {
        let fallback = catalog.active(DEFAULT_TIER_ID).ok_or(SubscriptionError::DefaultTierMissing)?;
        after.engagement_tier = fallback.tier_id.clone();
        clear_term(&mut after);
        fallback
    } else {
        from.ok_or(SubscriptionError::DefaultTierMissing)?
    };
    Ok(finish(Some(partner), after, TransitionEvent::Cancel, from, to, catalog, ctx))
}

/// The last day of a trial the daily cron ends when it lapses: a trial on its own
/// (sales-assisted or by staff), not one Stripe bills, whose end Stripe decides
/// (it converts or cancels the subscription, and the webhook follows).
pub fn sweepable_trial_end(p: &Partner) -> Option<NaiveDate> {
    if p.subscription_status != SubscriptionStatus::Trialing || p.stripe_subscription_id.is_some() {
        return None;
    }
    p.trial_end_date
}

/// The end of an unconverted trial: from the day after its last day (when usage
/// already applies the default tier's plan), the partner goes back to the default
/// tier as an active free partner, without the trial's term. `None` when there is
/// no such trial to end (converted, changed, still running, or Stripe's), so the
/// cron can call it blindly and repeatedly.
pub fn plan_trial_end(
    partner: &Partner,
    catalog: Catalog<'_>,
    ctx: &TransitionContext,
) -> Result<Option<Transition>, SubscriptionError> {
    match sweepable_trial_end(partner) {
        Some(last_day) if last_day < ctx.today => {}
        _ => return Ok(None),
    }
    let from = catalog.any(&partner.engagement_tier);
    let fallback = catalog.active(DEFAULT_TIER_ID).ok_or(SubscriptionError::DefaultTierMissing)?;
    let mut after = partner.clone();
    after.engagement_tier = fallback.tier_id.clone();
    clear_term(&mut after);
    after.subscription_status = SubscriptionStatus::Active;
    Ok(Some(finish(Some(partner), after, TransitionEvent::TrialExpired, from, fallback, catalog, ctx)))
}

/// The end of a term: the partner moves to the default tier as `expired`. A term
/// that will not renew expires once its end date has passed; an auto-renewing one
/// only when no payment has moved its end date within `grace_days` after it
/// (`renewal::expiry_due`). `None` when the partner is not due (already free, still
/// inside the term or the grace period), so the cron can call it blindly and repeatedly.
pub fn plan_expiration(
    partner: &Partner,
    catalog: Catalog<'_>,
    ctx: &TransitionContext,
    grace_days: u32,
) -> Result<Option<Transition>, SubscriptionError> {
    if !super::renewal::expiry_due(partner, ctx.today, grace_days) {
        return Ok(None);
    }
    let from = catalog.any(&partner.engagement_tier);
    let fallback = catalog.active(DEFAULT_TIER_ID).ok_or(SubscriptionError::DefaultTierMissing)?;
    let mut after = partner.clone();
    after.engagement_tier = fallback.tier_id.clone();
    clear_term(&mut after);
    after.subscription_status = SubscriptionStatus::Expired;
    Ok(Some(finish(Some(partner), after, TransitionEvent::Expiration, from, fallback, catalog, ctx)))
}

/// A new partner on the default tier: the `signup` transition.
pub fn plan_signup(
    partner_id: &str,
    new: NewPartner,
    catalog: Catalog<'_>,
    ctx: &TransitionContext,
) -> Result<Transition, SubscriptionError> {
    let free = catalog.active(DEFAULT_TIER_ID).ok_or(SubscriptionError::DefaultTierMissing)?;
    let partner = Partner {
        partner_id: partner_id.to_string(),
        company_name: new.company_name,
        primary_email: new.primary_email,
        engagement_tier: free.tier_id.clone(),
        subscription_status: SubscriptionStatus::Active,
        subscription_start_date: None,
        subscription_end_date: None,
        trial_end_date: None,
        billing_period: None,
        auto_renewal: true,
        cancellation_date: None,
        cancellation_reason: None,
        subscription_notes: new.subscription_notes,
        stripe_customer_id: None,
        stripe_subscription_id: None,
        last_payment_date: None,
        last_payment_amount: None,
        payment_status: None,
        assigned_sales_rep: new.assigned_sales_rep,
        signup_date: ctx.today,
        price_per_period: 0,
        price_version: None,
        discount_percent: None,
        mrr: 0,
        currency: free.currency.clone(),
        first_paid_date: None,
        paying_since: None,
        first_trial_date: None,
        churned_date: None,
        churned_from_tier: None,
        churned_mrr: None,
        total_paid: 0,
        payment_failures: 0,
        recent_downgrades: Vec::new(),
        last_contact_date: None,
        last_contact_type: None,
        last_activity_at: ctx.at.clone(),
        churn_risk: ChurnRisk::none(),
        upsell: Upsell::none(),
        scored_on: ctx.today,
        stripe_event_at: None,
        scheduled_change: None,
        locale: new.locale.unwrap_or_default(),
        custom_limits: Default::default(),
        pcr_multiplier: Some(free.pcr_multiplier),
        erasure: None,
        payment_method: None,
        payment_method_event_at: None,
        add_ons: Vec::new(),
        version: 0,
        created_at: ctx.at.clone(),
        created_by: ctx.actor.clone(),
        updated_at: ctx.at.clone(),
        updated_by: ctx.actor.clone(),
    };
    Ok(finish(None, partner, TransitionEvent::Signup, None, free, catalog, ctx))
}

pub(super) fn clear_term(p: &mut Partner) {
    p.subscription_start_date = None;
    p.subscription_end_date = None;
    p.trial_end_date = None;
    p.billing_period = None;
    p.price_per_period = 0;
    p.price_version = None;
    p.discount_percent = None;
}

/// True when `after` would be the same subscription as `before`.
pub(super) fn same_subscription(before: &Partner, after: &Partner) -> bool {
    before.engagement_tier == after.engagement_tier
        && before.subscription_status == after.subscription_status
        && before.subscription_start_date == after.subscription_start_date
        && before.subscription_end_date == after.subscription_end_date
        && before.trial_end_date == after.trial_end_date
        && before.billing_period == after.billing_period
        && before.auto_renewal == after.auto_renewal
        && before.price_per_period == after.price_per_period
}

/// Completes a transition: MRR, movement, history record, statistics, scores and
/// the server-owned bookkeeping fields.
pub(super) fn finish(
    before: Option<&Partner>,
    mut after: Partner,
    event: TransitionEvent,
    from: Option<&Tier>,
    to: &Tier,
    catalog: Catalog<'_>,
    ctx: &TransitionContext,
) -> Transition {
    let previous_mrr = before.map_or(0, |b| b.mrr);
    after.mrr = mrr_of(after.subscription_status, after.price_per_period, after.billing_period);
    let paid_before = before.is_some_and(|b| b.first_paid_date.is_some());
    let kind = MovementKind::classify(previous_mrr, after.mrr, paid_before);
    match kind {
        Some(MovementKind::New) => {
            after.first_paid_date = Some(ctx.today);
            after.paying_since = Some(ctx.today);
        }
        Some(MovementKind::Churn) => {
            after.paying_since = None;
            after.churned_date = Some(ctx.today);
            after.churned_from_tier = before.map(|b| b.engagement_tier.clone());
            after.churned_mrr = Some(previous_mrr);
        }
        Some(MovementKind::Reactivation) => {
            after.paying_since = Some(ctx.today);
            after.churned_date = None;
            after.churned_from_tier = None;
            after.churned_mrr = None;
        }
        _ => {}
    }
    if after.subscription_status == SubscriptionStatus::Trialing && after.first_trial_date.is_none() {
        after.first_trial_date = Some(ctx.today);
    }
    if event.is_downgrade() {
        after.recent_downgrades.push(ctx.today);
        let excess = after.recent_downgrades.len().saturating_sub(RECENT_DOWNGRADES_KEPT);
        after.recent_downgrades.drain(..excess);
    }
    after.version = before.map_or(1, |b| b.version + 1);
    after.updated_at = ctx.at.clone();
    after.updated_by = ctx.actor.clone();
    after.last_activity_at = ctx.at.clone();
    rescore(&mut after, catalog, ctx.today, None);

    let expected_ltv = match (after.subscription_start_date, after.subscription_end_date) {
        (Some(start), Some(end)) => after.mrr * term_months(start, end),
        _ => 0,
    };
    let movement = kind.map(|kind| Movement {
        movement_id: ctx.movement_id.clone(),
        partner_id: after.partner_id.clone(),
        kind,
        amount: after.mrr - previous_mrr,
        previous_mrr,
        new_mrr: after.mrr,
        from_tier: before.map_or_else(|| after.engagement_tier.clone(), |b| b.engagement_tier.clone()),
        to_tier: after.engagement_tier.clone(),
        currency: after.currency.clone(),
        at: ctx.at.clone(),
        transition_id: ctx.transition_id.clone(),
    });
    let record = TierTransition {
        transition_id: ctx.transition_id.clone(),
        partner_id: after.partner_id.clone(),
        user_id: after.partner_id.clone(),
        timestamp: ctx.at.clone(),
        event,
        from_tier: before.map(|b| b.engagement_tier.clone()),
        to_tier: after.engagement_tier.clone(),
        trigger: ctx.trigger.clone(),
        financial_impact: FinancialImpact {
            previous_mrr,
            new_mrr: after.mrr,
            mrr_change: after.mrr - previous_mrr,
            expected_ltv,
        },
        metadata: TransitionMetadata {
            billing_period: after.billing_period,
            previous_status: before.map(|b| b.subscription_status),
            new_status: after.subscription_status,
            subscription_start_date: after.subscription_start_date,
            subscription_end_date: after.subscription_end_date,
            previous_end_date: before.and_then(|b| b.subscription_end_date),
            price_per_period: after.price_per_period,
            price_version: after.price_version,
            currency: after.currency.clone(),
            previous_multiplier: before.and(from).map(|t| t.pcr_multiplier),
            new_multiplier: to.pcr_multiplier,
            movement: kind,
            actor: ctx.actor.clone(),
            request_id: ctx.request_id.clone(),
        },
        amount_paid: None,
        payment_method: None,
    };
    let stats = stats_deltas(before, &after);
    let analytics = transition_delta(before, &after, event, kind.map(|k| (k, after.mrr - previous_mrr)), ctx.today);
    Transition { before: before.cloned(), after, record, movement, stats, analytics }
}

/// Recomputes the stored churn-risk and upsell scores as of `today`. Called on
/// every write to the partner, so the indexed lists are current as of the last
/// change; `usage` is None until usage tracking has data.
pub fn rescore(partner: &mut Partner, catalog: Catalog<'_>, today: NaiveDate, usage: Option<UsageSnapshot>) {
    let tier = catalog.any(&partner.engagement_tier);
    let next = tier.and_then(|t| catalog.next_up(t));
    let last_activity = last_activity_date(partner).unwrap_or(today);
    let input = ScoringInput {
        today,
        tier_id: &partner.engagement_tier,
        paid_tier: tier.is_some_and(is_paid),
        status: partner.subscription_status,
        payment_status: partner.payment_status,
        payment_failures: partner.payment_failures,
        auto_renewal: partner.auto_renewal,
        billing_period: partner.billing_period,
        subscription_end_date: partner.subscription_end_date,
        downgrade_dates: &partner.recent_downgrades,
        last_activity,
        usage,
        next_tier_id: next.map(|t| t.tier_id.as_str()),
        next_tier_monthly_price: next.map(|t| t.prices.monthly),
        mrr: partner.mrr,
    };
    partner.churn_risk = scoring::churn_risk(&input);
    partner.upsell = scoring::upsell(&input);
    partner.scored_on = today;
    partner.pcr_multiplier = tier.map(|t| t.pcr_multiplier);
}

/// The daily rescoring of a partner whose scores move with time alone (an end date
/// coming closer): `Some(after)` when what the indexed lists rank on changes (risk
/// level and probability, factor codes, upsell opportunity, score, recommended tier
/// and reason codes). Wording that only counts the days down is not worth a write;
/// the journey is always scored as of today.
pub fn refresh_scores(partner: &Partner, catalog: Catalog<'_>, by: &Actor) -> Option<Partner> {
    let mut rescored = partner.clone();
    rescore(&mut rescored, catalog, by.today, None);
    fn codes(factors: &[scoring::Factor]) -> Vec<&str> {
        factors.iter().map(|f| f.code.as_str()).collect()
    }
    fn ranked(p: &Partner) -> impl PartialEq + '_ {
        (
            (p.churn_risk.level, p.churn_risk.probability, codes(&p.churn_risk.factors)),
            (p.upsell.opportunity, p.upsell.score, p.upsell.recommended_tier.as_deref(), codes(&p.upsell.reasons)),
        )
    }
    if ranked(partner) == ranked(&rescored) {
        return None;
    }
    Some(touched(partner, rescored, catalog, by))
}

pub fn last_activity_date(partner: &Partner) -> Option<NaiveDate> {
    partner.last_activity_at.get(..10).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
}

fn touched(before: &Partner, mut after: Partner, catalog: Catalog<'_>, by: &Actor) -> Partner {
    after.version = before.version + 1;
    after.updated_at = by.at.clone();
    after.updated_by = by.id.clone();
    rescore(&mut after, catalog, by.today, None);
    after
}

/// Profile fields and the auto-renew switch. Turning auto-renewal back on for a
/// cancelled subscription is refused: undoing a cancellation is a reactivation
/// and goes through a tier change, so it lands in the history.
pub fn edit_profile(
    partner: &Partner,
    patch: &super::partner::PartnerPatch,
    catalog: Catalog<'_>,
    by: &Actor,
) -> Result<Partner, SubscriptionError> {
    check_version(partner, patch.version)?;
    let mut after = partner.clone();
    if let Some(name) = &patch.company_name {
        after.company_name = name.clone();
    }
    if let Some(email) = &patch.primary_email {
        after.primary_email = email.clone();
    }
    if let Some(notes) = &patch.subscription_notes {
        after.subscription_notes = notes.clone();
    }
    if let Some(locale) = patch.locale {
        after.locale = locale;
    }
    if let Some(auto) = patch.auto_renewal {
        if auto && partner.subscription_status == SubscriptionStatus::Cancelled {
            return Err(SubscriptionError::Cancelled);
        }
        after.auto_renewal = auto;
    }
    if after == *partner {
        return Err(SubscriptionError::NoChange);
    }
    Ok(touched(partner, after, catalog, by))
}

pub fn assign_rep(
    partner: &Partner,
    assignment: &super::partner::Assignment,
    catalog: Catalog<'_>,
    by: &Actor,
) -> Result<Partner, SubscriptionError> {
    check_version(partner, assignment.version)?;
    if partner.assigned_sales_rep.as_deref() == Some(assignment.sales_rep.as_str()) {
        return Err(SubscriptionError::NoChange);
    }
    let mut after = partner.clone();
    after.assigned_sales_rep = Some(assignment.sales_rep.clone());
    after.last_activity_at = by.at.clone();
    Ok(touched(partner, after, catalog, by))
}

/// A sales note, and the partner with its last contact and activity moved on.
pub fn add_note(
    partner: &Partner,
    new: &super::partner::NewNote,
    note_id: String,
    catalog: Catalog<'_>,
    by: &Actor,
) -> (Partner, super::partner::SalesNote) {
    let note = super::partner::SalesNote {
        note_id,
        partner_id: partner.partner_id.clone(),
        timestamp: by.at.clone(),
        rep: by.id.clone(),
        note: new.note.clone(),
        next_action: new.next_action.clone(),
        contact_type: new.contact_type.clone(),
    };
    let mut after = partner.clone();
    after.last_contact_date = Some(by.at.clone());
    after.last_contact_type = Some(new.contact_type.clone());
    after.last_activity_at = by.at.clone();
    (touched(partner, after, catalog, by), note)
}

/// The `?dryRun=true` answer (seed 003 §1.3): what the change would do, with
/// nothing written.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TierChangePreview {
    pub dry_run: bool,
    pub partner_id: String,
    pub event: TransitionEvent,
    pub current_tier: TierSide,
    pub new_tier: TierSide,
    pub multiplier_change: f64,
    /// Seed 003's "PCR Impact Preview" ("+4 points" at base 80 for free → gold).
    pub pcr_impact: PcrImpact,
    /// Change of the price per billing period, in cents.
    pub price_change: i64,
    #[serde(rename = "currentMRR")]
    pub current_mrr: i64,
    #[serde(rename = "newMRR")]
    pub new_mrr: i64,
    #[serde(rename = "mrrChange")]
    pub mrr_change: i64,
    pub movement: Option<MovementKind>,
    #[serde(rename = "expectedLTV")]
    pub expected_ltv: i64,
    pub subscription_status: SubscriptionStatus,
    pub subscription_start_date: Option<NaiveDate>,
    pub subscription_end_date: Option<NaiveDate>,
    pub trial_end_date: Option<NaiveDate>,
    pub billing_period: Option<BillingPeriod>,
    pub auto_renewal: bool,
    pub version: u64,
}

/// The PCR points a tier change moves a partner's score by, at seed 003's
/// reference base score of 80. The seed gives two figures, both relative to free
/// (multiplier 1.5): gold (2.5) "+4 points at Base 80" and platinum (5.0) "+14
/// points at Base 80". Both are `base × Δmultiplier / 20` (80 × 1.0 / 20 = 4,
/// 80 × 3.5 / 20 = 14), which is the rule used here for any pair of tiers. The
/// partner's actual score belongs to the PCR scoring system (it reads the new
/// multiplier from the transition event); this is the preview the seed's
/// confirmation modal shows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PcrImpact {
    pub reference_base_score: u32,
    /// Signed, rounded to one decimal.
    pub points_change: f64,
}

/// Seed 003's reference base PCR score.
pub const PCR_REFERENCE_BASE: u32 = 80;
/// Multiplier points per point of base score: `points = base × Δmultiplier / 20`.
const PCR_POINTS_DIVISOR: f64 = 20.0;

impl PcrImpact {
    pub fn at_reference(multiplier_change: f64) -> Self {
        let points = f64::from(PCR_REFERENCE_BASE) * multiplier_change / PCR_POINTS_DIVISOR;
        Self { reference_base_score: PCR_REFERENCE_BASE, points_change: (points * 10.0).round() / 10.0 }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TierSide {
    pub tier_id: String,
    pub name: Option<String>,
    pub pcr_multiplier: Option<f64>,
    pub price_per_period: i64,
    pub billing_period: Option<BillingPeriod>,
}

impl Transition {
    pub fn preview(&self, catalog: Catalog<'_>) -> TierChangePreview {
        let side = |p: &Partner| {
            let tier = catalog.any(&p.engagement_tier);
            TierSide {
                tier_id: p.engagement_tier.clone(),
                name: tier.map(|t| t.name.clone()),
                pcr_multiplier: tier.map(|t| t.pcr_multiplier),
                price_per_period: p.price_per_period,
                billing_period: p.billing_period,
            }
        };
        let before = self.before.as_ref().unwrap_or(&self.after);
        let (current, new) = (side(before), side(&self.after));
        let multiplier_change = match (current.pcr_multiplier, new.pcr_multiplier) {
            (Some(a), Some(b)) => ((b - a) * 100.0).round() / 100.0,
            _ => 0.0,
        };
        let a = &self.after;
        TierChangePreview {
            dry_run: true,
            partner_id: a.partner_id.clone(),
            event: self.record.event,
            price_change: new.price_per_period - current.price_per_period,
            current_tier: current,
            new_tier: new,
            multiplier_change,
            pcr_impact: PcrImpact::at_reference(multiplier_change),
            current_mrr: self.record.financial_impact.previous_mrr,
            new_mrr: self.record.financial_impact.new_mrr,
            mrr_change: self.record.financial_impact.mrr_change,
            movement: self.record.metadata.movement,
            expected_ltv: self.record.financial_impact.expected_ltv,
            subscription_status: a.subscription_status,
            subscription_start_date: a.subscription_start_date,
            subscription_end_date: a.subscription_end_date,
            trial_end_date: a.trial_end_date,
            billing_period: a.billing_period,
            auto_renewal: a.auto_renewal,
            version: before.version,
        }
    }
}

#[cfg(test)]
mod pcr_tests {
    use super::PcrImpact;

    #[test]
    fn seed_003s_pcr_points_at_base_80() {
        assert_eq!(PcrImpact::at_reference(2.5 - 1.5).points_change, 4.0, "free → gold: +4");
        assert_eq!(PcrImpact::at_reference(5.0 - 1.5).points_change, 14.0, "free → platinum: +14");
        assert_eq!(PcrImpact::at_reference(5.0 - 2.5).points_change, 10.0, "gold → platinum");
        assert_eq!(PcrImpact::at_reference(1.5 - 5.0).points_change, -14.0, "a downgrade loses them");
        assert_eq!(PcrImpact::at_reference(0.0).reference_base_score, 80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::defaults::default_tiers;
    use serde_json::json;

    fn catalog() -> Vec<Tier> {
        let change = crate::domain::actor::Actor::fixture("seed", "2026-01-01T00:00:00Z");
        default_tiers().into_iter().map(|t| t.into_tier(&change)).collect()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn ctx(today: &str) -> TransitionContext {
        TransitionContext {
            today: day(today),
            at: format!("{today}T10:00:00.000Z"),
            actor: "mgr-1".into(),
            request_id: None,
            transition_id: format!("tr-{today}"),
            movement_id: format!("mv-{today}"),
            trigger: Trigger {
                trigger_type: TriggerType::SalesAssisted,
                sales_rep: Some("mgr-1".into()),
                promotion_id: None,
                reason: None,
            },
        }
    }

    fn signup(tiers: &[Tier]) -> Partner {
        let new = NewPartner::parse(&json!({"companyName": "BuildPro", "primaryEmail": "ops@buildpro.com"})).unwrap();
        plan_signup("prt_1", new, Catalog::new(tiers), &ctx("2026-01-10")).unwrap().after
    }

    fn change(tier: &str) -> TierChange {
        TierChange { tier: tier.into(), ..TierChange::default() }
    }

    #[test]
    fn signup_lands_on_free_with_one_member_and_no_mrr() {
        let tiers = catalog();
        let t = plan_signup(
            "prt_1",
            NewPartner::parse(&json!({"companyName": "A", "primaryEmail": "a@b.co"})).unwrap(),
            Catalog::new(&tiers),
            &ctx("2026-01-10"),
        )
        .unwrap();
        assert_eq!(t.after.engagement_tier, "free");
        assert_eq!(t.after.version, 1);
        assert_eq!(t.record.event, TransitionEvent::Signup);
        assert!(t.movement.is_none());
        assert_eq!(t.stats.len(), 1);
        assert_eq!(t.stats[0].1.member_count, 1);
        assert_eq!(t.stats[0].1.mrr, 0);
    }

    #[test]
    fn first_paid_tier_is_an_upgrade_and_new_mrr_with_commitment_dates() {
        let tiers = catalog();
        let p = signup(&tiers);
        let t = plan_tier_change(&p, &change("gold"), Catalog::new(&tiers), &ctx("2026-01-31")).unwrap();
        assert_eq!(t.record.event, TransitionEvent::Upgrade);
        assert_eq!(t.after.subscription_start_date, Some(day("2026-01-31")));
        // 12-month commitment, end of month clamped by the calendar.
        assert_eq!(t.after.subscription_end_date, Some(day("2027-01-31")));
        assert_eq!(t.after.mrr, 360_000);
        let m = t.movement.as_ref().unwrap();
        assert_eq!((m.kind, m.amount), (MovementKind::New, 360_000));
        assert_eq!(t.record.financial_impact.expected_ltv, 360_000 * 12);
        assert_eq!(t.after.first_paid_date, Some(day("2026-01-31")));
        // free loses a member, gold gains one with its MRR.
        let free = t.stats.iter().find(|(k, _)| k == "free").unwrap().1;
        let gold = t.stats.iter().find(|(k, _)| k == "gold").unwrap().1;
        assert_eq!((free.member_count, gold.member_count, gold.mrr, gold.monthly_count), (-1, 1, 360_000, 1));
    }

    #[test]
    fn rank_decides_direction_not_price_per_day() {
        let tiers = catalog();
        let p = signup(&tiers);
        let c = Catalog::new(&tiers);
        let plat = plan_tier_change(&p, &change("platinum"), c, &ctx("2026-02-01")).unwrap().after;
        // Platinum yearly costs less per day than gold monthly would not matter: rank rules.
        let gold_yearly = TierChange { billing_period: Some(BillingPeriod::Yearly), ..change("gold") };
        let down = plan_tier_change(&plat, &gold_yearly, c, &ctx("2026-03-01")).unwrap();
        assert_eq!(down.record.event, TransitionEvent::Downgrade);
        assert_eq!(down.movement.as_ref().unwrap().kind, MovementKind::Contraction);
        assert_eq!(down.after.mrr, 360_000); // 4,320,000 / 12
        assert_eq!(down.after.recent_downgrades, vec![day("2026-03-01")]);
    }

    #[test]
    fn trials_are_not_mrr_and_discounts_to_zero_are_not_paying() {
        let tiers = catalog();
        let p = signup(&tiers);
        let c = Catalog::new(&tiers);
        let trial = TierChange { trial_days: Some(14), ..change("gold") };
        let t = plan_tier_change(&p, &trial, c, &ctx("2026-02-01")).unwrap();
        assert_eq!(t.after.subscription_status, SubscriptionStatus::Trialing);
        assert_eq!(t.after.mrr, 0);
        assert!(t.movement.is_none());
        let free_ride =
            TierChange { discount_percent: Some(Percent::from_basis_points(10_000).unwrap()), ..change("gold") };
        let t = plan_tier_change(&p, &free_ride, c, &ctx("2026-02-01")).unwrap();
        assert_eq!((t.after.price_per_period, t.after.mrr), (0, 0));
        let half = TierChange { discount_percent: Some(Percent::from_basis_points(1250).unwrap()), ..change("gold") };
        let t = plan_tier_change(&p, &half, c, &ctx("2026-02-01")).unwrap();
        assert_eq!(t.after.price_per_period, 315_000); // 360,000 − 45,000
    }

    #[test]
    fn a_lapsed_trial_ends_on_the_default_tier_the_day_after_its_last_day() {
        let tiers = catalog();
        let c = Catalog::new(&tiers);
        let trial = TierChange { trial_days: Some(14), ..change("gold") };
        let trialing = plan_tier_change(&signup(&tiers), &trial, c, &ctx("2026-02-01")).unwrap().after;
        assert_eq!(sweepable_trial_end(&trialing), Some(day("2026-02-15")));
        // Its last day is still a trial day.
        assert!(plan_trial_end(&trialing, c, &ctx("2026-02-15")).unwrap().is_none());
        let t = plan_trial_end(&trialing, c, &ctx("2026-02-16")).unwrap().expect("due");
        assert_eq!(t.record.event, TransitionEvent::TrialExpired);
        assert_eq!(
            (t.after.engagement_tier.as_str(), t.after.subscription_status, t.after.mrr),
            ("free", SubscriptionStatus::Active, 0)
        );
        assert_eq!((t.after.subscription_end_date, t.after.trial_end_date, t.after.billing_period), (None, None, None));
        assert!(t.movement.is_none(), "a trial was never MRR");
        assert_eq!(t.after.first_trial_date, trialing.first_trial_date, "still a partner who trialled");
        let gold = t.stats.iter().find(|(k, _)| k == "gold").unwrap().1;
        let free = t.stats.iter().find(|(k, _)| k == "free").unwrap().1;
        assert_eq!((gold.member_count, gold.trialing_count, free.member_count), (-1, -1, 1));
        // Nothing to end once it is ended, converted, or billed by Stripe.
        assert!(plan_trial_end(&t.after, c, &ctx("2026-02-17")).unwrap().is_none());
        let converted = plan_tier_change(&trialing, &change("gold"), c, &ctx("2026-02-10")).unwrap().after;
        assert_eq!(converted.subscription_status, SubscriptionStatus::Active);
        assert!(plan_trial_end(&converted, c, &ctx("2026-03-01")).unwrap().is_none());
        let stripes = Partner { stripe_subscription_id: Some("sub_1".into()), ..trialing };
        assert_eq!(sweepable_trial_end(&stripes), None);
        assert!(plan_trial_end(&stripes, c, &ctx("2026-03-01")).unwrap().is_none());
    }

    #[test]
    fn free_tier_clears_dates_and_refuses_paid_only_fields() {
        let tiers = catalog();
        let c = Catalog::new(&tiers);
        let gold = plan_tier_change(&signup(&tiers), &change("gold"), c, &ctx("2026-02-01")).unwrap().after;
        let t = plan_tier_change(&gold, &change("free"), c, &ctx("2026-03-01")).unwrap();
        assert_eq!(t.after.subscription_end_date, None);
        assert_eq!(t.after.billing_period, None);
        assert_eq!(t.movement.as_ref().unwrap().kind, MovementKind::Churn);
        assert_eq!(t.after.churned_date, Some(day("2026-03-01")));
        let bad = TierChange { subscription_end_date: Some(day("2027-01-01")), ..change("free") };
        let Err(SubscriptionError::Invalid(e)) = plan_tier_change(&gold, &bad, c, &ctx("2026-03-01")) else {
            panic!("expected a field error")
        };
        assert!(e.fields.contains_key("subscriptionEndDate"));
    }

    #[test]
    fn unknown_or_archived_tiers_and_stale_versions_are_refused() {
        let mut tiers = catalog();
        tiers[2].status = TierStatus::Archived;
        let c = Catalog::new(&tiers);
        let p = signup(&tiers);
        assert!(matches!(
            plan_tier_change(&p, &change("platinum"), c, &ctx("2026-02-01")),
            Err(SubscriptionError::Invalid(_))
        ));
        assert!(matches!(
            plan_tier_change(&p, &change("nope"), c, &ctx("2026-02-01")),
            Err(SubscriptionError::Invalid(_))
        ));
        let stale = TierChange { version: Some(7), ..change("gold") };
        assert!(matches!(
            plan_tier_change(&p, &stale, c, &ctx("2026-02-01")),
            Err(SubscriptionError::VersionConflict { current: Some(1) })
        ));
        assert!(matches!(
            plan_tier_change(&p, &change("free"), c, &ctx("2026-02-01")),
            Err(SubscriptionError::NoChange)
        ));
    }

    #[test]
    fn end_dates_must_follow_start_and_lie_ahead() {
        let tiers = catalog();
        let c = Catalog::new(&tiers);
        let p = signup(&tiers);
        let past = TierChange {
            subscription_start_date: Some(day("2025-01-01")),
            subscription_end_date: Some(day("2025-06-01")),
            ..change("gold")
        };
        assert!(matches!(plan_tier_change(&p, &past, c, &ctx("2026-02-01")), Err(SubscriptionError::Invalid(_))));
        let backwards =
            json!({"tier": "gold", "subscriptionStartDate": "2026-05-01", "subscriptionEndDate": "2026-04-01"});
        assert!(TierChange::parse(&backwards).unwrap_err().fields.contains_key("subscriptionEndDate"));
    }

    #[test]
    fn cancel_keeps_the_term_unless_immediate_then_expiry_churns() {
        let tiers = catalog();
        let c = Catalog::new(&tiers);
        let gold = plan_tier_change(&signup(&tiers), &change("gold"), c, &ctx("2026-02-01")).unwrap().after;
        let notice = Cancellation { reason: "budget".into(), immediate: false, version: None };
        let t = plan_cancel(&gold, &notice, c, &ctx("2026-03-01")).unwrap();
        assert_eq!(t.after.engagement_tier, "gold");
        assert_eq!(t.after.subscription_status, SubscriptionStatus::Cancelled);
        assert_eq!(t.after.mrr, 360_000);
        assert!(t.movement.is_none());
        let cancelled = t.after;
        assert!(matches!(
            plan_cancel(&cancelled, &notice, c, &ctx("2026-03-02")),
            Err(SubscriptionError::AlreadyEnded(_))
        ));
        // Nothing is due inside the term; after it the partner expires to free.
        assert!(plan_expiration(&cancelled, c, &ctx("2027-02-01"), 14).unwrap().is_none());
        let e = plan_expiration(&cancelled, c, &ctx("2027-02-02"), 14).unwrap().unwrap();
        assert_eq!(
            (e.after.engagement_tier.as_str(), e.after.subscription_status),
            ("free", SubscriptionStatus::Expired)
        );
        assert_eq!(e.movement.as_ref().unwrap().kind, MovementKind::Churn);
        // Coming back is a reactivation, both as event and as movement.
        let back = plan_tier_change(&e.after, &change("gold"), c, &ctx("2027-03-01")).unwrap();
        assert_eq!(back.record.event, TransitionEvent::Reactivate);
        assert_eq!(back.movement.as_ref().unwrap().kind, MovementKind::Reactivation);
        assert_eq!(back.after.churned_date, None);

        let now = Cancellation { immediate: true, ..notice };
        let t = plan_cancel(&gold, &now, c, &ctx("2026-03-01")).unwrap();
        assert_eq!(t.after.engagement_tier, "free");
        assert_eq!(t.movement.as_ref().unwrap().amount, -360_000);
        let free = signup(&tiers);
        assert!(matches!(plan_cancel(&free, &now, c, &ctx("2026-03-01")), Err(SubscriptionError::NoPaidSubscription)));
    }

    #[test]
    fn renewing_subscriptions_expire_only_after_the_grace_period() {
        let tiers = catalog();
        let c = Catalog::new(&tiers);
        let gold = plan_tier_change(&signup(&tiers), &change("gold"), c, &ctx("2026-02-01")).unwrap().after;
        assert!(gold.auto_renewal);
        // Ends 2027-02-01; 14 days of grace for the renewal payment.
        assert!(plan_expiration(&gold, c, &ctx("2027-02-15"), 14).unwrap().is_none());
        assert!(plan_expiration(&gold, c, &ctx("2027-02-16"), 14).unwrap().is_some());
    }

    #[test]
    fn renewing_the_same_tier_extends_the_term_from_its_end() {
        let tiers = catalog();
        let c = Catalog::new(&tiers);
        let gold = plan_tier_change(&signup(&tiers), &change("gold"), c, &ctx("2026-02-01")).unwrap().after;
        let renewed = plan_tier_change(&gold, &change("gold"), c, &ctx("2027-01-20")).unwrap();
        assert_eq!(renewed.record.event, TransitionEvent::Renewal);
        assert_eq!(renewed.after.subscription_start_date, Some(day("2026-02-01")));
        assert_eq!(renewed.after.subscription_end_date, Some(day("2028-02-01")));
        assert!(renewed.movement.is_none());
        // After a lapse the same tier is a fresh term from today.
        let lapsed = plan_cancel(
            &gold,
            &Cancellation { reason: "r".into(), immediate: true, version: None },
            c,
            &ctx("2026-03-01"),
        )
        .unwrap()
        .after;
        let back = plan_tier_change(&lapsed, &change("gold"), c, &ctx("2026-04-01")).unwrap().after;
        assert_eq!(back.subscription_start_date, Some(day("2026-04-01")));
    }

    #[test]
    fn term_months_count_started_months() {
        assert_eq!(term_months(day("2026-01-31"), day("2027-01-31")), 12);
        assert_eq!(term_months(day("2026-01-15"), day("2026-02-20")), 2);
        assert_eq!(term_months(day("2026-01-15"), day("2026-01-16")), 1);
    }
}
