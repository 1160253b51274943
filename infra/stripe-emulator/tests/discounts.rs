//! Coupons and the discounts they give subscriptions bought through checkout: which invoices
//! they take money off, by how much, and the events and objects that show it. Fixed clock.

mod common;

use common::{api, s, Harness};
use serde_json::{json, Value};

/// 2027-01-15T07:46:40Z.
const T0: i64 = 1_799_999_200;
const DAY: i64 = 86_400;
/// The Gold price: 3,600.00 USD a month.
const GOLD: i64 = 360_000;

async fn gold(h: &Harness) -> (String, String) {
    let (_, customer) = h.api("POST", "/v1/customers", "email=p%40example.com").await;
    let (_, product) = h.api("POST", "/v1/products", "name=Gold").await;
    let form = format!("product={}&unit_amount={GOLD}&currency=usd&recurring[interval]=month", s(&product["id"]));
    let (_, price) = h.api("POST", "/v1/prices", &form).await;
    (s(&customer["id"]), s(&price["id"]))
}

async fn coupon(h: &Harness, form: &str) -> Value {
    let (status, coupon) = h.api("POST", "/v1/coupons", form).await;
    assert_eq!(status, 200, "{coupon}");
    coupon
}

/// Creates a checkout session with `extra` parameters; returns it unpaid.
async fn session(h: &Harness, customer: &str, price: &str, extra: &str) -> (u16, Value) {
    let form = format!(
        "mode=subscription&customer={customer}&line_items[0][price]={price}&line_items[0][quantity]=1\
         &success_url=https%3A%2F%2Fexample.com%2Fok{extra}"
    );
    h.api("POST", "/v1/checkout/sessions", &form).await
}

async fn complete(h: &Harness, session: &Value) -> Value {
    let (status, session) =
        h.control(&format!("/_emulator/checkout/sessions/{}/complete", s(&session["id"])), json!({})).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["status"], "complete");
    session
}

async fn get(h: &Harness, path: &str) -> Value {
    let (status, value) = h.api("GET", path, "").await;
    assert_eq!(status, 200, "{value}");
    value
}

async fn advance(h: &Harness, sub: &str) -> Value {
    let (status, sub) = h.control(&format!("/_emulator/subscriptions/{sub}/advance"), json!({})).await;
    assert_eq!(status, 200, "{sub}");
    sub
}

async fn latest_invoice(h: &Harness, sub: &Value) -> Value {
    get(h, &format!("/v1/invoices/{}", s(&sub["latest_invoice"]))).await
}

