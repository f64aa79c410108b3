//! Add rounds without a network: real state machines and keys (the membership tests' [`Net`]),
//! the admin's versions signed and sealed as the service does.

use super::*;
use crate::group::control::{random_id, Control, Person};
use crate::group::info::{self, GroupInfo};
use crate::group::membership::tests::{Net, HOUR};

fn person(net: &Net, j: usize) -> Person {
    Person {
        id: net.key(j),
        name: format!("joiner {j}"),
    }
}

/// Admin `a` opens a round for `js`; each gets its invitation (its old copy replaced).
fn invite(net: &mut Net, a: usize, js: &[usize]) {
    let people = js.iter().map(|j| person(net, *j)).collect();
    net.groups[a]
        .open_round(people, "Ana", random_id(), 6 * HOUR, net.now)
        .unwrap();
    for o in net.groups[a].take_unsent() {
        let j = net.index(&o.to);
        let s = o.control.sign(&net.ids[a]);
        net.groups[j] = Group::from_add(net.key(j), &s, random_id(), net.now).unwrap();
        // The invitee's "it arrived".
        for out in net.groups[j].take_unsent() {
            let s = out.control.sign(&net.ids[j]);
            net.groups[a]
                .receive(&s, &s.encode(), &mut random_id, net.now)
                .unwrap();
        }
    }
}

/// Invitee `j` answers; the answer reaches admin `a`.
fn answer(net: &mut Net, j: usize, a: usize, accept: bool) -> Result<(), GroupError> {
    let x = net.ids[j].public().x25519;
    let now = net.now;
    net.groups[j].respond(accept, GroupKey::random(), x, random_id(), now)?;
    let mut result = Ok(());
    for out in net.groups[j].take_unsent() {
        let s = out.control.sign(&net.ids[j]);
        result = net.groups[a].receive(&s, &s.encode(), &mut random_id, now);
    }
    result
}

/// Admin `a`'s queued controls to `to`, signed, delivered; returns their kinds.
fn pass(net: &mut Net, a: usize, to: usize) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    let out = net.groups[a].take_unsent();
    let key = net.key(to);
    for o in out.into_iter().filter(|o| o.to == key) {
        kinds.push(o.control.body.kind());
        let s = o.control.sign(&net.ids[a]);
        let _ = net.groups[to].receive(&s, &s.encode(), &mut random_id, net.now);
    }
    kinds
}

#[test]
fn an_acceptor_joins_at_the_next_epoch_and_holds_no_older_key() {
    // Ana, Ben, Carol; Eve and Finn said no to the first invitation.
    let mut net = Net::with_rejecters(3, 2);
    net.write(0, Change::Rotated).unwrap();
    invite(&mut net, 0, &[3, 4]);
    let eve_view = &net.groups[3];
    assert_eq!(eve_view.status, Status::Invited);
    assert_eq!(eve_view.inviter(), net.key(0));
    assert_eq!(
        eve_view.joining.as_ref().unwrap().add.members.len(),
        3,
        "members listed"
    );
    let round = net.groups[0].round.clone().unwrap();
    assert_eq!(round.statuses[&net.key(3)], InviteeStatus::Delivered);
    answer(&mut net, 3, 0, true).unwrap();
    answer(&mut net, 4, 0, false).unwrap();
    assert!(net.groups[0].round_due(net.now), "everyone answered");
    assert!(net.groups[0].finish_round(&mut random_id, net.now));
    assert!(pass(&mut net, 0, 4).contains(&"closed"), "Finn is told");
    assert_eq!(net.groups[4].status, Status::Rejected);
    let change = net.groups[0].life.pending_change.clone().unwrap();
    assert_eq!(
        change,
        Change::Added {
            who: vec![net.key(3)],
            round: round.id
        }
    );
    let record = net.write(0, change).unwrap();
    assert!(net.groups[0].round.is_none());
    for i in 1..4 {
        net.walk(i);
        assert_eq!(
            net.groups[i].chain.as_ref().unwrap().version,
            3,
            "member {i}"
        );
    }
    assert_eq!(net.deliver(3, &record), Ok(Applied::Nothing), "once");
    let eve = &net.groups[3];
    assert_eq!(eve.status, Status::Active);
    assert_eq!(eve.epoch(), 3);
    assert_eq!(eve.epochs.len(), 1, "no key of epochs 1 and 2");
    for i in 0..3 {
        assert_eq!(net.groups[i].epoch(), 3);
        assert_eq!(net.groups[i].roster_hash(), eve.roster_hash());
        assert_eq!(net.current_key(i), net.current_key(3));
        assert!(net.groups[i].is_member(&net.key(3)));
    }
    assert_eq!(
        eve.chain, net.groups[0].chain,
        "Eve follows the chain from here"
    );
    // And goes on with it: a rotation after she joined reaches her.
    let next = net.write(0, Change::Rotated).unwrap();
    assert_eq!(net.deliver(3, &next), Ok(Applied::Advanced));
    assert_eq!(net.groups[3].epochs.len(), 2);
    assert_eq!(
        net.groups[4].status,
        Status::Rejected,
        "Finn never got a key"
    );
    assert!(net.groups[4].epochs.is_empty());
}

