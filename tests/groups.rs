//! The group flow between real app profiles on 127.0.0.1 (PROTOCOL.md §4): invitations, the
//! shared roster, the window, establishment, and who ends up holding the key. Windows are shrunk
//! through configuration; every wait is on pushed events with a timeout.

use std::time::Duration;

use kiyeovo_core::api::{GroupStatus, GroupView, MemberStatus};
use kiyeovo_core::group::envelope;
use kiyeovo_core::group::machine::GroupError;
use kiyeovo_core::group::service::GroupServiceError;
use kiyeovo_core::group::{GroupConfig, GroupEvent};
use kiyeovo_core::pairwise::channel::{ChannelError, ChannelEvent};
use kiyeovo_core::service::App;
use kiyeovo_tests::{befriend, bootstrap_node, start_online, wait_group, TestProfile};

fn config(window: Duration) -> GroupConfig {
    GroupConfig {
        window,
        tick: Duration::from_millis(200),
        resend: Duration::from_secs(2),
        auto_establish: false,
        ..GroupConfig::default()
    }
}

async fn start(profile: &TestProfile, boot: &str, window: Duration) -> App {
    start_with(profile, boot, config(window)).await
}

async fn start_with(profile: &TestProfile, boot: &str, group: GroupConfig) -> App {
    let mut c = profile.config(&[boot.to_string()]);
    c.group = group;
    start_online(c).await
}

fn status_of(view: &GroupView, app: &App) -> MemberStatus {
    let id = app.peer_id().to_string();
    view.members
        .iter()
        .find(|m| m.peer_id == id)
        .map(|m| m.status)
        .unwrap_or_else(|| panic!("{id} not on the roster"))
}

