//! The attacker of the adversarial tests: a plain libp2p Kademlia node that runs none of
//! Kiyeovo's validation and stores or pushes whatever it is given, and signed records to feed it.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use futures::StreamExt;
use kiyeovo_core::node::behaviour::KAD_PROTOCOL;
use kiyeovo_core::records::{RecordKey, RecordKind, SignedRecord};
use libp2p::kad::store::MemoryStore;
use libp2p::kad::{self, Quorum};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, Swarm};

use crate::WAIT;

/// A TCP + Noise + Yamux swarm on tokio with `keypair` and the behaviour `make` builds: what
/// every attacker here runs on.
fn swarm_with<B: libp2p::swarm::NetworkBehaviour>(
    keypair: libp2p::identity::Keypair,
    make: impl FnOnce(&libp2p::identity::Keypair) -> B,
) -> Swarm<B> {
    libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| make(key))
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build()
}

pub type Attacker = Swarm<kad::Behaviour<MemoryStore>>;

/// A signed pairwise-bucket-shaped record under `owner`'s self-certifying key.
pub fn signed(owner: &SigningKey, version: u64, payload: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let key = RecordKey::for_public_key(
        RecordKind::PairwiseBucket,
        &owner.verifying_key().to_bytes(),
    );
    let record = SignedRecord::sign(owner, &key, version, version, payload.to_vec());
    (key.to_bytes(), record.encode())
}

/// A plain Kademlia node (no validation, stores anything) that knows `targets`.
pub fn attacker(targets: &[(PeerId, Multiaddr)]) -> Attacker {
    let mut swarm = swarm_with(libp2p::identity::Keypair::generate_ed25519(), |key| {
        let peer = key.public().to_peer_id();
        // Limits of its own, larger than ours: it sends whatever it likes.
        let mut config = kad::Config::new(KAD_PROTOCOL);
        config.set_max_packet_size(4 << 20);
        let store = MemoryStore::with_config(
            peer,
            kad::store::MemoryStoreConfig {
                max_value_bytes: 2 << 20,
                ..Default::default()
            },
        );
        kad::Behaviour::with_config(peer, store, config)
    });
    swarm.behaviour_mut().set_mode(Some(kad::Mode::Server));
    for (peer, addr) in targets {
        swarm.behaviour_mut().add_address(peer, addr.clone());
    }
    swarm
}

/// Pushes `record` to every node the attacker knows and waits for the put query to end.
/// (Storing nodes answer "ok" whether or not they kept it: the outcome says nothing.)
pub async fn push(swarm: &mut Attacker, record: kad::Record) {
    let id = swarm
        .behaviour_mut()
        .put_record(record, Quorum::All)
        .unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                id: done,
                result: kad::QueryResult::PutRecord(_),
                step,
                ..
            }) = swarm.select_next_some().await
            {
                if done == id && step.last {
                    return;
                }
            }
        }
    })
    .await
    .expect("attacker's put finished");
}

/// What a spy's swarm is made of: a DHT server that stores everything pushed to it, identify
/// (so Kiyeovo nodes take it into their routing tables), and gossipsub to relay group topics.
#[derive(libp2p::swarm::NetworkBehaviour)]
pub struct SpyBehaviour {
    kad: kad::Behaviour<MemoryStore>,
    identify: libp2p::identify::Behaviour,
    gossipsub: libp2p::gossipsub::Behaviour,
}

enum SpyCommand {
    Subscribe(String),
    Dump(tokio::sync::oneshot::Sender<SpyDump>),
}

/// Every byte a spy was handed: stored records and gossip it relayed.
#[derive(Debug, Default, Clone)]
pub struct SpyDump {
    /// (key, value) of every record pushed to it.
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
    /// Every gossip message: its author field (None in anonymous mode) and data.
    pub gossip: Vec<(Option<PeerId>, Vec<u8>)>,
}

