//! Trusted contacts and 1:1 chat between real app profiles on 127.0.0.1 (PROTOCOL.md §2).

use std::collections::HashSet;

use kiyeovo_core::api::MessageState;
use kiyeovo_core::contacts::CardError;
use kiyeovo_core::pairwise::channel::{ChannelError, ChannelEvent};
use kiyeovo_core::service::App;
use kiyeovo_tests::{
    befriend, bootstrap_node, online, wait_event, wait_stored_messages, TestProfile,
};

/// Waits until `n` distinct incoming messages were reported.
async fn wait_received(rx: &mut tokio::sync::broadcast::Receiver<ChannelEvent>, n: usize) {
    let mut seen = HashSet::new();
    while seen.len() < n {
        if let ChannelEvent::MessageReceived { seq, .. } = wait_event(rx, "a message", |e| {
            matches!(e, ChannelEvent::MessageReceived { .. })
        })
        .await
        {
            assert!(seen.insert(seq), "seq {seq} reported twice");
        }
    }
}

/// Waits until `n` distinct outgoing messages were reported stored in the bucket.
async fn wait_stored(rx: &mut tokio::sync::broadcast::Receiver<ChannelEvent>, n: usize) {
    let mut stored = HashSet::new();
    while stored.len() < n {
        if let ChannelEvent::MessageState { msg_id, .. } =
            wait_event(rx, "stored in the bucket", |e| {
                matches!(
                    e,
                    ChannelEvent::MessageState {
                        state: MessageState::Stored,
                        ..
                    }
                )
            })
            .await
        {
            stored.insert(msg_id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_are_checked_with_precise_errors() {
    let (boot, addr) = bootstrap_node().await;
    let pa = TestProfile::new("card");
    let a = online(&pa, &addr).await;
    let own = a.my_card();
    assert!(own.starts_with("kiyeovo1"));
    let err = a.channel().add_contact(&own).await.unwrap_err();
    assert!(
        matches!(err, ChannelError::Card(CardError::OwnCard)),
        "{err}"
    );
    let mut typo = own.clone().into_bytes();
    typo[30] = if typo[30] == b'a' { b'b' } else { b'a' };
    let err = a
        .channel()
        .add_contact(&String::from_utf8(typo).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ChannelError::Card(CardError::Checksum)),
        "{err}"
    );
    assert!(a.channel().contacts().await.unwrap().is_empty());
    a.shutdown().await;
    boot.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_online_then_chat_in_order_with_receipts() {
    let (boot, addr) = bootstrap_node().await;
    let (pa, pb) = (TestProfile::new("ca"), TestProfile::new("cb"));
    let (a, b) = (online(&pa, &addr).await, online(&pb, &addr).await);

    // Not trusted yet: sending is refused with a reason.
    a.channel().add_contact(&b.my_card()).await.unwrap();
    let err = a
        .channel()
        .send_chat(&b.peer_id(), "too early")
        .await
        .unwrap_err();
    assert!(matches!(err, ChannelError::NotTrusted(_)), "{err}");
    befriend(&a, &b).await;
    let contacts = a.channel().contacts().await.unwrap();
    assert!(contacts[0].trusted_at.is_some());

    let mut eb = b.channel().subscribe();
    let mut ea = a.channel().subscribe();
    for i in 0..20 {
        a.channel()
            .send_chat(&b.peer_id(), &format!("m{i}"))
            .await
            .unwrap();
    }
    wait_received(&mut eb, 20).await;
    let got: Vec<String> = b
        .channel()
        .messages(&a.peer_id())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(
        got,
        (0..20).map(|i| format!("m{i}")).collect::<Vec<_>>(),
        "stored once, in order"
    );

    // Every message is confirmed delivered to the sender.
    let pb_id = b.peer_id();
    let mut delivered = HashSet::new();
    while delivered.len() < 20 {
        if let ChannelEvent::MessageState { msg_id, .. } = wait_event(&mut ea, "delivered", |e| {
            matches!(e, ChannelEvent::MessageState { peer, state: MessageState::Delivered, .. } if *peer == pb_id)
        })
        .await
        {
            delivered.insert(msg_id);
        }
    }
    let sent = a.channel().messages(&b.peer_id()).await.unwrap();
    assert!(sent
        .iter()
        .all(|m| m.outgoing && m.state == MessageState::Delivered));

    a.shutdown().await;
    b.shutdown().await;
    boot.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_and_messages_reach_an_offline_contact() {
    let (boot, addr) = bootstrap_node().await;
    let (pa, pb) = (TestProfile::new("oa"), TestProfile::new("ob"));
    let a = online(&pa, &addr).await;
    // B made its card, then went offline.
    let b = online(&pb, &addr).await;
    let b_card = b.my_card();
    b.shutdown().await;

    // A adds B while B is offline: the handshake waits in A's bucket.
    let mut ea = a.channel().subscribe();
    a.channel().add_contact(&b_card).await.unwrap();

    // B comes back and adds A: it finds A's handshake in the bucket; A gets B's directly.
    let b = online(&pb, &addr).await;
    b.channel().add_contact(&a.my_card()).await.unwrap();
    let (a_id, b_id) = (a.peer_id(), b.peer_id());
    assert!(
        b.channel().contacts().await.unwrap()[0]
            .trusted_at
            .is_some(),
        "b trusts a from the bucket"
    );
    wait_event(&mut ea, "a trusts b", |e| {
        *e == ChannelEvent::ContactTrusted { peer: b_id }
    })
    .await;

    // B goes offline; A sends 50; B starts later and gets all 50 exactly once.
    b.shutdown().await;
    let mut ea = a.channel().subscribe();
    for i in 0..50 {
        a.channel()
            .send_chat(&b_id, &format!("offline {i}"))
            .await
            .unwrap();
    }
    // Each reaches the bucket while B is away.
    wait_stored(&mut ea, 50).await;
    let b = App::start(pb.config(std::slice::from_ref(&addr)))
        .await
        .unwrap();
    wait_stored_messages(&b, &a_id, "offline", 50).await;
    let got = b.channel().messages(&a_id).await.unwrap();
    assert_eq!(got.len(), 50);
    assert_eq!(got[0].body, "offline 0");
    assert_eq!(got[49].body, "offline 49");
    assert_eq!(b.channel().contacts().await.unwrap()[0].missed, 0);
    b.shutdown().await;

    // 150 more with the default cap of 100: the newest 100 arrive, 50 are reported missed.
    for i in 0..150 {
        a.channel()
            .send_chat(&b_id, &format!("burst {i}"))
            .await
            .unwrap();
    }
    wait_stored(&mut ea, 150).await;
    let b = App::start(pb.config(std::slice::from_ref(&addr)))
        .await
        .unwrap();
    wait_stored_messages(&b, &a_id, "burst", 100).await;
    let got: Vec<String> = b
        .channel()
        .messages(&a_id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .filter(|m| m.starts_with("burst"))
        .collect();
    assert_eq!(
        got,
        (50..150).map(|i| format!("burst {i}")).collect::<Vec<_>>()
    );
    assert_eq!(b.channel().contacts().await.unwrap()[0].missed, 50);

    a.shutdown().await;
    b.shutdown().await;
    boot.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_contacts_messages_never_reach_storage() {
    let (boot, addr) = bootstrap_node().await;
    let (pa, pb) = (TestProfile::new("ba"), TestProfile::new("bb"));
    let (a, b) = (online(&pa, &addr).await, online(&pb, &addr).await);
    befriend(&a, &b).await;
    let (a_id, b_id) = (a.peer_id(), b.peer_id());

    b.channel().set_blocked(&a_id, true).await.unwrap();
    assert!(b.channel().contacts().await.unwrap()[0].blocked);
    let mut ea = a.channel().subscribe();
    let sent = a.channel().send_chat(&b_id, "while blocked").await.unwrap();
    wait_event(
        &mut ea,
        "bucket written",
        |e| matches!(e, ChannelEvent::BucketWritten { seq, .. } if *seq >= sent.seq),
    )
    .await;
    // B reads A's bucket (and got the direct copy, if any): both are discarded.
    b.channel().poll(&a_id).await;
    assert!(b.channel().messages(&a_id).await.unwrap().is_empty());
    let err = b.channel().send_chat(&a_id, "hi").await.unwrap_err();
    assert!(matches!(err, ChannelError::Blocked(_)), "{err}");

    // After unblocking, new messages arrive; the one sent while blocked never does.
    b.channel().set_blocked(&a_id, false).await.unwrap();
    let mut eb = b.channel().subscribe();
    a.channel().send_chat(&b_id, "after unblock").await.unwrap();
    wait_received(&mut eb, 1).await;
    b.channel().poll(&a_id).await;
    let bodies: Vec<String> = b
        .channel()
        .messages(&a_id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, vec!["after unblock".to_string()]);

    a.shutdown().await;
    b.shutdown().await;
    boot.shutdown().await;
}

/// What reaches the channel from outside is refused unless it is a fresh, authentic envelope
/// from a contact; an oversized bucket never gets into the DHT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_foreign_forged_and_oversized_input_is_refused() {
    use kiyeovo_core::identity::Identity;
    use kiyeovo_core::pairwise::channel::DropReason;
    use kiyeovo_core::pairwise::envelope::{self, EnvelopeError, Payload};
    use kiyeovo_core::pairwise::keys::derive;
    use kiyeovo_core::records::SignedRecord;

    let (boot, addr) = bootstrap_node().await;
    let (pa, pb) = (TestProfile::new("tbl-a"), TestProfile::new("tbl-b"));
    let a = online(&pa, &addr).await;
    let b = online(&pb, &addr).await;
    befriend(&a, &b).await;
    // The test holds A's real identity (from the keyring) to craft what A's app would send.
    let a_id = pa.keystore().load_identity().unwrap().unwrap();
    let b_pub = pb.keystore().load_identity().unwrap().unwrap().public();
    let keys = derive(&a_id, &b_pub);
    let chat = |id: &Identity, seq: u64, body: &str| {
        let keys = derive(id, &b_pub);
        envelope::seal(
            id,
            &b_pub.ed25519,
            &keys.outgoing,
            seq,
            envelope::new_msg_id(),
            1,
            &Payload::Chat { body: body.into() },
        )
        .unwrap()
    };
    // A far-ahead seq, so it can never collide with what A's app really sent.
    let good = chat(&a_id, 1000, "crafted");
    let a_peer = a.peer_id();
    b.channel()
        .receive(&a_peer, &good)
        .await
        .expect("an authentic envelope is stored");

    let stranger = Identity::generate();
    let mut big = good.clone();
    big.resize(envelope::MAX_ENVELOPE_BYTES + 1, 0);
    type Case = (
        &'static str,
        kiyeovo_core::PeerId,
        Vec<u8>,
        fn(&DropReason) -> bool,
    );
    let cases: Vec<Case> = vec![
        ("replayed envelope", a_peer, good.clone(), |e| {
            matches!(e, DropReason::Duplicate)
        }),
        (
            "from someone who is not a contact",
            stranger.peer_id(),
            chat(&stranger, 1, "hi"),
            |e| matches!(e, DropReason::NotAContact),
        ),
        (
            "forged: a stranger's envelope sent as if from A",
            a_peer,
            chat(&stranger, 1001, "x"),
            |e| {
                matches!(
                    e,
                    DropReason::Envelope(
                        EnvelopeError::Undecryptable | EnvelopeError::BadSignature
                    )
                )
            },
        ),
        ("oversized envelope", a_peer, big, |e| {
            matches!(e, DropReason::Envelope(EnvelopeError::Malformed(_)))
        }),
    ];
    for (name, from, bytes, expected) in cases {
        let err = b.channel().receive(&from, &bytes).await.expect_err(name);
        assert!(expected(&err), "{name}: unexpected {err}");
    }
    let stored = b.channel().messages(&a.peer_id()).await.unwrap();
    assert_eq!(stored.iter().filter(|m| m.body == "crafted").count(), 1);
    assert!(stored.iter().all(|m| m.body != "hi" && m.body != "x"));

    // An oversized bucket under A's real bucket key: refused before it leaves the node.
    let key = keys.outgoing.bucket_record_key();
    let record = SignedRecord::sign(
        &keys.outgoing.bucket_key,
        &key,
        1 << 40,
        1,
        vec![0; 600 * 1024],
    );
    let err = a
        .client()
        .put_record(key.to_bytes(), record.encode())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");

    a.shutdown().await;
    b.shutdown().await;
    boot.shutdown().await;
}

/// The card saved as a file is the card: a contact can add it from the file's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_saved_to_a_file_can_be_added_from_it() {
    let (boot, addr) = bootstrap_node().await;
    let (pa, pb) = (TestProfile::new("file-a"), TestProfile::new("file-b"));
    let a = online(&pa, &addr).await;
    let b = online(&pb, &addr).await;
    let dir = tempfile::tempdir().unwrap();
    let path = a
        .save_my_card(Some(dir.path().to_path_buf()))
        .await
        .unwrap();
    assert!(path.starts_with(dir.path()));
    let text = std::fs::read_to_string(&path).unwrap();
    let view = b.channel().add_contact(&text).await.unwrap();
    assert_eq!(view.peer_id, a.peer_id().to_string());
    assert!(a.my_card_qr().unwrap().contains("<svg"));
    a.shutdown().await;
    b.shutdown().await;
    boot.shutdown().await;
}

/// Names (PROTOCOL.md §2): everyone is shown by the user's own name for them; people who are
/// not contacts by the creator's name, marked as such; a card that comes back with another
/// encryption key resets trust and says so — never a silent replacement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_the_users_own_and_a_changed_key_is_never_silent() {
    use kiyeovo_core::contacts::ContactCard;
    let (boot, addr) = bootstrap_node().await;
    let (pa, pb, pc) = (
        TestProfile::new("nm-ana"),
        TestProfile::new("nm-ben"),
        TestProfile::new("nm-cai"),
    );
    let apps = [
        kiyeovo_tests::start_group_app(&pa, &addr).await,
        kiyeovo_tests::start_group_app(&pb, &addr).await,
        kiyeovo_tests::start_group_app(&pc, &addr).await,
    ];
    let (ana, ben) = (&apps[0], &apps[1]);
    ana.set_display_name("Ana").await.unwrap();
    apps[2].set_display_name("Cai").await.unwrap();
    let id = kiyeovo_tests::form_group(&apps).await;

    // Ben calls Ana "Mum"; a name with hidden characters is refused in words.
    let v = ben.channel().rename(&ana.peer_id(), "Mum").await.unwrap();
    assert_eq!(
        (v.display_name.as_str(), v.card_name.as_str()),
        ("Mum", "Ana")
    );
    let err = ben
        .channel()
        .rename(&ana.peer_id(), "Mu\u{202e}m")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invisible"), "{err}");
    // In the group Ben sees "Mum" (a contact) and Cai by the creator's word (not a contact).
    let view = ben.groups().get(&id).await.unwrap();
    let creator = &view.members[0];
    assert_eq!(
        (creator.display_name.as_str(), creator.is_contact),
        ("Mum", true)
    );
    assert_eq!(view.creator_name, "Mum");
    let cai = view
        .members
        .iter()
        .find(|m| m.peer_id == apps[2].peer_id().to_string())
        .unwrap();
    assert!(!cai.is_contact, "Cai is not Ben's contact");
    // Clearing the name goes back to the card's.
    let v = ben.channel().rename(&ana.peer_id(), "  ").await.unwrap();
    assert_eq!(v.display_name, "Ana");

    // Ana's card comes back with another X25519 key (same identity): trust reset, shown.
    let identity = pa.keystore().load_identity().unwrap().unwrap();
    let rekeyed = identity.with_x25519(&[7; 32]);
    assert_ne!(rekeyed.public().x25519, identity.public().x25519);
    let card = ContactCard::new(&rekeyed, "Ana", Vec::new(), 2_000_000_000_000).to_text(&rekeyed);
    let v = ben.channel().add_contact(&card).await.unwrap();
    assert_eq!(v.trusted_at, None, "trust reset");
    assert!(v.key_changed_at.is_some(), "the change is shown");
    // Re-adding the same card again changes nothing more; acknowledging clears the notice.
    let v = ben
        .channel()
        .acknowledge_key_change(&ana.peer_id())
        .await
        .unwrap();
    assert_eq!(v.key_changed_at, None);
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}
