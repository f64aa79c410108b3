//! Group message envelopes (PROTOCOL.md §5, v2).
//!
//! As stored in a bucket or carried by gossip an envelope is `{version, nonce, ciphertext}`:
//! `ciphertext = XChaCha20-Poly1305(epoch key, nonce, {header, body, signature})`. The header
//! (group, epoch, sender, seq, msg id, time, roster hash) and the sender's identity signature
//! over `header ‖ body` are inside, so a storing node or a relay learns neither who is in a group
//! nor who wrote, and members can still pass on each other's envelopes without being able to
//! forge them. Membership, sequence bounds and duplicates need the roster and memory, so the
//! receiver checks those; this module is pure.

use crate::ids::MsgId;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::control::{GroupId, GroupKey, MemberKey};
use crate::codec::{self, DecodeError};
use crate::identity::{serde_sig, Identity};
use crate::reply::ReplyRef;
use crate::sign::{self, Domain};
use crate::storage::seal;

/// v1 carried the header and signature in the clear; v2 seals them; v3 adds the reply
/// reference. A reply is written as v3; any other message still as v2, so members who have
/// not upgraded yet read everything but replies (they refuse a v3 as an unknown version).
pub const GROUP_ENVELOPE_VERSION: u8 = 3;
const GROUP_ENVELOPE_V2: u8 = 2;
/// Largest group envelope accepted from gossipsub or a bucket.
pub const MAX_GROUP_ENVELOPE_BYTES: usize = 24 * 1024;
/// Largest message body, in bytes of UTF-8.
pub const MAX_GROUP_BODY_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupHeader {
    pub group_id: GroupId,
    pub epoch: u32,
    pub sender: MemberKey,
    /// Per sender per epoch, from 1.
    pub seq: u64,
    pub msg_id: MsgId,
    pub sent_at: u64,
    /// Hash of the roster the sender sees for this epoch (equivocation check).
    pub roster_hash: [u8; 32],
}

/// The envelope as stored and gossiped: all anyone without the epoch key sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEnvelope {
    pub version: u8,
    pub nonce: [u8; 24],
    pub ciphertext: Vec<u8>,
}

/// The plaintext of a group envelope (v3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInner {
    pub header: GroupHeader,
    /// The message this one answers (`crate::reply`).
    pub reply_to: Option<ReplyRef>,
    pub body: String,
    #[serde(with = "serde_sig")]
    pub signature: [u8; 64],
}

/// The plaintext of a v2 envelope. Postcard is positional: this layout never changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct GroupInnerV2 {
    header: GroupHeader,
    body: String,
    #[serde(with = "serde_sig")]
    signature: [u8; 64],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GroupEnvelopeError {
    #[error("group envelope does not decode: {0}")]
    Malformed(DecodeError),
    #[error("unknown group envelope version {0}")]
    UnknownVersion(u8),
    #[error("group envelope signature does not verify")]
    BadSignature,
    #[error("group envelope is for another group or epoch")]
    WrongGroup,
    #[error("group envelope does not decrypt (wrong key or tampered)")]
    Undecryptable,
    #[error("message body is too large or not text")]
    BadBody,
    #[error("sequence number 0 is not valid")]
    ZeroSeq,
}

/// What the sender signs, under which domain: v2 `header ‖ body` (the body unframed, as it
/// always was); v3 the encoding of `(header, reply_to, body)` under its own domain, so a v3
/// signature can never be passed off as a v2 one with the reply reference folded into the body.
fn signable(
    version: u8,
    header: &GroupHeader,
    reply_to: &Option<ReplyRef>,
    body: &str,
) -> (Domain, Vec<u8>) {
    if version == GROUP_ENVELOPE_V2 {
        let mut out = codec::encode(header);
        out.extend_from_slice(body.as_bytes());
        (Domain::GroupMessage, out)
    } else {
        (Domain::GroupReply, codec::encode(&(header, reply_to, body)))
    }
}

/// The layout a message is written in: v3 only for a reply (see [`GROUP_ENVELOPE_VERSION`]).
fn version_for(reply_to: &Option<ReplyRef>) -> u8 {
    if reply_to.is_some() {
        GROUP_ENVELOPE_VERSION
    } else {
        GROUP_ENVELOPE_V2
    }
}

fn aad(version: u8) -> Vec<u8> {
    let mut out = b"kiyeovo/v2/group-envelope".to_vec();
    out.push(version);
    out
}

/// What a sender needs to seal one message.
pub struct Sealing<'a> {
    pub identity: &'a Identity,
    pub key: &'a GroupKey,
    pub group_id: GroupId,
    pub epoch: u32,
    pub seq: u64,
    pub msg_id: MsgId,
    pub sent_at: u64,
    pub roster_hash: [u8; 32],
}

