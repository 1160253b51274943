//! Partner self-service completed (seed 003 §3.3, issue 22 §2): the payment method
//! updated through Stripe's hosted setup page and recorded by the webhooks, and the
//! upgrade flow's preview, end to end against the Stripe emulator.

use devtools::event::HttpCall;
use serde_json::{json, Value};
use tierdesk::stripe_adapter::config::LOCAL_WEBHOOK_SECRET;
use tierdesk::stripe_adapter::webhook::sign;
use tierdesk_tests::stripe::{get, post, StripeApp};

/// Starts a payment-method update and saves `card` on the emulator's setup page.
async fn save_card(s: &StripeApp, token: &str, card: Value) -> Value {
    let (status, session) = s.as_partner(token, "POST", "/api/billing/payment-method", None).await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["mode"], "setup");
    let id = session["checkoutSessionId"].as_str().expect("session id");
    let (status, done) = post(&s.control(&format!("checkout/sessions/{id}/complete")), json!({ "card": card })).await;
    assert_eq!(status, 200, "{done}");
    s.emulator.flush().await;
    session
}

async fn stripe_get(s: &StripeApp, path: &str) -> Value {
    let (status, body) = s.stripe_api("GET", path, &[], None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The partner's audit entries written by webhook deliveries that recorded a card.
async fn card_audits(s: &StripeApp, partner_id: &str) -> usize {
    s.app
        .items()
        .await
        .into_iter()
        .filter(|i| i["PK"].as_str() == Some(&format!("AUDIT#partner#{partner_id}")))
        .filter(|a| a["actor"].as_str().is_some_and(|x| x.starts_with("stripe:evt_")))
        .filter(|a| a.to_string().contains("paymentMethod"))
        .count()
}

async fn deliver(s: &StripeApp, payload: &str, t: i64) -> (u16, Value) {
    let call = HttpCall {
        method: "POST".into(),
        path: "/api/webhooks/stripe".into(),
        query: String::new(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("stripe-signature".into(), sign(payload, LOCAL_WEBHOOK_SECRET, t)),
        ],
        body: Some(payload.as_bytes().to_vec()),
    };
    let response = s.app.gateway.call(call).await;
    let status = response.status().as_u16();
    let body = match response.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, body)
}

#[tokio::test]
async fn a_new_card_saved_on_the_setup_page_becomes_the_default_and_is_recorded_once() {
    let s = StripeApp::start().await;
    let (partner_id, token, _) = s.partner("Card Co").await;
    let sub = s.subscribe(&token, "gold", "monthly").await;
    let (_, before) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert!(before["paymentMethod"].is_null(), "{before}");

    let session = save_card(&s, &token, json!({"brand": "mastercard", "last4": "4444"})).await;
    assert_eq!(session["stripeSubscriptionId"], sub.as_str());
    assert!(session["url"].as_str().is_some_and(|u| u.contains("/checkout/cs_")), "{session}");

    let (_, view) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(view["paymentMethod"], json!({"brand": "mastercard", "last4": "4444"}), "{view}");
    let (_, staff_view) = s.app.call("GET", &format!("/api/admin/partners/{partner_id}"), Some("admin"), None).await;
    assert_eq!(staff_view["paymentMethod"]["last4"], "4444", "{staff_view}");
    assert!(staff_view.to_string().find("pm_").is_none(), "no card id or number is stored: {staff_view}");

    // Stripe has the card as the default of the customer and of the subscription.
    let customer = view["stripeCustomerId"].as_str().unwrap();
    let cus = stripe_get(&s, &format!("customers/{customer}")).await;
    let pm = cus["invoice_settings"]["default_payment_method"].as_str().expect("a default card").to_string();
    let stripe_sub = stripe_get(&s, &format!("subscriptions/{sub}")).await;
    assert_eq!(stripe_sub["default_payment_method"], pm.as_str());
    let card = stripe_get(&s, &format!("payment_methods/{pm}")).await;
    assert_eq!((card["card"]["brand"].as_str(), card["card"]["last4"].as_str()), (Some("mastercard"), Some("4444")));

    // The events Stripe sends for it, all acknowledged; one wrote the card.
    let events = s.events().await;
    for kind in ["payment_method.attached", "setup_intent.succeeded", "checkout.session.completed", "customer.updated"]
    {
        let e = events.iter().rev().find(|e| e["type"] == kind).unwrap_or_else(|| panic!("no {kind}: {events:?}"));
        assert_eq!(e["attempts"].as_array().and_then(|a| a.last()).map(|a| &a["status"]), Some(&json!(200)), "{e}");
    }
    assert_eq!(card_audits(&s, &partner_id).await, 1, "recorded once, by the first of the two events");

    // The same completion again under ten new event ids, at once: nothing changes.
    let completed = events.iter().rev().find(|e| e["type"] == "checkout.session.completed").unwrap()["event"].clone();
    let (_, p_before) = s.app.call("GET", &format!("/api/admin/partners/{partner_id}"), Some("admin"), None).await;
    let t = s.emulator.now().max(chrono::Utc::now().timestamp());
    let deliveries = (0..10).map(|i| {
        let mut e = completed.clone();
        e["id"] = json!(format!("evt_again{i}{}", ulid::Ulid::new().to_string().to_lowercase()));
        let payload = e.to_string();
        let s = &s;
        async move { deliver(s, &payload, t).await }
    });
    for (status, answer) in futures::future::join_all(deliveries).await {
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["action"], "unchanged", "{answer}");
    }
    let (_, p_after) = s.app.call("GET", &format!("/api/admin/partners/{partner_id}"), Some("admin"), None).await;
    assert_eq!(p_after["version"], p_before["version"], "no write");
    assert_eq!(card_audits(&s, &partner_id).await, 1);

    // A second update replaces the card.
    save_card(&s, &token, json!({"brand": "amex", "last4": "0005"})).await;
    let (_, again) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(again["paymentMethod"], json!({"brand": "amex", "last4": "0005"}));
    assert_eq!(card_audits(&s, &partner_id).await, 2);
}

