//! Kiyeovo desktop: the Tauri shell.
//!
//! Thin on purpose: it parses the command line, starts [`kiyeovo_core::service::App`], forwards
//! its state to the window as events, and maps UI commands onto the service. Everything else
//! lives in `kiyeovo-core` so the headless node and the tests run the same code.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod cli;
mod commands;
mod restart;
mod state;
mod tray;
mod window;

use clap::Parser;
use tauri::{Manager, RunEvent, WindowEvent};

use crate::state::ShellState;

fn main() {
    #[cfg(target_os = "linux")]
    software_rendering();
    let carried = restart::take_carried();
    #[cfg(target_os = "linux")]
    restart::record_inherited_fds();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,libp2p_mdns=warn,libp2p_kad=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = cli::Args::parse();
    let config = args.to_app_config();
    let profile = config.profile.clone();
    let hidden = args.hidden;
    if carried.restarted {
        tracing::info!("started again hidden after the window closed");
        #[cfg(target_os = "linux")]
        restart::wait_for_name_released(&single_instance_id(&profile));
    }

    let app = tauri::Builder::default()
        // First, so a second launch hands over before anything else starts: the running
        // instance shows its window and the new process exits.
        .plugin(
            tauri_plugin_single_instance::Builder::new()
                .dbus_id(single_instance_id(&profile))
                .callback(|handle, _args, _cwd| window::show(handle))
                .build(),
        )
        .plugin(tauri_plugin_dialog::init())
        .manage(ShellState::new(&profile))
        .manage(window::OpenConversation::default())
        .manage(restart::Restarts::default())
        .on_window_event(on_window_event)
        .invoke_handler(tauri::generate_handler![
            commands::get_snapshot,
            commands::first_run_new,
            commands::restore_from_phrase,
            commands::restore_from_backup,
            commands::backup_folder,
            commands::back_up_now,
            commands::auto_backup,
            commands::set_auto_backup,
            commands::recovery_phrase,
            commands::confirm_recovery_phrase,
            commands::set_display_name,
            commands::set_bootstrap,
            commands::my_card,
            commands::add_contact,
            commands::list_conversations,
            commands::conversation,
            commands::search,
            commands::delete_message,
            commands::delete_group_message,
            commands::list_contacts,
            commands::list_messages,
            commands::send_message,
            commands::set_blocked,
            commands::contact_safety_code,
            commands::rename_contact,
            commands::acknowledge_key_change,
            commands::mark_read,
            commands::my_card_qr,
            commands::save_my_card,
            commands::set_invites_blocked,
            commands::set_block_invites,
            commands::set_rotate_days,
            commands::list_groups,
            commands::create_group,
            commands::respond_invite,
            commands::establish_group,
            commands::rotate_group_key,
            commands::add_group_members,
            commands::remove_group_member,
            commands::hand_over_group,
            commands::disband_group,
            commands::leave_group,
            commands::dismiss_group_flag,
            commands::group_chat,
            commands::send_group_message,
            commands::mark_group_read,
            commands::set_desktop_settings,
            commands::set_group_muted,
            commands::set_contact_muted,
            commands::tray_model,
            commands::remember_open,
            commands::last_open,
        ])
        .setup(move |app| {
            app.state::<window::OpenConversation>()
                .set(carried.open.clone());
            app.state::<ShellState>()
                .hidden_notice_given
                .store(carried.notice_given, std::sync::atomic::Ordering::Relaxed);
            // Without a tray (some desktops have none) the app still works; closing the window
            // then leaves it reachable by launching it again (single instance).
            if let Err(e) = tray::create(app.handle()) {
                tracing::warn!(error = %e, "no system tray");
            }
            // The window is made here, not from the configuration (`"create": false`): a start
            // at login has none until it is asked for.
            if !hidden || carried.show_window || app.tray_by_id(tray::TRAY_ID).is_none() {
                window::show(app.handle());
            }
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(state::start(handle, config));
            tauri::async_runtime::spawn(exit_on_signal(app.handle().clone()));
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("cannot open the window: {e}");
            eprintln!("kiyeovo: cannot open the window: {e}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| {
        // macOS: a click on the Dock icon brings the hidden window back.
        #[cfg(target_os = "macos")]
        if let RunEvent::Reopen { .. } = event {
            window::show(handle);
        }
        // The window was closed (and destroyed): with a tray, Kiyeovo goes on there. Quit, a
        // signal or a logout asks with an exit code and is let through.
        if let RunEvent::ExitRequested {
            code: None, api, ..
        } = &event
        {
            if handle.tray_by_id(tray::TRAY_ID).is_some() {
                api.prevent_exit();
                restart::schedule(handle);
            }
        }
        if let RunEvent::ExitRequested { code: Some(_), .. } = &event {
            handle.state::<restart::Restarts>().exiting();
        }
        if let RunEvent::Exit = event {
            // Stop the node and close the database before the process ends.
            let state = handle.state::<ShellState>();
            tauri::async_runtime::block_on(state.close());
        }
    });
}

/// GTK's GL off (unless the user's environment says otherwise), before GTK starts: opening the
/// display then loads no GL driver (Mesa's llvmpipe alone is 26 MiB in this process), and WebKit,
/// finding no GL to show its layers with, paints the page in software instead of compositing
/// it on the GPU — its web process is 105 MiB instead of 175 (README, "Footprint"). A chat
/// window has no animation or 3D that would need the GPU, and it is the mode many WebKitGTK apps
/// fall back to on drivers where GPU compositing shows a blank window. A `GDK_GL` already in the
/// environment is left as it is: `GDK_GL= kiyeovo-desktop` (empty) gives GTK its GL back.
#[cfg(target_os = "linux")]
fn software_rendering() {
    if std::env::var_os("GDK_GL").is_none() {
        // Before any other thread exists: nothing reads the environment concurrently.
        std::env::set_var("GDK_GL", "disable");
    }
}

/// One running instance per profile: a D-Bus name on Linux (profiles run side by side).
fn single_instance_id(profile: &str) -> String {
    if profile == kiyeovo_core::profile::DEFAULT_PROFILE {
        return "org.kiyeovo.desktop".into();
    }
    // Bus name elements allow letters, digits and `_` only. Profile names also allow `-`; the
    // mapping must stay one-to-one ("a-b" and "a_b" are different profiles): `_` → `__`,
    // `-` → `_h`.
    let mut element = String::from("p_");
    for c in profile.chars() {
        match c {
            '_' => element.push_str("__"),
            '-' => element.push_str("_h"),
            c if c.is_ascii_alphanumeric() => element.push(c),
            // validate_name allows nothing else; keep the name valid regardless.
            c => element.push_str(&format!("_u{:x}_", c as u32)),
        }
    }
    format!("org.kiyeovo.desktop.{element}")
}

/// Closing the window keeps Kiyeovo running in the tray, so invitations and messages still
/// arrive; Quit in the tray menu ends it. The window itself goes (`window.rs`: its web view is
/// what costs memory) and is made again when shown. Focus changes decide whether new messages
/// notify.
fn on_window_event(window: &tauri::Window, event: &WindowEvent) {
    let state = window.state::<ShellState>();
    match event {
        // Without a tray there is nowhere to come back from: closing quits.
        WindowEvent::CloseRequested { .. }
            if window.app_handle().tray_by_id(tray::TRAY_ID).is_some() =>
        {
            if let Some(app) = state.app() {
                app.set_window_focused(false);
            }
            tracing::info!("window closed; still running in the tray");
            if !state
                .hidden_notice_given
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                tray::notice_still_running(window.app_handle());
            }
        }
        WindowEvent::Focused(focused) => {
            if let Some(app) = state.app() {
                app.set_window_focused(*focused);
            }
        }
        _ => {}
    }
}

