//! Segments of the storefront (seed 002 "Segment Structure Definition"): who a group
//! of tiers is for and the price band it covers, with the tiers of a segment at
//! levels 1–3 and at most one of them badged popular. See `docs/storefront.md`.

use super::actor::Actor;
use super::catalog::{self, TierComparison};
use super::tier::{PublicTier, Tier};
use super::validation::{parse, Fields, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub use super::tier::{MAX_LEVEL, MIN_LEVEL};

/// Words that share `/api/admin/segments/{x}` with other routes.
const RESERVED_SEGMENT_IDS: &[&str] = &["reorder"];

/// A reorder rewrites every segment in one transaction (one put each plus the audit
/// entry), which DynamoDB caps at 100 items.
pub const MAX_REORDER: usize = 99;

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("segment not found")]
    NotFound,
    #[error("a segment with this id already exists")]
    AlreadyExists,
    #[error("the segment was changed by someone else; reload it and retry")]
    VersionConflict { current: Option<u64> },
    #[error("the segment is retired; reactivate it before assigning tiers to it")]
    Retired,
    #[error("too many segments to reorder in one change")]
    TooMany,
}

/// A price band in cents; `max: None` is open-ended (seed 002 "Luxury: $10,000+").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceRange {
    pub min: i64,
    pub max: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    pub segment_id: String,
    pub name: String,
    /// Who the segment is for (seed 002 `target`).
    pub target: String,
    pub description: String,
    pub price_range: PriceRange,
    pub sort_order: u32,
    pub active: bool,
    pub version: u64,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
}

/// What the public storefront shows of a segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicSegment {
    pub segment_id: String,
    pub name: String,
    pub target: String,
    pub description: String,
    pub price_range: PriceRange,
    pub sort_order: u32,
}

impl From<&Segment> for PublicSegment {
    fn from(s: &Segment) -> Self {
        Self {
            segment_id: s.segment_id.clone(),
            name: s.name.clone(),
            target: s.target.clone(),
            description: s.description.clone(),
            price_range: s.price_range,
            sort_order: s.sort_order,
        }
    }
}

impl super::audit::Audited for Segment {
    const ENTITY_TYPE: &'static str = "segment";
    fn entity_id(&self) -> &str {
        &self.segment_id
    }
}

/// The storefront's order of segments, as one audited record (a reorder changes
/// every segment's `sortOrder` at once).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentOrder {
    pub segment_ids: Vec<String>,
}

impl super::audit::Audited for SegmentOrder {
    const ENTITY_TYPE: &'static str = "segment";
    fn entity_id(&self) -> &str {
        "order"
    }
}

pub fn segment_id(v: &Value) -> Result<String, String> {
    let id = parse::slug(v)?;
    if RESERVED_SEGMENT_IDS.contains(&id.as_str()) {
        return Err(format!("'{id}' is a reserved word"));
    }
    Ok(id)
}

fn name(v: &Value) -> Result<String, String> {
    parse::text(v, 1, 100)
}
fn target(v: &Value) -> Result<String, String> {
    parse::text(v, 0, 300)
}
fn description(v: &Value) -> Result<String, String> {
    parse::text(v, 0, 1000)
}
fn version(v: &Value) -> Result<u64, String> {
    parse::int_in(v, 1, i64::MAX).map(|n| n as u64)
}
fn sort_order(v: &Value) -> Result<u32, String> {
    parse::int_in(v, 0, 100_000).map(|n| n as u32)
}

fn read_price_range(f: &mut Fields<'_>, required: bool) -> Option<PriceRange> {
    if required && !f.has("priceRange") {
        f.fail("priceRange", "is required");
        return None;
    }
    let range = f.object("priceRange", &["min", "max"], |p| {
        let min = p.required("min", parse::cents);
        let max = p.nullable("max", parse::cents);
        Some(PriceRange { min: min?, max: max.flatten() })
    })?;
    if range.max.is_some_and(|max| max < range.min) {
        f.fail("priceRange.max", "must not be below priceRange.min");
        return None;
    }
    Some(range)
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewSegment {
    pub segment_id: String,
    pub name: String,
    pub target: String,
    pub description: String,
    pub price_range: PriceRange,
    pub sort_order: u32,
}

impl NewSegment {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["segmentId", "name", "target", "description", "priceRange", "sortOrder"]);
        let segment_id = f.required("segmentId", segment_id);
        let name = f.required("name", name);
        let target = f.optional("target", target).unwrap_or_default();
        let description = f.optional("description", description).unwrap_or_default();
        let price_range = read_price_range(&mut f, true);
        let sort_order = f.optional("sortOrder", sort_order).unwrap_or(0);
        f.finish()?;
        match (segment_id, name, price_range) {
            (Some(segment_id), Some(name), Some(price_range)) => {
                Ok(Self { segment_id, name, target, description, price_range, sort_order })
            }
            _ => Err(ValidationError::single("body", "is incomplete")),
        }
    }

    pub fn into_segment(self, by: &Actor) -> Segment {
        Segment {
            segment_id: self.segment_id,
            name: self.name,
            target: self.target,
            description: self.description,
            price_range: self.price_range,
            sort_order: self.sort_order,
            active: true,
            version: 1,
            created_at: by.at.clone(),
            created_by: by.id.clone(),
            updated_at: by.at.clone(),
            updated_by: by.id.clone(),
        }
    }
}

