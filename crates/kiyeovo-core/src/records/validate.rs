//! The rule every node applies before it stores a record, and every reader before it believes
//! one (PROTOCOL.md §3). Pure: bytes in, verdict out; no clock, no I/O.
//!
//! A record is accepted only if
//! 1. key and value are within the size limits and decode strictly;
//! 2. the writer's public key hashes to the hash the DHT key commits to;
//! 3. the signature verifies for this exact key;
//! 4. for versioned keys, the record's version is the key's version, and a stored version is
//!    never replaced by different bytes (versioned records are immutable);
//! 5. for mutable keys, it is *newer* than what is stored: higher `version`, or the same
//!    version with a later `updated_at`, or both equal and lexicographically larger bytes. The
//!    last rule makes the order total, so every node converges on the same winner no matter in
//!    which order copies arrive.

use std::cmp::Ordering;

use crate::codec::DecodeError;
use crate::config::Limits;
use crate::records::key::{KeyError, RecordKey};
use crate::records::signed::SignedRecord;

/// Why a record was refused. Each is logged with the key; none is fatal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("bad key: {0}")]
    BadKey(#[from] KeyError),
    #[error("value is {len} bytes, over the {limit}-byte limit")]
    TooLarge { len: usize, limit: usize },
    #[error("value does not decode: {0}")]
    Malformed(DecodeError),
    #[error("writer's public key does not match the key's hash")]
    WrongWriter,
    #[error("signature does not verify")]
    BadSignature,
    #[error("record version {record} does not match key version {key}")]
    VersionMismatch { key: u64, record: u64 },
    #[error("versioned record already stored with different content")]
    ImmutableConflict,
    #[error("not newer than the stored record (stored version {stored}, offered {offered})")]
    Stale { stored: u64, offered: u64 },
}

/// What to do with a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// New or newer: store it.
    Store,
    /// Byte-identical to what is stored (a re-publish): nothing to change.
    Unchanged,
}

/// Decodes and checks a record on its own (rules 1–4 minus the stored-copy comparison).
pub fn check(
    key: &[u8],
    value: &[u8],
    limits: &Limits,
) -> Result<(RecordKey, SignedRecord), RecordError> {
    let parsed_key = RecordKey::parse(key)?;
    if value.len() > limits.max_record_bytes {
        return Err(RecordError::TooLarge {
            len: value.len(),
            limit: limits.max_record_bytes,
        });
    }
    let record =
        SignedRecord::decode(value, limits.max_record_bytes).map_err(RecordError::Malformed)?;
    if !parsed_key.is_owned_by(&record.public_key) {
        return Err(RecordError::WrongWriter);
    }
    record
        .verify_signature(&parsed_key)
        .map_err(|_| RecordError::BadSignature)?;
    if let Some(n) = parsed_key.version {
        if record.version != n {
            return Err(RecordError::VersionMismatch {
                key: n,
                record: record.version,
            });
        }
    }
    Ok((parsed_key, record))
}

/// The total order between two valid records under the same key.
fn order(a: &SignedRecord, a_bytes: &[u8], b: &SignedRecord, b_bytes: &[u8]) -> Ordering {
    (a.version, a.updated_at)
        .cmp(&(b.version, b.updated_at))
        .then_with(|| a_bytes.cmp(b_bytes))
}

/// Full validation against the copy this node already stores (if any).
///
/// `stored` is trusted to have passed this function earlier; if it no longer decodes (it can't,
/// short of disk corruption) it is treated as absent rather than blocking the key forever.
pub fn validate(
    key: &[u8],
    value: &[u8],
    stored: Option<&[u8]>,
    limits: &Limits,
) -> Result<(Verdict, SignedRecord), RecordError> {
    let (parsed_key, record) = check(key, value, limits)?;
    let Some(stored_bytes) = stored else {
        return Ok((Verdict::Store, record));
    };
    if stored_bytes == value {
        return Ok((Verdict::Unchanged, record));
    }
    if parsed_key.version.is_some() {
        return Err(RecordError::ImmutableConflict);
    }
    let Ok(stored_record) = SignedRecord::decode(stored_bytes, usize::MAX) else {
        return Ok((Verdict::Store, record));
    };
    match order(&record, value, &stored_record, stored_bytes) {
        Ordering::Greater => Ok((Verdict::Store, record)),
        _ => Err(RecordError::Stale {
            stored: stored_record.version,
            offered: record.version,
        }),
    }
}

