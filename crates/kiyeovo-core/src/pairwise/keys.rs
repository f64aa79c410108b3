//! Pairwise key derivation (PROTOCOL.md §2).
//!
//! From `S = X25519(mine, theirs)`, HKDF-SHA256 derives for each direction `sender → receiver`:
//! the message key (XChaCha20-Poly1305) and the seed of the bucket signing key. The direction
//! is part of the HKDF `info` (sender's then receiver's identity key), so the two directions
//! never share a key or a bucket. The bucket key is self-certifying in the DHT
//! (`/kiyeovo/pw/<h(bucket_pub)>`): storing nodes can check writes without learning who talks
//! to whom.
//!
//! Both contacts can derive both bucket keys (that is what lets a receiver find a bucket from the
//! cards alone, even before any message was exchanged). So a bucket record only proves "one of
//! the two contacts wrote this"; each envelope inside is additionally signed by the sender's
//! identity key, which is what receivers trust.

use ed25519_dalek::SigningKey;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::identity::{Identity, PublicIdentity};
use crate::records::{RecordKey, RecordKind};

const SALT: &[u8] = b"kiyeovo/v1/pairwise";

/// The keys of one direction.
pub struct DirectionKeys {
    /// Encrypts envelopes of this direction.
    pub message_key: Zeroizing<[u8; 32]>,
    /// Signs the sender's bucket record of this direction.
    pub bucket_key: SigningKey,
}

impl DirectionKeys {
    pub fn bucket_public(&self) -> [u8; 32] {
        self.bucket_key.verifying_key().to_bytes()
    }

    /// Where this direction's offline bucket lives in the DHT.
    pub fn bucket_record_key(&self) -> RecordKey {
        RecordKey::for_public_key(RecordKind::PairwiseBucket, &self.bucket_public())
    }
}

/// Both directions between us and one contact.
pub struct PairwiseKeys {
    /// Us → them.
    pub outgoing: DirectionKeys,
    /// Them → us.
    pub incoming: DirectionKeys,
}

fn expand(
    hkdf: &Hkdf<Sha256>,
    label: &[u8],
    sender: &[u8; 32],
    receiver: &[u8; 32],
) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte output limit, so expansion cannot fail.
    hkdf.expand_multi_info(&[label, sender, receiver], &mut *out)
        .expect("32-byte HKDF output is always valid");
    out
}

fn direction(hkdf: &Hkdf<Sha256>, sender: &[u8; 32], receiver: &[u8; 32]) -> DirectionKeys {
    let seed = expand(hkdf, b"bucket", sender, receiver);
    DirectionKeys {
        message_key: expand(hkdf, b"message", sender, receiver),
        bucket_key: SigningKey::from_bytes(&seed),
    }
}

/// Derives the pairwise keys between `me` and `them` (whose card has been verified).
pub fn derive(me: &Identity, them: &PublicIdentity) -> PairwiseKeys {
    let shared = me.x25519_shared(&them.x25519);
    let hkdf = Hkdf::<Sha256>::new(Some(SALT), &*shared);
    let mine = me.public().ed25519;
    PairwiseKeys {
        outgoing: direction(&hkdf, &mine, &them.ed25519),
        incoming: direction(&hkdf, &them.ed25519, &mine),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_agree_per_direction_and_directions_differ() {
        let (a, b) = (Identity::generate(), Identity::generate());
        let ab = derive(&a, &b.public());
        let ba = derive(&b, &a.public());
        assert_eq!(*ab.outgoing.message_key, *ba.incoming.message_key);
        assert_eq!(*ab.incoming.message_key, *ba.outgoing.message_key);
        assert_eq!(ab.outgoing.bucket_public(), ba.incoming.bucket_public());
        assert_ne!(*ab.outgoing.message_key, *ab.incoming.message_key);
        assert_ne!(ab.outgoing.bucket_public(), ab.incoming.bucket_public());
        assert_ne!(*ab.outgoing.message_key, ab.outgoing.bucket_key.to_bytes());
    }

    #[test]
    fn a_third_party_derives_nothing_in_common() {
        let (a, b, c) = (
            Identity::generate(),
            Identity::generate(),
            Identity::generate(),
        );
        let ab = derive(&a, &b.public());
        let cb = derive(&c, &b.public());
        assert_ne!(*ab.outgoing.message_key, *cb.outgoing.message_key);
        assert_ne!(ab.outgoing.bucket_public(), cb.outgoing.bucket_public());
    }

    #[test]
    fn bucket_key_is_self_certifying() {
        let (a, b) = (Identity::generate(), Identity::generate());
        let keys = derive(&a, &b.public());
        let key = keys.outgoing.bucket_record_key();
        assert!(key.is_owned_by(&keys.outgoing.bucket_public()));
        assert!(key.to_string().starts_with("/kiyeovo/pw/"));
    }
}
