//! Adding members to an established group (PROTOCOL.md §4.7 Add), the pure part: an invitation
//! round of the admin's, with its own window, into the running group.
//!
//! | who      | input                                   | result                                   |
//! |----------|-----------------------------------------|------------------------------------------|
//! | admin    | "add these contacts"                    | a round: `Add` to each, until answered   |
//! | invitee  | `Add` from a trusted contact            | an invitation (members listed, countdown)|
//! | invitee  | accept / reject                         | signed `Response` to the admin           |
//! | admin    | a response of the round                 | counted (first valid answer wins)        |
//! | admin    | window over, or everyone answered       | `Closed` to the others; if anyone accepted, the next version `Added` |
//! | invitee  | the version that adds it                | active from that epoch on, no older key  |
//! | admin    | hands over or ends the group mid-round  | the round is closed for everyone         |
//!
//! Every member checks each joiner's own signed acceptance in the version
//! ([`super::info::check_acceptance`]): the admin cannot add anyone who did not accept, nor with
//! keys of its choosing. One round at a time; members and invitees together stay within
//! `MAX_MEMBERS`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::control::{
    group_id_for, AddInvite, Body, ClosedReason, ControlId, GroupKey, InviteeStatus, Member,
    MemberKey, Person, Response, SignedControl,
};
use super::info::{check_join, ChainError, Change, JoinPoint, Next};
use super::machine::{
    bucket_public, ChainPos, EpochState, Group, GroupError, Role, Status, CLOCK_SKEW_MS,
};
use super::membership::{Applied, ChangeNote};
use crate::config::MAX_MEMBERS;
use crate::identity::Identity;

/// The admin's open add round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddRound {
    pub id: ControlId,
    pub add: AddInvite,
    pub statuses: BTreeMap<MemberKey, InviteeStatus>,
    /// Each acceptor's signed answer (an encoded [`SignedControl`]): its roster entry carries it.
    pub responses: BTreeMap<MemberKey, Vec<u8>>,
    /// The window is over (or everyone answered): the acceptors are being written in.
    pub closed: bool,
}

/// An invitee's add invitation: who asked, and what it named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joining {
    pub admin: MemberKey,
    pub add: AddInvite,
    /// Invited back: our copy of the group as it was. Untouched until the version that adds us
    /// verifies (then what we held carries over); back as it was if nothing comes of it.
    pub previous: Option<Box<Group>>,
}

impl Group {
    /// Who we answer to and hear from before we are a member: the admin who invited us into a
    /// running group, else the creator.
    pub fn inviter(&self) -> MemberKey {
        self.joining.as_ref().map_or(self.creator, |j| j.admin)
    }

    /// Admin: opens an add round for `invitees` (trusted contacts, checked by the caller) with a
    /// window of `window_ms`; the invitation goes to each until it answers.
    pub fn open_round(
        &mut self,
        mut invitees: Vec<Person>,
        admin_name: &str,
        id: ControlId,
        window_ms: u64,
        now: u64,
    ) -> Result<(), GroupError> {
        if !self.is_admin() {
            return Err(GroupError::NotAdmin);
        }
        if !self.has_member_keys() {
            return Err(GroupError::NoMemberKeys);
        }
        if self.round.is_some() {
            return Err(GroupError::RoundOpen);
        }
        invitees.sort_by_key(|p| p.id);
        invitees.dedup_by_key(|p| p.id);
        if invitees.iter().any(|p| self.is_member(&p.id)) {
            return Err(GroupError::AlreadyMember);
        }
        if invitees.is_empty() || self.members().len() + invitees.len() > MAX_MEMBERS {
            return Err(GroupError::TooManyMembers);
        }
        let chain = self.chain.clone().ok_or(GroupError::NotAdmin)?;
        let seed = self.bucket_seed.as_ref().ok_or(GroupError::NotAdmin)?;
        let add = AddInvite {
            origin: self.origin(),
            creator: self.creator,
            name: self.invite.name.clone(),
            admin_name: admin_name.to_string(),
            created_at: now,
            expires_at: now.saturating_add(window_ms),
            invitees,
            members: self
                .members()
                .iter()
                .map(|m| Person {
                    id: m.id,
                    name: m.name.clone(),
                })
                .collect(),
            chain_pub: bucket_public(seed),
            version: chain.version,
            head_hash: chain.hash,
        };
        for p in &add.invitees {
            self.queue(p.id, id, now, Body::Add(add.clone()), true);
        }
        self.round = Some(AddRound {
            id,
            statuses: add
                .invitees
                .iter()
                .map(|p| (p.id, InviteeStatus::NotDelivered))
                .collect(),
            add,
            responses: BTreeMap::new(),
            closed: false,
        });
        self.updated_at = now;
        Ok(())
    }

