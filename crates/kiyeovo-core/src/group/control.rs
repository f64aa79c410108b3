//! Group control messages (PROTOCOL.md §4): what travels between the creator and the invitees
//! through the pairwise channel.
//!
//! Every control message is `{id, group_id, sent_at, body}` signed by its author's identity key
//! under its own domain label. The pairwise envelope around it is already signed, but control
//! messages are also *relayed*: the creator puts each acceptor's signed `Response` into the
//! `Welcome` roster, so every member can check with the invitee's own key that the creator did not
//! invent an acceptance or an invitation list. That is what "assume the creator runs modified
//! code" needs.
//!
//! Decoding is strict and bounded; [`SignedControl::decode`] checks the signature and every
//! structural bound before anything else looks at a message. Whether a message is *allowed* (from
//! the creator, in time, for a group we know) is the state machine's job ([`super::machine`]).

use ed25519_dalek::VerifyingKey;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::codec::{self, DecodeError};
use crate::config::MAX_MEMBERS;
use crate::identity::{serde_sig, Identity};
use crate::sign::{self, Domain};

pub use crate::ids::{random_id, ControlId, GroupId};
/// An identity (Ed25519 public) key: who a member is.
pub type MemberKey = [u8; 32];

/// Largest control message accepted (a Welcome with ten members and their signed responses is
/// about 3 KiB).
pub const MAX_CONTROL_BYTES: usize = 16 * 1024;
/// Largest signed response carried inside a roster or Welcome (one is about 300 bytes).
pub const MAX_RESPONSE_BYTES: usize = 1024;
/// Largest group name, in characters.
pub const MAX_GROUP_NAME_CHARS: usize = 64;
/// Longest invite window a creator may ask for (PROTOCOL.md §6 default is 6 h).
pub const MAX_WINDOW_MS: u64 = 7 * 24 * 3600 * 1000;

/// A 32-byte symmetric group key; wiped when dropped, never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct GroupKey(pub [u8; 32]);

impl std::fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupKey(..)")
    }
}

impl GroupKey {
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        GroupKey(k)
    }
}

/// A group's id: derived from its creator and the id of its invitation, so the id names the
/// creator (PROTOCOL.md §4: a group is identified by (creator, group_id)) and cannot be squatted.
pub fn group_id_for(creator: &MemberKey, invite_id: &ControlId) -> GroupId {
    let mut h = Sha256::new();
    h.update(b"kiyeovo/v2/group-id");
    h.update(creator);
    h.update(invite_id);
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.finalize()[..16]);
    GroupId(id)
}

/// Someone named in an invitation, as the creator knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub id: MemberKey,
    pub name: String,
}

/// The invitation (step 2). The invitee list is the *shared roster*: everyone invited sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub name: String,
    pub creator_name: String,
    pub created_at: u64,
    pub expires_at: u64,
    /// Sorted by key, no duplicates, never the creator, 1 to `MAX_MEMBERS - 1` entries.
    pub invitees: Vec<Person>,
    /// The per-group admin key that signs the group-info records in the DHT.
    pub admin_pub: [u8; 32],
    /// Epoch 0: the window's temporary key.
    pub temp_key: GroupKey,
    /// The creator's X25519 key, signed here so members hold it without being its contact.
    pub creator_x25519: [u8; 32],
    /// Verifying key of the creator's window bucket: only its owner can write a window bucket
    /// (each acceptor announces its own in its signed [`Response`]).
    pub creator_window_bucket: [u8; 32],
}

impl Invite {
    /// The hash each invitee reports back and every window message carries: what it was shown
    /// (PROTOCOL.md §4 step 3). It covers the whole invitation — names, window, invitees, the
    /// creator's keys — so a creator who shows invitees different invitations (another creator
    /// window bucket, another temporary key) is caught; the temporary key enters as a hash.
    pub fn list_hash(&self, group_id: &GroupId, creator: &MemberKey) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"kiyeovo/v2/invitation");
        h.update(group_id);
        h.update(creator);
        h.update(codec::encode(&(
            &self.name,
            &self.creator_name,
            self.created_at,
            self.expires_at,
            &self.invitees,
            self.admin_pub,
            self.creator_x25519,
            self.creator_window_bucket,
            <[u8; 32]>::from(Sha256::digest(self.temp_key.0)),
        )));
        h.finalize().into()
    }
}