/// An edit: `None` leaves a field alone. `sortOrder` changes through the reorder.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentPatch {
    pub version: u64,
    pub name: Option<String>,
    pub target: Option<String>,
    pub description: Option<String>,
    pub price_range: Option<PriceRange>,
    pub active: Option<bool>,
}

impl SegmentPatch {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["version", "name", "target", "description", "priceRange", "active"]);
        let patch = Self {
            version: f.required("version", version).unwrap_or_default(),
            name: f.optional("name", name),
            target: f.optional("target", target),
            description: f.optional("description", description),
            price_range: read_price_range(&mut f, false),
            active: f.optional("active", parse::boolean),
        };
        f.finish()?;
        Ok(patch)
    }
}

/// `{"order": [{"segmentId", "version"}, …]}`: every segment once, in the new order.
#[derive(Debug, Clone, PartialEq)]
pub struct Reorder {
    pub order: Vec<(String, u64)>,
}

impl Reorder {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["order"]);
        if !f.has("order") {
            f.fail("order", "is required");
        }
        let order = f.array_of_objects("order", MAX_REORDER, &["segmentId", "version"], |e| {
            let id = e.required("segmentId", segment_id);
            let v = e.required("version", version);
            Some((id?, v?))
        });
        if let Some(order) = &order {
            let mut seen = BTreeSet::new();
            if order.is_empty() {
                f.fail("order", "must list every segment");
            }
            for (id, _) in order {
                if !seen.insert(id.clone()) {
                    f.fail("order", format!("'{id}' appears more than once"));
                }
            }
        }
        f.finish()?;
        Ok(Self { order: order.unwrap_or_default() })
    }

    /// The segments with their new `sortOrder` (10, 20, …), in the order asked for.
    /// Every stored segment must be named exactly once, at the version it has.
    pub fn apply(&self, current: &[Segment], by: &Actor) -> Result<Vec<(Segment, Segment)>, ReorderError> {
        let named: BTreeSet<&str> = self.order.iter().map(|(id, _)| id.as_str()).collect();
        let stored: BTreeSet<&str> = current.iter().map(|s| s.segment_id.as_str()).collect();
        let missing: Vec<String> = stored.difference(&named).map(|s| s.to_string()).collect();
        let unknown: Vec<String> = named.difference(&stored).map(|s| s.to_string()).collect();
        if !missing.is_empty() || !unknown.is_empty() {
            return Err(ReorderError::Invalid(ValidationError::single(
                "order",
                format!("must list every segment exactly once (missing: {missing:?}, unknown: {unknown:?})"),
            )));
        }
        let mut out = Vec::with_capacity(self.order.len());
        for (i, (id, expected)) in self.order.iter().enumerate() {
            let Some(before) = current.iter().find(|s| &s.segment_id == id) else { continue };
            if before.version != *expected {
                return Err(ReorderError::Conflict(SegmentError::VersionConflict { current: Some(before.version) }));
            }
            let mut after = before.next(by);
            after.sort_order = (i as u32 + 1) * 10;
            out.push((before.clone(), after));
        }
        Ok(out)
    }
}

#[derive(Debug)]
pub enum ReorderError {
    Invalid(ValidationError),
    Conflict(SegmentError),
}

impl Segment {
    fn next(&self, by: &Actor) -> Segment {
        let mut next = self.clone();
        next.version = self.version + 1;
        next.updated_at = by.at.clone();
        next.updated_by = by.id.clone();
        next
    }

