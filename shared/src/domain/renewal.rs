//! The daily expiry job's rules (seed 003 §2.2), pure: which partner is due for
//! which renewal reminder on a date, when a term has run out (with the grace
//! period for auto-renewing terms), how the reminder offsets are configured, and
//! the summary a run reports. The job itself (`functions/expiry-cron`) reads the
//! windows, claims markers, sends and transitions; see docs/cron.md.

use super::locale::Locale;
use super::money::BillingPeriod;
use super::partner::{Partner, SubscriptionStatus};
use super::tier::is_paid;
use super::tier::Tier;
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Stripe retries a failed renewal for about two weeks (smart retries); an
/// auto-renewing term is only expired once that is over.
pub const DEFAULT_GRACE_DAYS: u32 = 14;
/// `RENEWAL_REMINDER_DAYS` when unset: the 30-day notice and the 7-day urgent one.
pub const DEFAULT_REMINDER_DAYS: &str = "30,7";
/// Longest reminder offset accepted (a year ahead).
const MAX_REMINDER_DAYS: u32 = 366;

/// What a marker stands for: one email per (partner, term end date, kind).
/// The names stay the same whatever offsets a tier is configured with: the first
/// notice is always `renewal_reminder_30`, the urgent one `renewal_urgent_7`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    #[serde(rename = "renewal_reminder_30")]
    RenewalReminder30,
    #[serde(rename = "renewal_urgent_7")]
    RenewalUrgent7,
    SubscriptionExpired,
}

impl NoticeKind {
    pub const ALL: [Self; 3] = [Self::RenewalReminder30, Self::RenewalUrgent7, Self::SubscriptionExpired];

    pub fn as_str(self) -> &'static str {
        crate::domain::wire::wire_name(&self)
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What a notice email says about the term, taken from the partner when the notice is
/// claimed. The expiry notice is sent after the partner has moved to the free tier, so
/// its marker keeps these (the term as it was). No personal data: who the email goes
/// to is `Recipient`, read from the partner record when the email is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticeDetails {
    pub tier_id: String,
    pub tier_name: String,
    pub end_date: NaiveDate,
    pub start_date: Option<NaiveDate>,
    /// Cents per billing period.
    pub price_per_period: i64,
    pub currency: String,
    pub billing_period: Option<BillingPeriod>,
    pub auto_renewal: bool,
}

impl NoticeDetails {
    /// `None` when the partner has no term to speak of.
    pub fn of(partner: &Partner, tier: Option<&Tier>) -> Option<Self> {
        Some(Self {
            tier_id: partner.engagement_tier.clone(),
            tier_name: tier.map_or_else(|| partner.engagement_tier.clone(), |t| t.name.clone()),
            end_date: partner.subscription_end_date?,
            start_date: partner.subscription_start_date,
            price_per_period: partner.price_per_period,
            currency: partner.currency.clone(),
            billing_period: partner.billing_period,
            auto_renewal: partner.auto_renewal && partner.subscription_status != SubscriptionStatus::Cancelled,
        })
    }
}

/// Who a notice goes to and how it is written, from the partner record as it is when
/// the email is sent (an expiry leaves these unchanged). Never stored in a marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub primary_email: String,
    pub company_name: String,
    pub locale: Locale,
}

impl Recipient {
    pub fn of(partner: &Partner) -> Self {
        Self {
            primary_email: partner.primary_email.clone(),
            company_name: partner.company_name.clone(),
            locale: partner.locale,
        }
    }
}

/// When the two reminders go out, in days before the term's end date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReminderOffsets {
    /// The first notice: sent when `urgent < days left <= notice`.
    pub notice: u32,
    /// The urgent notice: sent when `0 <= days left <= urgent`.
    pub urgent: u32,
}

impl Default for ReminderOffsets {
    fn default() -> Self {
        Self { notice: 30, urgent: 7 }
    }
}

impl ReminderOffsets {
    /// `"30,7"`: the notice offset, then the urgent one, in days, notice > urgent.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let parts: Vec<&str> = raw.split(',').map(str::trim).collect();
        let [notice, urgent] = parts.as_slice() else {
            return Err(format!("{raw:?}: expected two day counts such as \"30,7\""));
        };
        let day = |s: &str| {
            s.parse::<u32>()
                .ok()
                .filter(|d| *d <= MAX_REMINDER_DAYS)
                .ok_or_else(|| format!("{s:?} is not a day count between 0 and {MAX_REMINDER_DAYS}"))
        };
        let (notice, urgent) = (day(notice)?, day(urgent)?);
        if notice <= urgent {
            return Err(format!("{raw:?}: the first offset must be larger than the urgent one"));
        }
        Ok(Self { notice, urgent })
    }
}