/// An invitee's answer (step 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub invite_id: ControlId,
    pub accept: bool,
    /// [`Invite::list_hash`] of the invitation as received.
    pub list_hash: [u8; 32],
    /// The acceptor's bucket key for epoch 1 (its offline group bucket); `None` when rejecting.
    pub bucket_pub: Option<[u8; 32]>,
    /// The acceptor's window (epoch 0) bucket key; `None` when rejecting.
    pub window_bucket_pub: Option<[u8; 32]>,
    /// The invitee's X25519 key, signed by it, so the roster carries keys the creator cannot
    /// substitute.
    pub x25519: [u8; 32],
    /// Invitee's clock when answering.
    pub responded_at: u64,
}

/// How one invitee stands, as the creator publishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
pub enum InviteeStatus {
    /// The invitee's app has not confirmed it received the invitation.
    NotDelivered,
    Delivered,
    Accepted,
    Rejected,
    /// No answer in time.
    Expired,
}

/// A signed version of the shared roster (step 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterUpdate {
    /// Strictly increasing; members never apply an older one.
    pub version: u64,
    /// One entry per invitee, in the invite's order.
    pub statuses: Vec<(MemberKey, InviteeStatus)>,
    /// The signed acceptance (encoded [`SignedControl`] with a [`Response`]) of every invitee
    /// shown `Accepted`, in the same order: proof of the acceptance and of the window bucket key
    /// that invitee announced, checkable with its own key.
    pub acceptances: Vec<Vec<u8>>,
}

/// A member of an established epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: MemberKey,
    pub name: String,
    /// Verifying key of the member's offline bucket for this epoch (PROTOCOL.md §5).
    pub bucket_pub: [u8; 32],
    /// The member's X25519 key (from its signed response; the creator's from the invitation).
    pub x25519: [u8; 32],
    /// The member's own signed `Response` (encoded [`SignedControl`]); empty for the creator.
    /// Carried so everyone can verify the acceptance and the invite-list hash it reported.
    pub response: Vec<u8>,
}

/// The epoch key for the final roster (step 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub epoch: u32,
    pub key: GroupKey,
    /// The creator first, then the acceptors.
    pub members: Vec<Member>,
}

/// Why the creator tells an invitee the group goes on without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClosedReason {
    /// Rejected, or did not answer in time.
    NotAccepted,
    /// The answer arrived after the group was established.
    TooLate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    Invite(Invite),
    Response(Response),
    Roster(RosterUpdate),
    Welcome(Welcome),
    Closed(ClosedReason),
    /// "Your control message `of` arrived." Invite → delivered; Response → counted; Welcome →
    /// stop re-sending.
    Ack {
        of: ControlId,
    },
    /// A member leaves (PROTOCOL.md §4.7): to the admin, who writes the next version without it.
    /// `last_seq` is the last seq it wrote in `epoch` (its boundary there).
    Leave {
        epoch: u32,
        last_seq: u64,
    },
    /// A group-info record (PROTOCOL.md §4.8) pushed live; the same bytes are in the DHT. The
    /// receiver checks it like one it read there.
    Info(Vec<u8>),
    /// An invitation into the established group, from its admin (PROTOCOL.md §4.7 Add).
    Add(AddInvite),
}

/// An invitation into an established group (PROTOCOL.md §4.7 Add): its own window, the current
/// members listed. The control message's id is the round's id, which each acceptance names and
/// the group-info version that adds them carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddInvite {
    /// The group's first invitation id: with `creator` it proves the group id
    /// ([`group_id_for`]), so nobody can invite into a group id of someone else's making.
    pub origin: ControlId,
    pub creator: MemberKey,
    pub name: String,
    pub admin_name: String,
    pub created_at: u64,
    pub expires_at: u64,
    /// Those invited in this round: sorted by key, no duplicates, none a member.
    pub invitees: Vec<Person>,
    /// Who is in the group now (names as the admin knows them); the admin among them.
    pub members: Vec<Person>,
    /// The admin's chain key (its group-bucket key) and its chain head when the round opened:
    /// where the version that adds the acceptors will be.
    pub chain_pub: [u8; 32],
    pub version: u64,
    pub head_hash: [u8; 32],
}

impl AddInvite {
    /// What each invitee reports back in its answer: the whole invitation, bound to its group.
    pub fn hash(&self, group_id: &GroupId) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"kiyeovo/v2/add-invitation");
        h.update(group_id);
        h.update(codec::encode(self));
        h.finalize().into()
    }
}

