use super::*;
use crate::domain::defaults::default_tiers;
use crate::domain::money::{BillingPeriod, Percent};
use crate::domain::permissions::Role;
use crate::domain::tier::Tier;
use chrono::NaiveDate;
use serde_json::json;
use serde_json::Value;
use std::collections::BTreeMap;

fn gold() -> Tier {
    let change = crate::domain::actor::Actor::fixture("t", "2026-01-01T00:00:00.000Z");
    default_tiers().into_iter().map(|n| n.into_tier(&change)).find(|t| t.tier_id == "gold").unwrap()
}

fn actor(id: &str, role: Role) -> Actor {
    Actor { roles: vec![role], ..Actor::fixture(id, "2026-11-30T10:00:00Z") }
}

fn new_quote(discounts: Value) -> NewQuote {
    NewQuote::parse(&json!({
        "prospectEmail": "buyer@example.com",
        "prospectName": "Ada Buyer",
        "baseTier": "gold",
        "billingPeriod": "monthly",
        "discounts": discounts,
        "validUntil": "2026-12-30"
    }))
    .unwrap()
}

fn ids() -> QuoteIds {
    QuoteIds { quote_id: "quo_01".into(), quote_number: quote_number(2026, 7) }
}

fn create(discounts: Value, who: &Actor) -> Quote {
    new_quote(discounts).into_quote(ids(), &gold(), who, &DiscountAuthority::default(), PriceList::default()).unwrap()
}

#[test]
fn quote_numbers_are_zero_padded_and_grow_past_999() {
    assert_eq!(quote_number(2026, 1), "Q-2026-001");
    assert_eq!(quote_number(2026, 42), "Q-2026-042");
    assert_eq!(quote_number(2026, 1000), "Q-2026-1000");
}

#[test]
fn customizations_add_up_and_discounts_compound() {
    let request = CustomizationRequest {
        additional_listings: Some(5),
        additional_images: Some(10),
        custom_features: vec![CustomFeature { feature_id: "sso".into(), name: "SSO".into(), price: 25_000 }],
        custom_limits: BTreeMap::new(),
    };
    let pct = |bp| DiscountTerms::Percentage(Percent::from_basis_points(bp).unwrap());
    let discounts = vec![
        DiscountRequest { terms: pct(1000), reason: "volume".into() },
        DiscountRequest { terms: DiscountTerms::FixedAmount(10_000), reason: "loyalty".into() },
    ];
    let p = price_quote(&gold(), BillingPeriod::Monthly, &request, &discounts, PriceList::default());
    // 360,000 + 5×1,000 + 10×200 + 25,000 = 392,000
    assert_eq!(p.subtotal, 392_000);
    assert_eq!(p.discounts[0].amount, 39_200);
    assert_eq!(p.discounts[1].amount, 10_000);
    assert_eq!((p.total_discount, p.final_price), (49_200, 342_800));
    assert_eq!(p.price_per_month, 342_800);
    // 49,200 / 392,000 = 12.551% → 12.55
    assert!((p.total_discount_percent - 12.55).abs() < 1e-9);

    // Yearly: add-ons are twelve months; the per-month figure is a twelfth, half up.
    let y = price_quote(&gold(), BillingPeriod::Yearly, &request, &[], PriceList::default());
    assert_eq!(y.customizations.additional_listings.unwrap().price_per_unit, 12_000);
    assert_eq!(y.subtotal, gold().prices.yearly + 60_000 + 24_000 + 25_000);
    assert_eq!(y.price_per_month, (y.final_price + 6) / 12);
}

#[test]
fn authority_caps_by_role_and_boundary_is_inclusive() {
    let rep = actor("rep-1", Role::SalesRep);
    assert_eq!(create(json!([{"type": "percentage", "value": 15, "reason": "r"}]), &rep).status, QuoteStatus::Draft);
    let over = create(json!([{"type": "percentage", "value": 15.01, "reason": "r"}]), &rep);
    assert_eq!(over.status, QuoteStatus::PendingApproval);
    assert!(over.approval_required && over.discounts[0].approval_required);
    let manager = actor("mgr-1", Role::SalesManager);
    assert_eq!(
        create(json!([{"type": "percentage", "value": 30, "reason": "r"}]), &manager).status,
        QuoteStatus::Draft
    );
    let admin = actor("adm-1", Role::Admin);
    assert_eq!(create(json!([{"type": "percentage", "value": 90, "reason": "r"}]), &admin).status, QuoteStatus::Draft);
    // Two 10% lines are 19% in total: above a rep's 15%.
    let two = create(
        json!([{"type": "percentage", "value": 10, "reason": "a"}, {"type": "percentage", "value": 10, "reason": "b"}]),
        &rep,
    );
    assert_eq!((two.total_discount, two.status), (68_400, QuoteStatus::PendingApproval));
    let custom = DiscountAuthority::parse("sales_rep:20, admin:50").unwrap();
    assert_eq!(custom.cap_for(&[Role::SalesRep]), Percent::from_basis_points(2_000));
    assert_eq!(custom.cap_for(&[Role::SalesRep, Role::SalesManager]), Percent::from_basis_points(3_000));
    assert_eq!(custom.cap_for(&[Role::Admin]), Percent::from_basis_points(5_000));
    assert!(DiscountAuthority::parse("partner:10").is_err());
    assert!(DiscountAuthority::parse("sales_rep:abc").is_err());
    assert!(!exceeds(None, 10, 10) && !exceeds(Percent::from_basis_points(0), 5, 0));
}

