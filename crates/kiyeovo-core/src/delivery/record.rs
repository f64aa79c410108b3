//! One bucket record in the DHT: read back before a write (the sender merges, never overwrites),
//! read by its readers, and written one version higher. Contacts' buckets and group members'
//! buckets (and their pages) all go through here.

use ed25519_dalek::SigningKey;

use crate::codec::DecodeError;
use crate::node::{Client, NodeError};
use crate::records::{RecordKey, SignedRecord};
use crate::time::now_ms;

/// What a bucket record carries: a contact's list of envelopes, or a group member's with its
/// pages. Each decodes strictly with its own bounds.
pub trait Payload: Default + Sized {
    fn decode(bytes: &[u8], limit: usize) -> Result<Self, DecodeError>;
}

/// A record's payload as read back, and its version. Untrusted: whoever can write the key (for
/// a contact's bucket, the other contact too) chose both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBack<C> {
    pub content: C,
    pub version: u64,
}

/// Our own bucket as the DHT holds it now, to merge into before a write. Absent or not a
/// record → empty at version 0; a record whose payload does not decode → empty at its version
/// (the next write must still be higher or storing nodes refuse it). A failed read is an error,
/// and so is a query no peer answered ([`NodeError::Unreachable`]): writing without what is
/// there could drop envelopes another session of ours wrote.
pub async fn read_own<C>(
    client: &Client,
    key: &RecordKey,
    limit: usize,
) -> Result<ReadBack<C>, NodeError>
where
    C: Payload,
{
    match client.get_record(key.to_bytes()).await {
        Ok(bytes) => Ok(match SignedRecord::decode(&bytes, limit) {
            Ok(r) => ReadBack {
                content: C::decode(&r.payload, limit).unwrap_or_default(),
                version: r.version,
            },
            Err(_) => ReadBack::default(),
        }),
        Err(NodeError::NotFound) => Ok(ReadBack::default()),
        Err(e) => Err(e),
    }
}

/// Someone's bucket (or one of its pages): its payload, or `None` if absent, unreadable now or
/// not decodable. The reader tries again on its next round.
pub async fn read<C>(client: &Client, key: &RecordKey, limit: usize) -> Option<C>
where
    C: Payload,
{
    match client.get_record(key.to_bytes()).await {
        Ok(bytes) => SignedRecord::decode(&bytes, limit)
            .ok()
            .and_then(|r| C::decode(&r.payload, limit).ok()),
        Err(NodeError::NotFound | NodeError::Unreachable) => None,
        Err(e) => {
            tracing::debug!(error = %e, "cannot read a bucket");
            None
        }
    }
}

/// The version our next write carries: above both what we read back and what we last wrote.
/// Checked: a version of `u64::MAX` read back (the other holder of a contact bucket's key can
/// write one) must not wrap our next write to 0, nor panic.
pub fn next_version(read_back: u64, written: u64) -> Result<u64, NodeError> {
    read_back
        .max(written)
        .checked_add(1)
        .ok_or_else(|| NodeError::PutFailed("bucket version exhausted".into()))
}

/// Signs `payload` as version `version` of `key` and stores it.
pub async fn write(
    client: &Client,
    signer: &SigningKey,
    key: &RecordKey,
    version: u64,
    payload: Vec<u8>,
) -> Result<(), NodeError> {
    let record = SignedRecord::sign(signer, key, version, now_ms(), payload);
    client.put_record(key.to_bytes(), record.encode()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_version_is_above_both_and_never_wraps() {
        assert_eq!(next_version(0, 0).unwrap(), 1);
        assert_eq!(next_version(7, 3).unwrap(), 8);
        assert_eq!(next_version(3, 7).unwrap(), 8);
        assert!(next_version(u64::MAX, 1).is_err());
        assert!(next_version(1, u64::MAX).is_err());
    }
}
