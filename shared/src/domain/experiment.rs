//! Pricing experiments (seed 000 §6, seed 004): the experiment and its variants,
//! request parsing, the lifecycle, deterministic assignment, and the results with
//! their statistics (`stats`). No I/O; time comes in through `Actor`.

pub use super::actor::Actor;
use super::stats::{self, Interval, Moments};
use super::tier::{Feature, Prices, Tier};
use super::validation::{parse, Fields, ValidationError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const MAX_VARIANTS: usize = 10;
/// Buckets of the assignment hash: allocations are whole percent, so each percent
/// is 100 buckets.
pub const BUCKETS: u64 = 10_000;
/// Distinct revenue events one participant may report per phase: the only items
/// an anonymous caller grows are its own assignment, and this bounds it.
pub const MAX_EVENTS_PER_USER: usize = 50;
/// SRM is flagged below this p-value (a strict bar: the check runs on every read).
pub const SRM_ALPHA: f64 = 0.001;
/// Power behind the sample size still needed.
pub const POWER: f64 = 0.8;

#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("experiment not found")]
    NotFound,
    #[error("the experiment was changed by someone else; reload it and retry")]
    VersionConflict { current: Option<u64> },
    #[error("cannot {action} an experiment that is {from}")]
    IllegalTransition { from: &'static str, action: &'static str },
    #[error("{field} cannot change while the experiment is {status}")]
    NotEditable { status: &'static str, field: &'static str },
    #[error("another pricing experiment is already running on this tier")]
    TierBusy { experiment_id: Option<String> },
    #[error("the experiment is not running")]
    NotRunning { status: &'static str },
    #[error("this participant reported too many revenue events")]
    TooManyEvents,
    #[error("no significant winner yet; force with a reason to implement anyway")]
    NoWinner,
    #[error("the target tier is missing or archived")]
    TierGone,
    #[error("the participant's tracking kept changing; retry")]
    KeptChanging,
    #[error("the campaign changed since it was read; reload and retry")]
    CampaignChanged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentStatus {
    Draft,
    Active,
    Paused,
    Completed,
    Cancelled,
}

impl ExperimentStatus {
    pub const ALL: [Self; 5] = [Self::Draft, Self::Active, Self::Paused, Self::Completed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        crate::domain::wire::wire_name(&self)
    }

    pub fn parse(v: &Value) -> Result<Self, String> {
        crate::domain::wire::one_of(&Self::ALL, v)
    }

    /// Active and paused experiments hold their tier: a paused test resumes without
    /// racing another test for the same customers.
    pub fn holds_tier(self) -> bool {
        matches!(self, Self::Active | Self::Paused)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    ConversionRate,
    Revenue,
    Signups,
    Retention,
}

impl Metric {
    pub fn parse(v: &Value) -> Result<Self, String> {
        match v.as_str() {
            Some("conversion_rate") => Ok(Self::ConversionRate),
            Some("revenue") => Ok(Self::Revenue),
            Some("signups") => Ok(Self::Signups),
            Some("retention") => Ok(Self::Retention),
            _ => Err("must be one of conversion_rate, revenue, signups, retention".into()),
        }
    }
}

/// What an experiment tests. A pricing experiment shows visitors a variant's
/// price on its target tier (and holds the tier's slot while it runs); a
/// campaign experiment measures a campaign's content variants, whose sends are
/// its exposures and whose attributed conversions are its conversions
/// (docs/campaigns.md). It never touches a tier or the public catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentType {
    #[default]
    Pricing,
    Campaign,
}

impl ExperimentType {
    pub const ALL: [Self; 2] = [Self::Pricing, Self::Campaign];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VariantPricing {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yearly: Option<i64>,
}

impl VariantPricing {
    /// The tier's prices with this variant's overrides.
    pub fn over(&self, base: Prices) -> Prices {
        Prices { monthly: self.monthly.unwrap_or(base.monthly), yearly: self.yearly.unwrap_or(base.yearly) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Messaging {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_to_action: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Variant {
    pub variant_id: String,
    pub name: String,
    pub is_control: bool,
    /// Whole percent; the variants' allocations sum to 100.
    pub allocation: u32,
    pub pricing: VariantPricing,
    /// Feature differences from the target tier (seed `features?: TierFeature[]`):
    /// each replaces the tier's feature of the same `featureId` (`enabled: false`
    /// takes it away) or, with a new id, adds one. Empty: the tier's features.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<Feature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging: Option<Messaging>,
}

/// The tier's features with a variant's differences applied: a difference replaces
/// the feature with its id in place, and one with a new id comes after the tier's.
pub fn features_over(base: &[Feature], differences: &[Feature]) -> Vec<Feature> {
    let mut out: Vec<Feature> =
        base.iter().map(|f| differences.iter().find(|d| d.feature_id == f.feature_id).unwrap_or(f).clone()).collect();
    out.extend(differences.iter().filter(|d| !base.iter().any(|f| f.feature_id == d.feature_id)).cloned());
    out
}

/// What rolling a winner out changed: the tier's new price version (a pricing
/// experiment whose challenger won) or the campaign's version that sends the
/// winner to everyone (a campaign experiment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rollout {
    pub price_version: Option<u32>,
    pub campaign_version: Option<u64>,
}

/// How a winner went into the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Implementation {
    pub variant_id: String,
    /// The tier's new price version; `None` when the control won (nothing
    /// changes) and for a campaign experiment.
    pub price_version: Option<u32>,
    /// A campaign experiment's rollout: the campaign's version that sends the
    /// winner to everyone (its allocation 100, the others' 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_version: Option<u64>,
    pub forced: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub implemented_by: String,
    pub implemented_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Experiment {
    pub experiment_id: String,
    /// Stored experiments from before campaign experiments are pricing ones.
    #[serde(default)]
    pub experiment_type: ExperimentType,
    /// The campaign whose content variants a campaign experiment measures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    pub name: String,
    pub description: String,
    pub hypothesis: String,
    /// The tier a pricing experiment prices; empty for a campaign experiment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_tier: String,
    pub variants: Vec<Variant>,
    pub status: ExperimentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    pub min_sample_size: u64,
    pub confidence_level: u32,
    pub primary_metric: Metric,
    pub secondary_metrics: Vec<Metric>,
    /// Relative lift in percent the sample size is planned for (10 = +10%).
    pub minimum_detectable_effect: f64,
    /// Judge significance with the always-valid interval, so looking every day
    /// does not inflate false positives.
    pub sequential: bool,
    /// Bumped when a paused experiment's variants change: counts restart and
    /// participants are assigned afresh (docs/experiments.md).
    pub phase: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implementation: Option<Implementation>,
    pub version: u64,
    pub created_by: String,
    pub created_at: String,
    pub updated_by: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// The results the experiment stopped with, recorded once when the daily cron
    /// ended it on its `endDate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_results: Option<FinalResults>,
}

/// Why an experiment stopped by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Its `endDate` passed (the daily cron).
    EndDate,
}

/// The results an experiment stopped with: the figures a reader needs to judge it,
/// kept on the experiment because its counters go on moving for late events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalResults {
    pub reason: EndReason,
    pub recorded_at: String,
    pub phase: u32,
    pub total_participants: u64,
    pub statistical_significance: bool,
    #[serde(default)]
    pub p_value: Option<f64>,
    /// The significant winner, if any (rolling it out stays a staff decision:
    /// `implement-winner`).
    #[serde(default)]
    pub winner: Option<String>,
    pub recommendation: String,
    pub variants: Vec<FinalVariant>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalVariant {
    pub variant_id: String,
    pub participants: u64,
    pub conversions: u64,
    pub conversion_rate: f64,
    /// Cents.
    pub revenue: i64,
}

pub fn new_experiment_id(ulid: &str) -> String {
    format!("exp_{ulid}")
}

pub fn is_experiment_id(s: &str) -> bool {
    s.strip_prefix("exp_")
        .is_some_and(|rest| rest.len() == 26 && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// Participant ids come from outside (anonymous visitors, partner ids, emails): up
/// to 128 characters of letters, digits and `_ - . : @`; never `#`, so they cannot
/// break a key.
pub fn user_id(v: &Value) -> Result<String, String> {
    let s = v.as_str().ok_or("must be a string")?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'@'));
    if ok {
        Ok(s.to_string())
    } else {
        Err("must be 1-128 characters of letters, digits, '_', '-', '.', ':' or '@'".into())
    }
}

// ---- Assignment ---------------------------------------------------------------

/// The participant's bucket in [0, 10000): the first 8 bytes of
/// SHA-256(`{experimentId}:{userId}`) as a big-endian integer, modulo 10,000.
/// SHA-256 is fixed by its standard, so the bucket is the same in every process,
/// build and deploy (the modulo bias, 2⁶⁴ mod 10⁴ / 2⁶⁴, is below 1e-15).
pub fn bucket(experiment_id: &str, user_id: &str) -> u64 {
    let digest = Sha256::digest(format!("{experiment_id}:{user_id}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % BUCKETS
}

/// The variant whose cumulative allocation range holds the bucket: with 50/30/20,
/// buckets 0–4999 are the first, 5000–7999 the second, 8000–9999 the third.
pub fn variant_for_bucket(variants: &[Variant], bucket: u64) -> Option<&Variant> {
    let mut upper = 0u64;
    for v in variants {
        upper += u64::from(v.allocation) * (BUCKETS / 100);
        if bucket < upper {
            return Some(v);
        }
    }
    None
}

pub fn assign<'a>(experiment_id: &str, variants: &'a [Variant], user_id: &str) -> Option<&'a Variant> {
    variant_for_bucket(variants, bucket(experiment_id, user_id))
}

// ---- Parsing ------------------------------------------------------------------

const FIELDS: &[&str] = &[
    "experimentType",
    "campaignId",
    "name",
    "description",
    "hypothesis",
    "targetTier",
    "variants",
    "endDate",
    "minSampleSize",
    "confidenceLevel",
    "primaryMetric",
    "secondaryMetrics",
    "minimumDetectableEffect",
    "sequential",
];
const VARIANT_FIELDS: &[&str] = &["variantId", "name", "isControl", "allocation", "pricing", "features", "messaging"];

fn name(v: &Value) -> Result<String, String> {
    parse::text(v, 1, 200)
}
fn long_text(v: &Value) -> Result<String, String> {
    parse::text(v, 0, 2_000)
}
fn short_text(v: &Value) -> Result<String, String> {
    parse::text(v, 0, 300)
}
fn confidence(v: &Value) -> Result<u32, String> {
    match v.as_u64() {
        Some(c @ (90 | 95 | 99)) => Ok(c as u32),
        _ => Err("must be 90, 95 or 99".into()),
    }
}
fn min_sample(v: &Value) -> Result<u64, String> {
    parse::int_in(v, 1, 100_000_000).map(|n| n as u64)
}
fn mde(v: &Value) -> Result<f64, String> {
    match v.as_f64() {
        Some(f) if f.is_finite() && f > 0.0 && f <= 1_000.0 => Ok(f),
        _ => Err("must be a relative lift in percent, above 0 and at most 1000".into()),
    }
}
fn date(v: &Value) -> Result<String, String> {
    let s = v.as_str().ok_or("must be a date YYYY-MM-DD")?;
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| "must be a date YYYY-MM-DD".to_string())?;
    Ok(s.to_string())
}
fn metrics(v: &Value) -> Result<Vec<Metric>, String> {
    let items = v.as_array().ok_or("must be an array")?;
    if items.len() > 4 {
        return Err("must have at most 4 items".into());
    }
    let mut out: Vec<Metric> = Vec::new();
    for item in items {
        let m = Metric::parse(item)?;
        if !out.contains(&m) {
            out.push(m);
        }
    }
    Ok(out)
}

fn read_variant(f: &mut Fields<'_>) -> Option<Variant> {
    let variant_id = f.required("variantId", parse::slug);
    let name = f.required("name", name);
    let is_control = f.optional("isControl", parse::boolean).unwrap_or(false);
    let allocation = f.required("allocation", |v| parse::int_in(v, 1, 100).map(|n| n as u32));
    let pricing = f
        .object("pricing", &["monthly", "yearly"], |p| {
            Some(VariantPricing {
                monthly: p.optional("monthly", parse::cents),
                yearly: p.optional("yearly", parse::cents),
            })
        })
        .unwrap_or_default();
    let features = if f.has("features") { super::tier::read_features(f) } else { Some(Vec::new()) };
    let messaging = f.object("messaging", &["headline", "description", "callToAction"], |m| {
        Some(Messaging {
            headline: m.optional("headline", short_text),
            description: m.optional("description", long_text),
            call_to_action: m.optional("callToAction", short_text),
        })
    });
    let differs =
        pricing.monthly.is_some() || pricing.yearly.is_some() || features.as_ref().is_some_and(|f| !f.is_empty());
    if !is_control && !differs && f.has("variantId") {
        f.fail("pricing", "a variant other than the control needs a monthly or yearly price, or feature differences");
    }
    Some(Variant {
        variant_id: variant_id?,
        name: name?,
        is_control,
        allocation: allocation?,
        pricing,
        features: features?,
        messaging,
    })
}

/// The rules across variants: 2–10, unique ids, exactly one control, allocations
/// summing to 100.
fn check_variants(f: &mut Fields<'_>, variants: &[Variant]) {
    if variants.len() < 2 {
        f.fail("variants", "needs at least 2 variants");
        return;
    }
    let mut ids: Vec<&str> = variants.iter().map(|v| v.variant_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != variants.len() {
        f.fail("variants", "variantId must be unique");
    }
    if variants.iter().filter(|v| v.is_control).count() != 1 {
        f.fail("variants", "exactly one variant must be the control (isControl: true)");
    }
    let total: u32 = variants.iter().map(|v| v.allocation).sum();
    if total != 100 {
        f.fail("variants", format!("allocations must sum to 100, not {total}"));
    }
}

fn read_variants(f: &mut Fields<'_>) -> Option<Vec<Variant>> {
    let variants = f.array_of_objects("variants", MAX_VARIANTS, VARIANT_FIELDS, read_variant)?;
    check_variants(f, &variants);
    Some(variants)
}

/// A campaign experiment is judged on what its sends lead to: conversions or
/// the revenue they bring. Sign-ups and retention are a visitor's, not a
/// partner's.
fn campaign_metric(m: Metric) -> bool {
    matches!(m, Metric::ConversionRate | Metric::Revenue)
}

const CAMPAIGN_METRICS: &str = "must be conversion_rate or revenue for a campaign experiment";

#[derive(Debug, Clone, PartialEq)]
pub struct NewExperiment {
    pub experiment_type: ExperimentType,
    pub campaign_id: Option<String>,
    pub name: String,
    pub description: String,
    pub hypothesis: String,
    pub target_tier: String,
    pub variants: Vec<Variant>,
    pub end_date: Option<String>,
    pub min_sample_size: u64,
    pub confidence_level: u32,
    pub primary_metric: Metric,
    pub secondary_metrics: Vec<Metric>,
    pub minimum_detectable_effect: f64,
    pub sequential: bool,
}

impl NewExperiment {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, FIELDS);
        let experiment_type =
            f.optional("experimentType", |v| crate::domain::wire::one_of(&ExperimentType::ALL, v)).unwrap_or_default();
        let name = f.required("name", name);
        let (target_tier, variants, campaign_id) = match experiment_type {
            ExperimentType::Pricing => {
                let target_tier = f.required("targetTier", parse::slug);
                if !f.has("variants") {
                    f.fail("variants", "is required");
                }
                if f.has("campaignId") {
                    f.fail("campaignId", "only a campaign experiment (experimentType campaign) names a campaign");
                }
                (target_tier, read_variants(&mut f), None)
            }
            ExperimentType::Campaign => {
                // Whether a campaign has this id is the route's to ask.
                let campaign_id = f.required("campaignId", parse::slug);
                if f.has("targetTier") {
                    f.fail("targetTier", "a campaign experiment has no tier; it tests the campaign's content");
                }
                if f.has("variants") {
                    f.fail("variants", "a campaign experiment's variants are the campaign's content variants");
                }
                // Filled in from the campaign (`campaign::experiment_variants`).
                (Some(String::new()), Some(Vec::new()), campaign_id)
            }
        };
        let primary_metric = f.optional("primaryMetric", Metric::parse).unwrap_or(Metric::ConversionRate);
        let secondary_metrics = f.optional("secondaryMetrics", metrics).unwrap_or_default();
        if experiment_type == ExperimentType::Campaign {
            if !campaign_metric(primary_metric) {
                f.fail("primaryMetric", CAMPAIGN_METRICS);
            }
            if !secondary_metrics.iter().copied().all(campaign_metric) {
                f.fail("secondaryMetrics", CAMPAIGN_METRICS);
            }
        }
        let new = Self {
            experiment_type,
            campaign_id,
            name: name.unwrap_or_default(),
            description: f.optional("description", long_text).unwrap_or_default(),
            hypothesis: f.optional("hypothesis", long_text).unwrap_or_default(),
            target_tier: target_tier.unwrap_or_default(),
            variants: variants.unwrap_or_default(),
            end_date: f.optional("endDate", date),
            min_sample_size: f.optional("minSampleSize", min_sample).unwrap_or(100),
            confidence_level: f.optional("confidenceLevel", confidence).unwrap_or(95),
            primary_metric,
            secondary_metrics,
            minimum_detectable_effect: f.optional("minimumDetectableEffect", mde).unwrap_or(10.0),
            sequential: f.optional("sequential", parse::boolean).unwrap_or(false),
        };
        f.finish()?;
        Ok(new)
    }

    pub fn into_experiment(self, experiment_id: String, actor: &Actor) -> Experiment {
        Experiment {
            experiment_id,
            experiment_type: self.experiment_type,
            campaign_id: self.campaign_id,
            name: self.name,
            description: self.description,
            hypothesis: self.hypothesis,
            target_tier: self.target_tier,
            variants: self.variants,
            status: ExperimentStatus::Draft,
            start_date: None,
            end_date: self.end_date,
            min_sample_size: self.min_sample_size,
            confidence_level: self.confidence_level,
            primary_metric: self.primary_metric,
            secondary_metrics: self.secondary_metrics,
            minimum_detectable_effect: self.minimum_detectable_effect,
            sequential: self.sequential,
            phase: 1,
            phase_started_at: None,
            winner: None,
            implementation: None,
            version: 1,
            created_by: actor.id.clone(),
            created_at: actor.at.clone(),
            updated_by: actor.id.clone(),
            updated_at: actor.at.clone(),
            completed_at: None,
            final_results: None,
        }
    }
}

/// A partial edit; `version` is the one the editor read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExperimentPatch {
    pub version: u64,
    pub name: Option<String>,
    pub description: Option<String>,
    pub hypothesis: Option<String>,
    pub target_tier: Option<String>,
    pub variants: Option<Vec<Variant>>,
    pub end_date: Option<Option<String>>,
    pub min_sample_size: Option<u64>,
    pub confidence_level: Option<u32>,
    pub primary_metric: Option<Metric>,
    pub secondary_metrics: Option<Vec<Metric>>,
    pub minimum_detectable_effect: Option<f64>,
    pub sequential: Option<bool>,
}

impl ExperimentPatch {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        // What an experiment tests, and which campaign, is fixed at creation.
        let fixed = ["experimentType", "campaignId"];
        let allowed: Vec<&str> =
            std::iter::once("version").chain(FIELDS.iter().copied().filter(|f| !fixed.contains(f))).collect();
        let mut f = Fields::new(body, &allowed);
        let patch = Self {
            version: f.required("version", |v| parse::int_in(v, 1, i64::MAX).map(|n| n as u64)).unwrap_or_default(),
            name: f.optional("name", name),
            description: f.optional("description", long_text),
            hypothesis: f.optional("hypothesis", long_text),
            target_tier: f.optional("targetTier", parse::slug),
            variants: read_variants(&mut f),
            end_date: f.nullable("endDate", date),
            min_sample_size: f.optional("minSampleSize", min_sample),
            confidence_level: f.optional("confidenceLevel", confidence),
            primary_metric: f.optional("primaryMetric", Metric::parse),
            secondary_metrics: f.optional("secondaryMetrics", metrics),
            minimum_detectable_effect: f.optional("minimumDetectableEffect", mde),
            sequential: f.optional("sequential", parse::boolean),
        };
        f.finish()?;
        Ok(patch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Pause,
    Complete,
    Cancel,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Pause => "pause",
            Self::Complete => "complete",
            Self::Cancel => "cancel",
        }
    }
}

impl Experiment {
    fn next(&self, actor: &Actor) -> Experiment {
        let mut next = self.clone();
        next.version = self.version + 1;
        next.updated_by = actor.id.clone();
        next.updated_at = actor.at.clone();
        next
    }

    /// Whether the experiment holds its tier's slot (`EXPLIVE`) and prices the
    /// public catalog: a pricing experiment while active or paused. A campaign
    /// experiment never does.
    pub fn holds_tier(&self) -> bool {
        self.experiment_type == ExperimentType::Pricing && self.status.holds_tier()
    }

    pub fn control(&self) -> Option<&Variant> {
        self.variants.iter().find(|v| v.is_control)
    }

    pub fn variant(&self, variant_id: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.variant_id == variant_id)
    }

    /// Applies an edit. Draft: anything. Paused: anything but the tier; a change
    /// of variants starts a new phase. Active: descriptive fields only, because
    /// changing who sees what mid-run breaks the comparison. Ended: nothing.
    pub fn apply(&self, patch: ExperimentPatch, actor: &Actor) -> Result<Experiment, ExperimentError> {
        if patch.version != self.version {
            return Err(ExperimentError::VersionConflict { current: Some(self.version) });
        }
        let status = self.status.as_str();
        let locked = |field: &'static str| ExperimentError::NotEditable { status, field };
        if matches!(self.status, ExperimentStatus::Completed | ExperimentStatus::Cancelled) {
            return Err(locked("experiment"));
        }
        if self.status != ExperimentStatus::Draft && patch.target_tier.as_ref().is_some_and(|t| *t != self.target_tier)
        {
            return Err(locked("targetTier"));
        }
        if self.experiment_type == ExperimentType::Campaign {
            let refused = if patch.target_tier.is_some() {
                Some(("targetTier", "a campaign experiment has no tier"))
            } else if patch.variants.is_some() {
                Some(("variants", "a campaign experiment's variants are the campaign's content variants"))
            } else if patch.primary_metric.is_some_and(|m| !campaign_metric(m)) {
                Some(("primaryMetric", CAMPAIGN_METRICS))
            } else if patch.secondary_metrics.as_ref().is_some_and(|m| !m.iter().copied().all(campaign_metric)) {
                Some(("secondaryMetrics", CAMPAIGN_METRICS))
            } else {
                None
            };
            if let Some((field, why)) = refused {
                return Err(ValidationError::single(field, why).into());
            }
        }
        let variants_change = patch.variants.as_ref().is_some_and(|v| *v != self.variants);
        if self.status == ExperimentStatus::Active {
            if variants_change {
                return Err(locked("variants"));
            }
            let judged = patch.primary_metric.is_some_and(|m| m != self.primary_metric)
                || patch.confidence_level.is_some_and(|c| c != self.confidence_level)
                || patch.sequential.is_some_and(|s| s != self.sequential);
            if judged {
                return Err(locked("primaryMetric"));
            }
        }
        let mut e = self.next(actor);
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = patch.$field { e.$field = v; } )* };
        }
        set!(
            name,
            description,
            hypothesis,
            target_tier,
            variants,
            end_date,
            min_sample_size,
            confidence_level,
            primary_metric,
            secondary_metrics,
            minimum_detectable_effect,
            sequential
        );
        if variants_change && self.status == ExperimentStatus::Paused {
            e.phase = self.phase + 1;
            e.phase_started_at = None;
        }
        Ok(e)
    }

    pub fn transition(&self, action: Action, actor: &Actor) -> Result<Experiment, ExperimentError> {
        use ExperimentStatus::*;
        let to = match (self.status, action) {
            (Draft | Paused, Action::Start) => Active,
            (Active, Action::Pause) => Paused,
            (Active | Paused, Action::Complete) => Completed,
            (Draft | Active | Paused, Action::Cancel) => Cancelled,
            (from, action) => {
                return Err(ExperimentError::IllegalTransition { from: from.as_str(), action: action.as_str() })
            }
        };
        let mut e = self.next(actor);
        e.status = to;
        if to == Active {
            e.start_date.get_or_insert_with(|| actor.at.clone());
            e.phase_started_at.get_or_insert_with(|| actor.at.clone());
        }
        if matches!(to, Completed | Cancelled) {
            e.completed_at = Some(actor.at.clone());
        }
        Ok(e)
    }

    /// True when the experiment still holds its tier (active or paused) and its
    /// `endDate` is before `today`: its last day has passed.
    pub fn past_end_date(&self, today: NaiveDate) -> bool {
        self.status.holds_tier()
            && self
                .end_date
                .as_deref()
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .is_some_and(|end| end < today)
    }

    /// Stops an experiment whose `endDate` has passed: it completes (leaving its
    /// tier) with `results` recorded as its final results. Refused (409) for one
    /// that is not past its end date, so a repeat changes nothing.
    pub fn end_on_end_date(
        &self,
        results: &Results,
        today: NaiveDate,
        actor: &Actor,
    ) -> Result<Experiment, ExperimentError> {
        if !self.past_end_date(today) {
            return Err(ExperimentError::IllegalTransition { from: self.status.as_str(), action: "end" });
        }
        let mut e = self.transition(Action::Complete, actor)?;
        e.final_results = Some(FinalResults {
            reason: EndReason::EndDate,
            recorded_at: actor.at.clone(),
            phase: results.phase,
            total_participants: results.total_participants,
            statistical_significance: results.statistical_significance,
            p_value: results.p_value,
            winner: results.winner.clone(),
            recommendation: results.recommendation.clone(),
            variants: results
                .results
                .iter()
                .map(|v| FinalVariant {
                    variant_id: v.variant_id.clone(),
                    participants: v.participants,
                    conversions: v.conversions,
                    conversion_rate: v.conversion_rate,
                    revenue: v.revenue,
                })
                .collect(),
        });
        Ok(e)
    }

    /// Rolls `variant_id` out: the experiment completes with the implementation
    /// recorded. Allowed while it runs and once completed (not yet implemented).
    pub fn implement(
        &self,
        variant_id: &str,
        rollout: Rollout,
        forced: bool,
        reason: Option<String>,
        actor: &Actor,
    ) -> Result<Experiment, ExperimentError> {
        let open = self.status.holds_tier() || self.status == ExperimentStatus::Completed;
        if !open || self.implementation.is_some() {
            return Err(ExperimentError::IllegalTransition { from: self.status.as_str(), action: "implement-winner" });
        }
        let mut e = self.next(actor);
        e.status = ExperimentStatus::Completed;
        e.completed_at.get_or_insert_with(|| actor.at.clone());
        e.winner = Some(variant_id.to_string());
        e.implementation = Some(Implementation {
            variant_id: variant_id.to_string(),
            price_version: rollout.price_version,
            campaign_version: rollout.campaign_version,
            forced,
            reason,
            implemented_by: actor.id.clone(),
            implemented_at: actor.at.clone(),
        });
        Ok(e)
    }

    /// What the catalog needs while the experiment holds its tier.
    pub fn live(&self) -> LiveExperiment {
        LiveExperiment {
            experiment_id: self.experiment_id.clone(),
            target_tier: self.target_tier.clone(),
            status: self.status,
            phase: self.phase,
            variants: self
                .variants
                .iter()
                .map(|v| LiveVariant {
                    variant_id: v.variant_id.clone(),
                    allocation: v.allocation,
                    pricing: v.pricing,
                    features: v.features.clone(),
                })
                .collect(),
            end_date: self.end_date.clone(),
        }
    }
}

