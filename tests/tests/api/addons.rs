//! Add-ons and the bundle rule (issue 21 §2, docs/storefront.md "Add-ons"): the
//! catalog, the storefront's price, and add-ons reaching Stripe as subscription
//! items on the invoice.

use serde_json::{json, Value};
use tierdesk_tests::stripe::StripeApp;
use tierdesk_tests::TestApp;

async fn seed_add_ons(app: &TestApp) {
    let by = tierdesk::domain::actor::Actor::system("test", chrono::Utc::now(), "test");
    for a in tierdesk::domain::addon::demo_add_ons(&by) {
        let body = json!({"addOnId": a.add_on_id, "name": a.name, "prices": a.prices, "segments": a.segments,
                          "sortOrder": a.sort_order});
        let (status, created) = app.call("POST", "/api/admin/add-ons", Some("sales_manager"), Some(body)).await;
        assert_eq!(status, 201, "{created}");
    }
}

fn ids(page: &Value) -> Vec<&str> {
    page["addOns"].as_array().unwrap().iter().map(|a| a["addOnId"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn the_catalog_the_segment_page_and_the_bundle_price() {
    let app = TestApp::seeded().await;
    seed_add_ons(&app).await;
    for (id, name) in [("essential", "Essential"), ("luxury", "Luxury")] {
        let body = json!({"segmentId": id, "name": name, "priceRange": {"min": 0, "max": null}});
        let (status, created) = app.call("POST", "/api/admin/segments", Some("admin"), Some(body)).await;
        assert_eq!(status, 201, "{created}");
    }
    let (_, essential) = app.call("GET", "/api/segments/essential", None, None).await;
    assert_eq!(
        ids(&essential),
        ["extra-listings", "priority-support", "video-tours"],
        "featured placement is Signature/Luxury only"
    );
    let (_, luxury) = app.call("GET", "/api/segments/luxury", None, None).await;
    assert_eq!(ids(&luxury).len(), 4);

    let ask = json!({"tierId": "gold", "addOns": ["extra-listings", "priority-support", "video-tours"]});
    let (status, price) = app.call("POST", "/api/storefront/price", None, Some(ask)).await;
    assert_eq!(status, 200, "{price}");
    // 25,000 + 40,000 + 35,000 = 100,000; three take 10 % off each line.
    assert_eq!(
        (
            price["addOns"]["listTotal"].as_i64(),
            price["addOns"]["total"].as_i64(),
            price["addOns"]["bundleApplied"].as_bool()
        ),
        (Some(100_000), Some(90_000), Some(true))
    );
    assert_eq!(price["total"], 360_000 + 90_000);
    let ask = json!({"tierId": "gold", "billingPeriod": "yearly", "addOns": ["video-tours"]});
    let (_, yearly) = app.call("POST", "/api/storefront/price", None, Some(ask)).await;
    assert_eq!(
        (yearly["addOns"]["total"].as_i64(), yearly["addOns"]["bundleApplied"].as_bool()),
        (Some(420_000), Some(false))
    );

    let before = app.snapshot().await;
    let (status, body) = app
        .call("POST", "/api/storefront/price", None, Some(json!({"tierId": "gold", "addOns": ["featured-placement"]})))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("add_on_unavailable")), "{body}");
    assert!(body["error"]["details"]["fields"]["addOns"].is_string(), "{body}");
    for (body, field) in
        [(json!({"tierId": "gold", "addOns": ["a", "a"]}), "addOns"), (json!({"addOns": []}), "tierId")]
    {
        let (status, answer) = app.call("POST", "/api/storefront/price", None, Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"]["details"]["fields"][field].is_string(), "{field}: {answer}");
    }
    for (body, field) in [
        (json!({"addOnId": "x", "name": "X", "prices": {"monthly": -1, "yearly": 1}}), "prices.monthly"),
        (json!({"addOnId": "x", "name": "X"}), "prices"),
        (
            json!({"addOnId": "x", "name": "X", "prices": {"monthly": 1, "yearly": 1}, "segments": ["Bad Id"]}),
            "segments",
        ),
    ] {
        let (status, answer) = app.call("POST", "/api/admin/add-ons", Some("admin"), Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"]["details"]["fields"][field].is_string(), "{field}: {answer}");
    }
    let (status, body) = app
        .call("PUT", "/api/admin/add-ons/video-tours", Some("admin"), Some(json!({"version": 9, "active": false})))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("version_conflict")), "{body}");
    assert_eq!(app.snapshot().await, before, "nothing written by a refusal");

    // A price change is a new price version; retiring takes it off the storefront.
    let reprice = json!({"version": 1, "prices": {"monthly": 30_000, "yearly": 360_000}});
    let (status, body) = app.call("PUT", "/api/admin/add-ons/video-tours", Some("admin"), Some(reprice)).await;
    assert_eq!((status, body["priceVersion"].as_u64()), (200, Some(2)), "{body}");
    let (status, body) = app
        .call("PUT", "/api/admin/add-ons/video-tours", Some("admin"), Some(json!({"version": 2, "active": false})))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, essential) = app.call("GET", "/api/segments/essential", None, None).await;
    assert_eq!(ids(&essential), ["extra-listings", "priority-support"]);
    let (status, listed) = app.call("GET", "/api/admin/add-ons", Some("sales_rep"), None).await;
    assert_eq!((status, listed["items"].as_array().map(Vec::len)), (200, Some(4)), "retired ones stay listed");
}

