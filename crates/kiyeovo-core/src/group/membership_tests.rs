//! Membership changes without a network: every member a real state machine with real keys;
//! the admin signs and seals each version as the service does; records are delivered (or not)
//! as a test says. A property test drives random changes through reordered, duplicated and
//! dropped deliveries.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::group::control::tests::invite_for;
use crate::group::control::{random_id, Control, SignedControl};
use crate::group::info;

pub(crate) const HOUR: u64 = 3600 * 1000;

/// An established group: index 0 created it.
pub(crate) struct Net {
    pub(crate) ids: Vec<Identity>,
    pub(crate) groups: Vec<Group>,
    /// Every record written so far, in order.
    pub(crate) records: Vec<Vec<u8>>,
    pub(crate) now: u64,
}

impl Net {
    pub(crate) fn new(n: usize) -> Net {
        Net::with_rejecters(n, 0)
    }

    /// `n` members, and `rejecters` more who were invited and said no (they can be added
    /// later): indexes `n..n + rejecters`.
    pub(crate) fn with_rejecters(n: usize, rejecters: usize) -> Net {
        let ids: Vec<Identity> = (0..n + rejecters).map(|_| Identity::generate()).collect();
        let rejecting: Vec<MemberKey> = ids[n..].iter().map(|i| i.public().ed25519).collect();
        let mut invite = invite_for(&ids[1..].iter().collect::<Vec<_>>(), 0);
        invite.creator_x25519 = ids[0].public().x25519;
        let mut creator = Group::create(
            ids[0].public().ed25519,
            invite,
            random_id(),
            GroupKey::random(),
            0,
        );
        let mut groups = Vec::new();
        for o in creator.take_unsent() {
            let who = ids.iter().find(|i| i.public().ed25519 == o.to).unwrap();
            let signed = o.control.sign(&ids[0]);
            let mut g = Group::from_invite(o.to, &signed, random_id(), 1).unwrap();
            g.respond(
                !rejecting.contains(&o.to),
                GroupKey::random(),
                who.public().x25519,
                random_id(),
                2,
            )
            .unwrap();
            for out in g.take_unsent() {
                let s = out.control.sign(who);
                let _ = creator.receive(&s, &s.encode(), &mut random_id, 3);
            }
            groups.push((who.public().ed25519, g));
        }
        // With everyone accepted at once, early; else when the window is over.
        let at = if rejecting.is_empty() { 4 } else { 7 * HOUR };
        creator
            .establish(GroupKey::random(), &mut random_id, at)
            .unwrap();
        for o in creator.take_unsent() {
            let s = o.control.sign(&ids[0]);
            if let Some((_, g)) = groups.iter_mut().find(|(k, _)| *k == o.to) {
                let _ = g.receive(&s, &s.encode(), &mut random_id, at + 1);
            }
        }
        let mut all = vec![creator];
        for i in &ids[1..] {
            let g = groups
                .iter()
                .find(|(k, _)| *k == i.public().ed25519)
                .unwrap()
                .1
                .clone();
            let rejected = rejecting.contains(&i.public().ed25519);
            assert_eq!(g.status == Status::Active, !rejected);
            all.push(g);
        }
        for g in &mut all {
            g.take_unsent();
        }
        Net {
            ids,
            groups: all,
            records: Vec::new(),
            now: at + HOUR,
        }
    }

    pub(crate) fn key(&self, i: usize) -> MemberKey {
        self.ids[i].public().ed25519
    }

    /// The index of the member whose identity key is `k`.
    pub(crate) fn index(&self, k: &MemberKey) -> usize {
        self.ids
            .iter()
            .position(|i| i.public().ed25519 == *k)
            .unwrap()
    }

