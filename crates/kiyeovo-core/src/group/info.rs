//! The group-info chain (PROTOCOL.md §4.8): every membership change after establishment is the
//! next version of a hash-chained, admin-signed record, immutable in the DHT, with the new
//! epoch key sealed to each member's X25519 key.
//!
//! **Where version N lives.** `/kiyeovo/gi/<h(chain key)>/<N>`, where the chain key is the
//! group-bucket key of the admin named in version N−1 (version 1 is establishment itself, known
//! to every member from the Welcome). Every member learned that key from the admin's own signed
//! acceptance (the creator's from the Welcome), so a member offline for several changes finds
//! each next version with no extra message, and after a hand-over the chain continues under the
//! new admin's key, which the old admin cannot write. Storing nodes check the record signature
//! under that key and never replace a version, so all members read the same version N.
//!
//! **What a storing node sees.** The outer payload is `{format, prev_hash, boxes, nonce,
//! sealed}`: the hash of the previous version, one key box per member (an ephemeral X25519 key
//! and the epoch key sealed to it, naming nobody) and the [`GroupInfo`] sealed under the new epoch
//! key. Members try each box.
//!
//! **What a member accepts** ([`check_next`]), pure: the next version only (never an older one,
//! never one that skips), written under the chain key of the admin of our head, its `prev_hash`
//! our head's hash (otherwise a fork), the content signed by that admin's identity and naming
//! this group, version and previous hash, the epoch one higher, the roster changed only as the
//! named [`Change`] says, and every remaining member's entry unchanged (an admin cannot swap a
//! member's keys or name). A member none of whose boxes open was removed (or left): it learns
//! that, and nothing of the new epoch.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::Zeroizing;

use super::control::{Body, ControlId, GroupId, GroupKey, Member, MemberKey, SignedControl};
use crate::codec::{self, DecodeError};
use crate::config::MAX_MEMBERS;
use crate::identity::{serde_sig, Identity};
use crate::records::{RecordKey, SignedRecord};
use crate::sign::{self, Domain};
use crate::storage::seal;

/// The layout of [`InfoRecord`] (bumped when it changes).
pub const INFO_FORMAT: u8 = 1;
/// Largest group-info record accepted: ten members with their signed acceptances take about
/// 6 KiB, and the record must fit in a control message when pushed live.
pub const MAX_INFO_BYTES: usize = 14 * 1024;

/// What a version changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// A new key, the same members (on demand or on schedule).
    Rotated,
    /// These joined, having accepted the add round `round` (each with its own signed
    /// acceptance in its roster entry, which every member checks).
    Added {
        who: Vec<MemberKey>,
        round: ControlId,
    },
    /// The admin removed this member.
    Removed(MemberKey),
    /// This member left (its signed Leave reached the admin).
    Left(MemberKey),
    /// This member is the admin from now on.
    AdminTo(MemberKey),
    /// The group ends; members keep their history, read-only.
    Disbanded,
}

impl Change {
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Rotated => "rotated",
            Change::Added { .. } => "added",
            Change::Removed(_) => "removed",
            Change::Left(_) => "left",
            Change::AdminTo(_) => "admin",
            Change::Disbanded => "disbanded",
        }
    }
}

/// One version of a group's state after establishment, as every member must see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub group_id: GroupId,
    pub creator: MemberKey,
    pub version: u64,
    pub prev_hash: [u8; 32],
    /// The admin after this version (who writes the next one).
    pub admin: MemberKey,
    pub epoch: u32,
    /// Who holds this epoch's key.
    pub members: Vec<Member>,
    /// The last seq each member who is gone may have used in the previous epoch: its envelopes
    /// above it are refused by everyone (PROTOCOL.md §4.9).
    pub boundaries: Vec<(MemberKey, u64)>,
    pub change: Change,
    pub made_at: u64,
}

/// [`GroupInfo`] with the identity signature of the admin who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInfo {
    pub info: GroupInfo,
    #[serde(with = "serde_sig")]
    pub signature: [u8; 64],
}

