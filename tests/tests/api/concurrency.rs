use serde_json::json;
use tierdesk_tests::TestApp;

#[tokio::test]
async fn two_updates_at_the_same_version_one_wins() {
    let app = TestApp::seeded().await;
    for round in 0..5 {
        let (_, gold) = app.call("GET", "/api/admin/tiers/gold", Some("admin"), None).await;
        let version = gold["version"].clone();
        let a = app.call(
            "PUT",
            "/api/admin/tiers/gold",
            Some("sales_manager"),
            Some(json!({"version": version, "name": format!("A{round}")})),
        );
        let b = app.call(
            "PUT",
            "/api/admin/tiers/gold",
            Some("admin"),
            Some(json!({"version": version, "name": format!("B{round}")})),
        );
        let ((sa, ba), (sb, bb)) = tokio::join!(a, b);
        let mut statuses = [sa, sb];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "round {round}: {ba} {bb}");
        let winner = if sa == 200 { ba } else { bb };
        let (_, now) = app.call("GET", "/api/admin/tiers/gold", Some("admin"), None).await;
        assert_eq!(now["name"], winner["name"]);
        assert_eq!(now["version"], version.as_u64().unwrap() + 1);
    }
    // One audit entry per successful change: initialize + 5 winners.
    assert_eq!(app.partition("AUDIT#tier#gold").await.len(), 6);
}

#[tokio::test]
async fn concurrent_initialize_creates_each_default_once() {
    let app = TestApp::new().await;
    let calls = (0..8).map(|_| app.call("POST", "/api/admin/tiers/initialize", Some("admin"), None));
    let results = futures::future::join_all(calls).await;
    let mut created = Vec::new();
    for (status, body) in results {
        assert_eq!(status, 200, "{body}");
        created.extend(body["created"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()));
    }
    created.sort();
    assert_eq!(created, vec!["free", "gold", "platinum"]);
    for id in ["free", "gold", "platinum"] {
        assert_eq!(app.partition(&format!("AUDIT#tier#{id}")).await.len(), 1);
    }
}
