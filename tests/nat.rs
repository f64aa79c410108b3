//! Peers behind NAT (issue: "reach real networks"). A small internet in network namespaces
//! (`common/netns.rs`): the headless node (bootstrap + relay) and one peer on public addresses,
//! two peers at home behind routers that masquerade and let nothing in that home did not start.
//! Each profile runs in its own process in its own namespace, with its own keyring session.
//!
//! What must hold: the home peers become contacts of each other and of the public peer, form a
//! group with it, and get group and 1:1 messages **live** (gossip, or a direct send over a
//! relayed or hole-punched connection), not from a bucket poll.
//!
//! Needs root and nftables (`make test` installs it); without them the test fails saying so.

use kiyeovo_tests::netns::Lab;
use kiyeovo_tests::peer_process::Peer;
use kiyeovo_tests::TestProfile;

const PEER: &str = env!("CARGO_BIN_EXE_kiyeovo-test-peer");

fn with_keyring() -> String {
    format!("{}/../scripts/with-keyring.sh", env!("CARGO_MANIFEST_DIR"))
}

/// A profile's process in namespace `ns`, listening on `host`, in its own D-Bus session with its
/// own throw-away keyring (a session bus is not reachable across network namespaces).
fn start(lab: &Lab, ns: &str, profile: &TestProfile, host: &str, boot: &str, home: bool) -> Peer {
    let mut c = lab.command(ns, "env");
    c.args([
        "-u",
        "KIYEOVO_IN_KEYRING_SESSION",
        "-u",
        "DBUS_SESSION_BUS_ADDRESS",
    ])
    .arg(format!("PEER_HOST={host}"))
    .arg(format!(
        "KIYEOVO_TEST_HOME={}",
        profile.base.path().join("keyring").display()
    ));
    if home {
        c.arg("PEER_DHT=auto");
    }
    if let Ok(filter) = std::env::var("PEER_LOG") {
        c.arg(format!("PEER_LOG={filter}"));
    }
    c.args([&with_keyring(), PEER, &profile.name])
        .arg(profile.base.path())
        .arg(boot);
    Peer::spawn(c)
}

/// `a` and `b` add each other's cards and wait until both trust the other.
fn befriend(a: &mut Peer, b: &mut Peer) {
    let card_a = a.ask("card", "card ");
    let card_b = b.ask("card", "card ");
    a.ask(&format!("add {card_b}"), "added ");
    b.ask(&format!("add {card_a}"), "added ");
    a.ask(&format!("wait-trusted {}", b.id), "trusted");
    b.ask(&format!("wait-trusted {}", a.id), "trusted");
}

#[test]
fn peers_behind_nat_get_group_and_direct_messages_live() {
    kiyeovo_tests::init_logging();
    let lab = Lab::build().unwrap_or_else(|e| panic!("{e}"));
    let mut node_cmd = lab.command("boot", PEER);
    node_cmd.args(["node", Lab::BOOT_IP, "4001"]);
    let mut node = Peer::spawn_quiet(node_cmd);
    let boot = node.expect("node ");

    let profiles: Vec<TestProfile> = ["pub", "h1", "h2"]
        .iter()
        .map(|n| TestProfile::new(&format!("nat-{n}")))
        .collect();
    let mut public = start(&lab, "pub", &profiles[0], Lab::PUB_IP, &boot, false);
    let mut h1 = start(&lab, "h1", &profiles[1], Lab::HOME_IP, &boot, true);
    let mut h2 = start(&lab, "h2", &profiles[2], Lab::HOME_IP, &boot, true);

    // At home, reachable only through the bootstrap node's relay: the cards carry that address.
    for h in [&mut h1, &mut h2] {
        h.ask("wait-relayed", "relayed");
    }
    befriend(&mut public, &mut h1);
    befriend(&mut public, &mut h2);
    befriend(&mut h1, &mut h2);

    // A group of the public peer and both homes.
    let id = public.ask(&format!("create-group {},{}", h1.id, h2.id), "created ");
    for h in [&mut h1, &mut h2] {
        h.ask("wait-invite", "invite ");
        h.ask(&format!("accept {id}"), "accepted");
    }
    public.ask(&format!("establish-when-ready {id}"), "established");
    for p in [&mut public, &mut h1, &mut h2] {
        p.ask(&format!("wait-active {id}"), "active");
    }

    // Group messages from each home reach the other home and the public peer live.
    let t = std::time::Instant::now();
    h1.send(&format!("group-send {id} 0 3"));
    for p in [&mut public, &mut h2] {
        for seq in 1..=3 {
            assert_eq!(
                p.expect("glive "),
                seq.to_string(),
                "h1's message {seq} live"
            );
        }
    }
    eprintln!(
        "h1's three group messages live at both others after {:?}",
        t.elapsed()
    );
    h2.send(&format!("group-send {id} 0 3"));
    for p in [&mut public, &mut h1] {
        for seq in 1..=3 {
            assert_eq!(
                p.expect("glive "),
                seq.to_string(),
                "h2's message {seq} live"
            );
        }
    }

    // 1:1 between the two homes, directly (relayed or hole-punched), not through the bucket.
    let t = std::time::Instant::now();
    h1.send(&format!("send {} 0 3", h2.id));
    for i in 0..3 {
        assert_eq!(h2.expect("live "), format!("m{i}"), "h1 → h2 live");
        if i == 0 {
            eprintln!(
                "first live 1:1 message between the homes after {:?}",
                t.elapsed()
            );
        }
    }
    h2.send(&format!("send {} 0 3", h1.id));
    for i in 0..3 {
        assert_eq!(h1.expect("live "), format!("m{i}"), "h2 → h1 live");
    }

    for p in [public, h1, h2, node] {
        p.quit();
    }
    drop(lab);
}
