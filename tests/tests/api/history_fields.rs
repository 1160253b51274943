//! Issue 22 §4: the history's `amountPaid` and `paymentMethod` where a Stripe
//! payment caused a transition (end to end through the emulator), the partner's
//! current PCR multiplier, the tier-change preview's PCR impact (seed 003's "+4
//! points"), and the outbox event as PCR scoring receives it: the stream pipe's
//! input shape (`events/pipe-tier-transition.json`) decoded into the documented
//! `TierTransition`, for the fixture and for a transition just written.

use serde_json::{json, Value};
use tierdesk::store::outbox::{dynamodb_json, transition_from_pipe_event};
use tierdesk_tests::stripe::{post, StripeApp};
use tierdesk_tests::{read_repo_file, TestApp};

fn pipe_fixture() -> Value {
    serde_json::from_str(&read_repo_file("events/pipe-tier-transition.json")).expect("fixture parses")
}

#[test]
fn the_pipe_fixture_decodes_into_the_documented_event() {
    let t = transition_from_pipe_event(&pipe_fixture()).expect("decodes");
    assert_eq!((t.transition_id.as_str(), t.to_tier.as_str()), ("01jjx6c9w2m4k8r5t7v9y1a3b5", "gold"));
    assert_eq!((t.metadata.previous_multiplier, t.metadata.new_multiplier), (Some(1.5), 2.5));
    assert_eq!(t.amount_paid, Some(360_000));
    let card = t.payment_method.as_ref().expect("card");
    assert_eq!((card.brand.as_str(), card.last4.as_str()), ("visa", "4242"));
    // The record as the API serves it: the key attributes are not part of it.
    let v = serde_json::to_value(&t).unwrap();
    assert!(v.get("PK").is_none() && v.get("GSI1PK").is_none(), "{v}");
    assert_eq!(v["paymentMethod"], json!({"brand": "visa", "last4": "4242"}));
    // The bare stream record (the pipe's `detail`) decodes the same.
    assert_eq!(transition_from_pipe_event(&pipe_fixture()["detail"]).unwrap(), t);
    // What the pipe's filter would not pass is refused.
    let mut modify = pipe_fixture();
    modify["detail"]["eventName"] = json!("MODIFY");
    assert!(transition_from_pipe_event(&modify).is_err());
    let mut other = pipe_fixture();
    other["detail"]["dynamodb"]["Keys"]["SK"] = json!({"S": "NOTE#2026"});
    assert!(transition_from_pipe_event(&other).is_err());
    let mut foreign = pipe_fixture();
    foreign["source"] = json!("someone.else");
    assert!(transition_from_pipe_event(&foreign).is_err());
}

/// The stored item of a transition wrapped as the pipe delivers it.
async fn as_pipe_event(app: &TestApp, partner_id: &str, transition_id: &str) -> Value {
    let items = app.partition(&format!("PARTNER#{partner_id}")).await;
    let item = items
        .iter()
        .find(|i| i.get("transitionId").and_then(|v| v.as_s().ok()).map(String::as_str) == Some(transition_id))
        .expect("the transition item");
    let mut event = pipe_fixture();
    event["detail"]["dynamodb"]["Keys"] =
        json!({"PK": dynamodb_json(item).unwrap()["PK"], "SK": dynamodb_json(item).unwrap()["SK"]});
    event["detail"]["dynamodb"]["NewImage"] = dynamodb_json(item).unwrap();
    event
}

