//! A sender's offline bucket (PROTOCOL.md §2–3 and §5): the newest envelopes for its readers,
//! kept in a signed DHT record the sender rewrites. One set of rules for a contact's bucket and
//! a group member's; what differs is only how an envelope is opened (`peek`), which the caller
//! passes in.
//!
//! The rules are pure so they can be tested exhaustively:
//! * [`merge`] — the writer re-reads the record and merges before writing, so two sessions of
//!   the same sender (or a re-publish racing a send) never drop each other's envelopes:
//!   union by `msg_id`, ordered, newest `cap` kept within the byte limit.
//! * [`read_after`] — a reader with cursor `c` (the last `seq` it processed) gets the envelopes
//!   above `c` in order and learns how many were evicted before it could read them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codec::{self, DecodeError};
use crate::ids::MsgId;

/// Default number of envelopes a bucket keeps (PROTOCOL.md §6).
pub const DEFAULT_CAP: usize = 100;
/// Largest configurable cap.
pub const MAX_CAP: usize = 1000;

/// The record payload of a contact's bucket (a group bucket adds its pages: `group::pages`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketContent {
    /// Encoded envelopes, oldest first.
    pub envelopes: Vec<Vec<u8>>,
}

impl BucketContent {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8], limit: usize) -> Result<Self, DecodeError> {
        codec::decode_bounded(bytes, limit)
    }
}

impl super::record::Payload for BucketContent {
    fn decode(bytes: &[u8], limit: usize) -> Result<Self, DecodeError> {
        BucketContent::decode(bytes, limit)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketLimits {
    pub cap: usize,
    /// Bytes the encoded envelopes (with their length prefixes) may take; leave room for the
    /// record envelope around them.
    pub max_bytes: usize,
}

/// Merges `incoming` into `current`: every envelope once (by `msg_id`), in order, only the newest
/// that fit `limits`. `peek` gives an envelope's order (its seq; for a group bucket shared by
/// several epochs, epoch then seq) and `msg_id`, or `None` to drop it (not ours, not authentic).
pub fn merge<K: Ord + Copy>(
    current: &[Vec<u8>],
    incoming: &[Vec<u8>],
    limits: BucketLimits,
    peek: impl Fn(&[u8]) -> Option<(K, MsgId)>,
) -> Vec<Vec<u8>> {
    let mut by_order: BTreeMap<(K, MsgId), &Vec<u8>> = BTreeMap::new();
    let mut seen: BTreeMap<MsgId, ()> = BTreeMap::new();
    for bytes in current.iter().chain(incoming) {
        let Some((seq, msg_id)) = peek(bytes) else {
            continue;
        };
        if seen.insert(msg_id, ()).is_none() {
            by_order.insert((seq, msg_id), bytes);
        }
    }
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0usize;
    for (_, env) in by_order.iter().rev() {
        // Each envelope also costs its length prefix in the encoded content (a varint of at
        // most 3 bytes for anything under 2 MiB), so `max_bytes` bounds what is written.
        let cost = env.len() + 3;
        if kept.len() == limits.cap || bytes + cost > limits.max_bytes {
            break;
        }
        bytes += cost;
        kept.push((*env).clone());
    }
    kept.reverse();
    kept
}

/// What a reader takes from a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    /// Envelopes with `seq` above the cursor, oldest first, each once.
    pub envelopes: Vec<(u64, Vec<u8>)>,
    /// Envelopes that were evicted before this reader saw them.
    pub missed: u64,
}

/// The envelopes after `cursor` (the last seq processed), each seq once, and how many were lost to
/// eviction. `peek` gives an envelope's seq and `msg_id`, or `None` to skip it.
pub fn read_after(
    envelopes: &[Vec<u8>],
    cursor: u64,
    peek: impl Fn(&[u8]) -> Option<(u64, MsgId)>,
) -> Unread {
    let mut by_seq: BTreeMap<u64, &Vec<u8>> = BTreeMap::new();
    for bytes in envelopes {
        if let Some((seq, _)) = peek(bytes) {
            if seq > cursor {
                by_seq.entry(seq).or_insert(bytes);
            }
        }
    }
    // Eviction removes the oldest, so anything missing is a gap right above the cursor.
    let missed = by_seq
        .keys()
        .next()
        .map_or(0, |first| first.saturating_sub(cursor + 1));
    Unread {
        envelopes: by_seq.into_iter().map(|(s, b)| (s, b.clone())).collect(),
        missed,
    }
}
