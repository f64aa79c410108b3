//! The receiving side's memory for one direction: which sequence numbers were processed, so each
//! envelope is handled exactly once whether it came directly, from the bucket, or both, and in
//! whatever order (PROTOCOL.md §2: "readers keep a cursor and dedupe").
//!
//! `cursor` is the highest seq below which *everything* is settled (processed or known lost);
//! `above` holds processed seqs beyond a gap (a direct message that overtook the bucket).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Most out-of-order seqs remembered above the cursor. Beyond this the oldest gap is declared
/// lost, so a peer cannot make us remember an unbounded set.
pub const MAX_AHEAD: usize = 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbox {
    pub cursor: u64,
    pub above: BTreeSet<u64>,
    /// Envelopes known to be lost (evicted from the bucket before we read them).
    pub missed: u64,
}

/// What to do with an incoming seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Not seen before: process it, then call [`Inbox::processed`].
    New,
    /// Already processed (or known lost): drop it.
    Duplicate,
}

impl Inbox {
    pub fn check(&self, seq: u64) -> Arrival {
        if seq == 0 || seq <= self.cursor || self.above.contains(&seq) {
            Arrival::Duplicate
        } else {
            Arrival::New
        }
    }

    /// Records that `seq` was processed and moves the cursor over any run that is now complete.
    pub fn processed(&mut self, seq: u64) {
        if self.check(seq) == Arrival::Duplicate {
            return;
        }
        self.above.insert(seq);
        self.settle();
        while self.above.len() > MAX_AHEAD {
            // Give up on the oldest gap: count it as missed and jump over it.
            if let Some(&first) = self.above.iter().next() {
                self.missed += first - self.cursor - 1;
                self.cursor = first - 1;
                self.settle();
            }
        }
    }

    /// The bucket's oldest envelope is `oldest`: everything between the cursor and it was
    /// evicted unread. Counts those (minus any we did get directly) as missed, and returns how
    /// many that was. Call it only with the oldest *authentic* envelope's seq: anything else
    /// would let whoever wrote garbage into the record skip our cursor.
    pub fn evicted_below(&mut self, oldest: u64) -> u64 {
        if oldest <= self.cursor + 1 {
            return 0;
        }
        let got = self.above.range(..oldest).count() as u64;
        let lost = oldest - self.cursor - 1 - got;
        self.missed += lost;
        self.above = self.above.split_off(&oldest);
        self.cursor = oldest - 1;
        self.settle();
        lost
    }

    fn settle(&mut self) {
        while self.above.remove(&(self.cursor + 1)) {
            self.cursor += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn direct_overtaking_the_bucket_is_handled_once_each() {
        let mut inbox = Inbox::default();
        inbox.processed(3); // arrived directly first
        assert_eq!(inbox.cursor, 0);
        for seq in [1, 2, 3, 4] {
            // bucket read: 3 is a duplicate
            if inbox.check(seq) == Arrival::New {
                inbox.processed(seq);
            } else {
                assert_eq!(seq, 3);
            }
        }
        assert_eq!((inbox.cursor, inbox.above.len(), inbox.missed), (4, 0, 0));
    }

    #[test]
    fn eviction_counts_missed_but_not_what_came_directly() {
        let mut inbox = Inbox::default();
        inbox.processed(10); // seen directly
        assert_eq!(inbox.evicted_below(51), 49); // bucket now starts at 51
        assert_eq!(inbox.cursor, 50);
        assert_eq!(inbox.missed, 49);
        assert_eq!(inbox.check(10), Arrival::Duplicate);
        assert_eq!(inbox.check(51), Arrival::New);
    }

    proptest! {
        /// Any arrival order with duplicates: each seq processed exactly once, and the cursor
        /// ends at the highest seq when all arrived.
        #[test]
        fn exactly_once_in_any_order(mut order in proptest::collection::vec(1u64..60, 1..200)) {
            let n = *order.iter().max().unwrap();
            order.extend(1..=n); // make sure all arrive at least once
            let mut inbox = Inbox::default();
            let mut handled = Vec::new();
            for seq in order {
                if inbox.check(seq) == Arrival::New {
                    inbox.processed(seq);
                    handled.push(seq);
                }
            }
            let mut sorted = handled.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), handled.len(), "a seq was handled twice");
            prop_assert_eq!(inbox.cursor, n);
            prop_assert!(inbox.above.is_empty());
        }

        #[test]
        fn memory_stays_bounded(seqs in proptest::collection::vec(2u64..1_000_000, 0..3000)) {
            let mut inbox = Inbox::default();
            for s in seqs {
                inbox.processed(s);
            }
            prop_assert!(inbox.above.len() <= MAX_AHEAD);
        }
    }
}
