//! Group messages between real app profiles on 127.0.0.1 (PROTOCOL.md §5): live over gossipsub,
//! offline through sender buckets, exactly once, in per-sender order, with missed counts.

use std::collections::{BTreeMap, HashSet};

use kiyeovo_core::group::chat::ChatDrop;
use kiyeovo_core::group::envelope::{self, GroupEnvelopeError, Sealing};
use kiyeovo_core::group::ChatEvent;
use kiyeovo_core::identity::Identity;
use kiyeovo_core::service::App;
use kiyeovo_tests::{
    bootstrap_node, group_of, start_group_app as start, wait_connected, TestProfile, WAIT,
};
use rand::Rng;

/// The ten-member tests run one at a time: three of them side by side (30 nodes on a 2-core
/// machine) measure the machine, not the protocol.
static TEN_NODES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits until `app` has stored `n` messages from others; returns how many arrived live.
async fn wait_incoming(
    app: &App,
    id: &str,
    n: usize,
    rx: &mut tokio::sync::broadcast::Receiver<ChatEvent>,
) -> usize {
    let mut live = 0;
    let outcome = tokio::time::timeout(WAIT * 4, async {
        loop {
            let have = app
                .chat()
                .chat(id)
                .await
                .unwrap()
                .messages
                .iter()
                .filter(|m| !m.outgoing)
                .count();
            if have >= n {
                return have;
            }
            match rx.recv().await {
                Ok(ChatEvent::Received { live: true, .. }) => live += 1,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("chat events ended: {e}"),
            }
        }
    })
    .await;
    // Events still queued (messages that were stored before we looked) count too.
    while let Ok(event) = rx.try_recv() {
        if matches!(event, ChatEvent::Received { live: true, .. }) {
            live += 1;
        }
    }
    match outcome {
        Ok(have) => assert_eq!(have, n, "more messages than were sent"),
        Err(_) => panic!(
            "timed out: {} of {n} messages",
            app.chat()
                .chat(id)
                .await
                .unwrap()
                .messages
                .iter()
                .filter(|m| !m.outgoing)
                .count()
        ),
    }
    live
}

