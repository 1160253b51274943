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
