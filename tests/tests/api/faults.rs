//! Faults DynamoDB Local never produces, injected with an SDK interceptor: the API
//! answers with a clear, retryable status and writes nothing partial.

use serde_json::json;
use tierdesk_tests::{FaultInjector, TestApp};

#[tokio::test]
async fn throttled_reads_and_writes_are_503_and_change_nothing() {
    let app = TestApp::seeded().await;
    let before = app.snapshot().await;
    let token = app.token("admin");

    let throttled_reads = app.with_fault(FaultInjector::throttle("GetItem")).await;
    let (status, body) =
        devtools::seed::call_json(&throttled_reads, "GET", "/api/admin/tiers/gold", Some(&token), None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "temporarily_unavailable");
    assert_eq!(body["error"]["severity"], "high", "a dependency that is busy");

    let throttled_writes = app.with_fault(FaultInjector::throttle("TransactWriteItems")).await;
    let (status, body) = devtools::seed::call_json(
        &throttled_writes,
        "PUT",
        "/api/admin/tiers/gold",
        Some(&token),
        Some(json!({"version": 1, "name": "Never"})),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_transaction_conflict_is_a_retryable_409() {
    let app = TestApp::seeded().await;
    let before = app.snapshot().await;
    let token = app.token("admin");
    let conflicted = app.with_fault(FaultInjector::transaction_conflict()).await;
    let (status, body) = devtools::seed::call_json(
        &conflicted,
        "PUT",
        "/api/admin/tiers/gold",
        Some(&token),
        Some(json!({"version": 1, "name": "Never"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "concurrent_update");
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_tier_change_retries_a_passing_conflict_and_reports_a_lasting_one() {
    let app = TestApp::seeded().await;
    let id = app.create_partner("Conflict Co").await["partnerId"].as_str().unwrap().to_string();
    let token = app.token("admin");
    let path = format!("/api/admin/partners/{id}/engagement-tier");

    let before = app.snapshot().await;
    let always = app.with_fault(FaultInjector::transaction_conflict()).await;
    let (status, body) =
        devtools::seed::call_json(&always, "PATCH", &path, Some(&token), Some(json!({"tier": "gold"}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("concurrent_update")), "{body}");
    assert_eq!(app.snapshot().await, before, "nothing partial");

    let once = app.with_fault(FaultInjector::transaction_conflict().times(1)).await;
    let (status, body) =
        devtools::seed::call_json(&once, "PATCH", &path, Some(&token), Some(json!({"tier": "gold"}))).await;
    assert_eq!(status, 200, "{body}");
    let (_, history) = app.call("GET", &format!("/api/admin/partners/{id}/history"), Some("admin"), None).await;
    assert_eq!(history["items"].as_array().unwrap().len(), 2, "applied exactly once");

    let throttled = app.with_fault(FaultInjector::throttle("Query")).await;
    let (status, body) =
        devtools::seed::call_json(&throttled, "GET", "/api/admin/subscriptions", Some(&token), None).await;
    assert_eq!(status, 503, "{body}");
}