    /// Admin `a` adds `j` (not a member) in a whole add round, the way the services do: the
    /// invitation, `j`'s acceptance, the round closing, the version. `j`'s old copy of the
    /// group (if it was in it once) is replaced, its change notes kept. Returns the record,
    /// which `j` gets like everyone else (through [`Net::deliver`]).
    pub(crate) fn add(&mut self, a: usize, j: usize) -> Result<Vec<u8>, GroupError> {
        let person = super::super::control::Person {
            id: self.key(j),
            name: format!("joiner {j}"),
        };
        if !self.groups[j].may_rejoin() {
            return Err(GroupError::AlreadyMember);
        }
        self.groups[a].open_round(vec![person], "Admin", random_id(), 6 * HOUR, self.now)?;
        for o in self.groups[a].take_unsent() {
            if !matches!(o.control.body, Body::Add(_)) {
                continue;
            }
            let s = o.control.sign(&self.ids[a]);
            let mut g = Group::from_add(self.key(j), &s, random_id(), self.now).unwrap();
            g.keep_previous(self.groups[j].clone());
            let x = self.ids[j].public().x25519;
            g.respond(true, GroupKey::random(), x, random_id(), self.now)
                .unwrap();
            for out in g.take_unsent() {
                let s = out.control.sign(&self.ids[j]);
                let _ = self.groups[a].receive(&s, &s.encode(), &mut random_id, self.now);
            }
            self.groups[j] = g;
        }
        assert!(self.groups[a].finish_round(&mut random_id, self.now));
        self.groups[a].take_unsent();
        let change = self.groups[a].life.pending_change.clone().unwrap();
        self.write(a, change)
    }

    /// Member `i`, as admin, writes `change` the way the service does. Returns the record.
    pub(crate) fn write(&mut self, i: usize, change: Change) -> Result<Vec<u8>, GroupError> {
        self.now += 1000;
        let g = &mut self.groups[i];
        let next = g.next_info(change, &BTreeMap::new(), self.now)?;
        let key = GroupKey::random();
        let (_, record) = info::write(
            &self.ids[i],
            g.bucket_seed.as_ref().unwrap(),
            next.clone(),
            &key,
        );
        let hash = record_hash(&record).unwrap();
        g.advance(&next, key, hash, record.clone(), self.now);
        g.take_unsent();
        self.records.push(record.clone());
        Ok(record)
    }

    pub(crate) fn deliver(&mut self, i: usize, record: &[u8]) -> Result<Applied, ChainError> {
        self.now += 1;
        let r = self.groups[i].apply(&self.ids[i], record, self.now);
        self.flush(i);
        r
    }

    /// What the service's flush does with member `i`'s queued controls: a Leave reaches its
    /// addressee (records travel separately, through [`Net::deliver`]).
    pub(crate) fn flush(&mut self, i: usize) {
        for o in self.groups[i].take_unsent() {
            if matches!(o.control.body, Body::Leave { .. }) {
                let to = self.index(&o.to);
                let s: SignedControl = o.control.sign(&self.ids[i]);
                let _ = self.groups[to].receive(&s, &s.encode(), &mut random_id, self.now);
                self.groups[to].take_unsent();
            }
        }
    }

    /// What the service's admin duties do: write out leavers; a leaver made admin hands back.
    /// Unacknowledged Leaves are sent again first (the service's re-send).
    pub(crate) fn duties(&mut self) {
        for i in 0..self.groups.len() {
            for o in self.groups[i].unacked() {
                if matches!(o.control.body, Body::Leave { .. }) {
                    let to = self.index(&o.to);
                    let s: SignedControl = o.control.sign(&self.ids[i]);
                    let _ = self.groups[to].receive(&s, &s.encode(), &mut random_id, self.now);
                    self.groups[to].take_unsent();
                }
            }
        }
        for i in 0..self.groups.len() {
            if let Some(change) = self.groups[i].duty(0, self.now) {
                let _ = self.write(i, change);
            }
        }
    }

    /// What the chain walk does: every record, in order, to member `i`.
    pub(crate) fn walk(&mut self, i: usize) {
        for r in self.records.clone() {
            let _ = self.deliver(i, &r);
        }
    }

    /// Every record to everyone (in order).
    pub(crate) fn deliver_all(&mut self) {
        for i in 0..self.groups.len() {
            self.walk(i);
        }
    }

    pub(crate) fn current_key(&self, i: usize) -> Option<GroupKey> {
        self.groups[i].current().map(|e| e.key.clone())
    }

