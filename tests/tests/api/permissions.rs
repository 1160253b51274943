//! Every role × tiers route, allowed and refused. The expectation is an exhaustive
//! `match` on the route's `Op`, so a new route cannot ship without a row here.

use serde_json::{json, Value};
use tierdesk::domain::permissions::{Grants, Permission, Role};
use tierdesk_tests::TestApp;
use tiers::{Op, ROUTES};

const ROLES: [Option<&str>; 5] = [None, Some("sales_rep"), Some("sales_manager"), Some("admin"), Some("partner")];

/// Which roles may call each route (seed 000 Phase 1 + DESIGN §2).
fn allowed(op: Op, role: Option<&str>) -> bool {
    let is = |names: &[&str]| role.is_some_and(|r| names.contains(&r));
    match op {
        Op::PublicCatalog
        | Op::Compare
        | Op::UpgradePrice
        | Op::PublicSegments
        | Op::PublicSegment
        | Op::EvaluateUpsell
        | Op::RecordStorefrontEvent
        | Op::StorefrontPrice => true,
        // The partner's own upsell context: partner tokens only (staff: 403
        // not_a_partner, like the other /api/billing routes).
        Op::PartnerUpsell => role == Some("partner"),
        Op::ListTiers
        | Op::GetTier
        | Op::PriceHistory
        | Op::ListSegments
        | Op::ListPricingRules
        | Op::ListPricingConstraints
        | Op::ListUpsellRules
        | Op::GetFeatureFlags
        | Op::ListCompetitorPrices
        | Op::ListAddOns => is(&["sales_rep", "sales_manager", "admin"]),
        // Segments are storefront structure: system configuration, admins only.
        Op::CreateSegment | Op::UpdateSegment | Op::RetireSegment | Op::ReorderSegments => is(&["admin"]),
        Op::CreateTier | Op::UpdateTier | Op::ArchiveTier | Op::AddFeature | Op::UpdateFeature | Op::RemoveFeature => {
            is(&["sales_manager", "admin"])
        }
        Op::Initialize => is(&["admin"]),
        // Pricing rules and constraints change what customers pay: pricing management.
        Op::CreatePricingRule
        | Op::UpdatePricingRule
        | Op::DeletePricingRule
        | Op::PutPricingConstraints
        | Op::CreateUpsellRule
        | Op::UpdateUpsellRule
        | Op::PriceImpact
        | Op::PutCompetitorPrice
        | Op::DeleteCompetitorPrice
        | Op::CreateAddOn
        | Op::UpdateAddOn => is(&["sales_manager", "admin"]),
        Op::PutFeatureFlags | Op::PutAlertRule => is(&["admin"]),
        // Alerts carry revenue figures (churn, forecast): view_revenue_metrics.
        Op::ListAlertRules => is(&["sales_manager", "admin"]),
    }
}

fn tier_body(id: &str) -> Value {
    json!({"tierId": id, "name": "T", "tierLevel": 5, "prices": {"monthly": 100, "yearly": 1000},
           "features": [{"featureId": "f1", "name": "F1"}]})
}

/// A rule on one tier only, so the cases' rules never price each other's tiers.
fn rule_body(rule_id: &str, tier: &str) -> Value {
    json!({"ruleId": rule_id, "name": "Case rule", "condition": {"tiers": [tier]},
           "action": {"type": "percentage", "basisPoints": 500}})
}

fn upsell_body(rule_id: &str) -> Value {
    json!({"ruleId": rule_id, "name": "Case rule", "trigger": {"type": "viewing_level", "tierLevel": 1},
           "action": {"type": "show_next_tier_benefits"}})
}

fn segment_body(id: &str) -> Value {
    json!({"segmentId": id, "name": "S", "target": "Everyone", "priceRange": {"min": 0, "max": 100}})
}