/// The new epoch key sealed to one member's X25519 key (no recipient named).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBox {
    pub ephemeral: [u8; 32],
    pub nonce: [u8; 24],
    pub sealed: Vec<u8>,
}

/// The payload of a group-info DHT record: all a storing node sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoRecord {
    pub format: u8,
    pub prev_hash: [u8; 32],
    pub boxes: Vec<KeyBox>,
    pub nonce: [u8; 24],
    pub sealed: Vec<u8>,
}

/// Where a member's chain stands: what the next version must build on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Our group: a version naming another is refused (an admin of two groups cannot carry
    /// one group's acceptances into the other).
    pub group_id: GroupId,
    pub creator: MemberKey,
    pub version: u64,
    pub hash: [u8; 32],
    pub admin: MemberKey,
    /// The admin's group-bucket key: it writes the next version, at that key's chain location.
    pub chain_pub: [u8; 32],
    pub epoch: u32,
    pub members: Vec<Member>,
    /// Invitation rounds this group already used (its first invitation, each add round): an
    /// acceptance given in one of them cannot add anyone again.
    pub rounds: Vec<ControlId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("group info does not decode: {0}")]
    Malformed(DecodeError),
    #[error("unknown group-info format {0}")]
    UnknownFormat(u8),
    #[error("version {got} is not newer than ours ({have})")]
    Stale { got: u64, have: u64 },
    #[error("version {got} skips versions after ours ({have})")]
    Skips { got: u64, have: u64 },
    #[error("not written by the group's admin")]
    NotAdmin,
    #[error("version {version} does not build on ours: the admin wrote two different versions")]
    Fork { version: u64 },
    #[error("the group info does not decrypt")]
    Undecryptable,
    #[error("the group info is inconsistent: {0}")]
    Invalid(&'static str),
}

/// What a valid next version means for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// We are in the new epoch: its info and key.
    Member {
        info: Box<GroupInfo>,
        key: GroupKey,
        hash: [u8; 32],
    },
    /// A valid next version none of whose keys is ours: we are no longer a member.
    Excluded { version: u64, hash: [u8; 32] },
}

/// The hash a version is chained by: over its version number and its whole payload.
pub fn version_hash(version: u64, payload: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kiyeovo/v2/group-info");
    h.update(version.to_be_bytes());
    h.update(payload);
    h.finalize().into()
}

/// The hash of version 1, establishment, which has no record: every member holds the Welcome.
pub fn genesis_hash(group_id: &GroupId, creator: &MemberKey, roster_hash: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kiyeovo/v2/group-info-genesis");
    h.update(group_id);
    h.update(creator);
    h.update(roster_hash);
    h.finalize().into()
}

/// The DHT key of version `version` written by the admin whose chain key is `chain_pub`.
pub fn record_key(chain_pub: &[u8; 32], version: u64) -> RecordKey {
    RecordKey::group_info_version(chain_pub, version)
}

fn box_key(shared: &[u8; 32], ephemeral: &[u8; 32], recipient: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    use hkdf::Hkdf;
    let hk = Hkdf::<Sha256>::new(Some(b"kiyeovo/v2/key-box"), shared);
    let mut key = Zeroizing::new([0u8; 32]);
    let mut info = ephemeral.to_vec();
    info.extend_from_slice(recipient);
    hk.expand(&info, key.as_mut())
        .expect("32-byte HKDF output is always valid");
    key
}

const BOX_AAD: &[u8] = b"kiyeovo/v2/key-box";

/// Associated data of the sealed content: binds it to its version and previous hash.
pub fn content_aad(version: u64, prev_hash: &[u8; 32]) -> Vec<u8> {
    let mut aad = b"kiyeovo/v2/group-info-content".to_vec();
    aad.extend_from_slice(&version.to_be_bytes());
    aad.extend_from_slice(prev_hash);
    aad
}

