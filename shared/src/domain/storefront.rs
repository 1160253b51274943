//! The storefront's configuration and analytics (seed 002 Phase 0 "feature flag
//! service", "Analytics & Tracking Setup"; issue 21 §4 flags and §6): the feature
//! flags an admin changes without a deploy, the funnel events the pages send, and
//! the report built from their monthly aggregates.

use super::actor::Actor;
use super::analytics::TierFlows;
use super::pricing_rules::PricingConfig;
use super::segment::Segment;
use super::tier::Tier;
use super::upsell::UpsellRule;
use super::validation::{parse, Fields, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Seed 002's flags: `segments.enabled`, `upsell.enabled`, `upsell.percentage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureFlags {
    /// Off: the public segment reads answer as if there were no segments.
    pub segments_enabled: bool,
    /// Off: upsell evaluation offers nothing.
    pub upsell_enabled: bool,
    /// The share of visitors (0–100) offered upsells: a staged rollout, stable per
    /// visitor (hash of the visitor id).
    pub upsell_percentage: u8,
    /// 0 while never saved (the defaults).
    pub version: u64,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub updated_by: String,
}

impl Default for FeatureFlags {
    fn default() -> Self {
        Self {
            segments_enabled: true,
            upsell_enabled: true,
            upsell_percentage: 100,
            version: 0,
            updated_at: String::new(),
            updated_by: String::new(),
        }
    }
}

impl super::audit::Audited for FeatureFlags {
    const ENTITY_TYPE: &'static str = "feature_flags";
    fn entity_id(&self) -> &str {
        "storefront"
    }
}

impl FeatureFlags {
    /// `PUT /api/admin/feature-flags`: the version read (0 for the defaults) and
    /// the flags to change, under their seed names.
    pub fn apply(&self, body: &Value, by: &Actor) -> Result<Result<Self, u64>, ValidationError> {
        let mut f = Fields::new(body, &["version", "segments.enabled", "upsell.enabled", "upsell.percentage"]);
        let version = f.required("version", |v| parse::int_in(v, 0, i64::MAX).map(|n| n as u64));
        let segments = f.optional("segments.enabled", parse::boolean);
        let upsell = f.optional("upsell.enabled", parse::boolean);
        let percentage = f.optional("upsell.percentage", |v| parse::int_in(v, 0, 100).map(|n| n as u8));
        f.finish()?;
        if version != Some(self.version) {
            return Ok(Err(self.version));
        }
        Ok(Ok(Self {
            segments_enabled: segments.unwrap_or(self.segments_enabled),
            upsell_enabled: upsell.unwrap_or(self.upsell_enabled),
            upsell_percentage: percentage.unwrap_or(self.upsell_percentage),
            version: self.version + 1,
            updated_at: by.at.clone(),
            updated_by: by.id.clone(),
        }))
    }

    /// Whether upsells are offered to `visitor` (a partner or visitor id). A
    /// visitor without an id is offered them only at 100 %.
    pub fn offers_upsell_to(&self, visitor: Option<&str>) -> bool {
        if !self.upsell_enabled {
            return false;
        }
        match (self.upsell_percentage, visitor) {
            (100, _) => true,
            (0, _) | (_, None) => false,
            (p, Some(id)) => bucket(id) < u64::from(p),
        }
    }

    /// The wire shape under the seed's names.
    pub fn view(&self) -> Value {
        serde_json::json!({
            "segments.enabled": self.segments_enabled,
            "upsell.enabled": self.upsell_enabled,
            "upsell.percentage": self.upsell_percentage,
            "version": self.version,
            "updatedAt": self.updated_at,
            "updatedBy": self.updated_by,
        })
    }
}

/// A stable bucket 0–99 for an id (FNV-1a), the same on every instance.
fn bucket(id: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % 100
}

/// Everything the storefront's priced reads apply, read as one Query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StorefrontConfig {
    pub pricing: PricingConfig,
    /// Every add-on, retired ones too, in `sortOrder`.
    pub add_ons: Vec<super::addon::AddOn>,
    pub upsell_rules: Vec<UpsellRule>,
    pub flags: FeatureFlags,
}

/// Seed 002's tracked events, in funnel order, and the payment that ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunnelStep {
    SegmentSelected,
    TierViewed,
    TierCompared,
    UpsellShown,
    UpsellAccepted,
    CheckoutStarted,
}

impl FunnelStep {
    pub const ALL: [FunnelStep; 6] = [
        Self::SegmentSelected,
        Self::TierViewed,
        Self::TierCompared,
        Self::UpsellShown,
        Self::UpsellAccepted,
        Self::CheckoutStarted,
    ];

    fn parse(v: &Value) -> Result<Self, String> {
        super::wire::one_of(&Self::ALL, v)
    }