/// Whether any key `app` holds for the group opens `sealed`.
async fn can_read(app: &App, id: &str, sealed: &[u8]) -> bool {
    let gid = kiyeovo_core::group::store::parse_group_id(id).unwrap();
    match app.groups().keys_held(id).await {
        Ok(keys) => keys
            .iter()
            .any(|(epoch, key)| envelope::open(sealed, &gid, *epoch, key).is_ok()),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_of_five_accept_and_only_they_get_the_epoch_key() {
    let (boot, addr) = bootstrap_node().await;
    let window = Duration::from_secs(12);
    let pc = TestProfile::new("g-creator");
    let creator = start(&pc, &addr, window).await;
    let profiles: Vec<TestProfile> = (0..5)
        .map(|i| TestProfile::new(&format!("g-inv{i}")))
        .collect();
    let mut invitees = Vec::new();
    for p in &profiles {
        let app = start(p, &addr, window).await;
        befriend(&creator, &app).await;
        invitees.push(app);
    }
    let peers: Vec<_> = invitees.iter().map(|a| a.peer_id()).collect();
    let view = creator
        .groups()
        .create("Book club", &peers, "Creator")
        .await
        .unwrap();
    assert_eq!(view.status, GroupStatus::Inviting);
    assert_eq!(view.members.len(), 6);
    let id = view.group_id.clone();

    // Every invitee sees the invitation with the full roster, and its app confirms delivery.
    for app in &invitees {
        let v = wait_group(app, &id, "the invitation", |v| {
            v.status == GroupStatus::Invited
        })
        .await;
        assert_eq!(v.name, "Book club");
        // The creator is a contact: shown by the invitee's own name for them.
        assert!(v.members[0].is_contact);
        assert_eq!(v.creator_name, v.members[0].display_name);
        assert_eq!(v.members.len(), 6);
        assert!(v.can_respond && !v.can_establish);
        assert_eq!(v.expires_at, view.expires_at);
    }
    wait_group(&creator, &id, "every invitation delivered", |v| {
        v.members
            .iter()
            .skip(1)
            .all(|m| m.status == MemberStatus::Delivered)
    })
    .await;

    for app in &invitees[..3] {
        let v = app.groups().respond(&id, true).await.unwrap();
        assert_eq!(v.status, GroupStatus::Accepted);
    }
    invitees[3].groups().respond(&id, false).await.unwrap();
    assert!(matches!(
        invitees[3].groups().respond(&id, true).await,
        Err(GroupServiceError::Transition(GroupError::AlreadyResponded))
    ));

    // The roster updates live on the members' side.
    let v = wait_group(&invitees[0], &id, "the others' answers", |v| {
        status_of(v, &invitees[2]) == MemberStatus::Accepted
            && status_of(v, &invitees[3]) == MemberStatus::Rejected
    })
    .await;
    assert_eq!(status_of(&v, &invitees[4]), MemberStatus::Delivered);
    // An invitee can never establish.
    assert!(invitees[0].groups().establish(&id).await.is_err());

    // The window ends: the creator's app establishes on its own.
    let v = wait_group(&creator, &id, "establishment", |v| {
        v.status == GroupStatus::Active
    })
    .await;
    assert_eq!(v.epoch, 1);
    let expected = [
        MemberStatus::Accepted,
        MemberStatus::Accepted,
        MemberStatus::Accepted,
        MemberStatus::Rejected,
        MemberStatus::Expired,
    ];
    for (app, want) in invitees.iter().zip(expected) {
        assert_eq!(status_of(&v, app), want);
    }
    let (epoch, key) = creator.groups().key(&id).await.unwrap();
    assert_eq!(epoch, 1);
    let code = v
        .safety_code
        .clone()
        .expect("an established group has a safety code");
    for app in &invitees[..3] {
        wait_group(app, &id, "the Welcome", |v| v.status == GroupStatus::Active).await;
        let (e, k) = app.groups().key(&id).await.unwrap();
        assert_eq!(
            (e, &k),
            (1, &key),
            "acceptors hold the creator's epoch-1 key"
        );
        let theirs = app.groups().get(&id).await.unwrap().safety_code;
        assert_eq!(
            theirs.as_ref(),
            Some(&code),
            "every member sees the same safety code"
        );
    }
    wait_group(&invitees[4], &id, "expiry", |v| {
        v.status == GroupStatus::Expired
    })
    .await;
    assert_eq!(
        invitees[3].groups().get(&id).await.unwrap().status,
        GroupStatus::Rejected
    );

    // An epoch-1 message: readable by every acceptor, not by the rejecter or the silent one.
    let sealed = invitees[0]
        .groups()
        .seal(&id, 1, "welcome all")
        .await
        .unwrap();
    assert!(can_read(&creator, &id, &sealed).await);
    for app in &invitees[..3] {
        assert!(can_read(app, &id, &sealed).await);
    }
    for app in &invitees[3..] {
        assert!(app.groups().key(&id).await.is_err());
        assert!(!can_read(app, &id, &sealed).await);
    }

    for app in invitees {
        app.shutdown().await;
    }
    creator.shutdown().await;
    boot.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyone_accepts_early_and_the_creator_establishes_at_once() {
    let (boot, addr) = bootstrap_node().await;
    let six_hours = Duration::from_secs(6 * 3600);
    let (pc, pa, pb, pp) = (
        TestProfile::new("e-creator"),
        TestProfile::new("e-a"),
        TestProfile::new("e-b"),
        TestProfile::new("e-pending"),
    );
    let creator = start(&pc, &addr, six_hours).await;
    let a = start(&pa, &addr, six_hours).await;
    let b = start(&pb, &addr, six_hours).await;
    let pending = start(&pp, &addr, six_hours).await;
    befriend(&creator, &a).await;
    befriend(&creator, &b).await;
    // Added on one side only: never trusted.
    creator
        .channel()
        .add_contact(&pending.my_card())
        .await
        .unwrap();

    // Refusals before anything is sent.
    let err = creator
        .groups()
        .create("Team", &[a.peer_id(), pending.peer_id()], "C")
        .await
        .unwrap_err();
    assert!(
        matches!(err, GroupServiceError::Contact(ChannelError::NotTrusted(_))),
        "{err}"
    );
    let strangers: Vec<_> = (0..10).map(|_| libp2p::PeerId::random()).collect();
    let err = creator
        .groups()
        .create("Team", &strangers, "C")
        .await
        .unwrap_err();
    assert!(matches!(err, GroupServiceError::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("at most 10 members"), "{err}");
    let err = creator.groups().create("Team", &[], "C").await.unwrap_err();
    assert!(matches!(err, GroupServiceError::InvalidInput(_)), "{err}");
    assert!(creator.groups().list().await.unwrap().is_empty());

    let id = creator
        .groups()
        .create("Team", &[a.peer_id(), b.peer_id()], "C")
        .await
        .unwrap()
        .group_id;
    wait_group(&a, &id, "invite at a", |v| v.can_respond).await;
    a.groups().respond(&id, true).await.unwrap();
    let v = wait_group(&creator, &id, "a's answer", |v| {
        status_of(v, &a) == MemberStatus::Accepted
    })
    .await;
    assert!(!v.can_establish, "not everyone accepted yet");

    // Window chat: the acceptor and the creator already talk with the temporary key; an
    // invitee who has not answered cannot write.
    let mut rx = creator.chat().subscribe();
    let sent = a.chat().send(&id, "hello during the window").await.unwrap();
    assert_eq!(sent.epoch, 0);
    loop {
        let msgs = creator.chat().chat(&id).await.unwrap().messages;
        if msgs
            .iter()
            .any(|m| m.body == "hello during the window" && m.epoch == 0)
        {
            break;
        }
        kiyeovo_tests::wait_event(&mut rx, "the window message", |e| {
            matches!(e, kiyeovo_core::group::ChatEvent::Received { .. })
        })
        .await;
    }
    wait_group(&b, &id, "invite at b", |v| v.can_respond).await;
    assert!(matches!(
        b.chat().send(&id, "too early").await,
        Err(kiyeovo_core::group::chat::ChatError::NotAMember)
    ));
    assert!(matches!(
        creator.groups().establish(&id).await,
        Err(GroupServiceError::Transition(GroupError::WindowOpen))
    ));
    wait_group(&b, &id, "invite at b", |v| v.can_respond).await;
    b.groups().respond(&id, true).await.unwrap();
    wait_group(&creator, &id, "everyone accepted", |v| v.can_establish).await;
    let v = creator.groups().establish(&id).await.unwrap();
    assert_eq!(v.status, GroupStatus::Active);
    for app in [&a, &b] {
        wait_group(app, &id, "the Welcome", |v| v.status == GroupStatus::Active).await;
        assert!(!app.groups().get(&id).await.unwrap().list_mismatch);
    }

    for app in [a, b, pending, creator] {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acceptors_wait_for_an_offline_creator_then_get_the_key() {
    let (boot, addr) = bootstrap_node().await;
    let window = Duration::from_secs(6);
    let (pc, pa, pb) = (
        TestProfile::new("w-creator"),
        TestProfile::new("w-a"),
        TestProfile::new("w-b"),
    );
    let creator = start(&pc, &addr, window).await;
    let a = start(&pa, &addr, window).await;
    let b = start(&pb, &addr, window).await;
    befriend(&creator, &a).await;
    befriend(&creator, &b).await;
    let id = creator
        .groups()
        .create("Trip", &[a.peer_id(), b.peer_id()], "C")
        .await
        .unwrap()
        .group_id;
    wait_group(&a, &id, "invite at a", |v| v.can_respond).await;
    a.groups().respond(&id, true).await.unwrap();
    wait_group(&creator, &id, "a's answer", |v| {
        status_of(v, &a) == MemberStatus::Accepted
    })
    .await;
    creator.shutdown().await;

    // The window ends with the creator away: a waits; it cannot establish itself.
    let v = wait_group(&a, &id, "waiting for the creator", |v| {
        v.status == GroupStatus::WaitingForCreator
    })
    .await;
    assert!(!v.can_establish && !v.can_respond);
    assert!(matches!(
        a.groups().establish(&id).await,
        Err(GroupServiceError::Transition(GroupError::NotCreator))
    ));
    assert!(
        a.groups().key(&id).await.unwrap().0 == 0,
        "still only the temporary key"
    );

    // The creator comes back: its app establishes on start, a gets the key, b is out.
    let creator = start(&pc, &addr, window).await;
    let v = wait_group(&creator, &id, "establishment after restart", |v| {
        v.status == GroupStatus::Active
    })
    .await;
    assert_eq!(status_of(&v, &b), MemberStatus::Expired);
    wait_group(&a, &id, "the Welcome", |v| v.status == GroupStatus::Active).await;
    assert_eq!(
        a.groups().key(&id).await.unwrap(),
        creator.groups().key(&id).await.unwrap()
    );
    assert!(b.groups().key(&id).await.is_err());

    for app in [a, b, creator] {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitee_offline_for_the_whole_window_sees_it_expired() {
    let (boot, addr) = bootstrap_node().await;
    let window = Duration::from_secs(5);
    let (pc, pa, pl) = (
        TestProfile::new("o-creator"),
        TestProfile::new("o-a"),
        TestProfile::new("o-late"),
    );
    let creator = start(&pc, &addr, window).await;
    let a = start(&pa, &addr, window).await;
    let late = start(&pl, &addr, window).await;
    befriend(&creator, &a).await;
    befriend(&creator, &late).await;
    let late_peer = late.peer_id();
    late.shutdown().await;

    let id = creator
        .groups()
        .create("Dinner", &[a.peer_id(), late_peer], "C")
        .await
        .unwrap()
        .group_id;
    wait_group(&a, &id, "invite at a", |v| v.can_respond).await;
    a.groups().respond(&id, true).await.unwrap();
    wait_group(&creator, &id, "establishment", |v| {
        v.status == GroupStatus::Active
    })
    .await;

    // Back online after the window: the invitation is read from the bucket, already expired.
    let late = start(&pl, &addr, window).await;
    let v = wait_group(&late, &id, "the expired invitation", |v| {
        v.status == GroupStatus::Expired
    })
    .await;
    assert!(!v.can_respond);
    assert!(matches!(
        late.groups().respond(&id, true).await,
        Err(GroupServiceError::Transition(_))
    ));
    assert!(late.groups().key(&id).await.is_err());

    for app in [a, late, creator] {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_invitations_are_never_stored_or_shown() {
    let (boot, addr) = bootstrap_node().await;
    // No re-sends during the test: a re-sent first invitation after the unblock would (rightly)
    // be shown, and this test is about what happens while blocked.
    let group = GroupConfig {
        resend: Duration::from_secs(3600),
        ..config(Duration::from_secs(6 * 3600))
    };
    let (pc, pb, pd) = (
        TestProfile::new("b-creator"),
        TestProfile::new("b-global"),
        TestProfile::new("b-percontact"),
    );
    let creator = start_with(&pc, &addr, group).await;
    let b = start_with(&pb, &addr, group).await;
    let d = start_with(&pd, &addr, group).await;
    befriend(&creator, &b).await;
    befriend(&creator, &d).await;
    // b blocks every invitation; d blocks invitations from the creator only.
    b.set_block_invites(true).await.unwrap();
    assert!(b.snapshot().block_invites);
    d.channel()
        .set_invites_blocked(&creator.peer_id(), true)
        .await
        .unwrap();

    let members = [b.peer_id(), d.peer_id()];
    let (mut cb, mut cd) = (b.channel().subscribe(), d.channel().subscribe());
    let first = creator
        .groups()
        .create("Blocked", &members, "C")
        .await
        .unwrap()
        .group_id;
    // The invitation reaches both apps (the channel hands it to the group inbox) and is dropped
    // there: nothing stored, nothing shown, no event.
    let from_creator = ChannelEvent::GroupControl {
        peer: creator.peer_id(),
    };
    for (app, rx) in [(&b, &mut cb), (&d, &mut cd)] {
        kiyeovo_tests::wait_event(rx, "the first invitation", |e| *e == from_creator).await;
        app.groups().process_inbox().await;
        assert!(app.groups().list().await.unwrap().is_empty());
    }
    // Both unblock; a second invitation arrives and is shown.
    let (mut eb, mut ed) = (b.groups().subscribe(), d.groups().subscribe());
    b.set_block_invites(false).await.unwrap();
    d.channel()
        .set_invites_blocked(&creator.peer_id(), false)
        .await
        .unwrap();
    let second = creator
        .groups()
        .create("Allowed", &members, "C")
        .await
        .unwrap()
        .group_id;
    for (app, rx) in [(&b, &mut eb), (&d, &mut ed)] {
        kiyeovo_tests::wait_event(rx, "the second invitation", |e| {
            matches!(e, GroupEvent::Invited { .. })
        })
        .await;
        let groups = app.groups().list().await.unwrap();
        let ids: Vec<_> = groups.iter().map(|g| g.group_id.clone()).collect();
        assert_eq!(
            ids,
            vec![second.clone()],
            "only the unblocked invitation is stored"
        );
    }
    let v = creator.groups().get(&first).await.unwrap();
    assert!(v
        .members
        .iter()
        .skip(1)
        .all(|m| m.status == MemberStatus::NotDelivered));

    for app in [b, d, creator] {
        app.shutdown().await;
    }
    boot.shutdown().await;
}