/// Admin: signs `info` with its identity, seals it under `key`, the key to every member's X25519
/// key, and signs the record with its chain seed (its group-bucket seed). Returns the DHT key and
/// the encoded record.
pub fn write(
    admin: &Identity,
    chain_seed: &GroupKey,
    info: GroupInfo,
    key: &GroupKey,
) -> (RecordKey, Vec<u8>) {
    let signature = admin.sign(Domain::GroupInfo, &codec::encode(&info));
    let version = info.version;
    let prev_hash = info.prev_hash;
    let made_at = info.made_at;
    let mut boxes: Vec<KeyBox> = info
        .members
        .iter()
        .map(|m| {
            let secret = StaticSecret::random_from_rng(rand::rngs::OsRng);
            let ephemeral = XPublic::from(&secret).to_bytes();
            let shared = Zeroizing::new(secret.diffie_hellman(&XPublic::from(m.x25519)).to_bytes());
            let k = box_key(&shared, &ephemeral, &m.x25519);
            let (nonce, sealed) = seal::seal_parts(&k, BOX_AAD, &key.0);
            KeyBox {
                ephemeral,
                nonce,
                sealed,
            }
        })
        .collect();
    // In ephemeral-key order, not roster order: the position names nobody.
    boxes.sort_by_key(|b| b.ephemeral);
    let plain = Zeroizing::new(codec::encode(&SignedInfo { info, signature }));
    let (nonce, sealed) = seal::seal_parts(&key.0, &content_aad(version, &prev_hash), &plain);
    let payload = codec::encode(&InfoRecord {
        format: INFO_FORMAT,
        prev_hash,
        boxes,
        nonce,
        sealed,
    });
    let chain = ed25519_dalek::SigningKey::from_bytes(&chain_seed.0);
    let dht_key = record_key(&chain.verifying_key().to_bytes(), version);
    // A version is immutable: re-publishing sends these exact bytes again.
    let record = SignedRecord::sign(&chain, &dht_key, version, made_at, payload);
    (dht_key, record.encode())
}

/// Decodes a record's outer layers and checks what a storing node checks: strict encoding, the
/// chain-key signature for this exact key, the version the key names.
fn outer(bytes: &[u8], key: &RecordKey) -> Result<(SignedRecord, InfoRecord), ChainError> {
    let record = SignedRecord::decode(bytes, MAX_INFO_BYTES).map_err(ChainError::Malformed)?;
    if !key.is_owned_by(&record.public_key)
        || key.version != Some(record.version)
        || record.verify_signature(key).is_err()
    {
        return Err(ChainError::NotAdmin);
    }
    let payload: InfoRecord =
        codec::decode_bounded(&record.payload, MAX_INFO_BYTES).map_err(ChainError::Malformed)?;
    if payload.format != INFO_FORMAT {
        return Err(ChainError::UnknownFormat(payload.format));
    }
    if payload.boxes.len() > MAX_MEMBERS {
        return Err(ChainError::Invalid("more key boxes than members"));
    }
    Ok((record, payload))
}

/// Whether `bytes` is a validly signed version `version` at our head admin's chain location,
/// with a different hash than `hash`: the admin wrote two versions `version` (a fork).
pub fn is_fork(head_chain_pub: &[u8; 32], version: u64, hash: &[u8; 32], bytes: &[u8]) -> bool {
    let key = record_key(head_chain_pub, version);
    outer(bytes, &key).is_ok_and(|(r, _)| version_hash(version, &r.payload) != *hash)
}

