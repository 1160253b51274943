//! Usage tracking and feature gating through the gateway: the hard limit under
//! concurrency, idempotency keys, month rollover on an injected clock, a feature
//! check per tier, trials, overage in cents, who may call, and bad input.

use chrono::{DateTime, Utc};
use devtools::gateway::{self, Gateway, Handler};
use devtools::{routes, seed};
use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::Arc;
use tierdesk::clock::FixedClock;
use tierdesk::store::UsageStore;
use tierdesk::{Clock, Config, SystemClock};
use tierdesk_tests::{read_repo_file, s, TestApp};

const TRACK: &str = "/api/usage/track";
const CURRENT: &str = "/api/usage/current";
const LIMITS: &str = "/api/usage/limits";
const AVAILABLE: &str = "/api/features/available";
const CHECK: &str = "/api/features/check";

fn instant(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn partner(app: &TestApp, name: &str) -> (String, String) {
    let p = app.create_partner(name).await;
    let id = p["partnerId"].as_str().unwrap().to_string();
    let token = app.partner_token(&id);
    (id, token)
}

async fn move_to(app: &TestApp, id: &str, body: Value) -> Value {
    let path = format!("/api/admin/partners/{id}/engagement-tier");
    let (status, moved) = app.call("PATCH", &path, Some("sales_manager"), Some(body)).await;
    assert_eq!(status, 200, "{moved}");
    moved
}

fn track(metric: &str, count: u64, key: &str) -> Value {
    json!({"metric": metric, "count": count, "idempotencyKey": key})
}

fn metric<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["metrics"].as_array().unwrap().iter().find(|m| m["metric"] == name).unwrap()
}

/// What an accepted quote writes (the quotes issue's contract): `customLimits` on
/// the partner record.
async fn set_custom_limits(app: &TestApp, id: &str, limits: &[(&str, i64)]) {
    let map = limits
        .iter()
        .map(|(k, v)| (k.to_string(), aws_sdk_dynamodb::types::AttributeValue::N(v.to_string())))
        .collect();
    app.store
        .client()
        .update_item()
        .table_name(&app.table)
        .key("PK", s(&format!("PARTNER#{id}")))
        .key("SK", s("META"))
        .update_expression("SET customLimits = :m")
        .expression_attribute_values(":m", aws_sdk_dynamodb::types::AttributeValue::M(map))
        .send()
        .await
        .unwrap();
}

/// The same app's routes with the usage function on `clock`.
async fn gateway_at(app: &TestApp, clock: Arc<FixedClock>) -> Arc<Gateway> {
    gateway_with(app, clock, app.config.clone()).await
}

/// The same app's routes with a usage function instance of its own, on `clock` and
/// `config`.
async fn gateway_with(app: &TestApp, clock: Arc<dyn Clock>, config: Config) -> Arc<Gateway> {
    let mut handlers = gateway::handlers_on(app.store.clone(), &app.config).await;
    let usage_app = Arc::new(usage::Usage::new(tierdesk::app::App::new(app.store.clone(), config).with_clock(clock)));
    let handler: Handler = Arc::new(move |req| {
        let a = usage_app.clone();
        Box::pin(async move { usage::handle(&a, req).await })
    });
    handlers.insert("UsageFunction".into(), handler);
    let routes = routes::from_template(&read_repo_file("template.yaml")).unwrap();
    Arc::new(Gateway::new(routes, &handlers, app.secret().to_string()).unwrap())
}

#[tokio::test]
async fn usage_hard_limit_holds_under_500_concurrent_track_calls() {
    let app = TestApp::seeded().await;
    let (id, token) = partner(&app, "Concurrent Co").await;
    // Free tier's aiResponses is hard (no overage price); the quote's limit is 100.
    set_custom_limits(&app, &id, &[("aiResponses", 100)]).await;
    let results: Vec<(u16, Value)> = futures::stream::iter(0..500)
        .map(|i| {
            let (app, token) = (&app, &token);
            async move {
                let ask = track("aiResponses", 1, &format!("c{i}"));
                tierdesk_tests::retrying_conflicts(|| app.call_with_token("POST", TRACK, token, Some(ask.clone())))
                    .await
            }
        })
        // 100 in flight at a time: every wave races for the same counter, and
        // DynamoDB Local (whose consistent reads wait on item locks) stays
        // inside its lock timeout on a loaded 2-core CI machine.
        .buffer_unordered(100)
        .collect()
        .await;
    let accepted = results.iter().filter(|(s, _)| *s == 200).count();
    let refused = results.iter().filter(|(s, b)| *s == 409 && b["error"]["code"] == "limit_exceeded").count();
    let other: Vec<_> = results.iter().filter(|(s, _)| *s != 200 && *s != 409).collect();
    assert!(other.is_empty(), "unexpected answers: {other:?}");
    assert_eq!(accepted, 100, "exactly the limit is accepted");
    assert_eq!(refused, 400);
    let (_, current) = app.call_with_token("GET", CURRENT, &token, None).await;
    let ai = metric(&current, "aiResponses");
    assert_eq!((ai["used"].as_u64(), ai["limit"].as_u64(), ai["remaining"].as_u64()), (Some(100), Some(100), Some(0)));
    // The refusal names the limit and what was asked.
    let (status, body) = app.call_with_token("POST", TRACK, &token, Some(track("aiResponses", 1, "late"))).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["details"]["limit"], 100);
    assert_eq!(body["error"]["details"]["metric"], "aiResponses");
    let stats = app.store.usage_stats(current["period"].as_str().unwrap()).await.unwrap();
    assert_eq!(stats["free#aiResponses"].users, 1, "one partner used it, however many calls");
    assert_eq!(stats["free#aiResponses"].total, 100);
    assert_eq!(stats["free#aiResponses"].near_limit, 1, "crossed 80% once");
}

