//! The main window's life: created when it is shown, destroyed when it is closed.
//!
//! Closing the window (with a tray to come back from) destroys it, web view and all: WebKit's
//! web process then exits and what stays in the tray is the node, the tray and notifications
//! (README, "Footprint"); ten seconds later the app starts itself again, hidden, to shed what
//! WebKit left behind in the process (`restart.rs`). Showing it again builds a new one from `tauri.conf.json`, which opens
//! on the conversation that was open ([`remember_open`]). A start at login (`--hidden`) never
//! creates it until it is asked for.

use std::sync::Mutex;

use kiyeovo_core::api::{events, ShowConversation};
use kiyeovo_core::conversations::ConversationId;
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::state::ShellState;

pub const MAIN: &str = "main";

/// The conversation open in the window ("contact:<peer id>" / "group:<id>"), kept here so that a
/// window created again opens on it. In memory only: it names a contact or group, and the web
/// view's own storage is not where that should be written down.
#[derive(Default)]
pub struct OpenConversation(Mutex<Option<String>>);

impl OpenConversation {
    pub fn set(&self, key: Option<String>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = key;
    }

    pub fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Shows, un-minimises and focuses the main window, creating it if it was closed (or never
/// made, for a start at login).
pub fn show<R: Runtime>(handle: &AppHandle<R>) {
    // Calls off a restart planned while no window was open; during one, the restarted process
    // shows the window instead (restart.rs).
    if !handle.state::<crate::restart::Restarts>().window_shown() {
        return;
    }
    let window = match handle.get_webview_window(MAIN) {
        Some(window) => window,
        None => match create(handle) {
            Ok(window) => window,
            Err(e) => {
                tracing::error!(error = %e, "cannot create the window");
                return;
            }
        },
    };
    let _ = window.show();
    let _ = window.unminimize();
    let _ = window.set_focus();
}

fn create<R: Runtime>(handle: &AppHandle<R>) -> tauri::Result<tauri::WebviewWindow<R>> {
    let config = handle
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == MAIN)
        .cloned()
        .ok_or_else(|| tauri::Error::WindowNotFound)?;
    let started = std::time::Instant::now();
    let window = tauri::WebviewWindowBuilder::from_config(handle, &config)?.build()?;
    let profile = handle.state::<ShellState>().snapshot().profile;
    if profile != kiyeovo_core::profile::DEFAULT_PROFILE {
        let _ = window.set_title(&format!("Kiyeovo — {profile}"));
    }
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "window created"
    );
    Ok(window)
}

/// Shows the window on one conversation (a notification or the tray menu asked for it).
pub fn open_conversation<R: Runtime>(handle: &AppHandle<R>, about: &ConversationId) {
    let key = about.key();
    handle.state::<OpenConversation>().set(Some(key.clone()));
    let existed = handle.get_webview_window(MAIN).is_some();
    show(handle);
    // A window created just now opens on it by itself (it asks for the open conversation).
    if existed {
        let _ = handle.emit(events::SHOW_CONVERSATION, ShowConversation { key });
    }
}