/// Every message once, and each sender's messages in its seq order.
fn assert_exactly_once_in_order(app: &App, msgs: &[kiyeovo_core::api::GroupMessageView]) {
    let ids: HashSet<_> = msgs.iter().map(|m| &m.msg_id).collect();
    assert_eq!(
        ids.len(),
        msgs.len(),
        "a message is stored twice at {}",
        app.peer_id()
    );
    let mut last: BTreeMap<(&str, u32), u64> = BTreeMap::new();
    for m in msgs {
        let prev = last.insert((m.sender_peer_id.as_str(), m.epoch), m.seq);
        assert!(
            prev.is_none_or(|p| p < m.seq),
            "out of order from {}",
            m.sender_peer_id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_members_online_get_200_messages_exactly_once_in_order() {
    let _one_at_a_time = TEN_NODES.lock().await;
    let (boot, addr) = bootstrap_node().await;
    let (_profiles, apps, id) = group_of("c10", 10, &addr).await;
    wait_connected(&apps).await;

    let mut rxs: Vec<_> = apps.iter().map(|a| a.chat().subscribe()).collect();
    let mut sent = vec![0usize; apps.len()];
    let mut rng = rand::thread_rng();
    for i in 0..200 {
        let who = rng.gen_range(0..apps.len());
        apps[who]
            .chat()
            .send(&id, &format!("message {i} from {who}"))
            .await
            .unwrap();
        sent[who] += 1;
    }
    let mut live_total = 0;
    for (i, app) in apps.iter().enumerate() {
        live_total += wait_incoming(app, &id, 200 - sent[i], &mut rxs[i]).await;
        let view = app.chat().chat(&id).await.unwrap();
        assert_eq!(view.messages.len(), 200);
        assert_exactly_once_in_order(app, &view.messages);
        assert!(view.gaps.is_empty(), "{:?}", view.gaps);
    }
    // Everyone was connected: the live path carried (almost) everything.
    let deliveries = 200 * 9;
    println!("{live_total} of {deliveries} deliveries arrived live");
    assert!(
        live_total * 2 > deliveries,
        "only {live_total} of {deliveries} arrived live"
    );

    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_members_catch_up_within_the_cap_and_count_the_rest() {
    let _one_at_a_time = TEN_NODES.lock().await;
    let (boot, addr) = bootstrap_node().await;
    let (profiles, mut apps, id) = group_of("off", 10, &addr).await;
    // Members 6..9 go away.
    let away: Vec<App> = apps.drain(6..).collect();
    for app in away {
        app.shutdown().await;
    }
    // 300 messages: member 0 writes 150 (its bucket keeps the newest 100), members 1–5 write 30.
    for i in 0..150 {
        apps[0]
            .chat()
            .send(&id, &format!("from 0: {i}"))
            .await
            .unwrap();
    }
    for (who, app) in apps.iter().enumerate().take(6).skip(1) {
        for i in 0..30 {
            app.chat()
                .send(&id, &format!("from {who}: {i}"))
                .await
                .unwrap();
        }
    }
    // Wait until every sender's bucket holds all it can.
    for app in &apps[..6] {
        kiyeovo_tests::wait_all_stored(app, &id).await;
    }
    // Member 0 is told its bucket is at the cap while four members are away.
    let v = apps[0].chat().chat(&id).await.unwrap();
    assert_eq!((v.bucket_fill, v.bucket_cap), (100, 100));
    assert_eq!(v.away_members.len(), 4, "{:?}", v.away_members);
    // They come back: each gets 100 + 150 messages exactly once and learns 50 were missed.
    let creator_peer = apps[0].peer_id().to_string();
    for p in &profiles[6..] {
        let app = start(p, &addr).await;
        let mut rx = app.chat().subscribe();
        wait_incoming(&app, &id, 250, &mut rx).await;
        let view = app.chat().chat(&id).await.unwrap();
        assert_exactly_once_in_order(&app, &view.messages);
        let from_creator: Vec<u64> = view
            .messages
            .iter()
            .filter(|m| m.sender_peer_id == creator_peer)
            .map(|m| m.seq)
            .collect();
        assert_eq!(
            from_creator,
            (51..=150).collect::<Vec<u64>>(),
            "the newest 100 of member 0"
        );
        assert_eq!(view.gaps.len(), 1, "{:?}", view.gaps);
        let gap = &view.gaps[0];
        assert!(
            gap.lost
                && gap.count == 50
                && gap.before_seq == 51
                && gap.sender_peer_id == creator_peer,
            "{gap:?}"
        );
        app.shutdown().await;
    }

    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_cannot_inject_or_read_and_bad_envelopes_are_refused() {
    let (boot, addr) = bootstrap_node().await;
    let (profiles, apps, id) = group_of("sec", 3, &addr).await;
    let gid = kiyeovo_core::group::store::parse_group_id(&id).unwrap();
    let (epoch, key) = apps[0].groups().key(&id).await.unwrap();
    let outsider = Identity::generate();
    let forged = |seq: u64,
                  identity: &Identity,
                  key: &kiyeovo_core::group::control::GroupKey,
                  epoch: u32| {
        envelope::seal(
            &Sealing {
                identity,
                key,
                group_id: gid,
                epoch,
                seq,
                msg_id: kiyeovo_core::group::control::random_id(),
                sent_at: 1,
                roster_hash: [0; 32],
            },
            "injected",
        )
        .unwrap()
    };

    // A non-member who learned the topic name publishes there: members refuse it.
    let po = TestProfile::new("sec-outsider");
    let intruder = start(&po, &addr).await;
    let topic = apps[0].chat().topic(&id).await.unwrap();
    intruder.client().subscribe(topic.clone()).await.unwrap();
    for app in &apps {
        let a = app.snapshot().node.unwrap().listen_addrs[0]
            .parse()
            .unwrap();
        intruder.client().dial(a).await.unwrap();
    }
    // Even with the key (stolen), an outsider's envelope fails the roster check.
    let _ = intruder
        .client()
        .publish(topic, forged(1, &outsider, &key, epoch))
        .await;
    let mut rx = apps[2].chat().subscribe();
    apps[1].chat().send(&id, "real").await.unwrap();
    wait_incoming(&apps[2], &id, 1, &mut rx).await;
    let view = apps[2].chat().chat(&id).await.unwrap();
    assert_eq!(
        view.messages.len(),
        1,
        "only the member's message is stored"
    );
    // And without the key it cannot read: a member's envelope does not open with any other key.
    let member_env = apps[1].groups().seal(&id, 99, "secret").await.unwrap();
    let wrong = kiyeovo_core::group::control::GroupKey::random();
    assert_eq!(
        envelope::open(&member_env, &gid, epoch, &wrong).unwrap_err(),
        GroupEnvelopeError::Undecryptable
    );

    // The refusal table, through the same path as gossip and buckets.
    let good = apps[1].groups().seal(&id, 2, "two").await.unwrap();
    let mut tampered = good.clone();
    let at = tampered.len() - 70;
    tampered[at] ^= 1;
    let temp_key = apps[1].groups().keys_held(&id).await.unwrap()[0].1.clone();
    type Case = (&'static str, Vec<u8>, fn(&ChatDrop) -> bool);
    let cases: Vec<Case> = vec![
        ("tampered ciphertext", tampered, |e| {
            matches!(e, ChatDrop::Envelope(GroupEnvelopeError::Undecryptable))
        }),
        (
            "from a non-member, with the right key",
            forged(1, &outsider, &key, epoch),
            |e| matches!(e, ChatDrop::NotAMember),
        ),
        (
            "epoch-1 message sealed with the temporary key",
            forged(1, &outsider, &temp_key, epoch),
            // It opens with the window's key, which is not the epoch it claims.
            |e| matches!(e, ChatDrop::Envelope(GroupEnvelopeError::WrongGroup)),
        ),
        ("wrong epoch", forged(1, &outsider, &key, 7), |e| {
            matches!(e, ChatDrop::Envelope(GroupEnvelopeError::WrongGroup))
        }),
        (
            "seq beyond the boundary",
            apps[1].groups().seal(&id, 1_000_000, "far").await.unwrap(),
            |e| matches!(e, ChatDrop::BeyondBoundary { .. }),
        ),
    ];
    for (name, bytes, expected) in cases {
        let err = apps[2].chat().ingest(&id, &bytes).await.expect_err(name);
        assert!(expected(&err), "{name}: unexpected {err}");
    }
    // A modified member (the creator here) copies the msg id of member 1's message into its
    // own envelope and gets it to member 2 first: both messages are kept (keyed by sender too).
    let creator = profiles[0].keystore().load_identity().unwrap().unwrap();
    let creator_roster = apps[0]
        .groups()
        .load_group(&gid)
        .await
        .unwrap()
        .roster_hash();
    let squatter = envelope::seal(
        &Sealing {
            identity: &creator,
            key: &key,
            group_id: gid,
            epoch,
            seq: 1,
            msg_id: envelope::unseal(&good, &key).unwrap().header.msg_id,
            sent_at: 2,
            roster_hash: creator_roster,
        },
        "same id, other sender",
    )
    .unwrap();
    assert!(apps[2].chat().ingest(&id, &squatter).await.unwrap());
    assert!(
        apps[2].chat().ingest(&id, &good).await.unwrap(),
        "a valid relayed envelope, not hidden by another sender's copy of its msg id"
    );
    assert!(
        matches!(
            apps[2].chat().ingest(&id, &good).await,
            Err(ChatDrop::Duplicate)
        ),
        "replayed"
    );
    // The same sender re-uses its own msg id under its next seq: not a second message (the seq
    // is taken all the same).
    let again = envelope::seal(
        &Sealing {
            identity: &creator,
            key: &key,
            group_id: gid,
            epoch,
            seq: 2,
            msg_id: envelope::unseal(&squatter, &key).unwrap().header.msg_id,
            sent_at: 3,
            roster_hash: creator_roster,
        },
        "same id, same sender, next seq",
    )
    .unwrap();
    assert!(
        matches!(
            apps[2].chat().ingest(&id, &again).await,
            Err(ChatDrop::Duplicate)
        ),
        "a sender's msg id used twice"
    );
    let bodies: Vec<String> = apps[2]
        .chat()
        .chat(&id)
        .await
        .unwrap()
        .messages
        .iter()
        .map(|m| m.body.clone())
        .collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert!(
        bodies.contains(&"two".to_string())
            && bodies.contains(&"same id, other sender".to_string())
    );
    // A member whose envelope commits to another roster than ours: stored, and the group is
    // flagged "members see different member lists".
    assert!(!apps[2].groups().get(&id).await.unwrap().list_mismatch);
    let member = profiles[1].keystore().load_identity().unwrap().unwrap();
    let other_roster = envelope::seal(
        &Sealing {
            identity: &member,
            key: &key,
            group_id: gid,
            epoch,
            seq: 50,
            msg_id: kiyeovo_core::group::control::random_id(),
            sent_at: 1,
            roster_hash: [9; 32],
        },
        "seen from elsewhere",
    )
    .unwrap();
    assert!(apps[2].chat().ingest(&id, &other_roster).await.unwrap());
    let view = apps[2].groups().get(&id).await.unwrap();
    assert!(view.list_mismatch);
    // The flag names the sender, in words, and can be dismissed.
    let flag = &view.flags[0];
    assert_eq!(flag.who_peer_id, Some(apps[1].peer_id().to_string()));
    assert!(flag.what.contains("different member list"), "{}", flag.what);
    let view = apps[2]
        .groups()
        .dismiss_flag(&id, flag.index)
        .await
        .unwrap();
    assert!(!view.list_mismatch && view.flags.is_empty());

    intruder.shutdown().await;
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// A hole in a sender's messages (later ones arrived, one did not) is shown where it is, then
/// filled by another member who has the envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_message_is_shown_then_relayed_by_another_member() {
    let (boot, addr) = bootstrap_node().await;
    let (_profiles, apps, id) = group_of("hole", 3, &addr).await;
    wait_connected(&apps).await;
    // Member 0's messages 1–3 (sealed by its app): member 1 has all, member 2 misses number 2.
    let mut envs = Vec::new();
    for seq in 1..=3 {
        let body = format!("number {seq}");
        envs.push(apps[0].groups().seal(&id, seq, &body).await.unwrap());
    }
    for env in &envs {
        apps[1].chat().ingest(&id, env).await.unwrap();
    }
    let mut rx = apps[2].chat().subscribe();
    apps[2].chat().ingest(&id, &envs[0]).await.unwrap();
    apps[2].chat().ingest(&id, &envs[2]).await.unwrap();
    let v = apps[2].chat().chat(&id).await.unwrap();
    assert_eq!(v.gaps.len(), 1, "{:?}", v.gaps);
    assert!(!v.gaps[0].lost && v.gaps[0].count == 1 && v.gaps[0].before_seq == 3);
    // On its next poll member 2 asks the members online; member 1 relays the envelope.
    kiyeovo_tests::wait_event(&mut rx, "the relayed message", |e| {
        matches!(e, ChatEvent::Received { seq: 2, .. })
    })
    .await;
    let v = apps[2].chat().chat(&id).await.unwrap();
    let bodies: Vec<&str> = v.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["number 1", "number 2", "number 3"]);
    assert!(v.gaps.is_empty(), "{:?}", v.gaps);
    // Unread until the conversation is looked at.
    assert_eq!(apps[2].groups().get(&id).await.unwrap().unread, 3);
    apps[2].chat().mark_read(&id).await.unwrap();
    assert_eq!(apps[2].groups().get(&id).await.unwrap().unread, 0);
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// 100 messages of 8 KiB do not fit one 512 KiB DHT record: the sender's bucket is paged and a
/// member who was away still gets all of them, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_larger_than_one_record_is_paged_and_read_whole() {
    let (boot, addr) = bootstrap_node().await;
    let (profiles, mut apps, id) = group_of("page", 2, &addr).await;
    let away = apps.pop().unwrap();
    away.shutdown().await;
    let big = "x".repeat(8 * 1024);
    for i in 0..100 {
        apps[0]
            .chat()
            .send(&id, &format!("{i:03} {big}"))
            .await
            .unwrap();
    }
    kiyeovo_tests::wait_all_stored(&apps[0], &id).await;
    let back = start(&profiles[1], &addr).await;
    let mut rx = back.chat().subscribe();
    wait_incoming(&back, &id, 100, &mut rx).await;
    let view = back.chat().chat(&id).await.unwrap();
    assert_exactly_once_in_order(&back, &view.messages);
    let firsts: Vec<String> = view
        .messages
        .iter()
        .map(|m| m.body[..3].to_string())
        .collect();
    assert_eq!(
        firsts,
        (0..100).map(|i| format!("{i:03}")).collect::<Vec<_>>()
    );
    assert!(view.gaps.is_empty(), "{:?}", view.gaps);
    back.shutdown().await;
    apps.pop().unwrap().shutdown().await;
    boot.shutdown().await;
}
