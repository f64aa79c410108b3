//! Self-certifying DHT keys: `/kiyeovo/<kind>/<base32(sha256(public key))>[/<version>]`.

use sha2::{Digest, Sha256};
use std::fmt;

use crate::codec::BASE32_LOWER;

const PREFIX: &str = "/kiyeovo/";
/// Longest key we ever parse; anything longer is refused before looking at it.
pub const MAX_KEY_LEN: usize = 128;

/// What lives under a key (PROTOCOL.md §3 table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A sender's pairwise offline bucket.
    PairwiseBucket,
    /// One member's offline bucket for one group epoch.
    GroupBucket,
    /// Group info: the latest pointer (no version) or an immutable version `N`.
    GroupInfo,
}

impl RecordKind {
    fn tag(self) -> &'static str {
        match self {
            RecordKind::PairwiseBucket => "pw",
            RecordKind::GroupBucket => "gb",
            RecordKind::GroupInfo => "gi",
        }
    }

    fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "pw" => Some(RecordKind::PairwiseBucket),
            "gb" => Some(RecordKind::GroupBucket),
            "gi" => Some(RecordKind::GroupInfo),
            _ => None,
        }
    }
}

/// Why bytes are not a Kiyeovo DHT key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("key is {0} bytes, over the {MAX_KEY_LEN}-byte limit")]
    TooLong(usize),
    #[error("key is not a /kiyeovo/ key")]
    NotOurs,
    #[error("unknown record kind")]
    UnknownKind,
    #[error("key hash is not canonical base32 of 32 bytes")]
    BadHash,
    #[error("bad or non-canonical version suffix")]
    BadVersion,
    #[error("this kind of record has no versions")]
    UnexpectedVersion,
}

/// A parsed DHT key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordKey {
    pub kind: RecordKind,
    /// `sha256` of the Ed25519 public key allowed to write here.
    pub key_hash: [u8; 32],
    /// `Some(N)` for immutable versioned records (`/gi/<h>/<N>`).
    pub version: Option<u64>,
}

/// The hash a key commits to.
pub fn hash_public_key(public_key: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(public_key).into()
}

impl RecordKey {
    /// The mutable key owned by `public_key`.
    pub fn for_public_key(kind: RecordKind, public_key: &[u8; 32]) -> Self {
        Self {
            kind,
            key_hash: hash_public_key(public_key),
            version: None,
        }
    }

    /// The immutable version `n` of a group-info record.
    pub fn group_info_version(admin_public: &[u8; 32], n: u64) -> Self {
        Self {
            kind: RecordKind::GroupInfo,
            key_hash: hash_public_key(admin_public),
            version: Some(n),
        }
    }

    /// Whether `public_key` is the one this key commits to.
    pub fn is_owned_by(&self, public_key: &[u8; 32]) -> bool {
        hash_public_key(public_key) == self.key_hash
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// Strict parse: exactly the form [`RecordKey::to_bytes`] produces, nothing else.
    pub fn parse(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() > MAX_KEY_LEN {
            return Err(KeyError::TooLong(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| KeyError::NotOurs)?;
        let rest = text.strip_prefix(PREFIX).ok_or(KeyError::NotOurs)?;
        let mut parts = rest.split('/');
        let kind = parts
            .next()
            .and_then(RecordKind::from_tag)
            .ok_or(KeyError::UnknownKind)?;
        let hash_text = parts.next().ok_or(KeyError::BadHash)?;
        let decoded = BASE32_LOWER
            .decode(hash_text.as_bytes())
            .map_err(|_| KeyError::BadHash)?;
        let key_hash: [u8; 32] = decoded.try_into().map_err(|_| KeyError::BadHash)?;
        let version = match parts.next() {
            None => None,
            Some(v) => {
                if kind != RecordKind::GroupInfo {
                    return Err(KeyError::UnexpectedVersion);
                }
                let n: u64 = v.parse().map_err(|_| KeyError::BadVersion)?;
                if n.to_string() != v {
                    return Err(KeyError::BadVersion);
                }
                Some(n)
            }
        };
        if parts.next().is_some() {
            return Err(KeyError::BadVersion);
        }
        Ok(Self {
            kind,
            key_hash,
            version,
        })
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{}/{}",
            self.kind.tag(),
            BASE32_LOWER.encode(&self.key_hash)
        )?;
        if let Some(n) = self.version {
            write!(f, "/{n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_and_parses() {
        let key = RecordKey::for_public_key(RecordKind::PairwiseBucket, &[7; 32]);
        let text = key.to_string();
        assert!(text.starts_with("/kiyeovo/pw/"));
        assert_eq!(RecordKey::parse(text.as_bytes()).unwrap(), key);
        let versioned = RecordKey::group_info_version(&[1; 32], 42);
        assert!(versioned.to_string().ends_with("/42"));
        assert_eq!(RecordKey::parse(&versioned.to_bytes()).unwrap(), versioned);
    }

    #[test]
    fn refuses_non_canonical_forms() {
        let key = RecordKey::for_public_key(RecordKind::GroupInfo, &[1; 32]).to_string();
        for bad in [
            key.to_uppercase(),
            format!("{key}/007"),
            format!("{key}/"),
            format!("{key}/1/2"),
            key.replace("/gi/", "/zz/"),
            key.replace("/kiyeovo/", "/other/"),
            key[..key.len() - 1].to_string(),
        ] {
            assert!(RecordKey::parse(bad.as_bytes()).is_err(), "{bad} parsed");
        }
        let pw = RecordKey::for_public_key(RecordKind::PairwiseBucket, &[1; 32]).to_string();
        assert_eq!(
            RecordKey::parse(format!("{pw}/1").as_bytes()),
            Err(KeyError::UnexpectedVersion)
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = RecordKey::parse(&bytes);
        }

        #[test]
        fn round_trip(pk in any::<[u8; 32]>(), v in proptest::option::of(any::<u64>())) {
            let mut key = RecordKey::for_public_key(RecordKind::GroupInfo, &pk);
            key.version = v;
            prop_assert_eq!(RecordKey::parse(&key.to_bytes()).unwrap(), key);
        }
    }
}
