//! Test harness: every test gets its own table in DynamoDB Local (created from
//! `template.yaml`) and its own gateway and signing secret, so tests never see each
//! other's data and can run in parallel.

pub mod ses;
pub mod stripe;

use aws_sdk_dynamodb::types::AttributeValue;
use devtools::gateway::{self, Gateway};
use devtools::{jwt, routes, seed};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tierdesk::domain::permissions::Grants;
use tierdesk::store::Store;
use tierdesk::Config;

pub type Item = HashMap<String, AttributeValue>;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn read_repo_file(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

pub fn endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT")
        .expect("DYNAMODB_ENDPOINT is not set: run the integration tests through `make test`")
}

pub struct TestApp {
    pub table: String,
    pub config: Config,
    pub store: Store,
    pub gateway: Arc<Gateway>,
    secret: String,
}

impl TestApp {
    /// What a function is built from, over this test's table: the system clock and
    /// ULIDs until the test replaces them (`with_clock`, `with_ids`).
    pub fn function_app(&self) -> tierdesk::app::App {
        tierdesk::app::App::new(self.store.clone(), self.config.clone())
    }

    pub async fn new() -> Self {
        Self::build(None, Grants::SEED_000).await
    }

    /// A fresh app whose billing functions use `services` (a Stripe emulator of the
    /// test's own, a clock that follows it).
    pub async fn with_services(services: gateway::Services) -> Self {
        Self::build(Some(services), Grants::SEED_000).await
    }

    async fn build(services: Option<gateway::Services>, grants: Grants) -> Self {
        let table = format!("t-{}", ulid::Ulid::new().to_string().to_lowercase());
        let config = Config { grants, ..Config::for_table(&table, Some(endpoint())) };
        let store = Store::connect(&config).await;
        tierdesk::store::table::create_from_template(store.client(), &read_repo_file("template.yaml"), &table)
            .await
            .expect("create test table");
        let secret = format!("test-secret-{table}");
        let routes = routes::from_template(&read_repo_file("template.yaml")).expect("template routes");
        let handlers = match &services {
            Some(services) => gateway::handlers_with(store.clone(), &config, services).await,
            None => gateway::handlers(&config).await,
        };
        let gateway = Arc::new(Gateway::new(routes, &handlers, secret.clone()).expect("gateway"));
        Self { table, config, store, gateway, secret }
    }

    /// A fresh app with the default catalog in place.
    pub async fn seeded() -> Self {
        Self::seeded_under(Grants::SEED_000).await
    }

