//! A test app wired to its own Stripe emulator: the emulator's webhooks reach the
//! app's gateway over loopback TCP, exactly as in `make run`.

use crate::{ses, TestApp};
use devtools::gateway::Services;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::sync::Arc;
use stripe_emulator::{Emulator, EmulatorConfig};
use tierdesk::domain::billing::PriceSpec;
use tierdesk::domain::money::BillingPeriod;
use tierdesk::mail::MailConfig;
use tierdesk::store::TierStore;
use tierdesk::stripe_adapter::{StripeConfig, StripeGateway};

/// The billing functions' clock follows the emulator's, so periods, "today" and
/// signature timestamps agree when a test moves Stripe's time forward.
struct EmulatorClock(Arc<Emulator>);

impl tierdesk::Clock for EmulatorClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        // Whole seconds from the emulator; the system clock's milliseconds while the
        // emulator has not been moved ahead, so records keep their real order.
        let emulator = chrono::DateTime::from_timestamp(self.0.now(), 0).unwrap_or_default();
        emulator.max(chrono::Utc::now())
    }
}

pub struct StripeApp {
    pub app: TestApp,
    pub emulator: Arc<Emulator>,
    pub stripe: StripeGateway,
    pub gateway_url: String,
}

pub async fn post(url: &str, body: Value) -> (u16, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let resp = client.request(req).await.expect("emulator reachable");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

pub async fn get(url: &str) -> (u16, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::get(url).body(Full::new(Bytes::new())).expect("request");
    let resp = client.request(req).await.expect("emulator reachable");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

impl StripeApp {
    /// A seeded app, its emulator, and Stripe prices for every paid tier.
    pub async fn start() -> Self {
        let emulator = Arc::new(Emulator::start(EmulatorConfig::default()).await.expect("emulator"));
        let stripe_config = StripeConfig::local(emulator.base_url());
        let stripe = StripeGateway::new(stripe_config.clone()).expect("stripe client");
        let services = Services {
            stripe: stripe.clone(),
            mail: MailConfig::local(ses::endpoint()),
            clock: Arc::new(EmulatorClock(emulator.clone())),
        };
        let app = TestApp::with_services(services).await;
        let (status, body) = app.call("POST", "/api/admin/tiers/initialize", Some("admin"), None).await;
        assert_eq!(status, 200, "{body}");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = app.gateway.clone().router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let gateway_url = format!("http://{addr}");
        emulator.set_webhook(Some(format!("{gateway_url}/api/webhooks/stripe")), None);
        let tiers = app.store.active_catalog().await.expect("catalog");
        for tier in tiers.iter().filter(|t| tierdesk::domain::subscription::is_paid(t)) {
            for period in [BillingPeriod::Monthly, BillingPeriod::Yearly] {
                stripe.ensure_price(&PriceSpec::current(tier, period)).await.expect("price");
            }
        }
        Self { app, emulator, stripe, gateway_url }
    }

    pub fn control(&self, path: &str) -> String {
        format!("{}/_emulator/{path}", self.emulator.base_url())
    }

    /// A new partner (free) with a unique email, and its token.
    pub async fn partner(&self, company: &str) -> (String, String, String) {
        let email = format!("billing-{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
        let (status, body) = self
            .app
            .call(
                "POST",
                "/api/admin/partners",
                Some("admin"),
                Some(json!({"companyName": company, "primaryEmail": email})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["partnerId"].as_str().expect("id").to_string();
        let token = self.app.partner_token(&id);
        (id, token, email)
    }

    pub async fn as_partner(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.app.call_with_token(method, path, token, body).await
    }

    /// A partner's call carrying an `Idempotency-Key` header.
    pub async fn as_partner_keyed(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        key: &str,
    ) -> (u16, Value) {
        let mut headers = vec![
            ("authorization".to_string(), format!("Bearer {token}")),
            ("idempotency-key".to_string(), key.to_string()),
        ];
        if body.is_some() {
            headers.push(("content-type".to_string(), "application/json".to_string()));
        }
        let call = devtools::event::HttpCall {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers,
            body: body.map(|b| b.to_string().into_bytes()),
        };
        let response = self.app.gateway.call(call).await;
        let status = response.status().as_u16();
        let value = match response.body() {
            lambda_http::Body::Text(s) => serde_json::from_str(s).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        (status, value)
    }

    /// A call to the emulator's Stripe API (`/v1/…`, form-encoded), as Stripe's own
    /// clients make it, with an optional `Idempotency-Key`.
    pub async fn stripe_api(
        &self,
        method: &str,
        path: &str,
        form: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let body: String =
            form.iter().map(|(k, v)| format!("{}={}", form_escape(k), form_escape(v))).collect::<Vec<_>>().join("&");
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}/v1/{}", self.emulator.base_url(), path.trim_start_matches('/')))
            .header("authorization", "Bearer sk_test_tierdesk_tests")
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(key) = idempotency_key {
            req = req.header("idempotency-key", key);
        }
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let resp = client.request(req.body(Full::new(Bytes::from(body))).expect("request")).await.expect("emulator");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Subscribes through Checkout and pays; returns the subscription id.
    pub async fn subscribe(&self, token: &str, tier: &str, period: &str) -> String {
        let (status, session) = self
            .as_partner(token, "POST", "/api/billing/subscribe", Some(json!({"tierId": tier, "billingPeriod": period})))
            .await;
        assert_eq!(status, 201, "{session}");
        let id = session["checkoutSessionId"].as_str().expect("session id");
        let (status, done) = post(&self.control(&format!("checkout/sessions/{id}/complete")), json!({})).await;
        assert_eq!(status, 200, "{done}");
        self.emulator.flush().await;
        let (_, sub) = self.as_partner(token, "GET", "/api/billing/subscription", None).await;
        sub["stripeSubscriptionId"].as_str().expect("subscribed").to_string()
    }

    pub async fn advance(&self, subscription_id: &str) -> Value {
        let (status, body) = post(&self.control(&format!("subscriptions/{subscription_id}/advance")), json!({})).await;
        assert_eq!(status, 200, "{body}");
        self.emulator.flush().await;
        body
    }

    pub async fn retry_invoice(&self, invoice_id: &str) -> Value {
        let (status, body) = post(&self.control(&format!("invoices/{invoice_id}/retry")), json!({})).await;
        assert_eq!(status, 200, "{body}");
        self.emulator.flush().await;
        body
    }

    pub async fn card_fails(&self, customer_id: &str, fails: bool) {
        let (status, body) =
            post(&self.control(&format!("customers/{customer_id}/card")), json!({"fails": fails})).await;
        assert_eq!(status, 200, "{body}");
    }

    /// Every event the emulator sent, with the status each delivery got.
    pub async fn events(&self) -> Vec<Value> {
        let (_, body) = get(&self.control("events")).await;
        body["data"].as_array().or_else(|| body.as_array()).cloned().unwrap_or_default()
    }

    /// Subjects of the emails `address` received, oldest first.
    pub async fn subjects(address: &str) -> Vec<String> {
        ses::emails_to(address).await.iter().map(|e| e["subject"].as_str().unwrap_or_default().to_string()).collect()
    }
}

/// `application/x-www-form-urlencoded` escaping of one key or value.
fn form_escape(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