#[test]
fn a_round_nobody_accepts_in_time_ends_without_a_version() {
    let mut net = Net::with_rejecters(2, 1);
    invite(&mut net, 0, &[2]);
    assert!(!net.groups[0].round_due(net.now));
    net.now += 7 * HOUR;
    assert!(net.groups[0].round_due(net.now));
    assert!(net.groups[0].finish_round(&mut random_id, net.now));
    assert!(net.groups[0].round.is_none());
    assert!(net.groups[0].life.pending_change.is_none());
    assert_eq!(pass(&mut net, 0, 2), vec!["closed"]);
    // A late "yes" (its own clock inside the window, but the round is over): refused.
    net.groups[2].status = Status::Invited;
    net.groups[2].invite.expires_at = u64::MAX;
    assert!(answer(&mut net, 2, 0, true).is_err());
    assert!(net.groups[0].round.is_none() && net.groups[0].life.pending_change.is_none());
    assert_eq!(net.groups[0].epoch(), 1);
}

#[test]
fn an_answer_after_the_window_is_refused_and_told_so() {
    let mut net = Net::with_rejecters(2, 1);
    invite(&mut net, 0, &[2]);
    // Eve's clock says the window is still open; her answer is dated after it.
    net.groups[2].invite.expires_at = u64::MAX;
    net.now += 7 * HOUR;
    assert_eq!(answer(&mut net, 2, 0, true), Err(GroupError::Late));
    let round = net.groups[0].round.as_ref().unwrap();
    assert!(round.responses.is_empty());
    assert!(pass(&mut net, 0, 2).contains(&"closed"));
}

#[test]
fn one_round_at_a_time_within_the_cap_never_a_member() {
    let mut net = Net::with_rejecters(8, 3);
    let people = |net: &Net, js: &[usize]| js.iter().map(|j| person(net, *j)).collect::<Vec<_>>();
    let p = people(&net, &[8, 9, 10]);
    assert_eq!(
        net.groups[0].open_round(p, "Ana", random_id(), HOUR, net.now),
        Err(GroupError::TooManyMembers),
        "8 members + 3 > 10"
    );
    let p = people(&net, &[1]);
    assert_eq!(
        net.groups[0].open_round(p, "Ana", random_id(), HOUR, net.now),
        Err(GroupError::AlreadyMember)
    );
    let p = people(&net, &[8]);
    assert_eq!(
        net.groups[1].open_round(p.clone(), "Ben", random_id(), HOUR, net.now),
        Err(GroupError::NotAdmin)
    );
    net.groups[0]
        .open_round(p, "Ana", random_id(), HOUR, net.now)
        .unwrap();
    let p = people(&net, &[9]);
    assert_eq!(
        net.groups[0].open_round(p, "Ana", random_id(), HOUR, net.now),
        Err(GroupError::RoundOpen)
    );
}

#[test]
fn an_add_invitation_with_a_group_id_that_is_not_its_creators_is_refused() {
    let net = Net::with_rejecters(2, 1);
    let mut add = AddInvite {
        origin: random_id(),
        creator: net.key(0),
        name: "Book club".into(),
        admin_name: "Ana".into(),
        created_at: 0,
        expires_at: HOUR,
        invitees: vec![person(&net, 2)],
        members: vec![person(&net, 0)],
        chain_pub: [1; 32],
        version: 1,
        head_hash: [2; 32],
    };
    // Ben copies the real group's id into an invitation of his own.
    let squat = Control {
        id: random_id(),
        group_id: net.groups[0].group_id,
        sent_at: 0,
        body: Body::Add(add.clone()),
    }
    .sign(&net.ids[1]);
    assert_eq!(
        Group::from_add(net.key(2), &squat, random_id(), 0).err(),
        Some(GroupError::IdNotBound)
    );
    // Naming the real origin works only with the real creator in it.
    add.origin = net.groups[0].invite_id;
    add.creator = net.key(1);
    let squat = Control {
        id: random_id(),
        group_id: net.groups[0].group_id,
        sent_at: 0,
        body: Body::Add(add),
    }
    .sign(&net.ids[1]);
    assert_eq!(
        Group::from_add(net.key(2), &squat, random_id(), 0).err(),
        Some(GroupError::IdNotBound)
    );
}