/// (subtotal, discount, total, amount_due, amount_paid) of a paid invoice, checking that the
/// discount fields agree with each other.
fn amounts(inv: &Value) -> (i64, i64, i64, i64, i64) {
    let n = |key: &str| inv[key].as_i64().unwrap_or_else(|| panic!("{key} in {inv}"));
    let discount: i64 =
        inv["total_discount_amounts"].as_array().unwrap().iter().map(|d| d["amount"].as_i64().unwrap()).sum();
    let by_line: i64 = inv["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["discount_amounts"].as_array().unwrap().iter().map(|d| d["amount"].as_i64().unwrap()))
        .sum();
    assert_eq!(discount, by_line, "lines' discount_amounts add up to total_discount_amounts");
    assert_eq!(n("total"), n("subtotal") - discount);
    assert_eq!(inv["status"], "paid");
    (n("subtotal"), discount, n("total"), n("amount_due"), n("amount_paid"))
}

#[tokio::test]
async fn coupons_are_created_retrieved_and_unique() {
    let h = Harness::start(Some(T0)).await;
    let created =
        coupon(&h, "id=SPRING25&percent_off=25&duration=once&name=Spring%2025%25&metadata[campaign]=spring").await;
    assert_eq!(
        created,
        json!({
            "id": "SPRING25",
            "object": "coupon",
            "amount_off": null,
            "applies_to": null,
            "created": T0,
            "currency": null,
            "duration": "once",
            "duration_in_months": null,
            "livemode": false,
            "max_redemptions": null,
            "metadata": {"campaign": "spring"},
            "name": "Spring 25%",
            "percent_off": 25.0,
            "redeem_by": null,
            "times_redeemed": 0,
            "valid": true,
        })
    );
    assert_eq!(get(&h, "/v1/coupons/SPRING25").await, created);

    let (status, duplicate) = h.api("POST", "/v1/coupons", "id=SPRING25&percent_off=10").await;
    assert_eq!(status, 400);
    assert_eq!(duplicate["error"]["code"], "resource_already_exists");
    assert_eq!(duplicate["error"]["param"], "id");
    assert_eq!(get(&h, "/v1/coupons/SPRING25").await["percent_off"], 25.0);

    // A generated id; a repeating amount_off coupon; two decimals of percent.
    let generated = coupon(&h, "amount_off=5000&currency=USD&duration=repeating&duration_in_months=3").await;
    assert_eq!(s(&generated["id"]).len(), 8);
    assert_eq!(
        (&generated["amount_off"], &generated["currency"], &generated["duration_in_months"], &generated["percent_off"]),
        (&json!(5000), &json!("usd"), &json!(3), &Value::Null)
    );
    assert_eq!(coupon(&h, "percent_off=12.5").await["duration"], "once");
    assert_eq!(coupon(&h, "percent_off=33.33&duration=forever").await["percent_off"], 33.33);
    let (_, list) = h.api("GET", "/v1/coupons", "limit=2").await;
    assert_eq!((list["data"].as_array().unwrap().len(), &list["has_more"]), (2, &json!(true)));

    let (status, missing) = h.api("GET", "/v1/coupons/NOPE", "").await;
    assert_eq!((status, &missing["error"]["code"]), (404, &json!("resource_missing")));
    for (form, param) in [
        ("percent_off=12.345", "percent_off"),
        ("percent_off=0", "percent_off"),
        ("percent_off=101", "percent_off"),
        ("percent_off=10&amount_off=100&currency=usd", "percent_off"),
        ("amount_off=100", "currency"),
        ("", "percent_off"),
        ("percent_off=10&duration=repeating", "duration_in_months"),
        ("percent_off=10&duration=once&duration_in_months=3", "duration_in_months"),
        ("percent_off=10&duration=weekly", "duration"),
        // Since API version 2025-03-31.basil an amount_off coupon cannot last forever.
        ("amount_off=100&currency=usd&duration=forever", "duration"),
    ] {
        let (status, error) = h.api("POST", "/v1/coupons", form).await;
        assert_eq!((status, &error["error"]["param"]), (400, &json!(param)), "{form}: {error}");
    }

    // Idempotency-Key: the same request creates one coupon; another body is refused.
    let base = h.base();
    let form = "percent_off=15&duration=forever&name=Partner";
    let (status, _, first) = api(&base, "POST", "/v1/coupons", form, Some("coupon-key")).await;
    assert_eq!(status, 200);
    let (status, headers, replay) = api(&base, "POST", "/v1/coupons", form, Some("coupon-key")).await;
    assert_eq!((status, &replay), (200, &first));
    assert_eq!(headers.get("idempotent-replayed").unwrap(), "true");
    let (status, _, mismatch) = api(&base, "POST", "/v1/coupons", "percent_off=16", Some("coupon-key")).await;
    assert_eq!((status, &mismatch["error"]["type"]), (400, &json!("idempotency_error")));
    let (_, all) = h.api("GET", "/v1/coupons", "limit=100").await;
    assert_eq!(all["data"].as_array().unwrap().iter().filter(|c| c["name"] == "Partner").count(), 1);

    // Only name and metadata can change.
    let (status, updated) = h.api("POST", "/v1/coupons/SPRING25", "name=Spring&metadata[campaign]=").await;
    assert_eq!(status, 200);
    assert_eq!((&updated["name"], &updated["metadata"]), (&json!("Spring"), &json!({})));
}

#[tokio::test]
async fn a_25_percent_once_coupon_discounts_only_the_first_invoice() {
    let h = Harness::start(Some(T0)).await;
    let (customer, price) = gold(&h).await;
    coupon(&h, "id=WELCOME25&percent_off=25&duration=once").await;

    let (status, error) = session(&h, &customer, &price, "&discounts[0][coupon]=NOPE").await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], "resource_missing");
    assert_eq!(error["error"]["param"], "discounts[0][coupon]");

    let (status, open) = session(&h, &customer, &price, "&discounts[0][coupon]=WELCOME25").await;
    assert_eq!(status, 200, "{open}");
    assert_eq!(open["discounts"], json!([{"coupon": "WELCOME25", "promotion_code": null}]));
    assert_eq!((open["amount_subtotal"].as_i64(), open["amount_total"].as_i64()), (Some(GOLD), Some(270_000)));
    assert_eq!(open["total_details"]["amount_discount"], 90_000);
    let (_, items) = h.api("GET", &format!("/v1/checkout/sessions/{}/line_items", s(&open["id"])), "").await;
    let item = &items["data"][0];
    assert_eq!((&item["amount_discount"], &item["amount_total"]), (&json!(90_000), &json!(270_000)));
    assert_eq!(get(&h, "/v1/coupons/WELCOME25").await["times_redeemed"], 0, "a session alone redeems nothing");

    let done = complete(&h, &open).await;
    assert_eq!(done["amount_total"], 270_000);
    assert_eq!(
        h.receiver.types(),
        [
            "customer.subscription.created",
            "customer.discount.created",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
            "checkout.session.completed"
        ]
    );
    let sub_id = s(&done["subscription"]);
    let sub = get(&h, &format!("/v1/subscriptions/{sub_id}")).await;
    assert_eq!(sub["status"], "active");
    let discount_id = s(&sub["discounts"][0]);
    assert!(discount_id.starts_with("di_"));
    let discount = &h.receiver.deliveries()[1].json()["data"]["object"];
    assert_eq!(discount["id"], discount_id.as_str());
    assert_eq!(discount["source"], json!({"type": "coupon", "coupon": "WELCOME25"}));
    assert_eq!((&discount["subscription"], &discount["customer"]), (&json!(sub_id), &json!(customer)));
    assert_eq!((&discount["start"], &discount["end"]), (&json!(T0), &Value::Null));

    let first = latest_invoice(&h, &sub).await;
    assert_eq!(amounts(&first), (GOLD, 90_000, 270_000, 270_000, 270_000));
    assert_eq!(first["discounts"], json!([discount_id]));
    assert_eq!(first["total_discount_amounts"], json!([{"amount": 90_000, "discount": discount_id}]));
    assert_eq!(first["lines"]["data"][0]["discount_amounts"], json!([{"amount": 90_000, "discount": discount_id}]));
    assert_eq!(first["lines"]["data"][0]["amount"], GOLD);
    assert_eq!(get(&h, "/v1/coupons/WELCOME25").await["times_redeemed"], 1);
    // `expand[]` turns discount ids into discount objects, and their coupon into the coupon.
    let (_, expanded) = h.api("GET", &format!("/v1/subscriptions/{sub_id}"), "expand[]=discounts.source.coupon").await;
    assert_eq!(expanded["discounts"][0]["object"], "discount");
    assert_eq!(expanded["discounts"][0]["source"]["coupon"]["percent_off"], 25.0);

    // The renewal is at full price; the used discount leaves the subscription.
    h.receiver.take();
    let renewed = advance(&h, &sub_id).await;
    assert_eq!(renewed["discounts"], json!([]));
    let second = latest_invoice(&h, &renewed).await;
    assert_eq!(amounts(&second), (GOLD, 0, GOLD, GOLD, GOLD));
    assert_eq!(second["discounts"], json!([]));
    let types = h.receiver.types();
    assert_eq!(types[0], "customer.discount.deleted");
    let updated = h.receiver.deliveries().into_iter().find(|d| d.event_type() == "customer.subscription.updated");
    assert_eq!(updated.unwrap().json()["data"]["previous_attributes"]["discounts"], json!([discount_id]));
    let third = latest_invoice(&h, &advance(&h, &sub_id).await).await;
    assert_eq!(amounts(&third), (GOLD, 0, GOLD, GOLD, GOLD));
    assert_eq!(h.verified_events().len(), h.receiver.deliveries().len());
}

