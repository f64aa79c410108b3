//! "At most once per interval per peer" (PROTOCOL.md §6 nudge debounce; missing-envelope
//! requests). Pure: the caller passes `now`, so tests need no clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Past this many remembered keys, entries older than the interval are dropped, so a flood of
/// fresh peer ids cannot grow the map without bound.
const PRUNE_AT: usize = 1024;

#[derive(Debug)]
pub struct Debounce<K> {
    interval: Duration,
    last: HashMap<K, Instant>,
}

impl<K: Eq + Hash + Copy> Debounce<K> {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: HashMap::new(),
        }
    }

    /// Whether `key` may act now; if so, remembers that it did.
    pub fn allow(&mut self, key: K, now: Instant) -> bool {
        if self
            .last
            .get(&key)
            .is_some_and(|t| now.saturating_duration_since(*t) < self.interval)
        {
            return false;
        }
        if self.last.len() >= PRUNE_AT {
            let interval = self.interval;
            self.last
                .retain(|_, t| now.saturating_duration_since(*t) < interval);
            // Still full: a flood of fresh keys inside one interval. Forget them all rather than
            // scan the map again on every call (what a flooder loses is its own debounce).
            if self.last.len() >= PRUNE_AT {
                self.last.clear();
            }
        }
        self.last.insert(key, now);
        true
    }

    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_interval_per_key() {
        let t0 = Instant::now();
        let mut d = Debounce::new(Duration::from_secs(5));
        assert!(d.allow(1, t0));
        assert!(!d.allow(1, t0 + Duration::from_secs(4)));
        assert!(
            d.allow(2, t0 + Duration::from_secs(4)),
            "other keys are independent"
        );
        assert!(d.allow(1, t0 + Duration::from_secs(5)));
    }

    #[test]
    fn a_flood_inside_one_interval_stays_bounded_and_cheap() {
        let t0 = Instant::now();
        let mut d = Debounce::new(Duration::from_secs(5));
        for i in 0..100_000u32 {
            assert!(d.allow(i, t0));
            assert!(d.len() <= PRUNE_AT);
        }
    }

    #[test]
    fn a_flood_of_new_keys_stays_bounded() {
        let t0 = Instant::now();
        let mut d = Debounce::new(Duration::from_millis(1));
        for i in 0..100_000u32 {
            d.allow(i, t0 + Duration::from_millis(u64::from(i)));
        }
        assert!(d.len() <= PRUNE_AT + 1, "{}", d.len());
    }
}