/// Checks `bytes`, offered as the version after `head`, for the member `me` (whose X25519
/// secret is in `identity`). Pure but for the decryption.
pub fn check_next(head: &Head, me: &Identity, bytes: &[u8]) -> Result<Next, ChainError> {
    // The version first, from the outer record, so a stale or skipping copy is named as such.
    let any: SignedRecord =
        SignedRecord::decode(bytes, MAX_INFO_BYTES).map_err(ChainError::Malformed)?;
    let version = any.version;
    if version <= head.version {
        return Err(ChainError::Stale {
            got: version,
            have: head.version,
        });
    }
    if version > head.version.saturating_add(1) {
        return Err(ChainError::Skips {
            got: version,
            have: head.version,
        });
    }
    let (prev_hash, opened) = open_version(&head.chain_pub, &head.admin, me, version, bytes)?;
    if prev_hash != head.hash {
        return Err(ChainError::Fork { version });
    }
    let (info, key, hash) = match opened {
        Opened::NotOurs { hash } => return Ok(Next::Excluded { version, hash }),
        Opened::Ours { info, key, hash } => (info, key, hash),
    };
    check_change(head, &info, &me.public().ed25519)?;
    Ok(Next::Member { info, key, hash })
}

/// A version, opened as far as we can.
enum Opened {
    /// None of its key boxes is ours.
    NotOurs { hash: [u8; 32] },
    /// Ours: its content, signed by the admin, naming its own version and previous hash, with a
    /// key box per member.
    Ours {
        info: Box<GroupInfo>,
        key: GroupKey,
        hash: [u8; 32],
    },
}

/// Checks version `version` at `chain_pub`'s chain location and opens it if a box is ours:
/// returns its previous hash (as the outer record says) and what it holds for us.
fn open_version(
    chain_pub: &[u8; 32],
    admin: &MemberKey,
    me: &Identity,
    version: u64,
    bytes: &[u8],
) -> Result<([u8; 32], Opened), ChainError> {
    let key = record_key(chain_pub, version);
    let (record, payload) = outer(bytes, &key)?;
    let hash = version_hash(version, &record.payload);
    let Some(epoch_key) = payload.boxes.iter().find_map(|b| open_box(me, b)) else {
        return Ok((payload.prev_hash, Opened::NotOurs { hash }));
    };
    let plain = Zeroizing::new(
        seal::open_parts(
            &epoch_key.0,
            &content_aad(version, &payload.prev_hash),
            &payload.nonce,
            &payload.sealed,
        )
        .map_err(|_| ChainError::Undecryptable)?,
    );
    let signed: SignedInfo =
        codec::decode_bounded(&plain, MAX_INFO_BYTES).map_err(ChainError::Malformed)?;
    let admin = ed25519_dalek::VerifyingKey::from_bytes(admin).map_err(|_| ChainError::NotAdmin)?;
    sign::verify(
        &admin,
        Domain::GroupInfo,
        &codec::encode(&signed.info),
        &signed.signature,
    )
    .map_err(|_| ChainError::NotAdmin)?;
    let info = signed.info;
    if info.version != version || info.prev_hash != payload.prev_hash {
        return Err(ChainError::Invalid("the content names another version"));
    }
    if payload.boxes.len() != info.members.len() {
        return Err(ChainError::Invalid("a key box per member"));
    }
    Ok((
        payload.prev_hash,
        Opened::Ours {
            info: Box::new(info),
            key: epoch_key,
            hash,
        },
    ))
}

/// Where someone invited in an add round stands before its first version: what the admin's
/// signed invitation named (PROTOCOL.md §4.7 Add).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinPoint {
    /// The group the invitation named (its id proven from creator and first invitation).
    pub group_id: GroupId,
    pub creator: MemberKey,
    /// Above every epoch we hold already (we may be added back): the new one must be newer.
    pub min_epoch: u32,
    pub admin: MemberKey,
    pub chain_pub: [u8; 32],
    /// The admin's chain head when the round opened: the version that adds us comes later.
    pub version: u64,
    pub round: ControlId,
    /// The group-bucket key we gave in our acceptance.
    pub bucket_pub: [u8; 32],
}