/// The copy of a running experiment the public catalog reads (one Query for all
/// tiers): enough to assign a visitor and price the tier for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveExperiment {
    pub experiment_id: String,
    pub target_tier: String,
    pub status: ExperimentStatus,
    pub phase: u32,
    pub variants: Vec<LiveVariant>,
    /// The experiment's last day, for the daily cron that ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveVariant {
    pub variant_id: String,
    pub allocation: u32,
    pub pricing: VariantPricing,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<Feature>,
}

/// The price and features a visitor is shown for `tier`: the variant's while an
/// experiment on it is active, otherwise the tier's own. Returns the variant when one applied.
pub fn price_for_user(tier: &mut Tier, live: &[LiveExperiment], user_id: &str) -> Option<(String, String)> {
    let exp = live.iter().find(|e| e.target_tier == tier.tier_id && e.status == ExperimentStatus::Active)?;
    let b = bucket(&exp.experiment_id, user_id);
    let mut upper = 0u64;
    let v = exp.variants.iter().find(|v| {
        upper += u64::from(v.allocation) * (BUCKETS / 100);
        b < upper
    })?;
    tier.prices = v.pricing.over(tier.prices);
    if !v.features.is_empty() {
        tier.features = features_over(&tier.features, &v.features);
    }
    Some((exp.experiment_id.clone(), v.variant_id.clone()))
}

