//! `bench billing`: DynamoDB calls per billing route and per Stripe webhook event
//! type, over a real flow (checkout, renewal, upgrade, scheduled downgrade,
//! dunning to free, cancellation) against an in-process Stripe emulator whose
//! webhooks reach the gateway over loopback TCP. Bounded: a fixed flow, no loop.

use crate::gateway::{self, Gateway, Handler, Services};
use crate::{jwt, routes, seed};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use stripe_emulator::{Emulator, EmulatorConfig};
use tierdesk::store::count_calls;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Counts = Arc<Mutex<BTreeMap<String, Vec<u64>>>>;

fn counting(inner: Handler, counts: Counts, webhook: bool) -> Handler {
    Arc::new(move |req: lambda_http::Request| {
        let inner = inner.clone();
        let counts = counts.clone();
        let key = if webhook {
            let body = match req.body() {
                lambda_http::Body::Text(t) => t.clone(),
                _ => String::new(),
            };
            let event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            format!("webhook {}", event["type"].as_str().unwrap_or("?"))
        } else {
            // One row per route: an invoice action's id is the route's `{invoiceId}`.
            let path = req.uri().path();
            let path = match path.strip_prefix("/api/admin/invoices/").and_then(|rest| rest.split_once('/')) {
                Some((_, action)) => format!("/api/admin/invoices/{{invoiceId}}/{action}"),
                None => path.to_string(),
            };
            format!("{} {path}", req.method())
        };
        Box::pin(async move {
            let (response, calls) = count_calls(inner(req)).await;
            counts.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_default().push(calls);
            response
        })
    })
}

