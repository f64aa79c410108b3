//! A contact's bucket (PROTOCOL.md §2–3): the shared rules of [`crate::delivery::bucket`] with
//! a pairwise envelope's order — only the two contacts can open it, so only they can order it.

use crate::delivery::bucket::{self as rules, BucketContent, BucketLimits, Unread};
use crate::pairwise::envelope::{self, MsgId};
use crate::pairwise::keys::DirectionKeys;

/// `(seq, msg_id)` of a pairwise envelope of this direction, or `None` if it does not open with
/// the direction's key. Envelopes are opaque (v2): only the two contacts can order a bucket.
fn peek_pairwise(bytes: &[u8], keys: &DirectionKeys) -> Option<(u64, MsgId)> {
    envelope::unseal(bytes, keys)
        .ok()
        .map(|i| (i.header.seq, i.header.msg_id))
}

/// [`rules::merge`] for one direction: envelopes that do not open with `keys` are dropped.
pub fn merge(
    current: &[Vec<u8>],
    incoming: &[Vec<u8>],
    limits: BucketLimits,
    keys: &DirectionKeys,
) -> Vec<Vec<u8>> {
    rules::merge(current, incoming, limits, |b| peek_pairwise(b, keys))
}

/// [`rules::read_after`] for one direction.
pub fn read_after(content: &BucketContent, cursor: u64, keys: &DirectionKeys) -> Unread {
    rules::read_after(&content.envelopes, cursor, |b| peek_pairwise(b, keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::pairwise::envelope::{new_msg_id, seal, Payload};
    use crate::pairwise::keys::derive;
    use proptest::prelude::*;
    use std::sync::LazyLock;

    struct Fixture {
        a: Identity,
        b_pub: [u8; 32],
        keys: crate::pairwise::keys::PairwiseKeys,
    }

    static FIX: LazyLock<Fixture> = LazyLock::new(|| {
        let a = Identity::generate();
        let b = Identity::generate();
        let keys = derive(&a, &b.public());
        Fixture {
            a,
            b_pub: b.public().ed25519,
            keys,
        }
    });

    fn env(seq: u64) -> Vec<u8> {
        seal(
            &FIX.a,
            &FIX.b_pub,
            &FIX.keys.outgoing,
            seq,
            new_msg_id(),
            seq,
            &Payload::Chat {
                body: format!("m{seq}"),
            },
        )
        .unwrap()
    }

    fn seqs(list: &[Vec<u8>]) -> Vec<u64> {
        list.iter()
            .map(|b| envelope::unseal(b, &FIX.keys.outgoing).unwrap().header.seq)
            .collect()
    }

    const LOOSE: BucketLimits = BucketLimits {
        cap: 100,
        max_bytes: 1 << 20,
    };

    #[test]
    fn keeps_the_newest_cap_in_order() {
        let all: Vec<Vec<u8>> = (1..=150).map(env).collect();
        let merged = merge(&[], &all, LOOSE, &FIX.keys.outgoing);
        assert_eq!(seqs(&merged), (51..=150).collect::<Vec<_>>());
        let unread = read_after(&BucketContent { envelopes: merged }, 0, &FIX.keys.outgoing);
        assert_eq!(unread.missed, 50);
        assert_eq!(unread.envelopes.len(), 100);
    }

    #[test]
    fn byte_limit_evicts_oldest() {
        let all: Vec<Vec<u8>> = (1..=10).map(env).collect();
        let size = all[0].len();
        let merged = merge(
            &[],
            &all,
            BucketLimits {
                cap: 100,
                max_bytes: (size + 3) * 3 + 1,
            },
            &FIX.keys.outgoing,
        );
        assert_eq!(seqs(&merged), vec![8, 9, 10]);
    }

    #[test]
    fn two_writers_do_not_clobber_each_other() {
        let base: Vec<Vec<u8>> = (1..=3).map(env).collect();
        let (x, y) = (env(4), env(5));
        let session_a = merge(&base, &[x], LOOSE, &FIX.keys.outgoing);
        let session_b = merge(&base, &[y], LOOSE, &FIX.keys.outgoing);
        let final_ = merge(&session_a, &session_b, LOOSE, &FIX.keys.outgoing);
        assert_eq!(seqs(&final_), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn reader_cursor_and_duplicates() {
        let e3 = env(3);
        let content = BucketContent {
            envelopes: vec![env(1), env(2), e3.clone(), e3, env(4)],
        };
        let unread = read_after(&content, 2, &FIX.keys.outgoing);
        assert_eq!(
            unread.envelopes.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![3, 4]
        );
        assert_eq!(unread.missed, 0);
        assert!(read_after(&content, 4, &FIX.keys.outgoing)
            .envelopes
            .is_empty());
        let garbage = BucketContent {
            envelopes: vec![vec![1, 2, 3], env(1)],
        };
        assert_eq!(
            read_after(&garbage, 0, &FIX.keys.outgoing).envelopes.len(),
            1
        );
    }

    proptest! {
        #[test]
        fn merge_invariants(
            left in proptest::collection::vec(1u64..40, 0..20),
            right in proptest::collection::vec(1u64..40, 0..20),
            cap in 1usize..25,
        ) {
            let pool: Vec<Vec<u8>> = (1..40).map(env).collect();
            let pick = |s: &Vec<u64>| s.iter().map(|i| pool[*i as usize - 1].clone()).collect::<Vec<_>>();
            let (l, r) = (pick(&left), pick(&right));
            let limits = BucketLimits { cap, max_bytes: 1 << 20 };
            let m = merge(&l, &r, limits, &FIX.keys.outgoing);
            let s = seqs(&m);
            // Ordered, unique, capped.
            prop_assert!(s.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(m.len() <= cap);
            // Exactly the newest of the union.
            let mut union: Vec<u64> = left.iter().chain(&right).copied().collect();
            union.sort();
            union.dedup();
            let expect: Vec<u64> = union.iter().rev().take(cap).rev().copied().collect();
            prop_assert_eq!(&s, &expect);
            // Order of arguments and re-merging do not matter.
            prop_assert_eq!(seqs(&merge(&r, &l, limits, &FIX.keys.outgoing)), s.clone());
            prop_assert_eq!(seqs(&merge(&m, &r, limits, &FIX.keys.outgoing)), s);
        }
    }
}
