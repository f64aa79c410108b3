//! One group's local state machine (PROTOCOL.md §4), pure: no clock, no randomness, no I/O.
//! Inputs are method calls with the time and any fresh key passed in; outputs are the new state
//! and control messages queued in [`Group::outbox`] for the service to sign and send.
//!
//! Legal transitions (anything else is a [`GroupError`]):
//!
//! | role    | from       | input                                   | to         |
//! |---------|------------|-----------------------------------------|------------|
//! | creator | —          | create                                  | `Inviting` |
//! | creator | `Inviting` | response / ack (roster changes)         | `Inviting` |
//! | creator | `Inviting` | establish (window over, or all accepted)| `Active`   |
//! | creator | `Inviting` | establish with no acceptor              | `Expired`  |
//! | invitee | —          | invite (window open)                    | `Invited`  |
//! | invitee | —          | invite (window already over)            | `Expired`  |
//! | invitee | `Invited`  | accept / reject, in the window          | `Accepted` / `Rejected` |
//! | invitee | `Invited`  | window passes                           | `Expired`  |
//! | invitee | `Accepted` | Welcome from the creator, naming us     | `Active`   |
//! | invitee | `Invited`/`Accepted` | `Closed` from the creator     | `Expired`  |
//!
//! An accepted invitee whose window has passed stays `Accepted`: the UI shows "waiting for the
//! creator to establish" — it can never establish itself.
//!
//! **Window check.** An invitee cannot answer after `expires_at` by its own clock. The creator
//! counts a response if it arrives before it established the group and the response's signed
//! time is inside the window (with [`CLOCK_SKEW_MS`] of slack before `created_at` only). The creator
//! establishes by its own clock, the first time it runs after `expires_at`, which closes the
//! window for good; a response that arrives after that is answered with `Closed(TooLate)`. The
//! creator may have been offline when the window ended, so the signed time is the only evidence
//! of when an answer was given; a trusted contact who backdates an answer gains nothing it could
//! not have had by answering in time.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::control::{
    group_id_for, Body, ClosedReason, Control, ControlId, GroupId, GroupKey, Invite, InviteeStatus,
    Member, MemberKey, Response, RosterUpdate, SignedControl, Welcome,
};
use super::info::{genesis_hash, Change};
use super::membership::ChangeNote;

/// The verifying key of a bucket signing seed.
pub fn bucket_public(seed: &GroupKey) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(&seed.0)
        .verifying_key()
        .to_bytes()
}

/// The seed of a member's window (epoch-0) bucket, derived from its epoch-1 bucket seed so one
/// stored secret serves both. Only the member holds it: the verifying key goes out in its signed
/// invitation or response, so nobody else can write its window bucket.
pub fn window_seed_of(bucket_seed: &GroupKey) -> GroupKey {
    use hkdf::Hkdf;
    use sha2::Sha256;
    let hk = Hkdf::<Sha256>::new(Some(b"kiyeovo/v2/window-bucket"), &bucket_seed.0);
    let mut seed = [0u8; 32];
    hk.expand(b"epoch 0", &mut seed)
        .expect("32-byte HKDF output is always valid");
    GroupKey(seed)
}

/// Hash of one epoch's roster (who holds the key), carried in every group envelope so members
/// who see different rosters notice (PROTOCOL.md §5).
pub fn roster_hash(group_id: &GroupId, epoch: u32, members: &[Member]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"kiyeovo/v2/roster");
    h.update(group_id);
    h.update(epoch.to_be_bytes());
    // Names and X25519 keys too (PROTOCOL.md §5): a creator who labels someone differently for
    // different members shows them different rosters, and the hash (and safety code) differ.
    for m in members {
        h.update(m.id);
        h.update((m.name.len() as u32).to_be_bytes());
        h.update(m.name.as_bytes());
        h.update(m.bucket_pub);
        // Groups from 0.1 know no X25519 keys (all zeros, see `store_legacy`): left out, so
        // their safety codes stay what members compared before the upgrade. A real key can
        // never be all zeros (it must be contributory).
        if m.x25519 != [0; 32] {
            h.update(m.x25519);
        }
    }
    h.finalize().into()
}

