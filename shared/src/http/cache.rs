//! A small per-instance cache with a time to live. Its first use is public,
//! anonymous read responses (the tier catalog, comparisons, upgrade prices): the
//! catalog changes a few times a day and is read on every storefront page view, so
//! a few seconds of staleness across Lambda instances buys a large cut in latency
//! and DynamoDB reads. Writes on the same instance clear or replace entries at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Values by key, each served for `ttl` after it was stored. Bounded: a full cache
/// is dropped rather than grown, whatever keys clients send.
#[derive(Debug)]
pub struct TtlCache<V> {
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

/// Rendered public responses by request.
pub type PublicCache = TtlCache<String>;

impl<V: Clone> TtlCache<V> {
    /// `ttl` zero disables caching.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self { ttl, max_entries, entries: Mutex::new(HashMap::new()) }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, V)>> {
        // A panic while holding the lock cannot leave the map half-written in a way
        // that matters: entries are inserted and removed whole.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &str, now: Instant) -> Option<V> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries();
        entries.get(key).filter(|(stored, _)| now.duration_since(*stored) < self.ttl).map(|(_, v)| v.clone())
    }

    pub fn put(&self, key: String, value: V, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries();
        if entries.len() >= self.max_entries && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, (now, value));
    }

    pub fn remove(&self, key: &str) {
        self.entries().remove(key);
    }

    pub fn clear(&self) {
        self.entries().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_until_the_ttl_then_misses() {
        let cache = PublicCache::new(Duration::from_secs(5), 10);
        let t0 = Instant::now();
        cache.put("a".into(), "body".into(), t0);
        assert_eq!(cache.get("a", t0 + Duration::from_secs(4)).as_deref(), Some("body"));
        assert_eq!(cache.get("a", t0 + Duration::from_secs(5)), None);
        assert_eq!(cache.get("b", t0), None);
    }

    #[test]
    fn clear_and_bounds_and_disabled() {
        let cache = PublicCache::new(Duration::from_secs(5), 2);
        let t0 = Instant::now();
        cache.put("a".into(), "1".into(), t0);
        cache.put("b".into(), "2".into(), t0);
        cache.put("c".into(), "3".into(), t0);
        assert_eq!(cache.get("a", t0), None, "a full cache is dropped, not grown");
        assert_eq!(cache.get("c", t0).as_deref(), Some("3"));
        cache.remove("c");
        assert_eq!(cache.get("c", t0), None);
        cache.put("d".into(), "4".into(), t0);
        cache.clear();
        assert_eq!(cache.get("d", t0), None);
        let off = PublicCache::new(Duration::ZERO, 2);
        off.put("a".into(), "1".into(), t0);
        assert_eq!(off.get("a", t0), None);
    }
}