/// A logout, `kill` or Ctrl-C ends Kiyeovo the way Quit does: node stopped, database closed.
async fn exit_on_signal(handle: tauri::AppHandle) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    tracing::info!("asked to stop");
    handle.exit(0);
}

#[cfg(test)]
mod tests {
    use super::single_instance_id;

    /// D-Bus names: elements of letters, digits and `_`, none starting with a digit. Profile
    /// names allow `-` and leading digits, so they are mapped.
    #[test]
    fn every_profile_gets_a_valid_distinct_bus_name() {
        assert_eq!(single_instance_id("default"), "org.kiyeovo.desktop");
        assert_eq!(single_instance_id("alice"), "org.kiyeovo.desktop.p_alice");
        let odd = single_instance_id("2-bob_x");
        assert_eq!(odd, "org.kiyeovo.desktop.p_2_hbob__x");
        for element in odd.split('.') {
            assert!(!element.starts_with(|c: char| c.is_ascii_digit()), "{odd}");
            assert!(
                element
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{odd}"
            );
        }
        assert_ne!(single_instance_id("alice"), single_instance_id("bob"));
        assert_ne!(single_instance_id("a-b"), single_instance_id("a_b"));
        assert_ne!(single_instance_id("a_hb"), single_instance_id("a-b"));
    }
}