/// Checks `bytes` for someone who accepted an add round: `Member` if it is the version that
/// adds us (signed by the inviting admin under the chain key it named, the change the round we
/// accepted, our entry with our own keys, every joiner's acceptance its own); `Excluded` for a
/// valid version of that chain that does not (one written while the round was open). We hold
/// no earlier key and never learn one: the group's history before us stays closed to us.
pub fn check_join(join: &JoinPoint, me: &Identity, bytes: &[u8]) -> Result<Next, ChainError> {
    use ChainError::Invalid;
    let any: SignedRecord =
        SignedRecord::decode(bytes, MAX_INFO_BYTES).map_err(ChainError::Malformed)?;
    let version = any.version;
    if version <= join.version {
        return Err(ChainError::Stale {
            got: version,
            have: join.version,
        });
    }
    let (_, opened) = open_version(&join.chain_pub, &join.admin, me, version, bytes)?;
    let (info, key, hash) = match opened {
        Opened::NotOurs { hash } => return Ok(Next::Excluded { version, hash }),
        Opened::Ours { info, key, hash } => (info, key, hash),
    };
    let mine = me.public();
    if info.group_id != join.group_id || info.creator != join.creator {
        return Err(Invalid("a version of another group"));
    }
    if info.epoch < join.min_epoch {
        return Err(Invalid("an epoch we hold already"));
    }
    check_roster_shape(&info, &mine.ed25519)?;
    let Change::Added { who, round } = &info.change else {
        return Err(Invalid("our first version must be the one that adds us"));
    };
    if *round != join.round || !who.contains(&mine.ed25519) || info.admin != join.admin {
        return Err(Invalid("not the round we accepted"));
    }
    let me_listed = info.members.iter().find(|m| m.id == mine.ed25519);
    if me_listed.is_none_or(|m| m.bucket_pub != join.bucket_pub || m.x25519 != mine.x25519) {
        return Err(Invalid("our entry does not carry our keys"));
    }
    // The admin's entry must name the chain key the invitation did: the chain goes on there.
    if !info
        .members
        .iter()
        .any(|m| m.id == info.admin && m.bucket_pub == join.chain_pub)
    {
        return Err(Invalid(
            "the admin is not a member at the chain key it named",
        ));
    }
    for m in info.members.iter().filter(|m| who.contains(&m.id)) {
        check_acceptance(&info, m, round)?;
    }
    if who.iter().any(|w| !info.members.iter().any(|m| m.id == *w)) {
        return Err(Invalid("a joiner is not listed"));
    }
    Ok(Next::Member { info, key, hash })
}

fn open_box(me: &Identity, b: &KeyBox) -> Option<GroupKey> {
    let shared = me.x25519_shared(&b.ephemeral);
    let k = box_key(&shared, &b.ephemeral, &me.public().x25519);
    let plain = Zeroizing::new(seal::open_parts(&k, BOX_AAD, &b.nonce, &b.sealed).ok()?);
    let key: [u8; 32] = plain.as_slice().try_into().ok()?;
    Some(GroupKey(key))
}

/// What every roster must be: 1 to MAX_MEMBERS members, each once, every X25519 key one a
/// secret can be sealed to (a low-order or zero key would let anyone open that member's box),
/// and we among them (our box opened).
fn check_roster_shape(info: &GroupInfo, me: &MemberKey) -> Result<(), ChainError> {
    use ChainError::Invalid;
    if info.members.is_empty() || info.members.len() > MAX_MEMBERS {
        return Err(Invalid("member count"));
    }
    let mut ids: Vec<_> = info.members.iter().map(|m| m.id).collect();
    ids.sort();
    ids.dedup();
    if ids.len() != info.members.len() {
        return Err(Invalid("a member listed twice"));
    }
    if info
        .members
        .iter()
        .any(|m| !crate::identity::x25519_contributory(&m.x25519))
    {
        return Err(Invalid("a member's X25519 key is weak"));
    }
    if !info.members.iter().any(|m| m.id == *me) {
        return Err(Invalid("our key box opened but we are not listed"));
    }
    Ok(())
}