/// Encrypts an already signed [`GroupInner`] (also what tests use to build forgeries): as v3
/// if it is a reply, else in the v2 layout.
pub fn seal_inner(key: &GroupKey, inner: &GroupInner) -> Result<Vec<u8>, GroupEnvelopeError> {
    let version = version_for(&inner.reply_to);
    let plain = if version == GROUP_ENVELOPE_V2 {
        codec::encode(&GroupInnerV2 {
            header: inner.header.clone(),
            body: inner.body.clone(),
            signature: inner.signature,
        })
    } else {
        codec::encode(inner)
    };
    let (nonce, ciphertext) = seal::seal_parts(&key.0, &aad(version), &plain);
    Ok(codec::encode(&GroupEnvelope {
        version,
        nonce,
        ciphertext,
    }))
}

pub fn seal(s: &Sealing<'_>, body: &str) -> Result<Vec<u8>, GroupEnvelopeError> {
    seal_reply(s, body, None)
}

/// Seals `body`, answering `reply_to` if given.
pub fn seal_reply(
    s: &Sealing<'_>,
    body: &str,
    reply_to: Option<ReplyRef>,
) -> Result<Vec<u8>, GroupEnvelopeError> {
    if body.len() > MAX_GROUP_BODY_BYTES {
        return Err(GroupEnvelopeError::BadBody);
    }
    if s.seq == 0 {
        return Err(GroupEnvelopeError::ZeroSeq);
    }
    let header = GroupHeader {
        group_id: s.group_id,
        epoch: s.epoch,
        sender: s.identity.public().ed25519,
        seq: s.seq,
        msg_id: s.msg_id,
        sent_at: s.sent_at,
        roster_hash: s.roster_hash,
    };
    let (domain, signed) = signable(version_for(&reply_to), &header, &reply_to, body);
    let signature = s.identity.sign(domain, &signed);
    seal_inner(
        s.key,
        &GroupInner {
            header,
            reply_to,
            body: body.to_string(),
            signature,
        },
    )
}

/// The outside: strict decode and a known version (all a storing node or relay can check).
pub fn outer(bytes: &[u8]) -> Result<GroupEnvelope, GroupEnvelopeError> {
    let env: GroupEnvelope = codec::decode_bounded(bytes, MAX_GROUP_ENVELOPE_BYTES)
        .map_err(GroupEnvelopeError::Malformed)?;
    if env.version != GROUP_ENVELOPE_VERSION && env.version != GROUP_ENVELOPE_V2 {
        return Err(GroupEnvelopeError::UnknownVersion(env.version));
    }
    Ok(env)
}

/// Decrypts with an epoch key, without checking the signature or the group (to order a bucket).
pub fn unseal(bytes: &[u8], key: &GroupKey) -> Result<GroupInner, GroupEnvelopeError> {
    unseal_versioned(bytes, key).map(|(_, inner)| inner)
}

/// [`unseal`], with the envelope's version (what its signature covers depends on it).
fn unseal_versioned(bytes: &[u8], key: &GroupKey) -> Result<(u8, GroupInner), GroupEnvelopeError> {
    let env = outer(bytes)?;
    // The version is in the associated data: a v2 label on v3 bytes (or back) does not open.
    let plain = seal::open_parts(&key.0, &aad(env.version), &env.nonce, &env.ciphertext)
        .map_err(|_| GroupEnvelopeError::Undecryptable)?;
    Ok((env.version, decode_inner(env.version, &plain)?))
}

/// The plaintext of a `version` envelope, strictly decoded (what a member's modified client
/// controls once the AEAD has passed; public for the fuzz target).
pub fn decode_inner(version: u8, plain: &[u8]) -> Result<GroupInner, GroupEnvelopeError> {
    let inner = if version == GROUP_ENVELOPE_V2 {
        let old: GroupInnerV2 = codec::decode_bounded(plain, MAX_GROUP_ENVELOPE_BYTES)
            .map_err(GroupEnvelopeError::Malformed)?;
        GroupInner {
            header: old.header,
            reply_to: None,
            body: old.body,
            signature: old.signature,
        }
    } else {
        let inner: GroupInner = codec::decode_bounded(plain, MAX_GROUP_ENVELOPE_BYTES)
            .map_err(GroupEnvelopeError::Malformed)?;
        if inner.reply_to.is_none() {
            // A plain message has one form, v2.
            return Err(GroupEnvelopeError::Malformed(DecodeError::NotCanonical));
        }
        inner
    };
    if inner.header.seq == 0 {
        return Err(GroupEnvelopeError::ZeroSeq);
    }
    if inner.body.len() > MAX_GROUP_BODY_BYTES {
        return Err(GroupEnvelopeError::BadBody);
    }
    Ok(inner)
}