/// How far a response's signed time may lie before the invitation was created.
pub const CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
/// How long after an add round's window someone who accepted waits for the version that adds
/// it before the invitation counts as expired (the admin may have been offline at the end).
pub const JOIN_GRACE_MS: u64 = 24 * 3600 * 1000;
/// Control ids remembered for de-duplication (far more than one group ever sees).
const MAX_SEEN: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Creator,
    Invitee,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Creator, window open.
    Inviting,
    /// Invitee, not answered yet.
    Invited,
    Accepted,
    Rejected,
    /// Did not answer in time, was told the group closed without us, or (creator) nobody
    /// accepted.
    Expired,
    /// Holds the epoch key.
    Active,
    /// We left (history stays, read-only).
    Left,
    /// The admin wrote a version without us.
    Removed,
    /// The admin ended the group.
    Disbanded,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("only the group's creator can do that")]
    NotCreator,
    #[error("the group id is not bound to the invitation's creator")]
    IdNotBound,
    #[error("the creator cannot do that")]
    NotInvitee,
    #[error("already processed")]
    Duplicate,
    #[error("message is for another group")]
    WrongGroup,
    #[error("message claims to come from the creator but does not")]
    NotFromCreator,
    #[error("sender was not invited to this group")]
    NotInvited,
    #[error("we are not among the invitees")]
    NotForUs,
    #[error("the invitation window has closed")]
    WindowClosed,
    #[error("the invitation window is still open and not everyone has accepted")]
    WindowOpen,
    #[error("already answered")]
    AlreadyResponded,
    #[error("the answer came after the group was established")]
    Late,
    #[error("epoch {got} is not newer than {have}")]
    StaleEpoch { got: u32, have: u32 },
    #[error("roster version {got} is not newer than {have}")]
    StaleRoster { got: u64, have: u64 },
    #[error("we did not accept this invitation")]
    NotAccepted,
    #[error("the roster does not contain us")]
    NotInRoster,
    #[error("a member's response in the roster is invalid: {0}")]
    BadResponse(&'static str),
    #[error("only the group's admin can do that")]
    NotAdmin,
    #[error("that person is not a member of the group")]
    NotAMember,
    #[error("the admin hands the group over (or disbands it) before leaving")]
    AdminMustHandOver,
    #[error(transparent)]
    Chain(#[from] super::info::ChainError),
    #[error("this group was made before members' keys were shared: it cannot get a new key")]
    NoMemberKeys,
    #[error("an add round is open already")]
    RoundOpen,
    #[error("already a member")]
    AlreadyMember,
    #[error("a group has at most {} members", crate::config::MAX_MEMBERS)]
    TooManyMembers,
    #[error("{event} is not allowed while {status:?}")]
    Illegal { status: Status, event: &'static str },
}

/// A control message waiting to be (re-)sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    pub to: MemberKey,
    pub control: Control,
    /// Re-sent periodically until the receiver acknowledges it.
    pub until_ack: bool,
    pub sent: bool,
}

/// Everything one member knows about one group. Sealed with the storage key at rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub group_id: GroupId,
    pub role: Role,
    pub me: MemberKey,
    pub creator: MemberKey,
    pub invite_id: ControlId,
    pub invite: Invite,
    pub status: Status,
    pub roster_version: u64,
    /// Each invitee's status as the creator last published it.
    pub statuses: BTreeMap<MemberKey, InviteeStatus>,
    /// Creator: the first valid signed response of each invitee (encoded [`SignedControl`]).
    pub responses: BTreeMap<MemberKey, Vec<u8>>,
    /// Invitee: what we answered.
    pub my_response: Option<Response>,
    pub my_response_id: Option<ControlId>,
    /// Our group-bucket key (seed), made when accepting / creating, kept for every epoch of our
    /// membership; the admin's also signs the group-info chain.
    pub bucket_seed: Option<GroupKey>,
    /// Every established epoch we held the key of, oldest first (none during the window).
    pub epochs: Vec<EpochState>,
    /// Where our copy of the group-info chain stands (from establishment on).
    pub chain: Option<ChainPos>,
    /// What happened after establishment (membership changes), and what is in flight.
    pub life: GroupLife,
    pub seen: BTreeSet<ControlId>,
    pub outbox: Vec<Outgoing>,
    /// The invitee noticed the end of the window (so the change is reported once).
    pub window_passed: bool,
    pub updated_at: u64,
    /// Signs that members are shown different things (PROTOCOL.md §5 equivocation), each
    /// naming whom it concerns; the user reads and dismisses them.
    pub flags: Vec<Flag>,
    /// Our window bucket's signing seed (creator and acceptors).
    pub window_seed: Option<GroupKey>,
    /// Window bucket verifying keys, each learned from its owner's own signature: the
    /// creator's from the invitation, an acceptor's from its signed response.
    pub window_buckets: BTreeMap<MemberKey, [u8; 32]>,
    /// Admin: the open add round, if any (PROTOCOL.md §4.7 Add).
    pub round: Option<super::add_round::AddRound>,
    /// Invited into the running group by its admin (not by the creator's first invitation).
    pub joining: Option<super::add_round::Joining>,
}

/// One established key epoch as this member holds it (PROTOCOL.md §4.8–4.9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochState {
    pub epoch: u32,
    pub key: GroupKey,
    /// Who holds the key (the creator first at epoch 1).
    pub members: Vec<Member>,
    /// Set when the next epoch began without them: the last seq each departed member may have
    /// used in this epoch. Their envelopes above it are refused.
    pub boundaries: BTreeMap<MemberKey, u64>,
    /// When it began (by our clock): scheduled rotation counts from here.
    pub started_at: u64,
    /// When the next epoch began (or we left it): its buckets are read for a while after.
    pub ended_at: Option<u64>,
}

/// A group's life after establishment, beyond its epochs and chain head (PROTOCOL.md §4.7).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupLife {
    /// The group-info records we hold (exact signed bytes, newest last), re-published so the
    /// chain outlives any one member's absence.
    pub chain_records: Vec<(u64, Vec<u8>)>,
    /// Admin: members who asked to leave, with their last seq, not yet written out.
    pub leaving: BTreeMap<MemberKey, u64>,
    /// The membership changes, for the conversation ("Ben left").
    pub changes: Vec<ChangeNote>,
    /// The epoch we left in: later epochs (we follow the chain until the admin writes us out)
    /// are neither read nor written.
    pub left_in: Option<u32>,
    /// We left and were then made admin (a hand-over crossing our leave): we hand back to
    /// this member, who then writes us out.
    pub hand_back: Option<MemberKey>,
    /// Admin: a change the user asked for that is saved but not yet written (the app was
    /// stopped in between): written at the next start. A newer request replaces it.
    pub pending_change: Option<Change>,
}

