//! The running app: start-up in the right order, and the service API the shell and the tests
//! call.
//!
//! Start-up order matters for "never lose data":
//! 1. lock the profile, so a second instance cannot open the same files;
//! 2. read the keyring: an identity and storage key are created only when there is no data
//!    directory content they could be missing for, so a locked or wiped keyring can never
//!    silently orphan existing data (whose data it is: the `peer-id` file beside the database);
//! 3. open the database, encrypted under the storage key (a damaged file, or one that does not
//!    open with this key, stops here, untouched; a plaintext one from 0.1 is checked against
//!    the key, then encrypted) and check it belongs to the identity;
//! 4. start the node.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{AppSnapshot, AutoBackup, DesktopSettings, NodeStatus, Phase, TrayModel};
use crate::config::{DhtMode, Limits, Timing};
use crate::conversations::ConversationId;
use crate::error::{ServiceError, StartupError};
use crate::group::chat::ChatConfig;
use crate::group::{GroupChat, GroupConfig, Groups};
use crate::identity::Identity;
use crate::keystore::{blocking as keyring, Keystore, StorageKey};
use crate::node::NodeEvent;
use crate::node::{self, Client, NodeConfig, Role};
use crate::pairwise::channel::{Channel, ChannelConfig};
use crate::profile::{self, ProfileLock};
use crate::storage::{cipher, db::DB_FILE, seal, Database, DbError};

pub(crate) const META_PEER_ID: &str = "peer_id";
/// The folder the last backup went to.
pub(crate) const SETTING_BACKUP_FOLDER: &str = "backup_folder";
const META_STORAGE_CHECK: &str = "storage_check";
const STORAGE_CHECK_AAD: &[u8] = b"kiyeovo/v1/storage-check";
const SETTING_DISPLAY_NAME: &str = "display_name";
const SETTING_BOOTSTRAP: &str = "bootstrap";
const SETTING_LISTEN_PORT: &str = "listen_port";
const SETTING_DESKTOP: &str = "desktop";
/// The longest reminder lead: the window itself is 6 hours.
const MAX_REMINDER_MINUTES: u32 = 360;

/// How to start the app. Command-line flags and environment variables fill this in.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub profile: String,
    /// Base directory for profiles; the platform data directory when `None`.
    pub data_dir: Option<PathBuf>,
    /// Bootstrap addresses from the command line / environment; when empty, the saved setting.
    pub bootstrap: Vec<String>,
    pub listen_host: IpAddr,
    /// Overrides the saved listen port.
    pub listen_port: Option<u16>,
    pub dht_mode: DhtMode,
    pub mdns: bool,
    pub limits: Limits,
    pub timing: Timing,
    /// Envelopes kept in each offline bucket (PROTOCOL.md §6).
    pub bucket_cap: usize,
    /// How often contacts' buckets are read.
    pub poll_interval: Duration,
    /// Invitation window and group timers.
    pub group: GroupConfig,
    /// Show desktop notifications (off for headless nodes and most tests).
    pub notifications: bool,
    /// The identity was just restored from its recovery phrase: the phrase was typed, so it
    /// counts as written down.
    pub phrase_typed: bool,
    /// A profile without an identity may get a new one. The desktop app sets this only once the
    /// user chose "Create my identity" on the first-run screen, so a start that raced that
    /// screen (or followed a keyring error) never makes an identity the user did not ask for.
    pub create_identity: bool,
    /// How often an automatic backup is written, when the user turned them on (a day).
    pub auto_backup_every: Duration,
}

impl AppConfig {
    pub fn new(profile: &str) -> Self {
        Self {
            profile: profile.to_string(),
            data_dir: None,
            bootstrap: Vec::new(),
            listen_host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            listen_port: None,
            dht_mode: DhtMode::Auto,
            mdns: true,
            limits: Limits::default(),
            timing: Timing::default(),
            bucket_cap: crate::delivery::bucket::DEFAULT_CAP,
            poll_interval: Duration::from_secs(30),
            group: GroupConfig::default(),
            notifications: true,
            phrase_typed: false,
            create_identity: true,
            auto_backup_every: Duration::from_secs(24 * 3600),
        }
    }
}

