//! Identities (PROTOCOL.md §1).
//!
//! A user is an Ed25519 key: the libp2p `PeerId` is derived from it, so "peer id" and "signing
//! key" are the same thing and cannot drift apart. Encryption uses a separate static X25519 key;
//! a signature by the identity key over the X25519 public key binds the two, so a contact can
//! never be handed someone else's encryption key.

use std::fmt;

use ed25519_dalek::{SigningKey, VerifyingKey};
use libp2p::identity::Keypair;
use libp2p::PeerId;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::Zeroizing;

use crate::recovery::RecoverySeed;
use crate::sign::{self, Domain};

/// Layout of the secret blob kept in the keyring, v1: `1 ‖ ed25519 seed ‖ x25519 secret` (a
/// profile made before recovery phrases).
const SECRET_FORMAT_V1: u8 = 1;
const SECRET_LEN_V1: usize = 1 + 32 + 32;
/// v2: `2 ‖ recovery phrase entropy`; both keys are derived from it ([`crate::recovery`]).
const SECRET_FORMAT_V2: u8 = 2;
const SECRET_LEN_V2: usize = 1 + 32;

/// Why a stored identity could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("the stored identity is {0} bytes, expected {SECRET_LEN_V1} or {SECRET_LEN_V2}")]
    WrongLength(usize),
    #[error("the stored identity has unknown format version {0}")]
    UnknownVersion(u8),
    #[error("the X25519 key is not bound to this identity (bad signature)")]
    BadBinding,
    #[error("not a valid Ed25519 public key")]
    BadPublicKey,
    #[error("the X25519 key is a low-order point (any shared secret with it is predictable)")]
    WeakX25519,
}

/// The user's secret keys. Both halves are wiped from memory when dropped.
pub struct Identity {
    signing: SigningKey,
    x25519: StaticSecret,
    /// The phrase both keys come from; `None` for a profile made before phrases existed.
    recovery: Option<RecoverySeed>,
}

impl fmt::Debug for Identity {
    /// Never prints key material, only the public peer id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Creates a fresh identity with keys straight from the operating system's CSPRNG and no
    /// recovery phrase (tests, where deriving from a phrase would only cost time). A profile
    /// gets [`Identity::new_with_phrase`].
    pub fn generate() -> Self {
        Self {
            signing: SigningKey::generate(&mut OsRng),
            x25519: StaticSecret::random_from_rng(OsRng),
            recovery: None,
        }
    }

    /// A new profile's identity: a fresh recovery phrase and the keys derived from it.
    pub fn new_with_phrase() -> Self {
        Self::from_recovery(RecoverySeed::generate())
    }

    /// The identity a recovery phrase stands for (a new profile, or one restored elsewhere).
    pub fn from_recovery(seed: RecoverySeed) -> Self {
        let (ed, x) = seed.derive_keys();
        Self {
            signing: SigningKey::from_bytes(&ed),
            x25519: StaticSecret::from(*x),
            recovery: Some(seed),
        }
    }

    /// The same identity key with another X25519 key and no phrase: what a contact sees of a
    /// user whose install made a new encryption key (tests build such cards).
    pub fn with_x25519(&self, secret: &[u8; 32]) -> Self {
        Self {
            signing: self.signing.clone(),
            x25519: StaticSecret::from(*secret),
            recovery: None,
        }
    }

    /// The recovery phrase of this identity, if it was made from one.
    pub fn recovery(&self) -> Option<&RecoverySeed> {
        self.recovery.as_ref()
    }

