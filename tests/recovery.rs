//! The recovery phrase on real parts (keyring, SQLite, start-up): a new profile has one, the
//! phrase alone brings the identity back in a new profile on a "new machine" (another data
//! directory and keyring namespace), and a restore never writes over anything.

use kiyeovo_core::api::{PhraseAnswer, RecoveryStatus};
use kiyeovo_core::contacts::card::ContactCard;
use kiyeovo_core::identity::Identity;
use kiyeovo_core::recovery::{PhraseError, RecoverySeed};
use kiyeovo_core::restore::{self, RestoreError};
use kiyeovo_core::service::App;
use kiyeovo_tests::TestProfile;

#[tokio::test]
async fn the_phrase_alone_brings_the_identity_back_on_a_new_machine() {
    let ana = TestProfile::new("phrase-ana");
    assert!(restore::is_new(&ana.name, Some(ana.base.path()))
        .await
        .unwrap());
    let app = App::start(ana.config(&[])).await.unwrap();
    assert!(!restore::is_new(&ana.name, Some(ana.base.path()))
        .await
        .unwrap());
    app.set_display_name("Ana").await.unwrap();
    assert_eq!(app.snapshot().recovery, RecoveryStatus::NotConfirmed);
    let words = app.recovery_phrase().unwrap();
    assert_eq!(words.len(), 24);
    // Three words typed back end the reminder; a wrong one is refused in words.
    let wrong = [1u8, 12, 24].map(|p| PhraseAnswer {
        position: p,
        word: if p == 12 {
            "notaword".into()
        } else {
            words[usize::from(p) - 1].clone()
        },
    });
    let refusal = app.confirm_recovery_phrase(&wrong).await.unwrap_err();
    assert!(refusal.to_ui().message.contains("Word 12"), "{refusal}");
    assert_eq!(app.snapshot().recovery, RecoveryStatus::NotConfirmed);
    let right = [1u8, 12, 24].map(|p| PhraseAnswer {
        position: p,
        word: words[usize::from(p) - 1].clone(),
    });
    app.confirm_recovery_phrase(&right).await.unwrap();
    assert_eq!(app.snapshot().recovery, RecoveryStatus::Confirmed);
    let card = ContactCard::from_text(&app.my_card(), None).unwrap();
    let peer = app.peer_id();
    app.shutdown().await;
    // The setting is kept across a restart.
    let app = App::start(ana.config(&[])).await.unwrap();
    assert_eq!(app.snapshot().recovery, RecoveryStatus::Confirmed);
    app.shutdown().await;

    // A new machine: nothing of Ana's but the words, typed in capitals across lines.
    let elsewhere = TestProfile::new("phrase-restored");
    let typed = words
        .iter()
        .map(|w| w.to_uppercase())
        .collect::<Vec<_>>()
        .join("\n");
    let restored_peer = restore::from_phrase(&elsewhere.name, Some(elsewhere.base.path()), &typed)
        .await
        .unwrap();
    assert_eq!(restored_peer, peer.to_string());
    let mut config = elsewhere.config(&[]);
    config.phrase_typed = true;
    let back = App::start(config).await.unwrap();
    assert_eq!(back.peer_id(), peer);
    // Contacts see the same identity: the same signing and X25519 keys, the same binding.
    let restored_card = ContactCard::from_text(&back.my_card(), None).unwrap();
    assert_eq!(restored_card.identity, card.identity);
    // The phrase was typed to restore, so it is not asked for again; it is the same phrase.
    assert_eq!(back.snapshot().recovery, RecoveryStatus::Confirmed);
    // An empty new database is what a restore expects: no "database was missing" warning.
    assert!(
        back.snapshot().warnings.is_empty(),
        "{:?}",
        back.snapshot().warnings
    );
    assert_eq!(back.recovery_phrase().unwrap(), words);
    // What the phrase alone does not bring back: the display name, contacts, groups, history.
    assert_eq!(back.snapshot().display_name, "");
    back.shutdown().await;
}

