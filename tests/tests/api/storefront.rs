//! The storefront's upsell rules, feature flags and funnel events
//! (docs/storefront.md) through the API, and the analytics built from them.

use chrono::Datelike;
use serde_json::{json, Value};
use tierdesk_tests::TestApp;

async fn seed_upsell_rules(app: &TestApp) {
    let by = tierdesk::domain::actor::Actor::system("test", chrono::Utc::now(), "test");
    for rule in tierdesk::domain::upsell::default_rules(&by) {
        let mut body = serde_json::to_value(&rule).unwrap();
        for owned in ["version", "updatedAt", "updatedBy"] {
            body.as_object_mut().unwrap().remove(owned);
        }
        let (status, created) = app.call("POST", "/api/admin/upsell-rules", Some("sales_manager"), Some(body)).await;
        assert_eq!(status, 201, "{created}");
    }
}

fn ids(offers: &Value) -> Vec<String> {
    offers["offers"].as_array().unwrap().iter().map(|o| o["ruleId"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn upsell_rules_are_data_and_each_offer_says_why_and_what_it_costs() {
    let app = TestApp::seeded().await;
    seed_upsell_rules(&app).await;
    let year = chrono::Utc::now().year() + 1;
    let ask = json!({"tierId": "free", "addOns": ["album", "video"], "startDate": format!("{year}-07-15")});
    let (status, offers) = app.call("POST", "/api/upsell/evaluate", None, Some(ask)).await;
    assert_eq!(status, 200, "{offers}");
    assert_eq!(ids(&offers), ["level-one-benefits", "add-ons-upgrade", "peak-availability"]);
    let first = &offers["offers"][0];
    assert_eq!((first["toTierId"].as_str(), first["priceDifference"].as_i64()), (Some("gold"), Some(360_000)));
    assert!(first["reason"].as_str().unwrap().contains("level-1"), "{first}");
    assert!(!first["featuresGained"].as_array().unwrap().is_empty(), "{first}");
    assert_eq!(
        (offers["offers"][1]["saving"].as_i64(), offers["offers"][1]["upgradePrice"].as_i64()),
        (Some(18_000), Some(342_000))
    );
    assert_eq!(offers["offers"][2]["message"], "Peak season dates fill quickly.");

    // A winter start on gold with no add-ons: nothing applies.
    let (_, none) = app
        .call(
            "POST",
            "/api/upsell/evaluate",
            None,
            Some(json!({"tierId": "gold", "startDate": format!("{year}-01-15")})),
        )
        .await;
    assert_eq!(ids(&none), Vec::<String>::new());

    // An edit is data: switching a rule off takes it out at once.
    let off = json!({"version": 1, "active": false});
    let (status, body) = app.call("PUT", "/api/admin/upsell-rules/add-ons-upgrade", Some("admin"), Some(off)).await;
    assert_eq!((status, body["version"].as_u64()), (200, Some(2)), "{body}");
    let again = json!({"tierId": "free", "addOns": ["album", "video"], "startDate": format!("{year}-12-01")});
    let (_, offers) = app.call("POST", "/api/upsell/evaluate", None, Some(again)).await;
    assert_eq!(ids(&offers), ["level-one-benefits"]);

    // A partner's own usage sets off a usage rule, with the numbers in the reason.
    let usage_rule = json!({"ruleId": "near-limit", "name": "Near a limit", "priority": 5,
                            "trigger": {"type": "usage_share", "basisPoints": 8000},
                            "action": {"type": "suggest_upgrade", "discountBasisPoints": 500}});
    let (status, body) = app.call("POST", "/api/admin/upsell-rules", Some("admin"), Some(usage_rule)).await;
    assert_eq!(status, 201, "{body}");
    let partner = app.create_partner("Upsell Co").await;
    let token = app.partner_token(partner["partnerId"].as_str().unwrap());
    let ask = json!({"tierId": "free", "startDate": format!("{year}-12-01")});
    let (_, before_use) = app.call_with_token("POST", "/api/billing/upsell/evaluate", &token, Some(ask.clone())).await;
    assert!(!ids(&before_use).contains(&"near-limit".to_string()), "{before_use}");
    let track = json!({"metric": "listings", "count": 1, "idempotencyKey": "upsell-listing-1"});
    let (status, body) = app.call_with_token("POST", "/api/usage/track", &token, Some(track)).await;
    assert!((200..300).contains(&status), "{body}");
    let (status, offers) = app.call_with_token("POST", "/api/billing/upsell/evaluate", &token, Some(ask)).await;
    assert_eq!(status, 200, "{offers}");
    assert_eq!(ids(&offers)[0], "near-limit");
    assert_eq!(offers["offers"][0]["reason"], "1 of 1 listings used this month (rule: 80%)");

    // Bad input names the field; an unknown tier is not found; nothing is written.
    let before = app.snapshot().await;
    for (body, field) in [
        (json!({"addOns": []}), "tierId"),
        (json!({"tierId": "free", "billingPeriod": "weekly"}), "billingPeriod"),
        (json!({"tierId": "free", "startDate": "2026-13-01"}), "startDate"),
        (json!({"tierId": "free", "visitorId": "no spaces"}), "visitorId"),
    ] {
        let (status, answer) = app.call("POST", "/api/upsell/evaluate", None, Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"]["details"]["fields"][field].is_string(), "{field}: {answer}");
    }
    let (status, _) = app.call("POST", "/api/upsell/evaluate", None, Some(json!({"tierId": "nope"}))).await;
    assert_eq!(status, 404);
    for (body, field) in [
        (
            json!({"ruleId": "x", "name": "X", "trigger": {"type": "usage_share"}, "action": {"type": "show_next_tier_benefits"}}),
            "trigger.basisPoints",
        ),
        (
            json!({"ruleId": "x", "name": "X", "trigger": {"type": "viewing_level", "tierLevel": 1},
                "action": {"type": "offer_promotion"}}),
            "action.promotionCode",
        ),
        (json!({"ruleId": "x", "name": "X", "action": {"type": "show_next_tier_benefits"}}), "trigger"),
    ] {
        let (status, answer) = app.call("POST", "/api/admin/upsell-rules", Some("admin"), Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"]["details"]["fields"][field].is_string(), "{field}: {answer}");
    }
    let (status, answer) =
        app.call("PUT", "/api/admin/upsell-rules/add-ons-upgrade", Some("admin"), Some(json!({"version": 1}))).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("version_conflict")), "{answer}");
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn feature_flags_switch_segments_and_upsell_off_and_stage_the_rollout_without_a_deploy() {
    let app = TestApp::seeded().await;
    seed_upsell_rules(&app).await;
    let (status, body) = app
        .call(
            "POST",
            "/api/admin/segments",
            Some("admin"),
            Some(json!({"segmentId": "essential", "name": "Essential",
              "priceRange": {"min": 0, "max": 500_000}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, flags) = app.call("GET", "/api/admin/feature-flags", Some("sales_rep"), None).await;
    assert_eq!(status, 200, "{flags}");
    assert_eq!(
        (flags["segments.enabled"].as_bool(), flags["upsell.percentage"].as_u64(), flags["version"].as_u64()),
        (Some(true), Some(100), Some(0))
    );
    let ask = json!({"tierId": "free", "visitorId": "visitor-42"});
    let (_, on) = app.call("POST", "/api/upsell/evaluate", None, Some(ask.clone())).await;
    assert_eq!((on["enabled"].as_bool(), ids(&on).len()), (Some(true), 1), "{on}");

    let off = json!({"version": 0, "upsell.enabled": false, "segments.enabled": false});
    let (status, flags) = app.call("PUT", "/api/admin/feature-flags", Some("admin"), Some(off)).await;
    assert_eq!((status, flags["version"].as_u64()), (200, Some(1)), "{flags}");
    let (_, disabled) = app.call("POST", "/api/upsell/evaluate", None, Some(ask.clone())).await;
    assert_eq!((disabled["enabled"].as_bool(), ids(&disabled).len()), (Some(false), 0), "{disabled}");
    let (_, segments) = app.call("GET", "/api/segments", None, None).await;
    assert_eq!(segments["items"], json!([]), "{segments}");
    let (status, _) = app.call("GET", "/api/segments/essential", None, None).await;
    assert_eq!(status, 404);

    // A staged rollout: some visitors in, some out, each always the same.
    let staged = json!({"version": 1, "upsell.enabled": true, "segments.enabled": true, "upsell.percentage": 50});
    let (status, flags) = app.call("PUT", "/api/admin/feature-flags", Some("admin"), Some(staged)).await;
    assert_eq!(status, 200, "{flags}");
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..12 {
        let ask = json!({"tierId": "free", "visitorId": format!("visitor-{i}")});
        let (_, first) = app.call("POST", "/api/upsell/evaluate", None, Some(ask.clone())).await;
        let (_, second) = app.call("POST", "/api/upsell/evaluate", None, Some(ask)).await;
        assert_eq!(first["enabled"], second["enabled"], "stable per visitor");
        seen.insert(first["enabled"].as_bool().unwrap());
    }
    assert_eq!(seen.len(), 2, "12 visitors at 50 % fall on both sides");
    let (status, body) = app.call("GET", "/api/segments/essential", None, None).await;
    assert_eq!(status, 200, "{body}");

    let before = app.snapshot().await;
    let (status, body) = app.call("PUT", "/api/admin/feature-flags", Some("admin"), Some(json!({"version": 1}))).await;
    assert_eq!((status, body["error"]["details"]["currentVersion"].as_u64()), (409, Some(2)), "{body}");
    let (status, body) = app
        .call("PUT", "/api/admin/feature-flags", Some("admin"), Some(json!({"version": 2, "upsell.percentage": 150})))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["details"]["fields"]["upsell.percentage"].is_string(), "{body}");
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn funnel_events_count_once_each_and_the_report_shows_the_funnel_revenue_and_upsell_success() {
    let app = TestApp::seeded().await;
    seed_upsell_rules(&app).await;
    let (status, body) = app
        .call(
            "POST",
            "/api/admin/segments",
            Some("admin"),
            Some(json!({"segmentId": "essential", "name": "Essential",
              "priceRange": {"min": 0, "max": 500_000}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, gold) = app.call("GET", "/api/admin/tiers/gold", Some("admin"), None).await;
    let (status, body) = app
        .call(
            "PUT",
            "/api/admin/tiers/gold",
            Some("admin"),
            Some(json!({"version": gold["version"], "segment": "essential"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let event = |id: &str, event: &str, extra: Value| {
        let mut body = json!({"eventId": id, "event": event, "segmentId": "essential"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let sent = [
        event("evt-visit-0001", "segment_selected", json!({})),
        event("evt-visit-0002", "segment_selected", json!({})),
        event("evt-visit-0003", "segment_selected", json!({})),
        event("evt-visit-0004", "tier_viewed", json!({"tierId": "gold"})),
        event("evt-visit-0005", "tier_compared", json!({})),
        event("evt-visit-0006", "upsell_shown", json!({"ruleId": "level-one-benefits"})),
        event("evt-visit-0007", "upsell_shown", json!({"ruleId": "level-one-benefits"})),
        event("evt-visit-0008", "upsell_accepted", json!({"ruleId": "level-one-benefits"})),
        event("evt-visit-0009", "checkout_started", json!({"tierId": "gold"})),
    ];
    for body in &sent {
        let (status, answer) = app.call("POST", "/api/storefront/events", None, Some(body.clone())).await;
        assert_eq!((status, answer["counted"].as_bool()), (202, Some(true)), "{answer}");
    }
    // Resends (a page retrying, ten at once) count nothing more.
    let resends = (0..10).map(|_| app.call("POST", "/api/storefront/events", None, Some(sent[0].clone())));
    for (status, answer) in futures::future::join_all(resends).await {
        assert_eq!((status, answer["counted"].as_bool()), (202, Some(false)), "{answer}");
    }
    // A paying partner on the segment's tier ends the funnel.
    let id = app.create_partner("Funnel Co").await["partnerId"].as_str().unwrap().to_string();
    let (status, body) = app
        .call(
            "PATCH",
            &format!("/api/admin/partners/{id}/engagement-tier"),
            Some("admin"),
            Some(json!({"tier": "gold"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, report) = app.call("GET", "/api/admin/analytics/storefront", Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{report}");
    let essential = report["segments"].as_array().unwrap().iter().find(|s| s["segmentId"] == "essential").unwrap();
    assert_eq!(
        essential["funnel"],
        json!({"segmentSelected": 3, "tierViewed": 1, "tierCompared": 1, "upsellShown": 2, "upsellAccepted": 1,
               "checkoutStarted": 1})
    );
    assert_eq!(essential["paid"], 1);
    assert_eq!(essential["conversionBasisPoints"], 3_333, "1 of 3, half up");
    assert_eq!(essential["mrr"], 360_000);
    let rule = report["upsellRules"].as_array().unwrap().iter().find(|r| r["ruleId"] == "level-one-benefits").unwrap();
    assert_eq!((rule["shown"].as_i64(), rule["accepted"].as_i64()), (Some(2), Some(1)));
    assert_eq!(rule["successRateBasisPoints"], 5_000);
    let (_, rep) = app.call("GET", "/api/admin/analytics/storefront", Some("sales_rep"), None).await;
    let seen = rep["segments"].as_array().unwrap().iter().find(|s| s["segmentId"] == "essential").unwrap();
    assert!(seen.get("mrr").is_none() && seen.get("newMrr").is_none() && seen["paid"] == 1, "{seen}");

    // Bad events name the field and write nothing; an unknown segment is 404.
    let before = app.snapshot().await;
    for (body, field) in [
        (json!({"eventId": "evt-bad-00001", "event": "upsell_shown", "segmentId": "essential"}), "ruleId"),
        (json!({"eventId": "x", "event": "segment_selected", "segmentId": "essential"}), "eventId"),
        (json!({"eventId": "evt-bad-00002", "event": "purchase", "segmentId": "essential"}), "event"),
    ] {
        let (status, answer) = app.call("POST", "/api/storefront/events", None, Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"]["details"]["fields"][field].is_string(), "{field}: {answer}");
    }
    let unknown = json!({"eventId": "evt-bad-00003", "event": "segment_selected", "segmentId": "nowhere"});
    let (status, _) = app.call("POST", "/api/storefront/events", None, Some(unknown)).await;
    assert_eq!(status, 404);
    assert_eq!(app.snapshot().await, before);
}