    /// Restores an identity from the bytes produced by [`Identity::to_secret_bytes`].
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        match (bytes.first(), bytes.len()) {
            (Some(&SECRET_FORMAT_V1), SECRET_LEN_V1) => {
                let mut ed = Zeroizing::new([0u8; 32]);
                ed.copy_from_slice(&bytes[1..33]);
                let mut x = Zeroizing::new([0u8; 32]);
                x.copy_from_slice(&bytes[33..65]);
                Ok(Self {
                    signing: SigningKey::from_bytes(&ed),
                    x25519: StaticSecret::from(*x),
                    recovery: None,
                })
            }
            (Some(&SECRET_FORMAT_V2), SECRET_LEN_V2) => {
                let mut entropy = Zeroizing::new([0u8; 32]);
                entropy.copy_from_slice(&bytes[1..33]);
                Ok(Self::from_recovery(RecoverySeed::from_entropy(&entropy)))
            }
            (Some(&(SECRET_FORMAT_V1 | SECRET_FORMAT_V2)), len) | (None, len) => {
                Err(IdentityError::WrongLength(len))
            }
            (Some(&version), _) => Err(IdentityError::UnknownVersion(version)),
        }
    }

    /// The secret blob stored in the keyring: the phrase's entropy when there is a phrase (the
    /// keys follow from it), else both keys. Zeroized when dropped.
    pub fn to_secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(SECRET_LEN_V1));
        match &self.recovery {
            Some(seed) => {
                out.push(SECRET_FORMAT_V2);
                out.extend_from_slice(seed.entropy());
            }
            None => {
                out.push(SECRET_FORMAT_V1);
                out.extend_from_slice(&self.signing.to_bytes());
                out.extend_from_slice(self.x25519.as_bytes());
            }
        }
        out
    }

    /// The libp2p keypair for the swarm: the same Ed25519 key, so the `PeerId` is ours.
    pub fn libp2p_keypair(&self) -> Keypair {
        let mut seed = Zeroizing::new(self.signing.to_bytes());
        // A 32-byte seed is always a valid Ed25519 secret key, so this cannot fail.
        Keypair::ed25519_from_bytes(&mut *seed).expect("32-byte ed25519 seed is always valid")
    }

    pub fn peer_id(&self) -> PeerId {
        self.libp2p_keypair().public().to_peer_id()
    }

    /// The public half, with the signature that binds the X25519 key to the identity key.
    pub fn public(&self) -> PublicIdentity {
        let x25519 = XPublic::from(&self.x25519).to_bytes();
        PublicIdentity {
            ed25519: self.signing.verifying_key().to_bytes(),
            x25519,
            binding: sign::sign(&self.signing, Domain::X25519Binding, &x25519),
        }
    }

    /// Signs `msg` under a domain label with the identity key.
    pub fn sign(&self, domain: Domain, msg: &[u8]) -> [u8; 64] {
        sign::sign(&self.signing, domain, msg)
    }

    /// The X25519 shared secret with a contact (PROTOCOL.md §2). Zeroized when dropped.
    pub fn x25519_shared(&self, their_public: &[u8; 32]) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(
            self.x25519
                .diffie_hellman(&XPublic::from(*their_public))
                .to_bytes(),
        )
    }
}

/// Whether an X25519 public key yields secrets that depend on our own key: a low-order point
/// (which a modified client can sign as its "key") makes every shared secret all zeros.
pub fn x25519_contributory(public: &[u8; 32]) -> bool {
    // Any clamped scalar (a multiple of 8) sends a low-order point to the identity.
    StaticSecret::from([0x42; 32])
        .diffie_hellman(&XPublic::from(*public))
        .was_contributory()
}

/// What others know of a user: the identity key, the X25519 key and the binding signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicIdentity {
    pub ed25519: [u8; 32],
    pub x25519: [u8; 32],
    #[serde(with = "serde_sig")]
    pub binding: [u8; 64],
}

impl PublicIdentity {
    /// Checks that the identity key signed the X25519 key, and that the key is contributory.
    ///
    /// A modified client can sign a low-order point as its "X25519 key"; every secret derived
    /// with it would then be all zeros whatever our own key is, i.e. known to anyone. Such a key
    /// is refused here, where every card and roster entry passes, so [`Identity::x25519_shared`]
    /// only ever meets contributory keys.
    pub fn verify(&self) -> Result<(), IdentityError> {
        let key =
            VerifyingKey::from_bytes(&self.ed25519).map_err(|_| IdentityError::BadPublicKey)?;
        sign::verify(&key, Domain::X25519Binding, &self.x25519, &self.binding)
            .map_err(|_| IdentityError::BadBinding)?;
        if !x25519_contributory(&self.x25519) {
            return Err(IdentityError::WeakX25519);
        }
        Ok(())
    }

    pub fn peer_id(&self) -> Result<PeerId, IdentityError> {
        let key = libp2p::identity::ed25519::PublicKey::try_from_bytes(&self.ed25519)
            .map_err(|_| IdentityError::BadPublicKey)?;
        Ok(libp2p::identity::PublicKey::from(key).to_peer_id())
    }
}

/// The peer id of an Ed25519 identity key, if the bytes are a valid key.
pub fn peer_id_of(ed25519: &[u8; 32]) -> Option<PeerId> {
    let key = libp2p::identity::ed25519::PublicKey::try_from_bytes(ed25519).ok()?;
    Some(libp2p::identity::PublicKey::from(key).to_peer_id())
}