/// The request for `op`, against a tier and a segment prepared for this one case
/// (`order` is the reorder body naming every segment at its current version).
fn request(op: Op, id: &str, order: &Value, flags_version: u64) -> (&'static str, String, Option<Value>) {
    let segment = format!("s{id}");
    match op {
        Op::ListSegments => ("GET", "/api/admin/segments".into(), None),
        Op::CreateSegment => ("POST", "/api/admin/segments".into(), Some(segment_body(&format!("{segment}-new")))),
        Op::ReorderSegments => ("POST", "/api/admin/segments/reorder".into(), Some(order.clone())),
        Op::UpdateSegment => {
            ("PUT", format!("/api/admin/segments/{segment}"), Some(json!({"version": 1, "name": "Renamed"})))
        }
        Op::RetireSegment => ("DELETE", format!("/api/admin/segments/{segment}"), None),
        Op::PublicSegments => ("GET", "/api/segments".into(), None),
        Op::ListPricingRules => ("GET", "/api/admin/pricing-rules".into(), None),
        Op::CreatePricingRule => ("POST", "/api/admin/pricing-rules".into(), Some(rule_body(&format!("{id}-new"), id))),
        Op::UpdatePricingRule => {
            ("PUT", format!("/api/admin/pricing-rules/p{id}"), Some(json!({"version": 1, "isActive": false})))
        }
        Op::DeletePricingRule => ("DELETE", format!("/api/admin/pricing-rules/p{id}"), None),
        Op::ListPricingConstraints => ("GET", "/api/admin/pricing-constraints".into(), None),
        Op::ListUpsellRules => ("GET", "/api/admin/upsell-rules".into(), None),
        Op::CreateUpsellRule => ("POST", "/api/admin/upsell-rules".into(), Some(upsell_body(&format!("u{id}-new")))),
        Op::UpdateUpsellRule => {
            ("PUT", format!("/api/admin/upsell-rules/u{id}"), Some(json!({"version": 1, "active": false})))
        }
        Op::GetFeatureFlags => ("GET", "/api/admin/feature-flags".into(), None),
        Op::ListAlertRules => ("GET", "/api/admin/alert-rules".into(), None),
        Op::PutAlertRule => (
            "PUT",
            format!("/api/admin/alert-rules/r{id}"),
            Some(json!({"name": "R", "metric": "churn_rate", "threshold": 1, "recipients": ["ops@example.com"]})),
        ),
        Op::ListCompetitorPrices => ("GET", "/api/admin/competitor-prices".into(), None),
        Op::ListAddOns => ("GET", "/api/admin/add-ons".into(), None),
        Op::CreateAddOn => (
            "POST",
            "/api/admin/add-ons".into(),
            Some(json!({"addOnId": format!("a{id}-new"), "name": "A", "prices": {"monthly": 10, "yearly": 100}})),
        ),
        Op::UpdateAddOn => ("PUT", format!("/api/admin/add-ons/a{id}"), Some(json!({"version": 1, "active": false}))),
        Op::StorefrontPrice => ("POST", "/api/storefront/price".into(), Some(json!({"tierId": "gold"}))),
        Op::PutCompetitorPrice => {
            ("PUT", format!("/api/admin/competitor-prices/acme/{id}"), Some(json!({"name": "Acme", "price": 90})))
        }
        Op::DeleteCompetitorPrice => ("DELETE", format!("/api/admin/competitor-prices/acme/{id}"), None),
        Op::PutFeatureFlags => ("PUT", "/api/admin/feature-flags".into(), Some(json!({"version": flags_version}))),
        Op::EvaluateUpsell => ("POST", "/api/upsell/evaluate".into(), Some(json!({"tierId": "free"}))),
        Op::PartnerUpsell => ("POST", "/api/billing/upsell/evaluate".into(), Some(json!({"tierId": "free"}))),
        Op::RecordStorefrontEvent => (
            "POST",
            "/api/storefront/events".into(),
            Some(json!({"eventId": format!("evt-{id}"), "event": "segment_selected", "segmentId": segment})),
        ),
        Op::PutPricingConstraints => (
            "PUT",
            format!("/api/admin/pricing-constraints/tier/{id}"),
            Some(json!({"version": 0, "constraints": {"minPrice": 50}})),
        ),
        Op::PublicSegment => ("GET", format!("/api/segments/{segment}"), None),
        Op::ListTiers => ("GET", "/api/admin/tiers".into(), None),
        Op::CreateTier => ("POST", "/api/admin/tiers".into(), Some(tier_body(&format!("{id}-new")))),
        Op::Initialize => ("POST", "/api/admin/tiers/initialize".into(), None),
        Op::GetTier => ("GET", format!("/api/admin/tiers/{id}"), None),
        Op::UpdateTier => ("PUT", format!("/api/admin/tiers/{id}"), Some(json!({"version": 1, "name": "Renamed"}))),
        Op::ArchiveTier => ("DELETE", format!("/api/admin/tiers/{id}"), None),
        Op::AddFeature => {
            ("POST", format!("/api/admin/tiers/{id}/features"), Some(json!({"featureId": "f2", "name": "F2"})))
        }
        Op::UpdateFeature => ("PUT", format!("/api/admin/tiers/{id}/features/f1"), Some(json!({"enabled": false}))),
        Op::RemoveFeature => ("DELETE", format!("/api/admin/tiers/{id}/features/f1"), None),
        Op::PriceHistory => ("GET", format!("/api/admin/tiers/{id}/prices"), None),
        Op::PriceImpact => (
            "POST",
            format!("/api/admin/tiers/{id}/price-impact"),
            Some(json!({"prices": {"monthly": 110, "yearly": 1100}})),
        ),
        Op::PublicCatalog => ("GET", "/api/tiers".into(), None),
        Op::Compare => ("GET", "/api/tiers/compare?ids=free,gold".into(), None),
        Op::UpgradePrice => (
            "POST",
            "/api/tiers/upgrade-price".into(),
            Some(json!({"fromTierId": "free", "toTierId": "gold", "billingPeriod": "monthly"})),
        ),
    }
}

