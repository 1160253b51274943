//! The HTTP surface: auth, Stripe's error shape, idempotency, lists, form encoding, expand,
//! webhook delivery and retries, and the hosted pages.

mod common;

use common::{api, request, s, Harness, Receiver};
use serde_json::{json, Value};
use stripe_emulator::{Emulator, EmulatorConfig};

const T0: i64 = 1_799_999_200;

#[tokio::test]
async fn requests_need_a_test_secret_key() {
    let h = Harness::start(Some(T0)).await;
    let url = format!("{}/v1/customers", h.base());
    let (status, _, body) = request("GET", &url, &[], String::new()).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let (status, _, _) = request("GET", &url, &[("authorization", "Bearer sk_live_123")], String::new()).await;
    assert_eq!(status, 401);
    let (status, headers, _) = request("GET", &url, &[("authorization", "Bearer sk_test_any")], String::new()).await;
    assert_eq!(status, 200);
    assert!(headers.get("request-id").unwrap().to_str().unwrap().starts_with("req_"));
    // `curl -u sk_test_…:` sends the key as the Basic auth user.
    let (status, _, _) = request("GET", &url, &[("authorization", "Basic c2tfdGVzdF94Og==")], String::new()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn errors_have_stripes_shape() {
    let h = Harness::start(Some(T0)).await;
    let (status, body) = h.api("GET", "/v1/customers/cus_missing", "").await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error": {"type": "invalid_request_error", "message": "No such customer: 'cus_missing'", "param": "id", "code": "resource_missing"}})
    );
    let (status, body) = h.api("POST", "/v1/subscriptions", "items[0][price]=price_x").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "parameter_missing");
    assert_eq!(body["error"]["param"], "customer");
    let (_, customer) = h.api("POST", "/v1/customers", "").await;
    let form = format!("customer={}&items[0][price]=price_missing", s(&customer["id"]));
    let (status, body) = h.api("POST", "/v1/subscriptions", &form).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "resource_missing");
    assert_eq!(body["error"]["param"], "items[0][price]");
    let (status, body) = h.api("GET", "/v1/nothing", "").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn idempotency_key_replays_the_first_response() {
    let h = Harness::start(Some(T0)).await;
    let base = h.base();
    let form = "email=a%40example.com&metadata[partner_id]=p1";
    let (status, first_headers, first) = api(&base, "POST", "/v1/customers", form, Some("key-1")).await;
    assert_eq!(status, 200);
    assert!(first_headers.get("idempotent-replayed").is_none());
    let (status, headers, replay) = api(&base, "POST", "/v1/customers", form, Some("key-1")).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(replay, first);
    let (_, list) = h.api("GET", "/v1/customers", "").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    let (status, _, mismatch) = api(&base, "POST", "/v1/customers", "email=b%40example.com", Some("key-1")).await;
    assert_eq!(status, 400);
    assert_eq!(mismatch["error"]["type"], "idempotency_error");
    let (status, _, other) = api(&base, "POST", "/v1/customers", form, Some("key-2")).await;
    assert_eq!(status, 200);
    assert_ne!(other["id"], first["id"]);

    // Errors are replayed too, and a subscription is created once however often it is sent.
    let (status, _, error) = api(&base, "POST", "/v1/subscriptions", "customer=cus_x", Some("key-3")).await;
    let (status2, _, error2) = api(&base, "POST", "/v1/subscriptions", "customer=cus_x", Some("key-3")).await;
    assert_eq!((status, &error), (status2, &error2));
    let (_, product) = h.api("POST", "/v1/products", "name=Gold").await;
    let price_form = format!("product={}&unit_amount=100&currency=usd&recurring[interval]=month", s(&product["id"]));
    let (_, price) = h.api("POST", "/v1/prices", &price_form).await;
    let sub_form = format!("customer={}&items[0][price]={}", s(&first["id"]), s(&price["id"]));
    let (_, _, sub) = api(&base, "POST", "/v1/subscriptions", &sub_form, Some("key-4")).await;
    let (_, _, again) = api(&base, "POST", "/v1/subscriptions", &sub_form, Some("key-4")).await;
    assert_eq!(sub["id"], again["id"]);
    h.emulator.flush().await;
    let created = h.receiver.types().iter().filter(|t| *t == "customer.subscription.created").count();
    assert_eq!(created, 1);
    let event = &h.receiver.deliveries()[0].json();
    assert_eq!(event["request"]["idempotency_key"], "key-4");
}

