//! The state shared by the HTTP server and the webhook worker, and the router.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::routing::{any, get, post};
use axum::Router;
use tokio::sync::{watch, Notify};

use crate::clock::Clock;
use crate::state::Store;
use crate::webhooks::WebhookTarget;
use crate::{api, control};

pub(crate) struct App {
    /// Every change happens under this one lock, so each API call is atomic, including its
    /// idempotency record. It is never held across an `.await`.
    store: Mutex<Store>,
    target: Mutex<WebhookTarget>,
    pub clock: Arc<Clock>,
    pub base_url: String,
    /// Wakes the delivery worker when events were added.
    pub wake: Notify,
    /// How many events (from the start of the log) the worker has finished with.
    pub delivered: watch::Sender<usize>,
}

impl App {
    pub fn new(base_url: String, clock: Arc<Clock>, target: WebhookTarget) -> Self {
        App {
            store: Mutex::new(Store::new(clock.clone(), base_url.clone())),
            target: Mutex::new(target),
            clock,
            base_url,
            wake: Notify::new(),
            delivered: watch::Sender::new(0),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic in a handler must not take the emulator down for every later request.
        self.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn target(&self) -> WebhookTarget {
        self.target.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_target(&self, url: Option<String>, secret: Option<String>) {
        let mut target = self.target.lock().unwrap_or_else(|p| p.into_inner());
        target.url = url;
        if let Some(secret) = secret {
            target.secret = secret;
        }
    }

    /// Waits until the worker has finished with the first `count` events.
    pub async fn delivered(&self, count: usize) {
        self.wake.notify_one();
        let mut rx = self.delivered.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|&done| done >= count).await;
    }

    /// Waits until every event created so far has been delivered or has failed.
    pub async fn flush(&self) {
        let count = self.lock().events.len();
        self.delivered(count).await;
    }
}

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/{*path}", any(api::handle))
        .route("/_emulator/health", get(control::health))
        .route("/_emulator/checkout/sessions/{id}/complete", post(control::complete_checkout))
        .route("/_emulator/subscriptions/{id}/advance", post(control::advance_subscription))
        .route("/_emulator/invoices/{id}/retry", post(control::retry_invoice))
        .route("/_emulator/invoices/{id}/dispute", post(control::dispute_invoice))
        .route("/_emulator/disputes/{id}/close", post(control::close_dispute))
        .route("/_emulator/customers/{id}/card", post(control::set_card))
        .route("/_emulator/clock", get(control::get_clock).post(control::set_clock))
        .route("/_emulator/events", get(control::events))
        .route("/_emulator/flush", post(control::flush))
        .route("/_emulator/idempotency/forget", post(control::forget_idempotency_keys))
        .route("/_emulator/webhook", post(control::set_webhook))
        .route("/checkout/{id}", get(control::checkout_page))
        .route("/checkout/{id}/pay", post(control::checkout_pay))
        .route("/invoices/{id}/hosted", get(control::hosted_invoice))
        .route("/invoices/{id}/pdf", get(control::invoice_pdf))
        .fallback(control::not_found)
        .with_state(app)
}