    /// The group's first invitation id: with the creator it proves the group id.
    pub(super) fn origin(&self) -> ControlId {
        self.joining
            .as_ref()
            .map_or(self.invite_id, |j| j.add.origin)
    }

    /// Admin: an answer to our add round (the caller checked it is signed by `from`).
    pub(super) fn on_round_response(
        &mut self,
        from: MemberKey,
        id: ControlId,
        r: &Response,
        raw: &[u8],
        fresh_ids: &mut dyn FnMut() -> ControlId,
        now: u64,
    ) -> Result<(), GroupError> {
        let group_id = self.group_id;
        let Some(round) = self.round.as_mut() else {
            return Err(GroupError::NotInvited);
        };
        let current = *round.statuses.get(&from).ok_or(GroupError::NotInvited)?;
        if r.accept != r.bucket_pub.is_some() || r.window_bucket_pub.is_some() {
            return Err(GroupError::BadResponse(
                "a bucket key iff accepting, no window",
            ));
        }
        if r.accept && !crate::identity::x25519_contributory(&r.x25519) {
            return Err(GroupError::BadResponse("weak X25519 key"));
        }
        if r.list_hash != round.add.hash(&group_id) {
            return Err(GroupError::BadResponse("an answer to another invitation"));
        }
        let late = round.closed
            || r.responded_at > round.add.expires_at
            || r.responded_at.saturating_add(CLOCK_SKEW_MS) < round.add.created_at;
        let answered = matches!(current, InviteeStatus::Accepted | InviteeStatus::Rejected);
        let round_id = round.id;
        if !answered && !late {
            round.statuses.insert(
                from,
                if r.accept {
                    InviteeStatus::Accepted
                } else {
                    InviteeStatus::Rejected
                },
            );
            if r.accept {
                round.responses.insert(from, raw.to_vec());
            }
        }
        // Acknowledged whatever we decide, so the invitee stops re-sending; the invitation
        // obviously arrived.
        self.queue(from, fresh_ids(), now, Body::Ack { of: id }, false);
        self.outbox
            .retain(|o| !(o.to == from && o.control.id == round_id));
        if answered {
            return Err(GroupError::AlreadyResponded);
        }
        if late {
            if r.accept {
                let body = Body::Closed(ClosedReason::TooLate);
                self.queue(from, fresh_ids(), now, body, false);
            }
            return Err(GroupError::Late);
        }
        Ok(())
    }

    /// Admin: our add invitation reached `from`.
    pub(super) fn round_delivered(&mut self, from: &MemberKey, of: &ControlId) -> bool {
        let Some(round) = self.round.as_mut().filter(|r| r.id == *of) else {
            return false;
        };
        if let Some(s @ InviteeStatus::NotDelivered) = round.statuses.get_mut(from) {
            *s = InviteeStatus::Delivered;
        }
        true
    }

    /// Admin: the round's window is over, or everyone answered.
    pub fn round_due(&self, now: u64) -> bool {
        self.round.as_ref().is_some_and(|r| {
            !r.closed
                && (now > r.add.expires_at
                    || r.statuses
                        .values()
                        .all(|s| matches!(s, InviteeStatus::Accepted | InviteeStatus::Rejected)))
        })
    }

