//! What the shell keeps: the running app (once started) and the last snapshot shown.

use std::sync::{Arc, Mutex, OnceLock};

use kiyeovo_core::api::{
    events, AppSnapshot, ContactChanged, DesktopSettings, ErrorCode, GroupChanged,
    GroupChatChanged, Phase, RecoveryStatus, TrayModel, UiError,
};
use kiyeovo_core::service::{App, AppConfig};
use tauri::{AppHandle, Emitter, Manager};

pub struct ShellState {
    app: OnceLock<Arc<App>>,
    /// Set while a new profile waits on the first-run screen; the choice is sent through it.
    first_run: Mutex<Option<FirstRun>>,
    current: Mutex<AppSnapshot>,
    /// What the tray shows now (also read by the E2E suite through a command).
    tray: Mutex<TrayModel>,
    /// Whether the "still running in the tray" notice was given this run.
    pub hidden_notice_given: std::sync::atomic::AtomicBool,
}

impl ShellState {
    pub fn new(profile: &str) -> Self {
        Self {
            app: OnceLock::new(),
            first_run: Mutex::new(None),
            current: Mutex::new(AppSnapshot {
                profile: profile.to_string(),
                phase: Phase::Starting,
                display_name: String::new(),
                block_invites: false,
                rotate_days: 7,
                bootstrap: Vec::new(),
                node: None,
                error: None,
                warnings: Vec::new(),
                desktop: DesktopSettings::default(),
                recovery: RecoveryStatus::NoPhrase,
            }),
            tray: Mutex::new(TrayModel::default()),
            hidden_notice_given: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn tray_model(&self) -> TrayModel {
        self.tray
            .lock()
            .map(|t| t.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    pub fn set_tray_model(&self, model: TrayModel) {
        match self.tray.lock() {
            Ok(mut t) => *t = model,
            Err(poisoned) => *poisoned.into_inner() = model,
        }
    }

    pub fn app(&self) -> Option<Arc<App>> {
        self.app.get().cloned()
    }

    pub fn snapshot(&self) -> AppSnapshot {
        self.current
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn set(&self, snapshot: AppSnapshot) {
        match self.current.lock() {
            Ok(mut s) => *s = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
    }

    /// The first-run screen's choice: start with a new identity (`typed_phrase` false), or
    /// with the one a phrase just restored. Refused when no first run is waiting.
    pub fn first_run(&self) -> Result<FirstRun, UiError> {
        let taken = match self.first_run.lock() {
            Ok(mut f) => f.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        taken.ok_or_else(|| UiError {
            code: ErrorCode::InvalidInput,
            message: "This profile is already set up.".into(),
            hint: "Restore into a new profile: start Kiyeovo with --profile NAME.".into(),
        })
    }

    /// Puts a first run back (its restore failed; the screen stays).
    pub fn first_run_again(&self, first: FirstRun) {
        match self.first_run.lock() {
            Ok(mut f) => *f = Some(first),
            Err(poisoned) => *poisoned.into_inner() = Some(first),
        }
    }

    pub async fn close(&self) {
        if let Some(app) = self.app() {
            app.close().await;
        }
    }
}

/// Stores and pushes a snapshot to the window.
fn publish(handle: &AppHandle, snapshot: AppSnapshot) {
    handle.state::<ShellState>().set(snapshot.clone());
    if let Err(e) = handle.emit(events::APP_SNAPSHOT, snapshot) {
        tracing::warn!(error = %e, "cannot send state to the window");
    }
}

/// Tells the window which contact changed; it re-reads that contact's data.
async fn forward_contact_events(
    handle: AppHandle,
    mut events: tokio::sync::broadcast::Receiver<kiyeovo_core::pairwise::channel::ChannelEvent>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let peer_id = match events.recv().await {
            Ok(event) => event.peer().to_string(),
            // Missed some: an empty id asks the window to re-read everything.
            Err(RecvError::Lagged(_)) => String::new(),
            Err(RecvError::Closed) => break,
        };
        let _ = handle.emit(events::CONTACT_CHANGED, ContactChanged { peer_id });
    }
}

/// Tells the window which group changed; it re-reads it.
async fn forward_group_events(
    handle: AppHandle,
    mut events: tokio::sync::broadcast::Receiver<kiyeovo_core::group::GroupEvent>,
) {
    use kiyeovo_core::group::GroupEvent;
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let group_id = match events.recv().await {
            Ok(GroupEvent::Changed { group_id } | GroupEvent::Invited { group_id }) => {
                kiyeovo_core::group::store::hex(group_id)
            }
            Err(RecvError::Lagged(_)) => String::new(),
            Err(RecvError::Closed) => break,
        };
        let _ = handle.emit(events::GROUP_CHANGED, GroupChanged { group_id });
    }
}

/// Tells the window which group's conversation changed.
async fn forward_chat_events(
    handle: AppHandle,
    mut events: tokio::sync::broadcast::Receiver<kiyeovo_core::group::ChatEvent>,
) {
    use kiyeovo_core::group::ChatEvent;
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let group_id = match events.recv().await {
            Ok(ChatEvent::Received { group_id, .. } | ChatEvent::Changed { group_id }) => {
                kiyeovo_core::group::store::hex(group_id)
            }
            Err(RecvError::Lagged(_)) => String::new(),
            Err(RecvError::Closed) => break,
        };
        let _ = handle.emit(events::GROUP_CHAT_CHANGED, GroupChatChanged { group_id });
    }
}

/// A notification was clicked: show the window on that conversation.
async fn forward_open_requests(
    handle: AppHandle,
    mut requests: tokio::sync::broadcast::Receiver<kiyeovo_core::conversations::ConversationId>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match requests.recv().await {
            Ok(about) => {
                let h = handle.clone();
                let _ =
                    handle.run_on_main_thread(move || crate::window::open_conversation(&h, &about));
            }
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => break,
        }
    }
}

/// Shows why the profile could not start (the window's error screen) — in a window made for it
/// if there was none (a start at login, or after the restart of restart.rs), so the failure is
/// not hidden behind a tray icon whose node never started.
fn failed(handle: &AppHandle, error: UiError) {
    let mut snapshot = handle.state::<ShellState>().snapshot();
    snapshot.phase = Phase::Failed;
    snapshot.error = Some(error);
    publish(handle, snapshot);
    let h = handle.clone();
    let _ = handle.run_on_main_thread(move || crate::window::show(&h));
}

/// A new profile waiting on the first-run screen: where it lives, and how to go on.
pub struct FirstRun {
    pub profile: String,
    pub data_dir: Option<std::path::PathBuf>,
    pub go: tokio::sync::oneshot::Sender<Chosen>,
}

/// What the first-run screen chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// "Create my identity".
    New,
    /// An identity restored from its phrase (typed, so it needs no reminder).
    Phrase,
    /// A whole profile restored from a backup file.
    Backup,
}

/// Starts the profile and then forwards every state change to the window. A new profile first
/// waits for the first-run screen's choice (a new identity, or one restored from its phrase).
pub async fn start(handle: AppHandle, mut config: AppConfig) {
    match kiyeovo_core::restore::is_new(&config.profile, config.data_dir.as_deref()).await {
        Ok(true) => {
            let (go, chosen) = tokio::sync::oneshot::channel();
            let state = handle.state::<ShellState>();
            state.first_run_again(FirstRun {
                profile: config.profile.clone(),
                data_dir: config.data_dir.clone(),
                go,
            });
            let mut snapshot = state.snapshot();
            snapshot.phase = Phase::FirstRun;
            publish(&handle, snapshot);
            // Dropped only when the app quits.
            let Ok(chosen) = chosen.await else { return };
            config.phrase_typed = chosen == Chosen::Phrase;
            // Only the user's "Create my identity" makes a new identity.
            config.create_identity = chosen == Chosen::New;
            let mut snapshot = handle.state::<ShellState>().snapshot();
            snapshot.phase = Phase::Starting;
            publish(&handle, snapshot);
        }
        // An identity is loaded, never made: a profile that looked set up and is not was
        // raced by something, and the user decides again at the next start.
        Ok(false) => config.create_identity = false,
        // The keyring could not be asked: say so, and make nothing.
        Err(e) => {
            tracing::error!("cannot tell whether this is a new profile: {e}");
            return failed(&handle, e.to_ui());
        }
    }
    let app = match App::start(config).await {
        Ok(app) => Arc::new(app),
        Err(e) => {
            tracing::error!("start-up failed: {e}");
            return failed(&handle, e.to_ui());
        }
    };
    let mut snapshots = app.snapshots();
    tauri::async_runtime::spawn(forward_contact_events(
        handle.clone(),
        app.channel().subscribe(),
    ));
    tauri::async_runtime::spawn(forward_group_events(
        handle.clone(),
        app.groups().subscribe(),
    ));
    tauri::async_runtime::spawn(forward_chat_events(handle.clone(), app.chat().subscribe()));
    tauri::async_runtime::spawn(crate::tray::follow(handle.clone(), app.clone()));
    tauri::async_runtime::spawn(forward_open_requests(handle.clone(), app.open_requests()));
    // The window may already have the focus (or be hidden, for a start at login).
    if let Some(window) = handle.get_webview_window("main") {
        app.set_window_focused(window.is_focused().unwrap_or(false));
    }
    let state = handle.state::<ShellState>();
    let _ = state.app.set(app);
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        publish(&handle, snapshot);
        if snapshots.changed().await.is_err() {
            break;
        }
    }
}
