//! Coalesced background work per key (used for offline-bucket writes): while a run for a key is
//! in flight, further requests only mark it dirty, and exactly one more run follows. A burst of
//! a hundred messages costs a few DHT writes, not a hundred, and no sender waits for one.

use std::collections::HashMap;
use std::hash::Hash;

use tokio::sync::Mutex;

#[derive(Debug)]
pub struct Coalescer<K> {
    /// Keys with a run in flight; `true` = requested again meanwhile.
    running: Mutex<HashMap<K, bool>>,
}

impl<K: Hash + Eq + Clone> Default for Coalescer<K> {
    fn default() -> Self {
        Self {
            running: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> Coalescer<K> {
    /// Asks for a run. `true`: none is in flight, so the caller starts the worker now.
    pub async fn request(&self, key: &K) -> bool {
        let mut running = self.running.lock().await;
        match running.get_mut(key) {
            Some(dirty) => {
                *dirty = true;
                false
            }
            None => {
                running.insert(key.clone(), false);
                true
            }
        }
    }

    /// The worker finished a run: `true` if it must run once more (someone asked meanwhile);
    /// `false` and the key is released.
    pub async fn again(&self, key: &K) -> bool {
        let mut running = self.running.lock().await;
        if running.get(key) == Some(&true) {
            running.insert(key.clone(), false);
            true
        } else {
            running.remove(key);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_during_a_run_cause_exactly_one_more() {
        let c = Coalescer::default();
        assert!(c.request(&1).await, "first request starts the worker");
        assert!(!c.request(&1).await);
        assert!(!c.request(&1).await);
        assert!(c.request(&2).await, "keys are independent");
        assert!(c.again(&1).await, "asked meanwhile: one more run");
        assert!(!c.again(&1).await, "nothing new: released");
        assert!(c.request(&1).await, "a later request starts it again");
    }
}
