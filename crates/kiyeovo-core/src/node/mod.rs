//! The libp2p node.
//!
//! Shape (after rust-libp2p's file-sharing example): [`new`] builds the `Swarm` and returns a
//! cloneable [`Client`], a receiver of inbound [`NodeEvent`]s, a `watch` of [`NodeStatus`], and
//! the [`EventLoop`] that owns the swarm. The caller spawns `EventLoop::run`; everything else
//! talks to it through the client, whose methods send a [`client::Command`] with a `oneshot`
//! reply. Nothing outside the loop ever touches the swarm, so there are no locks around it.
//!
//! Every record that arrives — pushed to us for storage, or fetched by us — goes through
//! [`crate::records::validate`] first (Kademlia runs with `FilterBoth`, so it stores nothing on
//! its own). Gossipsub runs with application validation, and the direct protocol is size-bounded.
//!
//! [`NodeStatus`]: crate::api::NodeStatus

pub mod behaviour;
pub mod client;
pub mod config;
pub mod direct;
pub mod error;
pub mod event_loop;
pub mod ledger;
pub mod persist;
pub mod scoring;
pub mod store;

pub use client::{Client, Verdict};
pub use config::{NodeConfig, Role};
pub use error::NodeError;
pub use event_loop::EventLoop;

use libp2p::PeerId;
use tokio::sync::{mpsc, watch};

use crate::api::NodeStatus;

/// Something the network delivered that the application must handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A payload arrived on `/kiyeovo/direct/1` (already size-checked, not yet decoded).
    Direct { peer: PeerId, payload: Vec<u8> },
    /// A gossipsub message on a topic we joined, held until the application reports a
    /// [`client::Verdict`] for it with [`Client::validate`].
    Gossip {
        source: PeerId,
        message_id: Vec<u8>,
        topic: String,
        data: Vec<u8>,
    },
}

/// The pieces of a running node.
pub struct Node {
    pub client: Client,
    pub events: mpsc::Receiver<NodeEvent>,
    pub status: watch::Receiver<NodeStatus>,
    pub event_loop: EventLoop,
}

/// Builds the swarm, starts listening and dials the bootstrap nodes.
pub fn new(config: NodeConfig) -> Result<Node, NodeError> {
    let (command_tx, command_rx) = mpsc::channel(64);
    // Small on purpose: a slow consumer makes the node stop acknowledging (senders fall back to
    // the DHT bucket) instead of buffering up to this many payloads in memory.
    let (event_tx, event_rx) = mpsc::channel(256);
    let swarm = behaviour::build_swarm(&config)?;
    let (event_loop, status) = EventLoop::new(swarm, config, command_rx, event_tx)?;
    Ok(Node {
        client: Client::new(command_tx),
        events: event_rx,
        status,
        event_loop,
    })
}
