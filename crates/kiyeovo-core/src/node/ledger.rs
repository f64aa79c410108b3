//! What each writing peer has in this node's record store, kept as running totals.
//!
//! Measuring the store on every inbound write (as [`crate::records::budget`] needs) would cost a
//! scan of every record per write — on a full server store, hundreds of thousands — which a
//! flood of cheap writes would turn into a CPU attack. So the totals are kept as writes happen
//! and re-measured from the store at most every [`RESCAN`]: expired records (which Kademlia drops
//! only lazily) and our own records are accounted for then.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::kad::store::RecordStore;
use libp2p::kad::{Record, RecordKey};
use libp2p::PeerId;

use crate::records::budget::{self, Replaced, Usage};

/// How stale the running totals may get before they are measured again.
pub const RESCAN: Duration = Duration::from_secs(30);

fn cost(r: &Record) -> usize {
    budget::charge(r.key.as_ref().len(), r.value.len())
}

#[derive(Debug, Default)]
pub struct Ledger {
    total: usize,
    by_source: HashMap<PeerId, usize>,
    measured_at: Option<Instant>,
}

impl Ledger {
    /// Re-measures from the store if the totals are older than [`RESCAN`], dropping expired
    /// records on the way; `true` if it did.
    pub fn refresh(&mut self, store: &mut impl RecordStore, now: Instant) -> bool {
        if self
            .measured_at
            .is_some_and(|t| now.saturating_duration_since(t) < RESCAN)
        {
            return false;
        }
        let expired: Vec<RecordKey> = store
            .records()
            .filter(|r| r.is_expired(now))
            .map(|r| r.key.clone())
            .collect();
        for key in &expired {
            store.remove(key);
        }
        self.total = 0;
        self.by_source.clear();
        for r in store.records() {
            let c = cost(&r);
            self.total += c;
            if let Some(p) = r.publisher {
                *self.by_source.entry(p).or_default() += c;
            }
        }
        self.measured_at = Some(now);
        true
    }

    /// The usage [`budget::admit`] needs for a write from `source` replacing `existing`.
    pub fn usage(&self, source: &PeerId, existing: Option<&Record>) -> Usage {
        Usage {
            total: self.total,
            of_source: self.by_source.get(source).copied().unwrap_or(0),
            replaced: existing.map(|r| Replaced {
                len: cost(r),
                same_source: r.publisher.as_ref() == Some(source),
            }),
        }
    }

    /// `new` was stored (charged to its publisher), replacing `existing` if there was one.
    pub fn stored(&mut self, new: &Record, existing: Option<&Record>) {
        if let Some(old) = existing {
            self.removed(old);
        }
        let c = cost(new);
        self.total += c;
        if let Some(p) = new.publisher {
            *self.by_source.entry(p).or_default() += c;
        }
    }

    /// `old` left the store.
    pub fn removed(&mut self, old: &Record) {
        let c = cost(old);
        self.total = self.total.saturating_sub(c);
        if let Some(p) = old.publisher {
            if let Some(v) = self.by_source.get_mut(&p) {
                *v = v.saturating_sub(c);
                if *v == 0 {
                    self.by_source.remove(&p);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::kad::store::MemoryStore;

    fn record(key: &[u8], len: usize, publisher: PeerId) -> Record {
        let mut r = Record::new(key.to_vec(), vec![0; len]);
        r.publisher = Some(publisher);
        r
    }

    /// The running totals equal a fresh measurement after any sequence of stores, replacements
    /// and removals.
    #[test]
    fn running_totals_match_a_rescan() {
        let me = PeerId::random();
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut store = MemoryStore::new(me);
        let mut ledger = Ledger::default();
        let now = Instant::now();
        ledger.refresh(&mut store, now);
        let ops: Vec<(&[u8], usize, PeerId)> = vec![
            (b"k1", 100, a),
            (b"k2", 200, b),
            (b"k1", 300, b), // b replaces a's record
            (b"k3", 50, a),
        ];
        for (k, len, p) in ops {
            let new = record(k, len, p);
            let existing = store.get(&new.key).map(|r| r.into_owned());
            store.put(new.clone()).unwrap();
            ledger.stored(&new, existing.as_ref());
        }
        let gone = store.get(&RecordKey::new(&b"k2")).unwrap().into_owned();
        store.remove(&gone.key);
        ledger.removed(&gone);
        let running = (ledger.total, ledger.by_source.clone());
        let mut fresh = Ledger::default();
        fresh.refresh(&mut store, now);
        assert_eq!(running, (fresh.total, fresh.by_source));
        assert_eq!(ledger.usage(&a, None).of_source, budget::charge(2, 50));
    }

    #[test]
    fn expired_records_are_dropped_and_uncharged_at_the_next_measurement() {
        let me = PeerId::random();
        let a = PeerId::random();
        let mut store = MemoryStore::new(me);
        let now = Instant::now();
        let mut r = record(b"k", 10, a);
        r.expires = Some(now + Duration::from_secs(1));
        store.put(r).unwrap();
        let mut ledger = Ledger::default();
        ledger.refresh(&mut store, now);
        assert_eq!(ledger.usage(&a, None).of_source, budget::charge(1, 10));
        ledger.refresh(&mut store, now + RESCAN + Duration::from_secs(1));
        assert_eq!(ledger.usage(&a, None).of_source, 0);
        assert!(store.get(&RecordKey::new(&b"k")).is_none());
    }
}
