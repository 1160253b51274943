//! Pricing rules and constraints (docs/pricing-rules.md) through the API: what the
//! storefront shows, what checkout charges in Stripe, and the constraint refusals.

use chrono::Datelike;
use serde_json::{json, Value};
use tierdesk_tests::stripe::StripeApp;
use tierdesk_tests::TestApp;

/// A month window around today, so the rule is in force whenever the test runs.
fn around_now() -> Value {
    let month = chrono::Utc::now().month();
    let (from, to) = (if month == 1 { 12 } else { month - 1 }, if month == 12 { 1 } else { month + 1 });
    json!({"from": from, "to": to})
}

fn tier<'a>(catalog: &'a Value, id: &str) -> &'a Value {
    catalog["items"].as_array().unwrap().iter().find(|t| t["tierId"] == id).unwrap_or_else(|| panic!("{id}"))
}

#[tokio::test]
async fn a_rule_in_force_prices_the_storefront_and_the_checkout_step_by_step_and_stays_with_the_subscriber() {
    let s = StripeApp::start().await;
    let rule = json!({"ruleId": "season", "name": "Season", "priority": 10,
                      "condition": {"startMonths": around_now(), "tiers": ["gold"]},
                      "action": {"type": "percentage", "basisPoints": 2000}});
    let (status, created) = s.app.call("POST", "/api/admin/pricing-rules", Some("sales_manager"), Some(rule)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!((created["version"].as_u64(), created["isActive"].as_bool()), (Some(1), Some(true)));

    let (status, catalog) = s.app.call("GET", "/api/tiers", None, None).await;
    assert_eq!(status, 200, "{catalog}");
    let gold = tier(&catalog, "gold");
    assert_eq!(gold["prices"]["monthly"], 360_000, "the list price stays the list price");
    assert_eq!(
        gold["pricing"]["monthly"],
        json!({"listPrice": 360_000, "steps": [{"ruleId": "season", "name": "Season", "before": 360_000, "after": 432_000}],
               "clampedBy": null, "price": 432_000})
    );
    let yearly = gold["prices"]["yearly"].as_i64().unwrap();
    assert_eq!(gold["pricing"]["yearly"]["price"].as_i64(), Some(yearly + (yearly * 2 + 5) / 10), "+20 % yearly");
    assert_eq!(tier(&catalog, "platinum")["pricing"]["monthly"]["steps"], json!([]), "the rule names gold only");

    // Checkout charges the ruled price through a Stripe price of its own.
    let (_, token, _) = s.partner("Season Co").await;
    let (status, session) = s
        .as_partner(
            &token,
            "POST",
            "/api/billing/subscribe",
            Some(json!({"tierId": "gold", "billingPeriod": "monthly"})),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["amount"], 432_000);
    assert_eq!(session["pricing"]["steps"][0]["ruleId"], "season");
    let id = session["checkoutSessionId"].as_str().unwrap();
    let (status, done) =
        tierdesk_tests::stripe::post(&s.control(&format!("checkout/sessions/{id}/complete")), json!({})).await;
    assert_eq!(status, 200, "{done}");
    s.emulator.flush().await;
    let (_, view) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!((view["tierId"].as_str(), view["pricePerPeriod"].as_i64()), (Some("gold"), Some(432_000)), "{view}");
    let (_, invoices) = s.as_partner(&token, "GET", "/api/billing/invoices", None).await;
    assert_eq!(invoices["items"][0]["amount"], 432_000, "{invoices}");

    // Switching the rule off changes the storefront at once, not the subscriber.
    let off = json!({"version": 1, "isActive": false});
    let (status, body) = s.app.call("PUT", "/api/admin/pricing-rules/season", Some("admin"), Some(off)).await;
    assert_eq!((status, body["version"].as_u64()), (200, Some(2)), "{body}");
    let (_, catalog) = s.app.call("GET", "/api/tiers", None, None).await;
    assert_eq!(tier(&catalog, "gold")["pricing"]["monthly"]["price"], 360_000);
    let (_, view) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(view["pricePerPeriod"], 432_000, "a rule change never reprices an existing subscription");
    let audits: Vec<String> = s
        .app
        .items()
        .await
        .into_iter()
        .filter(|i| i["PK"] == "AUDIT#pricing_rule#season")
        .map(|i| i["action"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(audits.len(), 2, "{audits:?}");
    assert!(audits.contains(&"pricing_rule.create".into()) && audits.contains(&"pricing_rule.update".into()));
}

/// The storefront shows a visitor in a running pricing experiment the variant price;
/// the checkout they start under the same visitor id charges that price, and a
/// visitor in the control variant (or none named) pays the list price.
#[tokio::test]
async fn a_visitor_in_a_pricing_experiment_is_charged_the_variant_price_they_were_shown() {
    let s = StripeApp::start().await;
    let experiment = json!({"name": "Gold up", "hypothesis": "Higher gold converts the same", "targetTier": "gold",
        "minSampleSize": 1, "variants": [
            {"variantId": "control", "name": "Control", "isControl": true, "allocation": 50},
            {"variantId": "higher", "name": "Higher", "allocation": 50, "pricing": {"monthly": 390_000}}]});
    let (status, e) = s.app.call("POST", "/api/admin/experiments", Some("sales_manager"), Some(experiment)).await;
    assert_eq!(status, 201, "{e}");
    let id = e["experimentId"].as_str().unwrap();
    let (status, _) =
        s.app.call("POST", &format!("/api/admin/experiments/{id}/start"), Some("sales_manager"), None).await;
    assert_eq!(status, 200);
    // One visitor of each variant, found through the catalog the storefront reads.
    let mut by_variant = std::collections::BTreeMap::new();
    for n in 0..64 {
        let visitor = format!("visitor-{n}");
        let (_, catalog) = s.app.call("GET", &format!("/api/tiers?userId={visitor}"), None, None).await;
        let gold = tier(&catalog, "gold").clone();
        by_variant.entry(gold["experiment"]["variantId"].as_str().unwrap().to_string()).or_insert((visitor, gold));
    }
    let (higher, shown) = by_variant.get("higher").expect("64 visitors reach both halves").clone();
    assert_eq!(shown["pricing"]["monthly"]["price"], 390_000, "{shown}");
    let (control, _) = by_variant.get("control").expect("64 visitors reach both halves").clone();
    for (visitor, expected) in [(higher.as_str(), 390_000), (control.as_str(), 360_000)] {
        let ask = json!({"tierId": "gold", "visitorId": visitor});
        let (status, quoted) = s.app.call("POST", "/api/storefront/price", None, Some(ask)).await;
        assert_eq!((status, quoted["total"].as_i64()), (200, Some(expected)), "{quoted}");
    }

    for (visitor, charged) in [(Some(higher.as_str()), 390_000), (Some(control.as_str()), 360_000), (None, 360_000)] {
        let (_, token, _) = s.partner(&format!("Visitor {visitor:?}")).await;
        let mut ask = json!({"tierId": "gold", "billingPeriod": "monthly"});
        if let Some(v) = visitor {
            ask["visitorId"] = json!(v);
        }
        let (status, session) = s.as_partner(&token, "POST", "/api/billing/subscribe", Some(ask)).await;
        assert_eq!(status, 201, "{session}");
        assert_eq!(session["amount"], charged, "{visitor:?}: {session}");
        let checkout = session["checkoutSessionId"].as_str().unwrap();
        let (status, _) =
            tierdesk_tests::stripe::post(&s.control(&format!("checkout/sessions/{checkout}/complete")), json!({}))
                .await;
        assert_eq!(status, 200);
        s.emulator.flush().await;
        let (_, view) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
        assert_eq!((view["tierId"].as_str(), view["pricePerPeriod"].as_i64()), (Some("gold"), Some(charged)), "{view}");
    }
    let (_, token, _) = s.partner("Visitor with a bad id").await;
    let ask = json!({"tierId": "gold", "visitorId": "a#b"});
    let (status, refused) = s.as_partner(&token, "POST", "/api/billing/subscribe", Some(ask)).await;
    assert_eq!((status, refused["error"]["details"]["fields"]["visitorId"].is_string()), (400, true), "{refused}");
}

#[tokio::test]
async fn constraints_refuse_rules_list_price_changes_and_bounds_naming_the_limit_and_writing_nothing() {
    let app = TestApp::seeded().await;
    let limits =
        json!({"version": 0, "constraints": {"minPrice": 300_000, "maxPrice": 500_000, "maxChangeBasisPoints": 1000}});
    let (status, set) = app.call("PUT", "/api/admin/pricing-constraints/tier/gold", Some("admin"), Some(limits)).await;
    assert_eq!((status, set["version"].as_u64()), (200, Some(1)), "{set}");

    let violation = |body: &Value, constraint: &str| {
        assert_eq!(body["error"]["code"], "pricing_constraint_violation", "{body}");
        assert_eq!(body["error"]["details"]["constraint"], constraint, "{body}");
        assert_eq!(body["error"]["details"]["tierId"], "gold", "{body}");
    };
    let before = app.snapshot().await;
    let steep = json!({"ruleId": "steep", "name": "Steep", "condition": {"tiers": ["gold"]},
                       "action": {"type": "percentage", "basisPoints": 2000}});
    let (status, body) = app.call("POST", "/api/admin/pricing-rules", Some("admin"), Some(steep)).await;
    assert_eq!(status, 422, "{body}");
    violation(&body, "maxChangePercentage");
    assert_eq!(body["error"]["details"]["limit"], 1000);

    let (_, gold) = app.call("GET", "/api/admin/tiers/gold", Some("admin"), None).await;
    let raise = json!({"version": gold["version"], "prices": {"monthly": 400_000, "yearly": gold["prices"]["yearly"]}});
    let (status, body) = app.call("PUT", "/api/admin/tiers/gold", Some("admin"), Some(raise)).await;
    assert_eq!(status, 422, "{body}");
    violation(&body, "maxChangePercentage");
    assert_eq!(body["error"]["details"]["billingPeriod"], "monthly");

    let cap = json!({"version": 1, "constraints": {"maxPrice": 350_000}});
    let (status, body) = app.call("PUT", "/api/admin/pricing-constraints/tier/gold", Some("admin"), Some(cap)).await;
    assert_eq!(status, 422, "{body}");
    violation(&body, "maxPrice");
    let stale = json!({"version": 0, "constraints": {}});
    let (status, body) = app.call("PUT", "/api/admin/pricing-constraints/tier/gold", Some("admin"), Some(stale)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("version_conflict")), "{body}");
    assert_eq!(body["error"]["details"]["currentVersion"], 1);
    assert_eq!(app.snapshot().await, before, "every refusal wrote nothing");

    // Exactly the change limit is allowed, and the storefront shows it.
    let limit = json!({"ruleId": "limit", "name": "At the limit", "condition": {"tiers": ["gold"]},
                       "action": {"type": "percentage", "basisPoints": 1000}});
    let (status, body) = app.call("POST", "/api/admin/pricing-rules", Some("admin"), Some(limit)).await;
    assert_eq!(status, 201, "{body}");
    let (_, catalog) = app.call("GET", "/api/tiers", None, None).await;
    assert_eq!(tier(&catalog, "gold")["pricing"]["monthly"]["price"], 396_000);
    let (status, listed) = app.call("GET", "/api/admin/pricing-constraints", Some("sales_rep"), None).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["items"][0]["constraints"]["maxPrice"], 500_000, "{listed}");
}

#[tokio::test]
async fn bad_rules_name_the_field_and_write_nothing_and_a_rule_lives_and_dies_by_its_version() {
    let app = TestApp::seeded().await;
    let before = app.snapshot().await;
    let cases = [
        (json!({"name": "No id", "action": {"type": "fixed", "amount": 100}}), "ruleId"),
        (json!({"ruleId": "a", "name": "A", "action": {"type": "percentage", "basisPoints": 0}}), "action.basisPoints"),
        (json!({"ruleId": "a", "name": "A", "action": {"type": "discount"}}), "action.type"),
        (json!({"ruleId": "a", "name": "A"}), "action"),
        (
            json!({"ruleId": "a", "name": "A", "action": {"type": "fixed", "amount": 1},
                   "condition": {"startMonths": {"from": 0, "to": 3}}}),
            "condition.startMonths.from",
        ),
        (
            json!({"ruleId": "a", "name": "A", "action": {"type": "fixed", "amount": 1},
                   "effectiveDate": "2027-01-10", "expirationDate": "2027-01-01"}),
            "expirationDate",
        ),
        (
            json!({"ruleId": "a", "name": "A", "action": {"type": "fixed", "amount": 1},
                   "condition": {"tiers": ["no-such-tier"]}}),
            "condition.tiers",
        ),
        (json!({"ruleId": "a", "name": "A", "action": {"type": "fixed", "amount": 1}, "version": 3}), "version"),
        (json!([1, 2]), "body"),
    ];
    for (body, field) in cases {
        let (status, answer) = app.call("POST", "/api/admin/pricing-rules", Some("admin"), Some(body.clone())).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert!(answer["error"]["details"]["fields"][field].is_string(), "{field} in {answer}");
    }
    let (status, body) =
        app.call("PUT", "/api/admin/pricing-rules/nope", Some("admin"), Some(json!({"version": 1}))).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app
        .call(
            "PUT",
            "/api/admin/pricing-constraints/tier/nope",
            Some("admin"),
            Some(json!({"version": 0, "constraints": {}})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app
        .call(
            "PUT",
            "/api/admin/pricing-constraints/plan/gold",
            Some("admin"),
            Some(json!({"version": 0, "constraints": {}})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(app.snapshot().await, before, "no bad request wrote anything");

    let rule = json!({"ruleId": "spring", "name": "Spring", "action": {"type": "fixed", "amount": -5000},
                      "condition": {"startMonths": {"from": 3, "to": 5}, "billingPeriods": ["monthly"]}});
    let (status, body) = app.call("POST", "/api/admin/pricing-rules", Some("admin"), Some(rule.clone())).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app.call("POST", "/api/admin/pricing-rules", Some("admin"), Some(rule)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("already_exists")), "{body}");
    let (status, body) = app
        .call("PUT", "/api/admin/pricing-rules/spring", Some("admin"), Some(json!({"version": 1, "priority": 5})))
        .await;
    assert_eq!((status, body["priority"].as_u64()), (200, Some(5)), "{body}");
    let (status, body) = app
        .call("PUT", "/api/admin/pricing-rules/spring", Some("admin"), Some(json!({"version": 1, "priority": 6})))
        .await;
    assert_eq!((status, body["error"]["details"]["currentVersion"].as_u64()), (409, Some(2)), "{body}");
    let (status, body) = app.call("DELETE", "/api/admin/pricing-rules/spring?version=1", Some("admin"), None).await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = app.call("DELETE", "/api/admin/pricing-rules/spring?version=2", Some("admin"), None).await;
    assert_eq!(status, 204);
    let (status, listed) = app.call("GET", "/api/admin/pricing-rules", Some("sales_rep"), None).await;
    assert_eq!((status, listed["items"].as_array().map(Vec::len)), (200, Some(0)), "{listed}");
    let (status, _) = app.call("DELETE", "/api/admin/pricing-rules/spring", Some("admin"), None).await;
    assert_eq!(status, 404, "deleting twice finds nothing");
}

#[tokio::test]
async fn a_price_change_over_the_approval_limits_needs_an_admin_and_the_preview_says_why() {
    let app = TestApp::seeded().await;
    let mut partners = Vec::new();
    for name in ["Impact A", "Impact B"] {
        let id = app.create_partner(name).await["partnerId"].as_str().unwrap().to_string();
        let path = format!("/api/admin/partners/{id}/engagement-tier");
        let (status, body) = app.call("PATCH", &path, Some("admin"), Some(json!({"tier": "gold"}))).await;
        assert_eq!(status, 200, "{body}");
        partners.push(id);
    }
    let limits = json!({"version": 0, "constraints": {"maxAffectedCustomers": 1, "grandfatherMonths": 6}});
    let (status, body) = app.call("PUT", "/api/admin/pricing-constraints/tier/gold", Some("admin"), Some(limits)).await;
    assert_eq!(status, 200, "{body}");

    let before = app.snapshot().await;
    let proposed = json!({"prices": {"monthly": 396_000, "yearly": 4_752_000}});
    let (status, preview) =
        app.call("POST", "/api/admin/tiers/gold/price-impact", Some("sales_manager"), Some(proposed)).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        (preview["affectedCustomers"].as_i64(), preview["mrrBefore"].as_i64(), preview["mrrAfter"].as_i64()),
        (Some(2), Some(720_000), Some(792_000))
    );
    assert_eq!(preview["revenueImpact"], 72_000);
    assert_eq!(
        (preview["requiresApproval"].as_bool(), preview["exceeds"].clone()),
        (Some(true), json!(["maxAffectedCustomers"]))
    );
    let six_months = chrono::Utc::now().date_naive().checked_add_months(chrono::Months::new(6)).unwrap();
    assert_eq!(preview["grandfatheredUntil"], six_months.to_string());

    let (_, gold) = app.call("GET", "/api/admin/tiers/gold", Some("admin"), None).await;
    let edit = json!({"version": gold["version"], "prices": {"monthly": 396_000, "yearly": 4_752_000}});
    for (role, path) in [
        ("sales_manager", "/api/admin/tiers/gold"),
        ("sales_manager", "/api/admin/tiers/gold?approveImpact=true"),
        ("admin", "/api/admin/tiers/gold"),
    ] {
        let (status, body) = app.call("PUT", path, Some(role), Some(edit.clone())).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("customer_impact_too_high")),
            "{role} {path}: {body}"
        );
        assert_eq!(body["error"]["details"]["affectedCustomers"], 2, "{body}");
    }
    assert_eq!(app.snapshot().await, before, "the preview and the refusals wrote nothing");
    let (status, body) = app.call("PUT", "/api/admin/tiers/gold?approveImpact=true", Some("admin"), Some(edit)).await;
    assert_eq!((status, body["priceVersion"].as_u64()), (200, Some(2)), "{body}");
    // Grandfathered: the subscribers keep the price they signed at.
    for id in partners {
        let (_, partner) = app.call("GET", &format!("/api/admin/partners/{id}"), Some("admin"), None).await;
        assert_eq!(partner["pricePerPeriod"], 360_000, "{partner}");
    }
}

#[tokio::test]
async fn competitor_price_points_bound_list_price_changes_by_the_competitive_threshold() {
    let app = TestApp::seeded().await;
    for (competitor, price) in [("acme", 350_000), ("globex", 340_000)] {
        let path = format!("/api/admin/competitor-prices/{competitor}/gold");
        let point = json!({"name": competitor.to_uppercase(), "price": price, "observedOn": "2026-01-15"});
        let (status, body) = app.call("PUT", &path, Some("sales_manager"), Some(point)).await;
        assert_eq!(status, 200, "{body}");
    }
    let band = json!({"version": 0, "constraints": {"maxAboveCompetitorBasisPoints": 1000}});
    let (status, body) = app.call("PUT", "/api/admin/pricing-constraints/tier/gold", Some("admin"), Some(band)).await;
    assert_eq!(status, 200, "{body}");
    let (_, gold) = app.call("GET", "/api/admin/tiers/gold", Some("admin"), None).await;
    let before = app.snapshot().await;
    let raise = json!({"version": gold["version"], "prices": {"monthly": 374_001, "yearly": gold["prices"]["yearly"]}});
    let (status, body) = app.call("PUT", "/api/admin/tiers/gold", Some("admin"), Some(raise)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        (body["error"]["details"]["constraint"].as_str(), body["error"]["details"]["limit"].as_i64()),
        (Some("competitiveThreshold"), Some(374_000)),
        "globex 340,000 + 10 %"
    );
    assert_eq!(app.snapshot().await, before);
    let (status, listed) = app.call("GET", "/api/admin/competitor-prices", Some("sales_rep"), None).await;
    assert_eq!((status, listed["items"].as_array().map(Vec::len)), (200, Some(2)), "{listed}");
    for (path, body, field) in [
        ("/api/admin/competitor-prices/acme/gold", json!({"name": "Acme", "price": -1}), "price"),
        (
            "/api/admin/competitor-prices/acme/gold",
            json!({"name": "Acme", "price": 1, "observedOn": "2999-01-01"}),
            "observedOn",
        ),
        ("/api/admin/competitor-prices/acme/gold", json!({"price": 1}), "name"),
    ] {
        let (status, answer) = app.call("PUT", path, Some("admin"), Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"]["details"]["fields"][field].is_string(), "{field}: {answer}");
    }
    let (status, _) = app
        .call("PUT", "/api/admin/competitor-prices/acme/nope", Some("admin"), Some(json!({"name": "A", "price": 1})))
        .await;
    assert_eq!(status, 404);
    // Without globex the lowest point is acme's: 385,000 is the new ceiling.
    let (status, _) = app.call("DELETE", "/api/admin/competitor-prices/globex/gold", Some("admin"), None).await;
    assert_eq!(status, 204);
    let (status, _) = app.call("DELETE", "/api/admin/competitor-prices/globex/gold", Some("admin"), None).await;
    assert_eq!(status, 404);
    let raise = json!({"version": gold["version"], "prices": {"monthly": 380_000, "yearly": gold["prices"]["yearly"]}});
    let (status, body) = app.call("PUT", "/api/admin/tiers/gold", Some("admin"), Some(raise)).await;
    assert_eq!(status, 200, "{body}");
}