#[test]
fn approval_workflow_and_self_approval() {
    let rep = actor("rep-1", Role::SalesRep);
    let q = create(json!([{"type": "percentage", "value": 25, "reason": "strategic"}]), &rep);
    let auth = DiscountAuthority::default();
    assert!(matches!(q.send(&rep, "h".into()), Err(QuoteError::IllegalTransition { .. })));
    let manager = actor("mgr-1", Role::SalesManager);
    let approved = q.approve(&manager, &auth, None).unwrap();
    assert_eq!((approved.status, approved.version), (QuoteStatus::Draft, 2));
    assert_eq!(approved.discounts[0].approved_by.as_deref(), Some("mgr-1"));
    assert!(approved.send(&rep, "h".into()).is_ok());
    // The author cannot approve their own quote, whatever their role.
    let own = create(json!([{"type": "percentage", "value": 40, "reason": "x"}]), &manager);
    assert!(matches!(own.approve(&manager, &auth, None), Err(QuoteError::SelfApproval)));
    // 40% is above a manager's own cap: only an admin may approve it.
    let other = actor("mgr-2", Role::SalesManager);
    assert!(matches!(own.approve(&other, &auth, None), Err(QuoteError::AboveApproverAuthority { .. })));
    assert!(own.approve(&actor("adm-1", Role::Admin), &auth, None).is_ok());
    // Refused: back to draft, still not sendable; asking again works.
    let refused = q.reject_approval(&manager, Some("too deep".into())).unwrap();
    assert_eq!(refused.status, QuoteStatus::Draft);
    assert!(matches!(refused.send(&rep, "h".into()), Err(QuoteError::ApprovalRequired)));
    assert_eq!(refused.request_approval(&rep).unwrap().status, QuoteStatus::PendingApproval);
}

#[test]
fn editing_an_approved_quote_needs_approval_again() {
    let rep = actor("rep-1", Role::SalesRep);
    let auth = DiscountAuthority::default();
    let q = create(json!([{"type": "percentage", "value": 25, "reason": "strategic"}]), &rep);
    let approved = q.approve(&actor("mgr-1", Role::SalesManager), &auth, None).unwrap();
    let patch = QuotePatch::parse(&json!({"version": approved.version, "notes": "call Tuesday"})).unwrap();
    let edited = approved.edit(&patch, &gold(), &rep, &auth, PriceList::default()).unwrap();
    assert_eq!(edited.status, QuoteStatus::Draft);
    assert!(edited.approval.is_none() && !edited.may_be_sent());
    let stale = QuotePatch::parse(&json!({"version": 1, "notes": "x"})).unwrap();
    assert!(matches!(
        approved.edit(&stale, &gold(), &rep, &auth, PriceList::default()),
        Err(QuoteError::VersionConflict { current: Some(2) })
    ));
    // Lowering the discount within authority makes it sendable without approval.
    let lower = QuotePatch::parse(&json!({
        "version": edited.version,
        "discounts": [{"type": "percentage", "value": 10, "reason": "r"}]
    }))
    .unwrap();
    assert!(edited.edit(&lower, &gold(), &rep, &auth, PriceList::default()).unwrap().may_be_sent());
}

