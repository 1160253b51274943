//! The application layer: workflows that combine the domain's rules with the
//! store's reads and writes (applying promotions to a purchase in `redemption`),
//! and the one place where a store outcome becomes a domain error (`refusals`).
//!
//! The layers run one way: `functions/*` and `http` → `app` → `mail`,
//! `stripe_adapter` → `store` → `domain`. The domain knows nothing of storage; the
//! store speaks in its own words (an item missing, a stale version, a named guard
//! that failed); this layer says what that means; `crate::error` maps every area's
//! error to HTTP once.

pub mod commission;
pub mod experiment_tracking;
pub mod price_migration;
pub mod redemption;
mod refusals;

use crate::domain::actor::Actor;
use crate::domain::audit::{AuditEntry, Audited};
use crate::domain::subscription::{TransitionContext, Trigger};
use crate::mail::{MailConfig, Mailer};
use crate::store::{Store, StoreError, WriteError};
use crate::{Clock, Config, IdGen, SystemClock, UlidGen};
use std::sync::Arc;

/// What every function is built from, once at init: the table, the clock, the id
/// generator and the configuration. Each function wraps it with what only it
/// needs (a mailer, Stripe, a cache) and hands it to its routes.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub config: Config,
}

impl App {
    /// Connects to the table named by `config` (in Lambda: at init, outside the handler).
    pub async fn connect(config: Config) -> Self {
        let store = Store::connect(&config).await;
        Self::new(store, config)
    }

    /// The system clock and ULIDs; tests replace them with `with_clock`/`with_ids`.
    pub fn new(store: Store, config: Config) -> Self {
        Self { store, clock: Arc::new(SystemClock), ids: Arc::new(UlidGen), config }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_ids(mut self, ids: Arc<dyn IdGen>) -> Self {
        self.ids = ids;
        self
    }

    /// A transition by `by` for `trigger`, with fresh ids.
    pub fn transition_context(&self, by: &Actor, trigger: Trigger) -> TransitionContext {
        TransitionContext::new(by, trigger, self.ids.as_ref())
    }

    /// The SES sender, with its per-recipient daily quota kept in this table.
    pub async fn mailer(&self, mail: &MailConfig) -> Mailer {
        Mailer::connect(mail, self.store.clone()).await
    }

    /// The audit entry for `action` by `by`, taking a record from `before` to `after`.
    pub fn audit<T: Audited>(&self, action: &'static str, by: &Actor, before: Option<&T>, after: &T) -> AuditEntry {
        AuditEntry::change(self.ids.new_id(), action, by, before, after)
    }

    /// `id` acting now outside a signed-in request (the cron, a webhook delivery,
    /// a bulk job run for its requester), with `request_id` naming the run.
    pub fn acting(&self, id: &str, request_id: &str) -> Actor {
        Actor::system(id, self.clock.now(), request_id)
    }
}

/// A function's state is its `App` (field `app`) and what only it needs;
/// `wraps_app!(Tiers)` lets its routes read `app.store`, `app.clock`, … directly.
#[macro_export]
macro_rules! wraps_app {
    ($function:ty) => {
        impl std::ops::Deref for $function {
            type Target = $crate::app::App;
            fn deref(&self) -> &$crate::app::App {
                &self.app
            }
        }
    };
}

/// What a store refusal means in its area's domain words (`refusals` holds them all).
pub trait Meaning: std::fmt::Debug {
    type Domain;
    fn meaning(self) -> Self::Domain;
}

/// Marks an area's domain error, so a workflow can return `Failed<E>` and use `?`
/// on both its rules (`E`) and the store.
pub trait DomainError {}

/// A workflow's failure: one of its area's rules refused it, or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum Failed<E> {
    #[error(transparent)]
    Refused(E),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<E: DomainError> From<E> for Failed<E> {
    fn from(e: E) -> Self {
        Self::Refused(e)
    }
}

impl<R, E> From<WriteError<R>> for Failed<E>
where
    R: Meaning<Domain = E>,
{
    fn from(e: WriteError<R>) -> Self {
        match e {
            WriteError::Refused(r) => Self::Refused(r.meaning()),
            WriteError::Store(s) => Self::Store(s),
        }
    }
}
