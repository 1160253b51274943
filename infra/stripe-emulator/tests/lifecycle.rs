//! Billing lifecycles through the control endpoints, on a fixed clock: the exact events each
//! action sends, in order, and the state it leaves.

mod common;

use common::{s, Harness};
use serde_json::{json, Value};

/// 2027-01-15T07:46:40Z.
const T0: i64 = 1_799_999_200;
const DAY: i64 = 86_400;

struct Catalog {
    customer: String,
    gold: String,
    platinum: String,
    gold_yearly: String,
}

async fn catalog(h: &Harness) -> Catalog {
    let (_, customer) = h.api("POST", "/v1/customers", "email=p%40example.com&metadata[partner_id]=p1").await;
    let (_, gold) = h.api("POST", "/v1/products", "name=Gold").await;
    let (_, platinum) = h.api("POST", "/v1/products", "name=Platinum").await;
    let price = |product: &Value, amount: i64, interval: &str| {
        format!("product={}&unit_amount={amount}&currency=usd&recurring[interval]={interval}", s(&product["id"]))
    };
    let (_, gold_price) = h.api("POST", "/v1/prices", &price(&gold, 360_000, "month")).await;
    let (_, platinum_price) = h.api("POST", "/v1/prices", &price(&platinum, 600_000, "month")).await;
    let (_, gold_yearly) = h.api("POST", "/v1/prices", &price(&gold, 3_600_000, "year")).await;
    Catalog {
        customer: s(&customer["id"]),
        gold: s(&gold_price["id"]),
        platinum: s(&platinum_price["id"]),
        gold_yearly: s(&gold_yearly["id"]),
    }
}

/// A subscription bought through checkout; returns the completed session.
async fn checkout(h: &Harness, c: &Catalog, price: &str) -> Value {
    let form = format!(
        "mode=subscription&customer={}&line_items[0][price]={price}&line_items[0][quantity]=1\
         &success_url=https%3A%2F%2Fexample.com%2Fok&subscription_data[metadata][partner_id]=p1",
        c.customer
    );
    let (status, session) = h.api("POST", "/v1/checkout/sessions", &form).await;
    assert_eq!(status, 200, "{session}");
    let (status, session) =
        h.control(&format!("/_emulator/checkout/sessions/{}/complete", s(&session["id"])), json!({})).await;
    assert_eq!(status, 200, "{session}");
    session
}

async fn subscription(h: &Harness, id: &str) -> Value {
    let (status, sub) = h.api("GET", &format!("/v1/subscriptions/{id}"), "").await;
    assert_eq!(status, 200);
    sub
}

async fn invoice(h: &Harness, id: &str) -> Value {
    let (status, inv) = h.api("GET", &format!("/v1/invoices/{id}"), "").await;
    assert_eq!(status, 200);
    inv
}

async fn set_card(h: &Harness, customer: &str, fails: bool) {
    let (status, _) = h.control(&format!("/_emulator/customers/{customer}/card"), json!({ "fails": fails })).await;
    assert_eq!(status, 200);
}

fn period(sub: &Value) -> (i64, i64) {
    let item = &sub["items"]["data"][0];
    (item["current_period_start"].as_i64().unwrap(), item["current_period_end"].as_i64().unwrap())
}