/// A started profile: database, keys and a running node.
pub struct App {
    profile: String,
    dir: PathBuf,
    db: Database,
    identity: Arc<Identity>,
    pub(crate) storage_key: Arc<StorageKey>,
    /// Wakes the automatic backups' timer when their setting changed.
    backup_changed: Arc<tokio::sync::Notify>,
    channel: Arc<Channel>,
    groups: Arc<Groups>,
    chat: Arc<GroupChat>,
    client: Client,
    snapshot: watch::Sender<AppSnapshot>,
    desktop: watch::Sender<DesktopSettings>,
    /// Held across each change of the desktop settings: a mute read, changed and saved while
    /// another change is saved would undo it.
    desktop_writes: tokio::sync::Mutex<()>,
    focused: watch::Sender<bool>,
    open: tokio::sync::broadcast::Sender<ConversationId>,
    /// Tells the notifier to take its notifications off the screen and stop.
    stop_notifier: watch::Sender<bool>,
    notifier: std::sync::Mutex<Option<JoinHandle<()>>>,
    tasks: Vec<JoinHandle<()>>,
    _lock: ProfileLock,
}

impl App {
    pub async fn start(config: AppConfig) -> Result<App, StartupError> {
        let dir = profile::data_dir(&config.profile, config.data_dir.as_deref())?;
        let lock = ProfileLock::acquire(&config.profile, &dir)?;
        crate::restore::finish_interrupted(&config.profile, &dir).await?;
        crate::storage::snapshot::remove_leftovers(&dir);
        // Before the database opens (and migrations copy rows), and again after (its -wal and
        // -shm files exist only then).
        profile::make_private(&dir);
        let db_path = dir.join(DB_FILE);
        let keys = load_keys(&config.profile, &dir, &db_path, config.create_identity).await?;
        let db = Database::open(&db_path, &keys.storage_key).await?;
        profile::make_private(&dir);
        let mut warnings = Vec::new();
        let restored = config.phrase_typed;
        let (identity, storage_key) =
            reconcile_keys(keys, restored, &dir, &db, &mut warnings).await?;
        crate::contacts::store::block_weak_keys(db.pool()).await?;
        tracing::info!(profile = %config.profile, peer_id = %identity.peer_id(), dir = %dir.display(), "profile opened");

        let display_name: String = db.setting(SETTING_DISPLAY_NAME).await?.unwrap_or_default();
        let bootstrap_text: Vec<String> = if config.bootstrap.is_empty() {
            db.setting(SETTING_BOOTSTRAP).await?.unwrap_or_default()
        } else {
            config.bootstrap.clone()
        };
        let mut bootstrap = Vec::new();
        for text in bootstrap_text.iter().filter(|t| !t.trim().is_empty()) {
            match node::config::parse_bootstrap(text) {
                Ok((_, addr)) => bootstrap.push(addr),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring bootstrap address");
                    warnings.push(format!("Ignored bootstrap address: {e}"));
                }
            }
        }
        let block_invites: bool = db
            .setting(crate::group::service::SETTING_BLOCK_INVITES)
            .await?
            .unwrap_or(false);
        let rotate_days: u32 = match db
            .setting(crate::group::service::SETTING_ROTATE_DAYS)
            .await?
        {
            Some(days) => days,
            None => (config.group.rotate_every.as_secs() / (24 * 3600)) as u32,
        };
        let saved_port: Option<u16> = db.setting(SETTING_LISTEN_PORT).await?;
        let desktop: DesktopSettings = db.setting(SETTING_DESKTOP).await?.unwrap_or_default();
        if config.phrase_typed {
            db.set_setting(crate::restore::SETTING_PHRASE_CONFIRMED, &true)
                .await?;
            db.set_setting(crate::restore::SETTING_IDENTITY_RESTORED, &true)
                .await?;
        }
        let phrase_confirmed: bool = db
            .setting(crate::restore::SETTING_PHRASE_CONFIRMED)
            .await?
            .unwrap_or(false);
        let listen_port = config.listen_port.or(saved_port).unwrap_or(0);

        let mut node_config = NodeConfig::new(identity.libp2p_keypair(), Role::Peer);
        node_config.listen_host = config.listen_host;
        node_config.listen_port = listen_port;
        node_config.bootstrap = bootstrap.clone();
        node_config.dht_mode = config.dht_mode;
        node_config.mdns = config.mdns;
        node_config.limits = config.limits;
        node_config.timing = config.timing;
        let node = node::new(node_config)?;

