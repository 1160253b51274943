//! Stripe billing end to end: the billing Lambda against the Stripe emulator,
//! whose signed webhooks reach the webhook Lambda through the gateway over TCP;
//! emails are counted in the SES emulator's store.

use serde_json::{json, Value};
use tierdesk_tests::stripe::StripeApp;

fn day(v: &Value) -> chrono::NaiveDate {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a date: {v}"))
}

async fn history_events(s: &StripeApp, partner_id: &str) -> Vec<String> {
    let (status, body) =
        s.app.call("GET", &format!("/api/admin/partners/{partner_id}/history"), Some("admin"), None).await;
    assert_eq!(status, 200, "{body}");
    let mut events: Vec<String> =
        body["items"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap().to_string()).collect();
    events.reverse();
    events
}

#[tokio::test]
async fn checkout_puts_the_partner_on_the_paid_tier_with_an_end_date_an_invoice_and_two_emails() {
    let s = StripeApp::start().await;
    let (partner_id, token, email) = s.partner("Checkout Co").await;
    let sub = s.subscribe(&token, "gold", "monthly").await;
    assert!(sub.starts_with("sub_"), "{sub}");

    let (status, view) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["tierId"], "gold");
    assert_eq!(view["status"], "active");
    assert_eq!(view["pricePerPeriod"], 360_000);
    assert_eq!(view["mrr"], 360_000);
    assert_eq!(view["paymentStatus"], "current");
    assert_eq!(view["totalPaid"], 360_000, "paid once, though invoice.paid and payment_succeeded both arrived");
    let start = day(&view["subscriptionStartDate"]);
    let end = day(&view["subscriptionEndDate"]);
    assert_eq!(end, start.checked_add_months(chrono::Months::new(1)).unwrap());

    let (status, invoices) = s.as_partner(&token, "GET", "/api/billing/invoices", None).await;
    assert_eq!(status, 200, "{invoices}");
    let items = invoices["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{invoices}");
    let inv = &items[0];
    assert_eq!(inv["status"], "paid");
    assert_eq!(inv["amount"], 360_000);
    assert_eq!(inv["tier"], "gold");
    assert!(inv["invoiceNumber"].as_str().is_some_and(|n| !n.is_empty()), "{inv}");
    assert!(inv["invoiceUrl"].as_str().is_some_and(|u| u.starts_with("http")), "{inv}");
    assert!(inv["pdfUrl"].as_str().is_some_and(|u| u.starts_with("http")), "{inv}");
    assert_eq!(day(&inv["periodEnd"]), end);

    assert_eq!(history_events(&s, &partner_id).await, ["signup", "upgrade"]);
    let subjects = StripeApp::subjects(&email).await;
    assert_eq!(subjects.len(), 2, "upgrade confirmation + receipt: {subjects:?}");
    assert!(subjects.iter().any(|s| s.contains("Welcome")), "{subjects:?}");
    assert!(subjects.iter().any(|s| s.to_lowercase().contains("receipt")), "{subjects:?}");
    // Every event the emulator sent was acknowledged.
    for event in s.events().await {
        let last = event["attempts"].as_array().and_then(|d| d.last()).cloned().unwrap_or(Value::Null);
        assert_eq!(last["status"], 200, "{event}");
    }
}

#[tokio::test]
async fn a_paid_renewal_extends_the_term_and_records_a_renewal() {
    let s = StripeApp::start().await;
    let (partner_id, token, email) = s.partner("Renewal Co").await;
    let sub = s.subscribe(&token, "gold", "monthly").await;
    let (_, before) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    s.advance(&sub).await;
    let (_, after) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    let old_end = day(&before["subscriptionEndDate"]);
    assert_eq!(day(&after["subscriptionEndDate"]), old_end.checked_add_months(chrono::Months::new(1)).unwrap());
    assert_eq!(after["totalPaid"], 720_000);
    assert_eq!(history_events(&s, &partner_id).await, ["signup", "upgrade", "renewal"]);
    let (_, invoices) = s.as_partner(&token, "GET", "/api/billing/invoices", None).await;
    assert_eq!(invoices["items"].as_array().unwrap().len(), 2);
    assert_eq!(StripeApp::subjects(&email).await.len(), 3, "a second receipt");
}