    pub fn is_upsell(self) -> bool {
        matches!(self, Self::UpsellShown | Self::UpsellAccepted)
    }
}

/// One monthly funnel counter set (per segment), named as stored and reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FunnelCounts {
    pub segment_selected: i64,
    pub tier_viewed: i64,
    pub tier_compared: i64,
    pub upsell_shown: i64,
    pub upsell_accepted: i64,
    pub checkout_started: i64,
}

impl FunnelCounts {
    /// One event of `step`.
    pub fn one(step: FunnelStep) -> Self {
        let mut c = Self::default();
        match step {
            FunnelStep::SegmentSelected => c.segment_selected = 1,
            FunnelStep::TierViewed => c.tier_viewed = 1,
            FunnelStep::TierCompared => c.tier_compared = 1,
            FunnelStep::UpsellShown => c.upsell_shown = 1,
            FunnelStep::UpsellAccepted => c.upsell_accepted = 1,
            FunnelStep::CheckoutStarted => c.checkout_started = 1,
        }
        c
    }

    fn add(&mut self, o: &Self) {
        self.segment_selected += o.segment_selected;
        self.tier_viewed += o.tier_viewed;
        self.tier_compared += o.tier_compared;
        self.upsell_shown += o.upsell_shown;
        self.upsell_accepted += o.upsell_accepted;
        self.checkout_started += o.checkout_started;
    }
}

/// Per upsell rule and month: shown and accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UpsellCounts {
    pub upsell_shown: i64,
    pub upsell_accepted: i64,
}

/// `POST /api/storefront/events`: one event a storefront page sends. `eventId`
/// is the page's own id for it, so a resend counts once.
#[derive(Debug, Clone, PartialEq)]
pub struct StorefrontEvent {
    pub event_id: String,
    pub step: FunnelStep,
    pub segment_id: String,
    pub tier_id: Option<String>,
    pub rule_id: Option<String>,
}

impl StorefrontEvent {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["eventId", "event", "segmentId", "tierId", "ruleId"]);
        let event_id = f.required("eventId", |v| {
            let s = parse::text(v, 8, 64)?;
            if s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                Ok(s)
            } else {
                Err("must be 8-64 letters, digits, - or _".into())
            }
        });
        let step = f.required("event", FunnelStep::parse);
        let segment_id = f.required("segmentId", parse::slug);
        let tier_id = f.optional("tierId", parse::slug);
        let rule_id = f.optional("ruleId", parse::slug);
        if step.is_some_and(FunnelStep::is_upsell) && rule_id.is_none() && !f.has("ruleId") {
            f.fail("ruleId", "is required for upsell events");
        }
        if matches!(step, Some(FunnelStep::TierViewed | FunnelStep::CheckoutStarted)) && !f.has("tierId") {
            f.fail("tierId", "is required for this event");
        }
        f.finish()?;
        match (event_id, step, segment_id) {
            (Some(event_id), Some(step), Some(segment_id)) => {
                Ok(Self { event_id, step, segment_id, tier_id, rule_id: rule_id.filter(|_| step.is_upsell()) })
            }
            _ => Err(ValidationError::single("body", "is incomplete")),
        }
    }
}

/// One segment's month in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentFunnel {
    pub segment_id: String,
    pub name: String,
    /// The page events, then `paid`: partners who became paying on one of the
    /// segment's tiers (the analytics' `payingIn`).
    pub funnel: FunnelCounts,
    pub paid: i64,
    /// `paid ÷ segmentSelected`, in basis points (`None` without selections).
    pub conversion_basis_points: Option<i64>,
    /// New MRR in the months, and MRR now, of the segment's tiers (cents).
    pub new_mrr: i64,
    pub mrr: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleSuccess {
    pub rule_id: String,
    pub name: Option<String>,
    pub shown: i64,
    pub accepted: i64,
    /// `accepted ÷ shown` in basis points, rounded half up (`None` when never shown).
    pub success_rate_basis_points: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorefrontReport {
    pub from: String,
    pub to: String,
    pub segments: Vec<SegmentFunnel>,
    pub upsell_rules: Vec<RuleSuccess>,
}

fn ratio_bp(num: i64, den: i64) -> Option<i64> {
    (den > 0).then(|| (num * 20_000 + den) / (2 * den))
}

/// What the report reads, already summed per month.
pub struct ReportInput<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub segments: &'a [Segment],
    pub tiers: &'a [Tier],
    /// Per tier: the months' flows and the MRR now.
    pub tier_flows: BTreeMap<String, (Vec<TierFlows>, i64)>,
    /// Per segment id, the months' funnel counters.
    pub funnel: BTreeMap<String, Vec<FunnelCounts>>,
    /// Per upsell rule id, the months' counters.
    pub upsell: BTreeMap<String, Vec<UpsellCounts>>,
    pub rules: &'a [UpsellRule],
}