    /// The same, with every function judging roles by `grants` instead of seed
    /// 000's table (to hold apart permissions seed 000 always grants together).
    pub async fn seeded_under(grants: Grants) -> Self {
        let app = Self::build(None, grants).await;
        let (status, body) = app.call("POST", "/api/admin/tiers/initialize", Some("admin"), None).await;
        assert_eq!(status, 200, "{body}");
        app
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn token(&self, role: &str) -> String {
        self.token_as(role, &format!("user-{role}"))
    }

    pub fn token_as(&self, role: &str, subject: &str) -> String {
        jwt::token_for(role, None, subject, chrono::Utc::now().timestamp(), 600, &self.secret)
    }

    /// A call through the gateway (route match, token check, event, handler).
    pub async fn call(&self, method: &str, path: &str, role: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let token = role.map(|r| self.token(r));
        seed::call_json(&self.gateway, method, path, token.as_deref(), body).await
    }

    pub async fn call_with_token(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        seed::call_json(&self.gateway, method, path, Some(token), body).await
    }

    pub fn partner_token(&self, partner_id: &str) -> String {
        jwt::token_for(
            "partner",
            Some(partner_id),
            &format!("user-{partner_id}"),
            chrono::Utc::now().timestamp(),
            600,
            &self.secret,
        )
    }

    /// A call whose answer is kept as bytes with its headers (PDFs).
    pub async fn call_bytes(&self, method: &str, path: &str, role: &str) -> (u16, http::HeaderMap, Vec<u8>) {
        self.call_bytes_as(method, path, Some(role)).await
    }

    /// As `call_bytes`; `None` calls without a token (the public PDF of a quote link).
    pub async fn call_bytes_as(&self, method: &str, path: &str, role: Option<&str>) -> (u16, http::HeaderMap, Vec<u8>) {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let call = devtools::event::HttpCall {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: role.map(|r| ("authorization".into(), format!("Bearer {}", self.token(r)))).into_iter().collect(),
            body: None,
        };
        let response = self.gateway.call(call).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = match response.body() {
            lambda_http::Body::Text(s) => s.as_bytes().to_vec(),
            lambda_http::Body::Binary(b) => b.clone(),
            _ => Vec::new(),
        };
        (status, headers, bytes)
    }

    /// A call whose answer is read as text with its headers (CSV exports).
    pub async fn call_text(&self, method: &str, path: &str, role: &str) -> (u16, http::HeaderMap, String) {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let call = devtools::event::HttpCall {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: vec![("authorization".into(), format!("Bearer {}", self.token(role)))],
            body: None,
        };
        let response = self.gateway.call(call).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = match response.body() {
            lambda_http::Body::Text(s) => s.clone(),
            lambda_http::Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        (status, headers, text)
    }

    /// Makes one call as `role` and checks the answer against the role matrix: an
    /// allowed call succeeds; a refused one is 401 (anonymous), 404 (a partner on the
    /// admin surface) or 403 naming the permission, and writes nothing.
    pub async fn assert_access(
        &self,
        method: &str,
        path: &str,
        role: Option<&str>,
        body: Option<Value>,
        allowed: bool,
    ) {
        let before = self.snapshot().await;
        let (status, resp) = self.call(method, path, role, body).await;
        let who = role.unwrap_or("anonymous");
        if allowed {
            assert!((200..300).contains(&status), "{who} {method} {path} should be allowed, got {status} {resp}");
            return;
        }
        let expected = match role {
            None => 401,
            Some("partner") => 404,
            Some(_) => 403,
        };
        assert_eq!(status, expected, "{who} {method} {path}: {resp}");
        if expected == 403 {
            assert_eq!(resp["error"]["code"], "forbidden", "{resp}");
            assert!(resp["error"]["details"]["permission"].is_string(), "{resp}");
        }
        assert_eq!(self.snapshot().await, before, "{who} {method} {path} wrote something");
    }

    /// Creates a partner as an admin and returns it.
    pub async fn create_partner(&self, company: &str) -> Value {
        let local: String = company.chars().filter(char::is_ascii_alphanumeric).collect();
        let email = format!("{local}-{}@example.com", ulid::Ulid::new());
        let (status, body) = self
            .call(
                "POST",
                "/api/admin/partners",
                Some("admin"),
                Some(serde_json::json!({"companyName": company, "primaryEmail": email.to_lowercase()})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Every item of this test's table as JSON (Scan: a test reading its own table).
    pub async fn items(&self) -> Vec<Value> {
        self.snapshot().await.iter().map(|s| serde_json::from_str(s).expect("item json")).collect()
    }

    /// A call with a raw body (for malformed JSON).
    pub async fn call_raw(&self, method: &str, path: &str, role: &str, body: &[u8]) -> (u16, Value) {
        let call = devtools::event::HttpCall {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: vec![
                ("authorization".into(), format!("Bearer {}", self.token(role))),
                ("content-type".into(), "application/json".into()),
            ],
            body: Some(body.to_vec()),
        };
        let response = self.gateway.call(call).await;
        let status = response.status().as_u16();
        let value = match response.body() {
            lambda_http::Body::Text(s) => serde_json::from_str(s).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        (status, value)
    }

    /// Every item of this test's table, sorted by key: a precise "nothing changed"
    /// check. (Scan is fine here: a test reading its own private table.)
    pub async fn snapshot(&self) -> Vec<String> {
        let mut items: Vec<String> = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .store
                .client()
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .expect("scan");
            for item in out.items.unwrap_or_default() {
                // serde_json maps are ordered, so equal items print equally.
                let value: Value = serde_dynamo::from_item(item).expect("item as JSON");
                items.push(value.to_string());
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        items.sort();
        items
    }

    /// Items under one partition key, in sort-key order.
    pub async fn partition(&self, pk: &str) -> Vec<Item> {
        self.store
            .client()
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("query")
            .items
            .unwrap_or_default()
    }

    /// Puts a raw item (to stage facts other areas would have written).
    pub async fn put_raw(&self, item: Item) {
        self.store.client().put_item().table_name(&self.table).set_item(Some(item)).send().await.expect("put");
    }
}

pub fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Makes DynamoDB answer one operation with a service error, as real DynamoDB
/// does under load and DynamoDB Local never does.
#[derive(Debug)]
pub struct FaultInjector {
    pub operation: &'static str,
    /// e.g. `ThrottlingException`, `TransactionConflict` (inside a cancellation).
    pub body: String,
    /// How many calls fail; `u32::MAX` is every call.
    remaining: std::sync::atomic::AtomicU32,
}

/// Marks, in the attempt's config bag, that this attempt was made to fail.
#[derive(Debug, Clone)]
struct Faulted;

impl aws_smithy_types::config_bag::Storable for Faulted {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl FaultInjector {
    pub fn throttle(operation: &'static str) -> Self {
        Self {
            operation,
            body: r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#.into(),
            remaining: u32::MAX.into(),
        }
    }

    pub fn transaction_conflict() -> Self {
        Self {
            operation: "TransactWriteItems",
            body: r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled","CancellationReasons":[{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"},{"Code":"None"}]}"#.into(),
            remaining: u32::MAX.into(),
        }
    }

    /// Only the first `n` matching calls fail.
    pub fn times(self, n: u32) -> Self {
        self.remaining.store(n, std::sync::atomic::Ordering::SeqCst);
        self
    }
}

impl FaultInjector {
    fn applies(&self, cfg: &aws_smithy_types::config_bag::ConfigBag) -> bool {
        cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>().is_some_and(|m| m.name() == self.operation)
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for FaultInjector {
    fn name(&self) -> &'static str {
        "test.FaultInjector"
    }

    /// The request must not be applied, as a throttled or conflicted request is not:
    /// pointing it at an operation that does not exist makes DynamoDB Local refuse it.
    fn modify_before_transmit(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _rc: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        use std::sync::atomic::Ordering;
        let take = |n: u32| if n == u32::MAX { Some(n) } else { n.checked_sub(1) };
        if self.applies(cfg) && self.remaining.fetch_update(Ordering::SeqCst, Ordering::SeqCst, take).is_ok() {
            context.request_mut().headers_mut().insert("x-amz-target", "DynamoDB_20120810.InjectedFault");
            cfg.interceptor_state().store_put(Faulted);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut<
            '_,
        >,
        _rc: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if self.applies(cfg) && cfg.load::<Faulted>().is_some() {
            let response = context.response_mut();
            *response.status_mut() = 400u16.try_into()?;
            *response.body_mut() = aws_smithy_types::body::SdkBody::from(self.body.clone());
        }
        Ok(())
    }
}

impl TestApp {
    /// The same app, but its functions talk to DynamoDB through `fault`.
    pub async fn with_fault(&self, fault: FaultInjector) -> Arc<Gateway> {
        let store = Store::connect_with_interceptor(&self.config, fault).await;
        let handlers = gateway::handlers_on(store, &self.config).await;
        let routes = routes::from_template(&read_repo_file("template.yaml")).expect("template routes");
        Arc::new(Gateway::new(routes, &handlers, self.secret.clone()).expect("gateway"))
    }
}

impl TestApp {
    /// A call with extra headers (`Idempotency-Key`, …), answered with its headers.
    pub async fn call_with_headers(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, http::HeaderMap, Value) {
        let mut all = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(t) = token {
            all.push(("authorization".into(), format!("Bearer {t}")));
        }
        all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let call = devtools::event::HttpCall {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: all,
            body: body.map(|b| b.to_string().into_bytes()),
        };
        let response = self.gateway.call(call).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let value = match response.body() {
            lambda_http::Body::Text(s) => serde_json::from_str(s).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        (status, headers, value)
    }
}

/// A call repeated as a well-behaved client does while the answer is `409
/// concurrent_update` (nothing was applied; the body says "retry"). DynamoDB Local
/// answers contention on a hot item with lock-wait timeouts that the store turns into
/// that answer once its own bounded retries run out, which a loaded machine reaches.
/// Every other answer comes back as it is, so invariants are still checked on them.
pub async fn retrying_conflicts<F, Fut>(mut call: F) -> (u16, Value)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    let mut attempt: u64 = 0;
    loop {
        let (status, body) = call().await;
        attempt += 1;
        if status != 409 || body["error"]["code"] != "concurrent_update" || attempt >= 30 {
            return (status, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10 * attempt.min(10))).await;
    }
}
