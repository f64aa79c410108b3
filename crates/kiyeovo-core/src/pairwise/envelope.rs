//! Sealed pairwise envelopes (PROTOCOL.md §2).
//!
//! `Envelope = {header, ciphertext}`; `ciphertext = XChaCha20-Poly1305(direction key, nonce,
//! {payload, signature}, aad = header bytes)`. The signature is by the sender's *identity* key
//! over `header ‖ payload`, inside the ciphertext: the AEAD proves "one of the two contacts", the
//! signature proves "this one", and the header cannot be swapped onto another ciphertext.
//!
//! Replay protection needs memory (which ids were seen), so it lives with the caller; this module
//! is pure.

use chacha20poly1305::aead::{Aead, KeyInit, Payload as AeadPayload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::VerifyingKey;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::codec::{self, DecodeError};
use crate::identity::{serde_sig, Identity, PublicIdentity};
use crate::pairwise::keys::DirectionKeys;
use crate::sign::{self, Domain};

pub const ENVELOPE_VERSION: u8 = 1;
/// Largest envelope accepted from the network or a bucket.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;
/// Largest chat message body, in bytes of UTF-8.
pub const MAX_CHAT_BYTES: usize = 16 * 1024;
/// Most receipts in one envelope.
pub const MAX_RECEIPTS: usize = 256;

pub type MsgId = [u8; 16];

/// Cleartext routing information; authenticated as AEAD associated data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub version: u8,
    /// Sender's identity (Ed25519) key.
    pub sender: [u8; 32],
    /// Receiver's identity (Ed25519) key.
    pub receiver: [u8; 32],
    /// Per direction, from 1, one more for every envelope the sender writes.
    pub seq: u64,
    pub msg_id: MsgId,
    /// Sender's clock, ms since the Unix epoch.
    pub sent_at: u64,
    pub nonce: [u8; 24],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub header: Header,
    pub ciphertext: Vec<u8>,
}

/// What travels inside an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Key confirmation: decrypting it proves the sender derived the shared secret from our card,
    /// the signature proves who they are.
    Handshake {
        card_created_at: u64,
    },
    Chat {
        body: String,
    },
    /// "These messages reached me."
    Receipt {
        delivered: Vec<MsgId>,
    },
    /// A signed group control message ([`crate::group::control::SignedControl`] bytes), handed
    /// to the group service.
    Group {
        control: Vec<u8>,
    },
}

#[derive(Serialize, Deserialize)]
struct Inner {
    payload: Payload,
    #[serde(with = "serde_sig")]
    signature: [u8; 64],
}

/// Why an envelope was dropped; each is logged with the sender.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("envelope does not decode: {0}")]
    Malformed(DecodeError),
    #[error("unknown envelope version {0}")]
    UnknownVersion(u8),
    #[error("envelope is addressed to someone else")]
    WrongReceiver,
    #[error("envelope is not from the expected contact")]
    WrongSender,
    #[error("envelope does not decrypt (wrong key or tampered)")]
    Undecryptable,
    #[error("payload signature does not verify")]
    BadSignature,
    #[error("payload is out of bounds: {0}")]
    PayloadTooLarge(&'static str),
    #[error("sequence number 0 is not valid")]
    ZeroSeq,
}

fn signable(header: &Header, payload: &Payload) -> Vec<u8> {
    let mut out = codec::encode(header);
    out.extend_from_slice(&codec::encode(payload));
    out
}

fn check_bounds(payload: &Payload) -> Result<(), EnvelopeError> {
    match payload {
        Payload::Chat { body } if body.len() > MAX_CHAT_BYTES => {
            Err(EnvelopeError::PayloadTooLarge("chat body"))
        }
        Payload::Receipt { delivered } if delivered.len() > MAX_RECEIPTS => {
            Err(EnvelopeError::PayloadTooLarge("receipts"))
        }
        Payload::Group { control } if control.len() > crate::group::control::MAX_CONTROL_BYTES => {
            Err(EnvelopeError::PayloadTooLarge("group control message"))
        }
        _ => Ok(()),
    }
}

/// Fresh random message id.
pub fn new_msg_id() -> MsgId {
    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    id
}