/// Seed 002's funnel by segment, revenue by segment and upsell success per rule.
pub fn report(input: ReportInput<'_>) -> StorefrontReport {
    let mut segments = Vec::new();
    for segment in input.segments {
        let mut funnel = FunnelCounts::default();
        for c in input.funnel.get(&segment.segment_id).into_iter().flatten() {
            funnel.add(c);
        }
        let (mut paid, mut new_mrr, mut mrr) = (0, 0, 0);
        for tier in input.tiers.iter().filter(|t| t.segment == segment.segment_id) {
            if let Some((months, now)) = input.tier_flows.get(&tier.tier_id) {
                paid += months.iter().map(|m| m.paying_in).sum::<i64>();
                new_mrr += months.iter().map(|m| m.new_mrr).sum::<i64>();
                mrr += now;
            }
        }
        segments.push(SegmentFunnel {
            segment_id: segment.segment_id.clone(),
            name: segment.name.clone(),
            conversion_basis_points: ratio_bp(paid, funnel.segment_selected),
            funnel,
            paid,
            new_mrr,
            mrr,
        });
    }
    let upsell_rules = input
        .upsell
        .iter()
        .map(|(rule_id, months)| {
            let shown = months.iter().map(|m| m.upsell_shown).sum();
            let accepted = months.iter().map(|m| m.upsell_accepted).sum();
            RuleSuccess {
                rule_id: rule_id.clone(),
                name: input.rules.iter().find(|r| &r.rule_id == rule_id).map(|r| r.name.clone()),
                shown,
                accepted,
                success_rate_basis_points: ratio_bp(accepted, shown),
            }
        })
        .collect();
    StorefrontReport { from: input.from.to_string(), to: input.to.to_string(), segments, upsell_rules }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flags_change_by_version_under_the_seed_names_and_roll_out_stably() {
        let by = Actor::fixture("u-admin", "2026-07-01T09:00:00Z");
        let flags = FeatureFlags::default();
        assert_eq!(flags.apply(&json!({"version": 3}), &by).unwrap(), Err(0));
        let half = flags.apply(&json!({"version": 0, "upsell.percentage": 50}), &by).unwrap().unwrap();
        assert_eq!((half.upsell_percentage, half.version, half.segments_enabled), (50, 1, true));
        let e = flags.apply(&json!({"version": 0, "upsell.percentage": 101, "upsell": true}), &by).unwrap_err();
        assert!(e.fields.contains_key("upsell.percentage") && e.fields.contains_key("upsell"), "{e:?}");
        // About half of many visitors are in, and each visitor's answer never changes.
        let ids: Vec<String> = (0..2_000).map(|i| format!("visitor-{i}")).collect();
        let inside = ids.iter().filter(|id| half.offers_upsell_to(Some(id))).count();
        assert!((900..=1_100).contains(&inside), "{inside}");
        assert!(ids.iter().all(|id| half.offers_upsell_to(Some(id)) == half.offers_upsell_to(Some(id))));
        assert!(!half.offers_upsell_to(None), "no id, no staged offer");
        let off = FeatureFlags { upsell_enabled: false, ..FeatureFlags::default() };
        assert!(!off.offers_upsell_to(Some("visitor-1")));
        assert!(FeatureFlags::default().offers_upsell_to(None));
    }

    #[test]
    fn events_name_what_they_miss() {
        let e = StorefrontEvent::parse(&json!({"eventId": "short", "event": "upsell_shown", "segmentId": "essential"}))
            .unwrap_err();
        assert!(e.fields.contains_key("eventId") && e.fields.contains_key("ruleId"), "{e:?}");
        let e = StorefrontEvent::parse(&json!({"eventId": "evt-12345678", "event": "tier_viewed", "segmentId": "x"}))
            .unwrap_err();
        assert!(e.fields.contains_key("tierId"), "{e:?}");
        let e = StorefrontEvent::parse(&json!({"eventId": "evt-12345678", "event": "bought", "segmentId": "x"}))
            .unwrap_err();
        assert!(e.fields.contains_key("event"), "{e:?}");
        let ok = StorefrontEvent::parse(
            &json!({"eventId": "evt-12345678", "event": "tier_compared", "segmentId": "luxury", "ruleId": "r"}),
        )
        .unwrap();
        assert_eq!((ok.step, ok.rule_id), (FunnelStep::TierCompared, None), "a rule id counts only on upsell events");
    }

    #[test]
    fn rates_round_half_up_in_basis_points() {
        assert_eq!(ratio_bp(1, 3), Some(3_333));
        assert_eq!(ratio_bp(2, 3), Some(6_667));
        assert_eq!(ratio_bp(1, 8), Some(1_250));
        assert_eq!(ratio_bp(1, 0), None);
    }
}
