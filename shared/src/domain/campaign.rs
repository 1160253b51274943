//! Campaign automation (seed 004 `CampaignAutomationService`, `AutomationRule`,
//! `AutomatedCampaign`; docs/campaigns.md).
//!
//! A campaign is data: a trigger (a behaviour Tierdesk already sees, or a date for
//! a broadcast), an audience, content with personalisation tokens and variants, an
//! optional personal offer (a single-use promotion code), channels, a cooldown and a
//! maximum frequency per partner, a schedule and a status.
//!
//! The daily job finds the partners a trigger names (from indexes and day
//! partitions, never a Scan), and for each one this module decides — without I/O —
//! whether the campaign may reach them (`admit`), which variant they get
//! (`variant_for`) and what the message says (`render`). Sending is claimed once
//! per (campaign, partner, occasion) in the store, with the partner's frequency
//! state and daily email count in the same transaction, so a trigger seen twice or
//! a run repeated sends nothing twice.

use crate::domain::experiment;
use crate::domain::validation::{parse, Fields, ValidationError};
use crate::domain::wire::{one_of, wire_name};
use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---- Model -----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// A trial the cron owns ends in `daysBefore` days (`TRIALEND#` index).
    TrialEnding,
    /// A metric crossed 80% of the tier's limit (the usage write's own signal).
    UsageNearLimit,
    /// A move to a cheaper tier, or a cancellation (the MRR ledger's contraction
    /// and churn movements).
    Downgrade,
    /// A payment attempt failed (the invoice record's own signal).
    PaymentFailed,
    /// The partner's churn-risk probability is at or above a level (the
    /// `CHURNRISK` index).
    ChurnRisk,
    /// An upsell offer shown to the signed-in partner, and no upgrade
    /// `afterDays` later.
    UpsellNotTaken,
    /// A broadcast to the audience on `sendOn`.
    Scheduled,
}

impl TriggerKind {
    pub const ALL: [TriggerKind; 7] = [
        Self::TrialEnding,
        Self::UsageNearLimit,
        Self::Downgrade,
        Self::PaymentFailed,
        Self::ChurnRisk,
        Self::UpsellNotTaken,
        Self::Scheduled,
    ];
    pub fn as_str(self) -> &'static str {
        wire_name(&self)
    }
}

/// Churn-risk levels as the scores name them (seed 004 `riskLevel`), by the lowest
/// probability (percent) of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Medium,
    High,
    Critical,
}

impl RiskLevel {
    pub const ALL: [RiskLevel; 3] = [Self::Medium, Self::High, Self::Critical];
    /// The lowest churn probability (0–100) at the level.
    pub fn floor(self) -> u32 {
        use crate::domain::scoring::{CRITICAL_RISK_AT, HIGH_RISK_AT, MEDIUM_RISK_AT};
        match self {
            Self::Medium => MEDIUM_RISK_AT,
            Self::High => HIGH_RISK_AT,
            Self::Critical => CRITICAL_RISK_AT,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    #[serde(rename = "type")]
    pub kind: TriggerKind,
    /// `trial_ending`: days before the trial's last day (1–30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_before: Option<u32>,
    /// `churn_risk`: the level at or above which the partner qualifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<RiskLevel>,
    /// `upsell_not_taken`: days after the offer was shown (1–30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_days: Option<u32>,
    /// `scheduled`: the day the broadcast goes out (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_on: Option<NaiveDate>,
}

/// Who a campaign may reach, on top of its trigger. Empty lists mean any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Audience {
    #[serde(default)]
    pub tiers: Vec<String>,
    #[serde(default)]
    pub segments: Vec<String>,
    /// Churn-risk probability at least (0–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_churn_risk: Option<u32>,
    /// Upsell score at least (0–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_upsell_score: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallToAction {
    pub label: String,
    pub url: String,
}

/// One version of the message; `allocation` is its share of recipients (percent,
/// the variants' shares sum to 100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentVariant {
    pub variant_id: String,
    pub subject: String,
    pub body: String,
    pub allocation: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignContent {
    /// One variant (`control`) when the campaign tests nothing.
    pub variants: Vec<ContentVariant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_to_action: Option<CallToAction>,
}

/// A personal offer: each recipient gets their own single-use code of an active,
/// code-based promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    pub promotion_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    InApp,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Self::Email, Self::InApp];
    pub fn as_str(self) -> &'static str {
        wire_name(&self)
    }
}