/// Picks the newest valid record among copies fetched from several peers. Invalid copies are
/// returned alongside so the caller can log them.
pub fn best_of<'a>(
    key: &[u8],
    copies: impl IntoIterator<Item = &'a [u8]>,
    limits: &Limits,
) -> (Option<(SignedRecord, Vec<u8>)>, Vec<RecordError>) {
    let mut all = Copies::new(key.to_vec());
    for bytes in copies {
        all.add(bytes.to_vec(), limits);
    }
    all.finish()
}

/// The copies of one record a read has received so far, as they arrive. Each *distinct* copy
/// is checked once: peers mostly answer with the same bytes, a copy's signature covers the
/// whole record (tens of KiB for a full bucket), and this runs on the node's event loop, where
/// re-checking every copy at every answer (as a read used to) delays everything else the node
/// does. Bounded by the answers one query collects.
#[derive(Debug)]
pub struct Copies {
    key: Vec<u8>,
    /// Each distinct copy, its verdict, and how many peers served it.
    distinct: Vec<(Vec<u8>, Result<SignedRecord, RecordError>, usize)>,
    /// Index into `distinct` of the newest valid copy.
    best: Option<usize>,
}

impl Copies {
    pub fn new(key: Vec<u8>) -> Self {
        Self {
            key,
            distinct: Vec::new(),
            best: None,
        }
    }

    /// Takes one more peer's copy.
    pub fn add(&mut self, bytes: Vec<u8>, limits: &Limits) {
        if let Some(seen) = self.distinct.iter_mut().find(|(b, _, _)| *b == bytes) {
            seen.2 += 1;
            return;
        }
        let verdict = check(&self.key, &bytes, limits).map(|(_, record)| record);
        let i = self.distinct.len();
        if let Ok(record) = &verdict {
            let newer = self.best.is_none_or(|b| {
                let (b_bytes, b_verdict, _) = &self.distinct[b];
                b_verdict
                    .as_ref()
                    .is_ok_and(|b_record| order(record, &bytes, b_record, b_bytes).is_gt())
            });
            if newer {
                self.best = Some(i);
            }
        }
        self.distinct.push((bytes, verdict, 1));
    }

    /// How many peers served the newest valid copy.
    pub fn agreeing(&self) -> usize {
        self.best.map_or(0, |b| self.distinct[b].2)
    }