/// serde for `[u8; 64]` (serde derives arrays only up to 32).
pub(crate) mod serde_sig {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sig: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(sig)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let bytes: &[u8] = Deserialize::deserialize(d)?;
        bytes
            .try_into()
            .map_err(|_| D::Error::invalid_length(bytes.len(), &"64 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    #[test]
    fn secret_bytes_round_trip_keeps_peer_id_and_x25519_key() {
        let id = Identity::generate();
        let restored = Identity::from_secret_bytes(&id.to_secret_bytes()).unwrap();
        assert_eq!(id.peer_id(), restored.peer_id());
        assert_eq!(id.public(), restored.public());
    }

    #[test]
    fn a_phrase_identity_is_stored_as_its_phrase_and_comes_back_whole() {
        let id = Identity::new_with_phrase();
        let bytes = id.to_secret_bytes();
        assert_eq!((bytes[0], bytes.len()), (SECRET_FORMAT_V2, SECRET_LEN_V2));
        let back = Identity::from_secret_bytes(&bytes).unwrap();
        assert_eq!(back.public(), id.public());
        assert_eq!(
            back.recovery().unwrap().entropy(),
            id.recovery().unwrap().entropy()
        );
        // A profile made before phrases (v1) still loads, without a phrase.
        let old = Identity::generate();
        let back = Identity::from_secret_bytes(&old.to_secret_bytes()).unwrap();
        assert_eq!(back.public(), old.public());
        assert!(back.recovery().is_none());
        // A v2 blob of v1's length and the reverse are refused, not misread.
        let mut long = bytes.to_vec();
        long.resize(SECRET_LEN_V1, 0);
        assert_eq!(
            Identity::from_secret_bytes(&long).unwrap_err(),
            IdentityError::WrongLength(SECRET_LEN_V1)
        );
        let mut short = old.to_secret_bytes().to_vec();
        short.truncate(SECRET_LEN_V2);
        assert_eq!(
            Identity::from_secret_bytes(&short).unwrap_err(),
            IdentityError::WrongLength(SECRET_LEN_V2)
        );
        assert_eq!(
            Identity::from_secret_bytes(&[]).unwrap_err(),
            IdentityError::WrongLength(0)
        );
    }

    #[test]
    fn two_identities_differ() {
        assert_ne!(
            Identity::generate().peer_id(),
            Identity::generate().peer_id()
        );
    }

    #[test]
    fn peer_id_is_the_identity_key() {
        let id = Identity::generate();
        assert_eq!(id.public().peer_id().unwrap(), id.peer_id());
    }

    #[test]
    fn malformed_secrets_are_typed_errors() {
        assert_eq!(
            Identity::from_secret_bytes(&[1; 10]).unwrap_err(),
            IdentityError::WrongLength(10)
        );
        let mut bytes = Identity::generate().to_secret_bytes().to_vec();
        bytes[0] = 9;
        assert_eq!(
            Identity::from_secret_bytes(&bytes).unwrap_err(),
            IdentityError::UnknownVersion(9)
        );
    }

    /// A modified client binds a low-order point (here: zero and the order-8 point that
    /// X25519 implementations list) to its identity with a valid signature: refused.
    #[test]
    fn a_signed_low_order_x25519_key_is_refused() {
        let id = Identity::generate();
        let mut order8 = [0u8; 32];
        order8.copy_from_slice(&hex_bytes(
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        ));
        for weak in [
            [0u8; 32],
            [1u8; 1]
                .iter()
                .chain([0u8; 31].iter())
                .copied()
                .collect::<Vec<_>>()
                .try_into()
                .unwrap(),
            order8,
        ] {
            let public = PublicIdentity {
                ed25519: id.public().ed25519,
                x25519: weak,
                binding: id.sign(Domain::X25519Binding, &weak),
            };
            assert_eq!(public.verify(), Err(IdentityError::WeakX25519), "{weak:?}");
        }
        id.public().verify().unwrap();
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn binding_verifies_and_detects_a_swapped_x25519_key() {
        let id = Identity::generate();
        let public = id.public();
        public.verify().unwrap();
        let mut swapped = public.clone();
        swapped.x25519 = Identity::generate().public().x25519;
        assert_eq!(swapped.verify().unwrap_err(), IdentityError::BadBinding);
    }

    #[test]
    fn public_identity_serialises_canonically() {
        let public = Identity::generate().public();
        let bytes = codec::encode(&public);
        let back: PublicIdentity = codec::decode_bounded(&bytes, 256).unwrap();
        assert_eq!(back, public);
        assert_eq!(
            codec::encode(&back),
            bytes,
            "re-encoding gives the same bytes"
        );
    }

    #[test]
    fn shared_secret_agrees_on_both_sides() {
        let (a, b) = (Identity::generate(), Identity::generate());
        assert_eq!(
            *a.x25519_shared(&b.public().x25519),
            *b.x25519_shared(&a.public().x25519)
        );
    }

    #[test]
    fn debug_output_has_no_secret() {
        let id = Identity::generate();
        let debug = format!("{id:?}");
        let seed_hex: String = id.to_secret_bytes()[1..9]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!debug.contains(&seed_hex));
        assert!(debug.contains(&id.peer_id().to_string()));
    }
}