    /// Admin: closes a due round. Those who did not accept are told; if anyone accepted, adding
    /// them becomes the pending change (written like any other, crash-safe), else the round
    /// ends here. Returns whether anything changed.
    pub fn finish_round(&mut self, fresh_ids: &mut dyn FnMut() -> ControlId, now: u64) -> bool {
        if !self.round_due(now) {
            return false;
        }
        let Some(round) = self.round.as_mut() else {
            return false;
        };
        round.closed = true;
        let id = round.id;
        let accepted: Vec<MemberKey> = round.responses.keys().copied().collect();
        let others: Vec<MemberKey> = round
            .statuses
            .iter_mut()
            .filter(|(k, _)| !accepted.contains(k))
            .map(|(k, s)| {
                if *s != InviteeStatus::Rejected {
                    *s = InviteeStatus::Expired;
                }
                *k
            })
            .collect();
        self.outbox.retain(|o| o.control.id != id);
        for to in others {
            let body = Body::Closed(ClosedReason::NotAccepted);
            self.queue(to, fresh_ids(), now, body, false);
        }
        if accepted.is_empty() {
            self.round = None;
        } else {
            self.life.pending_change = Some(Change::Added {
                who: accepted,
                round: id,
            });
        }
        self.updated_at = now;
        true
    }

    /// Admin: the roster entries of the round's acceptors, each from its own signed answer.
    pub(super) fn joiners(
        &self,
        who: &[MemberKey],
        round: &ControlId,
    ) -> Result<Vec<Member>, GroupError> {
        let r = self
            .round
            .as_ref()
            .filter(|r| r.id == *round && r.closed)
            .ok_or(GroupError::Illegal {
                status: self.status,
                event: "adding without an invitation round",
            })?;
        let mut out = Vec::new();
        for id in who {
            let raw = r.responses.get(id).ok_or(GroupError::NotInvited)?;
            let signed =
                SignedControl::decode(raw).map_err(|_| GroupError::BadResponse("signature"))?;
            let (Body::Response(resp), Some(p)) = (
                &signed.control.body,
                r.add.invitees.iter().find(|p| p.id == *id),
            ) else {
                return Err(GroupError::BadResponse("not an answer"));
            };
            let bucket_pub = resp.bucket_pub.ok_or(GroupError::NotAccepted)?;
            out.push(Member {
                id: *id,
                name: p.name.clone(),
                bucket_pub,
                x25519: resp.x25519,
                response: raw.clone(),
            });
        }
        if self.members().len() + out.len() > MAX_MEMBERS {
            return Err(GroupError::TooManyMembers);
        }
        Ok(out)
    }

    /// Admin, after a version: the round is done (its acceptors are in), or void (we are no
    /// longer the admin, or the group ended): then everyone still waiting is told.
    pub(super) fn after_version(&mut self, change: &Change, now: u64) {
        let Some(round) = &self.round else {
            return;
        };
        if matches!(change, Change::Added { round: r, .. } if *r == round.id) {
            self.round = None;
            return;
        }
        if self.status == Status::Active && self.admin() == self.me {
            return;
        }
        self.void_round(now);
    }

    /// Admin: the round ends without adding anyone (we handed over, the group ended, or its
    /// change could not be written): everyone invited is told.
    pub fn void_round(&mut self, now: u64) {
        let Some(round) = self.round.take() else {
            return;
        };
        if matches!(&self.life.pending_change, Some(Change::Added { round: r, .. }) if *r == round.id)
        {
            self.life.pending_change = None;
        }
        self.outbox.retain(|o| o.control.id != round.id);
        for to in round.statuses.keys() {
            let body = Body::Closed(ClosedReason::NotAccepted);
            self.queue(*to, super::control::random_id(), now, body, false);
        }
    }

