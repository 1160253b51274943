//! The dev gateway over real loopback TCP: token verification, routing, and the
//! payload-2.0 path into the handler.

use devtools::jwt;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tierdesk_tests::TestApp;

async fn serve(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.gateway.clone().router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

async fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    send(base, "GET", path, token, None).await
}

async fn send(base: &str, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = http::Request::builder().method(method).uri(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let bytes = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Bytes::from(b.to_string())
        }
        None => Bytes::new(),
    };
    let resp = client.request(req.body(Full::new(bytes)).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn tokens_are_verified_before_any_handler_runs() {
    let app = TestApp::seeded().await;
    let base = serve(&app).await;
    assert_eq!(get(&base, "/api/tiers", None).await.0, 200);
    assert_eq!(get(&base, "/api/admin/tiers", Some(&app.token("sales_rep"))).await.0, 200);

    let now = chrono::Utc::now().timestamp();
    let forged = jwt::token_for("admin", None, "mallory", now, 600, "not-the-secret");
    // Signed with this app's own secret, so only its expiry is wrong: issued two
    // hours ago for ten minutes.
    let expired = jwt::token_for("admin", None, "u", now - 7200, 600, app.secret());
    let still_valid = jwt::token_for("admin", None, "u", now - 300, 600, app.secret());
    assert_eq!(get(&base, "/api/admin/tiers", Some(&still_valid)).await.0, 200, "the same token, not yet expired");
    let before = app.snapshot().await;
    for (case, token) in [
        ("none", None),
        ("forged", Some(forged.as_str())),
        ("expired", Some(expired.as_str())),
        ("junk", Some("a.b.c")),
    ] {
        let (status, body) = get(&base, "/api/admin/tiers", token).await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(body["message"], "Unauthorized");
        // A write the admin role may make: refused before the handler, so nothing
        // is created.
        let tier = json!({"tierId": format!("via-{case}"), "name": "T", "tierLevel": 5,
                          "prices": {"monthly": 100, "yearly": 1000}, "features": [{"featureId": "f1", "name": "F1"}]});
        let (status, body) = send(&base, "POST", "/api/admin/tiers", token, Some(tier)).await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(body["message"], "Unauthorized");
    }
    assert_eq!(app.snapshot().await, before, "no refused token wrote anything");
    let (status, _) = get(&base, "/api/admin/tiers/via-expired", Some(&app.token("admin"))).await;
    assert_eq!(status, 404);
    let (status, _) = get(&base, "/api/nothing-here", None).await;
    assert_eq!(status, 404);
    let (status, body) = get(&base, "/api/tiers/compare?ids=free%2Cgold", None).await;
    assert_eq!(status, 200, "{body}");
}