/// Seed 004's other channels: named so a request for one is refused plainly.
pub const UNSUPPORTED_CHANNELS: [&str; 3] = ["push", "sms", "direct_mail"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrequencyLimit {
    pub count: u32,
    pub period_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignType {
    Retention,
    Upsell,
    Winback,
    Onboarding,
    Announcement,
}

impl CampaignType {
    pub const ALL: [CampaignType; 5] =
        [Self::Retention, Self::Upsell, Self::Winback, Self::Onboarding, Self::Announcement];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    Active,
    Paused,
    Completed,
    Cancelled,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        wire_name(&self)
    }
}

/// A lifecycle action (`POST /api/admin/campaigns/{id}/{action}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleAction {
    Launch,
    Pause,
    Resume,
    Complete,
    Cancel,
}

impl LifecycleAction {
    pub const ALL: [LifecycleAction; 5] = [Self::Launch, Self::Pause, Self::Resume, Self::Complete, Self::Cancel];
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| wire_name(a) == s)
    }
    pub fn as_str(self) -> &'static str {
        wire_name(&self)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Campaign {
    pub campaign_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub campaign_type: CampaignType,
    pub trigger: Trigger,
    pub audience: Audience,
    pub content: CampaignContent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<Offer>,
    pub channels: Vec<Channel>,
    /// Days after a send to a partner before this campaign may reach them again.
    pub cooldown_days: u32,
    pub max_frequency: FrequencyLimit,
    pub start_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<NaiveDate>,
    /// Days after a send within which an upgrade, reactivation or redemption of
    /// the campaign's code is attributed to it.
    pub attribution_window_days: u32,
    pub status: CampaignStatus,
    /// The campaign experiment measuring its variants (the latest one): while it
    /// is not ended, edits that change the variants are refused (`variants_change`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_id: Option<String>,
    pub version: u64,
    pub created_by: String,
    pub created_at: String,
    pub updated_by: String,
    pub updated_at: String,
}

