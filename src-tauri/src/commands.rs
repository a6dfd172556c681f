//! The whole command surface of the app, declared once. The `commands!` macro turns each
//! declaration into an `async` `#[tauri::command]`, registers it in [`handler`], and
//! describes it in [`typescript`] (argument and result types, for the generated
//! `Commands` map the UI calls through). Engine work runs on blocking threads
//! ([`with_lib`]); the shell holds no storage logic.

use bpv_engine::Item;
use bpv_engine::index::{ListQuery, SearchQuery, Sort};
use bpv_engine::library::{BlueprintSave, MetaUpdate, ReconcileReport, ReindexReport, TrashEntry, Version};
use bpv_engine::secrets::{AuditEntry, CredentialInfo, CredentialList, KeyStatus, RecoverReport, RotateReport};
use bpv_engine::watch::{Origin, WatchNotice};
use tauri::{AppHandle, Emitter, Manager};
use tauri_plugin_dialog::DialogExt;
use tauri_plugin_opener::OpenerExt;

use crate::dto::*;
use crate::dto_sync::*;
use crate::dto_transfer::*;
use crate::state::{AppState, Opened};

/// Largest page a list or search may ask for.
const MAX_PAGE: u32 = 1000;

macro_rules! commands {
    ($(
        $(#[doc = $doc:literal])*
        fn $name:ident($app:ident $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty $body:block
    )*) => {
        $(
            $(#[doc = $doc])*
            #[tauri::command(rename_all = "snake_case")]
            pub async fn $name($app: AppHandle $(, $arg: $ty)*) -> Result<$ret, IpcError> {
                let name = stringify!($name);
                let result: Result<$ret, IpcError> = async move { $body }.await;
                if let Err(e) = &result {
                    tracing::warn!(command = name, code = %e.code, "{}", e.message);
                }
                result
            }
        )*

        /// Every command, for `Builder::invoke_handler`.
        pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$($name),*]
        }

        /// `export type Commands = { name: { args: {…}; result: … }; … }`.
        #[cfg(test)]
        pub fn typescript(cfg: &ts_rs::Config) -> String {
            let mut out = String::from("/** Every command: its arguments and what it resolves to. */\nexport type Commands = {\n");
            $(
                let docs: &[&str] = &[$($doc),*];
                if !docs.is_empty() {
                    out.push_str("  /**");
                    out.push_str(&docs.iter().map(|d| d.trim()).collect::<Vec<_>>().join(" "));
                    out.push_str(" */\n");
                }
                let args: Vec<String> = vec![$(format!("{}: {}", stringify!($arg), <$ty as ts_rs::TS>::name(cfg))),*];
                out.push_str(&format!(
                    "  {}: {{ args: {{ {} }}; result: {} }};\n",
                    stringify!($name),
                    args.join("; "),
                    <$ret as ts_rs::TS>::name(cfg)
                ));
            )*
            out.push_str("};\n");
            out
        }
    };
}

/// Run engine work on a blocking thread against the open library.
async fn with_lib<T, F>(app: &AppHandle, f: F) -> Result<T, IpcError>
where
    T: Send + 'static,
    F: FnOnce(&Opened) -> Result<T, IpcError> + Send + 'static,
{
    let opened = app.state::<AppState>().current()?;
    tauri::async_runtime::spawn_blocking(move || f(&opened)).await.map_err(IpcError::internal)?
}

fn emit(app: &AppHandle, kind: LibraryEventKind, paths: Vec<String>) {
    if matches!(kind, LibraryEventKind::Changed) {
        // A saved change reaches the team library soon (debounced; no-op when unlinked).
        app.state::<AppState>().sync.poke();
    }
    if let Err(e) = app.emit(LIBRARY_CHANGED, LibraryEvent { kind, paths }) {
        tracing::warn!("cannot emit {LIBRARY_CHANGED}: {e}");
    }
}

/// The watcher's notices become window events. Changes this app made itself were
/// already announced by the command that made them.
pub(crate) fn forward(app: &AppHandle, notice: WatchNotice) {
    match notice {
        WatchNotice::Change(c) if c.origin == Origin::Outside => {
            emit(app, LibraryEventKind::Changed, [Some(c.path), c.old_path].into_iter().flatten().collect())
        }
        WatchNotice::Change(_) => {}
        WatchNotice::State(_) => emit(app, LibraryEventKind::Watch, Vec::new()),
        WatchNotice::Resynced { report, .. } => {
            if report.added + report.changed + report.removed > 0 {
                emit(app, LibraryEventKind::Changed, Vec::new());
            }
        }
    }
}

fn set_title(app: &AppHandle, state: &LibraryState) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.set_title(&format!("Blueprint Vault — {}", state.name));
    }
}

