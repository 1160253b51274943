//! Table bootstrap and demo data for the local stack. Seeding goes through the
//! gateway with an admin token, so it takes the same path as any client and is
//! idempotent for the same reasons (conditional creates).

use crate::event::HttpCall;
use crate::gateway::Gateway;
use crate::jwt;
use lambda_http::Body;
use serde_json::{json, Value};

pub async fn call_json(
    gateway: &Gateway,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(t) = token {
        headers.push(("authorization".into(), format!("Bearer {t}")));
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let call = HttpCall {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        headers,
        body: body.map(|b| b.to_string().into_bytes()),
    };
    let response = gateway.call(call).await;
    let status = response.status().as_u16();
    let value = match response.body() {
        Body::Text(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        Body::Binary(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, value)
}

/// Seed 002's "Signature" segment: a three-tier matrix with a popular middle tier.
fn demo_tiers() -> Vec<Value> {
    let tier = |id: &str, name: &str, level: u32, monthly: i64, popular: bool, guests: u64, features: Value| {
        json!({
            "tierId": id, "name": name, "segment": "signature", "tierLevel": level, "popular": popular,
            "sortOrder": level * 10, "isPremium": level > 1, "type": "dealer",
            "prices": {"monthly": monthly, "yearly": monthly * 12}, "commitmentMonths": 12,
            "upgradeIncentivePercent": if level > 1 { json!(5) } else { Value::Null },
            "limits": {"maxGuests": guests, "listings": level * 5},
            "features": features,
        })
    };
    let f = |id: &str, name: &str| json!({"featureId": id, "name": name});
    vec![
        tier(
            "signature-essential",
            "Signature Essential",
            1,
            500_000,
            false,
            50,
            json!([
                f("coverage_4h", "4hr coverage"),
                f("photos_200", "200 photos"),
                f("online_gallery", "Online gallery")
            ]),
        ),
        tier(
            "signature-select",
            "Signature Select",
            2,
            750_000,
            true,
            100,
            json!([
                f("coverage_6h", "6hr coverage"),
                f("photos_400", "400 photos"),
                f("online_gallery", "Online gallery"),
                f("album", "Album"),
                f("engagement_shoot", "Engagement shoot")
            ]),
        ),
        tier(
            "signature-complete",
            "Signature Complete",
            3,
            1_000_000,
            false,
            150,
            json!([
                f("coverage_8h", "8hr coverage"),
                f("photos_unlimited", "Unlimited photos"),
                f("online_gallery", "Online gallery"),
                f("album", "Two albums"),
                f("video", "Video")
            ]),
        ),
    ]
}

/// Default tiers plus the demo segment. Returns one line per step for the log.
pub async fn seed(gateway: &Gateway, secret: &str) -> Result<Vec<String>, String> {
    let now = chrono::Utc::now().timestamp();
    let admin = jwt::token_for("admin", None, "seed-admin", now, 300, secret);
    let mut log = Vec::new();
    let (status, body) = call_json(gateway, "POST", "/api/admin/tiers/initialize", Some(&admin), None).await;
    if status != 200 {
        return Err(format!("initialize failed: {status} {body}"));
    }
    log.push(format!("default tiers: created {} existing {}", body["created"], body["existing"]));
    for demo in demo_tiers() {
        let id = demo["tierId"].as_str().unwrap_or_default().to_string();
        let (status, body) = call_json(gateway, "POST", "/api/admin/tiers", Some(&admin), Some(demo)).await;
        match status {
            201 => log.push(format!("demo tier {id}: created")),
            409 => log.push(format!("demo tier {id}: exists")),
            _ => return Err(format!("demo tier {id} failed: {status} {body}")),
        }
    }
    Ok(log)
}