#[tokio::test]
async fn dunning_goes_friendly_urgent_final_and_ends_on_free() {
    let s = StripeApp::start().await;
    let (partner_id, token, email) = s.partner("Dunning Co").await;
    let sub = s.subscribe(&token, "platinum", "monthly").await;
    let (_, view) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    s.card_fails(view["stripeCustomerId"].as_str().unwrap(), true).await;
    let emails_before = StripeApp::subjects(&email).await.len();

    let advanced = s.advance(&sub).await;
    let invoice_id = advanced["latest_invoice"]
        .as_str()
        .or_else(|| advanced["latest_invoice"]["id"].as_str())
        .or_else(|| advanced["invoice"]["id"].as_str())
        .unwrap_or_else(|| panic!("no invoice in {advanced}"))
        .to_string();
    let (_, v1) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(v1["status"], "past_due");
    assert_eq!(v1["tierId"], "platinum", "the grace period keeps the tier");
    assert_eq!(v1["paymentFailures"], 1);

    s.retry_invoice(&invoice_id).await;
    let (_, v2) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(v2["status"], "past_due");
    assert_eq!(v2["tierId"], "platinum");
    assert_eq!(v2["paymentFailures"], 2);

    s.retry_invoice(&invoice_id).await;
    let (_, v3) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(v3["tierId"], "free");
    assert_eq!(v3["status"], "expired");
    assert_eq!(v3["paymentStatus"], "failed");
    assert_eq!(v3["mrr"], 0);
    assert_eq!(history_events(&s, &partner_id).await, ["signup", "upgrade", "payment_failure_downgrade"]);

    let subjects = StripeApp::subjects(&email).await;
    let dunning = &subjects[emails_before..];
    assert_eq!(dunning.len(), 3, "one email per attempt, none for the deletion that follows: {dunning:?}");
    let (_, invoices) = s.as_partner(&token, "GET", "/api/billing/invoices", None).await;
    let failed = invoices["items"].as_array().unwrap().iter().find(|i| i["invoiceId"] == invoice_id.as_str()).cloned();
    assert_eq!(failed.unwrap()["attemptCount"], 3);
}

