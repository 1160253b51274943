use serde_json::{json, Value};
use tierdesk_tests::TestApp;

async fn upgrade(app: &TestApp, from: &str, to: &str, period: &str) -> (u16, Value) {
    let body = json!({"fromTierId": from, "toTierId": to, "billingPeriod": period});
    app.call("POST", "/api/tiers/upgrade-price", None, Some(body)).await
}

#[tokio::test]
async fn public_catalog_shows_active_tiers_without_internal_fields() {
    let app = TestApp::seeded().await;
    let (status, body) = app.call("GET", "/api/tiers", None, None).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|t| t["tierId"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["free", "gold", "platinum"]);
    for t in items {
        for hidden in ["version", "status", "createdAt", "createdBy", "updatedAt", "updatedBy"] {
            assert!(t.get(hidden).is_none(), "{hidden} leaked: {t}");
        }
        // The price list's version is public: a subscriber's portal compares its own
        // with it to say whether it keeps an older price, and until when.
        assert_eq!(t["priceVersion"], 1, "{t}");
    }
    assert_eq!(items[1]["prices"], json!({"monthly": 360000, "yearly": 4320000}));
    assert_eq!(items[1]["popular"], true);

    // A token is not needed, and one that is present changes nothing.
    let (status, with_token) = app.call("GET", "/api/tiers", Some("partner"), None).await;
    assert_eq!((status, &with_token), (200, &body));
}

#[tokio::test]
async fn compare_builds_a_feature_by_tier_matrix() {
    let app = TestApp::seeded().await;
    let (status, m) = app.call("GET", "/api/tiers/compare?ids=free,gold,platinum", None, None).await;
    assert_eq!(status, 200, "{m}");
    let tiers: Vec<&str> = m["tiers"].as_array().unwrap().iter().map(|t| t["tierId"].as_str().unwrap()).collect();
    assert_eq!(tiers, vec!["free", "gold", "platinum"]);
    let row = |id: &str| m["features"].as_array().unwrap().iter().find(|r| r["featureId"] == id).cloned().unwrap();
    let included = |r: &Value| {
        r["byTier"].as_array().unwrap().iter().map(|c| c["included"].as_bool().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(included(&row("basic_profile")), vec![true, true, true]);
    assert_eq!(included(&row("pcr_boost")), vec![false, true, true]);
    assert_eq!(included(&row("priority_placement")), vec![false, false, true]);
    let listings = m["limits"].as_array().unwrap().iter().find(|r| r["limit"] == "listings").unwrap();
    let values: Vec<Value> = listings["byTier"].as_array().unwrap().iter().map(|c| c["value"].clone()).collect();
    assert_eq!(values, vec![json!(1), json!(10), Value::Null]);
}

#[tokio::test]
async fn compare_refuses_bad_id_lists_and_unknown_tiers() {
    let app = TestApp::seeded().await;
    for query in ["", "ids=free", "ids=free,gold,platinum,free", "ids=free,free", "ids=free,%23x"] {
        let (status, body) = app.call("GET", &format!("/api/tiers/compare?{query}"), None, None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"]["details"]["fields"]["ids"].is_string());
    }
    let (status, body) = app.call("GET", "/api/tiers/compare?ids=free,ghost", None, None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["details"]["missing"], json!(["ghost"]));
}

#[tokio::test]
async fn upgrade_price_applies_the_next_tier_incentive() {
    let app = TestApp::seeded().await;
    let (status, up) = upgrade(&app, "gold", "platinum", "monthly").await;
    assert_eq!(status, 200, "{up}");
    assert_eq!(up["priceDifference"], 240000);
    assert_eq!(up["incentive"], json!({"percentOff": 5, "discountAmount": 30000}));
    assert_eq!(up["upgradePrice"], 210000);
    let gained: Vec<&str> =
        up["featuresGained"].as_array().unwrap().iter().map(|f| f["featureId"].as_str().unwrap()).collect();
    assert_eq!(gained, vec!["transparency_package", "priority_placement"]);
    assert!(up["limitsRaised"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["limit"] == "leads" && l["from"] == 200 && l["to"].is_null()));

    // Yearly, skipping a tier: no incentive.
    let (status, up) = upgrade(&app, "free", "platinum", "yearly").await;
    assert_eq!(status, 200);
    assert_eq!(up["incentive"], Value::Null);
    assert_eq!(up["upgradePrice"], 7200000);

    // Changing the incentive is a pricing change and shows up at once.
    let (_, platinum) = app.call("GET", "/api/admin/tiers/platinum", Some("admin"), None).await;
    let (status, body) = app
        .call(
            "PUT",
            "/api/admin/tiers/platinum",
            Some("sales_manager"),
            Some(json!({"version": platinum["version"], "upgradeIncentivePercent": 12.5})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, up) = upgrade(&app, "gold", "platinum", "monthly").await;
    assert_eq!(up["incentive"], json!({"percentOff": 12.5, "discountAmount": 75000}));
}

#[tokio::test]
async fn upgrade_price_refusals() {
    let app = TestApp::seeded().await;
    let (status, body) = upgrade(&app, "platinum", "gold", "monthly").await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "not_an_upgrade");
    let (status, _) = upgrade(&app, "free", "ghost", "monthly").await;
    assert_eq!(status, 404);
    let (status, body) = upgrade(&app, "free", "gold", "weekly").await;
    assert_eq!(status, 400);
    assert!(body["error"]["details"]["fields"]["billingPeriod"].is_string());
}

#[tokio::test]
async fn public_reads_are_cached_per_instance_and_cleared_by_its_writes() {
    let app = TestApp::seeded().await;
    let (_, first) = app.call("GET", "/api/tiers", None, None).await;
    // A change made behind this instance's back (as another Lambda instance would)
    // is not visible while the cached answer is fresh (PUBLIC_CACHE_TTL_SECS, 5 s)...
    app.store
        .client()
        .update_item()
        .table_name(&app.table)
        .key("PK", tierdesk_tests::s("TIER#gold"))
        .key("SK", tierdesk_tests::s("META"))
        .update_expression("SET #n = :n")
        .expression_attribute_names("#n", "name")
        .expression_attribute_values(":n", tierdesk_tests::s("Changed elsewhere"))
        .send()
        .await
        .unwrap();
    let (_, cached) = app.call("GET", "/api/tiers", None, None).await;
    assert_eq!(cached, first);
    // ...a different query is its own entry and reads the table...
    let (_, segment) = app.call("GET", "/api/tiers?segment=standard", None, None).await;
    assert_eq!(segment["items"][1]["name"], "Changed elsewhere");
    // ...and a write through this instance clears the cache at once.
    let (status, _) = app
        .call("PUT", "/api/admin/tiers/gold", Some("admin"), Some(json!({"version": 1, "name": "Gold Renamed"})))
        .await;
    assert_eq!(status, 200);
    let (_, fresh) = app.call("GET", "/api/tiers", None, None).await;
    assert_eq!(fresh["items"][1]["name"], "Gold Renamed");
}