#[tokio::test]
async fn a_partner_in_dunning_who_saves_a_working_card_pays_on_the_next_attempt() {
    let s = StripeApp::start().await;
    let (_, token, _) = s.partner("Declined Co").await;
    let sub = s.subscribe(&token, "gold", "monthly").await;
    let (_, view) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    s.card_fails(view["stripeCustomerId"].as_str().unwrap(), true).await;
    let advanced = s.advance(&sub).await;
    let invoice = advanced["latest_invoice"].as_str().expect("renewal invoice").to_string();
    let (_, due) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!((due["status"].as_str(), due["paymentFailures"].as_u64()), (Some("past_due"), Some(1)));

    save_card(&s, &token, json!({"brand": "visa", "last4": "1881"})).await;
    s.retry_invoice(&invoice).await;
    let (_, paid) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(paid["status"], "active", "{paid}");
    assert_eq!(paid["paymentFailures"], 0);
    assert_eq!(paid["paymentMethod"]["last4"], "1881");
}

#[tokio::test]
async fn a_free_partner_can_save_a_card_before_upgrading() {
    let s = StripeApp::start().await;
    let (_, token, _) = s.partner("Free Card Co").await;
    let session = save_card(&s, &token, json!(null)).await;
    assert!(session["stripeSubscriptionId"].is_null(), "{session}");
    let (_, view) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert!(view["stripeCustomerId"].as_str().is_some_and(|c| c.starts_with("cus_")), "{view}");
    assert_eq!(view["paymentMethod"], json!({"brand": "visa", "last4": "4242"}));
    assert_eq!(view["tierId"], "free");
}

