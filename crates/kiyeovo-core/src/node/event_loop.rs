//! The one task that owns the `Swarm`.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::kad::store::RecordStore;
use libp2p::kad::{self, GetRecordOk, QueryId, QueryResult, Quorum};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{gossipsub, identify, mdns, Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::api::{BootstrapState, NodeStatus};
use crate::config::{DhtMode, Limits, Timing};
use crate::node::behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL};
use crate::node::client::{Command, Verdict as GossipVerdict};
use crate::node::config::{bootstrap_peer, NodeConfig, Role};
use crate::node::ledger::Ledger;
use crate::node::scoring;
use crate::node::{NodeError, NodeEvent};
use crate::records::{self, budget, Verdict};

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

struct PendingGet {
    key: Vec<u8>,
    /// What peers answered so far, each distinct copy checked once.
    copies: records::Copies,
    reply: Reply<Vec<u8>>,
    /// The query ended with no peer having answered.
    unanswered: bool,
}

/// How often, at most, the node's status is rebuilt and published.
const STATUS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Owns the swarm; see the module docs of [`crate::node`].
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    limits: Limits,
    timing: Timing,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NodeEvent>,
    status: watch::Sender<NodeStatus>,
    listen_addrs: Vec<Multiaddr>,
    connected: BTreeSet<PeerId>,
    dht_server: bool,
    /// Recounted whenever this node stores a record (not on every event: the store can be big).
    stored_records: u32,
    warnings: Vec<String>,
    bootstrap: BootstrapState,
    bootstrap_peers: HashMap<PeerId, Multiaddr>,
    bootstrap_failures: HashMap<PeerId, String>,
    bootstrap_query: Option<QueryId>,
    bootstrap_retry_at: Option<Instant>,
    /// The status is rebuilt at most once per [`STATUS_EVERY`]: building it formats every
    /// connected peer id and address, and a busy node handles thousands of swarm events a
    /// second (profiling the 11-node bench put that formatting among the top costs). A change
    /// inside the interval is published at its end.
    status_next: Instant,
    status_due: bool,
    pending_get: HashMap<QueryId, PendingGet>,
    pending_put: HashMap<QueryId, Reply<()>>,
    pending_direct: HashMap<OutboundRequestId, (PeerId, Reply<Vec<u8>>)>,
    pending_dial: HashMap<ConnectionId, (Multiaddr, Reply<()>)>,
    /// Gossipsub topics the application joined.
    topics: BTreeSet<String>,
    /// Bytes in the record store per writing peer (running totals).
    ledger: Ledger,
    /// Relay reservations we hold (or asked for) at bootstrap nodes, by relay: peers behind NAT
    /// are reachable through them (the circuit address goes into our card).
    reservations: HashMap<PeerId, ListenerId>,
    /// When a reservation last ended at each relay: asked again no sooner than
    /// [`RESERVATION_RETRY`] after (a relay that refuses must not be asked in a loop).
    reservation_ended: HashMap<PeerId, Instant>,
    /// Relays named by circuit addresses in contacts' cards, with their addresses.
    known_relays: HashMap<PeerId, Multiaddr>,
    /// The DHT mode asked for; in `Auto`, a relayed address alone never makes us a server.
    dht_mode: DhtMode,
    /// The address we were asked to listen on (loopback only in tests and the local demo).
    listen_host: IpAddr,
    role: Role,
}

/// How long after a relay reservation ended we wait before asking that relay again.
pub const RESERVATION_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// A read stops once this many valid copies agree on the newest version (PROTOCOL.md §3
/// "readers fetch several copies"), instead of waiting for every peer close to the key.
pub const ENOUGH_COPIES: usize = 3;

/// Short, printable form of a DHT key for logs.
fn key_for_log(key: &[u8]) -> String {
    String::from_utf8_lossy(&key[..key.len().min(80)]).into_owned()
}

/// The relay of a circuit address (`<relay addr>/p2p/<relay>/p2p-circuit/…`): its peer id and
/// its address (ending in `/p2p/<relay>`).
fn relay_of(addr: &Multiaddr) -> Option<(PeerId, Multiaddr)> {
    let mut relay_addr = Multiaddr::empty();
    let mut relay = None;
    for p in addr.iter() {
        match p {
            Protocol::P2pCircuit => return relay.map(|id| (id, relay_addr)),
            Protocol::P2p(id) => {
                relay = Some(id);
                relay_addr.push(Protocol::P2p(id));
            }
            other => relay_addr.push(other),
        }
    }
    None
}