    /// Nobody holds the key of an epoch whose roster lacks them.
    pub(crate) fn no_key_outside_membership(&self) {
        for g in &self.groups {
            for e in &g.epochs {
                assert!(
                    e.members.iter().any(|m| m.id == g.me),
                    "a member holds epoch {} without being in it",
                    e.epoch
                );
            }
        }
    }
}

#[test]
fn a_rotation_gives_every_member_the_same_new_key_and_keeps_the_old_one() {
    let mut net = Net::new(3);
    let old = net.current_key(0).unwrap();
    net.write(0, Change::Rotated).unwrap();
    net.deliver_all();
    for i in 0..3 {
        let g = &net.groups[i];
        assert_eq!(g.epoch(), 2);
        assert_eq!(g.epochs.len(), 2);
        assert_eq!(g.epochs[0].key, old);
        assert_eq!(net.current_key(i), net.current_key(0));
        assert_eq!(g.roster_hash(), net.groups[0].roster_hash());
        assert_eq!(g.life.changes.last().unwrap().change, Change::Rotated);
    }
    assert_ne!(net.current_key(0).unwrap(), old);
}

#[test]
fn a_removed_member_gets_no_new_key_and_its_later_words_are_beyond_its_boundary() {
    let mut net = Net::new(4);
    let dan = net.key(3);
    let last_seqs = BTreeMap::from([(dan, 7)]);
    net.now += 1000;
    let next = net.groups[0]
        .next_info(Change::Removed(dan), &last_seqs, net.now)
        .unwrap();
    assert_eq!(next.boundaries, vec![(dan, 7)]);
    net.write(0, Change::Removed(dan)).unwrap();
    net.deliver_all();
    let removed = &net.groups[3];
    assert_eq!(removed.status, Status::Removed);
    assert_eq!(removed.epoch(), 1, "no key of the new epoch");
    assert_eq!(
        removed.life.changes.last().unwrap().change,
        Change::Removed(dan),
        "it is told it was removed"
    );
    for i in 0..3 {
        assert_eq!(net.groups[i].epoch(), 2);
        assert!(!net.groups[i].is_member(&dan));
        assert!(net.groups[i].epochs[0].boundaries.contains_key(&dan));
        assert_eq!(net.current_key(i), net.current_key(0));
    }
    net.no_key_outside_membership();
}

#[test]
fn a_leaver_is_left_at_once_and_the_admin_writes_it_out_with_its_own_boundary() {
    let mut net = Net::new(3);
    net.groups[2].leave(5, random_id(), net.now).unwrap();
    assert_eq!(net.groups[2].status, Status::Left);
    let leave = net.groups[2].take_unsent();
    assert_eq!(leave.len(), 1);
    assert_eq!(leave[0].to, net.key(0));
    let signed = leave[0].control.clone().sign(&net.ids[2]);
    net.groups[0]
        .receive(&signed, &signed.encode(), &mut random_id, net.now)
        .unwrap();
    // Acknowledged, so the leaver stops re-sending.
    assert!(net.groups[0]
        .take_unsent()
        .iter()
        .any(|o| o.to == net.key(2) && matches!(o.control.body, Body::Ack { .. })));
    let carol = net.key(2);
    assert_eq!(net.groups[0].next_leaver(), Some(carol));
    net.write(0, Change::Left(carol)).unwrap();
    assert_eq!(net.groups[0].next_leaver(), None);
    assert_eq!(net.groups[0].epochs[0].boundaries[&carol], 5);
    net.deliver_all();
    assert_eq!(net.groups[2].status, Status::Left);
    assert_eq!(net.groups[2].epoch(), 1);
    assert_eq!(net.groups[1].epoch(), 2);
    // A Leave from someone who is not a member changes nothing.
    let stranger = Identity::generate();
    let forged = Control::new(
        net.groups[0].group_id,
        net.now,
        Body::Leave {
            epoch: 2,
            last_seq: 0,
        },
    )
    .sign(&stranger);
    assert_eq!(
        net.groups[0].receive(&forged, &forged.encode(), &mut random_id, net.now),
        Err(GroupError::NotAMember)
    );
}

