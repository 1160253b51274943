//! The tier catalog entry: its shape, how a request body becomes one, and the
//! rules for changing it.

use super::actor::Actor;
use super::money::Percent;
use super::pricing_rules::{ListPrices, TierPricing};
use super::validation::{parse, Fields, ValidationError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The tier every partner falls back to; it can never be archived.
pub const DEFAULT_TIER_ID: &str = "free";

/// Path words that share `/api/admin/tiers/{x}` with other routes, so they can never
/// be tier ids.
const RESERVED_TIER_IDS: &[&str] =
    &["analytics", "revenue", "funnel", "initialize", "compare", "upgrade-price", "metrics"];

const MAX_FEATURES: usize = 100;
const MAX_LIMITS: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error("tier not found")]
    NotFound,
    #[error("feature not found on this tier")]
    FeatureNotFound,
    #[error("a tier with this id already exists")]
    AlreadyExists,
    #[error("a feature with this id already exists on this tier")]
    FeatureExists,
    #[error("the tier was changed by someone else; reload it and retry")]
    VersionConflict { current: Option<u64> },
    #[error("partners are still on this tier; move them before archiving it")]
    HasPartners,
    #[error("the default tier cannot be archived")]
    DefaultTier,
    #[error("the tier is archived")]
    Archived,
    #[error("the target tier does not rank above the current tier")]
    NotAnUpgrade,
    #[error("a tier holds at most 100 features")]
    TooManyFeatures,
    #[error("the two tiers are priced in different currencies")]
    CurrencyMismatch,
    #[error("another tier of this segment is already marked popular; unmark it first")]
    PopularTaken { segment: String, current: Option<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TierType {
    Individual,
    Dealer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TierStatus {
    Active,
    Archived,
}

impl TierStatus {
    pub fn parse(v: &Value) -> Result<Self, String> {
        match v.as_str() {
            Some("active") => Ok(Self::Active),
            Some("archived") => Ok(Self::Archived),
            _ => Err("must be active or archived".into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prices {
    /// Cents charged per month on monthly billing.
    pub monthly: i64,
    /// Cents charged per year on yearly billing.
    pub yearly: i64,
}

impl Tier {
    /// The list prices the pricing rules and constraints judge.
    pub fn list_prices(&self) -> ListPrices<'_> {
        ListPrices {
            tier_id: &self.tier_id,
            segment: &self.segment,
            monthly: self.prices.monthly,
            yearly: self.prices.yearly,
        }
    }
}

impl Prices {
    pub fn for_period(&self, period: super::money::BillingPeriod) -> i64 {
        match period {
            super::money::BillingPeriod::Monthly => self.monthly,
            super::money::BillingPeriod::Yearly => self.yearly,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Feature {
    pub feature_id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    /// `None` = unlimited.
    pub usage_limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tier {
    pub tier_id: String,
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub tier_type: TierType,
    pub is_premium: bool,
    pub segment: String,
    pub tier_level: u32,
    pub popular: bool,
    pub sort_order: u32,
    pub prices: Prices,
    pub currency: String,
    pub commitment_months: u32,
    pub pcr_multiplier: f64,
    /// Percent off for a customer upgrading into this tier from the one directly below
    /// it in the same segment (seed 002 "tier_upgrade: 5% off next tier").
    pub upgrade_incentive_percent: Option<Percent>,
    /// Named limits (`listings`, `imagesPerListing`, …); `None` = unlimited.
    pub limits: BTreeMap<String, Option<u64>>,
    /// Cents per unit beyond a limit. A limit with a price here is soft (usage goes
    /// on and is billed as overage); a limit without one is hard (usage stops).
    #[serde(default)]
    pub overage_prices: BTreeMap<String, i64>,
    /// Length of this tier's free trial, when it offers one.
    #[serde(default)]
    pub trial_days: Option<u32>,
    /// The tiers this one upsells to (seed 002 `upsellTargets`), checked to exist.
    #[serde(default)]
    pub upsell_targets: Vec<String>,
    /// Which of `limits` is the tier's headline capacity (seed 002 `maxGuests`).
    #[serde(default)]
    pub capacity_limit: Option<String>,
    pub features: Vec<Feature>,
    pub status: TierStatus,
    /// The current `PRICE#` version; a new one is written on each price change.
    pub price_version: u32,
    /// Seed 004 grandfathering: subscribers on an older price version keep it
    /// until this day, and the daily cron moves them to the current version from
    /// that day's run on. Set by a list-price change from the tier's `grandfatherMonths` constraint;
    /// absent, they keep their price until a price migration moves them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grandfathered_until: Option<NaiveDate>,
    pub version: u64,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
}

/// The editable fields of a tier as a create request gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTier {
    pub tier_id: String,
    pub spec: TierSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TierSpec {
    pub name: String,
    pub description: String,
    pub tier_type: TierType,
    pub is_premium: bool,
    pub segment: String,
    pub tier_level: u32,
    pub popular: bool,
    pub sort_order: u32,
    pub prices: Prices,
    pub currency: String,
    pub commitment_months: u32,
    pub pcr_multiplier: f64,
    pub upgrade_incentive_percent: Option<Percent>,
    pub limits: BTreeMap<String, Option<u64>>,
    pub overage_prices: BTreeMap<String, i64>,
    pub trial_days: Option<u32>,
    pub upsell_targets: Vec<String>,
    pub capacity_limit: Option<String>,
    pub features: Vec<Feature>,
}

/// A partial update: `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TierPatch {
    pub version: u64,
    pub name: Option<String>,
    pub description: Option<String>,
    pub tier_type: Option<TierType>,
    pub is_premium: Option<bool>,
    pub segment: Option<String>,
    pub tier_level: Option<u32>,
    pub popular: Option<bool>,
    pub sort_order: Option<u32>,
    pub prices: Option<Prices>,
    pub currency: Option<String>,
    pub commitment_months: Option<u32>,
    pub pcr_multiplier: Option<f64>,
    pub upgrade_incentive_percent: Option<Option<Percent>>,
    pub limits: Option<BTreeMap<String, Option<u64>>>,
    pub overage_prices: Option<BTreeMap<String, i64>>,
    pub trial_days: Option<Option<u32>>,
    pub upsell_targets: Option<Vec<String>>,
    pub capacity_limit: Option<Option<String>>,
    pub features: Option<Vec<Feature>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewFeature {
    pub feature: Feature,
    pub expected_version: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeaturePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub usage_limit: Option<Option<u64>>,
    pub expected_version: Option<u64>,
}

const SPEC_FIELDS: &[&str] = &[
    "name",
    "description",
    "type",
    "isPremium",
    "segment",
    "tierLevel",
    "popular",
    "sortOrder",
    "prices",
    "currency",
    "commitmentMonths",
    "pcrMultiplier",
    "upgradeIncentivePercent",
    "limits",
    "overagePrices",
    "trialDays",
    "upsellTargets",
    "capacityLimit",
    "features",
];
const FEATURE_FIELDS: &[&str] = &["featureId", "name", "description", "enabled", "usageLimit"];

pub fn tier_id(v: &Value) -> Result<String, String> {
    let id = parse::slug(v)?;
    if RESERVED_TIER_IDS.contains(&id.as_str()) {
        return Err(format!("'{id}' is a reserved word"));
    }
    Ok(id)
}

fn name(v: &Value) -> Result<String, String> {
    parse::text(v, 1, 100)
}
fn description(v: &Value) -> Result<String, String> {
    parse::text(v, 0, 1000)
}
fn tier_type(v: &Value) -> Result<TierType, String> {
    match v.as_str() {
        Some("individual") => Ok(TierType::Individual),
        Some("dealer") => Ok(TierType::Dealer),
        _ => Err("must be individual or dealer".into()),
    }
}
fn tier_level(v: &Value) -> Result<u32, String> {
    parse::int_in(v, 1, 100).map(|n| n as u32)
}
fn sort_order(v: &Value) -> Result<u32, String> {
    parse::int_in(v, 0, 100_000).map(|n| n as u32)
}
fn commitment_months(v: &Value) -> Result<u32, String> {
    parse::int_in(v, 0, 120).map(|n| n as u32)
}
fn multiplier(v: &Value) -> Result<f64, String> {
    match v.as_f64() {
        Some(f) if f.is_finite() && (0.0..=100.0).contains(&f) => Ok(f),
        Some(_) => Err("must be between 0 and 100".into()),
        None => Err("must be a number".into()),
    }
}
fn usage_limit(v: &Value) -> Result<u64, String> {
    parse::count(v)
}

fn read_prices(f: &mut Fields<'_>, required: bool) -> Option<Prices> {
    let reader = |p: &mut Fields<'_>| {
        let monthly = p.required("monthly", parse::cents);
        let yearly = p.required("yearly", parse::cents);
        Some(Prices { monthly: monthly?, yearly: yearly? })
    };
    if required && !f.has("prices") {
        f.fail("prices", "is required");
        return None;
    }
    f.object("prices", &["monthly", "yearly"], reader)
}

/// `features`: up to 100 features with unique ids (also a pricing experiment
/// variant's feature differences).
pub(crate) fn read_features(f: &mut Fields<'_>) -> Option<Vec<Feature>> {
    let features = f.array_of_objects("features", MAX_FEATURES, FEATURE_FIELDS, read_feature)?;
    let mut seen = std::collections::BTreeSet::new();
    for feature in &features {
        if !seen.insert(feature.feature_id.clone()) {
            f.fail("features", format!("featureId '{}' appears more than once", feature.feature_id));
            return None;
        }
    }
    Some(features)
}

fn read_feature(f: &mut Fields<'_>) -> Option<Feature> {
    let feature_id = f.required("featureId", parse::slug);
    let name = f.required("name", name);
    let description = f.optional("description", description).unwrap_or_default();
    let enabled = f.optional("enabled", parse::boolean).unwrap_or(true);
    let usage_limit = f.nullable("usageLimit", usage_limit).flatten();
    Some(Feature { feature_id: feature_id?, name: name?, description, enabled, usage_limit })
}

fn read_limits(f: &mut Fields<'_>) -> Option<BTreeMap<String, Option<u64>>> {
    f.map_of("limits", MAX_LIMITS, parse::limit_name, parse::limit_value)
}

fn read_overage_prices(f: &mut Fields<'_>) -> Option<BTreeMap<String, i64>> {
    f.map_of("overagePrices", MAX_LIMITS, parse::limit_name, parse::cents)
}

/// The most tiers one tier upsells to (the levels above it in a segment, and a few more).
pub const MAX_UPSELL_TARGETS: usize = 5;

/// A tier someone pays for: either price above zero.
pub fn is_paid(tier: &Tier) -> bool {
    tier.prices.monthly > 0 || tier.prices.yearly > 0
}

/// The tier levels inside one segment (seed 002 `tierLevel: z.number().int().min(1).max(3)`).
pub const MIN_LEVEL: u32 = 1;
pub const MAX_LEVEL: u32 = 3;

/// `upsellTargets`: distinct tier ids. That they exist and are live is checked
/// against the table by the handler (`Tier::check_package_fields` for the rest).
fn upsell_targets(v: &Value) -> Result<Vec<String>, String> {
    let items = v.as_array().ok_or("must be an array of tier ids")?;
    if items.len() > MAX_UPSELL_TARGETS {
        return Err(format!("names at most {MAX_UPSELL_TARGETS} tiers"));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let id = tier_id(item)?;
        if out.contains(&id) {
            return Err(format!("'{id}' appears more than once"));
        }
        out.push(id);
    }
    Ok(out)
}

/// The longest trial a tier may offer, as for a trial given by hand on a tier change.
pub const MAX_TRIAL_DAYS: i64 = 90;

fn trial_days(v: &Value) -> Result<u32, String> {
    parse::int_in(v, 1, MAX_TRIAL_DAYS).map(|n| n as u32)
}

impl NewTier {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let allowed: Vec<&str> = std::iter::once("tierId").chain(SPEC_FIELDS.iter().copied()).collect();
        let mut f = Fields::new(body, &allowed);
        let tier_id = f.required("tierId", tier_id);
        let name = f.required("name", name);
        let prices = read_prices(&mut f, true);
        let spec = TierSpec {
            name: name.unwrap_or_default(),
            description: f.optional("description", description).unwrap_or_default(),
            tier_type: f.optional("type", tier_type).unwrap_or(TierType::Individual),
            is_premium: f.optional("isPremium", parse::boolean).unwrap_or(false),
            segment: f.optional("segment", parse::slug).unwrap_or_else(|| "standard".into()),
            tier_level: f.optional("tierLevel", tier_level).unwrap_or(1),
            popular: f.optional("popular", parse::boolean).unwrap_or(false),
            sort_order: f.optional("sortOrder", sort_order).unwrap_or(0),
            prices: prices.unwrap_or(Prices { monthly: 0, yearly: 0 }),
            currency: f.optional("currency", parse::currency).unwrap_or_else(|| "usd".into()),
            commitment_months: f.optional("commitmentMonths", commitment_months).unwrap_or(0),
            pcr_multiplier: f.optional("pcrMultiplier", multiplier).unwrap_or(1.0),
            upgrade_incentive_percent: f.optional("upgradeIncentivePercent", Percent::parse),
            limits: read_limits(&mut f).unwrap_or_default(),
            overage_prices: read_overage_prices(&mut f).unwrap_or_default(),
            trial_days: f.optional("trialDays", trial_days),
            upsell_targets: f.optional("upsellTargets", upsell_targets).unwrap_or_default(),
            capacity_limit: f.optional("capacityLimit", parse::limit_name),
            features: read_features(&mut f).unwrap_or_default(),
        };
        f.finish()?;
        Ok(Self { tier_id: tier_id.unwrap_or_default(), spec })
    }

    pub fn into_tier(self, by: &Actor) -> Tier {
        let s = self.spec;
        Tier {
            tier_id: self.tier_id,
            name: s.name,
            description: s.description,
            tier_type: s.tier_type,
            is_premium: s.is_premium,
            segment: s.segment,
            tier_level: s.tier_level,
            popular: s.popular,
            sort_order: s.sort_order,
            prices: s.prices,
            currency: s.currency,
            commitment_months: s.commitment_months,
            pcr_multiplier: s.pcr_multiplier,
            upgrade_incentive_percent: s.upgrade_incentive_percent,
            limits: s.limits,
            overage_prices: s.overage_prices,
            trial_days: s.trial_days,
            upsell_targets: s.upsell_targets,
            capacity_limit: s.capacity_limit,
            features: s.features,
            status: TierStatus::Active,
            price_version: 1,
            grandfathered_until: None,
            version: 1,
            created_at: by.at.clone(),
            created_by: by.id.clone(),
            updated_at: by.at.clone(),
            updated_by: by.id.clone(),
        }
    }
}

fn version(v: &Value) -> Result<u64, String> {
    parse::int_in(v, 1, i64::MAX).map(|n| n as u64)
}

impl TierPatch {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let allowed: Vec<&str> = std::iter::once("version").chain(SPEC_FIELDS.iter().copied()).collect();
        let mut f = Fields::new(body, &allowed);
        let patch = TierPatch {
            version: f.required("version", version).unwrap_or_default(),
            name: f.optional("name", name),
            description: f.optional("description", description),
            tier_type: f.optional("type", tier_type),
            is_premium: f.optional("isPremium", parse::boolean),
            segment: f.optional("segment", parse::slug),
            tier_level: f.optional("tierLevel", tier_level),
            popular: f.optional("popular", parse::boolean),
            sort_order: f.optional("sortOrder", sort_order),
            prices: read_prices(&mut f, false),
            currency: f.optional("currency", parse::currency),
            commitment_months: f.optional("commitmentMonths", commitment_months),
            pcr_multiplier: f.optional("pcrMultiplier", multiplier),
            upgrade_incentive_percent: f.nullable("upgradeIncentivePercent", Percent::parse),
            limits: read_limits(&mut f),
            overage_prices: read_overage_prices(&mut f),
            trial_days: f.nullable("trialDays", trial_days),
            upsell_targets: f.optional("upsellTargets", upsell_targets),
            capacity_limit: f.nullable("capacityLimit", parse::limit_name),
            features: read_features(&mut f),
        };
        f.finish()?;
        Ok(patch)
    }

    /// Whether this patch changes what customers pay, which needs `pricing_management`.
    pub fn touches_pricing(&self) -> bool {
        self.prices.is_some()
            || self.currency.is_some()
            || self.upgrade_incentive_percent.is_some()
            || self.overage_prices.is_some()
    }
}

impl NewFeature {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let allowed: Vec<&str> = FEATURE_FIELDS.iter().copied().chain(std::iter::once("version")).collect();
        let mut f = Fields::new(body, &allowed);
        let feature = read_feature(&mut f);
        let expected_version = f.optional("version", version);
        f.finish()?;
        Ok(Self {
            feature: feature.ok_or_else(|| ValidationError::single("body", "invalid feature"))?,
            expected_version,
        })
    }
}

impl FeaturePatch {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["name", "description", "enabled", "usageLimit", "version"]);
        let patch = Self {
            name: f.optional("name", name),
            description: f.optional("description", description),
            enabled: f.optional("enabled", parse::boolean),
            usage_limit: f.nullable("usageLimit", usage_limit),
            expected_version: f.optional("version", version),
        };
        f.finish()?;
        Ok(patch)
    }
}

/// A computed change: the tier before and after, for the audit entry.
#[derive(Debug, Clone)]
pub struct TierUpdate {
    pub before: Tier,
    pub after: Tier,
}

impl TierUpdate {
    pub fn prices_changed(&self) -> bool {
        self.before.prices != self.after.prices || self.before.currency != self.after.currency
    }
}

impl Tier {
    /// The rules between the segment fields of a finished tier (after create or
    /// edit): its capacity names one of its limits, it does not upsell to itself,
    /// and in a registered segment (`in_segment`) its level is 1–3.
    pub fn check_package_fields(&self, in_segment: bool) -> Result<(), ValidationError> {
        let mut fields = std::collections::BTreeMap::new();
        if let Some(limit) = &self.capacity_limit {
            if !self.limits.contains_key(limit) {
                fields.insert("capacityLimit".to_string(), format!("'{limit}' is not one of the tier's limits"));
            }
        }
        if self.upsell_targets.contains(&self.tier_id) {
            fields.insert("upsellTargets".to_string(), "a tier cannot upsell to itself".to_string());
        }
        let levels = MIN_LEVEL..=MAX_LEVEL;
        if in_segment && !levels.contains(&self.tier_level) {
            fields.insert("tierLevel".to_string(), "must be 1, 2 or 3 in a segment".to_string());
        }
        if fields.is_empty() {
            Ok(())
        } else {
            Err(ValidationError { fields })
        }
    }

    /// Rank for upgrade/downgrade decisions: tier level first, then monthly price.
    /// Price per day is deliberately not used (a yearly plan is not an "upgrade").
    pub fn rank(&self) -> (u32, i64) {
        (self.tier_level, self.prices.monthly)
    }

    /// Every edit needs a live tier and, when the caller names one, the version it read.
    fn ensure_editable(&self, expected: Option<u64>) -> Result<(), TierError> {
        match expected {
            Some(v) if v != self.version => Err(TierError::VersionConflict { current: Some(self.version) }),
            _ if self.status == TierStatus::Archived => Err(TierError::Archived),
            _ => Ok(()),
        }
    }

    fn next(&self, by: &Actor) -> Tier {
        let mut next = self.clone();
        next.version = self.version + 1;
        next.updated_at = by.at.clone();
        next.updated_by = by.id.clone();
        next
    }

    pub fn apply(&self, patch: TierPatch, by: &Actor) -> Result<TierUpdate, TierError> {
        self.ensure_editable(Some(patch.version))?;
        let mut t = self.next(by);
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = patch.$field { t.$field = v; } )* };
        }
        set!(
            name,
            description,
            tier_type,
            is_premium,
            segment,
            tier_level,
            popular,
            sort_order,
            prices,
            currency,
            commitment_months,
            pcr_multiplier,
            upgrade_incentive_percent,
            limits,
            overage_prices,
            trial_days,
            upsell_targets,
            capacity_limit,
            features
        );
        if t.prices != self.prices || t.currency != self.currency {
            t.price_version = self.price_version + 1;
            // The change's own grandfathering is set by whoever applies it (from the
            // constraints); an earlier change's date does not carry over.
            t.grandfathered_until = None;
        }
        Ok(TierUpdate { before: self.clone(), after: t })
    }

    pub fn add_feature(&self, new: NewFeature, by: &Actor) -> Result<TierUpdate, TierError> {
        self.ensure_editable(new.expected_version)?;
        if self.features.iter().any(|f| f.feature_id == new.feature.feature_id) {
            return Err(TierError::FeatureExists);
        }
        if self.features.len() >= MAX_FEATURES {
            return Err(TierError::TooManyFeatures);
        }
        let mut t = self.next(by);
        t.features.push(new.feature);
        Ok(TierUpdate { before: self.clone(), after: t })
    }

    pub fn update_feature(&self, feature_id: &str, patch: FeaturePatch, by: &Actor) -> Result<TierUpdate, TierError> {
        self.ensure_editable(patch.expected_version)?;
        let mut t = self.next(by);
        let feature = t.features.iter_mut().find(|f| f.feature_id == feature_id).ok_or(TierError::FeatureNotFound)?;
        if let Some(v) = patch.name {
            feature.name = v;
        }
        if let Some(v) = patch.description {
            feature.description = v;
        }
        if let Some(v) = patch.enabled {
            feature.enabled = v;
        }
        if let Some(v) = patch.usage_limit {
            feature.usage_limit = v;
        }
        Ok(TierUpdate { before: self.clone(), after: t })
    }

    pub fn remove_feature(
        &self,
        feature_id: &str,
        expected_version: Option<u64>,
        by: &Actor,
    ) -> Result<TierUpdate, TierError> {
        self.ensure_editable(expected_version)?;
        let mut t = self.next(by);
        let before = t.features.len();
        t.features.retain(|f| f.feature_id != feature_id);
        if t.features.len() == before {
            return Err(TierError::FeatureNotFound);
        }
        Ok(TierUpdate { before: self.clone(), after: t })
    }

    /// Archiving is refused for the default tier. Whether partners remain on the tier
    /// is a fact of the table, checked by the store in the same transaction.
    pub fn archive(&self, by: &Actor) -> Result<Option<TierUpdate>, TierError> {
        if self.tier_id == DEFAULT_TIER_ID {
            return Err(TierError::DefaultTier);
        }
        if self.status == TierStatus::Archived {
            return Ok(None);
        }
        let mut t = self.next(by);
        t.status = TierStatus::Archived;
        Ok(Some(TierUpdate { before: self.clone(), after: t }))
    }
}

