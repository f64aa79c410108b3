//! The group state machine without a network: a table of refusals, the main flows, and a
//! property test that runs a creator and up to five invitees through random event orders
//! (delivery reordered and duplicated, answers, time passing, forgeries) and checks the
//! invariants after every step.

use proptest::prelude::*;

use super::*;
use crate::group::control::tests::invite_for;
use crate::group::control::{random_id, Person};
use crate::identity::Identity;

const HOUR: u64 = 3600 * 1000;

/// A valid (contributory) X25519 public key.
fn xkey() -> [u8; 32] {
    Identity::generate().public().x25519
}

struct Sim {
    creator: Identity,
    invitees: Vec<Identity>,
    groups: Vec<Option<Group>>, // index 0 = creator
    net: Vec<(usize, Vec<u8>)>,
    now: u64,
}

impl Sim {
    fn new(n: usize) -> Sim {
        let creator = Identity::generate();
        let invitees: Vec<Identity> = (0..n).map(|_| Identity::generate()).collect();
        let now = 1_000_000;
        let invite = invite_for(&invitees.iter().collect::<Vec<_>>(), now);
        let g = Group::create(
            creator.public().ed25519,
            invite,
            random_id(),
            GroupKey::random(),
            now,
        );
        let mut sim = Sim {
            creator,
            invitees,
            groups: vec![Some(g)],
            net: Vec::new(),
            now,
        };
        sim.groups.extend((0..n).map(|_| None));
        sim.flush();
        sim
    }

    fn identity(&self, i: usize) -> &Identity {
        if i == 0 {
            &self.creator
        } else {
            &self.invitees[i - 1]
        }
    }

    fn index_of(&self, key: &MemberKey) -> usize {
        if *key == self.creator.public().ed25519 {
            0
        } else {
            1 + self
                .invitees
                .iter()
                .position(|i| i.public().ed25519 == *key)
                .expect("known")
        }
    }

    fn flush(&mut self) {
        for i in 0..self.groups.len() {
            let Some(g) = self.groups[i].as_mut() else {
                continue;
            };
            let out = g.take_unsent();
            for o in out {
                let to = self.index_of(&o.to);
                let bytes = o.control.sign(self.identity(i)).encode();
                self.net.push((to, bytes));
            }
        }
    }

    fn deliver(&mut self, k: usize, duplicate: bool) {
        if self.net.is_empty() {
            return;
        }
        let k = k % self.net.len();
        let (to, bytes) = if duplicate {
            self.net[k].clone()
        } else {
            self.net.remove(k)
        };
        let signed = SignedControl::decode(&bytes).expect("honest messages decode");
        let me = self.identity(to).public().ed25519;
        let now = self.now;
        match self.groups[to].as_mut() {
            Some(g) => {
                let _ = g.receive(&signed, &bytes, &mut random_id, now);
            }
            None => {
                if let Ok(g) = Group::from_invite(me, &signed, random_id(), now) {
                    self.groups[to] = Some(g);
                }
            }
        }
        self.flush();
    }

    fn resend(&mut self) {
        for i in 0..self.groups.len() {
            let Some(g) = self.groups[i].as_ref() else {
                continue;
            };
            for o in g.unacked() {
                let to = self.index_of(&o.to);
                self.net
                    .push((to, o.control.sign(self.identity(i)).encode()));
            }
        }
    }

