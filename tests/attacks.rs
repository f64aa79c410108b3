//! Attacks against real nodes (PROTOCOL.md §0): for each rule that keeps an attacker out, the
//! attacker tries and fails. The attacker is a plain libp2p Kademlia client that runs none of
//! Kiyeovo's validation, or a modified peer that signs whatever it likes with keys it owns.
//! README "Security" lists every attack here with the rule that stops it.
//!
//! Storing nodes are headless Kiyeovo nodes on 127.0.0.1 (the same node code as the app's),
//! so these tests need no keyring.

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use futures::StreamExt;
use kiyeovo_core::codec;
use kiyeovo_core::config::Limits;
use kiyeovo_core::contacts::{CardError, ContactCard};
use kiyeovo_core::identity::{Identity, PublicIdentity};
use kiyeovo_core::node::{Client, NodeError};
use kiyeovo_core::records::{RecordKey, RecordKind, SignedRecord};
use kiyeovo_core::sign::Domain;
use kiyeovo_node::Headless;
use kiyeovo_tests::attacker::{attacker, push, signed, Attacker, DirectPeer, Spy};
use kiyeovo_tests::{
    befriend, bootstrap_node, bootstrap_node_with, form_group, group_config, group_of,
    start_group_app, start_online, wait_event, wait_for, wait_group, TestProfile, WAIT,
};
use libp2p::kad::{self, store::RecordStore};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId};
use rand::rngs::OsRng;

fn peer_and_addr(addr: &str) -> (PeerId, Multiaddr) {
    let full: Multiaddr = addr.parse().unwrap();
    let peer = match full.iter().last() {
        Some(Protocol::P2p(p)) => p,
        _ => panic!("{addr} names no peer"),
    };
    let bare = full
        .iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect();
    (peer, bare)
}

/// `n` storing nodes that know each other (each joins the first).
async fn storing_nodes(n: usize, limits: Limits) -> Vec<(Headless, String)> {
    let mut nodes: Vec<(Headless, String)> = Vec::new();
    for _ in 0..n {
        // Each joins every node before it (dials them all), so all know each other.
        let earlier = nodes.iter().map(|(_, a)| a.clone()).collect();
        nodes.push(bootstrap_node_with(limits, earlier).await);
    }
    // Every node knows every other before anything is written.
    for (node, _) in &nodes {
        let mut status = node.status.clone();
        tokio::time::timeout(
            WAIT,
            status.wait_for(|s| s.routing_table_size as usize >= n - 1),
        )
        .await
        .expect("storing nodes found each other")
        .unwrap();
    }
    nodes
}

/// Drives the attacker's swarm (so it answers queries) until `fut` completes.
async fn while_serving<T>(swarm: &mut Attacker, fut: impl std::future::Future<Output = T>) -> T {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = swarm.select_next_some() => {}
        }
    }
}

/// Writes a record through `writer` and waits until `at` holds it (the write has then been
/// handled there, and so has everything pushed to `at` before it).
async fn put_and_see(writer: &Client, at: &Headless, key: &[u8], value: &[u8]) {
    let mut status = at.status.clone();
    writer
        .put_record(key.to_vec(), value.to_vec())
        .await
        .expect("honest put");
    tokio::time::timeout(WAIT, async {
        // Every store at `at` changes its record count, which its status reports.
        while at
            .client
            .local_record(key.to_vec())
            .await
            .unwrap()
            .as_deref()
            != Some(value)
        {
            status.changed().await.unwrap();
        }
    })
    .await
    .expect("the honest record arrived");
}

/// The same record with its version as an over-long varint: other bytes, same signed value,
/// and lexicographically larger (0x81 > 0x01), so without canonical decoding it would win the
/// equal-version tie-break on every storing node.
fn re_encoded(value: &[u8]) -> Vec<u8> {
    let record = SignedRecord::decode(value, usize::MAX).unwrap();
    assert!(record.version < 0x80, "test records have one-byte versions");
    // public_key is 32 raw bytes, then the version varint.
    let mut out = value[..32].to_vec();
    out.push(0x80 | record.version as u8);
    out.push(0x00);
    out.extend_from_slice(&value[33..]);
    assert!(out > value.to_vec());
    // postcard itself takes it (the attack is real) …
    assert_eq!(
        postcard::from_bytes::<SignedRecord>(&out).unwrap(),
        record,
        "the copy decodes to the same record"
    );
    out
}

/// Attack: re-encode a real bucket record (over-long varint) so it sorts "larger" at equal
/// version, and push it to every storing node. Stopped by canonical decoding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_encoded_copy_of_a_record_replaces_it_nowhere() {
    refused_by_storing_nodes(|_, key, v2| vec![(key.to_vec(), re_encoded(v2))]).await;
}

/// Attack: push the owner's exact record (and a re-encoded copy) to every storing node with a
/// 3-second TTL, so it expires everywhere. Stopped by: storing nodes use their own TTL.
///
/// This test has to let time pass: expiry *is* the property. It waits 6 s on the clock, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_ttl_push_does_not_erase_a_record() {
    let nodes = storing_nodes(3, Limits::server()).await;
    let owner = SigningKey::generate(&mut OsRng);
    let (key, value) = signed(&owner, 1, b"bucket contents");
    let targets: Vec<_> = nodes.iter().map(|(_, a)| peer_and_addr(a)).collect();
    let mut evil = attacker(&targets);
    let short = |v: Vec<u8>| kad::Record {
        key: kad::RecordKey::new(&key),
        value: v,
        publisher: None,
        expires: Some(Instant::now() + Duration::from_secs(3)),
    };
    // The attacker is first to hand the storing nodes the owner's record, with its own TTL;
    // then the owner writes (the same bytes); then the attacker pushes the same bytes again (a
    // "re-publish" asking for 3 s) and a re-encoded copy.
    push(&mut evil, short(value.clone())).await;
    nodes[0]
        .0
        .client
        .put_record(key.clone(), value.clone())
        .await
        .unwrap();
    push(&mut evil, short(value.clone())).await;
    push(&mut evil, short(re_encoded(&value))).await;
    let (ckey, cvalue) = signed(&SigningKey::generate(&mut OsRng), 1, b"control");
    for (node, _) in &nodes {
        put_and_see(&nodes[0].0.client, node, &ckey, &cvalue).await;
        assert_eq!(
            node.client.local_record(key.clone()).await.unwrap(),
            Some(value.clone())
        );
    }

    tokio::time::sleep(Duration::from_secs(6)).await;
    for (node, _) in &nodes {
        assert_eq!(
            node.client.local_record(key.clone()).await.unwrap(),
            Some(value.clone()),
            "a storing node let the record expire with the attacker's TTL"
        );
    }
    // A reader that holds nothing itself still gets it from the network.
    let (reader, _) = bootstrap_node_with(Limits::server(), vec![nodes[0].1.clone()]).await;
    let mut status = reader.status.clone();
    tokio::time::timeout(WAIT, status.wait_for(|s| s.routing_table_size >= 3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reader.client.get_record(key).await.unwrap(), value);
    reader.shutdown().await;
    for (node, _) in nodes {
        node.shutdown().await;
    }
}

/// Attack: one peer writes valid self-signed records (a fresh key each) until the storing
/// node is full. Stopped by the per-source quota: it is cut off at its share, what was stored
/// before stays, and other writers are still stored and served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_cannot_fill_a_storing_node() {
    let limits = Limits::with_budget(256 * 1024, 32 * 1024);
    let nodes = storing_nodes(2, limits).await;
    let (target, honest) = (&nodes[0].0, &nodes[1].0.client);
    // Stored before the flood.
    let (early_key, early) = signed(&SigningKey::generate(&mut OsRng), 1, &[1; 1000]);
    put_and_see(honest, target, &early_key, &early).await;

    let mut evil = attacker(&[peer_and_addr(&nodes[0].1)]);
    let mut junk = Vec::new();
    for _ in 0..20 {
        let (k, v) = signed(&SigningKey::generate(&mut OsRng), 1, &[0xee; 4000]);
        push(&mut evil, kad::Record::new(k.clone(), v)).await;
        junk.push(k);
    }
    // After the flood, an honest writer is still stored and served.
    let (late_key, late) = signed(&SigningKey::generate(&mut OsRng), 1, &[2; 4000]);
    put_and_see(honest, target, &late_key, &late).await;

    let mut kept = 0;
    for k in &junk {
        if target
            .client
            .local_record(k.clone())
            .await
            .unwrap()
            .is_some()
        {
            kept += 1;
        }
    }
    // 32 KiB of quota holds 6 records of ~4.1 KiB (each charged ~5.2 KiB with its key and the
    // per-record overhead): the flood got exactly its share.
    assert!(
        (1..=8).contains(&kept),
        "attacker kept {kept} of 20 junk records"
    );
    assert_eq!(
        target.client.local_record(early_key).await.unwrap(),
        Some(early),
        "junk displaced an earlier record"
    );
    assert_eq!(target.client.get_record(late_key).await.unwrap(), late);
    for (node, _) in nodes {
        node.shutdown().await;
    }
}

/// Attack: three plain-Kademlia nodes close to the reader hold junk under a real record's key
/// and answer first. Stopped by: a read counts only valid copies toward "enough" and goes on
/// until it finds the real one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_answers_cannot_hide_a_record() {
    let nodes = storing_nodes(1, Limits::server()).await;
    let honest = &nodes[0];
    let honest_peer = peer_and_addr(&honest.1).0;

    let mut liars: Vec<Attacker> = (0..4).map(|_| attacker(&[])).collect();
    let mut liar_addrs = Vec::new();
    for liar in &mut liars {
        liar.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        let addr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = liar.select_next_some().await {
                break address;
            }
        };
        liar_addrs.push(format!("{addr}/p2p/{}", liar.local_peer_id()));
    }
    // A key all four liars are closer to than the honest node: the read asks the three closest
    // first, so without the rule three junk answers would end it before the honest node is asked.
    let liar_peers: Vec<PeerId> = liars.iter().map(|l| *l.local_peer_id()).collect();
    let (key, value) = loop {
        let (key, value) = signed(&SigningKey::generate(&mut OsRng), 1, b"the real bucket");
        let target = kad::KBucketKey::new(kad::RecordKey::new(&key));
        let honest_distance = target.distance(&kad::KBucketKey::from(honest_peer));
        if liar_peers
            .iter()
            .all(|p| target.distance(&kad::KBucketKey::from(*p)) < honest_distance)
        {
            break (key, value);
        }
    };
    // Alone in its network the put has no one to replicate to and reports that; the record is
    // in its own store all the same.
    let _ = honest.0.client.put_record(key.clone(), value.clone()).await;
    assert_eq!(
        honest.0.client.local_record(key.clone()).await.unwrap(),
        Some(value.clone())
    );
    let mut serving = Vec::new();
    for mut liar in liars {
        let junk = kad::Record::new(key.clone(), b"junk, not a signed record".to_vec());
        liar.behaviour_mut().store_mut().put(junk).unwrap();
        serving.push(tokio::spawn(async move {
            loop {
                liar.select_next_some().await;
            }
        }));
    }

    let mut boot = liar_addrs;
    boot.push(honest.1.clone());
    let (reader, _) = bootstrap_node_with(Limits::server(), boot).await;
    let got = tokio::time::timeout(WAIT, reader.client.get_record(key.clone()))
        .await
        .expect("read ended");
    assert_eq!(got.unwrap(), value, "junk answers hid the record");
    for task in serving {
        task.abort();
    }
    reader.shutdown().await;
    for (node, _) in nodes {
        node.shutdown().await;
    }
}

