//! Helpers shared by the integration tests: throw-away profiles (own temp data dir and own
//! keyring namespace, cleaned up on drop), a local headless bootstrap node, and waiting on pushed
//! state with a timeout (never sleeping).

pub mod attacker;
pub mod netns;
pub mod peer_process;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use kiyeovo_core::api::{AppSnapshot, BootstrapState, GroupStatus, GroupView};
use kiyeovo_core::config::{DhtMode, Limits, Timing};
use kiyeovo_core::group::GroupConfig;
use kiyeovo_core::keystore::Keystore;
use kiyeovo_core::pairwise::channel::ChannelEvent;
use kiyeovo_core::service::App;
use kiyeovo_core::service::AppConfig;
use kiyeovo_node::{Headless, Options};
use rand::Rng;
use tokio::sync::watch;

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Generous upper bound for anything on loopback; tests finish far sooner when things work.
pub const WAIT: Duration = Duration::from_secs(30);

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
    });
}

/// A profile that exists only for one test.
pub struct TestProfile {
    pub name: String,
    pub base: tempfile::TempDir,
}

impl TestProfile {
    pub fn new(tag: &str) -> Self {
        init_logging();
        let suffix: u32 = rand::thread_rng().gen();
        Self {
            name: format!("it-{tag}-{suffix:08x}"),
            base: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A config for a node on 127.0.0.1 that joins `bootstrap`, with mDNS off (so parallel
    /// tests never find each other) and short retry timers.
    pub fn config(&self, bootstrap: &[String]) -> AppConfig {
        Self::config_for(&self.name, self.base.path(), bootstrap)
    }

    /// [`TestProfile::config`] for a profile named `name` under `base` (for child processes).
    pub fn config_for(name: &str, base: &std::path::Path, bootstrap: &[String]) -> AppConfig {
        let mut config = AppConfig::new(name);
        config.data_dir = Some(base.to_path_buf());
        config.bootstrap = bootstrap.to_vec();
        config.listen_host = LOCALHOST;
        config.listen_port = Some(0);
        config.dht_mode = DhtMode::Server;
        config.mdns = false;
        config.poll_interval = Duration::from_secs(2);
        // Only the notification test talks to a notification service.
        config.notifications = false;
        config.timing = Timing {
            query_timeout: Duration::from_secs(10),
            bootstrap_retry: Duration::from_secs(1),
            quic_handshake_timeout: Duration::from_secs(1),
            ..Timing::default()
        };
        config
    }

    pub fn db_path(&self) -> PathBuf {
        self.base
            .path()
            .join("profiles")
            .join(&self.name)
            .join("kiyeovo.db")
    }

    pub fn keystore(&self) -> Keystore {
        Keystore::new(&self.name)
    }
}

impl Drop for TestProfile {
    fn drop(&mut self) {
        let _ = self.keystore().delete_all();
    }
}

/// Starts a headless bootstrap node on 127.0.0.1 and returns it with its TCP address.
pub async fn bootstrap_node() -> (Headless, String) {
    bootstrap_node_with(Limits::server(), Vec::new()).await
}

/// A headless node with its own limits that joins `bootstrap` (for storing-node tests).
pub async fn bootstrap_node_with(limits: Limits, bootstrap: Vec<String>) -> (Headless, String) {
    init_logging();
    let mut node = Headless::start(Options {
        data_dir: None,
        listen_host: LOCALHOST,
        port: 0,
        bootstrap: bootstrap
            .iter()
            .map(|a| a.parse().expect("multiaddr"))
            .collect(),
        mdns: false,
        limits,
    })
    .await
    .expect("bootstrap node starts");
    let addrs = node.listen_addrs(WAIT).await.expect("bootstrap listens");
    let tcp = addrs[0].clone();
    (node, tcp)
}

/// A headless storing node that keeps its key and records in `dir`, listening on `port` (0: any
/// free one), with the server limits; returns it with its TCP address.
pub async fn storing_node_in(dir: &std::path::Path, port: u16) -> (Headless, String) {
    init_logging();
    let mut node = Headless::start(Options {
        data_dir: Some(dir.to_path_buf()),
        listen_host: LOCALHOST,
        port,
        bootstrap: Vec::new(),
        mdns: false,
        limits: Limits::server(),
    })
    .await
    .expect("storing node starts");
    let addrs = node.listen_addrs(WAIT).await.expect("storing node listens");
    let tcp = addrs[0].clone();
    (node, tcp)
}

/// Waits until every message `app` wrote in group `id` is in its offline bucket.
pub async fn wait_all_stored(app: &App, id: &str) {
    let mut rx = app.chat().subscribe();
    while !app
        .chat()
        .chat(id)
        .await
        .unwrap()
        .messages
        .iter()
        .filter(|m| m.outgoing)
        .all(|m| m.stored)
    {
        wait_event(&mut rx, "bucket written", |e| {
            matches!(e, kiyeovo_core::group::ChatEvent::Changed { .. })
        })
        .await;
    }
}

/// Waits until `app` has stored `n` messages from `from` starting with `prefix`. The database
/// is the truth (the poll on start may run before anyone subscribes); events only wake us up.
pub async fn wait_stored_messages(app: &App, from: &libp2p::PeerId, prefix: &str, n: usize) {
    let mut rx = app.channel().subscribe();
    loop {
        let all = app.channel().messages(from).await.unwrap();
        if all.iter().filter(|m| m.body.starts_with(prefix)).count() >= n {
            return;
        }
        wait_event(&mut rx, "another message", |e| {
            matches!(e, ChannelEvent::MessageReceived { .. })
        })
        .await;
    }
}

/// Waits until the pushed snapshot satisfies `pred`; panics with the last snapshot on timeout.
pub async fn wait_for(
    rx: &mut watch::Receiver<AppSnapshot>,
    what: &str,
    pred: impl FnMut(&AppSnapshot) -> bool,
) -> AppSnapshot {
    let outcome =
        tokio::time::timeout(WAIT, async { rx.wait_for(pred).await.map(|s| s.clone()) }).await;
    match outcome {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => panic!("app stopped while waiting for {what}"),
        Err(_) => panic!(
            "timed out waiting for {what}; last snapshot: {:#?}",
            *rx.borrow()
        ),
    }
}

/// Waits for a broadcast event matching `pred`; panics on timeout.
pub async fn wait_event<T: Clone + std::fmt::Debug>(
    rx: &mut tokio::sync::broadcast::Receiver<T>,
    what: &str,
    mut pred: impl FnMut(&T) -> bool,
) -> T {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            match rx.recv().await {
                Ok(event) if pred(&event) => return event,
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    panic!("missed {n} events while waiting for {what}")
                }
                Err(e) => panic!("event stream ended while waiting for {what}: {e}"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// GNOME Keyring was seen to exit under many parallel clients; D-Bus then starts a new daemon on
/// the next request, *locked*. Replacing it with an unlocked one (same on-disk keyring, same
/// password as `scripts/with-keyring.sh`) keeps the rest of the run meaningful. Test harness
/// only: users' keyrings are theirs to unlock.
pub fn restart_test_keyring_unlocked() {
    use std::io::Write;
    eprintln!("test keyring came back locked; replacing the daemon with an unlocked one");
    let mut child = std::process::Command::new("gnome-keyring-daemon")
        .args(["--replace", "--unlock", "--components=secrets"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("gnome-keyring-daemon");
    let _ = child.stdin.take().unwrap().write_all(b"kiyeovo-test");
    let _ = child.wait();
}

/// Starts `profile` joined to `bootstrap` and waits until it is part of the network.
pub async fn online(profile: &TestProfile, bootstrap: &str) -> App {
    start_online(profile.config(&[bootstrap.to_string()])).await
}

/// Starts an app with `config` and waits until it is part of the network.
pub async fn start_online(config: AppConfig) -> App {
    let app = match App::start(config.clone()).await {
        Ok(app) => app,
        // A daemon that D-Bus started again after the test keyring exited is locked, or runs
        // without our keyring directory (D-Bus starts it with the session's environment) and
        // so has no default collection at all: both are replaced by an unlocked daemon.
        Err(e)
            if e.to_string().contains("locked collection")
                || e.to_string().contains("no result found")
                || e.to_string().contains("prompt was dismissed") =>
        {
            restart_test_keyring_unlocked();
            App::start(config).await.expect("app starts")
        }
        Err(e) => panic!("app starts: {e:?}"),
    };
    let mut rx = app.snapshots();
    wait_for(&mut rx, "joined the network", |s| {
        matches!(
            s.node.as_ref().map(|n| &n.bootstrap),
            Some(BootstrapState::Succeeded { .. })
        ) && s.node.as_ref().is_some_and(|n| !n.listen_addrs.is_empty())
    })
    .await;
    app
}

/// Both add each other's card; both see the other become trusted.
pub async fn befriend(a: &App, b: &App) {
    let (mut ea, mut eb) = (a.channel().subscribe(), b.channel().subscribe());
    let view = a.channel().add_contact(&b.my_card()).await.unwrap();
    assert_eq!(view.peer_id, b.peer_id().to_string());
    b.channel().add_contact(&a.my_card()).await.unwrap();
    let (pa, pb) = (a.peer_id(), b.peer_id());
    wait_event(&mut ea, "a trusts b", |e| {
        *e == ChannelEvent::ContactTrusted { peer: pb }
    })
    .await;
    wait_event(&mut eb, "b trusts a", |e| {
        *e == ChannelEvent::ContactTrusted { peer: pa }
    })
    .await;
}

/// The epochs (above 0, the window) whose keys `app` holds for group `id`, in order.
pub async fn epochs_held(app: &App, id: &str) -> Vec<u32> {
    app.groups()
        .keys_held(id)
        .await
        .unwrap()
        .iter()
        .map(|(e, _)| *e)
        .filter(|e| *e > 0)
        .collect()
}

/// Waits until `app` has group `id` and it satisfies `pred`. The database is the truth; group
/// events only wake us up.
pub async fn wait_group(
    app: &App,
    id: &str,
    what: &str,
    pred: impl Fn(&GroupView) -> bool,
) -> GroupView {
    let mut rx = app.groups().subscribe();
    let found = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(v) = app.groups().get(id).await {
                if pred(&v) {
                    return v;
                }
            }
            match rx.recv().await {
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("group events ended while waiting for {what}: {e}"),
            }
        }
    })
    .await;
    match found {
        Ok(v) => v,
        Err(_) => panic!(
            "timed out waiting for {what}; last view: {:#?}",
            app.groups().get(id).await
        ),
    }
}

/// Waits until `app` holds messages with exactly these bodies (in any order, each once).
pub async fn wait_bodies(app: &App, id: &str, want: &[&str]) {
    let mut rx = app.chat().subscribe();
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    let outcome = tokio::time::timeout(WAIT * 2, async {
        loop {
            let mut have = group_bodies(app, id).await;
            have.sort();
            if have == want {
                return;
            }
            assert!(
                have.iter().all(|b| want.contains(b)),
                "{} holds a message it should not: {have:?}",
                app.profile()
            );
            let _ = rx.recv().await;
        }
    })
    .await;
    if outcome.is_err() {
        let have = group_bodies(app, id).await;
        panic!("{}: timed out; has {have:?}, wants {want:?}", app.profile());
    }
}

/// The bodies of `app`'s messages in group `id`, in the conversation's order.
pub async fn group_bodies(app: &App, id: &str) -> Vec<String> {
    app.chat()
        .chat(id)
        .await
        .unwrap()
        .messages
        .iter()
        .map(|m| m.body.clone())
        .collect()
}

/// The bodies of `app`'s 1:1 conversation with `peer`, in order: every message, or only the
/// outgoing (`Some(true)`) or incoming (`Some(false)`) ones.
pub async fn chat_bodies(app: &App, peer: &libp2p::PeerId, outgoing: Option<bool>) -> Vec<String> {
    app.channel()
        .messages(peer)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| outgoing.is_none_or(|o| m.outgoing == o))
        .map(|m| m.body)
        .collect()
}

/// Group timers for tests: a 6-hour window, quick ticks and re-sends.
pub fn group_config() -> GroupConfig {
    GroupConfig {
        window: Duration::from_secs(6 * 3600),
        tick: Duration::from_millis(200),
        resend: Duration::from_secs(2),
        auto_establish: false,
        ..GroupConfig::default()
    }
}

/// [`start_online`] with [`group_config`].
pub async fn start_group_app(profile: &TestProfile, boot: &str) -> App {
    let mut c = profile.config(&[boot.to_string()]);
    c.group = group_config();
    start_online(c).await
}

/// `n` fresh profiles started against `boot` and formed into an established group (`apps[0]`
/// created it).
pub async fn group_of(tag: &str, n: usize, boot: &str) -> (Vec<TestProfile>, Vec<App>, String) {
    let profiles: Vec<TestProfile> = (0..n)
        .map(|i| TestProfile::new(&format!("{tag}-{i}")))
        .collect();
    let mut apps = Vec::new();
    for p in &profiles {
        apps.push(start_group_app(p, boot).await);
    }
    let id = form_group(&apps).await;
    (profiles, apps, id)
}

/// The creator (`apps[0]`) befriends everyone, invites them, all accept, it establishes.
pub async fn form_group(apps: &[App]) -> String {
    for app in &apps[1..] {
        befriend(&apps[0], app).await;
    }
    establish_group(apps).await
}

/// [`form_group`] among people who are the creator's (`apps[0]`) contacts already.
pub async fn establish_group(apps: &[App]) -> String {
    let creator = &apps[0];
    let peers: Vec<_> = apps[1..].iter().map(|a| a.peer_id()).collect();
    let id = creator
        .groups()
        .create("Everyone", &peers, "Creator")
        .await
        .unwrap()
        .group_id;
    for app in &apps[1..] {
        wait_group(app, &id, "the invitation", |v| v.can_respond).await;
        app.groups().respond(&id, true).await.unwrap();
    }
    wait_group(creator, &id, "everyone accepted", |v| v.can_establish).await;
    creator.groups().establish(&id).await.unwrap();
    for app in apps {
        wait_group(app, &id, "active", |v| v.status == GroupStatus::Active).await;
    }
    id
}

/// Waits until every app has an open connection to every other member (the live mesh).
pub async fn wait_connected(apps: &[App]) {
    let ids: Vec<String> = apps.iter().map(|a| a.peer_id().to_string()).collect();
    for (i, app) in apps.iter().enumerate() {
        let mut rx = app.snapshots();
        let others: Vec<&String> = ids
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| p)
            .collect();
        wait_for(&mut rx, "connections to every member", |s| {
            s.node
                .as_ref()
                .is_some_and(|n| others.iter().all(|p| n.connected_peers.contains(p)))
        })
        .await;
    }
}