    fn check_invariants(&self) {
        let creator = self.groups[0].as_ref().expect("creator");
        let expires = creator.invite.expires_at;
        for (i, g) in self.groups.iter().enumerate().skip(1) {
            let Some(g) = g else { continue };
            assert!(
                g.outbox
                    .iter()
                    .all(|o| !matches!(o.control.body, Body::Welcome(_))),
                "an invitee queued a Welcome"
            );
            if let Some(key) = g.current().map(|e| &e.key) {
                let r = g
                    .my_response
                    .as_ref()
                    .expect("holds a key without answering");
                assert!(r.accept, "holds a key after rejecting");
                assert!(r.responded_at <= expires, "holds a key after a late answer");
                assert_eq!(creator.status, Status::Active);
                assert_eq!(
                    creator.current().map(|e| &e.key),
                    Some(key),
                    "a key the creator never issued"
                );
                assert!(
                    creator.members().iter().any(|m| m.id == g.me),
                    "member {i} holds the key but is not in the creator's roster"
                );
            }
        }
        for m in creator.members().iter().skip(1) {
            assert_eq!(creator.statuses[&m.id], InviteeStatus::Accepted);
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Deliver(usize, bool),
    Respond(usize, bool),
    Advance(u64),
    Establish,
    Resend,
    /// Invitee `a` forges a Welcome to invitee `b` with a key of its own.
    Forge(usize, usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (any::<usize>(), prop::bool::weighted(0.2)).prop_map(|(k, d)| Step::Deliver(k, d)),
        3 => (0usize..5, any::<bool>()).prop_map(|(i, a)| Step::Respond(i, a)),
        1 => (0u64..4 * HOUR).prop_map(Step::Advance),
        1 => Just(Step::Establish),
        1 => Just(Step::Resend),
        1 => (0usize..5, 0usize..5).prop_map(|(a, b)| Step::Forge(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_event_orders_keep_the_invariants(n in 1usize..=5, steps in prop::collection::vec(step(), 1..80)) {
        let mut sim = Sim::new(n);
        for s in steps {
            match s {
                Step::Deliver(k, d) => sim.deliver(k, d),
                Step::Respond(i, accept) => {
                    let i = 1 + i % n;
                    let now = sim.now;
                    if let Some(g) = sim.groups[i].as_mut() {
                        let seed = GroupKey::random();
                        let _ = g.respond(accept, seed, xkey(), random_id(), now);
                    }
                    sim.flush();
                }
                Step::Advance(dt) => {
                    sim.now += dt;
                    let now = sim.now;
                    for g in sim.groups.iter_mut().flatten() {
                        g.tick(now);
                    }
                    // The creator's app establishes the first time it runs after the window.
                    let creator = sim.groups[0].as_mut().unwrap();
                    if creator.establishment_due(now) {
                        creator.establish(GroupKey::random(), &mut random_id, now).unwrap();
                    }
                    sim.flush();
                }
                Step::Establish => {
                    let now = sim.now;
                    let creator = sim.groups[0].as_mut().unwrap();
                    let _ = creator.establish(GroupKey::random(), &mut random_id, now);
                    sim.flush();
                }
                Step::Resend => sim.resend(),
                Step::Forge(a, b) => {
                    let (a, b) = (1 + a % n, 1 + b % n);
                    let gid = sim.groups[0].as_ref().unwrap().group_id;
                    let forged = Control::new(gid, sim.now, Body::Welcome(Welcome {
                        epoch: 1,
                        key: GroupKey::random(),
                        members: vec![Member { id: sim.identity(a).public().ed25519, name: "x".into(), bucket_pub: [1; 32], x25519: xkey(), response: vec![] }],
                    })).sign(sim.identity(a)).encode();
                    sim.net.push((b, forged));
                }
            }
            sim.check_invariants();
        }
        // Let the network settle: every message (and every re-send) delivered.
        for _ in 0..50 {
            if sim.net.is_empty() { sim.resend(); }
            if sim.net.is_empty() { break; }
            while !sim.net.is_empty() { sim.deliver(0, false); sim.check_invariants(); }
        }
        let creator = sim.groups[0].clone().unwrap();
        if creator.status == Status::Active {
            for m in creator.members().iter().skip(1) {
                let g = sim.groups[sim.index_of(&m.id)].as_ref().unwrap();
                prop_assert_eq!(g.status, Status::Active, "an acceptor never got the key");
            }
        }
        for g in sim.groups.iter().skip(1).flatten() {
            let in_roster = creator.members().iter().any(|m| m.id == g.me);
            prop_assert_eq!(g.current().is_some(), in_roster);
        }
    }
}

fn pair() -> (Identity, Identity, Group, SignedControl) {
    let creator = Identity::generate();
    let a = Identity::generate();
    let invite = invite_for(&[&a], 0);
    let mut g = Group::create(
        creator.public().ed25519,
        invite,
        random_id(),
        GroupKey::random(),
        0,
    );
    let out = g.take_unsent();
    let signed = out[0].control.clone().sign(&creator);
    (creator, a, g, signed)
}

#[test]
fn three_of_five_accept_and_only_they_get_the_key() {
    let creator = Identity::generate();
    let people: Vec<Identity> = (0..5).map(|_| Identity::generate()).collect();
    let invite = invite_for(&people.iter().collect::<Vec<_>>(), 0);
    let mut c = Group::create(
        creator.public().ed25519,
        invite,
        random_id(),
        GroupKey::random(),
        0,
    );
    let invites = c.take_unsent();
    let mut groups: Vec<Group> = invites
        .iter()
        .map(|o| {
            let me = o.to;
            Group::from_invite(me, &o.control.clone().sign(&creator), random_id(), 1).unwrap()
        })
        .collect();
    let identity = |k: &MemberKey| people.iter().find(|p| p.public().ed25519 == *k).unwrap();
    for (i, g) in groups.iter_mut().enumerate() {
        match i {
            0..=2 => g
                .respond(true, GroupKey::random(), xkey(), random_id(), 10)
                .unwrap(),
            3 => g
                .respond(false, GroupKey::random(), xkey(), random_id(), 10)
                .unwrap(),
            _ => {}
        }
        for o in g.take_unsent() {
            let signed = o.control.sign(identity(&g.me));
            let _ = c.receive(&signed, &signed.encode(), &mut random_id, 20);
        }
    }
    assert_eq!(
        c.establish(GroupKey::random(), &mut random_id, 30),
        Err(GroupError::WindowOpen)
    );
    c.establish(GroupKey::random(), &mut random_id, 7 * HOUR)
        .unwrap();
    assert_eq!(c.members().len(), 4);
    let out = c.take_unsent();
    for g in groups.iter_mut() {
        g.tick(7 * HOUR);
        let me = g.me;
        for o in out.iter().filter(|o| o.to == me) {
            let signed = o.control.clone().sign(&creator);
            let _ = g.receive(&signed, &signed.encode(), &mut random_id, 7 * HOUR);
        }
    }
    let statuses: Vec<Status> = groups.iter().map(|g| g.status).collect();
    assert_eq!(
        statuses,
        vec![
            Status::Active,
            Status::Active,
            Status::Active,
            Status::Rejected,
            Status::Expired
        ]
    );
    for g in &groups[..3] {
        assert_eq!(
            g.current().map(|e| e.key.clone()),
            c.current().map(|e| e.key.clone())
        );
        assert!(!g.flagged());
    }
    assert!(groups[3..].iter().all(|g| g.current().is_none()));
}

#[test]
fn table_of_refusals() {
    let now = 10;
    let (creator, a, c, invite) = pair();
    let a_key = a.public().ed25519;
    let mut ga = Group::from_invite(a_key, &invite, random_id(), now).unwrap();
    let stranger = Identity::generate();
    let accept = |g: &mut Group| {
        g.respond(true, GroupKey::random(), xkey(), random_id(), now)
            .unwrap();
        g.take_unsent()
            .into_iter()
            .find(|o| matches!(o.control.body, Body::Response(_)))
            .unwrap()
            .control
            .sign(&a)
    };
    let response = accept(&mut ga.clone());
    let welcome_from = |who: &Identity, epoch: u32, members: Vec<Member>| {
        Control::new(
            c.group_id,
            now,
            Body::Welcome(Welcome {
                epoch,
                key: GroupKey::random(),
                members,
            }),
        )
        .sign(who)
    };
    let member = |id: &Identity, response: Vec<u8>| {
        let r = SignedControl::decode(&response)
            .ok()
            .and_then(|s| match s.control.body {
                Body::Response(r) => Some(r),
                _ => None,
            });
        Member {
            id: id.public().ed25519,
            name: "m".into(),
            bucket_pub: r.as_ref().and_then(|r| r.bucket_pub).unwrap_or([1; 32]),
            // The creator's key is the one its invitation carried.
            x25519: r.map_or(c.invite.creator_x25519, |r| r.x25519),
            response,
        }
    };

    // Creator side.
    let mut c1 = c.clone();
    let mut from_stranger = response.control.clone().sign(&stranger);
    from_stranger.control.id = random_id();
    let cases_creator: Vec<(&str, SignedControl, GroupError)> = vec![
        (
            "response from someone not invited",
            from_stranger,
            GroupError::NotInvited,
        ),
        (
            "welcome sent to the creator",
            welcome_from(&a, 1, vec![member(&a, vec![])]),
            GroupError::Illegal {
                status: Status::Inviting,
                event: "welcome",
            },
        ),
    ];
    for (name, signed, expected) in cases_creator {
        assert_eq!(
            c1.receive(&signed, &signed.encode(), &mut random_id, now),
            Err(expected),
            "{name}"
        );
    }
    c1.receive(&response, &response.encode(), &mut random_id, now)
        .unwrap();
    assert_eq!(
        c1.receive(&response, &response.encode(), &mut random_id, now),
        Err(GroupError::Duplicate),
        "duplicate response"
    );
    let mut second = response.control.clone();
    second.id = random_id();
    let second = second.sign(&a);
    assert_eq!(
        c1.receive(&second, &second.encode(), &mut random_id, now),
        Err(GroupError::AlreadyResponded),
        "first valid response wins"
    );
    let mut other_group = response.control.clone();
    other_group.group_id = random_id();
    let other_group = other_group.sign(&a);
    assert_eq!(
        c1.receive(&other_group, &other_group.encode(), &mut random_id, now),
        Err(GroupError::WrongGroup)
    );

    // Invitee side: accepted, waiting for the Welcome.
    let response = accept(&mut ga);
    let good = welcome_from(
        &creator,
        1,
        vec![member(&creator, vec![]), member(&a, response.encode())],
    );
    let cases_invitee: Vec<(&str, SignedControl, GroupError)> = vec![
        (
            "welcome forged by a non-creator",
            welcome_from(&stranger, 1, vec![member(&stranger, vec![])]),
            GroupError::NotFromCreator,
        ),
        (
            "welcome for a stale epoch",
            welcome_from(
                &creator,
                0,
                vec![member(&creator, vec![]), member(&a, response.encode())],
            ),
            GroupError::StaleEpoch { got: 0, have: 0 },
        ),
        (
            "welcome without us",
            welcome_from(&creator, 1, vec![member(&creator, vec![])]),
            GroupError::NotInRoster,
        ),
        (
            "welcome with an acceptance the member never signed",
            welcome_from(
                &creator,
                1,
                vec![
                    member(&creator, vec![]),
                    member(&a, response.encode()),
                    member(&stranger, response.encode()),
                ],
            ),
            GroupError::BadResponse("not the member's own"),
        ),
        (
            "roster update from a non-creator",
            Control::new(
                c.group_id,
                now,
                Body::Roster(RosterUpdate {
                    version: 9,
                    statuses: vec![],
                    acceptances: vec![],
                }),
            )
            .sign(&stranger),
            GroupError::NotFromCreator,
        ),
    ];
    for (name, signed, expected) in cases_invitee {
        assert_eq!(
            ga.receive(&signed, &signed.encode(), &mut random_id, now),
            Err(expected),
            "{name}"
        );
        assert_eq!(ga.status, Status::Accepted, "{name} changed the state");
    }
    ga.receive(&good, &good.encode(), &mut random_id, now)
        .unwrap();
    assert_eq!(ga.status, Status::Active);
    let again = welcome_from(
        &creator,
        1,
        vec![member(&creator, vec![]), member(&a, response.encode())],
    );
    assert_eq!(
        ga.receive(&again, &again.encode(), &mut random_id, now),
        Err(GroupError::StaleEpoch { got: 1, have: 1 }),
        "a second epoch-1 welcome"
    );
}

#[test]
fn invitees_cannot_establish_or_answer_late() {
    let (_creator, a, _c, invite) = pair();
    let mut ga = Group::from_invite(a.public().ed25519, &invite, random_id(), 5).unwrap();
    assert_eq!(
        ga.establish(GroupKey::random(), &mut random_id, 7 * HOUR),
        Err(GroupError::NotCreator)
    );
    assert_eq!(
        ga.respond(true, GroupKey::random(), xkey(), random_id(), 7 * HOUR),
        Err(GroupError::WindowClosed)
    );
    assert_eq!(ga.status, Status::Expired);
    let late = Group::from_invite(a.public().ed25519, &invite, random_id(), 7 * HOUR).unwrap();
    assert_eq!(
        late.status,
        Status::Expired,
        "an invite read after its window"
    );
}

#[test]
fn late_and_mismatched_answers_are_flagged() {
    let (creator, a, mut c, invite) = pair();
    let mut ga = Group::from_invite(a.public().ed25519, &invite, random_id(), 5).unwrap();
    ga.respond(true, GroupKey::random(), xkey(), random_id(), 5)
        .unwrap();
    let resp = ga
        .take_unsent()
        .into_iter()
        .find(|o| matches!(o.control.body, Body::Response(_)))
        .unwrap();
    // The creator establishes (nobody answered in its view) before the answer arrives.
    c.establish(GroupKey::random(), &mut random_id, 7 * HOUR)
        .unwrap();
    assert_eq!(c.status, Status::Expired, "nobody accepted");
    let signed = resp.control.clone().sign(&a);
    c.take_unsent();
    assert_eq!(
        c.receive(&signed, &signed.encode(), &mut random_id, 7 * HOUR),
        Err(GroupError::Late)
    );
    assert!(c
        .take_unsent()
        .iter()
        .any(|o| o.control.body == Body::Closed(ClosedReason::TooLate)));

    // An invitee shown a different list reports a different hash: the creator flags it.
    let (_creator2, b, mut c2, invite2) = pair();
    let _ = creator;
    let mut shown = invite2.clone();
    if let Body::Invite(i) = &mut shown.control.body {
        i.invitees.push(Person {
            id: [0xff; 32],
            name: "ghost".into(),
        });
    }
    let mut gb = Group::from_invite(b.public().ed25519, &shown, random_id(), 5).unwrap();
    gb.respond(true, GroupKey::random(), xkey(), random_id(), 5)
        .unwrap();
    let resp = gb
        .take_unsent()
        .into_iter()
        .find(|o| matches!(o.control.body, Body::Response(_)))
        .unwrap()
        .control
        .sign(&b);
    c2.receive(&resp, &resp.encode(), &mut random_id, 6)
        .unwrap();
    assert!(c2.flagged());
}

/// An invitee (or any contact) copies a real group's id into an invitation of its own and gets
/// it to another invitee first: refused, and the real invitation is still taken.
#[test]
fn a_squatted_group_id_is_refused_and_the_real_invitation_still_arrives() {
    let (_creator, a, _c, real) = pair();
    let mallory = Identity::generate();
    let mut squat = real.control.clone();
    squat.id = random_id();
    let squat = squat.sign(&mallory);
    assert_eq!(
        Group::from_invite(a.public().ed25519, &squat, random_id(), 5).unwrap_err(),
        GroupError::IdNotBound
    );
    // Even re-using the real invitation's own id (so the id would derive, were the signer the
    // creator): the id is bound to the creator's key, not to the message.
    let replayed_as_mallory = real.control.clone().sign(&mallory);
    assert_eq!(
        Group::from_invite(a.public().ed25519, &replayed_as_mallory, random_id(), 5).unwrap_err(),
        GroupError::IdNotBound
    );
    let g = Group::from_invite(a.public().ed25519, &real, random_id(), 5).unwrap();
    assert_eq!(g.creator, real.signer);
}

/// A creator running modified code tries two split views at establishment; the member who
/// receives the Welcome catches both.
#[test]
fn a_welcome_leaving_out_an_acceptor_is_flagged_and_one_with_a_late_answer_is_refused() {
    let creator = Identity::generate();
    let (a, b) = (Identity::generate(), Identity::generate());
    let invite = invite_for(&[&a, &b], 0);
    let expires_at = invite.expires_at;
    let mut c = Group::create(
        creator.public().ed25519,
        invite,
        random_id(),
        GroupKey::random(),
        0,
    );
    let invites = c.take_unsent();
    let signed_invite = |who: &Identity| {
        invites
            .iter()
            .find(|o| o.to == who.public().ed25519)
            .unwrap()
            .control
            .clone()
            .sign(&creator)
    };
    let accept = |who: &Identity, g: &mut Group| {
        g.respond(true, GroupKey::random(), xkey(), random_id(), 10)
            .unwrap();
        g.take_unsent()
            .into_iter()
            .find(|o| matches!(o.control.body, Body::Response(_)))
            .unwrap()
            .control
            .sign(who)
    };
    let mut ga =
        Group::from_invite(a.public().ed25519, &signed_invite(&a), random_id(), 5).unwrap();
    let mut gb =
        Group::from_invite(b.public().ed25519, &signed_invite(&b), random_id(), 5).unwrap();
    let (ra, rb) = (accept(&a, &mut ga), accept(&b, &mut gb));
    for r in [&ra, &rb] {
        c.receive(r, &r.encode(), &mut random_id, 20).unwrap();
    }
    // A sees the creator's roster: both accepted.
    let roster = c
        .take_unsent()
        .into_iter()
        .rfind(|o| o.to == a.public().ed25519 && matches!(o.control.body, Body::Roster(_)))
        .unwrap()
        .control
        .sign(&creator);
    ga.receive(&roster, &roster.encode(), &mut random_id, 30)
        .unwrap();
    assert_eq!(ga.statuses[&b.public().ed25519], InviteeStatus::Accepted);

    let member = |id: &Identity, response: &SignedControl| Member {
        id: id.public().ed25519,
        name: "m".into(),
        bucket_pub: match &response.control.body {
            Body::Response(r) => r.bucket_pub.unwrap(),
            _ => unreachable!(),
        },
        x25519: match &response.control.body {
            Body::Response(r) => r.x25519,
            _ => unreachable!(),
        },
        response: response.encode(),
    };
    let creator_member = Member {
        id: creator.public().ed25519,
        name: "c".into(),
        bucket_pub: [1; 32],
        x25519: c.invite.creator_x25519,
        response: Vec::new(),
    };
    let welcome = |members: Vec<Member>| {
        Control::new(
            c.group_id,
            40,
            Body::Welcome(Welcome {
                epoch: 1,
                key: GroupKey::random(),
                members,
            }),
        )
        .sign(&creator)
    };

    // B's "acceptance" re-signed by B with a time after the window (a creator colluding with a
    // late B, or replaying a late answer): refused.
    let mut late = rb.control.clone();
    if let Body::Response(r) = &mut late.body {
        r.responded_at = expires_at + 1;
    }
    let late = late.sign(&b);
    let w = welcome(vec![
        creator_member.clone(),
        member(&a, &ra),
        member(&b, &late),
    ]);
    assert_eq!(
        ga.clone().receive(&w, &w.encode(), &mut random_id, 50),
        Err(GroupError::BadResponse("answered outside the window"))
    );

    // B left out although the roster showed B accepted: established, and flagged naming B.
    let w = welcome(vec![creator_member, member(&a, &ra)]);
    ga.receive(&w, &w.encode(), &mut random_id, 50).unwrap();
    assert_eq!(ga.status, Status::Active);
    assert!(ga.flagged());
    assert_eq!(
        ga.flags.iter().map(|f| (f.who, f.kind)).collect::<Vec<_>>(),
        vec![(Some(b.public().ed25519), FlagKind::AcceptedMemberLeftOut)]
    );
}

/// The invitation queued for `who` among `invites`, not yet signed.
fn invitation_to(invites: &[Outgoing], who: &Identity) -> Control {
    invites
        .iter()
        .find(|o| o.to == who.public().ed25519)
        .unwrap()
        .control
        .clone()
}

/// `who` receives `invitation` (signed by `creator`) and answers: its group and signed answer.
fn answer(
    creator: &Identity,
    invitation: Control,
    who: &Identity,
    accept: bool,
) -> (Group, SignedControl) {
    let signed = invitation.sign(creator);
    let mut g = Group::from_invite(who.public().ed25519, &signed, random_id(), 5).unwrap();
    g.respond(
        accept,
        GroupKey::random(),
        who.public().x25519,
        random_id(),
        10,
    )
    .unwrap();
    let r = g
        .take_unsent()
        .into_iter()
        .find(|o| matches!(o.control.body, Body::Response(_)))
        .unwrap()
        .control
        .sign(who);
    (g, r)
}

/// A creator `c` and two invitees who both accepted (`ga`, `gb` with their signed answers).
struct Trio {
    creator: Identity,
    a: Identity,
    b: Identity,
    c: Group,
    ga: Group,
    ra: SignedControl,
    rb: SignedControl,
}

fn trio_accepted() -> Trio {
    let creator = Identity::generate();
    let (a, b) = (Identity::generate(), Identity::generate());
    let mut c = Group::create(
        creator.public().ed25519,
        invite_for(&[&a, &b], 0),
        random_id(),
        GroupKey::random(),
        0,
    );
    let invites = c.take_unsent();
    let (ga, ra) = answer(&creator, invitation_to(&invites, &a), &a, true);
    let (_, rb) = answer(&creator, invitation_to(&invites, &b), &b, true);
    for r in [&ra, &rb] {
        c.receive(r, &r.encode(), &mut random_id, 20).unwrap();
    }
    Trio {
        creator,
        a,
        b,
        c,
        ga,
        ra,
        rb,
    }
}

fn window_key(r: &SignedControl) -> [u8; 32] {
    match &r.control.body {
        Body::Response(r) => r.window_bucket_pub.unwrap(),
        _ => unreachable!(),
    }
}

/// PROTOCOL.md §5 (window buckets): an acceptor learns another acceptor's window bucket key
/// from the roster, as that acceptor signed it; the creator cannot put another key there.
#[test]
fn window_bucket_keys_come_from_each_owners_signed_answer() {
    let mut t = trio_accepted();
    let (a_key, b_key) = (t.a.public().ed25519, t.b.public().ed25519);
    assert_eq!(t.c.window_buckets[&b_key], window_key(&t.rb));
    assert_eq!(t.ga.window_buckets[&a_key], window_key(&t.ra));
    // Window bucket keys are not derivable from the temporary key any more: every owner's
    // differs from every other's and from the creator's.
    assert_ne!(window_key(&t.ra), window_key(&t.rb));
    assert_ne!(window_key(&t.rb), t.c.invite.creator_window_bucket);

    let roster = |statuses: Vec<(MemberKey, InviteeStatus)>, acceptances: Vec<Vec<u8>>| {
        Control::new(
            t.c.group_id,
            30,
            Body::Roster(RosterUpdate {
                version: 50,
                statuses,
                acceptances,
            }),
        )
        .sign(&t.creator)
    };
    let mut sorted = [(a_key, t.ra.clone()), (b_key, t.rb.clone())];
    sorted.sort_by_key(|(k, _)| *k);
    let accepted: Vec<(MemberKey, InviteeStatus)> = sorted
        .iter()
        .map(|(k, _)| (*k, InviteeStatus::Accepted))
        .collect();
    // The creator's modified client hands A's answer off as B's (so B's window bucket would be
    // A's key, which A could then empty): refused, B's key is not learned.
    let swapped = roster(accepted.clone(), vec![t.ra.encode(), t.ra.encode()]);
    assert_eq!(
        t.ga.clone()
            .receive(&swapped, &swapped.encode(), &mut random_id, 30),
        Err(GroupError::BadResponse("not the member's own"))
    );
    // A B answer re-signed with another window key by someone else: refused likewise.
    let mut forged = t.rb.control.clone();
    if let Body::Response(r) = &mut forged.body {
        r.window_bucket_pub = Some([9; 32]);
    }
    let forged = forged.sign(&t.a);
    let in_order = |b: &SignedControl| {
        sorted
            .iter()
            .map(|(k, r)| if *k == b_key { b.encode() } else { r.encode() })
            .collect::<Vec<_>>()
    };
    let bad = roster(accepted.clone(), in_order(&forged));
    assert_eq!(
        t.ga.clone()
            .receive(&bad, &bad.encode(), &mut random_id, 30),
        Err(GroupError::BadResponse("not the member's own"))
    );
    assert!(!t.ga.window_buckets.contains_key(&b_key));
    // The real roster: A learns B's key as B announced it.
    let good = roster(accepted, in_order(&t.rb));
    t.ga.receive(&good, &good.encode(), &mut random_id, 30)
        .unwrap();
    assert_eq!(t.ga.window_buckets[&b_key], window_key(&t.rb));
}

/// PROTOCOL.md §5: the roster carries each member's X25519 key as that member signed it; the
/// creator cannot substitute one (which would let it read what is sealed to that member), and
/// the roster hash — hence the safety code — covers the keys.
#[test]
fn x25519_keys_in_the_roster_are_the_members_own_and_in_the_hash() {
    let mut t = trio_accepted();
    t.c.establish(GroupKey::random(), &mut random_id, 7 * HOUR)
        .unwrap();
    let welcome =
        t.c.outbox
            .iter()
            .find(|o| o.to == t.a.public().ed25519 && matches!(o.control.body, Body::Welcome(_)))
            .unwrap()
            .control
            .clone();
    let Body::Welcome(w) = &welcome.body else {
        unreachable!()
    };
    assert_eq!(w.members[0].x25519, t.c.invite.creator_x25519);
    assert!(w
        .members
        .iter()
        .any(|m| m.id == t.b.public().ed25519 && m.x25519 == t.b.public().x25519));

    let tamper = |f: &dyn Fn(&mut Welcome)| {
        let mut c = welcome.clone();
        if let Body::Welcome(w) = &mut c.body {
            f(w);
        }
        c.id = random_id();
        c.sign(&t.creator)
    };
    let b_key = t.b.public().ed25519;
    let other_b = tamper(&|w| {
        for m in &mut w.members {
            if m.id == b_key {
                m.x25519 = Identity::generate().public().x25519;
            }
        }
    });
    assert_eq!(
        t.ga.clone()
            .receive(&other_b, &other_b.encode(), &mut random_id, 8 * HOUR),
        Err(GroupError::BadResponse(
            "X25519 key differs from the member's"
        ))
    );
    let other_creator = tamper(&|w| w.members[0].x25519 = Identity::generate().public().x25519);
    assert_eq!(
        t.ga.clone().receive(
            &other_creator,
            &other_creator.encode(),
            &mut random_id,
            8 * HOUR
        ),
        Err(GroupError::BadResponse("the creator's X25519 key differs"))
    );
    let signed = welcome.sign(&t.creator);
    t.ga.receive(&signed, &signed.encode(), &mut random_id, 8 * HOUR)
        .unwrap();
    assert_eq!(t.ga.roster_hash(), t.c.roster_hash());
    let mut other = t.ga.clone();
    other.epochs[0].members[1].x25519 = Identity::generate().public().x25519;
    assert_ne!(other.roster_hash(), t.ga.roster_hash());
}

/// An acceptance with a low-order X25519 key (every secret sealed to it would be known to all)
/// is refused by the creator and not counted.
#[test]
fn an_acceptance_with_a_weak_x25519_key_is_not_counted() {
    let (creator, a, mut c, invite) = pair();
    let mut ga = Group::from_invite(a.public().ed25519, &invite, random_id(), 5).unwrap();
    ga.respond(true, GroupKey::random(), [0; 32], random_id(), 10)
        .unwrap();
    let r = ga
        .take_unsent()
        .into_iter()
        .find(|o| matches!(o.control.body, Body::Response(_)))
        .unwrap()
        .control
        .sign(&a);
    assert_eq!(
        c.receive(&r, &r.encode(), &mut random_id, 20),
        Err(GroupError::BadResponse("weak X25519 key"))
    );
    assert_ne!(c.statuses[&a.public().ed25519], InviteeStatus::Accepted);
    let _ = creator;
}

/// A creator (modified) shows B another invitation than A — here another temporary key, so it
/// could show them different window messages. A learns it from the roster during the window,
/// not only at establishment: B's signed answer reports another invitation hash.
#[test]
fn a_different_invitation_is_flagged_from_the_roster_during_the_window() {
    let creator = Identity::generate();
    let (a, b) = (Identity::generate(), Identity::generate());
    let mut c = Group::create(
        creator.public().ed25519,
        invite_for(&[&a, &b], 0),
        random_id(),
        GroupKey::random(),
        0,
    );
    let invites = c.take_unsent();
    let mut for_b = invitation_to(&invites, &b);
    if let Body::Invite(i) = &mut for_b.body {
        i.temp_key = GroupKey::random();
    }
    let (mut ga, ra) = answer(&creator, invitation_to(&invites, &a), &a, true);
    let (gb, rb) = answer(&creator, for_b, &b, true);
    assert_ne!(ga.list_hash(), gb.list_hash());
    for r in [ra, rb] {
        let _ = c.receive(&r, &r.encode(), &mut random_id, 20);
    }
    let roster = c
        .take_unsent()
        .into_iter()
        .rfind(|o| o.to == a.public().ed25519 && matches!(o.control.body, Body::Roster(_)))
        .unwrap()
        .control
        .sign(&creator);
    assert!(!ga.flagged());
    ga.receive(&roster, &roster.encode(), &mut random_id, 30)
        .unwrap();
    assert_eq!(
        ga.flags.iter().map(|f| (f.who, f.kind)).collect::<Vec<_>>(),
        vec![(Some(b.public().ed25519), FlagKind::InvitationListDiffers)]
    );
}

/// Bucket keys go only to those who accepted: an invitee who has not answered gets the roster's
/// statuses without the signed acceptances (and so without where members write); one who
/// rejected gets no further roster at all.
#[test]
fn acceptances_reach_only_those_who_accepted() {
    let creator = Identity::generate();
    let people: Vec<Identity> = (0..3).map(|_| Identity::generate()).collect();
    let mut c = Group::create(
        creator.public().ed25519,
        invite_for(&people.iter().collect::<Vec<_>>(), 0),
        random_id(),
        GroupKey::random(),
        0,
    );
    let invites = c.take_unsent();
    let (accepted, rejected, silent) = (&people[0], &people[1], &people[2]);
    for (who, accept) in [(accepted, true), (rejected, false)] {
        let (_, r) = answer(&creator, invitation_to(&invites, who), who, accept);
        c.receive(&r, &r.encode(), &mut random_id, 20).unwrap();
    }
    let rosters = c.take_unsent();
    let last_roster_to = |who: &Identity| {
        rosters.iter().rev().find_map(|o| match &o.control.body {
            Body::Roster(r) if o.to == who.public().ed25519 => Some(r.clone()),
            _ => None,
        })
    };
    assert_eq!(last_roster_to(accepted).unwrap().acceptances.len(), 1);
    let bare = last_roster_to(silent).unwrap();
    assert!(bare.acceptances.is_empty());
    assert!(bare
        .statuses
        .contains(&(accepted.public().ed25519, InviteeStatus::Accepted)));
    assert!(
        rosters
            .iter()
            .filter(|o| o.to == rejected.public().ed25519)
            .all(|o| !matches!(o.control.body, Body::Roster(_))),
        "the rejecter got a roster after rejecting"
    );
}