    pub fn apply(&self, patch: SegmentPatch, by: &Actor) -> Result<Segment, SegmentError> {
        if patch.version != self.version {
            return Err(SegmentError::VersionConflict { current: Some(self.version) });
        }
        let mut s = self.next(by);
        if let Some(v) = patch.name {
            s.name = v;
        }
        if let Some(v) = patch.target {
            s.target = v;
        }
        if let Some(v) = patch.description {
            s.description = v;
        }
        if let Some(v) = patch.price_range {
            s.price_range = v;
        }
        if let Some(v) = patch.active {
            s.active = v;
        }
        Ok(s)
    }

    /// Retiring takes the segment off the storefront; its tiers stay as they are.
    /// `None`: already retired (the call is idempotent).
    pub fn retire(&self, by: &Actor) -> Option<Segment> {
        if !self.active {
            return None;
        }
        let mut s = self.next(by);
        s.active = false;
        Some(s)
    }
}

/// Seed 002's three segments. Names are editable; the seed's alternates
/// (Budget, Premium, Elite) are labels an admin may give them, not other ids.
pub fn default_segments() -> Vec<NewSegment> {
    let segment =
        |id: &str, name: &str, target: &str, description: &str, min: i64, max: Option<i64>, order: u32| NewSegment {
            segment_id: id.into(),
            name: name.into(),
            target: target.into(),
            description: description.into(),
            price_range: PriceRange { min, max },
            sort_order: order,
        };
    vec![
        segment(
            ESSENTIAL,
            "Essential",
            "Cost-conscious partners",
            "Everything needed to be listed and found, at the lowest price.",
            200_000,
            Some(SIGNATURE_FROM),
            10,
        ),
        segment(
            SIGNATURE,
            "Signature",
            "Quality-focused partners",
            "Richer profiles, more reach and the tools to convert it.",
            SIGNATURE_FROM,
            Some(LUXURY_FROM),
            20,
        ),
        segment(
            LUXURY,
            "Luxury",
            "Full-service seekers",
            "The complete package with the highest placement and service.",
            LUXURY_FROM,
            None,
            30,
        ),
    ]
}

pub const ESSENTIAL: &str = "essential";
pub const SIGNATURE: &str = "signature";
pub const LUXURY: &str = "luxury";
/// Seed 002's backfill thresholds in cents: `basePrice < 500000 ? Essential :
/// basePrice < 1000000 ? Signature : Luxury`.
pub const SIGNATURE_FROM: i64 = 500_000;
pub const LUXURY_FROM: i64 = 1_000_000;

/// The segment seed 002's backfill puts a tier in, by its base price (the monthly
/// list price in cents; a price exactly on a threshold goes to the higher segment).
pub fn segment_for_price(monthly_cents: i64) -> &'static str {
    if monthly_cents < SIGNATURE_FROM {
        ESSENTIAL
    } else if monthly_cents < LUXURY_FROM {
        SIGNATURE
    } else {
        LUXURY
    }
}

/// One tier the backfill moves.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub tier_id: String,
    pub from_segment: String,
    pub to_segment: String,
    pub monthly_price: i64,
    pub from_level: u32,
    pub to_level: u32,
    /// The tier was popular but its new segment already has a popular tier.
    pub popular_dropped: bool,
}

/// The backfill's plan: every live tier whose segment is not a registered segment moves
/// to the one its price calls for, keeping its level clamped into 1–3. Tiers
/// already in a registered segment are left alone, so a second run plans nothing;
/// archived tiers are history and keep the segment they had.
/// `popular` maps a segment to its popular tier, as recorded; a popular tier that
/// would make a second popular one in its new segment loses the badge.
pub fn plan_backfill(tiers: &[Tier], segments: &[Segment], popular: &BTreeMap<String, String>) -> Vec<Assignment> {
    let registered: BTreeSet<&str> = segments.iter().map(|s| s.segment_id.as_str()).collect();
    let mut taken: BTreeMap<String, String> = popular.clone();
    let mut plan = Vec::new();
    let live = |t: &&Tier| t.status == super::tier::TierStatus::Active;
    for t in tiers.iter().filter(live).filter(|t| !registered.contains(t.segment.as_str())) {
        let to = segment_for_price(t.prices.monthly).to_string();
        let mut popular_dropped = false;
        if t.popular {
            match taken.get(&to) {
                Some(holder) if holder != &t.tier_id => popular_dropped = true,
                _ => {
                    taken.insert(to.clone(), t.tier_id.clone());
                }
            }
        }
        plan.push(Assignment {
            tier_id: t.tier_id.clone(),
            from_segment: t.segment.clone(),
            to_segment: to,
            monthly_price: t.prices.monthly,
            from_level: t.tier_level,
            to_level: t.tier_level.clamp(MIN_LEVEL, MAX_LEVEL),
            popular_dropped,
        });
    }
    plan
}

