//! `kiyeovo-node`: run a Kiyeovo bootstrap + relay + DHT storage node.
//!
//! Prints its shareable multiaddresses on stdout (one per line, TCP first) once it listens, logs
//! to stderr, and stops cleanly on SIGINT or SIGTERM.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kiyeovo_core::config::Limits;
use kiyeovo_node::{Headless, Options};
use libp2p::Multiaddr;

#[derive(Debug, Parser)]
#[command(
    name = "kiyeovo-node",
    version,
    about = "Kiyeovo bootstrap, relay and DHT storage node"
)]
struct Args {
    /// Directory for the node key and the records it stores (both kept across restarts).
    #[arg(long, env = "KIYEOVO_NODE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0", env = "KIYEOVO_NODE_HOST")]
    host: IpAddr,
    /// TCP and UDP (QUIC) port.
    #[arg(long, default_value_t = 4001, env = "KIYEOVO_NODE_PORT")]
    port: u16,
    /// Other bootstrap nodes to join (repeatable).
    #[arg(long, env = "KIYEOVO_BOOTSTRAP", value_delimiter = ',')]
    bootstrap: Vec<Multiaddr>,
    /// Also discover peers on the local network with mDNS.
    #[arg(long)]
    mdns: bool,
    /// MiB of records this node stores for others in all.
    #[arg(long, default_value_t = 512, env = "KIYEOVO_NODE_STORE_MIB")]
    store_mib: usize,
    /// MiB of records one writing peer may have in this node's store.
    #[arg(long, default_value_t = 32, env = "KIYEOVO_NODE_SOURCE_QUOTA_MIB")]
    source_quota_mib: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,libp2p_mdns=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    // Install the handlers before anything is printed: a supervisor (or a test) may send
    // SIGTERM as soon as it reads our address, and it must still get a clean shutdown.
    let shutdown = match ShutdownSignal::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kiyeovo-node: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.data_dir.is_none() {
        tracing::warn!(
            "no --data-dir: this node gets a new peer id on every start and forgets what it stores"
        );
    }
    let mut node = match Headless::start(Options {
        data_dir: args.data_dir,
        listen_host: args.host,
        port: args.port,
        bootstrap: args.bootstrap,
        mdns: args.mdns,
        limits: Limits::with_budget(
            args.store_mib.saturating_mul(1024 * 1024),
            args.source_quota_mib.saturating_mul(1024 * 1024),
        ),
    })
    .await
    {
        Ok(node) => node,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            eprintln!("kiyeovo-node: {e}");
            return ExitCode::FAILURE;
        }
    };
    match node.listen_addrs(Duration::from_secs(10)).await {
        Ok(addrs) => {
            // Not `println!`: whoever started us may have read the first line and closed our
            // stdout, and a closed pipe must not take the node down.
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for addr in addrs {
                if writeln!(out, "{addr}").is_err() {
                    break;
                }
            }
            let _ = out.flush();
        }
        Err(e) => {
            eprintln!("kiyeovo-node: {e}");
            node.shutdown().await;
            return ExitCode::FAILURE;
        }
    }
    if let Some(warning) = node.status.borrow().warnings.first() {
        eprintln!("kiyeovo-node: warning: {warning}");
    }
    shutdown.wait().await;
    tracing::info!("shutting down");
    node.shutdown().await;
    ExitCode::SUCCESS
}

/// SIGINT / SIGTERM (Ctrl-C elsewhere), registered up front and awaited later.
struct ShutdownSignal {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    #[cfg(unix)]
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    #[cfg(not(unix))]
    fn install() -> std::io::Result<Self> {
        Ok(Self {})
    }

    #[cfg(unix)]
    async fn wait(mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }

    #[cfg(not(unix))]
    async fn wait(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
