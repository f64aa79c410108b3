//! Errors of the node and its client.

use crate::records::RecordError;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("bad address {0}")]
    BadAddress(String),
    #[error("cannot set up the network transport: {0}")]
    Transport(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("the network node has stopped")]
    Stopped,
    #[error("record refused: {0}")]
    InvalidRecord(#[from] RecordError),
    #[error("no valid record found")]
    NotFound,
    /// The query ended without any peer answering (not part of the DHT yet): unlike
    /// [`NodeError::NotFound`], says nothing about whether the record exists.
    #[error("no peer of the DHT could be asked")]
    Unreachable,
    #[error("storing the record in the DHT failed: {0}")]
    PutFailed(String),
    #[error("direct message to {peer} failed: {reason}")]
    Direct { peer: String, reason: String },
    #[error("gossip: {0}")]
    Gossip(String),
    #[error("cannot dial {addr}: {reason}")]
    Dial { addr: String, reason: String },
}