#[tokio::test]
async fn lists_paginate_newest_first() {
    let h = Harness::start(Some(T0)).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (_, c) = h.api("POST", "/v1/customers", &format!("email=c{i}%40example.com")).await;
        ids.push(s(&c["id"]));
    }
    ids.reverse();
    let (_, page) = h.api("GET", "/v1/customers", "limit=2").await;
    assert_eq!(page["object"], "list");
    assert_eq!(page["url"], "/v1/customers");
    assert_eq!(page["has_more"], true);
    let got: Vec<String> = page["data"].as_array().unwrap().iter().map(|c| s(&c["id"])).collect();
    assert_eq!(got, ids[..2]);
    let (_, page) = h.api("GET", "/v1/customers", &format!("limit=2&starting_after={}", ids[3])).await;
    assert_eq!(page["has_more"], false);
    assert_eq!(page["data"][0]["id"], ids[4].as_str());
    let (_, by_email) = h.api("GET", "/v1/customers", "email=c3%40example.com").await;
    assert_eq!(by_email["data"].as_array().unwrap().len(), 1);
    let (status, _) = h.api("GET", "/v1/customers", "limit=0").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn form_encoding_metadata_and_expand() {
    let h = Harness::start(Some(T0)).await;
    let (_, c) = h.api("POST", "/v1/customers", "metadata%5Ba%5D=1&metadata%5Bb%5D=2").await;
    let id = s(&c["id"]);
    let (_, c) =
        h.api("POST", &format!("/v1/customers/{id}"), "metadata[a]=&metadata[c]=3&email=x%40example.com").await;
    assert_eq!(c["metadata"], json!({"b": "2", "c": "3"}));
    assert_eq!(c["email"], "x@example.com");

    let (_, product) = h.api("POST", "/v1/products", "name=Gold&id=prod_gold").await;
    assert_eq!(product["id"], "prod_gold");
    let (status, _) = h.api("POST", "/v1/products", "name=Gold&id=prod_gold").await;
    assert_eq!(status, 400);
    let form = "product=prod_gold&unit_amount=360000&currency=usd&recurring[interval]=month&lookup_key=gold_monthly&nickname=Gold";
    let (_, price) = h.api("POST", "/v1/prices", form).await;
    let (status, _) = h.api("POST", "/v1/prices", form).await;
    assert_eq!(status, 400, "lookup keys are unique");
    let (_, found) = h.api("GET", "/v1/prices", "lookup_keys[0]=gold_monthly&lookup_keys[1]=other&active=true").await;
    assert_eq!(found["data"][0]["id"], price["id"]);
    let (_, found) = h.api("GET", "/v1/prices", "lookup_keys[]=gold_monthly&expand[]=data.product").await;
    assert_eq!(found["data"][0]["product"]["name"], "Gold");

    let form = format!("customer={id}&items%5B0%5D%5Bprice%5D={}&metadata[partner_id]=p1", s(&price["id"]));
    let (_, sub) = h.api("POST", "/v1/subscriptions", &form).await;
    let (_, expanded) = h
        .api("GET", &format!("/v1/subscriptions/{}", s(&sub["id"])), "expand[]=latest_invoice&expand[]=customer")
        .await;
    assert_eq!(expanded["latest_invoice"]["object"], "invoice");
    assert_eq!(expanded["customer"]["id"], id.as_str());
    assert_eq!(expanded["metadata"]["partner_id"], "p1");
}

