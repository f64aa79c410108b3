//! What the shell keeps: the running app (once started) and the last snapshot shown.

use std::sync::{Arc, Mutex, OnceLock};

use kiyeovo_core::api::{
    events, AppSnapshot, ContactChanged, GroupChanged, GroupChatChanged, Phase,
};
use kiyeovo_core::service::{App, AppConfig};
use tauri::{AppHandle, Emitter, Manager};

pub struct ShellState {
    app: OnceLock<Arc<App>>,
    current: Mutex<AppSnapshot>,
}

impl ShellState {
    pub fn new(profile: &str) -> Self {
        Self {
            app: OnceLock::new(),
            current: Mutex::new(AppSnapshot {
                profile: profile.to_string(),
                phase: Phase::Starting,
                display_name: String::new(),
                block_invites: false,
                bootstrap: Vec::new(),
                node: None,
                error: None,
                warnings: Vec::new(),
            }),
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
                kiyeovo_core::group::store::hex(&group_id)
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
                kiyeovo_core::group::store::hex(&group_id)
            }
            Err(RecvError::Lagged(_)) => String::new(),
            Err(RecvError::Closed) => break,
        };
        let _ = handle.emit(events::GROUP_CHAT_CHANGED, GroupChatChanged { group_id });
    }
}

/// Starts the profile and then forwards every state change to the window.
pub async fn start(handle: AppHandle, config: AppConfig) {
    let app = match App::start(config).await {
        Ok(app) => Arc::new(app),
        Err(e) => {
            tracing::error!("start-up failed: {e}");
            let mut snapshot = handle.state::<ShellState>().snapshot();
            snapshot.phase = Phase::Failed;
            snapshot.error = Some(e.to_ui());
            publish(&handle, snapshot);
            return;
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
