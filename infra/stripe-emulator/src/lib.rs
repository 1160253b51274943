//! A stateful, in-memory emulator of the slice of Stripe's API Tierdesk uses: customers,
//! products, prices, coupons, checkout sessions, subscriptions (with proration, discounts and
//! trials), invoices and invoice items, plus signed webhooks. Objects start from Stripe's
//! official example objects (`fixtures/`) so async-stripe parses them as it parses Stripe's.
//!
//! Map of the crate:
//! - `state`: the objects kept in memory and the event log.
//! - `billing`: the rules and the events they emit — `invoices` (draft, finalize, pay, void),
//!   `subscriptions` (create, update with proration, cancel, renew), `dunning` (retries and
//!   the cancel-after-3-failures policy), `checkout` (completion), `discounts` (coupons
//!   redeemed on subscriptions, which invoices they discount, when they end).
//! - `proration`: the proration arithmetic and its rounding. `discount`: coupon arithmetic.
//! - `objects` / `fixtures`: Stripe JSON, as fixture + overlay; `expand[]`.
//! - `api`: Stripe's `/v1` routes, auth, idempotency. `form`: Stripe's form encoding.
//! - `control`: `/_emulator/…` routes and the hosted pages. `webhooks`: signed delivery.

#![recursion_limit = "256"]

mod api;
mod app;
pub mod billing;
pub mod clock;
mod control;
pub mod discount;
pub mod error;
mod fixtures;
pub mod form;
mod objects;
pub mod proration;
pub mod state;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::clock::Clock;
use crate::webhooks::WebhookTarget;

pub use crate::state::API_VERSION;

/// The webhook secret used when none is configured (also the binary's default).
pub const DEFAULT_WEBHOOK_SECRET: &str = "whsec_tierdesk_local_development_secret";
/// The binary's default port.
pub const DEFAULT_PORT: u16 = 12111;

#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Where events are POSTed; `None` records them without sending.
    pub webhook_url: Option<String>,
    pub webhook_secret: String,
    /// A fixed start time for the emulator clock; `None` follows the system clock.
    pub now: Option<i64>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig { webhook_url: None, webhook_secret: DEFAULT_WEBHOOK_SECRET.to_owned(), now: None }
    }
}

/// A running emulator on 127.0.0.1. Dropping it stops the server and the webhook worker.
pub struct Emulator {
    app: Arc<App>,
    addr: SocketAddr,
    server: Option<JoinHandle<()>>,
    worker: JoinHandle<()>,
}

impl Emulator {
    /// Starts on a free port.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Emulator> {
        Self::start_on(config, 0).await
    }

    pub async fn start_on(config: EmulatorConfig, port: u16) -> std::io::Result<Emulator> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let clock = Arc::new(Clock::new(config.now));
        let target = WebhookTarget { url: config.webhook_url, secret: config.webhook_secret };
        let app = Arc::new(App::new(format!("http://{addr}"), clock, target));
        let worker = tokio::spawn(webhooks::deliver_forever(app.clone()));
        let router = app::router(app.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "stripe emulator server stopped");
            }
        });
        Ok(Emulator { app, addr, server: Some(server), worker })
    }

    /// `http://127.0.0.1:PORT`, the value to give async-stripe's `ClientBuilder::url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes where (and with which secret) later events are delivered.
    pub fn set_webhook(&self, url: Option<String>, secret: Option<String>) {
        self.app.set_target(url, secret);
    }

    /// Sets the emulator clock; it stays there until set again.
    pub fn set_now(&self, unix: i64) {
        self.app.clock.set(unix);
    }

    pub fn now(&self) -> i64 {
        self.app.clock.now()
    }

    /// Forgets every saved `Idempotency-Key`, as Stripe does after about 24 hours:
    /// a later request with a known key is executed again.
    pub fn forget_idempotency_keys(&self) {
        self.app.lock().idempotency.clear();
    }

    /// Returns once every event created so far has been delivered or has failed all retries.
    pub async fn flush(&self) {
        self.app.flush().await;
    }

    /// Serves until the server stops (for the binary).
    pub async fn serve_forever(mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
        self.worker.abort();
    }
}