/// What the public catalog shows: no audit fields, no internal versions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicTier {
    pub tier_id: String,
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub tier_type: TierType,
    pub is_premium: bool,
    pub segment: String,
    pub tier_level: u32,
    pub popular: bool,
    pub sort_order: u32,
    pub prices: Prices,
    pub currency: String,
    pub commitment_months: u32,
    pub pcr_multiplier: f64,
    pub upgrade_incentive_percent: Option<Percent>,
    pub limits: BTreeMap<String, Option<u64>>,
    pub overage_prices: BTreeMap<String, i64>,
    pub trial_days: Option<u32>,
    pub upsell_targets: Vec<String>,
    pub capacity_limit: Option<String>,
    pub features: Vec<PublicFeature>,
    /// The pricing experiment variant whose price this visitor sees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment: Option<ExperimentTag>,
    /// The prices after the pricing rules in force (docs/pricing-rules.md), each
    /// period with its steps; `prices` stays the list price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing: Option<TierPricing>,
    /// The current price version (subscribers on an older one are grandfathered).
    pub price_version: u32,
    /// Subscribers on an older price version keep it until this day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grandfathered_until: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentTag {
    pub experiment_id: String,
    pub variant_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicFeature {
    pub feature_id: String,
    pub name: String,
    pub description: String,
    pub usage_limit: Option<u64>,
}

