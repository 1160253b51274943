//! `events/*.json` are real API Gateway v2 event shapes. Each is fed through the
//! function's handler exactly as Lambda would deliver it.

use lambda_http::Body;
use serde_json::Value;
use tierdesk_tests::{read_repo_file, TestApp};

async fn invoke(tiers_app: &tiers::Tiers, file: &str) -> (u16, Value) {
    let req = lambda_http::request::from_str(&read_repo_file(&format!("events/{file}"))).expect("event parses");
    let response = tiers::handle(tiers_app, req).await;
    let body = match response.body() {
        Body::Text(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (response.status().as_u16(), body)
}

#[tokio::test]
async fn event_fixtures_through_the_handler() {
    let app = TestApp::seeded().await;
    let handler_app = tiers::Tiers::new(tierdesk::app::App::connect(app.config.clone()).await);

    let (status, body) = invoke(&handler_app, "tiers-public-catalog.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 3);

    // Claims in API Gateway's flattened "[sales_rep]" form; the fixture's query
    // asks for segment=standard, so a tier of another segment stays out.
    let other = serde_json::json!({"tierId": "agency", "name": "Agency", "tierLevel": 4, "segment": "agency",
                                   "prices": {"monthly": 100, "yearly": 1000},
                                   "features": [{"featureId": "f1", "name": "F1"}]});
    let (status, created) = app.call("POST", "/api/admin/tiers", Some("admin"), Some(other)).await;
    assert_eq!((status, created["segment"].as_str()), (201, Some("agency")), "{created}");
    let (status, body) = invoke(&handler_app, "tiers-list-sales-rep.json").await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().filter_map(|t| t["tierId"].as_str()).collect();
    assert_eq!(ids.len(), 3, "the three seeded standard tiers: {body}");
    assert!(!ids.contains(&"agency"), "{body}");
    assert!(items.iter().all(|t| t["segment"] == "standard"), "{body}");

    // Claims with the groups as JSON array text.
    let (status, body) = invoke(&handler_app, "tiers-create-sales-manager.json").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["createdBy"], "7f1c2e3a-0000-4000-8000-00000000a002");
    let audit = app.partition("AUDIT#tier#silver").await;
    assert_eq!(audit[0]["requestId"].as_s().unwrap(), "Jx1a2b3cIAMEbQ=");

    let (status, body) = invoke(&handler_app, "tiers-compare.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tiers"].as_array().unwrap().len(), 3);

    // A base64-encoded body.
    let (status, body) = invoke(&handler_app, "tiers-upgrade-price.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["upgradePrice"], 210000);

    // The admin surface does not exist for a partner: 404, not a revealing 403.
    let (status, body) = invoke(&handler_app, "tiers-get-as-partner.json").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["requestId"], "Jx1a2b3cIAMEbQ=");
}

#[tokio::test]
async fn clock_and_ids_are_injected() {
    use std::sync::Arc;
    use tierdesk::clock::{FixedClock, SequentialIds};
    let app = TestApp::new().await;
    let at = chrono::DateTime::parse_from_rfc3339("2027-01-15T08:30:00Z").unwrap().with_timezone(&chrono::Utc);
    let store = tierdesk::store::Store::connect(&app.config).await;
    let pinned = tiers::Tiers::new(
        tierdesk::app::App::new(store, app.config.clone())
            .with_clock(Arc::new(FixedClock::new(at)))
            .with_ids(Arc::new(SequentialIds::new("aud"))),
    );
    let (status, body) = invoke(&pinned, "tiers-create-sales-manager.json").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["createdAt"], "2027-01-15T08:30:00.000Z");
    let audit = app.partition("AUDIT#tier#silver").await;
    assert_eq!(audit[0]["auditId"].as_s().unwrap(), "aud000001");
    assert_eq!(audit[0]["SK"].as_s().unwrap(), "2027-01-15T08:30:00.000Z#aud000001");
    let prices = app.partition("TIER#silver").await;
    assert!(prices
        .iter()
        .any(|i| i.get("effectiveFrom").and_then(|v| v.as_s().ok()).is_some_and(|s| s == "2027-01-15T08:30:00.000Z")));
}

