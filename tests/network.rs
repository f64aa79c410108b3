//! Several real nodes on 127.0.0.1: a headless bootstrap node and four app profiles, each with
//! its own data dir, SQLite file and keyring entries.

use ed25519_dalek::SigningKey;
use kiyeovo_core::api::BootstrapState;
use kiyeovo_core::records::SignedRecord;
use kiyeovo_core::service::App;
use kiyeovo_tests::attacker::{attacker, push, signed};
use kiyeovo_tests::{
    bootstrap_node, group_of, start_group_app, storing_node_in, wait_for, TestProfile, WAIT,
};
use libp2p::kad;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use rand::rngs::OsRng;

async fn start_peers(n: usize, bootstrap: &str) -> (Vec<TestProfile>, Vec<App>) {
    let mut profiles = Vec::new();
    let mut apps = Vec::new();
    for i in 0..n {
        let profile = TestProfile::new(&format!("net{i}"));
        let app = App::start(profile.config(&[bootstrap.to_string()]))
            .await
            .expect("peer starts");
        profiles.push(profile);
        apps.push(app);
    }
    (profiles, apps)
}

fn tcp_addr_of(app: &App) -> (PeerId, Multiaddr) {
    let snapshot = app.snapshot();
    let addr: Multiaddr = snapshot
        .node
        .unwrap()
        .listen_addrs
        .iter()
        .find(|a| a.contains("/tcp/"))
        .unwrap()
        .parse()
        .unwrap();
    let without: Multiaddr = addr
        .iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect();
    (app.peer_id(), without)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_forms_records_flow_and_forgeries_are_refused() {
    let (bootstrap, addr) = bootstrap_node().await;
    let (_profiles, apps) = start_peers(4, &addr).await;

    // The network forms: every peer bootstraps and finds the others through the DHT.
    for app in &apps {
        let mut rx = app.snapshots();
        wait_for(&mut rx, "bootstrap to succeed", |s| {
            matches!(
                s.node.as_ref().map(|n| &n.bootstrap),
                Some(BootstrapState::Succeeded { peers: 1 })
            )
        })
        .await;
    }
    for app in &apps {
        let mut rx = app.snapshots();
        let s = wait_for(&mut rx, "routing table with every other node", |s| {
            s.node.as_ref().is_some_and(|n| n.routing_table_size >= 4)
        })
        .await;
        assert!(!s.node.unwrap().connected_peers.is_empty());
    }

    // A signed record put by one peer is fetched by another.
    let owner = SigningKey::generate(&mut OsRng);
    let (key, v1) = signed(&owner, 1, b"first version");
    apps[0]
        .client()
        .put_record(key.clone(), v1.clone())
        .await
        .expect("put v1");
    let fetched = apps[3]
        .client()
        .get_record(key.clone())
        .await
        .expect("get v1");
    assert_eq!(fetched, v1);

    // A newer version replaces it everywhere it is read from.
    let (_, v2) = signed(&owner, 2, b"second version");
    apps[1]
        .client()
        .put_record(key.clone(), v2.clone())
        .await
        .expect("put v2");
    assert_eq!(apps[2].client().get_record(key.clone()).await.unwrap(), v2);

    // The local client refuses an invalid record with the reason.
    let mut forged = SignedRecord::decode(&v2, usize::MAX).unwrap();
    forged.version = 3;
    forged.payload = b"forged".to_vec();
    let forged = forged.encode();
    let err = apps[0]
        .client()
        .put_record(key.clone(), forged.clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("signature"), "{err}");

    // An attacker without validation pushes the forgery (and a stale copy) straight to the
    // storing nodes, then a valid control record of its own.
    let mut targets: Vec<(PeerId, Multiaddr)> = apps.iter().map(tcp_addr_of).collect();
    let boot_addr: Multiaddr = addr.parse().unwrap();
    let boot_peer = match boot_addr.iter().last() {
        Some(Protocol::P2p(p)) => p,
        _ => unreachable!(),
    };
    targets.push((boot_peer, boot_addr));
    let mut evil = attacker(&targets);
    push(&mut evil, kad::Record::new(key.clone(), forged.clone())).await;
    push(&mut evil, kad::Record::new(key.clone(), v1.clone())).await;
    let control_owner = SigningKey::generate(&mut OsRng);
    let (control_key, control) = signed(&control_owner, 1, b"control");
    push(
        &mut evil,
        kad::Record::new(control_key.clone(), control.clone()),
    )
    .await;

    // Every node held one record (v2) before; once it holds two it has stored the control
    // record, and so has handled the earlier pushes too. None may have replaced v2.
    for app in &apps {
        let mut rx = app.snapshots();
        wait_for(&mut rx, "control record stored", |s| {
            s.node.as_ref().is_some_and(|n| n.stored_records >= 2)
        })
        .await;
    }
    let mut boot_status = bootstrap.status.clone();
    tokio::time::timeout(WAIT, boot_status.wait_for(|s| s.stored_records >= 2))
        .await
        .expect("bootstrap stored the control record")
        .unwrap();
    let clients = apps
        .iter()
        .map(|a| a.client().clone())
        .chain(std::iter::once(bootstrap.client.clone()));
    for client in clients {
        assert_eq!(
            client.local_record(control_key.clone()).await.unwrap(),
            Some(control.clone())
        );
        assert_eq!(
            client.local_record(key.clone()).await.unwrap(),
            Some(v2.clone()),
            "a storing node kept a forged or stale record"
        );
    }
    for app in &apps {
        assert_eq!(app.client().get_record(key.clone()).await.unwrap(), v2);
    }

    for app in apps {
        app.shutdown().await;
    }
    bootstrap.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_keeps_peer_id_and_settings() {
    let (bootstrap, addr) = bootstrap_node().await;
    let profile = TestProfile::new("restart");
    let app = App::start(profile.config(std::slice::from_ref(&addr)))
        .await
        .unwrap();
    let first_id = app.peer_id();
    app.set_display_name("Ana").await.unwrap();
    app.shutdown().await;

    let app = App::start(profile.config(&[addr])).await.unwrap();
    assert_eq!(app.peer_id(), first_id);
    assert_eq!(app.snapshot().display_name, "Ana");
    let mut rx = app.snapshots();
    wait_for(&mut rx, "reconnect to bootstrap", |s| {
        s.node
            .as_ref()
            .is_some_and(|n| !n.connected_peers.is_empty())
    })
    .await;
    app.shutdown().await;
    bootstrap.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_set_at_runtime_joins_now_and_is_remembered() {
    let (bootstrap, addr) = bootstrap_node().await;
    let profile = TestProfile::new("setboot");
    let app = App::start(profile.config(&[])).await.unwrap();
    assert_eq!(
        app.snapshot().node.unwrap().bootstrap,
        BootstrapState::NotConfigured
    );

    let err = app
        .set_bootstrap(vec!["/ip4/127.0.0.1/tcp/1".into()])
        .await
        .unwrap_err();
    assert!(err.to_ui().message.contains("/p2p/"), "{err}");

    let saved = app
        .set_bootstrap(vec![format!(" {addr} "), String::new()])
        .await
        .unwrap();
    assert_eq!(saved, vec![addr.clone()]);
    let mut rx = app.snapshots();
    wait_for(&mut rx, "bootstrap through the new address", |s| {
        matches!(
            s.node.as_ref().map(|n| &n.bootstrap),
            Some(BootstrapState::Succeeded { .. })
        )
    })
    .await;
    app.shutdown().await;

    // Started without --bootstrap, the profile uses the saved address.
    let app = App::start(profile.config(&[])).await.unwrap();
    assert_eq!(app.snapshot().bootstrap, vec![addr]);
    let mut rx = app.snapshots();
    wait_for(&mut rx, "bootstrap through the saved address", |s| {
        matches!(
            s.node.as_ref().map(|n| &n.bootstrap),
            Some(BootstrapState::Succeeded { .. })
        )
    })
    .await;
    app.shutdown().await;
    bootstrap.shutdown().await;
}

/// The TCP port of a `/ip4/…/tcp/<port>/p2p/…` address.
fn tcp_port(addr: &str) -> u16 {
    let addr: Multiaddr = addr.parse().unwrap();
    addr.iter()
        .find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .expect("a TCP address")
}

/// A headless storing node restarted from its data directory still serves the buckets it held:
/// Ana writes while Ben is away, then Ana goes offline too, so the node is the only one holding
/// her bucket; the node restarts; Ben comes back and reads every message from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_storing_node_still_serves_what_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let (node, addr) = storing_node_in(dir.path(), 0).await;
    let (profiles, mut apps, id) = group_of("keep", 2, &addr).await;
    let ben = apps.pop().unwrap();
    let ana = apps.pop().unwrap();
    ben.shutdown().await;
    let bodies = ["while you were away", "and this", "and one more"];
    for body in bodies {
        ana.chat().send(&id, body).await.unwrap();
    }
    kiyeovo_tests::wait_all_stored(&ana, &id).await;
    ana.shutdown().await;

    let held = node.status.borrow().stored_records;
    node.shutdown().await;
    let (node, again) = storing_node_in(dir.path(), tcp_port(&addr)).await;
    assert_eq!(again, addr, "same peer id, same address");
    assert!(
        node.status.borrow().stored_records >= held,
        "the records are back before anyone re-publishes them ({held} before)"
    );

    let ben = start_group_app(&profiles[1], &addr).await;
    let mut rx = ben.chat().subscribe();
    let got = tokio::time::timeout(WAIT, async {
        loop {
            let mut have: Vec<String> = ben
                .chat()
                .chat(&id)
                .await
                .unwrap()
                .messages
                .iter()
                .filter(|m| !m.outgoing)
                .map(|m| m.body.clone())
                .collect();
            have.sort();
            if have.len() >= bodies.len() {
                return have;
            }
            let _ = rx.recv().await;
        }
    })
    .await
    .expect("Ben reads Ana's messages from the restarted node");
    let mut want: Vec<String> = bodies.iter().map(|b| b.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "each message once");
    ben.shutdown().await;
    node.shutdown().await;
}