/// Admin 0 writes `info` (an Added version of its own making) as the service would.
fn forge(net: &Net, info: GroupInfo) -> Vec<u8> {
    let key = GroupKey::random();
    let seed = net.groups[0].bucket_seed.as_ref().unwrap();
    info::write(&net.ids[0], seed, info, &key).1
}

#[test]
fn members_refuse_a_joiner_who_did_not_accept_or_whose_keys_are_not_its_own() {
    let mut net = Net::with_rejecters(3, 2);
    invite(&mut net, 0, &[3]);
    answer(&mut net, 3, 0, true).unwrap();
    net.groups[0].finish_round(&mut random_id, net.now);
    let change = net.groups[0].life.pending_change.clone().unwrap();
    let honest = net.groups[0]
        .next_info(change.clone(), &Default::default(), net.now)
        .unwrap();
    let Change::Added { round, .. } = change else {
        unreachable!()
    };
    let eve = honest
        .members
        .iter()
        .find(|m| m.id == net.key(3))
        .unwrap()
        .clone();
    let refuse = |net: &mut Net, info: GroupInfo, why: &str| {
        let record = forge(net, info);
        for i in 1..3 {
            let before = net.groups[i].clone();
            let r = net.deliver(i, &record);
            assert!(
                matches!(r, Err(ChainError::Invalid(_))),
                "{why}: member {i} got {r:?}"
            );
            assert_eq!(net.groups[i].epoch(), before.epoch(), "{why}");
        }
    };
    // Finn never accepted: the admin lists him with Eve's acceptance.
    let mut finn = eve.clone();
    finn.id = net.key(4);
    let mut info = honest.clone();
    info.members.retain(|m| m.id != eve.id);
    info.members.push(finn.clone());
    info.change = Change::Added {
        who: vec![finn.id],
        round,
    };
    refuse(&mut net, info, "an acceptance that is not his own");
    // ... or with no acceptance at all.
    let mut info = honest.clone();
    finn.response = Vec::new();
    info.members.retain(|m| m.id != eve.id);
    info.members.push(finn);
    info.change = Change::Added {
        who: vec![net.key(4)],
        round,
    };
    refuse(&mut net, info, "no acceptance");
    // Eve with an X25519 key of the admin's (it could read what is sealed to "her").
    let mut info = honest.clone();
    let m = info.members.iter_mut().find(|m| m.id == eve.id).unwrap();
    m.x25519 = net.ids[0].public().x25519;
    refuse(&mut net, info, "keys she did not sign");
    // Her acceptance of this round replayed as another round.
    let mut info = honest.clone();
    info.change = Change::Added {
        who: vec![eve.id],
        round: random_id(),
    };
    refuse(&mut net, info, "another round");
    // The group's first invitation named as the round (an old acceptance re-used).
    let mut info = honest.clone();
    info.change = Change::Added {
        who: vec![eve.id],
        round: net.groups[1].invite_id,
    };
    refuse(&mut net, info, "a used round");
    // The honest version goes through.
    let record = forge(&net, honest);
    for i in 1..3 {
        assert_eq!(net.deliver(i, &record), Ok(Applied::Advanced));
    }
}