        let initial = AppSnapshot {
            profile: config.profile.clone(),
            phase: Phase::Running,
            display_name,
            block_invites,
            rotate_days,
            bootstrap: bootstrap.iter().map(|a| a.to_string()).collect(),
            node: Some(node.status.borrow().clone()),
            error: None,
            warnings,
            desktop: desktop.clone(),
            recovery: crate::restore::status(&identity, phrase_confirmed),
        };
        let (snapshot, _) = watch::channel(initial);
        let identity = Arc::new(identity);
        let storage_key = Arc::new(storage_key);
        let channel = Channel::new(
            identity.clone(),
            db.clone(),
            storage_key.clone(),
            node.client.clone(),
            ChannelConfig {
                bucket_cap: config.bucket_cap,
                max_record_bytes: config.limits.max_record_bytes,
                poll_interval: config.poll_interval,
                republish_interval: config.timing.republish,
            },
        );
        let groups = Groups::new(
            identity.clone(),
            db.clone(),
            storage_key.clone(),
            channel.clone(),
            node.client.clone(),
            config.group,
        );
        let chat = GroupChat::new(
            identity.clone(),
            db.clone(),
            storage_key.clone(),
            node.client.clone(),
            groups.clone(),
            ChatConfig {
                bucket_cap: config.bucket_cap,
                max_record_bytes: config.limits.max_record_bytes,
                poll_interval: config.poll_interval,
                republish_interval: config.timing.republish,
                bucket_write_delay: Duration::from_millis(250),
            },
        );
        let (desktop, _) = watch::channel(desktop);
        let (focused, _) = watch::channel(false);
        let (open, _) = tokio::sync::broadcast::channel(16);
        let (stop_notifier, _) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(node.event_loop.run())];
        let mut notifier = None;
        if config.notifications {
            notifier = Some(tokio::spawn(crate::desktop::notifier::run(
                crate::desktop::notifier::NotifierParts {
                    groups: groups.clone(),
                    channel: channel.clone(),
                    db: db.clone(),
                    group_events: groups.subscribe(),
                    channel_events: channel.subscribe(),
                    chat_events: chat.subscribe(),
                    settings: desktop.subscribe(),
                    focused: focused.subscribe(),
                    open: open.clone(),
                    tick: Duration::from_secs(30),
                    stop: stop_notifier.subscribe(),
                },
            )));
        }
        // Subscribed before anything runs, so no event is missed.
        let channel_events = channel.subscribe();
        let group_events = groups.subscribe();
        tasks.push(tokio::spawn(dispatch(
            node.events,
            channel.clone(),
            groups.clone(),
            chat.clone(),
        )));
        tasks.push(tokio::spawn(channel.clone().run()));
        tasks.push(tokio::spawn(groups.clone().run(channel_events)));
        tasks.push(tokio::spawn(chat.clone().run(group_events)));
        tasks.push(tokio::spawn(mirror_status(
            node.status.clone(),
            snapshot.clone(),
        )));
        let backup_changed = Arc::new(tokio::sync::Notify::new());
        tasks.push(tokio::spawn(crate::backup::auto::run(
            crate::backup::auto::Parts {
                db: db.clone(),
                identity: identity.clone(),
                storage_key: storage_key.clone(),
                profile: config.profile.clone(),
                every: config.auto_backup_every,
                changed: backup_changed.clone(),
            },
        )));
        if saved_port.is_none() && config.listen_port.is_none() {
            tasks.push(tokio::spawn(remember_port(node.status, db.clone())));
        }

        Ok(App {
            profile: config.profile,
            dir,
            db,
            identity,
            storage_key,
            backup_changed,
            channel,
            groups,
            chat,
            client: node.client,
            snapshot,
            desktop,
            desktop_writes: tokio::sync::Mutex::new(()),
            focused,
            open,
            stop_notifier,
            notifier: std::sync::Mutex::new(notifier),
            tasks,
            _lock: lock,
        })
    }

    pub fn profile(&self) -> &str {
        &self.profile
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    pub fn peer_id(&self) -> libp2p::PeerId {
        self.identity.peer_id()
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Contacts and 1:1 messages.
    pub fn channel(&self) -> &Arc<Channel> {
        &self.channel
    }

    /// Groups: invitations, roster, establishment.
    pub fn groups(&self) -> &Arc<Groups> {
        &self.groups
    }

    /// Group messages.
    pub fn chat(&self) -> &Arc<GroupChat> {
        &self.chat
    }

    /// Our display name as the creator of a group shows it.
    pub fn display_name(&self) -> String {
        self.snapshot.borrow().display_name.clone()
    }

    /// How often groups we are the admin of get a new key (days; 0 = never).
    pub async fn set_rotate_days(&self, days: u32) -> Result<(), ServiceError> {
        let max = crate::group::service::MAX_ROTATE_DAYS;
        if days > max {
            return Err(ServiceError::InvalidInput(format!(
                "A new key at least every {max} days."
            )));
        }
        self.groups.set_rotate_days(days).await?;
        self.snapshot.send_modify(|s| s.rotate_days = days);
        Ok(())
    }

    /// The global "drop every group invitation" setting.
    pub async fn set_block_invites(&self, blocked: bool) -> Result<(), ServiceError> {
        self.groups.set_invites_blocked(blocked).await?;
        self.snapshot.send_modify(|s| s.block_invites = blocked);
        Ok(())
    }

    fn phrase_seed(&self) -> Result<&crate::recovery::RecoverySeed, ServiceError> {
        self.identity.recovery().ok_or_else(|| {
            ServiceError::InvalidInput(
                "This profile was made before recovery phrases and has none.".into(),
            )
        })
    }

    /// The 24 words of our recovery phrase. Wiped from memory when dropped.
    pub fn recovery_phrase(&self) -> Result<zeroize::Zeroizing<Vec<String>>, ServiceError> {
        let seed = self.phrase_seed()?;
        Ok(zeroize::Zeroizing::new(
            seed.words().into_iter().map(String::from).collect(),
        ))
    }

    /// Where backups go: the folder last used, else "Kiyeovo backups" in the user's Documents
    /// (or home) folder.
    pub async fn backup_folder(&self) -> PathBuf {
        if let Ok(Some(folder)) = self.db.setting::<PathBuf>(SETTING_BACKUP_FOLDER).await {
            return folder;
        }
        directories::UserDirs::new()
            .map(|u| {
                u.document_dir()
                    .unwrap_or_else(|| u.home_dir())
                    .join("Kiyeovo backups")
            })
            .unwrap_or_else(|| self.dir.join("backups"))
    }

    /// Writes an encrypted backup of everything this profile holds into `folder` (see
    /// [`crate::backup`]), and remembers the folder.
    pub async fn back_up(
        &self,
        folder: &Path,
        passphrase: &str,
    ) -> Result<crate::backup::Written, crate::backup::BackupError> {
        if folder.as_os_str().is_empty() || !folder.is_absolute() {
            return Err(crate::backup::BackupError::Io(format!(
                "{:?} is not a full folder path",
                folder.display().to_string()
            )));
        }
        let written = crate::backup::write(
            &self.db,
            &self.identity,
            &self.storage_key,
            &self.profile,
            folder,
            passphrase,
            crate::time::now_ms(),
        )
        .await?;
        if let Err(e) = self
            .db
            .set_setting(SETTING_BACKUP_FOLDER, &folder.to_path_buf())
            .await
        {
            tracing::warn!(error = %e, "could not remember the backup folder");
        }
        Ok(written)
    }

    /// The automatic backups' setting (off, into [`App::backup_folder`], until turned on).
    pub async fn auto_backup(&self) -> AutoBackup {
        match self
            .db
            .setting::<AutoBackup>(crate::backup::auto::SETTING_AUTO_BACKUP)
            .await
        {
            Ok(Some(setting)) => setting,
            _ => AutoBackup {
                enabled: false,
                folder: self.backup_folder().await.display().to_string(),
                keep: crate::backup::auto::DEFAULT_KEEP,
                last_at: None,
                last_error: None,
            },
        }
    }

    /// Turns automatic backups on (into `folder`, keeping the newest `keep`; the passphrase is
    /// needed the first time and is kept in the keyring) or off (the passphrase is removed).
    pub async fn set_auto_backup(
        &self,
        enabled: bool,
        folder: &str,
        keep: u32,
        passphrase: Option<&str>,
    ) -> Result<AutoBackup, crate::backup::BackupError> {
        use crate::backup::{auto, file, BackupError};
        let mut setting = self.auto_backup().await;
        let store = Keystore::new(&self.profile);
        let keyring_err = |e: crate::keystore::KeyringError| BackupError::Io(e.to_string());
        if enabled {
            let folder = folder.trim();
            if folder.is_empty() || !Path::new(folder).is_absolute() {
                return Err(BackupError::Io(format!(
                    "{folder:?} is not a full folder path"
                )));
            }
            if !(1..=auto::MAX_KEEP).contains(&keep) {
                return Err(BackupError::Io(format!(
                    "keep between 1 and {} backups",
                    auto::MAX_KEEP
                )));
            }
            match passphrase.filter(|p| !p.is_empty()) {
                Some(p) if p.chars().count() < file::MIN_PASSPHRASE_CHARS => {
                    return Err(BackupError::PassphraseTooShort)
                }
                Some(p) if p.len() > file::MAX_PASSPHRASE_BYTES => {
                    return Err(BackupError::PassphraseTooLong)
                }
                Some(p) => {
                    let (s, p) = (store.clone(), zeroize::Zeroizing::new(p.to_string()));
                    keyring(move || s.store_backup_passphrase(&p))
                        .await
                        .map_err(keyring_err)?;
                }
                None => {
                    let s = store.clone();
                    if !keyring(move || s.load_backup_passphrase().map(|p| p.is_some()))
                        .await
                        .map_err(keyring_err)?
                    {
                        return Err(BackupError::PassphraseTooShort);
                    }
                }
            }
            if !setting.enabled || setting.folder != folder {
                // A new folder or a fresh start: the first backup now.
                setting.last_at = None;
            }
            setting.folder = folder.to_string();
            setting.keep = keep;
        } else {
            keyring(move || store.delete_backup_passphrase())
                .await
                .map_err(keyring_err)?;
        }
        setting.enabled = enabled;
        setting.last_error = None;
        self.db
            .set_setting(auto::SETTING_AUTO_BACKUP, &setting)
            .await
            .map_err(|e| BackupError::Database(e.to_string()))?;
        self.backup_changed.notify_one();
        Ok(setting)
    }

    /// Three words of the phrase typed back; when right, the reminder ends.
    pub async fn confirm_recovery_phrase(
        &self,
        answers: &[crate::api::PhraseAnswer],
    ) -> Result<(), ServiceError> {
        let seed = self.phrase_seed()?;
        crate::restore::check_answers(seed, answers)
            .map_err(|e| ServiceError::InvalidInput(e.to_string()))?;
        self.db
            .set_setting(crate::restore::SETTING_PHRASE_CONFIRMED, &true)
            .await?;
        self.snapshot
            .send_modify(|s| s.recovery = crate::api::RecoveryStatus::Confirmed);
        Ok(())
    }

    /// Our contact card with the current display name and addresses.
    pub fn my_card(&self) -> String {
        let snapshot = self.snapshot.borrow().clone();
        let mut addrs = snapshot
            .node
            .map(|n| [n.external_addrs, n.listen_addrs].concat())
            .unwrap_or_default();
        // Each once, and no more than a card may carry (contacts refuse a longer one): the
        // addresses confirmed reachable from outside first, then those we listen on (the relay
        // circuits among them, which libp2p lists after our own).
        let mut seen = std::collections::HashSet::new();
        addrs.retain(|a| seen.insert(a.clone()));
        addrs.truncate(crate::contacts::card::MAX_ADDRS);
        self.channel.my_card(&snapshot.display_name, addrs)
    }

    /// Our card as a QR code (SVG).
    pub fn my_card_qr(&self) -> Option<String> {
        crate::contacts::qr::card_svg(&self.my_card())
    }

    /// Saves our card as a text file in `dir` (the Downloads folder when `None`) and returns
    /// the file's path, for sending by e-mail or a file share.
    pub async fn save_my_card(&self, dir: Option<PathBuf>) -> Result<PathBuf, ServiceError> {
        let dir = dir
            .or_else(|| {
                directories::UserDirs::new().map(|u| {
                    u.download_dir()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| u.home_dir().to_path_buf())
                })
            })
            .ok_or_else(|| {
                ServiceError::InvalidInput("No Downloads or home folder found.".into())
            })?;
        let path = dir.join(format!("kiyeovo-card-{}.txt", self.profile));
        tokio::fs::write(&path, format!("{}\n", self.my_card()))
            .await
            .map_err(|e| {
                ServiceError::InvalidInput(format!("Cannot write {}: {e}", path.display()))
            })?;
        Ok(path)
    }

    /// Saves the desktop settings; turning start-at-login on or off takes effect at once.
    pub async fn set_desktop_settings(
        &self,
        settings: DesktopSettings,
    ) -> Result<DesktopSettings, ServiceError> {
        let _writing = self.desktop_writes.lock().await;
        self.save_desktop_settings(settings).await
    }

    async fn save_desktop_settings(
        &self,
        mut settings: DesktopSettings,
    ) -> Result<DesktopSettings, ServiceError> {
        if settings.expiry_reminder_minutes > MAX_REMINDER_MINUTES {
            return Err(ServiceError::InvalidInput(format!(
                "The reminder can come at most {MAX_REMINDER_MINUTES} minutes (the whole window) before an invitation expires."
            )));
        }
        settings.muted_groups.sort();
        settings.muted_groups.dedup();
        settings.muted_contacts.sort();
        settings.muted_contacts.dedup();
        let previous = self.desktop.borrow().clone();
        if settings.autostart != previous.autostart {
            let (enabled, profile) = (settings.autostart, self.profile.clone());
            tokio::task::spawn_blocking(move || crate::desktop::autostart::set(enabled, &profile))
                .await
                .map_err(|e| ServiceError::InvalidInput(e.to_string()))?
                .map_err(|e| ServiceError::InvalidInput(format!("Start at login: {e}")))?;
        }
        self.db.set_setting(SETTING_DESKTOP, &settings).await?;
        self.desktop.send_replace(settings.clone());
        self.snapshot.send_modify(|s| s.desktop = settings.clone());
        Ok(settings)
    }

    /// Mutes or unmutes one group's notifications.
    pub async fn set_group_muted(
        &self,
        group_id: &str,
        muted: bool,
    ) -> Result<DesktopSettings, ServiceError> {
        let _writing = self.desktop_writes.lock().await;
        let mut settings = self.desktop.borrow().clone();
        settings.muted_groups.retain(|g| g != group_id);
        if muted {
            settings.muted_groups.push(group_id.to_string());
        }
        self.save_desktop_settings(settings).await
    }

    /// Mutes or unmutes the notifications of one contact's messages.
    pub async fn set_contact_muted(
        &self,
        peer: &libp2p::PeerId,
        muted: bool,
    ) -> Result<DesktopSettings, ServiceError> {
        // Only a contact can be muted (an unmute of one removed since is always fine).
        if muted
            && crate::contacts::store::contact(self.db.pool(), peer)
                .await?
                .is_none()
        {
            return Err(ServiceError::InvalidInput(format!(
                "{peer} is not one of your contacts."
            )));
        }
        let peer = peer.to_string();
        let _writing = self.desktop_writes.lock().await;
        let mut settings = self.desktop.borrow().clone();
        settings.muted_contacts.retain(|p| *p != peer);
        if muted {
            settings.muted_contacts.push(peer);
        }
        self.save_desktop_settings(settings).await
    }

    /// The shell reports whether the window has the focus (new-message notifications are only
    /// shown when it does not).
    pub fn set_window_focused(&self, focused: bool) {
        self.focused.send_replace(focused);
    }

    /// Conversations the user asked to see from a notification.
    pub fn open_requests(&self) -> tokio::sync::broadcast::Receiver<ConversationId> {
        self.open.subscribe()
    }

    /// What the tray shows now.
    pub async fn tray_model(&self) -> Result<TrayModel, ServiceError> {
        let groups = self
            .groups
            .list()
            .await
            .map_err(|e| ServiceError::InvalidInput(e.to_string()))?;
        // Blocked contacts are not waiting for an answer.
        let contacts_unread = crate::contacts::store::unread_from_unblocked(self.db.pool()).await?;
        Ok(crate::desktop::tray::tray_model(
            &groups,
            contacts_unread,
            crate::time::now_ms(),
        ))
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The whole UI state; changes are pushed through the returned receiver.
    pub fn snapshots(&self) -> watch::Receiver<AppSnapshot> {
        self.snapshot.subscribe()
    }

    pub fn snapshot(&self) -> AppSnapshot {
        self.snapshot.borrow().clone()
    }

    /// Sets and saves the name contacts will see.
    pub async fn set_display_name(&self, name: &str) -> Result<String, ServiceError> {
        let name = validate_display_name(name)?;
        self.db.set_setting(SETTING_DISPLAY_NAME, &name).await?;
        self.snapshot.send_modify(|s| s.display_name = name.clone());
        Ok(name)
    }

    /// Saves the bootstrap addresses (one per entry, each ending in `/p2p/<peer id>`) and joins
    /// through them at once. Blank entries are ignored; an empty list means LAN only.
    pub async fn set_bootstrap(&self, addrs: Vec<String>) -> Result<Vec<String>, ServiceError> {
        let mut parsed = Vec::new();
        for text in addrs.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
            let (_, addr) = node::config::parse_bootstrap(text)
                .map_err(|e| ServiceError::InvalidInput(e.to_string()))?;
            parsed.push(addr);
        }
        let saved: Vec<String> = parsed.iter().map(|a| a.to_string()).collect();
        self.db.set_setting(SETTING_BOOTSTRAP, &saved).await?;
        self.client.set_bootstrap(parsed).await?;
        self.snapshot.send_modify(|s| s.bootstrap = saved.clone());
        Ok(saved)
    }

    /// Stops the node and closes the database cleanly (for holders of a shared `App`).
    pub async fn close(&self) {
        // An invitation's Accept button must not outlive the app that would act on it.
        self.stop_notifier.send_replace(true);
        let notifier = self.notifier.lock().ok().and_then(|mut n| n.take());
        if let Some(notifier) = notifier {
            if tokio::time::timeout(Duration::from_secs(2), notifier)
                .await
                .is_err()
            {
                tracing::warn!("notifications did not close in time");
            }
        }
        self.client.shutdown().await;
        for task in &self.tasks {
            task.abort();
        }
        self.db.close().await;
        tracing::info!(profile = %self.profile, "profile closed");
    }

    /// [`App::close`], then releases the profile lock.
    pub async fn shutdown(self) {
        self.close().await;
    }
}