#[tokio::test]
async fn usage_replays_of_an_idempotency_key_count_once() {
    let app = TestApp::seeded().await;
    let (_, token) = partner(&app, "Replay Co").await;
    let (status, first) =
        app.call_with_token("POST", TRACK, &token, Some(track("emailsProcessed", 7, "batch-1"))).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["used"].as_u64(), first["limit"].as_u64(), first["remaining"].as_u64()),
        (Some(7), Some(100), Some(93))
    );
    assert_eq!(first["replayed"], false);
    let replays: Vec<(u16, Value)> = futures::stream::iter(0..20)
        .map(|_| app.call_with_token("POST", TRACK, &token, Some(track("emailsProcessed", 7, "batch-1"))))
        .buffer_unordered(20)
        .collect()
        .await;
    for (status, body) in &replays {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["replayed"], true);
        assert_eq!(body["used"], 7);
    }
    // Concurrent first deliveries of one key: one counts.
    let racing: Vec<(u16, Value)> = futures::stream::iter(0..20)
        .map(|_| app.call_with_token("POST", TRACK, &token, Some(track("emailsProcessed", 5, "batch-2"))))
        .buffer_unordered(20)
        .collect()
        .await;
    assert_eq!(racing.iter().filter(|(_, b)| b["replayed"] == false).count(), 1, "{racing:?}");
    let (_, current) = app.call_with_token("GET", CURRENT, &token, None).await;
    assert_eq!(metric(&current, "emailsProcessed")["used"], 12);
}

#[tokio::test]
async fn usage_counters_roll_over_at_the_month_end_on_an_injected_clock() {
    let app = TestApp::seeded().await;
    let (id, token) = partner(&app, "Rollover Co").await;
    let clock = Arc::new(FixedClock::new(instant("2026-03-31T23:59:30Z")));
    let gw = gateway_at(&app, clock.clone()).await;
    for i in 0..3 {
        let (status, body) =
            seed::call_json(&gw, "POST", TRACK, Some(&token), Some(track("leads", 3, &format!("m{i}")))).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = seed::call_json(&gw, "POST", TRACK, Some(&token), Some(track("leads", 2, "m3"))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("limit_exceeded")), "free leads: 9 of 10");
    let (_, march) = seed::call_json(&gw, "GET", CURRENT, Some(&token), None).await;
    assert_eq!((march["period"].as_str(), metric(&march, "leads")["used"].as_u64()), (Some("2026-03"), Some(9)));

    clock.set(instant("2026-04-01T00:00:01Z"));
    let (_, april) = seed::call_json(&gw, "GET", CURRENT, Some(&token), None).await;
    assert_eq!((april["period"].as_str(), metric(&april, "leads")["used"].as_u64()), (Some("2026-04"), Some(0)));
    let (status, body) = seed::call_json(&gw, "POST", TRACK, Some(&token), Some(track("leads", 2, "a0"))).await;
    assert_eq!((status, body["used"].as_u64()), (200, Some(2)), "{body}");
    // The same key in the new month is still the same delivery.
    let (_, again) = seed::call_json(&gw, "POST", TRACK, Some(&token), Some(track("leads", 3, "m0"))).await;
    assert_eq!(again["replayed"], true, "{again}");
    let months: Vec<String> = app
        .partition(&format!("PARTNER#{id}"))
        .await
        .iter()
        .filter_map(|i| i.get("SK").and_then(|v| v.as_s().ok()).filter(|s| s.starts_with("USAGE#")).cloned())
        .collect();
    assert_eq!(months, vec!["USAGE#2026-03", "USAGE#2026-04"], "March stays as history");
}