/// Attack: a modified client binds a low-order X25519 point to its identity (correctly
/// signed) and hands out that card: every "shared secret" with it would be zero. Stopped by:
/// the card check refuses non-contributory keys.
#[test]
fn a_card_with_a_low_order_x25519_key_is_refused() {
    let id = Identity::generate();
    let mut card = ContactCard::new(&id, "Mallory", Vec::new(), 1);
    card.identity = PublicIdentity {
        ed25519: id.public().ed25519,
        x25519: [0; 32],
        binding: id.sign(Domain::X25519Binding, &[0; 32]),
    };
    let text = card.to_text(&id);
    assert_eq!(
        ContactCard::from_text(&text, None).unwrap_err(),
        CardError::WeakKey
    );
}

/// Attack: re-encode a signed contact card with an over-long length prefix (same signature,
/// other bytes). Stopped by canonical decoding: one card, one byte string.
#[test]
fn a_re_encoded_contact_card_is_refused() {
    let id = Identity::generate();
    let card = ContactCard::new(&id, "Ana", Vec::new(), 1);
    let good = ContactCard::from_text(&card.to_text(&id), None).unwrap();
    assert_eq!(good, card);
    // Every postcard varint re-encoded one byte longer, checked one at a time, must be refused
    // by the strict decoder that cards (and every network decoder) go through.
    let bytes = codec::encode(&card);
    let mut refused = 0;
    for i in 0..bytes.len() {
        if bytes[i] >= 0x80 {
            continue;
        }
        let mut long = bytes[..i].to_vec();
        long.push(bytes[i] | 0x80);
        long.push(0);
        long.extend_from_slice(&bytes[i + 1..]);
        if postcard::from_bytes::<ContactCard>(&long).ok().as_ref() == Some(&card) {
            assert_eq!(
                codec::decode_bounded::<ContactCard>(&long, 1 << 16).unwrap_err(),
                codec::DecodeError::NotCanonical
            );
            refused += 1;
        }
    }
    assert!(
        refused >= 3,
        "the card has several varints; {refused} tried"
    );
}

/// A missing record is still reported as missing (not as junk): the reader's answer stays
/// honest when only invalid copies exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_junk_copies_read_as_not_found() {
    let mut liar = attacker(&[]);
    liar.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = liar.select_next_some().await {
            break address;
        }
    };
    let (key, _) = signed(&SigningKey::generate(&mut OsRng), 1, b"never written");
    liar.behaviour_mut()
        .store_mut()
        .put(kad::Record::new(key.clone(), b"junk".to_vec()))
        .unwrap();
    let boot = vec![format!("{addr}/p2p/{}", liar.local_peer_id())];
    let (reader, _) = bootstrap_node_with(Limits::server(), boot).await;
    let got = while_serving(
        &mut liar,
        tokio::time::timeout(WAIT, reader.client.get_record(key)),
    )
    .await
    .expect("read ended");
    assert!(matches!(got, Err(NodeError::NotFound)), "{got:?}");
    reader.shutdown().await;
}