/// The head of our group-info chain: what the next version must build on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainPos {
    pub version: u64,
    pub hash: [u8; 32],
    /// Who writes the next version.
    pub admin: MemberKey,
}

/// What looked like a split view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlagKind {
    /// Someone answered (or the creator showed) another invitation list than ours.
    InvitationListDiffers,
    /// A member's message commits to another roster than the one we hold for its epoch.
    RosterDiffers,
    /// The group was established without someone the creator had shown as accepted.
    AcceptedMemberLeftOut,
    /// The admin wrote two different versions of the group info with the same number.
    ChainFork,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    /// Whom it concerns (the sender of the message, the member left out), if anyone.
    pub who: Option<MemberKey>,
    pub kind: FlagKind,
    pub at: u64,
    pub dismissed: bool,
}

impl Group {
    /// Creator, step 1–2: queues the invitation to every invitee.
    /// A new group of ours. Its id is derived from us and the invitation's id
    /// ([`group_id_for`]), so nobody else can make an invitation with it.
    pub fn create(
        me: MemberKey,
        mut invite: Invite,
        invite_id: ControlId,
        bucket_seed: GroupKey,
        now: u64,
    ) -> Group {
        let group_id = group_id_for(&me, &invite_id);
        let window_seed = window_seed_of(&bucket_seed);
        invite.creator_window_bucket = bucket_public(&window_seed);
        let window_buckets = BTreeMap::from([(me, invite.creator_window_bucket)]);
        let statuses = invite
            .invitees
            .iter()
            .map(|p| (p.id, InviteeStatus::NotDelivered))
            .collect();
        let outbox = invite
            .invitees
            .iter()
            .map(|p| Outgoing {
                to: p.id,
                control: Control {
                    id: invite_id,
                    group_id,
                    sent_at: now,
                    body: Body::Invite(invite.clone()),
                },
                until_ack: true,
                sent: false,
            })
            .collect();
        Group {
            group_id,
            role: Role::Creator,
            me,
            creator: me,
            invite_id,
            invite,
            status: Status::Inviting,
            roster_version: 1,
            statuses,
            responses: BTreeMap::new(),
            my_response: None,
            my_response_id: None,
            bucket_seed: Some(bucket_seed),
            epochs: Vec::new(),
            chain: None,
            life: GroupLife::default(),
            seen: BTreeSet::from([invite_id]),
            outbox,
            window_passed: false,
            updated_at: now,
            flags: Vec::new(),
            window_seed: Some(window_seed),
            window_buckets,
            round: None,
            joining: None,
        }
    }

    /// Invitee: a verified invitation from `signed.signer` arrived. The caller has checked the
    /// signer is a trusted, unblocked contact and that invitations are not blocked.
    pub fn from_invite(
        me: MemberKey,
        signed: &SignedControl,
        ack_id: ControlId,
        now: u64,
    ) -> Result<Group, GroupError> {
        let Body::Invite(invite) = &signed.control.body else {
            return Err(GroupError::Illegal {
                status: Status::Invited,
                event: "a non-invite as the first message",
            });
        };
        if !invite.invitees.iter().any(|p| p.id == me) {
            return Err(GroupError::NotForUs);
        }
        let control = &signed.control;
        // A group is (creator, group id): the id commits to its creator, so an invitee who
        // copies a real group's id into an invitation of its own is refused here and can never
        // occupy that group's place (PROTOCOL.md §4).
        if control.group_id != group_id_for(&signed.signer, &control.id) {
            return Err(GroupError::IdNotBound);
        }
        let status = if now > invite.expires_at {
            Status::Expired
        } else {
            Status::Invited
        };
        Ok(Group {
            group_id: control.group_id,
            role: Role::Invitee,
            me,
            creator: signed.signer,
            invite_id: control.id,
            invite: invite.clone(),
            status,
            roster_version: 0,
            statuses: invite
                .invitees
                .iter()
                .map(|p| (p.id, InviteeStatus::NotDelivered))
                .collect(),
            responses: BTreeMap::new(),
            my_response: None,
            my_response_id: None,
            bucket_seed: None,
            epochs: Vec::new(),
            chain: None,
            life: GroupLife::default(),
            seen: BTreeSet::from([control.id]),
            // "It arrived": the creator shows the invitation as delivered.
            outbox: vec![Outgoing {
                to: signed.signer,
                control: Control {
                    id: ack_id,
                    group_id: control.group_id,
                    sent_at: now,
                    body: Body::Ack { of: control.id },
                },
                until_ack: false,
                sent: false,
            }],
            window_passed: status == Status::Expired,
            updated_at: now,
            flags: Vec::new(),
            window_seed: None,
            window_buckets: BTreeMap::from([(signed.signer, invite.creator_window_bucket)]),
            round: None,
            joining: None,
        })
    }