#[tokio::test]
async fn features_check_for_each_tier() {
    let app = TestApp::seeded().await;
    let (_, free) = partner(&app, "Free Co").await;
    let (gold_id, gold) = partner(&app, "Gold Co").await;
    let (platinum_id, platinum) = partner(&app, "Platinum Co").await;
    move_to(&app, &gold_id, json!({"tier": "gold"})).await;
    move_to(&app, &platinum_id, json!({"tier": "platinum"})).await;
    let expect = [
        (&free, "free", [("basic_profile", true), ("pcr_boost", false), ("priority_placement", false)]),
        (&gold, "gold", [("basic_profile", true), ("pcr_boost", true), ("priority_placement", false)]),
        (&platinum, "platinum", [("basic_profile", true), ("pcr_boost", true), ("priority_placement", true)]),
    ];
    for (token, tier, checks) in expect {
        for (feature, allowed) in checks {
            let (status, body) = app.call_with_token("POST", CHECK, token, Some(json!({"feature": feature}))).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(
                (body["allowed"].as_bool(), body["tierId"].as_str()),
                (Some(allowed), Some(tier)),
                "{tier} {feature}: {body}"
            );
            assert_eq!(body["reason"], if allowed { "included" } else { "not_in_tier" });
        }
        let (_, available) = app.call_with_token("GET", AVAILABLE, token, None).await;
        let ids: Vec<&str> =
            available["features"].as_array().unwrap().iter().map(|f| f["featureId"].as_str().unwrap()).collect();
        assert_eq!(ids.contains(&"pcr_boost"), tier != "free", "{available}");
    }
    // Metrics are features too: limit and used come with the answer.
    for i in 0..10 {
        let (status, body) = app.call_with_token("POST", TRACK, &free, Some(track("leads", 1, &format!("l{i}")))).await;
        assert_eq!((status, body["used"].as_u64()), (200, Some(i + 1)), "{body}");
    }
    let (_, leads) = app.call_with_token("POST", CHECK, &free, Some(json!({"feature": "leads"}))).await;
    assert_eq!(
        leads,
        json!({"feature": "leads", "allowed": false, "reason": "limit_reached", "limit": 10, "used": 10, "tierId": "free"})
    );
    let (_, unlimited) = app.call_with_token("POST", CHECK, &platinum, Some(json!({"feature": "leads"}))).await;
    assert_eq!((unlimited["allowed"].as_bool(), unlimited["reason"].as_str()), (Some(true), Some("unlimited")));
}

#[tokio::test]
async fn features_check_is_answered_from_the_instance_cache_until_a_track_there() {
    let app = TestApp::seeded().await;
    let (id, token) = partner(&app, "Cached Check Co").await;
    // A long TTL, so the test does not depend on how fast the machine is.
    let config = Config { feature_check_cache_secs: 3_600, ..app.config.clone() };
    let gw = gateway_with(&app, Arc::new(SystemClock), config).await;
    let check = |feature: &str| json!({"feature": feature});
    let (_, before) = seed::call_json(&gw, "POST", CHECK, Some(&token), Some(check("pcr_boost"))).await;
    assert_eq!((before["allowed"].as_bool(), before["tierId"].as_str()), (Some(false), Some("free")), "{before}");
    let (_, leads) = seed::call_json(&gw, "POST", CHECK, Some(&token), Some(check("leads"))).await;
    assert_eq!((leads["used"].as_u64(), leads["tierId"].as_str()), (Some(0), Some("free")), "{leads}");

    // A tier change made elsewhere reaches this instance when its entry expires:
    // until then it answers from what it read.
    move_to(&app, &id, json!({"tier": "gold"})).await;
    let (_, cached) = seed::call_json(&gw, "POST", CHECK, Some(&token), Some(check("pcr_boost"))).await;
    assert_eq!(cached, before, "served from the instance's cache");
    let uncached = Config { feature_check_cache_secs: 0, ..app.config.clone() };
    let fresh = gateway_with(&app, Arc::new(SystemClock), uncached).await;
    let (_, moved) = seed::call_json(&fresh, "POST", CHECK, Some(&token), Some(check("pcr_boost"))).await;
    assert_eq!((moved["allowed"].as_bool(), moved["tierId"].as_str()), (Some(true), Some("gold")), "{moved}");

    // A track on this instance drops the partner's entry: the next check reads again.
    let (status, tracked) = seed::call_json(&gw, "POST", TRACK, Some(&token), Some(track("leads", 3, "cache-1"))).await;
    assert_eq!(status, 200, "{tracked}");
    let (_, after) = seed::call_json(&gw, "POST", CHECK, Some(&token), Some(check("leads"))).await;
    assert_eq!(
        (after["used"].as_u64(), after["limit"].as_u64(), after["tierId"].as_str()),
        (Some(3), Some(200), Some("gold")),
        "{after}"
    );
}

