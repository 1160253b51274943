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

/// A partner on a running subscription attaches and removes add-ons
/// (`PUT /api/billing/add-ons`): Stripe's items follow the wanted set, the bundle
/// rule reprices every line when a third comes, an unchanged set changes nothing,
/// the renewals charge exactly the tier and the add-ons, and bad asks change
/// nothing in Stripe.
#[tokio::test]
async fn a_running_subscription_attaches_and_removes_add_ons() {
    let s = StripeApp::start().await;
    seed_add_ons(&s.app).await;
    let (_, token, _) = s.partner("Growing Co").await;
    let sub = s.subscribe(&token, "gold", "monthly").await;
    let put = |body: Value| s.as_partner(&token, "PUT", "/api/billing/add-ons", Some(body));

    let (status, two) = put(json!({"addOns": ["extra-listings", "priority-support"]})).await;
    assert_eq!(status, 200, "{two}");
    assert_eq!(two["addOns"]["total"], 65_000, "{two}");
    let prices: Vec<i64> =
        two["subscription"]["addOns"].as_array().unwrap().iter().map(|a| a["price"].as_i64().unwrap()).collect();
    assert_eq!(prices.len(), 2);
    assert_eq!(prices.iter().sum::<i64>(), 65_000);
    let before = stripe_items(&s, &sub).await;
    assert_eq!(before.iter().map(|(a, _)| *a).collect::<Vec<_>>(), vec![25_000, 40_000, 360_000]);
    let (status, again) = put(json!({"addOns": ["priority-support", "extra-listings"]})).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(stripe_items(&s, &sub).await, before, "the same set: the same items, nothing prorated");

    let (status, three) = put(json!({"addOns": ["extra-listings", "priority-support", "video-tours"]})).await;
    assert_eq!(status, 200, "{three}");
    assert_eq!(
        (three["addOns"]["bundleApplied"].as_bool(), three["addOns"]["total"].as_i64()),
        (Some(true), Some(90_000))
    );
    let bundled = stripe_items(&s, &sub).await;
    assert_eq!(bundled.iter().map(|(a, _)| *a).collect::<Vec<_>>(), vec![22_500, 31_500, 36_000, 360_000]);
    s.emulator.flush().await;
    let (_, view) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(view["addOns"].as_array().map(Vec::len), Some(3), "the webhook agrees: {view}");
    assert_eq!(view["pricePerPeriod"], 360_000, "the tier's price stays the tier's");

    // The next renewal carries the prorations; the one after, exactly tier + add-ons.
    s.advance(&sub).await;
    s.advance(&sub).await;
    let (_, invoices) = s.as_partner(&token, "GET", "/api/billing/invoices", None).await;
    assert_eq!(invoices["items"][0]["amount"], 450_000, "{invoices}");

    // Bad asks: refused before Stripe is asked.
    let events = s.events().await.len();
    let (status, body) = put(json!({"addOns": ["featured-placement"]})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("add_on_unavailable")), "{body}");
    for bad in
        [json!({"addOns": "video-tours"}), json!({"addOns": ["a", "a"]}), json!({}), json!({"addOns": [], "x": 1})]
    {
        let (status, body) = put(bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, body) =
        s.app.call("PUT", "/api/billing/add-ons", Some("sales_manager"), Some(json!({"addOns": []}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("not_a_partner")), "{body}");
    let (_, free_token, _) = s.partner("Free Co").await;
    let (status, body) =
        s.as_partner(&free_token, "PUT", "/api/billing/add-ons", Some(json!({"addOns": ["extra-listings"]}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("no_stripe_subscription")), "{body}");
    assert_eq!(s.events().await.len(), events, "nothing reached Stripe");

    // All removed: only the tier's item is left.
    let (status, none) = put(json!({"addOns": []})).await;
    assert_eq!(status, 200, "{none}");
    assert!(none["subscription"].get("addOns").is_none(), "{none}");
    assert_eq!(stripe_items(&s, &sub).await.len(), 1);
}

/// The subscription's items in Stripe: (unit amount, item id), cheapest first.
async fn stripe_items(s: &StripeApp, sub: &str) -> Vec<(i64, String)> {
    let (status, stripe_sub) = s.stripe_api("GET", &format!("subscriptions/{sub}"), &[], None).await;
    assert_eq!(status, 200, "{stripe_sub}");
    let mut found: Vec<(i64, String)> = stripe_sub["items"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["price"]["unit_amount"].as_i64().unwrap(), i["id"].as_str().unwrap().to_string()))
        .collect();
    found.sort();
    found
}