/// Attack: a modified storing node and gossip relay keeps every byte it is handed while three
/// people become contacts, form a group and chat in it and 1:1, to read who talks to whom and
/// who is in which group. Stopped by v2 envelopes (`{version, nonce, ciphertext}`, identities and
/// group id inside the AEAD), self-certifying keys that name no identity, and anonymous gossip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storing_node_and_relay_learns_no_member_no_group_and_no_text() {
    let (boot, addr) = bootstrap_node().await;
    let spy = Spy::start(&addr).await;
    let profiles: Vec<TestProfile> = (0..3)
        .map(|i| TestProfile::new(&format!("spy{i}")))
        .collect();
    let mut apps = Vec::new();
    for p in &profiles {
        apps.push(start_group_app(p, &addr).await);
    }
    // Every app has the spy among its DHT peers (bootstrap node, two apps, spy) before anything
    // is written, so the spy is handed every record.
    for app in &apps {
        wait_for(&mut app.snapshots(), "the spy in the routing table", |s| {
            s.node.as_ref().is_some_and(|n| n.routing_table_size >= 4)
        })
        .await;
    }
    let id = form_group(&apps).await;
    // The spy joins the group's topics (a relay that learned their names).
    let gid = kiyeovo_core::group::store::parse_group_id(&id).unwrap();
    for (_, key) in apps[0].groups().keys_held(&id).await.unwrap() {
        spy.subscribe(kiyeovo_core::group::chat::topic_for(&gid, &key))
            .await;
    }
    let bodies: Vec<String> = (0..3).map(|i| format!("secret plan number {i}")).collect();
    apps[0]
        .channel()
        .send_chat(&apps[1].peer_id(), "a private hello")
        .await
        .unwrap();
    let mut events: Vec<_> = apps.iter().map(|a| a.chat().subscribe()).collect();
    for (app, body) in apps.iter().zip(&bodies) {
        app.chat().send(&id, body).await.unwrap();
    }
    for (app, rx) in apps.iter().zip(events.iter_mut()) {
        tokio::time::timeout(WAIT, async {
            while app.chat().chat(&id).await.unwrap().messages.len() < 3 {
                let _ = rx.recv().await;
            }
        })
        .await
        .expect("every member has all three messages");
        kiyeovo_tests::wait_all_stored(app, &id).await;
    }
    // Members publish to every peer they know on the topic; one that wrote before it heard of
    // the spy's subscription writes once more.
    let mut count = spy.gossip_count.clone();
    let mut relayed = false;
    for round in 0..5 {
        let wait = tokio::time::timeout(Duration::from_secs(3), count.wait_for(|n| *n >= 1));
        if wait.await.is_ok() {
            relayed = true;
            break;
        }
        apps[round % 3]
            .chat()
            .send(&id, &format!("secret plan number {}", round % 3))
            .await
            .unwrap();
    }
    assert!(relayed, "the spy never relayed group gossip");

    let dump = spy.dump().await;
    assert!(
        dump.records.len() >= 3,
        "the spy stored {} records",
        dump.records.len()
    );
    let mut secrets: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, p) in profiles.iter().enumerate() {
        let identity = p.keystore().load_identity().unwrap().unwrap();
        let public = identity.public();
        secrets.push((format!("member {i} identity key"), public.ed25519.to_vec()));
        secrets.push((format!("member {i} X25519 key"), public.x25519.to_vec()));
        let peer = identity.peer_id();
        secrets.push((format!("member {i} peer id"), peer.to_bytes()));
        secrets.push((
            format!("member {i} peer id text"),
            peer.to_string().into_bytes(),
        ));
    }
    secrets.push(("group id".into(), gid.0.to_vec()));
    secrets.push(("group id text".into(), id.clone().into_bytes()));
    for b in bodies
        .iter()
        .chain(std::iter::once(&"a private hello".to_string()))
    {
        secrets.push((format!("text {b:?}"), b.clone().into_bytes()));
    }
    let seen = dump
        .records
        .iter()
        .flat_map(|(k, v)| [k, v])
        .chain(dump.gossip.iter().map(|(_, d)| d));
    for bytes in seen {
        for (what, secret) in &secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
                "the spy saw the {what}"
            );
        }
    }
    for (author, _) in &dump.gossip {
        assert_eq!(*author, None, "gossip names its author");
    }
    println!(
        "spy saw {} records and {} gossip messages; none named a member or the group",
        dump.records.len(),
        dump.gossip.len()
    );
    spy.stop();
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: Mallory, invited to Ana's group with Ben, copies the group's id into an invitation
/// of her own and sends it to Ben while he is away, so that it may reach him before Ana's.
/// Stopped by: a group id commits to its creator (`group_id_for`), so Ben refuses Mallory's
/// invitation whatever the order, and Ana's real one arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_squatted_group_id_does_not_block_the_real_invitation() {
    use kiyeovo_core::group::control::{random_id, Body, Control};
    let (boot, addr) = bootstrap_node().await;
    let (pa, pb, pm) = (
        TestProfile::new("sq-ana"),
        TestProfile::new("sq-ben"),
        TestProfile::new("sq-mallory"),
    );
    let ana = start_group_app(&pa, &addr).await;
    let ben = start_group_app(&pb, &addr).await;
    let mallory = start_group_app(&pm, &addr).await;
    befriend(&ana, &ben).await;
    befriend(&ana, &mallory).await;
    befriend(&mallory, &ben).await;
    let ben_peer = ben.peer_id();
    ben.shutdown().await;

    let id = ana
        .groups()
        .create("Book club", &[ben_peer, mallory.peer_id()], "Ana")
        .await
        .unwrap()
        .group_id;
    wait_group(&mallory, &id, "the invitation", |v| v.can_respond).await;
    let gid = kiyeovo_core::group::store::parse_group_id(&id).unwrap();
    let real = mallory.groups().load_group(&gid).await.unwrap();
    let me = pm.keystore().load_identity().unwrap().unwrap();
    let squat = Control {
        id: random_id(),
        group_id: gid,
        sent_at: real.invite.created_at,
        body: Body::Invite(real.invite.clone()),
    }
    .sign(&me);
    mallory
        .channel()
        .send_group(&ben_peer, squat.encode())
        .await
        .unwrap();
    // Sent after the squat through the same in-order channel: once Ben has this, the squat is
    // in his group inbox too.
    mallory
        .channel()
        .send_chat(&ben_peer, "after the squat")
        .await
        .unwrap();

    let ben = start_group_app(&pb, &addr).await;
    let mallory_peer = mallory.peer_id();
    wait_chat(&ben, &mallory_peer, "after the squat").await;
    ben.groups().process_inbox().await;
    let v = wait_group(&ben, &id, "Ana's invitation", |v| v.can_respond).await;
    assert_eq!(v.creator_peer_id, ana.peer_id().to_string());
    let groups = ben.groups().list().await.unwrap();
    assert_eq!(groups.len(), 1, "{groups:#?}");
    ben.groups().respond(&id, true).await.unwrap();
    wait_group(&ana, &id, "Ben's acceptance", |v| {
        v.members.iter().any(|m| {
            m.peer_id == ben_peer.to_string()
                && m.status == kiyeovo_core::api::MemberStatus::Accepted
        })
    })
    .await;
    for app in [ana, ben, mallory] {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: Rex was invited and rejected, so he holds the window's temporary key. After the group
/// is established his modified client posts on the window's topic and hands members window
/// envelopes directly; the creator's modified client posts a window message after the window.
/// Stopped by: the window closes at establishment (nobody listens on it, nothing new is taken
/// into it), window messages count only from the creator and acceptors, and during the window
/// only with a time inside it (`group::chat` acceptance).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejecter_cannot_post_in_the_closed_window() {
    use kiyeovo_core::group::chat::{topic_for, ChatDrop};
    use kiyeovo_core::group::envelope::{self, Sealing};
    let (boot, addr) = bootstrap_node().await;
    let profiles = [
        TestProfile::new("win-ana"),
        TestProfile::new("win-ben"),
        TestProfile::new("win-rex"),
    ];
    let mut apps = Vec::new();
    for p in &profiles {
        let mut c = p.config(std::slice::from_ref(&addr));
        c.group = kiyeovo_core::group::GroupConfig {
            // Long enough for both answers even on a loaded machine.
            window: Duration::from_secs(8),
            ..group_config()
        };
        apps.push(start_online(c).await);
    }
    let (ana, ben, rex) = (&apps[0], &apps[1], &apps[2]);
    befriend(ana, ben).await;
    befriend(ana, rex).await;
    let id = ana
        .groups()
        .create("Book club", &[ben.peer_id(), rex.peer_id()], "Ana")
        .await
        .unwrap()
        .group_id;
    wait_group(ben, &id, "the invitation", |v| v.can_respond).await;
    wait_group(rex, &id, "the invitation", |v| v.can_respond).await;
    ben.groups().respond(&id, true).await.unwrap();
    rex.groups().respond(&id, false).await.unwrap();
    let active =
        |v: &kiyeovo_core::api::GroupView| v.status == kiyeovo_core::api::GroupStatus::Active;
    wait_group(ana, &id, "established at the window's end", active).await;
    wait_group(ben, &id, "established", active).await;

    let gid = kiyeovo_core::group::store::parse_group_id(&id).unwrap();
    let temp = rex.groups().keys_held(&id).await.unwrap()[0].1.clone();
    let rex_id = profiles[2].keystore().load_identity().unwrap().unwrap();
    let ana_id = profiles[0].keystore().load_identity().unwrap().unwrap();
    let expires_at = ana
        .groups()
        .load_group(&gid)
        .await
        .unwrap()
        .invite
        .expires_at;
    let window_env =
        |who: &kiyeovo_core::identity::Identity, seq: u64, sent_at: u64, body: &str| {
            envelope::seal(
                &Sealing {
                    identity: who,
                    key: &temp,
                    group_id: gid,
                    epoch: 0,
                    seq,
                    msg_id: kiyeovo_core::group::control::random_id(),
                    sent_at,
                    roster_hash: [0; 32],
                },
                body,
            )
            .unwrap()
        };
    // On the window's topic: nobody listens any more.
    let topic = topic_for(&gid, &temp);
    rex.client().subscribe(topic.clone()).await.unwrap();
    let _ = rex
        .client()
        .publish(
            topic,
            window_env(&rex_id, 1, expires_at - 1000, "rex on the topic"),
        )
        .await;
    // Handed to a member directly (as a relay would): refused, the rejecter is no sender.
    let err = ben
        .chat()
        .ingest(
            &id,
            &window_env(&rex_id, 2, expires_at - 1000, "rex relayed"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ChatDrop::NotAMember), "{err}");
    // The creator's window message (dated after the window, or backdated into it): the window
    // is closed, no new window message is taken.
    let late = expires_at + 10 * 60 * 1000;
    let err = ben
        .chat()
        .ingest(&id, &window_env(&ana_id, 50, late, "after the window"))
        .await
        .unwrap_err();
    assert!(matches!(err, ChatDrop::WindowClosed), "{err}");

    // A real message in the established epoch still arrives, and nothing of the above shows.
    ana.chat().send(&id, "welcome").await.unwrap();
    wait_group_message(ben, &id, "welcome").await;
    let bodies: Vec<String> = ben
        .chat()
        .chat(&id)
        .await
        .unwrap()
        .messages
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, vec!["welcome".to_string()]);
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: Cai accepted with Ben, so she holds the window's temporary key and sees, in the
/// creator's roster, the window bucket key Ben announced. Her modified client tries to empty
/// Ben's window bucket (erasing what he wrote for members who are away): with a key derived from
/// the temporary key (how window buckets were keyed before protocol v2), and with an empty
/// bucket of her own, at the highest version, under Ben's record key. Stopped by: a window
/// bucket's key is its owner's alone, announced in its signed answer and relayed with that
/// signature; storing nodes take only records signed by the key the record key names. Ben's
/// message stays in his bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitee_cannot_empty_another_members_window_bucket() {
    use kiyeovo_core::group::control::GroupKey;
    use kiyeovo_core::group::machine::bucket_public;
    use kiyeovo_core::group::pages::GroupBucket;
    use kiyeovo_core::group::store_legacy::legacy_window_seed;
    let (boot, profiles, apps, id) = invited_trio("wb").await;
    let (ana, ben, cai) = (&apps[0], &apps[1], &apps[2]);
    ben.groups().respond(&id, true).await.unwrap();
    cai.groups().respond(&id, true).await.unwrap();
    let gid = kiyeovo_core::group::store::parse_group_id(&id).unwrap();
    let ben_key = profiles[1]
        .keystore()
        .load_identity()
        .unwrap()
        .unwrap()
        .public()
        .ed25519;
    // Cai learns Ben's window key from a roster that carries his signed acceptance (the first
    // roster showing him accepted may have gone out before Cai's own acceptance counted).
    let mut events = cai.groups().subscribe();
    let seen_by_cai = tokio::time::timeout(WAIT, async {
        loop {
            let g = cai.groups().load_group(&gid).await.unwrap();
            if g.window_buckets.contains_key(&ben_key) {
                return g;
            }
            let _ = events.recv().await;
        }
    })
    .await
    .expect("Ben's acceptance in Cai's roster");
    let ben_window = seen_by_cai.window_buckets[&ben_key];
    assert_eq!(
        ana.groups().load_group(&gid).await.unwrap().window_buckets[&ben_key],
        ben_window,
        "the creator and Cai hold the key Ben announced"
    );
    // What the temporary key lets Cai derive is not Ben's key any more.
    let derived = legacy_window_seed(&seen_by_cai.invite.temp_key, &ben_key);
    assert_ne!(bucket_public(&derived), ben_window);

    // Ben writes in the window; his bucket holds it.
    ben.chat().send(&id, "ben in the window").await.unwrap();
    wait_group_message_where(ben, &id, "Ben's window message in his bucket", |m| {
        m.body == "ben in the window" && m.stored
    })
    .await;

    let record_key = RecordKey::for_public_key(RecordKind::GroupBucket, &ben_window);
    let empty = GroupBucket::default().encode();
    for signer in [
        SigningKey::from_bytes(&derived.0),
        SigningKey::from_bytes(&GroupKey::random().0),
    ] {
        let forged = SignedRecord::sign(&signer, &record_key, u64::MAX - 1, 1, empty.clone());
        let _ = cai
            .client()
            .put_record(record_key.to_bytes(), forged.encode())
            .await;
    }
    // Read back through the DHT (Ana's node asks the storing nodes): still Ben's record, with
    // his message.
    let bytes = ana
        .client()
        .get_record(record_key.to_bytes())
        .await
        .unwrap();
    let record = SignedRecord::decode(&bytes, usize::MAX).unwrap();
    assert_eq!(record.public_key, ben_window);
    assert!(record.version < u64::MAX - 1);
    let bucket = GroupBucket::decode(&record.payload, usize::MAX).unwrap();
    assert_eq!(
        bucket.envelopes.len(),
        1,
        "Ben's window message is still there"
    );
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Every byte under `dir`, file by file.
fn every_file(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(every_file(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}

/// Attack: someone reads Ben's data directory (a stolen laptop's disk, a backup, another local
/// user with his file permissions) but not his keyring, after Ben befriended Ana and Cai, named
/// Cai by a name of his own, joined their group and chatted — while the app runs (WAL and all)
/// and after it closed. Stopped by: the whole database is encrypted (SQLCipher) under a key
/// derived from the storage key in the keyring; bodies and group state are sealed on top. Not
/// one contact's name or id, group id or name, or message is in any file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_of_the_data_directory_learns_no_contact_group_or_message() {
    let (boot, addr) = bootstrap_node().await;
    let profiles = [
        TestProfile::new("disk-ana"),
        TestProfile::new("disk-ben"),
        TestProfile::new("disk-cai"),
    ];
    let mut apps = Vec::new();
    for (p, name) in profiles.iter().zip(["Anastasia", "Benedikt", "Caietana"]) {
        let app = start_group_app(p, &addr).await;
        app.set_display_name(name).await.unwrap();
        apps.push(app);
    }
    befriend(&apps[1], &apps[2]).await;
    apps[1]
        .channel()
        .rename(&apps[2].peer_id(), "Cousin Caterina")
        .await
        .unwrap();
    apps[1]
        .channel()
        .send_chat(&apps[2].peer_id(), "the secret recipe is saffron")
        .await
        .unwrap();
    let id = form_group(&apps).await;
    apps[0]
        .chat()
        .send(&id, "meet at the lighthouse")
        .await
        .unwrap();
    wait_group_message(&apps[1], &id, "meet at the lighthouse").await;
    let group_name = apps[1].groups().get(&id).await.unwrap().name;

    let secrets: Vec<Vec<u8>> = [
        "Anastasia".to_string(),
        "Caietana".to_string(),
        "Cousin Caterina".to_string(),
        apps[0].peer_id().to_string(),
        apps[2].peer_id().to_string(),
        id.clone(),
        group_name,
        "the secret recipe is saffron".to_string(),
        "meet at the lighthouse".to_string(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .chain([
        apps[0].peer_id().to_bytes(),
        apps[2].peer_id().to_bytes(),
        kiyeovo_core::group::store::parse_group_id(&id)
            .unwrap()
            .0
            .to_vec(),
    ])
    .collect();
    let ben_dir = profiles[1].db_path().parent().unwrap().to_path_buf();
    let look = |when: &str| {
        let files = every_file(&ben_dir);
        assert!(files.iter().any(|(p, _)| p.ends_with("kiyeovo.db")));
        for (path, bytes) in &files {
            for secret in &secrets {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
                    "{when}: {} holds {:?}",
                    path.display(),
                    String::from_utf8_lossy(secret)
                );
            }
        }
    };
    look("while running");
    for app in apps {
        app.shutdown().await;
    }
    look("after closing");
    boot.shutdown().await;
}

/// The harness for attacks on what storing nodes keep: two storing nodes hold the owner's
/// record `v2` (version 2); a plain-Kademlia attacker pushes `(key, value)` pairs made from it
/// to both; a control record pushed last proves each node handled them. Afterwards every node
/// still holds exactly `v2` under the real key and nothing under the attacker's keys, and a
/// reader gets `v2`.
async fn refused_by_storing_nodes(
    make: impl FnOnce(&SigningKey, &[u8], &[u8]) -> Vec<(Vec<u8>, Vec<u8>)>,
) {
    let nodes = storing_nodes(2, Limits::server()).await;
    let owner = SigningKey::generate(&mut OsRng);
    let (key, v2) = signed(&owner, 2, b"the owner's bucket, version 2");
    put_and_see(&nodes[0].0.client, &nodes[1].0, &key, &v2).await;
    let pushes = make(&owner, &key, &v2);
    let targets: Vec<_> = nodes.iter().map(|(_, a)| peer_and_addr(a)).collect();
    let mut evil = attacker(&targets);
    for (k, v) in &pushes {
        push(&mut evil, kad::Record::new(k.clone(), v.clone())).await;
    }
    let (ckey, cvalue) = signed(&SigningKey::generate(&mut OsRng), 1, b"control");
    for (node, _) in &nodes {
        let mut status = node.status.clone();
        push(&mut evil, kad::Record::new(ckey.clone(), cvalue.clone())).await;
        tokio::time::timeout(WAIT, async {
            while node
                .client
                .local_record(ckey.clone())
                .await
                .unwrap()
                .is_none()
            {
                status.changed().await.unwrap();
            }
        })
        .await
        .expect("the control record arrived after the attack");
    }
    for (node, _) in &nodes {
        assert_eq!(
            node.client.local_record(key.clone()).await.unwrap(),
            Some(v2.clone()),
            "the owner's record was replaced"
        );
        for (k, _) in pushes.iter().filter(|(k, _)| *k != key) {
            assert_eq!(
                node.client.local_record(k.clone()).await.unwrap(),
                None,
                "a storing node kept the attacker's record"
            );
        }
    }
    assert_eq!(nodes[1].0.client.get_record(key).await.unwrap(), v2);
    for (node, _) in nodes {
        node.shutdown().await;
    }
}

/// Attack: an older version of the owner's own record (validly signed) pushed over the newer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_version_does_not_replace_a_newer_one() {
    refused_by_storing_nodes(|owner, key, _| {
        let (_, v1) = signed(owner, 1, b"version 1");
        vec![(key.to_vec(), v1)]
    })
    .await;
}

/// Attack: the same version with other content and an earlier `updated_at` (the tie-break
/// goes to the later time, then the larger bytes: the attacker has neither).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equal_version_that_sorts_lower_does_not_replace() {
    refused_by_storing_nodes(|owner, key, _| {
        let rk = RecordKey::parse(key).unwrap();
        let earlier = SignedRecord::sign(owner, &rk, 2, 1, b"same version, older".to_vec());
        vec![(key.to_vec(), earlier.encode())]
    })
    .await;
}