#[test]
fn a_joiner_takes_only_the_version_of_its_round_from_its_inviter() {
    let mut net = Net::with_rejecters(3, 2);
    invite(&mut net, 0, &[3]);
    answer(&mut net, 3, 0, true).unwrap();
    // A rotation while the round is open: not for Eve, passed over.
    let rotation = net.write(0, Change::Rotated).unwrap();
    assert_eq!(net.deliver(3, &rotation), Ok(Applied::Nothing));
    assert_eq!(net.groups[3].status, Status::Accepted);
    net.groups[0].finish_round(&mut random_id, net.now);
    let change = net.groups[0].life.pending_change.clone().unwrap();
    let honest = net.groups[0]
        .next_info(change, &Default::default(), net.now)
        .unwrap();
    // Eve's entry with a bucket key that is not the one she gave: refused.
    let mut info = honest.clone();
    let eve = info
        .members
        .iter_mut()
        .find(|m| m.id == net.key(3))
        .unwrap();
    eve.bucket_pub = [9; 32];
    let record = forge(&net, info);
    assert!(matches!(
        net.deliver(3, &record),
        Err(ChainError::Invalid(_))
    ));
    // A "rotation" with a key box for her (not the version that adds her): refused.
    let mut info = honest.clone();
    info.change = Change::Rotated;
    let record = forge(&net, info);
    assert!(matches!(
        net.deliver(3, &record),
        Err(ChainError::Invalid(_))
    ));
    assert_eq!(net.groups[3].status, Status::Accepted);
    // Ben (a member, not her inviter) cannot write it either.
    let seed = net.groups[1].bucket_seed.clone().unwrap();
    let record = info::write(&net.ids[1], &seed, honest.clone(), &GroupKey::random()).1;
    assert_eq!(net.deliver(3, &record), Err(ChainError::NotAdmin));
    let record = forge(&net, honest);
    assert_eq!(net.deliver(3, &record), Ok(Applied::Advanced));
    assert_eq!(net.groups[3].epoch(), 3);
    assert_eq!(net.groups[3].epochs.len(), 1);
}

#[test]
fn handing_over_mid_round_closes_it_for_everyone_invited() {
    let mut net = Net::with_rejecters(3, 1);
    invite(&mut net, 0, &[3]);
    let ben = net.key(1);
    net.write(0, Change::AdminTo(ben)).unwrap();
    assert!(net.groups[0].round.is_none());
    // The invitee is told (`write` drained the queue: the Closed was in it); an answer now
    // goes nowhere: the old admin has no round, and the new one never opened it.
    assert!(answer(&mut net, 3, 0, true).is_err());
    assert!(answer(&mut net, 3, 1, true).is_err());
    assert!(net.groups[0].life.pending_change.is_none() && net.groups[1].round.is_none());
}

#[test]
fn a_removed_member_added_back_keeps_its_own_epochs_and_gets_none_it_was_out_of() {
    let mut net = Net::new(3);
    let carol = net.key(2);
    let removed = net.write(0, Change::Removed(carol)).unwrap();
    net.deliver(1, &removed).unwrap();
    assert_eq!(net.deliver(2, &removed), Ok(Applied::Excluded));
    assert!(net.groups[2].may_rejoin());
    let old_notes = net.groups[2].life.changes.len();
    let record = net.add(0, 2).unwrap();
    net.deliver(1, &record).unwrap();
    assert_eq!(net.deliver(2, &record), Ok(Applied::Advanced));
    let carol_group = &net.groups[2];
    assert_eq!(carol_group.status, Status::Active);
    assert_eq!(carol_group.epoch(), 3);
    let held: Vec<u32> = carol_group.epochs.iter().map(|e| e.epoch).collect();
    assert_eq!(
        held,
        [1, 3],
        "her own epoch stays readable; not epoch 2, she was out of it"
    );
    assert!(carol_group.epochs[0].ended_at.is_some());
    assert_eq!(
        carol_group.life.changes.len(),
        old_notes + 1,
        "her history notes stay"
    );
    assert_eq!(net.current_key(2), net.current_key(0));
}

#[test]
fn a_layout_4_group_opens_as_layout_5() {
    use crate::group::store_legacy::GroupV4;
    let net = Net::new(2);
    let g = net.groups[1].clone();
    let v4 = GroupV4 {
        group_id: g.group_id,
        role: g.role,
        me: g.me,
        creator: g.creator,
        invite_id: g.invite_id,
        invite: g.invite.clone(),
        status: g.status,
        roster_version: g.roster_version,
        statuses: g.statuses.clone(),
        responses: g.responses.clone(),
        my_response: g.my_response.clone(),
        my_response_id: g.my_response_id,
        bucket_seed: g.bucket_seed.clone(),
        epochs: g.epochs.clone(),
        chain: g.chain.clone(),
        life: g.life.clone(),
        seen: g.seen.clone(),
        outbox: g.outbox.clone(),
        window_passed: g.window_passed,
        updated_at: g.updated_at,
        flags: g.flags.clone(),
        window_seed: g.window_seed.clone(),
        window_buckets: g.window_buckets.clone(),
    };
    let bytes = crate::codec::encode(&v4);
    let back: GroupV4 = crate::codec::decode_bounded(&bytes, 1 << 20).unwrap();
    assert_eq!(Group::from(back), g);
}
