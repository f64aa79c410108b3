//! Add rounds without a network: real state machines and keys (the membership tests' [`Net`]),
//! the admin's versions signed and sealed as the service does.

use super::*;
use crate::group::control::{random_id, Control, Person, Response};
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
    // Ana lists herself at another bucket key than the chain key her invitation named.
    let mut info = honest.clone();
    let ana = info
        .members
        .iter_mut()
        .find(|m| m.id == net.key(0))
        .unwrap();
    ana.bucket_pub = [9; 32];
    let record = forge(&net, info);
    assert!(matches!(
        net.deliver(3, &record),
        Err(ChainError::Invalid(_))
    ));
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
    use crate::group::store_legacy::{ChangeNoteV4, ChangeV4, GroupLifeV4, GroupV4};
    let mut net = Net::new(2);
    net.write(0, Change::Rotated).unwrap();
    let g = net.groups[0].clone();
    let note = &g.life.changes[0];
    assert_eq!(note.change, Change::Rotated);
    // As layout 4 wrote it, with an `Added` only a modified admin could have written then.
    let life = GroupLifeV4 {
        chain_records: g.life.chain_records.clone(),
        leaving: g.life.leaving.clone(),
        changes: vec![
            ChangeNoteV4 {
                version: note.version,
                epoch: note.epoch,
                by: note.by,
                change: ChangeV4::Rotated,
                names: note.names.clone(),
                at: note.at,
            },
            ChangeNoteV4 {
                version: 3,
                epoch: 3,
                by: note.by,
                change: ChangeV4::Added(vec![[5; 32]]),
                names: Vec::new(),
                at: 9,
            },
        ],
        left_in: None,
        hand_back: None,
        pending_change: Some(ChangeV4::Rotated),
    };
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
        life,
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
    let opened = Group::from(back);
    let mut want = g.clone();
    want.life.pending_change = Some(Change::Rotated);
    want.life.changes.push(ChangeNote {
        version: 3,
        epoch: 3,
        by: note.by,
        change: Change::Added {
            who: vec![[5; 32]],
            round: crate::ids::ControlId([0; 16]),
        },
        names: Vec::new(),
        at: 9,
    });
    assert_eq!(opened, want);
    assert!(opened.round.is_none() && opened.joining.is_none());
}

#[test]
fn an_admin_of_two_groups_cannot_carry_an_acceptance_from_one_into_the_other() {
    // Ana is the admin of this group; Eve accepted *another* group (G2) with Ana in it, so
    // Ana holds Eve's signed acceptance of G2. She writes a version of our group naming G2 (so
    // the acceptance's group matches the version's) in Eve's entry: refused by every member.
    let mut net = Net::with_rejecters(3, 1);
    let eve = &net.ids[3];
    let other_group = random_id();
    let round = random_id();
    let seed = GroupKey::random();
    let response = Control {
        id: random_id(),
        group_id: other_group,
        sent_at: 0,
        body: Body::Response(Response {
            invite_id: round,
            accept: true,
            list_hash: [0; 32],
            bucket_pub: Some(bucket_public(&seed)),
            window_bucket_pub: None,
            x25519: eve.public().x25519,
            responded_at: 0,
        }),
    }
    .sign(eve)
    .encode();
    let g = &net.groups[0];
    let chain = g.chain.clone().unwrap();
    let mut members = g.members().to_vec();
    members.push(Member {
        id: eve.public().ed25519,
        name: "Eve".into(),
        bucket_pub: bucket_public(&seed),
        x25519: eve.public().x25519,
        response,
    });
    let info = GroupInfo {
        group_id: other_group,
        creator: g.creator,
        version: chain.version + 1,
        prev_hash: chain.hash,
        admin: chain.admin,
        epoch: g.epoch() + 1,
        members,
        boundaries: Vec::new(),
        change: Change::Added {
            who: vec![eve.public().ed25519],
            round,
        },
        made_at: net.now,
    };
    let record = forge(&net, info);
    for i in 1..3 {
        assert_eq!(
            net.deliver(i, &record),
            Err(ChainError::Invalid("a version of another group"))
        );
        assert_eq!(net.groups[i].epoch(), 1);
    }
}