/// Attack: a newer version that someone else signed (forged content under the owner's key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_signed_by_someone_else_is_refused() {
    refused_by_storing_nodes(|_, key, v2| {
        let mut forged = SignedRecord::decode(v2, usize::MAX).unwrap();
        forged.version = 9;
        forged.payload = b"forged".to_vec();
        vec![(key.to_vec(), forged.encode())]
    })
    .await;
}

/// Attack: the attacker's own valid record, signed with its own key, pushed under the owner's
/// key (the key commits to the writer's public key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_record_of_another_writer_is_refused_under_the_owners_key() {
    refused_by_storing_nodes(|_, key, _| {
        let (_, theirs) = signed(&SigningKey::generate(&mut OsRng), 99, b"mine now");
        vec![(key.to_vec(), theirs)]
    })
    .await;
}

/// Attack: the owner's record copied under another key of the owner's (another kind): the
/// signature covers the key, so it does not verify there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_moved_to_another_key_is_refused() {
    refused_by_storing_nodes(|owner, key, v2| {
        let group_key =
            RecordKey::for_public_key(RecordKind::GroupBucket, &owner.verifying_key().to_bytes());
        vec![
            (key.to_vec(), v2.to_vec()),
            (group_key.to_bytes(), v2.to_vec()),
        ]
    })
    .await;
}

/// Attack: bytes that are no record at all, a truncated copy, and a copy with trailing bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_truncated_and_padded_copies_are_refused() {
    refused_by_storing_nodes(|_, key, v2| {
        let mut padded = v2.to_vec();
        padded.push(0);
        vec![
            (key.to_vec(), b"not a record".to_vec()),
            (key.to_vec(), v2[..v2.len() - 10].to_vec()),
            (key.to_vec(), padded),
        ]
    })
    .await;
}

/// Attack: a valid record over the size limit, and records under keys that are not ours
/// (another prefix, a key that names no writer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_records_and_foreign_keys_are_refused() {
    refused_by_storing_nodes(|_, _, _| {
        let big_owner = SigningKey::generate(&mut OsRng);
        let (big_key, big) = signed(
            &big_owner,
            1,
            &vec![0u8; Limits::server().max_record_bytes + 1],
        );
        let (_, small) = signed(&SigningKey::generate(&mut OsRng), 1, b"x");
        vec![
            (big_key, big),
            (b"/ipfs/not-ours".to_vec(), small.clone()),
            (b"/kiyeovo/pw/".to_vec(), small),
        ]
    })
    .await;
}

/// Attack: an immutable versioned record (a group-info version) overwritten with other content
/// by its own writer's key holder: versioned records never change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immutable_version_is_never_overwritten() {
    let nodes = storing_nodes(2, Limits::server()).await;
    let admin = SigningKey::generate(&mut OsRng);
    let key = RecordKey::group_info_version(&admin.verifying_key().to_bytes(), 3);
    let first = SignedRecord::sign(
        &admin,
        &key,
        3,
        1,
        b"version 3 as everyone read it".to_vec(),
    );
    let (k, v) = (key.to_bytes(), first.encode());
    put_and_see(&nodes[0].0.client, &nodes[1].0, &k, &v).await;
    let other = SignedRecord::sign(&admin, &key, 3, 99, b"another version 3".to_vec());
    let targets: Vec<_> = nodes.iter().map(|(_, a)| peer_and_addr(a)).collect();
    let mut evil = attacker(&targets);
    push(&mut evil, kad::Record::new(k.clone(), other.encode())).await;
    let (ckey, cvalue) = signed(&SigningKey::generate(&mut OsRng), 1, b"control");
    for (node, _) in &nodes {
        put_and_see(&nodes[0].0.client, node, &ckey, &cvalue).await;
        assert_eq!(
            node.client.local_record(k.clone()).await.unwrap(),
            Some(v.clone())
        );
    }
    for (node, _) in nodes {
        node.shutdown().await;
    }
}

