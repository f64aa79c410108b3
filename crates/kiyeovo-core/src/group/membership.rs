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
use super::info::{Change, GroupInfo, Head};
use super::machine::{ChainPos, EpochState, Group, GroupError, Status};

/// How many group-info records a member keeps (and re-publishes): a member offline across more
/// changes than this, longer than the DHT keeps records, cannot walk the chain and is told so.
pub const KEPT_RECORDS: usize = 16;

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
            version: chain.version,
            hash: chain.hash,
            admin: chain.admin,
            chain_pub: admin.bucket_pub,
            epoch: current.epoch,
            members: current.members.clone(),
        })
    }

    /// Whether we are the admin of an active group.
    pub fn is_admin(&self) -> bool {
        self.status == Status::Active && self.admin() == self.me
    }

    fn require_admin(&self) -> Result<(), GroupError> {
        if self.status != Status::Active {
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
        self.require_admin()?;
        let chain = self.chain.as_ref().ok_or(GroupError::NotAdmin)?;
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
            Change::Added(_) => {
                return Err(GroupError::Illegal {
                    status: self.status,
                    event: "adding without an invitation round",
                })
            }
        }
        let boundaries = gone
            .iter()
            .map(|who| {
                let seq = self
                    .leaving
                    .get(who)
                    .or_else(|| last_seqs.get(who))
                    .copied()
                    .unwrap_or(0);
                (*who, seq)
            })
            .collect();
        Ok(GroupInfo {
            group_id: self.group_id,
            creator: self.creator,
            version: chain.version + 1,
            prev_hash: chain.hash,
            admin,
            epoch: self.epoch() + 1,
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
        let names = self.names_of(&info.change);
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
        for (who, _) in &info.boundaries {
            self.leaving.remove(who);
        }
        if info.change == Change::Disbanded {
            self.status = Status::Disbanded;
        }
        self.note(ChangeNote {
            version: info.version,
            epoch: info.epoch,
            by,
            change: info.change.clone(),
            names,
            at: now,
        });
        // Everyone we were told of, live too, gets the record (the DHT holds it for the rest).
        let record = self.chain_records.last().map(|(_, r)| r.clone());
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
                epoch: self.epoch() + 1,
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
        if self.status != Status::Active || self.admin() != self.me {
            return Err(GroupError::NotAdmin);
        }
        if !self.members().iter().any(|m| m.id == from) {
            return Err(GroupError::NotAMember);
        }
        // Its boundary in the epoch it left: only the current one counts (an old Leave
        // arriving late names an epoch whose boundary, if any, is already written).
        let seq = if epoch == self.epoch() { last_seq } else { 0 };
        self.leaving.insert(from, seq);
        Ok(())
    }

    /// Admin: the next member whose leave is still to be written, if any.
    pub fn next_leaver(&self) -> Option<MemberKey> {
        self.leaving
            .keys()
            .find(|k| self.members().iter().any(|m| m.id == **k))
            .copied()
    }

    fn keep_record(&mut self, version: u64, record: Vec<u8>) {
        if self.chain_records.iter().any(|(v, _)| *v == version) {
            return;
        }
        self.chain_records.push((version, record));
        self.chain_records.sort_by_key(|(v, _)| *v);
        let excess = self.chain_records.len().saturating_sub(KEPT_RECORDS);
        self.chain_records.drain(..excess);
    }

    fn push_record(&mut self, to: MemberKey, record: Vec<u8>, now: u64) {
        let id = super::control::random_id();
        self.queue(to, id, now, Body::Info(record), false);
    }

    fn note(&mut self, note: ChangeNote) {
        self.changes.push(note);
    }

    fn names_of(&self, change: &Change) -> Vec<(MemberKey, String)> {
        let named: Vec<MemberKey> = match change {
            Change::Removed(k) | Change::Left(k) | Change::AdminTo(k) => vec![*k],
            Change::Added(ks) => ks.clone(),
            Change::Rotated | Change::Disbanded => Vec::new(),
        };
        self.members()
            .iter()
            .filter(|m| named.contains(&m.id) || m.id == self.admin())
            .map(|m| (m.id, m.name.clone()))
            .collect()
    }
}
