//! Verification of Stripe's webhook signatures, with async-stripe-webhook doing
//! the HMAC check exactly as Stripe specifies it: on the raw body, any of
//! several `v1=` signatures may match (secret rotation), and the timestamp must
//! be within 300 s of now in either direction. The clock is injected.

use stripe_webhook::{Event, Webhook, WebhookError};

/// A request whose signature failed: answered 400 and nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    #[error("no signature matches")]
    Mismatch,
    #[error("the signature timestamp is outside the 300 s tolerance")]
    Stale,
}

impl SignatureError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "signature_missing",
            Self::Malformed => "signature_malformed",
            Self::Mismatch => "signature_mismatch",
            Self::Stale => "signature_expired",
        }
    }
}

/// A correctly signed delivery.
#[derive(Debug)]
pub enum Verified {
    Event(Box<Event>),
    /// Signed by Stripe, but the event or its object does not parse: it is kept
    /// raw for a human and acknowledged, so Stripe does not retry it forever.
    Unparseable {
        event_id: Option<String>,
        event_type: Option<String>,
        reason: String,
    },
}

pub fn verify(payload: &str, header: Option<&str>, secrets: &[String], now: i64) -> Result<Verified, SignatureError> {
    let header = header.filter(|h| !h.trim().is_empty()).ok_or(SignatureError::Missing)?;
    let mut last = SignatureError::Mismatch;
    for secret in secrets {
        match Webhook::construct_event_with_timestamp(payload, header, secret, now) {
            Ok(event) => return Ok(Verified::Event(Box::new(event))),
            Err(WebhookError::BadParse(reason)) => {
                let raw: Option<serde_json::Value> = serde_json::from_str(payload).ok();
                let field = |name: &str| raw.as_ref().and_then(|v| v[name].as_str()).map(str::to_string);
                return Ok(Verified::Unparseable { event_id: field("id"), event_type: field("type"), reason });
            }
            Err(WebhookError::BadTimestamp(_)) => return Err(SignatureError::Stale),
            Err(WebhookError::BadHeader(_)) => last = SignatureError::Malformed,
            Err(WebhookError::BadSignature | WebhookError::BadKey) => {}
        }
    }
    Err(last)
}

/// The identity of an event's content, stored with its claim: a redelivery of the
/// same id must carry the same content. Hex SHA-256 of the event's `id`, `type`,
/// `created` and `data` (the object and `previous_attributes`), re-serialized.
/// Fields Stripe may change between deliveries of one event (`pending_webhooks`,
/// `request`) are left out, so a true retry always matches. A payload that is not
/// JSON (it never verifies anyway) is hashed as is.
pub fn payload_hash(payload: &str) -> String {
    use sha2::{Digest, Sha256};
    let content = match serde_json::from_str::<serde_json::Value>(payload) {
        Ok(v) => serde_json::json!([v["id"], v["type"], v["created"], v["data"]]).to_string(),
        Err(_) => payload.to_string(),
    };
    Sha256::digest(content.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A `Stripe-Signature` header for `payload`, as Stripe computes it: for the
/// Stripe emulator, signed fixtures and tests.
pub fn sign(payload: &str, secret: &str, timestamp: i64) -> String {
    Webhook::generate_test_header(payload, secret, Some(timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"id":"evt_1","object":"event","api_version":null,"created":1700000000,"data":{"object":{"id":"cus_1","object":"customer","balance":0,"created":1700000000,"default_source":null,"delinquent":false,"description":null,"email":null,"invoice_prefix":"ABC","invoice_settings":{"custom_fields":null,"default_payment_method":null,"footer":null,"rendering_options":null},"livemode":false,"metadata":{},"name":null,"phone":null,"preferred_locales":[],"shipping":null,"tax_exempt":"none","test_clock":null}},"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"customer.created"}"#;

    fn secrets() -> Vec<String> {
        vec!["whsec_old".into(), "whsec_new".into()]
    }

    #[test]
    fn a_valid_signature_from_either_secret_verifies() {
        let now = 1_700_000_000;
        for secret in ["whsec_old", "whsec_new"] {
            let header = sign(EVENT, secret, now);
            assert!(matches!(verify(EVENT, Some(&header), &secrets(), now), Ok(Verified::Event(_))), "{secret}");
        }
    }

    #[test]
    fn tampering_missing_and_stale_signatures_fail() {
        let now = 1_700_000_000;
        let header = sign(EVENT, "whsec_new", now);
        let tampered = EVENT.replacen("cus_1", "cus_2", 1);
        assert_eq!(verify(&tampered, Some(&header), &secrets(), now).unwrap_err(), SignatureError::Mismatch);
        assert_eq!(verify(EVENT, None, &secrets(), now).unwrap_err(), SignatureError::Missing);
        assert_eq!(
            verify(EVENT, Some(&sign(EVENT, "whsec_new", now - 301)), &secrets(), now).unwrap_err(),
            SignatureError::Stale
        );
        assert_eq!(
            verify(EVENT, Some(&sign(EVENT, "whsec_new", now + 301)), &secrets(), now).unwrap_err(),
            SignatureError::Stale
        );
        assert!(verify(EVENT, Some(&sign(EVENT, "whsec_new", now - 300)), &secrets(), now).is_ok());
        assert!(verify(EVENT, Some(&sign(EVENT, "whsec_other", now)), &secrets(), now).is_err());
    }

    #[test]
    fn any_of_several_v1_signatures_may_match() {
        let now = 1_700_000_000;
        let good = sign(EVENT, "whsec_new", now);
        let good_v1 = good.split_once(",v1=").unwrap().1;
        let header = format!("t={now},v1={good_v1},v1={}", "0".repeat(64));
        assert!(verify(EVENT, Some(&header), &["whsec_new".to_string()], now).is_ok());
    }

    #[test]
    fn the_payload_hash_ignores_the_delivery_counters_and_sees_any_content_change() {
        let retry = EVENT.replace(r#""pending_webhooks":1"#, r#""pending_webhooks":0"#);
        assert_ne!(retry, EVENT);
        assert_eq!(payload_hash(&retry), payload_hash(EVENT), "a retry of the same event");
        let altered = EVENT.replace(r#""balance":0"#, r#""balance":100"#);
        assert_ne!(payload_hash(&altered), payload_hash(EVENT), "the object changed");
        let moved = EVENT.replace(r#""created":1700000000,"data""#, r#""created":1700000001,"data""#);
        assert_ne!(moved, EVENT);
        assert_ne!(payload_hash(&moved), payload_hash(EVENT), "the event time changed");
        assert_eq!(payload_hash(EVENT).len(), 64);
    }

    #[test]
    fn a_signed_event_that_does_not_parse_is_kept_not_rejected() {
        let now = 1_700_000_000;
        let body = r#"{"id":"evt_bad","object":"event","type":"invoice.paid","data":{"object":{"id":"in_1"}}}"#;
        let header = sign(body, "whsec_new", now);
        match verify(body, Some(&header), &secrets(), now) {
            Ok(Verified::Unparseable { event_id, event_type, .. }) => {
                assert_eq!(event_id.as_deref(), Some("evt_bad"));
                assert_eq!(event_type.as_deref(), Some("invoice.paid"));
            }
            other => panic!("{other:?}"),
        }
    }
}