#[tokio::test]
async fn forever_and_repeating_coupons_discount_renewals() {
    let h = Harness::start(Some(T0)).await;
    let (customer, price) = gold(&h).await;

    // A forever percent_off coupon: every invoice, rounded half up (12.5% of 3,600.00).
    coupon(&h, "id=LOYAL&percent_off=12.5&duration=forever").await;
    let (_, open) = session(&h, &customer, &price, "&discounts[0][coupon]=LOYAL").await;
    let sub_id = s(&complete(&h, &open).await["subscription"]);
    for _ in 0..4 {
        let sub = get(&h, &format!("/v1/subscriptions/{sub_id}")).await;
        assert_eq!(sub["discounts"].as_array().unwrap().len(), 1);
        assert_eq!(amounts(&latest_invoice(&h, &sub).await), (GOLD, 45_000, 315_000, 315_000, 315_000));
        advance(&h, &sub_id).await;
    }

    // An amount_off coupon (which Stripe allows only `once` or `repeating`): 50.00 off every
    // invoice for 3 months, then full price.
    h.emulator.set_now(T0);
    let (_, other) = h.api("POST", "/v1/customers", "email=q%40example.com").await;
    let other = s(&other["id"]);
    coupon(&h, "id=FIFTY&amount_off=5000&currency=usd&duration=repeating&duration_in_months=3").await;
    let (_, open) = session(&h, &other, &price, "&discounts[0][coupon]=FIFTY").await;
    assert_eq!(open["amount_total"], GOLD - 5_000);
    let sub_id = s(&complete(&h, &open).await["subscription"]);
    let sub = get(&h, &format!("/v1/subscriptions/{sub_id}")).await;
    let (_, discount) = h.api("GET", &format!("/v1/subscriptions/{sub_id}"), "expand[]=discounts").await;
    // 2027-01-15 + 3 months = 2027-04-15 (31 + 28 + 31 days).
    assert_eq!(discount["discounts"][0]["end"], T0 + 90 * DAY);
    let mut due = vec![amounts(&latest_invoice(&h, &sub).await).3];
    for _ in 0..3 {
        due.push(amounts(&latest_invoice(&h, &advance(&h, &sub_id).await).await).3);
    }
    assert_eq!(due, [355_000, 355_000, 355_000, GOLD]);
    assert_eq!(get(&h, &format!("/v1/subscriptions/{sub_id}")).await["discounts"], json!([]));

    // amount_off is capped at the subtotal: nothing is charged, nothing goes negative.
    let (_, third) = h.api("POST", "/v1/customers", "email=r%40example.com").await;
    coupon(&h, "id=BIG&amount_off=1000000&currency=usd&duration=once").await;
    let (_, open) = session(&h, &s(&third["id"]), &price, "&discounts[0][coupon]=BIG").await;
    assert_eq!((&open["amount_total"], &open["total_details"]["amount_discount"]), (&json!(0), &json!(GOLD)));
    let sub = get(&h, &format!("/v1/subscriptions/{}", s(&complete(&h, &open).await["subscription"]))).await;
    assert_eq!(sub["status"], "active");
    assert_eq!(amounts(&latest_invoice(&h, &sub).await), (GOLD, GOLD, 0, 0, 0));

    // An amount_off coupon in another currency is refused.
    coupon(&h, "id=EURO&amount_off=500&currency=eur&duration=once").await;
    let (status, error) = session(&h, &customer, &price, "&discounts[0][coupon]=EURO").await;
    assert_eq!((status, &error["error"]["param"]), (400, &json!("discounts[0][coupon]")));
    assert_eq!(h.verified_events().len(), h.receiver.deliveries().len());
}

