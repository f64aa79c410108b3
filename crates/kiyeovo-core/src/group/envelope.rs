//! Group message envelopes (PROTOCOL.md §5).
//!
//! `{header, ciphertext, signature}`: the header (group, epoch, sender, seq, msg id, time,
//! roster hash, nonce) is the AEAD's associated data, so it cannot be moved onto another
//! ciphertext; the sender's identity key signs `header ‖ ciphertext`, so any member (or a relay)
//! can check who wrote an envelope before decrypting it, and members can pass on each other's
//! envelopes without being able to forge them. Membership, sequence bounds and duplicates need
//! the roster and memory, so the receiver checks those; this module is pure.

use chacha20poly1305::aead::{Aead, KeyInit, Payload as AeadPayload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::VerifyingKey;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::control::{GroupId, GroupKey, MemberKey};
use crate::codec::{self, DecodeError};
use crate::identity::{serde_sig, Identity};
use crate::sign::{self, Domain};

pub const GROUP_ENVELOPE_VERSION: u8 = 1;
/// Largest group envelope accepted from gossipsub or a bucket.
pub const MAX_GROUP_ENVELOPE_BYTES: usize = 24 * 1024;
/// Largest message body, in bytes of UTF-8.
pub const MAX_GROUP_BODY_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupHeader {
    pub version: u8,
    pub group_id: GroupId,
    pub epoch: u32,
    pub sender: MemberKey,
    /// Per sender per epoch, from 1.
    pub seq: u64,
    pub msg_id: [u8; 16],
    pub sent_at: u64,
    /// Hash of the roster the sender sees for this epoch (equivocation check).
    pub roster_hash: [u8; 32],
    pub nonce: [u8; 24],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEnvelope {
    pub header: GroupHeader,
    pub ciphertext: Vec<u8>,
    #[serde(with = "serde_sig")]
    pub signature: [u8; 64],
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

fn signable(header: &GroupHeader, ciphertext: &[u8]) -> Vec<u8> {
    let mut out = codec::encode(header);
    out.extend_from_slice(ciphertext);
    out
}

/// What a sender needs to seal one message.
pub struct Sealing<'a> {
    pub identity: &'a Identity,
    pub key: &'a GroupKey,
    pub group_id: GroupId,
    pub epoch: u32,
    pub seq: u64,
    pub msg_id: [u8; 16],
    pub sent_at: u64,
    pub roster_hash: [u8; 32],
}

pub fn seal(s: &Sealing<'_>, body: &str) -> Result<Vec<u8>, GroupEnvelopeError> {
    if body.len() > MAX_GROUP_BODY_BYTES {
        return Err(GroupEnvelopeError::BadBody);
    }
    if s.seq == 0 {
        return Err(GroupEnvelopeError::ZeroSeq);
    }
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let header = GroupHeader {
        version: GROUP_ENVELOPE_VERSION,
        group_id: s.group_id,
        epoch: s.epoch,
        sender: s.identity.public().ed25519,
        seq: s.seq,
        msg_id: s.msg_id,
        sent_at: s.sent_at,
        roster_hash: s.roster_hash,
        nonce,
    };
    let ciphertext = XChaCha20Poly1305::new((&s.key.0).into())
        .encrypt(
            XNonce::from_slice(&nonce),
            AeadPayload {
                msg: body.as_bytes(),
                aad: &codec::encode(&header),
            },
        )
        .map_err(|_| GroupEnvelopeError::Undecryptable)?;
    let signature = s
        .identity
        .sign(Domain::GroupMessage, &signable(&header, &ciphertext));
    Ok(codec::encode(&GroupEnvelope {
        header,
        ciphertext,
        signature,
    }))
}

/// `(seq, msg_id)` from the header, without checking anything else (to order a bucket).
pub fn peek(bytes: &[u8]) -> Option<(u64, [u8; 16])> {
    let env: GroupEnvelope = codec::decode_bounded(bytes, MAX_GROUP_ENVELOPE_BYTES).ok()?;
    (env.header.version == GROUP_ENVELOPE_VERSION && env.header.seq > 0)
        .then_some((env.header.seq, env.header.msg_id))
}

/// Decodes and checks the sender's signature (no key needed: what gossipsub validation and
/// relays can check).
pub fn verify(bytes: &[u8]) -> Result<GroupEnvelope, GroupEnvelopeError> {
    let env: GroupEnvelope = codec::decode_bounded(bytes, MAX_GROUP_ENVELOPE_BYTES)
        .map_err(GroupEnvelopeError::Malformed)?;
    if env.header.version != GROUP_ENVELOPE_VERSION {
        return Err(GroupEnvelopeError::UnknownVersion(env.header.version));
    }
    if env.header.seq == 0 {
        return Err(GroupEnvelopeError::ZeroSeq);
    }
    let key = VerifyingKey::from_bytes(&env.header.sender)
        .map_err(|_| GroupEnvelopeError::BadSignature)?;
    sign::verify(
        &key,
        Domain::GroupMessage,
        &signable(&env.header, &env.ciphertext),
        &env.signature,
    )
    .map_err(|_| GroupEnvelopeError::BadSignature)?;
    Ok(env)
}

/// Fully opens an envelope of `group_id`/`epoch` with that epoch's key.
pub fn open(
    bytes: &[u8],
    group_id: &GroupId,
    epoch: u32,
    key: &GroupKey,
) -> Result<(GroupHeader, String), GroupEnvelopeError> {
    let env = verify(bytes)?;
    if env.header.group_id != *group_id || env.header.epoch != epoch {
        return Err(GroupEnvelopeError::WrongGroup);
    }
    let plain = XChaCha20Poly1305::new((&key.0).into())
        .decrypt(
            XNonce::from_slice(&env.header.nonce),
            AeadPayload {
                msg: &env.ciphertext,
                aad: &codec::encode(&env.header),
            },
        )
        .map_err(|_| GroupEnvelopeError::Undecryptable)?;
    if plain.len() > MAX_GROUP_BODY_BYTES {
        return Err(GroupEnvelopeError::BadBody);
    }
    let body = String::from_utf8(plain).map_err(|_| GroupEnvelopeError::BadBody)?;
    Ok((env.header, body))
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
        use crate::pairwise::bucket::{merge_with, BucketContent, BucketLimits};
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
            let kept = merge_with(&[], &envs, limits, peek);
            let bytes = BucketContent {
                envelopes: kept.clone(),
            }
            .encode()
            .len();
            (kept.len(), bytes, peek(kept.last().unwrap()).unwrap().0)
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
        assert!(long_bytes <= record_limit - 1024);
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
        let (header, body) = open(&good, &gid, 1, &key).unwrap();
        assert_eq!((header.seq, body.as_str()), (1, "hello group"));

        let mut tampered = good.clone();
        let last = tampered.len() - 70;
        tampered[last] ^= 1;
        let other = sealed(&alice, &key, gid, 1, 2);
        let mut swapped: GroupEnvelope = codec::decode_bounded(&good, usize::MAX).unwrap();
        let other_env: GroupEnvelope = codec::decode_bounded(&other, usize::MAX).unwrap();
        swapped.header = other_env.header;
        let mut resigned_swap = swapped.clone();
        resigned_swap.signature = alice.sign(
            Domain::GroupMessage,
            &signable(&resigned_swap.header, &resigned_swap.ciphertext),
        );
        let mut forged: GroupEnvelope = codec::decode_bounded(&good, usize::MAX).unwrap();
        forged.header.sender = Identity::generate().public().ed25519;
        let temp_key = GroupKey::random();
        let mut big = good.clone();
        big.resize(MAX_GROUP_ENVELOPE_BYTES + 1, 0);

        let cases: Vec<(&str, Vec<u8>, &GroupKey, u32, GroupEnvelopeError)> = vec![
            (
                "tampered ciphertext",
                tampered,
                &key,
                1,
                GroupEnvelopeError::BadSignature,
            ),
            (
                "header swapped between messages",
                codec::encode(&swapped),
                &key,
                1,
                GroupEnvelopeError::BadSignature,
            ),
            (
                "header swapped and re-signed by the sender",
                codec::encode(&resigned_swap),
                &key,
                1,
                GroupEnvelopeError::Undecryptable,
            ),
            (
                "sender replaced",
                codec::encode(&forged),
                &key,
                1,
                GroupEnvelopeError::BadSignature,
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
}