/// `(seq, msg_id)` of an envelope that opens with `key` (to order a bucket).
pub fn peek(bytes: &[u8], key: &GroupKey) -> Option<(u64, MsgId)> {
    unseal(bytes, key)
        .ok()
        .map(|i| (i.header.seq, i.header.msg_id))
}

/// Fully opens an envelope of `group_id`/`epoch` with that epoch's key: decrypts, checks the
/// group and epoch, and the sender's signature.
pub fn open(
    bytes: &[u8],
    group_id: &GroupId,
    epoch: u32,
    key: &GroupKey,
) -> Result<GroupInner, GroupEnvelopeError> {
    let (version, inner) = unseal_versioned(bytes, key)?;
    if inner.header.group_id != *group_id || inner.header.epoch != epoch {
        return Err(GroupEnvelopeError::WrongGroup);
    }
    let sender = VerifyingKey::from_bytes(&inner.header.sender)
        .map_err(|_| GroupEnvelopeError::BadSignature)?;
    let (domain, signed) = signable(version, &inner.header, &inner.reply_to, &inner.body);
    sign::verify(&sender, domain, &signed, &inner.signature)
        .map_err(|_| GroupEnvelopeError::BadSignature)?;
    Ok(inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::control::random_id;

    fn sealed(id: &Identity, key: &GroupKey, gid: GroupId, epoch: u32, seq: u64) -> Vec<u8> {
        seal(
            &Sealing {
                identity: id,
                key,
                group_id: gid,
                epoch,
                seq,
                msg_id: random_id(),
                sent_at: 5,
                roster_hash: [3; 32],
            },
            "hello group",
        )
        .unwrap()
    }

    /// PROTOCOL.md §6 allows a bucket cap of up to 1000. Measured: 1000 envelopes with
    /// 100-byte bodies take 302 KiB and fit a 512 KiB record; of 1000 with 1 KiB bodies, 424
    /// fit, and the bucket keeps the newest that do (readers count the rest as missed).
    #[test]
    fn how_many_envelopes_fit_one_bucket_record() {
        use crate::delivery::bucket::{merge, BucketContent, BucketLimits};
        let alice = Identity::generate();
        let key = GroupKey::random();
        let gid = random_id();
        let record_limit = crate::config::Limits::default().max_record_bytes;
        let limits = BucketLimits {
            cap: 1000,
            max_bytes: record_limit - 1024,
        };
        let fill = |body: &str| {
            let envs: Vec<Vec<u8>> = (1..=1000)
                .map(|seq| {
                    seal(
                        &Sealing {
                            identity: &alice,
                            key: &key,
                            group_id: gid,
                            epoch: 1,
                            seq,
                            msg_id: random_id(),
                            sent_at: 1,
                            roster_hash: [0; 32],
                        },
                        body,
                    )
                    .unwrap()
                })
                .collect();
            let kept = merge(&[], &envs, limits, |b| peek(b, &key));
            let bytes = BucketContent {
                envelopes: kept.clone(),
            }
            .encode()
            .len();
            (
                kept.len(),
                bytes,
                peek(kept.last().unwrap(), &key).unwrap().0,
            )
        };
        let (short, short_bytes, newest) = fill(&"x".repeat(100));
        assert_eq!((short, newest), (1000, 1000), "1000 short messages fit");
        assert!(short_bytes < record_limit);
        let (long, long_bytes, newest) = fill(&"x".repeat(1024));
        assert!(
            long < 1000 && long > 300,
            "{long} of 1000 one-KiB messages fit"
        );
        assert_eq!(newest, 1000, "the newest are the ones kept");
        // `max_bytes` bounds the encoded content (but the list's own length prefix).
        assert!(long_bytes <= limits.max_bytes + 3, "{long_bytes}");
        println!(
            "1000 x 100 B: {short_bytes} bytes; 1 KiB bodies: {long} fit in {long_bytes} bytes"
        );
    }

    #[test]
    fn table_of_refusals() {
        let alice = Identity::generate();
        let key = GroupKey::random();
        let gid = random_id();
        let good = sealed(&alice, &key, gid, 1, 1);
        let opened = open(&good, &gid, 1, &key).unwrap();
        assert_eq!(
            (opened.header.seq, opened.body.as_str()),
            (1, "hello group")
        );
        let inner = unseal(&good, &key).unwrap();

        let mut tampered = outer(&good).unwrap();
        tampered.ciphertext[3] ^= 1;
        let mut v1 = outer(&good).unwrap();
        v1.version = 1;
        // A member (who holds the key) re-seals alice's signed message with another seq, or
        // claims another sender: the signature is over the header.
        let reseq = {
            let mut i = inner.clone();
            i.header.seq = 2;
            seal_inner(&key, &i).unwrap()
        };
        let forged = {
            let mut i = inner.clone();
            i.header.sender = Identity::generate().public().ed25519;
            seal_inner(&key, &i).unwrap()
        };
        let other_body = {
            let mut i = inner.clone();
            i.body = "something else".into();
            seal_inner(&key, &i).unwrap()
        };
        let repointed = {
            let mut i = inner.clone();
            i.reply_to = Some(ReplyRef {
                author: alice.public().ed25519,
                msg_id: random_id(),
                digest: [0; 32],
            });
            seal_inner(&key, &i).unwrap()
        };
        // v2 bytes relabelled v3 without the key: the label is in the associated data.
        let mut relabelled = outer(&good).unwrap();
        relabelled.version = GROUP_ENVELOPE_VERSION;
        let temp_key = GroupKey::random();
        let mut big = good.clone();
        big.resize(MAX_GROUP_ENVELOPE_BYTES + 1, 0);

        let cases: Vec<(&str, Vec<u8>, &GroupKey, u32, GroupEnvelopeError)> = vec![
            (
                "tampered ciphertext",
                codec::encode(&tampered),
                &key,
                1,
                GroupEnvelopeError::Undecryptable,
            ),
            (
                "a v1 envelope",
                codec::encode(&v1),
                &key,
                1,
                GroupEnvelopeError::UnknownVersion(1),
            ),
            (
                "re-sealed with another seq by a key holder",
                reseq,
                &key,
                1,
                GroupEnvelopeError::BadSignature,
            ),
            (
                "sender replaced",
                forged,
                &key,
                1,
                GroupEnvelopeError::BadSignature,
            ),
            (
                "body replaced",
                other_body,
                &key,
                1,
                GroupEnvelopeError::BadSignature,
            ),
            (
                "reply reference added by a key holder",
                repointed,
                &key,
                1,
                GroupEnvelopeError::BadSignature,
            ),
            (
                "relabelled as v3",
                codec::encode(&relabelled),
                &key,
                1,
                GroupEnvelopeError::Undecryptable,
            ),
            (
                "wrong epoch",
                good.clone(),
                &key,
                2,
                GroupEnvelopeError::WrongGroup,
            ),
            (
                "temporary key on an epoch-1 message",
                good.clone(),
                &temp_key,
                1,
                GroupEnvelopeError::Undecryptable,
            ),
        ];
        for (name, bytes, k, epoch, expected) in cases {
            assert_eq!(
                open(&bytes, &gid, epoch, k).unwrap_err(),
                expected,
                "{name}"
            );
        }
        assert!(matches!(
            open(&big, &gid, 1, &key).unwrap_err(),
            GroupEnvelopeError::Malformed(_)
        ));
        assert_eq!(
            open(&good, &random_id(), 1, &key).unwrap_err(),
            GroupEnvelopeError::WrongGroup
        );
    }

    /// A v2 envelope, as members who have not upgraded write it (and buckets still hold).
    fn sealed_v2(id: &Identity, key: &GroupKey, gid: GroupId, body: &str) -> Vec<u8> {
        let header = GroupHeader {
            group_id: gid,
            epoch: 1,
            sender: id.public().ed25519,
            seq: 1,
            msg_id: random_id(),
            sent_at: 5,
            roster_hash: [3; 32],
        };
        let (domain, signed) = signable(GROUP_ENVELOPE_V2, &header, &None, body);
        let signature = id.sign(domain, &signed);
        let inner = GroupInnerV2 {
            header,
            body: body.into(),
            signature,
        };
        let (nonce, ciphertext) =
            seal::seal_parts(&key.0, &aad(GROUP_ENVELOPE_V2), &codec::encode(&inner));
        codec::encode(&GroupEnvelope {
            version: GROUP_ENVELOPE_V2,
            nonce,
            ciphertext,
        })
    }

    /// Envelopes written before replies existed still open, with their signature checked over
    /// what v2 signed; a reply opens with its reference.
    #[test]
    fn v2_envelopes_still_open_and_replies_carry_their_reference() {
        let alice = Identity::generate();
        let key = GroupKey::random();
        let gid = random_id();
        let old = open(&sealed_v2(&alice, &key, gid, "from before"), &gid, 1, &key).unwrap();
        assert_eq!((old.body.as_str(), old.reply_to), ("from before", None));

        let mut forged_v2 = outer(&sealed_v2(&alice, &key, gid, "x")).unwrap();
        let mut inner: GroupInnerV2 = codec::decode_bounded(
            &seal::open_parts(&key.0, &aad(2), &forged_v2.nonce, &forged_v2.ciphertext).unwrap(),
            MAX_GROUP_ENVELOPE_BYTES,
        )
        .unwrap();
        inner.body = "changed".into();
        (forged_v2.nonce, forged_v2.ciphertext) =
            seal::seal_parts(&key.0, &aad(2), &codec::encode(&inner));
        assert_eq!(
            open(&codec::encode(&forged_v2), &gid, 1, &key).unwrap_err(),
            GroupEnvelopeError::BadSignature
        );

        let answered = ReplyRef {
            author: Identity::generate().public().ed25519,
            msg_id: random_id(),
            digest: [9; 32],
        };
        let reply = seal_reply(
            &Sealing {
                identity: &alice,
                key: &key,
                group_id: gid,
                epoch: 1,
                seq: 2,
                msg_id: random_id(),
                sent_at: 6,
                roster_hash: [3; 32],
            },
            "yes",
            Some(answered),
        )
        .unwrap();
        let opened = open(&reply, &gid, 1, &key).unwrap();
        assert_eq!(
            (opened.body.as_str(), opened.reply_to),
            ("yes", Some(answered))
        );
        assert_eq!(outer(&reply).unwrap().version, 3, "a reply is v3");
        // A plain message has one form: v3 without a reply is refused.
        let v3_plain = codec::encode(&GroupInner {
            reply_to: None,
            ..opened.clone()
        });
        assert!(matches!(
            decode_inner(GROUP_ENVELOPE_VERSION, &v3_plain),
            Err(GroupEnvelopeError::Malformed(_))
        ));
        let plain = sealed(&alice, &key, gid, 1, 3);
        assert_eq!(outer(&plain).unwrap().version, 2, "anything else stays v2");
    }

    /// A member holding the epoch key re-wraps someone's reply as a v2 envelope whose body
    /// starts with the reply reference's bytes (all printable here, so valid text): the
    /// signed bytes line up exactly, and still the signature does not verify (v3 signs under
    /// its own domain), so no member can change what a reply says or drop what it answers.
    #[test]
    fn a_reply_cannot_be_rewrapped_as_an_older_envelope() {
        let alice = Identity::generate();
        let key = GroupKey::random();
        let gid = random_id();
        let answered = ReplyRef {
            author: [b'a'; 32],
            msg_id: crate::ids::MsgId([b'b'; 16]),
            digest: [b'c'; 32],
        };
        let reply = seal_reply(
            &Sealing {
                identity: &alice,
                key: &key,
                group_id: gid,
                epoch: 1,
                seq: 1,
                msg_id: random_id(),
                sent_at: 6,
                roster_hash: [3; 32],
            },
            "yes",
            Some(answered),
        )
        .unwrap();
        let inner = unseal(&reply, &key).unwrap();
        let (_, v3_signed) = signable(3, &inner.header, &inner.reply_to, &inner.body);
        let header_len = codec::encode(&inner.header).len();
        let folded = String::from_utf8(v3_signed[header_len..].to_vec()).expect("printable");
        let (_, v2_signed) = signable(2, &inner.header, &None, &folded);
        assert_eq!(
            v2_signed, v3_signed,
            "the same bytes under the other layout"
        );
        let rewrapped = GroupInnerV2 {
            header: inner.header.clone(),
            body: folded,
            signature: inner.signature,
        };
        let (nonce, ciphertext) =
            seal::seal_parts(&key.0, &aad(GROUP_ENVELOPE_V2), &codec::encode(&rewrapped));
        let bytes = codec::encode(&GroupEnvelope {
            version: GROUP_ENVELOPE_V2,
            nonce,
            ciphertext,
        });
        assert_eq!(
            open(&bytes, &gid, 1, &key).unwrap_err(),
            GroupEnvelopeError::BadSignature
        );
    }

    /// What a storing node or relay sees names nobody and no group.
    #[test]
    fn the_outside_names_no_member_and_no_group() {
        let alice = Identity::generate();
        let key = GroupKey::random();
        let gid = random_id();
        let bytes = sealed(&alice, &key, gid, 1, 1);
        for secret in [alice.public().ed25519.to_vec(), gid.0.to_vec()] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_slice()));
        }
    }
}