#[tokio::test]
async fn failed_deliveries_are_retried_then_recorded() {
    let h = Harness::start(Some(T0)).await;
    let (_, c) = h.api("POST", "/v1/customers", "").await;
    let (_, p) = h.api("POST", "/v1/products", "name=Gold").await;
    let form = format!("product={}&unit_amount=100&currency=usd&recurring[interval]=month", s(&p["id"]));
    let (_, price) = h.api("POST", "/v1/prices", &form).await;

    h.receiver.fail_next(2);
    let form = format!("customer={}&items[0][price]={}", s(&c["id"]), s(&price["id"]));
    h.api("POST", "/v1/subscriptions", &form).await;
    h.emulator.flush().await;
    assert_eq!(h.receiver.types().len(), 5);
    let (status, _, events) = request("GET", &format!("{}/_emulator/events", h.base()), &[], String::new()).await;
    assert_eq!(status, 200);
    let first = &events["data"][0];
    assert_eq!(first["type"], "customer.subscription.created");
    assert_eq!(first["delivery"], "delivered");
    let statuses: Vec<&Value> = first["attempts"].as_array().unwrap().iter().map(|a| &a["status"]).collect();
    assert_eq!(statuses, [&json!(500), &json!(500), &json!(200)]);

    // Four failures: recorded as failed, and the queue moves on.
    h.receiver.fail_next(4);
    let requests = h.receiver.requests();
    h.api("DELETE", &format!("/v1/subscriptions/{}", s(&events["data"][0]["event"]["data"]["object"]["id"])), "").await;
    let (status, _) = h.control("/_emulator/flush", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(h.receiver.requests() - requests, 4);
    let (_, _, events) = request("GET", &format!("{}/_emulator/events", h.base()), &[], String::new()).await;
    let last = events["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "customer.subscription.deleted");
    assert_eq!(last["delivery"], "failed");
    assert_eq!(last["attempts"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn without_a_webhook_url_events_are_only_recorded() {
    let emulator = Emulator::start(EmulatorConfig { now: Some(T0), ..EmulatorConfig::default() }).await.unwrap();
    let base = emulator.base_url();
    let (_, _, c) = api(&base, "POST", "/v1/customers", "", None).await;
    let (_, _, p) = api(&base, "POST", "/v1/products", "name=Gold", None).await;
    let form = format!("product={}&unit_amount=100&currency=usd&recurring[interval]=month", s(&p["id"]));
    let (_, _, price) = api(&base, "POST", "/v1/prices", &form, None).await;
    let form = format!("customer={}&items[0][price]={}", s(&c["id"]), s(&price["id"]));
    api(&base, "POST", "/v1/subscriptions", &form, None).await;
    emulator.flush().await;
    let (_, _, events) = request("GET", &format!("{base}/_emulator/events"), &[], String::new()).await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 5);
    assert!(events
        .iter()
        .all(|e| e["delivery"] == "not_sent" && e["event"]["api_version"] == stripe_emulator::API_VERSION));

    // Attaching a receiver later only affects later events.
    let receiver = Receiver::start().await;
    emulator.set_webhook(Some(receiver.url.clone()), Some(common::SECRET.into()));
    api(
        &base,
        "POST",
        &format!("/v1/subscriptions/{}", s(&events[0]["event"]["data"]["object"]["id"])),
        "metadata[k]=v",
        None,
    )
    .await;
    emulator.flush().await;
    assert_eq!(receiver.types(), ["customer.subscription.updated"]);
    assert_eq!(receiver.deliveries()[0].json()["data"]["previous_attributes"], json!({"metadata": {}}));
}

#[tokio::test]
async fn the_clock_can_be_set_and_read() {
    let h = Harness::start(None).await;
    let (status, body) = h.control("/_emulator/clock", json!({"now": T0})).await;
    assert_eq!((status, &body), (200, &json!({"now": T0})));
    let (_, _, read) = request("GET", &format!("{}/_emulator/clock", h.base()), &[], String::new()).await;
    assert_eq!(read["now"], T0);
    let (_, c) = h.api("POST", "/v1/customers", "").await;
    assert_eq!(c["created"], T0);
}

#[tokio::test]
async fn hosted_pages_are_served() {
    let h = Harness::start(Some(T0)).await;
    let (_, c) = h.api("POST", "/v1/customers", "email=p%40example.com").await;
    let (_, p) = h.api("POST", "/v1/products", "name=Gold").await;
    let form = format!("product={}&unit_amount=360000&currency=usd&recurring[interval]=month", s(&p["id"]));
    let (_, price) = h.api("POST", "/v1/prices", &form).await;
    let form = format!(
        "mode=subscription&customer={}&line_items[0][price]={}&success_url=https%3A%2F%2Fexample.com%2Fok%3Fs%3D%7BCHECKOUT_SESSION_ID%7D",
        s(&c["id"]),
        s(&price["id"])
    );
    let (_, session) = h.api("POST", "/v1/checkout/sessions", &form).await;
    let page = http_get(&s(&session["url"])).await;
    assert_eq!(page.0, 200);
    assert!(page.1.contains("Subscribe"));

    let (status, headers, _) =
        request("POST", &format!("{}/checkout/{}/pay", h.base(), s(&session["id"])), &[], String::new()).await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], format!("https://example.com/ok?s={}", s(&session["id"])));
    let (_, session) =
        h.api("GET", &format!("/v1/checkout/sessions/{}", s(&session["id"])), "expand[]=line_items").await;
    assert_eq!(session["line_items"]["data"][0]["amount_total"], 360_000);
    let (_, inv) = h.api("GET", &format!("/v1/invoices/{}", s(&session["invoice"])), "").await;
    let hosted = http_get(&s(&inv["hosted_invoice_url"])).await;
    assert!(hosted.1.contains(&s(&inv["number"])));
    let pdf = http_get(&s(&inv["invoice_pdf"])).await;
    assert!(pdf.1.starts_with("%PDF-1.4") && pdf.1.trim_end().ends_with("%%EOF"));
}

async fn http_get(url: &str) -> (u16, String) {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<axum::body::Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn credit_notes_refund_paid_invoices_within_what_was_paid_and_send_emails_finalized_ones() {
    let h = Harness::start(Some(T0)).await;
    let (_, customer) = h.api("POST", "/v1/customers", "email=cn%40example.com").await;
    let cus = s(&customer["id"]);
    let (status, _) = h.api("POST", "/v1/invoiceitems", &format!("customer={cus}&amount=10000&currency=usd")).await;
    assert_eq!(status, 200);
    let (_, draft) =
        h.api("POST", "/v1/invoices", &format!("customer={cus}&pending_invoice_items_behavior=include")).await;
    let id = s(&draft["id"]);
    let (status, body) = h.api("POST", &format!("/v1/invoices/{id}/send"), "").await;
    assert_eq!((status, body["error"]["type"].as_str()), (400, Some("invalid_request_error")), "a draft is not sent");
    h.api("POST", &format!("/v1/invoices/{id}/finalize"), "").await;
    let (status, _) = h.api("POST", &format!("/v1/invoices/{id}/send"), "").await;
    assert_eq!(status, 200);
    let (status, body) = h.api("POST", "/v1/credit_notes", &format!("invoice={id}&amount=100&refund_amount=100")).await;
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("invoice")), "open invoices are not credited");
    let (status, paid) = h.api("POST", &format!("/v1/invoices/{id}/pay"), "paid_out_of_band=true").await;
    assert_eq!((status, paid["amount_paid"].as_i64()), (200, Some(10_000)), "{paid}");

    for (form, param) in [
        ("amount=10001&refund_amount=10001", "amount"),
        ("amount=4000&refund_amount=3000", "refund_amount"),
        ("amount=100&refund_amount=100&reason=because", "reason"),
    ] {
        let (status, body) = h.api("POST", "/v1/credit_notes", &format!("invoice={id}&{form}")).await;
        assert_eq!((status, body["error"]["param"].as_str()), (400, Some(param)), "{form}: {body}");
    }
    let (status, note) = h
        .api("POST", "/v1/credit_notes", &format!("invoice={id}&amount=4000&refund_amount=4000&reason=duplicate"))
        .await;
    assert_eq!(status, 200, "{note}");
    assert_eq!((note["type"].as_str(), note["total"].as_i64()), (Some("post_payment"), Some(4000)));
    let refund = s(&note["refunds"][0]["refund"]);
    let (status, re) = h.api("GET", &format!("/v1/refunds/{refund}"), "").await;
    assert_eq!((status, re["amount"].as_i64(), re["status"].as_str()), (200, Some(4000), Some("succeeded")));
    let (status, body) =
        h.api("POST", "/v1/credit_notes", &format!("invoice={id}&amount=6001&refund_amount=6001")).await;
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("amount")), "only 6000 is left: {body}");
    let (status, rest) = h.api("POST", "/v1/credit_notes", &format!("invoice={id}&refund_amount=6000")).await;
    assert_eq!((status, rest["amount"].as_i64()), (200, Some(6000)), "{rest}");
    let (_, list) = h.api("GET", &format!("/v1/credit_notes?invoice={id}"), "").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["data"][0]["id"], rest["id"], "newest first");

    h.emulator.flush().await;
    let events = h.verified_events();
    let notes: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.data.object {
            stripe_webhook::EventObject::CreditNoteCreated(n) => Some(n.refunds[0].amount_refunded),
            _ => None,
        })
        .collect();
    assert_eq!(notes, [4000, 6000], "async-stripe parses the credit notes");
    let sent = events.iter().filter(|e| matches!(e.data.object, stripe_webhook::EventObject::InvoiceSent(_))).count();
    assert_eq!(sent, 1);
    assert_eq!(events.iter().filter(|e| e.type_.as_str() == "refund.created").count(), 2);
}
