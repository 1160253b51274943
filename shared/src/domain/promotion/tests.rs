use super::*;
use crate::domain::defaults::default_tiers;
use crate::domain::money::{BillingPeriod, Percent};
use crate::domain::tier::Tier;
use chrono::NaiveDate;
use serde_json::json;
use serde_json::Value;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn actor(id: &str) -> Actor {
    Actor::fixture(id, "2026-11-01T00:00:00.000Z")
}

fn tier(id: &str) -> Tier {
    let change = crate::domain::actor::Actor::fixture("t", "2026-01-01T00:00:00.000Z");
    default_tiers().into_iter().map(|n| n.into_tier(&change)).find(|t| t.tier_id == id).unwrap()
}

fn base() -> Value {
    json!({
        "name": "Winter", "discountType": "percentage", "discountValue": 15,
        "appliesTo": "both", "startDate": "2026-11-01", "endDate": "2026-12-31",
    })
}

fn promo(body: Value) -> Promotion {
    let mut p = NewPromotion::parse(&body)
        .unwrap()
        .into_promotion(new_promotion_id("01jc0000000000000000000000"), &actor("creator"))
        .unwrap();
    p.status = PromotionStatus::Active;
    p
}

fn with(mut body: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[test]
fn promotions_round_trip_through_json_and_dynamo() {
    for body in [
        base(),
        with(base(), json!({"discountType": "fixed_amount", "discountValue": 2500})),
        with(base(), json!({"discountType": "free_trial", "discountValue": 14})),
        with(base(), json!({"discountValue": 12.5, "maxRedemptions": 10, "promotionCodes": ["win-1"]})),
    ] {
        let p = promo(body);
        let v = serde_json::to_value(&p).unwrap();
        assert!(v["discountType"].is_string() && v["discountValue"].is_number(), "{v}");
        let back: Promotion = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
        let item: serde_dynamo::Item = serde_dynamo::to_item(&p).unwrap();
        let back: Promotion = serde_dynamo::from_item(item).unwrap();
        assert_eq!(back, p);
    }
    let p = promo(with(base(), json!({"discountValue": 12.5})));
    assert_eq!(serde_json::to_value(&p).unwrap()["discountValue"], json!(12.5));
}

#[test]
fn bad_bodies_name_their_fields() {
    let cases = [
        (json!({}), "name"),
        (with(base(), json!({"discountType": "bogus"})), "discountType"),
        (with(base(), json!({"discountValue": 0})), "discountValue"),
        (with(base(), json!({"discountValue": 101})), "discountValue"),
        (with(base(), json!({"discountType": "fixed_amount", "discountValue": 10.5})), "discountValue"),
        (with(base(), json!({"appliesTo": "weekly"})), "appliesTo"),
        (with(base(), json!({"endDate": "2026-10-01"})), "endDate"),
        (with(base(), json!({"startDate": "11/01/2026"})), "startDate"),
        (with(base(), json!({"status": "active"})), "status"),
        (with(base(), json!({"redemptionCount": 5})), "redemptionCount"),
        (with(base(), json!({"redemptionsPerUser": 0})), "redemptionsPerUser"),
        (with(base(), json!({"promotionCodes": ["ok1", "OK1"]})), "promotionCodes"),
        (with(base(), json!({"promotionCodes": ["a"]})), "promotionCodes"),
        (with(base(), json!({"eligibilityRules": {"userType": "vip"}})), "eligibilityRules.userType"),
        (
            with(base(), json!({"eligibilityRules": {"minAccountAge": 30, "maxAccountAge": 10}})),
            "eligibilityRules.maxAccountAge",
        ),
        (with(base(), json!({"targetTiers": ["Gold!"]})), "targetTiers"),
        (
            with(base(), json!({"discountType": "free_trial", "discountValue": 7, "appliesTo": "first_month"})),
            "appliesTo",
        ),
    ];
    for (body, field) in cases {
        let err = NewPromotion::parse(&body).expect_err(field);
        assert!(err.fields.contains_key(field), "{field}: {:?}", err.fields);
    }
}

#[test]
fn workflow_allows_only_its_edges() {
    use Action::*;
    use PromotionStatus::*;
    let actions = [Submit, Approve, Reject, Pause, Resume, Cancel, Complete];
    let legal = [
        (Draft, Submit, true, PendingApproval),
        (Draft, Submit, false, Active),
        (PendingApproval, Approve, true, Active),
        (PendingApproval, Reject, true, Draft),
        (Active, Pause, true, Paused),
        (Paused, Resume, true, Active),
        (Draft, Cancel, true, Cancelled),
        (PendingApproval, Cancel, true, Cancelled),
        (Active, Cancel, true, Cancelled),
        (Paused, Cancel, true, Cancelled),
        (Active, Complete, true, Completed),
        (Paused, Complete, true, Completed),
    ];
    for from in PromotionStatus::ALL {
        for action in actions {
            let expected = legal.iter().find(|(f, a, r, _)| *f == from && *a == action && *r).map(|l| l.3);
            match (next_status(from, action, true), expected) {
                (Ok(to), Some(e)) => assert_eq!(to, e),
                (Err(PromotionError::IllegalTransition { .. }), None) => {}
                (got, want) => panic!("{from:?} {action:?}: {got:?} vs {want:?}"),
            }
        }
    }
    assert_eq!(next_status(Draft, Submit, false).unwrap(), Active);
}

#[test]
fn approval_policy_and_self_approval() {
    let policy = ApprovalPolicy::default();
    let mut p = promo(with(base(), json!({"discountValue": 25})));
    p.status = PromotionStatus::Draft;
    let submitted = p.transition(Action::Submit, &actor("creator"), &policy, None).unwrap();
    assert_eq!(submitted.status, PromotionStatus::PendingApproval);
    assert!(submitted.requires_approval);
    assert!(matches!(
        submitted.transition(Action::Approve, &actor("creator"), &policy, None),
        Err(PromotionError::SelfApproval)
    ));
    let approved = submitted.transition(Action::Approve, &actor("boss"), &policy, None).unwrap();
    assert_eq!((approved.status, approved.approved_by.as_deref()), (PromotionStatus::Active, Some("boss")));
    assert!(approved.active);
    // 20% exactly needs none; $500.01 fixed does; 31 trial days do.
    assert!(!policy.requires_approval(DiscountSpec::Percentage(Percent::from_basis_points(2_000).unwrap())));
    assert!(policy.requires_approval(DiscountSpec::FixedAmount(50_001)));
    assert!(!policy.requires_approval(DiscountSpec::FixedAmount(50_000)));
    assert!(policy.requires_approval(DiscountSpec::FreeTrial(31)));
}

#[test]
fn a_live_promotion_keeps_its_terms() {
    let p = promo(base());
    let patch = PromotionPatch::parse(&json!({"version": 1, "discountValue": 50})).unwrap();
    assert!(matches!(p.apply(&patch, &actor("m")), Err(PromotionError::NotEditable { .. })));
    let patch = PromotionPatch::parse(&json!({"version": 1, "endDate": "2027-01-31", "name": "Longer"})).unwrap();
    let after = p.apply(&patch, &actor("m")).unwrap();
    assert_eq!((after.end_date, after.version, after.terms_version), (d("2027-01-31"), 2, 1));
    let stale = PromotionPatch::parse(&json!({"version": 7, "name": "x"})).unwrap();
    assert!(matches!(p.apply(&stale, &actor("m")), Err(PromotionError::VersionConflict { .. })));
    let mut draft = promo(base());
    draft.status = PromotionStatus::Draft;
    let patch = PromotionPatch::parse(&json!({"version": 1, "discountValue": 30})).unwrap();
    let after = draft.apply(&patch, &actor("m")).unwrap();
    assert_eq!(after.terms_version, 2);
    assert_eq!(after.discount, DiscountSpec::Percentage(Percent::from_basis_points(3_000).unwrap()));
}

fn purchase<'a>(tier: &'a Tier, customer: Option<&'a Customer>) -> Purchase<'a> {
    Purchase {
        today: d("2026-11-15"),
        tier,
        billing_period: BillingPeriod::Monthly,
        commitment_months: 12,
        customer,
        combined: 1,
    }
}

fn codes(reasons: &[Reason]) -> Vec<&'static str> {
    reasons.iter().map(|r| r.code.as_str()).collect()
}