// ---- Tracking -----------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackMetric {
    Signup,
    Conversion,
    Revenue,
    Retention30,
    Retention90,
}

impl TrackMetric {
    pub fn parse(v: &Value) -> Result<Self, String> {
        match v.as_str() {
            Some("signup") => Ok(Self::Signup),
            Some("conversion") => Ok(Self::Conversion),
            Some("revenue") => Ok(Self::Revenue),
            Some("retention30") => Ok(Self::Retention30),
            Some("retention90") => Ok(Self::Retention90),
            _ => Err("must be one of signup, conversion, revenue, retention30, retention90".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub user_id: String,
    pub metric: TrackMetric,
    /// Cents, for revenue (and optionally a conversion's deal size).
    pub value: Option<i64>,
    pub event_id: Option<String>,
}

fn event_id(v: &Value) -> Result<String, String> {
    user_id(v).map_err(|_| "must be 1-128 characters of letters, digits, '_', '-', '.', ':' or '@'".into())
}

impl Track {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["userId", "metric", "value", "eventId"]);
        let user_id = f.required("userId", user_id);
        let metric = f.required("metric", TrackMetric::parse);
        let value = f.optional("value", parse::cents);
        let event_id = f.optional("eventId", event_id);
        match metric {
            Some(TrackMetric::Revenue) if value.is_none() => f.fail("value", "is required for revenue (cents)"),
            Some(TrackMetric::Signup | TrackMetric::Retention30 | TrackMetric::Retention90) if value.is_some() => {
                f.fail("value", "only revenue and conversion take a value")
            }
            _ => {}
        }
        f.finish()?;
        match (user_id, metric) {
            (Some(user_id), Some(metric)) => Ok(Self { user_id, metric, value, event_id }),
            _ => Err(ValidationError::single("body", "is incomplete")),
        }
    }

    /// The key that makes a replay a no-op: once per user for the flags, per
    /// event id for revenue (no id: one revenue event per participant).
    pub fn dedupe_key(&self) -> String {
        let metric = match self.metric {
            TrackMetric::Signup => "signup",
            TrackMetric::Conversion => "conversion",
            TrackMetric::Revenue => "revenue",
            TrackMetric::Retention30 => "retention30",
            TrackMetric::Retention90 => "retention90",
        };
        match self.metric {
            TrackMetric::Revenue => format!("{metric}:{}", self.event_id.as_deref().unwrap_or("-")),
            _ => metric.to_string(),
        }
    }
}

/// One participant's state in the current phase (the assignment item).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Participant {
    pub variant_id: String,
    pub phase: u32,
    /// Optimistic lock over the participant's tracking.
    pub seq: u64,
    /// Dedupe keys already counted.
    pub events: Vec<String>,
    /// Total revenue in cents so far.
    pub revenue: i64,
    /// When the participant was first exposed in this phase (RFC 3339).
    pub assigned_at: String,
}