#[tokio::test]
async fn a_checkout_payment_is_on_the_upgrade_in_history_and_in_the_pcr_event() {
    let s = StripeApp::start().await;
    let (id, token, _) = s.partner("Paying Card Co").await;
    let (status, session) = s
        .as_partner(
            &token,
            "POST",
            "/api/billing/subscribe",
            Some(json!({"tierId": "gold", "billingPeriod": "monthly"})),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    let customer = session["stripeCustomerId"].as_str().unwrap();
    let (status, card) =
        post(&s.control(&format!("customers/{customer}/card")), json!({"brand": "mastercard", "last4": "4444"})).await;
    assert_eq!(status, 200, "{card}");
    let cs = session["checkoutSessionId"].as_str().unwrap();
    let (status, done) = post(&s.control(&format!("checkout/sessions/{cs}/complete")), json!({})).await;
    assert_eq!(status, 200, "{done}");
    s.emulator.flush().await;

    let app = &s.app;
    let (status, history) = app.call("GET", &format!("/api/admin/partners/{id}/history"), Some("admin"), None).await;
    assert_eq!(status, 200, "{history}");
    let items = history["items"].as_array().unwrap();
    let upgrade = items.iter().find(|t| t["event"] == "upgrade").unwrap_or_else(|| panic!("{history}"));
    assert_eq!(upgrade["amountPaid"], 360_000, "{upgrade}");
    // Brand and last four only, never more.
    assert_eq!(upgrade["paymentMethod"], json!({"brand": "mastercard", "last4": "4444"}), "{upgrade}");
    let signup = items.iter().find(|t| t["event"] == "signup").unwrap();
    assert!(signup["amountPaid"].is_null() && signup["paymentMethod"].is_null(), "{signup}");
    let stored = app.snapshot().await.join("\n");
    assert!(!stored.contains("exp_month") && !stored.contains("fingerprint"), "no other card data is stored");

    // The partner record carries its current multiplier.
    let (_, partner) = app.call("GET", &format!("/api/admin/partners/{id}"), Some("admin"), None).await;
    assert_eq!((partner["engagementTier"].as_str(), partner["pcrMultiplier"].as_f64()), (Some("gold"), Some(2.5)));

    // The same transition as the pipe hands it to PCR scoring.
    let transition_id = upgrade["transitionId"].as_str().unwrap();
    let event = as_pipe_event(app, &id, transition_id).await;
    let decoded = transition_from_pipe_event(&event).expect("the stored item decodes");
    assert_eq!(&serde_json::to_value(&decoded).unwrap(), upgrade, "the PCR event is the history record");
    assert_eq!((decoded.metadata.new_multiplier, decoded.amount_paid), (2.5, Some(360_000)));
}

#[tokio::test]
async fn the_preview_shows_the_pcr_impact_and_the_record_its_multiplier() {
    let app = TestApp::seeded().await;
    let created = app.create_partner("Preview Pcr Co").await;
    let id = created["partnerId"].as_str().unwrap().to_string();
    assert_eq!(created["pcrMultiplier"], 1.5, "{created}");
    let path = format!("/api/admin/partners/{id}/engagement-tier");
    let before = app.snapshot().await;
    let (status, gold) =
        app.call("PATCH", &format!("{path}?dryRun=true"), Some("sales_manager"), Some(json!({"tier": "gold"}))).await;
    assert_eq!(status, 200, "{gold}");
    assert_eq!(
        (gold["currentTier"]["pcrMultiplier"].as_f64(), gold["newTier"]["pcrMultiplier"].as_f64()),
        (Some(1.5), Some(2.5))
    );
    assert_eq!(gold["pcrImpact"], json!({"referenceBaseScore": 80, "pointsChange": 4.0}), "seed 003's +4 points");
    let (status, platinum) = app
        .call("PATCH", &format!("{path}?dryRun=true"), Some("sales_manager"), Some(json!({"tier": "platinum"})))
        .await;
    assert_eq!(status, 200, "{platinum}");
    assert_eq!(platinum["pcrImpact"]["pointsChange"], 14.0, "seed 003's +14 points");
    assert_eq!(app.snapshot().await, before, "a preview writes nothing");
    // Bad input on the preview is still a 400 naming the field.
    let (status, body) =
        app.call("PATCH", &format!("{path}?dryRun=maybe"), Some("sales_manager"), Some(json!({"tier": "gold"}))).await;
    assert!(status == 400 && body["error"]["details"]["fields"]["dryRun"].is_string(), "{body}");

    let (status, after) = app.call("PATCH", &path, Some("sales_manager"), Some(json!({"tier": "gold"}))).await;
    assert_eq!((status, after["pcrMultiplier"].as_f64()), (200, Some(2.5)), "{after}");
    // A staff change is not a payment: no amount, no card.
    let (_, history) = app.call("GET", &format!("/api/admin/partners/{id}/history"), Some("admin"), None).await;
    let upgrade = &history["items"][0];
    assert_eq!(upgrade["event"], "upgrade");
    assert!(upgrade["amountPaid"].is_null() && upgrade["paymentMethod"].is_null(), "{upgrade}");
    // And the stored item decodes from the stream shape too.
    let event = as_pipe_event(&app, &id, upgrade["transitionId"].as_str().unwrap()).await;
    assert_eq!(&serde_json::to_value(transition_from_pipe_event(&event).unwrap()).unwrap(), upgrade);
}