impl crate::domain::audit::Audited for Campaign {
    const ENTITY_TYPE: &'static str = "campaign";
    fn entity_id(&self) -> &str {
        &self.campaign_id
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CampaignError {
    #[error("campaign {0} not found")]
    NotFound(String),
    #[error("a {status} campaign cannot {action}")]
    InvalidTransition { status: &'static str, action: &'static str },
    #[error("only a draft or paused campaign can be edited")]
    NotEditable,
    #[error("the campaign changed since version {0} was read")]
    VersionConflict(u64),
    #[error("the offer's promotion {0} is not an active promotion that takes codes")]
    OfferNotUsable(String),
    /// The content variants are under a running experiment: changing who gets
    /// what mid-test breaks its comparison.
    #[error("the campaign's variants are under experiment {0}; end it first")]
    UnderExperiment(String),
}

pub fn is_campaign_id(s: &str) -> bool {
    s.len() == 30 && s.starts_with("cmp_") && s[4..].bytes().all(|b| b.is_ascii_alphanumeric())
}

pub fn new_campaign_id(ulid: &str) -> String {
    format!("cmp_{}", ulid.to_ascii_lowercase())
}

// ---- Parsing -----------------------------------------------------------------------

pub const MAX_VARIANTS: usize = 4;
pub const MAX_SUBJECT: usize = 150;
pub const MAX_BODY: usize = 5_000;

/// The personalisation tokens a subject or body may use, `{{token}}`.
pub const TOKENS: [&str; 7] =
    ["companyName", "tierName", "nextTierName", "promoCode", "offerEndDate", "trialEndDate", "portalUrl"];

/// Every `{{name}}` in `text`, or the first malformed or unknown one.
fn tokens_of(text: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("has a '{{' without its '}}'")?;
        let name = after[..end].trim();
        if !TOKENS.contains(&name) {
            return Err(format!("uses the unknown token {{{{{name}}}}} (known: {})", TOKENS.join(", ")));
        }
        out.push(name);
        rest = &after[end + 2..];
    }
    Ok(out)
}

fn text_with_tokens(v: &Value, max: usize) -> Result<String, String> {
    let s = parse::text(v, 1, max)?;
    tokens_of(&s)?;
    Ok(s)
}

fn https_url(v: &Value) -> Result<String, String> {
    let s = parse::text(v, 1, 500)?;
    let ok = (s.starts_with("https://") || s.starts_with("http://") || s.starts_with('/'))
        && !s.contains(char::is_whitespace);
    if ok {
        Ok(s)
    } else {
        Err("must be an http(s) URL or a path starting with '/'".into())
    }
}

fn channels(v: &Value) -> Result<Vec<Channel>, String> {
    let items = v.as_array().ok_or("must be an array")?;
    if items.is_empty() {
        return Err("must name at least one channel".into());
    }
    let mut out = Vec::new();
    for item in items {
        let name = item.as_str().unwrap_or_default();
        if UNSUPPORTED_CHANNELS.contains(&name) {
            return Err(format!("{name} is not supported (email and in_app are)"));
        }
        let c = one_of(&Channel::ALL, item)?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

fn trigger(f: &mut Fields<'_>) -> Option<Trigger> {
    let kind = f.required("type", |v| one_of(&TriggerKind::ALL, v));
    let days_before = f.optional("daysBefore", |v| parse::int_in(v, 1, 30).map(|n| n as u32));
    let level = f.optional("level", |v| one_of(&RiskLevel::ALL, v));
    let after_days = f.optional("afterDays", |v| parse::int_in(v, 1, 30).map(|n| n as u32));
    let send_on = f.optional("sendOn", parse::date);
    let kind = kind?;
    let (needs, name): (bool, &str) = match kind {
        TriggerKind::TrialEnding => (days_before.is_some(), "daysBefore"),
        TriggerKind::ChurnRisk => (level.is_some(), "level"),
        TriggerKind::UpsellNotTaken => (after_days.is_some(), "afterDays"),
        TriggerKind::Scheduled => (send_on.is_some(), "sendOn"),
        _ => (true, ""),
    };
    if !needs && !f.has(name) {
        f.fail(name, format!("is required for a {} trigger", kind.as_str()));
    }
    for (field, given, used) in [
        ("daysBefore", days_before.is_some(), kind == TriggerKind::TrialEnding),
        ("level", level.is_some(), kind == TriggerKind::ChurnRisk),
        ("afterDays", after_days.is_some(), kind == TriggerKind::UpsellNotTaken),
        ("sendOn", send_on.is_some(), kind == TriggerKind::Scheduled),
    ] {
        if given && !used {
            f.fail(field, format!("does not apply to a {} trigger", kind.as_str()));
        }
    }
    Some(Trigger { kind, days_before, level, after_days, send_on })
}

/// `POST /api/admin/campaigns` and `PUT /api/admin/campaigns/{id}`: the whole
/// campaign as the client may set it (status, counters and attribution are the
/// server's).
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignInput {
    pub name: String,
    pub campaign_type: CampaignType,
    pub trigger: Trigger,
    pub audience: Audience,
    pub content: CampaignContent,
    pub offer: Option<Offer>,
    pub channels: Vec<Channel>,
    pub cooldown_days: u32,
    pub max_frequency: FrequencyLimit,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub attribution_window_days: u32,
    pub version: Option<u64>,
}

impl CampaignInput {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(
            body,
            &[
                "name",
                "type",
                "trigger",
                "audience",
                "content",
                "offer",
                "channels",
                "cooldownDays",
                "maxFrequency",
                "startDate",
                "endDate",
                "attributionWindowDays",
                "version",
            ],
        );
        let name = f.required("name", |v| parse::text(v, 1, 120));
        let campaign_type = f.required("type", |v| one_of(&CampaignType::ALL, v));
        if !f.has("trigger") {
            f.fail("trigger", "is required");
        }
        let trigger = f.object("trigger", &["type", "daysBefore", "level", "afterDays", "sendOn"], trigger);
        let audience = f
            .object("audience", &["tiers", "segments", "minChurnRisk", "minUpsellScore"], |a| {
                let tiers = a.optional("tiers", |v| parse::slugs(v, 20)).unwrap_or_default();
                let segments = a.optional("segments", |v| parse::slugs(v, 20)).unwrap_or_default();
                let min_churn_risk = a.optional("minChurnRisk", |v| parse::int_in(v, 0, 100).map(|n| n as u32));
                let min_upsell_score = a.optional("minUpsellScore", |v| parse::int_in(v, 0, 100).map(|n| n as u32));
                Some(Audience { tiers, segments, min_churn_risk, min_upsell_score })
            })
            .unwrap_or_default();
        if !f.has("content") {
            f.fail("content", "is required");
        }
        let content = f.object("content", &["subject", "body", "variants", "callToAction"], |c| {
            let subject = c.optional("subject", |v| text_with_tokens(v, MAX_SUBJECT));
            let body = c.optional("body", |v| text_with_tokens(v, MAX_BODY));
            let variants =
                c.array_of_objects("variants", MAX_VARIANTS, &["variantId", "subject", "body", "allocation"], |v| {
                    let variant_id = v.required("variantId", parse::slug);
                    let subject = v.required("subject", |x| text_with_tokens(x, MAX_SUBJECT));
                    let body = v.required("body", |x| text_with_tokens(x, MAX_BODY));
                    // 0 keeps a variant (and its figures) without sending it, as a
                    // campaign experiment's rollout leaves the losers.
                    let allocation = v.required("allocation", |x| parse::int_in(x, 0, 100).map(|n| n as u32));
                    Some(ContentVariant {
                        variant_id: variant_id?,
                        subject: subject?,
                        body: body?,
                        allocation: allocation?,
                    })
                });
            let call_to_action = c.object("callToAction", &["label", "url"], |a| {
                let label = a.required("label", |v| parse::text(v, 1, 40));
                let url = a.required("url", https_url);
                Some(CallToAction { label: label?, url: url? })
            });
            let variants = match (variants, subject, body) {
                (Some(vs), None, None) if !vs.is_empty() => {
                    let mut seen: Vec<&str> = Vec::new();
                    for v in &vs {
                        if seen.contains(&v.variant_id.as_str()) {
                            c.fail("variants", format!("repeats the variant id {}", v.variant_id));
                        }
                        seen.push(&v.variant_id);
                    }
                    if vs.iter().map(|v| v.allocation).sum::<u32>() != 100 {
                        c.fail("variants", "allocations must sum to 100");
                    }
                    vs
                }
                (Some(_), _, _) => {
                    c.fail("variants", "give either subject and body, or variants (at least one), not both");
                    return None;
                }
                (None, Some(subject), Some(body)) => {
                    vec![ContentVariant { variant_id: "control".into(), subject, body, allocation: 100 }]
                }
                (None, s, b) => {
                    if s.is_none() && !c.has("subject") {
                        c.fail("subject", "is required (or give variants)");
                    }
                    if b.is_none() && !c.has("body") {
                        c.fail("body", "is required (or give variants)");
                    }
                    return None;
                }
            };
            Some(CampaignContent { variants, call_to_action })
        });
        let offer = f.object("offer", &["promotionId"], |o| {
            let promotion_id = o.required("promotionId", |v| {
                let s = v.as_str().ok_or("must be a string")?;
                if crate::domain::promotion::is_promotion_id(s) {
                    Ok(s.to_string())
                } else {
                    Err("must be a promotion id (promo_…)".to_string())
                }
            });
            Some(Offer { promotion_id: promotion_id? })
        });
        let channels = f.optional("channels", channels).unwrap_or_else(|| vec![Channel::Email]);
        let cooldown_days = f.optional("cooldownDays", |v| parse::int_in(v, 0, 365).map(|n| n as u32)).unwrap_or(7);
        let max_frequency = f
            .object("maxFrequency", &["count", "periodDays"], |m| {
                let count = m.required("count", |v| parse::int_in(v, 1, 100).map(|n| n as u32));
                let period_days = m.required("periodDays", |v| parse::int_in(v, 1, 366).map(|n| n as u32));
                Some(FrequencyLimit { count: count?, period_days: period_days? })
            })
            .unwrap_or(FrequencyLimit { count: 1, period_days: 30 });
        let start_date = f.required("startDate", parse::date);
        let end_date = f.optional("endDate", parse::date);
        let attribution_window_days =
            f.optional("attributionWindowDays", |v| parse::int_in(v, 1, 90).map(|n| n as u32)).unwrap_or(14);
        let version = f.optional("version", |v| parse::int_in(v, 1, i64::MAX).map(|n| n as u64));
        if let (Some(s), Some(e)) = (start_date, end_date) {
            if e < s {
                f.fail("endDate", "must not be before startDate");
            }
        }
        if let (Some(t), Some(s)) = (&trigger, start_date) {
            if let Some(on) = t.send_on {
                if on < s || end_date.is_some_and(|e| on > e) {
                    f.fail("trigger", "sendOn must fall within startDate..endDate");
                }
            }
        }
        if let Some(c) = &content {
            let uses = |text: &str| tokens_of(text).is_ok_and(|t| t.contains(&"promoCode"));
            let uses_code = c.variants.iter().any(|v| uses(&v.subject) || uses(&v.body));
            if uses_code && offer.is_none() {
                f.fail("offer", "is required when the content uses {{promoCode}}");
            }
        }
        f.finish()?;
        match (name, campaign_type, trigger, content, start_date) {
            (Some(name), Some(campaign_type), Some(trigger), Some(content), Some(start_date)) => Ok(Self {
                name,
                campaign_type,
                trigger,
                audience,
                content,
                offer,
                channels,
                cooldown_days,
                max_frequency,
                start_date,
                end_date,
                attribution_window_days,
                version,
            }),
            _ => Err(ValidationError::single("body", "is incomplete")),
        }
    }

    /// A new draft, or `previous` edited (only a draft or a paused campaign).
    pub fn into_campaign(
        self,
        campaign_id: &str,
        previous: Option<&Campaign>,
        by: &str,
        at: &str,
    ) -> Result<Campaign, CampaignError> {
        if let Some(p) = previous {
            if !matches!(p.status, CampaignStatus::Draft | CampaignStatus::Paused) {
                return Err(CampaignError::NotEditable);
            }
            if self.version != Some(p.version) {
                return Err(CampaignError::VersionConflict(self.version.unwrap_or(0)));
            }
        }
        Ok(Campaign {
            campaign_id: campaign_id.to_string(),
            name: self.name,
            campaign_type: self.campaign_type,
            trigger: self.trigger,
            audience: self.audience,
            content: self.content,
            offer: self.offer,
            channels: self.channels,
            cooldown_days: self.cooldown_days,
            max_frequency: self.max_frequency,
            start_date: self.start_date,
            end_date: self.end_date,
            attribution_window_days: self.attribution_window_days,
            status: previous.map_or(CampaignStatus::Draft, |p| p.status),
            experiment_id: previous.and_then(|p| p.experiment_id.clone()),
            version: previous.map_or(1, |p| p.version + 1),
            created_by: previous.map_or_else(|| by.to_string(), |p| p.created_by.clone()),
            created_at: previous.map_or_else(|| at.to_string(), |p| p.created_at.clone()),
            updated_by: by.to_string(),
            updated_at: at.to_string(),
        })
    }
}

// ---- Lifecycle ---------------------------------------------------------------------

/// draft → active (launch); active ⇄ paused; active or paused → completed;
/// draft, active or paused → cancelled. Completed and cancelled are final.
pub fn apply_action(c: &Campaign, action: LifecycleAction, by: &str, at: &str) -> Result<Campaign, CampaignError> {
    use CampaignStatus as S;
    use LifecycleAction as A;
    let next = match (c.status, action) {
        (S::Draft, A::Launch) => S::Active,
        (S::Active, A::Pause) => S::Paused,
        (S::Paused, A::Resume) => S::Active,
        (S::Active | S::Paused, A::Complete) => S::Completed,
        (S::Draft | S::Active | S::Paused, A::Cancel) => S::Cancelled,
        (status, action) => {
            return Err(CampaignError::InvalidTransition { status: status.as_str(), action: action.as_str() })
        }
    };
    Ok(Campaign { status: next, version: c.version + 1, updated_by: by.into(), updated_at: at.into(), ..c.clone() })
}

/// Whether an edit from `before` to `after` changes who gets what: any variant's
/// id, allocation or text. Refused while an experiment measures the variants.
pub fn variants_change(before: &Campaign, after: &Campaign) -> bool {
    before.content.variants != after.content.variants
}

/// A campaign experiment's variants: the campaign's content variants still sent
/// (allocation above 0), the first of them the control, each at the campaign's
/// allocation (so the sample-ratio check tests the campaign's own split).
pub fn experiment_variants(c: &Campaign) -> Result<Vec<experiment::Variant>, ValidationError> {
    let sent: Vec<&ContentVariant> = c.content.variants.iter().filter(|v| v.allocation > 0).collect();
    if sent.len() < 2 {
        return Err(ValidationError::single(
            "campaignId",
            "the campaign needs at least two content variants with an allocation to test",
        ));
    }
    Ok(sent
        .iter()
        .enumerate()
        .map(|(i, v)| experiment::Variant {
            variant_id: v.variant_id.clone(),
            name: v.subject.clone(),
            is_control: i == 0,
            allocation: v.allocation,
            pricing: experiment::VariantPricing::default(),
            features: Vec::new(),
            messaging: Some(experiment::Messaging {
                headline: Some(v.subject.clone()),
                description: None,
                call_to_action: c.content.call_to_action.as_ref().map(|a| a.label.clone()),
            }),
        })
        .collect())
}

/// `experiment_id` starts measuring `c`'s variants: recorded on the campaign,
/// so its variants lock until the experiment ends. Refused once the campaign
/// has ended (nothing more will be sent to measure).
pub fn attach_experiment(c: &Campaign, experiment_id: &str, by: &str, at: &str) -> Result<Campaign, CampaignError> {
    if matches!(c.status, CampaignStatus::Completed | CampaignStatus::Cancelled) {
        return Err(CampaignError::InvalidTransition { status: c.status.as_str(), action: "experiment" });
    }
    Ok(Campaign {
        experiment_id: Some(experiment_id.to_string()),
        version: c.version + 1,
        updated_by: by.into(),
        updated_at: at.into(),
        ..c.clone()
    })
}

/// A campaign experiment's winner rolled out: `winner` gets every recipient
/// (allocation 100) and the other variants stay, at 0, with their figures.
/// Refused for an ended campaign and for a variant it does not have.
pub fn roll_out(c: &Campaign, winner: &str, by: &str, at: &str) -> Result<Campaign, CampaignError> {
    if matches!(c.status, CampaignStatus::Completed | CampaignStatus::Cancelled) {
        return Err(CampaignError::InvalidTransition { status: c.status.as_str(), action: "roll_out" });
    }
    if !c.content.variants.iter().any(|v| v.variant_id == winner) {
        return Err(CampaignError::NotFound(format!("{}/{winner}", c.campaign_id)));
    }
    let mut next = Campaign { version: c.version + 1, updated_by: by.into(), updated_at: at.into(), ..c.clone() };
    for v in &mut next.content.variants {
        v.allocation = if v.variant_id == winner { 100 } else { 0 };
    }
    Ok(next)
}

/// Whether the campaign sends on `day`: active, and `day` within its dates.
pub fn runs_on(c: &Campaign, day: NaiveDate) -> bool {
    c.status == CampaignStatus::Active && day >= c.start_date && c.end_date.is_none_or(|e| day <= e)
}

// ---- Reaching a partner ------------------------------------------------------------

/// What the daily job knows of a partner a trigger named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub partner_id: String,
    pub company_name: String,
    pub email: Option<String>,
    pub tier: String,
    pub tier_name: String,
    pub segment: Option<String>,
    pub next_tier_name: Option<String>,
    pub churn_risk: u32,
    pub upsell_score: u32,
    pub trial_end_date: Option<NaiveDate>,
    /// The partner turned marketing email off (`PUT /api/billing/marketing-preferences`).
    pub unsubscribed: bool,
    /// The partner's personal data was erased (docs/privacy.md): no campaign
    /// reaches them again.
    pub erased: bool,
}

pub fn in_audience(a: &Audience, r: &Recipient) -> bool {
    (a.tiers.is_empty() || a.tiers.contains(&r.tier))
        && (a.segments.is_empty() || r.segment.as_ref().is_some_and(|s| a.segments.contains(s)))
        && a.min_churn_risk.is_none_or(|m| r.churn_risk >= m)
        && a.min_upsell_score.is_none_or(|m| r.upsell_score >= m)
}

/// A partner's sends of one campaign (`CAMPAIGN#{id} / FREQ#{partnerId}`): the last
/// send day and the sends inside the current frequency period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrequencyState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent_on: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<NaiveDate>,
    #[serde(default)]
    pub sent_in_period: u32,
    /// 0 when no item exists yet; each admitted send writes `version + 1`,
    /// conditional on the version read.
    #[serde(default)]
    pub version: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    NotInAudience,
    /// The partner's personal data was erased.
    Erased,
    /// Email only, and the partner turned marketing email off.
    Unsubscribed,
    Cooldown,
    MaxFrequency,
    /// Email only, and the partner's marketing emails today reached the cap.
    DailyCap,
    /// Email only, and the partner has no address.
    NoAddress,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        wire_name(&self)
    }
}