pub(crate) async fn control(emulator: &Emulator, path: &str, body: Value) -> Result<Value, Error> {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<hyper::body::Bytes>>();
    let req = http::Request::post(format!("{}/_emulator/{path}", emulator.base_url()))
        .header("content-type", "application/json")
        .body(Full::new(hyper::body::Bytes::from(body.to_string())))?;
    let resp = client.request(req).await?;
    let bytes = resp.into_body().collect().await?.to_bytes();
    emulator.flush().await;
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

pub async fn run() -> Result<(), Error> {
    let config = tierdesk::Config::from_env()?;
    let emulator = Emulator::start(EmulatorConfig::default()).await?;
    let stripe_config = tierdesk::stripe_adapter::StripeConfig::local(emulator.base_url());
    let mut services = Services::from_env().await;
    services.stripe = tierdesk::stripe_adapter::StripeGateway::new(stripe_config).map_err(|e| e.to_string())?;
    let store = tierdesk::store::Store::connect(&config).await;
    let mut handlers = gateway::handlers_with(store.clone(), &config, &services).await;
    let counts: Counts = Arc::default();
    for (name, webhook) in [("BillingFunction", false), ("StripeWebhookFunction", true)] {
        if let Some(h) = handlers.remove(name) {
            handlers.insert(name.to_string(), counting(h, counts.clone(), webhook));
        }
    }
    let template = std::env::var("TIERDESK_TEMPLATE").unwrap_or_else(|_| "template.yaml".into());
    let secret = jwt::secret_from_env();
    let gw =
        Arc::new(Gateway::new(routes::from_template(&std::fs::read_to_string(template)?)?, &handlers, secret.clone())?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = gw.clone().router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    emulator.set_webhook(Some(format!("http://{addr}/api/webhooks/stripe")), None);
    for line in seed::seed_stripe_prices_with(&store, &services.stripe).await {
        tracing::debug!(line);
    }

    let now = chrono::Utc::now().timestamp();
    let admin = jwt::token_for("admin", None, "bench-admin", now, 600, &secret);
    let mut flows = 0;
    for (company, tier) in [("Bench Renewal", "gold"), ("Bench Dunning", "platinum")] {
        let email = format!("bench-{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
        let (_, p) = seed::call_json(
            &gw,
            "POST",
            "/api/admin/partners",
            Some(&admin),
            Some(json!({"companyName": company, "primaryEmail": email})),
        )
        .await;
        let id = p["partnerId"].as_str().ok_or("partner not created")?.to_string();
        let token = jwt::token_for("partner", Some(&id), &format!("bench-{id}"), now, 600, &secret);
        let t = Some(token.as_str());
        let (_, session) =
            seed::call_json(&gw, "POST", "/api/billing/subscribe", t, Some(json!({"tierId": tier}))).await;
        let cs = session["checkoutSessionId"].as_str().ok_or("no session")?.to_string();
        control(&emulator, &format!("checkout/sessions/{cs}/complete"), json!({})).await?;
        let (_, view) = seed::call_json(&gw, "GET", "/api/billing/subscription", t, None).await;
        seed::call_json(&gw, "GET", "/api/billing/invoices", t, None).await;
        let Some(sub) = view["stripeSubscriptionId"].as_str().map(str::to_string) else {
            return Err(format!("not subscribed: {view} (session {session})").into());
        };
        if tier == "gold" {
            control(&emulator, &format!("subscriptions/{sub}/advance"), json!({})).await?;
            seed::call_json(&gw, "PUT", "/api/billing/upgrade", t, Some(json!({"tierId": "platinum"}))).await;
            seed::call_json(&gw, "PUT", "/api/billing/downgrade", t, Some(json!({"tierId": "gold"}))).await;
            control(&emulator, &format!("subscriptions/{sub}/advance"), json!({})).await?;
            seed::call_json(&gw, "DELETE", "/api/billing/cancel", t, None).await;
            control(&emulator, &format!("subscriptions/{sub}/advance"), json!({})).await?;
        } else {
            let customer = view["stripeCustomerId"].as_str().ok_or("no customer")?;
            control(&emulator, &format!("customers/{customer}/card"), json!({"fails": true})).await?;
            let advanced = control(&emulator, &format!("subscriptions/{sub}/advance"), json!({})).await?;
            let invoice = advanced["latest_invoice"].as_str().ok_or("no invoice")?.to_string();
            control(&emulator, &format!("invoices/{invoice}/retry"), json!({})).await?;
            control(&emulator, &format!("invoices/{invoice}/retry"), json!({})).await?;
        }
        flows += 1;
    }
    // Staff invoices: the list (first page with its totals, a status, a partner, a
    // rep's), then a refund of part of a paid invoice and a resend.
    let manager = jwt::token_for("sales_manager", None, "bench-manager", now, 600, &secret);
    let rep = jwt::token_for("sales_rep", None, "bench-rep", now, 600, &secret);
    let m = Some(manager.as_str());
    let (_, all) = seed::call_json(&gw, "GET", "/api/admin/invoices", m, None).await;
    seed::call_json(&gw, "GET", "/api/admin/invoices?status=paid", m, None).await;
    seed::call_json(&gw, "GET", "/api/admin/invoices", Some(&rep), None).await;
    let paid = all["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["billingStatus"] == "paid" && i["amountPaid"].as_i64() > Some(0)))
        .ok_or("no paid invoice")?
        .clone();
    let (id, partner) =
        (paid["invoiceId"].as_str().unwrap_or_default(), paid["partnerId"].as_str().unwrap_or_default());
    seed::call_json(&gw, "GET", &format!("/api/admin/invoices?partnerId={partner}"), m, None).await;
    let path = format!("/api/admin/invoices/{id}/refund");
    let (status, refund) = seed::call_json(&gw, "POST", &path, m, Some(json!({"amount": 10_000}))).await;
    if status != 200 {
        return Err(format!("refund failed: {status} {refund}").into());
    }
    seed::call_json(&gw, "POST", &format!("/api/admin/invoices/{id}/send"), m, None).await;
    emulator.flush().await;
    println!("{flows} partner flows (checkout → renewal → upgrade → scheduled downgrade → cancel → end; checkout → dunning 1-2-3), then the staff invoice list and a refund and resend:\n");
    println!("| request | count | DynamoDB calls (min–max) |\n|---|---|---|");
    for (key, calls) in counts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let min = calls.iter().min().copied().unwrap_or(0);
        let max = calls.iter().max().copied().unwrap_or(0);
        let range = if min == max { min.to_string() } else { format!("{min}–{max}") };
        println!("| {key} | {} | {range} |", calls.len());
    }
    Ok(())
}