    /// Invitee: a verified add invitation from `signed.signer` (a trusted, unblocked contact,
    /// checked by the caller) into a group we are not in.
    pub fn from_add(
        me: MemberKey,
        signed: &SignedControl,
        ack_id: ControlId,
        now: u64,
    ) -> Result<Group, GroupError> {
        let Body::Add(add) = &signed.control.body else {
            return Err(GroupError::Illegal {
                status: Status::Invited,
                event: "a non-invite as the first message",
            });
        };
        if !add.invitees.iter().any(|p| p.id == me) {
            return Err(GroupError::NotForUs);
        }
        let group_id = signed.control.group_id;
        // The group id must be the one its creator's first invitation made: nobody can invite
        // into a group id that is not theirs to name (PROTOCOL.md §4).
        if group_id != group_id_for(&add.creator, &add.origin) {
            return Err(GroupError::IdNotBound);
        }
        let invite = super::control::Invite {
            name: add.name.clone(),
            creator_name: add.admin_name.clone(),
            created_at: add.created_at,
            expires_at: add.expires_at,
            invitees: add.invitees.clone(),
            admin_pub: add.chain_pub,
            // No window chat in an add round: this key is never used, and nobody else has it.
            temp_key: GroupKey::random(),
            creator_x25519: [0; 32],
            creator_window_bucket: [0; 32],
        };
        let status = if now > add.expires_at {
            Status::Expired
        } else {
            Status::Invited
        };
        let mut group = Group {
            group_id,
            role: Role::Invitee,
            me,
            creator: add.creator,
            invite_id: signed.control.id,
            statuses: add
                .invitees
                .iter()
                .map(|p| (p.id, InviteeStatus::NotDelivered))
                .collect(),
            invite,
            status,
            roster_version: 0,
            responses: BTreeMap::new(),
            my_response: None,
            my_response_id: None,
            bucket_seed: None,
            epochs: Vec::new(),
            chain: None,
            life: Default::default(),
            seen: [signed.control.id].into(),
            outbox: Vec::new(),
            window_passed: status == Status::Expired,
            updated_at: now,
            flags: Vec::new(),
            window_seed: None,
            window_buckets: BTreeMap::new(),
            round: None,
            joining: Some(Joining {
                admin: signed.signer,
                add: add.clone(),
                previous: None,
            }),
        };
        // "It arrived": the admin shows the invitation as delivered.
        group.queue(
            signed.signer,
            ack_id,
            now,
            Body::Ack {
                of: signed.control.id,
            },
            false,
        );
        Ok(group)
    }

    /// Invited back into a group we were in: our copy is kept aside, as it was, until the
    /// version that adds us verifies ([`Group::join`]) — a rejected, expired or closed invitation
    /// gives it back unchanged ([`Group::invitation_ended`]).
    pub fn keep_previous(&mut self, mut old: Group) {
        // Never nested: if our copy is itself an invitation back, the copy it keeps is ours.
        let old = match old.joining.as_mut().and_then(|j| j.previous.take()) {
            Some(kept) => *kept,
            None => old,
        };
        if let Some(j) = self.joining.as_mut() {
            j.previous = Some(Box::new(old));
        }
        // Already over when it arrived: nothing to answer, our copy as it was.
        self.invitation_ended();
    }

    /// An invitation back ended without adding us: our copy as it was.
    pub(super) fn invitation_ended(&mut self) {
        if !matches!(self.status, Status::Rejected | Status::Expired) {
            return;
        }
        if let Some(previous) = self.joining.as_mut().and_then(|j| j.previous.take()) {
            // What is still to go out (our answer, an acknowledgement) goes with it, and the
            // invitation is remembered as seen, so a copy sent again does not ask once more.
            let round = self.invite_id;
            let outbox = std::mem::take(&mut self.outbox);
            *self = *previous;
            self.outbox.extend(outbox);
            self.seen.insert(round);
        }
    }

