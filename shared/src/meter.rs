//! Metering for `bench cost`: how long a request waited on DynamoDB, SES and
//! Stripe, how many calls it made to each, and the DynamoDB capacity it consumed.
//!
//! Active only inside `metered` (a task-local scope the bench puts around a
//! handler call). Outside it, which is always in Lambda, every hook below is one
//! failed task-local lookup: no clock read, no lock, and DynamoDB is not asked for
//! `ReturnConsumedCapacity`.
//!
//! Waiting is the union of the intervals during which at least one outside call is
//! in flight (two DynamoDB reads awaited together count once), from the moment the
//! request is handed to the HTTP client to the moment its response headers are in;
//! serializing, signing and parsing stay the handler's own time. Handler wall time
//! minus waiting is what Tierdesk itself spent.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An outside service a request can wait on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    Ses,
    Stripe,
}

/// What one metered scope used.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Time with at least one outside call in flight.
    pub wait: Duration,
    pub dynamodb_calls: u64,
    pub ses_calls: u64,
    pub stripe_calls: u64,
    /// DynamoDB's `ConsumedCapacity`, summed over the calls (tables and indexes).
    pub read_units: f64,
    pub write_units: f64,
}

#[derive(Debug, Default)]
struct State {
    usage: Usage,
    in_flight: u32,
    since: Option<Instant>,
}

type Shared = Arc<Mutex<State>>;

tokio::task_local! {
    static METER: Shared;
}

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    METER.try_with(|m| f(&mut m.lock().unwrap_or_else(|e| e.into_inner()))).ok()
}

/// Runs `f` and returns what it used. Meant for benchmarks; nothing in a
/// function's own code opens a scope.
pub async fn metered<F: Future>(f: F) -> (F::Output, Usage) {
    let shared: Shared = Arc::default();
    let out = METER.scope(shared.clone(), f).await;
    let usage = shared.lock().unwrap_or_else(|e| e.into_inner()).usage.clone();
    (out, usage)
}

/// Whether the current task is being metered.
pub fn active() -> bool {
    METER.try_with(|_| ()).is_ok()
}

/// Starts one call's wait; false when not metered.
fn begin(service: Service) -> bool {
    with_state(|s| {
        match service {
            Service::DynamoDb => s.usage.dynamodb_calls += 1,
            Service::Ses => s.usage.ses_calls += 1,
            Service::Stripe => s.usage.stripe_calls += 1,
        }
        s.begin_wait();
    })
    .is_some()
}

impl State {
    fn begin_wait(&mut self) {
        if self.in_flight == 0 {
            self.since = Some(Instant::now());
        }
        self.in_flight += 1;
    }

    fn end_wait(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight == 0 {
            if let Some(since) = self.since.take() {
                self.usage.wait += since.elapsed();
            }
        }
    }
}

fn end() {
    with_state(State::end_wait);
}

/// Adds DynamoDB capacity to the current scope, if any.
pub(crate) fn add_capacity(read: f64, write: f64) {
    with_state(|s| {
        s.usage.read_units += read;
        s.usage.write_units += write;
    });
}

/// Ends a wait when dropped (also when the call's future is dropped unfinished).
struct WaitGuard(bool);

impl Drop for WaitGuard {
    fn drop(&mut self) {
        if self.0 {
            end();
        }
    }
}

/// Awaits `f` as one call to `service` (used around each Stripe request).
pub async fn waiting<F: Future>(service: Service, f: F) -> F::Output {
    let _guard = WaitGuard(begin(service));
    f.await
}

/// `.metered(Service::Stripe)` on a future: `waiting` as a method, so a call chain
/// stays readable.
pub trait MeteredCall: Future + Sized {
    fn metered(self, service: Service) -> impl Future<Output = Self::Output> {
        waiting(service, self)
    }
}

impl<F: Future> MeteredCall for F {}

/// Marks, in an operation's config bag, that one of its attempts is being timed.
#[derive(Debug, Clone)]
struct Timing;

impl Storable for Timing {
    type Storer = StoreReplace<Self>;
}

/// The SDK side: times each attempt of an operation of `service`'s client, from
/// transmit to the response headers, and counts the operation.
#[derive(Debug, Clone, Copy)]
pub struct WaitTimer(pub Service);

impl WaitTimer {
    fn close(cfg: &mut ConfigBag) {
        if cfg.load::<Timing>().is_some() {
            cfg.interceptor_state().unset::<Timing>();
            end();
        }
    }
}

impl Intercept for WaitTimer {
    fn name(&self) -> &'static str {
        "tierdesk.meter.WaitTimer"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Counted once per operation; the wait is opened per attempt.
        with_state(|s| match self.0 {
            Service::DynamoDb => s.usage.dynamodb_calls += 1,
            Service::Ses => s.usage.ses_calls += 1,
            Service::Stripe => s.usage.stripe_calls += 1,
        });
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if with_state(State::begin_wait).is_some() {
            cfg.interceptor_state().store_put(Timing);
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        Self::close(cfg);
        Ok(())
    }

    /// An attempt that failed in transmit never reaches deserialization.
    fn read_after_attempt(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        Self::close(cfg);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nothing_is_metered_outside_a_scope() {
        assert!(!active());
        // A call outside any scope: no state, nothing recorded, no panic.
        waiting(Service::Stripe, async {}).await;
        add_capacity(1.0, 1.0);
        let ((), usage) = metered(async { assert!(active()) }).await;
        assert_eq!(usage, Usage::default());
    }

    #[tokio::test]
    async fn overlapping_calls_wait_once() {
        let ((), usage) = metered(async {
            let a = waiting(Service::Stripe, tokio::time::sleep(Duration::from_millis(40)));
            let b = waiting(Service::Ses, tokio::time::sleep(Duration::from_millis(40)));
            futures_join(a, b).await;
            add_capacity(0.5, 2.0);
        })
        .await;
        assert_eq!((usage.stripe_calls, usage.ses_calls), (1, 1));
        assert!(usage.wait >= Duration::from_millis(40), "{:?}", usage.wait);
        // Summed it would be at least 80 ms; the union is one sleep plus scheduling.
        assert!(usage.wait < Duration::from_millis(75), "{:?}", usage.wait);
        assert_eq!((usage.read_units, usage.write_units), (0.5, 2.0));
    }

    #[tokio::test]
    async fn own_time_between_calls_is_not_waiting() {
        let ((), usage) = metered(async {
            waiting(Service::DynamoDb, tokio::time::sleep(Duration::from_millis(20))).await;
            tokio::time::sleep(Duration::from_millis(60)).await;
            waiting(Service::DynamoDb, tokio::time::sleep(Duration::from_millis(20))).await;
        })
        .await;
        assert_eq!(usage.dynamodb_calls, 2);
        assert!(usage.wait >= Duration::from_millis(40), "{:?}", usage.wait);
        assert!(usage.wait < Duration::from_millis(75), "{:?}", usage.wait);
    }

    async fn futures_join<A: Future, B: Future>(a: A, b: B) {
        tokio::join!(a, b);
    }
}