#[test]
fn ending_the_group_mid_round_closes_it_and_nothing_is_left_pending() {
    let mut net = Net::with_rejecters(3, 1);
    invite(&mut net, 0, &[3]);
    answer(&mut net, 3, 0, true).unwrap();
    net.now += 1000;
    let g = &mut net.groups[0];
    let next = g
        .next_info(Change::Disbanded, &Default::default(), net.now)
        .unwrap();
    let key = GroupKey::random();
    let (_, record) = info::write(
        &net.ids[0],
        g.bucket_seed.as_ref().unwrap(),
        next.clone(),
        &key,
    );
    let hash = crate::group::membership::record_hash(&record).unwrap();
    g.advance(&next, key, hash, record, net.now);
    assert!(g.round.is_none(), "the round ended with the group");
    assert!(g.life.pending_change.is_none());
    assert!(!g.round_due(u64::MAX));
    assert!(pass(&mut net, 0, 3).contains(&"closed"), "Eve is told");
    assert_eq!(net.groups[3].status, Status::Expired);
}

#[test]
fn a_round_whose_adding_cannot_be_written_is_voided_and_its_acceptors_told() {
    let mut net = Net::with_rejecters(3, 1);
    invite(&mut net, 0, &[3]);
    answer(&mut net, 3, 0, true).unwrap();
    assert!(net.groups[0].finish_round(&mut random_id, net.now));
    assert!(matches!(
        net.groups[0].life.pending_change,
        Some(Change::Added { .. })
    ));
    net.groups[0].void_round(net.now);
    assert!(net.groups[0].round.is_none() && net.groups[0].life.pending_change.is_none());
    assert!(pass(&mut net, 0, 3).contains(&"closed"));
    assert_eq!(net.groups[3].status, Status::Expired);
    // And the next round can open.
    invite(&mut net, 0, &[3]);
    assert!(net.groups[0].round.is_some());
}

#[test]
fn a_leaver_added_back_gets_no_epoch_after_the_one_it_left_in() {
    let mut net = Net::new(3);
    let cai = net.key(2);
    // Cai leaves; before Ana writes her out, Ana rotates: Cai still follows the chain and
    // is given epoch 2's key.
    net.groups[2].leave(0, random_id(), net.now).unwrap();
    let rotation = net.write(0, Change::Rotated).unwrap();
    net.deliver(1, &rotation).unwrap();
    net.deliver(2, &rotation).unwrap();
    assert_eq!(net.groups[2].epochs.len(), 2);
    let out = net.write(0, Change::Left(cai)).unwrap();
    net.deliver(1, &out).unwrap();
    assert_eq!(net.deliver(2, &out), Ok(Applied::Excluded));
    net.groups[2].outbox.clear();
    let back = net.add(0, 2).unwrap();
    net.deliver(1, &back).unwrap();
    assert_eq!(net.deliver(2, &back), Ok(Applied::Advanced));
    let held: Vec<u32> = net.groups[2].epochs.iter().map(|e| e.epoch).collect();
    assert_eq!(
        held,
        [1, 4],
        "not epoch 2 (after she left) nor 3 (she was out)"
    );
}

#[test]
fn only_someone_we_knew_in_the_group_can_invite_us_back_and_a_stale_acceptance_expires() {
    let mut net = Net::with_rejecters(3, 1);
    let carol = net.key(2);
    let removed = net.write(0, Change::Removed(carol)).unwrap();
    net.deliver(2, &removed).unwrap();
    let g = &net.groups[2];
    assert!(g.may_rejoin());
    assert!(g.may_invite_back(&net.key(0)) && g.may_invite_back(&net.key(1)));
    assert!(
        !g.may_invite_back(&net.key(3)),
        "Eve was never in it with her"
    );
    // Someone who accepted an add round nothing came of: expired a day after the window.
    invite(&mut net, 0, &[3]);
    answer(&mut net, 3, 0, true).unwrap();
    let end = net.groups[3].invite.expires_at;
    assert!(!net.groups[3].tick(end + 1) || net.groups[3].status == Status::Accepted);
    assert_eq!(net.groups[3].status, Status::Accepted);
    assert!(net.groups[3].tick(end + crate::group::machine::JOIN_GRACE_MS + 1));
    assert_eq!(net.groups[3].status, Status::Expired);
    assert!(net.groups[3].may_rejoin());
}

