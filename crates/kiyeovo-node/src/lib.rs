//! The headless Kiyeovo node: a bootstrap point, relay server and DHT storage node for public
//! servers (and for tests). It runs the same [`kiyeovo_core::node`] as the app, with the same
//! record validation, in the [`Role::Server`] role. With a data directory it keeps its key (so
//! its peer id) and the records it stores ([`kiyeovo_core::node::persist`]) across restarts.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kiyeovo_core::api::NodeStatus;
use kiyeovo_core::config::Limits;
use kiyeovo_core::node::persist::{PersistError, RecordFile};
use kiyeovo_core::node::{self, Client, NodeConfig, NodeError, NodeEvent, Role};
use libp2p::identity::Keypair;
use libp2p::Multiaddr;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The node's key file inside its data directory.
pub const KEY_FILE: &str = "node.key";

#[derive(Debug, thiserror::Error)]
pub enum HeadlessError {
    #[error("cannot read or write the node key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Records(#[from] PersistError),
    #[error("the node did not start listening within {0:?}")]
    NotListening(Duration),
}

/// What the headless node needs to start.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the node keeps its key, so its peer id (and the address users configure) survives
    /// restarts, and the records it stores for others. `None` makes a throw-away identity that
    /// keeps records in memory only.
    pub data_dir: Option<PathBuf>,
    pub listen_host: IpAddr,
    pub port: u16,
    /// Other bootstrap nodes to join.
    pub bootstrap: Vec<Multiaddr>,
    pub mdns: bool,
    /// Size limits and the storing budget ([`Limits::server`] for a real deployment).
    pub limits: Limits,
}

/// Loads the node key from `dir`, creating it (readable by the owner only) on first start.
pub fn load_or_create_key(dir: &Path) -> Result<Keypair, HeadlessError> {
    let path = dir.join(KEY_FILE);
    let key_err = |reason: String| HeadlessError::Key {
        path: path.clone(),
        reason,
    };
    match std::fs::read(&path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| key_err(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| key_err(e.to_string()))?;
            let key = Keypair::generate_ed25519();
            let bytes = key
                .to_protobuf_encoding()
                .map_err(|e| key_err(e.to_string()))?;
            write_private(&path, &bytes).map_err(|e| key_err(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(key_err(e.to_string())),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// A running headless node.
pub struct Headless {
    pub client: Client,
    pub status: watch::Receiver<NodeStatus>,
    task: JoinHandle<()>,
    drain: JoinHandle<()>,
    records: Option<RecordFile>,
}

impl Headless {
    /// Builds and starts the node on the current tokio runtime.
    pub async fn start(options: Options) -> Result<Self, HeadlessError> {
        let keypair = match &options.data_dir {
            Some(dir) => load_or_create_key(dir)?,
            None => Keypair::generate_ed25519(),
        };
        let mut records = match &options.data_dir {
            Some(dir) => Some(RecordFile::open(dir, &options.limits).await?),
            None => None,
        };
        let mut config = NodeConfig::new(keypair, Role::Server);
        config.listen_host = options.listen_host;
        config.listen_port = options.port;
        config.bootstrap = options.bootstrap;
        config.mdns = options.mdns;
        config.limits = options.limits;
        config.kept_records = records.as_mut().map(RecordFile::kept);
        let node = node::new(config)?;
        let task = tokio::spawn(node.event_loop.run());
        let drain = tokio::spawn(drain_events(node.events));
        Ok(Self {
            client: node.client,
            status: node.status,
            task,
            drain,
            records,
        })
    }

    /// Waits until the node listens on both TCP and QUIC and returns the shareable addresses
    /// (each ending in `/p2p/<peer id>`), TCP first.
    pub async fn listen_addrs(&mut self, within: Duration) -> Result<Vec<String>, HeadlessError> {
        let ready = |s: &NodeStatus| {
            s.listen_addrs.iter().any(|a| a.contains("/tcp/"))
                && s.listen_addrs.iter().any(|a| a.contains("/quic-v1/"))
        };
        let status = tokio::time::timeout(within, self.status.wait_for(ready))
            .await
            .map_err(|_| HeadlessError::NotListening(within))?
            .map_err(|_| HeadlessError::Node(NodeError::Stopped))?;
        let mut addrs = status.listen_addrs.clone();
        addrs.sort_by_key(|a| !a.contains("/tcp/"));
        Ok(addrs)
    }

    /// Stops the node, waits for its task to end and writes out what its record file still
    /// waits for.
    pub async fn shutdown(self) {
        self.client.shutdown().await;
        let _ = self.task.await;
        self.drain.abort();
        if let Some(records) = self.records {
            records.close().await;
        }
    }
}

/// A headless node has no application on top; direct messages to it are logged and dropped.
async fn drain_events(mut events: mpsc::Receiver<NodeEvent>) {
    while let Some(event) = events.recv().await {
        match event {
            NodeEvent::Direct { peer, payload } => {
                tracing::debug!(%peer, bytes = payload.len(), "direct message to a headless node ignored");
            }
            // A headless node joins no topic, so its event loop refuses all gossip itself.
            NodeEvent::Gossip { topic, .. } => {
                tracing::debug!(%topic, "gossip to a headless node ignored");
            }
        }
    }
}