#[tokio::test]
async fn cancel_voids_open_invoices_keeps_the_term_and_the_deletion_ends_on_free() {
    let s = StripeApp::start().await;
    let (partner_id, token, email) = s.partner("Cancel Co").await;
    let sub = s.subscribe(&token, "gold", "yearly").await;
    let (status, body) = s.as_partner(&token, "DELETE", "/api/billing/cancel", Some(json!({"reason": "budget"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subscription"]["status"], "cancelled");
    assert_eq!(body["subscription"]["tierId"], "gold", "kept until the period ends");
    assert_eq!(body["subscription"]["autoRenewal"], false);
    assert!(body["voidedInvoices"].is_u64(), "{body}");
    // Cancelling twice is refused.
    let (status, again) = s.as_partner(&token, "DELETE", "/api/billing/cancel", None).await;
    assert_eq!(status, 409, "{again}");

    s.advance(&sub).await;
    let (_, view) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(view["tierId"], "free");
    assert_eq!(view["status"], "expired");
    assert_eq!(history_events(&s, &partner_id).await, ["signup", "upgrade", "cancel", "expiration"]);
    let subjects = StripeApp::subjects(&email).await;
    assert!(subjects.iter().any(|s| s.contains("cancelled")), "{subjects:?}");
    assert!(subjects.iter().any(|s| s.contains("expired")), "{subjects:?}");
}

#[tokio::test]
async fn upgrade_charges_the_proration_now_and_a_downgrade_waits_for_the_period_end() {
    let s = StripeApp::start().await;
    let (partner_id, token, _) = s.partner("Plan Co").await;
    let sub = s.subscribe(&token, "gold", "monthly").await;

    let (status, up) = s.as_partner(&token, "PUT", "/api/billing/upgrade", Some(json!({"tierId": "platinum"}))).await;
    assert_eq!(status, 200, "{up}");
    assert_eq!(up["subscription"]["tierId"], "platinum");
    assert_eq!(up["subscription"]["mrr"], 600_000);
    let charged = up["prorationInvoice"]["amountDue"].as_i64().unwrap();
    assert!(charged > 0 && charged <= 240_000, "at most the full difference: {up}");
    s.emulator.flush().await;

    // Downgrading to a higher tier, or upgrading to a lower one, is refused.
    let (status, wrong) = s.as_partner(&token, "PUT", "/api/billing/upgrade", Some(json!({"tierId": "gold"}))).await;
    assert_eq!(status, 422, "{wrong}");

    let (status, down) = s.as_partner(&token, "PUT", "/api/billing/downgrade", Some(json!({"tierId": "gold"}))).await;
    assert_eq!(status, 200, "{down}");
    assert_eq!(down["effective"], "period_end");
    assert_eq!(down["subscription"]["tierId"], "platinum", "paid through the period");
    assert_eq!(down["subscription"]["scheduledChange"]["tierId"], "gold");
    s.emulator.flush().await;
    let (_, still) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(still["tierId"], "platinum", "the subscription.updated webhook does not lower it early: {still}");

    s.advance(&sub).await;
    let (_, after) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(after["tierId"], "gold");
    assert_eq!(after["pricePerPeriod"], 360_000);
    assert!(after["scheduledChange"].is_null(), "{after}");
    assert_eq!(history_events(&s, &partner_id).await, ["signup", "upgrade", "upgrade", "downgrade"]);
}

#[tokio::test]
async fn subscribe_answers_repeats_of_an_idempotency_key_with_the_first_answer() {
    let s = StripeApp::start().await;
    let (_, token, _) = s.partner("Idem Co").await;
    let body = json!({"tierId": "gold"});
    let call = |key: &'static str, body: Value| {
        let devtools_call = devtools::event::HttpCall {
            method: "POST".into(),
            path: "/api/billing/subscribe".into(),
            query: String::new(),
            headers: vec![
                ("authorization".into(), format!("Bearer {token}")),
                ("idempotency-key".into(), key.into()),
                ("content-type".into(), "application/json".into()),
            ],
            body: Some(body.to_string().into_bytes()),
        };
        let gw = s.app.gateway.clone();
        async move {
            let r = gw.call(devtools_call).await;
            let status = r.status().as_u16();
            let replayed = r.headers().contains_key("idempotent-replayed");
            let text = match r.body() {
                lambda_http::Body::Text(t) => t.clone(),
                _ => String::new(),
            };
            (status, replayed, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null))
        }
    };
    let (s1, r1, first) = call("key-1", body.clone()).await;
    let (s2, r2, second) = call("key-1", body.clone()).await;
    assert_eq!((s1, r1), (201, false), "{first}");
    assert_eq!((s2, r2), (201, true), "{second}");
    assert_eq!(first["checkoutSessionId"], second["checkoutSessionId"]);
    let (s3, _, third) = call("key-1", json!({"tierId": "platinum"})).await;
    assert_eq!(s3, 422, "{third}");
    assert_eq!(third["error"]["code"], "idempotency_key_reused");
    let (s4, _, fourth) = call("key-2", body).await;
    assert_eq!(s4, 201);
    assert_ne!(fourth["checkoutSessionId"], first["checkoutSessionId"]);
}

#[tokio::test]
async fn billing_is_the_callers_own_and_bad_input_names_the_field() {
    let s = StripeApp::start().await;
    let (_, token_a, _) = s.partner("A Co").await;
    let (id_b, token_b, _) = s.partner("B Co").await;
    s.subscribe(&token_a, "gold", "monthly").await;

    let (_, b_view) = s.as_partner(&token_b, "GET", "/api/billing/subscription", None).await;
    assert_eq!(b_view["partnerId"], id_b.as_str());
    assert_eq!(b_view["tierId"], "free");
    let (_, b_invoices) = s.as_partner(&token_b, "GET", "/api/billing/invoices", None).await;
    assert_eq!(b_invoices["items"].as_array().unwrap().len(), 0, "B sees none of A's invoices");
    // There is no way to name another partner.
    let (status, body) = s
        .as_partner(&token_b, "POST", "/api/billing/subscribe", Some(json!({"tierId": "gold", "partnerId": "x"})))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["details"]["fields"]["partnerId"].is_string(), "{body}");
    // A token for a partner that does not exist finds nothing.
    let ghost = s.app.partner_token("prt_doesnotexist");
    assert_eq!(s.as_partner(&ghost, "GET", "/api/billing/subscription", None).await.0, 404);
    // Staff have no billing of their own.
    for role in ["sales_rep", "sales_manager", "admin"] {
        let (status, body) = s.app.call("GET", "/api/billing/subscription", Some(role), None).await;
        assert_eq!(status, 403, "{role}: {body}");
    }
    assert_eq!(s.app.call("GET", "/api/billing/invoices", None, None).await.0, 401);

    let (status, body) =
        s.as_partner(&token_b, "POST", "/api/billing/subscribe", Some(json!({"tierId": "free"}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["details"]["fields"]["tierId"].is_string(), "{body}");
    let (status, body) = s
        .as_partner(
            &token_b,
            "POST",
            "/api/billing/subscribe",
            Some(json!({"tierId": "gold", "promotionCode": "SAVE20"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_promotion_code");
    let (status, body) =
        s.as_partner(&token_b, "PUT", "/api/billing/upgrade", Some(json!({"tierId": "platinum"}))).await;
    assert_eq!(status, 409, "no subscription to upgrade: {body}");
    let (status, body) =
        s.as_partner(&token_a, "POST", "/api/billing/subscribe", Some(json!({"tierId": "platinum"}))).await;
    assert_eq!(status, 409, "already subscribed: {body}");
    assert_eq!(body["error"]["code"], "already_subscribed");
}