    pub(super) fn queue(
        &mut self,
        to: MemberKey,
        id: ControlId,
        now: u64,
        body: Body,
        until_ack: bool,
    ) {
        self.outbox.push(Outgoing {
            to,
            control: Control {
                id,
                group_id: self.group_id,
                sent_at: now,
                body,
            },
            until_ack,
            sent: false,
        });
    }

    /// What this member was shown as the invitation ([`Invite::list_hash`]).
    /// For an add round: the hash of the add invitation.
    pub fn list_hash(&self) -> [u8; 32] {
        match &self.joining {
            Some(j) => j.add.hash(&self.group_id),
            None => self.invite.list_hash(&self.group_id, &self.creator),
        }
    }

    /// The window is over by our clock.
    pub fn window_over(&self, now: u64) -> bool {
        now > self.invite.expires_at
    }

    /// Every invitee accepted (the creator may establish early).
    pub fn all_accepted(&self) -> bool {
        self.statuses
            .values()
            .all(|s| *s == InviteeStatus::Accepted)
    }

    /// Creator: establishment is due (the window ended).
    pub fn establishment_due(&self, now: u64) -> bool {
        self.role == Role::Creator && self.status == Status::Inviting && self.window_over(now)
    }

    /// Invitee, step 3. `bucket_seed` becomes our epoch-1 bucket key if we accept (its public
    /// half, and that of the window bucket derived from it, go into the response, with our
    /// X25519 key `x25519`).
    pub fn respond(
        &mut self,
        accept: bool,
        bucket_seed: GroupKey,
        x25519: [u8; 32],
        response_id: ControlId,
        now: u64,
    ) -> Result<(), GroupError> {
        if self.role != Role::Invitee {
            return Err(GroupError::NotInvitee);
        }
        match self.status {
            Status::Invited => {}
            Status::Accepted | Status::Rejected => return Err(GroupError::AlreadyResponded),
            Status::Expired => return Err(GroupError::WindowClosed),
            status => {
                return Err(GroupError::Illegal {
                    status,
                    event: "answering",
                })
            }
        }
        if self.window_over(now) {
            self.status = Status::Expired;
            return Err(GroupError::WindowClosed);
        }
        let window_seed = window_seed_of(&bucket_seed);
        // An add round has no window chat: no window bucket.
        let windowed = accept && self.joining.is_none();
        let response = Response {
            invite_id: self.invite_id,
            accept,
            list_hash: self.list_hash(),
            bucket_pub: accept.then(|| bucket_public(&bucket_seed)),
            window_bucket_pub: windowed.then(|| bucket_public(&window_seed)),
            x25519,
            responded_at: now,
        };
        self.status = if accept {
            Status::Accepted
        } else {
            Status::Rejected
        };
        if windowed {
            self.window_buckets
                .insert(self.me, bucket_public(&window_seed));
            self.window_seed = Some(window_seed);
        }
        if accept {
            self.bucket_seed = Some(bucket_seed);
        }
        self.statuses.insert(
            self.me,
            if accept {
                InviteeStatus::Accepted
            } else {
                InviteeStatus::Rejected
            },
        );
        self.my_response = Some(response.clone());
        self.my_response_id = Some(response_id);
        self.seen.insert(response_id);
        self.queue(
            self.inviter(),
            response_id,
            now,
            Body::Response(response),
            true,
        );
        self.updated_at = now;
        // Declining an invitation back leaves our copy as it was.
        self.invitation_ended();
        Ok(())
    }

    /// Any signed control message for this group. `raw` is its encoding (kept when it is a
    /// response the creator will relay). `fresh_id` names any message this queues in reply.
    pub fn receive(
        &mut self,
        signed: &SignedControl,
        raw: &[u8],
        fresh_ids: &mut dyn FnMut() -> ControlId,
        now: u64,
    ) -> Result<(), GroupError> {
        let control = &signed.control;
        if control.group_id != self.group_id {
            return Err(GroupError::WrongGroup);
        }
        if self.seen.contains(&control.id) {
            // A re-send means our acknowledgement was lost: acknowledge again, or the sender
            // re-sends forever.
            if matches!(
                control.body,
                Body::Invite(_)
                    | Body::Add(_)
                    | Body::Response(_)
                    | Body::Welcome(_)
                    | Body::Leave { .. }
            ) && (signed.signer == self.inviter()
                || self.statuses.contains_key(&signed.signer)
                || self.is_member(&signed.signer)
                || self
                    .round
                    .as_ref()
                    .is_some_and(|r| r.statuses.contains_key(&signed.signer)))
            {
                self.queue(
                    signed.signer,
                    fresh_ids(),
                    now,
                    Body::Ack { of: control.id },
                    false,
                );
            }
            return Err(GroupError::Duplicate);
        }
        let result = match (&self.role, &control.body) {
            // After establishment the admin (possibly not the creator) hears leaves.
            (_, Body::Leave { epoch, last_seq }) => {
                let r = self.on_leave(signed.signer, *epoch, *last_seq);
                if r.is_ok() {
                    self.queue(
                        signed.signer,
                        fresh_ids(),
                        now,
                        Body::Ack { of: control.id },
                        false,
                    );
                }
                r
            }
            // An answer to our add round (the admin may be any member).
            (_, Body::Response(r)) if self.round.as_ref().is_some_and(|x| x.id == r.invite_id) => {
                self.on_round_response(signed.signer, control.id, r, raw, fresh_ids, now)
            }
            (Role::Creator, Body::Response(r)) => {
                self.on_response(signed.signer, control.id, r, raw, fresh_ids, now)
            }
            (_, Body::Ack { of }) => self.on_ack(signed.signer, *of, fresh_ids, now),
            (Role::Invitee, body) if signed.signer != self.inviter() => {
                let _ = body;
                Err(GroupError::NotFromCreator)
            }
            // An add round has no shared roster and no Welcome: the version that adds us does.
            (Role::Invitee, body @ (Body::Roster(_) | Body::Welcome(_)))
                if self.joining.is_some() =>
            {
                Err(GroupError::Illegal {
                    status: self.status,
                    event: body.kind(),
                })
            }
            (Role::Invitee, Body::Roster(r)) => self.on_roster(r, now),
            (Role::Invitee, Body::Welcome(w)) => self.on_welcome(control.id, w, fresh_ids, now),
            (Role::Invitee, Body::Closed(_)) => self.on_closed(),
            (_, body) => Err(GroupError::Illegal {
                status: self.status,
                event: body.kind(),
            }),
        };
        // Refused messages are remembered too: a re-sent copy is refused the same way, silently.
        // Not a refused Leave: it may have reached us before we learned we are the admin, and
        // its re-send must count then.
        if result.is_ok() || !matches!(control.body, Body::Leave { .. }) {
            self.seen.insert(control.id);
        }
        while self.seen.len() > MAX_SEEN {
            let first = *self.seen.iter().next().expect("non-empty");
            self.seen.remove(&first);
        }
        if result.is_ok() {
            self.updated_at = now;
        }
        result
    }

