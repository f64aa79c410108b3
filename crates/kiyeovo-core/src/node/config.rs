//! What a node needs to start.

use std::net::{IpAddr, Ipv4Addr};

use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::config::{DhtMode, Limits, Timing};
use crate::node::NodeError;

/// Whether this node is a user's app or an always-on helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A user's app: relay *client*, hole punching, DHT mode from [`NodeConfig::dht_mode`].
    Peer,
    /// A headless bootstrap node: additionally a relay *server*, always a DHT server.
    Server,
}

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub keypair: Keypair,
    pub role: Role,
    /// Address to listen on (all interfaces by default; tests use 127.0.0.1).
    pub listen_host: IpAddr,
    /// TCP and QUIC port; 0 lets the OS choose. If the port is taken the node falls back to a
    /// free one and says so in [`crate::api::NodeStatus::warnings`].
    pub listen_port: u16,
    /// Bootstrap nodes, each ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    pub dht_mode: DhtMode,
    /// Discover peers on the local network. Off in tests so parallel test networks stay apart.
    pub mdns: bool,
    pub limits: Limits,
    pub timing: crate::config::Timing,
    /// The record file, for a storing node that keeps what it stores across restarts
    /// ([`super::persist`]); `None` keeps records in memory only.
    pub kept_records: Option<super::persist::Kept>,
}

impl NodeConfig {
    pub fn new(keypair: Keypair, role: Role) -> Self {
        Self {
            keypair,
            role,
            listen_host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            listen_port: 0,
            bootstrap: Vec::new(),
            dht_mode: if role == Role::Server {
                DhtMode::Server
            } else {
                DhtMode::Auto
            },
            mdns: true,
            limits: if role == Role::Server {
                Limits::server()
            } else {
                Limits::default()
            },
            timing: Timing::default(),
            kept_records: None,
        }
    }
}

/// Parses a bootstrap address; it must name the peer (`.../p2p/<id>`) so we know whom we reach.
pub fn parse_bootstrap(text: &str) -> Result<(PeerId, Multiaddr), NodeError> {
    let addr: Multiaddr = text
        .trim()
        .parse()
        .map_err(|e| NodeError::BadAddress(format!("{text:?}: {e}")))?;
    bootstrap_peer(&addr).map(|peer| (peer, addr))
}

/// The peer id at the end of a bootstrap address.
pub fn bootstrap_peer(addr: &Multiaddr) -> Result<PeerId, NodeError> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Ok(peer),
        _ => Err(NodeError::BadAddress(format!(
            "{addr}: a bootstrap address must end with /p2p/<peer id>"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_addresses_must_name_the_peer() {
        let peer = Keypair::generate_ed25519().public().to_peer_id();
        let good = format!("/ip4/127.0.0.1/tcp/4001/p2p/{peer}");
        assert_eq!(parse_bootstrap(&good).unwrap().0, peer);
        assert!(parse_bootstrap("/ip4/127.0.0.1/tcp/4001").is_err());
        assert!(parse_bootstrap("not an address").is_err());
    }
}
