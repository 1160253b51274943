//! Malformed bodies: each gets a 400 naming the failing field, and the table is
//! exactly as it was.

use serde_json::{json, Value};
use tierdesk_tests::TestApp;

fn valid() -> Value {
    json!({"tierId": "bronze", "name": "Bronze", "prices": {"monthly": 1000, "yearly": 10000}})
}

fn with(key: &str, value: Value) -> Value {
    let mut v = valid();
    v[key] = value;
    v
}

fn without(key: &str) -> Value {
    let mut v = valid();
    v.as_object_mut().unwrap().remove(key);
    v
}

/// (case, body, a field `details.fields` must name)
fn create_cases() -> Vec<(&'static str, Value, &'static str)> {
    let huge = "x".repeat(20_000);
    vec![
        ("missing tierId", without("tierId"), "tierId"),
        ("missing name", without("name"), "name"),
        ("missing prices", without("prices"), "prices"),
        ("tierId wrong type", with("tierId", json!(42)), "tierId"),
        ("tierId upper case", with("tierId", json!("Gold")), "tierId"),
        ("tierId with #", with("tierId", json!("a#b")), "tierId"),
        ("tierId too long", with("tierId", json!("a".repeat(41))), "tierId"),
        ("tierId reserved", with("tierId", json!("initialize")), "tierId"),
        ("name empty", with("name", json!("   ")), "name"),
        ("name huge", with("name", json!(huge)), "name"),
        ("name wrong type", with("name", json!(["a"])), "name"),
        ("description huge", with("description", json!("d".repeat(5_000))), "description"),
        ("name control chars", with("name", json!("a\u{0007}b")), "name"),
        ("prices not object", with("prices", json!(1000)), "prices"),
        ("monthly negative", with("prices", json!({"monthly": -1, "yearly": 0})), "prices.monthly"),
        ("monthly float", with("prices", json!({"monthly": 10.5, "yearly": 0})), "prices.monthly"),
        ("monthly string", with("prices", json!({"monthly": "1000", "yearly": 0})), "prices.monthly"),
        ("monthly absurd", with("prices", json!({"monthly": 10_000_000_000_000_i64, "yearly": 0})), "prices.monthly"),
        ("yearly missing", with("prices", json!({"monthly": 1})), "prices.yearly"),
        ("prices unknown key", with("prices", json!({"monthly": 1, "yearly": 1, "weekly": 1})), "prices.weekly"),
        ("currency bad", with("currency", json!("USD")), "currency"),
        ("type bad", with("type", json!("enterprise")), "type"),
        ("tierLevel zero", with("tierLevel", json!(0)), "tierLevel"),
        ("tierLevel negative", with("tierLevel", json!(-3)), "tierLevel"),
        ("sortOrder float", with("sortOrder", json!(1.5)), "sortOrder"),
        ("commitmentMonths too big", with("commitmentMonths", json!(1000)), "commitmentMonths"),
        ("pcrMultiplier negative", with("pcrMultiplier", json!(-1)), "pcrMultiplier"),
        ("pcrMultiplier string", with("pcrMultiplier", json!("2.5")), "pcrMultiplier"),
        ("incentive over 100", with("upgradeIncentivePercent", json!(150)), "upgradeIncentivePercent"),
        ("incentive 3 decimals", with("upgradeIncentivePercent", json!(5.125)), "upgradeIncentivePercent"),
        ("isPremium not bool", with("isPremium", json!("yes")), "isPremium"),
        ("limits not object", with("limits", json!([1, 2])), "limits"),
        ("limit negative", with("limits", json!({"listings": -1})), "limits.listings"),
        ("limit bad name", with("limits", json!({"bad name": 1})), "limits.bad name"),
        ("features not array", with("features", json!({"a": 1})), "features"),
        ("feature missing name", with("features", json!([{"featureId": "a"}])), "features[0].name"),
        ("feature unknown key", with("features", json!([{"featureId": "a", "name": "A", "x": 1}])), "features[0].x"),
        (
            "feature duplicate ids",
            with("features", json!([{"featureId": "a", "name": "A"}, {"featureId": "a", "name": "B"}])),
            "features",
        ),
        (
            "feature usageLimit negative",
            with("features", json!([{"featureId": "a", "name": "A", "usageLimit": -5}])),
            "features[0].usageLimit",
        ),
        ("unknown field", with("color", json!("gold")), "color"),
        ("server-owned status", with("status", json!("archived")), "status"),
        ("server-owned version", with("version", json!(3)), "version"),
        ("server-owned createdBy", with("createdBy", json!("mallory")), "createdBy"),
        ("body is an array", json!([valid()]), "body"),
        ("body is a string", json!("tier"), "body"),
        ("body is null", Value::Null, "body"),
    ]
}