#[tokio::test]
async fn checkout_completion_creates_an_active_subscription_and_paid_invoice() {
    let h = Harness::start(Some(T0)).await;
    let c = catalog(&h).await;
    let session = checkout(&h, &c, &c.gold).await;
    assert_eq!(
        h.receiver.types(),
        [
            "customer.subscription.created",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
            "checkout.session.completed"
        ]
    );
    assert_eq!(session["status"], "complete");
    assert_eq!(session["payment_status"], "paid");
    assert_eq!(session["url"], Value::Null);
    let sub = subscription(&h, &s(&session["subscription"])).await;
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["metadata"], json!({"partner_id": "p1"}));
    // 2027-01-15 → 2027-02-15.
    assert_eq!(period(&sub), (T0, T0 + 31 * DAY));
    let inv = invoice(&h, &s(&sub["latest_invoice"])).await;
    assert_eq!(inv["billing_reason"], "subscription_create");
    assert_eq!(inv["status"], "paid");
    assert_eq!(
        (inv["amount_due"].as_i64(), inv["amount_paid"].as_i64(), inv["amount_remaining"].as_i64()),
        (Some(360_000), Some(360_000), Some(0))
    );
    assert_eq!(inv["attempt_count"], 1);
    assert_eq!(inv["parent"]["subscription_details"]["subscription"], sub["id"]);
    assert_eq!(inv["parent"]["subscription_details"]["metadata"], json!({"partner_id": "p1"}));
    assert_eq!(
        inv["lines"]["data"][0]["parent"]["subscription_item_details"]["subscription_item"],
        sub["items"]["data"][0]["id"]
    );
    assert_eq!(inv["lines"]["data"][0]["period"], json!({"start": T0, "end": T0 + 31 * DAY}));
    assert!(inv["number"].as_str().unwrap().ends_with("-0001"));
    assert_eq!(inv["hosted_invoice_url"], format!("{}/invoices/{}/hosted", h.base(), s(&inv["id"])));
    // Every webhook is signed at the real time of sending, whatever the emulator's clock.
    let wall = chrono::Utc::now().timestamp();
    assert!(h.receiver.deliveries().iter().all(|d| (d.signed_at() - wall).abs() < 60));
    assert_eq!(h.verified_events().len(), 6);
}

#[tokio::test]
async fn declined_checkout_leaves_the_session_open_until_paid() {
    let h = Harness::start(Some(T0)).await;
    let c = catalog(&h).await;
    set_card(&h, &c.customer, true).await;
    let session = checkout(&h, &c, &c.gold).await;
    assert_eq!(session["status"], "open");
    assert_eq!(session["subscription"], Value::Null);
    assert_eq!(
        h.receiver.types(),
        ["customer.subscription.created", "invoice.created", "invoice.finalized", "invoice.payment_failed"]
    );
    let failed = h.receiver.deliveries()[3].json();
    assert_eq!(failed["data"]["object"]["attempt_count"], 1);
    let sub_id = s(&h.receiver.deliveries()[0].json()["data"]["object"]["id"]);
    assert_eq!(subscription(&h, &sub_id).await["status"], "incomplete");

    h.receiver.take();
    set_card(&h, &c.customer, false).await;
    let (_, session) =
        h.control(&format!("/_emulator/checkout/sessions/{}/complete", s(&session["id"])), json!({})).await;
    assert_eq!(session["status"], "complete");
    assert_eq!(session["subscription"], sub_id.as_str());
    assert_eq!(
        h.receiver.types(),
        ["invoice.paid", "invoice.payment_succeeded", "customer.subscription.updated", "checkout.session.completed"]
    );
    assert_eq!(subscription(&h, &sub_id).await["status"], "active");
    h.verified_events();
}

#[tokio::test]
async fn advance_renews_with_a_cycle_invoice_and_moves_the_period() {
    let h = Harness::start(Some(T0)).await;
    let c = catalog(&h).await;
    let sub_id = s(&checkout(&h, &c, &c.gold).await["subscription"]);
    let form = format!("customer={}&amount=5000&currency=usd&description=Setup&subscription={sub_id}", c.customer);
    let (status, item) = h.api("POST", "/v1/invoiceitems", &form).await;
    assert_eq!(status, 200, "{item}");
    h.receiver.take();

    let (status, sub) = h.control(&format!("/_emulator/subscriptions/{sub_id}/advance"), json!({})).await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(
        h.receiver.types(),
        [
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
            "customer.subscription.updated"
        ]
    );
    let old_end = T0 + 31 * DAY;
    assert_eq!(h.emulator.now(), old_end);
    assert_eq!(period(&sub), (old_end, old_end + 28 * DAY));
    let inv = invoice(&h, &s(&sub["latest_invoice"])).await;
    assert_eq!(inv["billing_reason"], "subscription_cycle");
    assert_eq!((inv["period_start"].as_i64(), inv["period_end"].as_i64()), (Some(T0), Some(old_end)));
    assert_eq!(inv["amount_paid"], 365_000);
    assert_eq!(inv["lines"]["data"][0]["period"], json!({"start": old_end, "end": old_end + 28 * DAY}));
    assert_eq!(inv["lines"]["data"][1]["parent"]["invoice_item_details"]["invoice_item"], item["id"]);
    assert!(inv["number"].as_str().unwrap().ends_with("-0002"));
    let updated = h.receiver.deliveries()[4].json();
    let previous = &updated["data"]["previous_attributes"];
    assert_eq!(previous["items"]["data"][0]["current_period_end"], old_end);
    // Signed at the real time of sending, not at the advanced emulator clock.
    let wall = chrono::Utc::now().timestamp();
    assert!(h.receiver.deliveries().iter().all(|d| (d.signed_at() - wall).abs() < 60));
    let (_, pending) = h.api("GET", "/v1/invoiceitems", "pending=true").await;
    assert_eq!(pending["data"], json!([]));
    h.verified_events();
}