#[test]
fn the_admin_hands_over_then_leaves_and_the_new_admin_removes_someone() {
    let mut net = Net::new(4);
    let (ana, ben, dan) = (net.key(0), net.key(1), net.key(3));
    assert_eq!(
        net.groups[0].leave(0, random_id(), net.now),
        Err(GroupError::AdminMustHandOver)
    );
    net.write(0, Change::AdminTo(ben)).unwrap();
    net.deliver_all();
    assert!(net.groups[1].is_admin());
    assert!(!net.groups[0].is_admin());
    assert_eq!(net.groups[2].admin(), ben);
    // The old admin can no longer write.
    assert_eq!(net.write(0, Change::Rotated), Err(GroupError::NotAdmin));
    // It leaves; the new admin writes it out, then removes Dan.
    net.groups[0].leave(0, random_id(), net.now).unwrap();
    let leave = net.groups[0].take_unsent().remove(0);
    assert_eq!(leave.to, ben, "the Leave goes to the admin now");
    let signed = leave.control.sign(&net.ids[0]);
    net.groups[1]
        .receive(&signed, &signed.encode(), &mut random_id, net.now)
        .unwrap();
    net.write(1, Change::Left(ana)).unwrap();
    net.write(1, Change::Removed(dan)).unwrap();
    net.deliver_all();
    assert_eq!(net.groups[0].status, Status::Left);
    assert_eq!(net.groups[3].status, Status::Removed);
    assert_eq!(net.groups[2].epoch(), 4);
    assert_eq!(net.current_key(2), net.current_key(1));
    let members: Vec<MemberKey> = net.groups[2].members().iter().map(|m| m.id).collect();
    assert_eq!(members.len(), 2);
    assert!(members.contains(&ben) && members.contains(&net.key(2)));
    net.no_key_outside_membership();
}

#[test]
fn a_version_from_the_old_admin_after_a_hand_over_is_refused() {
    let mut net = Net::new(3);
    let ben = net.key(1);
    net.write(0, Change::AdminTo(ben)).unwrap();
    net.deliver_all();
    // Ana, running modified code, writes version 3 under her own key as if still admin.
    let g = &net.groups[0];
    let chain = g.chain.clone().unwrap();
    let forged = info::GroupInfo {
        group_id: g.group_id,
        creator: g.creator,
        version: chain.version + 1,
        prev_hash: chain.hash,
        admin: net.key(0),
        epoch: g.epoch() + 1,
        members: g.members().to_vec(),
        boundaries: Vec::new(),
        change: Change::AdminTo(net.key(0)),
        made_at: net.now,
    };
    let (_, record) = info::write(
        &net.ids[0],
        g.bucket_seed.as_ref().unwrap(),
        forged,
        &GroupKey::random(),
    );
    assert_eq!(net.deliver(2, &record), Err(ChainError::NotAdmin));
    assert_eq!(net.groups[2].epoch(), 2);
}

#[test]
fn disbanding_ends_the_group_for_everyone_and_keeps_history_readable() {
    let mut net = Net::new(3);
    net.write(0, Change::Disbanded).unwrap();
    net.deliver_all();
    for g in &net.groups {
        assert_eq!(g.status, Status::Disbanded);
        assert!(!g.epochs.is_empty(), "the keys of what was written stay");
    }
    assert!(net.write(0, Change::Rotated).is_err());
}

#[test]
fn only_the_admin_changes_membership_and_only_of_members() {
    let mut net = Net::new(3);
    let stranger = Identity::generate().public().ed25519;
    assert_eq!(net.write(1, Change::Rotated), Err(GroupError::NotAdmin));
    assert_eq!(
        net.write(0, Change::Removed(stranger)),
        Err(GroupError::NotAMember)
    );
    assert_eq!(
        net.write(0, Change::Removed(net.key(0))),
        Err(GroupError::AdminMustHandOver)
    );
    assert_eq!(
        net.write(0, Change::AdminTo(stranger)),
        Err(GroupError::NotAMember)
    );
    assert!(net.records.is_empty());
}