/// Loopback, unspecified or link-local: never an address anyone else can reach us at.
fn is_local(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback() || ip.is_unspecified() || ip.is_link_local(),
        Protocol::Ip6(ip) => {
            ip.is_loopback() || ip.is_unspecified() || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
        _ => false,
    })
}

fn without_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect()
}

fn listen_addr(host: IpAddr, port: u16, quic: bool) -> Multiaddr {
    let base = Multiaddr::from(host);
    if quic {
        base.with(Protocol::Udp(port)).with(Protocol::QuicV1)
    } else {
        base.with(Protocol::Tcp(port))
    }
}

impl EventLoop {
    pub(crate) fn new(
        mut swarm: Swarm<Behaviour>,
        config: NodeConfig,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NodeEvent>,
    ) -> Result<(Self, watch::Receiver<NodeStatus>), NodeError> {
        let mode = match config.dht_mode {
            // Driven by `follow_external_addresses`: client until a direct address is confirmed.
            DhtMode::Auto => Some(kad::Mode::Client),
            DhtMode::Server => Some(kad::Mode::Server),
            DhtMode::Client => Some(kad::Mode::Client),
        };
        swarm.behaviour_mut().kad.set_mode(mode);

        let mut warnings = Vec::new();
        for quic in [false, true] {
            listen_with_fallback(
                &mut swarm,
                config.listen_host,
                config.listen_port,
                quic,
                &mut warnings,
            )?;
        }

        let bootstrap_peers = bootstrap_map(&config.bootstrap)?;
        let bootstrap = if bootstrap_peers.is_empty() {
            BootstrapState::NotConfigured
        } else {
            BootstrapState::Connecting
        };

        let status = NodeStatus {
            peer_id: swarm.local_peer_id().to_string(),
            listen_addrs: Vec::new(),
            external_addrs: Vec::new(),
            connected_peers: Vec::new(),
            routing_table_size: 0,
            stored_records: 0,
            bootstrap: bootstrap.clone(),
            dht_server: config.dht_mode == DhtMode::Server,
            warnings: warnings.clone(),
        };
        let (status_tx, status_rx) = watch::channel(status);
        let mut event_loop = Self {
            swarm,
            limits: config.limits,
            timing: config.timing,
            commands,
            events,
            status: status_tx,
            listen_addrs: Vec::new(),
            connected: BTreeSet::new(),
            dht_server: config.dht_mode == DhtMode::Server,
            stored_records: 0,
            warnings,
            bootstrap,
            bootstrap_peers,
            bootstrap_failures: HashMap::new(),
            bootstrap_query: None,
            bootstrap_retry_at: None,
            status_next: Instant::now(),
            status_due: false,
            pending_get: HashMap::new(),
            pending_put: HashMap::new(),
            pending_direct: HashMap::new(),
            pending_dial: HashMap::new(),
            topics: BTreeSet::new(),
            ledger: Ledger::default(),
            reservations: HashMap::new(),
            reservation_ended: HashMap::new(),
            known_relays: HashMap::new(),
            dht_mode: config.dht_mode,
            listen_host: config.listen_host,
            role: config.role,
        };
        // Records read back from the record file are in the store already.
        event_loop.count_records();
        event_loop.publish_status();
        event_loop.add_bootstrap_addresses();
        event_loop.dial_bootstrap();
        Ok((event_loop, status_rx))
    }

    fn add_bootstrap_addresses(&mut self) {
        for (peer, addr) in &self.bootstrap_peers {
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(peer, without_p2p(addr));
        }
    }

