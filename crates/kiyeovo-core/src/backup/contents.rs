//! What a backup file holds once opened: the identity as the keyring stores it, the storage
//! key, and a consistent copy of the database (still encrypted under that key, so it is exactly
//! what the data directory held). Contacts with their petnames and trust, groups with their keys
//! and chain position, cursors, 1:1 and group history and settings are all rows of that database.

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::file::{BackupError, MAX_FILE_BYTES};
use crate::codec;
use crate::identity::Identity;

/// The version of [`Contents`] inside a format-1 file.
pub const CONTENTS_VERSION: u8 = 1;

/// Shortest database a backup can carry (one SQLCipher page).
const MIN_DATABASE_BYTES: usize = 512;

#[derive(Serialize, Deserialize, PartialEq, Eq)]
pub struct Contents {
    pub version: u8,
    /// When the backup was written (ms since the epoch).
    pub created_at: u64,
    /// The identity's peer id, checked against the identity on restore.
    pub peer_id: String,
    /// The identity as the keyring holds it ([`Identity::to_secret_bytes`]).
    pub identity: Vec<u8>,
    pub storage_key: [u8; 32],
    /// The database file, encrypted under `storage_key` as on disk.
    pub database: Vec<u8>,
}

impl Drop for Contents {
    fn drop(&mut self) {
        self.identity.zeroize();
        self.storage_key.zeroize();
    }
}

impl std::fmt::Debug for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contents")
            .field("version", &self.version)
            .field("created_at", &self.created_at)
            .field("peer_id", &self.peer_id)
            .field("database_bytes", &self.database.len())
            .finish_non_exhaustive()
    }
}

impl Contents {
    pub fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        zeroize::Zeroizing::new(codec::encode(self))
    }

    /// Decodes strictly (bounded, canonical) and checks the parts agree: a known version, an
    /// identity that loads and is the one named, a database that is not a plaintext file.
    /// Returns the contents and the identity.
    pub fn decode(bytes: &[u8]) -> Result<(Self, Identity), BackupError> {
        let contents: Contents = codec::decode_bounded(bytes, MAX_FILE_BYTES)
            .map_err(|e| BackupError::Damaged(format!("contents: {e}")))?;
        if contents.version != CONTENTS_VERSION {
            return Err(BackupError::Damaged(format!(
                "contents version {}",
                contents.version
            )));
        }
        let identity = Identity::from_secret_bytes(&contents.identity)
            .map_err(|e| BackupError::Damaged(format!("identity: {e}")))?;
        if identity.peer_id().to_string() != contents.peer_id {
            return Err(BackupError::Damaged(
                "the identity is not the one the backup names".into(),
            ));
        }
        if contents.database.len() < MIN_DATABASE_BYTES
            || contents.database.starts_with(b"SQLite format 3\0")
        {
            return Err(BackupError::Damaged(
                "the database copy is not an encrypted database".into(),
            ));
        }
        Ok((contents, identity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(identity: &Identity) -> Contents {
        Contents {
            version: CONTENTS_VERSION,
            created_at: 1,
            peer_id: identity.peer_id().to_string(),
            identity: identity.to_secret_bytes().to_vec(),
            storage_key: [3; 32],
            database: vec![9; 1024],
        }
    }

    #[test]
    fn contents_round_trip_and_disagreeing_parts_are_refused() {
        let identity = Identity::new_with_phrase();
        let bytes = sample(&identity).encode();
        let (back, loaded) = Contents::decode(&bytes).unwrap();
        assert_eq!(back, sample(&identity));
        assert_eq!(loaded.peer_id(), identity.peer_id());
        assert!(!format!("{back:?}").contains("storage_key"));

        let other = Identity::generate();
        let mut named_wrong = sample(&identity);
        named_wrong.peer_id = other.peer_id().to_string();
        let mut plaintext = sample(&identity);
        plaintext.database = b"SQLite format 3\0".repeat(64);
        let mut future = sample(&identity);
        future.version = 2;
        let mut bad_identity = sample(&identity);
        bad_identity.identity = vec![0xff; 5];
        for (what, c) in [
            ("named wrong", named_wrong),
            ("plaintext database", plaintext),
            ("future contents", future),
            ("bad identity", bad_identity),
        ] {
            assert!(
                matches!(Contents::decode(&c.encode()), Err(BackupError::Damaged(_))),
                "{what}"
            );
        }
        let mut trailing = sample(&identity).encode().to_vec();
        trailing.push(0);
        assert!(matches!(
            Contents::decode(&trailing),
            Err(BackupError::Damaged(_))
        ));
    }
}