impl From<&Tier> for PublicTier {
    fn from(t: &Tier) -> Self {
        Self {
            tier_id: t.tier_id.clone(),
            name: t.name.clone(),
            description: t.description.clone(),
            tier_type: t.tier_type,
            is_premium: t.is_premium,
            segment: t.segment.clone(),
            tier_level: t.tier_level,
            popular: t.popular,
            sort_order: t.sort_order,
            prices: t.prices,
            currency: t.currency.clone(),
            commitment_months: t.commitment_months,
            pcr_multiplier: t.pcr_multiplier,
            upgrade_incentive_percent: t.upgrade_incentive_percent,
            limits: t.limits.clone(),
            overage_prices: t.overage_prices.clone(),
            trial_days: t.trial_days,
            upsell_targets: t.upsell_targets.clone(),
            capacity_limit: t.capacity_limit.clone(),
            // Disabled features are an internal switch; the public sees what it gets.
            features: t
                .features
                .iter()
                .filter(|f| f.enabled)
                .map(|f| PublicFeature {
                    feature_id: f.feature_id.clone(),
                    name: f.name.clone(),
                    description: f.description.clone(),
                    usage_limit: f.usage_limit,
                })
                .collect(),
            experiment: None,
            pricing: None,
            price_version: t.price_version,
            grandfathered_until: t.grandfathered_until,
        }
    }
}

