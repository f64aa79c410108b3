//! Command line and environment: `--profile NAME` / `KIYEOVO_PROFILE`, and friends.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;
use kiyeovo_core::config::DhtMode;
use kiyeovo_core::profile::DEFAULT_PROFILE;
use kiyeovo_core::service::AppConfig;

#[derive(Debug, Parser)]
#[command(
    name = "kiyeovo-desktop",
    version,
    about = "Kiyeovo: private peer-to-peer group chats"
)]
pub struct Args {
    /// Profile to open; several profiles can run side by side.
    #[arg(long, env = "KIYEOVO_PROFILE", default_value = DEFAULT_PROFILE)]
    pub profile: String,
    /// Base directory for profile data (default: the platform data directory).
    #[arg(long, env = "KIYEOVO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Bootstrap node addresses ending in /p2p/<peer id> (repeatable or comma-separated);
    /// they replace the saved ones for this run.
    #[arg(long, env = "KIYEOVO_BOOTSTRAP", value_delimiter = ',')]
    pub bootstrap: Vec<String>,
    /// Listen port for TCP and QUIC (default: the one saved for this profile).
    #[arg(long, env = "KIYEOVO_PORT")]
    pub port: Option<u16>,
    /// Listen address.
    #[arg(long, env = "KIYEOVO_HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,
    /// Turn off local-network discovery (mDNS).
    #[arg(long, env = "KIYEOVO_NO_MDNS")]
    pub no_mdns: bool,
    /// Always store DHT records for others (useful on a LAN or in a local demo).
    #[arg(long, env = "KIYEOVO_DHT_SERVER")]
    pub dht_server: bool,
}

impl Args {
    pub fn to_app_config(&self) -> AppConfig {
        let mut config = AppConfig::new(&self.profile);
        config.data_dir = self.data_dir.clone();
        config.bootstrap = self.bootstrap.clone();
        config.listen_port = self.port;
        config.listen_host = self.host;
        config.mdns = !self.no_mdns;
        if self.dht_server {
            config.dht_mode = DhtMode::Server;
        }
        config
    }
}
