//! Kiyeovo desktop: the Tauri shell.
//!
//! Thin on purpose: it parses the command line, starts [`kiyeovo_core::service::App`], forwards
//! its state to the window as events, and maps UI commands onto the service. Everything else
//! lives in `kiyeovo-core` so the headless node and the tests run the same code.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod cli;
mod commands;
mod state;

use clap::Parser;
use tauri::{Manager, RunEvent};

use crate::state::ShellState;

fn main() {
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

    let app = tauri::Builder::default()
        .manage(ShellState::new(&profile))
        .invoke_handler(tauri::generate_handler![
            commands::get_snapshot,
            commands::set_display_name,
            commands::set_bootstrap,
            commands::my_card,
            commands::add_contact,
            commands::list_contacts,
            commands::list_messages,
            commands::send_message,
            commands::set_blocked,
            commands::mark_read,
            commands::my_card_qr,
            commands::save_my_card,
            commands::set_invites_blocked,
            commands::set_block_invites,
            commands::list_groups,
            commands::create_group,
            commands::respond_invite,
            commands::establish_group,
            commands::group_chat,
            commands::send_group_message,
            commands::mark_group_read,
        ])
        .setup(move |app| {
            if profile != kiyeovo_core::profile::DEFAULT_PROFILE {
                if let Some(window) = app.get_webview_window("main") {
                    let _ = window.set_title(&format!("Kiyeovo — {profile}"));
                }
            }
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(state::start(handle, config));
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
        if let RunEvent::Exit = event {
            // Stop the node and close the database before the process ends.
            let state = handle.state::<ShellState>();
            tauri::async_runtime::block_on(state.close());
        }
    });
}
