//! The system tray: an icon (with a badge while invitations or unread messages wait), a title
//! and tooltip with the counts, and a menu — Open, one entry per pending invitation with its
//! time left, Quit. What it shows is computed in the core ([`kiyeovo_core::desktop::tray`]);
//! this file only draws it.

use std::sync::Arc;
use std::time::Duration;

use kiyeovo_core::api::{TrayMenuEntry, TrayModel};
use kiyeovo_core::desktop::tray::{MENU_INVITE_PREFIX, MENU_OPEN, MENU_QUIT};
use kiyeovo_core::service::App;
use tauri::image::Image;
use tauri::menu::{Menu, MenuBuilder, MenuEvent, MenuItemBuilder};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Runtime};

use crate::state::ShellState;

pub const TRAY_ID: &str = "main";

/// The menu the core computed ([`kiyeovo_core::desktop::tray::menu`]), as Tauri menu items.
fn menu<R: Runtime>(handle: &AppHandle<R>, model: &TrayModel) -> tauri::Result<Menu<R>> {
    let mut builder = MenuBuilder::new(handle);
    for entry in &model.menu {
        builder = match entry {
            TrayMenuEntry::Item { id, label, enabled } => builder.item(
                &MenuItemBuilder::with_id(id.as_str(), label)
                    .enabled(*enabled)
                    .build(handle)?,
            ),
            TrayMenuEntry::Separator => builder.separator(),
        };
    }
    builder.build()
}

/// The app icon, badged when something waits.
fn icon<R: Runtime>(handle: &AppHandle<R>, badged: bool) -> Option<Image<'static>> {
    let base = handle.default_window_icon()?;
    let (w, h) = (base.width(), base.height());
    let rgba = if badged {
        kiyeovo_core::desktop::tray::with_badge(base.rgba(), w, h)
    } else {
        base.rgba().to_vec()
    };
    Some(Image::new_owned(rgba, w, h))
}

/// Creates the tray with an empty model; [`follow`] fills it in once the app runs.
pub fn create<R: Runtime>(handle: &AppHandle<R>) -> tauri::Result<TrayIcon<R>> {
    let model = kiyeovo_core::desktop::tray::tray_model(&[], 0, 0);
    let mut builder = TrayIconBuilder::with_id(TRAY_ID)
        .menu(&menu(handle, &model)?)
        .tooltip(&model.tooltip)
        .show_menu_on_left_click(true)
        .on_menu_event(on_menu);
    if let Some(icon) = icon(handle, false) {
        builder = builder.icon(icon);
    }
    builder.build(handle)
}

/// Told once per run, the first time the window is closed: where Kiyeovo went.
pub fn notice_still_running<R: Runtime>(handle: &AppHandle<R>) {
    let quiet = handle
        .state::<ShellState>()
        .snapshot()
        .desktop
        .do_not_disturb;
    if !quiet {
        tauri::async_runtime::spawn(kiyeovo_core::desktop::os::notice(
            "Kiyeovo is still running",
            "Invitations and messages keep arriving. Open it from the tray, or quit it there.",
        ));
    }
}

fn on_menu<R: Runtime>(handle: &AppHandle<R>, event: MenuEvent) {
    let id = event.id().as_ref();
    match id {
        MENU_OPEN => crate::window::show(handle),
        // The exit path stops the node and closes the database (main.rs, RunEvent::Exit).
        MENU_QUIT => handle.exit(0),
        _ => {
            if let Some(group_id) = id.strip_prefix(MENU_INVITE_PREFIX) {
                crate::window::open_conversation(
                    handle,
                    &kiyeovo_core::conversations::ConversationId::group(group_id),
                );
            }
        }
    }
}

/// Draws `model` if it differs from what is shown.
fn render(handle: &AppHandle, model: TrayModel) {
    let state = handle.state::<ShellState>();
    if state.tray_model() == model {
        return;
    }
    let Some(tray) = handle.tray_by_id(TRAY_ID) else {
        return;
    };
    let waiting = model.pending_invites + model.unread > 0;
    let result = (|| -> tauri::Result<()> {
        tray.set_menu(Some(menu(handle, &model)?))?;
        tray.set_tooltip(Some(&model.tooltip))?;
        // Linux shows the title next to the icon: the count is the badge's number.
        let title = if waiting {
            Some((model.pending_invites + model.unread).to_string())
        } else {
            None
        };
        tray.set_title(title.as_deref())?;
        tray.set_icon(icon(handle, waiting))?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            tracing::info!(tooltip = %model.tooltip, "tray updated");
            state.set_tray_model(model);
        }
        Err(e) => tracing::warn!(error = %e, "cannot update the tray"),
    }
}

/// Keeps the tray in step with the groups and contacts: on every group or message change, on a
/// 1:1 message or read, and each minute for the time left.
pub async fn follow(handle: AppHandle, app: Arc<App>) {
    use kiyeovo_core::pairwise::channel::ChannelEvent;
    let mut groups = app.groups().subscribe();
    let mut chat = app.chat().subscribe();
    let mut contacts = app.channel().subscribe();
    let mut minute = tokio::time::interval(Duration::from_secs(60));
    loop {
        use tokio::sync::broadcast::error::RecvError;
        let (closed, changed) = tokio::select! {
            e = groups.recv() => (matches!(e, Err(RecvError::Closed)), true),
            e = chat.recv() => (matches!(e, Err(RecvError::Closed)), true),
            e = contacts.recv() => match e {
                Err(RecvError::Closed) => (true, false),
                Err(RecvError::Lagged(_)) => (false, true),
                // Only what changes an unread count (not delivery states, bucket writes).
                Ok(e) => (false, matches!(e, ChannelEvent::MessageReceived { .. }
                    | ChannelEvent::Read { .. }
                    | ChannelEvent::MessageDeleted { .. }
                    | ChannelEvent::Blocked { .. })),
            },
            _ = minute.tick() => (false, true),
        };
        if closed {
            break;
        }
        if !changed {
            continue;
        }
        match app.tray_model().await {
            Ok(model) => {
                let h = handle.clone();
                // Menus are changed on the main thread (GTK on Linux).
                let _ = handle.run_on_main_thread(move || render(&h, model));
            }
            Err(e) => tracing::warn!(error = %e, "cannot compute the tray"),
        }
    }
}
