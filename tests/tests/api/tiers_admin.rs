use serde_json::{json, Value};
use tierdesk::store::TierStore;
use tierdesk_tests::{n, s, TestApp};

fn new_tier(id: &str) -> Value {
    json!({
        "tierId": id, "name": "Bronze", "description": "Entry tier",
        "segment": "essential", "tierLevel": 1, "sortOrder": 5,
        "prices": {"monthly": 9900, "yearly": 99000},
        "limits": {"listings": 3, "leads": null},
        "features": [{"featureId": "profile", "name": "Profile"}]
    })
}

#[tokio::test]
async fn create_get_and_audit() {
    let app = TestApp::new().await;
    let (status, created) = app.call("POST", "/api/admin/tiers", Some("sales_manager"), Some(new_tier("bronze"))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["version"], 1);
    assert_eq!(created["priceVersion"], 1);
    assert_eq!(created["status"], "active");
    assert_eq!(created["createdBy"], "user-sales_manager");
    assert_eq!(created["limits"]["leads"], Value::Null);
    assert_eq!(created["features"][0]["enabled"], true);

    let (status, got) = app.call("GET", "/api/admin/tiers/bronze", Some("sales_rep"), None).await;
    assert_eq!(status, 200);
    assert_eq!(got, created);

    let audit = app.partition("AUDIT#tier#bronze").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["action"], s("tier.create"));
    assert_eq!(audit[0]["actor"], s("user-sales_manager"));
    assert!(audit[0].contains_key("after"));
    let prices = app.partition("TIER#bronze").await;
    assert!(prices.iter().any(|i| i["SK"] == s("PRICE#000001")));

    let (status, dup) = app.call("POST", "/api/admin/tiers", Some("admin"), Some(new_tier("bronze"))).await;
    assert_eq!(status, 409);
    assert_eq!(dup["error"]["code"], "already_exists");
    assert!(dup["error"]["requestId"].as_str().is_some_and(|r| !r.is_empty()));
}

