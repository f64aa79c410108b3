//! Tauri commands: thin calls into the service. Errors reach the UI as `UiError` (words + hint).

use kiyeovo_core::api::{AppSnapshot, ErrorCode, UiError};
use tauri::State;

use crate::state::ShellState;

fn not_ready() -> UiError {
    UiError {
        code: ErrorCode::InvalidInput,
        message: "Kiyeovo is still starting.".into(),
        hint: "Wait a moment and try again.".into(),
    }
}

/// The current state; afterwards the UI follows `app-snapshot` events.
#[tauri::command]
pub fn get_snapshot(state: State<'_, ShellState>) -> AppSnapshot {
    state.snapshot()
}

/// Sets the name contacts see. Returns the saved (trimmed) name.
#[tauri::command]
pub async fn set_display_name(
    state: State<'_, ShellState>,
    name: String,
) -> Result<String, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.set_display_name(&name).await.map_err(|e| e.to_ui())
}

/// Saves the bootstrap addresses and joins through them now. Returns the saved list.
#[tauri::command]
pub async fn set_bootstrap(
    state: State<'_, ShellState>,
    addrs: Vec<String>,
) -> Result<Vec<String>, UiError> {
    let app = state.app().ok_or_else(not_ready)?;
    app.set_bootstrap(addrs).await.map_err(|e| e.to_ui())
}
