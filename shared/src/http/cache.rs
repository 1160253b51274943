//! A small per-instance cache for public, anonymous read responses (the tier
//! catalog, comparisons, upgrade prices). The catalog changes a few times a day and
//! is read on every storefront page view, so a few seconds of staleness across
//! Lambda instances buys a large cut in latency and DynamoDB reads. Writes on the
//! same instance clear it at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct PublicCache {
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<String, (Instant, String)>>,
}

impl PublicCache {
    /// `ttl` zero disables caching.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self { ttl, max_entries, entries: Mutex::new(HashMap::new()) }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, String)>> {
        // A panic while holding the lock cannot leave the map half-written in a way
        // that matters: entries are whole strings.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &str, now: Instant) -> Option<String> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries();
        entries.get(key).filter(|(stored, _)| now.duration_since(*stored) < self.ttl).map(|(_, body)| body.clone())
    }

    pub fn put(&self, key: String, body: String, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries();
        if entries.len() >= self.max_entries && !entries.contains_key(&key) {
            // Keys come from client input (query strings, bodies); a full cache is
            // dropped rather than grown, which bounds memory whatever clients send.
            entries.clear();
        }
        entries.insert(key, (now, body));
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
        cache.clear();
        assert_eq!(cache.get("c", t0), None);
        let off = PublicCache::new(Duration::ZERO, 2);
        off.put("a".into(), "1".into(), t0);
        assert_eq!(off.get("a", t0), None);
    }
}
