//! Every role × partners route, allowed and refused. The expectation is an
//! exhaustive `match` on the route's `Op`, so a new route cannot ship without a row.

use partners::{Op, ROUTES};
use serde_json::{json, Value};
use tierdesk_tests::TestApp;

const ROLES: [Option<&str>; 5] = [None, Some("sales_rep"), Some("sales_manager"), Some("admin"), Some("partner")];

/// Who may call each route: reading and working a partner (notes, taking it,
/// profile) is `view_customer_info`; changing what it pays is manager level.
fn allowed(op: Op, role: Option<&str>) -> bool {
    let is = |names: &[&str]| role.is_some_and(|r| names.contains(&r));
    match op {
        Op::ListPartners
        | Op::CreatePartner
        | Op::UpsellOpportunities
        | Op::ChurnRisk
        | Op::WinBack
        | Op::GetPartner
        | Op::UpdatePartner
        | Op::History
        | Op::Journey
        | Op::AddNote
        | Op::Assign
        | Op::Subscriptions => is(&["sales_rep", "sales_manager", "admin"]),
        // Personal data as a whole: system_config (admin) only.
        Op::Export | Op::Erase => is(&["admin"]),
        // A partner's own export: tested with a partner's own token in
        // `privacy::own_export_is_the_callers_only`, not with this role table.
        Op::OwnExport => false,
        // A rep may remind the partners assigned to them (tested in `dashboard_actions`);
        // these partners are nobody's.
        Op::ChangeTier | Op::Cancel | Op::SendReminder | Op::CreateJob | Op::GetJob | Op::ContinueJob => {
            is(&["sales_manager", "admin"])
        }
    }
}

fn request(op: Op, id: &str, case: &str, role: &str, job: &str) -> (&'static str, String, Option<Value>) {
    let p = format!("/api/admin/partners/{id}");
    match op {
        Op::ListPartners => ("GET", "/api/admin/partners".into(), None),
        Op::CreatePartner => (
            "POST",
            "/api/admin/partners".into(),
            Some(json!({"companyName": "New", "primaryEmail": format!("{case}@new.example.com")})),
        ),
        Op::UpsellOpportunities => ("GET", "/api/admin/partners/upsell-opportunities".into(), None),
        Op::ChurnRisk => ("GET", "/api/admin/partners/churn-risk".into(), None),
        Op::WinBack => ("GET", "/api/admin/partners/win-back".into(), None),
        Op::GetPartner => ("GET", p, None),
        Op::UpdatePartner => ("PATCH", p, Some(json!({"companyName": "Renamed"}))),
        Op::ChangeTier => ("PATCH", format!("{p}/engagement-tier"), Some(json!({"tier": "platinum"}))),
        Op::Cancel => ("POST", format!("{p}/cancel"), Some(json!({"reason": "test"}))),
        Op::History => ("GET", format!("{p}/history"), None),
        Op::Journey => ("GET", format!("{p}/journey"), None),
        Op::AddNote => ("POST", format!("{p}/notes"), Some(json!({"note": "hello"}))),
        Op::Assign => ("POST", format!("{p}/assign"), Some(json!({"salesRep": format!("user-{role}")}))),
        Op::Subscriptions => ("GET", "/api/admin/subscriptions".into(), None),
        Op::Export => ("GET", format!("{p}/export"), None),
        Op::Erase => ("POST", format!("{p}/erase"), Some(json!({"confirmPartnerId": id}))),
        Op::OwnExport => ("GET", "/api/privacy/export".into(), None),
        Op::SendReminder => ("POST", format!("{p}/reminders"), None),
        // A job over one tier nobody is on: it completes at once.
        Op::CreateJob => (
            "POST",
            "/api/admin/subscriptions/jobs".into(),
            Some(json!({"action": "renew", "view": "active", "tier": "nobody-tier"})),
        ),
        Op::GetJob => ("GET", format!("/api/admin/subscriptions/jobs/{job}"), None),
        Op::ContinueJob => ("POST", format!("/api/admin/subscriptions/jobs/{job}/continue"), None),
    }
}

#[tokio::test]
async fn every_role_on_every_partners_route() {
    let app = TestApp::seeded().await;
    let (status, job) = app
        .call(
            "POST",
            "/api/admin/subscriptions/jobs",
            Some("admin"),
            Some(json!({"action": "renew", "view": "active", "tier": "nobody-tier"})),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let job = job["jobId"].as_str().unwrap().to_string();
    let mut cases = 0;
    let mut own_export = 0;
    for (i, route) in ROUTES.iter().enumerate() {
        if route.op == Op::OwnExport {
            own_export += 1;
            continue;
        }
        for (j, role) in ROLES.iter().enumerate() {
            let case = format!("case-{i}-{j}");
            let partner = app.create_partner(&case).await;
            let id = partner["partnerId"].as_str().unwrap();
            if route.op == Op::Erase {
                // Erasure waits for a paid term to end: this partner stays on free.
                let (method, path, body) = request(route.op, id, &case, role.unwrap_or("anonymous"), &job);
                app.assert_access(method, &path, *role, body, allowed(route.op, *role)).await;
                cases += 1;
                continue;
            }
            let (status, body) = app
                .call(
                    "PATCH",
                    &format!("/api/admin/partners/{id}/engagement-tier"),
                    Some("admin"),
                    Some(json!({"tier": "gold"})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let (method, path, body) = request(route.op, id, &case, role.unwrap_or("anonymous"), &job);
            assert_eq!(method, route.method, "{:?}", route.op);
            app.assert_access(method, &path, *role, body, allowed(route.op, *role)).await;
            cases += 1;
        }
    }
    assert_eq!(own_export, 1);
    assert_eq!(cases, (ROUTES.len() - own_export) * ROLES.len());
}

#[tokio::test]
async fn a_manager_can_grant_a_custom_discount() {
    let app = TestApp::seeded().await;
    let id = app.create_partner("Discount Co").await["partnerId"].as_str().unwrap().to_string();
    let path = format!("/api/admin/partners/{id}/engagement-tier");
    let (status, p) =
        app.call("PATCH", &path, Some("sales_manager"), Some(json!({"tier": "gold", "discountPercent": 12.5}))).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["pricePerPeriod"], 315_000);
    assert_eq!(p["discountPercent"], 12.5);
}
