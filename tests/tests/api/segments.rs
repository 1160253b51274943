//! Storefront segments (issue 21 §1, seed 002; docs/storefront.md): admin create,
//! edit, reorder and retire with audit entries; the public list and segment page;
//! the segment rules of tiers (levels 1–3, one popular tier, upsell targets,
//! capacity); the price backfill and `make run`'s seed.

use serde_json::{json, Value};
use tierdesk_tests::TestApp;

async fn create_defaults(app: &TestApp) {
    for new in tierdesk::domain::segment::default_segments() {
        let body = json!({"segmentId": new.segment_id, "name": new.name, "target": new.target,
            "priceRange": {"min": new.price_range.min, "max": new.price_range.max}, "sortOrder": new.sort_order});
        let (status, body) = app.call("POST", "/api/admin/segments", Some("admin"), Some(body)).await;
        assert_eq!(status, 201, "{body}");
    }
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list["items"].as_array().unwrap().iter().map(|s| s[key].as_str().unwrap().to_string()).collect()
}

fn tier(id: &str, segment: &str, level: u32, monthly: i64) -> Value {
    json!({"tierId": id, "name": id, "segment": segment, "tierLevel": level, "sortOrder": 10,
        "prices": {"monthly": monthly, "yearly": monthly * 12}, "limits": {"listings": 5},
        "features": [{"featureId": "f1", "name": "F1"}]})
}

#[tokio::test]
async fn segments_are_created_edited_reordered_and_retired_with_audit_entries() {
    let app = TestApp::seeded().await;
    create_defaults(&app).await;
    let (status, public) = app.call("GET", "/api/segments", None, None).await;
    assert_eq!(status, 200, "{public}");
    assert_eq!(ids(&public, "segmentId"), vec!["essential", "signature", "luxury"]);
    let first = &public["items"][0];
    assert_eq!(first["priceRange"], json!({"min": 200000, "max": 500000}), "{public}");
    assert_eq!(public["items"][2]["priceRange"]["max"], Value::Null, "luxury is open-ended: {public}");
    for hidden in ["version", "active", "createdBy", "updatedBy"] {
        assert!(first.get(hidden).is_none(), "{hidden} leaked: {first}");
    }

    // Names are editable (seed 002's alternates are labels), optimistically locked.
    let edit = json!({"version": 1, "name": "Budget", "target": "Cost-conscious partners"});
    let (status, edited) = app.call("PUT", "/api/admin/segments/essential", Some("admin"), Some(edit.clone())).await;
    assert_eq!((status, edited["name"].as_str(), edited["version"].as_u64()), (200, Some("Budget"), Some(2)));
    assert_eq!(edited["segmentId"], "essential", "the id does not change with the name");
    let before = app.snapshot().await;
    let (status, stale) = app.call("PUT", "/api/admin/segments/essential", Some("admin"), Some(edit)).await;
    assert_eq!((status, stale["error"]["code"].as_str()), (409, Some("version_conflict")), "{stale}");
    assert_eq!(stale["error"]["details"]["currentVersion"], 2);
    assert_eq!(app.snapshot().await, before, "a stale edit writes nothing");

    // Reorder: every segment once at its version, one transaction, one audit entry.
    let order = json!({"order": [{"segmentId": "luxury", "version": 1}, {"segmentId": "essential", "version": 2},
        {"segmentId": "signature", "version": 1}]});
    let (status, reordered) = app.call("POST", "/api/admin/segments/reorder", Some("admin"), Some(order.clone())).await;
    assert_eq!(status, 200, "{reordered}");
    let sort: Vec<u64> =
        reordered["items"].as_array().unwrap().iter().map(|s| s["sortOrder"].as_u64().unwrap()).collect();
    assert_eq!(sort, vec![10, 20, 30]);
    let (_, public) = app.call("GET", "/api/segments", None, None).await;
    assert_eq!(ids(&public, "segmentId"), vec!["luxury", "essential", "signature"], "the cache was cleared");
    let (_, admin_list) = app.call("GET", "/api/admin/segments", Some("sales_rep"), None).await;
    assert_eq!(ids(&admin_list, "segmentId"), vec!["luxury", "essential", "signature"]);
    let audit = app.partition("AUDIT#segment#order").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["action"].as_s().unwrap(), "segment.reorder");
    // The same body again is stale now: versions moved; nothing changes.
    let before = app.snapshot().await;
    let (status, body) = app.call("POST", "/api/admin/segments/reorder", Some("admin"), Some(order)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("version_conflict")), "{body}");
    assert_eq!(app.snapshot().await, before);

    // Retire: off the storefront, idempotent, no new tiers; its page is 404.
    let (status, retired) = app.call("DELETE", "/api/admin/segments/luxury", Some("admin"), None).await;
    assert_eq!((status, retired["active"].as_bool()), (200, Some(false)), "{retired}");
    let (status, again) = app.call("DELETE", "/api/admin/segments/luxury", Some("admin"), None).await;
    assert_eq!((status, &again["version"]), (200, &retired["version"]), "retiring twice changes nothing");
    let (_, public) = app.call("GET", "/api/segments", None, None).await;
    assert_eq!(ids(&public, "segmentId"), vec!["essential", "signature"]);
    let (status, _) = app.call("GET", "/api/segments/luxury", None, None).await;
    assert_eq!(status, 404);
    let before = app.snapshot().await;
    let (status, body) =
        app.call("POST", "/api/admin/tiers", Some("admin"), Some(tier("lux-1", "luxury", 1, 1_200_000))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("segment_retired")), "{body}");
    assert!(body["error"]["details"]["fields"]["segment"].is_string(), "{body}");
    assert_eq!(app.snapshot().await, before);
    // Brought back by an edit, it takes tiers again.
    let v = retired["version"].clone();
    let (status, back) =
        app.call("PUT", "/api/admin/segments/luxury", Some("admin"), Some(json!({"version": v, "active": true}))).await;
    assert_eq!((status, back["active"].as_bool()), (200, Some(true)), "{back}");
    let (status, body) =
        app.call("POST", "/api/admin/tiers", Some("admin"), Some(tier("lux-1", "luxury", 1, 1_200_000))).await;
    assert_eq!(status, 201, "{body}");

    let actions: Vec<String> =
        app.partition("AUDIT#segment#luxury").await.iter().map(|i| i["action"].as_s().unwrap().clone()).collect();
    assert_eq!(actions, vec!["segment.create", "segment.retire", "segment.activation"]);
    let entry = &app.partition("AUDIT#segment#essential").await[1];
    assert_eq!(entry["action"].as_s().unwrap(), "segment.update");
    assert_eq!(entry["actor"].as_s().unwrap(), "user-admin");
}