/// Seals `payload` from `sender` to `receiver` with the outgoing direction's keys.
pub fn seal(
    sender: &Identity,
    receiver: &[u8; 32],
    keys: &DirectionKeys,
    seq: u64,
    msg_id: MsgId,
    sent_at: u64,
    payload: &Payload,
) -> Result<Vec<u8>, EnvelopeError> {
    check_bounds(payload)?;
    if seq == 0 {
        return Err(EnvelopeError::ZeroSeq);
    }
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let header = Header {
        version: ENVELOPE_VERSION,
        sender: sender.public().ed25519,
        receiver: *receiver,
        seq,
        msg_id,
        sent_at,
        nonce,
    };
    let inner = codec::encode(&Inner {
        signature: sender.sign(Domain::PairwiseEnvelope, &signable(&header, payload)),
        payload: payload.clone(),
    });
    let aad = codec::encode(&header);
    let ciphertext = XChaCha20Poly1305::new((&*keys.message_key).into())
        .encrypt(
            XNonce::from_slice(&nonce),
            AeadPayload {
                msg: &inner,
                aad: &aad,
            },
        )
        .map_err(|_| EnvelopeError::Undecryptable)?;
    Ok(codec::encode(&Envelope { header, ciphertext }))
}

/// Reads the header without decrypting (to route an envelope to its contact, or order a bucket).
pub fn peek(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    let envelope: Envelope =
        codec::decode_bounded(bytes, MAX_ENVELOPE_BYTES).map_err(EnvelopeError::Malformed)?;
    if envelope.header.version != ENVELOPE_VERSION {
        return Err(EnvelopeError::UnknownVersion(envelope.header.version));
    }
    if envelope.header.seq == 0 {
        return Err(EnvelopeError::ZeroSeq);
    }
    Ok(envelope)
}