/// Reminder offsets by tier: the default (`RENEWAL_REMINDER_DAYS`) and per-tier
/// overrides (`RENEWAL_REMINDER_DAYS_BY_TIER`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReminderSchedule {
    pub default: ReminderOffsets,
    pub by_tier: BTreeMap<String, ReminderOffsets>,
}

impl ReminderSchedule {
    /// `default` as `"30,7"` (empty: 30,7); `by_tier` as `"platinum=60,14; gold=45,10"`
    /// (tiers separated by `;`, empty: none).
    pub fn parse(default: &str, by_tier: &str) -> Result<Self, String> {
        let default =
            if default.trim().is_empty() { ReminderOffsets::default() } else { ReminderOffsets::parse(default)? };
        let mut map = BTreeMap::new();
        for entry in by_tier.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (tier, offsets) =
                entry.split_once('=').ok_or_else(|| format!("{entry:?}: expected tier=notice,urgent"))?;
            let tier = tier.trim();
            let valid_id = !tier.is_empty()
                && tier.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !valid_id {
                return Err(format!("{tier:?} is not a tier id"));
            }
            if map.insert(tier.to_string(), ReminderOffsets::parse(offsets)?).is_some() {
                return Err(format!("tier {tier} is listed twice"));
            }
        }
        Ok(Self { default, by_tier: map })
    }

    pub fn for_tier(&self, tier_id: &str) -> ReminderOffsets {
        self.by_tier.get(tier_id).copied().unwrap_or(self.default)
    }

    /// How far ahead the reminder window reaches: the largest notice offset.
    pub fn horizon_days(&self) -> u32 {
        self.by_tier.values().map(|o| o.notice).fold(self.default.notice, u32::max)
    }
}

/// The grace period's last day for an auto-renewing term ending on `end`.
fn grace_end(end: NaiveDate, grace_days: u32) -> NaiveDate {
    end.checked_add_days(Days::new(u64::from(grace_days))).unwrap_or(NaiveDate::MAX)
}

/// Whether the term has run out on `today` (the expiry rule `plan_expiration` applies):
/// - a term that will not renew (auto-renewal off, or cancelled) expires the day after
///   its end date: `end < today`;
/// - an auto-renewing term expires only when no payment has moved its end date within
///   the grace period: `end + grace < today`. A renewal payment extends the end date,
///   which takes the partner out of this rule by itself.
pub fn expiry_due(partner: &Partner, today: NaiveDate, grace_days: u32) -> bool {
    let Some(end) = partner.subscription_end_date else { return false };
    if partner.subscription_status == SubscriptionStatus::Expired {
        return false;
    }
    let renewing = partner.auto_renewal && partner.subscription_status != SubscriptionStatus::Cancelled;
    let last_day = if renewing { grace_end(end, grace_days) } else { end };
    last_day < today
}

/// Months one renewal adds: for a Stripe-billed subscription, one billing period
/// (Stripe renews period by period); otherwise the tier's commitment, or one billing
/// period when the tier has none (as a sales-assisted renewal extends the term).
pub fn renewal_step_months(partner: &Partner, tier: &Tier) -> u32 {
    let period_months = match partner.billing_period.unwrap_or(BillingPeriod::Monthly) {
        BillingPeriod::Monthly => 1,
        BillingPeriod::Yearly => 12,
    };
    match (partner.stripe_subscription_id.is_some(), tier.commitment_months) {
        (true, _) | (false, 0) => period_months,
        (false, n) => n,
    }
}

/// A term that renews every month by itself: a Stripe-billed subscription billed
/// monthly, auto-renewing, neither cancelled nor expired. Whatever the catalog says it
/// never gets a reminder (`reminder_due` answers `RenewsMonthly`: Stripe renews period
/// by period), and it expires only after the grace period. The index keeps these
/// terms apart from the reminder candidates (`SUBRENEW#`, see `store::keys`), so a
/// run's reminder window does not read them. Other one-month terms (no commitment,
/// not Stripe-billed) depend on the tier's `commitmentMonths`, which an admin can
/// edit, so they stay with the candidates: the index never depends on the catalog.
pub fn renews_monthly_by_itself(partner: &Partner) -> bool {
    partner.stripe_subscription_id.is_some()
        && partner.auto_renewal
        && !partner.subscription_status.is_lapsed()
        && partner.billing_period.unwrap_or(BillingPeriod::Monthly) == BillingPeriod::Monthly
}

