//! A real app profile in its own process, driven line by line over stdin, so tests can
//! `kill -9` it mid-stream and start it again (tests/crash.rs).
//!
//! Usage: `peer <profile> <data-dir> <bootstrap>` (`-` for none); then commands, one per line. `PEER_HOST`
//! (default 127.0.0.1) is the address to listen on and `PEER_DHT=auto` leaves the DHT mode to
//! AutoNAT (a peer at home behind NAT), `PEER_PORT` fixes the TCP port (a forwarded one); all are
//! for the NAT test (tests/nat.rs).
//!
//! `peer node <host> <port>` runs a headless bootstrap/relay/storage node instead, prints its
//! TCP address and runs until stdin closes.
//!
//! * `card` → `card <kiyeovo1…>`
//! * `add <card>` → `added <peer id>`
//! * `wait-trusted <peer>` → `trusted`
//! * `send <peer> <from> <to>` → `sent <i>` after each message `m<i>` is committed
//! * `outgoing <peer>` → `outgoing <n>` (messages we committed to that contact)
//! * `group-send <group id> <from> <to>` → `gsent <i>` after each group message `g<i>`
//! * `group-outgoing <group id>` → `goutgoing <n>`
//! * `bodies <peer>` → `bodies m0,m1,…` (incoming 1:1 messages in order)
//! * `wait-invite` → `invite <group id>`; `accept <group id>` → `accepted`;
//!   `wait-active <group id>` → `active`; `group-incoming <group id>` → `gincoming 1,2,…` (seqs)
//! * `create-group <peer>[,<peer>…]` → `created <group id>`; `establish-when-ready <group id>` →
//!   `established`; `rotate <group id>` → `requested` once saved, then `rotated <epoch>`;
//!   `group-epoch <group id>` → `epoch <n>`; `group-bodies <group id>` → `gbodies b0@1,…`
//!
//! * `states <peer>` → `states pending,sent,…` (our 1:1 messages to that contact, in order)
//! * `addrs` → `addrs <listen address>,…`; `wait-relayed` → `relayed` once we listen through a
//!   relay (a circuit address is among our listen addresses); `wait-public` → `public
//!   <address>,… server=<bool>` once AutoNAT confirmed a direct address (and our DHT mode then)
//!
//! Unprompted: `ready <peer id>` once online, `recv <body> <stored total>` for every new 1:1
//! message and `grecv <seq> <stored total>` for every new group message, followed by
//! `glive <seq>` when it came live (gossip or a member's push), not from a bucket; likewise
//! `live <body>` after `recv` for a 1:1 message that came directly.

use std::io::Write;

