//! `bench quotes`: DynamoDB operations per quotes route, split into reads and
//! writes (the promotions bench's interceptor counts each operation by name), and
//! the time of each call through the in-process gateway. Mail goes to the SES
//! emulator (`SES_ENDPOINT`).

use crate::gateway::{self, Gateway};
use crate::promotions_bench::{describe, OpCounter};
use crate::{jwt, routes, seed};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

type Error = Box<dyn std::error::Error + Send + Sync>;

pub async fn run() -> Result<(), Error> {
    let config = tierdesk::Config::from_env()?;
    let counter = OpCounter::default();
    let store = tierdesk::store::Store::connect_with_interceptor(&config, counter.clone()).await;
    let template = std::env::var("TIERDESK_TEMPLATE").unwrap_or_else(|_| "template.yaml".into());
    let routes = routes::from_template(&std::fs::read_to_string(template)?)?;
    let handlers = gateway::handlers_on(store, &config).await;
    let secret = jwt::secret_from_env();
    let gw = Arc::new(Gateway::new(routes, &handlers, secret.clone())?);
    let now = chrono::Utc::now().timestamp();
    let admin = jwt::token_for("admin", None, "bench-admin", now, 3_600, &secret);
    let rep = jwt::token_for("sales_rep", None, "bench-rep", now, 3_600, &secret);
    let manager = jwt::token_for("sales_manager", None, "bench-manager", now, 3_600, &secret);
    let suffix = ulid::Ulid::new().to_string().to_lowercase();
    seed::call_json(&gw, "POST", "/api/admin/tiers/initialize", Some(&admin), None).await;

    println!("| route | status | DynamoDB reads | writes | operations | ms |\n|---|---|---|---|---|---|");
    counter.take();
    let call = |method: &'static str, path: String, token: Option<String>, body: Option<Value>| {
        let gw = gw.clone();
        let counter = counter.clone();
        async move {
            let started = Instant::now();
            let (status, answer) = seed::call_json(&gw, method, &path, token.as_deref(), body).await;
            let ms = started.elapsed().as_secs_f64() * 1_000.0;
            let (reads, writes, list) = describe(&counter.take());
            (status, answer, format!("| {reads} | {writes} | {list} | {ms:.1} |"))
        }
    };
    let row = |label: &str, status: u16, tail: &str| println!("| `{label}` | {status} {tail}");
    let body = |discount: f64| {
        json!({
            "prospectEmail": format!("bench-{suffix}@bench.example.com"),
            "prospectName": "Bench Prospect",
            "baseTier": "gold",
            "billingPeriod": "yearly",
            "customizations": {"additionalListings": {"quantity": 5}},
            "discounts": [{"type": "percentage", "value": discount, "reason": "bench"}]
        })
    };
    let (status, q, tail) = call("POST", "/api/admin/quotes".into(), Some(rep.clone()), Some(body(10.0))).await;
    row("POST /api/admin/quotes", status, &tail);
    let id = q["quoteId"].as_str().ok_or("quote not created")?.to_string();
    let admin_path = |step: &str| format!("/api/admin/quotes/{id}{step}");
    let (status, _, tail) = call("GET", admin_path(""), Some(rep.clone()), None).await;
    row("GET /api/admin/quotes/{quoteId}", status, &tail);
    let (status, _, tail) = call("GET", "/api/admin/quotes".into(), Some(rep.clone()), None).await;
    row("GET /api/admin/quotes (a rep's book)", status, &tail);
    let (status, _, tail) = call("GET", admin_path("/pdf"), Some(rep.clone()), None).await;
    row("GET /api/admin/quotes/{quoteId}/pdf", status, &tail);
    let edit = json!({"version": q["version"], "notes": "bench"});
    let (status, _, tail) = call("PUT", admin_path(""), Some(rep.clone()), Some(edit)).await;
    row("PUT /api/admin/quotes/{quoteId}", status, &tail);
    let (status, sent, tail) = call("POST", admin_path("/send"), Some(rep.clone()), None).await;
    row("POST …/send (PDF + SES email)", status, &tail);
    // The token travels in the email only: read it back from the SES emulator.
    let token = emailed_token(sent["sentTo"].as_str().ok_or("no recipient")?).await?;
    let (status, _, tail) = call("GET", format!("/api/quotes/view/{token}"), None, None).await;
    row("GET /api/quotes/view/{token}", status, &tail);
    let (status, _, tail) = call("GET", format!("/api/quotes/view/{token}/pdf"), None, None).await;
    row("GET /api/quotes/view/{token}/pdf", status, &tail);
    let (status, _, tail) = call("POST", format!("/api/quotes/view/{token}/accept"), None, None).await;
    row("POST …/accept (new prospect: signup, then the change)", status, &tail);
    let (status, _, tail) = call("POST", format!("/api/quotes/view/{token}/accept"), None, None).await;
    row("POST …/accept (repeat)", status, &tail);

    let (_, pending, _) = call("POST", "/api/admin/quotes".into(), Some(rep.clone()), Some(body(25.0))).await;
    let pid = pending["quoteId"].as_str().ok_or("quote not created")?.to_string();
    let (status, _, tail) = call("POST", format!("/api/admin/quotes/{pid}/approve"), Some(manager.clone()), None).await;
    row("POST …/approve", status, &tail);
    let (status, _, tail) = call("POST", format!("/api/admin/quotes/{pid}/cancel"), Some(rep.clone()), None).await;
    row("POST …/cancel", status, &tail);
    println!();
    println!(
        "Times are one call each through the in-process gateway against DynamoDB Local; the send includes \
         rendering the PDF and the SES emulator's answer."
    );
    Ok(())
}

/// The link token in the newest email to `to` held by the SES emulator
/// (`GET {SES_ENDPOINT}/store`): staff answers never carry it.
pub(crate) async fn emailed_token(to: &str) -> Result<String, Error> {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    let endpoint = std::env::var("SES_ENDPOINT").map_err(|_| "SES_ENDPOINT is not set")?;
    let uri: hyper::Uri = format!("{}/store", endpoint.trim_end_matches('/')).parse()?;
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let body = client.get(uri).await?.into_body().collect().await?.to_bytes();
    let store: Value = serde_json::from_slice(&body)?;
    // The emailed link opens the web app's quote page, `/quote/{token}`.
    let marker = "/quote/";
    store["emails"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .filter(|m| m["destination"]["to"].as_array().is_some_and(|l| l.iter().any(|a| a.as_str() == Some(to))))
        .filter_map(|m| m["body"]["text"].as_str())
        .find_map(|text| text.find(marker).and_then(|i| text.get(i + marker.len()..i + marker.len() + 43)))
        .map(str::to_string)
        .ok_or_else(|| "no quote email with a link".into())
}