#[tokio::test]
async fn malformed_create_bodies_are_400_and_write_nothing() {
    let app = TestApp::seeded().await;
    let before = app.snapshot().await;
    let cases = create_cases();
    assert!(cases.len() >= 30);
    for (case, body, field) in cases {
        let (status, resp) = app.call("POST", "/api/admin/tiers", Some("admin"), Some(body)).await;
        assert_eq!(status, 400, "{case}: {resp}");
        assert_eq!(resp["error"]["code"], "validation_failed", "{case}: {resp}");
        assert!(resp["error"]["details"]["fields"][field].is_string(), "{case}: expected field {field} in {resp}");
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn invalid_json_and_oversized_bodies() {
    let app = TestApp::seeded().await;
    let before = app.snapshot().await;
    let raw: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", br#"{"tierId": "a", "name": "#.to_vec()),
        ("trailing comma", br#"{"tierId": "a",}"#.to_vec()),
        ("single quotes", b"{'tierId': 'a'}".to_vec()),
        ("not json", b"tierId=a&name=b".to_vec()),
        ("empty", b"".to_vec()),
        ("invalid utf-8", vec![0x7b, 0xff, 0xfe, 0x7d]),
        ("deep nesting", format!("{}{}", "[".repeat(500), "]".repeat(500)).into_bytes()),
    ];
    for (case, body) in raw {
        let (status, resp) = app.call_raw("POST", "/api/admin/tiers", "admin", &body).await;
        assert_eq!(status, 400, "{case}: {resp}");
        assert_eq!(resp["error"]["code"], "invalid_json", "{case}: {resp}");
        assert!(resp["error"]["details"]["fields"]["body"].is_string(), "{case}");
    }
    let big = json!({"tierId": "a", "name": "b", "description": "x".repeat(70_000)}).to_string();
    let (status, resp) = app.call_raw("POST", "/api/admin/tiers", "admin", big.as_bytes()).await;
    assert_eq!(status, 413, "{resp}");
    assert_eq!(resp["error"]["code"], "body_too_large");
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn malformed_update_and_feature_bodies() {
    let app = TestApp::seeded().await;
    let before = app.snapshot().await;
    let cases: Vec<(&str, &str, &str, Value, &str)> = vec![
        ("PUT", "/api/admin/tiers/gold", "no version", json!({"name": "x"}), "version"),
        ("PUT", "/api/admin/tiers/gold", "version string", json!({"version": "1", "name": "x"}), "version"),
        ("PUT", "/api/admin/tiers/gold", "version zero", json!({"version": 0}), "version"),
        ("PUT", "/api/admin/tiers/gold", "tierId not editable", json!({"version": 1, "tierId": "x"}), "tierId"),
        ("PUT", "/api/admin/tiers/gold", "status not editable", json!({"version": 1, "status": "archived"}), "status"),
        (
            "PUT",
            "/api/admin/tiers/gold",
            "bad price",
            json!({"version": 1, "prices": {"monthly": -5, "yearly": 1}}),
            "prices.monthly",
        ),
        ("POST", "/api/admin/tiers/gold/features", "feature no id", json!({"name": "x"}), "featureId"),
        (
            "POST",
            "/api/admin/tiers/gold/features",
            "feature bad id",
            json!({"featureId": "A B", "name": "x"}),
            "featureId",
        ),
        (
            "POST",
            "/api/admin/tiers/gold/features",
            "feature unknown",
            json!({"featureId": "ab", "name": "x", "price": 1}),
            "price",
        ),
        (
            "PUT",
            "/api/admin/tiers/gold/features/pcr_boost",
            "feature enabled string",
            json!({"enabled": "no"}),
            "enabled",
        ),
        (
            "PUT",
            "/api/admin/tiers/gold/features/pcr_boost",
            "feature featureId not editable",
            json!({"featureId": "zz"}),
            "featureId",
        ),
        (
            "POST",
            "/api/tiers/upgrade-price",
            "upgrade same tier",
            json!({"fromTierId": "gold", "toTierId": "gold", "billingPeriod": "monthly"}),
            "toTierId",
        ),
    ];
    for (method, path, case, body, field) in cases {
        let (status, resp) = app.call(method, path, Some("admin"), Some(body)).await;
        assert_eq!(status, 400, "{case}: {resp}");
        assert!(resp["error"]["details"]["fields"][field].is_string(), "{case}: expected {field} in {resp}");
    }
    assert_eq!(app.snapshot().await, before);
}