/// One tier level of a segment with its tiers in catalog order.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LevelGroup {
    pub tier_level: u32,
    pub tiers: Vec<PublicTier>,
}

/// Seed 002 `TierComparisonDto`: the segment, its tiers (columns) and the feature
/// matrix, with the project's feature and limit rows (`GET /api/tiers/compare`).
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SegmentComparison {
    pub segment: String,
    /// featureId → whether each tier (in `tiers` order) includes it.
    pub comparison_matrix: BTreeMap<String, Vec<bool>>,
    #[serde(flatten)]
    pub detail: TierComparison,
}

/// Seed 002 `getSegmentPackages`: `{segment, tiers: groupByTierLevel, comparison}`.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SegmentPackages {
    pub segment: PublicSegment,
    pub tiers: Vec<LevelGroup>,
    pub comparison: SegmentComparison,
}

/// The storefront page of one segment. `tiers` are the segment's active tiers in
/// catalog order (level, sort order); `priced` is how the visitor sees each (a
/// pricing experiment's variant), in the same order.
pub fn segment_packages(segment: &Segment, tiers: &[Tier], priced: Vec<PublicTier>) -> SegmentPackages {
    let mut groups: Vec<LevelGroup> = Vec::new();
    for tier in priced {
        match groups.last_mut() {
            Some(g) if g.tier_level == tier.tier_level => g.tiers.push(tier),
            _ => groups.push(LevelGroup { tier_level: tier.tier_level, tiers: vec![tier] }),
        }
    }
    let detail = catalog::compare(tiers);
    let comparison_matrix = detail
        .features
        .iter()
        .map(|row| (row.feature_id.clone(), row.by_tier.iter().map(|c| c.included).collect()))
        .collect();
    SegmentPackages {
        segment: PublicSegment::from(segment),
        tiers: groups,
        comparison: SegmentComparison { segment: segment.segment_id.clone(), comparison_matrix, detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::defaults::default_tiers;
    use serde_json::json;

    fn by() -> Actor {
        Actor::fixture("admin-1", "2026-12-06T10:00:00.000Z")
    }

    fn segments() -> Vec<Segment> {
        default_segments().into_iter().map(|s| s.into_segment(&by())).collect()
    }

    #[test]
    fn thresholds_follow_seed_002() {
        assert_eq!(segment_for_price(0), ESSENTIAL);
        assert_eq!(segment_for_price(499_999), ESSENTIAL);
        assert_eq!(segment_for_price(500_000), SIGNATURE);
        assert_eq!(segment_for_price(999_999), SIGNATURE);
        assert_eq!(segment_for_price(1_000_000), LUXURY);
    }

    #[test]
    fn create_names_every_bad_field() {
        let err = NewSegment::parse(&json!({"segmentId": "Bad Id", "name": "", "priceRange": {"min": -1},
            "extra": 1}))
        .unwrap_err();
        let fields: Vec<&str> = err.fields.keys().map(String::as_str).collect();
        assert_eq!(fields, vec!["extra", "name", "priceRange.min", "segmentId"]);
        let err = NewSegment::parse(&json!({"segmentId": "x", "name": "X", "priceRange": {"min": 10, "max": 5}}))
            .unwrap_err();
        assert!(err.fields.contains_key("priceRange.max"), "{err:?}");
        let err =
            NewSegment::parse(&json!({"segmentId": "reorder", "name": "X", "priceRange": {"min": 0}})).unwrap_err();
        assert!(err.fields.contains_key("segmentId"));
        let ok =
            NewSegment::parse(&json!({"segmentId": "x", "name": "X", "priceRange": {"min": 0, "max": null}})).unwrap();
        assert_eq!(ok.price_range, PriceRange { min: 0, max: None });
    }

    #[test]
    fn patch_checks_version_and_retire_is_idempotent() {
        let s = segments().remove(0);
        let patch = SegmentPatch::parse(&json!({"version": 1, "name": "Budget"})).unwrap();
        let after = s.apply(patch, &by()).unwrap();
        assert_eq!((after.name.as_str(), after.version, after.segment_id.as_str()), ("Budget", 2, "essential"));
        let stale = SegmentPatch::parse(&json!({"version": 3, "name": "x"})).unwrap();
        assert!(matches!(s.apply(stale, &by()), Err(SegmentError::VersionConflict { current: Some(1) })));
        let retired = s.retire(&by()).unwrap();
        assert!(!retired.active);
        assert!(retired.retire(&by()).is_none());
    }

    #[test]
    fn reorder_needs_every_segment_once_at_its_version() {
        let current = segments();
        let r = Reorder::parse(&json!({"order": [
            {"segmentId": "luxury", "version": 1}, {"segmentId": "essential", "version": 1},
            {"segmentId": "signature", "version": 1}]}))
        .unwrap();
        let out = r.apply(&current, &by()).unwrap();
        let order: Vec<(&str, u32)> = out.iter().map(|(_, a)| (a.segment_id.as_str(), a.sort_order)).collect();
        assert_eq!(order, vec![("luxury", 10), ("essential", 20), ("signature", 30)]);
        let partial = Reorder::parse(&json!({"order": [{"segmentId": "luxury", "version": 1}]})).unwrap();
        assert!(matches!(partial.apply(&current, &by()), Err(ReorderError::Invalid(_))));
        let stale = Reorder::parse(&json!({"order": [
            {"segmentId": "luxury", "version": 2}, {"segmentId": "essential", "version": 1},
            {"segmentId": "signature", "version": 1}]}))
        .unwrap();
        assert!(matches!(stale.apply(&current, &by()), Err(ReorderError::Conflict(_))));
        assert!(Reorder::parse(
            &json!({"order": [{"segmentId": "a", "version": 1}, {"segmentId": "a", "version": 1}]})
        )
        .unwrap_err()
        .fields
        .contains_key("order"));
        assert!(Reorder::parse(&json!({})).unwrap_err().fields.contains_key("order"));
    }

    #[test]
    fn backfill_plans_by_price_and_only_once() {
        let tiers: Vec<Tier> = default_tiers().into_iter().map(|t| t.into_tier(&by())).collect();
        let plan = plan_backfill(&tiers, &segments(), &BTreeMap::new());
        let moves: Vec<(&str, &str, u32)> =
            plan.iter().map(|a| (a.tier_id.as_str(), a.to_segment.as_str(), a.to_level)).collect();
        assert_eq!(moves, vec![("free", "essential", 1), ("gold", "essential", 2), ("platinum", "signature", 3)]);
        // gold is popular and essential has no popular tier yet: it keeps the badge.
        assert!(plan.iter().all(|a| !a.popular_dropped));
        let taken = BTreeMap::from([("essential".to_string(), "other".to_string())]);
        let plan = plan_backfill(&tiers, &segments(), &taken);
        assert!(plan.iter().find(|a| a.tier_id == "gold").unwrap().popular_dropped);
        // Once moved, nothing more to do.
        let moved: Vec<Tier> = tiers
            .into_iter()
            .map(|mut t| {
                t.segment = segment_for_price(t.prices.monthly).into();
                t
            })
            .collect();
        assert!(plan_backfill(&moved, &segments(), &BTreeMap::new()).is_empty());
    }

    #[test]
    fn packages_group_by_level_and_carry_the_matrix() {
        let mut tiers: Vec<Tier> = default_tiers().into_iter().map(|t| t.into_tier(&by())).collect();
        for t in &mut tiers {
            t.segment = ESSENTIAL.into();
        }
        let priced: Vec<PublicTier> = tiers.iter().map(PublicTier::from).collect();
        let page = segment_packages(&segments()[0], &tiers, priced);
        let levels: Vec<u32> = page.tiers.iter().map(|g| g.tier_level).collect();
        assert_eq!(levels, vec![1, 2, 3]);
        assert_eq!(page.comparison.comparison_matrix["priority_placement"], vec![false, false, true]);
        assert_eq!(page.comparison.comparison_matrix["basic_profile"], vec![true, true, true]);
        let v = serde_json::to_value(&page).unwrap();
        assert_eq!(v["comparison"]["segment"], "essential");
        assert_eq!(v["comparison"]["tiers"].as_array().unwrap().len(), 3);
        assert!(v["comparison"]["features"].is_array() && v["comparison"]["limits"].is_array());
        assert_eq!(v["segment"]["priceRange"], json!({"min": 200000, "max": 500000}));
    }
}