/// The counter changes one tracking event makes to its variant's aggregate, and
/// the participant's new revenue total. `None`: a replay, nothing to count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delta {
    pub signups: i64,
    pub conversions: i64,
    pub revenue_count: i64,
    pub revenue_sum: i64,
    /// Per-participant revenue squares: (r + v)² − r², so the variance is of
    /// revenue per participant, which the Welch test compares.
    pub revenue_sum_sq: i128,
    pub payers: i64,
    pub retention30: i64,
    pub retention90: i64,
    pub new_revenue: i64,
}

pub fn delta(track: &Track, p: &Participant) -> Result<Option<Delta>, ExperimentError> {
    let key = track.dedupe_key();
    if p.events.contains(&key) {
        return Ok(None);
    }
    let revenue_events = p.events.iter().filter(|e| e.starts_with("revenue:")).count();
    let mut d = Delta { new_revenue: p.revenue, ..Delta::default() };
    match track.metric {
        TrackMetric::Signup => d.signups = 1,
        TrackMetric::Conversion => d.conversions = 1,
        TrackMetric::Retention30 => d.retention30 = 1,
        TrackMetric::Retention90 => d.retention90 = 1,
        TrackMetric::Revenue => {
            if revenue_events >= MAX_EVENTS_PER_USER {
                return Err(ExperimentError::TooManyEvents);
            }
        }
    }
    if let Some(value) = track.value {
        let new = p.revenue.saturating_add(value).min(parse::MAX_CENTS);
        let added = new - p.revenue;
        d.revenue_count = 1;
        d.revenue_sum = added;
        d.revenue_sum_sq = i128::from(new) * i128::from(new) - i128::from(p.revenue) * i128::from(p.revenue);
        d.payers = i64::from(p.revenue == 0 && new > 0);
        d.new_revenue = new;
    }
    Ok(Some(d))
}

