//! Real API Gateway HTTP API (payload 2.0) events, the same shape as
//! `events/*.json`. Requests are turned into these and then through lambda_http's
//! own conversion, so locally a handler sees exactly what it sees in Lambda.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Default)]
pub struct HttpCall {
    pub method: String,
    pub path: String,
    /// Raw query string without `?`.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// What the gateway decided about the call: which route matched and who is calling.
#[derive(Debug, Clone, Default)]
pub struct RouteMatch {
    /// `METHOD /template/path/{param}`.
    pub route_key: String,
    pub path_params: Vec<(String, String)>,
    /// Verified token claims, absent on public routes.
    pub claims: Option<Map<String, Value>>,
}

/// API Gateway hands every claim to the Lambda as a string; arrays become `[a b]`.
pub fn flatten_claims(claims: &Map<String, Value>) -> Map<String, Value> {
    claims
        .iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => {
                    let parts: Vec<String> =
                        items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string)).collect();
                    format!("[{}]", parts.join(" "))
                }
                other => other.to_string(),
            };
            (k.clone(), Value::String(s))
        })
        .collect()
}

pub fn build(call: &HttpCall, route: &RouteMatch, request_id: &str, now: DateTime<Utc>) -> Value {
    let mut headers = Map::new();
    for (k, v) in &call.headers {
        let key = k.to_ascii_lowercase();
        let joined = match headers.get(&key).and_then(Value::as_str) {
            Some(prev) => format!("{prev},{v}"),
            None => v.clone(),
        };
        headers.insert(key, Value::String(joined));
    }
    let mut query = Map::new();
    for (k, v) in form_urlencoded::parse(call.query.as_bytes()) {
        let joined = match query.get(k.as_ref()).and_then(Value::as_str) {
            Some(prev) => format!("{prev},{v}"),
            None => v.into_owned(),
        };
        query.insert(k.into_owned(), Value::String(joined));
    }
    let path_params: Map<String, Value> =
        route.path_params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let (body, is_base64) = match &call.body {
        None => (Value::Null, false),
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => (Value::String(text.to_string()), false),
            Err(_) => (Value::String(STANDARD.encode(b)), true),
        },
    };
    let user_agent = headers.get("user-agent").cloned().unwrap_or(Value::String(String::new()));
    let mut event = json!({
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": call.path,
        "rawQueryString": call.query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "127",
            "http": {
                "method": call.method,
                "path": call.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": is_base64,
    });
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !path_params.is_empty() {
        event["pathParameters"] = Value::Object(path_params);
    }
    if !body.is_null() {
        event["body"] = body;
    }
    if let Some(claims) = &route.claims {
        event["requestContext"]["authorizer"] = json!({ "jwt": { "claims": flatten_claims(claims), "scopes": null } });
    }
    event
}

pub fn to_request(event: &Value) -> Result<lambda_http::Request, serde_json::Error> {
    lambda_http::request::from_str(&event.to_string())
}