/// The frequency state after one more send on `today`, or why there is none.
/// The cooldown counts whole days from the last send; the frequency period is a
/// fixed window that starts at the first send after the previous one ended.
pub fn admit_frequency(c: &Campaign, state: &FrequencyState, today: NaiveDate) -> Result<FrequencyState, Skip> {
    if let Some(last) = state.last_sent_on {
        if c.cooldown_days > 0 && today < last + Duration::days(i64::from(c.cooldown_days)) {
            return Err(Skip::Cooldown);
        }
    }
    let period = Duration::days(i64::from(c.max_frequency.period_days));
    let (period_start, sent) = match state.period_start {
        Some(start) if today < start + period => (start, state.sent_in_period),
        _ => (today, 0),
    };
    if sent >= c.max_frequency.count {
        return Err(Skip::MaxFrequency);
    }
    Ok(FrequencyState {
        last_sent_on: Some(today),
        period_start: Some(period_start),
        sent_in_period: sent + 1,
        version: state.version + 1,
    })
}

/// The channels a send uses for `r`, or why none: audience first, then the
/// compliance rules of email (an unsubscribed partner, or one without an
/// address, still gets the in-app message when the campaign has that channel).
pub fn channels_for(c: &Campaign, r: &Recipient) -> Result<Vec<Channel>, Skip> {
    if r.erased {
        return Err(Skip::Erased);
    }
    if !in_audience(&c.audience, r) {
        return Err(Skip::NotInAudience);
    }
    let mut out = Vec::new();
    let mut email_skip = None;
    for ch in &c.channels {
        match ch {
            Channel::Email if r.unsubscribed => email_skip = Some(Skip::Unsubscribed),
            Channel::Email if r.email.is_none() => email_skip = Some(Skip::NoAddress),
            other => out.push(*other),
        }
    }
    match (out.is_empty(), email_skip) {
        (true, Some(skip)) => Err(skip),
        _ => Ok(out),
    }
}