#[tokio::test]
async fn get_unknown_or_impossible_ids_is_404() {
    let app = TestApp::new().await;
    for path in ["/api/admin/tiers/nope", "/api/admin/tiers/NOT%23valid"] {
        let (status, body) = app.call("GET", path, Some("admin"), None).await;
        assert_eq!(status, 404, "{path} {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
}

#[tokio::test]
async fn update_is_versioned_and_price_changes_keep_history() {
    let app = TestApp::new().await;
    app.call("POST", "/api/admin/tiers", Some("admin"), Some(new_tier("bronze"))).await;

    let (status, updated) = app
        .call("PUT", "/api/admin/tiers/bronze", Some("sales_manager"), Some(json!({"version": 1, "name": "Bronze+"})))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["name"], "Bronze+");
    assert_eq!(updated["priceVersion"], 1);

    let (status, stale) = app
        .call("PUT", "/api/admin/tiers/bronze", Some("sales_manager"), Some(json!({"version": 1, "name": "x"})))
        .await;
    assert_eq!(status, 409);
    assert_eq!(stale["error"]["code"], "version_conflict");
    assert_eq!(stale["error"]["details"]["currentVersion"], 2);

    let (status, repriced) = app
        .call(
            "PUT",
            "/api/admin/tiers/bronze",
            Some("sales_manager"),
            Some(json!({"version": 2, "prices": {"monthly": 12900, "yearly": 129000}})),
        )
        .await;
    assert_eq!(status, 200, "{repriced}");
    assert_eq!(repriced["priceVersion"], 2);
    let tier_items = app.partition("TIER#bronze").await;
    let price_versions: Vec<_> =
        tier_items.iter().filter(|i| i["SK"].as_s().is_ok_and(|s| s.starts_with("PRICE#"))).collect();
    assert_eq!(price_versions.len(), 2, "the old price version is kept");
    assert_eq!(price_versions[0]["prices"].as_m().unwrap()["monthly"], n(9900));
    assert_eq!(price_versions[1]["prices"].as_m().unwrap()["monthly"], n(12900));

    let audit = app.partition("AUDIT#tier#bronze").await;
    let actions: Vec<_> = audit.iter().map(|i| i["action"].as_s().unwrap().clone()).collect();
    assert_eq!(actions, vec!["tier.create", "tier.update", "tier.price_change"]);
    let before = audit[2]["before"].as_m().unwrap();
    assert_eq!(before["prices"].as_m().unwrap()["monthly"], n(9900));
}

#[tokio::test]
async fn list_orders_filters_and_pages() {
    let app = TestApp::seeded().await;
    for (id, segment, level) in [("b1", "essential", 2), ("b2", "essential", 1), ("old", "essential", 3)] {
        let mut t = new_tier(id);
        t["segment"] = json!(segment);
        t["tierLevel"] = json!(level);
        let (status, body) = app.call("POST", "/api/admin/tiers", Some("admin"), Some(t)).await;
        assert_eq!(status, 201, "{body}");
    }
    app.call("DELETE", "/api/admin/tiers/old", Some("admin"), None).await;

    let (status, all) = app.call("GET", "/api/admin/tiers", Some("sales_rep"), None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = all["items"].as_array().unwrap().iter().map(|t| t["tierId"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["b2", "b1", "free", "gold", "platinum", "old"], "active by segment and level, then archived");
    assert_eq!(all["nextCursor"], Value::Null);

    let (_, essential) =
        app.call("GET", "/api/admin/tiers?segment=essential&status=active", Some("sales_rep"), None).await;
    let ids: Vec<&str> = essential["items"].as_array().unwrap().iter().map(|t| t["tierId"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["b2", "b1"]);

    let (_, archived) = app.call("GET", "/api/admin/tiers?status=archived", Some("sales_rep"), None).await;
    assert_eq!(archived["items"].as_array().unwrap().len(), 1);

    // Paging: two at a time reaches every tier exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/api/admin/tiers?limit=2&cursor={c}"),
            None => "/api/admin/tiers?limit=2".to_string(),
        };
        let (status, page) = app.call("GET", &path, Some("sales_rep"), None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|t| t["tierId"].as_str().unwrap().to_string()));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, vec!["b2", "b1", "free", "gold", "platinum", "old"]);

    // Pages of five (ending exactly at the live partition's end) and of four both
    // cross from the live partition into the archive one.
    for limit in [5, 4] {
        let (_, first) = app.call("GET", &format!("/api/admin/tiers?limit={limit}"), Some("sales_rep"), None).await;
        let c = first["nextCursor"].as_str().expect("a second page").to_string();
        let (status, second) =
            app.call("GET", &format!("/api/admin/tiers?limit={limit}&cursor={c}"), Some("sales_rep"), None).await;
        assert_eq!(status, 200, "{second}");
        let ids: Vec<&str> =
            second["items"].as_array().unwrap().iter().map(|t| t["tierId"].as_str().unwrap()).collect();
        assert_eq!(ids.last(), Some(&"old"), "limit {limit}: {second}");
        assert_eq!(second["nextCursor"], Value::Null);
    }
    let (_, live) = app.call("GET", "/api/admin/tiers?limit=4", Some("sales_rep"), None).await;
    let c = live["nextCursor"].as_str().unwrap();
    let (status, _) =
        app.call("GET", &format!("/api/admin/tiers?status=active&cursor={c}"), Some("sales_rep"), None).await;
    assert_eq!(status, 200, "a live-partition cursor is valid for the active listing");
}

#[tokio::test]
async fn archived_tiers_leave_the_live_catalog_partition_and_the_reindex_moves_old_ones() {
    let app = TestApp::seeded().await;
    for id in ["gone", "legacy"] {
        let (status, body) = app.call("POST", "/api/admin/tiers", Some("admin"), Some(new_tier(id))).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, _) = app.call("DELETE", "/api/admin/tiers/gone", Some("admin"), None).await;
    assert_eq!(status, 200);
    let meta = |id: &str| {
        let app = &app;
        let pk = tierdesk::store::keys::tier_pk(id);
        async move { app.partition(&pk).await.into_iter().find(|i| i["SK"].as_s().unwrap() == "META").unwrap() }
    };
    assert_eq!(meta("gone").await["GSI1PK"].as_s().unwrap(), "TIERS#ARCHIVED");
    // A tier archived before the archive partition existed: still in the live one.
    let mut legacy = meta("legacy").await;
    legacy.insert("status".into(), s("archived"));
    app.put_raw(legacy).await;
    let store = &app.store;
    let catalog = |tiers: Vec<tierdesk::domain::tier::Tier>| {
        let mut ids: Vec<String> = tiers.into_iter().map(|t| t.tier_id).collect();
        ids.sort();
        ids
    };
    let active = catalog(store.active_catalog().await.unwrap());
    assert!(!active.contains(&"gone".to_string()) && !active.contains(&"legacy".to_string()), "{active:?}");
    let all = catalog(store.all_tiers().await.unwrap());
    assert!(all.contains(&"gone".to_string()) && all.contains(&"legacy".to_string()), "{all:?}");
    let (_, archived) = app.call("GET", "/api/admin/tiers?status=archived", Some("admin"), None).await;
    assert_eq!(archived["items"].as_array().unwrap().len(), 2, "the status filter finds the legacy one: {archived}");

    assert_eq!(store.reindex_tier_catalog().await.unwrap(), 1);
    assert_eq!(meta("legacy").await["GSI1PK"].as_s().unwrap(), "TIERS#ARCHIVED");
    assert_eq!(store.reindex_tier_catalog().await.unwrap(), 0, "a second run moves nothing");
    assert_eq!(catalog(store.all_tiers().await.unwrap()), all, "nothing lost by the move");
    let (_, archived) = app.call("GET", "/api/admin/tiers?status=archived", Some("admin"), None).await;
    assert_eq!(archived["items"].as_array().unwrap().len(), 2, "{archived}");
}

#[tokio::test]
async fn bad_list_parameters_are_400() {
    let app = TestApp::new().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("status=deleted", "status"),
        ("segment=Bad%23Seg", "segment"),
        ("cursor=garbage!!", "cursor"),
        // A well-formed cursor for another partition must not be accepted.
        ("cursor=eyJHU0kxUEsiOiJPVEhFUiIsIkdTSTFTSyI6IngiLCJQSyI6IngiLCJTSyI6IngifQ", "cursor"),
    ] {
        let (status, body) = app.call("GET", &format!("/api/admin/tiers?{query}"), Some("admin"), None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"]["details"]["fields"][field].is_string(), "{query}: {body}");
    }
}

#[tokio::test]
async fn archive_rules() {
    let app = TestApp::seeded().await;
    let (status, body) = app.call("DELETE", "/api/admin/tiers/free", Some("admin"), None).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "default_tier");

    // Partners on gold (as the partners area records them in the tier's live stats).
    app.put_raw(
        [("PK", s("STATS#gold")), ("SK", s("CURRENT")), ("memberCount", n(2))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
    .await;
    let before = app.snapshot().await;
    let (status, body) = app.call("DELETE", "/api/admin/tiers/gold", Some("sales_manager"), None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "tier_has_partners");
    assert_eq!(app.snapshot().await, before, "a refused archive writes nothing");

    // No partners on platinum: archived, and archiving again changes nothing.
    let (status, body) = app.call("DELETE", "/api/admin/tiers/platinum", Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "archived");
    let after_first = app.snapshot().await;
    let (status, again) = app.call("DELETE", "/api/admin/tiers/platinum", Some("sales_manager"), None).await;
    assert_eq!((status, &again["version"]), (200, &body["version"]));
    assert_eq!(app.snapshot().await, after_first);

    // Archived tiers are out of the public catalog and cannot be edited.
    let (_, public) = app.call("GET", "/api/tiers", None, None).await;
    assert!(!public["items"].as_array().unwrap().iter().any(|t| t["tierId"] == "platinum"));
    let (status, body) = app
        .call("PUT", "/api/admin/tiers/platinum", Some("admin"), Some(json!({"version": body["version"], "name": "x"})))
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "tier_archived");
}

#[tokio::test]
async fn features_add_update_remove() {
    let app = TestApp::new().await;
    app.call("POST", "/api/admin/tiers", Some("admin"), Some(new_tier("bronze"))).await;

    let (status, t) = app
        .call(
            "POST",
            "/api/admin/tiers/bronze/features",
            Some("sales_manager"),
            Some(json!({"featureId": "ai_replies", "name": "AI replies", "usageLimit": 100})),
        )
        .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["version"], 2);
    assert_eq!(t["features"][1]["usageLimit"], 100);

    let (status, body) = app
        .call(
            "POST",
            "/api/admin/tiers/bronze/features",
            Some("sales_manager"),
            Some(json!({"featureId": "ai_replies", "name": "Again"})),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "feature_exists");

    let (status, body) = app
        .call(
            "POST",
            "/api/admin/tiers/bronze/features",
            Some("sales_manager"),
            Some(json!({"featureId": "x", "name": "X", "version": 1})),
        )
        .await;
    assert_eq!(status, 409, "a stale version is refused: {body}");

    let (status, t) = app
        .call(
            "PUT",
            "/api/admin/tiers/bronze/features/ai_replies",
            Some("sales_manager"),
            Some(json!({"usageLimit": null, "enabled": false})),
        )
        .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["features"][1]["usageLimit"], Value::Null);
    assert_eq!(t["features"][1]["enabled"], false);

    let (status, body) =
        app.call("PUT", "/api/admin/tiers/bronze/features/nope", Some("admin"), Some(json!({"enabled": true}))).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "feature_not_found");

    let (status, t) =
        app.call("DELETE", "/api/admin/tiers/bronze/features/ai_replies?version=3", Some("admin"), None).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["features"].as_array().unwrap().len(), 1);
    assert_eq!(app.partition("AUDIT#tier#bronze").await.len(), 4);
}

