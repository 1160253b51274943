//! The webhook's guarantees, with a pinned clock: signature checks (300 s either
//! way, several v1), exactly-once effects under duplicate and concurrent
//! deliveries, ordering, and what happens to events it cannot use. Payloads are
//! the Stripe emulator's own events (and the signed fixtures in `events/`),
//! altered where a test needs a new event.

use chrono::{TimeZone, Utc};
use devtools::event::HttpCall;
use devtools::gateway::{Gateway, Handler};
use devtools::routes;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use stripe_webhook::StripeWebhook;
use tierdesk::billing::config::LOCAL_WEBHOOK_SECRET;
use tierdesk::billing::webhook::sign;
use tierdesk::clock::FixedClock;
use tierdesk::mail::{MailConfig, Mailer};
use tierdesk::UlidGen;
use tierdesk_tests::stripe::StripeApp;
use tierdesk_tests::{read_repo_file, ses};

/// The webhook function alone, behind the gateway, on `clock`.
async fn webhook_gateway(s: &StripeApp, clock: Arc<FixedClock>) -> Arc<Gateway> {
    let mailer = Mailer::connect(&MailConfig::local(ses::endpoint()), s.app.store.clone()).await;
    let app = Arc::new(StripeWebhook::new(
        s.app.store.clone(),
        s.app.config.clone(),
        s.stripe.clone(),
        mailer,
        clock,
        Arc::new(UlidGen),
    ));
    let handler: Handler = Arc::new(move |req| {
        let app = app.clone();
        Box::pin(async move { stripe_webhook::handle(&app, req).await })
    });
    let only_webhook: Vec<_> = routes::from_template(&read_repo_file("template.yaml"))
        .unwrap()
        .into_iter()
        .filter(|r| r.function == "StripeWebhookFunction")
        .collect();
    let handlers = HashMap::from([("StripeWebhookFunction".to_string(), handler)]);
    Arc::new(Gateway::new(only_webhook, &handlers, "unused".into()).unwrap())
}

