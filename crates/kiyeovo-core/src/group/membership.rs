//! Membership after establishment (PROTOCOL.md §4.7–4.9), the pure part: which changes the admin
//! may make, what version of the group-info chain each one becomes, and what a member's state
//! turns into when a version arrives. Signing, sealing and the DHT are the service's
//! ([`super::info::write`] and [`super::info::check_next`]).
//!
//! | who    | input                              | result                                        |
//! |--------|------------------------------------|-----------------------------------------------|
//! | admin  | rotate / remove / hand over / disband | the next [`GroupInfo`] with a new epoch key |
//! | admin  | a member's `Leave`                 | remembered; the next version drops it         |
//! | member | leave                              | `Left` at once; `Leave` queued to the admin   |
//! | anyone | the next version, with a key for us| the new epoch (old ones stay readable)        |
//! | anyone | the next version without a key for us | `Removed` (or stays `Left`)               |
//! | anyone | a version with `Disbanded`         | `Disbanded`: history read-only                |
//!
//! An admin cannot leave without handing over first (the UI offers disbanding instead), cannot
//! remove itself and cannot hand over to a non-member; nobody but the admin writes a version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::control::{Body, ControlId, GroupKey, MemberKey};
use super::info::{
    check_next, is_fork, version_hash, ChainError, Change, GroupInfo, Head, Next, MAX_INFO_BYTES,
};
use super::machine::{ChainPos, EpochState, FlagKind, Group, GroupError, Status};
use crate::identity::Identity;
use crate::records::SignedRecord;

/// How many group-info records a member keeps (and re-publishes): a member offline across more
/// changes than this, longer than the DHT keeps records, cannot walk the chain and is told so.
pub const KEPT_RECORDS: usize = 16;
/// How far beyond what the admin holds of a leaver its own reported last seq may reach (a
/// bucket's worth: what it wrote that did not reach the admin yet).
pub const LEAVE_SLACK: u64 = 100;

/// What applying one record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A new epoch (or the end of the group) for us.
    Advanced,
    /// We are out.
    Excluded,
    /// Nothing new (a copy of what we hold, or we are out already).
    Nothing,
}

/// The chain hash of an encoded record (over its version and payload).
pub fn record_hash(record: &[u8]) -> Option<[u8; 32]> {
    let r = SignedRecord::decode(record, MAX_INFO_BYTES).ok()?;
    Some(version_hash(r.version, &r.payload))
}

/// A membership change as the conversation shows it ("Ana removed Dan").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeNote {
    pub version: u64,
    pub epoch: u32,
    /// The admin who wrote it.
    pub by: MemberKey,
    pub change: Change,
    /// Names as the roster had them, for members no longer in it.
    pub names: Vec<(MemberKey, String)>,
    pub at: u64,
}

impl Group {
    /// The head of our chain, as [`super::info::check_next`] needs it.
    pub fn head(&self) -> Option<Head> {
        let chain = self.chain.as_ref()?;
        let current = self.current()?;
        let admin = current.members.iter().find(|m| m.id == chain.admin)?;
        Some(Head {
            group_id: self.group_id,
            creator: self.creator,
            version: chain.version,
            hash: chain.hash,
            admin: chain.admin,
            chain_pub: admin.bucket_pub,
            epoch: current.epoch,
            members: current.members.clone(),
            rounds: [self.invite_id, self.origin()]
                .into_iter()
                .chain(self.life.changes.iter().filter_map(|c| match &c.change {
                    Change::Added { round, .. } => Some(*round),
                    _ => None,
                }))
                .collect(),
        })
    }

