//! The emulator's clock: the system clock until a test or `make run` sets it; from then on it
//! stays at the set value until set again, so periods and signatures are reproducible.

use std::sync::atomic::{AtomicI64, Ordering};

const SYSTEM: i64 = i64::MIN;

#[derive(Debug)]
pub struct Clock(AtomicI64);

impl Clock {
    pub fn new(fixed: Option<i64>) -> Self {
        Clock(AtomicI64::new(fixed.unwrap_or(SYSTEM)))
    }

    pub fn now(&self) -> i64 {
        match self.0.load(Ordering::SeqCst) {
            SYSTEM => chrono::Utc::now().timestamp(),
            fixed => fixed,
        }
    }

    pub fn set(&self, unix: i64) {
        self.0.store(unix, Ordering::SeqCst);
    }

    /// Moves the clock forward to `unix` if it is behind it; never moves it back.
    pub fn advance_to(&self, unix: i64) {
        if self.now() < unix {
            self.set(unix);
        }
    }
}

/// A new object id in Stripe's `prefix_…` form. ULIDs keep ids unique without a registry.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new())
}