/// Why a partner in the window gets no reminder today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoReminder {
    /// Not `active` (trialing, past due, cancelled, expired).
    NotActive,
    /// On a free tier, or one missing from the catalog.
    NotPaid,
    NoTerm,
    /// The end date has passed (the expiry rule decides what happens).
    Ended,
    /// More days left than the notice offset.
    TooEarly,
    /// An auto-renewing term that renews every month: its end date is only the next
    /// charge, so a reminder would go out every month. The renewal receipt (and, when a
    /// payment fails, the dunning emails) are its notices.
    RenewsMonthly,
}

/// Which reminder a partner is due on `today`, if any: only active subscriptions on a
/// paid tier; the urgent notice when `0 <= days left <= urgent`, the first notice when
/// `urgent < days left <= notice`. Whether it was already sent is the marker's business.
pub fn reminder_due(
    partner: &Partner,
    tier: Option<&Tier>,
    today: NaiveDate,
    schedule: &ReminderSchedule,
) -> Result<(NoticeKind, i64), NoReminder> {
    if partner.subscription_status != SubscriptionStatus::Active {
        return Err(NoReminder::NotActive);
    }
    let tier = tier.filter(|t| is_paid(t)).ok_or(NoReminder::NotPaid)?;
    let end = partner.subscription_end_date.ok_or(NoReminder::NoTerm)?;
    let days_left = (end - today).num_days();
    if days_left < 0 {
        return Err(NoReminder::Ended);
    }
    if partner.auto_renewal && renewal_step_months(partner, tier) <= 1 {
        return Err(NoReminder::RenewsMonthly);
    }
    let offsets = schedule.for_tier(&tier.tier_id);
    if days_left <= i64::from(offsets.urgent) {
        Ok((NoticeKind::RenewalUrgent7, days_left))
    } else if days_left <= i64::from(offsets.notice) {
        Ok((NoticeKind::RenewalReminder30, days_left))
    } else {
        Err(NoReminder::TooEarly)
    }
}

impl NoReminder {
    pub fn code(self) -> &'static str {
        match self {
            Self::NotActive => "not_active",
            Self::NotPaid => "not_paid",
            Self::NoTerm => "no_term",
            Self::Ended => "ended",
            Self::TooEarly => "too_early",
            Self::RenewsMonthly => "renews_monthly",
        }
    }
}

/// Why a reminder cannot be sent now (staff "send reminder", bulk reminders).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReminderError {
    #[error("no renewal reminder applies to this partner ({})", .0.code())]
    NotRemindable(NoReminder),
    #[error("this reminder was already sent today")]
    AlreadySentToday,
    #[error("this reminder is being sent by another run")]
    InProgress,
    #[error("the partner's term changed; read it again")]
    PartnerChanged,
    #[error("the mail provider did not take the email: {0}")]
    Mail(String),
    #[error("the partner's daily email cap is reached")]
    Capped,
}

/// The reminder a staff member's "send reminder now" sends: the notice the cron
/// would send today, from the same rules and offsets (`reminder_due`), and the first
/// notice (`renewal_reminder_30`) when the term is further off than the notice
/// offset (staff may remind early). A term that renews every month by itself is
/// refused like the cron refuses it: the "expires" wording would be wrong.
pub fn manual_reminder(
    partner: &Partner,
    tier: Option<&Tier>,
    today: NaiveDate,
    schedule: &ReminderSchedule,
) -> Result<(NoticeKind, i64), NoReminder> {
    match reminder_due(partner, tier, today, schedule) {
        Err(NoReminder::TooEarly) => {
            let days_left = partner.subscription_end_date.map_or(0, |end| (end - today).num_days());
            Ok((NoticeKind::RenewalReminder30, days_left))
        }
        other => other,
    }
}

/// The end dates one run reads: from the `SUBEND#{yyyy-mm}` index (the reminder
/// candidates) back far enough to catch terms whose grace period ended while runs were
/// missed (`lookback_days`), forward to the largest reminder offset; from the
/// `SUBRENEW#{yyyy-mm}` index (terms that renew monthly by themselves, never reminded)
/// only the end dates whose grace period is over (`..=renewing_to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The latest end date of a self-renewing term that can be due for expiry today:
    /// `today − grace − 1` (`expiry_due`: `end + grace < today`).
    pub renewing_to: NaiveDate,
}

