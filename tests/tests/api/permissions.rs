//! Every role × tiers route, allowed and refused. The expectation is an exhaustive
//! `match` on the route's `Op`, so a new route cannot ship without a row here.

use serde_json::{json, Value};
use tierdesk_tests::TestApp;
use tiers::{Op, ROUTES};

const ROLES: [Option<&str>; 5] = [None, Some("sales_rep"), Some("sales_manager"), Some("admin"), Some("partner")];

/// Which roles may call each route (seed 000 Phase 1 + DESIGN §2).
fn allowed(op: Op, role: Option<&str>) -> bool {
    let is = |names: &[&str]| role.is_some_and(|r| names.contains(&r));
    match op {
        Op::PublicCatalog | Op::Compare | Op::UpgradePrice => true,
        Op::ListTiers | Op::GetTier | Op::PriceHistory => is(&["sales_rep", "sales_manager", "admin"]),
        Op::CreateTier | Op::UpdateTier | Op::ArchiveTier | Op::AddFeature | Op::UpdateFeature | Op::RemoveFeature => {
            is(&["sales_manager", "admin"])
        }
        Op::Initialize => is(&["admin"]),
    }
}

fn tier_body(id: &str) -> Value {
    json!({"tierId": id, "name": "T", "tierLevel": 5, "prices": {"monthly": 100, "yearly": 1000},
           "features": [{"featureId": "f1", "name": "F1"}]})
}

/// The request for `op`, against a tier prepared for this one case.
fn request(op: Op, id: &str) -> (&'static str, String, Option<Value>) {
    match op {
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
            let (method, path, body) = request(route.op, &id);
            assert_eq!(method, route.method, "{:?}", route.op);
            app.assert_access(method, &path, *role, body, allowed(route.op, *role)).await;
            cases += 1;
        }
    }
    assert_eq!(cases, ROUTES.len() * ROLES.len());
}

#[tokio::test]
async fn price_changes_need_pricing_management_even_inside_an_edit() {
    let app = TestApp::seeded().await;
    // sales_rep cannot edit at all; the check that matters is that a manager-level
    // edit touching price fields is judged on pricing_management, which managers
    // and admins hold and nobody else does.
    let (status, _) = app
        .call(
            "PUT",
            "/api/admin/tiers/gold",
            Some("sales_rep"),
            Some(json!({"version": 1, "prices": {"monthly": 1, "yearly": 1}})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .call(
            "PUT",
            "/api/admin/tiers/gold",
            Some("sales_manager"),
            Some(json!({"version": 1, "prices": {"monthly": 370000, "yearly": 4440000}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_token_with_no_known_group_is_forbidden_not_anonymous() {
    let app = TestApp::seeded().await;
    let token = app.token_as("auditor", "u-auditor");
    let (status, body) = app.call_with_token("GET", "/api/admin/tiers", &token, None).await;
    assert_eq!(status, 403, "{body}");
}