/// Fully checks an envelope from `sender` to `me` with the incoming direction's keys.
pub fn open(
    bytes: &[u8],
    me: &[u8; 32],
    sender: &PublicIdentity,
    keys: &DirectionKeys,
) -> Result<(Header, Payload), EnvelopeError> {
    let envelope = peek(bytes)?;
    let header = envelope.header;
    if header.receiver != *me {
        return Err(EnvelopeError::WrongReceiver);
    }
    if header.sender != sender.ed25519 {
        return Err(EnvelopeError::WrongSender);
    }
    let aad = codec::encode(&header);
    let inner = XChaCha20Poly1305::new((&*keys.message_key).into())
        .decrypt(
            XNonce::from_slice(&header.nonce),
            AeadPayload {
                msg: &envelope.ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| EnvelopeError::Undecryptable)?;
    let inner: Inner =
        codec::decode_bounded(&inner, MAX_ENVELOPE_BYTES).map_err(EnvelopeError::Malformed)?;
    let key = VerifyingKey::from_bytes(&sender.ed25519).map_err(|_| EnvelopeError::BadSignature)?;
    sign::verify(
        &key,
        Domain::PairwiseEnvelope,
        &signable(&header, &inner.payload),
        &inner.signature,
    )
    .map_err(|_| EnvelopeError::BadSignature)?;
    check_bounds(&inner.payload)?;
    Ok((header, inner.payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairwise::keys::derive;
    use proptest::prelude::*;

    struct Pair {
        a: Identity,
        b: Identity,
    }

    fn pair() -> Pair {
        Pair {
            a: Identity::generate(),
            b: Identity::generate(),
        }
    }

    fn chat(p: &Pair, seq: u64, body: &str) -> Vec<u8> {
        let keys = derive(&p.a, &p.b.public());
        seal(
            &p.a,
            &p.b.public().ed25519,
            &keys.outgoing,
            seq,
            new_msg_id(),
            1,
            &Payload::Chat { body: body.into() },
        )
        .unwrap()
    }

    fn open_as_b(p: &Pair, bytes: &[u8]) -> Result<(Header, Payload), EnvelopeError> {
        let keys = derive(&p.b, &p.a.public());
        open(bytes, &p.b.public().ed25519, &p.a.public(), &keys.incoming)
    }

    #[test]
    fn sealed_chat_opens_for_the_receiver() {
        let p = pair();
        let (header, payload) = open_as_b(&p, &chat(&p, 7, "hello")).unwrap();
        assert_eq!(header.seq, 7);
        assert_eq!(
            payload,
            Payload::Chat {
                body: "hello".into()
            }
        );
    }

    /// Every way an envelope can be bad, with the reason it is dropped.
    #[test]
    fn table_of_refusals() {
        let p = pair();
        let good = chat(&p, 1, "hi");
        let other = chat(&p, 2, "other");
        let stranger = Identity::generate();

        let mut tampered = peek(&good).unwrap();
        *tampered.ciphertext.last_mut().unwrap() ^= 1;
        let mut header_swapped = peek(&good).unwrap();
        header_swapped.header = peek(&other).unwrap().header;
        let mut seq_changed = peek(&good).unwrap();
        seq_changed.header.seq = 99;
        let mut version = peek(&good).unwrap();
        version.header.version = 9;
        // A stranger seals with its own keys but claims to be `a`.
        let from_stranger = {
            let keys = derive(&stranger, &p.b.public());
            let mut env = peek(
                &seal(
                    &stranger,
                    &p.b.public().ed25519,
                    &keys.outgoing,
                    1,
                    new_msg_id(),
                    1,
                    &Payload::Chat { body: "x".into() },
                )
                .unwrap(),
            )
            .unwrap();
            env.header.sender = p.a.public().ed25519;
            codec::encode(&env)
        };
        // `b` itself (who knows the key) forges a message "from a": decrypts, but `a`'s
        // identity signature is missing.
        let forged_by_receiver = {
            let keys = derive(&p.b, &p.a.public());
            let mut env = peek(
                &seal(
                    &p.b,
                    &p.b.public().ed25519,
                    &keys.incoming,
                    1,
                    new_msg_id(),
                    1,
                    &Payload::Chat {
                        body: "fake".into(),
                    },
                )
                .unwrap(),
            )
            .unwrap();
            let aad_header = Header {
                sender: p.a.public().ed25519,
                ..env.header.clone()
            };
            // Re-encrypt with a's sender field so only the signature can tell.
            let inner_plain = XChaCha20Poly1305::new((&*keys.incoming.message_key).into())
                .decrypt(
                    XNonce::from_slice(&env.header.nonce),
                    AeadPayload {
                        msg: &env.ciphertext,
                        aad: &codec::encode(&env.header),
                    },
                )
                .unwrap();
            env.ciphertext = XChaCha20Poly1305::new((&*keys.incoming.message_key).into())
                .encrypt(
                    XNonce::from_slice(&aad_header.nonce),
                    AeadPayload {
                        msg: &inner_plain,
                        aad: &codec::encode(&aad_header),
                    },
                )
                .unwrap();
            env.header = aad_header;
            codec::encode(&env)
        };

        let cases: Vec<(&str, Vec<u8>, EnvelopeError)> = vec![
            (
                "tampered ciphertext",
                codec::encode(&tampered),
                EnvelopeError::Undecryptable,
            ),
            (
                "header swapped",
                codec::encode(&header_swapped),
                EnvelopeError::Undecryptable,
            ),
            (
                "seq changed",
                codec::encode(&seq_changed),
                EnvelopeError::Undecryptable,
            ),
            (
                "unknown version",
                codec::encode(&version),
                EnvelopeError::UnknownVersion(9),
            ),
            (
                "from a stranger",
                from_stranger,
                EnvelopeError::Undecryptable,
            ),
            (
                "forged by the receiver",
                forged_by_receiver,
                EnvelopeError::BadSignature,
            ),
        ];
        for (name, bytes, expected) in cases {
            assert_eq!(
                open_as_b(&p, &bytes).map(|(_, p)| p),
                Err(expected),
                "case: {name}"
            );
        }

        let c = Identity::generate();
        let keys_c = derive(&c, &p.a.public());
        assert_eq!(
            open(&good, &c.public().ed25519, &p.a.public(), &keys_c.incoming).map(|(_, p)| p),
            Err(EnvelopeError::WrongReceiver)
        );
        assert_eq!(
            open(
                &good,
                &p.b.public().ed25519,
                &c.public(),
                &derive(&p.b, &c.public()).incoming
            )
            .map(|(_, p)| p),
            Err(EnvelopeError::WrongSender)
        );
        let huge = Payload::Chat {
            body: "x".repeat(MAX_CHAT_BYTES + 1),
        };
        let keys = derive(&p.a, &p.b.public());
        assert_eq!(
            seal(
                &p.a,
                &p.b.public().ed25519,
                &keys.outgoing,
                1,
                new_msg_id(),
                1,
                &huge
            ),
            Err(EnvelopeError::PayloadTooLarge("chat body"))
        );
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let p = pair();
            let _ = open_as_b(&p, &bytes);
        }
    }
}