#[test]
fn a_member_offline_across_three_changes_walks_to_the_head() {
    let mut net = Net::new(4);
    let carol = net.key(2);
    net.write(0, Change::Rotated).unwrap();
    net.write(0, Change::Removed(carol)).unwrap();
    net.write(0, Change::Rotated).unwrap();
    // Everyone but Dan got them live; Dan was away.
    for i in 1..3 {
        net.walk(i);
    }
    assert_eq!(net.groups[3].epoch(), 1);
    // Back: a later version first (a push) is refused as skipping, then the walk.
    let last = net.records[2].clone();
    assert!(matches!(
        net.deliver(3, &last),
        Err(ChainError::Skips { .. })
    ));
    net.walk(3);
    let dan = &net.groups[3];
    assert_eq!(dan.epoch(), 4);
    assert_eq!(dan.epochs.len(), 4, "every key it was entitled to");
    assert_eq!(net.current_key(3), net.current_key(0));
    // Carol holds epochs 1–2 only.
    assert_eq!(net.groups[2].status, Status::Removed);
    assert_eq!(net.groups[2].epochs.len(), 2);
    net.no_key_outside_membership();
}

#[test]
fn a_second_version_with_the_same_number_is_flagged_as_a_fork() {
    let mut net = Net::new(3);
    let before = net.groups[0].clone();
    let first = net.write(0, Change::Rotated).unwrap();
    net.deliver(1, &first).unwrap();
    // The admin (modified) writes another version 2 for someone else.
    net.groups[0] = before;
    let second = net.write(0, Change::Rotated).unwrap();
    assert_eq!(
        net.deliver(1, &second),
        Err(ChainError::Fork { version: 2 })
    );
    assert!(net.groups[1]
        .flags
        .iter()
        .any(|f| f.kind == FlagKind::ChainFork));
    // The copy it holds is not a fork of itself.
    assert_eq!(net.deliver(1, &first), Ok(Applied::Nothing));
}

#[test]
fn a_layout_3_group_becomes_epoch_1_and_chain_version_1() {
    let net = Net::new(2);
    let g = &net.groups[1];
    let chain = g.chain.as_ref().unwrap();
    assert_eq!(chain.version, 1);
    assert_eq!(
        chain.hash,
        info::genesis_hash(&g.group_id, &g.creator, &g.roster_hash())
    );
    assert_eq!(
        net.groups[0].chain, g.chain,
        "every member computes the same head"
    );
}

#[test]
fn a_group_without_member_keys_cannot_get_a_new_key() {
    // As a group from before protocol v2 is converted: X25519 keys all zero.
    let mut net = Net::new(3);
    for g in &mut net.groups {
        for m in &mut g.epochs[0].members {
            m.x25519 = [0; 32];
        }
    }
    assert_eq!(net.write(0, Change::Rotated), Err(GroupError::NoMemberKeys));
    assert_eq!(
        net.groups[0].duty(1, u64::MAX),
        None,
        "no scheduled rotation either"
    );
}

#[test]
fn a_departed_member_is_bounded_in_every_earlier_epoch() {
    let mut net = Net::new(3);
    let carol = net.key(2);
    net.write(0, Change::Rotated).unwrap();
    net.write(0, Change::Removed(carol)).unwrap();
    let ana = &net.groups[0];
    // Epoch 2 is bounded by the version that removed her; epoch 1 is left to the service,
    // which gives it her last seq as held here.
    assert!(ana.epochs[1].boundaries.contains_key(&carol));
    assert_eq!(ana.unbounded_departed(), vec![(0, carol)]);
    // Once the group ends, everyone is bounded everywhere.
    let mut ended = ana.clone();
    ended.epochs[0].boundaries.insert(carol, 0);
    net.groups[0] = ended;
    net.write(0, Change::Disbanded).unwrap();
    let left = net.groups[0].unbounded_departed();
    assert!(
        left.contains(&(3, net.key(0))) && left.contains(&(0, net.key(1))),
        "{left:?}"
    );
}

#[test]
fn a_leaver_cannot_free_itself_from_its_boundary() {
    let mut net = Net::new(3);
    let carol = net.key(2);
    net.groups[2].leave(u64::MAX, random_id(), net.now).unwrap();
    net.flush(2);
    let held = BTreeMap::from([(carol, 7)]);
    let next = net.groups[0]
        .next_info(Change::Left(carol), &held, net.now)
        .unwrap();
    assert_eq!(next.boundaries, vec![(carol, 7 + LEAVE_SLACK)]);
}