impl super::audit::Audited for Tier {
    const ENTITY_TYPE: &'static str = "tier";
    fn entity_id(&self) -> &str {
        &self.tier_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn by() -> Actor {
        Actor::fixture("user-1", "2026-11-21T10:00:00.000Z")
    }

    fn gold() -> Tier {
        NewTier::parse(&json!({
            "tierId": "gold", "name": "Power Gold", "prices": {"monthly": 360000, "yearly": 4320000},
            "tierLevel": 2, "features": [{"featureId": "boost", "name": "PCR boost"}]
        }))
        .unwrap()
        .into_tier(&by())
    }

    #[test]
    fn create_applies_defaults_and_server_fields() {
        let t = gold();
        assert_eq!(t.version, 1);
        assert_eq!(t.price_version, 1);
        assert_eq!(t.status, TierStatus::Active);
        assert_eq!(t.currency, "usd");
        assert_eq!(t.segment, "standard");
        assert_eq!(t.created_by, "user-1");
        assert!(t.features[0].enabled);
        assert_eq!(t.features[0].usage_limit, None);
    }

    #[test]
    fn create_reports_every_bad_field() {
        let err = NewTier::parse(&json!({
            "tierId": "Bad Id", "name": "", "prices": {"monthly": -1, "yearly": 1.5},
            "tierLevel": 0, "status": "active", "limits": {"listings": -3}
        }))
        .unwrap_err();
        let fields: Vec<&str> = err.fields.keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            vec!["limits.listings", "name", "prices.monthly", "prices.yearly", "status", "tierId", "tierLevel"]
        );
    }