    /// Runs until every [`crate::node::Client`] is dropped or one asks for shutdown.
    pub async fn run(mut self) {
        loop {
            let retry_at = self.bootstrap_retry_at;
            let status_at = self.status_due.then_some(self.status_next);
            tokio::select! {
                command = self.commands.recv() => match command {
                    None => break,
                    Some(Command::Shutdown { reply }) => {
                        let _ = reply.send(());
                        break;
                    }
                    Some(command) => self.handle_command(command),
                },
                event = self.swarm.select_next_some() => self.handle_swarm_event(event),
                _ = async {
                    match retry_at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    self.bootstrap_retry_at = None;
                    self.dial_bootstrap();
                }
                _ = async {
                    match status_at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
            let now = Instant::now();
            if now >= self.status_next {
                self.publish_status();
                self.status_next = now + STATUS_EVERY;
                self.status_due = false;
            } else {
                self.status_due = true;
            }
        }
        tracing::info!("network node stopped");
    }

    fn dial_bootstrap(&mut self) {
        if self.bootstrap_peers.is_empty() {
            return;
        }
        self.bootstrap_failures.clear();
        self.bootstrap = BootstrapState::Connecting;
        let to_dial: Vec<Multiaddr> = self
            .bootstrap_peers
            .iter()
            .filter(|(peer, _)| !self.connected.contains(peer))
            .map(|(_, addr)| addr.clone())
            .collect();
        for addr in to_dial {
            tracing::info!(%addr, "dialing bootstrap node");
            if let Err(e) = self.swarm.dial(addr.clone()) {
                tracing::warn!(%addr, error = %e, "cannot dial bootstrap node");
                if let Ok(peer) = bootstrap_peer(&addr) {
                    self.bootstrap_failed(peer, e.to_string());
                }
            }
        }
        if self
            .bootstrap_peers
            .keys()
            .any(|p| self.connected.contains(p))
        {
            self.start_bootstrap_query();
        }
    }

    fn start_bootstrap_query(&mut self) {
        if self.bootstrap_query.is_some() {
            return;
        }
        match self.swarm.behaviour_mut().kad.bootstrap() {
            Ok(id) => self.bootstrap_query = Some(id),
            Err(e) => tracing::warn!(error = %e, "cannot start DHT bootstrap"),
        }
    }

    /// The DHT bootstrap query ended in an error. Being connected to a bootstrap node with a
    /// non-empty routing table is still a joined network; otherwise report it and retry.
    fn bootstrap_query_failed(&mut self, reason: String) {
        let connected = self
            .bootstrap_peers
            .keys()
            .filter(|p| self.connected.contains(p))
            .count() as u32;
        let routing = self.routing_table_size();
        if connected > 0 && routing > 0 {
            self.bootstrap = BootstrapState::Succeeded { peers: connected };
        } else {
            self.set_failed(format!("the DHT bootstrap failed ({reason})"));
        }
    }

    fn set_failed(&mut self, reason: String) {
        let retry = self.timing.bootstrap_retry;
        tracing::warn!(%reason, retry_in = ?retry, "not joined to the network");
        self.bootstrap = BootstrapState::Failed {
            reason,
            retry_in_secs: retry.as_secs().max(1) as u32,
        };
        self.bootstrap_retry_at = Some(Instant::now() + retry);
    }

    fn bootstrap_failed(&mut self, peer: PeerId, reason: String) {
        self.bootstrap_failures.insert(peer, reason);
        let any_connected = self
            .bootstrap_peers
            .keys()
            .any(|p| self.connected.contains(p));
        let all_failed = self
            .bootstrap_peers
            .keys()
            .all(|p| self.bootstrap_failures.contains_key(p));
        if any_connected || !all_failed || self.bootstrap_retry_at.is_some() {
            return;
        }
        let reason = self
            .bootstrap_peers
            .iter()
            .filter_map(|(p, addr)| {
                self.bootstrap_failures
                    .get(p)
                    .map(|r| format!("{addr}: {r}"))
            })
            .collect::<Vec<_>>()
            .join("; ");
        self.set_failed(format!("could not reach any bootstrap node ({reason})"));
    }

    fn routing_table_size(&mut self) -> usize {
        self.swarm
            .behaviour_mut()
            .kad
            .kbuckets()
            .map(|b| b.num_entries())
            .sum()
    }

    fn publish_status(&mut self) {
        let routing_table_size = self.routing_table_size();
        let local = *self.swarm.local_peer_id();
        // Circuit addresses end in `/p2p/<us>` already.
        let shareable = |a: &Multiaddr| {
            if a.iter().last() == Some(Protocol::P2p(local)) {
                a.to_string()
            } else {
                a.clone().with(Protocol::P2p(local)).to_string()
            }
        };
        let next = NodeStatus {
            peer_id: local.to_string(),
            listen_addrs: self.listen_addrs.iter().map(shareable).collect(),
            // The circuit addresses are among the listen addresses already.
            external_addrs: self
                .swarm
                .external_addresses()
                .filter(|a| !a.iter().any(|p| p == Protocol::P2pCircuit))
                .map(shareable)
                .collect(),
            connected_peers: self.connected.iter().map(|p| p.to_string()).collect(),
            routing_table_size: routing_table_size as u32,
            stored_records: self.stored_records,
            bootstrap: self.bootstrap.clone(),
            dht_server: self.dht_server,
            warnings: self.warnings.clone(),
        };
        self.status.send_if_modified(|current| {
            if *current == next {
                false
            } else {
                *current = next;
                true
            }
        });
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::PutRecord { key, value, reply } => {
                let stored = self.local_value(&key);
                if let Err(e) = records::validate(&key, &value, stored.as_deref(), &self.limits) {
                    let _ = reply.send(Err(e.into()));
                    return;
                }
                let record = kad::Record::new(key, value);
                let result = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .put_record(record, Quorum::One);
                self.count_records();
                match result {
                    Ok(id) => {
                        self.pending_put.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NodeError::PutFailed(format!("{e:?}"))));
                    }
                }
            }
            Command::GetRecord { key, reply } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_record(kad::RecordKey::new(&key));
                self.pending_get.insert(
                    id,
                    PendingGet {
                        copies: records::Copies::new(key.clone()),
                        key,
                        reply,
                        unanswered: false,
                    },
                );
            }
            Command::LocalRecord { key, reply } => {
                let _ = reply.send(Ok(self.local_value(&key)));
            }
            Command::SendDirect {
                peer,
                payload,
                reply,
            } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .direct
                    .send_request(&peer, payload);
                self.pending_direct.insert(id, (peer, reply));
            }
            Command::Dial { addr, reply } => {
                let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.pending_dial.insert(id, (addr, reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NodeError::Dial {
                            addr: addr.to_string(),
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            Command::Subscribe { topic, reply } => {
                let ident = gossipsub::IdentTopic::new(topic.clone());
                let gossip = &mut self.swarm.behaviour_mut().gossipsub;
                if let Err(e) = gossip.set_topic_params(ident.clone(), scoring::topic_params()) {
                    tracing::warn!(error = e, "peer scoring not set for a topic");
                }
                let result = gossip
                    .subscribe(&ident)
                    .map(|_| ())
                    .map_err(|e| NodeError::Gossip(e.to_string()));
                if result.is_ok() {
                    self.topics.insert(topic);
                }
                let _ = reply.send(result);
            }
            Command::Unsubscribe { topic, reply } => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .unsubscribe(&gossipsub::IdentTopic::new(topic.clone()));
                self.topics.remove(&topic);
                let _ = reply.send(Ok(()));
            }
            Command::Publish { topic, data, reply } => {
                let result = match self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(gossipsub::IdentTopic::new(topic), data)
                {
                    Ok(_) => Ok(()),
                    Err(e) => Err(NodeError::Gossip(e.to_string())),
                };
                let _ = reply.send(result);
            }
            Command::Validate {
                message_id,
                source,
                verdict,
            } => {
                let acceptance = match verdict {
                    GossipVerdict::Accept => gossipsub::MessageAcceptance::Accept,
                    GossipVerdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                    GossipVerdict::Reject => gossipsub::MessageAcceptance::Reject,
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(
                        &gossipsub::MessageId(message_id),
                        &source,
                        acceptance,
                    );
            }
            Command::ConnectPeer { peer, reply } => {
                if !self.swarm.is_connected(&peer)
                    && self.swarm.dial(DialOpts::peer_id(peer).build()).is_err()
                {
                    // No address known: ask the DHT; the addresses it finds are dialled on the
                    // next attempt.
                    self.swarm.behaviour_mut().kad.get_closest_peers(peer);
                }
                let _ = reply.send(Ok(()));
            }
            Command::GossipScore { peer, reply } => {
                let _ = reply.send(Ok(self.swarm.behaviour().gossipsub.peer_score(&peer)));
            }
            Command::IsConnected { peer, reply } => {
                let _ = reply.send(Ok(self.swarm.is_connected(&peer)));
            }
            Command::AddAddress {
                peer,
                mut addr,
                reply,
            } => {
                // Cards give addresses ending in `/p2p/<peer>`; the swarm appends that itself
                // when it dials (twice is a malformed address: a relayed one then never works).
                if addr.iter().last() == Some(Protocol::P2p(peer)) {
                    addr.pop();
                }
                self.swarm.add_peer_address(peer, addr.clone());
                self.way_in(peer, &addr);
                let _ = reply.send(Ok(()));
            }
            Command::SetBootstrap { addrs, reply } => match bootstrap_map(&addrs) {
                Ok(peers) => {
                    self.bootstrap_peers = peers;
                    self.bootstrap_query = None;
                    self.bootstrap_retry_at = None;
                    self.bootstrap = if self.bootstrap_peers.is_empty() {
                        BootstrapState::NotConfigured
                    } else {
                        BootstrapState::Connecting
                    };
                    self.add_bootstrap_addresses();
                    self.dial_bootstrap();
                    let _ = reply.send(Ok(()));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Shutdown { .. } => unreachable!("handled in run"),
        }
    }

    /// Libp2p's automatic DHT mode turns server as soon as any external address is confirmed —
    /// and a relay reservation confirms the circuit address. A peer reachable only through a
    /// relay must not serve the DHT: every query and every 512 KiB record write would go through
    /// someone else's relay and its per-circuit limits. So in `Auto` we set the mode ourselves:
    /// server once a direct external address is confirmed (AutoNAT), client otherwise.
    fn follow_external_addresses(&mut self) {
        if self.dht_mode != DhtMode::Auto {
            return;
        }
        let direct = self
            .swarm
            .external_addresses()
            .any(|a| !a.iter().any(|p| p == Protocol::P2pCircuit));
        // Set, not handed back to libp2p: its automatic mode would turn server on the circuit
        // address for a moment before this runs, and tell peers so.
        let mode = if direct {
            kad::Mode::Server
        } else {
            kad::Mode::Client
        };
        self.swarm.behaviour_mut().kad.set_mode(Some(mode));
        // Now, not at Kademlia's ModeChanged: the status that shows the new address shows the
        // mode that goes with it.
        self.dht_server = mode == kad::Mode::Server;
    }

    /// A contact's card is a way in. A circuit address in it names the contact's relay, which we
    /// may then reserve at too; and with no bootstrap node of our own and nobody to ask the DHT
    /// through, we dial what the card names (the relay, else the contact) and join the DHT
    /// through whoever answers.
    fn way_in(&mut self, peer: PeerId, addr: &Multiaddr) {
        let relay = relay_of(addr);
        if let Some((id, relay_addr)) = &relay {
            self.known_relays.insert(*id, relay_addr.clone());
        }
        if !self.bootstrap_peers.is_empty() || self.routing_table_size() > 0 {
            return;
        }
        let target = match relay {
            Some((_, relay_addr)) => relay_addr,
            None => without_p2p(addr).with(Protocol::P2p(peer)),
        };
        tracing::info!(%target, "no bootstrap node: joining the network through a contact's card");
        if let Err(e) = self.swarm.dial(target) {
            tracing::debug!(error = %e, "cannot dial the address of a contact's card");
        }
    }

    /// Asks bootstrap node `relay` (it offers relaying) for a reservation, once: an app behind
    /// NAT is then reachable at `<relay address>/p2p-circuit/p2p/<us>`, which goes into its
    /// card; a connection made through it is upgraded to a direct one by hole punching (DCUtR)
    /// where the NATs allow. Only at bootstrap nodes and at the relays our contacts' cards name:
    /// those are the relays the user chose, directly or through a friend.
    fn reserve_at(&mut self, relay: PeerId) {
        if self.role != Role::Peer || self.reservations.contains_key(&relay) {
            return;
        }
        if self
            .reservation_ended
            .get(&relay)
            .is_some_and(|t| t.elapsed() < RESERVATION_RETRY)
        {
            return;
        }
        // A relay named only by a contact's card is used while we hold no reservation at all
        // (so one card cannot spread its relay through the contact graph, nor stack up many).
        let addr = match self.bootstrap_peers.get(&relay) {
            Some(a) => a,
            None if self.reservations.is_empty() => match self.known_relays.get(&relay) {
                Some(a) => a,
                None => return,
            },
            None => return,
        };
        let circuit = without_p2p(addr)
            .with(Protocol::P2p(relay))
            .with(Protocol::P2pCircuit);
        match self.swarm.listen_on(circuit.clone()) {
            Ok(listener) => {
                tracing::info!(%relay, "asking the bootstrap node for a relay reservation");
                self.reservations.insert(relay, listener);
            }
            Err(e) => tracing::warn!(%circuit, error = %e, "cannot listen through the relay"),
        }
    }

    fn count_records(&mut self) {
        self.stored_records = self.swarm.behaviour_mut().kad.store_mut().records().count() as u32;
    }

    /// What this node holds under `key`, as it would serve it: an expired record (Kademlia
    /// drops it lazily, when next asked) counts as absent.
    fn local_value(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let now = std::time::Instant::now();
        self.swarm
            .behaviour_mut()
            .kad
            .store_mut()
            .get(&kad::RecordKey::new(&key))
            .filter(|r| !r.is_expired(now))
            .map(|r| r.value.clone())
    }

    /// A record another peer asks this node to store (PROTOCOL.md §3): validated, then held
    /// within the store's budget, for *this node's* TTL.
    fn store_inbound(&mut self, source: PeerId, mut record: kad::Record) {
        let key_log = key_for_log(record.key.as_ref());
        let now = std::time::Instant::now();
        if self
            .ledger
            .refresh(self.swarm.behaviour_mut().kad.store_mut(), now)
        {
            self.count_records();
        }
        // What the store holds under this key, expired or not (for the accounts), and what it
        // still serves (for validation).
        let existing = self
            .swarm
            .behaviour_mut()
            .kad
            .store_mut()
            .get(&record.key)
            .map(|r| r.into_owned());
        let live = existing.as_ref().filter(|r| !r.is_expired(now));
        let verdict = records::validate(
            record.key.as_ref(),
            &record.value,
            live.map(|r| r.value.as_slice()),
            &self.limits,
        );
        // The writer's requested expiry is ignored: otherwise anyone could push a copy of a
        // real record with a TTL of seconds and have every storing node drop it.
        let expires = Some(now + self.timing.record_ttl);
        match verdict {
            Ok((Verdict::Store, parsed)) => {
                let usage = self.ledger.usage(&source, existing.as_ref());
                let cost = budget::charge(record.key.as_ref().len(), record.value.len());
                if let Err(reason) = budget::admit(&self.limits.budget(), &usage, cost) {
                    tracing::warn!(key = %key_log, from = %source, %reason, "refused inbound record");
                    // A valid newer version we cannot take makes our copy stale: stop serving
                    // it (readers find the new one elsewhere) rather than hand out the old one.
                    if let Some(old) = &existing {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .store_mut()
                            .remove(&record.key);
                        self.ledger.removed(old);
                        self.stored_records = self.stored_records.saturating_sub(1);
                    }
                    return;
                }
                tracing::debug!(key = %key_log, version = parsed.version, from = %source, "storing record");
                record.expires = expires;
                // The source is whom the bytes are charged to (and not whatever the writer
                // claims: a record naming *us* as publisher would otherwise be re-published as
                // our own).
                record.publisher = Some(source);
                match self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .store_mut()
                    .put(record.clone())
                {
                    Ok(()) => {
                        self.ledger.stored(&record, existing.as_ref());
                        if existing.is_none() {
                            self.stored_records = self.stored_records.saturating_add(1);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(key = %key_log, error = %e, "record store full; record dropped")
                    }
                }
            }
            // A re-publish of the exact bytes: keep them for another full TTL of ours.
            Ok((Verdict::Unchanged, _)) => {
                if let Some(mut kept) = existing {
                    kept.expires = expires;
                    let _ = self.swarm.behaviour_mut().kad.store_mut().put(kept);
                }
            }
            Err(reason) => {
                tracing::warn!(key = %key_log, from = %source, %reason, "refused inbound record");
            }
        }
    }

    fn handle_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                // A headless node is run where it is reachable at the address it listens on:
                // it says so, which relaying needs (a reservation carries the relay's addresses).
                if self.role == Role::Server
                    && !address.iter().any(|p| p == Protocol::P2pCircuit)
                    && (self.listen_host.is_loopback() || !is_local(&address))
                {
                    self.swarm.add_external_address(address.clone());
                }
                // A relay renews a reservation by reporting its addresses again: once each.
                if !self.listen_addrs.contains(&address) {
                    self.listen_addrs.push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| *a != address);
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                tracing::info!(%address, "reachable from outside at a confirmed address");
                self.follow_external_addresses();
            }
            SwarmEvent::ExternalAddrExpired { address } => {
                tracing::info!(%address, "no longer confirmed reachable at");
                self.follow_external_addresses();
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                self.listen_addrs.retain(|a| !addresses.contains(a));
                // A reservation that ended (the relay went away, or refused us) is asked for
                // again when we next learn the relay is there.
                if let Some(relay) = self
                    .reservations
                    .iter()
                    .find_map(|(p, l)| (*l == listener_id).then_some(*p))
                {
                    tracing::info!(%relay, ?reason, "relay reservation ended");
                    self.reservations.remove(&relay);
                    self.reservation_ended.insert(relay, Instant::now());
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            } => {
                if let Some((_, reply)) = self.pending_dial.remove(&connection_id) {
                    let _ = reply.send(Ok(()));
                }
                self.connected.insert(peer_id);
                if self.bootstrap_peers.contains_key(&peer_id) {
                    tracing::info!(%peer_id, "connected to bootstrap node");
                    self.bootstrap_failures.remove(&peer_id);
                    self.start_bootstrap_query();
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.connected.remove(&peer_id);
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                if let Some((addr, reply)) = self.pending_dial.remove(&connection_id) {
                    let _ = reply.send(Err(NodeError::Dial {
                        addr: addr.to_string(),
                        reason: error.to_string(),
                    }));
                }
                if let Some(peer) = peer_id.filter(|p| self.bootstrap_peers.contains_key(p)) {
                    if !self.connected.contains(&peer) {
                        tracing::warn!(%peer, %error, "bootstrap dial failed");
                        self.bootstrap_failed(peer, error.to_string());
                    }
                }
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(%error, "listener error");
            }
            SwarmEvent::Behaviour(event) => self.handle_behaviour_event(event),
            _ => {}
        }
    }

    fn handle_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Kad(event) => self.handle_kad_event(event),
            // Only peers that speak our DHT protocol go into the routing table.
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                if info.protocols.contains(&libp2p::relay::HOP_PROTOCOL_NAME) {
                    self.reserve_at(peer_id);
                }
                if info.protocols.contains(&KAD_PROTOCOL) {
                    let first = self.routing_table_size() == 0;
                    for addr in info.listen_addrs {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                    // Joined through a contact's card (no bootstrap node of our own): fill the
                    // routing table from the first DHT peer we met.
                    if first && self.bootstrap_peers.is_empty() {
                        self.start_bootstrap_query();
                    }
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    tracing::debug!(%peer, %addr, "found on the local network");
                    let _ = self.swarm.dial(addr);
                }
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                let topic = message.topic.as_str().to_string();
                let verdict = if !self.topics.contains(&topic) {
                    // Refusing (rather than ignoring) makes gossipsub penalise peers that push
                    // traffic for topics we never joined.
                    tracing::debug!(%topic, from = %propagation_source, "gossip message on an unknown topic refused");
                    Some(gossipsub::MessageAcceptance::Reject)
                } else {
                    match self.events.try_send(NodeEvent::Gossip {
                        source: propagation_source,
                        message_id: message_id.0.clone(),
                        topic,
                        data: message.data,
                    }) {
                        // The application reports the verdict (Command::Validate).
                        Ok(()) => None,
                        // Not forwarded; the sender's bucket still has it for us.
                        Err(e) => {
                            tracing::warn!(error = %e, "application busy; gossip message ignored");
                            Some(gossipsub::MessageAcceptance::Ignore)
                        }
                    }
                };
                if let Some(verdict) = verdict {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            verdict,
                        );
                }
            }
            BehaviourEvent::Direct(event) => self.handle_direct_event(event),
            BehaviourEvent::Dcutr(libp2p::dcutr::Event {
                remote_peer_id,
                result,
            }) => match result {
                Ok(_) => {
                    tracing::info!(peer = %remote_peer_id, "hole punched: direct connection instead of the relayed one")
                }
                Err(e) => {
                    tracing::info!(peer = %remote_peer_id, error = %e, "hole punching failed; the relayed connection stays")
                }
            },
            BehaviourEvent::Autonat(libp2p::autonat::Event::StatusChanged { old, new }) => {
                tracing::info!(?old, ?new, "NAT status changed");
            }
            _ => {}
        }
    }

    fn handle_kad_event(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        record: Some(record),
                        ..
                    },
            } => self.store_inbound(source, record),
            kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            } => match result {
                QueryResult::GetRecord(result) => {
                    let done = match result {
                        Ok(GetRecordOk::FoundRecord(found)) => {
                            let mut enough = false;
                            if let Some(pending) = self.pending_get.get_mut(&id) {
                                pending.copies.add(found.record.value, &self.limits);
                                // Stop early only once enough *valid* copies agree on the newest
                                // version: junk answers, or a stale copy served first, never
                                // end a read before it reached the current record.
                                enough = pending.copies.agreeing() >= ENOUGH_COPIES;
                            }
                            if enough && !step.last {
                                // Stop the query: waiting for the rest (some of them possibly
                                // offline peers the query has to time out on) adds nothing.
                                if let Some(mut query) =
                                    self.swarm.behaviour_mut().kad.query_mut(&id)
                                {
                                    query.finish();
                                }
                            }
                            step.last || enough
                        }
                        Ok(GetRecordOk::FinishedWithNoAdditionalRecord { .. }) => true,
                        Err(e) => {
                            // "Not found" from nobody is not "not found": a caller that must
                            // know (our own bucket before numbering, after a restore) waits.
                            if let kad::GetRecordError::NotFound { closest_peers, .. } = &e {
                                if closest_peers.is_empty() {
                                    if let Some(pending) = self.pending_get.get_mut(&id) {
                                        pending.unanswered = true;
                                    }
                                }
                            }
                            true
                        }
                    };
                    if done {
                        self.finish_get(id);
                    }
                }
                QueryResult::PutRecord(result) => {
                    if let Some(reply) = self.pending_put.remove(&id) {
                        let _ = reply.send(
                            result
                                .map(|_| ())
                                .map_err(|e| NodeError::PutFailed(e.to_string())),
                        );
                    }
                }
                QueryResult::Bootstrap(result) if self.bootstrap_query == Some(id) => {
                    match result {
                        Ok(ok) if ok.num_remaining == 0 => {
                            self.bootstrap_query = None;
                            let peers = self
                                .bootstrap_peers
                                .keys()
                                .filter(|p| self.connected.contains(p))
                                .count() as u32;
                            tracing::info!(peers, "DHT bootstrap succeeded");
                            if !self.bootstrap_peers.is_empty() {
                                self.bootstrap = BootstrapState::Succeeded { peers };
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            self.bootstrap_query = None;
                            tracing::warn!(error = %e, "DHT bootstrap query failed");
                            self.bootstrap_query_failed(e.to_string());
                        }
                    }
                }
                _ => {}
            },
            kad::Event::ModeChanged { new_mode } => {
                tracing::info!(%new_mode, "DHT mode changed");
                self.dht_server = new_mode == kad::Mode::Server;
            }
            _ => {}
        }
    }

    fn finish_get(&mut self, id: QueryId) {
        let Some(pending) = self.pending_get.remove(&id) else {
            return;
        };
        let (best, refused) = pending.copies.finish();
        for reason in refused {
            tracing::warn!(key = %key_for_log(&pending.key), %reason, "ignored invalid copy of a record");
        }
        let missing = if pending.unanswered {
            NodeError::Unreachable
        } else {
            NodeError::NotFound
        };
        let _ = pending
            .reply
            .send(best.map(|(_, bytes)| bytes).ok_or(missing));
    }

    fn handle_direct_event(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    match self.events.try_send(NodeEvent::Direct {
                        peer,
                        payload: request,
                    }) {
                        Ok(()) => {
                            let _ = self
                                .swarm
                                .behaviour_mut()
                                .direct
                                .send_response(channel, Vec::new());
                        }
                        // Not acknowledging makes the sender fall back to the offline bucket,
                        // which is the source of truth; nothing is lost.
                        Err(e) => {
                            tracing::warn!(%peer, error = %e, "application busy; direct message not acknowledged")
                        }
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((_, reply)) = self.pending_direct.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some((peer, reply)) = self.pending_direct.remove(&request_id) {
                    let _ = reply.send(Err(NodeError::Direct {
                        peer: peer.to_string(),
                        reason: error.to_string(),
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound direct message failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}

/// Bootstrap peers by id; every address must end with `/p2p/<peer id>`.
fn bootstrap_map(addrs: &[Multiaddr]) -> Result<HashMap<PeerId, Multiaddr>, NodeError> {
    addrs
        .iter()
        .map(|addr| bootstrap_peer(addr).map(|peer| (peer, addr.clone())))
        .collect()
}

/// Listens on `port`; if it is taken, listens on a free port instead and records a warning the
/// user will see, so a second profile or another program never stops the app from starting.
fn listen_with_fallback(
    swarm: &mut Swarm<Behaviour>,
    host: IpAddr,
    port: u16,
    quic: bool,
    warnings: &mut Vec<String>,
) -> Result<(), NodeError> {
    let addr = listen_addr(host, port, quic);
    match swarm.listen_on(addr.clone()) {
        Ok(_) => Ok(()),
        Err(e) if port != 0 => {
            let transport = if quic { "UDP (QUIC)" } else { "TCP" };
            let warning = format!(
                "{transport} port {port} is not available ({e}); listening on a free port instead"
            );
            tracing::warn!("{warning}");
            warnings.push(warning);
            swarm
                .listen_on(listen_addr(host, 0, quic))
                .map(|_| ())
                .map_err(|e| NodeError::Listen {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                })
        }
        Err(e) => Err(NodeError::Listen {
            addr: addr.to_string(),
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_of_a_circuit_address_and_nothing_else() {
        let (relay, me) = (PeerId::random(), PeerId::random());
        let circuit: Multiaddr =
            format!("/ip4/10.99.1.2/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{me}")
                .parse()
                .unwrap();
        let (id, addr) = relay_of(&circuit).expect("a relay");
        assert_eq!(id, relay);
        assert_eq!(
            addr.to_string(),
            format!("/ip4/10.99.1.2/tcp/4001/p2p/{relay}")
        );
        let direct: Multiaddr = format!("/ip4/10.99.2.2/tcp/4001/p2p/{me}").parse().unwrap();
        assert_eq!(relay_of(&direct), None);
        // A circuit address that names no relay peer is no way in.
        let bare: Multiaddr = "/ip4/10.99.1.2/tcp/4001/p2p-circuit".parse().unwrap();
        assert_eq!(relay_of(&bare), None);
    }
}
