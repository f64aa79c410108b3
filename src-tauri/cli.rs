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
    /// Messages kept in each of your offline buckets for contacts and group members who are
    /// away (100 by default, at most 1000; large messages fit fewer, see the README).
    #[arg(long, env = "KIYEOVO_BUCKET_CAP", default_value_t = 100,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub bucket_cap: u16,
    /// Length of a group's invitation window, in minutes (PROTOCOL.md §6: 360 = 6 hours).
    #[arg(long, env = "KIYEOVO_INVITE_WINDOW_MINUTES", default_value_t = 360,
          value_parser = clap::value_parser!(u32).range(1..=10080))]
    pub invite_window_minutes: u32,
    /// Start in the tray without showing the window (used when starting at login).
    #[arg(long)]
    pub hidden: bool,
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
        config.bucket_cap = self.bucket_cap as usize;
        config.group.window =
            std::time::Duration::from_secs(60 * self.invite_window_minutes as u64);
        config
    }
}