#[tokio::test]
async fn advance_with_cancel_at_period_end_ends_the_subscription() {
    let h = Harness::start(Some(T0)).await;
    let c = catalog(&h).await;
    let sub_id = s(&checkout(&h, &c, &c.gold).await["subscription"]);
    h.emulator.set_now(T0 + 3 * DAY);
    let (status, sub) = h.api("POST", &format!("/v1/subscriptions/{sub_id}"), "cancel_at_period_end=true").await;
    assert_eq!(status, 200);
    assert_eq!(sub["cancel_at"], T0 + 31 * DAY);
    assert_eq!(sub["canceled_at"], T0 + 3 * DAY);
    assert_eq!(sub["status"], "active");
    h.emulator.flush().await;
    h.receiver.take();

    let (_, sub) = h.control(&format!("/_emulator/subscriptions/{sub_id}/advance"), json!({})).await;
    assert_eq!(h.receiver.types(), ["customer.subscription.deleted"]);
    assert_eq!(sub["status"], "canceled");
    assert_eq!(sub["ended_at"], T0 + 31 * DAY);
    assert_eq!(sub["cancellation_details"]["reason"], "cancellation_requested");
    let (_, invoices) = h.api("GET", "/v1/invoices", &format!("subscription={sub_id}")).await;
    assert_eq!(invoices["data"].as_array().unwrap().len(), 1);
    let (status, _) = h.control(&format!("/_emulator/subscriptions/{sub_id}/advance"), json!({})).await;
    assert_eq!(status, 400);
    let (_, live) = h.api("GET", "/v1/subscriptions", &format!("customer={}", c.customer)).await;
    assert_eq!(live["data"], json!([]));
    h.verified_events();
}

#[tokio::test]
async fn dunning_cancels_after_the_third_failed_attempt() {
    let h = Harness::start(Some(T0)).await;
    let c = catalog(&h).await;
    let sub_id = s(&checkout(&h, &c, &c.gold).await["subscription"]);
    set_card(&h, &c.customer, true).await;
    h.receiver.take();

    let (_, sub) = h.control(&format!("/_emulator/subscriptions/{sub_id}/advance"), json!({})).await;
    assert_eq!(
        h.receiver.types(),
        ["invoice.created", "invoice.finalized", "invoice.payment_failed", "customer.subscription.updated"]
    );
    assert_eq!(sub["status"], "past_due");
    let invoice_id = s(&sub["latest_invoice"]);
    let inv = invoice(&h, &invoice_id).await;
    assert_eq!((inv["status"].as_str(), inv["attempt_count"].as_i64()), (Some("open"), Some(1)));
    assert_eq!(inv["next_payment_attempt"], h.emulator.now() + 3 * DAY);
    let updated = h.receiver.deliveries()[3].json();
    assert_eq!(updated["data"]["previous_attributes"]["status"], "active");

    h.receiver.take();
    let (_, inv) = h.control(&format!("/_emulator/invoices/{invoice_id}/retry"), json!({})).await;
    assert_eq!(h.receiver.types(), ["invoice.payment_failed"]);
    assert_eq!(inv["attempt_count"], 2);
    assert_eq!(inv["next_payment_attempt"], h.emulator.now() + 5 * DAY);

    h.receiver.take();
    let (_, inv) = h.control(&format!("/_emulator/invoices/{invoice_id}/retry"), json!({})).await;
    assert_eq!(h.receiver.types(), ["invoice.payment_failed", "customer.subscription.deleted"]);
    assert_eq!(inv["attempt_count"], 3);
    assert_eq!(inv["status"], "open");
    assert_eq!(inv["next_payment_attempt"], Value::Null);
    let sub = subscription(&h, &sub_id).await;
    assert_eq!(sub["status"], "canceled");
    assert_eq!(sub["cancellation_details"]["reason"], "payment_failed");
    h.verified_events();
}