#[tokio::test]
async fn initialize_is_idempotent() {
    let app = TestApp::new().await;
    let (status, first) = app.call("POST", "/api/admin/tiers/initialize", Some("admin"), None).await;
    assert_eq!(status, 200);
    assert_eq!(first, json!({"created": ["free", "gold", "platinum"], "existing": []}));
    let snapshot = app.snapshot().await;
    let (status, second) = app.call("POST", "/api/admin/tiers/initialize", Some("admin"), None).await;
    assert_eq!(status, 200);
    assert_eq!(second, json!({"created": [], "existing": ["free", "gold", "platinum"]}));
    assert_eq!(app.snapshot().await, snapshot, "a second initialize writes nothing");

    let (_, gold) = app.call("GET", "/api/admin/tiers/gold", Some("admin"), None).await;
    assert_eq!(gold["prices"]["monthly"], 360000);
    assert_eq!(gold["commitmentMonths"], 12);
    assert_eq!(gold["pcrMultiplier"], 2.5);
    let (_, platinum) = app.call("GET", "/api/admin/tiers/platinum", Some("admin"), None).await;
    assert_eq!(platinum["prices"]["monthly"], 600000);
    assert_eq!(platinum["pcrMultiplier"], 5.0);
    let (_, free) = app.call("GET", "/api/admin/tiers/free", Some("admin"), None).await;
    assert_eq!(free["prices"]["monthly"], 0);
    assert_eq!(free["pcrMultiplier"], 1.5);
}