    fn on_response(
        &mut self,
        from: MemberKey,
        id: ControlId,
        response: &Response,
        raw: &[u8],
        fresh_ids: &mut dyn FnMut() -> ControlId,
        now: u64,
    ) -> Result<(), GroupError> {
        let current = *self.statuses.get(&from).ok_or(GroupError::NotInvited)?;
        if response.invite_id != self.invite_id {
            return Err(GroupError::BadResponse("for another invitation"));
        }
        if response.accept != response.bucket_pub.is_some()
            || response.accept != response.window_bucket_pub.is_some()
        {
            return Err(GroupError::BadResponse("bucket keys present iff accepting"));
        }
        if response.accept && !crate::identity::x25519_contributory(&response.x25519) {
            return Err(GroupError::BadResponse("weak X25519 key"));
        }
        // Acknowledge whatever we decide, so the invitee stops re-sending.
        self.queue(from, fresh_ids(), now, Body::Ack { of: id }, false);
        if matches!(current, InviteeStatus::Accepted | InviteeStatus::Rejected) {
            // First valid response wins.
            return Err(GroupError::AlreadyResponded);
        }
        if self.status != Status::Inviting {
            if response.accept {
                self.queue(
                    from,
                    fresh_ids(),
                    now,
                    Body::Closed(ClosedReason::TooLate),
                    false,
                );
            }
            return Err(GroupError::Late);
        }
        if response.responded_at > self.invite.expires_at
            || response.responded_at + CLOCK_SKEW_MS < self.invite.created_at
        {
            self.statuses.insert(from, InviteeStatus::Expired);
            self.publish_roster(fresh_ids, now);
            self.queue(
                from,
                fresh_ids(),
                now,
                Body::Closed(ClosedReason::TooLate),
                false,
            );
            return Err(GroupError::WindowClosed);
        }
        if response.list_hash != self.list_hash() {
            self.flag(Some(from), FlagKind::InvitationListDiffers, now);
        }
        let status = if let (true, Some(window)) = (response.accept, response.window_bucket_pub) {
            self.responses.insert(from, raw.to_vec());
            self.window_buckets.insert(from, window);
            InviteeStatus::Accepted
        } else {
            InviteeStatus::Rejected
        };
        self.statuses.insert(from, status);
        // The invitation obviously arrived: stop re-sending it.
        self.outbox
            .retain(|o| !(o.to == from && o.control.id == self.invite_id));
        self.publish_roster(fresh_ids, now);
        Ok(())
    }

    fn on_ack(
        &mut self,
        from: MemberKey,
        of: ControlId,
        fresh_ids: &mut dyn FnMut() -> ControlId,
        now: u64,
    ) -> Result<(), GroupError> {
        let before = self.outbox.len();
        self.outbox
            .retain(|o| !(o.to == from && o.control.id == of));
        if self.round_delivered(&from, &of) {
            return Ok(());
        }
        if self.role == Role::Creator
            && of == self.invite_id
            && self.statuses.get(&from) == Some(&InviteeStatus::NotDelivered)
        {
            self.statuses.insert(from, InviteeStatus::Delivered);
            if self.status == Status::Inviting {
                self.publish_roster(fresh_ids, now);
            }
            return Ok(());
        }
        if self.outbox.len() == before
            && !self.statuses.contains_key(&from)
            && from != self.inviter()
        {
            return Err(GroupError::NotInvited);
        }
        Ok(())
    }