#[tokio::test]
async fn a_restore_writes_nothing_unless_the_phrase_is_right_and_the_profile_is_new() {
    // A fixed phrase, so the swap below is known to break the checksum (a random pair of
    // words keeps it once in 256 tries).
    let seed_words = RecoverySeed::from_entropy(&[7; 32]).words();
    let fresh = TestProfile::new("phrase-refused");
    let dir = Some(fresh.base.path());
    // Two words swapped (a checksum failure), a missing word, a word not in the list.
    let mut swapped = seed_words.clone();
    let j = (1..24).find(|&j| swapped[j] != swapped[0]).unwrap();
    swapped.swap(0, j);
    type Expected = fn(&RestoreError) -> bool;
    let cases: [(String, Expected); 3] = [
        (swapped.join(" "), |e| {
            matches!(e, RestoreError::Phrase(PhraseError::Checksum))
        }),
        (seed_words[..23].join(" "), |e| {
            matches!(e, RestoreError::Phrase(PhraseError::WordCount(23)))
        }),
        (format!("bitcoinn {}", seed_words[1..].join(" ")), |e| {
            matches!(
                e,
                RestoreError::Phrase(PhraseError::UnknownWord { position: 1, .. })
            )
        }),
    ];
    for (text, expected) in cases {
        match restore::from_phrase(&fresh.name, dir, &text).await {
            Err(e) => {
                assert!(expected(&e), "{e}");
                assert!(!e.to_ui().hint.is_empty());
            }
            Ok(peer) => panic!("{text:?} restored {peer}"),
        }
        assert!(
            fresh.keystore().load_identity().unwrap().is_none(),
            "written after a refusal"
        );
        assert!(restore::is_new(&fresh.name, dir).await.unwrap());
    }

    // A profile that has an identity is never written over.
    let used = TestProfile::new("phrase-used");
    let app = App::start(used.config(&[])).await.unwrap();
    let peer = app.peer_id();
    app.shutdown().await;
    let err = restore::from_phrase(&used.name, Some(used.base.path()), &seed_words.join(" "))
        .await
        .unwrap_err();
    assert!(matches!(err, RestoreError::NotNew { .. }), "{err}");
    assert_eq!(
        used.keystore().load_identity().unwrap().unwrap().peer_id(),
        peer
    );

    // Data left without its keys (the keyring lost them): not new, nothing written.
    used.keystore().delete_all().unwrap();
    let err = restore::from_phrase(&used.name, Some(used.base.path()), &seed_words.join(" "))
        .await
        .unwrap_err();
    assert!(matches!(err, RestoreError::NotNew { .. }), "{err}");
    assert!(used.keystore().load_identity().unwrap().is_none());

    // A damaged keyring entry and no data: not new either (start-up reports it).
    let damaged = TestProfile::new("phrase-damaged");
    keyring::Entry::new("kiyeovo", &format!("{}/identity", damaged.name))
        .unwrap()
        .set_secret(b"short")
        .unwrap();
    let err = restore::from_phrase(
        &damaged.name,
        Some(damaged.base.path()),
        &seed_words.join(" "),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RestoreError::NotNew { .. }), "{err}");

    // Deleted data whose `peer-id` file names another identity: refused; its own: restored.
    let leftover = TestProfile::new("phrase-leftover");
    let dir = leftover.base.path().join("profiles").join(&leftover.name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("peer-id"), format!("{peer}\n")).unwrap();
    let err = restore::from_phrase(
        &leftover.name,
        Some(leftover.base.path()),
        &seed_words.join(" "),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RestoreError::OtherOwner { .. }), "{err}");
    assert!(leftover.keystore().load_identity().unwrap().is_none());
    let own = Identity::from_recovery(RecoverySeed::from_entropy(&[7; 32])).peer_id();
    std::fs::write(dir.join("peer-id"), format!("{own}\n")).unwrap();
    let restored = restore::from_phrase(
        &leftover.name,
        Some(leftover.base.path()),
        &seed_words.join(" "),
    )
    .await
    .unwrap();
    assert_eq!(restored, own.to_string());
}

/// The desktop app starts a profile that has no identity only after the user chose "Create my
/// identity": a start without that choice makes nothing.
#[tokio::test]
async fn no_identity_is_made_without_the_users_choice() {
    let fresh = TestProfile::new("phrase-nochoice");
    let mut config = fresh.config(&[]);
    config.create_identity = false;
    let err = match App::start(config).await {
        Ok(_) => panic!("an identity was made without a choice"),
        Err(e) => e,
    };
    assert!(
        matches!(
            err,
            kiyeovo_core::error::StartupError::FirstRunNeeded { .. }
        ),
        "{err}"
    );
    assert!(err.to_ui().hint.contains("recovery phrase"));
    assert!(fresh.keystore().load_identity().unwrap().is_none());
    assert!(!fresh.db_path().exists());
    assert!(restore::is_new(&fresh.name, Some(fresh.base.path()))
        .await
        .unwrap());
}

/// A profile made before recovery phrases (its keyring holds both keys, format v1) starts as
/// before and says it has no phrase.
#[tokio::test]
async fn a_profile_from_before_phrases_has_none_and_starts_as_before() {
    let old = TestProfile::new("phrase-old");
    let identity = Identity::generate();
    let peer = identity.peer_id();
    old.keystore().store_identity(&identity).unwrap();
    let app = App::start(old.config(&[])).await.unwrap();
    assert_eq!(app.peer_id(), peer);
    assert_eq!(app.snapshot().recovery, RecoveryStatus::NoPhrase);
    let err = app.recovery_phrase().unwrap_err();
    assert!(err.to_string().contains("before recovery phrases"), "{err}");
    app.shutdown().await;
}

