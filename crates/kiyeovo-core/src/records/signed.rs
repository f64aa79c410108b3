//! The signed envelope around every DHT value.
//!
//! The signature covers the DHT key as well as the content, so a valid record cannot be copied
//! under another key (for instance, version 3 of a group-info chain replayed as version 4).

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::codec::{self, DecodeError};
use crate::identity::serde_sig;
use crate::records::key::RecordKey;
use crate::sign::{self, BadSignature, Domain};

/// A DHT value: `{public_key, version, updated_at, payload}` signed by `public_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRecord {
    /// The writer's key; the DHT key commits to its hash.
    pub public_key: [u8; 32],
    /// Strictly increasing per key; equals `N` for versioned keys.
    pub version: u64,
    /// Writer's clock (ms since epoch), only used to break ties between equal versions.
    pub updated_at: u64,
    /// Kind-specific content (bucket, group info), opaque at this layer.
    pub payload: Vec<u8>,
    #[serde(with = "serde_sig")]
    pub signature: [u8; 64],
}

/// The bytes that are signed: the key, then every field but the signature.
#[derive(Serialize)]
struct Signable<'a> {
    key: &'a [u8],
    public_key: &'a [u8; 32],
    version: u64,
    updated_at: u64,
    payload: &'a [u8],
}

impl SignedRecord {
    /// Signs a new record for `key` with the key's owner `signer`.
    pub fn sign(
        signer: &SigningKey,
        key: &RecordKey,
        version: u64,
        updated_at: u64,
        payload: Vec<u8>,
    ) -> Self {
        let public_key = signer.verifying_key().to_bytes();
        let signable = Self::signable(key, &public_key, version, updated_at, &payload);
        Self {
            public_key,
            version,
            updated_at,
            signature: sign::sign(signer, Domain::Record, &signable),
            payload,
        }
    }

    fn signable(
        key: &RecordKey,
        public_key: &[u8; 32],
        version: u64,
        updated_at: u64,
        payload: &[u8],
    ) -> Vec<u8> {
        codec::encode(&Signable {
            key: &key.to_bytes(),
            public_key,
            version,
            updated_at,
            payload,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8], limit: usize) -> Result<Self, DecodeError> {
        codec::decode_bounded(bytes, limit)
    }

    /// Checks the signature under `public_key` for this exact `key`.
    pub fn verify_signature(&self, key: &RecordKey) -> Result<(), BadSignature> {
        let verifying = VerifyingKey::from_bytes(&self.public_key).map_err(|_| BadSignature)?;
        let signable = Self::signable(
            key,
            &self.public_key,
            self.version,
            self.updated_at,
            &self.payload,
        );
        sign::verify(&verifying, Domain::Record, &signable, &self.signature)
    }
}
