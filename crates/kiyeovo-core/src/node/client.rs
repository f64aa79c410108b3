//! The handle the rest of the app uses to talk to the node.

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use crate::node::NodeError;

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// What the event loop can be asked to do. Each carries its reply channel.
#[derive(Debug)]
pub enum Command {
    /// Validate, store locally and replicate a signed record.
    PutRecord {
        key: Vec<u8>,
        value: Vec<u8>,
        reply: Reply<()>,
    },
    /// Fetch copies from the DHT and return the newest valid value.
    GetRecord {
        key: Vec<u8>,
        reply: Reply<Vec<u8>>,
    },
    /// What this node's own DHT store holds for `key` (what it would serve to others).
    LocalRecord {
        key: Vec<u8>,
        reply: Reply<Option<Vec<u8>>>,
    },
    SendDirect {
        peer: PeerId,
        payload: Vec<u8>,
        reply: Reply<Vec<u8>>,
    },
    Dial {
        addr: Multiaddr,
        reply: Reply<()>,
    },
    /// Whether we have an open connection to `peer`.
    IsConnected {
        peer: PeerId,
        reply: Reply<bool>,
    },
    /// This node's gossipsub score for a peer (None: no score kept for it).
    GossipScore {
        peer: PeerId,
        reply: Reply<Option<f64>>,
    },
    /// Remember an address for a peer (from a contact card).
    AddAddress {
        peer: PeerId,
        addr: Multiaddr,
        reply: Reply<()>,
    },
    /// Replace the bootstrap list and dial the new nodes now.
    SetBootstrap {
        addrs: Vec<Multiaddr>,
        reply: Reply<()>,
    },
    /// Join a gossipsub topic: its messages are handed to the application for validation.
    Subscribe {
        topic: String,
        reply: Reply<()>,
    },
    Unsubscribe {
        topic: String,
        reply: Reply<()>,
    },
    /// Publish on a joined topic. Having no peer on the topic is not an error (the offline
    /// bucket covers it): the reply says how it went.
    Publish {
        topic: String,
        data: Vec<u8>,
        reply: Reply<()>,
    },
    /// The application's verdict on a gossip message handed over as [`NodeEvent::Gossip`].
    ///
    /// [`NodeEvent::Gossip`]: crate::node::NodeEvent::Gossip
    Validate {
        message_id: Vec<u8>,
        source: PeerId,
        verdict: Verdict,
    },
    /// Connect to `peer` by id: dial its known addresses, and look it up in the DHT if none.
    ConnectPeer {
        peer: PeerId,
        reply: Reply<()>,
    },
    /// Stop the event loop after answering what is in flight.
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// What gossipsub does with a message after the application looked at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it to the mesh.
    Accept,
    /// Not forwarded, sender not penalised (e.g. a duplicate, or we cannot judge).
    Ignore,
    /// Invalid: not forwarded, and the peer that sent it is penalised.
    Reject,
}

/// Cloneable handle to the node. Every method fails with [`NodeError::Stopped`] once the event
/// loop is gone, instead of hanging.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
}

impl Client {
    pub(crate) fn new(commands: mpsc::Sender<Command>) -> Self {
        Self { commands }
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)?
    }

    /// Publishes a record. It is checked with the same rules remote nodes apply, so an invalid
    /// record fails here with the reason instead of silently vanishing in the network.
    pub async fn put_record(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), NodeError> {
        self.call(|reply| Command::PutRecord { key, value, reply })
            .await
    }

    /// The newest valid record under `key`, or [`NodeError::NotFound`].
    pub async fn get_record(&self, key: Vec<u8>) -> Result<Vec<u8>, NodeError> {
        self.call(|reply| Command::GetRecord { key, reply }).await
    }

    pub async fn local_record(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, NodeError> {
        self.call(|reply| Command::LocalRecord { key, reply }).await
    }

    /// Sends one payload over `/kiyeovo/direct/1` and returns the peer's answer.
    pub async fn send_direct(&self, peer: PeerId, payload: Vec<u8>) -> Result<Vec<u8>, NodeError> {
        self.call(|reply| Command::SendDirect {
            peer,
            payload,
            reply,
        })
        .await
    }

    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NodeError> {
        self.call(|reply| Command::Dial { addr, reply }).await
    }

    /// Whether a connection to `peer` is open right now (a direct send will not need a dial).
    pub async fn is_connected(&self, peer: PeerId) -> Result<bool, NodeError> {
        self.call(|reply| Command::IsConnected { peer, reply })
            .await
    }

    /// How this node's gossipsub scores `peer` (negative after rejected messages).
    pub async fn gossip_score(&self, peer: PeerId) -> Result<Option<f64>, NodeError> {
        self.call(|reply| Command::GossipScore { peer, reply })
            .await
    }

    /// Remembers where `peer` may be reached (hints from a contact card).
    pub async fn add_address(&self, peer: PeerId, addr: Multiaddr) -> Result<(), NodeError> {
        self.call(|reply| Command::AddAddress { peer, addr, reply })
            .await
    }

    /// Replaces the bootstrap nodes (each ending in `/p2p/<id>`) and joins through them now.
    pub async fn set_bootstrap(&self, addrs: Vec<Multiaddr>) -> Result<(), NodeError> {
        self.call(|reply| Command::SetBootstrap { addrs, reply })
            .await
    }

    pub async fn subscribe(&self, topic: String) -> Result<(), NodeError> {
        self.call(|reply| Command::Subscribe { topic, reply }).await
    }

    pub async fn unsubscribe(&self, topic: String) -> Result<(), NodeError> {
        self.call(|reply| Command::Unsubscribe { topic, reply })
            .await
    }

    pub async fn publish(&self, topic: String, data: Vec<u8>) -> Result<(), NodeError> {
        self.call(|reply| Command::Publish { topic, data, reply })
            .await
    }

    /// Reports the verdict on a gossip message (fire and forget).
    pub async fn validate(&self, message_id: Vec<u8>, source: PeerId, verdict: Verdict) {
        let _ = self
            .commands
            .send(Command::Validate {
                message_id,
                source,
                verdict,
            })
            .await;
    }

    /// Opens a connection to `peer` if possible (returns once the attempt started).
    pub async fn connect_peer(&self, peer: PeerId) -> Result<(), NodeError> {
        self.call(|reply| Command::ConnectPeer { peer, reply })
            .await
    }

    /// Asks the event loop to stop and waits until it has.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { reply: tx })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }
}
