//! The order a group conversation is shown in (PROTOCOL.md §5): by the senders' clocks, but
//! never breaking one sender's own order (its seq numbers). Where the two disagree — a sender's
//! clock went backwards, or clocks are skewed — the message that had to be placed out of clock
//! order is flagged, and the UI says the order there is uncertain.

use std::collections::BTreeMap;

/// What ordering needs to know about a message.
pub trait Ordered {
    fn epoch(&self) -> u32;
    fn sender(&self) -> &str;
    fn seq(&self) -> u64;
    fn sent_at(&self) -> u64;
}

/// Orders `messages`: a merge of the senders' own sequences, always taking the earliest clock
/// among the next message of each sender. Returns each message with `true` where the shown
/// order contradicts the clocks.
pub fn order<M: Ordered>(messages: Vec<M>) -> Vec<(M, bool)> {
    let mut lanes: BTreeMap<(u32, String), Vec<M>> = BTreeMap::new();
    for m in messages {
        lanes
            .entry((m.epoch(), m.sender().to_string()))
            .or_default()
            .push(m);
    }
    for lane in lanes.values_mut() {
        // Reversed, so the next message of each lane is at the end.
        lane.sort_by_key(|m| std::cmp::Reverse(m.seq()));
    }
    let total: usize = lanes.values().map(Vec::len).sum();
    let mut out = Vec::with_capacity(total);
    let mut last: Option<(u32, u64)> = None;
    while out.len() < total {
        let key = lanes
            .iter()
            .filter_map(|(k, lane)| {
                lane.last()
                    .map(|m| ((m.epoch(), m.sent_at(), k.1.clone()), k.clone()))
            })
            .min()
            .map(|(_, k)| k)
            .expect("messages left");
        let m = lanes
            .get_mut(&key)
            .and_then(Vec::pop)
            .expect("non-empty lane");
        let uncertain = last.is_some_and(|(epoch, at)| m.epoch() == epoch && m.sent_at() < at);
        last = Some((m.epoch(), m.sent_at()));
        out.push((m, uncertain));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct M(u32, String, u64, u64);

    impl Ordered for M {
        fn epoch(&self) -> u32 {
            self.0
        }
        fn sender(&self) -> &str {
            &self.1
        }
        fn seq(&self) -> u64 {
            self.2
        }
        fn sent_at(&self) -> u64 {
            self.3
        }
    }

    fn m(sender: &str, seq: u64, at: u64) -> M {
        M(1, sender.into(), seq, at)
    }

    #[test]
    fn clocks_decide_unless_a_sender_contradicts_itself() {
        let shown = order(vec![m("b", 1, 20), m("a", 2, 30), m("a", 1, 10)]);
        let names: Vec<_> = shown.iter().map(|(m, u)| (m.1.as_str(), m.2, *u)).collect();
        assert_eq!(names, [("a", 1, false), ("b", 1, false), ("a", 2, false)]);
        // A's clock went backwards between its messages 1 and 2: its own order wins, flagged.
        let shown = order(vec![m("a", 1, 50), m("a", 2, 5), m("b", 1, 20)]);
        let names: Vec<_> = shown.iter().map(|(m, u)| (m.1.as_str(), m.2, *u)).collect();
        assert_eq!(names, [("b", 1, false), ("a", 1, false), ("a", 2, true)]);
    }

    proptest! {
        #[test]
        fn every_message_once_and_each_sender_in_seq_order(
            msgs in prop::collection::vec((0u8..3, 0u64..1000), 0..60)
        ) {
            let mut seqs = [0u64; 3];
            let input: Vec<M> = msgs.iter().map(|(s, at)| {
                seqs[*s as usize] += 1;
                m(&format!("s{s}"), seqs[*s as usize], *at)
            }).collect();
            let shown = order(input.clone());
            prop_assert_eq!(shown.len(), input.len());
            let mut next = [1u64; 3];
            for (msg, _) in &shown {
                let s: usize = msg.1[1..].parse().unwrap();
                prop_assert_eq!(msg.2, next[s]);
                next[s] += 1;
            }
            // Where nothing is flagged, the clocks never go backwards.
            for w in shown.windows(2) {
                if !w[1].1 {
                    prop_assert!(w[1].0 .3 >= w[0].0 .3);
                }
            }
        }
    }
}