    /// Creator: the new roster version goes to every invitee who has not dropped out.
    fn publish_roster(&mut self, fresh_ids: &mut dyn FnMut() -> ControlId, now: u64) {
        self.roster_version += 1;
        let roster = RosterUpdate {
            version: self.roster_version,
            statuses: self
                .invite
                .invitees
                .iter()
                .map(|p| {
                    let s = self.statuses.get(&p.id).copied();
                    (p.id, s.unwrap_or(InviteeStatus::NotDelivered))
                })
                .collect(),
            acceptances: Vec::new(),
        };
        // The signed acceptances (and the bucket keys in them) go only to those who accepted:
        // an invitee who never joins learns who answered what, not where members write.
        // Stored only after it verified as an acceptance, so every Accepted has one.
        let with_acceptances = RosterUpdate {
            acceptances: roster
                .statuses
                .iter()
                .filter(|(_, s)| *s == InviteeStatus::Accepted)
                .filter_map(|(k, _)| self.responses.get(k).cloned())
                .collect(),
            ..roster.clone()
        };
        // Superseded roster updates need not go out any more.
        self.outbox
            .retain(|o| !matches!(o.control.body, Body::Roster(_)) || o.sent);
        // Nobody who dropped out gets further versions.
        let targets: Vec<(MemberKey, InviteeStatus)> = self
            .statuses
            .iter()
            .filter(|(_, s)| !matches!(s, InviteeStatus::Rejected | InviteeStatus::Expired))
            .map(|(k, s)| (*k, *s))
            .collect();
        for (to, status) in targets {
            let body = if status == InviteeStatus::Accepted {
                with_acceptances.clone()
            } else {
                roster.clone()
            };
            self.queue(to, fresh_ids(), now, Body::Roster(body), false);
        }
    }

    fn on_roster(&mut self, roster: &RosterUpdate, now: u64) -> Result<(), GroupError> {
        if roster.version <= self.roster_version {
            return Err(GroupError::StaleRoster {
                got: roster.version,
                have: self.roster_version,
            });
        }
        if roster.statuses.len() != self.invite.invitees.len()
            || roster
                .statuses
                .iter()
                .zip(&self.invite.invitees)
                .any(|((k, _), p)| *k != p.id)
        {
            // The creator shows a different list than the invitation did.
            self.flag(Some(self.creator), FlagKind::InvitationListDiffers, now);
            return Err(GroupError::BadResponse("roster lists other invitees"));
        }
        // Every acceptance shown must be the invitee's own: that is where its window bucket key
        // comes from, so the creator cannot hand anyone's window bucket to someone else. (A
        // roster sent before the creator counted our acceptance carries none.)
        let accepted = roster
            .statuses
            .iter()
            .filter(|(_, s)| *s == InviteeStatus::Accepted);
        let mut windows = Vec::new();
        let mut mismatch = Vec::new();
        let ours = self.list_hash();
        for ((who, _), raw) in accepted.zip(&roster.acceptances) {
            let (_, r) = self.check_acceptance(who, raw)?;
            windows.push((*who, r.window_bucket_pub));
            if r.list_hash != ours {
                mismatch.push(*who);
            }
        }
        // Seen now, during the window, not only at establishment.
        for who in mismatch {
            self.flag(Some(who), FlagKind::InvitationListDiffers, now);
        }
        for (who, window) in windows {
            if let Some(window) = window {
                self.window_buckets.insert(who, window);
            }
        }
        self.roster_version = roster.version;
        for (k, s) in &roster.statuses {
            // Our own answer is known here first; the creator's copy may lag.
            if *k == self.me && self.my_response.is_some() {
                continue;
            }
            self.statuses.insert(*k, *s);
        }
        Ok(())
    }

    fn on_welcome(
        &mut self,
        id: ControlId,
        welcome: &Welcome,
        fresh_ids: &mut dyn FnMut() -> ControlId,
        now: u64,
    ) -> Result<(), GroupError> {
        // Establishment is epoch 1, always (a larger number would leave no room to count on).
        if welcome.epoch > 1 && self.epoch() == 0 {
            return Err(GroupError::BadResponse("establishment is epoch 1"));
        }
        if welcome.epoch <= self.epoch() {
            return Err(GroupError::StaleEpoch {
                got: welcome.epoch,
                have: self.epoch(),
            });
        }
        if self.status != Status::Accepted {
            return Err(match self.status {
                Status::Active => GroupError::StaleEpoch {
                    got: welcome.epoch,
                    have: self.epoch(),
                },
                _ => GroupError::NotAccepted,
            });
        }
        let mine = self.my_response_id.ok_or(GroupError::NotAccepted)?;
        let list_hash = self.list_hash();
        let mut found_me = false;
        let mut mismatch = Vec::new();
        if welcome.members[0].x25519 != self.invite.creator_x25519 {
            return Err(GroupError::BadResponse("the creator's X25519 key differs"));
        }
        let mut windows = Vec::new();
        for member in welcome.members.iter().skip(1) {
            let (response_id, r) = self.check_acceptance(&member.id, &member.response)?;
            if r.bucket_pub != Some(member.bucket_pub) {
                return Err(GroupError::BadResponse(
                    "bucket key differs from the member's",
                ));
            }
            if r.x25519 != member.x25519 {
                return Err(GroupError::BadResponse(
                    "X25519 key differs from the member's",
                ));
            }
            windows.extend(r.window_bucket_pub.map(|w| (member.id, w)));
            if member.id == self.me {
                if response_id != mine {
                    return Err(GroupError::BadResponse("not our response"));
                }
                found_me = true;
            }
            if r.list_hash != list_hash {
                mismatch.push(member.id);
            }
        }
        if !found_me {
            return Err(GroupError::NotInRoster);
        }
        for who in mismatch {
            self.flag(Some(who), FlagKind::InvitationListDiffers, now);
        }
        // Someone the creator's roster showed as accepted but left out of the group: either
        // the creator dropped an acceptor or showed us a roster it did not show them.
        let left_out: Vec<MemberKey> = self
            .statuses
            .iter()
            .filter(|(k, s)| {
                **s == InviteeStatus::Accepted
                    && **k != self.me
                    && !welcome.members.iter().any(|m| m.id == **k)
            })
            .map(|(k, _)| *k)
            .collect();
        for who in left_out {
            self.flag(Some(who), FlagKind::AcceptedMemberLeftOut, now);
        }
        self.window_buckets.extend(windows);
        self.begin(
            welcome.epoch,
            welcome.key.clone(),
            welcome.members.clone(),
            now,
        );
        self.status = Status::Active;
        for m in &welcome.members[1..] {
            self.statuses.insert(m.id, InviteeStatus::Accepted);
        }
        for (k, s) in self.statuses.iter_mut() {
            if !welcome.members.iter().any(|m| m.id == *k) && *s != InviteeStatus::Rejected {
                *s = InviteeStatus::Expired;
            }
        }
        self.outbox.retain(|o| !o.until_ack);
        self.queue(self.creator, fresh_ids(), now, Body::Ack { of: id }, false);
        Ok(())
    }