#[tokio::test]
async fn usage_trial_start_end_and_conversion() {
    let app = TestApp::seeded().await;
    let (id, token) = partner(&app, "Trial Co").await;
    // Gold's trial length is the tier's (14 days in the default catalog).
    let moved = move_to(&app, &id, json!({"tier": "gold", "trial": true})).await;
    let partner = if moved.get("partner").is_some() { &moved["partner"] } else { &moved };
    assert_eq!(partner["subscriptionStatus"], "trialing", "{moved}");
    let ends = partner["trialEndDate"].as_str().unwrap().to_string();
    let (_, limits) = app.call_with_token("GET", LIMITS, &token, None).await;
    assert_eq!((limits["tierId"].as_str(), limits["limits"]["leads"]["limit"].as_u64()), (Some("gold"), Some(200)));
    assert_eq!(limits["trial"], json!({"tierId": "gold", "endsOn": ends, "active": true}));

    // The day after the trial's last day, unconverted: the default tier's limits.
    let after = instant(&format!("{ends}T12:00:00Z")) + chrono::Duration::days(1);
    let gw = gateway_at(&app, Arc::new(FixedClock::new(after))).await;
    let (_, lapsed) = seed::call_json(&gw, "GET", LIMITS, Some(&token), None).await;
    assert_eq!((lapsed["tierId"].as_str(), lapsed["limits"]["leads"]["limit"].as_u64()), (Some("free"), Some(10)));
    assert_eq!(lapsed["trial"]["active"], false);
    let (_, check) = seed::call_json(&gw, "POST", CHECK, Some(&token), Some(json!({"feature": "pcr_boost"}))).await;
    assert_eq!((check["allowed"].as_bool(), check["reason"].as_str()), (Some(false), Some("trial_ended")));

    // Conversion is a tier change to the trialled tier: a transition like any other.
    let converted = move_to(&app, &id, json!({"tier": "gold"})).await;
    let partner = if converted.get("partner").is_some() { &converted["partner"] } else { &converted };
    assert_eq!(partner["subscriptionStatus"], "active", "{converted}");
    assert!(partner["mrr"].as_i64().unwrap() > 0, "a converted trial pays");
    let (_, history) = app.call("GET", &format!("/api/admin/partners/{id}/history"), Some("admin"), None).await;
    assert!(history.to_string().contains("trial_conversion"), "{history}");
    let (_, limits) = seed::call_json(&gw, "GET", LIMITS, Some(&token), None).await;
    assert_eq!((limits["tierId"].as_str(), limits["trial"].is_null()), (Some("gold"), true));
}

#[tokio::test]
async fn usage_overage_is_priced_in_cents_and_hard_limits_refuse() {
    let app = TestApp::seeded().await;
    let (id, token) = partner(&app, "Overage Co").await;
    move_to(&app, &id, json!({"tier": "gold"})).await;
    // Gold: leads 200, soft at 50 cents a lead; aiResponses 500, hard.
    let (status, body) = app.call_with_token("POST", TRACK, &token, Some(track("leads", 237, "l1"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["used"].as_u64(), body["remaining"].as_u64(), body["overage"].as_u64()),
        (Some(237), Some(0), Some(37))
    );
    assert_eq!(body["overageAmount"], 1850);
    let (_, more) = app.call_with_token("POST", TRACK, &token, Some(track("leads", 3, "l2"))).await;
    assert_eq!((more["overage"].as_u64(), more["overageAmount"].as_i64()), (Some(40), Some(2000)));
    let (_, current) = app.call_with_token("GET", CURRENT, &token, None).await;
    let leads = metric(&current, "leads");
    assert_eq!(
        (leads["overage"].as_u64(), leads["overagePrice"].as_i64(), leads["overageAmount"].as_i64()),
        (Some(40), Some(50), Some(2000))
    );
    assert_eq!(current["overageTotal"], 2000);
    assert_eq!(current["currency"], "usd");
    let (status, _) = app.call_with_token("POST", TRACK, &token, Some(track("aiResponses", 500, "a1"))).await;
    assert_eq!(status, 200);
    let (status, refused) = app.call_with_token("POST", TRACK, &token, Some(track("aiResponses", 1, "a2"))).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("limit_exceeded")));
    // Read after the aiResponses calls: the hard metric sits at its limit and adds
    // nothing to the bill; the total is still the 40 leads at 50 cents.
    let (_, current) = app.call_with_token("GET", CURRENT, &token, None).await;
    let ai = metric(&current, "aiResponses");
    assert_eq!(
        (ai["used"].as_u64(), ai["limit"].as_u64(), ai["remaining"].as_u64(), ai["hard"].as_bool()),
        (Some(500), Some(500), Some(0), Some(true)),
        "{current}"
    );
    assert_eq!((ai["overage"].as_u64(), ai["overageAmount"].as_i64()), (Some(0), Some(0)), "{current}");
    assert_eq!(current["overageTotal"], 40 * 50);
    // A quote's custom limit replaces the tier's and keeps its overage price (leads);
    // a hard metric left above a lowered limit is still never billed (aiResponses).
    set_custom_limits(&app, &id, &[("leads", 300), ("aiResponses", 400)]).await;
    let (_, limits) = app.call_with_token("GET", LIMITS, &token, None).await;
    assert_eq!(limits["limits"]["leads"], json!({"limit": 300, "hard": false, "overagePrice": 50, "custom": true}));
    assert_eq!(limits["limits"]["aiResponses"]["hard"], true, "{limits}");
    let (_, current) = app.call_with_token("GET", CURRENT, &token, None).await;
    let ai = metric(&current, "aiResponses");
    assert_eq!((ai["used"].as_u64(), ai["limit"].as_u64()), (Some(500), Some(400)), "{current}");
    assert_eq!((ai["overage"].as_u64(), ai["overageAmount"].as_i64()), (Some(0), Some(0)), "{current}");
    assert_eq!(current["overageTotal"], 0);
}