/// The variant a partner gets: the experiments' stable bucket of
/// (`campaignId`, `partnerId`) against the cumulative allocations.
pub fn variant_for<'a>(c: &'a Campaign, partner_id: &str) -> &'a ContentVariant {
    let bucket = crate::domain::experiment::bucket(&c.campaign_id, partner_id);
    let mut upper = 0u64;
    for v in &c.content.variants {
        upper += u64::from(v.allocation) * 100;
        if bucket < upper {
            return v;
        }
    }
    // Allocations sum to 100 (parse), so this is only reached by a stored
    // campaign edited by hand; the last variant takes the rest.
    c.content.variants.last().unwrap_or(&c.content.variants[0])
}

/// Values of the personalisation tokens for one send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenValues {
    pub company_name: String,
    pub tier_name: String,
    pub next_tier_name: String,
    pub promo_code: String,
    pub offer_end_date: String,
    pub trial_end_date: String,
    pub portal_url: String,
}

impl TokenValues {
    fn get(&self, name: &str) -> &str {
        match name {
            "companyName" => &self.company_name,
            "tierName" => &self.tier_name,
            "nextTierName" => &self.next_tier_name,
            "promoCode" => &self.promo_code,
            "offerEndDate" => &self.offer_end_date,
            "trialEndDate" => &self.trial_end_date,
            "portalUrl" => &self.portal_url,
            _ => "",
        }
    }
}