impl Window {
    pub fn for_run(today: NaiveDate, schedule: &ReminderSchedule, grace_days: u32, lookback_days: u32) -> Self {
        let back = u64::from(grace_days) + u64::from(lookback_days) + 1;
        Self {
            from: today.checked_sub_days(Days::new(back)).unwrap_or(NaiveDate::MIN),
            to: today.checked_add_days(Days::new(u64::from(schedule.horizon_days()))).unwrap_or(NaiveDate::MAX),
            renewing_to: today.checked_sub_days(Days::new(u64::from(grace_days) + 1)).unwrap_or(NaiveDate::MIN),
        }
    }

    /// The `SUBEND#` window cut at month boundaries: one `(from, to)` per month
    /// partition it spans, oldest first.
    pub fn months(&self) -> Vec<(NaiveDate, NaiveDate)> {
        by_month(self.from, self.to)
    }

    /// The `SUBRENEW#` window (`from..=renewing_to`) cut the same way.
    pub fn renewing_months(&self) -> Vec<(NaiveDate, NaiveDate)> {
        by_month(self.from, self.renewing_to)
    }
}

/// The trial last days one run reads from the `TRIALEND#{yyyy-mm}` index: up to
/// yesterday (a trial runs through its last day), back over `lookback_days` of
/// missed runs; cut at month boundaries, oldest first.
pub fn trial_end_months(today: NaiveDate, lookback_days: u32) -> Vec<(NaiveDate, NaiveDate)> {
    let Some(yesterday) = today.pred_opt() else { return Vec::new() };
    let from = yesterday.checked_sub_days(Days::new(u64::from(lookback_days))).unwrap_or(NaiveDate::MIN);
    by_month(from, yesterday)
}

/// The end dates from `today` to `days` ahead, cut at month boundaries.
pub fn upcoming_end_months(today: NaiveDate, days: i64) -> Vec<(NaiveDate, NaiveDate)> {
    let last = today.checked_add_days(Days::new(days.max(0) as u64)).unwrap_or(NaiveDate::MAX);
    by_month(today, last)
}

/// `from..=to` cut at month boundaries, oldest first; empty when `to < from`.
pub fn month_ranges(from: NaiveDate, to: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
    by_month(from, to)
}

/// `from..=to` cut at month boundaries, oldest first; empty when `to < from`.
fn by_month(first: NaiveDate, last: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
    use chrono::Datelike;
    let mut out = Vec::new();
    let mut from = first;
    while from <= last {
        let next_month =
            from.with_day(1).and_then(|d| d.checked_add_months(chrono::Months::new(1))).unwrap_or(NaiveDate::MAX);
        let to = next_month.pred_opt().unwrap_or(next_month).min(last);
        out.push((from, to));
        if next_month == NaiveDate::MAX {
            break;
        }
        from = next_month;
    }
    out
}

/// What one run did, as the Lambda returns it and the dev gateway shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub date: Option<NaiveDate>,
    /// The instant the run's transitions and audit entries carry (from the run date).
    pub run_at: String,
    pub reminders_sent: RemindersSent,
    pub expired: u64,
    pub expiry_emails_sent: u64,
    pub skipped: Skipped,
    pub failed: Failed,
    /// Daily `STATS#{tier}/DAY#{date}` snapshots this run wrote (0 when a run for the
    /// same date already had).
    pub snapshots: u64,
    /// Partner records the window queries returned.
    pub window_partners: u64,
    /// Claims left behind by an interrupted run that this run picked up.
    pub stale_claims_resumed: u64,
    /// DynamoDB read calls (Query pages, GetItem, BatchGetItem) this run made.
    pub dynamodb_reads: u64,
    /// Every DynamoDB call of the run, writes and the mailer's included.
    pub dynamodb_calls: u64,
    /// Further daily steps (quote and promotion expiry, when they exist): name → count.
    pub steps: BTreeMap<String, u64>,
    /// Up to `MAX_ERRORS` failures, by partner id and step; never addresses or names.
    pub errors: Vec<RunError>,
    /// What happened to whom, in the order it happened; not part of the JSON (it can be
    /// long), for tests and logs.
    #[serde(skip)]
    pub actions: Vec<Action>,
}