#[tokio::test]
async fn a_trial_from_checkout_charges_nothing_until_it_ends() {
    let h = Harness::start(Some(T0)).await;
    let (customer, price) = gold(&h).await;
    coupon(&h, "id=WELCOME25&percent_off=25&duration=once").await;
    let extra = "&discounts[0][coupon]=WELCOME25&subscription_data[trial_period_days]=14\
                 &subscription_data[metadata][partner_id]=p1";
    let (status, open) = session(&h, &customer, &price, extra).await;
    assert_eq!(status, 200, "{open}");
    assert_eq!((&open["amount_subtotal"], &open["amount_total"]), (&json!(0), &json!(0)));

    let done = complete(&h, &open).await;
    let sub_id = s(&done["subscription"]);
    let sub = get(&h, &format!("/v1/subscriptions/{sub_id}")).await;
    assert_eq!(sub["status"], "trialing");
    assert_eq!((&sub["trial_start"], &sub["trial_end"]), (&json!(T0), &json!(T0 + 14 * DAY)));
    assert_eq!(sub["metadata"], json!({"partner_id": "p1"}));
    assert_eq!(sub["items"]["data"][0]["current_period_end"], T0 + 14 * DAY);
    let trial = latest_invoice(&h, &sub).await;
    assert_eq!(amounts(&trial), (0, 0, 0, 0, 0));
    assert_eq!(trial["lines"]["data"][0]["description"], "Trial period for Gold");
    assert_eq!(trial["attempt_count"], 0);

    // At the trial end the first charge, with the once coupon, then full price.
    let renewed = advance(&h, &sub_id).await;
    assert_eq!(h.emulator.now(), T0 + 14 * DAY);
    assert_eq!(renewed["status"], "active");
    let first_paid = latest_invoice(&h, &renewed).await;
    assert_eq!(first_paid["billing_reason"], "subscription_cycle");
    assert_eq!(amounts(&first_paid), (GOLD, 90_000, 270_000, 270_000, 270_000));
    // The cycle restarts at the trial end: 2027-01-29 → 2027-02-28 (30 days).
    assert_eq!(first_paid["lines"]["data"][0]["period"], json!({"start": T0 + 14 * DAY, "end": T0 + 44 * DAY}));
    let next = latest_invoice(&h, &advance(&h, &sub_id).await).await;
    assert_eq!(amounts(&next), (GOLD, 0, GOLD, GOLD, GOLD));
    assert_eq!(h.verified_events().len(), h.receiver.deliveries().len());
}