fn page(limit: u32) -> usize {
    limit.clamp(1, MAX_PAGE) as usize
}

/// The absolute path of a blueprint the index knows.
fn file_of(o: &Opened, path: &str) -> Result<std::path::PathBuf, IpcError> {
    let item = o.lib.item(path)?;
    Ok(o.lib.root().join(item.path))
}

commands! {
    /// The open library, or null before the first open.
    fn library_state(app) -> Option<LibraryState> {
        let state = app.state::<AppState>();
        let Some(opened) = state.current_opt() else { return Ok(None) };
        let app2 = app.clone();
        tauri::async_runtime::spawn_blocking(move || app2.state::<AppState>().describe(&opened).map(Some))
            .await
            .map_err(IpcError::internal)?
    }

    /// Open (creating it if needed) a library folder; null opens the startup library
    /// ($BPV_LIBRARY, else the last one, else <Documents>/Blueprint Vault).
    fn open_library(app, path: Option<String>) -> LibraryState {
        let app2 = app.clone();
        let described = tauri::async_runtime::spawn_blocking(move || {
            let state = app2.state::<AppState>();
            let root = match path {
                Some(p) if !p.trim().is_empty() => std::path::PathBuf::from(p),
                _ => state.startup_library()?,
            };
            let events = app2.clone();
            let opened = state.open(&root, move |notice| forward(&events, notice))?;
            state.describe(&opened)
        })
        .await
        .map_err(IpcError::internal)??;
        set_title(&app, &described);
        emit(&app, LibraryEventKind::Opened, Vec::new());
        crate::sync::start_timer(&app);
        Ok(described)
    }

    /// Ask the user for a folder (for another library); null when cancelled.
    fn choose_folder(app, title: String) -> Option<String> {
        let dialog = app.dialog().file().set_title(title);
        let picked = tauri::async_runtime::spawn_blocking(move || dialog.blocking_pick_folder())
            .await
            .map_err(IpcError::internal)?;
        Ok(picked.and_then(|p| p.into_path().ok()).map(|p| p.to_string_lossy().into_owned()))
    }

    /// One page of blueprints, sorted, filtered by folder and tags.
    fn list_items(app, query: ListArgs) -> ItemPage {
        with_lib(&app, move |o| {
            let page = o.lib.list(&ListQuery {
                folder: query.folder,
                tags: query.tags,
                valid: query.invalid_only.then_some(false),
                sort: match query.sort {
                    SortBy::Name => Sort::Name,
                    SortBy::Modified => Sort::Modified,
                },
                offset: query.offset as usize,
                limit: page(query.limit),
                ..Default::default()
            })?;
            Ok(ItemPage { items: page.items, total: page.total as u64 })
        })
        .await
    }

    /// Ranked full-text search, with snippets marking matches as <mark>…</mark>.
    fn search_items(app, query: SearchArgs) -> SearchPage {
        with_lib(&app, move |o| {
            let page = o.lib.search(&SearchQuery {
                text: query.text,
                tags: query.tags,
                folder: query.folder,
                offset: query.offset as usize,
                limit: page(query.limit),
                ..Default::default()
            })?;
            Ok(SearchPage { hits: page.hits, total: page.total as u64 })
        })
        .await
    }

    /// Folders and tags with their counts.
    fn sidebar(app) -> Sidebar {
        with_lib(&app, |o| Ok(Sidebar { folders: o.lib.index().folders()?, tags: o.lib.index().tag_counts(None)? }))
            .await
    }

    /// One blueprint: its item, YAML and workflow picture.
    fn get_blueprint(app, path: String) -> BlueprintDetail {
        with_lib(&app, move |o| {
            let item = o.lib.item(&path)?;
            let stored = o.lib.read(&item.path)?;
            // An encrypted blueprint is shown decrypted (in memory only); without its key
            // it is shown locked, with the way out.
            let (bytes, locked) = match crate::creds::plain_text(&o.lib, &item.path, stored) {
                Ok(b) => (b, None),
                Err(e) => (Vec::new(), Some(e.message)),
            };
            let check = YamlCheck::of(&bytes);
            // Only a blueprint that references credentials asks the keychain side.
            let secrets = if bpv_engine::secrets::secret_references(&bytes).is_empty() {
                Vec::new()
            } else {
                crate::creds::open(&o.lib)?.credentials_used_by(&o.lib, &item.path)?
            };
            let (yaml, editable) = match String::from_utf8(bytes) {
                Ok(s) => (s, locked.is_none()),
                Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), false),
            };
            let file = o.lib.root().join(&item.path).to_string_lossy().into_owned();
            Ok(BlueprintDetail { item, yaml, editable, file, check, secrets, locked })
        })
        .await
    }

    /// Read YAML the way the engine does (problem, nodes and edges), without saving.
    fn check_yaml(app, yaml: String) -> YamlCheck {
        let _ = &app;
        tauri::async_runtime::spawn_blocking(move || YamlCheck::of(yaml.as_bytes())).await.map_err(IpcError::internal)
    }

    /// Validate and save a blueprint's YAML; `conflict` if it changed since `if_match`.
    fn save_yaml(app, path: String, yaml: String, if_match: Option<String>) -> Item {
        let item = with_lib(&app, move |o| {
            crate::creds::save_yaml(&o.lib, &path, yaml.as_bytes(), &BlueprintSave { if_match, ..Default::default() })
        })
        .await?;
        emit(&app, LibraryEventKind::Changed, vec![item.path.clone()]);
        Ok(item)
    }

    /// Edit tags and description (in the companion file; the YAML is never rewritten).
    fn update_meta(app, path: String, edit: MetaEdit) -> Item {
        let item = with_lib(&app, move |o| {
            Ok(o.lib.update_meta(
                &path,
                &MetaUpdate { tags: edit.tags, description: edit.description, if_match: edit.if_match },
            )?)
        })
        .await?;
        emit(&app, LibraryEventKind::Changed, vec![item.path.clone()]);
        Ok(item)
    }

    /// Create a new blueprint (never overwrites: `already_exists`), with companion tags.
    fn create_blueprint(app, path: String, yaml: String, tags: Vec<String>) -> Item {
        let item = with_lib(&app, move |o| {
            let save = BlueprintSave {
                create_only: true,
                tags: (!tags.is_empty()).then_some(tags),
                ..Default::default()
            };
            Ok(o.lib.save_blueprint(&path, yaml.as_bytes(), &save)?)
        })
        .await?;
        emit(&app, LibraryEventKind::Changed, vec![item.path.clone()]);
        Ok(item)
    }

    /// Rename or move a blueprint with its companion metadata and version history (the
    /// engine's `rename`). `conflict` if it changed since `if_match`.
    fn move_blueprint(app, from: String, to: String, if_match: Option<String>) -> Item {
        let (item, old) = with_lib(&app, move |o| {
            let item = o.lib.rename(&from, &to, if_match.as_deref())?;
            Ok((item, from))
        })
        .await?;
        emit(&app, LibraryEventKind::Changed, vec![old, item.path.clone()]);
        Ok(item)
    }

    /// Move a blueprint (and its companion) to the Trash.
    fn delete_blueprint(app, path: String) -> TrashEntry {
        let entry = with_lib(&app, move |o| Ok(o.lib.delete(&path)?)).await?;
        emit(&app, LibraryEventKind::Changed, vec![entry.path.clone()]);
        Ok(entry)
    }

    /// Everything in the Trash, most recently deleted first.
    fn trash_list(app) -> Vec<TrashEntry> {
        with_lib(&app, |o| Ok(o.lib.trash_list()?)).await
    }

    /// Put a trashed blueprint back where it was.
    fn trash_restore(app, id: String) -> Item {
        let item = with_lib(&app, move |o| Ok(o.lib.trash_restore(&id)?)).await?;
        emit(&app, LibraryEventKind::Changed, vec![item.path.clone()]);
        Ok(item)
    }

    /// Permanently remove everything in the Trash; resolves to how many were removed.
    fn trash_empty(app) -> u64 {
        let n = with_lib(&app, |o| Ok(o.lib.trash_empty()? as u64)).await?;
        emit(&app, LibraryEventKind::Changed, Vec::new());
        Ok(n)
    }

    /// Earlier contents of a blueprint, newest first.
    fn versions(app, path: String) -> Vec<Version> {
        with_lib(&app, move |o| Ok(o.lib.versions(&path)?)).await
    }

    /// The text of one earlier version (for comparing before restoring it).
    fn version_text(app, path: String, id: String) -> String {
        with_lib(&app, move |o| {
            let bytes = o.lib.version_content(&path, &id)?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        })
        .await
    }

    /// Put an earlier version back (the current content becomes a version itself).
    fn restore_version(app, path: String, id: String) -> Item {
        let item = with_lib(&app, move |o| Ok(o.lib.restore_version(&path, Some(&id))?)).await?;
        emit(&app, LibraryEventKind::Changed, vec![item.path.clone()]);
        Ok(item)
    }

    /// Rebuild the index from the files.
    fn reindex(app) -> ReindexReport {
        let report = with_lib(&app, |o| Ok(o.lib.reindex(None)?)).await?;
        emit(&app, LibraryEventKind::Reindexed, Vec::new());
        Ok(report)
    }

    /// Catch up with changes made by other programs (the UI calls it when the window gets
    /// focus and the folder is not being watched).
    fn refresh(app) -> ReconcileReport {
        let report = with_lib(&app, |o| Ok(o.lib.reconcile()?)).await?;
        if report.added + report.changed + report.removed > 0 {
            emit(&app, LibraryEventKind::Changed, Vec::new());
        }
        Ok(report)
    }

    /// Show the blueprint's file in the system file manager.
    fn reveal(app, path: String) -> () {
        let file = with_lib(&app, move |o| file_of(o, &path)).await?;
        app.opener().reveal_item_in_dir(&file).map_err(|e| IpcError::new("io", format!("cannot show the file: {e}")))
    }

    /// Open the blueprint's file in the user's default editor for YAML.
    fn open_in_editor(app, path: String) -> () {
        let file = with_lib(&app, move |o| file_of(o, &path)).await?;
        app.opener()
            .open_path(file.to_string_lossy(), None::<&str>)
            .map_err(|e| IpcError::new("io", format!("cannot open the file in an editor: {e}")))
    }

    /// Ask the user for files to import (blueprints, JSON blueprints, .zip bundles; several
    /// at once) or, with `folder`, one folder; empty when cancelled.
    fn choose_import_sources(app, folder: bool) -> Vec<String> {
        let dialog = app.dialog().file().set_title(if folder { "Import a folder" } else { "Import files" });
        let picked = tauri::async_runtime::spawn_blocking(move || {
            if folder {
                dialog.blocking_pick_folder().map(|f| vec![f])
            } else {
                dialog.add_filter("Blueprints and bundles", &["yaml", "yml", "json", "zip"]).blocking_pick_files()
            }
        })
        .await
        .map_err(IpcError::internal)?;
        Ok(picked
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| p.into_path().ok())
            .map(|p| p.to_string_lossy().into_owned())
            .collect())
    }

    /// The import dry run (files, folders, .zip bundles; what a drop on the window or the
    /// Import… button gives): every item classified, nothing written. Progress as
    /// `operation-progress` events (op `import`); `cancel_operation` stops it.
    fn import_plan(app, sources: Vec<String>, into: Option<String>) -> ImportPlanView {
        let events = app.clone();
        with_lib(&app, move |o| crate::transfer::import_plan(&events, &o.lib, sources, into)).await
    }

    /// Apply the dry run `plan_id`: conflicts by `on_conflict` unless an item has its own
    /// decision (`skip` also leaves out a new item). All or nothing.
    fn import_apply(app, plan_id: u64, on_conflict: ConflictChoice, decisions: Vec<ItemDecision>) -> ImportSummary {
        let events = app.clone();
        let summary = with_lib(&app, move |o| {
            crate::transfer::import_apply(&events, &o.lib, plan_id, on_conflict, decisions)
        })
        .await?;
        emit(&app, LibraryEventKind::Changed, summary.imported.clone());
        Ok(summary)
    }

    /// Ask a running import, export, backup, verify or restore to stop (it then fails with
    /// `cancelled` and leaves everything as it was); false when none runs.
    fn cancel_operation(app, op: Operation) -> bool {
        Ok(app.state::<crate::transfer::TransferState>().cancel(op))
    }

    /// What an export of `scope` would take, with the secret scan's findings.
    fn export_preview(app, scope: ExportScope) -> ExportPreview {
        with_lib(&app, move |o| crate::transfer::export_preview(&o.lib, &scope)).await
    }

    /// Export `scope` to `folder`, else to a new bundle in `Exports/`; `reveal` shows the
    /// result in the file manager. Refused when the secret scan finds something, unless
    /// `allow_secrets`.
    fn export_blueprints(app, scope: ExportScope, folder: Option<String>, allow_secrets: bool, reveal: bool) -> ExportDone {
        let events = app.clone();
        let done = with_lib(&app, move |o| crate::transfer::export(&events, &o.lib, &scope, folder, allow_secrets)).await?;
        if reveal && let Err(e) = app.opener().reveal_item_in_dir(&done.to) {
            tracing::warn!("cannot show the export in the file manager: {e}");
        }
        Ok(done)
    }

    /// Where backups go and the automatic schedule.
    fn backup_settings(app) -> BackupSettingsView {
        let handle = app.clone();
        with_lib(&app, move |o| Ok(crate::transfer::backup_settings(&handle, &o.lib))).await
    }

    /// Change the backup folder (null: the default, in the data dir) and the schedule.
    fn set_backup_settings(app, location: Option<String>, schedule: BackupSchedule) -> BackupSettingsView {
        let handle = app.clone();
        with_lib(&app, move |o| crate::transfer::set_backup_settings(&handle, &o.lib, location, schedule)).await
    }

    /// Back up the library now, then verify the snapshot. Progress as `operation-progress`
    /// (op `backup`); then a `backup-finished` event.
    fn backup_now(app) -> BackupDone {
        let handle = app.clone();
        let result = with_lib(&app, move |o| crate::transfer::backup_now(&handle, &o.lib)).await;
        crate::transfer::emit_backup_finished(&app, &result, false);
        result
    }

    /// The snapshots in the backup folder, newest first (empty before the first backup).
    fn backup_snapshots(app) -> Vec<SnapshotRow> {
        let handle = app.clone();
        with_lib(&app, move |o| crate::transfer::snapshots(&handle, &o.lib)).await
    }

    /// The files of one snapshot, by path.
    fn snapshot_contents(app, id: String) -> Vec<SnapshotFile> {
        let handle = app.clone();
        with_lib(&app, move |o| crate::transfer::contents(&handle, &o.lib, &id)).await
    }

    /// Re-read and re-hash every object of a snapshot.
    fn verify_snapshot(app, id: String) -> VerifyResult {
        let handle = app.clone();
        with_lib(&app, move |o| crate::transfer::verify(&handle, &o.lib, &id)).await
    }

    /// Put one file of a snapshot back into the library at its path (the current content,
    /// if any, is kept in the blueprint's history); resolves to that path.
    fn restore_from_snapshot(app, id: String, path: String) -> String {
        let handle = app.clone();
        let restored = with_lib(&app, move |o| crate::transfer::restore_file(&handle, &o.lib, &id, &path)).await?;
        emit(&app, LibraryEventKind::Changed, vec![restored.clone()]);
        Ok(restored)
    }

    /// Restore a whole snapshot into `to`, a new or empty folder (it can then be opened as
    /// a library); `partial` restores what is intact of a damaged snapshot.
    fn restore_snapshot_to(app, id: String, to: String, partial: bool) -> RestoreDone {
        let handle = app.clone();
        with_lib(&app, move |o| crate::transfer::restore_to(&handle, &o.lib, &id, &to, partial, None)).await
    }

    /// Restore a whole snapshot over the open library (the library as it is now is backed
    /// up first: `before` names that snapshot, to undo the restore).
    fn restore_snapshot_in_place(app, id: String, partial: bool) -> RestoreDone {
        let handle = app.clone();
        let done = tauri::async_runtime::spawn_blocking(move || crate::transfer::restore_in_place(&handle, &id, partial, None))
            .await
            .map_err(IpcError::internal)??;
        emit(&app, LibraryEventKind::Opened, Vec::new());
        // Reopened by the restore itself: its periodic team-library sync starts again.
        crate::sync::start_timer(&app);
        Ok(done)
    }

    /// Back up now with the credential values sealed under `passphrase` (≥ 8 characters;
    /// restoring them needs it). Otherwise as `backup_now`.
    fn backup_now_with_credentials(app, passphrase: String) -> BackupDone {
        let handle = app.clone();
        let result =
            with_lib(&app, move |o| crate::transfer::backup_now_sealing(&handle, &o.lib, Some(&passphrase))).await;
        crate::transfer::emit_backup_finished(&app, &result, false);
        result
    }

    /// `restore_snapshot_to`, and the snapshot's credential values into the restored
    /// library's store. A wrong passphrase is refused before anything is restored.
    fn restore_snapshot_to_with_credentials(app, id: String, to: String, partial: bool, passphrase: String) -> RestoreDone {
        let handle = app.clone();
        with_lib(&app, move |o| crate::transfer::restore_to(&handle, &o.lib, &id, &to, partial, Some(&passphrase))).await
    }

    /// `restore_snapshot_in_place`, and the snapshot's credential values into the store. A
    /// wrong passphrase is refused before the library is touched.
    fn restore_snapshot_in_place_with_credentials(app, id: String, partial: bool, passphrase: String) -> RestoreDone {
        let handle = app.clone();
        let done = tauri::async_runtime::spawn_blocking(move || {
            crate::transfer::restore_in_place(&handle, &id, partial, Some(&passphrase))
        })
        .await
        .map_err(IpcError::internal)??;
        emit(&app, LibraryEventKind::Opened, Vec::new());
        crate::sync::start_timer(&app);
        Ok(done)
    }

    /// Save what Prune keeps (with the other backup settings).
    fn set_backup_retention(app, retention: RetentionSettings) -> BackupSettingsView {
        let handle = app.clone();
        with_lib(&app, move |o| crate::transfer::set_backup_retention(&handle, &o.lib, retention)).await
    }

    /// What a prune with `retention` would keep and forget (dates, sizes); changes nothing.
    fn prune_preview(app, retention: RetentionSettings) -> PrunePreviewView {
        let handle = app.clone();
        with_lib(&app, move |o| crate::transfer::prune_preview(&handle, &o.lib, retention)).await
    }

    /// Save `retention`, forget the snapshots it does not keep and free the space only they
    /// used. Progress as `operation-progress` (op `prune`).
    fn prune_backups(app, retention: RetentionSettings) -> PruneDone {
        let handle = app.clone();
        with_lib(&app, move |o| crate::transfer::prune_now(&handle, &o.lib, retention)).await
    }

    /// The library's credentials (names and metadata, never values), where they are kept
    /// and why, and references to credentials that do not exist.
    fn credentials(app) -> CredentialList {
        with_lib(&app, |o| Ok(crate::creds::open(&o.lib)?.list_credentials(&o.lib)?)).await
    }

    /// Store or replace a credential's value in the keychain.
    fn credential_set(app, name: String, value: String) -> CredentialInfo {
        with_lib(&app, move |o| {
            let secrets = crate::creds::open(&o.lib)?;
            secrets.set_credential(&name, value.as_bytes())?;
            Ok(secrets.credential(&o.lib, &name)?)
        })
        .await
    }

    /// A credential's value, to show a person (recorded in the audit log).
    fn credential_reveal(app, name: String) -> String {
        with_lib(&app, move |o| {
            let value = crate::creds::open(&o.lib)?.credential_value(&name, true)?;
            String::from_utf8(value.to_vec())
                .map_err(|_| IpcError::new("invalid_argument", format!("{name} is not text; use `bpv creds get {name} --reveal`")))
        })
        .await
    }

    /// Remove a credential from the keychain and the list.
    fn credential_delete(app, name: String) -> () {
        with_lib(&app, move |o| Ok(crate::creds::open(&o.lib)?.delete_credential(&name)?)).await
    }

    /// The state of the master key of encrypted blueprints (checked with its canary).
    fn key_status(app) -> KeyStatus {
        with_lib(&app, |o| Ok(crate::creds::open(&o.lib)?.key_status(&o.lib))).await
    }

    /// Encrypt a blueprint at rest (its content sealed with the library's key).
    fn encrypt_blueprint(app, path: String, if_match: Option<String>) -> Item {
        let item = with_lib(&app, move |o| crate::creds::encrypt(&o.lib, &path, if_match)).await?;
        emit(&app, LibraryEventKind::Changed, vec![item.path.clone()]);
        Ok(item)
    }

    /// Turn encryption off: the file becomes the plain YAML that was sealed (recorded in the audit log).
    fn decrypt_blueprint(app, path: String, if_match: Option<String>) -> Item {
        let item = with_lib(&app, move |o| crate::creds::decrypt(&o.lib, &path, if_match)).await?;
        emit(&app, LibraryEventKind::Changed, vec![item.path.clone()]);
        Ok(item)
    }

    /// A recovery kit: the library's master key locked with `passphrase`, as a printable
    /// page (`bpv keys recover` and the app read it back). Recorded in the audit log.
    fn recovery_kit(app, passphrase: String) -> String {
        with_lib(&app, move |o| Ok(crate::creds::open(&o.lib)?.recovery_kit(&o.lib, passphrase.as_bytes())?.printable_page()?))
            .await
    }

    /// Put the master key back from a recovery kit (its page or JSON) and its passphrase.
    fn recover_key(app, kit: String, passphrase: String) -> RecoverReport {
        let report =
            with_lib(&app, move |o| Ok(crate::creds::open(&o.lib)?.recover(&o.lib, &kit, passphrase.as_bytes())?)).await?;
        emit(&app, LibraryEventKind::Changed, Vec::new());
        Ok(report)
    }

    /// Re-seal every encrypted blueprint under a new master key, all or nothing (make a
    /// new recovery kit afterwards).
    fn rotate_key(app) -> RotateReport {
        let report = with_lib(&app, |o| Ok(crate::creds::open(&o.lib)?.rotate(&o.lib, &Default::default())?)).await?;
        emit(&app, LibraryEventKind::Changed, Vec::new());
        Ok(report)
    }

    /// The audit log of sensitive operations (reveals, kits, recovery, rotation), newest first.
    fn audit_log(app) -> Vec<AuditEntry> {
        with_lib(&app, |o| {
            let mut log = crate::creds::open(&o.lib)?.audit_log()?;
            log.reverse();
            Ok(log)
        })
        .await
    }

    /// Save text the user asked to keep (a recovery kit) to a file they choose; null when
    /// they cancel.
    fn save_text_as(app, title: String, file_name: String, text: String) -> Option<String> {
        let dialog = app.dialog().file().set_title(title).set_file_name(file_name);
        let picked = tauri::async_runtime::spawn_blocking(move || dialog.blocking_save_file())
            .await
            .map_err(IpcError::internal)?;
        let Some(path) = picked.and_then(|p| p.into_path().ok()) else { return Ok(None) };
        let written = path.clone();
        tauri::async_runtime::spawn_blocking(move || bpv_engine::fsio::write_atomic(&written, text.as_bytes()))
            .await
            .map_err(IpcError::internal)??;
        Ok(Some(path.to_string_lossy().into_owned()))
    }
    /// The open library's team-library link and each blueprint's sync state (no network).
    fn sync_status(app) -> SyncStatusView {
        let handle = app.clone();
        with_lib(&app, move |o| crate::sync::status(&handle, &o.lib)).await
    }

    /// Check a team library answers and accepts the keys, without linking anything.
    fn sync_test(app, link: SyncLinkArgs) -> () {
        let _ = &app;
        tauri::async_runtime::spawn_blocking(move || crate::sync::test(&link)).await.map_err(IpcError::internal)?
    }

    /// Link the open library to a team library (the keys go to the OS keychain) and start
    /// syncing it periodically; refused (and nothing kept) when the store does not answer
    /// or refuses the keys.
    fn sync_link(app, link: SyncLinkArgs) -> SyncStatusView {
        let handle = app.clone();
        with_lib(&app, move |o| crate::sync::link_open_library(&handle, &o.lib, &link)).await
    }

    /// Stop syncing and forget the link (the files and the team library are unchanged).
    fn sync_unlink(app) -> SyncStatusView {
        let handle = app.clone();
        with_lib(&app, move |o| crate::sync::unlink_open_library(&handle, &o.lib)).await
    }

    /// Sync now: send local changes, receive others'. Progress as `sync-progress` events,
    /// then a `sync-status` event; `sync_cancel` stops it (changes stay queued).
    fn sync_now(app) -> SyncDone {
        let handle = app.clone();
        let done = with_lib(&app, move |o| crate::sync::run(&handle, &o.lib, true)).await?;
        done.ok_or_else(|| IpcError::new("busy", "a sync is already running"))
    }

    /// Ask a running sync to stop; false when none runs.
    fn sync_cancel(app) -> bool {
        Ok(app.state::<AppState>().sync.cancel())
    }

    /// Check every blueprint is in the team library and here, byte for byte; resolves to
    /// how many were checked.
    fn sync_verify(app) -> u64 {
        let handle = app.clone();
        with_lib(&app, move |o| crate::sync::verify(&handle, &o.lib)).await
    }

    /// Copy the open library to another backend (a folder: a new library; a bucket: a new
    /// team library), then check every file byte for byte. `dry_run`: only check what would
    /// be copied, or why the target is refused. Progress as `sync-progress` events.
    fn migrate_library(app, args: MigrateArgs) -> MigrateDone {
        let handle = app.clone();
        with_lib(&app, move |o| crate::migrate::migrate_library(&handle, &o.lib, &args)).await
    }
}