impl Body {
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Invite(_) => "invite",
            Body::Response(_) => "response",
            Body::Roster(_) => "roster",
            Body::Welcome(_) => "welcome",
            Body::Closed(_) => "closed",
            Body::Ack { .. } => "ack",
            Body::Leave { .. } => "leave",
            Body::Info(_) => "group info",
            Body::Add(_) => "add invitation",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    /// Unique per message; receivers drop ids they have seen.
    pub id: ControlId,
    pub group_id: GroupId,
    pub sent_at: u64,
    pub body: Body,
}

/// A control message with its author's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedControl {
    pub control: Control,
    pub signer: MemberKey,
    #[serde(with = "serde_sig")]
    pub signature: [u8; 64],
}

/// Why a control message was refused before it reached a group.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ControlError {
    #[error("control message does not decode: {0}")]
    Malformed(DecodeError),
    #[error("control message signature does not verify")]
    BadSignature,
    #[error("invitation is malformed: {0}")]
    BadInvite(&'static str),
    #[error("roster is malformed: {0}")]
    BadRoster(&'static str),
}

impl Control {
    pub fn new(group_id: GroupId, sent_at: u64, body: Body) -> Self {
        Control {
            id: random_id(),
            group_id,
            sent_at,
            body,
        }
    }

    pub fn sign(self, identity: &Identity) -> SignedControl {
        let signature = identity.sign(Domain::GroupControl, &codec::encode(&self));
        SignedControl {
            control: self,
            signer: identity.public().ed25519,
            signature,
        }
    }
}

fn check_invite(invite: &Invite, creator: &MemberKey) -> Result<(), ControlError> {
    use crate::contacts::card::check_display_name;
    let bad = ControlError::BadInvite;
    if check_display_name(&invite.name).is_err()
        || invite.name.chars().count() > MAX_GROUP_NAME_CHARS
    {
        return Err(bad("group name"));
    }
    if check_display_name(&invite.creator_name).is_err() {
        return Err(bad("creator name"));
    }
    if invite.invitees.is_empty() || invite.invitees.len() > MAX_MEMBERS - 1 {
        return Err(bad("number of invitees"));
    }
    if !invite.invitees.windows(2).all(|w| w[0].id < w[1].id) {
        return Err(bad("invitees not sorted or duplicated"));
    }
    if invite.invitees.iter().any(|p| p.id == *creator) {
        return Err(bad("creator invited itself"));
    }
    if invite
        .invitees
        .iter()
        .any(|p| check_display_name(&p.name).is_err())
    {
        return Err(bad("invitee name"));
    }
    if invite.expires_at <= invite.created_at
        || invite.expires_at - invite.created_at > MAX_WINDOW_MS
    {
        return Err(bad("window"));
    }
    if !crate::identity::x25519_contributory(&invite.creator_x25519) {
        return Err(bad("creator's X25519 key"));
    }
    Ok(())
}

fn check_add(add: &AddInvite, admin: &MemberKey) -> Result<(), ControlError> {
    use crate::contacts::card::check_display_name;
    let bad = ControlError::BadInvite;
    if check_display_name(&add.name).is_err() || add.name.chars().count() > MAX_GROUP_NAME_CHARS {
        return Err(bad("group name"));
    }
    if check_display_name(&add.admin_name).is_err() {
        return Err(bad("admin name"));
    }
    if add.invitees.is_empty() || add.members.is_empty() {
        return Err(bad("nobody invited, or no members"));
    }
    if add.invitees.len() + add.members.len() > MAX_MEMBERS {
        return Err(bad("more than the group's cap"));
    }
    if !add.invitees.windows(2).all(|w| w[0].id < w[1].id) {
        return Err(bad("invitees not sorted or duplicated"));
    }
    let mut all: Vec<MemberKey> = add
        .members
        .iter()
        .chain(&add.invitees)
        .map(|p| p.id)
        .collect();
    all.sort();
    all.dedup();
    if all.len() != add.members.len() + add.invitees.len() {
        return Err(bad("someone listed twice, or invited while a member"));
    }
    if !add.members.iter().any(|p| p.id == *admin) {
        return Err(bad("the admin is not a member"));
    }
    if add
        .members
        .iter()
        .chain(&add.invitees)
        .any(|p| check_display_name(&p.name).is_err())
    {
        return Err(bad("a name"));
    }
    if add.expires_at <= add.created_at || add.expires_at - add.created_at > MAX_WINDOW_MS {
        return Err(bad("window"));
    }
    Ok(())
}

fn check_welcome(welcome: &Welcome, signer: &MemberKey) -> Result<(), ControlError> {
    let bad = ControlError::BadRoster;
    if welcome.members.is_empty() || welcome.members.len() > MAX_MEMBERS {
        return Err(bad("number of members"));
    }
    if welcome.members[0].id != *signer || !welcome.members[0].response.is_empty() {
        return Err(bad("the creator must come first"));
    }
    let mut ids: Vec<_> = welcome.members.iter().map(|m| m.id).collect();
    ids.sort();
    ids.dedup();
    if ids.len() != welcome.members.len() {
        return Err(bad("duplicate member"));
    }
    if welcome
        .members
        .iter()
        .any(|m| m.response.len() > MAX_RESPONSE_BYTES)
    {
        return Err(bad("response too large"));
    }
    Ok(())
}

fn check_roster(roster: &RosterUpdate) -> Result<(), ControlError> {
    let bad = ControlError::BadRoster;
    if roster.statuses.len() > MAX_MEMBERS - 1 {
        return Err(bad("too many entries"));
    }
    let accepted = roster
        .statuses
        .iter()
        .filter(|(_, s)| *s == InviteeStatus::Accepted)
        .count();
    // All of them (for those who accepted) or none (for those who have not answered yet).
    if !roster.acceptances.is_empty() && roster.acceptances.len() != accepted {
        return Err(bad("one acceptance per accepted invitee"));
    }
    if roster
        .acceptances
        .iter()
        .any(|a| a.len() > MAX_RESPONSE_BYTES)
    {
        return Err(bad("response too large"));
    }
    Ok(())
}

impl SignedControl {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Strict decode, signature check, structural bounds.
    pub fn decode(bytes: &[u8]) -> Result<SignedControl, ControlError> {
        let signed: SignedControl =
            codec::decode_bounded(bytes, MAX_CONTROL_BYTES).map_err(ControlError::Malformed)?;
        let key =
            VerifyingKey::from_bytes(&signed.signer).map_err(|_| ControlError::BadSignature)?;
        sign::verify(
            &key,
            Domain::GroupControl,
            &codec::encode(&signed.control),
            &signed.signature,
        )
        .map_err(|_| ControlError::BadSignature)?;
        match &signed.control.body {
            Body::Invite(invite) => check_invite(invite, &signed.signer)?,
            Body::Welcome(welcome) => check_welcome(welcome, &signed.signer)?,
            Body::Roster(roster) => check_roster(roster)?,
            Body::Add(add) => check_add(add, &signed.signer)?,
            _ => {}
        }
        Ok(signed)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn invite_for(invitees: &[&Identity], now: u64) -> Invite {
        let mut people: Vec<Person> = invitees
            .iter()
            .enumerate()
            .map(|(i, id)| Person {
                id: id.public().ed25519,
                name: format!("member {i}"),
            })
            .collect();
        people.sort_by_key(|p| p.id);
        Invite {
            name: "Book club".into(),
            creator_name: "Ana".into(),
            created_at: now,
            expires_at: now + 6 * 3600 * 1000,
            invitees: people,
            admin_pub: [7; 32],
            temp_key: GroupKey::random(),
            creator_x25519: Identity::generate().public().x25519,
            creator_window_bucket: [8; 32],
        }
    }

    #[test]
    fn table_of_refusals() {
        let creator = Identity::generate();
        let a = Identity::generate();
        let gid = random_id();
        let valid = invite_for(&[&a], 1000);
        let signed = |body: Body| Control::new(gid, 1, body).sign(&creator).encode();
        SignedControl::decode(&signed(Body::Invite(valid.clone()))).expect("valid invite");

        let mut forged = Control::new(gid, 1, Body::Invite(valid.clone())).sign(&creator);
        forged.signer = a.public().ed25519;
        let mut tampered = Control::new(gid, 1, Body::Invite(valid.clone())).sign(&creator);
        tampered.control.group_id = random_id();
        let ten: Vec<Identity> = (0..10).map(|_| Identity::generate()).collect();
        let with = |f: &dyn Fn(&mut Invite)| {
            let mut i = valid.clone();
            f(&mut i);
            signed(Body::Invite(i))
        };
        let welcome = |members: Vec<Member>| {
            signed(Body::Welcome(Welcome {
                epoch: 1,
                key: GroupKey::random(),
                members,
            }))
        };
        let member = |id: &Identity| Member {
            id: id.public().ed25519,
            name: "x".into(),
            bucket_pub: [1; 32],
            x25519: id.public().x25519,
            response: vec![],
        };
        let mut big = signed(Body::Invite(valid.clone()));
        big.resize(MAX_CONTROL_BYTES + 1, 0);
        let mut trailing = signed(Body::Invite(valid.clone()));
        trailing.push(0);

        type Case = (&'static str, Vec<u8>, fn(&ControlError) -> bool);
        let cases: Vec<Case> = vec![
            ("forged signer", forged.encode(), |e| {
                *e == ControlError::BadSignature
            }),
            ("tampered after signing", tampered.encode(), |e| {
                *e == ControlError::BadSignature
            }),
            ("oversized", big, |e| {
                matches!(e, ControlError::Malformed(_))
            }),
            ("trailing bytes", trailing, |e| {
                matches!(e, ControlError::Malformed(_))
            }),
            ("garbage", vec![0xff; 40], |e| {
                matches!(e, ControlError::Malformed(_))
            }),
            (
                "ten invitees",
                with(&|i| {
                    let mut p: Vec<Person> = ten
                        .iter()
                        .map(|t| Person {
                            id: t.public().ed25519,
                            name: "t".into(),
                        })
                        .collect();
                    p.sort_by_key(|p| p.id);
                    i.invitees = p;
                }),
                |e| *e == ControlError::BadInvite("number of invitees"),
            ),
            ("no invitee", with(&|i| i.invitees.clear()), |e| {
                *e == ControlError::BadInvite("number of invitees")
            }),
            (
                "duplicate invitee",
                with(&|i| i.invitees.push(i.invitees[0].clone())),
                |e| *e == ControlError::BadInvite("invitees not sorted or duplicated"),
            ),
            (
                "creator invites itself",
                with(&|i| {
                    i.invitees = vec![Person {
                        id: creator.public().ed25519,
                        name: "me".into(),
                    }]
                }),
                |e| *e == ControlError::BadInvite("creator invited itself"),
            ),
            (
                "window backwards",
                with(&|i| i.expires_at = i.created_at),
                |e| *e == ControlError::BadInvite("window"),
            ),
            (
                "a low-order X25519 key for the creator",
                with(&|i| i.creator_x25519 = [0; 32]),
                |e| *e == ControlError::BadInvite("creator's X25519 key"),
            ),
            (
                "a roster carrying some of its acceptances but not all",
                signed(Body::Roster(RosterUpdate {
                    version: 2,
                    statuses: vec![
                        (a.public().ed25519, InviteeStatus::Accepted),
                        (ten[0].public().ed25519, InviteeStatus::Accepted),
                    ],
                    acceptances: vec![vec![1, 2, 3]],
                })),
                |e| *e == ControlError::BadRoster("one acceptance per accepted invitee"),
            ),
            (
                "hidden characters in the name",
                with(&|i| i.name = "Book\u{202e}club".into()),
                |e| *e == ControlError::BadInvite("group name"),
            ),
            (
                "welcome without the creator first",
                welcome(vec![member(&a)]),
                |e| *e == ControlError::BadRoster("the creator must come first"),
            ),
            (
                "welcome with a duplicate member",
                welcome(vec![member(&creator), member(&a), member(&a)]),
                |e| *e == ControlError::BadRoster("duplicate member"),
            ),
        ];
        for (name, bytes, expected) in cases {
            let err = SignedControl::decode(&bytes).expect_err(name);
            assert!(expected(&err), "{name}: unexpected {err:?}");
        }
    }

    #[test]
    fn the_invitation_hash_covers_everything_shown() {
        let creator = Identity::generate();
        let (a, b) = (Identity::generate(), Identity::generate());
        let gid = random_id();
        let c = creator.public().ed25519;
        let one = invite_for(&[&a], 5);
        let variants: Vec<Invite> = vec![
            Invite {
                temp_key: GroupKey::random(),
                ..one.clone()
            },
            Invite {
                creator_window_bucket: [9; 32],
                ..one.clone()
            },
            Invite {
                creator_x25519: Identity::generate().public().x25519,
                ..one.clone()
            },
            Invite {
                creator_name: "Not Ana".into(),
                ..one.clone()
            },
            Invite {
                admin_pub: [3; 32],
                ..one.clone()
            },
            invite_for(&[&a, &b], 5),
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(
                one.list_hash(&gid, &c),
                v.list_hash(&gid, &c),
                "variant {i}"
            );
        }
        assert_ne!(one.list_hash(&gid, &c), one.list_hash(&random_id(), &c));
        assert_eq!(one.list_hash(&gid, &c), one.clone().list_hash(&gid, &c));
    }
}