/// A modified storing node and relay (PROTOCOL.md §0): it keeps a copy of everything it stores
/// or relays, to read the social graph from it.
pub struct Spy {
    pub peer_id: PeerId,
    /// How many gossip messages it has received so far.
    pub gossip_count: tokio::sync::watch::Receiver<usize>,
    commands: tokio::sync::mpsc::Sender<SpyCommand>,
    task: tokio::task::JoinHandle<()>,
}

impl Spy {
    /// Starts a spy on 127.0.0.1 that joins the network through `bootstrap` (`…/p2p/<id>`).
    pub async fn start(bootstrap: &str) -> Spy {
        let limits = kiyeovo_core::config::Limits::default();
        let mut swarm = swarm_with(libp2p::identity::Keypair::generate_ed25519(), |key| {
            let peer = key.public().to_peer_id();
            let mut kad_config = kad::Config::new(KAD_PROTOCOL);
            kad_config.set_max_packet_size(limits.kad_packet_bytes());
            let store = MemoryStore::with_config(
                peer,
                kad::store::MemoryStoreConfig {
                    max_records: 100_000,
                    max_value_bytes: 1 << 20,
                    ..Default::default()
                },
            );
            let gossip_config = libp2p::gossipsub::ConfigBuilder::default()
                .validation_mode(libp2p::gossipsub::ValidationMode::Anonymous)
                .build()
                .unwrap();
            SpyBehaviour {
                kad: kad::Behaviour::with_config(peer, store, kad_config),
                identify: libp2p::identify::Behaviour::new(libp2p::identify::Config::new(
                    kiyeovo_core::node::behaviour::IDENTIFY_PROTOCOL.to_string(),
                    key.public(),
                )),
                gossipsub: libp2p::gossipsub::Behaviour::new(
                    libp2p::gossipsub::MessageAuthenticity::Anonymous,
                    gossip_config,
                )
                .unwrap(),
            }
        });
        swarm.behaviour_mut().kad.set_mode(Some(kad::Mode::Server));
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        let boot: Multiaddr = bootstrap.parse().unwrap();
        let Some(libp2p::multiaddr::Protocol::P2p(boot_peer)) = boot.iter().last() else {
            panic!("bootstrap address names no peer");
        };
        swarm
            .behaviour_mut()
            .kad
            .add_address(&boot_peer, boot.clone());
        swarm.dial(boot).unwrap();
        let _ = swarm.behaviour_mut().kad.bootstrap();
        let peer_id = *swarm.local_peer_id();
        let (commands, mut rx) = tokio::sync::mpsc::channel(16);
        let (count_tx, gossip_count) = tokio::sync::watch::channel(0usize);
        let task = tokio::spawn(async move {
            let mut gossip = Vec::new();
            loop {
                tokio::select! {
                    event = swarm.select_next_some() => match event {
                        SwarmEvent::Behaviour(SpyBehaviourEvent::Identify(
                            libp2p::identify::Event::Received { peer_id, info, .. },
                        )) => {
                            for addr in info.listen_addrs {
                                swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                            }
                        }
                        SwarmEvent::Behaviour(SpyBehaviourEvent::Gossipsub(
                            libp2p::gossipsub::Event::Message { message, .. },
                        )) => {
                            gossip.push((message.source, message.data));
                            let _ = count_tx.send(gossip.len());
                        }
                        _ => {}
                    },
                    command = rx.recv() => match command {
                        None => break,
                        Some(SpyCommand::Subscribe(topic)) => {
                            let topic = libp2p::gossipsub::IdentTopic::new(topic);
                            let _ = swarm.behaviour_mut().gossipsub.subscribe(&topic);
                        }
                        Some(SpyCommand::Dump(reply)) => {
                            use libp2p::kad::store::RecordStore;
                            let records = swarm
                                .behaviour_mut()
                                .kad
                                .store_mut()
                                .records()
                                .map(|r| (r.key.to_vec(), r.value.clone()))
                                .collect();
                            let _ = reply.send(SpyDump { records, gossip: gossip.clone() });
                        }
                    },
                }
            }
        });
        Spy {
            peer_id,
            gossip_count,
            commands,
            task,
        }
    }