/// Issue 15, "no reuse after restore": Ana's inbox at Ben is at her last seq. Restored from her
/// phrase alone on a new machine she starts with no contacts; re-adding Ben, her first send
/// reads her own bucket for him back and numbers above it, so Ben takes her new messages instead
/// of dropping them as already seen — each once — and his replies reach her.
#[tokio::test]
async fn a_restored_identity_numbers_above_what_it_sent_and_is_heard() {
    use kiyeovo_core::node::NodeError;
    use kiyeovo_core::pairwise::channel::{ChannelError, ChannelEvent};
    use kiyeovo_tests::{befriend, bootstrap_node, online, wait_event, wait_stored_messages};

    let (_boot, addr) = bootstrap_node().await;
    let (ana_profile, ben_profile) = (TestProfile::new("reuse-ana"), TestProfile::new("reuse-ben"));
    let ana = online(&ana_profile, &addr).await;
    let ben = online(&ben_profile, &addr).await;
    befriend(&ana, &ben).await;
    let (ana_id, ben_id) = (ana.peer_id(), ben.peer_id());
    let mut written = ana.channel().subscribe();
    for i in 1..=3 {
        ana.channel()
            .send_chat(&ben_id, &format!("before {i}"))
            .await
            .unwrap();
    }
    wait_stored_messages(&ben, &ana_id, "before", 3).await;
    // Everything Ana numbered is in her bucket before her machine is lost.
    let words = ana.recovery_phrase().unwrap();
    loop {
        let last = kiyeovo_core::contacts::store::contact(ana.database().pool(), &ben_id)
            .await
            .unwrap()
            .unwrap()
            .out_seq;
        if let ChannelEvent::BucketWritten { seq, .. } =
            wait_event(&mut written, "Ana's bucket written", |e| {
                matches!(e, ChannelEvent::BucketWritten { .. })
            })
            .await
        {
            if seq >= last {
                break;
            }
        }
    }
    ana.shutdown().await;

    let elsewhere = TestProfile::new("reuse-ana-restored");
    restore::from_phrase(
        &elsewhere.name,
        Some(elsewhere.base.path()),
        &words.join(" "),
    )
    .await
    .unwrap();
    // First with nobody to ask: Ben is away (his card's address is dead) and no bootstrap node
    // is set. "Nobody answered" is not "nothing there": the handshake is refused, in words, and
    // nothing is numbered.
    let old_card = ben.my_card();
    ben.shutdown().await;
    let mut config = elsewhere.config(&[]);
    config.phrase_typed = true;
    let back = App::start(config).await.unwrap();
    assert_eq!(back.peer_id(), ana_id);
    let refused = back.channel().add_contact(&old_card).await.unwrap_err();
    assert!(
        matches!(refused, ChannelError::Node(NodeError::Unreachable)),
        "{refused:?}"
    );
    assert!(
        refused.to_ui().hint.contains("restored"),
        "{:?}",
        refused.to_ui()
    );
    let row = kiyeovo_core::contacts::store::contact(back.database().pool(), &ben_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.out_seq, row.out_seq_known), (0, false));
    // Then online, Ben back: the same card again goes through.
    let ben = online(&ben_profile, &addr).await;
    back.set_bootstrap(vec![addr.clone()]).await.unwrap();
    let mut snapshots = back.snapshots();
    kiyeovo_tests::wait_for(&mut snapshots, "joined the network", |s| {
        matches!(
            s.node.as_ref().map(|n| &n.bootstrap),
            Some(kiyeovo_core::api::BootstrapState::Succeeded { .. })
        )
    })
    .await;
    let mut rx = back.channel().subscribe();
    back.channel().add_contact(&ben.my_card()).await.unwrap();
    wait_event(&mut rx, "Ben trusted again", |e| {
        *e == ChannelEvent::ContactTrusted { peer: ben_id }
    })
    .await;
    back.channel()
        .send_chat(&ben_id, "after restore")
        .await
        .unwrap();
    wait_stored_messages(&ben, &ana_id, "after", 1).await;
    let bodies = kiyeovo_tests::chat_bodies(&ben, &ana_id, None).await;
    assert_eq!(
        bodies,
        ["before 1", "before 2", "before 3", "after restore"]
    );
    // What the phrase alone brings back of the conversation: what Ana's bucket for Ben still
    // holds (the newest 100 envelopes), read before her first send.
    assert_eq!(
        kiyeovo_tests::chat_bodies(&back, &ben_id, Some(true)).await,
        ["before 1", "before 2", "before 3", "after restore"]
    );
    // And Ben's answer reaches the restored Ana.
    ben.channel()
        .send_chat(&ana_id, "welcome back")
        .await
        .unwrap();
    wait_stored_messages(&back, &ben_id, "welcome", 1).await;
    back.shutdown().await;
    ben.shutdown().await;
}