async fn invoke_partners(app: &partners::Partners, event_json: &str) -> (u16, http::HeaderMap, String) {
    let req = lambda_http::request::from_str(event_json).expect("event parses");
    let response = partners::handle(app, req).await;
    let text = match response.body() {
        Body::Text(s) => s.clone(),
        _ => String::new(),
    };
    (response.status().as_u16(), response.headers().clone(), text)
}

#[tokio::test]
async fn partner_event_fixtures_through_the_handler() {
    let app = TestApp::seeded().await;
    let handler_app = partners::Partners::new(tierdesk::app::App::connect(app.config.clone()).await);

    let (status, _, text) =
        invoke_partners(&handler_app, &read_repo_file("events/partners-create-sales-rep.json")).await;
    assert_eq!(status, 201, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created["createdBy"], "7f1c2e3a-0000-4000-8000-00000000a001");
    let id = created["partnerId"].as_str().unwrap();

    // The fixture names a demo id; the same event shape is replayed for the partner just made.
    let dry_run =
        read_repo_file("events/partners-change-tier-dry-run.json").replace("prt_01jdemopartner0000000000000", id);
    let before = app.snapshot().await;
    let (status, _, text) = invoke_partners(&handler_app, &dry_run).await;
    assert_eq!(status, 200, "{text}");
    let preview: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((preview["event"].as_str(), preview["newMRR"].as_i64()), (Some("upgrade"), Some(360_000)));
    assert_eq!(app.snapshot().await, before);

    let (status, headers, csv) =
        invoke_partners(&handler_app, &read_repo_file("events/partners-subscriptions-csv.json")).await;
    assert_eq!(status, 200, "{csv}");
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(tierdesk::http::csv::parse(&csv).unwrap().len(), 1, "header only: nobody pays yet");
}

#[tokio::test]
async fn quote_event_fixture_through_the_handler() {
    use std::sync::Arc;
    use tierdesk::clock::{FixedClock, SequentialIds};
    let app = TestApp::seeded().await;
    let at = chrono::DateTime::parse_from_rfc3339("2027-03-01T09:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let mailer = tierdesk::mail::Mailer::connect(
        &tierdesk::mail::MailConfig::local(tierdesk_tests::ses::endpoint()),
        app.store.clone(),
    )
    .await;
    let quotes_app = quotes::Quotes::new(
        app.function_app().with_clock(Arc::new(FixedClock::new(at))).with_ids(Arc::new(SequentialIds::new("q"))),
        quotes::Settings::default(),
        mailer,
    );
    let req = lambda_http::request::from_str(&read_repo_file("events/quotes-create-sales-rep.json")).unwrap();
    let response = quotes::handle(&quotes_app, req).await;
    let body: Value = match response.body() {
        Body::Text(s) => serde_json::from_str(s).unwrap(),
        _ => Value::Null,
    };
    assert_eq!(response.status().as_u16(), 201, "{body}");
    // Claims in API Gateway's "[sales_rep]" form; 20% is above a rep's 15%.
    assert_eq!(body["status"], "pending_approval");
    assert_eq!(body["quoteNumber"], "Q-2027-001");
    assert_eq!(body["salesRep"], "7f1c2e3a-0000-4000-8000-00000000a001");
    assert_eq!(body["salesRepEmail"], "rep@tierdesk.example");
    assert_eq!(body["createdAt"], "2027-03-01T09:00:00.000Z");
    let audit = app.partition(&format!("AUDIT#quote#{}", body["quoteId"].as_str().unwrap())).await;
    assert_eq!(audit[0]["requestId"].as_s().unwrap(), "Qa1b2c3dIAMEbQ=");
}