#[tokio::test]
async fn every_role_on_every_tiers_route() {
    let app = TestApp::seeded().await;
    let mut cases = 0;
    for (i, route) in ROUTES.iter().enumerate() {
        for (j, role) in ROLES.iter().enumerate() {
            let id = format!("case-{i}-{j}");
            let (status, body) = app.call("POST", "/api/admin/tiers", Some("admin"), Some(tier_body(&id))).await;
            assert_eq!(status, 201, "{body}");
            let segment = segment_body(&format!("s{id}"));
            let (status, body) = app.call("POST", "/api/admin/segments", Some("admin"), Some(segment)).await;
            assert_eq!(status, 201, "{body}");
            let (_, listed) = app.call("GET", "/api/admin/segments", Some("admin"), None).await;
            let order: Vec<Value> = listed["items"]
                .as_array()
                .unwrap()
                .iter()
                .rev()
                .map(|s| json!({"segmentId": s["segmentId"], "version": s["version"]}))
                .collect();
            if matches!(route.op, Op::UpdatePricingRule | Op::DeletePricingRule) {
                let rule = rule_body(&format!("p{id}"), &id);
                let (status, body) = app.call("POST", "/api/admin/pricing-rules", Some("admin"), Some(rule)).await;
                assert_eq!(status, 201, "{body}");
            }
            if route.op == Op::UpdateAddOn {
                let add_on =
                    json!({"addOnId": format!("a{id}"), "name": "A", "prices": {"monthly": 10, "yearly": 100}});
                let (status, body) = app.call("POST", "/api/admin/add-ons", Some("admin"), Some(add_on)).await;
                assert_eq!(status, 201, "{body}");
            }
            if route.op == Op::DeleteCompetitorPrice {
                let point = json!({"name": "Acme", "price": 95});
                let path = format!("/api/admin/competitor-prices/acme/{id}");
                let (status, body) = app.call("PUT", &path, Some("admin"), Some(point)).await;
                assert_eq!(status, 200, "{body}");
            }
            if route.op == Op::UpdateUpsellRule {
                let rule = upsell_body(&format!("u{id}"));
                let (status, body) = app.call("POST", "/api/admin/upsell-rules", Some("admin"), Some(rule)).await;
                assert_eq!(status, 201, "{body}");
            }
            let (_, flags) = app.call("GET", "/api/admin/feature-flags", Some("admin"), None).await;
            let flags_version = flags["version"].as_u64().unwrap_or_default();
            let (method, path, body) = request(route.op, &id, &json!({ "order": order }), flags_version);
            assert_eq!(method, route.method, "{:?}", route.op);
            if route.op == Op::PartnerUpsell {
                // Refused by who the caller is, not by a permission: anonymous 401,
                // staff 403 not_a_partner; a partner's own token is judged for it.
                let (status, answer) = match role {
                    Some("partner") => {
                        let partner = app.create_partner(&format!("Upsell {id}")).await;
                        let token = app.partner_token(partner["partnerId"].as_str().unwrap());
                        app.call_with_token(method, &path, &token, body).await
                    }
                    _ => app.call(method, &path, *role, body).await,
                };
                let expected = match role {
                    None => 401,
                    Some("partner") => 200,
                    Some(_) => 403,
                };
                assert_eq!(status, expected, "{role:?} {path}: {answer}");
                if expected == 403 {
                    assert_eq!(answer["error"]["code"], "not_a_partner", "{answer}");
                }
                cases += 1;
                continue;
            }
            app.assert_access(method, &path, *role, body, allowed(route.op, *role)).await;
            cases += 1;
        }
    }
    assert_eq!(cases, ROUTES.len() * ROLES.len());
}