use kiyeovo_core::group::ChatEvent;
use kiyeovo_core::pairwise::channel::ChannelEvent;
use kiyeovo_core::PeerId;
use kiyeovo_tests::{group_config, start_online, TestProfile};
use tokio::io::{AsyncBufReadExt, BufReader};

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, host, port] = args.as_slice() {
        if mode == "node" {
            return run_node(host, port).await;
        }
    }
    let [_, profile, dir, bootstrap] = args.as_slice() else {
        eprintln!("usage: peer <profile> <data-dir> <bootstrap>");
        std::process::exit(2);
    };
    // `-`: no bootstrap node at all (a contact's card is the way in).
    let bootstrap: &[String] = if bootstrap == "-" {
        &[]
    } else {
        std::slice::from_ref(bootstrap)
    };
    let mut config = TestProfile::config_for(profile, std::path::Path::new(dir), bootstrap);
    config.group = group_config();
    if let Ok(host) = std::env::var("PEER_HOST") {
        config.listen_host = host.parse().expect("PEER_HOST is an IP address");
    }
    if let Ok(port) = std::env::var("PEER_PORT") {
        config.listen_port = Some(port.parse().expect("PEER_PORT is a port"));
    }
    if std::env::var("PEER_DHT").as_deref() == Ok("auto") {
        config.dht_mode = kiyeovo_core::config::DhtMode::Auto;
    }
    // Logs to stderr (stdout is the line protocol), when asked for.
    if let Ok(filter) = std::env::var("PEER_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let app = if bootstrap.is_empty() {
        // Nothing to join yet: ready once listening.
        let app = kiyeovo_core::service::App::start(config)
            .await
            .expect("app starts");
        let _ = app
            .snapshots()
            .wait_for(|s| s.node.as_ref().is_some_and(|n| !n.listen_addrs.is_empty()))
            .await;
        app
    } else {
        start_online(config).await
    };

    let channel = app.channel().clone();
    let mut events = channel.subscribe();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let ChannelEvent::MessageReceived { peer, seq, live } = event {
                if let Ok(msgs) = channel.messages(&peer).await {
                    let total = msgs.iter().filter(|m| !m.outgoing).count();
                    if let Some(m) = msgs.iter().find(|m| !m.outgoing && m.seq == seq) {
                        say(format!("recv {} {total}", m.body));
                        if live {
                            say(format!("live {}", m.body));
                        }
                    }
                }
            }
        }
    });
    let mut chat_events = app.chat().subscribe();
    let chat = app.chat().clone();
    tokio::spawn(async move {
        while let Ok(event) = chat_events.recv().await {
            if let ChatEvent::Received {
                group_id,
                seq,
                live,
                ..
            } = event
            {
                let id = kiyeovo_core::group::store::hex(group_id);
                let total = match chat.chat(&id).await {
                    Ok(v) => v.messages.iter().filter(|m| !m.outgoing).count(),
                    Err(_) => 0,
                };
                say(format!("grecv {seq} {total}"));
                if live {
                    say(format!("glive {seq}"));
                }
            }
        }
    });
    say(format!("ready {}", app.peer_id()));

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["card"] => say(format!("card {}", app.my_card())),
            ["add", card] => {
                let c = app.channel().add_contact(card).await.expect("add contact");
                say(format!("added {}", c.peer_id));
            }
            ["wait-trusted", peer] => {
                let peer: PeerId = peer.parse().expect("peer id");
                let mut rx = app.channel().subscribe();
                loop {
                    let trusted = app
                        .channel()
                        .contacts()
                        .await
                        .expect("contacts")
                        .iter()
                        .any(|c| c.peer_id == peer.to_string() && c.trusted_at.is_some());
                    if trusted {
                        break;
                    }
                    let _ = rx.recv().await;
                }
                say("trusted".into());
            }
            ["send", peer, from, to] => {
                let peer: PeerId = peer.parse().expect("peer id");
                for i in from.parse::<u32>().unwrap()..to.parse::<u32>().unwrap() {
                    app.channel()
                        .send_chat(&peer, &format!("m{i}"))
                        .await
                        .expect("send");
                    say(format!("sent {i}"));
                }
            }
            ["outgoing", peer] => {
                let peer: PeerId = peer.parse().expect("peer id");
                let n = app
                    .channel()
                    .messages(&peer)
                    .await
                    .expect("messages")
                    .iter()
                    .filter(|m| m.outgoing)
                    .count();
                say(format!("outgoing {n}"));
            }
            ["group-send", id, from, to] => {
                for i in from.parse::<u32>().unwrap()..to.parse::<u32>().unwrap() {
                    app.chat()
                        .send(id, &format!("g{i}"))
                        .await
                        .expect("group send");
                    say(format!("gsent {i}"));
                }
            }
            ["group-outgoing", id] => {
                let n = app
                    .chat()
                    .chat(id)
                    .await
                    .expect("chat")
                    .messages
                    .iter()
                    .filter(|m| m.outgoing)
                    .count();
                say(format!("goutgoing {n}"));
            }
            ["bodies", peer] => {
                let peer: PeerId = peer.parse().expect("peer id");
                let msgs = app.channel().messages(&peer).await.expect("messages");
                let bodies: Vec<String> = msgs
                    .into_iter()
                    .filter(|m| !m.outgoing)
                    .map(|m| m.body)
                    .collect();
                say(format!("bodies {}", bodies.join(",")));
            }
            ["wait-invite"] => {
                let mut rx = app.groups().subscribe();
                let id = loop {
                    let groups = app.groups().list().await.expect("groups");
                    if let Some(g) = groups.iter().find(|g| g.can_respond) {
                        break g.group_id.clone();
                    }
                    let _ = rx.recv().await;
                };
                say(format!("invite {id}"));
            }
            ["accept", id] => {
                app.groups().respond(id, true).await.expect("accept");
                say("accepted".into());
            }
            ["wait-active", id] => {
                let mut rx = app.groups().subscribe();
                while app.groups().get(id).await.expect("group").status
                    != kiyeovo_core::api::GroupStatus::Active
                {
                    let _ = rx.recv().await;
                }
                say("active".into());
            }
            ["create-group", peers] => {
                let peers: Vec<PeerId> = peers
                    .split(',')
                    .map(|p| p.parse().expect("peer id"))
                    .collect();
                let v = app
                    .groups()
                    .create("Crash club", &peers, "Admin")
                    .await
                    .expect("create");
                say(format!("created {}", v.group_id));
            }
            ["establish-when-ready", id] => {
                let mut rx = app.groups().subscribe();
                while !app.groups().get(id).await.expect("group").can_establish {
                    let _ = rx.recv().await;
                }
                app.groups().establish(id).await.expect("establish");
                say("established".into());
            }
            ["rotate", id] => {
                use kiyeovo_core::group::changes::AdminAction;
                // The request is saved, then said: the test kills us somewhere after this.
                app.groups()
                    .request_change(id, AdminAction::Rotate)
                    .await
                    .expect("request");
                say("requested".into());
                let v = app.groups().complete_pending(id).await.expect("rotate");
                say(format!("rotated {}", v.epoch));
            }
            ["group-epoch", id] => {
                let v = app.groups().get(id).await.expect("group");
                say(format!("epoch {}", v.epoch));
            }
            ["group-bodies", id] => {
                let msgs = app.chat().chat(id).await.expect("chat").messages;
                let bodies: Vec<String> = msgs
                    .iter()
                    .filter(|m| !m.outgoing)
                    .map(|m| format!("{}@{}", m.body, m.epoch))
                    .collect();
                say(format!("gbodies {}", bodies.join(",")));
            }
            ["group-incoming", id] => {
                let msgs = app.chat().chat(id).await.expect("chat").messages;
                let seqs: Vec<String> = msgs
                    .iter()
                    .filter(|m| !m.outgoing)
                    .map(|m| m.seq.to_string())
                    .collect();
                say(format!("gincoming {}", seqs.join(",")));
            }
            ["states", peer] => {
                let peer: PeerId = peer.parse().expect("peer id");
                let msgs = app.channel().messages(&peer).await.expect("messages");
                let states: Vec<String> = msgs
                    .iter()
                    .filter(|m| m.outgoing)
                    .map(|m| format!("{:?}", m.state).to_lowercase())
                    .collect();
                say(format!("states {}", states.join(",")));
            }
            ["wait-relayed"] => {
                let mut rx = app.snapshots();
                let circuit = |s: &kiyeovo_core::api::AppSnapshot| {
                    s.node
                        .as_ref()
                        .is_some_and(|n| n.listen_addrs.iter().any(|a| a.contains("/p2p-circuit")))
                };
                let _ = rx.wait_for(circuit).await;
                say("relayed".into());
            }
            ["wait-public"] => {
                let mut rx = app.snapshots();
                let public = |s: &kiyeovo_core::api::AppSnapshot| {
                    s.node
                        .as_ref()
                        .is_some_and(|n| !n.external_addrs.is_empty())
                };
                let _ = rx.wait_for(public).await;
                let n = app.snapshot().node.expect("node");
                say(format!(
                    "public {} server={}",
                    n.external_addrs.join(","),
                    n.dht_server
                ));
            }
            ["addrs"] => {
                let addrs = app
                    .snapshot()
                    .node
                    .map(|n| n.listen_addrs)
                    .unwrap_or_default();
                say(format!("addrs {}", addrs.join(",")));
            }
            _ => say(format!("error unknown command {line:?}")),
        }
    }
    app.shutdown().await;
}

/// `peer node <host> <port>`: a headless node (bootstrap, relay, storage) in this process.
async fn run_node(host: &str, port: &str) {
    if let Ok(filter) = std::env::var("PEER_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let mut node = kiyeovo_node::Headless::start(kiyeovo_node::Options {
        data_dir: None,
        listen_host: host.parse().expect("host"),
        port: port.parse().expect("port"),
        bootstrap: Vec::new(),
        mdns: false,
        limits: kiyeovo_core::config::Limits::server(),
    })
    .await
    .expect("node starts");
    let addrs = node
        .listen_addrs(std::time::Duration::from_secs(30))
        .await
        .expect("node listens");
    say(format!("node {}", addrs[0]));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(_)) = lines.next_line().await {}
    node.shutdown().await;
}