    pub async fn subscribe(&self, topic: String) {
        self.commands
            .send(SpyCommand::Subscribe(topic))
            .await
            .unwrap();
    }

    pub async fn dump(&self) -> SpyDump {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands.send(SpyCommand::Dump(tx)).await.unwrap();
        rx.await.unwrap()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

enum DirectCommand {
    Send {
        to: PeerId,
        addr: Multiaddr,
        payload: Vec<u8>,
        reply: tokio::sync::oneshot::Sender<Result<Vec<u8>, String>>,
    },
}

/// A plain libp2p client of `/kiyeovo/direct/1` (no Kiyeovo logic): it sends whatever payload
/// it is given, with whatever identity it is given (a stranger's, or a member's whose app is
/// closed), answers every request with an empty acknowledgement and keeps what it was sent.
pub struct DirectPeer {
    pub peer_id: PeerId,
    /// Payloads others sent it, in arrival order.
    pub received: tokio::sync::watch::Receiver<Vec<Vec<u8>>>,
    commands: tokio::sync::mpsc::Sender<DirectCommand>,
    task: tokio::task::JoinHandle<()>,
}

impl DirectPeer {
    pub fn start(keypair: libp2p::identity::Keypair) -> DirectPeer {
        use kiyeovo_core::node::direct::{DirectCodec, PROTOCOL};
        use libp2p::request_response::{self, Event, Message, ProtocolSupport};
        let mut swarm = swarm_with(keypair, |_| {
            request_response::Behaviour::with_codec(
                // Its own limit, far above ours: it may send anything.
                DirectCodec {
                    max_request_bytes: 8 << 20,
                },
                [(PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(20)),
            )
        });
        let peer_id = *swarm.local_peer_id();
        let (commands, mut rx) = tokio::sync::mpsc::channel(64);
        let (received_tx, received) = tokio::sync::watch::channel(Vec::new());
        let task = tokio::spawn(async move {
            let mut pending = std::collections::HashMap::new();
            loop {
                tokio::select! {
                    event = swarm.select_next_some() => match event {
                        SwarmEvent::Behaviour(Event::Message { message, .. }) => match message {
                            Message::Request { request, channel, .. } => {
                                received_tx.send_modify(|r| r.push(request));
                                let _ = swarm.behaviour_mut().send_response(channel, Vec::new());
                            }
                            Message::Response { request_id, response } => {
                                if let Some(reply) = pending.remove(&request_id) {
                                    let _ = tokio::sync::oneshot::Sender::send(reply, Ok(response));
                                }
                            }
                        },
                        SwarmEvent::Behaviour(Event::OutboundFailure { request_id, error, .. }) => {
                            if let Some(reply) = pending.remove(&request_id) {
                                let _ = tokio::sync::oneshot::Sender::send(reply, Err(error.to_string()));
                            }
                        }
                        _ => {}
                    },
                    command = rx.recv() => match command {
                        None => break,
                        Some(DirectCommand::Send { to, addr, payload, reply }) => {
                            swarm.add_peer_address(to, addr);
                            let id = swarm.behaviour_mut().send_request(&to, payload);
                            pending.insert(id, reply);
                        }
                    },
                }
            }
        });
        DirectPeer {
            peer_id,
            received,
            commands,
            task,
        }
    }

    /// Sends one payload to `to` at `addr`; `Ok(ack)` once the receiver's node took it.
    pub async fn send(
        &self,
        to: PeerId,
        addr: Multiaddr,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.commands
            .send(DirectCommand::Send {
                to,
                addr,
                payload,
                reply,
            })
            .await
            .unwrap();
        rx.await.unwrap()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}