async fn deliver(gw: &Gateway, payload: &str, signature: Option<String>) -> (u16, Value) {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(sig) = signature {
        headers.push(("stripe-signature".to_string(), sig));
    }
    let call = HttpCall {
        method: "POST".into(),
        path: "/api/webhooks/stripe".into(),
        query: String::new(),
        headers,
        body: Some(payload.as_bytes().to_vec()),
    };
    let response = gw.call(call).await;
    let status = response.status().as_u16();
    let text = match response.body() {
        lambda_http::Body::Text(t) => t.clone(),
        lambda_http::Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The emulator's last event of `event_type`, as sent.
async fn emulator_event(s: &StripeApp, event_type: &str) -> Value {
    s.events()
        .await
        .into_iter()
        .rev()
        .find(|e| e["type"] == event_type)
        .map(|e| e["event"].clone())
        .unwrap_or_else(|| panic!("the emulator sent no {event_type}"))
}

/// A new event (fresh id, given type and time) from an emulator event.
fn new_event(base: &Value, event_type: &str, created: i64, edit: impl FnOnce(&mut Value)) -> String {
    let mut event = base.clone();
    event["id"] = json!(format!("evt_test{}", ulid::Ulid::new().to_string().to_lowercase()));
    event["type"] = json!(event_type);
    event["created"] = json!(created);
    edit(&mut event["data"]["object"]);
    event.to_string()
}

async fn partner(s: &StripeApp, id: &str) -> Value {
    s.app.call("GET", &format!("/api/admin/partners/{id}"), Some("admin"), None).await.1
}

async fn subscribed(s: &StripeApp, company: &str) -> (String, String, String) {
    let (id, token, email) = s.partner(company).await;
    s.subscribe(&token, "gold", "monthly").await;
    (id, token, email)
}

#[tokio::test]
async fn signatures_are_checked_on_the_raw_body_with_300_seconds_either_way() {
    let s = StripeApp::start().await;
    let (id, _, _) = subscribed(&s, "Signed Co").await;
    let t = Utc::now().timestamp();
    let gw = webhook_gateway(&s, Arc::new(FixedClock::new(Utc.timestamp_opt(t, 0).unwrap()))).await;
    let base = emulator_event(&s, "customer.subscription.created").await;
    let payload =
        new_event(&base, "customer.subscription.updated", t + 1, |sub| sub["cancel_at_period_end"] = json!(true));
    let before = partner(&s, &id).await;

    let one_byte = {
        let mut bytes = payload.clone().into_bytes();
        let i = bytes.iter().position(|b| *b == b'{').unwrap() + 2;
        bytes[i] ^= 0x01;
        String::from_utf8(bytes).unwrap()
    };
    let refusals = [
        ("one byte changed", one_byte.clone(), Some(sign(&payload, LOCAL_WEBHOOK_SECRET, t)), "signature_mismatch"),
        ("header missing", payload.clone(), None, "signature_missing"),
        ("t-301", payload.clone(), Some(sign(&payload, LOCAL_WEBHOOK_SECRET, t - 301)), "signature_expired"),
        ("t+301", payload.clone(), Some(sign(&payload, LOCAL_WEBHOOK_SECRET, t + 301)), "signature_expired"),
        ("wrong secret", payload.clone(), Some(sign(&payload, "whsec_someone_else", t)), "signature_mismatch"),
    ];
    for (what, body, header, code) in refusals {
        let (status, answer) = deliver(&gw, &body, header).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
    }
    assert_eq!(partner(&s, &id).await, before, "a refused delivery writes nothing");
    let event_id: Value = serde_json::from_str::<Value>(&payload).unwrap()["id"].clone();
    let claims = s.app.partition(&format!("STRIPEEVT#{}", event_id.as_str().unwrap())).await;
    assert!(claims.is_empty(), "no claim either");

    // Several v1 signatures (a secret rotation), the valid one not last.
    let good = sign(&payload, LOCAL_WEBHOOK_SECRET, t);
    let good_v1 = good.split_once(",v1=").unwrap().1;
    let stale_v1 = sign(&payload, "whsec_old_secret", t);
    let header = format!("t={t},v1={},v1={good_v1},v1={}", stale_v1.split_once(",v1=").unwrap().1, "ab".repeat(32));
    let (status, answer) = deliver(&gw, &payload, Some(header)).await;
    assert_eq!(status, 200, "{answer}");
    let after = partner(&s, &id).await;
    assert_eq!(after["subscriptionStatus"], "cancelled");
    // Exactly 300 s old still verifies.
    let again = new_event(&base, "customer.subscription.updated", t + 2, |_| {});
    assert_eq!(deliver(&gw, &again, Some(sign(&again, LOCAL_WEBHOOK_SECRET, t - 300))).await.0, 200);
}

#[tokio::test]
async fn a_duplicate_or_ten_concurrent_deliveries_change_state_once_and_send_one_email() {
    let s = StripeApp::start().await;
    let (id, _, email) = subscribed(&s, "Duplicate Co").await;
    let t = Utc::now().timestamp();
    let gw = webhook_gateway(&s, Arc::new(FixedClock::new(Utc.timestamp_opt(t, 0).unwrap()))).await;
    let paid = emulator_event(&s, "invoice.paid").await;
    // A failed renewal attempt on a new invoice: past due, the friendly email.
    let invoice_id = format!("in_dup{}", ulid::Ulid::new().to_string().to_lowercase());
    let failed = new_event(&paid, "invoice.payment_failed", t, |inv| {
        inv["id"] = json!(invoice_id);
        inv["status"] = json!("open");
        inv["paid"] = json!(false);
        inv["amount_paid"] = json!(0);
        inv["amount_remaining"] = inv["amount_due"].clone();
        inv["attempt_count"] = json!(1);
        inv["billing_reason"] = json!("subscription_cycle");
        inv["created"] = json!(t);
    });
    let before = partner(&s, &id).await;
    let emails_before = ses::emails_to(&email).await.len();

    let deliveries = (0..10).map(|_| {
        let gw = gw.clone();
        let payload = failed.clone();
        async move { deliver(&gw, &payload, Some(sign(&payload, LOCAL_WEBHOOK_SECRET, t))).await }
    });
    let answers = futures::future::join_all(deliveries).await;
    let processed = answers.iter().filter(|(st, a)| *st == 200 && a["action"].is_string()).count();
    for (status, answer) in &answers {
        assert!(
            *status == 200 || (*status == 409 && answer["error"]["code"] == "event_in_progress"),
            "{status} {answer}"
        );
    }
    assert_eq!(processed, 1, "{answers:?}");
    // Stripe's retries of the ones that got 409, and one more: duplicates.
    for _ in 0..2 {
        let (status, answer) = deliver(&gw, &failed, Some(sign(&failed, LOCAL_WEBHOOK_SECRET, t))).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["duplicate"], true, "{answer}");
    }
    let after = partner(&s, &id).await;
    assert_eq!(after["version"].as_u64().unwrap(), before["version"].as_u64().unwrap() + 1, "one state change");
    assert_eq!(after["paymentFailures"], 1);
    assert_eq!(after["subscriptionStatus"], "past_due");
    assert_eq!(ses::emails_to(&email).await.len(), emails_before + 1, "one email");
}

#[tokio::test]
async fn an_older_event_arriving_after_a_newer_one_never_rolls_the_state_back() {
    let s = StripeApp::start().await;
    let (id, _, _) = subscribed(&s, "Ordering Co").await;
    let t = Utc::now().timestamp();
    let gw = webhook_gateway(&s, Arc::new(FixedClock::new(Utc.timestamp_opt(t, 0).unwrap()))).await;
    let base = emulator_event(&s, "customer.subscription.created").await;
    // `.updated` (newer: cancelled at period end) is delivered before `.created` (older).
    let updated = new_event(&base, "customer.subscription.updated", t + 100, |sub| {
        sub["cancel_at_period_end"] = json!(true);
    });
    let created = new_event(&base, "customer.subscription.created", t + 50, |_| {});
    let (status, first) = deliver(&gw, &updated, Some(sign(&updated, LOCAL_WEBHOOK_SECRET, t))).await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = deliver(&gw, &created, Some(sign(&created, LOCAL_WEBHOOK_SECRET, t))).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["action"], "ignored_stale", "{second}");
    let p = partner(&s, &id).await;
    assert_eq!(p["subscriptionStatus"], "cancelled", "the newest state stands: {p}");
    assert_eq!(p["autoRenewal"], false);
    assert_eq!(p["stripeEventAt"], t + 100);
}

