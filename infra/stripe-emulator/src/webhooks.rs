//! Webhook delivery. Events are sent one at a time, in creation order, as Stripe signs them:
//! `Stripe-Signature: t={now},v1={hex hmac-sha256(secret, "{t}.{body}")}`. A non-2xx answer or
//! a connection failure is retried up to 3 more times, 200 ms apart, then recorded as failed.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;

use crate::app::App;
use crate::state::{DeliveryAttempt, DeliveryState};

/// Delivery tries per event: the first one and 3 retries.
const ATTEMPTS: usize = 4;
const BACKOFF: Duration = Duration::from_millis(200);
/// Bounds one attempt, so a stuck receiver cannot stall the queue for long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where events go; changed at runtime by `POST /_emulator/webhook`.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub url: Option<String>,
    pub secret: String,
}

/// The `Stripe-Signature` header for `payload` signed at time `t`.
pub fn signature_header(secret: &str, t: i64, payload: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac takes any key length");
    mac.update(format!("{t}.{payload}").as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// Delivers queued events forever. The count of finished events is published on
/// `app.delivered`, which is what `flush` and the control endpoints wait on.
pub(crate) async fn deliver_forever(app: Arc<App>) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut next = 0;
    loop {
        let payload = app.lock().events.get(next).map(|e| e.payload.clone());
        let Some(payload) = payload else {
            app.wake.notified().await;
            continue;
        };
        let target = app.target();
        let (state, attempts) = match &target.url {
            None => (DeliveryState::NotSent, Vec::new()),
            Some(url) => deliver(&app, &client, url, &target.secret, &payload).await,
        };
        if let Some(event) = app.lock().events.get_mut(next) {
            event.state = state;
            event.attempts = attempts;
        }
        next += 1;
        app.delivered.send_replace(next);
    }
}

async fn deliver(
    _app: &App,
    client: &HttpClient,
    url: &str,
    secret: &str,
    payload: &str,
) -> (DeliveryState, Vec<DeliveryAttempt>) {
    let mut attempts = Vec::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(BACKOFF).await;
        }
        // Like Stripe with a test clock: objects carry the emulator's time, the
        // signature the real time of sending (what a receiver checks against).
        let at = chrono::Utc::now().timestamp();
        let outcome = post(client, url, signature_header(secret, at, payload), payload).await;
        let delivered = matches!(outcome, Ok(status) if (200..300).contains(&status));
        attempts.push(match outcome {
            Ok(status) => DeliveryAttempt { at, status: Some(status), error: None },
            Err(error) => DeliveryAttempt { at, status: None, error: Some(error) },
        });
        if delivered {
            return (DeliveryState::Delivered, attempts);
        }
    }
    tracing::warn!(url, "webhook delivery failed after {ATTEMPTS} attempts");
    (DeliveryState::Failed, attempts)
}

async fn post(client: &HttpClient, url: &str, signature: String, payload: &str) -> Result<u16, String> {
    let request = Request::post(url)
        .header("content-type", "application/json; charset=utf-8")
        .header("user-agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
        .header("stripe-signature", signature)
        .body(Full::new(Bytes::from(payload.to_owned())))
        .map_err(|e| format!("bad webhook url: {e}"))?;
    let response = tokio::time::timeout(ATTEMPT_TIMEOUT, async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        // Read the body so the receiver sees a complete exchange.
        let _ = response.into_body().collect().await;
        Ok::<u16, String>(status)
    })
    .await;
    response.unwrap_or_else(|_| Err("timed out".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_stripes_scheme() {
        // Reference value from Python: hmac.new(b"whsec_test", b"1700000000.{}", sha256).
        assert_eq!(
            signature_header("whsec_test", 1_700_000_000, "{}"),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }
}
