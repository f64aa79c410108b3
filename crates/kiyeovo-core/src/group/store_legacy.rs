//! A group's state as earlier layouts stored it, kept only to read old profiles: `store` opens a
//! row with the current label first and falls back to these, which it converts (the next save
//! writes the current layout). Postcard is positional, so these structs must keep the old fields
//! in the old order and never change.
//!
//! - Layout 1: version 0.1 (before protocol v2).
//! - Layout 2: layout 1 with split-view flags instead of one "list differs" bit.
//! - Layout 3: protocol v2 (X25519 keys, owner-only window buckets), one epoch key field.
//! - Layout 4: epochs and the group-info chain (membership changes), before add rounds.
//!
//! Both carry control messages of the first wire format: no X25519 keys in invitations,
//! responses and rosters, and window buckets derived from the temporary key. A converted group
//! keeps that derivation for its window (which has long closed in any group established before
//! the upgrade) and all-zero X25519 keys in its roster, the same for every member who upgrades,
//! so roster hashes and safety codes still agree.

use std::collections::{BTreeMap, BTreeSet};

use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::control::{
    Body, ClosedReason, Control, ControlId, GroupId, GroupKey, Invite, InviteeStatus, Member,
    MemberKey, Person, Response, RosterUpdate, Welcome,
};
use super::info::{genesis_hash, Change};
use super::machine::{
    bucket_public, roster_hash, ChainPos, EpochState, Flag, FlagKind, Group, GroupLife, Outgoing,
    Role, Status,
};
use super::membership::ChangeNote;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteV1 {
    pub name: String,
    pub creator_name: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub invitees: Vec<Person>,
    pub admin_pub: [u8; 32],
    pub temp_key: GroupKey,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponseV1 {
    pub invite_id: ControlId,
    pub accept: bool,
    pub list_hash: [u8; 32],
    pub bucket_pub: Option<[u8; 32]>,
    pub responded_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RosterUpdateV1 {
    pub version: u64,
    pub statuses: Vec<(MemberKey, InviteeStatus)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberV1 {
    pub id: MemberKey,
    pub name: String,
    pub bucket_pub: [u8; 32],
    pub response: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WelcomeV1 {
    pub epoch: u32,
    pub key: GroupKey,
    pub members: Vec<MemberV1>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum BodyV1 {
    Invite(InviteV1),
    Response(ResponseV1),
    Roster(RosterUpdateV1),
    Welcome(WelcomeV1),
    Closed(ClosedReason),
    Ack { of: ControlId },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlV1 {
    pub id: ControlId,
    pub group_id: GroupId,
    pub sent_at: u64,
    pub body: BodyV1,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutgoingV1 {
    pub to: MemberKey,
    pub control: ControlV1,
    pub until_ack: bool,
    pub sent: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupV1 {
    pub group_id: GroupId,
    pub role: Role,
    pub me: MemberKey,
    pub creator: MemberKey,
    pub invite_id: ControlId,
    pub invite: InviteV1,
    pub status: Status,
    pub roster_version: u64,
    pub statuses: BTreeMap<MemberKey, InviteeStatus>,
    pub responses: BTreeMap<MemberKey, Vec<u8>>,
    pub my_response: Option<ResponseV1>,
    pub my_response_id: Option<ControlId>,
    pub bucket_seed: Option<GroupKey>,
    pub epoch: u32,
    pub epoch_key: Option<GroupKey>,
    pub members: Vec<MemberV1>,
    pub list_mismatch: bool,
    pub seen: BTreeSet<ControlId>,
    pub outbox: Vec<OutgoingV1>,
    pub window_passed: bool,
    pub updated_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupV2 {
    pub group_id: GroupId,
    pub role: Role,
    pub me: MemberKey,
    pub creator: MemberKey,
    pub invite_id: ControlId,
    pub invite: InviteV1,
    pub status: Status,
    pub roster_version: u64,
    pub statuses: BTreeMap<MemberKey, InviteeStatus>,
    pub responses: BTreeMap<MemberKey, Vec<u8>>,
    pub my_response: Option<ResponseV1>,
    pub my_response_id: Option<ControlId>,
    pub bucket_seed: Option<GroupKey>,
    pub epoch: u32,
    pub epoch_key: Option<GroupKey>,
    pub members: Vec<MemberV1>,
    pub seen: BTreeSet<ControlId>,
    pub outbox: Vec<OutgoingV1>,
    pub window_passed: bool,
    pub updated_at: u64,
    pub flags: Vec<Flag>,
}

/// The first format's window bucket seed of `member`: derived from the temporary key, which
/// every invitee holds (the reason the current format announces owner-only keys instead).
pub fn legacy_window_seed(temp_key: &GroupKey, member: &MemberKey) -> GroupKey {
    let hk = Hkdf::<Sha256>::new(Some(b"kiyeovo/v1/window-bucket"), &temp_key.0);
    let mut seed = [0u8; 32];
    hk.expand(member, &mut seed)
        .expect("32-byte HKDF output is always valid");
    GroupKey(seed)
}

/// Legacy groups know no X25519 keys (see the module docs).
const UNKNOWN_X25519: [u8; 32] = [0; 32];

fn invite(i: InviteV1, creator: &MemberKey) -> Invite {
    let window = bucket_public(&legacy_window_seed(&i.temp_key, creator));
    Invite {
        name: i.name,
        creator_name: i.creator_name,
        created_at: i.created_at,
        expires_at: i.expires_at,
        invitees: i.invitees,
        admin_pub: i.admin_pub,
        temp_key: i.temp_key,
        creator_x25519: UNKNOWN_X25519,
        creator_window_bucket: window,
    }
}

fn response(r: ResponseV1, temp_key: &GroupKey, me: &MemberKey) -> Response {
    Response {
        invite_id: r.invite_id,
        accept: r.accept,
        list_hash: r.list_hash,
        bucket_pub: r.bucket_pub,
        window_bucket_pub: r
            .accept
            .then(|| bucket_public(&legacy_window_seed(temp_key, me))),
        x25519: UNKNOWN_X25519,
        responded_at: r.responded_at,
    }
}

fn member(m: MemberV1) -> Member {
    Member {
        id: m.id,
        name: m.name,
        bucket_pub: m.bucket_pub,
        x25519: UNKNOWN_X25519,
        response: m.response,
    }
}

impl GroupV2 {
    fn convert(self) -> Group {
        self.convert_v3().into()
    }

    fn convert_v3(self) -> GroupV3 {
        let temp = self.invite.temp_key.clone();
        let creator = self.creator;
        let me = self.me;
        // Every window bucket as the first format derived it, for whoever may have written one.
        let window_buckets = std::iter::once(creator)
            .chain(self.invite.invitees.iter().map(|p| p.id))
            .map(|id| (id, bucket_public(&legacy_window_seed(&temp, &id))))
            .collect();
        let window_seed = (self.role == Role::Creator
            || self.my_response.as_ref().is_some_and(|r| r.accept))
        .then(|| legacy_window_seed(&temp, &me));
        let body = |b: BodyV1| match b {
            BodyV1::Invite(i) => Body::Invite(invite(i, &creator)),
            BodyV1::Response(r) => Body::Response(response(r, &temp, &me)),
            BodyV1::Roster(r) => Body::Roster(RosterUpdate {
                version: r.version,
                statuses: r.statuses,
                acceptances: Vec::new(),
            }),
            BodyV1::Welcome(w) => Body::Welcome(Welcome {
                epoch: w.epoch,
                key: w.key,
                members: w.members.into_iter().map(member).collect(),
            }),
            BodyV1::Closed(c) => Body::Closed(c),
            BodyV1::Ack { of } => Body::Ack { of },
        };
        let outbox = self
            .outbox
            .into_iter()
            // A roster update of the old format cannot be completed with the acceptances it
            // now needs; the next change publishes a fresh one.
            .filter(|o| !matches!(o.control.body, BodyV1::Roster(_)))
            .map(|o| Outgoing {
                control: Control {
                    id: o.control.id,
                    group_id: o.control.group_id,
                    sent_at: o.control.sent_at,
                    body: body(o.control.body),
                },
                to: o.to,
                until_ack: o.until_ack,
                sent: o.sent,
            })
            .collect();
        GroupV3 {
            group_id: self.group_id,
            role: self.role,
            me,
            creator,
            invite_id: self.invite_id,
            invite: invite(self.invite, &creator),
            status: self.status,
            roster_version: self.roster_version,
            statuses: self.statuses,
            responses: self.responses,
            my_response: self.my_response.map(|r| response(r, &temp, &me)),
            my_response_id: self.my_response_id,
            bucket_seed: self.bucket_seed,
            epoch: self.epoch,
            epoch_key: self.epoch_key,
            members: self.members.into_iter().map(member).collect(),
            seen: self.seen,
            outbox,
            window_passed: self.window_passed,
            updated_at: self.updated_at,
            flags: self.flags,
            window_seed,
            window_buckets,
        }
    }
}

/// Layout 3: the state before membership changes, with one epoch key and roster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupV3 {
    pub group_id: GroupId,
    pub role: Role,
    pub me: MemberKey,
    pub creator: MemberKey,
    pub invite_id: ControlId,
    pub invite: Invite,
    pub status: Status,
    pub roster_version: u64,
    pub statuses: BTreeMap<MemberKey, InviteeStatus>,
    pub responses: BTreeMap<MemberKey, Vec<u8>>,
    pub my_response: Option<Response>,
    pub my_response_id: Option<ControlId>,
    pub bucket_seed: Option<GroupKey>,
    pub epoch: u32,
    pub epoch_key: Option<GroupKey>,
    pub members: Vec<Member>,
    pub seen: BTreeSet<ControlId>,
    pub outbox: Vec<Outgoing>,
    pub window_passed: bool,
    pub updated_at: u64,
    pub flags: Vec<Flag>,
    pub window_seed: Option<GroupKey>,
    pub window_buckets: BTreeMap<MemberKey, [u8; 32]>,
}

impl From<GroupV3> for Group {
    /// The one epoch becomes the first of the list, and establishment version 1 of the chain
    /// (its hash from the roster every member holds, so members agree without a message).
    fn from(g: GroupV3) -> Group {
        let epochs: Vec<EpochState> = match (g.status, g.epoch_key) {
            (Status::Active, Some(key)) => vec![EpochState {
                epoch: g.epoch,
                key,
                members: g.members,
                boundaries: BTreeMap::new(),
                ended_at: None,
                started_at: g.updated_at,
            }],
            _ => Vec::new(),
        };
        let chain = epochs.first().map(|e| ChainPos {
            version: 1,
            hash: genesis_hash(
                &g.group_id,
                &g.creator,
                &roster_hash(&g.group_id, e.epoch, &e.members),
            ),
            admin: g.creator,
        });
        Group {
            group_id: g.group_id,
            role: g.role,
            me: g.me,
            creator: g.creator,
            invite_id: g.invite_id,
            invite: g.invite,
            status: g.status,
            roster_version: g.roster_version,
            statuses: g.statuses,
            responses: g.responses,
            my_response: g.my_response,
            my_response_id: g.my_response_id,
            bucket_seed: g.bucket_seed,
            epochs,
            chain,
            life: GroupLife::default(),
            seen: g.seen,
            outbox: g.outbox,
            window_passed: g.window_passed,
            updated_at: g.updated_at,
            flags: g.flags,
            window_seed: g.window_seed,
            window_buckets: g.window_buckets,
            round: None,
            joining: None,
        }
    }
}

/// A change as layout 4 stored it: `Added` was a list only (no version could add anyone yet,
/// but a modified admin could have written one; it reads as added in no round).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ChangeV4 {
    Rotated,
    Added(Vec<MemberKey>),
    Removed(MemberKey),
    Left(MemberKey),
    AdminTo(MemberKey),
    Disbanded,
}

impl From<ChangeV4> for Change {
    fn from(c: ChangeV4) -> Change {
        match c {
            ChangeV4::Rotated => Change::Rotated,
            ChangeV4::Added(who) => Change::Added {
                who,
                round: ControlId([0; 16]),
            },
            ChangeV4::Removed(k) => Change::Removed(k),
            ChangeV4::Left(k) => Change::Left(k),
            ChangeV4::AdminTo(k) => Change::AdminTo(k),
            ChangeV4::Disbanded => Change::Disbanded,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeNoteV4 {
    pub version: u64,
    pub epoch: u32,
    pub by: MemberKey,
    pub change: ChangeV4,
    pub names: Vec<(MemberKey, String)>,
    pub at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupLifeV4 {
    pub chain_records: Vec<(u64, Vec<u8>)>,
    pub leaving: BTreeMap<MemberKey, u64>,
    pub changes: Vec<ChangeNoteV4>,
    pub left_in: Option<u32>,
    pub hand_back: Option<MemberKey>,
    pub pending_change: Option<ChangeV4>,
}

impl From<GroupLifeV4> for GroupLife {
    fn from(l: GroupLifeV4) -> GroupLife {
        GroupLife {
            chain_records: l.chain_records,
            leaving: l.leaving,
            changes: l
                .changes
                .into_iter()
                .map(|c| ChangeNote {
                    version: c.version,
                    epoch: c.epoch,
                    by: c.by,
                    change: c.change.into(),
                    names: c.names,
                    at: c.at,
                })
                .collect(),
            left_in: l.left_in,
            hand_back: l.hand_back,
            pending_change: l.pending_change.map(Change::from),
        }
    }
}

/// Layout 4: membership changes, before adding members (no add round, no add invitation).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupV4 {
    pub group_id: GroupId,
    pub role: Role,
    pub me: MemberKey,
    pub creator: MemberKey,
    pub invite_id: ControlId,
    pub invite: Invite,
    pub status: Status,
    pub roster_version: u64,
    pub statuses: BTreeMap<MemberKey, InviteeStatus>,
    pub responses: BTreeMap<MemberKey, Vec<u8>>,
    pub my_response: Option<Response>,
    pub my_response_id: Option<ControlId>,
    pub bucket_seed: Option<GroupKey>,
    pub epochs: Vec<EpochState>,
    pub chain: Option<ChainPos>,
    pub life: GroupLifeV4,
    pub seen: BTreeSet<ControlId>,
    pub outbox: Vec<Outgoing>,
    pub window_passed: bool,
    pub updated_at: u64,
    pub flags: Vec<Flag>,
    pub window_seed: Option<GroupKey>,
    pub window_buckets: BTreeMap<MemberKey, [u8; 32]>,
}

impl From<GroupV4> for Group {
    fn from(g: GroupV4) -> Group {
        Group {
            group_id: g.group_id,
            role: g.role,
            me: g.me,
            creator: g.creator,
            invite_id: g.invite_id,
            invite: g.invite,
            status: g.status,
            roster_version: g.roster_version,
            statuses: g.statuses,
            responses: g.responses,
            my_response: g.my_response,
            my_response_id: g.my_response_id,
            bucket_seed: g.bucket_seed,
            epochs: g.epochs,
            chain: g.chain,
            life: g.life.into(),
            seen: g.seen,
            outbox: g.outbox,
            window_passed: g.window_passed,
            updated_at: g.updated_at,
            flags: g.flags,
            window_seed: g.window_seed,
            window_buckets: g.window_buckets,
            round: None,
            joining: None,
        }
    }
}

impl From<GroupV2> for Group {
    fn from(g: GroupV2) -> Group {
        g.convert()
    }
}

impl From<GroupV1> for Group {
    fn from(g: GroupV1) -> Group {
        // v1 knew only "someone saw another list", not who.
        let flags = if g.list_mismatch {
            vec![Flag {
                who: None,
                kind: FlagKind::InvitationListDiffers,
                at: g.updated_at,
                dismissed: false,
            }]
        } else {
            Vec::new()
        };
        GroupV2 {
            group_id: g.group_id,
            role: g.role,
            me: g.me,
            creator: g.creator,
            invite_id: g.invite_id,
            invite: g.invite,
            status: g.status,
            roster_version: g.roster_version,
            statuses: g.statuses,
            responses: g.responses,
            my_response: g.my_response,
            my_response_id: g.my_response_id,
            bucket_seed: g.bucket_seed,
            epoch: g.epoch,
            epoch_key: g.epoch_key,
            members: g.members,
            seen: g.seen,
            outbox: g.outbox,
            window_passed: g.window_passed,
            updated_at: g.updated_at,
            flags,
        }
        .convert()
    }
}