/// Attack: someone who learned a group's topic and key (but is not a member) floods the topic
/// with well-formed, correctly encrypted envelopes signed by itself. Stopped by: the roster
/// check (nothing is stored or shown) and gossipsub peer scoring (each rejected message costs
/// its sender; after three it is below the graylist threshold, so members stop processing its
/// messages at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_flooding_a_group_topic_is_scored_out() {
    use kiyeovo_core::group::envelope::{self, Sealing};
    use kiyeovo_core::node::scoring;
    let (boot, addr) = bootstrap_node().await;
    let (_profiles, apps, id) = group_of("flood", 2, &addr).await;
    let gid = kiyeovo_core::group::store::parse_group_id(&id).unwrap();
    let (epoch, key) = apps[0].groups().key(&id).await.unwrap();
    let topic = apps[0].chat().topic(&id).await.unwrap();

    let pi = TestProfile::new("flood-intruder");
    let intruder = start_group_app(&pi, &addr).await;
    let outsider = kiyeovo_core::identity::Identity::generate();
    intruder.client().subscribe(topic.clone()).await.unwrap();
    for app in &apps {
        let a = app.snapshot().node.unwrap().listen_addrs[0]
            .parse()
            .unwrap();
        intruder.client().dial(a).await.unwrap();
    }
    let intruder_peer = intruder.peer_id().to_string();
    for app in &apps {
        wait_for(&mut app.snapshots(), "the intruder connected", |s| {
            s.node
                .as_ref()
                .is_some_and(|n| n.connected_peers.contains(&intruder_peer))
        })
        .await;
    }
    let deadline = Instant::now() + WAIT;
    let mut sent = 0u64;
    // Publish until the member's score for the intruder is below the graylist threshold
    // (each loop publishes once and looks; the member needs the subscription first).
    loop {
        sent += 1;
        let forged = envelope::seal(
            &Sealing {
                identity: &outsider,
                key: &key,
                group_id: gid,
                epoch,
                seq: sent,
                msg_id: kiyeovo_core::group::control::random_id(),
                sent_at: 1,
                roster_hash: [0; 32],
            },
            "injected",
        )
        .unwrap();
        if intruder
            .client()
            .publish(topic.clone(), forged)
            .await
            .is_err()
        {
            // Nobody on the topic yet (the members' subscriptions have not reached it).
            sent -= 1;
        }
        // The lowest score any member gives it (each member that gets the flood rejects it).
        let mut score = f64::INFINITY;
        for app in &apps {
            let s = app
                .client()
                .gossip_score(intruder.peer_id())
                .await
                .unwrap()
                .unwrap_or(0.0);
            score = score.min(s);
        }
        if score < scoring::thresholds().graylist_threshold {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "score still {score} after {sent} messages"
        );
        tokio::task::yield_now().await;
        let mut rx = apps[0].chat().subscribe();
        let _ = tokio::time::timeout(Duration::from_millis(50), rx.recv()).await;
    }
    for member in &apps {
        assert!(
            member
                .chat()
                .chat(&id)
                .await
                .unwrap()
                .messages
                .iter()
                .all(|m| m.body != "injected"),
            "a non-member's message was stored"
        );
    }
    println!("intruder graylisted after {sent} messages");
    intruder.shutdown().await;
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: a contact running modified code buries the user in invitations. Stopped by: at most
/// three unanswered invitations from one contact at a time (`max_pending_invites_per_contact`);
/// the rest are dropped unseen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_cannot_bury_the_user_in_invitations() {
    let (boot, addr) = bootstrap_node().await;
    let (pm, pb) = (TestProfile::new("inv-mallory"), TestProfile::new("inv-ben"));
    let mallory = start_group_app(&pm, &addr).await;
    let ben = start_group_app(&pb, &addr).await;
    befriend(&mallory, &ben).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            mallory
                .groups()
                .create(&format!("spam {i}"), &[ben.peer_id()], "M")
                .await
                .unwrap()
                .group_id,
        );
    }
    // Through the same in-order channel: once Ben has this, every invitation reached him.
    mallory
        .channel()
        .send_chat(&ben.peer_id(), "after the invitations")
        .await
        .unwrap();
    wait_chat(&ben, &mallory.peer_id(), "after the invitations").await;
    // The invitations sit in Ben's group inbox (written with the chat before it); process
    // whatever his group service has not taken yet.
    ben.groups().process_inbox().await;
    let shown: Vec<String> = ben
        .groups()
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.group_id)
        .collect();
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert!(
        shown.iter().all(|id| ids[..3].contains(id)),
        "the first three are kept"
    );
    for app in [mallory, ben] {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// An app's TCP address without its `/p2p/…` suffix, and its peer id.
fn tcp_of(app: &kiyeovo_core::service::App) -> (PeerId, Multiaddr) {
    let text = app
        .snapshot()
        .node
        .unwrap()
        .listen_addrs
        .into_iter()
        .find(|a| a.contains("/tcp/"))
        .unwrap();
    peer_and_addr(&text)
}

/// Waits until `app` shows `body` from `from` (a group message of `id`).
async fn wait_group_message(app: &kiyeovo_core::service::App, id: &str, body: &str) {
    wait_group_message_where(app, id, body, |m| m.body == body).await
}

/// Waits until `app` shows a message of group `id` that `pred` accepts.
async fn wait_group_message_where(
    app: &kiyeovo_core::service::App,
    id: &str,
    what: &str,
    pred: impl Fn(&kiyeovo_core::api::GroupMessageView) -> bool,
) {
    let mut rx = app.chat().subscribe();
    tokio::time::timeout(WAIT, async {
        while !app
            .chat()
            .chat(id)
            .await
            .unwrap()
            .messages
            .iter()
            .any(&pred)
        {
            let _ = rx.recv().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what:?} never arrived"));
}

/// Attack: a plain client sends a direct payload over the size limit (to exhaust memory or
/// wedge the node). Stopped by: the codec stops reading at the limit and drops the stream; the
/// node goes on working and the contact's next message arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_direct_payload_is_cut_off_and_the_node_goes_on() {
    let (boot, addr) = bootstrap_node().await;
    let (pa, pb) = (TestProfile::new("big-ana"), TestProfile::new("big-ben"));
    let ana = start_group_app(&pa, &addr).await;
    let ben = start_group_app(&pb, &addr).await;
    befriend(&ana, &ben).await;
    let evil = DirectPeer::start(libp2p::identity::Keypair::generate_ed25519());
    let (ben_peer, ben_addr) = tcp_of(&ben);
    let mut big = vec![kiyeovo_core::pairwise::channel::TAG_ENVELOPE];
    big.resize(Limits::default().max_direct_bytes + 1, 0);
    // The stream is cut at the limit; the sender cannot tell that from an acknowledgement (both
    // read as an empty answer), so what counts is that Ben's node goes on as if nothing came.
    let _ = evil.send(ben_peer, ben_addr, big).await;
    ana.channel()
        .send_chat(&ben_peer, "still working")
        .await
        .unwrap();
    wait_chat(&ben, &ana.peer_id(), "still working").await;
    evil.stop();
    for app in [ana, ben] {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: a third party (any peer) hands Ben a genuine envelope Ana sealed for him — a replay
/// from someone who captured it, or a relay trying to inject it. Stopped by: a direct envelope
/// is opened only with the keys of the peer that sent it (the connection's authenticated
/// identity), so it is refused and never stored twice or out of turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_handed_over_by_someone_else_is_refused() {
    use kiyeovo_core::pairwise::envelope::{self, Payload};
    use kiyeovo_core::pairwise::keys::derive;
    let (boot, addr) = bootstrap_node().await;
    let (pa, pb) = (TestProfile::new("rp-ana"), TestProfile::new("rp-ben"));
    let ana = start_group_app(&pa, &addr).await;
    let ben = start_group_app(&pb, &addr).await;
    befriend(&ana, &ben).await;
    let ana_id = pa.keystore().load_identity().unwrap().unwrap();
    let ben_id = pb.keystore().load_identity().unwrap().unwrap();
    let genuine = envelope::seal(
        &ana_id,
        &ben_id.public().ed25519,
        &derive(&ana_id, &ben_id.public()).outgoing,
        1000,
        envelope::new_msg_id(),
        1,
        &Payload::Chat {
            body: "handed over".into(),
        },
    )
    .unwrap();
    let evil = DirectPeer::start(libp2p::identity::Keypair::generate_ed25519());
    let (ben_peer, ben_addr) = tcp_of(&ben);
    let mut payload = vec![kiyeovo_core::pairwise::channel::TAG_ENVELOPE];
    payload.extend_from_slice(&genuine);
    // The acknowledgement means Ben's node queued it for his app, before what Ana sends next.
    evil.send(ben_peer, ben_addr, payload).await.unwrap();
    ana.channel()
        .send_chat(&ben_peer, "the real one")
        .await
        .unwrap();
    wait_chat(&ben, &ana.peer_id(), "the real one").await;
    let bodies: Vec<String> = ben
        .channel()
        .messages(&ana.peer_id())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, vec!["the real one".to_string()]);
    evil.stop();
    for app in [ana, ben] {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// A `Want` for `sender`'s messages `seqs` of group `id`, as a direct payload.
fn want(id: &str, epoch: u32, sender: [u8; 32], seqs: Vec<u64>) -> Vec<u8> {
    let mut payload = vec![kiyeovo_core::group::chat::TAG_WANT];
    payload.extend_from_slice(&codec::encode(&kiyeovo_core::group::chat::Want {
        group_id: kiyeovo_core::group::store::parse_group_id(id).unwrap(),
        epoch,
        sender,
        seqs,
    }));
    payload
}

/// Attack: someone who is not a member asks a member for the group's envelopes (to count them,
/// or to make the member send on its behalf). Stopped by: only members of that epoch are
/// answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_asking_for_missing_envelopes_gets_nothing() {
    let (boot, addr) = bootstrap_node().await;
    let (profiles, apps, id) = group_of("want", 2, &addr).await;
    kiyeovo_tests::wait_connected(&apps).await;
    for i in 1..=3 {
        apps[0].chat().send(&id, &format!("m{i}")).await.unwrap();
    }
    for i in 1..=3 {
        wait_group_message(&apps[1], &id, &format!("m{i}")).await;
    }
    let (epoch, _) = apps[0].groups().key(&id).await.unwrap();
    let creator = profiles[0].keystore().load_identity().unwrap().unwrap();
    let evil = DirectPeer::start(libp2p::identity::Keypair::generate_ed25519());
    let (member, member_addr) = tcp_of(&apps[1]);
    evil.send(
        member,
        member_addr,
        want(&id, epoch, creator.public().ed25519, vec![1, 2, 3]),
    )
    .await
    .unwrap();
    // Queued before the creator's next message (gossip goes through the same dispatcher).
    apps[0].chat().send(&id, "after the request").await.unwrap();
    wait_group_message(&apps[1], &id, "after the request").await;
    assert!(
        evil.received.borrow().is_empty(),
        "a non-member was sent envelopes"
    );
    evil.stop();
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: a member (a modified client with its own key) repeats the same request for missing
/// envelopes over and over, to make another member read its database and send the same
/// envelopes again and again. Stopped by: one answer per asker, group epoch and sender per
/// second (`WANT_INTERVAL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_requests_for_missing_envelopes_are_answered_once() {
    let (boot, addr) = bootstrap_node().await;
    let (profiles, apps, id) = group_of("rwant", 3, &addr).await;
    kiyeovo_tests::wait_connected(&apps[..2]).await;
    for i in 1..=3 {
        apps[0].chat().send(&id, &format!("m{i}")).await.unwrap();
    }
    for i in 1..=3 {
        wait_group_message(&apps[1], &id, &format!("m{i}")).await;
    }
    let (epoch, _) = apps[0].groups().key(&id).await.unwrap();
    let creator = profiles[0].keystore().load_identity().unwrap().unwrap();
    // Member 2's app closes; its modified client takes over its key.
    let m2 = profiles[2].keystore().load_identity().unwrap().unwrap();
    let mut apps = apps;
    apps.pop().unwrap().shutdown().await;
    // Until member 1 has seen the closed app's connections go, it could answer on those.
    let m2_peer = m2.peer_id().to_string();
    wait_for(
        &mut apps[1].snapshots(),
        "the closed app disconnected",
        |s| {
            s.node
                .as_ref()
                .is_some_and(|n| !n.connected_peers.contains(&m2_peer))
        },
    )
    .await;
    let evil = DirectPeer::start(m2.libp2p_keypair());
    let (member, member_addr) = tcp_of(&apps[1]);
    for _ in 0..10 {
        evil.send(
            member,
            member_addr.clone(),
            want(&id, epoch, creator.public().ed25519, vec![1, 2, 3]),
        )
        .await
        .unwrap();
    }
    let mut received = evil.received.clone();
    tokio::time::timeout(WAIT, received.wait_for(|r| r.len() >= 3))
        .await
        .expect("the first request was answered")
        .unwrap();
    apps[0]
        .chat()
        .send(&id, "after the requests")
        .await
        .unwrap();
    wait_group_message(&apps[1], &id, "after the requests").await;
    assert_eq!(evil.received.borrow().len(), 3, "answered more than once");
    evil.stop();
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: a storing node serves an older (validly signed) version of a record and is the
/// first the reader asks, hoping readers stop at the first answer. Stopped by: a read keeps the
/// newest of several valid copies (`records::best_of`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storing_node_serving_a_stale_copy_does_not_win() {
    let nodes = storing_nodes(2, Limits::server()).await;
    let owner = SigningKey::generate(&mut OsRng);
    let mut liar = attacker(&[]);
    liar.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let liar_addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = liar.select_next_some().await {
            break format!("{address}/p2p/{}", liar.local_peer_id());
        }
    };
    let (key, v2) = signed(&owner, 2, b"version 2");
    let (_, v1) = signed(&owner, 1, b"version 1");
    put_and_see(&nodes[0].0.client, &nodes[1].0, &key, &v2).await;
    liar.behaviour_mut()
        .store_mut()
        .put(kad::Record::new(key.clone(), v1))
        .unwrap();
    let serving = tokio::spawn(async move {
        loop {
            liar.select_next_some().await;
        }
    });
    let boot = vec![liar_addr, nodes[0].1.clone(), nodes[1].1.clone()];
    let (reader, _) = bootstrap_node_with(Limits::server(), boot).await;
    let got = tokio::time::timeout(WAIT, reader.client.get_record(key))
        .await
        .expect("read ended")
        .unwrap();
    assert_eq!(got, v2, "the stale copy won");
    serving.abort();
    reader.shutdown().await;
    for (node, _) in nodes {
        node.shutdown().await;
    }
}

/// Waits until `to` shows the 1:1 message `body` from `from`. Messages of one contact are applied
/// in order, so everything that contact sent before it has been applied too.
async fn wait_chat(to: &kiyeovo_core::service::App, from: &PeerId, body: &str) {
    let mut events = to.channel().subscribe();
    while !to
        .channel()
        .messages(from)
        .await
        .unwrap()
        .iter()
        .any(|m| m.body == body)
    {
        wait_event(&mut events, body, |e| {
            matches!(
                e,
                kiyeovo_core::pairwise::channel::ChannelEvent::MessageReceived { .. }
            )
        })
        .await;
    }
}

/// Delivers `control` (signed by `from`'s key) to `to` through the pairwise channel, then waits
/// until `to` has processed it (a chat message sent after it arrived, the group inbox drained).
async fn deliver_control(
    from: &kiyeovo_core::service::App,
    to: &kiyeovo_core::service::App,
    control: Vec<u8>,
) {
    from.channel()
        .send_group(&to.peer_id(), control)
        .await
        .unwrap();
    from.channel()
        .send_chat(&to.peer_id(), "after the control message")
        .await
        .unwrap();
    wait_chat(to, &from.peer_id(), "after the control message").await;
    to.groups().process_inbox().await;
}

/// Ana invites Ben and Cai (all three contacts of each other); Ben has the invitation open.
async fn invited_trio(
    tag: &str,
) -> (
    kiyeovo_node::Headless,
    [TestProfile; 3],
    Vec<kiyeovo_core::service::App>,
    String,
) {
    let (boot, addr) = bootstrap_node().await;
    let profiles = [
        TestProfile::new(&format!("{tag}-ana")),
        TestProfile::new(&format!("{tag}-ben")),
        TestProfile::new(&format!("{tag}-cai")),
    ];
    let mut apps = Vec::new();
    for p in &profiles {
        apps.push(start_group_app(p, &addr).await);
    }
    befriend(&apps[0], &apps[1]).await;
    befriend(&apps[0], &apps[2]).await;
    befriend(&apps[1], &apps[2]).await;
    let id = apps[0]
        .groups()
        .create("Book club", &[apps[1].peer_id(), apps[2].peer_id()], "Ana")
        .await
        .unwrap()
        .group_id;
    wait_group(&apps[1], &id, "the invitation", |v| v.can_respond).await;
    wait_group(&apps[2], &id, "the invitation", |v| v.can_respond).await;
    (boot, profiles, apps, id)
}

/// Cai's modified client signs `body` for the group and delivers it to Ben; returns Ben's view.
async fn cai_sends_ben(
    profiles: &[TestProfile; 3],
    apps: &[kiyeovo_core::service::App],
    id: &str,
    body: kiyeovo_core::group::control::Body,
) -> kiyeovo_core::api::GroupView {
    let gid = kiyeovo_core::group::store::parse_group_id(id).unwrap();
    let g = apps[2].groups().load_group(&gid).await.unwrap();
    let cai_id = profiles[2].keystore().load_identity().unwrap().unwrap();
    let control = kiyeovo_core::group::control::Control::new(gid, g.invite.created_at + 1, body)
        .sign(&cai_id);
    deliver_control(&apps[2], &apps[1], control.encode()).await;
    apps[1].groups().get(id).await.unwrap()
}

/// Attack: Cai, invited with Ben, sends Ben a roster update of her own saying every invitee
/// rejected (to make him think the group failed). Stopped by: only the creator's roster is
/// applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_rewrite_the_roster() {
    use kiyeovo_core::group::control::{Body, InviteeStatus, RosterUpdate};
    let (boot, profiles, apps, id) = invited_trio("ro").await;
    apps[2].groups().respond(&id, true).await.unwrap();
    let gid = kiyeovo_core::group::store::parse_group_id(&id).unwrap();
    let g = apps[2].groups().load_group(&gid).await.unwrap();
    let fake = Body::Roster(RosterUpdate {
        version: 1_000,
        statuses: g
            .invite
            .invitees
            .iter()
            .map(|p| (p.id, InviteeStatus::Rejected))
            .collect(),
        acceptances: Vec::new(),
    });
    let after = cai_sends_ben(&profiles, &apps, &id, fake).await;
    assert!(
        after
            .members
            .iter()
            .all(|m| m.status != kiyeovo_core::api::MemberStatus::Rejected),
        "{after:#?}"
    );
    assert!(after.can_respond);
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: Cai, invited with Ben, "establishes" the group for Ben with a key of her own (a
/// Welcome she signed), to read what he writes. Stopped by: only the creator's Welcome is taken;
/// Ben holds no key of Cai's and his invitation stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_establish_the_group_for_another() {
    use kiyeovo_core::group::control::{Body, GroupKey, Member, Welcome};
    let (boot, profiles, apps, id) = invited_trio("wl").await;
    apps[1].groups().respond(&id, true).await.unwrap();
    let key = GroupKey::random();
    let members = [0, 1]
        .iter()
        .map(|&i| Member {
            id: profiles[i]
                .keystore()
                .load_identity()
                .unwrap()
                .unwrap()
                .public()
                .ed25519,
            name: "x".into(),
            bucket_pub: [1; 32],
            x25519: profiles[i]
                .keystore()
                .load_identity()
                .unwrap()
                .unwrap()
                .public()
                .x25519,
            response: Vec::new(),
        })
        .collect();
    let after = cai_sends_ben(
        &profiles,
        &apps,
        &id,
        Body::Welcome(Welcome {
            epoch: 1,
            key: key.clone(),
            members,
        }),
    )
    .await;
    assert_ne!(after.status, kiyeovo_core::api::GroupStatus::Active);
    assert!(apps[1]
        .groups()
        .keys_held(&id)
        .await
        .unwrap_or_default()
        .iter()
        .all(|(_, k)| *k != key));
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: Cai tells Ben the group goes on without him (a Closed message she signed), so that
/// he never answers. Stopped by: only the creator can close an invitation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_close_another_members_invitation() {
    use kiyeovo_core::group::control::{Body, ClosedReason};
    let (boot, profiles, apps, id) = invited_trio("cl").await;
    let after = cai_sends_ben(
        &profiles,
        &apps,
        &id,
        Body::Closed(ClosedReason::NotAccepted),
    )
    .await;
    assert!(after.can_respond, "{after:#?}");
    assert_eq!(after.status, kiyeovo_core::api::GroupStatus::Invited);
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: Cai, a contact of the creator who was not invited, sends an acceptance for the
/// group (hoping to be counted and handed the key). Stopped by: only invitees are counted; the
/// established group is the creator and those invited who accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acceptance_from_someone_not_invited_is_not_counted() {
    use kiyeovo_core::group::control::{Body, Control, Response};
    let (boot, addr) = bootstrap_node().await;
    let profiles = [
        TestProfile::new("ni-ana"),
        TestProfile::new("ni-ben"),
        TestProfile::new("ni-cai"),
    ];
    let mut apps = Vec::new();
    for p in &profiles {
        apps.push(start_group_app(p, &addr).await);
    }
    let (ana, ben, cai) = (&apps[0], &apps[1], &apps[2]);
    befriend(ana, ben).await;
    befriend(ana, cai).await;
    let id = ana
        .groups()
        .create("Book club", &[ben.peer_id()], "Ana")
        .await
        .unwrap()
        .group_id;
    let gid = kiyeovo_core::group::store::parse_group_id(&id).unwrap();
    let g = ana.groups().load_group(&gid).await.unwrap();
    let cai_id = profiles[2].keystore().load_identity().unwrap().unwrap();
    let answer = Control::new(
        gid,
        g.invite.created_at + 1,
        Body::Response(Response {
            invite_id: g.invite_id,
            accept: true,
            list_hash: g.invite.list_hash(&gid, &g.creator),
            bucket_pub: Some(kiyeovo_core::group::machine::bucket_public(
                &kiyeovo_core::group::control::GroupKey::random(),
            )),
            window_bucket_pub: Some(kiyeovo_core::group::machine::bucket_public(
                &kiyeovo_core::group::control::GroupKey::random(),
            )),
            x25519: cai_id.public().x25519,
            responded_at: g.invite.created_at + 1,
        }),
    );
    deliver_control(cai, ana, answer.sign(&cai_id).encode()).await;
    wait_group(ben, &id, "the invitation", |v| v.can_respond).await;
    ben.groups().respond(&id, true).await.unwrap();
    wait_group(ana, &id, "Ben accepted", |v| v.can_establish).await;
    let v = ana.groups().establish(&id).await.unwrap();
    let members: Vec<&str> = v.members.iter().map(|m| m.peer_id.as_str()).collect();
    assert!(
        !members.contains(&cai.peer_id().to_string().as_str()),
        "{members:?}"
    );
    assert!(ana
        .groups()
        .load_group(&gid)
        .await
        .unwrap()
        .members()
        .iter()
        .all(|m| m.id != cai_id.public().ed25519));
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: the same flood, with invitations that are already expired when they arrive (they
/// are still stored, shown as expired, and used to slip past a limit that counted only open
/// invitations). Stopped by: recently expired unanswered invitations count too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_expired_invitations_count_toward_the_limit() {
    use kiyeovo_core::group::control::{
        group_id_for, random_id, Body, Control, GroupKey, Invite, Person,
    };
    let (boot, addr) = bootstrap_node().await;
    let (pm, pb) = (TestProfile::new("exp-mallory"), TestProfile::new("exp-ben"));
    let mallory = start_group_app(&pm, &addr).await;
    let ben = start_group_app(&pb, &addr).await;
    befriend(&mallory, &ben).await;
    let me = pm.keystore().load_identity().unwrap().unwrap();
    let ben_key = pb
        .keystore()
        .load_identity()
        .unwrap()
        .unwrap()
        .public()
        .ed25519;
    let now = kiyeovo_core::time::now_ms();
    for i in 0..5 {
        let id = random_id();
        let invite = Control {
            id,
            group_id: group_id_for(&me.public().ed25519, &id),
            sent_at: now - 2_000,
            body: Body::Invite(Invite {
                name: format!("expired {i}"),
                creator_name: "M".into(),
                created_at: now - 2_000,
                expires_at: now - 1_000,
                invitees: vec![Person {
                    id: ben_key,
                    name: "Ben".into(),
                }],
                admin_pub: [1; 32],
                temp_key: GroupKey::random(),
                creator_x25519: me.public().x25519,
                creator_window_bucket: [1; 32],
            }),
        }
        .sign(&me);
        mallory
            .channel()
            .send_group(&ben.peer_id(), invite.encode())
            .await
            .unwrap();
    }
    deliver_control(&mallory, &ben, Vec::new()).await;
    let shown = ben.groups().list().await.unwrap();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    for app in [mallory, ben] {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Ana, Ben and Cai (contacts of each other) in an established group; Ana is its admin.
async fn established_trio(
    tag: &str,
) -> (
    kiyeovo_node::Headless,
    [TestProfile; 3],
    Vec<kiyeovo_core::service::App>,
    String,
) {
    let (boot, profiles, apps, id) = invited_trio(tag).await;
    apps[1].groups().respond(&id, true).await.unwrap();
    apps[2].groups().respond(&id, true).await.unwrap();
    wait_group(&apps[0], &id, "everyone accepted", |v| v.can_establish).await;
    apps[0].groups().establish(&id).await.unwrap();
    for app in &apps {
        wait_group(app, &id, "active", |v| v.epoch == 1).await;
    }
    (boot, profiles, apps, id)
}

/// A version `change` of the group info as `who`'s modified client writes it: on top of its
/// own head, naming `admin`, signed by its identity and its own chain (bucket) key.
async fn forged_version(
    profiles: &[TestProfile; 3],
    apps: &[kiyeovo_core::service::App],
    who: usize,
    id: &str,
    change: kiyeovo_core::group::info::Change,
    admin: [u8; 32],
) -> Vec<u8> {
    let (key, record) = forged_record(profiles, apps, who, id, change, admin).await;
    // Also where a storing node would serve it.
    let _ = apps[who].client().put_record(key, record.clone()).await;
    record
}

/// [`forged_version`] without writing it to the DHT: (its DHT key, the record).
async fn forged_record(
    profiles: &[TestProfile; 3],
    apps: &[kiyeovo_core::service::App],
    who: usize,
    id: &str,
    change: kiyeovo_core::group::info::Change,
    admin: [u8; 32],
) -> (Vec<u8>, Vec<u8>) {
    use kiyeovo_core::group::control::GroupKey;
    use kiyeovo_core::group::info;
    let gid = kiyeovo_core::group::store::parse_group_id(id).unwrap();
    let g = apps[who].groups().load_group(&gid).await.unwrap();
    let chain = g.chain.clone().unwrap();
    let identity = profiles[who].keystore().load_identity().unwrap().unwrap();
    let next = info::GroupInfo {
        group_id: gid,
        creator: g.creator,
        version: chain.version + 1,
        prev_hash: chain.hash,
        admin,
        epoch: g.epoch() + 1,
        members: g.members().to_vec(),
        boundaries: Vec::new(),
        change,
        made_at: kiyeovo_core::time::now_ms(),
    };
    let (key, record) = info::write(
        &identity,
        g.bucket_seed.as_ref().unwrap(),
        next,
        &GroupKey::random(),
    );
    (key.to_bytes(), record)
}

/// `from`'s modified client pushes a group-info record to `to` (as an admin's app does live).
async fn push_info(
    profiles: &[TestProfile; 3],
    apps: &[kiyeovo_core::service::App],
    from: usize,
    to: usize,
    id: &str,
    record: Vec<u8>,
) {
    use kiyeovo_core::group::control::{Body, Control};
    let gid = kiyeovo_core::group::store::parse_group_id(id).unwrap();
    let identity = profiles[from].keystore().load_identity().unwrap().unwrap();
    let control =
        Control::new(gid, kiyeovo_core::time::now_ms(), Body::Info(record)).sign(&identity);
    let (from, to) = (&apps[from], &apps[to]);
    from.channel()
        .send_group(&to.peer_id(), control.encode())
        .await
        .unwrap();
    // A marker of its own each time: an earlier push's marker must not stand in for this one.
    let marker = format!("after push {}", rand::random::<u64>());
    from.channel()
        .send_chat(&to.peer_id(), &marker)
        .await
        .unwrap();
    wait_chat(to, &from.peer_id(), &marker).await;
    to.groups().process_inbox().await;
}

/// Attack: Cai, a member, writes the next group-info version making herself admin (signed with
/// her keys, stored in the DHT) and pushes it to Ben. Stopped by: a version counts only at the
/// admin's chain location, signed by the admin named in the version before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_write_the_next_group_info_version() {
    let (boot, profiles, apps, id) = established_trio("gi-member").await;
    let cai = profiles[2]
        .keystore()
        .load_identity()
        .unwrap()
        .unwrap()
        .public()
        .ed25519;
    let forged = forged_version(
        &profiles,
        &apps,
        2,
        &id,
        kiyeovo_core::group::info::Change::AdminTo(cai),
        cai,
    )
    .await;
    push_info(&profiles, &apps, 2, 1, &id, forged).await;
    let v = apps[1].groups().get(&id).await.unwrap();
    assert_eq!(v.epoch, 1, "{v:#?}");
    assert!(v
        .roster
        .iter()
        .any(|m| m.status == kiyeovo_core::api::MemberStatus::Admin
            && m.peer_id == apps[0].peer_id().to_string()));
    // The real admin's next version still applies.
    apps[0]
        .groups()
        .admin_action(&id, kiyeovo_core::group::changes::AdminAction::Rotate)
        .await
        .unwrap();
    wait_group(&apps[1], &id, "Ana's version 2", |v| v.epoch == 2).await;
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: Ana hands the group to Ben, then (modified) goes on writing versions as if still
/// admin, under her own chain key, and pushes one to Cai; later she replays an old version.
/// Stopped by: after the hand-over the chain continues at Ben's key; versions not newer than
/// the head are never applied (no rollback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_admin_cannot_write_after_handing_over_nor_roll_anyone_back() {
    use kiyeovo_core::group::changes::AdminAction;
    use kiyeovo_core::group::info::Change;
    let (boot, profiles, apps, id) = established_trio("gi-old").await;
    apps[0]
        .groups()
        .admin_action(&id, AdminAction::HandOver(apps[1].peer_id()))
        .await
        .unwrap();
    wait_group(&apps[2], &id, "Ben is admin", |v| v.epoch == 2).await;
    let ana = profiles[0]
        .keystore()
        .load_identity()
        .unwrap()
        .unwrap()
        .public()
        .ed25519;
    let forged = forged_version(&profiles, &apps, 0, &id, Change::AdminTo(ana), ana).await;
    push_info(&profiles, &apps, 0, 2, &id, forged).await;
    let v = apps[2].groups().get(&id).await.unwrap();
    assert_eq!(v.epoch, 2);
    assert!(!v
        .roster
        .iter()
        .any(|m| m.status == kiyeovo_core::api::MemberStatus::Admin
            && m.peer_id == apps[0].peer_id().to_string()));
    // Ben rotates; then Ana replays version 2 (the hand-over) to Cai.
    apps[1]
        .groups()
        .admin_action(&id, AdminAction::Rotate)
        .await
        .unwrap();
    wait_group(&apps[2], &id, "Ben's version 3", |v| v.epoch == 3).await;
    let gid = kiyeovo_core::group::store::parse_group_id(&id).unwrap();
    let old = apps[0]
        .groups()
        .load_group(&gid)
        .await
        .unwrap()
        .life
        .chain_records
        .iter()
        .find(|(v, _)| *v == 2)
        .unwrap()
        .1
        .clone();
    push_info(&profiles, &apps, 0, 2, &id, old).await;
    let v = apps[2].groups().get(&id).await.unwrap();
    assert_eq!(v.epoch, 3, "rolled back");
    assert!(
        v.flags.is_empty(),
        "a copy of a version it holds is no fork: {:?}",
        v.flags
    );
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: the admin (modified) writes two different versions 2 — one for Ben, one for Cai —
/// to split the group. Stopped by: whoever sees both (pushed, or read from the DHT) flags the
/// fork and keeps the one it applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_versions_with_one_number_are_flagged_as_a_fork() {
    use kiyeovo_core::group::info::Change;
    let (boot, profiles, apps, id) = established_trio("gi-fork").await;
    let ana = profiles[0]
        .keystore()
        .load_identity()
        .unwrap()
        .unwrap()
        .public()
        .ed25519;
    // Pushed before either is in the DHT: a member's poll of the chain (every 2 s here) must not
    // hand one of them the other's version first (that is the fork being seen, not the split).
    let (key, for_ben) = forged_record(&profiles, &apps, 0, &id, Change::Rotated, ana).await;
    let (_, for_cai) = forged_record(&profiles, &apps, 0, &id, Change::Rotated, ana).await;
    push_info(&profiles, &apps, 0, 1, &id, for_ben.clone()).await;
    push_info(&profiles, &apps, 0, 2, &id, for_cai.clone()).await;
    // Also where a storing node would serve it.
    let _ = apps[0].client().put_record(key, for_ben).await;
    assert_eq!(apps[1].groups().get(&id).await.unwrap().epoch, 2);
    let cai_code = apps[2].groups().get(&id).await.unwrap().safety_code;
    assert_ne!(
        apps[1].groups().get(&id).await.unwrap().safety_code,
        cai_code,
        "split"
    );
    // Ben sees Cai's version 2.
    push_info(&profiles, &apps, 0, 1, &id, for_cai).await;
    let v = apps[1].groups().get(&id).await.unwrap();
    assert!(
        v.flags
            .iter()
            .any(|f| f.what.contains("two different versions")),
        "{:?}",
        v.flags
    );
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: Ana, the admin, runs modified code and writes the next version "adding" Eve, who was
/// never asked and never accepted (Ana wants Ben and Cai to believe Eve reads along, or wants a
/// member under her control with Eve's name): once with no acceptance in Eve's entry, once with
/// Cai's real signed acceptance pasted in, once with an acceptance Eve really signed but for
/// another group Ana is in — also in a version that names that other group. Stopped by: a
/// version must name the member's own group, and every member checks each joiner's own signed
/// acceptance of this group's add round, with the keys its entry lists
/// (`info::check_acceptance`); the version is refused and flagged as the admin's doing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modified_admin_cannot_add_someone_who_never_accepted() {
    use kiyeovo_core::group::control::{random_id, Body, Control, GroupKey, Member, Response};
    use kiyeovo_core::group::info::{self, Change, GroupInfo};
    use kiyeovo_core::identity::Identity;
    let (boot, profiles, apps, id) = established_trio("gi-add").await;
    let gid = kiyeovo_core::group::store::parse_group_id(&id).unwrap();
    let ana = profiles[0].keystore().load_identity().unwrap().unwrap();
    let g = apps[0].groups().load_group(&gid).await.unwrap();
    let chain = g.chain.clone().unwrap();
    let eve = Identity::generate();
    let round = random_id();
    let eve_seed = GroupKey::random();
    let eve_bucket = kiyeovo_core::group::machine::bucket_public(&eve_seed);
    let acceptance = |group_id, signer: &Identity| {
        Control {
            id: random_id(),
            group_id,
            sent_at: 0,
            body: Body::Response(Response {
                invite_id: round,
                accept: true,
                list_hash: [0; 32],
                bucket_pub: Some(eve_bucket),
                window_bucket_pub: None,
                x25519: signer.public().x25519,
                responded_at: 0,
            }),
        }
        .sign(signer)
        .encode()
    };
    let cai_acceptance = g.members()[2].response.clone();
    // Eve accepted another group Ana is in; Ana holds that acceptance.
    let other = random_id();
    let forgeries = [
        ("no acceptance", Vec::new(), gid),
        ("Cai's acceptance", cai_acceptance, gid),
        ("Eve's, of another group", acceptance(other, &eve), gid),
        (
            "Eve's, of another group, in a version naming that group",
            acceptance(other, &eve),
            other,
        ),
    ];
    // Ana's version adding Eve with `response` in her entry, naming `group`.
    let adding = |response: Vec<u8>, group| {
        let mut members = g.members().to_vec();
        members.push(Member {
            id: eve.public().ed25519,
            name: "Eve".into(),
            bucket_pub: eve_bucket,
            x25519: eve.public().x25519,
            response,
        });
        let next = GroupInfo {
            group_id: group,
            creator: g.creator,
            version: chain.version + 1,
            prev_hash: chain.hash,
            admin: chain.admin,
            epoch: 2,
            members,
            boundaries: Vec::new(),
            change: Change::Added {
                who: vec![eve.public().ed25519],
                round,
            },
            made_at: kiyeovo_core::time::now_ms(),
        };
        let seed = g.bucket_seed.as_ref().unwrap();
        info::write(&ana, seed, next, &GroupKey::random()).1
    };
    for (what, response, version_group) in forgeries {
        push_info(&profiles, &apps, 0, 1, &id, adding(response, version_group)).await;
        let v = apps[1].groups().get(&id).await.unwrap();
        assert_eq!(v.epoch, 1, "{what}: {v:#?}");
        assert_eq!(v.roster.len(), 3, "{what}");
        assert!(
            !v.flags.is_empty(),
            "{what}: the admin's bad version is flagged"
        );
    }
    // The control: Eve's own acceptance of this round and group goes through.
    let record = adding(acceptance(gid, &eve), gid);
    push_info(&profiles, &apps, 0, 1, &id, record).await;
    let v = wait_group(&apps[1], &id, "Eve, who did accept, added", |v| {
        v.epoch == 2
    })
    .await;
    assert_eq!(v.roster.len(), 4);
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: Cai, a member who is not Ben's contact, uses the member-to-member direct path to
/// send Ben an invitation (an `Add` into a group of her own making) — invitations must come
/// from trusted contacts, and this path exists only for a Leave, a version or an
/// acknowledgement. Stopped by: the direct path takes only those three kinds, from a member of
/// a group the receiver holds. Her honest Leave sent the same way right after is taken (so the
/// invitation was read before it, and dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_invite_a_non_contact_over_the_member_to_member_path() {
    use kiyeovo_core::group::changes::AdminAction;
    use kiyeovo_core::group::control::{group_id_for, random_id, AddInvite, Body, Control, Person};
    use kiyeovo_core::group::service::TAG_GROUP_CONTROL;
    let (boot, addr) = bootstrap_node().await;
    // Only the creator, Ana, knows everyone: Ben and Cai are not each other's contacts.
    let (profiles, apps, id) = kiyeovo_tests::group_of("direct-add", 3, &addr).await;
    kiyeovo_tests::wait_connected(&apps).await;
    let (ana, ben, cai) = (&apps[0], &apps[1], &apps[2]);
    ana.groups()
        .admin_action(&id, AdminAction::HandOver(ben.peer_id()))
        .await
        .unwrap();
    wait_group(cai, &id, "Ben is admin", |v| v.epoch == 2).await;
    let cai_id = profiles[2].keystore().load_identity().unwrap().unwrap();
    let ben_key = profiles[1]
        .keystore()
        .load_identity()
        .unwrap()
        .unwrap()
        .public()
        .ed25519;
    let origin = random_id();
    let add = AddInvite {
        origin,
        creator: cai_id.public().ed25519,
        name: "Cai's club".into(),
        admin_name: "Cai".into(),
        created_at: kiyeovo_core::time::now_ms(),
        expires_at: kiyeovo_core::time::now_ms() + 3600 * 1000,
        invitees: vec![Person {
            id: ben_key,
            name: "Ben".into(),
        }],
        members: vec![Person {
            id: cai_id.public().ed25519,
            name: "Cai".into(),
        }],
        chain_pub: [1; 32],
        version: 1,
        head_hash: [2; 32],
    };
    let control = Control {
        id: random_id(),
        group_id: group_id_for(&cai_id.public().ed25519, &origin),
        sent_at: kiyeovo_core::time::now_ms(),
        body: Body::Add(add),
    }
    .sign(&cai_id);
    let mut payload = vec![TAG_GROUP_CONTROL];
    payload.extend_from_slice(&control.encode());
    cai.client()
        .send_direct(ben.peer_id(), payload)
        .await
        .unwrap();
    // Then her honest Leave, the same way.
    cai.groups().leave(&id).await.unwrap();
    wait_group(ben, &id, "Cai written out", |v| v.epoch == 3).await;
    let groups = ben.groups().list().await.unwrap();
    assert_eq!(groups.len(), 1, "{groups:#?}");
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: Cai, a member running modified code, sends group replies whose reference she chose
/// herself — Ben's message claimed as Ana's (to put Ben's words in Ana's mouth), and a message
/// of Ana's private chat with Cai (to drag it in front of the group). Stopped by: only a
/// reference travels, signed with the reply; the quote is read from the answered message as
/// the reader stored it, under its real author, from the same conversation only. The replies
/// arrive (they are Cai's own words) with their quotes shown as not available.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_cannot_put_words_in_someone_elses_mouth() {
    use kiyeovo_core::group::chat::ChatDrop;
    use kiyeovo_core::ids::MsgId;
    use kiyeovo_core::reply::ReplyRef;
    let (boot, addr) = bootstrap_node().await;
    let (profiles, apps, id) = group_of("forged-reply", 3, &addr).await;
    kiyeovo_tests::wait_connected(&apps).await;
    let (ana, ben, cai) = (&apps[0], &apps[1], &apps[2]);
    let ana_key = profiles[0]
        .keystore()
        .load_identity()
        .unwrap()
        .unwrap()
        .public()
        .ed25519;
    let private = ana
        .channel()
        .send_chat(&cai.peer_id(), "my pin is 2468")
        .await
        .unwrap();
    wait_chat(cai, &ana.peer_id(), "my pin is 2468").await;
    ben.chat()
        .send(&id, "I never liked the book")
        .await
        .unwrap();
    wait_group_message(ana, &id, "I never liked the book").await;
    let bens = ana
        .chat()
        .chat(&id)
        .await
        .unwrap()
        .messages
        .into_iter()
        .find(|m| m.body == "I never liked the book")
        .unwrap();

    let forged = [
        (
            1,
            "as Ana said:",
            MsgId::from_hex(&bens.msg_id).unwrap(),
            "I never liked the book",
        ),
        (
            2,
            "remember this:",
            MsgId::from_hex(&private.msg_id).unwrap(),
            "my pin is 2468",
        ),
    ];
    for (seq, body, msg_id, text) in forged {
        let reply_to = Some(ReplyRef {
            author: ana_key,
            msg_id,
            digest: kiyeovo_core::reply::digest(text),
        });
        let bytes = cai
            .groups()
            .seal_reply(&id, seq, body, reply_to)
            .await
            .unwrap();
        // Handed to Ana as a relayed envelope, and to Ben as his own copy (same path as gossip).
        ana.chat().ingest(&id, &bytes).await.unwrap();
        match ben.chat().ingest(&id, &bytes).await {
            Ok(_) | Err(ChatDrop::Duplicate) => {}
            Err(e) => panic!("{e}"),
        }
    }
    for app in [ana, ben] {
        let view = app.chat().chat(&id).await.unwrap();
        for body in ["as Ana said:", "remember this:"] {
            let m = view
                .messages
                .iter()
                .find(|m| m.body == body)
                .expect("the reply is there");
            let q = m.reply_to.as_ref().expect("still a reply");
            assert_eq!(
                q.body, None,
                "{body}: no words shown that its author did not write here"
            );
            assert_eq!(q.author_peer_id, ana.peer_id().to_string());
        }
    }
    // Ana's own chat with Cai still holds it; nothing of it shows in the group.
    assert!(!ana
        .chat()
        .chat(&id)
        .await
        .unwrap()
        .messages
        .iter()
        .any(|m| m.reply_to.as_ref().and_then(|q| q.body.as_deref()) == Some("my pin is 2468")));

    // A quote naming Dee, Ana's contact who is not in the group: not shown under Dee's name
    // (as if Dee were in it).
    let pd = TestProfile::new("forged-reply-dee");
    let dee = start_group_app(&pd, &addr).await;
    befriend(ana, &dee).await;
    ana.channel().rename(&dee.peer_id(), "Dee").await.unwrap();
    let dee_key = pd
        .keystore()
        .load_identity()
        .unwrap()
        .unwrap()
        .public()
        .ed25519;
    let reply_to = Some(ReplyRef {
        author: dee_key,
        msg_id: kiyeovo_core::group::control::random_id(),
        digest: [0; 32],
    });
    let bytes = cai
        .groups()
        .seal_reply(&id, 3, "Dee agrees", reply_to)
        .await
        .unwrap();
    ana.chat().ingest(&id, &bytes).await.unwrap();
    let view = ana.chat().chat(&id).await.unwrap();
    let q = view
        .messages
        .iter()
        .find(|m| m.body == "Dee agrees")
        .and_then(|m| m.reply_to.clone())
        .unwrap();
    assert_eq!(
        (q.author_name.as_str(), q.body),
        ("someone not known in this group", None)
    );
    dee.shutdown().await;
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}

/// Attack: Ben, a member running modified code, gives Ana and Cai two different texts under one
/// message id ("meet at 5" to Ana, "meet at 7" to Cai), hoping Cai's honest "ok" looks, to Ana,
/// like agreement with what Ana read. Stopped by: a reply pins a digest of the text its writer
/// answered; Ana's copy does not match, so her view says the answered message differs here
/// instead of showing her copy as the one answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_does_not_seem_to_answer_a_text_its_writer_never_saw() {
    use kiyeovo_core::api::ReplyTarget;
    use kiyeovo_core::group::envelope::{self, Sealing};
    let (boot, addr) = bootstrap_node().await;
    let (profiles, apps, id) = group_of("two-faced", 3, &addr).await;
    kiyeovo_tests::wait_connected(&apps).await;
    let (ana, ben, cai) = (&apps[0], &apps[1], &apps[2]);
    let gid = kiyeovo_core::group::store::parse_group_id(&id).unwrap();
    let ben_id = profiles[1].keystore().load_identity().unwrap().unwrap();
    let (epoch, key) = ben.groups().key(&id).await.unwrap();
    let roster_hash = ben.groups().load_group(&gid).await.unwrap().roster_hash();
    let msg_id = kiyeovo_core::group::control::random_id();
    let two_faced = |body: &str| {
        envelope::seal(
            &Sealing {
                identity: &ben_id,
                key: &key,
                group_id: gid,
                epoch,
                seq: 1,
                msg_id,
                sent_at: kiyeovo_core::time::now_ms(),
                roster_hash,
            },
            body,
        )
        .unwrap()
    };
    ana.chat()
        .ingest(&id, &two_faced("meet at 5"))
        .await
        .unwrap();
    cai.chat()
        .ingest(&id, &two_faced("meet at 7"))
        .await
        .unwrap();
    let target = ReplyTarget {
        msg_id: msg_id.to_hex(),
        author_peer_id: ben.peer_id().to_string(),
    };
    let sent = cai
        .chat()
        .send_reply(&id, "ok", Some(&target))
        .await
        .unwrap();
    assert_eq!(sent.reply_to.unwrap().body.as_deref(), Some("meet at 7"));
    wait_group_message(ana, &id, "ok").await;
    let view = ana.chat().chat(&id).await.unwrap();
    let ok = view.messages.iter().find(|m| m.body == "ok").unwrap();
    let quote = ok.reply_to.as_ref().unwrap();
    assert!(quote.differs, "{quote:?}");
    assert_eq!(
        quote.body, None,
        "Ana's \"meet at 5\" is not shown as what Cai answered"
    );
    for app in apps {
        app.shutdown().await;
    }
    boot.shutdown().await;
}
