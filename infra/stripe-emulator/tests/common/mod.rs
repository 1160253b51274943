//! Test helpers: an emulator with a webhook receiver on 127.0.0.1:0, a raw HTTP client for
//! the API and the control endpoints, and signature-checked event parsing.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use stripe_emulator::{Emulator, EmulatorConfig};
use tokio::task::JoinHandle;

pub const SECRET: &str = "whsec_test_secret";

#[derive(Clone, Debug)]
pub struct Delivery {
    pub signature: String,
    pub payload: String,
}

impl Delivery {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.payload).expect("event JSON")
    }

    pub fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }

    /// The signature's `t`.
    pub fn signed_at(&self) -> i64 {
        self.signature.split(',').find_map(|p| p.strip_prefix("t=")).and_then(|t| t.parse().ok()).expect("t=")
    }
}

#[derive(Default)]
struct ReceiverState {
    deliveries: Mutex<Vec<Delivery>>,
    /// Answer the next N requests with 500.
    fail_next: AtomicUsize,
    requests: AtomicUsize,
}

/// A webhook endpoint that records what it receives.
pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
    task: JoinHandle<()>,
}

async fn receive(State(state): State<Arc<ReceiverState>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let failing = state.fail_next.load(Ordering::SeqCst);
    if failing > 0 {
        state.fail_next.store(failing - 1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let payload = String::from_utf8(body.to_vec()).expect("utf-8 body");
    state.deliveries.lock().unwrap().push(Delivery { signature, payload });
    StatusCode::OK
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let state = Arc::new(ReceiverState::default());
        let router = Router::new().route("/hook", post(receive)).with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Receiver { url, state, task }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.deliveries.lock().unwrap().clone()
    }

    pub fn types(&self) -> Vec<String> {
        self.deliveries().iter().map(Delivery::event_type).collect()
    }

    /// Forgets what was received so far.
    pub fn take(&self) -> Vec<Delivery> {
        std::mem::take(&mut *self.state.deliveries.lock().unwrap())
    }

    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub struct Harness {
    pub emulator: Emulator,
    pub receiver: Receiver,
}

impl Harness {
    /// An emulator (clock fixed at `now`, or the system clock) sending to a fresh receiver.
    pub async fn start(now: Option<i64>) -> Harness {
        // The receiver starts after the emulator and is attached at runtime, as Tierdesk's
        // tests do with their webhook gateway.
        let emulator =
            Emulator::start(EmulatorConfig { webhook_url: None, webhook_secret: "whsec_unused".into(), now })
                .await
                .unwrap();
        let receiver = Receiver::start().await;
        let (status, _) = control(
            &emulator.base_url(),
            "/_emulator/webhook",
            serde_json::json!({"url": receiver.url, "secret": SECRET}),
        )
        .await;
        assert_eq!(status, 200);
        Harness { emulator, receiver }
    }

    pub fn base(&self) -> String {
        self.emulator.base_url()
    }

    pub async fn api(&self, method: &str, path: &str, form: &str) -> (u16, Value) {
        let (status, _, body) = api(&self.base(), method, path, form, None).await;
        (status, body)
    }

    pub async fn control(&self, path: &str, body: Value) -> (u16, Value) {
        control(&self.base(), path, body).await
    }

    /// Every event received so far, signature-checked and parsed by async-stripe. Each is
    /// checked as of its own signing time: tests move the emulator clock ahead of the system
    /// clock, which the plain `construct_event` would reject as a stale timestamp.
    pub fn verified_events(&self) -> Vec<stripe_webhook::Event> {
        self.receiver
            .deliveries()
            .iter()
            .map(|d| {
                stripe_webhook::Webhook::construct_event_with_timestamp(&d.payload, &d.signature, SECRET, d.signed_at())
                    .unwrap_or_else(|e| panic!("event {} rejected: {e:?}", d.event_type()))
            })
            .collect()
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub async fn request(method: &str, url: &str, headers: &[(&str, &str)], body: String) -> (u16, HeaderMap, Value) {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = client().request(builder.body(Full::new(Bytes::from(body))).unwrap()).await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, value)
}

/// A Stripe API call with a test key: `form` is the query for GET, the body otherwise.
pub async fn api(base: &str, method: &str, path: &str, form: &str, key: Option<&str>) -> (u16, HeaderMap, Value) {
    let mut headers =
        vec![("authorization", "Bearer sk_test_emulator"), ("content-type", "application/x-www-form-urlencoded")];
    if let Some(key) = key {
        headers.push(("idempotency-key", key));
    }
    if method == "GET" {
        let url = if form.is_empty() { format!("{base}{path}") } else { format!("{base}{path}?{form}") };
        request(method, &url, &headers, String::new()).await
    } else {
        request(method, &format!("{base}{path}"), &headers, form.to_owned()).await
    }
}

pub async fn control(base: &str, path: &str, body: Value) -> (u16, Value) {
    let (status, _, value) =
        request("POST", &format!("{base}{path}"), &[("content-type", "application/json")], body.to_string()).await;
    (status, value)
}

pub fn s(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("not a string: {value}")).to_owned()
}