#[test]
fn every_reason_has_a_case() {
    let gold = tier("gold");
    let paying = Customer {
        partner_id: "p".into(),
        current_tier: Some("gold".into()),
        trialing: false,
        paying_now: true,
        ever_paid: true,
        signup_date: Some(d("2026-11-10")),
        segment: None,
    };
    let churned = Customer { paying_now: false, current_tier: Some("free".into()), ..paying.clone() };
    let new = Customer { ever_paid: false, paying_now: false, current_tier: Some("free".into()), ..paying.clone() };
    let ok = promo(base());
    assert!(check(&ok, &purchase(&gold, Some(&paying)), 0).is_empty());

    let mut paused = ok.clone();
    paused.status = PromotionStatus::Paused;
    let cases: Vec<(Promotion, Purchase, u64, &str)> = vec![
        (paused, purchase(&gold, None), 0, "not_active"),
        (promo(with(base(), json!({"startDate": "2026-11-20"}))), purchase(&gold, None), 0, "not_started"),
        (promo(with(base(), json!({"endDate": "2026-11-14"}))), purchase(&gold, None), 0, "ended"),
        (promo(with(base(), json!({"targetTiers": ["platinum"]}))), purchase(&gold, None), 0, "tier_not_eligible"),
        (
            promo(with(base(), json!({"eligibilityRules": {"excludeTiers": ["gold"]}}))),
            purchase(&gold, Some(&paying)),
            0,
            "excluded_tier",
        ),
        (promo(with(base(), json!({"appliesTo": "yearly"}))), purchase(&gold, None), 0, "billing_period_not_eligible"),
        (
            promo(with(base(), json!({"eligibilityRules": {"userType": "new"}}))),
            purchase(&gold, Some(&churned)),
            0,
            "user_type_not_eligible",
        ),
        (
            promo(with(base(), json!({"eligibilityRules": {"userType": "existing"}}))),
            purchase(&gold, Some(&new)),
            0,
            "user_type_not_eligible",
        ),
        (
            promo(with(base(), json!({"eligibilityRules": {"userType": "churned"}}))),
            purchase(&gold, Some(&paying)),
            0,
            "user_type_not_eligible",
        ),
        (
            promo(with(base(), json!({"eligibilityRules": {"minAccountAge": 30}}))),
            purchase(&gold, Some(&paying)),
            0,
            "account_too_new",
        ),
        (
            promo(with(base(), json!({"eligibilityRules": {"maxAccountAge": 2}}))),
            purchase(&gold, Some(&paying)),
            0,
            "account_too_old",
        ),
        (
            promo(with(base(), json!({"eligibilityRules": {"segments": ["luxury"]}}))),
            purchase(&gold, None),
            0,
            "segment_not_eligible",
        ),
        (
            {
                let mut p = promo(with(base(), json!({"maxRedemptions": 3})));
                p.redemption_count = 3;
                p
            },
            purchase(&gold, None),
            0,
            "max_redemptions_reached",
        ),
        (promo(base()), purchase(&gold, Some(&paying)), 1, "per_user_limit_reached"),
        (
            promo(with(base(), json!({"minimumCommitmentMonths": 24}))),
            purchase(&gold, None),
            0,
            "minimum_commitment_not_met",
        ),
        (promo(base()), Purchase { combined: 2, ..purchase(&gold, None) }, 0, "not_stackable"),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (p, buy, used, expected) in cases {
        let got = check(&p, &buy, used);
        assert_eq!(codes(&got), vec![expected], "{expected}: {got:?}");
        seen.insert(expected);
    }
    assert_eq!(seen.len() + 1, 15, "every reason code but not_found (a store answer) has a case");
}

#[test]
fn trials_are_for_customers_without_one_and_extensions_for_those_in_one() {
    let gold = tier("gold");
    let fresh = Customer {
        partner_id: "p".into(),
        current_tier: Some("free".into()),
        trialing: false,
        paying_now: false,
        ever_paid: false,
        signup_date: Some(d("2026-11-01")),
        segment: None,
    };
    let trialing = Customer { trialing: true, ..fresh.clone() };
    let paid_before = Customer { ever_paid: true, ..fresh.clone() };
    let trial = promo(with(base(), json!({"discountType": "free_trial", "discountValue": 14})));
    let extension = promo(with(base(), json!({"discountType": "extended_trial", "discountValue": 7})));
    assert!(check(&trial, &purchase(&gold, Some(&fresh)), 0).is_empty());
    assert!(check(&trial, &purchase(&gold, None), 0).is_empty(), "a prospect may start a trial");
    for c in [&trialing, &paid_before] {
        assert_eq!(codes(&check(&trial, &purchase(&gold, Some(c)), 0)), vec!["user_type_not_eligible"]);
    }
    assert!(check(&extension, &purchase(&gold, Some(&trialing)), 0).is_empty());
    assert_eq!(codes(&check(&extension, &purchase(&gold, Some(&fresh)), 0)), vec!["user_type_not_eligible"]);
    assert_eq!(price_with(&gold, BillingPeriod::Monthly, &[&extension]).trial_days, 7);
}

#[test]
fn segments_are_the_customers_own_and_a_prospects_is_the_tier_bought() {
    let mut luxury_tier = tier("platinum");
    luxury_tier.segment = "luxury".into();
    let for_luxury = promo(with(base(), json!({"eligibilityRules": {"segments": ["luxury"]}})));
    let on_essential = Customer {
        partner_id: "p".into(),
        current_tier: Some("essential-basic".into()),
        trialing: false,
        paying_now: true,
        ever_paid: true,
        signup_date: Some(d("2026-10-01")),
        segment: Some("essential".into()),
    };
    let on_luxury = Customer { segment: Some("luxury".into()), ..on_essential.clone() };
    // An essential customer buying a luxury tier is still an essential customer.
    let refused = check(&for_luxury, &purchase(&luxury_tier, Some(&on_essential)), 0);
    assert_eq!(codes(&refused), vec!["segment_not_eligible"]);
    assert!(refused[0].message.contains("this one is in essential"), "{}", refused[0].message);
    // A luxury customer qualifies whatever tier they buy.
    assert!(check(&for_luxury, &purchase(&tier("gold"), Some(&on_luxury)), 0).is_empty());
    // A prospect, or a customer whose segment was not read, is placed by the tier bought.
    assert!(check(&for_luxury, &purchase(&luxury_tier, None), 0).is_empty());
    let unknown = Customer { segment: None, ..on_essential.clone() };
    assert!(check(&for_luxury, &purchase(&luxury_tier, Some(&unknown)), 0).is_empty());

    // The current tier is read only when a promotion asks for segments and
    // the customer is on another tier than the one bought.
    assert!(unknown.needs_segment(&luxury_tier, [&for_luxury].into_iter()));
    assert!(!unknown.needs_segment(&luxury_tier, [&promo(base())].into_iter()));
    assert!(!on_essential.needs_segment(&luxury_tier, [&for_luxury].into_iter()), "already known");
    let same = Customer { current_tier: Some("platinum".into()), ..unknown };
    assert!(!same.needs_segment(&luxury_tier, [&for_luxury].into_iter()), "buying the tier they are on");
}

#[test]
fn a_promotion_past_its_end_cannot_go_live() {
    let mut p = promo(with(base(), json!({"endDate": "2026-11-05"})));
    p.status = PromotionStatus::Draft;
    let later = Actor { today: d("2026-11-06"), ..actor("m") };
    assert!(matches!(
        p.transition(Action::Submit, &later, &ApprovalPolicy::default(), None),
        Err(PromotionError::Ended)
    ));
    let cancelled = p.transition(Action::Cancel, &later, &ApprovalPolicy::default(), Some("typo".into())).unwrap();
    assert_eq!(cancelled.cancellation_reason.as_deref(), Some("typo"));
}

#[test]
fn every_failing_rule_is_listed_not_just_the_first() {
    let gold = tier("gold");
    let mut p = promo(with(
        base(),
        json!({"targetTiers": ["platinum"], "appliesTo": "yearly", "eligibilityRules": {"segments": ["luxury"]}}),
    ));
    p.status = PromotionStatus::Paused;
    let got = check(&p, &Purchase { combined: 2, ..purchase(&gold, None) }, 0);
    assert_eq!(
        codes(&got),
        vec!["not_active", "tier_not_eligible", "billing_period_not_eligible", "segment_not_eligible", "not_stackable"]
    );
}

#[test]
fn stacked_prices_share_the_discount_exactly() {
    let gold = tier("gold");
    let a = promo(with(base(), json!({"stackable": true})));
    let b = promo(with(base(), json!({"stackable": true, "discountType": "fixed_amount", "discountValue": 10_000})));
    let price = price_with(&gold, BillingPeriod::Monthly, &[&a, &b]);
    // 360,000 → 15% → 306,000 → −10,000 → 296,000
    assert_eq!((price.original_price, price.final_price), (360_000, 296_000));
    let shares = discount_shares(&gold, BillingPeriod::Monthly, &[&a, &b]);
    assert_eq!(shares, vec![54_000, 10_000]);
    assert_eq!(shares.iter().sum::<i64>(), price.discount_amount);
}

#[test]
fn generated_codes_use_the_unambiguous_alphabet() {
    let mut state = 7u32;
    let mut random = || {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        (state >> 16) as u8
    };
    let code = generate_code("WIN-", 10, &mut random);
    assert_eq!(code.len(), 14);
    assert!(code.starts_with("WIN-"));
    assert!(code[4..].bytes().all(|b| CODE_ALPHABET.contains(&b)));
    for bad in [b'0', b'O', b'1', b'I', b'L'] {
        assert!(!CODE_ALPHABET.contains(&bad));
    }
    let req = CodeRequest::parse(&json!({"count": 5, "prefix": "vip"})).unwrap();
    assert_eq!((req.count, req.prefix.as_str(), req.length), (5, "VIP", 8));
    assert!(CodeRequest::parse(&json!({"count": 91})).is_err());
    assert!(CodeRequest::parse(&json!({})).is_err());
}

#[test]
fn applications_take_a_code_codes_or_an_id() {
    let a = Application::parse(&json!({"code": "win-1", "tierId": "gold"})).unwrap();
    assert_eq!((a.codes, a.billing_period), (vec!["WIN-1".to_string()], BillingPeriod::Monthly));
    let err = Application::parse(&json!({"tierId": "gold"})).unwrap_err();
    assert!(err.fields.contains_key("code"));
    let err = Application::parse(
        &json!({"code": "AAA", "promotionId": "promo_01jc0000000000000000000000", "tierId": "gold"}),
    )
    .unwrap_err();
    assert!(err.fields.contains_key("promotionId"));
    let err = Application::parse(&json!({"code": "AAA"})).unwrap_err();
    assert!(err.fields.contains_key("tierId"));
}