#[tokio::test]
async fn server_owned_fields_are_never_taken_from_the_body() {
    let app = TestApp::new().await;
    let mut body = new_tier("bronze");
    body["version"] = json!(99);
    body["createdBy"] = json!("someone-else");
    let (status, resp) = app.call("POST", "/api/admin/tiers", Some("admin"), Some(body)).await;
    assert_eq!(status, 400);
    let fields = &resp["error"]["details"]["fields"];
    assert!(fields["version"].is_string() && fields["createdBy"].is_string(), "{resp}");
    assert!(app.snapshot().await.is_empty());
}

#[tokio::test]
async fn price_history_lists_versions_newest_first_in_pages() {
    let app = TestApp::new().await;
    let (status, body) = app.call("POST", "/api/admin/tiers", Some("admin"), Some(new_tier("bronze"))).await;
    assert_eq!(status, 201, "{body}");
    // Two price changes and one edit that leaves prices alone (no new version).
    let edits = [
        json!({"version": 1, "prices": {"monthly": 12900, "yearly": 129000}}),
        json!({"version": 2, "name": "Bronze+"}),
        json!({"version": 3, "prices": {"monthly": 14900, "yearly": 149000}}),
    ];
    for edit in edits {
        let (status, body) = app.call("PUT", "/api/admin/tiers/bronze", Some("sales_manager"), Some(edit)).await;
        assert_eq!(status, 200, "{body}");
    }

    let (status, all) = app.call("GET", "/api/admin/tiers/bronze/prices", Some("sales_rep"), None).await;
    assert_eq!(status, 200, "{all}");
    let items = all["items"].as_array().unwrap();
    let versions: Vec<u64> = items.iter().map(|v| v["priceVersion"].as_u64().unwrap()).collect();
    assert_eq!(versions, vec![3, 2, 1], "newest first; the rename made no version");
    let monthly: Vec<i64> = items.iter().map(|v| v["prices"]["monthly"].as_i64().unwrap()).collect();
    assert_eq!(monthly, vec![14900, 12900, 9900]);
    assert_eq!(items[0]["createdBy"], "user-sales_manager");
    assert_eq!(items[2]["createdBy"], "user-admin");
    assert_eq!(items[0]["currency"], "usd");
    assert_eq!(items[0]["tierId"], "bronze");
    assert!(items[0]["effectiveFrom"].as_str().unwrap() >= items[2]["effectiveFrom"].as_str().unwrap());
    assert_eq!(all["nextCursor"], Value::Null);

    // Paged: two, then the last one, then nothing more.
    let (status, first) = app.call("GET", "/api/admin/tiers/bronze/prices?limit=2", Some("sales_rep"), None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["nextCursor"].as_str().expect("a next page").to_string();
    let (status, second) = app
        .call("GET", &format!("/api/admin/tiers/bronze/prices?limit=2&cursor={cursor}"), Some("sales_rep"), None)
        .await;
    assert_eq!(status, 200, "{second}");
    let rest: Vec<u64> =
        second["items"].as_array().unwrap().iter().map(|v| v["priceVersion"].as_u64().unwrap()).collect();
    assert_eq!(rest, vec![1]);

    // A cursor from another tier's history is refused, naming the field.
    app.call("POST", "/api/admin/tiers", Some("admin"), Some(new_tier("silver"))).await;
    let (status, wrong) = app
        .call("GET", &format!("/api/admin/tiers/silver/prices?limit=2&cursor={cursor}"), Some("sales_rep"), None)
        .await;
    assert_eq!(status, 400, "{wrong}");
    assert!(wrong["error"]["details"]["fields"]["cursor"].is_string(), "{wrong}");
}

#[tokio::test]
async fn price_history_of_an_unknown_tier_is_404_and_other_roles_are_refused() {
    let app = TestApp::seeded().await;
    for path in ["/api/admin/tiers/nope/prices", "/api/admin/tiers/NOT%23valid/prices"] {
        let (status, body) = app.call("GET", path, Some("sales_manager"), None).await;
        assert_eq!(status, 404, "{path} {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    // A partner is refused as everywhere on admin routes: the route does not exist for it.
    let (status, _) = app.call("GET", "/api/admin/tiers/gold/prices", Some("partner"), None).await;
    assert_eq!(status, 404);
    let (status, _) = app.call("GET", "/api/admin/tiers/gold/prices", None, None).await;
    assert_eq!(status, 401);
    let (status, gold) = app.call("GET", "/api/admin/tiers/gold/prices", Some("sales_rep"), None).await;
    assert_eq!(status, 200, "{gold}");
    assert_eq!(gold["items"][0]["priceVersion"], 1, "seeded tiers have their first version: {gold}");
}