    /// A record offered as our next version (pushed live, or read from the DHT), checked by
    /// [`check_next`] with our identity's X25519 key and applied. A second, different version
    /// of one we hold is flagged as a fork and refused.
    pub fn apply(&mut self, me: &Identity, bytes: &[u8], now: u64) -> Result<Applied, ChainError> {
        let Some(head) = self.head() else {
            // Not a member yet: the version that adds us, if we accepted an add round.
            return self.join(me, bytes, now);
        };
        if !self.follows_chain() {
            return Ok(Applied::Nothing);
        }
        match check_next(&head, me, bytes) {
            Ok(Next::Member { info, key, hash }) => {
                self.advance(&info, key, hash, bytes.to_vec(), now);
                Ok(Applied::Advanced)
            }
            Ok(Next::Excluded { version, hash }) => {
                self.excluded(version, hash, bytes.to_vec(), now);
                Ok(Applied::Excluded)
            }
            // Signed with the admin's chain key (checked before these can occur), yet not a
            // version we can take: the admin shows us something the rest may not see.
            Err(
                e @ (ChainError::Fork { .. } | ChainError::Invalid(_) | ChainError::Undecryptable),
            ) => {
                let admin = self.admin();
                self.flag(Some(admin), FlagKind::ChainFork, now);
                Err(e)
            }
            Err(ChainError::Stale { got, .. }) => {
                if self.is_fork_of_ours(got, bytes) {
                    let admin = self.admin();
                    self.flag(Some(admin), FlagKind::ChainFork, now);
                    return Err(ChainError::Fork { version: got });
                }
                Ok(Applied::Nothing)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `bytes` is a validly signed version `version` under the chain key of the one we
    /// hold, with other content: that admin wrote two versions `version`.
    fn is_fork_of_ours(&self, version: u64, bytes: &[u8]) -> bool {
        let Some((_, ours)) = self.life.chain_records.iter().find(|(v, _)| *v == version) else {
            return false;
        };
        let Ok(r) = SignedRecord::decode(ours, MAX_INFO_BYTES) else {
            return false;
        };
        is_fork(
            &r.public_key,
            version,
            &version_hash(version, &r.payload),
            bytes,
        )
    }

    /// Whether we still follow the chain: as a member, or having left until our Leave is
    /// written (we may meanwhile be made admin and must pass the group on).
    pub fn follows_chain(&self) -> bool {
        match self.status {
            Status::Active => true,
            Status::Left => {
                self.admin() == self.me
                    || self
                        .outbox
                        .iter()
                        .any(|o| matches!(o.control.body, Body::Leave { .. }))
            }
            _ => false,
        }
    }

    /// Members gone from the group (or, once it ended, everyone) who have no boundary yet in
    /// an earlier epoch they were in: `(epoch index, member)`. The service gives each its last
    /// seq as held here, so a removed member cannot go on writing in any epoch it still has a
    /// key for (the version that removed it bounds only the epoch just ended).
    pub fn unbounded_departed(&self) -> Vec<(usize, MemberKey)> {
        let last = self.epochs.len().saturating_sub(1);
        let staying = |k: &MemberKey| self.status != Status::Disbanded && self.is_member(k);
        let mut out = Vec::new();
        for (i, e) in self.epochs.iter().enumerate() {
            let ended = i < last || self.status == Status::Disbanded;
            if !ended {
                continue;
            }
            for m in &e.members {
                if !staying(&m.id) && !e.boundaries.contains_key(&m.id) {
                    out.push((i, m.id));
                }
            }
        }
        out
    }

    /// Whether every member's X25519 key can be sealed to (not so in a group made before
    /// protocol v2, whose roster knows no keys).
    pub fn has_member_keys(&self) -> bool {
        self.members()
            .iter()
            .all(|m| crate::identity::x25519_contributory(&m.x25519))
    }

    /// Whether we are the admin of an active group.
    pub fn is_admin(&self) -> bool {
        self.status == Status::Active && self.admin() == self.me
    }

    fn require_admin(&self, change: &Change) -> Result<(), GroupError> {
        // A member who left and was then made admin may only pass the group on (or end it).
        let handing_back =
            self.status == Status::Left && matches!(change, Change::AdminTo(_) | Change::Disbanded);
        if self.status != Status::Active && !handing_back {
            return Err(GroupError::Illegal {
                status: self.status,
                event: "changing the membership",
            });
        }
        if self.admin() != self.me {
            return Err(GroupError::NotAdmin);
        }
        Ok(())
    }

    /// Admin: the next version for `change`, with the boundaries of members who are gone.
    /// `last_seqs` are the last seqs we hold of each member in the current epoch (the boundary
    /// of a removed member; a leaver's own report wins).
    pub fn next_info(
        &self,
        change: Change,
        last_seqs: &BTreeMap<MemberKey, u64>,
        now: u64,
    ) -> Result<GroupInfo, GroupError> {
        self.require_admin(&change)?;
        let chain = self.chain.as_ref().ok_or(GroupError::NotAdmin)?;
        // A group from before protocol v2 knows no X25519 keys (all zeros): a key sealed to one
        // would open for anyone. Such a group keeps its epoch-1 key; to change it, re-create it.
        if !self.has_member_keys() {
            return Err(GroupError::NoMemberKeys);
        }
        let (Some(version), Some(epoch)) =
            (chain.version.checked_add(1), self.epoch().checked_add(1))
        else {
            return Err(GroupError::Illegal {
                status: self.status,
                event: "a change after the last possible version",
            });
        };
        let mut members = self.members().to_vec();
        let mut admin = self.me;
        let is_member = |id: &MemberKey| members.iter().any(|m| m.id == *id);
        let mut gone = Vec::new();
        match &change {
            Change::Rotated | Change::Disbanded => {}
            Change::Removed(who) | Change::Left(who) => {
                if *who == self.me {
                    return Err(GroupError::AdminMustHandOver);
                }
                if !is_member(who) {
                    return Err(GroupError::NotAMember);
                }
                members.retain(|m| m.id != *who);
                gone.push(*who);
            }
            Change::AdminTo(who) => {
                if *who == self.me || !is_member(who) {
                    return Err(GroupError::NotAMember);
                }
                admin = *who;
            }
            Change::Added { who, round } => members.extend(self.joiners(who, round)?),
        }
        let boundaries = gone
            .iter()
            .map(|who| {
                // A leaver reports its own last seq (it may have written what we have not
                // received yet), but may not free itself from a boundary: at most
                // LEAVE_SLACK beyond what we hold of it.
                let held = last_seqs.get(who).copied().unwrap_or(0);
                let seq = match self.life.leaving.get(who) {
                    Some(reported) => (*reported).min(held.saturating_add(LEAVE_SLACK)),
                    None => held,
                };
                (*who, seq)
            })
            .collect();
        Ok(GroupInfo {
            group_id: self.group_id,
            creator: self.creator,
            version,
            prev_hash: chain.hash,
            admin,
            epoch,
            members,
            boundaries,
            change,
            made_at: now,
        })
    }

    /// A valid next version with a key for us (checked by [`super::info::check_next`], or
    /// written by us as admin): the new epoch begins; the previous one keeps its key, for what
    /// was written in it, with the boundaries of those who are gone.
    pub fn advance(
        &mut self,
        info: &GroupInfo,
        key: GroupKey,
        hash: [u8; 32],
        record: Vec<u8>,
        now: u64,
    ) {
        let by = self.admin();
        let names = self.names_of(info);
        if let Some(prev) = self.epochs.last_mut() {
            prev.boundaries = info.boundaries.iter().copied().collect();
            prev.ended_at = Some(now);
        }
        self.epochs.push(EpochState {
            epoch: info.epoch,
            key,
            members: info.members.clone(),
            boundaries: BTreeMap::new(),
            ended_at: None,
            started_at: now,
        });
        self.chain = Some(ChainPos {
            version: info.version,
            hash,
            admin: info.admin,
        });
        self.keep_record(info.version, record);
        self.life.pending_change = None;
        for (who, _) in &info.boundaries {
            self.life.leaving.remove(who);
        }
        if info.change == Change::Disbanded {
            self.status = Status::Disbanded;
            if let Some(last) = self.epochs.last_mut() {
                last.ended_at = Some(now);
            }
        }
        // After the status: a round of a group that just ended is closed too.
        self.after_version(&info.change, now);
        if self.status == Status::Left {
            // Our Leave goes to whoever is admin now; if that is us (a hand-over crossed our
            // leave), we hand back first.
            self.life.hand_back = (info.admin == self.me).then_some(by);
            let admin = if info.admin == self.me {
                by
            } else {
                info.admin
            };
            for o in &mut self.outbox {
                if matches!(o.control.body, Body::Leave { .. }) && o.to != admin {
                    o.to = admin;
                    o.sent = false;
                }
            }
        }
        self.note(ChangeNote {
            version: info.version,
            epoch: info.epoch,
            by,
            change: info.change.clone(),
            names,
            at: now,
        });
        // The admin who wrote it (or the new admin it names) pushes the record live to the
        // members of this epoch and the one before (so a removed member learns of it at once);
        // the send reaches its contacts, the DHT holds it for everyone.
        let record = self.life.chain_records.last().map(|(_, r)| r.clone());
        if info.admin == self.me || by == self.me {
            if let Some(record) = record {
                let to: Vec<MemberKey> = self
                    .epochs
                    .iter()
                    .rev()
                    .take(2)
                    .flat_map(|e| e.members.iter().map(|m| m.id))
                    .filter(|id| *id != self.me)
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                for id in to {
                    self.push_record(id, record.clone(), now);
                }
            }
        }
        self.updated_at = now;
    }

    /// A valid next version without a key for us: we are out (removed, or our leave was
    /// written). What we hold stays readable.
    pub fn excluded(&mut self, version: u64, hash: [u8; 32], record: Vec<u8>, now: u64) {
        if let Some(prev) = self.epochs.last_mut() {
            prev.ended_at.get_or_insert(now);
        }
        let by = self.admin();
        self.chain = Some(ChainPos {
            version,
            hash,
            admin: by,
        });
        self.keep_record(version, record);
        if self.status != Status::Left {
            self.status = Status::Removed;
            self.note(ChangeNote {
                version,
                epoch: self.epoch().saturating_add(1),
                by,
                change: Change::Removed(self.me),
                names: Vec::new(),
                at: now,
            });
        }
        self.outbox.clear();
        self.updated_at = now;
    }

    /// Member: leave at once (history stays); the admin is told and writes us out. `last_seq`
    /// is the last seq we wrote in the current epoch.
    pub fn leave(&mut self, last_seq: u64, id: ControlId, now: u64) -> Result<(), GroupError> {
        if self.status != Status::Active {
            return Err(GroupError::Illegal {
                status: self.status,
                event: "leaving",
            });
        }
        if self.admin() == self.me {
            return Err(GroupError::AdminMustHandOver);
        }
        let epoch = self.epoch();
        if let Some(current) = self.epochs.last_mut() {
            current.ended_at = Some(now);
        }
        self.status = Status::Left;
        self.life.left_in = Some(epoch);
        let admin = self.admin();
        self.outbox.retain(|o| !o.until_ack);
        self.queue(admin, id, now, Body::Leave { epoch, last_seq }, true);
        self.note(ChangeNote {
            version: self.chain.as_ref().map_or(0, |c| c.version),
            epoch,
            by: self.me,
            change: Change::Left(self.me),
            names: Vec::new(),
            at: now,
        });
        self.updated_at = now;
        Ok(())
    }

    /// Admin: a member's signed `Leave` (checked to come from that member by the caller).
    pub(super) fn on_leave(
        &mut self,
        from: MemberKey,
        epoch: u32,
        last_seq: u64,
    ) -> Result<(), GroupError> {
        if !self.members().iter().any(|m| m.id == from) {
            return Err(GroupError::NotAMember);
        }
        // Its boundary in the epoch it left: only the current one counts (an old Leave
        // arriving late names an epoch whose boundary, if any, is already written).
        let seq = if epoch == self.epoch() { last_seq } else { 0 };
        // Remembered even when we are not the admin (yet): we never hand the group to
        // someone who is leaving. Only the admin acknowledges, so the leaver keeps re-sending.
        self.life.leaving.insert(from, seq);
        if self.status != Status::Active || self.admin() != self.me {
            return Err(GroupError::NotAdmin);
        }
        Ok(())
    }

    /// Admin: the change that is due without anyone asking, if any — write out a leaver; as a
    /// member who left but was made admin (a hand-over crossing our leave), pass the group on
    /// to the member who handed it to us, or another who is staying, or end it if nobody is;
    /// the scheduled rotation (`rotate_every` ms after the epoch began, 0 = never).
    pub fn duty(&self, rotate_every: u64, now: u64) -> Option<Change> {
        if self.admin() != self.me {
            return None;
        }
        if let Some(change) = self.life.pending_change.clone().filter(|_| self.is_admin()) {
            return Some(change);
        }
        match self.status {
            Status::Left => {
                let staying = |k: &MemberKey| {
                    *k != self.me && !self.life.leaving.contains_key(k) && self.is_member(k)
                };
                let to = self
                    .life
                    .hand_back
                    .filter(staying)
                    .or_else(|| self.members().iter().map(|m| m.id).find(staying));
                Some(to.map_or(Change::Disbanded, Change::AdminTo))
            }
            Status::Active => {
                if let Some(who) = self.next_leaver() {
                    return Some(Change::Left(who));
                }
                let due = rotate_every > 0
                    && self.has_member_keys()
                    && self
                        .current()
                        .is_some_and(|e| now.saturating_sub(e.started_at) >= rotate_every);
                due.then_some(Change::Rotated)
            }
            _ => None,
        }
    }

    /// Admin: the next member whose leave is still to be written, if any.
    pub fn next_leaver(&self) -> Option<MemberKey> {
        self.life
            .leaving
            .keys()
            .find(|k| self.members().iter().any(|m| m.id == **k))
            .copied()
    }

    /// Whether `member` is in the current epoch.
    pub fn is_member(&self, member: &MemberKey) -> bool {
        self.members().iter().any(|m| m.id == *member)
    }

    fn keep_record(&mut self, version: u64, record: Vec<u8>) {
        if self.life.chain_records.iter().any(|(v, _)| *v == version) {
            return;
        }
        self.life.chain_records.push((version, record));
        self.life.chain_records.sort_by_key(|(v, _)| *v);
        let excess = self.life.chain_records.len().saturating_sub(KEPT_RECORDS);
        self.life.chain_records.drain(..excess);
    }

    fn push_record(&mut self, to: MemberKey, record: Vec<u8>, now: u64) {
        let id = super::control::random_id();
        self.queue(to, id, now, Body::Info(record), false);
    }

    fn note(&mut self, note: ChangeNote) {
        self.life.changes.push(note);
    }

    fn names_of(&self, info: &GroupInfo) -> Vec<(MemberKey, String)> {
        let named: Vec<MemberKey> = match &info.change {
            Change::Removed(k) | Change::Left(k) | Change::AdminTo(k) => vec![*k],
            Change::Added { who, .. } => who.clone(),
            Change::Rotated | Change::Disbanded => Vec::new(),
        };
        // Joiners are named by the new roster, the rest by ours.
        self.members()
            .iter()
            .chain(info.members.iter().filter(|m| !self.is_member(&m.id)))
            .filter(|m| named.contains(&m.id) || m.id == self.admin())
            .map(|m| (m.id, m.name.clone()))
            .collect()
    }
}

#[cfg(test)]
#[path = "membership_tests.rs"]
pub(crate) mod tests;