#[tokio::test]
async fn the_upgrade_preview_names_what_the_upgrade_then_charges_to_the_cent() {
    let s = StripeApp::start().await;
    let (partner_id, token, _) = s.partner("Preview Co").await;
    let sub = s.subscribe(&token, "gold", "monthly").await;
    // Part-way through the period, at a second that does not divide evenly.
    let stripe_sub = stripe_get(&s, &format!("subscriptions/{sub}")).await;
    let start = stripe_sub["items"]["data"][0]["current_period_start"].as_i64().unwrap();
    let end = stripe_sub["items"]["data"][0]["current_period_end"].as_i64().unwrap();
    let at = start + 11 * 86_400 + 12_345;
    s.emulator.set_now(at);

    let before = s.app.snapshot().await;
    let (status, preview) =
        s.as_partner(&token, "POST", "/api/billing/upgrade/preview", Some(json!({"tierId": "platinum"}))).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(s.app.snapshot().await, before, "a preview writes nothing");
    assert_eq!(preview["partnerId"], partner_id.as_str());
    assert_eq!(preview["current"]["tierId"], "gold");
    assert_eq!(preview["current"]["price"], 360_000);
    assert_eq!(preview["target"]["tierId"], "platinum");
    assert_eq!(preview["target"]["price"], 600_000);
    assert_eq!(preview["target"]["commitmentMonths"], 12);
    assert_eq!(preview["priceDifference"], 240_000);
    assert!(
        !preview["featuresGained"].as_array().unwrap().is_empty()
            || !preview["limitsRaised"].as_array().unwrap().is_empty(),
        "{preview}"
    );
    assert_eq!(preview["effective"], "immediately");
    let share = |amount: i128| -> i64 {
        let (num, den) = (amount * i128::from(end - at), i128::from(end - start));
        ((2 * num + den) / (2 * den)) as i64
    };
    assert_eq!(preview["proration"]["credit"], -share(360_000));
    assert_eq!(preview["proration"]["charge"], share(600_000));
    assert_eq!(preview["proration"]["rounding"], "line_half_up");
    assert_eq!(preview["nextInvoice"]["amount"], 600_000);
    let end_day = chrono::DateTime::from_timestamp(end, 0).unwrap().date_naive().to_string();
    assert_eq!(preview["nextInvoice"]["date"], end_day.as_str());
    let today = chrono::DateTime::from_timestamp(at, 0).unwrap().date_naive().to_string();
    assert_eq!(preview["effectiveDate"], today.as_str());

    let (status, up) = s.as_partner(&token, "PUT", "/api/billing/upgrade", Some(json!({"tierId": "platinum"}))).await;
    assert_eq!(status, 200, "{up}");
    assert_eq!(up["prorationInvoice"]["amountDue"], preview["proration"]["amountDueNow"], "{up} vs {preview}");
    s.emulator.flush().await;

    // Monthly → yearly on the new tier: the whole yearly price less the unused month.
    let (status, yearly) = s
        .as_partner(
            &token,
            "POST",
            "/api/billing/upgrade/preview",
            Some(json!({"tierId": "platinum", "billingPeriod": "yearly"})),
        )
        .await;
    assert_eq!(status, 200, "{yearly}");
    assert_eq!(yearly["featuresGained"], json!([]));
    assert_eq!(yearly["proration"]["charge"], yearly["target"]["price"]);
    let next = chrono::DateTime::from_timestamp(at, 0)
        .unwrap()
        .checked_add_months(chrono::Months::new(12))
        .unwrap()
        .date_naive()
        .to_string();
    assert_eq!(yearly["nextInvoice"]["date"], next.as_str());
}

#[tokio::test]
async fn self_service_routes_refuse_bad_input_wrong_targets_and_staff() {
    let s = StripeApp::start().await;
    let (_, free_token, _) = s.partner("Free Co").await;
    let (_, token, _) = s.partner("Platinum Co").await;
    s.subscribe(&token, "platinum", "monthly").await;

    // A free partner has nothing to preview.
    let (status, e) =
        s.as_partner(&free_token, "POST", "/api/billing/upgrade/preview", Some(json!({"tierId": "gold"}))).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("no_stripe_subscription")), "{e}");
    // Downwards is not an upgrade.
    let (status, e) =
        s.as_partner(&token, "POST", "/api/billing/upgrade/preview", Some(json!({"tierId": "gold"}))).await;
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("wrong_direction")), "{e}");
    for (body, field) in [
        (json!({"tierId": "nope"}), "tierId"),
        (json!({"tierId": "platinum", "billingPeriod": "weekly"}), "billingPeriod"),
        (json!({"tierId": "platinum", "price": 1}), "price"),
        (json!({}), "tierId"),
    ] {
        let (status, e) = s.as_partner(&token, "POST", "/api/billing/upgrade/preview", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {e}");
        assert!(e["error"]["details"]["fields"][field].is_string(), "{body}: {e}");
    }
    for (body, field) in [
        (json!({"successUrl": "javascript:alert(1)"}), "successUrl"),
        (json!({"cancelUrl": 7}), "cancelUrl"),
        (json!({"customer": "cus_someone_else"}), "customer"),
    ] {
        let (status, e) = s.as_partner(&token, "POST", "/api/billing/payment-method", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {e}");
        assert!(e["error"]["details"]["fields"][field].is_string(), "{body}: {e}");
    }

    // Staff have no billing of their own; nobody without a token gets in.
    for role in ["sales_rep", "sales_manager", "admin"] {
        for (path, body) in
            [("/api/billing/payment-method", json!({})), ("/api/billing/upgrade/preview", json!({"tierId": "gold"}))]
        {
            let (status, e) = s.app.call("POST", path, Some(role), Some(body)).await;
            assert_eq!((status, e["error"]["code"].as_str()), (403, Some("not_a_partner")), "{role} {path}: {e}");
        }
    }
    for path in ["/api/billing/payment-method", "/api/billing/upgrade/preview"] {
        let (status, _) = s.app.call("POST", path, None, Some(json!({"tierId": "gold"}))).await;
        assert_eq!(status, 401, "{path}");
    }
    // The emulator serves the hosted setup page.
    let (_, session) = s.as_partner(&token, "POST", "/api/billing/payment-method", None).await;
    let (status, _) = get(session["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
}