fn validate_display_name(name: &str) -> Result<String, ServiceError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ServiceError::InvalidInput(
            "The display name cannot be empty.".into(),
        ));
    }
    // The same rule contacts apply when they read our card.
    crate::contacts::card::check_display_name(name)
        .map_err(|e| ServiceError::InvalidInput(e.to_string()))?;
    Ok(name.to_string())
}

/// Our own peer id, in the clear beside the encrypted database: it names whose data this is when
/// the keyring has lost the keys that would open it (our card carries it anyway).
const PEER_ID_FILE: &str = "peer-id";

/// The peer id the data directory's `peer-id` file names, if any.
pub(crate) fn recorded_owner(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(PEER_ID_FILE))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// Writes a file only its owner can read (like everything in the data directory).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// The keys from the keyring, before the database opens (it is encrypted under the storage key).
struct Keys {
    identity: Identity,
    /// Made on this start: there was none, and no data it could belong to.
    new_identity: bool,
    storage_key: StorageKey,
}

/// Loads the identity and storage key, making them on a first start, and refuses to make new
/// ones over existing data (see module docs). A plaintext database (version 0.1) is checked
/// against the storage key here, before it is encrypted under it.
async fn load_keys(
    profile: &str,
    dir: &Path,
    db_path: &Path,
    create: bool,
) -> Result<Keys, StartupError> {
    let store = Keystore::new(profile);
    let s = store.clone();
    let existing = keyring(move || s.load_identity()).await?;
    let s = store.clone();
    let stored_key = keyring(move || s.load_storage_key()).await?;
    let has_data = db_path.exists();
    let plaintext = has_data
        && cipher::is_plaintext(db_path).map_err(|e| DbError::Open {
            path: db_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let meta = |key: &'static str| async move {
        if plaintext {
            cipher::plaintext_meta(db_path, key).await
        } else {
            Ok(None)
        }
    };
    let data_owner = match meta(META_PEER_ID).await? {
        Some(peer) => Some(peer),
        None => recorded_owner(dir),
    };
    // A plaintext file without our peer id never finished a first start: nothing to protect.
    let owned = has_data && (!plaintext || data_owner.is_some());
    let (identity, new_identity) = match existing {
        // Checked before anything touches the file (a plaintext one is encrypted next).
        Some(identity)
            if data_owner
                .as_ref()
                .is_some_and(|p| *p != identity.peer_id().to_string()) =>
        {
            return Err(StartupError::IdentityMismatch {
                keyring: identity.peer_id().to_string(),
                database: data_owner.unwrap_or_default(),
                path: db_path.to_path_buf(),
            })
        }
        Some(identity) => (identity, false),
        None if owned => {
            return Err(StartupError::IdentityMissing {
                profile: profile.to_string(),
                peer_id: data_owner.unwrap_or_else(|| "(unknown)".into()),
                path: db_path.to_path_buf(),
            })
        }
        None if !create => {
            return Err(StartupError::FirstRunNeeded {
                profile: profile.to_string(),
            })
        }
        None => {
            let s = store.clone();
            let identity = keyring(move || {
                let identity = Identity::new_with_phrase();
                s.store_identity(&identity).map(|()| identity)
            })
            .await?;
            tracing::info!(peer_id = %identity.peer_id(), "created a new identity");
            (identity, true)
        }
    };
    let storage_check = meta(META_STORAGE_CHECK).await?;
    let storage_key = match stored_key {
        Some(key) => key,
        None if owned && (!plaintext || storage_check.is_some()) => {
            return Err(StartupError::StorageKeyMissing {
                profile: profile.to_string(),
            })
        }
        None => {
            let s = store.clone();
            keyring(move || s.create_storage_key()).await?
        }
    };
    if let Some(check) = storage_check {
        let sealed = data_encoding::BASE64
            .decode(check.as_bytes())
            .unwrap_or_default();
        if seal::open(&storage_key, STORAGE_CHECK_AAD, &sealed).is_err() {
            return Err(StartupError::StorageKeyMismatch {
                path: db_path.to_path_buf(),
            });
        }
    }
    Ok(Keys {
        identity,
        new_identity,
        storage_key,
    })
}

/// Checks the open database belongs to the identity in the keyring, and records whose it is.
async fn reconcile_keys(
    keys: Keys,
    // Restored from a recovery phrase just now: an empty new database is what is expected.
    restored: bool,
    dir: &Path,
    db: &Database,
    warnings: &mut Vec<String>,
) -> Result<(Identity, StorageKey), StartupError> {
    let Keys {
        identity,
        new_identity,
        storage_key,
    } = keys;
    match db.meta(META_PEER_ID).await? {
        Some(peer_id) if identity.peer_id().to_string() != peer_id => {
            return Err(StartupError::IdentityMismatch {
                keyring: identity.peer_id().to_string(),
                database: peer_id,
                path: db.path().to_path_buf(),
            })
        }
        Some(_) => {}
        None => {
            if db.was_created() && !new_identity && !restored {
                let notice = "The database was missing, so a new empty one was created. Your identity is unchanged.";
                tracing::warn!("{notice}");
                warnings.push(notice.to_string());
            }
        }
    }
    if db.meta(META_STORAGE_CHECK).await?.is_none() {
        let sealed = seal::seal(&storage_key, STORAGE_CHECK_AAD, b"ok");
        db.set_meta(META_STORAGE_CHECK, &data_encoding::BASE64.encode(&sealed))
            .await?;
    }
    let peer = identity.peer_id().to_string();
    db.set_meta(META_PEER_ID, &peer).await?;
    if let Err(e) = write_private(&dir.join(PEER_ID_FILE), format!("{peer}\n").as_bytes()) {
        tracing::warn!(error = %e, "could not write the profile's peer-id file");
    }
    Ok((identity, storage_key))
}

/// Hands what the network delivered to whoever handles it: direct payloads to the pairwise
/// channel, gossip to group messaging.
async fn dispatch(
    mut events: tokio::sync::mpsc::Receiver<NodeEvent>,
    channel: Arc<Channel>,
    groups: Arc<Groups>,
    chat: Arc<GroupChat>,
) {
    while let Some(event) = events.recv().await {
        match event {
            NodeEvent::Direct { peer, payload } => match payload.split_first() {
                Some((&crate::group::chat::TAG_WANT, rest)) => chat.handle_want(peer, rest).await,
                Some((&crate::group::chat::TAG_RELAYED, rest)) => {
                    chat.handle_relayed(peer, rest).await
                }
                Some((&crate::group::service::TAG_GROUP_CONTROL, rest)) => {
                    groups.handle_direct(peer, rest).await
                }
                _ => channel.handle_direct(peer, &payload).await,
            },
            NodeEvent::Gossip {
                source,
                message_id,
                topic,
                data,
            } => chat.handle_gossip(source, message_id, topic, data).await,
        }
    }
}

/// Copies every node status change into the app snapshot.
async fn mirror_status(
    mut status: watch::Receiver<NodeStatus>,
    snapshot: watch::Sender<AppSnapshot>,
) {
    while status.changed().await.is_ok() {
        let next = status.borrow_and_update().clone();
        snapshot.send_modify(|s| s.node = Some(next));
    }
}

/// Saves the TCP port the OS picked on first start, so the profile keeps its port (and the
/// addresses contacts have for it) across restarts.
async fn remember_port(mut status: watch::Receiver<NodeStatus>, db: Database) {
    loop {
        let port = status
            .borrow_and_update()
            .listen_addrs
            .iter()
            .find_map(|a| {
                a.parse::<libp2p::Multiaddr>()
                    .ok()?
                    .iter()
                    .find_map(|p| match p {
                        libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                        _ => None,
                    })
            });
        if let Some(port) = port {
            if let Err(e) = db.set_setting(SETTING_LISTEN_PORT, &port).await {
                tracing::warn!(error = %e, "could not save the listen port");
            }
            return;
        }
        if status.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_checked() {
        assert_eq!(validate_display_name("  Ana  ").unwrap(), "Ana");
        assert!(validate_display_name("   ").is_err());
        assert!(validate_display_name(&"x".repeat(65)).is_err());
        assert!(validate_display_name("a\u{7}b").is_err());
        assert!(validate_display_name("An\u{202e}a").is_err());
    }
}