/// The roster rules of a next version (PROTOCOL.md §4.7): the epoch moves by one, the admin is a
/// member (or hands over to one), members change only as `change` says, and everyone who stays
/// keeps their entry exactly.
pub fn check_change(head: &Head, info: &GroupInfo, me: &MemberKey) -> Result<(), ChainError> {
    use ChainError::Invalid;
    if info.group_id != head.group_id || info.creator != head.creator {
        return Err(Invalid("a version of another group"));
    }
    if Some(info.epoch) != head.epoch.checked_add(1) {
        return Err(Invalid("the epoch must move by one"));
    }
    check_roster_shape(info, me)?;
    let was = |id: &MemberKey| head.members.iter().find(|m| m.id == *id);
    let is = |id: &MemberKey| info.members.iter().any(|m| m.id == *id);
    // Whoever stays keeps their entry: same keys, same name.
    for m in &info.members {
        if let Some(old) = was(&m.id) {
            if old != m {
                return Err(Invalid("a member's entry changed"));
            }
        }
    }
    let added: Vec<MemberKey> = info
        .members
        .iter()
        .filter(|m| was(&m.id).is_none())
        .map(|m| m.id)
        .collect();
    let gone: Vec<MemberKey> = head
        .members
        .iter()
        .filter(|m| !is(&m.id))
        .map(|m| m.id)
        .collect();
    let admin_kept = info.admin == head.admin;
    let ok = match &info.change {
        Change::Rotated | Change::Disbanded => added.is_empty() && gone.is_empty() && admin_kept,
        Change::Added { who, round } => {
            let mut who = who.clone();
            who.sort();
            let mut added = added.clone();
            added.sort();
            if head.rounds.contains(round) {
                return Err(Invalid("an add round that was used before"));
            }
            for m in info.members.iter().filter(|m| added.contains(&m.id)) {
                check_acceptance(info, m, round)?;
            }
            !who.is_empty() && who == added && gone.is_empty() && admin_kept
        }
        Change::Removed(who) => {
            added.is_empty() && gone == [*who] && admin_kept && *who != head.admin
        }
        Change::Left(who) => added.is_empty() && gone == [*who] && admin_kept && *who != head.admin,
        Change::AdminTo(who) => {
            added.is_empty() && gone.is_empty() && info.admin == *who && *who != head.admin
        }
    };
    if !ok {
        return Err(Invalid("the roster does not match the change"));
    }
    if !is(&info.admin) {
        return Err(Invalid("the admin is not a member"));
    }
    // Boundaries only for members who are gone, once each.
    let mut bounded: Vec<_> = info.boundaries.iter().map(|(k, _)| *k).collect();
    bounded.sort();
    bounded.dedup();
    if bounded.len() != info.boundaries.len() || bounded.iter().any(|k| !gone.contains(k)) {
        return Err(Invalid("boundaries for members who stay"));
    }
    Ok(())
}

/// A joiner's roster entry must carry its own signed acceptance of add round `round` of this
/// group, with the keys the entry lists: the admin cannot add someone who did not accept, nor
/// give anyone keys of its own choosing.
pub fn check_acceptance(info: &GroupInfo, m: &Member, round: &ControlId) -> Result<(), ChainError> {
    use ChainError::Invalid;
    if m.response.len() > super::control::MAX_RESPONSE_BYTES {
        return Err(Invalid("a joiner's acceptance is too large"));
    }
    let signed = SignedControl::decode(&m.response)
        .map_err(|_| Invalid("a joiner's acceptance does not verify"))?;
    if signed.signer != m.id || signed.control.group_id != info.group_id {
        return Err(Invalid("a joiner's acceptance is not its own"));
    }
    let Body::Response(r) = &signed.control.body else {
        return Err(Invalid("a joiner's acceptance is not an answer"));
    };
    if !r.accept || r.invite_id != *round {
        return Err(Invalid("a joiner did not accept this round"));
    }
    if r.bucket_pub != Some(m.bucket_pub) || r.x25519 != m.x25519 {
        return Err(Invalid("a joiner's keys are not the ones it signed"));
    }
    Ok(())
}

#[cfg(test)]
#[path = "info_tests.rs"]
mod tests;
