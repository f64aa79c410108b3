//! Membership after establishment between real app profiles on 127.0.0.1 (PROTOCOL.md
//! §4.7–4.9): remove, leave, hand over, disband, rotate, and a member offline across changes.
//! Versions reach members pushed over the pairwise channel when they are the admin's contacts,
//! and by walking the chain in the DHT otherwise.

use std::collections::BTreeMap;

use kiyeovo_core::api::{GroupStatus, GroupView, MemberStatus};
use kiyeovo_core::group::changes::AdminAction;
use kiyeovo_core::group::chat::ChatDrop;
use kiyeovo_core::group::envelope::{self, Sealing};
use kiyeovo_core::group::machine::roster_hash;
use kiyeovo_core::group::store::parse_group_id;
use kiyeovo_core::service::App;
use kiyeovo_tests::{
    bootstrap_node, group_of, start_group_app, wait_bodies, wait_connected, wait_group, WAIT,
};

/// The peer ids in `v`'s current roster.
fn roster(v: &GroupView) -> Vec<String> {
    v.roster.iter().map(|m| m.peer_id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_is_refused_by_all_and_reads_nothing_of_the_new_epoch() {
    let (boot, addr) = bootstrap_node().await;
    let (profiles, apps, id) = group_of("rm", 3, &addr).await;
    wait_connected(&apps).await;
    let (ana, ben, cai) = (&apps[0], &apps[1], &apps[2]);
    let gid = parse_group_id(&id).unwrap();
    cai.chat().send(&id, "cai before").await.unwrap();
    wait_bodies(ben, &id, &["cai before"]).await;
    wait_bodies(ana, &id, &["cai before"]).await;
    // A rotation first: Cai then holds two epoch keys when she is removed.
    ana.groups()
        .admin_action(&id, AdminAction::Rotate)
        .await
        .unwrap();
    wait_group(ben, &id, "epoch 2", |v| v.epoch == 2).await;
    wait_group(cai, &id, "epoch 2", |v| v.epoch == 2).await;
    let before = ben.groups().get(&id).await.unwrap().safety_code;

    let v = ana
        .groups()
        .admin_action(&id, AdminAction::Remove(cai.peer_id()))
        .await
        .unwrap();
    assert_eq!(v.epoch, 3);
    assert!(!roster(&v).contains(&cai.peer_id().to_string()));
    let v = wait_group(ben, &id, "the new epoch", |v| v.epoch == 3).await;
    assert!(!roster(&v).contains(&cai.peer_id().to_string()));
    assert_ne!(v.safety_code, before, "the safety code follows the epoch");
    assert_eq!(
        v.safety_code,
        ana.groups().get(&id).await.unwrap().safety_code
    );
    assert!(
        v.changes.iter().any(|c| c.text.contains(" removed ")),
        "{:?}",
        v.changes
    );
    let v = wait_group(cai, &id, "told it was removed", |v| {
        v.status == GroupStatus::Removed
    })
    .await;
    assert!(
        v.changes.iter().any(|c| c.text.contains("removed you")),
        "{:?}",
        v.changes
    );
    // Its own app no longer writes.
    assert!(cai.chat().send(&id, "still here?").await.is_err());

    // Modified code: Cai writes in the epochs she still has keys for — epoch 2 (just ended,
    // bounded by the version that removed her) and epoch 1 (older: bounded by what each member
    // holds of her) — validly signed, with the roster hash everyone holds: all refused.
    let cai_identity = profiles[2].keystore().load_identity().unwrap().unwrap();
    let keys: BTreeMap<u32, _> = cai
        .groups()
        .keys_held(&id)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert!(
        !keys.contains_key(&3),
        "a removed member holds no key of the new epoch"
    );
    let cai_group = cai.groups().load_group(&gid).await.unwrap();
    let late = envelope::seal(
        &Sealing {
            identity: &cai_identity,
            key: &keys[&1],
            group_id: gid,
            epoch: 1,
            seq: 2,
            msg_id: kiyeovo_core::group::control::random_id(),
            sent_at: kiyeovo_core::time::now_ms(),
            roster_hash: roster_hash(&gid, 1, &cai_group.epochs[0].members),
        },
        "after removal",
    )
    .unwrap();
    let late_in_2 = envelope::seal(
        &Sealing {
            identity: &cai_identity,
            key: &keys[&2],
            group_id: gid,
            epoch: 2,
            seq: 1,
            msg_id: kiyeovo_core::group::control::random_id(),
            sent_at: kiyeovo_core::time::now_ms(),
            roster_hash: roster_hash(&gid, 2, &cai_group.epochs[1].members),
        },
        "after removal, in epoch 2",
    )
    .unwrap();
    for app in [ana, ben] {
        let refused = app.chat().ingest(&id, &late).await;
        assert!(
            matches!(
                refused,
                Err(ChatDrop::AfterBoundary {
                    seq: 2,
                    boundary: 1
                })
            ),
            "{}: {refused:?}",
            app.profile()
        );
        let refused = app.chat().ingest(&id, &late_in_2).await;
        assert!(
            matches!(
                refused,
                Err(ChatDrop::AfterBoundary {
                    seq: 1,
                    boundary: 0
                })
            ),
            "{} (epoch 2): {refused:?}",
            app.profile()
        );
    }

    // The new epoch: Ana and Ben read each other; Cai reads none of it.
    ana.chat().send(&id, "ana after").await.unwrap();
    ben.chat().send(&id, "ben after").await.unwrap();
    wait_bodies(ben, &id, &["cai before", "ana after", "ben after"]).await;
    wait_bodies(ana, &id, &["cai before", "ana after", "ben after"]).await;
    cai.chat().poll_all().await;
    wait_bodies(cai, &id, &["cai before"]).await;
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_hand_over_leave_remove_and_disband() {
    let (boot, addr) = bootstrap_node().await;
    let (_profiles, apps, id) = group_of("lh", 5, &addr).await;
    wait_connected(&apps).await;
    let (ana, ben, cai, dan, eve) = (&apps[0], &apps[1], &apps[2], &apps[3], &apps[4]);
    let peer = |a: &App| a.peer_id().to_string();

    // Ben leaves: at once for him; Ana (admin) writes him out; everyone sees "… left".
    let v = ben.groups().leave(&id).await.unwrap();
    assert_eq!(v.status, GroupStatus::Left);
    assert!(ben.chat().send(&id, "after leaving").await.is_err());
    for app in [ana, cai, dan, eve] {
        let v = wait_group(app, &id, "Ben written out", |v| v.epoch == 2).await;
        assert!(!roster(&v).contains(&peer(ben)));
        assert!(
            v.changes.iter().any(|c| c.text.ends_with(" left")),
            "{:?}",
            v.changes
        );
    }
    assert_eq!(
        ben.groups().get(&id).await.unwrap().status,
        GroupStatus::Left
    );
    // The admin cannot just leave.
    assert!(ana.groups().leave(&id).await.is_err());

    // Ana hands over to Cai, then leaves; Cai (not a contact of Dan or Eve: they learn from
    // the chain in the DHT) writes her out and removes Dan, then ends the group.
    ana.groups()
        .admin_action(&id, AdminAction::HandOver(cai.peer_id()))
        .await
        .unwrap();
    for app in [cai, dan, eve] {
        let v = wait_group(app, &id, "Cai is admin", |v| v.epoch == 3).await;
        let admin: Vec<&str> = v
            .roster
            .iter()
            .filter(|m| m.status == MemberStatus::Admin)
            .map(|m| m.peer_id.as_str())
            .collect();
        assert_eq!(admin, [peer(cai).as_str()]);
    }
    assert!(wait_group(cai, &id, "admin", |v| v.is_admin).await.is_admin);
    assert!(
        ana.groups()
            .admin_action(&id, AdminAction::Rotate)
            .await
            .is_err(),
        "the old admin can no longer change anything"
    );
    ana.groups().leave(&id).await.unwrap();
    for app in [cai, dan, eve] {
        let v = wait_group(app, &id, "Ana written out", |v| v.epoch == 4).await;
        assert!(!roster(&v).contains(&peer(ana)));
    }
    cai.groups()
        .admin_action(&id, AdminAction::Remove(dan.peer_id()))
        .await
        .unwrap();
    wait_group(dan, &id, "Dan removed", |v| {
        v.status == GroupStatus::Removed
    })
    .await;
    let v = wait_group(eve, &id, "Dan gone", |v| v.epoch == 5).await;
    let mut left = roster(&v);
    left.sort();
    let mut want = vec![peer(cai), peer(eve)];
    want.sort();
    assert_eq!(left, want);
    eve.chat().send(&id, "eve in 5").await.unwrap();
    wait_bodies(cai, &id, &["eve in 5"]).await;
    cai.groups()
        .admin_action(&id, AdminAction::Disband)
        .await
        .unwrap();
    let v = wait_group(eve, &id, "ended", |v| v.status == GroupStatus::Disbanded).await;
    assert!(
        v.changes
            .iter()
            .any(|c| c.text.ends_with("ended the group")),
        "{:?}",
        v.changes
    );
    assert!(eve.chat().send(&id, "anyone?").await.is_err());
    // History stays readable.
    wait_bodies(eve, &id, &["eve in 5"]).await;
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_offline_across_add_remove_rotate_comes_back_current() {
    let (boot, addr) = bootstrap_node().await;
    let (profiles, mut apps, id) = group_of("off", 4, &addr).await;
    wait_connected(&apps).await;
    let eve_profile = kiyeovo_tests::TestProfile::new("off-eve");
    let eve = start_group_app(&eve_profile, &addr).await;
    kiyeovo_tests::befriend(&apps[0], &eve).await;
    // Dan goes away.
    let dan = apps.pop().unwrap();
    dan.shutdown().await;
    let (ana, ben, cai) = (&apps[0], &apps[1], &apps[2]);
    ana.chat().send(&id, "e1 ana").await.unwrap();
    // Add: Eve joins at epoch 2.
    ana.groups()
        .add_members(&id, &[eve.peer_id()], "Ana")
        .await
        .unwrap();
    wait_group(&eve, &id, "the add invitation", |v| v.can_respond).await;
    eve.groups().respond(&id, true).await.unwrap();
    wait_group(ben, &id, "epoch 2", |v| v.epoch == 2).await;
    wait_group(&eve, &id, "epoch 2", |v| v.epoch == 2).await;
    ben.chat().send(&id, "e2 ben").await.unwrap();
    ana.groups()
        .admin_action(&id, AdminAction::Remove(cai.peer_id()))
        .await
        .unwrap();
    wait_group(ben, &id, "epoch 3", |v| v.epoch == 3).await;
    ben.chat().send(&id, "e3 ben").await.unwrap();
    ana.groups()
        .admin_action(&id, AdminAction::Rotate)
        .await
        .unwrap();
    wait_group(ben, &id, "epoch 4", |v| v.epoch == 4).await;
    ana.chat().send(&id, "e4 ana").await.unwrap();
    let all = ["e1 ana", "e2 ben", "e3 ben", "e4 ana"];
    wait_bodies(ben, &id, &all).await;
    wait_bodies(cai, &id, &["e1 ana", "e2 ben"]).await;
    wait_bodies(&eve, &id, &["e2 ben", "e3 ben", "e4 ana"]).await;

    // Dan is back: no action, and it is current with every message it was entitled to.
    let dan = start_group_app(&profiles[3], &addr).await;
    let v = wait_group(&dan, &id, "current", |v| v.epoch == 4).await;
    assert_eq!(v.status, GroupStatus::Active);
    assert_eq!(
        v.safety_code,
        ana.groups().get(&id).await.unwrap().safety_code
    );
    wait_bodies(&dan, &id, &all).await;
    let held: Vec<u32> = dan
        .groups()
        .keys_held(&id)
        .await
        .unwrap()
        .iter()
        .map(|(e, _)| *e)
        .collect();
    assert_eq!(held, [0, 1, 2, 3, 4]);
    let cai_held: Vec<u32> = cai
        .groups()
        .keys_held(&id)
        .await
        .unwrap()
        .iter()
        .map(|(e, _)| *e)
        .collect();
    assert_eq!(
        cai_held,
        [0, 1, 2],
        "the removed member holds nothing after its epochs"
    );
    let eve_held: Vec<u32> = kiyeovo_tests::epochs_held(&eve, &id).await;
    assert_eq!(
        eve_held,
        [2, 3, 4],
        "the joiner holds nothing before its epoch"
    );
    dan.shutdown().await;
    eve.shutdown().await;
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// The first message after a change reaches a member online at once, over gossip. (Should
/// nobody have joined the new topic yet when the admin writes, it is published again as they
/// join; on loopback they have usually joined already — see README "Still open".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_message_after_a_change_arrives_live() {
    use kiyeovo_core::group::ChatEvent;
    let (boot, addr) = bootstrap_node().await;
    let (_profiles, apps, id) = group_of("live", 3, &addr).await;
    wait_connected(&apps).await;
    let (ana, ben, cai) = (&apps[0], &apps[1], &apps[2]);
    let mut ben_rx = ben.chat().subscribe();
    let mut cai_rx = cai.chat().subscribe();
    ana.groups()
        .admin_action(&id, AdminAction::Rotate)
        .await
        .unwrap();
    // At once: before Ben or Cai have even applied the new version.
    let sent = ana.chat().send(&id, "first in epoch 2").await.unwrap();
    assert_eq!(sent.epoch, 2);
    for rx in [&mut ben_rx, &mut cai_rx] {
        kiyeovo_tests::wait_event(rx, "the first message, live", |e| {
            matches!(
                e,
                ChatEvent::Received {
                    epoch: 2,
                    live: true,
                    ..
                }
            )
        })
        .await;
    }
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Adding members (PROTOCOL.md §4.7 Add): an add round with its own window into the running
/// group. Eve accepts and joins at the next epoch (never with an older key, reading nothing of
/// before); Finn rejects; Gus never answers and the window closes on him; Ben (a member) sees
/// "Ana added Eve". Carol, removed earlier, is added back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_accept_reject_expire_and_add_back() {
    use kiyeovo_tests::{form_group, group_config, start_online, TestProfile};
    let (boot, addr) = bootstrap_node().await;
    let names = ["ana", "ben", "cai", "eve", "finn", "gus"];
    let profiles: Vec<TestProfile> = names
        .iter()
        .map(|n| TestProfile::new(&format!("add-{n}")))
        .collect();
    // Ana's add window is short, so Gus's invitation expires inside the test.
    let window = std::time::Duration::from_secs(20);
    let mut apps = Vec::new();
    for (i, p) in profiles.iter().enumerate() {
        let mut c = p.config(std::slice::from_ref(&addr));
        c.group = group_config();
        if i == 0 {
            c.group.window = window;
        }
        apps.push(start_online(c).await);
    }
    let id = form_group(&apps[..3]).await;
    wait_connected(&apps[..3]).await;
    let (ana, ben, cai, eve, finn, gus) =
        (&apps[0], &apps[1], &apps[2], &apps[3], &apps[4], &apps[5]);
    for app in [eve, finn, gus] {
        kiyeovo_tests::befriend(ana, app).await;
    }
    ben.chat().send(&id, "before eve").await.unwrap();
    wait_bodies(ana, &id, &["before eve"]).await;

    // Round 1: Eve and Finn.
    let v = ana
        .groups()
        .add_members(&id, &[eve.peer_id(), finn.peer_id()], "Ana")
        .await
        .unwrap();
    assert_eq!(v.add_round.as_ref().unwrap().invitees.len(), 2);
    assert_eq!(v.can_add, 0, "one round at a time");
    let ev = wait_group(eve, &id, "the add invitation", |v| v.can_respond).await;
    assert!(ev.joining);
    let mut listed: Vec<(String, MemberStatus)> = ev
        .members
        .iter()
        .map(|m| (m.peer_id.clone(), m.status))
        .collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = vec![
        (ana.peer_id().to_string(), MemberStatus::Admin),
        (ben.peer_id().to_string(), MemberStatus::Member),
        (cai.peer_id().to_string(), MemberStatus::Member),
        (eve.peer_id().to_string(), MemberStatus::Delivered),
        (finn.peer_id().to_string(), MemberStatus::NotDelivered),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        listed, want,
        "the current members are listed with the invitation"
    );
    assert!(ev.expires_at > kiyeovo_core::time::now_ms(), "a countdown");
    assert!(
        eve.chat().send(&id, "too early").await.is_err(),
        "no window chat"
    );
    eve.groups().respond(&id, true).await.unwrap();
    wait_group(finn, &id, "the add invitation", |v| v.can_respond).await;
    finn.groups().respond(&id, false).await.unwrap();

    for app in [ana, ben, cai, eve] {
        let v = wait_group(app, &id, "Eve added", |v| {
            v.epoch == 2 && v.status == GroupStatus::Active
        })
        .await;
        assert!(roster(&v).contains(&eve.peer_id().to_string()));
        assert!(
            v.changes
                .iter()
                .any(|c| c.text.contains(" added ") || c.text.contains("added")),
            "{:?}",
            v.changes
        );
    }
    let held: Vec<u32> = kiyeovo_tests::epochs_held(eve, &id).await;
    assert_eq!(held, [2], "a joiner never gets an older key");
    assert_eq!(
        eve.groups().get(&id).await.unwrap().safety_code,
        ana.groups().get(&id).await.unwrap().safety_code
    );
    eve.chat().send(&id, "eve hi").await.unwrap();
    ben.chat().send(&id, "ben after").await.unwrap();
    wait_bodies(ben, &id, &["before eve", "eve hi", "ben after"]).await;
    wait_bodies(ana, &id, &["before eve", "eve hi", "ben after"]).await;
    // Eve holds exactly what was written since she joined (never "before eve").
    wait_bodies(eve, &id, &["eve hi", "ben after"]).await;
    let fv = finn.groups().get(&id).await.unwrap();
    assert_eq!(fv.status, GroupStatus::Rejected);
    assert!(finn.groups().key(&id).await.is_err());

    // Round 2: Gus never answers; the window closes on him.
    ana.groups()
        .add_members(&id, &[gus.peer_id()], "Ana")
        .await
        .unwrap();
    wait_group(gus, &id, "the add invitation", |v| v.can_respond).await;
    wait_group(ana, &id, "the round over", |v| v.add_round.is_none()).await;
    let gv = wait_group(gus, &id, "expired", |v| v.status == GroupStatus::Expired).await;
    assert!(!gv.can_respond);
    assert!(gus.groups().respond(&id, true).await.is_err());
    assert_eq!(
        ana.groups().get(&id).await.unwrap().epoch,
        2,
        "no version for nobody"
    );

    // Cai is removed, then added back: only the new key.
    ana.groups()
        .admin_action(&id, AdminAction::Remove(cai.peer_id()))
        .await
        .unwrap();
    wait_group(cai, &id, "removed", |v| v.status == GroupStatus::Removed).await;
    ana.groups()
        .add_members(&id, &[cai.peer_id()], "Ana")
        .await
        .unwrap();
    wait_group(cai, &id, "invited back", |v| v.can_respond).await;
    cai.groups().respond(&id, true).await.unwrap();
    let v = wait_group(cai, &id, "back in", |v| {
        v.status == GroupStatus::Active && v.epoch == 4
    })
    .await;
    assert!(
        v.changes.iter().any(|c| c.text.contains("removed you")),
        "history notes stay"
    );
    wait_group(eve, &id, "Cai back", |v| v.epoch == 4).await;
    cai.chat().send(&id, "cai back").await.unwrap();
    wait_bodies(eve, &id, &["eve hi", "ben after", "cai back"]).await;
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// The scheduled-rotation setting (Groups tab): the default is weekly; a change is saved, shown
/// at once and still there after a restart; more than a year is refused in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rotation_setting_is_saved_and_survives_a_restart() {
    use kiyeovo_tests::{start_online, TestProfile};
    let (boot, addr) = bootstrap_node().await;
    let profile = TestProfile::new("rot-setting");
    let config = profile.config(std::slice::from_ref(&addr));
    let app = start_online(config.clone()).await;
    assert_eq!(app.snapshot().rotate_days, 7, "weekly by default");
    app.set_rotate_days(30).await.unwrap();
    assert_eq!(app.snapshot().rotate_days, 30);
    let e = app.set_rotate_days(400).await.unwrap_err().to_ui();
    assert!(e.message.contains("365 days"), "{e:?}");
    app.set_rotate_days(0).await.unwrap();
    app.shutdown().await;
    let app = start_online(config).await;
    assert_eq!(app.snapshot().rotate_days, 0, "never, as saved");
    app.shutdown().await;
    boot.shutdown().await;
}

/// A message Ben wrote while he could reach nobody, before he learned the group changed, goes
/// out in the new epoch: Eve, added meanwhile, gets it (she holds no older key); Ana and Cai
/// get it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_written_unreachable_goes_out_in_the_epoch_that_began_meanwhile() {
    use kiyeovo_tests::TestProfile;
    let (boot, addr) = bootstrap_node().await;
    let (profiles, apps, id) = group_of("unsent", 3, &addr).await;
    let eve_profile = TestProfile::new("unsent-eve");
    let eve = start_group_app(&eve_profile, &addr).await;
    kiyeovo_tests::befriend(&apps[0], &eve).await;
    eve.shutdown().await;
    let mut apps = apps.into_iter();
    let (ana, ben, cai) = (
        apps.next().unwrap(),
        apps.next().unwrap(),
        apps.next().unwrap(),
    );
    ana.shutdown().await;
    cai.shutdown().await;
    boot.shutdown().await;
    // Ben alone, with no network: it stays unsent.
    let m = ben.chat().send(&id, "written alone").await.unwrap();
    assert_eq!(m.epoch, 1);
    assert!(!m.published);
    ben.shutdown().await;

    // Meanwhile (another bootstrap node: the old one is gone) Ana adds Eve: epoch 2.
    let (boot, addr) = bootstrap_node().await;
    let ana = start_group_app(&profiles[0], &addr).await;
    let cai = start_group_app(&profiles[2], &addr).await;
    let eve = start_group_app(&eve_profile, &addr).await;
    ana.groups()
        .add_members(&id, &[eve.peer_id()], "Ana")
        .await
        .unwrap();
    wait_group(&eve, &id, "the add invitation", |v| v.can_respond).await;
    eve.groups().respond(&id, true).await.unwrap();
    wait_group(&eve, &id, "added", |v| v.epoch == 2).await;
    wait_group(&cai, &id, "epoch 2", |v| v.epoch == 2).await;

    // Ben is back: he learns of epoch 2 and his message goes out in it.
    let ben = start_group_app(&profiles[1], &addr).await;
    wait_group(&ben, &id, "epoch 2", |v| v.epoch == 2).await;
    wait_bodies(&eve, &id, &["written alone"]).await;
    wait_bodies(&ana, &id, &["written alone"]).await;
    wait_bodies(&cai, &id, &["written alone"]).await;
    let mine = ben.chat().chat(&id).await.unwrap().messages;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].epoch, 2, "sealed again in the new epoch");
    for app in [ana, ben, cai, eve] {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// The first message after a change reaches at once a member who learns of the change after
/// the admin wrote (not the admin's contact: the version reaches it member to member or by the
/// chain walk). When nobody is on the new topic yet, the message is published again as members
/// arrive (it shows as sent then), and a member catching up on the new epoch reads it from the
/// bucket at once — whichever comes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_message_reaches_a_member_who_learns_of_the_change_late() {
    use kiyeovo_core::group::ChatEvent;
    let (boot, addr) = bootstrap_node().await;
    let (_profiles, apps, id) = group_of("late", 3, &addr).await;
    wait_connected(&apps).await;
    let (ana, ben, cai) = (&apps[0], &apps[1], &apps[2]);
    // Ana hands over to Ben and leaves: Ben (admin) and Cai are not each other's contacts.
    ana.groups()
        .admin_action(&id, AdminAction::HandOver(ben.peer_id()))
        .await
        .unwrap();
    wait_group(ben, &id, "admin", |v| v.is_admin).await;
    ana.groups().leave(&id).await.unwrap();
    wait_group(cai, &id, "Ana written out", |v| v.epoch == 3).await;
    let mut cai_rx = cai.chat().subscribe();
    ben.groups()
        .admin_action(&id, AdminAction::Rotate)
        .await
        .unwrap();
    let sent = ben.chat().send(&id, "first in epoch 4").await.unwrap();
    assert_eq!(sent.epoch, 4);
    // If nobody is on the new topic yet, it is published again as members arrive.
    let _ = sent.published;
    let mut ben_rx = ben.chat().subscribe();
    kiyeovo_tests::wait_event(&mut cai_rx, "the first message", |e| {
        matches!(e, ChatEvent::Received { epoch: 4, .. })
    })
    .await;
    // And it went out live once someone was on the topic.
    let published = || async { ben.chat().chat(&id).await.unwrap().messages[0].published };
    let outcome = tokio::time::timeout(kiyeovo_tests::WAIT, async {
        while !published().await {
            let _ = ben_rx.recv().await;
        }
    })
    .await;
    assert!(outcome.is_ok(), "never published live");
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// A member leaves while the admin is not its contact (after a hand-over): the Leave goes to
/// the admin directly, member to member, and the admin writes it out; its acknowledgement comes
/// back the same way. Without the direct path the leaver would be written out only once it
/// could reach the admin as a contact — never, here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_reaches_an_admin_who_is_not_a_contact() {
    let (boot, addr) = bootstrap_node().await;
    let (_profiles, apps, id) = group_of("leave-direct", 3, &addr).await;
    wait_connected(&apps).await;
    let (ana, ben, cai) = (&apps[0], &apps[1], &apps[2]);
    ana.groups()
        .admin_action(&id, AdminAction::HandOver(ben.peer_id()))
        .await
        .unwrap();
    wait_group(cai, &id, "Ben is admin", |v| v.epoch == 2).await;
    // Ben and Cai are not each other's contacts.
    assert!(ben.channel().trusted_contact(&cai.peer_id()).await.is_err());
    cai.groups().leave(&id).await.unwrap();
    let v = wait_group(ben, &id, "Cai written out", |v| v.epoch == 3).await;
    assert!(!roster(&v).contains(&cai.peer_id().to_string()));
    assert!(
        v.changes.iter().any(|c| c.text.ends_with(" left")),
        "{:?}",
        v.changes
    );
    wait_group(ana, &id, "Cai gone", |v| v.epoch == 3).await;
    // Cai's Leave was acknowledged: it no longer follows the chain.
    let gid = parse_group_id(&id).unwrap();
    let g = cai.groups().load_group(&gid).await.unwrap();
    let waiting = || async {
        let g = cai.groups().load_group(&gid).await.unwrap();
        g.follows_chain()
    };
    let mut rx = cai.groups().subscribe();
    let done = tokio::time::timeout(WAIT, async {
        while waiting().await {
            let _ = rx.recv().await;
        }
    })
    .await;
    assert!(
        done.is_ok(),
        "Cai still waits to be written out: {:?}",
        g.status
    );
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}