    /// Joined again: what we held of the group stays — the epochs we were in
    /// (ended: their keys only read what was written in them, including what we had not
    /// fetched yet when we went), the change notes and flags. Nothing of the epochs between.
    pub fn carry_over(&mut self, old: Group, now: u64) {
        // Not the epochs after the one we left in (followed only until we were written out).
        let left_in = old.life.left_in;
        self.epochs = old
            .epochs
            .into_iter()
            .filter(|e| left_in.is_none_or(|l| e.epoch <= l))
            .collect();
        for e in &mut self.epochs {
            e.ended_at.get_or_insert(now);
        }
        self.life.changes = old.life.changes;
        self.flags = old.flags;
    }

    /// Whether an add invitation may replace our copy of this group: we are out of it (left or
    /// removed — being added back is an invitation like any other) or never got in.
    pub fn may_rejoin(&self) -> bool {
        match self.status {
            Status::Left | Status::Removed => !self.follows_chain(),
            Status::Rejected | Status::Expired => true,
            _ => false,
        }
    }

    /// Whether `inviter` may invite us back into this copy: someone we knew in it — the
    /// creator, or a member of the last epoch we held (a stranger who merely knows the group's
    /// id cannot replace what we hold).
    pub fn may_invite_back(&self, inviter: &MemberKey) -> bool {
        *inviter == self.creator
            || self.joining.as_ref().is_some_and(|j| j.admin == *inviter)
            || self.epochs.is_empty()
            || self
                .epochs
                .last()
                .is_some_and(|e| e.members.iter().any(|m| m.id == *inviter))
    }

    /// Where we stand as someone who accepted an add round, if we do.
    pub fn join_point(&self) -> Option<JoinPoint> {
        let j = self.joining.as_ref()?;
        if self.status != Status::Accepted {
            return None;
        }
        Some(JoinPoint {
            group_id: self.group_id,
            creator: self.creator,
            // Above every epoch we hold, kept aside ones included (invited back).
            min_epoch: self
                .epochs
                .iter()
                .chain(j.previous.iter().flat_map(|p| p.epochs.iter()))
                .map(|e| e.epoch.saturating_add(1))
                .max()
                .unwrap_or(0),
            admin: j.admin,
            chain_pub: j.add.chain_pub,
            version: j.add.version,
            round: self.invite_id,
            bucket_pub: bucket_public(self.bucket_seed.as_ref()?),
        })
    }

    /// Someone who accepted an add round: a version pushed or found after the round opened.
    /// The one that adds us makes us a member from its epoch on; others are passed over.
    pub(super) fn join(
        &mut self,
        me: &Identity,
        bytes: &[u8],
        now: u64,
    ) -> Result<Applied, ChainError> {
        let Some(point) = self.join_point() else {
            return Ok(Applied::Nothing);
        };
        let (info, key, hash) = match check_join(&point, me, bytes)? {
            Next::Member { info, key, hash } => (info, key, hash),
            Next::Excluded { .. } => return Ok(Applied::Nothing),
        };
        if let Some(previous) = self.joining.as_mut().and_then(|j| j.previous.take()) {
            self.carry_over(*previous, now);
        }
        self.epochs.push(EpochState {
            epoch: info.epoch,
            key,
            members: info.members.clone(),
            boundaries: BTreeMap::new(),
            started_at: now,
            ended_at: None,
        });
        self.chain = Some(ChainPos {
            version: info.version,
            hash,
            admin: info.admin,
        });
        self.life.chain_records.push((info.version, bytes.to_vec()));
        self.status = Status::Active;
        self.statuses.insert(self.me, InviteeStatus::Accepted);
        self.outbox.retain(|o| !o.until_ack);
        let names = info
            .members
            .iter()
            .map(|m| (m.id, m.name.clone()))
            .collect();
        self.life.changes.push(ChangeNote {
            version: info.version,
            epoch: info.epoch,
            by: point.admin,
            change: info.change.clone(),
            names,
            at: now,
        });
        self.updated_at = now;
        Ok(Applied::Advanced)
    }
}

#[cfg(test)]
#[path = "add_round_tests.rs"]
mod tests;