#[test]
fn custom_limits_above_the_tier_need_an_approver() {
    let tier = gold();
    let (metric, limit) = tier.limits.iter().find_map(|(m, l)| l.map(|l| (m.clone(), l))).unwrap();
    let quote = |limits: Value, who: &Actor| {
        NewQuote::parse(&json!({
            "prospectEmail": "buyer@example.com",
            "prospectName": "Ada Buyer",
            "baseTier": "gold",
            "billingPeriod": "monthly",
            "customizations": {"customLimits": limits},
            "validUntil": "2026-12-30"
        }))
        .unwrap()
        .into_quote(ids(), &tier, who, &DiscountAuthority::default(), PriceList::default())
        .unwrap()
    };
    let rep = actor("rep-1", Role::SalesRep);
    let at_limit = quote(json!({ metric.clone(): limit }), &rep);
    assert_eq!((at_limit.status, at_limit.approval_required), (QuoteStatus::Draft, false));
    let above = quote(json!({ metric.clone(): limit + 1 }), &rep);
    assert_eq!((above.status, above.approval_required), (QuoteStatus::PendingApproval, true));
    assert!(!above.may_be_sent());
    // A metric the tier does not include would be granted by the quote.
    let new_metric = quote(json!({"customMetric": 1}), &rep);
    assert_eq!(new_metric.status, QuoteStatus::PendingApproval);
    assert_eq!(limits_above_tier(&tier, &new_metric.customizations.custom_limits), vec!["customMetric"]);
    // Whoever may approve custom pricing may grant them.
    for role in [Role::SalesManager, Role::Admin] {
        assert_eq!(
            quote(json!({ metric.clone(): 1_000_000_000_000u64 }), &actor("m", role)).status,
            QuoteStatus::Draft
        );
    }
    let approved = above.approve(&actor("mgr-1", Role::SalesManager), &DiscountAuthority::default(), None).unwrap();
    assert!(approved.may_be_sent());
}

#[test]
fn acceptance_and_expiry_rules() {
    let rep = actor("rep-1", Role::SalesRep);
    let sent = create(json!([]), &rep).send(&rep, "h".into()).unwrap();
    let last_day = NaiveDate::from_ymd_opt(2026, 12, 30).unwrap();
    assert!(sent.check_acceptable(last_day).is_ok());
    let after = last_day.succ_opt().unwrap();
    assert!(matches!(sent.check_acceptable(after), Err(QuoteError::Expired(_))));
    assert!(sent.expire(last_day, "t").is_none());
    let expired = sent.expire(after, "t").unwrap();
    assert_eq!(expired.status, QuoteStatus::Expired);
    assert!(expired.expire(after, "t").is_none());
    let conversion = Conversion {
        partner_id: "prt_x".into(),
        transition_id: None,
        partner_created: true,
        accepted_by_name: None,
        stripe_subscription_id: None,
    };
    let accepted = sent.accept("t", last_day, conversion.clone()).unwrap();
    assert_eq!((accepted.status, accepted.customer_id.as_deref()), (QuoteStatus::Accepted, Some("prt_x")));
    assert!(matches!(accepted.accept("t", last_day, conversion), Err(QuoteError::IllegalTransition { .. })));
    assert!(accepted.cancel(&rep, None).is_err());
}

#[test]
fn bad_input_names_each_field() {
    let err = NewQuote::parse(&json!({
        "prospectEmail": "nope",
        "baseTier": "Gold!",
        "billingPeriod": "weekly",
        "discounts": [{"type": "percentage", "value": 120, "reason": ""}, {"type": "bogus", "value": 1, "reason": "r"}],
        "customizations": {"additionalListings": {"quantity": -1}, "customLimits": {"leads": "many"}},
        "status": "accepted",
        "finalPrice": 1
    }))
    .unwrap_err();
    for field in [
        "prospectEmail",
        "prospectName",
        "baseTier",
        "billingPeriod",
        "discounts[0].value",
        "discounts[0].reason",
        "discounts[1].type",
        "customizations.additionalListings.quantity",
        "customizations.customLimits.leads",
        "status",
        "finalPrice",
    ] {
        assert!(err.fields.contains_key(field), "{field} not named: {:?}", err.fields);
    }
    let rep = actor("rep-1", Role::SalesRep);
    let far = NewQuote::parse(&json!({
        "prospectEmail": "a@b.example", "prospectName": "A", "baseTier": "gold",
        "billingPeriod": "monthly", "validUntil": "2027-12-01"
    }))
    .unwrap();
    let err = far.into_quote(ids(), &gold(), &rep, &DiscountAuthority::default(), PriceList::default());
    assert!(matches!(err, Err(QuoteError::Invalid(v)) if v.fields.contains_key("validUntil")));
}

#[test]
fn stored_form_keeps_the_token_hash_and_the_api_form_does_not() {
    let rep = actor("rep-1", Role::SalesRep);
    let sent = create(json!([{"type": "fixed_amount", "value": 5_000, "reason": "r"}]), &rep)
        .send(&rep, "abc".into())
        .unwrap();
    let api = serde_json::to_value(&sent).unwrap();
    assert!(api.get("tokenHash").is_none());
    assert_eq!(api["discounts"][0]["type"], "fixed_amount");
    assert_eq!(api["discounts"][0]["value"], 5_000);
    let stored = serde_json::to_value(sent.stored()).unwrap();
    assert_eq!(stored["tokenHash"], "abc");
    let back: Quote = serde_json::from_value(stored).unwrap();
    assert_eq!(back.token_hash.as_deref(), Some("abc"));
    assert_eq!(back.discounts, sent.discounts);
}