#[tokio::test]
async fn add_ons_reach_stripe_as_subscription_items_and_the_invoice_carries_them() {
    let s = StripeApp::start().await;
    seed_add_ons(&s.app).await;
    let (_, token, _) = s.partner("Add-on Co").await;
    let ask = json!({"tierId": "gold", "billingPeriod": "monthly",
                     "addOns": ["extra-listings", "priority-support", "video-tours"]});
    let (status, session) = s.as_partner(&token, "POST", "/api/billing/subscribe", Some(ask)).await;
    assert_eq!(status, 201, "{session}");
    assert_eq!((session["amount"].as_i64(), session["total"].as_i64()), (Some(360_000), Some(450_000)), "{session}");
    assert_eq!(session["addOns"]["lines"].as_array().map(Vec::len), Some(3));
    let id = session["checkoutSessionId"].as_str().unwrap();
    let (status, done) =
        tierdesk_tests::stripe::post(&s.control(&format!("checkout/sessions/{id}/complete")), json!({})).await;
    assert_eq!(status, 200, "{done}");
    s.emulator.flush().await;
    let (_, view) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!((view["tierId"].as_str(), view["pricePerPeriod"].as_i64()), (Some("gold"), Some(360_000)), "{view}");
    let (_, invoices) = s.as_partner(&token, "GET", "/api/billing/invoices", None).await;
    let invoice = &invoices["items"][0];
    assert_eq!((invoice["amount"].as_i64(), invoice["tier"].as_str()), (Some(450_000), Some("gold")), "{invoice}");
    // Stripe holds one subscription item per add-on, at the bundle price.
    let sub = view["stripeSubscriptionId"].as_str().unwrap();
    let (status, stripe_sub) = s.stripe_api("GET", &format!("subscriptions/{sub}"), &[], None).await;
    assert_eq!(status, 200, "{stripe_sub}");
    let mut amounts: Vec<i64> = stripe_sub["items"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["price"]["unit_amount"].as_i64().unwrap())
        .collect();
    amounts.sort();
    assert_eq!(amounts, vec![22_500, 31_500, 36_000, 360_000]);

    // An add-on not offered in the tier's segment refuses the checkout before Stripe.
    let (_, other, _) = s.partner("Other Co").await;
    let ask = json!({"tierId": "gold", "addOns": ["featured-placement"]});
    let (status, body) = s.as_partner(&other, "POST", "/api/billing/subscribe", Some(ask)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("add_on_unavailable")), "{body}");
}