    #[test]
    fn reserved_words_are_not_tier_ids() {
        let err = NewTier::parse(&json!({"tierId": "analytics", "name": "x", "prices": {"monthly": 0, "yearly": 0}}))
            .unwrap_err();
        assert!(err.fields.contains_key("tierId"));
    }

    #[test]
    fn duplicate_feature_ids_are_refused() {
        let err = NewTier::parse(&json!({"tierId": "a", "name": "x", "prices": {"monthly": 0, "yearly": 0},
            "features": [{"featureId": "f", "name": "F"}, {"featureId": "f", "name": "G"}]}))
        .unwrap_err();
        assert!(err.fields.contains_key("features"));
    }

    #[test]
    fn patch_bumps_versions_and_detects_price_changes() {
        let t = gold();
        let patch = TierPatch::parse(&json!({"version": 1, "prices": {"monthly": 370000, "yearly": 4440000}})).unwrap();
        assert!(patch.touches_pricing());
        let up = t.apply(patch, &by()).unwrap();
        assert!(up.prices_changed());
        assert_eq!(up.after.version, 2);
        assert_eq!(up.after.price_version, 2);

        let patch = TierPatch::parse(&json!({"version": 1, "name": "Gold+"})).unwrap();
        assert!(!patch.touches_pricing());
        let up = t.apply(patch, &by()).unwrap();
        assert!(!up.prices_changed());
        assert_eq!(up.after.price_version, 1);
    }