    /// Checks that `raw` is `who`'s own signed acceptance of this invitation, answered inside
    /// the window, with the keys an acceptance must carry. Returns its id and the response.
    fn check_acceptance(
        &self,
        who: &MemberKey,
        raw: &[u8],
    ) -> Result<(ControlId, Response), GroupError> {
        let signed =
            SignedControl::decode(raw).map_err(|_| GroupError::BadResponse("signature"))?;
        if signed.signer != *who || signed.control.group_id != self.group_id {
            return Err(GroupError::BadResponse("not the member's own"));
        }
        let Body::Response(r) = signed.control.body else {
            return Err(GroupError::BadResponse("not a response"));
        };
        if !r.accept || r.invite_id != self.invite_id {
            return Err(GroupError::BadResponse(
                "not an acceptance of this invitation",
            ));
        }
        // The creator may count only answers given inside the window (PROTOCOL.md §4.3);
        // a key handed to someone who "answered" outside it is refused here.
        if r.responded_at > self.invite.expires_at
            || r.responded_at + CLOCK_SKEW_MS < self.invite.created_at
        {
            return Err(GroupError::BadResponse("answered outside the window"));
        }
        if !self.statuses.contains_key(who) {
            return Err(GroupError::BadResponse("member was never invited"));
        }
        if r.bucket_pub.is_none() || r.window_bucket_pub.is_none() {
            return Err(GroupError::BadResponse("an acceptance without bucket keys"));
        }
        if !crate::identity::x25519_contributory(&r.x25519) {
            return Err(GroupError::BadResponse("weak X25519 key"));
        }
        Ok((signed.control.id, r))
    }

    /// Records a split-view sign once per (whom, what) while it is not dismissed.
    pub fn flag(&mut self, who: Option<MemberKey>, kind: FlagKind, now: u64) {
        if self
            .flags
            .iter()
            .any(|f| f.who == who && f.kind == kind && !f.dismissed)
        {
            return;
        }
        self.flags.push(Flag {
            who,
            kind,
            at: now,
            dismissed: false,
        });
    }

    /// Whether anything is flagged and not yet dismissed.
    pub fn flagged(&self) -> bool {
        self.flags.iter().any(|f| !f.dismissed)
    }

    fn on_closed(&mut self) -> Result<(), GroupError> {
        match self.status {
            Status::Invited | Status::Accepted => {
                self.status = Status::Expired;
                self.outbox.retain(|o| !o.until_ack);
                self.invitation_ended();
                Ok(())
            }
            status => Err(GroupError::Illegal {
                status,
                event: "closed",
            }),
        }
    }

    /// Time passed: an unanswered invitation expires; an answer is no longer re-sent.
    pub fn tick(&mut self, now: u64) -> bool {
        if self.role != Role::Invitee || !self.window_over(now) {
            return false;
        }
        let before = (self.status, self.outbox.len(), self.window_passed);
        self.window_passed = true;
        if self.status == Status::Invited {
            self.status = Status::Expired;
            self.statuses.insert(self.me, InviteeStatus::Expired);
        }
        // Accepted into a running group, but nothing came of it long after the window (the
        // inviter never wrote the version): it expires, so a real invitation can arrive.
        if self.joining.is_some()
            && self.status == Status::Accepted
            && now > self.invite.expires_at.saturating_add(JOIN_GRACE_MS)
        {
            self.status = Status::Expired;
        }
        self.outbox.retain(|o| !o.until_ack);
        let invited_back = self.joining.as_ref().is_some_and(|j| j.previous.is_some());
        self.invitation_ended();
        let restored = invited_back && self.joining.as_ref().is_none_or(|j| j.previous.is_none());
        let changed = restored || before != (self.status, self.outbox.len(), self.window_passed);
        if changed {
            self.updated_at = now;
        }
        changed
    }

