//! Stripe billing end to end: the billing Lambda against the Stripe emulator,
//! whose signed webhooks reach the webhook Lambda through the gateway over TCP;
//! emails are counted in the SES emulator's store.

use serde_json::{json, Value};
use tierdesk::store::StripeEventStore;
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

/// Every item of the test's table whose `PK` starts with `prefix`, as JSON.
async fn items_under(s: &StripeApp, prefix: &str) -> Vec<Value> {
    s.app.items().await.into_iter().filter(|i| i["PK"].as_str().is_some_and(|pk| pk.starts_with(prefix))).collect()
}

/// `(memberCount, mrr)` of `STATS#{tier}/CURRENT`.
async fn tier_stats(s: &StripeApp, tier: &str) -> (i64, i64) {
    let items = items_under(s, &format!("STATS#{tier}")).await;
    let current = items.iter().find(|i| i["SK"] == "CURRENT").unwrap_or_else(|| panic!("no STATS#{tier}: {items:?}"));
    (current["memberCount"].as_i64().unwrap_or(0), current["mrr"].as_i64().unwrap_or(0))
}

/// The partner's audit entries written by Stripe webhook deliveries, oldest first.
async fn webhook_audits(s: &StripeApp, partner_id: &str) -> Vec<Value> {
    items_under(s, &format!("AUDIT#partner#{partner_id}"))
        .await
        .into_iter()
        .filter(|a| a["actor"].as_str().is_some_and(|actor| actor.starts_with("stripe:evt_")))
        .collect()
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
    // Every event the emulator sent was acknowledged (and there were some: the
    // checkout's completion at least).
    let events = s.events().await;
    assert!(events.iter().any(|e| e["type"] == "checkout.session.completed"), "{events:?}");
    for event in events {
        let attempts = event["attempts"].as_array().cloned().unwrap_or_default();
        assert!(!attempts.is_empty(), "delivered at least once: {event}");
        assert_eq!(attempts.last().map(|a| &a["status"]), Some(&serde_json::json!(200)), "{event}");
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
    assert_eq!(before["lastPaymentAmount"], 360_000);
    assert_eq!(after["lastPaymentAmount"], 360_000, "{after}");
    assert_eq!(day(&after["lastPaymentDate"]), old_end, "the renewal invoice is paid on the day the old term ends");
    assert_eq!(after["paymentStatus"], "current");
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
    let (_, history) =
        s.app.call("GET", &format!("/api/admin/partners/{partner_id}/history?limit=1"), Some("admin"), None).await;
    let downgrade = &history["items"][0];
    assert_eq!(downgrade["event"], "payment_failure_downgrade", "{history}");
    assert_eq!((downgrade["fromTier"].as_str(), downgrade["toTier"].as_str()), (Some("platinum"), Some("free")));
    assert_eq!(downgrade["trigger"]["type"], "automated", "{downgrade}");
    assert_eq!(downgrade["financialImpact"]["previousMRR"], 600_000, "{downgrade}");
    assert_eq!(downgrade["financialImpact"]["newMRR"], 0, "{downgrade}");

    let subjects = StripeApp::subjects(&email).await;
    let dunning = &subjects[emails_before..];
    assert_eq!(dunning.len(), 3, "one email per attempt, none for the deletion that follows: {dunning:?}");
    // payment_failed_friendly, payment_failed_urgent, payment_failed_final, in that order.
    assert_eq!(dunning[0], "We couldn't process your Power Platinum payment", "{dunning:?}");
    assert_eq!(dunning[1], "Action required: your Power Platinum payment failed again", "{dunning:?}");
    assert_eq!(dunning[2], "Payment failed: your account has been moved to the Free tier", "{dunning:?}");
    let (_, invoices) = s.as_partner(&token, "GET", "/api/billing/invoices", None).await;
    let failed = invoices["items"].as_array().unwrap().iter().find(|i| i["invoiceId"] == invoice_id.as_str()).cloned();
    assert_eq!(failed.unwrap()["attemptCount"], 3);
    // The staff alerts' daily counts (docs/alerts.md): the first invoice paid, and
    // each failed attempt once, counted in the invoice record's own writes.
    let days = tierdesk::store::AlertStore::ops_days(&s.app.store, "2000-01-01", "2100-12-31").await.unwrap();
    let sum = days.iter().fold(tierdesk::domain::alerts::OpsCounts::default(), |a, (_, c)| a.plus(*c));
    assert_eq!((sum.payments_succeeded, sum.payment_failures), (1, 3), "{days:?}");
}

#[tokio::test]
async fn cancel_voids_an_open_invoice_keeps_the_term_and_the_deletion_ends_on_free() {
    let s = StripeApp::start().await;
    let (partner_id, token, email) = s.partner("Cancel Co").await;
    let sub = s.subscribe(&token, "gold", "yearly").await;
    let (_, subscribed) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    let customer = subscribed["stripeCustomerId"].as_str().unwrap().to_string();
    let paid_before = subscribed["totalPaid"].as_i64().unwrap();

    // An open invoice on the subscription: a one-off charge, finalized, not collected yet.
    let (status, item) = s
        .stripe_api(
            "POST",
            "invoiceitems",
            &[("customer", &customer), ("subscription", &sub), ("amount", "12500"), ("currency", "usd")],
            None,
        )
        .await;
    assert_eq!(status, 200, "{item}");
    let (status, draft) = s
        .stripe_api(
            "POST",
            "invoices",
            &[("customer", &customer), ("subscription", &sub), ("pending_invoice_items_behavior", "include")],
            None,
        )
        .await;
    assert_eq!(status, 200, "{draft}");
    let open_id = draft["id"].as_str().unwrap().to_string();
    let (status, open) = s.stripe_api("POST", &format!("invoices/{open_id}/finalize"), &[], None).await;
    assert_eq!(status, 200, "{open}");
    assert_eq!((open["status"].as_str(), open["amount_due"].as_i64()), (Some("open"), Some(12_500)), "{open}");
    s.emulator.flush().await;
    let charges_before = s.events().await.iter().filter(|e| e["type"] == "invoice.paid").count();

    let (status, body) = s.as_partner(&token, "DELETE", "/api/billing/cancel", Some(json!({"reason": "budget"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subscription"]["status"], "cancelled");
    assert_eq!(body["subscription"]["tierId"], "gold", "kept until the period ends");
    assert_eq!(body["subscription"]["autoRenewal"], false);
    assert_eq!(body["voidedInvoices"], 1, "{body}");
    let (_, voided) = s.stripe_api("GET", &format!("invoices/{open_id}"), &[], None).await;
    assert_eq!((voided["status"].as_str(), voided["amount_paid"].as_i64()), (Some("void"), Some(0)), "{voided}");
    s.emulator.flush().await;
    let (_, invoices) = s.as_partner(&token, "GET", "/api/billing/invoices", None).await;
    let record = invoices["items"].as_array().unwrap().iter().find(|i| i["invoiceId"] == open_id.as_str()).cloned();
    assert_eq!(record.unwrap_or_else(|| panic!("no record of {open_id}: {invoices}"))["status"], "void");
    // Cancelling twice is refused.
    let (status, again) = s.as_partner(&token, "DELETE", "/api/billing/cancel", None).await;
    assert_eq!(status, 409, "{again}");

    s.advance(&sub).await;
    let (_, view) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(view["tierId"], "free");
    assert_eq!(view["status"], "expired");
    assert_eq!(history_events(&s, &partner_id).await, ["signup", "upgrade", "cancel", "expiration"]);
    // Nothing was charged after the cancellation: not the voided invoice, not a renewal.
    let (_, still) = s.stripe_api("GET", &format!("invoices/{open_id}"), &[], None).await;
    assert_eq!((still["status"].as_str(), still["amount_paid"].as_i64()), (Some("void"), Some(0)), "{still}");
    let charges_after = s.events().await.iter().filter(|e| e["type"] == "invoice.paid").count();
    assert_eq!(charges_after, charges_before, "no invoice was paid after the cancellation");
    assert_eq!(view["totalPaid"].as_i64(), Some(paid_before), "{view}");
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

    // The renewal's invoice.paid wrote the downgrade with everything a transition writes.
    assert_eq!(tier_stats(&s, "gold").await, (1, 360_000));
    assert_eq!(tier_stats(&s, "platinum").await, (0, 0));
    let movements = items_under(&s, "MOVEMENTS#").await;
    let contraction: Vec<&Value> =
        movements.iter().filter(|m| m["fromTier"] == "platinum" && m["toTier"] == "gold").collect();
    assert_eq!(contraction.len(), 1, "{movements:?}");
    assert_eq!(contraction[0]["kind"], "contraction");
    assert_eq!(contraction[0]["amount"], -240_000);
    assert_eq!(
        (contraction[0]["previousMrr"].as_i64(), contraction[0]["newMrr"].as_i64()),
        (Some(600_000), Some(360_000))
    );
    assert_eq!(contraction[0]["partnerId"], partner_id.as_str());
    let audits = webhook_audits(&s, &partner_id).await;
    let downgrade =
        audits.iter().find(|a| a["before"]["engagementTier"] == "platinum" && a["after"]["engagementTier"] == "gold");
    let downgrade = downgrade.unwrap_or_else(|| panic!("no webhook audit of the downgrade: {audits:?}"));
    assert_eq!(downgrade["action"], "partner.billing");
    assert_eq!(downgrade["entityId"], partner_id.as_str());
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

#[tokio::test]
async fn invoices_page_with_a_cursor_that_only_opens_the_callers_own_invoices() {
    let s = StripeApp::start().await;
    let (_, token, _) = s.partner("Pages Co").await;
    let (_, other_token, _) = s.partner("Other Pages Co").await;
    let sub = s.subscribe(&token, "gold", "monthly").await;
    s.advance(&sub).await;
    s.advance(&sub).await;
    let (status, all) = s.as_partner(&token, "GET", "/api/billing/invoices?limit=100", None).await;
    assert_eq!(status, 200, "{all}");
    let all_ids: Vec<String> =
        all["items"].as_array().unwrap().iter().map(|i| i["invoiceId"].as_str().unwrap().to_string()).collect();
    assert_eq!(all_ids.len(), 3, "the first invoice and two renewals: {all}");

    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut first_cursor = None;
    for _ in 0..all_ids.len() + 1 {
        let path = match &cursor {
            Some(c) => format!("/api/billing/invoices?limit=1&cursor={c}"),
            None => "/api/billing/invoices?limit=1".to_string(),
        };
        let (status, page) = s.as_partner(&token, "GET", &path, None).await;
        assert_eq!(status, 200, "{path}: {page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 1, "{page}");
        seen.extend(items.iter().map(|i| i["invoiceId"].as_str().unwrap().to_string()));
        cursor = page["nextCursor"].as_str().map(str::to_string);
        first_cursor = first_cursor.or_else(|| cursor.clone());
        if cursor.is_none() {
            break;
        }
    }
    assert!(cursor.is_none(), "paging did not end: {seen:?}");
    assert_eq!(seen, all_ids, "every invoice once, newest first, no duplicates");

    let (status, bad) = s.as_partner(&token, "GET", "/api/billing/invoices?limit=1&cursor=not-a-cursor", None).await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"]["details"]["fields"]["cursor"].is_string(), "{bad}");
    // A cursor from one partner's invoices does not open another's.
    let foreign = first_cursor.expect("a first page with a cursor");
    let (status, body) =
        s.as_partner(&other_token, "GET", &format!("/api/billing/invoices?limit=1&cursor={foreign}"), None).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn every_stripe_call_that_changes_something_carries_an_idempotency_key() {
    let s = StripeApp::start().await;
    let (partner_id, token, _) = s.partner("Keys Co").await;
    let events_before = s.events().await.len();

    // Subscribe with the client's key: the customer and the session are created
    // under `customer-{partner}` and `checkout-{partner}-{key}`. The emulator keeps
    // each key with its first request, so the same key with other parameters is refused.
    let (status, session) = s
        .as_partner_keyed(&token, "POST", "/api/billing/subscribe", Some(json!({"tierId": "gold"})), "client-sub-1")
        .await;
    assert_eq!(status, 201, "{session}");
    // The client's key is the caller's own: Stripe's key carries the caller's tag.
    let tag = tierdesk::idempotency::caller_tag(&format!("user-{partner_id}"));
    for key in [format!("customer-{partner_id}"), format!("checkout-{partner_id}-{tag}-client-sub-1")] {
        let (status, probe) = s.stripe_api("POST", "customers", &[("email", "probe@example.com")], Some(&key)).await;
        assert_eq!(status, 400, "{key} was not used: {probe}");
        assert_eq!(probe["error"]["type"], "idempotency_error", "{key}: {probe}");
    }
    // The probe tells a used key from an unused one.
    let unused = format!("checkout-{partner_id}-never-sent");
    let (status, probe) = s.stripe_api("POST", "customers", &[("email", "probe@example.com")], Some(&unused)).await;
    assert_eq!(status, 200, "{probe}");
    let cs = session["checkoutSessionId"].as_str().unwrap();
    let (status, done) =
        tierdesk_tests::stripe::post(&s.control(&format!("checkout/sessions/{cs}/complete")), json!({})).await;
    assert_eq!(status, 200, "{done}");
    s.emulator.flush().await;

    // Upgrade with the client's key, cancel without one (the request id stands in).
    let (status, up) = s
        .as_partner_keyed(&token, "PUT", "/api/billing/upgrade", Some(json!({"tierId": "platinum"})), "client-up-1")
        .await;
    assert_eq!(status, 200, "{up}");
    s.emulator.flush().await;
    let (status, cancel) = s.as_partner(&token, "DELETE", "/api/billing/cancel", None).await;
    assert_eq!(status, 200, "{cancel}");
    s.emulator.flush().await;

    // Each event names the API request that caused it and that request's key.
    let events = s.events().await;
    let caused: Vec<(&str, Option<&str>)> = events[events_before..]
        .iter()
        .filter(|e| !e["event"]["request"]["id"].is_null())
        .map(|e| (e["type"].as_str().unwrap_or("?"), e["event"]["request"]["idempotency_key"].as_str()))
        .collect();
    let upgrade_key = format!("upgrade-{partner_id}-{tag}-client-up-1");
    let upgrade: Vec<_> = caused.iter().filter(|(_, k)| *k == Some(upgrade_key.as_str())).collect();
    assert!(upgrade.iter().any(|(t, _)| *t == "customer.subscription.updated"), "{caused:?}");
    assert!(upgrade.iter().any(|(t, _)| *t == "invoice.paid"), "the proration was charged under it: {caused:?}");
    let cancel_prefix = format!("cancel-{partner_id}-");
    let cancelled: Vec<_> = caused
        .iter()
        .filter(|(_, k)| k.is_some_and(|k| k.len() > cancel_prefix.len() && k.starts_with(&cancel_prefix)))
        .collect();
    assert!(cancelled.iter().any(|(t, _)| *t == "customer.subscription.updated"), "{caused:?}");
    let unkeyed: Vec<_> = caused.iter().filter(|(_, k)| k.is_none()).collect();
    assert!(unkeyed.is_empty(), "API requests that changed something without a key: {unkeyed:?}");
    assert_eq!(caused.len(), upgrade.len() + cancelled.len(), "{caused:?}");
}

/// An active promotion (created and submitted by a manager) with `code`.
async fn promotion_with_code(s: &StripeApp, code: &str, extra: Value) -> Value {
    let mut body = json!({
        "name": format!("Checkout {code}"), "discountType": "percentage", "discountValue": 20,
        "appliesTo": "first_month", "startDate": "2026-01-01", "endDate": "2099-12-31",
        "promotionCodes": [code],
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, created) = s.app.call("POST", "/api/admin/promotions", Some("sales_manager"), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["promotionId"].as_str().unwrap();
    let (status, live) =
        s.app.call("POST", &format!("/api/admin/promotions/{id}/submit"), Some("sales_manager"), None).await;
    assert_eq!((status, live["status"].as_str()), (200, Some("active")), "{live}");
    live
}

#[tokio::test]
async fn a_promotion_code_at_checkout_becomes_a_stripe_coupon_and_one_redemption() {
    let s = StripeApp::start().await;
    let code = format!("FIRST{}", &ulid::Ulid::new().to_string()[20..]);
    // Five per customer: only the checkout session's once-marker, not the per-user
    // limit, can keep a redelivered completion to one redemption.
    let promo = promotion_with_code(&s, &code, json!({"redemptionsPerUser": 5})).await;
    assert_eq!(promo["redemptionsPerUser"], 5, "{promo}");
    let promotion_id = promo["promotionId"].as_str().unwrap();
    let (partner_id, token, _) = s.partner("Coupon Co").await;

    let (status, session) = s
        .as_partner(
            &token,
            "POST",
            "/api/billing/subscribe",
            Some(json!({"tierId": "gold", "promotionCode": code.to_lowercase()})),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["promotion"]["promotionId"], promotion_id);
    // 20% of the first month of gold: 3,600.00 → 720.00 off.
    assert_eq!(session["promotion"]["discountAmount"], 72_000);
    assert_eq!(session["promotion"]["finalPrice"], 288_000);
    assert_eq!(session["promotion"]["recurringPrice"], 360_000);
    let coupon_id = format!("tierdesk_{promotion_id}_v1");
    let (status, coupon) = s.stripe_api("GET", &format!("coupons/{coupon_id}"), &[], None).await;
    assert_eq!(status, 200, "{coupon}");
    assert_eq!((coupon["percent_off"].as_f64(), coupon["duration"].as_str()), (Some(20.0), Some("once")));

    // Nothing is redeemed until Stripe confirms the payment.
    let (_, before) = s.app.call("GET", &format!("/api/admin/promotions/{promotion_id}"), Some("admin"), None).await;
    assert_eq!(before["redemptionCount"], 0);
    let id = session["checkoutSessionId"].as_str().unwrap();
    let (status, done) =
        tierdesk_tests::stripe::post(&s.control(&format!("checkout/sessions/{id}/complete")), json!({})).await;
    assert_eq!(status, 200, "{done}");
    s.emulator.flush().await;
    let (_, after) = s.app.call("GET", &format!("/api/admin/promotions/{promotion_id}"), Some("admin"), None).await;
    assert_eq!(after["redemptionCount"], 1, "{after}");
    assert_eq!(after["totalDiscount"], 72_000);
    let (_, redemptions) =
        s.app.call("GET", &format!("/api/admin/promotions/{promotion_id}/redemptions"), Some("admin"), None).await;
    assert_eq!(redemptions["items"][0]["userId"], partner_id.as_str());
    assert_eq!(redemptions["items"][0]["code"], code.as_str());

    let (_, invoices) = s.as_partner(&token, "GET", "/api/billing/invoices", None).await;
    assert_eq!(invoices["items"][0]["amount"], 288_000, "{invoices}");

    // The session's completion arriving again as another event (the event claim
    // does not dedupe it): the session's once-marker keeps it to one redemption.
    let completed = s.events().await.into_iter().find(|e| e["type"] == "checkout.session.completed").unwrap();
    let mut again = completed["event"].clone();
    again["id"] = json!(format!("evt_again{}", ulid::Ulid::new().to_string().to_lowercase()));
    let payload = again.to_string();
    let signature = tierdesk::stripe_adapter::webhook::sign(
        &payload,
        tierdesk::stripe_adapter::config::LOCAL_WEBHOOK_SECRET,
        chrono::Utc::now().timestamp(),
    );
    let (status, answer) = deliver_webhook(&s, &payload, &signature).await;
    assert_eq!(status, 200, "{answer}");
    let (_, after_again) =
        s.app.call("GET", &format!("/api/admin/promotions/{promotion_id}"), Some("admin"), None).await;
    assert_eq!(after_again["redemptionCount"], 1, "{after_again}");

    // The renewal (the invoice for the next period) is charged in full and redeems
    // nothing: the first invoice carries the discount, the renewal does not.
    let (_, sub) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    s.advance(sub["stripeSubscriptionId"].as_str().expect("subscribed")).await;
    let (_, invoices) = s.as_partner(&token, "GET", "/api/billing/invoices", None).await;
    let mut amounts: Vec<i64> =
        invoices["items"].as_array().unwrap().iter().map(|i| i["amount"].as_i64().unwrap()).collect();
    amounts.sort_unstable();
    assert_eq!(amounts, vec![288_000, 360_000], "{invoices}");
    let (_, renewed) = s.app.call("GET", &format!("/api/admin/promotions/{promotion_id}"), Some("admin"), None).await;
    assert_eq!((renewed["redemptionCount"].as_i64(), renewed["totalDiscount"].as_i64()), (Some(1), Some(72_000)));

    // The same partner retrying checkout with the code is refused (it is subscribed)
    // before any new session or redemption.
    let (status, body) = s
        .as_partner(&token, "POST", "/api/billing/subscribe", Some(json!({"tierId": "gold", "promotionCode": code})))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("already_subscribed")), "{body}");
    let (_, retried) = s.app.call("GET", &format!("/api/admin/promotions/{promotion_id}"), Some("admin"), None).await;
    assert_eq!(retried["redemptionCount"], 1, "{retried}");

    // An unknown code is refused with the promotions' reasons.
    let (_, other_token) = {
        let (_, t, _) = s.partner("Second Co").await;
        ((), t)
    };
    let (status, body) = s
        .as_partner(
            &other_token,
            "POST",
            "/api/billing/subscribe",
            Some(json!({"tierId": "gold", "promotionCode": "NOSUCHCODE"})),
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid_promotion_code")), "{body}");
    assert_eq!(body["error"]["details"]["reasons"][0]["code"], "not_found");
    let (status, body) = s
        .as_partner(
            &other_token,
            "POST",
            "/api/billing/subscribe",
            Some(json!({"tierId": "gold", "billingPeriod": "yearly", "promotionCode": code})),
        )
        .await;
    assert_eq!(status, 201, "first_month applies to yearly plans too: {body}");
    // A twelfth of 43,200.00 is 3,600.00; 20% of it is 720.00.
    assert_eq!(body["promotion"]["discountAmount"], 72_000);
}

async fn deliver_webhook(s: &StripeApp, payload: &str, signature: &str) -> (u16, Value) {
    let call = devtools::event::HttpCall {
        method: "POST".into(),
        path: "/api/webhooks/stripe".into(),
        query: String::new(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("stripe-signature".into(), signature.to_string()),
        ],
        body: Some(payload.as_bytes().to_vec()),
    };
    let response = s.app.gateway.call(call).await;
    let status = response.status().as_u16();
    let value = match response.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, value)
}

#[tokio::test]
async fn a_fixed_amount_promotion_repeats_on_renewals_as_stripe_allows() {
    let s = StripeApp::start().await;
    let code = format!("FIXED{}", &ulid::Ulid::new().to_string()[20..]);
    let promo = promotion_with_code(
        &s,
        &code,
        json!({"discountType": "fixed_amount", "discountValue": 50_000, "appliesTo": "both"}),
    )
    .await;
    let promotion_id = promo["promotionId"].as_str().unwrap();
    let (_, token, _) = s.partner("Fixed Co").await;
    let (status, session) = s
        .as_partner(&token, "POST", "/api/billing/subscribe", Some(json!({"tierId": "gold", "promotionCode": code})))
        .await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["promotion"]["finalPrice"], 310_000);
    assert_eq!(session["promotion"]["recurringPrice"], 310_000);
    let (_, coupon) = s.stripe_api("GET", &format!("coupons/tierdesk_{promotion_id}_v1"), &[], None).await;
    assert_eq!(coupon["amount_off"], 50_000);
    assert_eq!((coupon["duration"].as_str(), coupon["duration_in_months"].as_i64()), (Some("repeating"), Some(36)));
    let id = session["checkoutSessionId"].as_str().unwrap();
    tierdesk_tests::stripe::post(&s.control(&format!("checkout/sessions/{id}/complete")), json!({})).await;
    s.emulator.flush().await;
    let (_, sub) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    s.advance(sub["stripeSubscriptionId"].as_str().unwrap()).await;
    let (_, invoices) = s.as_partner(&token, "GET", "/api/billing/invoices", None).await;
    let amounts: Vec<i64> =
        invoices["items"].as_array().unwrap().iter().map(|i| i["amount"].as_i64().unwrap()).collect();
    assert_eq!(amounts, vec![310_000, 310_000], "the renewal is discounted too: {invoices}");
}

/// The reason codes of a validate answer or of a refusal's details.
fn reason_codes(v: &Value) -> Vec<String> {
    let reasons = v.get("reasons").or_else(|| v["error"]["details"].get("reasons"));
    reasons
        .and_then(Value::as_array)
        .map(|rs| rs.iter().map(|r| r["code"].as_str().unwrap_or("?").to_string()).collect())
        .unwrap_or_default()
}

/// Validate, checkout (billing subscribe with a `promotionCode`, one code only) and
/// redeem decide through one resolver: on the same codes for the same partner they
/// give the same reasons, or the same price. Two codes of one promotion are one
/// `duplicate_code` (not `not_stackable`, not a 400), and an unknown code does not
/// make a lone promotion "combined".
#[tokio::test]
async fn validate_checkout_and_redeem_agree_on_duplicates_the_combined_count_and_every_rule() {
    let s = StripeApp::start().await;
    let u = &ulid::Ulid::new().to_string()[18..];
    let (one, two, plat, nope) = (format!("DUP1{u}"), format!("DUP2{u}"), format!("PLAT{u}"), format!("NOPE{u}"));
    let solo = promotion_with_code(&s, &one, json!({"stackable": false, "promotionCodes": [one, two]})).await;
    promotion_with_code(&s, &plat, json!({"targetTiers": ["platinum"]})).await;

    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec![&one, &two], vec!["duplicate_code"]),
        (vec![&one, &nope], vec!["not_found"]),
        (vec![&plat], vec!["tier_not_eligible"]),
        (vec![&two], vec![]),
    ];
    for (codes, want) in cases {
        let (_, token, _) = s.partner("Same Answer Co").await;
        let ask = json!({"codes": codes, "tierId": "gold"});
        let (status, validated) = s.as_partner(&token, "POST", "/api/promotions/validate", Some(ask.clone())).await;
        assert_eq!(status, 200, "{validated}");
        assert_eq!(reason_codes(&validated), want, "validate {codes:?}: {validated}");
        assert_eq!(validated["valid"], want.is_empty(), "{validated}");

        if let [code] = codes[..] {
            let (status, session) = s
                .as_partner(
                    &token,
                    "POST",
                    "/api/billing/subscribe",
                    Some(json!({"tierId": "gold", "promotionCode": code})),
                )
                .await;
            if want.is_empty() {
                assert_eq!(status, 201, "{session}");
                assert_eq!(session["promotion"]["promotionId"], solo["promotionId"]);
                assert_eq!(session["promotion"]["finalPrice"], validated["finalPrice"], "{session}");
            } else {
                assert_eq!(
                    (status, session["error"]["code"].as_str()),
                    (422, Some("invalid_promotion_code")),
                    "{session}"
                );
                assert_eq!(reason_codes(&session), want, "checkout {codes:?}: {session}");
            }
        }

        let (status, redeemed) = s.as_partner(&token, "POST", "/api/promotions/redeem", Some(ask)).await;
        if want.is_empty() {
            assert_eq!(status, 201, "{redeemed}");
            assert_eq!(redeemed["finalPrice"], validated["finalPrice"], "{redeemed}");
        } else {
            assert_eq!(status, 422, "redeem {codes:?}: {redeemed}");
            assert_eq!(reason_codes(&redeemed), want, "redeem {codes:?}: {redeemed}");
        }
    }
}

/// `eligibilityRules.segments` names customer segments (seed 002): a customer is in
/// the segment of the tier they are on, a prospect in the segment of the tier
/// bought. Validate, checkout and redeem read the current tier only then, and agree.
#[tokio::test]
async fn a_segment_promotion_is_for_customers_in_that_segment_wherever_they_buy() {
    let s = StripeApp::start().await;
    let u = ulid::Ulid::new().to_string()[18..].to_lowercase();
    let (segment, elsewhere, code) = (format!("seg-{u}"), format!("tier-{u}"), format!("STD{u}").to_uppercase());
    let (status, body) = s
        .app
        .call(
            "POST",
            "/api/admin/segments",
            Some("admin"),
            Some(json!({"segmentId": segment, "name": "Elsewhere", "target": "Partners elsewhere",
                "priceRange": {"min": 0, "max": 900_000}, "sortOrder": 90})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = s
        .app
        .call(
            "POST",
            "/api/admin/tiers",
            Some("admin"),
            Some(json!({"tierId": elsewhere, "name": "Elsewhere", "segment": segment, "tierLevel": 1,
                "sortOrder": 90, "prices": {"monthly": 0, "yearly": 0}, "limits": {"listings": 5},
                "features": [{"featureId": "f1", "name": "F1"}]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, gold) = s.app.call("GET", "/api/admin/tiers/gold", Some("admin"), None).await;
    let gold_segment = gold["segment"].as_str().expect("gold has a segment").to_string();
    assert_ne!(gold_segment, segment);
    promotion_with_code(&s, &code, json!({"eligibilityRules": {"segments": [gold_segment]}})).await;

    // A partner on the other segment's (free) tier buying gold is refused everywhere.
    let (outsider, token, _) = s.partner("Outsider Co").await;
    let (status, moved) = s
        .app
        .call(
            "PATCH",
            &format!("/api/admin/partners/{outsider}/engagement-tier"),
            Some("admin"),
            Some(json!({"tier": elsewhere})),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    let ask = json!({"codes": [code], "tierId": "gold"});
    // Validate is public: the customer is named in the body.
    let mine = json!({"codes": [code], "tierId": "gold", "partnerId": outsider});
    let (_, validated) = s.app.call("POST", "/api/promotions/validate", None, Some(mine)).await;
    assert_eq!(reason_codes(&validated), ["segment_not_eligible"], "{validated}");
    let message = validated["reasons"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("this one is in {segment}")), "{message}");
    let (status, session) = s
        .as_partner(&token, "POST", "/api/billing/subscribe", Some(json!({"tierId": "gold", "promotionCode": code})))
        .await;
    assert_eq!((status, reason_codes(&session)), (422, vec!["segment_not_eligible".to_string()]), "{session}");
    let (status, redeemed) = s.as_partner(&token, "POST", "/api/promotions/redeem", Some(ask.clone())).await;
    assert_eq!((status, reason_codes(&redeemed)), (422, vec!["segment_not_eligible".to_string()]), "{redeemed}");

    // A prospect buying gold is placed by gold's segment; so is a new partner on
    // the free tier of that segment. Both may use it, and checkout prices it.
    let (_, prospect) = s.app.call("POST", "/api/promotions/validate", None, Some(ask.clone())).await;
    assert_eq!(prospect["valid"], true, "{prospect}");
    let (_, free) = s.app.call("GET", "/api/admin/tiers/free", Some("admin"), None).await;
    assert_eq!(free["segment"].as_str(), Some(gold_segment.as_str()), "new partners start in gold's segment");
    let (_, token, _) = s.partner("Insider Co").await;
    let (status, session) = s
        .as_partner(&token, "POST", "/api/billing/subscribe", Some(json!({"tierId": "gold", "promotionCode": code})))
        .await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["promotion"]["finalPrice"], prospect["finalPrice"], "{session}");
}

/// A promotion for new customers bought at checkout: by the time Stripe confirms the
/// payment (`checkout.session.completed` comes after `customer.subscription.created`
/// and `invoice.paid`), the partner is a paying gold customer. The redemption judges
/// the customer as the session's creation did (carried in the session's metadata),
/// so it is recorded, once, and counts against the caps.
#[tokio::test]
async fn a_new_customer_promotion_is_redeemed_when_the_payment_has_already_moved_the_partner() {
    let s = StripeApp::start().await;
    let code = format!("NEW{}", &ulid::Ulid::new().to_string()[18..]);
    let promo =
        promotion_with_code(&s, &code, json!({"eligibilityRules": {"userType": "new"}, "maxRedemptions": 5})).await;
    let promotion_id = promo["promotionId"].as_str().unwrap();
    let (partner_id, token, _) = s.partner("Brand New Co").await;
    let (status, session) = s
        .as_partner(&token, "POST", "/api/billing/subscribe", Some(json!({"tierId": "gold", "promotionCode": code})))
        .await;
    assert_eq!(status, 201, "{session}");
    let id = session["checkoutSessionId"].as_str().unwrap();
    let (status, done) =
        tierdesk_tests::stripe::post(&s.control(&format!("checkout/sessions/{id}/complete")), json!({})).await;
    assert_eq!(status, 200, "{done}");
    s.emulator.flush().await;

    let (_, sub) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!((sub["tierId"].as_str(), sub["status"].as_str()), (Some("gold"), Some("active")), "{sub}");
    let (_, after) = s.app.call("GET", &format!("/api/admin/promotions/{promotion_id}"), Some("admin"), None).await;
    assert_eq!(after["redemptionCount"], 1, "recorded although the partner is no longer new: {after}");
    let (_, mine) = s.as_partner(&token, "GET", "/api/promotions/redemptions", None).await;
    assert_eq!(mine["items"][0]["promotionId"], promotion_id, "{mine}");
    assert_eq!(mine["items"][0]["userId"], partner_id.as_str());
    // Now a paying customer, the same partner is refused the promotion anew.
    let (_, validated) = s
        .app
        .call(
            "POST",
            "/api/promotions/validate",
            None,
            Some(json!({"code": code, "tierId": "platinum", "partnerId": partner_id})),
        )
        .await;
    assert!(reason_codes(&validated).contains(&"user_type_not_eligible".to_string()), "{validated}");
}

#[tokio::test]
async fn an_idempotency_key_is_the_callers_own_among_users_of_one_partner() {
    let s = StripeApp::start().await;
    let (id, token, _) = s.partner("Two Users Co").await;
    let second = devtools::jwt::token_for(
        "partner",
        Some(&id),
        "second-user",
        chrono::Utc::now().timestamp(),
        600,
        s.app.secret(),
    );
    let key = [("idempotency-key", "shared-key")];
    let b = json!({"tierId": "gold"});
    let subscribe = |t: String| {
        let (app, b) = (&s.app, b.clone());
        async move { app.call_with_headers("POST", "/api/billing/subscribe", Some(&t), &key, Some(b)).await }
    };
    let (s1, h1, first) = subscribe(token.clone()).await;
    assert_eq!((s1, h1.contains_key("idempotent-replayed")), (201, false), "{first}");
    let (s2, h2, _) = subscribe(token.clone()).await;
    assert_eq!((s2, h2.contains_key("idempotent-replayed")), (201, true));
    // Another user of the same partner with the same key is not answered from the first's record.
    let (s3, h3, third) = subscribe(second).await;
    assert_eq!((s3, h3.contains_key("idempotent-replayed")), (201, false), "{third}");
}

#[tokio::test]
async fn claims_and_idempotency_records_past_their_ttl_count_as_absent() {
    use tierdesk::idempotency::RequestClaim;
    use tierdesk::store::{keys, EventClaim};
    let app = tierdesk_tests::TestApp::seeded().await;
    let now = chrono::Utc::now().timestamp();
    let expire = |pk: String| {
        let app = &app;
        async move {
            let mut item = app.partition(&pk).await.pop().expect("the record");
            item.insert("ttl".into(), tierdesk_tests::n(now - 60));
            app.put_raw(item).await;
        }
    };
    // An idempotency record: replayed while live, absent once its ttl has passed.
    let store = &app.store;
    assert_eq!(store.claim_request("test#sub", "k", "h", now, 60).await.unwrap(), RequestClaim::Fresh);
    store.finish_request("test#sub", "k", 201, "{}").await.unwrap();
    let replay = store.claim_request("test#sub", "k", "h", now, 60).await.unwrap();
    assert_eq!(replay, RequestClaim::Replay { status: 201, body: "{}".into() });
    expire(keys::idempotency_pk("test#sub", "k")).await;
    assert_eq!(store.claim_request("test#sub", "k", "h", now, 60).await.unwrap(), RequestClaim::Fresh);

    // A Stripe event: a duplicate while its record lives, new again past its ttl.
    let claim = |token: &'static str| store.claim_stripe_event("evt_ttl", "invoice.paid", "hash", token, now, 60);
    assert_eq!(claim("t1").await.unwrap(), EventClaim::Claimed { applied: false, pending_email: None });
    store.complete_stripe_event("evt_ttl", "t1", None, now + 3_600).await.unwrap();
    assert_eq!(claim("t2").await.unwrap(), EventClaim::Duplicate);
    expire(keys::stripe_event_pk("evt_ttl")).await;
    assert_eq!(claim("t3").await.unwrap(), EventClaim::Claimed { applied: false, pending_email: None });
    // The fresh claim holds like any other.
    assert_eq!(claim("t4").await.unwrap(), EventClaim::InProgress);
}

/// A keyed request that fails on our side (here DynamoDB throttles the partner read)
/// releases its key, so the client's retry with the same key runs for real rather
/// than being refused as "in progress" until the claim's lease runs out.
#[tokio::test]
async fn a_keyed_subscribe_that_failed_on_our_side_runs_again_on_retry() {
    let s = StripeApp::start().await;
    let (_, token, _) = s.partner("Retry Co").await;
    let faulty = s.app.with_fault(tierdesk_tests::FaultInjector::throttle("GetItem").times(1)).await;
    let call = devtools::event::HttpCall {
        method: "POST".into(),
        path: "/api/billing/subscribe".into(),
        query: String::new(),
        headers: vec![
            ("authorization".into(), format!("Bearer {token}")),
            ("idempotency-key".into(), "retry-key".into()),
            ("content-type".into(), "application/json".into()),
        ],
        body: Some(json!({"tierId": "gold"}).to_string().into_bytes()),
    };
    let failed = faulty.call(call).await;
    assert!(failed.status().is_server_error(), "{:?}", failed.body());
    let (status, retried) = s
        .as_partner_keyed(&token, "POST", "/api/billing/subscribe", Some(json!({"tierId": "gold"})), "retry-key")
        .await;
    assert_eq!(status, 201, "{retried}");
    assert!(retried["checkoutSessionId"].is_string(), "{retried}");
}

/// docs/billing.md "Statements": the month's usage and invoices, the same for the
/// partner and for staff, as JSON, CSV and PDF.
#[tokio::test]
async fn a_monthly_statement_has_the_usage_and_the_months_invoices_as_json_csv_and_pdf() {
    let s = StripeApp::start().await;
    let (partner_id, token, _) = s.partner("Statement Co").await;
    s.subscribe(&token, "gold", "monthly").await;
    let ask = json!({"metric": "listings", "count": 3, "idempotencyKey": "statement-1"});
    let (status, tracked) = s.as_partner(&token, "POST", "/api/usage/track", Some(ask)).await;
    assert_eq!(status, 200, "{tracked}");

    let (status, own) = s.as_partner(&token, "GET", "/api/billing/statement", None).await;
    assert_eq!(status, 200, "{own}");
    let invoices = own["invoices"].as_array().unwrap();
    assert_eq!(invoices.len(), 1, "the subscription's first invoice: {own}");
    assert_eq!(invoices[0]["status"], "paid");
    assert_eq!(own["totals"]["paid"], invoices[0]["amountPaid"]);
    assert_eq!(own["totals"]["billed"], invoices[0]["amount"]);
    assert_eq!(own["totals"]["outstanding"], 0);
    let listings = own["usage"]["metrics"].as_array().unwrap().iter().find(|m| m["metric"] == "listings").unwrap();
    assert_eq!(listings["used"], 3);
    assert_eq!(own["tierId"], "gold");

    let staff_path = format!("/api/admin/partners/{partner_id}/statement");
    let (status, staff) = s.app.call("GET", &staff_path, Some("sales_manager"), None).await;
    assert_eq!((status, &staff), (200, &own));
    let (status, headers, csv) = s.app.call_text("GET", &format!("{staff_path}?format=csv"), "admin").await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let rows = tierdesk::http::csv::parse(&csv).unwrap();
    assert_eq!(rows[0][0], "section");
    assert!(rows.iter().any(|r| r[0] == "usage" && r[1] == "listings" && r[3] == "3"), "{csv}");
    let total = rows.iter().find(|r| r[0] == "total").unwrap();
    assert_eq!(total[6], own["totals"]["paid"].to_string());
    let (status, headers, pdf) = s.app.call_bytes("GET", &format!("{staff_path}?format=pdf"), "admin").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/pdf");
    assert!(pdf.starts_with(b"%PDF-"), "a PDF");
    assert!(String::from_utf8_lossy(&pdf).contains("Statement for"), "its text is in the page stream");

    // Last month: nothing invoiced yet.
    let month = own["month"].as_str().unwrap().to_string();
    let earlier = tierdesk::domain::analytics::month_minus(&month, 1);
    let (_, before) = s.as_partner(&token, "GET", &format!("/api/billing/statement?month={earlier}"), None).await;
    assert_eq!((before["invoices"].as_array().map(Vec::len), before["totals"]["billed"].as_i64()), (Some(0), Some(0)));

    // Roles and bad input.
    s.app.assert_access("GET", &staff_path, Some("sales_rep"), None, false).await;
    s.app.assert_access("GET", &staff_path, Some("partner"), None, false).await;
    s.app.assert_access("GET", &staff_path, None, None, false).await;
    let (status, body) = s.app.call("GET", "/api/billing/statement", Some("admin"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("not_a_partner")), "{body}");
    let (status, _) = s.app.call("GET", "/api/admin/partners/prt_missing/statement", Some("admin"), None).await;
    assert_eq!(status, 404);
    for (query, field) in
        [("month=2026-13", "month"), ("month=2999-01", "month"), ("month=26-1", "month"), ("format=xml", "format")]
    {
        let (status, body) = s.as_partner(&token, "GET", &format!("/api/billing/statement?{query}"), None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"]["details"]["fields"][field].is_string(), "{query}: {body}");
    }
}