#[tokio::test]
async fn a_successful_retry_reactivates_the_subscription() {
    let h = Harness::start(Some(T0)).await;
    let c = catalog(&h).await;
    let sub_id = s(&checkout(&h, &c, &c.gold).await["subscription"]);
    set_card(&h, &c.customer, true).await;
    let (_, sub) = h.control(&format!("/_emulator/subscriptions/{sub_id}/advance"), json!({})).await;
    set_card(&h, &c.customer, false).await;
    h.receiver.take();
    let (_, inv) = h.control(&format!("/_emulator/invoices/{}/retry", s(&sub["latest_invoice"])), json!({})).await;
    assert_eq!(h.receiver.types(), ["invoice.paid", "invoice.payment_succeeded", "customer.subscription.updated"]);
    assert_eq!((inv["status"].as_str(), inv["attempt_count"].as_i64()), (Some("paid"), Some(2)));
    assert_eq!(subscription(&h, &sub_id).await["status"], "active");
    let (status, error) = h.control(&format!("/_emulator/invoices/{}/retry", s(&inv["id"])), json!({})).await;
    assert_eq!(status, 400, "{error}");
}

#[tokio::test]
async fn proration_behaviors() {
    let h = Harness::start(Some(T0)).await;
    let c = catalog(&h).await;
    let month = 31 * DAY;

    // create_prorations: pending items, charged with the next cycle.
    let sub_id = s(&checkout(&h, &c, &c.gold).await["subscription"]);
    let item = s(&subscription(&h, &sub_id).await["items"]["data"][0]["id"]);
    h.emulator.set_now(T0 + 10 * DAY);
    let form = format!("items[0][id]={item}&items[0][price]={}&proration_behavior=create_prorations", c.platinum);
    let (status, sub) = h.api("POST", &format!("/v1/subscriptions/{sub_id}"), &form).await;
    assert_eq!(status, 200, "{sub}");
    // 21 of 31 days left: 360000·21/31 = 243870.97 → 243871; 600000·21/31 = 406451.61 → 406452.
    let (_, pending) = h.api("GET", "/v1/invoiceitems", "pending=true").await;
    let mut amounts: Vec<i64> =
        pending["data"].as_array().unwrap().iter().map(|i| i["amount"].as_i64().unwrap()).collect();
    amounts.sort();
    assert_eq!(amounts, [-243_871, 406_452]);
    assert!(pending["data"].as_array().unwrap().iter().all(|i| i["proration"] == true));
    let (_, sub) = h.control(&format!("/_emulator/subscriptions/{sub_id}/advance"), json!({})).await;
    let cycle = invoice(&h, &s(&sub["latest_invoice"])).await;
    assert_eq!(cycle["amount_paid"], 600_000 - 243_871 + 406_452);
    let prorations: Vec<&Value> = cycle["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["parent"]["subscription_item_details"]["proration"] == true)
        .collect();
    assert_eq!(prorations.len(), 2);
    assert_eq!(prorations[0]["period"], json!({"start": T0 + 10 * DAY, "end": T0 + month}));

    // none: the price just changes for the next period.
    let (start, end) = period(&sub);
    h.emulator.set_now(start + 5 * DAY);
    let form = format!("items[0][id]={item}&items[0][price]={}&proration_behavior=none", c.gold);
    h.api("POST", &format!("/v1/subscriptions/{sub_id}"), &form).await;
    let (_, pending) = h.api("GET", "/v1/invoiceitems", "pending=true").await;
    assert_eq!(pending["data"], json!([]));
    let (_, sub) = h.control(&format!("/_emulator/subscriptions/{sub_id}/advance"), json!({})).await;
    assert_eq!(invoice(&h, &s(&sub["latest_invoice"])).await["amount_paid"], 360_000);
    assert_eq!(period(&sub).0, end);

    // Interval change: the period restarts now and is invoiced at once.
    let (start, end) = period(&sub);
    let at = start + 7 * DAY;
    h.emulator.set_now(at);
    h.emulator.flush().await;
    h.receiver.take();
    let form = format!("items[0][id]={item}&items[0][price]={}&proration_behavior=create_prorations", c.gold_yearly);
    let (_, sub) = h.api("POST", &format!("/v1/subscriptions/{sub_id}"), &form).await;
    // 2027-03-22 → 2028-03-22 spans 29 February 2028.
    assert_eq!(period(&sub), (at, at + 366 * DAY));
    assert_eq!(sub["billing_cycle_anchor"], at);
    let inv = invoice(&h, &s(&sub["latest_invoice"])).await;
    assert_eq!(inv["billing_reason"], "subscription_update");
    let credit =
        -((360_000i128 * i128::from(end - at) * 2 + i128::from(end - start)) / (2 * i128::from(end - start))) as i64;
    let lines: Vec<i64> =
        inv["lines"]["data"].as_array().unwrap().iter().map(|l| l["amount"].as_i64().unwrap()).collect();
    assert_eq!(lines, [3_600_000, credit]);
    assert_eq!(inv["status"], "paid");
    h.emulator.flush().await;
    assert_eq!(
        h.receiver.types(),
        [
            "customer.subscription.updated",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded"
        ]
    );
    h.verified_events();
}

#[tokio::test]
async fn a_downgrade_with_always_invoice_leaves_credit_for_the_next_invoice() {
    let h = Harness::start(Some(T0)).await;
    let c = catalog(&h).await;
    let sub_id = s(&checkout(&h, &c, &c.platinum).await["subscription"]);
    let item = s(&subscription(&h, &sub_id).await["items"]["data"][0]["id"]);
    h.emulator.set_now(T0 + 10 * DAY);
    let form = format!("items[0][id]={item}&items[0][price]={}&proration_behavior=always_invoice", c.gold);
    let (_, sub) = h.api("POST", &format!("/v1/subscriptions/{sub_id}"), &form).await;
    let inv = invoice(&h, &s(&sub["latest_invoice"])).await;
    // −406452 + 243871 = −162581: nothing due, the rest is customer credit.
    assert_eq!(inv["total"], -162_581);
    assert_eq!((inv["amount_due"].as_i64(), inv["status"].as_str()), (Some(0), Some("paid")));
    assert_eq!(inv["ending_balance"], -162_581);
    let (_, customer) = h.api("GET", &format!("/v1/customers/{}", c.customer), "").await;
    assert_eq!(customer["balance"], -162_581);
    let (_, sub) = h.control(&format!("/_emulator/subscriptions/{sub_id}/advance"), json!({})).await;
    let cycle = invoice(&h, &s(&sub["latest_invoice"])).await;
    assert_eq!(
        (cycle["starting_balance"].as_i64(), cycle["amount_due"].as_i64()),
        (Some(-162_581), Some(360_000 - 162_581))
    );
}

#[tokio::test]
async fn void_only_open_invoices() {
    let h = Harness::start(Some(T0)).await;
    let c = catalog(&h).await;
    let sub_id = s(&checkout(&h, &c, &c.gold).await["subscription"]);
    let paid = s(&subscription(&h, &sub_id).await["latest_invoice"]);
    let (status, error) = h.api("POST", &format!("/v1/invoices/{paid}/void"), "").await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["type"], "invalid_request_error");

    set_card(&h, &c.customer, true).await;
    let (_, sub) = h.control(&format!("/_emulator/subscriptions/{sub_id}/advance"), json!({})).await;
    h.receiver.take();
    let (status, inv) = h.api("POST", &format!("/v1/invoices/{}/void", s(&sub["latest_invoice"])), "").await;
    assert_eq!(status, 200);
    assert_eq!((inv["status"].as_str(), inv["amount_remaining"].as_i64()), (Some("void"), Some(0)));
    h.emulator.flush().await;
    assert_eq!(h.receiver.types(), ["invoice.voided"]);
}