    #[test]
    fn stale_version_conflicts() {
        let t = gold();
        let patch = TierPatch::parse(&json!({"version": 7, "name": "x"})).unwrap();
        assert!(matches!(t.apply(patch, &by()), Err(TierError::VersionConflict { current: Some(1) })));
    }

    #[test]
    fn patch_can_clear_the_incentive() {
        let mut t = gold();
        t.upgrade_incentive_percent = Percent::from_basis_points(500);
        let patch = TierPatch::parse(&json!({"version": 1, "upgradeIncentivePercent": null})).unwrap();
        assert!(patch.touches_pricing());
        assert_eq!(t.apply(patch, &by()).unwrap().after.upgrade_incentive_percent, None);
    }

    #[test]
    fn features_add_update_remove() {
        let t = gold();
        let add = NewFeature::parse(&json!({"featureId": "ai", "name": "AI", "usageLimit": 50})).unwrap();
        let t2 = t.add_feature(add.clone(), &by()).unwrap().after;
        assert_eq!(t2.features.len(), 2);
        assert!(matches!(t2.add_feature(add, &by()), Err(TierError::FeatureExists)));
        let patch = FeaturePatch::parse(&json!({"usageLimit": null, "enabled": false})).unwrap();
        let t3 = t2.update_feature("ai", patch, &by()).unwrap().after;
        assert_eq!(t3.features[1].usage_limit, None);
        assert!(!t3.features[1].enabled);
        assert!(matches!(t3.remove_feature("nope", None, &by()), Err(TierError::FeatureNotFound)));
        assert_eq!(t3.remove_feature("ai", Some(3), &by()).unwrap().after.features.len(), 1);
    }