/// `text` with each `{{token}}` replaced by its value (unknown tokens cannot be
/// stored: parse refuses them). Values are plain text; the mailer escapes them
/// for the HTML part.
pub fn render(text: &str, values: &TokenValues) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                out.push_str(values.get(after[..end].trim()));
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The occasion a send answers, the last part of its claim key: the same trigger
/// seen again (a rerun, a retried webhook) names the same occasion, so the claim
/// finds it and nothing is sent twice.
pub fn occasion(kind: TriggerKind, source: &str) -> String {
    format!("{}#{source}", kind.as_str())
}

/// Whether a promotion can back a campaign's personal codes on `today`: active,
/// inside its dates, code-based, and once per customer — so a code bound to one
/// partner is single-use.
pub fn usable_offer(p: &crate::domain::promotion::Promotion, today: NaiveDate) -> bool {
    p.status == crate::domain::promotion::PromotionStatus::Active
        && p.requires_code
        && p.redemptions_per_user == 1
        && p.start_date <= today
        && today <= p.end_date
}

// ---- Attribution and insights ------------------------------------------------------

/// A campaign's counters (`CAMPAIGN#{id} / STATS`), each a sum ADDed in the
/// transaction of the event it counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CampaignCounts {
    pub sent: i64,
    pub emails: i64,
    pub in_app: i64,
    pub skipped: i64,
    pub conversions: i64,
    pub redemptions: i64,
    /// MRR gained by attributed conversions (cents).
    pub revenue: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantInsight {
    pub variant_id: String,
    pub sent: i64,
    pub conversions: i64,
    /// Conversions ÷ sends in basis points, half up; 0 without sends.
    pub conversion_rate_bp: i64,
    pub revenue: i64,
    /// The experiments' statistics (`stats`): the rate's 95% Wilson interval…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_rate_interval: Option<RateInterval>,
    /// …and, for every variant but the first, the pooled two-proportion z-test's
    /// two-sided p-value against the first (`null` while either side has no
    /// sends, or all or none converted).
    #[serde(default)]
    pub p_value_vs_first: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateInterval {
    pub lower: f64,
    pub upper: f64,
}

impl VariantInsight {
    pub fn new(variant_id: &str, sent: i64, conversions: i64, revenue: i64) -> Self {
        Self {
            variant_id: variant_id.to_string(),
            sent,
            conversions,
            conversion_rate_bp: rate_bp(conversions, sent),
            revenue,
            conversion_rate_interval: None,
            p_value_vs_first: None,
        }
    }
}

/// Fills in each variant's interval and its test against the first variant, as
/// the pricing experiments compute them (`stats::wilson`, `two_proportion_z`).
pub fn compare_variants(variants: &mut [VariantInsight]) {
    use crate::domain::stats;
    let z = stats::z_for_confidence(95.0);
    let first = variants.first().map(|v| (v.conversions.max(0) as u64, v.sent.max(0) as u64));
    for (i, v) in variants.iter_mut().enumerate() {
        let (x, n) = (v.conversions.max(0) as u64, v.sent.max(0) as u64);
        let w = stats::wilson(x, n, z);
        v.conversion_rate_interval = Some(RateInterval { lower: w.lower, upper: w.upper });
        v.p_value_vs_first = match first {
            Some((xa, na)) if i > 0 => stats::two_proportion_z(xa, na, x, n).map(|(_, p)| p),
            _ => None,
        };
    }
}

/// `generateCampaignInsights`: totals, per variant, and the skips by reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignInsights {
    pub campaign_id: String,
    pub totals: CampaignCounts,
    pub conversion_rate_bp: i64,
    pub variants: Vec<VariantInsight>,
    pub skipped: std::collections::BTreeMap<String, i64>,
    /// Opens are not tracked: SES open tracking needs a configuration set with an
    /// event destination, which the stack does not deploy (docs/campaigns.md).
    pub opens: Option<i64>,
    pub attribution_window_days: u32,
}

/// Basis points of `part / whole`, half up.
pub fn rate_bp(part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        0
    } else {
        (part * 10_000 * 2 + whole) / (2 * whole)
    }
}

/// A conversion a movement may be: a paid upgrade, a first paid plan or a
/// reactivation (contraction and churn are not conversions).
pub fn is_conversion(kind: crate::domain::revenue::MovementKind) -> bool {
    use crate::domain::revenue::MovementKind as K;
    matches!(kind, K::New | K::Expansion | K::Reactivation)
}

/// The send a conversion at `at_day` is attributed to: the latest send to the
/// partner, by any running or finished campaign, within that campaign's window
/// (last touch). `sends` are (campaign id, sent day, window days).
pub fn attribute(sends: &[(String, NaiveDate, u32)], at_day: NaiveDate) -> Option<&(String, NaiveDate, u32)> {
    sends
        .iter()
        .filter(|(_, sent, window)| *sent <= at_day && at_day <= *sent + Duration::days(i64::from(*window)))
        .max_by_key(|(id, sent, _)| (*sent, id.clone()))
}

#[cfg(test)]
mod tests;