// ---- Results ------------------------------------------------------------------

/// A variant's counters in one phase, summed over its shards.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub participants: u64,
    pub signups: u64,
    pub conversions: u64,
    pub revenue_count: u64,
    pub revenue_sum: i128,
    pub revenue_sum_sq: i128,
    pub payers: u64,
    pub retention30: u64,
    pub retention90: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.participants += o.participants;
        self.signups += o.signups;
        self.conversions += o.conversions;
        self.revenue_count += o.revenue_count;
        self.revenue_sum += o.revenue_sum;
        self.revenue_sum_sq += o.revenue_sum_sq;
        self.payers += o.payers;
        self.retention30 += o.retention30;
        self.retention90 += o.retention90;
    }

    /// Revenue per participant (zeros included).
    fn revenue_moments(&self) -> Moments {
        Moments::from_sums(self.participants, self.revenue_sum, self.revenue_sum_sq)
    }

    /// (successes, trials) of the primary metric when it is a proportion.
    fn proportion(&self, metric: Metric) -> (u64, u64) {
        match metric {
            Metric::Signups => (self.signups, self.participants),
            // Retention among those who converted.
            Metric::Retention => (self.retention30, self.conversions),
            _ => (self.conversions, self.participants),
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VariantResult {
    pub variant_id: String,
    pub name: String,
    pub is_control: bool,
    pub allocation: u32,
    pub participants: u64,
    pub signups: u64,
    pub conversions: u64,
    pub conversion_rate: f64,
    /// Cents.
    pub revenue: i64,
    pub revenue_events: u64,
    /// Revenue per paying participant, cents.
    pub average_deal_size: f64,
    pub revenue_per_participant: f64,
    pub retention30_day: f64,
    pub retention90_day: f64,
    /// Wilson interval of the conversion rate at the experiment's confidence level.
    pub confidence_interval: IntervalOut,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct IntervalOut {
    pub lower: f64,
    pub upper: f64,
}

impl From<Interval> for IntervalOut {
    fn from(i: Interval) -> Self {
        Self { lower: i.lower, upper: i.upper }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    pub variant_id: String,
    /// Relative lift of the primary metric over the control.
    pub lift: Option<f64>,
    pub conversion_z: Option<f64>,
    pub conversion_p_value: Option<f64>,
    pub revenue_t: Option<f64>,
    pub revenue_df: Option<f64>,
    pub revenue_p_value: Option<f64>,
    /// The primary metric's p-value (fixed-horizon test).
    pub p_value: Option<f64>,
    /// Always-valid interval of the primary metric's difference and its p-value.
    pub sequential_interval: Option<IntervalOut>,
    pub sequential_p_value: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Srm {
    pub chi_square: Option<f64>,
    pub p_value: Option<f64>,
    pub mismatch: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SampleSize {
    pub baseline: f64,
    /// Relative, percent.
    pub minimum_detectable_effect: f64,
    pub power: f64,
    pub required_per_variant: Option<u64>,
    /// Participants still needed in the smallest variant (at least minSampleSize).
    pub remaining: Option<u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    pub experiment_id: String,
    pub status: ExperimentStatus,
    pub phase: u32,
    pub primary_metric: Metric,
    pub confidence_level: u32,
    pub sequential: bool,
    pub results: Vec<VariantResult>,
    pub comparisons: Vec<Comparison>,
    /// The primary metric's p-value of the best challenger, Bonferroni-adjusted
    /// for the number of challengers.
    pub p_value: Option<f64>,
    pub statistical_significance: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub winner: Option<String>,
    pub has_winner: bool,
    pub recommendation: String,
    pub srm: Srm,
    pub sample_size: SampleSize,
    pub total_participants: u64,
}

/// The results of `exp` from its variants' counters (in variant order; missing
/// variants count zero).
pub fn results(exp: &Experiment, counts: &[(String, Counts)]) -> Results {
    let get = |id: &str| counts.iter().find(|(v, _)| v == id).map(|(_, c)| c.clone()).unwrap_or_default();
    let alpha = 1.0 - f64::from(exp.confidence_level) / 100.0;
    let z = stats::z_for_confidence(f64::from(exp.confidence_level));
    let metric = exp.primary_metric;
    let rows: Vec<(&Variant, Counts)> = exp.variants.iter().map(|v| (v, get(&v.variant_id))).collect();
    let results: Vec<VariantResult> = rows
        .iter()
        .map(|(v, c)| VariantResult {
            variant_id: v.variant_id.clone(),
            name: v.name.clone(),
            is_control: v.is_control,
            allocation: v.allocation,
            participants: c.participants,
            signups: c.signups,
            conversions: c.conversions,
            conversion_rate: ratio(c.conversions, c.participants),
            revenue: i64::try_from(c.revenue_sum).unwrap_or(i64::MAX),
            revenue_events: c.revenue_count,
            average_deal_size: if c.payers == 0 { 0.0 } else { c.revenue_sum as f64 / c.payers as f64 },
            revenue_per_participant: c.revenue_moments().mean,
            retention30_day: ratio(c.retention30, c.conversions),
            retention90_day: ratio(c.retention90, c.conversions),
            confidence_interval: stats::wilson(c.conversions, c.participants, z).into(),
        })
        .collect();

    let control = rows.iter().find(|(v, _)| v.is_control).map(|(_, c)| c.clone()).unwrap_or_default();
    let challengers: Vec<&(&Variant, Counts)> = rows.iter().filter(|(v, _)| !v.is_control).collect();
    let comparisons: Vec<Comparison> = challengers.iter().map(|(v, c)| compare(v, &control, c, exp, alpha)).collect();

    // The challenger with the smallest primary p-value decides; Bonferroni keeps
    // the family-wise error at alpha across challengers.
    let k = challengers.len().max(1) as f64;
    let decisive = |c: &Comparison| if exp.sequential { c.sequential_p_value } else { c.p_value };
    let best = comparisons
        .iter()
        .filter_map(|c| decisive(c).map(|p| (c, p)))
        .min_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
    let p_value = best.map(|(_, p)| (p * k).min(1.0));
    let min_participants = rows.iter().map(|(_, c)| c.participants).min().unwrap_or(0);
    let enough = min_participants >= exp.min_sample_size;
    let significant = enough && p_value.is_some_and(|p| p < alpha);

    let srm = {
        let observed: Vec<u64> = rows.iter().map(|(_, c)| c.participants).collect();
        let weights: Vec<f64> = rows.iter().map(|(v, _)| f64::from(v.allocation)).collect();
        match stats::chi_square_fit(&observed, &weights) {
            Some((chi, p)) => Srm { chi_square: Some(chi), p_value: Some(p), mismatch: p < SRM_ALPHA },
            None => Srm { chi_square: None, p_value: None, mismatch: false },
        }
    };

    let winner = match best {
        Some((c, _)) if significant && !srm.mismatch => match c.lift {
            Some(l) if l > 0.0 => Some(c.variant_id.clone()),
            Some(l) if l < 0.0 => exp.control().map(|v| v.variant_id.clone()),
            _ => None,
        },
        _ => None,
    };

    let mde = exp.minimum_detectable_effect / 100.0;
    let (baseline, required) = match metric {
        Metric::Revenue => {
            let m = control.revenue_moments();
            (m.mean, stats::sample_size_mean(m.mean, m.variance.sqrt(), mde, alpha / k, POWER))
        }
        _ => {
            let (x, n) = control.proportion(metric);
            let base = ratio(x, n);
            (base, stats::sample_size_proportion(base, mde, alpha / k, POWER))
        }
    };
    let needed = required.map(|r| r.max(exp.min_sample_size));
    let sample_size = SampleSize {
        baseline,
        minimum_detectable_effect: exp.minimum_detectable_effect,
        power: POWER,
        required_per_variant: required,
        remaining: needed.map(|n| n.saturating_sub(min_participants)),
    };

    let recommendation = recommend(exp, &winner, significant, enough, &srm, &sample_size, min_participants);
    Results {
        experiment_id: exp.experiment_id.clone(),
        status: exp.status,
        phase: exp.phase,
        primary_metric: metric,
        confidence_level: exp.confidence_level,
        sequential: exp.sequential,
        results,
        comparisons,
        p_value,
        statistical_significance: significant,
        has_winner: winner.is_some(),
        winner,
        recommendation,
        srm,
        sample_size,
        total_participants: rows.iter().map(|(_, c)| c.participants).sum(),
    }
}

fn compare(v: &Variant, control: &Counts, c: &Counts, exp: &Experiment, alpha: f64) -> Comparison {
    let conversion = stats::two_proportion_z(control.conversions, control.participants, c.conversions, c.participants);
    let welch = stats::welch(control.revenue_moments(), c.revenue_moments());
    let n_total = (control.participants + c.participants) as f64;
    let (p_value, lift, seq) = match exp.primary_metric {
        Metric::Revenue => {
            let (a, b) = (control.revenue_moments(), c.revenue_moments());
            let lift = (a.mean != 0.0).then(|| (b.mean - a.mean) / a.mean);
            let var = if a.n > 0.0 && b.n > 0.0 { a.variance / a.n + b.variance / b.n } else { 0.0 };
            (
                welch.map(|w| w.2),
                lift,
                stats::sequential(b.mean - a.mean, var, n_total, alpha, stats::SEQUENTIAL_TUNING),
            )
        }
        metric => {
            let (xa, na) = control.proportion(metric);
            let (xb, nb) = c.proportion(metric);
            let (pa, pb) = (ratio(xa, na), ratio(xb, nb));
            let test = stats::two_proportion_z(xa, na, xb, nb);
            let lift = (pa > 0.0).then(|| (pb - pa) / pa);
            let var = if na > 0 && nb > 0 { pa * (1.0 - pa) / na as f64 + pb * (1.0 - pb) / nb as f64 } else { 0.0 };
            let n = (na + nb) as f64;
            (test.map(|t| t.1), lift, stats::sequential(pb - pa, var, n, alpha, stats::SEQUENTIAL_TUNING))
        }
    };
    Comparison {
        variant_id: v.variant_id.clone(),
        lift,
        conversion_z: conversion.map(|t| t.0),
        conversion_p_value: conversion.map(|t| t.1),
        revenue_t: welch.map(|w| w.0),
        revenue_df: welch.map(|w| w.1),
        revenue_p_value: welch.map(|w| w.2),
        p_value,
        sequential_interval: seq.map(|s| s.interval.into()),
        sequential_p_value: seq.map(|s| s.p_value),
    }
}

fn recommend(
    exp: &Experiment,
    winner: &Option<String>,
    significant: bool,
    enough: bool,
    srm: &Srm,
    size: &SampleSize,
    min_participants: u64,
) -> String {
    if srm.mismatch {
        return "Sample ratio mismatch: participants do not match the allocations (p < 0.001). Check assignment \
                and tracking before trusting any result."
            .into();
    }
    if !enough {
        return format!(
            "Keep running: the smallest variant has {min_participants} of the {} participants required before judging.",
            exp.min_sample_size
        );
    }
    match winner {
        Some(w) if exp.control().is_some_and(|c| &c.variant_id == w) => match exp.experiment_type {
            ExperimentType::Pricing => {
                "The control wins: every tested price did significantly worse. Keep the current price.".into()
            }
            ExperimentType::Campaign => "The control wins: every other message did significantly worse. \
                                         Implement it to send the control to every recipient."
                .into(),
        },
        Some(w) => match exp.experiment_type {
            ExperimentType::Pricing => {
                format!("Variant {w} wins at {}% confidence. Implement it to roll its price out.", exp.confidence_level)
            }
            ExperimentType::Campaign => format!(
                "Variant {w} wins at {}% confidence. Implement it to send it to every recipient of the campaign.",
                exp.confidence_level
            ),
        },
        None if significant => "Significant difference without a clear direction; review the comparisons.".into(),
        None => match size.remaining {
            Some(r) if r > 0 => format!(
                "No significant difference yet. About {r} more participants per variant are needed to detect a {}% \
                 lift.",
                exp.minimum_detectable_effect
            ),
            _ => format!(
                "No significant difference at the planned size: any effect is likely smaller than {}%.",
                exp.minimum_detectable_effect
            ),
        },
    }
}

/// The price a winner rolls out: its overrides over the tier's current prices.
pub fn rollout_prices(tier: &Tier, variant: &Variant) -> Prices {
    variant.pricing.over(tier.prices)
}

impl super::audit::Audited for Experiment {
    const ENTITY_TYPE: &'static str = "experiment";
    fn entity_id(&self) -> &str {
        &self.experiment_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variants_feature_differences_replace_disable_and_add() {
        let f = |id: &str, enabled: bool| Feature {
            feature_id: id.into(),
            name: id.to_uppercase(),
            description: String::new(),
            enabled,
            usage_limit: None,
        };
        let base = vec![f("a", true), f("b", true), f("c", true)];
        let mut richer_b = f("b", true);
        richer_b.usage_limit = Some(10);
        let out = features_over(&base, &[f("c", false), f("new", true), richer_b.clone()]);
        assert_eq!(out, vec![f("a", true), richer_b, f("c", false), f("new", true)]);
        assert_eq!(features_over(&base, &[]), base);
    }
    use serde_json::json;

    fn actor() -> Actor {
        Actor::fixture("mgr", "2026-11-30T10:00:00.000Z")
    }

    fn body() -> Value {
        json!({
            "name": "Gold price test", "targetTier": "gold",
            "variants": [
                {"variantId": "control", "name": "Control", "isControl": true, "allocation": 50},
                {"variantId": "higher", "name": "Higher", "allocation": 50, "pricing": {"monthly": 390000}}
            ]
        })
    }

    fn experiment() -> Experiment {
        NewExperiment::parse(&body())
            .unwrap()
            .into_experiment(new_experiment_id("01jf0000000000000000000000"), &actor())
    }

    #[test]
    fn hash_buckets_are_fixed_and_spread_as_allocated() {
        // Pinned values: a change of hash would reshuffle every running experiment.
        // The same user lands independently per experiment, and users apart within
        // one (Python: int.from_bytes(hashlib.sha256(b"exp_a:user-1").digest()[:8],
        // "big") % 10000, and likewise for "exp_b:user-1" and "exp_a:user-2").
        assert_eq!(
            (bucket("exp_a", "user-1"), bucket("exp_b", "user-1"), bucket("exp_a", "user-2")),
            (417, 8782, 7211)
        );
        let pinned: Vec<u64> = ["u1", "u2", "u3"].iter().map(|u| bucket("exp_pin", u)).collect();
        assert_eq!(pinned, PINNED_BUCKETS.to_vec());
        let exp = experiment();
        let variants = vec![
            Variant { allocation: 50, ..exp.variants[0].clone() },
            Variant { variant_id: "b".into(), allocation: 30, ..exp.variants[1].clone() },
            Variant { variant_id: "c".into(), allocation: 20, ..exp.variants[1].clone() },
        ];
        let mut seen = [0u64; 3];
        for i in 0..100_000 {
            let user = format!("user-{i}");
            let v = assign(&exp.experiment_id, &variants, &user).unwrap();
            assert_eq!(assign(&exp.experiment_id, &variants, &user).unwrap().variant_id, v.variant_id);
            let idx = variants.iter().position(|x| x.variant_id == v.variant_id).unwrap();
            seen[idx] += 1;
        }
        let (_, p) = stats::chi_square_fit(&seen, &[50.0, 30.0, 20.0]).unwrap();
        assert!(p > 0.001, "split {seen:?} p = {p}");
        // Another experiment reshuffles the same users independently.
        let same = (0..1_000)
            .filter(|i| {
                let u = format!("user-{i}");
                (bucket("exp_x", &u) < 5_000) == (bucket("exp_y", &u) < 5_000)
            })
            .count();
        assert!((400..600).contains(&same), "{same}");
    }

    /// From Python: int.from_bytes(hashlib.sha256(b"exp_pin:u1").digest()[:8], "big") % 10000, …
    const PINNED_BUCKETS: [u64; 3] = [7501, 5554, 1722];

    #[test]
    fn cumulative_ranges() {
        let exp = experiment();
        assert_eq!(variant_for_bucket(&exp.variants, 0).unwrap().variant_id, "control");
        assert_eq!(variant_for_bucket(&exp.variants, 4_999).unwrap().variant_id, "control");
        assert_eq!(variant_for_bucket(&exp.variants, 5_000).unwrap().variant_id, "higher");
        assert_eq!(variant_for_bucket(&exp.variants, 9_999).unwrap().variant_id, "higher");
        assert!(variant_for_bucket(&exp.variants, 10_000).is_none());
    }

    #[test]
    fn validation_names_every_field() {
        let err = NewExperiment::parse(&json!({
            "name": "", "targetTier": "Gold!", "confidenceLevel": 80, "minSampleSize": 0, "primaryMetric": "clicks",
            "status": "active",
            "variants": [
                {"variantId": "a", "name": "A", "allocation": 60, "pricing": {"yearly": 5}},
                {"variantId": "b", "name": "B", "allocation": 30, "pricing": {"monthly": 1}}
            ]
        }))
        .unwrap_err();
        let fields: Vec<&str> = err.fields.keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            vec!["confidenceLevel", "minSampleSize", "name", "primaryMetric", "status", "targetTier", "variants"]
        );
        assert!(err.fields["variants"].contains("control") || err.fields["variants"].contains("100"));
        let one = NewExperiment::parse(&json!({"name": "x", "targetTier": "gold",
            "variants": [{"variantId": "a", "name": "A", "isControl": true, "allocation": 100}]}))
        .unwrap_err();
        assert!(one.fields["variants"].contains("at least 2"));
    }

    #[test]
    fn lifecycle_and_phases() {
        let e = experiment();
        assert!(matches!(
            e.transition(Action::Pause, &actor()),
            Err(ExperimentError::IllegalTransition { from: "draft", action: "pause" })
        ));
        let active = e.transition(Action::Start, &actor()).unwrap();
        assert_eq!(active.status, ExperimentStatus::Active);
        assert!(active.start_date.is_some());
        let mut variants = active.variants.clone();
        variants[0].allocation = 60;
        variants[1].allocation = 40;
        let patch = ExperimentPatch { version: active.version, variants: Some(variants.clone()), ..Default::default() };
        assert!(matches!(active.apply(patch.clone(), &actor()), Err(ExperimentError::NotEditable { .. })));
        let paused = active.transition(Action::Pause, &actor()).unwrap();
        let patch = ExperimentPatch { version: paused.version, ..patch };
        let edited = paused.apply(patch, &actor()).unwrap();
        assert_eq!(edited.phase, 2);
        let resumed = edited.transition(Action::Start, &actor()).unwrap();
        assert_eq!(resumed.start_date, active.start_date);
        let done = resumed.transition(Action::Complete, &actor()).unwrap();
        assert!(done.transition(Action::Cancel, &actor()).is_err());
        let implemented = done
            .implement("higher", Rollout { price_version: Some(2), campaign_version: None }, false, None, &actor())
            .unwrap();
        assert!(implemented
            .implement("higher", Rollout { price_version: Some(3), campaign_version: None }, false, None, &actor())
            .is_err());
    }

    #[test]
    fn tracking_deltas_are_once_per_key_and_square_per_participant() {
        let t = |metric, value, event: Option<&str>| Track {
            user_id: "u".into(),
            metric,
            value,
            event_id: event.map(str::to_string),
        };
        let mut p = Participant { variant_id: "a".into(), phase: 1, ..Default::default() };
        let d = delta(&t(TrackMetric::Revenue, Some(300), Some("e1")), &p).unwrap().unwrap();
        assert_eq!((d.revenue_sum, d.revenue_sum_sq, d.payers, d.new_revenue), (300, 90_000, 1, 300));
        p.events.push("revenue:e1".into());
        p.revenue = 300;
        assert_eq!(delta(&t(TrackMetric::Revenue, Some(300), Some("e1")), &p).unwrap(), None);
        let d = delta(&t(TrackMetric::Revenue, Some(200), Some("e2")), &p).unwrap().unwrap();
        assert_eq!((d.revenue_sum, d.revenue_sum_sq, d.payers), (200, 250_000 - 90_000, 0));
        p.events.push("conversion".into());
        assert_eq!(delta(&t(TrackMetric::Conversion, None, Some("other")), &p).unwrap(), None);
        p.events = (0..MAX_EVENTS_PER_USER).map(|i| format!("revenue:{i}")).collect();
        assert!(matches!(delta(&t(TrackMetric::Revenue, Some(1), Some("x")), &p), Err(ExperimentError::TooManyEvents)));
    }

    #[test]
    fn results_find_a_winner_and_flag_srm() {
        let e = experiment();
        let c = |participants, conversions| Counts { participants, conversions, ..Default::default() };
        let r = results(&e, &[("control".into(), c(5_000, 500)), ("higher".into(), c(5_000, 600))]);
        assert!(r.statistical_significance, "{r:?}");
        assert_eq!(r.winner.as_deref(), Some("higher"));
        assert!(!r.srm.mismatch);
        let r = results(&e, &[("control".into(), c(5_400, 540)), ("higher".into(), c(4_600, 460))]);
        assert!(r.srm.mismatch);
        assert!(r.winner.is_none());
        let r = results(&e, &[("control".into(), c(50, 5)), ("higher".into(), c(50, 9))]);
        assert!(!r.statistical_significance);
        assert!(r.recommendation.starts_with("Keep running"));
        let r = results(&e, &[]);
        assert_eq!(r.total_participants, 0);
        assert_eq!(r.results[0].confidence_interval, IntervalOut { lower: 0.0, upper: 1.0 });
    }
}