#[tokio::test]
async fn price_changes_need_pricing_management_even_inside_an_edit() {
    // Seed 000 gives pricing management to every role that manages tiers, so under
    // its table a missing pricing check would pass unseen. Here sales managers keep
    // tier management and lose pricing management.
    let grants = Grants::SEED_000.without(Role::SalesManager, Permission::PricingManagement);
    let app = TestApp::seeded_under(grants).await;
    let read = || async {
        let (status, tier) = app.call("GET", "/api/admin/tiers/gold", Some("admin"), None).await;
        assert_eq!(status, 200, "{tier}");
        tier
    };
    let before = read().await;
    let version = before["version"].clone();
    let snapshot = app.snapshot().await;
    // A sales rep cannot edit at all: refused on tier management.
    let (status, body) = app
        .call(
            "PUT",
            "/api/admin/tiers/gold",
            Some("sales_rep"),
            Some(json!({"version": version, "prices": {"monthly": 1, "yearly": 1}})),
        )
        .await;
    assert_eq!((status, body["error"]["details"]["permission"].as_str()), (403, Some("tier_management")), "{body}");
    // The manager may edit the tier, but an edit that touches prices, even
    // alongside a field it may change, is refused on pricing management.
    for edit in [
        json!({"version": version, "prices": {"monthly": 370000, "yearly": 4440000}}),
        json!({"version": version, "name": "Gold renamed", "prices": {"monthly": 370000, "yearly": 4440000}}),
    ] {
        let (status, body) = app.call("PUT", "/api/admin/tiers/gold", Some("sales_manager"), Some(edit)).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "forbidden", "{body}");
        assert_eq!(body["error"]["details"]["permission"], "pricing_management", "{body}");
    }
    let after = read().await;
    assert_eq!(after["prices"], before["prices"], "the price did not change");
    assert_eq!(after, before);
    assert_eq!(app.snapshot().await, snapshot, "a refused edit writes nothing");
    // The same manager's edit without prices goes through: only pricing is missing.
    let (status, body) = app
        .call("PUT", "/api/admin/tiers/gold", Some("sales_manager"), Some(json!({"version": version, "name": "Gold+"})))
        .await;
    assert_eq!((status, body["name"].as_str()), (200, Some("Gold+")), "{body}");
    assert_eq!(body["prices"], before["prices"]);
    // An admin holds both: the price edit lands.
    let (status, body) = app
        .call(
            "PUT",
            "/api/admin/tiers/gold",
            Some("admin"),
            Some(json!({"version": body["version"].clone(), "prices": {"monthly": 370000, "yearly": 4440000}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(read().await["prices"]["monthly"], 370000);

    // Under seed 000's own table the manager holds pricing management too.
    let seeded = TestApp::seeded().await;
    let (status, body) = seeded
        .call(
            "PUT",
            "/api/admin/tiers/gold",
            Some("sales_manager"),
            Some(json!({"version": version, "prices": {"monthly": 370000, "yearly": 4440000}})),
        )
        .await;
    assert_eq!((status, body["prices"]["monthly"].as_i64()), (200, Some(370000)), "{body}");
}

#[tokio::test]
async fn a_token_with_no_known_group_is_forbidden_not_anonymous() {
    let app = TestApp::seeded().await;
    let token = app.token_as("auditor", "u-auditor");
    let (status, body) = app.call_with_token("GET", "/api/admin/tiers", &token, None).await;
    assert_eq!(status, 403, "{body}");
}
