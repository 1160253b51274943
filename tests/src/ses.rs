//! Reads what the SES emulator (aws-ses-v2-local) received: `GET {SES_ENDPOINT}/store`
//! answers `{"emails":[{messageId, from, replyTo[], destination{to,cc,bcc},
//! subject, body{html,text}, at}, …]}`. The emulator is shared by every test, so
//! tests look only at their own (unique) recipient addresses.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The emulator's base URL (`SES_ENDPOINT`, set by `make test`).
pub fn endpoint() -> String {
    std::env::var("SES_ENDPOINT").expect("SES_ENDPOINT is not set: run the integration tests through `make test`")
}

/// Every email the emulator holds, oldest first.
pub async fn emails() -> Vec<Value> {
    let uri: hyper::Uri = format!("{}/store", endpoint().trim_end_matches('/')).parse().expect("SES store URI");
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = client.get(uri).await.expect("GET SES store");
    assert!(response.status().is_success(), "SES store answered {}", response.status());
    let body = response.into_body().collect().await.expect("SES store body").to_bytes();
    let mut store: Value = serde_json::from_slice(&body).expect("SES store JSON");
    match store["emails"].take() {
        Value::Array(emails) => emails,
        other => panic!("SES store has no emails array: {other}"),
    }
}

/// The emails addressed to `address` (to, cc or bcc; case-insensitive), oldest first.
pub async fn emails_to(address: &str) -> Vec<Value> {
    let wanted = address.trim().to_lowercase();
    emails()
        .await
        .into_iter()
        .filter(|email| {
            ["to", "cc", "bcc"].iter().any(|field| {
                email["destination"][field]
                    .as_array()
                    .is_some_and(|list| list.iter().filter_map(Value::as_str).any(|a| recipient_address(a) == wanted))
            })
        })
        .collect()
}

/// `Name <a@b>` → `a@b`, lowercased.
fn recipient_address(raw: &str) -> String {
    let raw = raw.trim();
    let inner = match (raw.rfind('<'), raw.rfind('>')) {
        (Some(start), Some(end)) if start < end => &raw[start + 1..end],
        _ => raw,
    };
    inner.trim().to_lowercase()
}