    /// Creator, step 6: makes epoch 1 with `key` for the creator and every acceptor.
    pub fn establish(
        &mut self,
        key: GroupKey,
        fresh_ids: &mut dyn FnMut() -> ControlId,
        now: u64,
    ) -> Result<(), GroupError> {
        if self.role != Role::Creator {
            return Err(GroupError::NotCreator);
        }
        if self.status != Status::Inviting {
            return Err(GroupError::Illegal {
                status: self.status,
                event: "establishing",
            });
        }
        if !self.window_over(now) && !self.all_accepted() {
            return Err(GroupError::WindowOpen);
        }
        for s in self.statuses.values_mut() {
            if matches!(s, InviteeStatus::NotDelivered | InviteeStatus::Delivered) {
                *s = InviteeStatus::Expired;
            }
        }
        // The window is over: invitations are not re-sent any more.
        self.outbox.retain(|o| !o.until_ack);
        let mut members = vec![Member {
            id: self.me,
            // The name everyone saw on the invitation.
            name: self.invite.creator_name.clone(),
            bucket_pub: self
                .bucket_seed
                .as_ref()
                .map(bucket_public)
                .unwrap_or([0; 32]),
            x25519: self.invite.creator_x25519,
            response: Vec::new(),
        }];
        for p in &self.invite.invitees {
            let Some(raw) = self.responses.get(&p.id) else {
                continue;
            };
            // Stored only after it verified as this invitee's acceptance, so this holds — but
            // for answers stored by 0.1 (below).
            let response = SignedControl::decode(raw)
                .ok()
                .and_then(|s| match s.control.body {
                    Body::Response(r) => Some(r),
                    _ => None,
                });
            if let Some((bucket_pub, x25519)) =
                response.and_then(|r| Some((r.bucket_pub?, r.x25519)))
            {
                members.push(Member {
                    id: p.id,
                    name: p.name.clone(),
                    bucket_pub,
                    x25519,
                    response: raw.clone(),
                });
            } else {
                // An answer kept in the 0.1 wire format (a window open across the upgrade):
                // it cannot be relayed in a Welcome others would check. Told, not left waiting.
                self.statuses.insert(p.id, InviteeStatus::Expired);
            }
        }
        self.publish_roster(fresh_ids, now);
        let losers: Vec<MemberKey> = self
            .statuses
            .iter()
            .filter(|(_, s)| **s != InviteeStatus::Accepted)
            .map(|(k, _)| *k)
            .collect();
        for to in losers {
            self.queue(
                to,
                fresh_ids(),
                now,
                Body::Closed(ClosedReason::NotAccepted),
                false,
            );
        }
        self.updated_at = now;
        if members.len() == 1 {
            self.status = Status::Expired;
            return Ok(());
        }
        let welcome = Welcome {
            epoch: 1,
            key: key.clone(),
            members: members.clone(),
        };
        for m in &members[1..] {
            self.queue(m.id, fresh_ids(), now, Body::Welcome(welcome.clone()), true);
        }
        self.begin(1, key, members, now);
        self.status = Status::Active;
        Ok(())
    }

    /// Epoch 1 begins (establishment): version 1 of the chain, with the creator as admin.
    fn begin(&mut self, epoch: u32, key: GroupKey, members: Vec<Member>, now: u64) {
        self.epochs.push(EpochState {
            epoch,
            key,
            members,
            boundaries: BTreeMap::new(),
            ended_at: None,
            started_at: now,
        });
        self.chain = Some(ChainPos {
            version: 1,
            hash: genesis_hash(&self.group_id, &self.creator, &self.roster_hash()),
            admin: self.creator,
        });
    }

    /// The epoch we write in: the newest established one (0 during the window).
    pub fn epoch(&self) -> u32 {
        self.epochs.last().map_or(0, |e| e.epoch)
    }

    /// The newest established epoch, if any.
    pub fn current(&self) -> Option<&EpochState> {
        self.epochs.last()
    }

    /// The current epoch's members (none during the window).
    pub fn members(&self) -> &[Member] {
        self.current().map_or(&[], |e| e.members.as_slice())
    }

    /// The admin now: the creator until it hands over.
    pub fn admin(&self) -> MemberKey {
        self.chain.as_ref().map_or(self.creator, |c| c.admin)
    }

    /// Hash of this epoch's roster (who holds the key), carried in every group envelope so
    /// members who see different rosters notice (PROTOCOL.md §5).
    pub fn roster_hash(&self) -> [u8; 32] {
        roster_hash(&self.group_id, self.epoch(), self.members())
    }

    /// Messages never sent yet; marks them sent (those not awaiting an ack leave the outbox).
    pub fn take_unsent(&mut self) -> Vec<Outgoing> {
        let out: Vec<Outgoing> = self.outbox.iter().filter(|o| !o.sent).cloned().collect();
        self.outbox.retain(|o| o.until_ack);
        for o in &mut self.outbox {
            o.sent = true;
        }
        out
    }

    /// Messages still awaiting an acknowledgement (re-sent on the re-publish interval).
    pub fn unacked(&self) -> Vec<Outgoing> {
        self.outbox
            .iter()
            .filter(|o| o.until_ack && o.sent)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