#[test]
fn an_invitation_back_leaves_our_copy_as_it_was_until_it_adds_us() {
    let mut net = Net::new(3);
    let carol = net.key(2);
    let removed = net.write(0, Change::Removed(carol)).unwrap();
    net.deliver(1, &removed).unwrap();
    net.deliver(2, &removed).unwrap();
    let before = net.groups[2].clone();
    // Invited back, Carol says no: her copy is as it was, and her answer still goes out.
    invite_back(&mut net, 0, 2);
    assert_eq!(net.groups[2].status, Status::Invited);
    let x = net.ids[2].public().x25519;
    let now = net.now;
    net.groups[2]
        .respond(false, GroupKey::random(), x, random_id(), now)
        .unwrap();
    let g = &net.groups[2];
    assert_eq!(g.status, Status::Removed);
    assert_eq!(g.epochs, before.epochs);
    assert_eq!(g.life.changes, before.life.changes);
    assert!(g.joining.is_none());
    assert!(g
        .outbox
        .iter()
        .any(|o| matches!(o.control.body, Body::Response(_)) && o.to == net.key(0)));
    // The round ends (her answer counted); invited again, she lets it expire: as it was again.
    for out in net.groups[2].take_unsent() {
        let s = out.control.sign(&net.ids[2]);
        let _ = net.groups[0].receive(&s, &s.encode(), &mut random_id, net.now);
    }
    assert!(net.groups[0].finish_round(&mut random_id, net.now));
    net.groups[0].take_unsent();
    invite_back(&mut net, 0, 2);
    let end = net.groups[2].invite.expires_at;
    assert!(net.groups[2].tick(end + 1));
    assert_eq!(net.groups[2].status, Status::Removed);
    assert_eq!(net.groups[2].epochs, before.epochs);
}

/// Admin `a` invites `j` (out of the group) back; `j`'s copy is kept aside as the service does.
fn invite_back(net: &mut Net, a: usize, j: usize) {
    let p = person(net, j);
    net.groups[a]
        .open_round(vec![p], "Ana", random_id(), 6 * HOUR, net.now)
        .unwrap();
    for o in net.groups[a].take_unsent() {
        let s = o.control.sign(&net.ids[a]);
        let mut g = Group::from_add(net.key(j), &s, random_id(), net.now).unwrap();
        g.keep_previous(net.groups[j].clone());
        g.take_unsent();
        net.groups[j] = g;
    }
}

#[test]
fn invitations_back_never_nest_one_already_over_changes_nothing_and_old_epochs_stay_taken() {
    let mut net = Net::new(3);
    let carol = net.key(2);
    let removed = net.write(0, Change::Removed(carol)).unwrap();
    net.deliver(1, &removed).unwrap();
    net.deliver(2, &removed).unwrap();
    let original = net.groups[2].clone();
    invite_back(&mut net, 0, 2);
    // A second invitation back while the first waits: the copy kept aside is still hers.
    let x = net.ids[2].public().x25519;
    let now = net.now;
    let first = net.groups[2].clone();
    let second_id = random_id();
    let mut second = first.clone();
    second.invite_id = second_id;
    let mut g = second.clone();
    g.keep_previous(first);
    let kept = g.joining.as_ref().unwrap().previous.as_ref().unwrap();
    assert!(kept.joining.is_none(), "not nested");
    assert_eq!(kept.epochs, original.epochs);
    // The new epoch must be above every epoch she holds, the kept-aside ones too.
    net.groups[2]
        .respond(true, GroupKey::random(), x, random_id(), now)
        .unwrap();
    let point = net.groups[2].join_point().unwrap();
    assert_eq!(point.min_epoch, 2, "she holds epoch 1");
    // An invitation back that is over when it arrives: her copy, unchanged, at once.
    let add_over = net.groups[2].joining.as_ref().unwrap().add.clone();
    let over = Control {
        id: random_id(),
        group_id: net.groups[0].group_id,
        sent_at: 0,
        body: Body::Add(AddInvite {
            created_at: 0,
            expires_at: 1,
            ..add_over
        }),
    }
    .sign(&net.ids[0]);
    let mut late = Group::from_add(carol, &over, random_id(), net.now).unwrap();
    assert_eq!(late.status, Status::Expired);
    late.keep_previous(original.clone());
    assert_eq!(late.status, Status::Removed);
    assert_eq!(late.epochs, original.epochs);
    assert!(late.joining.is_none());
}
