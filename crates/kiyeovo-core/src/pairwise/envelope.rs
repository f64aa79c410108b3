//! Sealed pairwise envelopes (PROTOCOL.md §2, v2).
//!
//! What a storing node, a relay or the network sees is `{version, nonce, ciphertext}` and
//! nothing else: `ciphertext = XChaCha20-Poly1305(direction key, nonce, {header, payload,
//! signature}, aad = label ‖ version)`. The header (sender, receiver, seq, msg id, time) is
//! *inside*, so a bucket in the DHT is a random-looking key holding opaque blobs: nobody but the
//! two contacts learns who wrote to whom, how much or when. The signature is by the sender's
//! identity key over `header ‖ payload`: the AEAD proves "one of the two contacts", the
//! signature proves "this one".
//!
//! Replay protection needs memory (which ids were seen), so it lives with the caller; this module
//! is pure.

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::codec::{self, DecodeError};
use crate::identity::{serde_sig, Identity, PublicIdentity};
use crate::pairwise::keys::DirectionKeys;
use crate::reply::ReplyRef;
use crate::sign::{self, Domain};
use crate::storage::seal;

/// v1 carried the header in the clear; v2 seals it.
pub const ENVELOPE_VERSION: u8 = 2;
/// Largest envelope accepted from the network or a bucket.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;
/// Largest chat message body, in bytes of UTF-8.
pub const MAX_CHAT_BYTES: usize = 16 * 1024;
/// Most receipts in one envelope.
pub const MAX_RECEIPTS: usize = 256;

pub use crate::ids::MsgId;

/// Who, to whom, which and when: sealed inside the envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Sender's identity (Ed25519) key.
    pub sender: [u8; 32],
    /// Receiver's identity (Ed25519) key.
    pub receiver: [u8; 32],
    /// Per direction, from 1, one more for every envelope the sender writes.
    pub seq: u64,
    pub msg_id: MsgId,
    /// Sender's clock, ms since the Unix epoch.
    pub sent_at: u64,
}

/// The envelope as stored and sent: all anyone without the key can see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub version: u8,
    pub nonce: [u8; 24],
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
    /// A chat message answering an earlier message of this conversation. Its own variant, so
    /// that the envelopes written before replies existed still open as they are.
    Reply {
        body: String,
        reply_to: ReplyRef,
    },
}

impl Payload {
    /// What a person wrote, if this is a message: the text and the message it answers.
    pub fn text(&self) -> Option<(&str, Option<&ReplyRef>)> {
        match self {
            Payload::Chat { body } => Some((body, None)),
            Payload::Reply { body, reply_to } => Some((body, Some(reply_to))),
            _ => None,
        }
    }

    /// A message with `body`, answering `reply_to` if given.
    pub fn text_message(body: &str, reply_to: Option<ReplyRef>) -> Self {
        match reply_to {
            None => Payload::Chat {
                body: body.to_string(),
            },
            Some(reply_to) => Payload::Reply {
                body: body.to_string(),
                reply_to,
            },
        }
    }
}

/// The plaintext of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inner {
    pub header: Header,
    pub payload: Payload,
    #[serde(with = "serde_sig")]
    pub signature: [u8; 64],
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

/// Associated data: binds the ciphertext to this kind of envelope and its version.
fn aad(version: u8) -> Vec<u8> {
    let mut out = b"kiyeovo/v2/pairwise-envelope".to_vec();
    out.push(version);
    out
}