#[tokio::test]
async fn unreadable_and_unknown_events_are_acknowledged_without_effect() {
    let s = StripeApp::start().await;
    let (id, _, _) = subscribed(&s, "Odd Co").await;
    let t = Utc::now().timestamp();
    let gw = webhook_gateway(&s, Arc::new(FixedClock::new(Utc.timestamp_opt(t, 0).unwrap()))).await;
    let before = partner(&s, &id).await;

    let evt = format!("evt_bad{}", ulid::Ulid::new().to_string().to_lowercase());
    let broken = json!({"id": evt, "object": "event", "type": "invoice.paid", "created": t,
        "data": {"object": {"id": "in_x", "customer": 42}}})
    .to_string();
    let (status, answer) = deliver(&gw, &broken, Some(sign(&broken, LOCAL_WEBHOOK_SECRET, t))).await;
    assert_eq!(status, 200, "signed but unreadable: kept, not retried forever: {answer}");
    assert_eq!(answer["stored"], "unparseable");
    let kept = s.app.partition(&format!("STRIPEEVT#{evt}")).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["status"].as_s().unwrap(), "UNPARSEABLE");
    assert_eq!(kept[0]["raw"].as_s().unwrap(), &broken);
    // Stripe retrying it changes nothing either.
    assert_eq!(deliver(&gw, &broken, Some(sign(&broken, LOCAL_WEBHOOK_SECRET, t))).await.0, 200);

    let base = emulator_event(&s, "customer.subscription.created").await;
    let unknown = new_event(&base, "customer.subscription.pending_update_applied", t, |sub| {
        sub["cancel_at_period_end"] = json!(true);
    });
    let (status, answer) = deliver(&gw, &unknown, Some(sign(&unknown, LOCAL_WEBHOOK_SECRET, t))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["action"], "ignored");
    assert_eq!(partner(&s, &id).await, before);
}

#[tokio::test]
async fn the_signed_fixtures_replay_with_the_clock_at_their_signature_time() {
    let s = StripeApp::start().await;
    for name in ["stripe-invoice-paid", "stripe-subscription-updated", "stripe-unknown-partner"] {
        let fixture: Value = serde_json::from_str(&read_repo_file(&format!("events/{name}.json"))).unwrap();
        let body = fixture["body"].as_str().unwrap();
        let header = fixture["headers"]["stripe-signature"].as_str().unwrap().to_string();
        let t: i64 = header.trim_start_matches("t=").split(',').next().unwrap().parse().unwrap();
        let gw = webhook_gateway(&s, Arc::new(FixedClock::new(Utc.timestamp_opt(t, 0).unwrap()))).await;
        let (status, answer) = deliver(&gw, body, Some(header.clone())).await;
        assert_eq!(status, 200, "{name}: {answer}");
        // The same fixture a day later is stale.
        let late = webhook_gateway(&s, Arc::new(FixedClock::new(Utc.timestamp_opt(t + 86_400, 0).unwrap()))).await;
        assert_eq!(deliver(&late, body, Some(header)).await.0, 400, "{name}");
    }
}

