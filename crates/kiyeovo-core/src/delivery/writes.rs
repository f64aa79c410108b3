//! Bucket writes in the background, coalesced per bucket: while a write for a key is in flight,
//! further requests only mark it dirty, and exactly one more write follows. A burst of a hundred
//! messages costs a few DHT writes, not a hundred, and no sender waits for one. Two writers of
//! one record at once would each drop the other's new envelopes, so one key = one record.
//!
//! A write that fails (no peer in the DHT yet: the app just started, or joined through a card a
//! moment ago; a short outage) is tried again after 1, 2, 4 … 60 s rather than at the next
//! re-publish, half an hour away: a first contact's handshake waits seconds, not 30 minutes.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

/// Background writes, at most one in flight per key.
#[derive(Debug)]
pub struct Writes<K> {
    runs: Arc<Coalescer<K>>,
}

impl<K: Hash + Eq + Clone> Default for Writes<K> {
    fn default() -> Self {
        Self {
            runs: Arc::new(Coalescer::default()),
        }
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Writes<K> {
    /// Runs `write` for `key` in the background, after `gather` (so a burst of sends lands in
    /// one write), unless a write for `key` is in flight: then exactly one more runs after it.
    /// `write` reads the state afresh each time, so the last run writes everything asked for;
    /// it returns whether the record was written, and a failed one is retried ([`retry_after`]).
    pub async fn schedule<F, Fut>(&self, key: K, gather: Duration, mut write: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        if !self.runs.request(&key).await {
            return;
        }
        let runs = self.runs.clone();
        tokio::spawn(async move {
            let mut failures = 0;
            loop {
                if !gather.is_zero() {
                    tokio::time::sleep(gather).await;
                }
                if write().await {
                    failures = 0;
                } else if let Some(wait) = retry_after(failures) {
                    // The retry writes everything asked for meanwhile too.
                    failures += 1;
                    tokio::time::sleep(wait).await;
                    continue;
                }
                if !runs.again(&key).await {
                    break;
                }
            }
        });
    }
}

/// How long to wait before trying a failed write again, after `failures` failures in a row:
/// 1, 2, 4 … up to 60 s; `None` once the retries span more than the re-publish interval (30
/// min), which then takes over.
pub fn retry_after(failures: u32) -> Option<Duration> {
    const RETRIES: u32 = 36;
    (failures < RETRIES).then(|| Duration::from_secs((1u64 << failures.min(6)).min(60)))
}

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

    /// A burst while a write is in flight costs exactly one more write, and that write comes
    /// after the burst (so it carries all of it).
    #[tokio::test]
    async fn a_burst_during_a_write_costs_exactly_one_more_write() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::sync::{mpsc, Notify};

        let writes = Writes::default();
        let count = Arc::new(AtomicUsize::new(0));
        let slow = Arc::new(Notify::new());
        let (done, mut finished) = mpsc::unbounded_channel();
        let job = || {
            let (count, slow, done) = (count.clone(), slow.clone(), done.clone());
            move || {
                let (count, slow, done) = (count.clone(), slow.clone(), done.clone());
                async move {
                    let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                    if n == 1 {
                        slow.notified().await; // the first write takes a while
                    }
                    let _ = done.send(n);
                    true
                }
            }
        };
        for _ in 0..50 {
            writes.schedule(7u8, Duration::ZERO, job()).await;
        }
        slow.notify_one();
        let mut next = async || {
            tokio::time::timeout(Duration::from_secs(10), finished.recv())
                .await
                .expect("a write finished")
        };
        assert_eq!(next().await, Some(1));
        assert_eq!(next().await, Some(2));
        // Released: asked again, it runs again at once.
        writes.schedule(7u8, Duration::ZERO, job()).await;
        assert_eq!(next().await, Some(3));
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

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

    /// A write that fails (no DHT peer yet) is tried again after 1 s, then 2 s, and stops being
    /// retried once written; the key is then released.
    #[tokio::test(start_paused = true)]
    async fn a_failed_write_is_retried_soon_until_it_succeeds() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let writes = Writes::default();
        let tries = Arc::new(AtomicUsize::new(0));
        let (done, mut finished) = tokio::sync::mpsc::unbounded_channel();
        let start = tokio::time::Instant::now();
        let job = {
            let tries = tries.clone();
            move || {
                let (tries, done) = (tries.clone(), done.clone());
                async move {
                    let n = tries.fetch_add(1, Ordering::SeqCst) + 1;
                    let _ = done.send((n, start.elapsed()));
                    n >= 3 // the DHT has peers from the third try on
                }
            }
        };
        writes.schedule(1u8, Duration::ZERO, job).await;
        let mut at = Vec::new();
        for _ in 0..3 {
            let (n, t) = finished.recv().await.expect("a try");
            at.push((n, t.as_secs()));
        }
        assert_eq!(at, [(1, 0), (2, 1), (3, 3)], "tries at 0 s, 1 s, 3 s");
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(
            tries.load(Ordering::SeqCst),
            3,
            "no try after it was written"
        );
        assert!(writes.runs.request(&1).await, "released once written");
    }

    #[test]
    fn retries_back_off_to_a_minute_and_end_after_the_republish_interval() {
        let waits: Vec<u64> = (0..).map_while(retry_after).map(|d| d.as_secs()).collect();
        assert_eq!(waits[..8], [1, 2, 4, 8, 16, 32, 60, 60]);
        let total: u64 = waits.iter().sum();
        assert!(
            (30 * 60..=40 * 60).contains(&total),
            "retries span about the re-publish interval: {total} s"
        );
    }
}