fn check_bounds(payload: &Payload) -> Result<(), EnvelopeError> {
    match payload {
        Payload::Chat { body } | Payload::Reply { body, .. } if body.len() > MAX_CHAT_BYTES => {
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
    MsgId::random()
}

/// Encrypts an already signed [`Inner`] (also what tests use to build forgeries).
pub fn seal_inner(key: &[u8; 32], inner: &Inner) -> Result<Vec<u8>, EnvelopeError> {
    let (nonce, ciphertext) = seal::seal_parts(key, &aad(ENVELOPE_VERSION), &codec::encode(inner));
    Ok(codec::encode(&Envelope {
        version: ENVELOPE_VERSION,
        nonce,
        ciphertext,
    }))
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
    let header = Header {
        sender: sender.public().ed25519,
        receiver: *receiver,
        seq,
        msg_id,
        sent_at,
    };
    let signature = sender.sign(Domain::PairwiseEnvelope, &signable(&header, payload));
    seal_inner(
        &keys.message_key,
        &Inner {
            header,
            payload: payload.clone(),
            signature,
        },
    )
}

/// The outside of an envelope: strict decode and a known version. All a storing node can check.
pub fn outer(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    let envelope: Envelope =
        codec::decode_bounded(bytes, MAX_ENVELOPE_BYTES).map_err(EnvelopeError::Malformed)?;
    if envelope.version != ENVELOPE_VERSION {
        return Err(EnvelopeError::UnknownVersion(envelope.version));
    }
    Ok(envelope)
}

/// Decrypts with a direction's key, without checking the signature (to order a bucket; every
/// envelope that is *applied* goes through [`open`]).
pub fn unseal(bytes: &[u8], keys: &DirectionKeys) -> Result<Inner, EnvelopeError> {
    let envelope = outer(bytes)?;
    let plain = seal::open_parts(
        &keys.message_key,
        &aad(envelope.version),
        &envelope.nonce,
        &envelope.ciphertext,
    )
    .map_err(|_| EnvelopeError::Undecryptable)?;
    decode_inner(&plain)
}

/// The plaintext of an envelope, strictly decoded (what a contact's modified client controls
/// once the AEAD has passed; public for the fuzz target).
pub fn decode_inner(plain: &[u8]) -> Result<Inner, EnvelopeError> {
    let inner: Inner =
        codec::decode_bounded(plain, MAX_ENVELOPE_BYTES).map_err(EnvelopeError::Malformed)?;
    if inner.header.seq == 0 {
        return Err(EnvelopeError::ZeroSeq);
    }
    Ok(inner)
}

/// Fully checks an envelope from `sender` to `me` with the incoming direction's keys.
pub fn open(
    bytes: &[u8],
    me: &[u8; 32],
    sender: &PublicIdentity,
    keys: &DirectionKeys,
) -> Result<(Header, Payload), EnvelopeError> {
    let inner = unseal(bytes, keys)?;
    let header = inner.header;
    if header.receiver != *me {
        return Err(EnvelopeError::WrongReceiver);
    }
    if header.sender != sender.ed25519 {
        return Err(EnvelopeError::WrongSender);
    }
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

    /// A reply's reference is signed with it: whoever holds the direction key (the receiver)
    /// cannot point someone's reply at another message. And the variants written before replies
    /// existed keep their bytes, so stored envelopes still open.
    #[test]
    fn a_reply_carries_its_reference_under_the_signature() {
        let p = pair();
        let keys = derive(&p.a, &p.b.public());
        let reply_to = ReplyRef {
            author: p.b.public().ed25519,
            msg_id: new_msg_id(),
            digest: crate::reply::digest("lunch?"),
        };
        let payload = Payload::text_message("yes", Some(reply_to));
        let bytes = seal(
            &p.a,
            &p.b.public().ed25519,
            &keys.outgoing,
            3,
            new_msg_id(),
            1,
            &payload,
        )
        .unwrap();
        let (_, opened) = open_as_b(&p, &bytes).unwrap();
        assert_eq!(opened.text(), Some(("yes", Some(&reply_to))));

        let b_keys = derive(&p.b, &p.a.public());
        let mut inner = unseal(&bytes, &b_keys.incoming).unwrap();
        inner.payload = Payload::text_message(
            "yes",
            Some(ReplyRef {
                msg_id: new_msg_id(),
                ..reply_to
            }),
        );
        let repointed = seal_inner(&b_keys.incoming.message_key, &inner).unwrap();
        assert_eq!(
            open_as_b(&p, &repointed).map(|_| ()),
            Err(EnvelopeError::BadSignature)
        );

        let huge = Payload::text_message(&"x".repeat(MAX_CHAT_BYTES + 1), Some(reply_to));
        assert_eq!(
            seal(
                &p.a,
                &p.b.public().ed25519,
                &keys.outgoing,
                4,
                new_msg_id(),
                1,
                &huge
            ),
            Err(EnvelopeError::PayloadTooLarge("chat body"))
        );
        // Positional encoding: a plain message is variant 1, as before replies.
        assert_eq!(
            codec::encode(&Payload::text_message("hi", None)),
            vec![1, 2, b'h', b'i']
        );
    }

    /// Every way an envelope can be bad, with the reason it is dropped.
    #[test]
    fn table_of_refusals() {
        let p = pair();
        let good = chat(&p, 1, "hi");
        let stranger = Identity::generate();
        let b_keys = derive(&p.b, &p.a.public());
        let inner = unseal(&good, &b_keys.incoming).unwrap();

        let mut tampered = outer(&good).unwrap();
        *tampered.ciphertext.last_mut().unwrap() ^= 1;
        let mut nonce_changed = outer(&good).unwrap();
        nonce_changed.nonce[0] ^= 1;
        let mut version = outer(&good).unwrap();
        version.version = 9;
        let mut v1 = outer(&good).unwrap();
        v1.version = 1;
        // A stranger seals with its own keys.
        let from_stranger = seal(
            &stranger,
            &p.b.public().ed25519,
            &derive(&stranger, &p.b.public()).outgoing,
            1,
            new_msg_id(),
            1,
            &Payload::Chat { body: "x".into() },
        )
        .unwrap();
        // `b` itself (who knows the key) forges a message "from a": it decrypts, but `a`'s
        // identity signature is missing.
        let forged_by_receiver = {
            let payload = Payload::Chat {
                body: "fake".into(),
            };
            let header = Header {
                msg_id: new_msg_id(),
                ..inner.header.clone()
            };
            let signature =
                p.b.sign(Domain::PairwiseEnvelope, &signable(&header, &payload));
            seal_inner(
                &b_keys.incoming.message_key,
                &Inner {
                    header,
                    payload,
                    signature,
                },
            )
            .unwrap()
        };
        // A valid inner (a's signature) re-addressed: the header is signed, so any change to it
        // is caught even by someone who holds the key.
        let re_addressed = {
            let mut i = inner.clone();
            i.header.seq = 99;
            seal_inner(&b_keys.incoming.message_key, &i).unwrap()
        };
        let to_c = {
            let mut i = inner.clone();
            i.header.receiver = stranger.public().ed25519;
            seal_inner(&b_keys.incoming.message_key, &i).unwrap()
        };
        let from_c = {
            let mut i = inner.clone();
            i.header.sender = stranger.public().ed25519;
            seal_inner(&b_keys.incoming.message_key, &i).unwrap()
        };
        let mut trailing = good.clone();
        trailing.push(0);

        let cases: Vec<(&str, Vec<u8>, EnvelopeError)> = vec![
            (
                "tampered ciphertext",
                codec::encode(&tampered),
                EnvelopeError::Undecryptable,
            ),
            (
                "nonce changed",
                codec::encode(&nonce_changed),
                EnvelopeError::Undecryptable,
            ),
            (
                "unknown version",
                codec::encode(&version),
                EnvelopeError::UnknownVersion(9),
            ),
            (
                "a v1 envelope",
                codec::encode(&v1),
                EnvelopeError::UnknownVersion(1),
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
            ("seq changed", re_addressed, EnvelopeError::BadSignature),
            (
                "addressed to someone else",
                to_c,
                EnvelopeError::WrongReceiver,
            ),
            ("claims another sender", from_c, EnvelopeError::WrongSender),
            (
                "trailing bytes",
                trailing,
                EnvelopeError::Malformed(DecodeError::TrailingBytes(1)),
            ),
        ];
        for (name, bytes, expected) in cases {
            assert_eq!(
                open_as_b(&p, &bytes).map(|(_, p)| p),
                Err(expected),
                "case: {name}"
            );
        }

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

    /// What a storing node or relay sees names nobody: neither contact's identity key nor
    /// X25519 key, nor the message id, appears anywhere in the bytes.
    #[test]
    fn the_outside_names_nobody() {
        let p = pair();
        let keys = derive(&p.a, &p.b.public());
        let msg_id = new_msg_id();
        let bytes = seal(
            &p.a,
            &p.b.public().ed25519,
            &keys.outgoing,
            1,
            msg_id,
            1,
            &Payload::Chat { body: "hi".into() },
        )
        .unwrap();
        for secret in [
            p.a.public().ed25519.to_vec(),
            p.b.public().ed25519.to_vec(),
            p.a.public().x25519.to_vec(),
            p.b.public().x25519.to_vec(),
            msg_id.0.to_vec(),
        ] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_slice()));
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let p = pair();
            let _ = open_as_b(&p, &bytes);
        }
    }
}
