//! The default catalog from seed 003: free, Power Gold and Power Platinum, with the
//! PCR multipliers the scoring system reads, and seed 002's "5% off next tier".

use super::money::Percent;
use super::tier::{Feature, NewTier, Prices, TierSpec, TierType};
use std::collections::BTreeMap;

fn feature(id: &str, name: &str, description: &str, usage_limit: Option<u64>) -> Feature {
    Feature { feature_id: id.into(), name: name.into(), description: description.into(), enabled: true, usage_limit }
}

fn limits(entries: [(&str, Option<u64>); 5]) -> BTreeMap<String, Option<u64>> {
    entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

pub fn default_tiers() -> Vec<NewTier> {
    let basic = vec![
        feature("basic_profile", "Basic profile", "Company profile in the partner directory", None),
        feature("standard_visibility", "Standard visibility", "Listed in search results", None),
    ];
    let mut gold_features = basic.clone();
    gold_features.extend([
        feature("enhanced_content", "Enhanced content package", "Rich media and case studies on the profile", None),
        feature("due_diligence", "Deeper due diligence", "Extended verification shown to buyers", None),
        feature("pcr_boost", "PCR boost", "+4 points at base 80 through the 2.5x multiplier", None),
    ]);
    let mut platinum_features = gold_features.clone();
    platinum_features.extend([
        feature("transparency_package", "Premium transparency package", "Full review and rating transparency", None),
        feature("priority_placement", "Priority placement", "Placed ahead of other partners in results", None),
    ]);
    let five_percent = Percent::from_basis_points(500);
    vec![
        NewTier {
            tier_id: "free".into(),
            spec: TierSpec {
                name: "Free Tier".into(),
                description: "Basic profile and standard visibility.".into(),
                tier_type: TierType::Individual,
                is_premium: false,
                segment: "standard".into(),
                tier_level: 1,
                popular: false,
                sort_order: 10,
                prices: Prices { monthly: 0, yearly: 0 },
                currency: "usd".into(),
                commitment_months: 0,
                pcr_multiplier: 1.5,
                upgrade_incentive_percent: None,
                limits: limits([
                    ("listings", Some(1)),
                    ("imagesPerListing", Some(5)),
                    ("emailsProcessed", Some(100)),
                    ("aiResponses", Some(20)),
                    ("leads", Some(10)),
                ]),
                overage_prices: BTreeMap::new(),
                trial_days: None,
                upsell_targets: vec!["gold".into()],
                capacity_limit: Some("listings".into()),
                features: basic,
            },
        },
        NewTier {
            tier_id: "gold".into(),
            spec: TierSpec {
                name: "Power Gold".into(),
                description: "Enhanced content, deeper due diligence and a PCR boost.".into(),
                tier_type: TierType::Individual,
                is_premium: true,
                segment: "standard".into(),
                tier_level: 2,
                popular: true,
                sort_order: 20,
                prices: Prices { monthly: 360_000, yearly: 4_320_000 },
                currency: "usd".into(),
                commitment_months: 12,
                pcr_multiplier: 2.5,
                upgrade_incentive_percent: five_percent,
                limits: limits([
                    ("listings", Some(10)),
                    ("imagesPerListing", Some(25)),
                    ("emailsProcessed", Some(2_000)),
                    ("aiResponses", Some(500)),
                    ("leads", Some(200)),
                ]),
                // Leads beyond the limit are billed rather than refused: a lost lead
                // costs the partner more than the overage.
                overage_prices: BTreeMap::from([("leads".to_string(), 50)]),
                trial_days: Some(14),
                upsell_targets: vec!["platinum".into()],
                capacity_limit: Some("listings".into()),
                features: gold_features,
            },
        },
        NewTier {
            tier_id: "platinum".into(),
            spec: TierSpec {
                name: "Power Platinum".into(),
                description: "Premium transparency, maximum PCR boost and priority placement.".into(),
                tier_type: TierType::Individual,
                is_premium: true,
                segment: "standard".into(),
                tier_level: 3,
                popular: false,
                sort_order: 30,
                prices: Prices { monthly: 600_000, yearly: 7_200_000 },
                currency: "usd".into(),
                commitment_months: 12,
                pcr_multiplier: 5.0,
                upgrade_incentive_percent: five_percent,
                limits: limits([
                    ("listings", None),
                    ("imagesPerListing", Some(100)),
                    ("emailsProcessed", None),
                    ("aiResponses", None),
                    ("leads", None),
                ]),
                overage_prices: BTreeMap::new(),
                trial_days: Some(14),
                upsell_targets: Vec::new(),
                capacity_limit: Some("listings".into()),
                features: platinum_features,
            },
        },
    ]
}