#[tokio::test]
async fn bad_segment_and_tier_input_names_the_field_and_writes_nothing() {
    let app = TestApp::seeded().await;
    create_defaults(&app).await;
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("POST", "/api/admin/segments", json!({"name": "X", "priceRange": {"min": 0}}), "segmentId"),
        (
            "POST",
            "/api/admin/segments",
            json!({"segmentId": "Bad Id", "name": "X", "priceRange": {"min": 0}}),
            "segmentId",
        ),
        (
            "POST",
            "/api/admin/segments",
            json!({"segmentId": "reorder", "name": "X", "priceRange": {"min": 0}}),
            "segmentId",
        ),
        ("POST", "/api/admin/segments", json!({"segmentId": "x", "name": "", "priceRange": {"min": 0}}), "name"),
        ("POST", "/api/admin/segments", json!({"segmentId": "x", "name": "X"}), "priceRange"),
        (
            "POST",
            "/api/admin/segments",
            json!({"segmentId": "x", "name": "X", "priceRange": {"min": -5}}),
            "priceRange.min",
        ),
        (
            "POST",
            "/api/admin/segments",
            json!({"segmentId": "x", "name": "X", "priceRange": {"min": 9, "max": 3}}),
            "priceRange.max",
        ),
        (
            "POST",
            "/api/admin/segments",
            json!({"segmentId": "x", "name": "X", "priceRange": {"min": 0}, "active": false}),
            "active",
        ),
        (
            "POST",
            "/api/admin/segments",
            json!({"segmentId": "x", "name": "X", "priceRange": {"min": 0}, "version": 4}),
            "version",
        ),
        ("PUT", "/api/admin/segments/essential", json!({"name": "X"}), "version"),
        ("PUT", "/api/admin/segments/essential", json!({"version": 1, "sortOrder": 3}), "sortOrder"),
        ("PUT", "/api/admin/segments/essential", json!({"version": 1, "active": "yes"}), "active"),
        ("POST", "/api/admin/segments/reorder", json!({}), "order"),
        ("POST", "/api/admin/segments/reorder", json!({"order": [{"segmentId": "essential", "version": 1}]}), "order"),
        ("POST", "/api/admin/segments/reorder", json!({"order": [{"segmentId": "essential"}]}), "order[0].version"),
        // The segment rules of a tier.
        ("POST", "/api/admin/tiers", tier("t-lvl", "essential", 4, 100), "tierLevel"),
        (
            "POST",
            "/api/admin/tiers",
            json!({"tierId": "t-up", "name": "T", "segment": "essential",
            "prices": {"monthly": 1, "yearly": 1}, "upsellTargets": ["nope"]}),
            "upsellTargets",
        ),
        (
            "POST",
            "/api/admin/tiers",
            json!({"tierId": "t-up", "name": "T", "segment": "essential",
            "prices": {"monthly": 1, "yearly": 1}, "upsellTargets": ["t-up"]}),
            "upsellTargets",
        ),
        (
            "POST",
            "/api/admin/tiers",
            json!({"tierId": "t-up", "name": "T", "segment": "essential",
            "prices": {"monthly": 1, "yearly": 1}, "upsellTargets": "gold"}),
            "upsellTargets",
        ),
        (
            "POST",
            "/api/admin/tiers",
            json!({"tierId": "t-cap", "name": "T", "segment": "essential",
            "prices": {"monthly": 1, "yearly": 1}, "limits": {"listings": 3}, "capacityLimit": "seats"}),
            "capacityLimit",
        ),
        ("PUT", "/api/admin/tiers/gold", json!({"version": 1, "segment": "signature", "tierLevel": 7}), "tierLevel"),
        ("PUT", "/api/admin/tiers/gold", json!({"version": 1, "upsellTargets": ["free", "ghost"]}), "upsellTargets"),
        ("PUT", "/api/admin/tiers/gold", json!({"version": 1, "capacityLimit": "guests"}), "capacityLimit"),
    ];
    for (method, path, body, field) in cases {
        let before = app.snapshot().await;
        let (status, resp) = app.call(method, path, Some("admin"), Some(body.clone())).await;
        assert_eq!(status, 400, "{method} {path} {body}: {resp}");
        assert_eq!(resp["error"]["code"], "validation_failed", "{resp}");
        assert!(resp["error"]["details"]["fields"][field].is_string(), "{field} not named for {body}: {resp}");
        assert_eq!(app.snapshot().await, before, "{method} {path} {body} wrote something");
    }
    // A legacy free-form segment keeps its old level range; an archived target is no target.
    let (status, body) =
        app.call("POST", "/api/admin/tiers", Some("admin"), Some(tier("old-7", "standard", 7, 5))).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = app.call("DELETE", "/api/admin/tiers/old-7", Some("admin"), None).await;
    assert_eq!(status, 200);
    let (status, body) = app
        .call("PUT", "/api/admin/tiers/gold", Some("admin"), Some(json!({"version": 1, "upsellTargets": ["old-7"]})))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .call(
            "PUT",
            "/api/admin/tiers/gold",
            Some("admin"),
            Some(json!({"version": 1, "upsellTargets": ["platinum"],
            "capacityLimit": "leads"})),
        )
        .await;
    assert_eq!((status, &body["upsellTargets"], &body["capacityLimit"]), (200, &json!(["platinum"]), &json!("leads")));
    let (status, _) = app.call("PUT", "/api/admin/segments/ghost", Some("admin"), Some(json!({"version": 1}))).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn one_popular_tier_per_segment_even_under_concurrent_edits() {
    let app = TestApp::seeded().await;
    create_defaults(&app).await;
    const N: usize = 8;
    for i in 0..N {
        let (status, body) = app
            .call("POST", "/api/admin/tiers", Some("admin"), Some(tier(&format!("pop-{i}"), "signature", 2, 600_000)))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let calls = (0..N).map(|i| {
        let app = &app;
        async move {
            let edit = json!({"version": 1, "popular": true});
            app.call("PUT", &format!("/api/admin/tiers/pop-{i}"), Some("admin"), Some(edit)).await
        }
    });
    let results = futures::future::join_all(calls).await;
    let winners: Vec<usize> = (0..N).filter(|i| results[*i].0 == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one edit wins: {results:?}");
    let winner = format!("pop-{}", winners[0]);
    for (status, body) in results.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 409, "{body}");
        assert_eq!(body["error"]["code"], "popular_taken", "{body}");
        assert!(body["error"]["details"]["fields"]["popular"].is_string(), "{body}");
        assert_eq!(body["error"]["details"]["popularTierId"], winner.as_str(), "{body}");
    }
    let (status, page) = app.call("GET", "/api/segments/signature", None, None).await;
    assert_eq!(status, 200, "{page}");
    let popular: Vec<&str> = page["tiers"][0]["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["popular"] == true)
        .map(|t| t["tierId"].as_str().unwrap())
        .collect();
    assert_eq!(popular, vec![winner.as_str()]);
    // A new tier cannot take the badge either; unmarking the winner frees it.
    let mut taken = tier("pop-new", "signature", 1, 500_000);
    taken["popular"] = json!(true);
    let before = app.snapshot().await;
    let (status, body) = app.call("POST", "/api/admin/tiers", Some("admin"), Some(taken.clone())).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("popular_taken")), "{body}");
    assert_eq!(app.snapshot().await, before);
    let (status, _) = app
        .call(
            "PUT",
            &format!("/api/admin/tiers/{winner}"),
            Some("admin"),
            Some(json!({"version": 2, "popular": false})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app.call("POST", "/api/admin/tiers", Some("admin"), Some(taken)).await;
    assert_eq!((status, body["popular"].as_bool()), (201, Some(true)), "{body}");
    // Archiving the popular tier frees the badge too; another segment has its own.
    let (status, _) = app.call("DELETE", "/api/admin/tiers/pop-new", Some("admin"), None).await;
    assert_eq!(status, 200);
    let other = if winner == "pop-0" { "pop-1" } else { "pop-0" };
    let (status, body) = app
        .call("PUT", &format!("/api/admin/tiers/{other}"), Some("admin"), Some(json!({"version": 1, "popular": true})))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut elsewhere = tier("lux-pop", "luxury", 2, 1_500_000);
    elsewhere["popular"] = json!(true);
    let (status, body) = app.call("POST", "/api/admin/tiers", Some("admin"), Some(elsewhere)).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn the_backfill_assigns_by_price_once_and_its_dry_run_writes_nothing() {
    let app = TestApp::seeded().await;
    let (status, body) =
        app.call("POST", "/api/admin/tiers", Some("admin"), Some(tier("deluxe", "agency", 5, 1_200_000))).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app.call("POST", "/api/admin/tiers", Some("admin"), Some(tier("gone", "agency", 2, 10))).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = app.call("DELETE", "/api/admin/tiers/gone", Some("admin"), None).await;
    assert_eq!(status, 200);
    let now = chrono::Utc::now();
    let expected = vec![
        ("free".to_string(), "essential".to_string()),
        ("gold".to_string(), "essential".to_string()),
        ("platinum".to_string(), "signature".to_string()),
        ("deluxe".to_string(), "luxury".to_string()),
    ];
    let sorted = |mut v: Vec<(String, String)>| {
        v.sort();
        v
    };

    let before = app.snapshot().await;
    let dry = devtools::segments::assign_segments(&app.store, true, now).await.expect("dry run");
    assert_eq!(app.snapshot().await, before, "a dry run writes nothing");
    assert_eq!(dry.segments_created, vec!["essential", "signature", "luxury"]);
    assert_eq!(sorted(dry.tiers_moved.clone()), sorted(expected.clone()), "{:?}", dry.lines);
    assert!(dry.lines.iter().all(|l| l.starts_with("would ")), "{:?}", dry.lines);
    assert!(dry.lines.iter().any(|l| l.contains("tier deluxe from agency to luxury") && l.ends_with("level 5 -> 3")));

    let done = devtools::segments::assign_segments(&app.store, false, now).await.expect("backfill");
    assert_eq!(sorted(done.tiers_moved.clone()), sorted(expected), "the run does what the dry run said");
    assert_eq!(done.segments_created, dry.segments_created);
    let (_, gold) = app.call("GET", "/api/admin/tiers/gold", Some("admin"), None).await;
    assert_eq!((gold["segment"].as_str(), gold["tierLevel"].as_u64()), (Some("essential"), Some(2)), "{gold}");
    assert_eq!((gold["popular"].as_bool(), gold["version"].as_u64()), (Some(true), Some(2)), "{gold}");
    let (_, deluxe) = app.call("GET", "/api/admin/tiers/deluxe", Some("admin"), None).await;
    assert_eq!((deluxe["segment"].as_str(), deluxe["tierLevel"].as_u64()), (Some("luxury"), Some(3)));
    let (_, gone) = app.call("GET", "/api/admin/tiers/gone", Some("admin"), None).await;
    assert_eq!(gone["segment"], "agency", "archived tiers keep their segment");
    let audit = app.partition("AUDIT#tier#gold").await;
    assert_eq!(audit.last().unwrap()["action"].as_s().unwrap(), "tier.segment_backfill");
    // Gold holds essential's badge now: another essential tier cannot take it.
    let mut rival = tier("rival", "essential", 3, 1);
    rival["popular"] = json!(true);
    let (status, body) = app.call("POST", "/api/admin/tiers", Some("admin"), Some(rival)).await;
    assert_eq!((status, body["error"]["details"]["popularTierId"].as_str()), (409, Some("gold")), "{body}");

    let once = app.snapshot().await;
    let again = devtools::segments::assign_segments(&app.store, false, now).await.expect("second run");
    assert!(again.tiers_moved.is_empty() && again.segments_created.is_empty(), "{:?}", again.lines);
    assert_eq!(app.snapshot().await, once, "a second run changes nothing");
    let dry_again = devtools::segments::assign_segments(&app.store, true, now).await.expect("dry run again");
    assert!(dry_again.tiers_moved.is_empty(), "{:?}", dry_again.lines);
}

#[tokio::test]
async fn make_runs_seed_shows_three_segments_each_with_three_levels_and_the_matrix() {
    let app = TestApp::new().await;
    devtools::seed::seed(&app.gateway, app.secret()).await.expect("seed");
    let (status, list) = app.call("GET", "/api/segments", None, None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(ids(&list, "segmentId"), vec!["essential", "signature", "luxury"]);
    for segment in ["essential", "signature", "luxury"] {
        let (status, page) = app.call("GET", &format!("/api/segments/{segment}"), None, None).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["segment"]["segmentId"], segment);
        let levels: Vec<u64> =
            page["tiers"].as_array().unwrap().iter().map(|g| g["tierLevel"].as_u64().unwrap()).collect();
        assert_eq!(levels, vec![1, 2, 3], "{segment}: {page}");
        let columns: Vec<&str> =
            page["comparison"]["tiers"].as_array().unwrap().iter().map(|t| t["tierId"].as_str().unwrap()).collect();
        assert_eq!(columns.len(), 3, "{page}");
        let grouped: Vec<&str> = page["tiers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["tiers"].as_array().unwrap().iter().map(|t| t["tierId"].as_str().unwrap()))
            .collect();
        assert_eq!(grouped, columns, "the matrix columns follow the levels");
        let popular = page["tiers"][1]["tiers"][0]["popular"].as_bool();
        assert_eq!(popular, Some(true), "the middle tier carries the badge: {page}");
        let matrix = page["comparison"]["comparisonMatrix"].as_object().unwrap();
        assert!(!matrix.is_empty());
        for (feature, cells) in matrix {
            assert_eq!(cells.as_array().unwrap().len(), 3, "{feature}");
        }
        assert_eq!(page["comparison"]["segment"], segment);
        for t in page["comparison"]["tiers"].as_array().unwrap() {
            assert_eq!(t["segment"], segment);
            for hidden in ["version", "status", "createdBy"] {
                assert!(t.get(hidden).is_none(), "{hidden} leaked: {t}");
            }
        }
    }
    let (_, essential) = app.call("GET", "/api/segments/essential", None, None).await;
    let cols: Vec<&str> =
        essential["comparison"]["tiers"].as_array().unwrap().iter().map(|t| t["tierId"].as_str().unwrap()).collect();
    assert_eq!(cols, vec!["free", "gold", "platinum"]);
    assert_eq!(essential["comparison"]["comparisonMatrix"]["priority_placement"], json!([false, false, true]));
    // The default tiers work as before in their new segment: the next-tier incentive.
    let body = json!({"fromTierId": "gold", "toTierId": "platinum", "billingPeriod": "monthly"});
    let (status, up) = app.call("POST", "/api/tiers/upgrade-price", None, Some(body)).await;
    assert_eq!((status, up["upgradePrice"].as_i64()), (200, Some(210_000)), "{up}");
    let (status, signature) = app.call("GET", "/api/segments/signature", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(signature["tiers"][0]["tiers"][0]["upsellTargets"], json!(["signature-select"]));
    assert_eq!(signature["tiers"][0]["tiers"][0]["capacityLimit"], "maxGuests");

    // The segment page costs the same few DynamoDB calls whatever else the table holds.
    let (_, calls) = tierdesk::store::count_calls(async {
        let fresh = tiers::Tiers::new(tierdesk::app::App::connect(app.config.clone()).await);
        let req = http::Request::builder().uri("/api/segments/luxury").body(lambda_http::Body::Empty).expect("request");
        tiers::handle(&fresh, req).await
    })
    .await;
    assert_eq!(calls, 3, "one GetItem of the segment, one Query of its catalog range, one of the pricing rules");
}