#[derive(Debug, Clone)]
enum Op {
    Rotate,
    Remove(usize),
    Leave(usize),
    HandOver(usize),
    /// The admin adds member `m` (someone who said no at first, or who is out).
    Add(usize),
    /// Deliver record `r` (index into those written) to member `m`.
    Deliver(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Rotate),
        1 => (0usize..7).prop_map(Op::Remove),
        1 => (0usize..7).prop_map(Op::Leave),
        1 => (0usize..7).prop_map(Op::HandOver),
        1 => (0usize..7).prop_map(Op::Add),
        6 => (0usize..20, 0usize..7).prop_map(|(r, m)| Op::Deliver(r, m)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random changes by whoever is admin, records delivered out of order, twice or never;
    /// at the end everyone walks the chain. Everyone still in the group agrees on epoch,
    /// roster and key; nobody ever held a key of an epoch it was not in.
    #[test]
    fn members_converge_and_never_hold_a_key_they_were_not_given(ops in proptest::collection::vec(op(), 1..30)) {
        // Five members and two who said no at first (and may be added later); anyone removed
        // or gone may be added back.
        let n = 7;
        let mut net = Net::with_rejecters(5, 2);
        for op in ops {
            // The admin as the newest version names it (whoever holds the newest head).
            let admin_idx = (0..n)
                .filter(|i| net.groups[*i].is_admin())
                .max_by_key(|i| net.groups[*i].chain.as_ref().map(|c| c.version))
                ;
            match op {
                Op::Rotate => {
                    if let Some(a) = admin_idx { let _ = net.write(a, Change::Rotated); }
                }
                Op::Remove(m) => {
                    if let Some(a) = admin_idx {
                        let who = net.key(m % n);
                        let _ = net.write(a, Change::Removed(who));
                    }
                }
                Op::HandOver(m) => {
                    if let Some(a) = admin_idx {
                        let who = net.key(m % n);
                        let _ = net.write(a, Change::AdminTo(who));
                    }
                }
                Op::Leave(m) => {
                    let m = m % n;
                    if net.groups[m].leave(0, random_id(), net.now).is_ok() {
                        net.flush(m);
                    }
                }
                Op::Add(m) => {
                    if let Some(a) = admin_idx {
                        let _ = net.add(a, m % n);
                    }
                }
                Op::Deliver(r, m) => {
                    if !net.records.is_empty() {
                        let rec = net.records[r % net.records.len()].clone();
                        let _ = net.deliver(m % n, &rec);
                    }
                }
            }
            net.duties();
            net.no_key_outside_membership();
        }
        // Everyone back online: walks, and the admins do their duties, until nothing changes.
        for _ in 0..8 {
            net.deliver_all();
            net.duties();
        }
        net.deliver_all();
        net.no_key_outside_membership();
        let active: Vec<usize> = (0..n).filter(|i| net.groups[*i].status == Status::Active).collect();
        if active.is_empty() {
            // Everyone left: the last admin ended the group.
            for g in &net.groups {
                prop_assert!(matches!(g.status, Status::Left | Status::Removed | Status::Disbanded | Status::Rejected));
            }
            return Ok(());
        }
        let first = &net.groups[active[0]];
        for i in &active {
            let g = &net.groups[*i];
            prop_assert_eq!(g.epoch(), first.epoch());
            prop_assert_eq!(g.roster_hash(), first.roster_hash());
            prop_assert_eq!(g.current().map(|e| e.key.clone()), first.current().map(|e| e.key.clone()));
            prop_assert_eq!(&g.chain, &first.chain);
            prop_assert!(g.is_member(&g.me));
        }
        // Everyone in the final roster is active; everyone else is out.
        for i in 0..n {
            let g = &net.groups[i];
            let listed = first.is_member(&net.key(i));
            prop_assert_eq!(listed, g.status == Status::Active, "member {} status {:?}", i, g.status);
        }
    }
}