/// Writes `events/stripe-*.json` from the emulator's own events, as API Gateway
/// v2 events signed with the local secret at a fixed time. Run by hand:
/// `cargo test -p tierdesk-tests -- --ignored regenerate_signed_fixtures`.
#[tokio::test]
#[ignore = "regenerates the signed fixtures in events/"]
async fn regenerate_signed_fixtures() {
    let s = StripeApp::start().await;
    let (_, token, _) = s.partner("Fixture Co").await;
    let sub = s.subscribe(&token, "gold", "monthly").await;
    s.advance(&sub).await;
    let signed_at = 1_795_255_200; // 2026-11-21T10:00:00Z
    let invoice_paid = emulator_event(&s, "invoice.paid").await;
    let updated = emulator_event(&s, "customer.subscription.updated").await;
    let mut unknown = invoice_paid.clone();
    unknown["id"] = json!("evt_fixtureunknownpartner");
    unknown["data"]["object"]["customer"] = json!("cus_fixturenobody");
    unknown["data"]["object"]["parent"]["subscription_details"]["metadata"] = json!({});
    for (name, event) in [
        ("stripe-invoice-paid", invoice_paid),
        ("stripe-subscription-updated", updated),
        ("stripe-unknown-partner", unknown),
    ] {
        let body = event.to_string();
        let fixture = json!({
            "version": "2.0",
            "routeKey": "POST /api/webhooks/stripe",
            "rawPath": "/api/webhooks/stripe",
            "rawQueryString": "",
            "headers": {
                "content-type": "application/json; charset=utf-8",
                "host": "abc123.execute-api.us-east-1.amazonaws.com",
                "stripe-signature": sign(&body, LOCAL_WEBHOOK_SECRET, signed_at),
                "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "x-forwarded-proto": "https"
            },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc123",
                "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "abc123",
                "http": {"method": "POST", "path": "/api/webhooks/stripe", "protocol": "HTTP/1.1",
                         "sourceIp": "3.18.12.63", "userAgent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"},
                "requestId": format!("Stripe{name}"),
                "routeKey": "POST /api/webhooks/stripe",
                "stage": "$default",
                "time": "21/Nov/2026:10:00:00 +0000",
                "timeEpoch": signed_at * 1000
            },
            "isBase64Encoded": false,
            "body": body
        });
        let path = tierdesk_tests::repo_root().join(format!("events/{name}.json"));
        std::fs::write(path, serde_json::to_string_pretty(&fixture).unwrap() + "\n").unwrap();
    }
}

#[tokio::test]
async fn a_delivery_that_failed_midway_is_processed_by_the_retry() {
    use tierdesk_tests::FaultInjector;
    let s = StripeApp::start().await;
    let (id, _, email) = subscribed(&s, "Retry Co").await;
    let base = emulator_event(&s, "customer.subscription.created").await;
    let t = Utc::now().timestamp();
    let payload =
        new_event(&base, "customer.subscription.updated", t + 1, |sub| sub["cancel_at_period_end"] = json!(true));
    let before = partner(&s, &id).await;
    let emails_before = ses::emails_to(&email).await.len();

    // The transaction is throttled: nothing is written, the claim is given back.
    let faulty = s.app.with_fault(FaultInjector::throttle("TransactWriteItems").times(3)).await;
    let (status, answer) = deliver(&faulty, &payload, Some(sign(&payload, LOCAL_WEBHOOK_SECRET, t))).await;
    assert!(status >= 500, "Stripe must retry: {status} {answer}");
    assert_eq!(partner(&s, &id).await, before);

    // Stripe's retry, moments later, goes through once.
    let now = Utc::now().timestamp();
    let gw = webhook_gateway(&s, Arc::new(FixedClock::new(Utc.timestamp_opt(now, 0).unwrap()))).await;
    let (status, answer) = deliver(&gw, &payload, Some(sign(&payload, LOCAL_WEBHOOK_SECRET, now))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["action"], "cancel", "{answer}");
    assert_eq!(partner(&s, &id).await["subscriptionStatus"], "cancelled");
    let (status, again) = deliver(&gw, &payload, Some(sign(&payload, LOCAL_WEBHOOK_SECRET, now))).await;
    assert_eq!((status, again["duplicate"].as_bool()), (200, Some(true)));
    assert_eq!(ses::emails_to(&email).await.len(), emails_before + 1, "one cancellation confirmation, not two");
}
