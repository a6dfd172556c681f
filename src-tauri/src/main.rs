//! Blueprint Vault, the desktop app: a Tauri 2 shell over the engine. The shell only
//! translates: commands (`commands.rs`) become engine calls on blocking threads, engine
//! results and errors cross IPC as the types in `dto.rs`, and changes become
//! `library-changed` window events. See ARCHITECTURE.md.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

#[cfg(test)]
mod bindings;
mod commands;
mod creds;
mod dto;
mod dto_sync;
mod dto_transfer;
mod logging;
mod migrate;
mod state;
mod sync;
mod transfer;

use std::path::PathBuf;

// As in `bpv`: the index build's parallel parse spent ~30% of its time in glibc's allocator.
#[global_allocator]
static GLOBAL: bpv_alloc::MiMalloc = bpv_alloc::MiMalloc;

fn main() {
    bpv_alloc::tune();
    bpv_engine::process::disable_transparent_huge_pages();
    let data_dir = bpv_engine::paths::default_data_dir().unwrap_or_else(|| PathBuf::from(".blueprint-vault"));
    let log_dir = data_dir.join("logs");
    let _log_guard = logging::init(&log_dir);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), data_dir = %data_dir.display(), "starting");

    let result = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        // Used from Rust only (a failed automatic backup); the UI has no permission for it.
        .plugin(tauri_plugin_notification::init())
        .manage(state::AppState::new(data_dir, log_dir))
        .manage(transfer::TransferState::default())
        .setup(|app| {
            transfer::start_schedule(app.handle().clone());
            preopen_startup_library(app.handle().clone());
            Ok(())
        })
        .invoke_handler(commands::handler())
        .run(tauri::generate_context!());
    if let Err(e) = result {
        tracing::error!("the app stopped: {e}");
        eprintln!("Blueprint Vault could not start: {e}");
        std::process::exit(1);
    }
}

/// Open the startup library while the webview starts, instead of when the UI first asks:
/// the two overlap, so the first list paints sooner. The UI's `open_library` then finds
/// it open (or waits for this open to finish); a failure here is reported to it then.
fn preopen_startup_library(app: tauri::AppHandle) {
    use tauri::Manager;
    tauri::async_runtime::spawn_blocking(move || {
        let state = app.state::<state::AppState>();
        let events = app.clone();
        let opened = state
            .startup_library()
            .and_then(|root| state.open(&root, move |notice| commands::forward(&events, notice)));
        if let Err(e) = opened {
            tracing::info!(code = %e.code, "startup library not opened ahead of the UI: {}", e.message);
        }
    });
}
