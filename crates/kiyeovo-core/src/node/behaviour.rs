//! The composed libp2p behaviour and the swarm builder.

use std::time::Duration;

use libp2p::kad::store::{MemoryStore, MemoryStoreConfig};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    autonat, dcutr, gossipsub, identify, kad, mdns, noise, ping, relay, request_response, tcp,
    yamux, StreamProtocol, Swarm, SwarmBuilder,
};
use sha2::{Digest, Sha256};

use crate::node::config::{NodeConfig, Role};
use crate::node::direct::{self, DirectCodec};
use crate::node::scoring;
use crate::node::store::Store;
use crate::node::NodeError;

pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/kiyeovo/kad/1.0.0");
pub const IDENTIFY_PROTOCOL: &str = "/kiyeovo/id/1.0.0";

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub relay_client: relay::client::Behaviour,
    /// Only on [`Role::Server`]: relays for peers behind NAT.
    pub relay_server: Toggle<relay::Behaviour>,
    pub dcutr: dcutr::Behaviour,
    pub autonat: autonat::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub kad: kad::Behaviour<Store>,
    pub gossipsub: gossipsub::Behaviour,
    pub direct: request_response::Behaviour<DirectCodec>,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
}

/// What a headless node relays for peers behind NAT. libp2p's defaults (2 min, 128 KiB per
/// circuit) end a circuit after two 64 KiB messages; a circuit here carries a few direct
/// messages and the hole-punching handshake that replaces it with a direct connection, so it
/// gets 1 MiB and 5 minutes (then the next send makes a new one). Reservations and circuits stay
/// bounded per peer and in all, so relaying cannot be turned into free bandwidth at scale.
fn relay_config() -> relay::Config {
    relay::Config {
        max_circuit_duration: Duration::from_secs(5 * 60),
        max_circuit_bytes: 1 << 20,
        ..relay::Config::default()
    }
}

fn transport_error(e: impl std::fmt::Display) -> NodeError {
    NodeError::Transport(e.to_string())
}

pub fn build_swarm(config: &NodeConfig) -> Result<Swarm<Behaviour>, NodeError> {
    let limits = config.limits;
    let timing = config.timing;
    let role = config.role;
    let mdns_on = config.mdns;
    let swarm = SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(transport_error)?
        .with_quic_config(|mut c| {
            c.handshake_timeout = timing.quic_handshake_timeout;
            c
        })
        .with_dns()
        .map_err(transport_error)?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(transport_error)?
        .with_behaviour(|key, relay_client| {
            let peer_id = key.public().to_peer_id();

            let mut kad_config = kad::Config::new(KAD_PROTOCOL);
            // We validate every inbound record ourselves (PROTOCOL.md §3) before storing it.
            kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
            kad_config.set_max_packet_size(limits.kad_packet_bytes());
            kad_config.set_query_timeout(timing.query_timeout);
            kad_config.set_record_ttl(Some(timing.record_ttl));
            // Kademlia's own re-publishing is off: every storing node would re-push all it holds
            // every hour, each copy resetting the receiver's expiry, so nothing (junk, abandoned
            // buckets) would ever expire. Owners and readers re-publish what they need
            // themselves (PROTOCOL.md §3).
            kad_config.set_replication_interval(None);
            kad_config.set_publication_interval(None);
            let memory = MemoryStore::with_config(
                peer_id,
                MemoryStoreConfig {
                    max_records: limits.max_stored_records,
                    max_value_bytes: limits.max_record_bytes,
                    ..Default::default()
                },
            );
            let kept = config.kept_records.as_ref();
            let mut store = Store::new(memory, kept.map(|k| k.mirror()));
            if let Some(kept) = kept {
                let loaded = kept.take_loaded();
                let (count, took) = (loaded.len(), store.restore(loaded));
                if took < count {
                    tracing::warn!(
                        dropped = count - took,
                        "more records in the file than the store takes"
                    );
                }
            }
            let kad = kad::Behaviour::with_config(peer_id, store, kad_config);

            let gossip_config = gossipsub::ConfigBuilder::default()
                // Anonymous: a gossip message names no author (no `from`, no signature, no
                // sequence number). Our envelopes carry the sender's signature inside their
                // ciphertext; a clear author field would tell every relay who writes in which
                // group (PROTOCOL.md §0, §5).
                .validation_mode(gossipsub::ValidationMode::Anonymous)
                // Messages are held until the application says they are valid.
                .validate_messages()
                .max_transmit_size(limits.max_gossip_bytes)
                // A group has at most 10 members and a sender publishes to every member it is
                // connected to (flood publishing), so the mesh only carries copies to members
                // it does not reach directly; 6 (the default, sized for big public topics) mostly
                // forwarded duplicates. 4 keeps every member within two hops and cut the
                // loopback bench's burst p50 by ~12 % (README, Benchmarks).
                .mesh_n(4)
                .mesh_n_low(3)
                .mesh_n_high(6)
                .mesh_outbound_min(2)
                .message_id_fn(|m: &gossipsub::Message| {
                    gossipsub::MessageId::from(Sha256::digest(&m.data).to_vec())
                })
                .build()?;
            let mut gossipsub = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Anonymous,
                gossip_config,
            )?;
            gossipsub.with_peer_score(scoring::params(), scoring::thresholds())?;

            let direct = request_response::Behaviour::with_codec(
                DirectCodec {
                    max_request_bytes: limits.max_direct_bytes,
                },
                [(direct::PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
            );

            let mdns = if mdns_on {
                Some(mdns::tokio::Behaviour::new(
                    mdns::Config::default(),
                    peer_id,
                )?)
            } else {
                None
            };

            Ok(Behaviour {
                relay_client,
                relay_server: (role == Role::Server)
                    .then(|| relay::Behaviour::new(peer_id, relay_config()))
                    .into(),
                dcutr: dcutr::Behaviour::new(peer_id),
                autonat: autonat::Behaviour::new(peer_id, autonat::Config::default()),
                identify: identify::Behaviour::new(
                    identify::Config::new(IDENTIFY_PROTOCOL.to_string(), key.public())
                        .with_agent_version(format!("kiyeovo/{}", env!("CARGO_PKG_VERSION"))),
                ),
                ping: ping::Behaviour::new(ping::Config::new()),
                kad,
                gossipsub,
                direct,
                mdns: mdns.into(),
            })
        })
        .map_err(transport_error)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(timing.idle_connection_timeout))
        .build();
    Ok(swarm)
}
