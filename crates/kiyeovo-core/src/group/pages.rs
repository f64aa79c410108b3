//! Paged group buckets. A sender keeps its newest `bucket_cap` envelopes (up to 1000) for
//! members who are away, but one DHT record holds 512 KiB: 1000 short messages fit, 1000 long
//! ones do not (see `envelope::tests::how_many_envelopes_fit_one_bucket_record`). So the newest
//! envelopes go in the main record and older ones in page records. Each page is signed by its
//! own key derived from the bucket seed (self-certifying, like the main record), and the main
//! record — signed by the bucket key the roster announced — lists the pages' public keys, so a
//! reader trusts exactly the pages the owner published.

use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::control::GroupKey;
use crate::codec::{self, DecodeError};

/// Pages after the main record (so at most 17 records per sender and epoch).
pub const MAX_PAGES: usize = 16;

/// The payload of a group bucket record (main or page).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupBucket {
    /// Encoded envelopes, oldest first.
    pub envelopes: Vec<Vec<u8>>,
    /// Main record only: public keys of the page records, newest page first.
    pub pages: Vec<[u8; 32]>,
}

impl GroupBucket {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8], limit: usize) -> Result<Self, DecodeError> {
        let b: GroupBucket = codec::decode_bounded(bytes, limit)?;
        if b.pages.len() > MAX_PAGES {
            return Err(DecodeError::Malformed("too many pages".into()));
        }
        Ok(b)
    }

    /// Seq of the oldest envelope that `peek` can read (envelopes are opaque without the key).
    pub fn oldest_seq(
        &self,
        peek: impl Fn(&[u8]) -> Option<(u64, crate::ids::MsgId)>,
    ) -> Option<u64> {
        self.envelopes
            .iter()
            .filter_map(|e| peek(e))
            .map(|(s, _)| s)
            .min()
    }
}

impl crate::delivery::record::Payload for GroupBucket {
    fn decode(bytes: &[u8], limit: usize) -> Result<Self, DecodeError> {
        GroupBucket::decode(bytes, limit)
    }
}

/// Signing seed of page `n` (from 1).
pub fn page_seed(bucket_seed: &GroupKey, page: u32) -> GroupKey {
    let hk = Hkdf::<Sha256>::new(Some(b"kiyeovo/v1/bucket-page"), &bucket_seed.0);
    let mut seed = [0u8; 32];
    hk.expand(&page.to_be_bytes(), &mut seed)
        .expect("32-byte HKDF output is always valid");
    GroupKey(seed)
}

/// Splits `envelopes` (oldest first) into records of at most `max_bytes` of envelopes each:
/// the first chunk holds the newest, each chunk oldest first. At most `1 + MAX_PAGES` chunks;
/// what does not fit is the oldest and is dropped.
pub fn split(envelopes: &[Vec<u8>], max_bytes: usize) -> Vec<Vec<Vec<u8>>> {
    let mut chunks: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut current: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0usize;
    for env in envelopes.iter().rev() {
        // Each entry costs its length plus a varint length prefix (≤ 3 bytes here).
        let cost = env.len() + 3;
        if cost > max_bytes {
            continue;
        }
        if bytes + cost > max_bytes {
            current.reverse();
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
            if chunks.len() == 1 + MAX_PAGES {
                return chunks;
            }
        }
        bytes += cost;
        current.push(env.clone());
    }
    if !current.is_empty() || chunks.is_empty() {
        current.reverse();
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn split_keeps_the_newest_in_order_within_the_limit(
            // Every envelope fits a record (in the app an envelope is far below the 512 KiB
            // record; one that could not fit is skipped rather than blocking the bucket).
            sizes in prop::collection::vec(1usize..=297, 0..200),
            max in 300usize..2000,
        ) {
            let envs: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, n)| vec![i as u8; *n]).collect();
            let chunks = split(&envs, max);
            prop_assert!(chunks.len() <= 1 + MAX_PAGES);
            for c in &chunks {
                prop_assert!(c.iter().map(|e| e.len() + 3).sum::<usize>() <= max);
            }
            // Reassembled oldest-first, the chunks are a suffix of the input: the newest kept.
            let joined: Vec<Vec<u8>> = chunks.iter().rev().flatten().cloned().collect();
            prop_assert_eq!(&envs[envs.len() - joined.len()..], &joined[..]);
            if chunks.len() < 1 + MAX_PAGES {
                prop_assert_eq!(joined.len(), envs.len());
            }
        }
    }

    #[test]
    fn page_keys_differ_per_page_and_bucket() {
        let (a, b) = (GroupKey::random(), GroupKey::random());
        assert_ne!(page_seed(&a, 1).0, page_seed(&a, 2).0);
        assert_ne!(page_seed(&a, 1).0, page_seed(&b, 1).0);
    }
}