    /// The newest valid copy (decoded, and as bytes), and why each invalid distinct copy was
    /// refused.
    pub fn finish(self) -> (Option<(SignedRecord, Vec<u8>)>, Vec<RecordError>) {
        let mut best = None;
        let mut refused = Vec::new();
        for (i, (bytes, verdict, _)) in self.distinct.into_iter().enumerate() {
            match verdict {
                Ok(record) if Some(i) == self.best => best = Some((record, bytes)),
                Ok(_) => {}
                Err(e) => refused.push(e),
            }
        }
        (best, refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::key::RecordKind;
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;
    use rand::rngs::OsRng;

    fn limits() -> Limits {
        Limits {
            max_record_bytes: 4096,
            ..Limits::default()
        }
    }

    struct Owner {
        key: SigningKey,
        dht_key: RecordKey,
    }

    fn owner(kind: RecordKind) -> Owner {
        let key = SigningKey::generate(&mut OsRng);
        let dht_key = RecordKey::for_public_key(kind, &key.verifying_key().to_bytes());
        Owner { key, dht_key }
    }

    impl Owner {
        fn record(&self, version: u64, updated_at: u64, payload: &[u8]) -> Vec<u8> {
            SignedRecord::sign(
                &self.key,
                &self.dht_key,
                version,
                updated_at,
                payload.to_vec(),
            )
            .encode()
        }
    }

    #[test]
    fn valid_record_is_stored() {
        let o = owner(RecordKind::PairwiseBucket);
        let value = o.record(1, 10, b"hello");
        let (verdict, record) = validate(&o.dht_key.to_bytes(), &value, None, &limits()).unwrap();
        assert_eq!(verdict, Verdict::Store);
        assert_eq!(record.payload, b"hello");
    }

    /// Every way a record can be bad, each with the error it must produce.
    #[test]
    fn table_of_refusals() {
        let o = owner(RecordKind::PairwiseBucket);
        let key = o.dht_key.to_bytes();
        let good = o.record(5, 100, b"payload");
        let stranger = owner(RecordKind::PairwiseBucket);

        let mut forged = SignedRecord::decode(&good, 4096).unwrap();
        forged.signature[0] ^= 1;
        let mut tampered = SignedRecord::decode(&good, 4096).unwrap();
        tampered.payload[0] ^= 1;
        // Signed correctly by a stranger, but stored under our key.
        let wrong_key =
            SignedRecord::sign(&stranger.key, &o.dht_key, 6, 100, b"x".to_vec()).encode();
        let oversize = o.record(6, 100, &[0u8; 5000]);

        /// (name, DHT key, value, stored copy, expected error)
        type Case = (&'static str, Vec<u8>, Vec<u8>, Option<Vec<u8>>, RecordError);
        let cases: Vec<Case> = vec![
            (
                "forged signature",
                key.clone(),
                forged.encode(),
                None,
                RecordError::BadSignature,
            ),
            (
                "tampered value",
                key.clone(),
                tampered.encode(),
                None,
                RecordError::BadSignature,
            ),
            (
                "wrong key",
                key.clone(),
                wrong_key,
                None,
                RecordError::WrongWriter,
            ),
            (
                "oversize",
                key.clone(),
                oversize.clone(),
                None,
                RecordError::TooLarge {
                    len: oversize.len(),
                    limit: 4096,
                },
            ),
            (
                "lower version",
                key.clone(),
                o.record(4, 999, b"old"),
                Some(good.clone()),
                RecordError::Stale {
                    stored: 5,
                    offered: 4,
                },
            ),
            (
                "equal version, older updated_at",
                key.clone(),
                o.record(5, 99, b"zzz"),
                Some(good.clone()),
                RecordError::Stale {
                    stored: 5,
                    offered: 5,
                },
            ),
            (
                "record moved to another key",
                stranger.dht_key.to_bytes(),
                good.clone(),
                None,
                RecordError::WrongWriter,
            ),
            (
                "not our key",
                b"/ipfs/whatever".to_vec(),
                good.clone(),
                None,
                RecordError::BadKey(KeyError::NotOurs),
            ),
        ];
        for (name, key, value, stored, expected) in cases {
            let got = validate(&key, &value, stored.as_deref(), &limits());
            assert_eq!(got.map(|(v, _)| v), Err(expected), "case: {name}");
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        let o = owner(RecordKind::GroupBucket);
        let value = o.record(1, 1, b"some payload bytes");
        for cut in 0..value.len() {
            assert!(
                validate(&o.dht_key.to_bytes(), &value[..cut], None, &limits()).is_err(),
                "truncated at {cut} accepted"
            );
        }
    }

    #[test]
    fn equal_version_tie_break_is_deterministic() {
        let o = owner(RecordKind::PairwiseBucket);
        let key = o.dht_key.to_bytes();
        let a = o.record(3, 50, b"aaa");
        let b = o.record(3, 50, b"bbb");
        let (winner, loser) = if a > b { (&a, &b) } else { (&b, &a) };
        assert_eq!(
            validate(&key, winner, Some(loser), &limits()).unwrap().0,
            Verdict::Store
        );
        assert!(matches!(
            validate(&key, loser, Some(winner), &limits()),
            Err(RecordError::Stale { .. })
        ));
        // Newer updated_at wins at equal version regardless of bytes.
        let later = o.record(3, 51, b"");
        assert_eq!(
            validate(&key, &later, Some(winner), &limits()).unwrap().0,
            Verdict::Store
        );
    }

    #[test]
    fn republish_of_identical_bytes_is_unchanged() {
        let o = owner(RecordKind::PairwiseBucket);
        let value = o.record(2, 2, b"x");
        let (verdict, _) =
            validate(&o.dht_key.to_bytes(), &value, Some(&value), &limits()).unwrap();
        assert_eq!(verdict, Verdict::Unchanged);
    }

    #[test]
    fn versioned_records_are_immutable_and_match_their_key() {
        let key = SigningKey::generate(&mut OsRng);
        let pk = key.verifying_key().to_bytes();
        let v7 = RecordKey::group_info_version(&pk, 7);
        let first = SignedRecord::sign(&key, &v7, 7, 1, b"one".to_vec()).encode();
        let second = SignedRecord::sign(&key, &v7, 7, 2, b"two".to_vec()).encode();
        assert_eq!(
            validate(&v7.to_bytes(), &first, None, &limits()).unwrap().0,
            Verdict::Store
        );
        assert_eq!(
            validate(&v7.to_bytes(), &second, Some(&first), &limits()).map(|(v, _)| v),
            Err(RecordError::ImmutableConflict)
        );
        let mismatched = SignedRecord::sign(&key, &v7, 8, 1, b"x".to_vec()).encode();
        assert_eq!(
            validate(&v7.to_bytes(), &mismatched, None, &limits()).map(|(v, _)| v),
            Err(RecordError::VersionMismatch { key: 7, record: 8 })
        );
        // Version 7's signed bytes replayed under version 8's key do not verify.
        let v8 = RecordKey::group_info_version(&pk, 8);
        assert!(validate(&v8.to_bytes(), &first, None, &limits()).is_err());
    }

    #[test]
    fn best_of_keeps_highest_valid_version() {
        let o = owner(RecordKind::PairwiseBucket);
        let key = o.dht_key.to_bytes();
        let v1 = o.record(1, 1, b"1");
        let v3 = o.record(3, 1, b"3");
        let mut forged_v9 = SignedRecord::decode(&o.record(9, 1, b"9"), 4096).unwrap();
        forged_v9.payload = b"evil".to_vec();
        let forged_v9 = forged_v9.encode();
        let (best, refused) = best_of(
            &key,
            [v1.as_slice(), forged_v9.as_slice(), v3.as_slice()],
            &limits(),
        );
        assert_eq!(best.unwrap().0.version, 3);
        assert_eq!(refused, vec![RecordError::BadSignature]);
    }

    /// A read counts how many peers agree on the newest copy, checks each distinct copy once,
    /// and a junk or stale copy arriving first or last changes neither.
    #[test]
    fn copies_count_agreement_on_the_newest_and_check_each_distinct_copy_once() {
        let o = owner(RecordKind::PairwiseBucket);
        let key = o.dht_key.to_bytes();
        let v1 = o.record(1, 1, b"1");
        let v2 = o.record(2, 1, b"2");
        let mut forged = SignedRecord::decode(&o.record(9, 1, b"9"), 4096).unwrap();
        forged.payload = b"evil".to_vec();
        let forged = forged.encode();
        let mut copies = Copies::new(key.clone());
        assert_eq!(copies.agreeing(), 0);
        for c in [&forged, &v2, &v1, &v2, &forged, &v2, &v1] {
            copies.add(c.clone(), &limits());
        }
        assert_eq!(copies.agreeing(), 3, "three peers served version 2");
        assert_eq!(
            copies.distinct.len(),
            3,
            "each distinct copy kept (and checked) once"
        );
        let (best, refused) = copies.finish();
        let (best, bytes) = best.unwrap();
        assert_eq!((best.version, bytes), (2, v2));
        assert_eq!(refused, vec![RecordError::BadSignature]);
    }

    proptest! {
        /// Whatever order copies arrive in, a node ends up storing the same winner.
        #[test]
        fn storage_converges_regardless_of_arrival_order(
            specs in proptest::collection::vec((0u64..4, 0u64..4, any::<u8>()), 1..8),
            seed in any::<u64>(),
        ) {
            let o = owner(RecordKind::PairwiseBucket);
            let key = o.dht_key.to_bytes();
            let copies: Vec<Vec<u8>> =
                specs.iter().map(|(v, t, p)| o.record(*v, *t, &[*p])).collect();
            let apply = |order: &[usize]| {
                let mut stored: Option<Vec<u8>> = None;
                for &i in order {
                    if let Ok((Verdict::Store, _)) = validate(&key, &copies[i], stored.as_deref(), &limits()) {
                        stored = Some(copies[i].clone());
                    }
                }
                stored
            };
            let forward: Vec<usize> = (0..copies.len()).collect();
            let mut shuffled = forward.clone();
            let n = shuffled.len();
            for i in 0..n {
                shuffled.swap(i, (seed as usize).wrapping_add(i * 7) % n);
            }
            prop_assert_eq!(apply(&forward), apply(&shuffled));
        }

        #[test]
        fn garbage_never_panics(key in proptest::collection::vec(any::<u8>(), 0..64),
                                value in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = validate(&key, &value, None, &limits());
        }
    }
}
