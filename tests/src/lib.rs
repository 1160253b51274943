//! Test harness: every test gets its own table in DynamoDB Local (created from
//! `template.yaml`) and its own gateway and signing secret, so tests never see each
//! other's data and can run in parallel.

use aws_sdk_dynamodb::types::AttributeValue;
use devtools::gateway::{self, Gateway};
use devtools::{jwt, routes, seed};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
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
    pub async fn new() -> Self {
        let table = format!("t-{}", ulid::Ulid::new().to_string().to_lowercase());
        let config = Config::for_table(&table, Some(endpoint()));
        let store = Store::connect(&config).await;
        tierdesk::store::table::create_from_template(store.client(), &read_repo_file("template.yaml"), &table)
            .await
            .expect("create test table");
        let secret = format!("test-secret-{table}");
        let routes = routes::from_template(&read_repo_file("template.yaml")).expect("template routes");
        let handlers = gateway::handlers(&config).await;
        let gateway = Arc::new(Gateway::new(routes, &handlers, secret.clone()).expect("gateway"));
        Self { table, config, store, gateway, secret }
    }

    /// A fresh app with the default catalog in place.
    pub async fn seeded() -> Self {
        let app = Self::new().await;
        let (status, body) = app.call("POST", "/api/admin/tiers/initialize", Some("admin"), None).await;
        assert_eq!(status, 200, "{body}");
        app
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