#[tokio::test]
async fn usage_bola_who_may_call() {
    let app = TestApp::seeded().await;
    let (a, a_token) = partner(&app, "Alpha Co").await;
    let (b, _) = partner(&app, "Beta Co").await;
    let before = app.snapshot().await;
    // Partner A naming B: 404, as if B did not exist; nothing written.
    let mut named = track("leads", 1, "x");
    named["partnerId"] = json!(b);
    let (status, _) = app.call_with_token("POST", TRACK, &a_token, Some(named.clone())).await;
    assert_eq!(status, 404);
    for path in [CURRENT, LIMITS, AVAILABLE] {
        let (status, _) = app.call_with_token("GET", &format!("{path}?partnerId={b}"), &a_token, None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) =
        app.call_with_token("POST", CHECK, &a_token, Some(json!({"feature": "leads", "partnerId": b}))).await;
    assert_eq!(status, 404);
    // Staff below admin: 403 naming the permission.
    for role in ["sales_rep", "sales_manager"] {
        let (status, body) = app.call("GET", &format!("{CURRENT}?partnerId={a}"), Some(role), None).await;
        assert_eq!((status, body["error"]["details"]["permission"].as_str()), (403, Some("usage_view")), "{role}");
        let (status, body) = app.call("POST", TRACK, Some(role), Some(named.clone())).await;
        assert_eq!((status, body["error"]["details"]["permission"].as_str()), (403, Some("usage_reporting")), "{role}");
    }
    for (path, body) in [(TRACK, Some(track("leads", 1, "y"))), (CURRENT, None)] {
        let method = if body.is_some() { "POST" } else { "GET" };
        let (status, _) = app.call(method, path, None, body).await;
        assert_eq!(status, 401);
    }
    // A service must name the partner.
    let (status, body) = app.call("POST", TRACK, Some("service"), Some(track("leads", 1, "z"))).await;
    assert_eq!((status, body["error"]["details"]["fields"]["partnerId"].is_string()), (400, true), "{body}");
    assert_eq!(app.snapshot().await, before, "refused calls wrote nothing");

    // The product backend reports for B; an admin and B itself read it.
    let (status, body) = app.call("POST", TRACK, Some("service"), Some(named)).await;
    assert_eq!((status, body["partnerId"].as_str()), (200, Some(b.as_str())), "{body}");
    let (status, current) = app.call("GET", &format!("{CURRENT}?partnerId={b}"), Some("admin"), None).await;
    assert_eq!((status, metric(&current, "leads")["used"].as_u64()), (200, Some(1)));
    let (status, _) = app.call("GET", &format!("{LIMITS}?partnerId={b}"), Some("service"), None).await;
    assert_eq!(status, 200);
    let (_, own) = app.call_with_token("GET", CURRENT, &a_token, None).await;
    assert_eq!(metric(&own, "leads")["used"], 0, "A's counters untouched");
    // Unknown partners are 404 for those allowed to ask.
    let (status, _) = app.call("GET", &format!("{CURRENT}?partnerId=nobody"), Some("admin"), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn usage_bad_input_names_the_field() {
    let app = TestApp::seeded().await;
    let (_, token) = partner(&app, "Input Co").await;
    let cases = [
        (json!({"metric": "leads", "count": 0, "idempotencyKey": "k"}), "count"),
        (json!({"metric": "leads", "count": -2, "idempotencyKey": "k"}), "count"),
        (json!({"metric": "leads", "count": 1.5, "idempotencyKey": "k"}), "count"),
        (json!({"metric": "leads", "count": 1}), "idempotencyKey"),
        (json!({"metric": "leads", "count": 1, "idempotencyKey": ""}), "idempotencyKey"),
        (json!({"metric": "leads", "count": 1, "idempotencyKey": "k", "used": 0}), "used"),
        (json!({"metric": "no such", "count": 1, "idempotencyKey": "k"}), "metric"),
        (json!({"metric": "rockets", "count": 1, "idempotencyKey": "k"}), "metric"),
        (json!({"count": 1, "idempotencyKey": "k"}), "metric"),
        (json!([1, 2]), "body"),
    ];
    let before = app.snapshot().await;
    for (body, field) in cases {
        let (status, answer) = app.call_with_token("POST", TRACK, &token, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["error"]["details"]["fields"][field].is_string(), "{body}: {answer}");
    }
    let (status, answer) = app.call_with_token("POST", CHECK, &token, Some(json!({"feature": "", "extra": 1}))).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]["details"]["fields"]["feature"].is_string()
            && answer["error"]["details"]["fields"]["extra"].is_string()
    );
    let (status, answer) = app.call_with_token("GET", &format!("{CURRENT}?partnerId=Bad%23Id"), &token, None).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(app.snapshot().await, before);
}

/// Last month's soft-limit overage becomes Stripe invoice items on the partner's
/// next invoice, once, however often the daily step runs.
#[tokio::test]
async fn usage_overage_goes_to_the_next_stripe_invoice_once() {
    use expiry_cron::{overage::BillOverage, DailyStep, RunDate};
    let stripe = tierdesk_tests::stripe::StripeApp::start().await;
    let (id, token, _) = stripe.partner("Overage Co").await;
    let subscription = stripe.subscribe(&token, "gold", "monthly").await;
    // Gold's 200 leads are soft at 50 cents each; 237 leads is 37 over.
    for (count, key) in [(200, "o1"), (37, "o2")] {
        let (status, body) = stripe.as_partner(&token, "POST", TRACK, Some(track("leads", count, key))).await;
        assert_eq!(status, 200, "{body}");
    }
    // A partner on a hard-limited tier never enters the overage index.
    let (_, free_token, _) = stripe.partner("Free Co").await;
    stripe.as_partner(&free_token, "POST", TRACK, Some(track("leads", 3, "f1"))).await;
    let (_, current) = stripe.as_partner(&token, "GET", CURRENT, None).await;
    assert_eq!(current["overageTotal"], 37 * 50, "{current}");
    let period = current["period"].as_str().unwrap().to_string();
    let candidates = stripe.app.store.overage_candidates(&period).await.unwrap();
    assert_eq!(candidates, vec![id.clone()]);

    // Any day of the next month bills this one.
    let first = chrono::NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").unwrap();
    let next = first.checked_add_months(chrono::Months::new(1)).unwrap() + chrono::Days::new(2);
    let step = BillOverage { stripe: stripe.stripe.clone() };
    let run = RunDate::for_date(next);
    // As the cron's step: its calls count as the cron function's (the IAM test).
    let both = async { futures::join!(step.run(&stripe.app.store, &run), step.run(&stripe.app.store, &run)) };
    let (a, b) = tierdesk::calls::as_function(expiry_cron::LOGICAL_ID, both).await;
    assert!(a.unwrap() + b.unwrap() >= 1);
    assert_eq!(step.run(&stripe.app.store, &run).await.unwrap(), 0, "billed once");
    // The same month seen from this month's run bills nothing (it is not over yet).
    assert_eq!(step.run(&stripe.app.store, &RunDate::for_date(first)).await.unwrap(), 0);

    let (_, partner) = stripe.app.call("GET", &format!("/api/admin/partners/{id}"), Some("admin"), None).await;
    let customer = partner["stripeCustomerId"].as_str().unwrap();
    let (status, items) = stripe.stripe_api("GET", &format!("invoiceitems?customer={customer}"), &[], None).await;
    assert_eq!(status, 200, "{items}");
    let overage: Vec<&Value> = items["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["metadata"]["tierdesk_overage"] == format!("{id}|{period}|leads|37"))
        .collect();
    assert_eq!(overage.len(), 1, "one item, even with two concurrent runs: {items}");
    assert_eq!(overage[0]["amount"], 37 * 50);
    assert!(overage[0]["invoice"].is_null(), "pending until the next invoice");
    // The renewal invoice sweeps it in.
    stripe.advance(&subscription).await;
    let item_id = overage[0]["id"].as_str().unwrap();
    let (_, item) = stripe.stripe_api("GET", &format!("invoiceitems/{item_id}"), &[], None).await;
    assert!(item["invoice"].is_string(), "{item}");
}

/// The marker write fails after the invoice item was created in Stripe (a crash
/// between the two steps); the next day's run, after Stripe forgot the
/// idempotency key, finds the item by its metadata and creates no second one.
#[tokio::test]
async fn usage_overage_is_billed_once_when_the_run_stops_between_stripe_and_the_marker() {
    use expiry_cron::{overage::BillOverage, DailyStep, RunDate};
    use tierdesk_tests::FaultInjector;
    let stripe = tierdesk_tests::stripe::StripeApp::start().await;
    let (id, token, _) = stripe.partner("Crash Overage Co").await;
    stripe.subscribe(&token, "gold", "monthly").await;
    for (count, key) in [(200, "c1"), (37, "c2")] {
        let (status, body) = stripe.as_partner(&token, "POST", TRACK, Some(track("leads", count, key))).await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, current) = stripe.as_partner(&token, "GET", CURRENT, None).await;
    let period = current["period"].as_str().unwrap().to_string();
    let first = chrono::NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").unwrap();
    let next = first.checked_add_months(chrono::Months::new(1)).unwrap() + chrono::Days::new(2);
    let (_, partner) = stripe.app.call("GET", &format!("/api/admin/partners/{id}"), Some("admin"), None).await;
    let customer = partner["stripeCustomerId"].as_str().unwrap().to_string();
    let overage_items = || async {
        let (status, items) = stripe.stripe_api("GET", &format!("invoiceitems?customer={customer}"), &[], None).await;
        assert_eq!(status, 200, "{items}");
        items["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["metadata"]["tierdesk_overage"] == format!("{id}|{period}|leads|37"))
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let step = BillOverage { stripe: stripe.stripe.clone() };

    // Day 1: the item is created, then the marker write fails (every PutItem).
    let faulty =
        tierdesk::store::Store::connect_with_interceptor(&stripe.app.config, FaultInjector::throttle("PutItem")).await;
    assert!(step.run(&faulty, &RunDate::for_date(next)).await.is_err(), "the run stops");
    let created = overage_items().await;
    assert_eq!(created.len(), 1, "the item reached Stripe");
    let marker = stripe.app.partition(&format!("PARTNER#{id}")).await;
    let marker = marker.iter().find(|i| i["SK"].as_s().unwrap() == &format!("OVERAGEBILLED#{period}")).unwrap();
    assert_eq!(marker["status"].as_s().unwrap(), "PENDING");

    // Day 2: Stripe no longer knows the idempotency key; the rerun bills nothing new.
    stripe.emulator.forget_idempotency_keys();
    let day2 = RunDate::for_date(next + chrono::Days::new(1));
    assert_eq!(step.run(&stripe.app.store, &day2).await.unwrap(), 1, "the month is settled");
    assert_eq!(overage_items().await, created, "no second item");
    let marker = stripe.app.partition(&format!("PARTNER#{id}")).await;
    let marker = marker.iter().find(|i| i["SK"].as_s().unwrap() == &format!("OVERAGEBILLED#{period}")).unwrap();
    assert_eq!(marker["status"].as_s().unwrap(), "BILLED");
    let ids: Vec<&str> = marker["invoiceItems"].as_l().unwrap().iter().map(|v| v.as_s().unwrap().as_str()).collect();
    assert_eq!(ids, vec![created[0].as_str()]);
    assert_eq!(marker["amount"].as_n().unwrap(), &(37 * 50).to_string());

    // Day 3: billed; nothing more.
    stripe.emulator.forget_idempotency_keys();
    let day3 = RunDate::for_date(next + chrono::Days::new(2));
    assert_eq!(step.run(&stripe.app.store, &day3).await.unwrap(), 0);
    assert_eq!(overage_items().await, created);
}

#[tokio::test]
async fn a_usage_key_past_its_ttl_counts_again() {
    let app = TestApp::seeded().await;
    let (pid, token) = partner(&app, "Ttl Co").await;
    let call = || app.call_with_token("POST", TRACK, &token, Some(track("emailsProcessed", 3, "batch-ttl")));
    let (_, first) = call().await;
    assert_eq!((first["used"].as_u64(), first["replayed"].as_bool()), (Some(3), Some(false)), "{first}");
    let (_, again) = call().await;
    assert_eq!((again["used"].as_u64(), again["replayed"].as_bool()), (Some(3), Some(true)), "{again}");
    // DynamoDB deletes expired items eventually; until then the record must not count.
    let pk = tierdesk::store::keys::usage_idempotency_pk(&pid, "batch-ttl");
    let mut record = app.partition(&pk).await.pop().expect("the key's record");
    record.insert("ttl".into(), tierdesk_tests::n(Utc::now().timestamp() - 60));
    app.put_raw(record).await;
    let (_, fresh) = call().await;
    assert_eq!((fresh["used"].as_u64(), fresh["replayed"].as_bool()), (Some(6), Some(false)), "{fresh}");
}

const HISTORY: &str = "/api/usage/history";

/// `GET /api/usage/history`: 13 months per metric from the monthly counters (one
/// key range), a month outside the window left out, zeros where nothing was used;
/// a partner reads its own, admin and service any partner's, other staff get 403.
#[tokio::test]
async fn usage_history_is_the_last_13_months_per_metric() {
    let app = TestApp::seeded().await;
    let (id, token) = partner(&app, "History Co").await;
    let (other, other_token) = partner(&app, "Other Co").await;
    let clock = Arc::new(FixedClock::new(instant("2025-10-15T12:00:00Z")));
    let gw = gateway_at(&app, clock.clone()).await;
    // 2025-10 (14 months before 2026-12: outside the window), then three months.
    for (at, metric, count) in [
        ("2025-10-15T12:00:00Z", "leads", 4),
        ("2025-12-01T00:00:00Z", "leads", 2),
        ("2026-06-30T23:59:59Z", "aiResponses", 7),
        ("2026-12-31T10:00:00Z", "leads", 1),
        ("2026-12-31T10:00:00Z", "aiResponses", 3),
    ] {
        clock.set(instant(at));
        let key = format!("{at}-{metric}");
        let (status, body) = seed::call_json(&gw, "POST", TRACK, Some(&token), Some(track(metric, count, &key))).await;
        assert_eq!(status, 200, "{body}");
    }
    // The other partner's use never shows in this one's history.
    let (status, _) = seed::call_json(&gw, "POST", TRACK, Some(&other_token), Some(track("leads", 5, "other-1"))).await;
    assert_eq!(status, 200);

    let (status, own) = seed::call_json(&gw, "GET", HISTORY, Some(&token), None).await;
    assert_eq!(status, 200, "{own}");
    let months: Vec<&str> = own["months"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert_eq!(months.len(), 13);
    assert_eq!((months[0], months[12]), ("2025-12", "2026-12"), "oldest first, this month last");
    let mut leads = vec![0; 13];
    leads[0] = 2;
    leads[12] = 1;
    let mut ai = vec![0; 13];
    ai[6] = 7;
    ai[12] = 3;
    assert_eq!(own["metrics"], json!({"leads": leads, "aiResponses": ai}), "2025-10's 4 leads are outside");
    assert_eq!(own["partnerId"], id.as_str());

    // One metric, fewer months; a metric never used is all zeros.
    let (_, three) = seed::call_json(&gw, "GET", &format!("{HISTORY}?metric=leads&months=3"), Some(&token), None).await;
    assert_eq!(
        three,
        json!({"partnerId": id, "months": ["2026-10", "2026-11", "2026-12"], "metrics": {"leads": [0, 0, 1]}})
    );
    let (_, unused) =
        seed::call_json(&gw, "GET", &format!("{HISTORY}?metric=emailsProcessed&months=1"), Some(&token), None).await;
    assert_eq!(unused["metrics"], json!({"emailsProcessed": [0]}));

    // Who may read: admin and service name the partner; a partner naming another is
    // 404; staff without usage_view get 403; no token is 401.
    for role in ["admin", "service"] {
        let (status, body) =
            seed::call_json(&gw, "GET", &format!("{HISTORY}?partnerId={id}"), Some(&app.token(role)), None).await;
        assert_eq!((status, &body["metrics"]), (200, &own["metrics"]), "{role}");
    }
    for role in ["sales_rep", "sales_manager"] {
        let (status, body) =
            seed::call_json(&gw, "GET", &format!("{HISTORY}?partnerId={id}"), Some(&app.token(role)), None).await;
        assert_eq!((status, body["error"]["details"]["permission"].as_str()), (403, Some("usage_view")), "{role}");
    }
    let (status, _) = seed::call_json(&gw, "GET", &format!("{HISTORY}?partnerId={other}"), Some(&token), None).await;
    assert_eq!(status, 404, "another partner's history");
    let (status, _) = seed::call_json(&gw, "GET", HISTORY, None, None).await;
    assert_eq!(status, 401);
    let (status, body) = seed::call_json(&gw, "GET", HISTORY, Some(&app.token("admin")), None).await;
    assert_eq!((status, body["error"]["details"]["fields"]["partnerId"].is_string()), (400, true), "{body}");
    let (status, _) =
        seed::call_json(&gw, "GET", &format!("{HISTORY}?partnerId=nobody"), Some(&app.token("admin")), None).await;
    assert_eq!(status, 404, "unknown partner");

    // Bad input names the field.
    for (query, field) in [
        ("months=0", "months"),
        ("months=14", "months"),
        ("months=x", "months"),
        ("metric=no%20such", "metric"),
        ("partnerId=Bad%23Id", "partnerId"),
    ] {
        let (status, body) = seed::call_json(&gw, "GET", &format!("{HISTORY}?{query}"), Some(&token), None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"]["details"]["fields"][field].is_string(), "{query}: {body}");
    }
}