    #[test]
    fn feature_count_is_capped() {
        let mut t = gold();
        t.features = (0..MAX_FEATURES)
            .map(|i| Feature {
                feature_id: format!("f{i}"),
                name: "F".into(),
                description: String::new(),
                enabled: true,
                usage_limit: None,
            })
            .collect();
        let add = NewFeature::parse(&json!({"featureId": "one_more", "name": "X"})).unwrap();
        assert!(matches!(t.add_feature(add, &by()), Err(TierError::TooManyFeatures)));
    }

    #[test]
    fn default_tier_cannot_be_archived_and_archive_is_idempotent() {
        let mut t = gold();
        t.tier_id = DEFAULT_TIER_ID.into();
        assert!(matches!(t.archive(&by()), Err(TierError::DefaultTier)));
        let g = gold();
        let archived = g.archive(&by()).unwrap().unwrap().after;
        assert_eq!(archived.status, TierStatus::Archived);
        assert!(archived.archive(&by()).unwrap().is_none());
    }

    #[test]
    fn public_view_hides_internal_fields_and_disabled_features() {
        let mut t = gold();
        t.features[0].enabled = false;
        let v = serde_json::to_value(PublicTier::from(&t)).unwrap();
        for hidden in ["version", "status", "createdBy", "updatedBy"] {
            assert!(v.get(hidden).is_none(), "{hidden}");
        }
        // Public: a subscriber's portal compares its own price version with it.
        assert_eq!(v["priceVersion"], json!(1));
        assert_eq!(v["features"], json!([]));
        assert_eq!(v["prices"]["monthly"], json!(360000));
    }
}