pub const MAX_ERRORS: usize = 20;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RemindersSent {
    pub renewal_reminder_30: u64,
    pub renewal_urgent_7: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// The marker says this email already went out.
    pub already_sent: u64,
    /// Another run holds a live claim on it (concurrent run).
    pub held_by_another_run: u64,
    /// Auto-renewing monthly terms in the reminder window (see `NoReminder::RenewsMonthly`).
    pub renews_monthly: u64,
    /// The partner changed between the window read and the claim (renewed, cancelled,
    /// expired by a concurrent run).
    pub no_longer_due: u64,
    /// The mailer's per-recipient daily cap held the email back; retried next run.
    pub mail_capped: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failed {
    /// Sends that failed; the claim was released, so the next run retries.
    pub emails: u64,
    /// Expiries that could not be written; the next run retries.
    pub expiries: u64,
    /// Further daily steps (`steps`) that failed.
    pub steps: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunError {
    pub partner_id: String,
    pub step: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub partner_id: String,
    pub what: ActionKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// An email went out (reminder or expiry notice).
    Sent(NoticeKind),
    /// The partner was moved to the default tier as expired.
    Expired,
}

impl RunSummary {
    pub fn error(&mut self, partner_id: &str, step: &'static str, message: impl Into<String>) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(RunError { partner_id: partner_id.to_string(), step, message: message.into() });
        }
    }

    pub fn sent(&mut self, partner_id: &str, kind: NoticeKind) {
        match kind {
            NoticeKind::RenewalReminder30 => self.reminders_sent.renewal_reminder_30 += 1,
            NoticeKind::RenewalUrgent7 => self.reminders_sent.renewal_urgent_7 += 1,
            NoticeKind::SubscriptionExpired => self.expiry_emails_sent += 1,
        }
        self.actions.push(Action { partner_id: partner_id.to_string(), what: ActionKind::Sent(kind) });
    }

    pub fn expired_one(&mut self, partner_id: &str) {
        self.expired += 1;
        self.actions.push(Action { partner_id: partner_id.to_string(), what: ActionKind::Expired });
    }

    pub fn has_failures(&self) -> bool {
        self.failed.emails > 0 || self.failed.expiries > 0 || self.failed.steps > 0
    }

    /// Adds what one part of the run did (one partner's work) to the whole.
    pub fn merge(&mut self, part: RunSummary) {
        let (a, b) = (&mut self.reminders_sent, part.reminders_sent);
        a.renewal_reminder_30 += b.renewal_reminder_30;
        a.renewal_urgent_7 += b.renewal_urgent_7;
        self.expired += part.expired;
        self.expiry_emails_sent += part.expiry_emails_sent;
        let (a, b) = (&mut self.skipped, part.skipped);
        a.already_sent += b.already_sent;
        a.held_by_another_run += b.held_by_another_run;
        a.renews_monthly += b.renews_monthly;
        a.no_longer_due += b.no_longer_due;
        a.mail_capped += b.mail_capped;
        let (a, b) = (&mut self.failed, part.failed);
        a.emails += b.emails;
        a.expiries += b.expiries;
        a.steps += b.steps;
        self.snapshots += part.snapshots;
        self.window_partners += part.window_partners;
        self.stale_claims_resumed += part.stale_claims_resumed;
        self.dynamodb_reads += part.dynamodb_reads;
        self.dynamodb_calls += part.dynamodb_calls;
        for (name, n) in part.steps {
            *self.steps.entry(name).or_default() += n;
        }
        for e in part.errors {
            if self.errors.len() < MAX_ERRORS {
                self.errors.push(e);
            }
        }
        self.actions.extend(part.actions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::defaults::default_tiers;
    use crate::domain::partner::NewPartner;
    use crate::domain::subscription::{
        plan_expiration, plan_signup, plan_tier_change, Catalog, TierChange, TransitionContext, Trigger, TriggerType,
    };
    use serde_json::json;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn tiers() -> Vec<Tier> {
        let change = crate::domain::actor::Actor::fixture("seed", "2026-01-01T00:00:00Z");
        let mut tiers: Vec<Tier> = default_tiers().into_iter().map(|t| t.into_tier(&change)).collect();
        // A paid tier with no commitment: its terms last one billing period.
        let mut flex = tiers[1].clone();
        flex.tier_id = "flex".into();
        flex.commitment_months = 0;
        tiers.push(flex);
        tiers
    }

    fn ctx(today: &str) -> TransitionContext {
        TransitionContext {
            today: day(today),
            at: format!("{today}T06:15:00.000Z"),
            actor: "system:expiry-cron".into(),
            request_id: None,
            transition_id: "tr".into(),
            movement_id: "mv".into(),
            trigger: Trigger {
                trigger_type: TriggerType::Automated,
                sales_rep: None,
                promotion_id: None,
                reason: None,
            },
        }
    }

    /// A partner on `tier` whose term ends on `end`.
    fn on(tiers: &[Tier], tier: &str, end: &str, auto_renewal: bool) -> Partner {
        let new = NewPartner::parse(&json!({"companyName": "A", "primaryEmail": "a@b.co"})).unwrap();
        let p = plan_signup("prt_1", new, Catalog::new(tiers), &ctx("2026-01-01")).unwrap().after;
        let change = TierChange {
            tier: tier.into(),
            subscription_end_date: Some(day(end)),
            auto_renewal: Some(auto_renewal),
            ..TierChange::default()
        };
        plan_tier_change(&p, &change, Catalog::new(tiers), &ctx("2026-01-01")).unwrap().after
    }

    fn due(p: &Partner, tiers: &[Tier], today: &str) -> Result<(NoticeKind, i64), NoReminder> {
        let tier = Catalog::new(tiers).any(&p.engagement_tier);
        reminder_due(p, tier, day(today), &ReminderSchedule::default())
    }

    #[test]
    fn the_windows_follow_seed_003() {
        let tiers = tiers();
        let p = on(&tiers, "gold", "2026-12-31", false);
        use NoticeKind::*;
        let cases = [
            ("2026-11-26", Err(NoReminder::TooEarly)),   // 35 days
            ("2026-11-30", Err(NoReminder::TooEarly)),   // 31 days
            ("2026-12-01", Ok((RenewalReminder30, 30))), // 30 days
            ("2026-12-11", Ok((RenewalReminder30, 20))), // 20 days
            ("2026-12-23", Ok((RenewalReminder30, 8))),  // 8 days
            ("2026-12-24", Ok((RenewalUrgent7, 7))),     // 7 days
            ("2026-12-28", Ok((RenewalUrgent7, 3))),     // 3 days
            ("2026-12-31", Ok((RenewalUrgent7, 0))),     // the last day
            ("2027-01-01", Err(NoReminder::Ended)),      // −1
        ];
        for (today, expected) in cases {
            assert_eq!(due(&p, &tiers, today), expected, "{today}");
        }
    }

    #[test]
    fn only_active_paid_terms_get_reminders() {
        let tiers = tiers();
        let mut p = on(&tiers, "gold", "2026-12-31", false);
        p.subscription_status = SubscriptionStatus::Cancelled;
        assert_eq!(due(&p, &tiers, "2026-12-20"), Err(NoReminder::NotActive));
        p.subscription_status = SubscriptionStatus::PastDue;
        assert_eq!(due(&p, &tiers, "2026-12-20"), Err(NoReminder::NotActive));
        p.subscription_status = SubscriptionStatus::Active;
        p.engagement_tier = "free".into();
        assert_eq!(due(&p, &tiers, "2026-12-20"), Err(NoReminder::NotPaid));
        p.engagement_tier = "gone".into();
        assert_eq!(due(&p, &tiers, "2026-12-20"), Err(NoReminder::NotPaid));
    }

    #[test]
    fn monthly_self_renewing_terms_get_no_reminders_but_longer_or_ending_ones_do() {
        let tiers = tiers();
        // No commitment, monthly, auto-renewing: renews every month by itself.
        let flex = on(&tiers, "flex", "2026-12-31", true);
        assert_eq!(due(&flex, &tiers, "2026-12-28"), Err(NoReminder::RenewsMonthly));
        // The same term set not to renew: it really ends, so the partner is told.
        let ending = on(&tiers, "flex", "2026-12-31", false);
        assert_eq!(due(&ending, &tiers, "2026-12-28"), Ok((NoticeKind::RenewalUrgent7, 3)));
        // A 12-month commitment billed monthly renews yearly: reminders go out.
        let gold = on(&tiers, "gold", "2026-12-31", true);
        assert_eq!(due(&gold, &tiers, "2026-12-28"), Ok((NoticeKind::RenewalUrgent7, 3)));
        // Billed monthly through Stripe, the end date is the next charge: no reminders;
        // billed yearly through Stripe, the yearly charge is announced.
        let mut stripe = gold.clone();
        stripe.stripe_subscription_id = Some("sub_1".into());
        assert_eq!(due(&stripe, &tiers, "2026-12-28"), Err(NoReminder::RenewsMonthly));
        stripe.billing_period = Some(BillingPeriod::Yearly);
        assert_eq!(due(&stripe, &tiers, "2026-12-28"), Ok((NoticeKind::RenewalUrgent7, 3)));
    }

    #[test]
    fn per_tier_offsets_override_the_default() {
        let tiers = tiers();
        let schedule = ReminderSchedule::parse("30,7", "platinum=60,14").unwrap();
        let plat = on(&tiers, "platinum", "2026-12-31", false);
        let gold = on(&tiers, "gold", "2026-12-31", false);
        let tier = |p: &Partner| Catalog::new(&tiers).any(&p.engagement_tier);
        let at = |p: &Partner, d: &str| reminder_due(p, tier(p), day(d), &schedule);
        assert_eq!(at(&plat, "2026-11-01"), Ok((NoticeKind::RenewalReminder30, 60)));
        assert_eq!(at(&plat, "2026-12-17"), Ok((NoticeKind::RenewalUrgent7, 14)));
        assert_eq!(at(&gold, "2026-11-01"), Err(NoReminder::TooEarly));
        assert_eq!(at(&gold, "2026-12-17"), Ok((NoticeKind::RenewalReminder30, 14)));
        assert_eq!(schedule.horizon_days(), 60);
    }

    #[test]
    fn offsets_parse_strictly() {
        let s = ReminderSchedule::parse("", " platinum=60,14 ; gold = 45, 10 ").unwrap();
        assert_eq!(s.default, ReminderOffsets { notice: 30, urgent: 7 });
        assert_eq!(s.for_tier("gold"), ReminderOffsets { notice: 45, urgent: 10 });
        assert_eq!(s.for_tier("other"), s.default);
        for bad in ["7,30", "30", "30,7,1", "x,7", "-1,0", "400,7", "7,7"] {
            assert!(ReminderOffsets::parse(bad).is_err(), "{bad}");
        }
        for bad in ["platinum", "Platinum=60,14", "=60,14", "gold=30,7;gold=40,7"] {
            assert!(ReminderSchedule::parse("30,7", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn non_renewing_terms_expire_the_day_after_their_end() {
        let tiers = tiers();
        let c = Catalog::new(&tiers);
        let p = on(&tiers, "gold", "2026-12-31", false);
        assert!(!expiry_due(&p, day("2026-12-31"), 14));
        assert!(expiry_due(&p, day("2027-01-01"), 14));
        assert!(plan_expiration(&p, c, &ctx("2026-12-31"), 14).unwrap().is_none());
        let t = plan_expiration(&p, c, &ctx("2027-01-01"), 14).unwrap().unwrap();
        assert_eq!(t.after.subscription_status, SubscriptionStatus::Expired);
        assert_eq!(t.after.engagement_tier, "free");
        assert_eq!(t.record.trigger.trigger_type, TriggerType::Automated);
    }

    #[test]
    fn auto_renewing_terms_expire_only_after_the_grace_period() {
        let tiers = tiers();
        let c = Catalog::new(&tiers);
        let mut p = on(&tiers, "gold", "2026-12-31", true);
        // end + 14 = 2027-01-14: still inside the grace period that day.
        assert!(!expiry_due(&p, day("2027-01-14"), 14));
        assert!(plan_expiration(&p, c, &ctx("2027-01-14"), 14).unwrap().is_none());
        assert!(expiry_due(&p, day("2027-01-15"), 14));
        assert!(plan_expiration(&p, c, &ctx("2027-01-15"), 14).unwrap().is_some());
        // No grace: the day after the end, like a non-renewing term.
        assert!(expiry_due(&p, day("2027-01-01"), 0));
        // Past due (Stripe still retrying) follows the same rule.
        p.subscription_status = SubscriptionStatus::PastDue;
        assert!(!expiry_due(&p, day("2027-01-10"), 14));
        // A cancelled term does not renew, whatever the flag says.
        p.subscription_status = SubscriptionStatus::Cancelled;
        assert!(expiry_due(&p, day("2027-01-01"), 14));
        // Free partners and expired ones have nothing to expire.
        p.subscription_end_date = None;
        assert!(!expiry_due(&p, day("2030-01-01"), 14));
    }

    #[test]
    fn a_payment_that_moves_the_end_date_takes_the_term_out_of_expiry() {
        let tiers = tiers();
        let c = Catalog::new(&tiers);
        let p = on(&tiers, "gold", "2026-12-31", true);
        // Renewed inside the grace period: the same tier again extends from the old end.
        let renewed =
            plan_tier_change(&p, &TierChange { tier: "gold".into(), ..Default::default() }, c, &ctx("2027-01-10"))
                .unwrap()
                .after;
        assert_eq!(renewed.subscription_end_date, Some(day("2027-12-31")));
        assert!(!expiry_due(&renewed, day("2027-01-20"), 14));
        assert_eq!(due(&renewed, &tiers, "2027-12-01"), Ok((NoticeKind::RenewalReminder30, 30)));
    }

    #[test]
    fn the_trial_window_ends_yesterday_and_reaches_back_over_missed_runs() {
        assert_eq!(
            trial_end_months(day("2026-03-02"), 31),
            vec![
                (day("2026-01-29"), day("2026-01-31")),
                (day("2026-02-01"), day("2026-02-28")),
                (day("2026-03-01"), day("2026-03-01"))
            ]
        );
        assert_eq!(trial_end_months(day("2026-03-02"), 0), vec![(day("2026-03-01"), day("2026-03-01"))]);
    }

    #[test]
    fn the_window_covers_grace_lookback_and_the_longest_notice_by_month() {
        let schedule = ReminderSchedule::parse("30,7", "platinum=60,14").unwrap();
        let w = Window::for_run(day("2026-12-10"), &schedule, 14, 31);
        assert_eq!(w.from, day("2026-10-25"));
        assert_eq!(w.to, day("2027-02-08"));
        assert_eq!(
            w.months(),
            vec![
                (day("2026-10-25"), day("2026-10-31")),
                (day("2026-11-01"), day("2026-11-30")),
                (day("2026-12-01"), day("2026-12-31")),
                (day("2027-01-01"), day("2027-01-31")),
                (day("2027-02-01"), day("2027-02-08")),
            ]
        );
        // Self-renewing terms: only end dates whose 14 days of grace are over.
        assert_eq!(w.renewing_to, day("2026-11-25"));
        assert_eq!(
            w.renewing_months(),
            vec![(day("2026-10-25"), day("2026-10-31")), (day("2026-11-01"), day("2026-11-25"))]
        );
        let one = Window { from: day("2026-02-03"), to: day("2026-02-03"), renewing_to: day("2026-02-02") };
        assert_eq!(one.months(), vec![(day("2026-02-03"), day("2026-02-03"))]);
        assert_eq!(one.renewing_months(), vec![]);
    }

    #[test]
    fn a_self_renewing_monthly_term_is_never_reminded_whatever_the_catalog() {
        let tiers = tiers();
        let mut p = on(&tiers, "gold", "2026-12-31", true);
        assert!(!renews_monthly_by_itself(&p), "not Stripe-billed: the tier's commitment decides");
        p.stripe_subscription_id = Some("sub_1".into());
        p.billing_period = Some(BillingPeriod::Monthly);
        assert!(renews_monthly_by_itself(&p));
        // Any tier, any commitment, any day up to the end: no reminder.
        for commitment in [0, 1, 12, 24] {
            for tier in &tiers {
                let tier = Tier { commitment_months: commitment, ..tier.clone() };
                for today in ["2026-11-01", "2026-12-01", "2026-12-24", "2026-12-31"] {
                    assert!(reminder_due(&p, Some(&tier), day(today), &ReminderSchedule::default()).is_err());
                }
            }
        }
        // It expires only once the grace period is over: the `SUBRENEW#` window's bound.
        assert!(!expiry_due(&p, day("2027-01-14"), 14));
        assert!(expiry_due(&p, day("2027-01-15"), 14));
        let w = Window::for_run(day("2027-01-15"), &ReminderSchedule::default(), 14, 31);
        assert_eq!(w.renewing_to, day("2026-12-31"));
        // Yearly, not renewing, or cancelled: back with the reminder candidates.
        for change in [
            |p: &mut Partner| p.billing_period = Some(BillingPeriod::Yearly),
            |p: &mut Partner| p.auto_renewal = false,
            |p: &mut Partner| p.subscription_status = SubscriptionStatus::Cancelled,
            |p: &mut Partner| p.stripe_subscription_id = None,
        ] {
            let mut q = p.clone();
            change(&mut q);
            assert!(!renews_monthly_by_itself(&q));
        }
    }

    #[test]
    fn the_summary_keeps_the_agreed_names() {
        let mut s = RunSummary { date: Some(day("2026-12-10")), ..Default::default() };
        s.sent("p1", NoticeKind::RenewalReminder30);
        s.sent("p2", NoticeKind::RenewalUrgent7);
        s.sent("p3", NoticeKind::SubscriptionExpired);
        s.expired_one("p3");
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["date"], "2026-12-10");
        assert_eq!(v["remindersSent"], json!({"renewal_reminder_30": 1, "renewal_urgent_7": 1}));
        assert_eq!((v["expired"].as_u64(), v["expiryEmailsSent"].as_u64()), (Some(1), Some(1)));
        for key in ["skipped", "failed", "snapshots", "dynamodbReads"] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert!(v.get("actions").is_none());
        assert_eq!(s.actions.len(), 4);
        assert_eq!(NoticeKind::parse("renewal_urgent_7"), Some(NoticeKind::RenewalUrgent7));
    }
}
